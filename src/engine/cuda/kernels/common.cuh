/*
 * common.cuh - what every kernel file shares: the element types and their float
 * conversions, the grid-stride loop, warp and block reductions, and the checks that the
 * by-value parameter structs of kernels.h have the layout the host gives them.
 *
 * Device code only; each .cu includes this once. Half types are loaded into float, computed
 * in float and rounded to nearest even on store, as the CPU reference does. No fast math:
 * the kernels must match the CPU backend at its fp32 tolerances.
 */
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>
#include <stdint.h>

extern "C" {
#include "engine/cuda/kernels.h"
}

static_assert(sizeof(cs_cuda_bcast) == CS_CUDA_BCAST_SIZE, "cs_cuda_bcast layout");
static_assert(sizeof(cs_cuda_unary_args) == CS_CUDA_UNARY_ARGS_SIZE, "cs_cuda_unary_args");
static_assert(sizeof(cs_cuda_reduce_args) == CS_CUDA_REDUCE_ARGS_SIZE, "cs_cuda_reduce_args");
static_assert(sizeof(cs_cuda_strided) == CS_CUDA_STRIDED_SIZE, "cs_cuda_strided layout");
static_assert(sizeof(cs_cuda_gather_args) == CS_CUDA_GATHER_ARGS_SIZE, "cs_cuda_gather_args");
static_assert(sizeof(cs_cuda_concat_args) == CS_CUDA_CONCAT_ARGS_SIZE, "cs_cuda_concat_args");
static_assert(sizeof(cs_cuda_bias_act_args) == CS_CUDA_BIAS_ACT_ARGS_SIZE, "cs_cuda_bias_act");
static_assert(CS_CUDA_ROW_BLOCK % 32 == 0 && CS_CUDA_ROW_BLOCK <= 1024, "row block size");

typedef float f32;
typedef __half f16;
typedef __nv_bfloat16 bf16;
typedef uint16_t b16;
typedef uint32_t b32;
typedef unsigned long long b64;

namespace cs {

__device__ __forceinline__ float to_f(float v)
{
    return v;
}
__device__ __forceinline__ float to_f(__half v)
{
    return __half2float(v);
}
__device__ __forceinline__ float to_f(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v)
{
    return v;
}
template <> __device__ __forceinline__ __half from_f<__half>(float v)
{
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

/* ONNX Max/Min: NaN in either operand gives NaN (fmaxf would drop it). */
__device__ __forceinline__ float nan_max(float a, float b)
{
    return (a > b || a != a) ? a : b;
}
__device__ __forceinline__ float nan_min(float a, float b)
{
    return (a < b || a != a) ? a : b;
}

struct op_sum {
    static __device__ __forceinline__ float init() { return 0.0f; }
    static __device__ __forceinline__ float f(float a, float b) { return a + b; }
};
struct op_max {
    static __device__ __forceinline__ float init() { return -CUDART_INF_F; }
    static __device__ __forceinline__ float f(float a, float b) { return nan_max(a, b); }
};
struct op_min {
    static __device__ __forceinline__ float init() { return CUDART_INF_F; }
    static __device__ __forceinline__ float f(float a, float b) { return nan_min(a, b); }
};

template <typename R> __device__ __forceinline__ float warp_reduce(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = R::f(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Reduces v over the block and returns the result to every thread. `scratch` holds 32
 * floats of shared memory; it may be reused after the call (the final barrier). Every thread
 * of the block must call it. */
template <typename R> __device__ __forceinline__ float block_reduce(float v, float *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    v = warp_reduce<R>(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < n_warps ? scratch[lane] : R::init();
    v = warp_reduce<R>(v);
    __syncthreads();
    return v;
}

} // namespace cs

/* A grid-stride loop over [0, n) with 64-bit indices. */
#define CS_GRID_STRIDE(i, n)                                                                \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x,                        \
                 i##_step = (int64_t)gridDim.x * blockDim.x;                                \
         i < (n); i += i##_step)

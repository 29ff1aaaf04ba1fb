/*
 * binary.cu - elementwise binary kernels (Add, Sub, Mul, Div, Pow, Max, Min) with numpy
 * broadcasting up to rank 8, for f32, f16 and bf16: cs_OP_T(a, b, y, n, cs_cuda_bcast).
 *
 * Each output index is decomposed over the output dims (unrolled to CS_CUDA_MAX_RANK so the
 * by-value struct stays in the parameter bank, never in local memory) and mapped to each
 * input through its strides, 0 on broadcast dims. rank 0 is the contiguous same-shape fast
 * path. Cost: one 64-bit division per output dim per element on the broadcast path.
 */
#include "common.cuh"

namespace cs_binary {

struct add { static __device__ __forceinline__ float f(float a, float b) { return a + b; } };
struct sub { static __device__ __forceinline__ float f(float a, float b) { return a - b; } };
struct mul { static __device__ __forceinline__ float f(float a, float b) { return a * b; } };
struct div { static __device__ __forceinline__ float f(float a, float b) { return a / b; } };
struct pow { static __device__ __forceinline__ float f(float a, float b) { return powf(a, b); } };
struct max { static __device__ __forceinline__ float f(float a, float b) { return cs::nan_max(a, b); } };
struct min { static __device__ __forceinline__ float f(float a, float b) { return cs::nan_min(a, b); } };

template <typename T, typename Op>
__device__ __forceinline__ void run(const T *a, const T *b, T *y, int64_t n, const cs_cuda_bcast &s)
{
    if (s.rank == 0) {
        CS_GRID_STRIDE(i, n) y[i] = cs::from_f<T>(Op::f(cs::to_f(a[i]), cs::to_f(b[i])));
        return;
    }
    CS_GRID_STRIDE(i, n)
    {
        int64_t r = i, ia = 0, ib = 0;
#pragma unroll
        for (int k = CS_CUDA_MAX_RANK - 1; k >= 0; k--) {
            if (k < s.rank) {
                int64_t q = r / s.dims[k], c = r - q * s.dims[k];
                r = q;
                ia += c * s.a_strides[k];
                ib += c * s.b_strides[k];
            }
        }
        y[i] = cs::from_f<T>(Op::f(cs::to_f(a[ia]), cs::to_f(b[ib])));
    }
}

} // namespace cs_binary

#define CS_BINARY(op, T)                                                                    \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_##op##_##T(const T *a, const T *b, T *y, int64_t n, cs_cuda_bcast s)             \
    {                                                                                       \
        cs_binary::run<T, cs_binary::op>(a, b, y, n, s);                                    \
    }
#define CS_BINARY_ALL(T)                                                                    \
    CS_BINARY(add, T) CS_BINARY(sub, T) CS_BINARY(mul, T) CS_BINARY(div, T)                 \
    CS_BINARY(pow, T) CS_BINARY(max, T) CS_BINARY(min, T)

CS_BINARY_ALL(f32)
CS_BINARY_ALL(f16)
CS_BINARY_ALL(bf16)

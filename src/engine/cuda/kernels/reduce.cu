/*
 * reduce.cu - ReduceSum, ReduceMean, ReduceMax and ReduceMin over a contiguous range of
 * axes, f32 and f16, with x viewed as [outer, reduced, inner] (cs_cuda_reduce_args):
 * - cs_reduce_OP_rows_T, for inner == 1: one block of CS_CUDA_ROW_BLOCK threads per outer
 *   row (grid-stride), coalesced loads, a warp-shuffle block reduction;
 * - cs_reduce_OP_cols_T, for inner > 1: one thread per output (grid-stride over
 *   outer * inner), which walks `reduced` with stride inner, so a warp's loads are
 *   contiguous along inner.
 * Accumulation is in float; Max and Min propagate NaN, as ONNX and the CPU backend do.
 */
#include "common.cuh"

namespace cs_reduce {

struct sum : cs::op_sum {
    static __device__ __forceinline__ float fin(float v, int64_t) { return v; }
};
struct mean : cs::op_sum {
    static __device__ __forceinline__ float fin(float v, int64_t n) { return v / (float)n; }
};
struct max : cs::op_max {
    static __device__ __forceinline__ float fin(float v, int64_t) { return v; }
};
struct min : cs::op_min {
    static __device__ __forceinline__ float fin(float v, int64_t) { return v; }
};

template <typename T, typename R>
__device__ __forceinline__ void rows(const T *x, T *y, const cs_cuda_reduce_args &a)
{
    __shared__ float scratch[32];
    for (int64_t o = blockIdx.x; o < a.outer; o += gridDim.x) {
        const T *xr = x + o * a.reduced;
        float v = R::init();
        for (int64_t r = threadIdx.x; r < a.reduced; r += blockDim.x) v = R::f(v, cs::to_f(xr[r]));
        v = cs::block_reduce<R>(v, scratch);
        if (threadIdx.x == 0) y[o] = cs::from_f<T>(R::fin(v, a.reduced));
    }
}

template <typename T, typename R>
__device__ __forceinline__ void cols(const T *x, T *y, const cs_cuda_reduce_args &a)
{
    CS_GRID_STRIDE(j, a.outer * a.inner)
    {
        int64_t o = j / a.inner, i = j - o * a.inner;
        const T *p = x + o * a.reduced * a.inner + i;
        float v = R::init();
        for (int64_t r = 0; r < a.reduced; r++) v = R::f(v, cs::to_f(p[r * a.inner]));
        y[j] = cs::from_f<T>(R::fin(v, a.reduced));
    }
}

} // namespace cs_reduce

#define CS_REDUCE(op, T)                                                                    \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_ROW_BLOCK)                         \
        cs_reduce_##op##_rows_##T(const T *x, T *y, cs_cuda_reduce_args a)                  \
    {                                                                                       \
        cs_reduce::rows<T, cs_reduce::op>(x, y, a);                                         \
    }                                                                                       \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_reduce_##op##_cols_##T(const T *x, T *y, cs_cuda_reduce_args a)                  \
    {                                                                                       \
        cs_reduce::cols<T, cs_reduce::op>(x, y, a);                                         \
    }
#define CS_REDUCE_ALL(T) CS_REDUCE(sum, T) CS_REDUCE(mean, T) CS_REDUCE(max, T) CS_REDUCE(min, T)

CS_REDUCE_ALL(f32)
CS_REDUCE_ALL(f16)

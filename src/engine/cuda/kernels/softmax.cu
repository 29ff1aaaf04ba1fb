/*
 * softmax.cu - Softmax and LogSoftmax over the last axis, f32 and f16:
 * cs_softmax_T / cs_log_softmax_T(x, y, rows, cols), one block of CS_CUDA_ROW_BLOCK threads
 * per row (grid-stride over rows).
 *
 * Numerically stable: the row's max is subtracted before exp. Three passes over the row
 * (max, sum of exp, write), each reduced with warp shuffles and one shared word per warp;
 * the row is re-read from memory (L2 for rows of normal size) rather than held in shared
 * memory, so any cols works. y may be x.
 */
#include "common.cuh"

namespace cs_softmax {

template <typename T, bool Log>
__device__ __forceinline__ void run(const T *x, T *y, int64_t rows, int64_t cols)
{
    __shared__ float scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * cols;
        T *yr = y + r * cols;
        float m = -CUDART_INF_F;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = cs::nan_max(m, cs::to_f(xr[c]));
        m = cs::block_reduce<cs::op_max>(m, scratch);
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(cs::to_f(xr[c]) - m);
        s = cs::block_reduce<cs::op_sum>(s, scratch);
        if (Log) {
            float ls = logf(s);
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
                yr[c] = cs::from_f<T>(cs::to_f(xr[c]) - m - ls);
        } else {
            float inv = 1.0f / s;
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
                yr[c] = cs::from_f<T>(expf(cs::to_f(xr[c]) - m) * inv);
        }
    }
}

} // namespace cs_softmax

#define CS_SOFTMAX(T)                                                                       \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_ROW_BLOCK)                         \
        cs_softmax_##T(const T *x, T *y, int64_t rows, int64_t cols)                        \
    {                                                                                       \
        cs_softmax::run<T, false>(x, y, rows, cols);                                        \
    }                                                                                       \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_ROW_BLOCK)                         \
        cs_log_softmax_##T(const T *x, T *y, int64_t rows, int64_t cols)                    \
    {                                                                                       \
        cs_softmax::run<T, true>(x, y, rows, cols);                                         \
    }

CS_SOFTMAX(f32)
CS_SOFTMAX(f16)

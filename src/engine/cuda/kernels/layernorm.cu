/*
 * layernorm.cu - LayerNormalization over the last axes, f32 and f16:
 * cs_layernorm_T(x, scale, bias, y, rows, cols, epsilon), one block of CS_CUDA_ROW_BLOCK
 * threads per row of `cols` (the product of the normalised axes), grid-stride over rows.
 *
 * y = (x - mean) / sqrt(var + epsilon) * scale + bias, bias optional (NULL). Mean and
 * variance are two passes in float (the centred second pass avoids the cancellation of
 * E[x^2] - E[x]^2), block-reduced with warp shuffles; a third pass writes. y may be x.
 */
#include "common.cuh"

namespace cs_layernorm {

template <typename T>
__device__ __forceinline__ void run(const T *x, const T *scale, const T *bias, T *y, int64_t rows,
                                    int64_t cols, float epsilon)
{
    __shared__ float scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * cols;
        T *yr = y + r * cols;
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += cs::to_f(xr[c]);
        float mean = cs::block_reduce<cs::op_sum>(s, scratch) / (float)cols;
        float v = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            float d = cs::to_f(xr[c]) - mean;
            v += d * d;
        }
        float var = cs::block_reduce<cs::op_sum>(v, scratch) / (float)cols;
        float inv = 1.0f / sqrtf(var + epsilon);
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            float o = (cs::to_f(xr[c]) - mean) * inv * cs::to_f(scale[c]);
            if (bias) o += cs::to_f(bias[c]);
            yr[c] = cs::from_f<T>(o);
        }
    }
}

} // namespace cs_layernorm

#define CS_LAYERNORM(T)                                                                     \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_ROW_BLOCK)                         \
        cs_layernorm_##T(const T *x, const T *scale, const T *bias, T *y, int64_t rows,     \
                         int64_t cols, float epsilon)                                       \
    {                                                                                       \
        cs_layernorm::run<T>(x, scale, bias, y, rows, cols, epsilon);                       \
    }

CS_LAYERNORM(f32)
CS_LAYERNORM(f16)

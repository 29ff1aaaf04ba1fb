/*
 * bias_act.cu - the epilogue of an NCHW convolution (cuDNN computes the convolution):
 * cs_bias_act_nchw_T(x, bias, y, cs_cuda_bias_act_args), f32 and f16. y = x + bias[c]
 * (bias may be NULL), then clamped to [lo, hi] when clamp is nonzero (Relu, Relu6, Clip).
 * One thread per element (grid-stride); y may be x. The clamp propagates NaN.
 */
#include "common.cuh"

namespace cs_bias_act {

template <typename T>
__device__ __forceinline__ void run(const T *x, const T *bias, T *y, const cs_cuda_bias_act_args &a)
{
    CS_GRID_STRIDE(i, a.batch * a.channels * a.spatial)
    {
        float v = cs::to_f(x[i]);
        if (bias) v += cs::to_f(bias[(i / a.spatial) % a.channels]);
        if (a.clamp) v = v < a.lo ? a.lo : (v > a.hi ? a.hi : v);
        y[i] = cs::from_f<T>(v);
    }
}

} // namespace cs_bias_act

#define CS_BIAS_ACT(T)                                                                      \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_bias_act_nchw_##T(const T *x, const T *bias, T *y, cs_cuda_bias_act_args a)      \
    {                                                                                       \
        cs_bias_act::run<T>(x, bias, y, a);                                                 \
    }

CS_BIAS_ACT(f32)
CS_BIAS_ACT(f16)

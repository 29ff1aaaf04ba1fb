/*
 * unary.cu - elementwise unary kernels for f32, f16 and bf16: Relu, Sigmoid, Tanh, Exp, Log,
 * Sqrt, Neg, Abs, Erf, Gelu (the erf form), Clip, LeakyRelu, HardSigmoid and Silu, as
 * cs_OP_T(x, y, n, cs_cuda_unary_args). y may be x.
 *
 * The math is CUDA's accurate float library (expf, erff, tanhf: a few ulp, no fast math), in
 * float for every type. Comparisons are written so that NaN propagates, as in the CPU
 * reference (Relu, Clip and LeakyRelu of NaN are NaN).
 */
#include "common.cuh"

namespace cs_unary {

typedef cs_cuda_unary_args P;
#define CS_UOP(name, expr)                                                                  \
    struct name {                                                                           \
        static __device__ __forceinline__ float f(float v, const P &p) { return (expr); }   \
    };
CS_UOP(relu, v < 0.0f ? 0.0f : v)
CS_UOP(sigmoid, 1.0f / (1.0f + expf(-v)))
CS_UOP(tanh, tanhf(v))
CS_UOP(exp, expf(v))
CS_UOP(log, logf(v))
CS_UOP(sqrt, sqrtf(v))
CS_UOP(neg, -v)
CS_UOP(abs, fabsf(v))
CS_UOP(erf, erff(v))
CS_UOP(gelu, 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)))
CS_UOP(clip, v < p.alpha ? p.alpha : (v > p.beta ? p.beta : v))
CS_UOP(leaky_relu, v < 0.0f ? p.alpha * v : v)
CS_UOP(hard_sigmoid, fminf(1.0f, fmaxf(0.0f, p.alpha * v + p.beta)))
CS_UOP(silu, v / (1.0f + expf(-v)))
#undef CS_UOP

template <typename T, typename Op>
__device__ __forceinline__ void run(const T *x, T *y, int64_t n, const P &p)
{
    CS_GRID_STRIDE(i, n) y[i] = cs::from_f<T>(Op::f(cs::to_f(x[i]), p));
}

} // namespace cs_unary

#define CS_UNARY(op, T)                                                                     \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_##op##_##T(const T *x, T *y, int64_t n, cs_cuda_unary_args p)                    \
    {                                                                                       \
        cs_unary::run<T, cs_unary::op>(x, y, n, p);                                         \
    }
#define CS_UNARY_ALL(T)                                                                     \
    CS_UNARY(relu, T) CS_UNARY(sigmoid, T) CS_UNARY(tanh, T) CS_UNARY(exp, T)               \
    CS_UNARY(log, T) CS_UNARY(sqrt, T) CS_UNARY(neg, T) CS_UNARY(abs, T) CS_UNARY(erf, T)   \
    CS_UNARY(gelu, T) CS_UNARY(clip, T) CS_UNARY(leaky_relu, T) CS_UNARY(hard_sigmoid, T)   \
    CS_UNARY(silu, T)

CS_UNARY_ALL(f32)
CS_UNARY_ALL(f16)
CS_UNARY_ALL(bf16)

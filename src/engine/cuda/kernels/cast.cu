/*
 * cast.cu - float32 <-> float16 and float32 <-> bfloat16 conversions:
 * cs_cast_S_D(x, y, n). Narrowing rounds to nearest even (inf and NaN kept, overflow to
 * inf), as the CPU backend's Cast does; widening is exact. One thread per element,
 * grid-stride.
 */
#include "common.cuh"

#define CS_CAST(S, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_cast_##S##_##D(const S *x, D *y, int64_t n)                                      \
    {                                                                                       \
        CS_GRID_STRIDE(i, n) y[i] = cs::from_f<D>(cs::to_f(x[i]));                          \
    }

CS_CAST(f32, f16)
CS_CAST(f16, f32)
CS_CAST(f32, bf16)
CS_CAST(bf16, f32)

/*
 * concat.cu - Concat by element width (b16, b32, b64), one launch per input:
 * cs_concat_B(x, y, cs_cuda_concat_args) copies x, viewed as [outer, in_inner], into y,
 * viewed as [outer, out_inner], at column `offset`. One thread per element of x
 * (grid-stride); reads and writes are contiguous runs of in_inner.
 */
#include "common.cuh"

namespace cs_concat {

template <typename B>
__device__ __forceinline__ void run(const B *x, B *y, const cs_cuda_concat_args &c)
{
    CS_GRID_STRIDE(i, c.outer * c.in_inner)
    {
        int64_t o = i / c.in_inner, j = i - o * c.in_inner;
        y[o * c.out_inner + c.offset + j] = x[i];
    }
}

} // namespace cs_concat

#define CS_CONCAT(B)                                                                        \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_concat_##B(const B *x, B *y, cs_cuda_concat_args c)                              \
    {                                                                                       \
        cs_concat::run<B>(x, y, c);                                                         \
    }

CS_CONCAT(b16)
CS_CONCAT(b32)
CS_CONCAT(b64)

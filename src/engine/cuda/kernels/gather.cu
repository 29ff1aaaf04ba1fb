/*
 * gather.cu - Gather along one axis by element width (b16, b32, b64):
 * cs_gather_B(x, indices, y, cs_cuda_gather_args). x is [outer, axis_dim, inner], indices
 * int64 (negative ones count from the end), y is [outer, n_idx, inner]; one thread per
 * output element (grid-stride), contiguous along inner. An index outside the axis after the
 * wrap writes 0 rather than reading out of bounds (the host reports the ONNX error).
 */
#include "common.cuh"

namespace cs_gather {

template <typename B>
__device__ __forceinline__ void run(const B *x, const int64_t *idx, B *y,
                                    const cs_cuda_gather_args &g)
{
    CS_GRID_STRIDE(i, g.outer * g.n_idx * g.inner)
    {
        int64_t t = i / g.inner, in = i - t * g.inner;
        int64_t o = t / g.n_idx, j = t - o * g.n_idx;
        int64_t k = idx[j];
        if (k < 0) k += g.axis_dim;
        y[i] = (k >= 0 && k < g.axis_dim) ? x[(o * g.axis_dim + k) * g.inner + in] : (B)0;
    }
}

} // namespace cs_gather

#define CS_GATHER(B)                                                                        \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_gather_##B(const B *x, const int64_t *indices, B *y, cs_cuda_gather_args g)      \
    {                                                                                       \
        cs_gather::run<B>(x, indices, y, g);                                                \
    }

CS_GATHER(b16)
CS_GATHER(b32)
CS_GATHER(b64)

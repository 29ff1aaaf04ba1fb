/*
 * copy.cu - data movement by element width (b16, b32, b64, so one kernel serves every dtype
 * of that size): Transpose and Slice as one strided gather-copy, plus a tiled 2-D transpose.
 * - cs_strided_copy_B(x, y, n, cs_cuda_strided): y[i] = x[base + sum(idx_k * strides_k)],
 *   rank <= 8; Transpose folds its perm into the strides, Slice its starts and steps into
 *   base and strides (kernels.h). The rank loop is unrolled so the struct stays in the
 *   parameter bank. Cost: one 64-bit division per dim per element.
 * - cs_transpose2d_B(x, y, batch, rows, cols): [batch, rows, cols] -> [batch, cols, rows]
 *   through a CS_CUDA_TILE square tile in shared memory (one column of padding against
 *   bank conflicts), so both the loads and the stores are coalesced; blocks of
 *   CS_CUDA_TILE x CS_CUDA_TILE_ROWS threads, grid (col tiles, row tiles, batch), each
 *   dimension grid-strided, so any grid covers any size.
 */
#include "common.cuh"

namespace cs_copy {

template <typename B>
__device__ __forceinline__ void strided(const B *x, B *y, int64_t n, const cs_cuda_strided &s)
{
    CS_GRID_STRIDE(i, n)
    {
        int64_t r = i, src = s.base;
#pragma unroll
        for (int k = CS_CUDA_MAX_RANK - 1; k >= 0; k--) {
            if (k < s.rank) {
                int64_t q = r / s.dims[k];
                src += (r - q * s.dims[k]) * s.strides[k];
                r = q;
            }
        }
        y[i] = x[src];
    }
}

template <typename B>
__device__ __forceinline__ void transpose2d(const B *x, B *y, int64_t batch, int64_t rows,
                                            int64_t cols)
{
    __shared__ B tile[CS_CUDA_TILE][CS_CUDA_TILE + 1];
    int64_t row_tiles = (rows + CS_CUDA_TILE - 1) / CS_CUDA_TILE;
    int64_t col_tiles = (cols + CS_CUDA_TILE - 1) / CS_CUDA_TILE;
    for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
        const B *xb = x + b * rows * cols;
        B *yb = y + b * rows * cols;
        for (int64_t tr = blockIdx.y; tr < row_tiles; tr += gridDim.y) {
            for (int64_t tc = blockIdx.x; tc < col_tiles; tc += gridDim.x) {
                int64_t r0 = tr * CS_CUDA_TILE, c0 = tc * CS_CUDA_TILE;
                int64_t c = c0 + threadIdx.x;
                for (int k = threadIdx.y; k < CS_CUDA_TILE; k += CS_CUDA_TILE_ROWS)
                    if (r0 + k < rows && c < cols) tile[k][threadIdx.x] = xb[(r0 + k) * cols + c];
                __syncthreads();
                int64_t r = r0 + threadIdx.x; /* y's column */
                for (int k = threadIdx.y; k < CS_CUDA_TILE; k += CS_CUDA_TILE_ROWS)
                    if (c0 + k < cols && r < rows) yb[(c0 + k) * rows + r] = tile[threadIdx.x][k];
                __syncthreads();
            }
        }
    }
}

} // namespace cs_copy

#define CS_COPY(B)                                                                          \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_BLOCK)                             \
        cs_strided_copy_##B(const B *x, B *y, int64_t n, cs_cuda_strided s)                 \
    {                                                                                       \
        cs_copy::strided<B>(x, y, n, s);                                                    \
    }                                                                                       \
    extern "C" __global__ void __launch_bounds__(CS_CUDA_TILE *CS_CUDA_TILE_ROWS)           \
        cs_transpose2d_##B(const B *x, B *y, int64_t batch, int64_t rows, int64_t cols)     \
    {                                                                                       \
        cs_copy::transpose2d<B>(x, y, batch, rows, cols);                                   \
    }

CS_COPY(b16)
CS_COPY(b32)
CS_COPY(b64)

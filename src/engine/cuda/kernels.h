/*
 * kernels.h - the contract between the CUDA backend's host code and the project's own device
 * kernels (the .cu files in src/engine/cuda/kernels/): each kernel's name, its parameters and the
 * parameter structs passed by value, and the block sizes the launches must use.
 *
 * Plain C, no CUDA header: the host loads the embedded fatbin (cs__cuda_fatbin) with
 * cuModuleLoadData and looks each kernel up with cuModuleGetFunction by the name spelled here.
 * Every struct below is read by the device code with the same layout (the .cu files and
 * cuda_kernels_test.c static_assert the sizes), so only fixed-width fields, 8-byte aligned,
 * with explicit padding. The test also checks that every name in CS_CUDA_KERNELS is an entry
 * of the fatbin's sm_90 code and of its compute_90 PTX, so a misspelt name fails at build
 * time, not on a GPU.
 *
 * Conventions for all kernels:
 * - Sizes and offsets are int64 elements; launches are grid-stride loops, so any grid works
 *   (the host picks one from the element count and the SM count).
 * - `f32`, `f16` (__half), `bf16` (__nv_bfloat16) name the element type; half types are
 *   computed and accumulated in float32 and rounded once to nearest even on store.
 * - `b16`, `b32`, `b64` name data-movement kernels by element width: they copy bits, so they
 *   serve every dtype of that size (float, int32, int64, half, ...).
 * - Unless a kernel says otherwise, the output may be the same buffer as an input of the same
 *   shape (in place); no other overlap is allowed.
 */
#ifndef CS_ENGINE_CUDA_KERNELS_H
#define CS_ENGINE_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Threads per block. Elementwise, copy and cast kernels: CS_CUDA_BLOCK. Per-row kernels
 * (softmax, layernorm, reduce_*_rows), one block per row: CS_CUDA_ROW_BLOCK (a multiple of
 * 32, at most 1024; the device code sizes its shared scratch for 32 warps). transpose2d:
 * blocks of CS_CUDA_TILE x CS_CUDA_TILE_ROWS threads (blockDim.x, blockDim.y), one
 * CS_CUDA_TILE square tile each. */
#define CS_CUDA_BLOCK     256
#define CS_CUDA_ROW_BLOCK 256
#define CS_CUDA_TILE      32
#define CS_CUDA_TILE_ROWS 8
#define CS_CUDA_MAX_RANK  8

/* Binary elementwise with numpy broadcasting: y[i] = op(a[ia], b[ib]) over the output's
 * `rank` dims (row-major, at most CS_CUDA_MAX_RANK); a_strides/b_strides are each input's
 * strides in elements for those output dims, 0 where that input is broadcast (the host
 * left-pads a lower-rank input with 0 strides). rank 0 means a, b and y are all contiguous
 * with n elements (the fast path; no broadcasting). */
typedef struct cs_cuda_bcast {
    int32_t rank;
    int32_t pad_;
    int64_t dims[CS_CUDA_MAX_RANK];
    int64_t a_strides[CS_CUDA_MAX_RANK];
    int64_t b_strides[CS_CUDA_MAX_RANK];
} cs_cuda_bcast;
#define CS_CUDA_BCAST_SIZE 200

/* Unary elementwise parameters: Clip's bounds (alpha = min, beta = max), LeakyRelu's alpha,
 * HardSigmoid's alpha and beta (y = clamp(alpha * x + beta, 0, 1)); other ops ignore them. */
typedef struct cs_cuda_unary_args {
    float alpha;
    float beta;
} cs_cuda_unary_args;
#define CS_CUDA_UNARY_ARGS_SIZE 8

/* Reductions over a contiguous range of axes: x is [outer, reduced, inner], y is
 * [outer, inner]. reduce_OP_rows is for inner == 1 (one block per outer row, grid-stride);
 * reduce_OP_cols for inner > 1 (one thread per output, coalesced along inner). reduced == 0
 * gives 0 (sum), NaN (mean), -inf (max), +inf (min). */
typedef struct cs_cuda_reduce_args {
    int64_t outer;
    int64_t reduced;
    int64_t inner;
} cs_cuda_reduce_args;
#define CS_CUDA_REDUCE_ARGS_SIZE 24

/* A strided gather-copy: y (contiguous, dims) from x at base + sum(idx[k] * strides[k]).
 * Transpose: strides[k] = x's stride of perm[k], base 0. Slice: dims are the output extents,
 * strides[k] = x's stride of axis k times step[k] (negative for negative steps), base =
 * sum(start[k] * x's stride k). Strides and base are in elements. */
typedef struct cs_cuda_strided {
    int32_t rank;
    int32_t pad_;
    int64_t base;
    int64_t dims[CS_CUDA_MAX_RANK];
    int64_t strides[CS_CUDA_MAX_RANK];
} cs_cuda_strided;
#define CS_CUDA_STRIDED_SIZE 144

/* Gather: x is [outer, axis_dim, inner], indices are n_idx int64 (any shape, flattened),
 * y is [outer, n_idx, inner]. A negative index counts from the end (k + axis_dim); an index
 * still outside [0, axis_dim) writes 0 (the host validates indices where ONNX demands an
 * error; the kernel never reads out of bounds). */
typedef struct cs_cuda_gather_args {
    int64_t outer;
    int64_t axis_dim;
    int64_t inner;
    int64_t n_idx;
} cs_cuda_gather_args;
#define CS_CUDA_GATHER_ARGS_SIZE 32

/* Concat, one launch per input: x is [outer, in_inner] (in_inner = its axis extent times the
 * inner size), copied to y viewed as [outer, out_inner] at column `offset` (the sum of the
 * earlier inputs' in_inner). */
typedef struct cs_cuda_concat_args {
    int64_t outer;
    int64_t in_inner;
    int64_t out_inner;
    int64_t offset;
} cs_cuda_concat_args;
#define CS_CUDA_CONCAT_ARGS_SIZE 32

/* The epilogue of an NCHW convolution: y = x + bias[c] (bias may be NULL), then, if clamp is
 * nonzero, clamped to [lo, hi] (Relu: 0, +inf; Relu6: 0, 6). x and y are
 * [batch, channels, spatial]; y may be x. */
typedef struct cs_cuda_bias_act_args {
    int64_t batch;
    int64_t channels;
    int64_t spatial;
    float lo;
    float hi;
    int32_t clamp;
    int32_t pad_;
} cs_cuda_bias_act_args;
#define CS_CUDA_BIAS_ACT_ARGS_SIZE 40

/* Kernel signatures, by family (T is the element type of the suffix):
 *   cs_OP_T(const T *a, const T *b, T *y, int64_t n, cs_cuda_bcast s)        binary
 *   cs_OP_T(const T *x, T *y, int64_t n, cs_cuda_unary_args p)              unary
 *   cs_softmax_T / cs_log_softmax_T(const T *x, T *y, int64_t rows, int64_t cols)
 *       over the last axis, one block per row (grid-stride over rows)
 *   cs_layernorm_T(const T *x, const T *scale, const T *bias, T *y, int64_t rows,
 *                  int64_t cols, float epsilon)
 *       normalises each row of `cols` (the product of the normalised axes); scale and bias
 *       have `cols` elements, bias may be NULL
 *   cs_reduce_OP_rows_T / cs_reduce_OP_cols_T(const T *x, T *y, cs_cuda_reduce_args a)
 *   cs_strided_copy_B(const B *x, B *y, int64_t n, cs_cuda_strided s)         n = prod(dims)
 *   cs_transpose2d_B(const B *x, B *y, int64_t batch, int64_t rows, int64_t cols)
 *       x [batch, rows, cols] -> y [batch, cols, rows]; grid (col tiles, row tiles, batch),
 *       each grid-strided; y may not be x
 *   cs_gather_B(const B *x, const int64_t *indices, B *y, cs_cuda_gather_args g)
 *   cs_concat_B(const B *x, B *y, cs_cuda_concat_args c)
 *   cs_bias_act_nchw_T(const T *x, const T *bias, T *y, cs_cuda_bias_act_args a)
 *   cs_cast_S_D(const S *x, D *y, int64_t n)
 */

/* The X-macro lists: X(name) for every kernel, so host tables and the build test are made
 * from one list (laid out by hand: clang-format reflows X-macros differently each run).
 * Binary ops follow ONNX: Pow is powf, Max/Min propagate NaN. */
/* clang-format off */
#define CS_CUDA_BINARY_OPS(X, T)                                                        \
    X(add_##T) X(sub_##T) X(mul_##T) X(div_##T) X(pow_##T) X(max_##T) X(min_##T)
#define CS_CUDA_UNARY_OPS(X, T)                                                         \
    X(relu_##T) X(sigmoid_##T) X(tanh_##T) X(exp_##T) X(log_##T) X(sqrt_##T)            \
    X(neg_##T) X(abs_##T) X(erf_##T) X(gelu_##T) X(clip_##T) X(leaky_relu_##T)          \
    X(hard_sigmoid_##T) X(silu_##T)
#define CS_CUDA_ROW_OPS(X, T)                                                           \
    X(softmax_##T) X(log_softmax_##T) X(layernorm_##T)                                  \
    X(reduce_sum_rows_##T) X(reduce_mean_rows_##T)                                      \
    X(reduce_max_rows_##T) X(reduce_min_rows_##T)                                       \
    X(reduce_sum_cols_##T) X(reduce_mean_cols_##T)                                      \
    X(reduce_max_cols_##T) X(reduce_min_cols_##T)                                       \
    X(bias_act_nchw_##T)
#define CS_CUDA_COPY_OPS(X, B)                                                          \
    X(strided_copy_##B) X(transpose2d_##B) X(gather_##B) X(concat_##B)

/* Every kernel, as X(suffix): the kernel is cs_<suffix>, and CS_CUDA_KERNEL_NAME(suffix) is
 * the string to look up ("cs_add_f32"). */
#define CS_CUDA_KERNEL_NAME(suffix) "cs_" #suffix
#define CS_CUDA_KERNELS(X)                                                              \
    CS_CUDA_BINARY_OPS(X, f32) CS_CUDA_BINARY_OPS(X, f16) CS_CUDA_BINARY_OPS(X, bf16)   \
    CS_CUDA_UNARY_OPS(X, f32) CS_CUDA_UNARY_OPS(X, f16) CS_CUDA_UNARY_OPS(X, bf16)      \
    CS_CUDA_ROW_OPS(X, f32) CS_CUDA_ROW_OPS(X, f16)                                     \
    CS_CUDA_COPY_OPS(X, b16) CS_CUDA_COPY_OPS(X, b32) CS_CUDA_COPY_OPS(X, b64)          \
    X(cast_f32_f16) X(cast_f16_f32) X(cast_f32_bf16) X(cast_bf16_f32)
/* clang-format on */

#ifndef __CUDACC__
/* The fatbin (sm_90 code and compute_90 PTX of every kernel above), embedded at build time
 * by tools/embed_bin.c; cs__cuda_fatbin_size is 0 in a build without nvcc. Read-only,
 * static storage: pass it to cuModuleLoadData as is. */
extern const unsigned char cs__cuda_fatbin[];
extern const size_t cs__cuda_fatbin_size;

/* Whether this build holds the kernels; false means "built without nvcc" (CS_CUDA=OFF or no
 * nvcc found), which the host should say when CUDA is asked for. */
bool cs__cuda_kernels_built(void);
#endif

#endif

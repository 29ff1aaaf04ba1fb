/*
 * cuda_ops.h - the CUDA backend's kernel wrappers (internal): host code that turns a node
 * into launches of the project's device kernels (kernels.h) on its device's stream.
 *
 * launch.c loads the embedded fatbin once per device and launches through the driver
 * (driver.h: cuModuleGetFunction, cuLaunchKernel; no CUDA header). Each operator family has
 * its file and {0}-terminated table, which backend.c's supports() searches in turn:
 * ops_eltwise.c (binary with broadcasting, unary), ops_rows.c (Softmax, LayerNormalization,
 * reductions) and ops_move.c (Transpose, Slice, Gather, Concat, Cast, Expand and the
 * reshape-likes). A wrapper's accepts() declines every form its .cu kernel cannot compute
 * (element types, ranks over CS_CUDA_MAX_RANK, axes), so those nodes run on the CPU.
 *
 * Wrappers run on the calling thread and queue work on the stream without waiting; they
 * allocate nothing (temporary device memory is the step's scratch).
 */
#ifndef CS_ENGINE_CUDA_OPS_H
#define CS_ENGINE_CUDA_OPS_H

#include "engine/cuda/cuda_be.h"

/* Loads cs__cuda_fatbin into b's context and resolves every kernel, once, from the
 * backend's init (b's context current). Not an error of init when it fails: b->module stays
 * NULL and b->no_kernels says why (a build without nvcc, a GPU the sm_90 code and
 * compute_90 PTX do not serve), and every node of the device's sessions runs on the CPU. */
void cs__cuda_module_load(cs__cuda_be *b);

/* A kernel's name as the fatbin spells it ("cs_add_f32"). */
const char *cs__cuda_kernel_name(int kid);

/* The column of an element type in the wrappers' by-type kernel lists: 0 float32,
 * 1 float16, 2 bfloat16; -1 for any other type. */
int cs__cuda_ftype(cs_dtype t);
/* The column of an element width in the by-width lists (data movement): 0 for 2 bytes
 * (b16), 1 for 4 (b32), 2 for 8 (b64); -1 for other widths. */
int cs__cuda_width(cs_dtype t);

/* x's strides in elements along y's dims (x left-padded with 1s to y's rank), 0 along a
 * dim where x is broadcast (extent 1): how binary.cu and strided_copy read a broadcast. */
void cs__cuda_bcast_strides(const cs_tensor *x, const cs_tensor *y, int64_t *strides);

/* Blocks of `block` threads for a grid-stride loop over n > 0 items: one per `block`
 * items, at most enough to keep every SM of the device busy. */
unsigned cs__cuda_blocks(const cs__kctx *ctx, int64_t n, unsigned block);

/* Queues kernel kid on ctx's device (its stream), grid by block threads; params holds one
 * pointer per kernel parameter, as cuLaunchKernel takes them. An error names the node, the
 * kernel and the device. */
cs_status cs__cuda_launch(cs__kctx *ctx, int kid, const unsigned grid[3], const unsigned block[3],
                          void **params);
/* The same on a 1-D grid over n items (cs__cuda_blocks); nothing to do for n == 0. */
cs_status cs__cuda_launch_1d(cs__kctx *ctx, int kid, int64_t n, unsigned block, void **params);

/* Queues a copy of bytes between two device buffers of ctx's device; host to device when
 * `from_host` (the driver has read src when it returns, so src may be a stack buffer). */
cs_status cs__cuda_copy(cs__kctx *ctx, void *dst, const void *src, size_t bytes, bool from_host);

/* Sets err to "Op 'name': <fmt>" (CS_ERR_UNSUPPORTED) and returns false: how an accepts()
 * hook declines. */
bool cs__cuda_decline(cs_error *err, const cs__node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The families' kernel tables, in the order supports() searches them. */
extern const cs__kernel cs__cuda_eltwise_kernels[];
extern const cs__kernel cs__cuda_rows_kernels[];
extern const cs__kernel cs__cuda_move_kernels[];
/* Gemm and MatMul on cuBLASLt (ops_gemm.c); supports() offers them only where the device
 * has a cuBLASLt handle (cs__cuda_blaslt). */
extern const cs__kernel cs__cuda_gemm_kernels[];

#endif

/*
 * blaslt.h - GEMM on the GPU through cuBLASLt, loaded at run time (internal).
 *
 * ONNX's Gemm and MatMul are row-major; cuBLASLt is column-major. A row-major M x N
 * matrix is, byte for byte, the column-major N x M matrix of its transpose, so
 * D = op(A) op(B) is computed as the column-major D^T = op(B)^T op(A)^T: the operands
 * swap places, M and N swap, and each keeps its own transpose flag and leading dimension
 * (cs__cuda_gemm_layout). Every value the caller gives is in row-major terms.
 *
 * Lifetimes: the cuBLASLt handle belongs to the backend (one per device context); a
 * cs__cuda_gemm_plan belongs to the plan step that made it, made once per shape at plan
 * time (descriptors and the heuristic's algorithm) and freed with the plan; a run only
 * sets the bias pointer and calls cublasLtMatmul on the stream it is given.
 */
#ifndef CS_ENGINE_CUDA_BLASLT_H
#define CS_ENGINE_CUDA_BLASLT_H

#include "engine/cuda/vendor_abi.h"

#include <capstan/engine.h>
#include <stdbool.h>

/* Environment variable naming the cuBLASLt library to open instead of libcublasLt.so.13. */
#define CS__BLASLT_ENV "CS_LIBCUBLASLT"
#define CS__BLASLT_LIB "libcublasLt.so.13"

/* Opens cuBLASLt and resolves every function this file calls. Safe from any thread; once
 * it succeeded it returns at once (the library stays open for the process). A failure is
 * not remembered, so a later call retries. Fails with CS_ERR_UNSUPPORTED naming the file
 * and CS_LIBCUBLASLT. Needs no GPU. */
cs_status cs__blaslt_load(cs_error *err);

/* cublasLtGetVersion() of the loaded library (e.g. 130100), 0 before a load succeeded. */
size_t cs__blaslt_version(void);

/* A cuBLASLt handle (cublasLtCreate) in *out, which the caller frees with
 * cs__blaslt_handle_free. Needs a GPU and a current context. */
cs_status cs__blaslt_handle_new(void **out, cs_error *err);
void cs__blaslt_handle_free(void *handle);

/* What follows the product, in cuBLASLt's epilogue. Bias is a vector of N elements of the
 * output's type added to every row of D (ONNX Gemm's C of shape [N] or [1, N]). GELU is
 * cuBLASLt's tanh approximation: it serves Gelu(approximate="tanh") only. */
typedef enum cs__cuda_epilogue {
    CS__CUDA_EPI_NONE,
    CS__CUDA_EPI_RELU,
    CS__CUDA_EPI_BIAS,
    CS__CUDA_EPI_RELU_BIAS,
    CS__CUDA_EPI_GELU,
    CS__CUDA_EPI_GELU_BIAS,
} cs__cuda_epilogue;

/* One (strided-batched) row-major product, per batch b:
 *   D_b[M,N] = act(alpha * op(A_b)[M,K] * op(B_b)[K,N] + beta * C_b[M,N] + bias).
 * A is stored M x K (K x M when trans_a) with row stride lda; B K x N (N x K when trans_b)
 * with ldb; C and D M x N with ldc. Strides are in elements between consecutive batch
 * entries; 0 repeats the same matrix for every batch (MatMul broadcasting [B,M,K] x [K,N]).
 * Leading dimensions of 0 mean packed. */
typedef struct cs__cuda_gemm_shape {
    cs_dtype type; /* A, B, C, D and bias: float32, float16 or bfloat16 */
    bool trans_a, trans_b;
    int64_t M, N, K;
    int64_t lda, ldb, ldc;
    int64_t batch; /* >= 1 */
    int64_t stride_a, stride_b, stride_c, stride_d;
    bool has_c; /* beta * C is part of the product (C may be D itself) */
    cs__cuda_epilogue epilogue;
    bool tf32;            /* float32 only: CUBLAS_COMPUTE_32F_FAST_TF32 instead of 32F */
    size_t align;         /* bytes every pointer of a run is aligned to; 0: 64 (backend alloc) */
    size_t max_workspace; /* the largest workspace the caller will pass to runs */
} cs__cuda_gemm_shape;

/* The column-major call that computes a row-major shape: the "a" operand is the caller's
 * B and the "b" operand the caller's A. rows/cols are the stored matrices' dimensions in
 * column-major terms, as cublasLtMatrixLayoutCreate takes them. */
typedef struct cs__cuda_gemm_cm {
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    bool transa, transb;
    int64_t a_rows, a_cols, b_rows, b_cols;
    int64_t stride_a, stride_b; /* batch strides of the column-major a (= B) and b (= A) */
} cs__cuda_gemm_cm;

/* Fills in packed leading dimensions (0) of *s and checks it: sizes >= 1 and within int32,
 * leading dimensions at least the stored widths, strides >= 0, a type cuBLASLt is given
 * (CS_ERR_UNSUPPORTED naming it), tf32 only with float32, align a power of two between the
 * element size and 256. Pure; calls no library. */
cs_status cs__cuda_gemm_check(cs__cuda_gemm_shape *s, cs_error *err);

/* The column-major arguments for a checked shape. Pure. */
cs__cuda_gemm_cm cs__cuda_gemm_layout(const cs__cuda_gemm_shape *s);

/* A shape's descriptors and algorithm, made once at plan time. */
typedef struct cs__cuda_gemm_plan {
    cs__cuda_gemm_shape shape; /* as checked: leading dimensions filled in */
    cs__cuda_gemm_cm cm;
    void *desc;                                      /* cublasLtMatmulDesc_t */
    void *layout_a, *layout_b, *layout_c, *layout_d; /* cublasLtMatrixLayout_t, column-major */
    cs__lt_algo algo;
    size_t workspace; /* bytes the algorithm needs, <= shape.max_workspace */
} cs__cuda_gemm_plan;

/* Checks *shape and creates the descriptors (host objects: no GPU needed), without an
 * algorithm; plan_init does this first. On failure *p holds nothing. */
cs_status cs__cuda_gemm_plan_describe(cs__cuda_gemm_plan *p, const cs__cuda_gemm_shape *shape,
                                      cs_error *err);

/* Checks *shape, creates the descriptors and asks cublasLtMatmulAlgoGetHeuristic once for
 * the best algorithm that fits shape->max_workspace. On failure *p holds nothing (freeing
 * it is still allowed). handle: from cs__blaslt_handle_new. Needs a GPU for the heuristic;
 * the shape's errors come before any library call. */
cs_status cs__cuda_gemm_plan_init(cs__cuda_gemm_plan *p, void *handle,
                                  const cs__cuda_gemm_shape *shape, cs_error *err);
/* Releases the descriptors; *p can be initialised again. NULL or zeroed: nothing. */
void cs__cuda_gemm_plan_free(cs__cuda_gemm_plan *p);

/* One run of a plan. Pointers are device addresses (cuMemAlloc's CUdeviceptr values). */
typedef struct cs__cuda_gemm_args {
    const cs__cuda_gemm_plan *plan;
    void *handle;
    uint64_t a, b, c, d; /* c: 0 unless plan's has_c */
    uint64_t bias;       /* N elements; 0 unless the epilogue adds a bias */
    float alpha, beta;   /* beta is ignored without C */
    uint64_t workspace;  /* device memory of workspace_size bytes; 0 when size is 0 */
    size_t workspace_size;
    void *stream; /* CUstream; NULL: the default stream */
} cs__cuda_gemm_args;

/* Checks a run's arguments against its plan: the pointers the plan needs are present and
 * aligned to shape.align, the workspace is as large as the algorithm needs. Pure. */
cs_status cs__cuda_gemm_args_check(const cs__cuda_gemm_args *a, cs_error *err);

/* Queues the product on a->stream (cublasLtMatmul); returns before it ran. The bias
 * pointer is written into the plan's descriptor, so a plan serves one run at a time (its
 * caller serialises them); the descriptor is read when the call is made, so a CUDA
 * graph captured from it keeps that run's bias. */
cs_status cs__cuda_gemm(const cs__cuda_gemm_args *a, cs_error *err);

#endif

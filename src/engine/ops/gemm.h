/*
 * gemm.h - what the matrix-product family's schemas (ops/gemm.c) and its kernels
 * (cpu/gemm.c) share (internal): MatMul's and Gemm's validated geometry.
 */
#ifndef CS_ENGINE_OPS_GEMM_H
#define CS_ENGINE_OPS_GEMM_H

#include "engine/op.h"

/* A batched product's geometry: batch dims of the output and where each batch's A and B
 * matrices start (in matrices, 0 stride where broadcast). */
typedef struct cs__mm_shape {
    int64_t M, N, K, batch;
    int brank;
    int64_t bdims[CS_MAX_RANK];
    int64_t astride[CS_MAX_RANK], bstride[CS_MAX_RANK];
    int64_t a_batches; /* matrices A holds */
    bool b_single;     /* B holds one matrix */
} cs__mm_shape;

/* MatMul's geometry for A and B (numpy rules); fills out's dtype and shape when out is not
 * NULL. */
cs_status cs__mm_shape_init(const cs__node *n, const cs_tensor *a, const cs_tensor *b,
                            cs__mm_shape *s, cs_tensor *out, cs_error *err);

/* Gemm's C broadcasts unidirectionally to [M,N]: its (up to) two dims, right-aligned, must
 * each be 1 or match. The strides it yields read C at (m, n) as c[m*rs + n*cs]. */
typedef struct cs__gemm_shape {
    bool ta, tb;
    int64_t M, N, K;
    int64_t c_rs, c_cs;
} cs__gemm_shape;

/* Gemm's geometry from A, B, the optional C and transA/transB. */
cs_status cs__gemm_shape_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs__gemm_shape *s, cs_error *err);

#endif

/*
 * blas.h - matrix products on the session's own threads (internal).
 *
 * OpenBLAS would start its own thread per core in every process and in every session at
 * once, oversubscribing the machine and breaking the server's thread budget. The engine
 * therefore runs OpenBLAS single-threaded and splits each product into row or column
 * blocks across the session's pool itself.
 */
#ifndef CS_ENGINE_CPU_BLAS_H
#define CS_ENGINE_CPU_BLAS_H

#include "engine/kernel.h"

/* Loads OpenBLAS once (see blas.c); fails naming the library and why. Every session checks
 * it when it is created, so that cs__gemm can assume it. */
cs_status cs__blas_ready(cs_error *err);

/* Y[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * Y, row-major, float32 or float64.
 * M, N, K, and the leading dimensions must fit in an int (callers check). */
void cs__gemm(cs__kctx *ctx, cs_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
              double alpha, const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
              void *y, int64_t ldy);

#endif

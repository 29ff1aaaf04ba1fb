/*
 * pgemm.h - float32 GEMM against weights prepacked once per plan, with the bias and the
 * fused activation applied in the micro-kernel (internal).
 *
 * conv.c runs its ungrouped-per-group float32 products Y[M, N] = W[M, K] * X[K, N] through
 * it when the weights are known at plan time and the CPU has AVX-512: the 1x1 convolutions
 * (X is the image itself) and im2col's column matrices; gemm.c its MatMuls and Gemms
 * against known weights. Elsewhere they stay on OpenBLAS.
 */
#ifndef CS_ENGINE_CPU_PGEMM_H
#define CS_ENGINE_CPU_PGEMM_H

#include "engine/cpu/isa.h"
#include "engine/kernel.h"

/* Floats of the packed form of an M x K row-major matrix, and the packing into dst (that
 * many floats, 64-byte aligned): panels of 8 rows, k-major, the last padded with zeros. */
size_t cs__pgemm_weights_floats(int64_t M, int64_t K);
void cs__pgemm_weights(int64_t M, int64_t K, const float *a, float *dst);

/* y[M, N] (row stride N) = packed[M, K] * x[K, N] (row stride N) + bias[m] (NULL: none),
 * then act (NULL: none), split over the pool in tiles of 8 rows x 48 columns. Only call
 * when cs__cpu_avx512() (isa.h). Allocates nothing. */
void cs__pgemm(cs__kctx *ctx, int64_t M, int64_t N, int64_t K, const float *packed, const float *x,
               const float *bias, const cs__act *act, float *y);

/* The same kernel with the known operand on the right, MatMul's and Gemm's weights: the
 * floats of the packed form of a K x N matrix, in column panels of 48 (k-major, the last
 * padded with zeros), the packing of b row-major [K, N] or, trans, [N, K] (Gemm's transB),
 * and y[M, N] = a[M, K] (row-major, read in place) * packed[K, N] + col_bias[n] (NULL:
 * none), then act (NULL: none). Only call when cs__cpu_avx512(). Allocates nothing. */
size_t cs__pgemm_cols_floats(int64_t K, int64_t N);
void cs__pgemm_cols(int64_t K, int64_t N, const float *b, bool trans, float *dst);
void cs__pgemm_b(cs__kctx *ctx, int64_t M, int64_t N, int64_t K, const float *a,
                 const float *packed, const float *col_bias, const cs__act *act, float *y);

#endif

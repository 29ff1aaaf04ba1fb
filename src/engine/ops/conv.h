/*
 * conv.h - what the convolution family's schemas (ops/conv.c) and its kernels (cpu/conv.c)
 * share (internal): a convolution's validated geometry.
 */
#ifndef CS_ENGINE_OPS_CONV_H
#define CS_ENGINE_OPS_CONV_H

#include "engine/ops/window.h"

/* A convolution's shape. For Conv the window's in side is X and out side Y; for
 * ConvTranspose, its adjoint, in is Y and out is X. */
typedef struct cs__conv_shape {
    bool transpose;
    cs__window w;
    int64_t N, C, M, group, Cg, Mg; /* C: X's channels, M: Y's channels */
} cs__conv_shape;

/* Validates X [N,C,...], W ([M,C/g,k...] or transposed [C,M/g,k...]) and B [M], and sets
 * the geometry; fills y's dtype and shape when y is not NULL. Refuses (CS_ERR_LIMIT) a
 * group's GEMM whose dimensions exceed what BLAS takes (INT_MAX). */
cs_status cs__conv_shape_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                              bool transpose, cs__conv_shape *c, cs_tensor *y, cs_error *err);

#endif

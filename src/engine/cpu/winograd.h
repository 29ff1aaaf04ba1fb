/*
 * winograd.h - Winograd F(2x2, 3x3) for 2-D, 3x3, stride-1 float32 convolutions (internal).
 *
 * conv.c picks it for ungrouped 3x3 stride-1 shapes wide enough to pay for the transforms
 * and calls it with plain float32 tensors (float16 already widened).
 */
#ifndef CS_ENGINE_CPU_WINOGRAD_H
#define CS_ENGINE_CPU_WINOGRAD_H

#include "engine/kernel.h"
#include "engine/ops/window.h"

/* Floats of scratch cs__winograd() needs for N images of C channels into M channels over
 * window w (3x3, stride 1, dilation 1): the transformed weights and one block of tiles. */
size_t cs__winograd_scratch(const cs__window *w, int64_t N, int64_t C, int64_t M);

/* Floats of the transformed weights of M x C 3x3 kernels, and the transform itself into u
 * (that many floats), for a plan to do once: cs__winograd() then takes u instead. */
size_t cs__winograd_weights_floats(int64_t C, int64_t M);
void cs__winograd_weights(int64_t C, int64_t M, const float *wt, float *u);

/* y [N,M,out] = conv(x [N,C,in], wt [M,C,3,3]) + b (NULL: none), then act, in place of
 * im2col + GEMM: 2.25x fewer multiplies. u: wt's cs__winograd_weights(), or NULL to
 * transform wt in this run. scratch holds cs__winograd_scratch() floats, 64-byte aligned.
 * Allocates nothing. */
void cs__winograd(cs__kctx *ctx, const cs__window *w, int64_t N, int64_t C, int64_t M,
                  const float *x, const float *wt, const float *u, const float *b, float *y,
                  float *scratch, const cs__act *act);

#endif

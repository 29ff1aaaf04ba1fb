/*
 * dw512.h - AVX-512 inner loops of conv.c's direct depthwise kernel (internal): the 3x3
 * taps at stride 1 and 2 over a row's interior, and the fused clamp. Call them only when
 * cs__cpu_avx512() (isa.h); conv.c's portable loops are the fallback.
 */
#ifndef CS_ENGINE_CPU_DW512_H
#define CS_ENGINE_CPU_DW512_H

#include <stdint.h>

/* y[o] += sum over r, j < 3 of k[r*3 + j] * x[r*xs + o*s + base + j*d] for o in [lo, hi),
 * s 1 or 2, every tap inside x: conv.c's taps() with nr = nk = 3, 16 outputs a step. */
void cs__dw512_taps3x3(float *restrict y, const float *restrict x, int64_t xs,
                       const float *restrict k, int64_t base, int64_t d, int64_t s, int64_t lo,
                       int64_t hi);

/* Floats of cs__dw512_plane3x3's padded bands (two such buffers live on the stack). */
#define CS__DW512_PLANE_MAX 4096
/* The widest output row cs__dw512_plane3x3 takes: a band of one row and its two neighbours. */
#define CS__DW512_PLANE_MAX_W (CS__DW512_PLANE_MAX / 3 - 2)

/* One whole output plane y [oh, ow] of a 3x3, stride-1, undilated depthwise filter k over
 * the input plane x [ih, iw] with top and left pads pt, pl: bias, then the nine taps in
 * taps3x3's order. Bands of output rows are copied with their input rows, zero-padded, to
 * (rows + 2) x (ow + 2) floats on the stack, where a band's outputs are one run of
 * (rows - 1) * (ow + 2) + ow sums, 16 a step, row ends included: no per-row work and no
 * border loops, which dominated the 7x7 to 56x56 planes of mobilenet's later layers on the
 * row path. A tap in the padding adds k * 0, as ONNX's zero padding does (the row path
 * skips it). ow <= CS__DW512_PLANE_MAX_W. */
void cs__dw512_plane3x3(float *restrict y, int64_t oh, int64_t ow, const float *restrict x,
                        int64_t ih, int64_t iw, int64_t pt, int64_t pl, const float *restrict k,
                        float bias);

/* y[i] = CS__CLAMP(y[i], lo, hi) for i < n, NaN and signed zeros as Clip keeps them. */
void cs__dw512_clamp(float *y, int64_t n, float lo, float hi);

#endif

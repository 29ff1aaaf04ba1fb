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

/* y[i] = CS__CLAMP(y[i], lo, hi) for i < n, NaN and signed zeros as Clip keeps them. */
void cs__dw512_clamp(float *y, int64_t n, float lo, float hi);

#endif

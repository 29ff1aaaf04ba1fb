/*
 * dw512.c - the AVX-512 loops of dw512.h for conv.c's depthwise kernel.
 *
 * conv.c's portable taps() is compiled for SSE2: 4 outputs a step at stride 1, and at
 * stride 2 the compiler gathers element by element. Here 16 outputs take a step: at
 * stride 1 each tap is one unaligned load, at stride 2 two loads of 16 inputs and one
 * permute that keeps the even ones. Row ends are masked loads and stores (AVX-512 masks
 * suppress faults on the lanes they leave out), so there is no scalar tail and nothing is
 * read past the row's last tap. The sums run in taps()'s order, with FMAs. At stride 1
 * conv.c hands over whole planes instead (cs__dw512_plane3x3): zero-padded bands of rows,
 * over which the outputs of many rows are one flat run.
 */
#include "engine/cpu/dw512.h"

#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/* The first n lanes: none for n <= 0, all for n >= 16. */
static inline AVX512 __mmask16 lanes(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}

/* taps3x3 with s a literal once inlined. */
static inline __attribute__((always_inline)) AVX512 void
taps(float *restrict y, const float *restrict x, int64_t xs, const float *restrict k, int64_t base,
     int64_t d, int s, int64_t lo, int64_t hi)
{
    __m512 kv[9];
    for (int i = 0; i < 9; i++) kv[i] = _mm512_set1_ps(k[i]);
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t o = lo; o < hi; o += 16) {
        int64_t n = hi - o < 16 ? hi - o : 16;
        /* stride 2: inputs 0 .. 2(n-1) from each tap's first, in two vectors */
        __mmask16 m = lanes(n), m0 = lanes(2 * n - 1), m1 = lanes(2 * n - 17);
        __m512 acc = _mm512_maskz_loadu_ps(m, y + o);
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 3; j++) {
                const float *p = x + r * xs + o * s + base + j * d;
                __m512 v = s == 1 ? _mm512_maskz_loadu_ps(m, p)
                                  : _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, p), even,
                                                           _mm512_maskz_loadu_ps(m1, p + 16));
                acc = _mm512_fmadd_ps(kv[r * 3 + j], v, acc);
            }
        _mm512_mask_storeu_ps(y + o, m, acc);
    }
}

AVX512 void cs__dw512_taps3x3(float *restrict y, const float *restrict x, int64_t xs,
                              const float *restrict k, int64_t base, int64_t d, int64_t s,
                              int64_t lo, int64_t hi)
{
    if (s == 1)
        taps(y, x, xs, k, base, d, 1, lo, hi);
    else
        taps(y, x, xs, k, base, d, 2, lo, hi);
}

/* Output rows [r0, r0 + rows) of cs__dw512_plane3x3 through a padded band of rows + 2
 * rows of wp = ow + 2 floats, where output (oh, ow) is flat entry f = oh * wp + ow and its
 * taps are band[f + r * wp + j]. */
static AVX512 void band(float *restrict y, int64_t r0, int64_t rows, int64_t ow,
                        const float *restrict x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                        const __m512 *kv, float bias)
{
    int64_t wp = ow + 2, n = (rows - 1) * wp + ow;
    float pad[CS__DW512_PLANE_MAX], flat[CS__DW512_PLANE_MAX];
    memset(pad, 0, sizeof pad[0] * (size_t)((rows + 2) * wp));
    int64_t cols = iw < wp - pl ? iw : wp - pl;
    for (int64_t b = 0; b < rows + 2 && cols > 0; b++) {
        int64_t r = r0 + b - pt; /* the input row in padded row r0 + b */
        if (r >= 0 && r < ih) memcpy(pad + b * wp + pl, x + r * iw, sizeof x[0] * (size_t)cols);
    }
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 acc = _mm512_set1_ps(bias);
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 3; j++)
                acc = _mm512_fmadd_ps(kv[r * 3 + j], _mm512_maskz_loadu_ps(m, pad + i + r * wp + j),
                                      acc);
        _mm512_mask_storeu_ps(flat + i, m, acc);
    }
    for (int64_t r = 0; r < rows; r++)
        memcpy(y + (r0 + r) * ow, flat + r * wp, sizeof y[0] * (size_t)ow);
}

AVX512 void cs__dw512_plane3x3(float *restrict y, int64_t oh, int64_t ow, const float *restrict x,
                               int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                               const float *restrict k, float bias)
{
    __m512 kv[9];
    for (int i = 0; i < 9; i++) kv[i] = _mm512_set1_ps(k[i]);
    int64_t per_band = CS__DW512_PLANE_MAX / (ow + 2) - 2;
    for (int64_t r0 = 0; r0 < oh; r0 += per_band)
        band(y, r0, oh - r0 < per_band ? oh - r0 : per_band, ow, x, ih, iw, pt, pl, kv, bias);
}

AVX512 void cs__dw512_clamp(float *y, int64_t n, float lo, float hi)
{
    __m512 l = _mm512_set1_ps(lo), h = _mm512_set1_ps(hi);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        /* max(l, v) is v < lo ? lo : v, NaN and -0 kept; min(h, .) likewise: CS__CLAMP. */
        __m512 v = _mm512_min_ps(h, _mm512_max_ps(l, _mm512_maskz_loadu_ps(m, y + i)));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

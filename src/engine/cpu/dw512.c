/*
 * dw512.c - the AVX-512 loops of dw512.h for conv.c's depthwise kernel.
 *
 * conv.c's portable taps() is compiled for SSE2: 4 outputs a step at stride 1, and at
 * stride 2 the compiler gathers element by element. Here 16 outputs take a step: at
 * stride 1 each tap is one unaligned load, at stride 2 two loads of 16 inputs and one
 * permute that keeps the even ones. Row ends are masked loads and stores (AVX-512 masks
 * suppress faults on the lanes they leave out), so there is no scalar tail and nothing is
 * read past the row's last tap. The sums run in taps()'s order, with FMAs.
 */
#include "engine/cpu/dw512.h"

#include <immintrin.h>

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

/*
 * ktest.h - what the kernel unit tests share: float32 and float64 buffers read and written
 * as doubles, and seeded fills, so that one check runs on either type.
 */
#ifndef CS_ENGINE_KTEST_H
#define CS_ENGINE_KTEST_H

#include "capstan/engine.h"

#include <stdint.h>
#include <stdlib.h>

static inline double ktest_get(cs_dtype t, const void *p, int64_t i)
{
    return t == CS_DTYPE_FLOAT64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static inline void ktest_set(cs_dtype t, void *p, int64_t i, double v)
{
    if (t == CS_DTYPE_FLOAT64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* n seeded elements of type t (room for float64 either way; free() them): multiples of 1/4
 * in [-span/4, span/4], exact in float so that sums compare tightly, or with span 0
 * arbitrary values in [-1, 1). */
static inline void *ktest_filled(cs_dtype t, int64_t n, unsigned seed, int span)
{
    void *p = calloc((size_t)(n ? n : 1), 8);
    for (int64_t i = 0; p && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double v = span ? (double)((int)(seed >> 16) % (2 * span + 1) - span) / 4.0
                        : (double)(seed >> 8) / (1 << 23) - 1.0;
        ktest_set(t, p, i, v);
    }
    return p;
}

#endif

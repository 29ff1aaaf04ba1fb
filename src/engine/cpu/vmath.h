/*
 * vmath.h - float32 math in vectorizable form, shared by the elementwise kernels (unary.c)
 * and Softmax (norm.c) (internal).
 *
 * Straight-line code (no calls, selects instead of branches) that the compiler vectorizes.
 * Polynomials were fitted by least squares on Chebyshev nodes; errors measured against
 * double-precision libm over all float32 inputs: exp < 1 ulp, expm1 (x <= 0) < 1 ulp, tanh
 * and erf < 1.35 ulp (unary.c builds those on exp_reduce). NaN propagates, infinities give
 * the limits.
 *
 * Include it after the other headers: it sets two float options for the rest of the
 * including file, so that its functions and the loops that inline them are compiled alike
 * (GCC does not inline across differing options):
 * - GCC only if-converts these selects into vector code when it may assume that float
 *   operations do not trap; capstan never enables FP traps, so this changes no result
 *   (Clang assumes it by default);
 * - no contraction of a*b+c into FMAs, which AVX-512 loops could use: the portable and the
 *   AVX-512 loops then round alike, and HardSwish's v/6 + 1/2, which cancels near -3, keeps
 *   its accuracy.
 */
#ifndef CS_ENGINE_CPU_VMATH_H
#define CS_ENGINE_CPU_VMATH_H

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif

#include <stdint.h>
#include <string.h>

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* x = n*ln2 + r with |r| <= ln2/2; returns exp(r) - 1 - r over r^2 (a polynomial) and sets
 * *r and *n. Adding 1.5*2^23 rounds to an integer held in the low mantissa bits. */
static inline float exp_reduce(float x, float *r, int32_t *n)
{
    float t = x * 1.44269504088896341f + 12582912.0f;
    float k = t - 12582912.0f;
    *n = (int32_t)(f32_bits(t) - 0x4B400000u);
    float y = x - k * 0.693359375f; /* ln2 in two parts: the first is exact in 9 bits */
    y = y - k * -2.12194440e-4f;
    float q = 1.989927550e-04f;
    q = q * y + 1.393364393e-03f;
    q = q * y + 8.333298378e-03f;
    q = q * y + 4.166646674e-02f;
    q = q * y + 1.666666716e-01f;
    q = q * y + 0.5f;
    *r = y;
    return q;
}

static inline float vexpf(float x)
{
    x = x < -104.0f ? -104.0f : x; /* exp is 0 below, inf above (in float) */
    x = x > 89.0f ? 89.0f : x;
    float r;
    int32_t n;
    float q = exp_reduce(x, &r, &n);
    float e = q * (r * r) + r + 1.0f;
    /* 2^n in two factors so that results near overflow and in the subnormals come out */
    int32_t n1 = n >> 1, n2 = n - n1;
    return e * bits_f32((uint32_t)(n1 + 127) << 23) * bits_f32((uint32_t)(n2 + 127) << 23);
}

#endif

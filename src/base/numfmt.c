/*
 * numfmt.c - decimal text for numbers: float to "%.9g", integers, and strtod's reading.
 *
 * Printing a float: a float is m * 2^e with m < 2^24. Its 9 significant digits are
 * m * 2^e * 10^k rounded half to even, for the k that puts the result in [10^8, 10^9).
 * With unsigned 128-bit integers that product is exact for every float of at least 1e-23
 * (10^k stays below 2^104), so the digits are the correctly rounded ones glibc's printf
 * finds with its big numbers; smaller magnitudes, NaN and infinities go to snprintf.
 *
 * Reading: Clinger's fast path. A decimal with at most 19 significant digits whose
 * integer fits in 53 bits, scaled by an exact power of ten (10^0..10^22), is one IEEE
 * multiplication or division, hence correctly rounded, hence strtod's value. Anything
 * else (long mantissas, large exponents, hex, inf, nan, malformed text) goes to strtod.
 */
#include "base/numfmt.h"

#include "base/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

static u128 pow10_u128(int k) /* k in [0, 38] */
{
    static const uint64_t p[20] = {1ULL,
                                   10ULL,
                                   100ULL,
                                   1000ULL,
                                   10000ULL,
                                   100000ULL,
                                   1000000ULL,
                                   10000000ULL,
                                   100000000ULL,
                                   1000000000ULL,
                                   10000000000ULL,
                                   100000000000ULL,
                                   1000000000000ULL,
                                   10000000000000ULL,
                                   100000000000000ULL,
                                   1000000000000000ULL,
                                   10000000000000000ULL,
                                   100000000000000000ULL,
                                   1000000000000000000ULL,
                                   10000000000000000000ULL};
    return k < 20 ? p[k] : (u128)p[19] * p[k - 19];
}

/* floor(log10(m * 2^e)) within one: log10(2) ~ 0.30103, and m has 24 bits. */
static int decimal_exponent_guess(uint32_t m, int e)
{
    int bits = 31 - __builtin_clz(m) + e; /* floor(log2(value)) */
    return (int)((bits * 78913LL) >> 18); /* 78913 / 2^18 ~ log10(2), floors negatives too */
}

/* The 9-digit decimal significand of m * 2^e for decimal exponent x (value in
 * [10^x, 10^(x+1))), truncated, and whether the rest is below, at or above one half. */
static uint64_t digits_at(uint32_t m, int e, int x, int *half_cmp)
{
    int k = 8 - x;
    u128 q, r, half;
    if (k >= 0) {
        u128 n = (u128)m * pow10_u128(k);
        if (e >= 0) {
            *half_cmp = -1;
            return (uint64_t)(n << e);
        }
        q = n >> -e;
        r = n & (((u128)1 << -e) - 1);
        half = (u128)1 << (-e - 1);
    } else {
        u128 n = (u128)m << e, p = pow10_u128(-k);
        q = n / p;
        r = (n % p) * 2;
        half = p;
    }
    *half_cmp = r < half ? -1 : r > half;
    return (uint64_t)q;
}

static size_t put_uint(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return n;
}

size_t cs_numfmt_u64(char *buf, uint64_t v)
{
    return put_uint(buf, v);
}

size_t cs_numfmt_i64(char *buf, int64_t v)
{
    if (v >= 0) return put_uint(buf, (uint64_t)v);
    buf[0] = '-';
    return 1 + put_uint(buf + 1, 0 - (uint64_t)v);
}

size_t cs_numfmt_f32(char *buf, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint32_t biased = (bits >> 23) & 0xff, frac = bits & 0x7fffff;
    char *o = buf;
    if (bits >> 31) *o++ = '-';
    if (biased == 0 && frac == 0) {
        *o++ = '0';
        *o = 0;
        return (size_t)(o - buf);
    }
    if (biased == 0xff || (biased != 0 && biased < 51)) /* not finite, or below ~1e-23 */
        return (size_t)snprintf(buf, CS_NUMFMT_MAX, "%.9g", (double)v);
    uint32_t m = biased ? frac | 0x800000 : frac;
    int e = biased ? (int)biased - 150 : -149;
    if (!biased) /* subnormals are all below 1e-23 */
        return (size_t)snprintf(buf, CS_NUMFMT_MAX, "%.9g", (double)v);

    int x = decimal_exponent_guess(m, e), cmp;
    uint64_t d = digits_at(m, e, x, &cmp);
    while (d >= 1000000000u) d = digits_at(m, e, ++x, &cmp);
    while (d < 100000000u) d = digits_at(m, e, --x, &cmp);
    if (cmp > 0 || (cmp == 0 && (d & 1))) d++;
    if (d == 1000000000u) d = 100000000u, x++;

    char dig[10];
    put_uint(dig, d);
    int last = 8; /* the last digit kept: %g drops trailing zeros */
    while (last > 0 && dig[last] == '0') last--;
    if (x < -4 || x >= 9) { /* d.ddde+XX */
        *o++ = dig[0];
        if (last > 0) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)last);
            o += last;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax < 10) *o++ = '0';
        o += put_uint(o, (uint64_t)ax);
    } else if (x >= 0) { /* ddd.ddd */
        memcpy(o, dig, (size_t)x + 1);
        o += x + 1;
        if (last > x) {
            *o++ = '.';
            memcpy(o, dig + x + 1, (size_t)(last - x));
            o += last - x;
        }
    } else { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > x; i--) *o++ = '0';
        memcpy(o, dig, (size_t)last + 1);
        o += last + 1;
    }
    *o = 0;
    return (size_t)(o - buf);
}

/* strtod on a copy, so that it cannot read past end. */
static int parse_slow(const char *p, const char *end, double *out)
{
    size_t n = (size_t)(end - p);
    char small[128], *s = n < sizeof small ? small : cs_malloc(n + 1);
    if (!s) return -1;
    memcpy(s, p, n);
    s[n] = 0;
    char *stop;
    *out = strtod(s, &stop);
    int rc = n > 0 && stop == s + n ? 0 : -1;
    if (s != small) cs_free(s);
    return rc;
}

int cs_numfmt_parse_f64(const char *p, const char *end, double *out)
{
    static const double exact10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *s = p;
    bool neg = false;
    if (s < end && (*s == '-' || *s == '+')) neg = *s++ == '-';
    uint64_t mant = 0;
    int sig = 0, scale = 0, ndigits = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++, ndigits++) {
        if (mant || *s != '0') sig++;
        mant = mant * 10 + (uint64_t)(*s - '0');
        if (sig > 19) return parse_slow(p, end, out);
    }
    if (s < end && *s == '.') {
        for (s++; s < end && *s >= '0' && *s <= '9'; s++, ndigits++, scale--) {
            if (mant || *s != '0') sig++;
            mant = mant * 10 + (uint64_t)(*s - '0');
            if (sig > 19) return parse_slow(p, end, out);
        }
    }
    if (ndigits == 0) return parse_slow(p, end, out);
    if (s < end && (*s == 'e' || *s == 'E')) {
        const char *e = s + 1;
        bool eneg = false;
        if (e < end && (*e == '-' || *e == '+')) eneg = *e++ == '-';
        if (e == end || *e < '0' || *e > '9') return parse_slow(p, end, out);
        int ev = 0;
        for (; e < end && *e >= '0' && *e <= '9'; e++)
            if (ev < 100000) ev = ev * 10 + (*e - '0');
        scale += eneg ? -ev : ev;
        s = e;
    }
    if (s != end) return parse_slow(p, end, out);
    double v;
    if (mant == 0) {
        v = 0;
    } else if (mant > (1ULL << 53)) {
        return parse_slow(p, end, out);
    } else if (scale >= 0 && scale <= 22) {
        v = (double)mant * exact10[scale];
    } else if (scale < 0 && scale >= -22) {
        v = (double)mant / exact10[-scale];
    } else {
        return parse_slow(p, end, out);
    }
    *out = neg ? -v : v;
    return 0;
}

/*
 * quantity.c - Kubernetes resource quantities: parse, canonical format, compare.
 *
 * The grammar is Kubernetes' (k8s.io/apimachinery/pkg/api/resource): an optional sign, a
 * decimal number, then one suffix: binary (Ki Mi Gi Ti Pi Ei), decimal SI (n u m "" k M G T
 * P E) or a decimal exponent (e3, E-2). The value is kept in milli-units; digits finer than
 * that round away from zero, as Kubernetes' RoundUp does. The exact value is computed on
 * a decimal digit array, so "0.1Ki" (102.4, rounded to 102400m) needs no floating point;
 * the array bounds the input to CS_QTY_MAX_LEN characters, far above any real quantity.
 *
 * Formatting follows Kubernetes' canonical form: the largest suffix that leaves an integer
 * mantissa, in the format the quantity was written in; binary values below 1024 or with
 * a fraction print as decimal SI, as Kubernetes does.
 */
#include "devices/quantity.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define CS_QTY_MAX_LEN 128

/* Decimal SI suffixes by exponent/3 + 3 (n at -9 ... E at 18). */
static const char *const dec_suffix[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
static const char *const bin_suffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

/* Reads the suffix at s (to the end of the string) into a decimal exponent and a power of
 * 1024; returns false for anything Kubernetes would not accept. */
static bool parse_suffix(const char *s, int *exp10, int *pow1024, cs_qty_format *fmt)
{
    *exp10 = 0;
    *pow1024 = 0;
    *fmt = CS_QTY_DECIMAL_SI;
    if (!*s) return true;
    for (int i = 1; i < 7; i++)
        if (!strcmp(s, bin_suffix[i])) {
            *pow1024 = i;
            *fmt = CS_QTY_BINARY_SI;
            return true;
        }
    for (int i = 0; i < 10; i++)
        if (i != 3 && !strcmp(s, dec_suffix[i])) {
            *exp10 = (i - 3) * 3;
            return true;
        }
    /* "E" alone is exa (handled above); e/E followed by a signed integer is an exponent. */
    if (*s != 'e' && *s != 'E') return false;
    s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!*s) return false;
    int e = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (e < 100000) e = e * 10 + (*s - '0'); /* clamped: anything this big is out of range */
    }
    *exp10 = neg ? -e : e;
    *fmt = CS_QTY_DECIMAL_EXP;
    return true;
}

int cs__digits_times_1024(unsigned char *dig, int n, int times)
{
    for (int k = 0; k < times && n > 0; k++) {
        unsigned carry = 0;
        for (int i = n - 1; i >= 0; i--) {
            unsigned v = dig[i] * 1024u + carry;
            dig[i] = (unsigned char)(v % 10);
            carry = v / 10;
        }
        int extra = 0;
        for (unsigned c = carry; c; c /= 10) extra++;
        memmove(dig + extra, dig, (size_t)n);
        for (int i = extra - 1; i >= 0; i--, carry /= 10) dig[i] = (unsigned char)(carry % 10);
        n += extra;
    }
    return n;
}

cs_status cs_quantity_parse(const char *s, cs_quantity *out, cs_error *err)
{
    size_t len = strlen(s);
    if (len == 0) return cs_error_set(err, CS_ERR_INVALID, "empty quantity");
    if (len > CS_QTY_MAX_LEN)
        return cs_error_set(err, CS_ERR_INVALID, "quantity longer than %d characters",
                            CS_QTY_MAX_LEN);
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;

    /* Significant digits, most significant first; the value is digits * 10^exp10. Up to
     * 6 multiplications by 1024 add at most 4 digits each. */
    unsigned char dig[CS_QTY_MAX_LEN + 32];
    int n = 0, exp10 = 0, ndigits = 0;
    bool dot = false;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            if (dot) return cs_error_set(err, CS_ERR_INVALID, "'%s': more than one '.'", s);
            dot = true;
            continue;
        }
        ndigits++;
        if (dot) exp10--;
        if (n == 0 && *p == '0') continue; /* leading zeros carry no value */
        dig[n++] = (unsigned char)(*p - '0');
    }
    if (ndigits == 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': a quantity starts with a number, e.g. \"40Gi\" or \"1.5\"", s);
    int e_suffix = 0, pow1024 = 0;
    cs_qty_format fmt = CS_QTY_DECIMAL_SI;
    if (!parse_suffix(p, &e_suffix, &pow1024, &fmt))
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': unknown suffix '%s' (use n u m k M G T P E, Ki Mi Gi Ti Pi "
                            "Ei or an exponent such as e3)",
                            s, p);
    exp10 += e_suffix + 3; /* milli-units */

    n = cs__digits_times_1024(dig, n, pow1024);

    /* Integer part: the first n + exp10 digits (all of them and exp10 zeros when exp10 >= 0);
     * any non-zero digit after it rounds the magnitude up. */
    uint64_t mag = 0;
    const uint64_t max = (uint64_t)INT64_MAX + (neg ? 1 : 0);
    bool overflow = n > 0 && n + exp10 > 19, sticky = false;
    for (int i = 0; i < n && !overflow; i++) {
        if (i >= n + exp10) {
            sticky |= dig[i] != 0;
            continue;
        }
        overflow = mag > (max - dig[i]) / 10;
        mag = mag * 10 + dig[i];
    }
    for (int i = n; i < n + exp10 && mag && !overflow; i++) {
        overflow = mag > max / 10;
        mag *= 10;
    }
    if (sticky && !overflow) overflow = ++mag > max;
    if (overflow)
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': out of range (quantities are limited to about 9.2e15, 8Pi)", s);
    out->milli = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    out->format = fmt;
    return CS_OK;
}

int cs_quantity_format(cs_quantity q, char *buf, size_t cap)
{
    /* Magnitude in unsigned arithmetic so INT64_MIN has one. */
    bool neg = q.milli < 0;
    uint64_t mag = neg ? 0 - (uint64_t)q.milli : (uint64_t)q.milli;
    const char *sign = neg ? "-" : "";
    if (mag == 0) return snprintf(buf, cap, "0");
    if (q.format == CS_QTY_BINARY_SI && mag >= 1024000 && mag % 1000 == 0) {
        uint64_t units = mag / 1000;
        int k = 0;
        while (k < 6 && units % 1024 == 0) units /= 1024, k++;
        return snprintf(buf, cap, "%s%llu%s", sign, (unsigned long long)units, bin_suffix[k]);
    }
    int exp = -3;
    while (exp < 18 && mag % 1000 == 0) mag /= 1000, exp += 3;
    if (q.format == CS_QTY_DECIMAL_EXP) {
        if (exp == 0) return snprintf(buf, cap, "%s%llu", sign, (unsigned long long)mag);
        return snprintf(buf, cap, "%s%llue%d", sign, (unsigned long long)mag, exp);
    }
    return snprintf(buf, cap, "%s%llu%s", sign, (unsigned long long)mag, dec_suffix[exp / 3 + 3]);
}

int cs_quantity_cmp(cs_quantity a, cs_quantity b)
{
    return (a.milli > b.milli) - (a.milli < b.milli);
}

/*
 * cel_quantity.c - quantities inside CEL: Kubernetes' arbitrary-precision decimals, kept
 * as a 128-bit mantissa and a decimal exponent.
 *
 * Kubernetes' CEL quantity library works on resource.Quantity, which holds any decimal
 * at nano precision (values finer than 1n round up, away from zero); "1E30" and
 * "9999999999999999999999999999999999999G" are valid quantities there, far beyond the
 * int64 milli-units of cs_quantity (quantity.h) that device capacities use. Here a value
 * is sign * mant * 10^exp with mant below 10^38 and exp >= -9, normalised (no trailing
 * zeros in mant, zero as {0, 0, false}) so that equal values have equal fields. 38
 * significant digits cover every quantity a selector writes; a value or a sum that needs
 * more is an error that says so, never a wrong answer.
 *
 * The grammar and its two errors follow parseQuantityString and ParseQuantity in
 * k8s.io/apimachinery/pkg/api/resource: text outside the pattern fails with "quantities
 * must match the regular expression ...", a suffix the pattern allows but Kubernetes does
 * not know ("10Mm") with "unable to parse quantity's suffix". Binary-SI values above
 * 2^63-1 are capped there, as Kubernetes does. No allocation; O(length) parsing.
 */
#include "devices/cel_int.h"
#include "devices/quantity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QTY_MAX_LEN    128     /* characters of quantity text */
#define QTY_MAX_DIGITS 38      /* significant decimal digits, all below 2^128 */
#define QTY_MAX_EXP    1000000 /* |exponent|: beyond it a value is refused as out of range */

#define QTY_PATTERN \
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

static cs__u128 pow10_u128(int k)
{
    cs__u128 v = 1;
    while (k-- > 0) v *= 10;
    return v;
}

static int ndigits(cs__u128 v)
{
    int n = 0;
    for (; v; v /= 10) n++;
    return n;
}

/* Strips trailing zeros into the exponent; zero has one representation. */
static cs__cel_qty normalise(cs__u128 mant, int64_t exp, bool neg)
{
    if (mant == 0) return (cs__cel_qty){0, 0, false};
    while (mant % 10 == 0) mant /= 10, exp++;
    return (cs__cel_qty){mant, (int32_t)exp, neg};
}

/* Reads a Kubernetes suffix: "", n u m k M G T P E, Ki ... Ei or e/E and a signed integer. */
static bool parse_suffix(const char *s, size_t n, int64_t *exp10, int *pow1024, bool *binary)
{
    static const char *const dec[] = {"n", "u", "m", "k", "M", "G", "T", "P", "E"};
    static const int dec_exp[] = {-9, -6, -3, 3, 6, 9, 12, 15, 18};
    static const char *const bin[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    *exp10 = 0;
    *pow1024 = 0;
    *binary = false;
    if (n == 0) return true;
    for (int i = 0; i < 6; i++)
        if (n == 2 && !memcmp(s, bin[i], 2)) return *pow1024 = i + 1, *binary = true, true;
    for (int i = 0; i < 9; i++)
        if (n == 1 && s[0] == dec[i][0]) return *exp10 = dec_exp[i], true;
    if (n < 2 || (s[0] != 'e' && s[0] != 'E')) return false;
    size_t i = 1;
    bool neg = s[i] == '-';
    if (s[i] == '-' || s[i] == '+') i++;
    if (i == n) return false;
    int64_t e = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        if (e <= QTY_MAX_EXP) e = e * 10 + (s[i] - '0'); /* clamped: refused below */
    }
    *exp10 = neg ? -e : e;
    return true;
}

cs_status cs__cel_qty_parse(const char *s, size_t len, cs__cel_qty *out, cs_error *err)
{
    if (len > QTY_MAX_LEN)
        return cs_error_set(err, CS_ERR_INVALID, "quantity longer than %d characters", QTY_MAX_LEN);
    if (len == 0 || memchr(s, '\0', len))
        return cs_error_set(err, CS_ERR_INVALID, "'%.*s': %s", (int)len, s, QTY_PATTERN);
    size_t i = 0;
    bool neg = s[0] == '-';
    if (s[0] == '-' || s[0] == '+') i++;
    size_t num = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    size_t num_end = i, den = i, den_end = i;
    if (i < len && s[i] == '.') {
        den = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        den_end = i;
    }
    size_t suf = i;
    while (i < len && strchr("eEinumkKMGTP", s[i])) i++;
    if (i < len && (s[i] == '-' || s[i] == '+')) i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    if (i != len) return cs_error_set(err, CS_ERR_INVALID, "'%s': %s", s, QTY_PATTERN);
    if (num == num_end && den == den_end)
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': unable to parse numeric part of quantity (a quantity starts "
                            "with a number, e.g. \"40Gi\" or \"1.5\")",
                            s);
    int64_t e10;
    int pow1024;
    bool binary;
    if (!parse_suffix(s + suf, len - suf, &e10, &pow1024, &binary))
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': unable to parse quantity's suffix '%s' (use n u m k M G T P E, "
                            "Ki Mi Gi Ti Pi Ei or an exponent such as e3)",
                            s, s + suf);

    /* The value is the digits (most significant first) times 10^e10. Up to 6
     * multiplications by 1024 add at most 4 digits each. */
    unsigned char dig[QTY_MAX_LEN + 32];
    int n = 0;
    for (size_t k = num; k < den_end; k++) {
        if (s[k] == '.') continue;
        if (k >= den) e10--;
        if (n == 0 && s[k] == '0') continue;
        dig[n++] = (unsigned char)(s[k] - '0');
    }
    n = cs__digits_times_1024(dig, n, pow1024);
    if (n == 0) return *out = (cs__cel_qty){0, 0, false}, CS_OK;

    /* Round up (away from zero) to nano precision, as ParseQuantity's RoundUp does. */
    if (e10 < -9) {
        int64_t drop = -9 - e10;
        bool sticky = false;
        if (drop >= n) {
            n = 0, sticky = true;
        } else {
            for (int j = n - (int)drop; j < n; j++) sticky |= dig[j] != 0;
            n -= (int)drop;
        }
        e10 = -9;
        if (sticky) {
            int j = n - 1;
            for (; j >= 0 && dig[j] == 9; j--) dig[j] = 0;
            if (j >= 0)
                dig[j]++;
            else {
                memmove(dig + 1, dig, (size_t)n);
                dig[0] = 1;
                n++;
            }
        }
    }
    while (n > 0 && dig[n - 1] == 0) n--, e10++;
    if (n > QTY_MAX_DIGITS)
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%s': out of range (CEL quantities keep at most %d significant "
                            "digits at nano precision)",
                            s, QTY_MAX_DIGITS);
    if (e10 > QTY_MAX_EXP || e10 < -QTY_MAX_EXP)
        return cs_error_set(err, CS_ERR_INVALID, "'%s': out of range (exponent beyond %d)", s,
                            QTY_MAX_EXP);
    cs__u128 mant = 0;
    for (int j = 0; j < n; j++) mant = mant * 10 + dig[j];
    cs__cel_qty q = normalise(mant, e10, neg);

    /* Kubernetes caps binary-SI values at 2^63-1 units (its maxAllowed). */
    const cs__u128 cap = (cs__u128)INT64_MAX;
    bool over = false;
    if (binary && q.exp >= 0)
        over = n + q.exp > 19 || mant * pow10_u128(q.exp) > cap;
    else if (binary) {
        cs__u128 p = pow10_u128(-q.exp), whole = mant / p;
        over = whole > cap || (whole == cap && mant % p);
    }
    if (over) q = normalise(cap, 0, neg);
    *out = q;
    return CS_OK;
}

cs__cel_qty cs__cel_qty_from(cs_quantity q)
{
    uint64_t mag = q.milli < 0 ? 0 - (uint64_t)q.milli : (uint64_t)q.milli;
    return normalise(mag, -3, q.milli < 0);
}

int cs__cel_qty_sign(const cs__cel_qty *q)
{
    return q->mant == 0 ? 0 : q->neg ? -1 : 1;
}

/* Both magnitudes at the smaller exponent; false when one needs more than 128 bits. */
static bool align(const cs__cel_qty *a, const cs__cel_qty *b, cs__u128 *x, cs__u128 *y)
{
    int32_t e = a->exp < b->exp ? a->exp : b->exp;
    int64_t da = (int64_t)a->exp - e, db = (int64_t)b->exp - e;
    if (da > QTY_MAX_DIGITS || db > QTY_MAX_DIGITS) return false;
    return !__builtin_mul_overflow(a->mant, pow10_u128((int)da), x) &&
           !__builtin_mul_overflow(b->mant, pow10_u128((int)db), y);
}

static int cmp_mag(const cs__cel_qty *a, const cs__cel_qty *b)
{
    if (a->mant == 0 || b->mant == 0) return (a->mant != 0) - (b->mant != 0);
    int64_t oa = (int64_t)ndigits(a->mant) + a->exp, ob = (int64_t)ndigits(b->mant) + b->exp;
    if (oa != ob) return oa < ob ? -1 : 1;
    /* Same order of magnitude: aligned, neither has more than 38 digits. */
    cs__u128 x, y;
    if (!align(a, b, &x, &y)) return 0; /* unreachable for normalised values */
    return (x > y) - (x < y);
}

int cs__cel_qty_cmp(const cs__cel_qty *a, const cs__cel_qty *b)
{
    int sa = cs__cel_qty_sign(a), sb = cs__cel_qty_sign(b);
    if (sa != sb) return sa < sb ? -1 : 1;
    int m = cmp_mag(a, b);
    return sa < 0 ? -m : m;
}

bool cs__cel_qty_add(const cs__cel_qty *a, const cs__cel_qty *b, bool sub, cs__cel_qty *out)
{
    cs__cel_qty y = *b;
    if (sub && y.mant) y.neg = !y.neg;
    if (a->mant == 0) return *out = y, true;
    if (y.mant == 0) return *out = *a, true;
    cs__u128 p, q, r;
    if (!align(a, &y, &p, &q)) return false;
    int32_t e = a->exp < y.exp ? a->exp : y.exp;
    bool neg = a->neg;
    if (a->neg == y.neg) {
        if (__builtin_add_overflow(p, q, &r)) return false;
    } else if (p >= q)
        r = p - q;
    else
        r = q - p, neg = y.neg;
    *out = normalise(r, e, neg);
    return ndigits(out->mant) <= QTY_MAX_DIGITS;
}

cs__cel_qty cs__cel_qty_of_int(int64_t i)
{
    uint64_t mag = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    return normalise(mag, 0, i < 0);
}

bool cs__cel_qty_int64(const cs__cel_qty *q, int64_t *out)
{
    if (q->mant == 0) return *out = 0, true;
    if (q->exp < 0 || ndigits(q->mant) + (int64_t)q->exp > 19) return false;
    cs__u128 v = q->mant * pow10_u128(q->exp);
    if (v > (cs__u128)INT64_MAX + (q->neg ? 1 : 0)) return false;
    *out = q->neg ? (int64_t)(0 - (uint64_t)v) : (int64_t)v;
    return true;
}

/* The mantissa's digits, most significant first, into buf (at least 40 bytes). */
static int mant_text(cs__u128 v, char *buf)
{
    char tmp[48];
    int n = 0;
    do tmp[n++] = (char)('0' + (int)(v % 10)), v /= 10;
    while (v);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

void cs__cel_qty_text(const cs__cel_qty *q, char *buf, size_t cap)
{
    char d[48];
    int n = mant_text(q->mant, d);
    const char *sign = q->neg ? "-" : "";
    if (q->exp >= 0 && n + q->exp <= 48)
        snprintf(buf, cap, "%s%s%.*s", sign, d, (int)q->exp,
                 "000000000000000000000000000000000000000000000000");
    else if (q->exp >= 0)
        snprintf(buf, cap, "%s%se%d", sign, d, (int)q->exp);
    else if (n > -q->exp) /* a point inside the digits */
        snprintf(buf, cap, "%s%.*s.%s", sign, n + q->exp, d, d + n + q->exp);
    else /* 0.000ddd: exp >= -9 */
        snprintf(buf, cap, "%s0.%.*s%s", sign, -q->exp - n, "000000000", d);
}

double cs__cel_qty_double(const cs__cel_qty *q)
{
    char d[48], text[80];
    mant_text(q->mant, d);
    snprintf(text, sizeof text, "%s%se%d", q->neg ? "-" : "", d, (int)q->exp);
    return strtod(text, NULL); /* correctly rounded; beyond the double range: +-HUGE_VAL */
}

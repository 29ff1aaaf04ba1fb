/*
 * semver.c - semantic versions (semver.org 2.0.0) for CEL's semver() and version attributes.
 *
 * Parsing is strict like blang/semver's Parse, which Kubernetes' CEL semver library uses:
 * MAJOR.MINOR.PATCH without leading zeros, an optional pre-release and build metadata.
 * The normalising form (semver("v1.2", true)) first strips a leading 'v', adds missing
 * minor and patch numbers and drops leading zeros, as Kubernetes' normalize option does.
 * Precedence ignores build metadata. No allocation; O(length).
 */
#include "devices/cel_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool is_ident_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return n > 0;
}

/* Checks a dot-separated identifier list (pre-release when numeric_rule, else build). */
static bool valid_idents(const char *s, size_t n, bool numeric_rule)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if (!is_ident_char(s[i])) return false;
            continue;
        }
        size_t len = i - start;
        if (len == 0) return false;
        if (numeric_rule && len > 1 && s[start] == '0' && all_digits(s + start, len)) return false;
        start = i + 1;
    }
    return true;
}

static bool parse_num(const char *s, size_t n, bool lenient, int64_t *out)
{
    if (!all_digits(s, n)) return false;
    if (lenient)
        while (n > 1 && *s == '0') s++, n--;
    if (n > 1 && *s == '0') return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (v > (INT64_MAX - (s[i] - '0')) / 10) return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

cs_status cs__semver_parse(const char *s, size_t n, bool normalize, cs_semver *out, cs_error *err)
{
    const char *p = s, *end = s + n;
    if (normalize && p < end && p[0] == 'v') p++;
    /* The core ends at the first '-' or '+'. */
    const char *core_end = p;
    while (core_end < end && *core_end != '-' && *core_end != '+') core_end++;
    size_t dots = 0;
    for (const char *q = p; q < end; q++) dots += *q == '.';
    if (dots < 2 && !normalize) /* blang/semver's words, which Kubernetes' tests match */
        return cs_error_set(err, CS_ERR_INVALID,
                            "'%.*s' is not a semantic version: No Major.Minor.Patch elements "
                            "found (e.g. \"1.2.3\")",
                            (int)(n > 64 ? 64 : n), s);
    int64_t part[3] = {0, 0, 0};
    int nparts = 0;
    for (const char *q = p; nparts < 3;) {
        const char *dot = memchr(q, '.', (size_t)(core_end - q));
        const char *stop = dot ? dot : core_end;
        if (!parse_num(q, (size_t)(stop - q), normalize, &part[nparts])) goto bad;
        nparts++;
        if (!dot) break;
        q = dot + 1;
        if (nparts == 3) goto bad; /* a fourth component */
    }
    if (nparts < 3 && !normalize) goto bad;
    memset(out, 0, sizeof *out);
    out->major = part[0];
    out->minor = part[1];
    out->patch = part[2];
    p = core_end;
    if (p < end && *p == '-') {
        const char *pre = ++p;
        while (p < end && *p != '+') p++;
        size_t len = (size_t)(p - pre);
        if (!valid_idents(pre, len, true)) goto bad;
        if (len >= sizeof out->pre)
            return cs_error_set(err, CS_ERR_INVALID, "version pre-release longer than %zu bytes",
                                sizeof out->pre - 1);
        memcpy(out->pre, pre, len);
    }
    if (p < end && !valid_idents(p + 1, (size_t)(end - p - 1), false)) goto bad;
    return CS_OK;
bad:
    return cs_error_set(err, CS_ERR_INVALID,
                        "'%.*s' is not a semantic version (MAJOR.MINOR.PATCH, e.g. \"1.2.3\")",
                        (int)(n > 64 ? 64 : n), s);
}

cs_status cs_semver_parse(const char *s, cs_semver *out, cs_error *err)
{
    return cs__semver_parse(s, strlen(s), false, out, err);
}

/* Compares one pre-release identifier of each: numbers numerically (by length first: no
 * leading zeros), numbers below words, words in ASCII order. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool na = all_digits(a, an), nb = all_digits(b, bn);
    if (na != nb) return na ? -1 : 1;
    if (na && an != bn) return an < bn ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c < 0 ? -1 : 1;
    return (an > bn) - (an < bn);
}

int cs_semver_cmp(const cs_semver *a, const cs_semver *b)
{
    if (a->major != b->major) return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor) return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch) return a->patch < b->patch ? -1 : 1;
    /* A release ranks above its pre-releases. */
    if (!a->pre[0] || !b->pre[0]) return (!a->pre[0]) - (!b->pre[0]);
    const char *pa = a->pre, *pb = b->pre;
    for (;;) {
        size_t la = strcspn(pa, "."), lb = strcspn(pb, ".");
        int c = cmp_ident(pa, la, pb, lb);
        if (c) return c;
        pa += la;
        pb += lb;
        if (!*pa || !*pb) return (*pa != 0) - (*pb != 0);
        pa++, pb++;
    }
}

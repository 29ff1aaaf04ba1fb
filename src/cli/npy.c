/*
 * npy.c - reads and writes NumPy .npy files (format: numpy.lib.format); see npy.h.
 *
 * A file is a magic string, a version, a header length (2 bytes in 1.0, 4 in 2.0/3.0), a
 * Python dict literal - {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } -
 * padded with spaces and a newline, then the raw elements. The dict is parsed by a small
 * strict scanner rather than anything resembling Python; one table maps dtypes both ways.
 */
#include "cli/npy.h"

#include "base/alloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

static const char magic[6] = "\x93NUMPY";

static const struct {
    cs_dtype dtype;
    char kind; /* NumPy's type character: f, i, u, b */
    int size;
} types[] = {
    {CS_DTYPE_FLOAT16, 'f', 2}, {CS_DTYPE_FLOAT32, 'f', 4}, {CS_DTYPE_FLOAT64, 'f', 8},
    {CS_DTYPE_INT8, 'i', 1},    {CS_DTYPE_INT16, 'i', 2},   {CS_DTYPE_INT32, 'i', 4},
    {CS_DTYPE_INT64, 'i', 8},   {CS_DTYPE_UINT8, 'u', 1},   {CS_DTYPE_UINT16, 'u', 2},
    {CS_DTYPE_UINT32, 'u', 4},  {CS_DTYPE_UINT64, 'u', 8},  {CS_DTYPE_BOOL, 'b', 1},
};
#define N_TYPES (sizeof types / sizeof types[0])

/* --- header scanner ------------------------------------------------------------------- */

typedef struct scanner {
    const char *p, *end;
} scanner;

static void skip_space(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n')) s->p++;
}

/* Consumes c (after spaces) when it is next; returns whether it was. */
static int accept(scanner *s, char c)
{
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes, copied into out (cap bytes). */
static int scan_string(scanner *s, char *out, size_t cap)
{
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) return 0;
    char q = *s->p++;
    size_t n = 0;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *s->p++;
    }
    if (s->p >= s->end) return 0;
    s->p++;
    out[n] = '\0';
    return 1;
}

static int scan_word(scanner *s, const char *w)
{
    skip_space(s);
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return 0;
    s->p += n;
    return 1;
}

/* A shape tuple: (), (3,), (2, 3) - with an optional trailing comma. */
static int scan_shape(scanner *s, cs_tensor *t)
{
    if (!accept(s, '(')) return 0;
    t->rank = 0;
    while (!accept(s, ')')) {
        skip_space(s);
        int64_t v = 0;
        int digits = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return 0;
            v = v * 10 + (*s->p++ - '0');
            digits++;
        }
        if (s->p < s->end && *s->p == 'L') s->p++; /* Python 2 longs */
        if (!digits || t->rank == CS_MAX_RANK) return 0;
        t->dims[t->rank++] = v;
        if (!accept(s, ',')) {
            if (!accept(s, ')')) return 0;
            break;
        }
    }
    return 1;
}

static cs_status parse_descr(const char *descr, cs_tensor *t, cs_error *err)
{
    char order = descr[0];
    const char *code = descr + (order == '<' || order == '>' || order == '|' || order == '=');
    char kind = code[0];
    char *end = "";
    long size = strlen(code) >= 2 ? strtol(code + 1, &end, 10) : 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        if (types[i].kind != kind || types[i].size != size || *end) continue;
        if (order == '>' && size > 1)
            return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                "big-endian data ('%s') is not supported; convert with "
                                "a.astype(a.dtype.newbyteorder('<'))",
                                descr);
        t->dtype = types[i].dtype;
        return CS_OK;
    }
    return cs_error_set(err, CS_ERR_UNSUPPORTED,
                        "unsupported dtype '%s' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)",
                        descr);
}

/* Parses the header dict into t (dtype and shape). */
static cs_status parse_header(const char *h, size_t len, cs_tensor *t, cs_error *err)
{
    scanner s = {h, h + len};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    char key[32], descr[32];
    if (!accept(&s, '{')) goto bad;
    while (!accept(&s, '}')) {
        if (!scan_string(&s, key, sizeof key) || !accept(&s, ':')) goto bad;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            if (!scan_string(&s, descr, sizeof descr))
                return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                    "unsupported dtype (structured or too long a 'descr'); "
                                    "supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1");
            seen_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            if (scan_word(&s, "True"))
                return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                    "Fortran-order arrays are not supported; save "
                                    "np.ascontiguousarray(a) instead");
            if (!scan_word(&s, "False")) goto bad;
            seen_order = 1;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            if (!scan_shape(&s, t))
                return cs_error_set(err, CS_ERR_PARSE,
                                    "bad 'shape' in header (at most %d non-negative dims)",
                                    CS_MAX_RANK);
            seen_shape = 1;
        } else {
            return cs_error_set(err, CS_ERR_PARSE, "unexpected or repeated key '%s' in header",
                                key);
        }
        if (!accept(&s, ',')) {
            if (!accept(&s, '}')) goto bad;
            break;
        }
    }
    skip_space(&s);
    if (s.p != s.end) goto bad;
    if (!seen_descr || !seen_order || !seen_shape)
        return cs_error_set(err, CS_ERR_PARSE,
                            "header lacks one of 'descr', 'fortran_order', 'shape'");
    return parse_descr(descr, t, err);
bad:
    return cs_error_set(err, CS_ERR_PARSE, "malformed header dict near offset %zu",
                        (size_t)(s.p - h));
}

cs_status cs_npy_decode(const void *buf, size_t len, cs_tensor *t, cs_error *err)
{
    const unsigned char *b = buf;
    memset(t, 0, sizeof *t);
    if (len < 10 || memcmp(b, magic, sizeof magic) != 0)
        return cs_error_set(err, CS_ERR_PARSE, "not a .npy file (no \\x93NUMPY magic)");
    int major = b[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return cs_error_set(err, CS_ERR_PARSE, "truncated header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "format version %d.%d is not supported (1.0, 2.0, 3.0 are)", major,
                            b[7]);
    }
    if (hlen > len - hstart)
        return cs_error_set(err, CS_ERR_PARSE, "truncated header: %zu bytes declared, %zu present",
                            hlen, len - hstart);
    cs_status rc = parse_header((const char *)b + hstart, hlen, t, err);
    if (rc != CS_OK) return rc;

    size_t esize = cs_dtype_size(t->dtype), nbytes = esize;
    for (int i = 0; i < t->rank; i++) {
        size_t d = (size_t)t->dims[i];
        if (d && nbytes > SIZE_MAX / d)
            return cs_error_set(err, CS_ERR_LIMIT, "shape is too large");
        nbytes *= d;
    }
    size_t have = len - hstart - hlen;
    if (have < nbytes)
        return cs_error_set(err, CS_ERR_PARSE,
                            "truncated data: shape needs %zu bytes, file has %zu", nbytes, have);
    if (have > nbytes)
        return cs_error_set(err, CS_ERR_PARSE, "%zu unexpected bytes after the array data",
                            have - nbytes);
    t->data = cs_malloc(nbytes);
    if (!t->data) return cs_error_set(err, CS_ERR_NOMEM, "out of memory for %zu bytes", nbytes);
    memcpy(t->data, b + hstart + hlen, nbytes);
    return CS_OK;
}

cs_status cs_npy_load(const char *path, cs_tensor *t, cs_error *err)
{
    cs_status rc = CS_ERR_IO;
    unsigned char *buf = NULL;
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return cs_error_set(err, CS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cs_error_set(err, CS_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = cs_malloc(len);
    if (!buf) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory for %zu bytes", path, len);
        goto out;
    }
    if (fread(buf, 1, len, f) != len) {
        rc = cs_error_set(err, CS_ERR_IO, "%s: read failed", path);
        goto out;
    }
    rc = cs_npy_decode(buf, len, t, err);
    if (rc != CS_OK) cs_error_prefix(err, "%s: ", path);
out:
    cs_free(buf);
    fclose(f);
    return rc;
}

cs_status cs_npy_save(const char *path, const cs_tensor *t, cs_error *err)
{
    size_t i = 0;
    while (i < N_TYPES && types[i].dtype != t->dtype) i++;
    if (i == N_TYPES)
        return cs_error_set(err, CS_ERR_UNSUPPORTED, "%s: type %s cannot be stored in .npy", path,
                            cs_dtype_name(t->dtype));
    /* Header: magic, version 1.0, length, dict padded so that the data starts at a
     * multiple of 64 bytes, as NumPy writes it. */
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': (",
                     types[i].size == 1 ? '|' : '<', types[i].kind, types[i].size);
    for (int d = 0; d < t->rank; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->dims[d],
                      d + 1 < t->rank ? " " : "");
    if (t->rank > 1) n--; /* (2, 3) but (3,) */
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1, padded = (total + 63) / 64 * 64;
    unsigned char head[256 + 64 + 10];
    memcpy(head, magic, sizeof magic);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)((padded - 10) & 0xff);
    head[9] = (unsigned char)((padded - 10) >> 8);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', padded - total);
    head[padded - 1] = '\n';

    size_t nbytes = (size_t)cs_tensor_numel(t) * (size_t)types[i].size;
    FILE *f = fopen(path, "wb");
    if (!f) return cs_error_set(err, CS_ERR_IO, "%s: %s", path, strerror(errno));
    int ok = fwrite(head, 1, padded, f) == padded &&
             (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return cs_error_set(err, CS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return CS_OK;
}

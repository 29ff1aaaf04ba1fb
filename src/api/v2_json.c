/*
 * v2_json.c - the v2 inference request and response in JSON.
 *
 * jansson would build a node per tensor element (tens of bytes each), so a 64 MiB body
 * could cost gigabytes. Instead a small scanner walks the request once, checking syntax
 * and depth, and hands jansson only the small values (ids, names, shapes, parameters).
 * Each input's "data" is kept as a span and decoded later (cs_v2_decode_data) straight
 * into a tensor buffer of the declared type: one allocation per tensor, sized from the
 * shape, which is checked against limits.max_elements first. Responses are written into
 * a string buffer directly for the same reason.
 *
 * Element conversion uses the engine's public typed accessors (cs_tensor_get_f64 and
 * friends), so that a value means the same thing here as in every kernel.
 */
#include "api/api.h"

#include "base/numfmt.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    cs_dtype t;
} dtypes[] = {
    {"BOOL", CS_DTYPE_BOOL},     {"UINT8", CS_DTYPE_UINT8},   {"UINT16", CS_DTYPE_UINT16},
    {"UINT32", CS_DTYPE_UINT32}, {"UINT64", CS_DTYPE_UINT64}, {"INT8", CS_DTYPE_INT8},
    {"INT16", CS_DTYPE_INT16},   {"INT32", CS_DTYPE_INT32},   {"INT64", CS_DTYPE_INT64},
    {"FP16", CS_DTYPE_FLOAT16},  {"FP32", CS_DTYPE_FLOAT32},  {"FP64", CS_DTYPE_FLOAT64},
    {"BF16", CS_DTYPE_BFLOAT16}, {"BYTES", CS_DTYPE_STRING},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *cs_v2_dtype_name(cs_dtype t)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].t == t) return dtypes[i].name;
    return NULL;
}

cs_dtype cs_v2_dtype_parse(const char *name)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0) return dtypes[i].t;
    return CS_DTYPE_UNDEFINED;
}

/* --- the scanner ------------------------------------------------------------------------ */

typedef struct scanner {
    const char *base, *p, *end;
    int depth, max_depth;
    cs_error *err;
} scanner;

/* The loops below walk a local pointer: s->p would be stored back on every character,
 * since the compiler must assume the text may alias the scanner. */
static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void ws(scanner *s)
{
    const char *p = s->p, *end = s->end;
    while (p < end && is_ws(*p)) p++;
    s->p = p;
}

static bool bad(scanner *s, const char *what)
{
    cs_error_set(s->err, CS_ERR_PARSE, "malformed JSON at byte %td: %s", s->p - s->base, what);
    return false;
}

static bool enter(scanner *s)
{
    if (++s->depth <= s->max_depth) return true;
    cs_error_set(s->err, CS_ERR_INVALID, "JSON nests deeper than %d levels", s->max_depth);
    return false;
}

static bool expect(scanner *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    char what[32];
    snprintf(what, sizeof what, "expected '%c'", c);
    return bad(s, what);
}

static bool skip_string(scanner *s)
{
    if (!expect(s, '"')) return false;
    const char *p = s->p, *end = s->end;
    while (p < end) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"') {
            s->p = p;
            return true;
        }
        if (c < 0x20) {
            s->p = p;
            return bad(s, "control character in a string");
        }
        if (c == '\\' && p++ >= end) break;
    }
    s->p = p;
    return bad(s, "unterminated string");
}

static bool skip_value(scanner *s);

/* Calls fn on every member or element of the object or array at s->p (values are already
 * checked when fn sees them). key is NULL for array elements. */
typedef bool (*each_fn)(void *ud, scanner *s, const char *key, size_t klen, cs_v2_span v);

static bool each(scanner *s, char open, each_fn fn, void *ud)
{
    char close = open == '{' ? '}' : ']';
    if (!expect(s, open) || !enter(s)) return false;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        if (open == '{') {
            ws(s);
            key = s->p + 1;
            if (!skip_string(s)) return false;
            klen = (size_t)(s->p - 1 - key);
            if (!expect(s, ':')) return false;
        }
        ws(s);
        const char *v = s->p;
        if (!skip_value(s)) return false;
        if (fn && !fn(ud, s, key, klen, (cs_v2_span){v, (size_t)(s->p - v)})) return false;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (!expect(s, close)) return false;
        s->depth--;
        return true;
    }
}

/* Characters of JSON numbers, and of the literals true, false and null: a table, because
 * these loops run once per character of every tensor in a request (strchr on the set was
 * 8% of a small model's request). */
enum { CH_NUMBER = 1, CH_LITERAL = 2 };
static const unsigned char char_class[256] = {
    ['+'] = CH_NUMBER,  ['-'] = CH_NUMBER,  ['.'] = CH_NUMBER,  ['0'] = CH_NUMBER,
    ['1'] = CH_NUMBER,  ['2'] = CH_NUMBER,  ['3'] = CH_NUMBER,  ['4'] = CH_NUMBER,
    ['5'] = CH_NUMBER,  ['6'] = CH_NUMBER,  ['7'] = CH_NUMBER,  ['8'] = CH_NUMBER,
    ['9'] = CH_NUMBER,  ['e'] = CH_NUMBER,  ['E'] = CH_NUMBER,  ['a'] = CH_LITERAL,
    ['f'] = CH_LITERAL, ['l'] = CH_LITERAL, ['n'] = CH_LITERAL, ['r'] = CH_LITERAL,
    ['s'] = CH_LITERAL, ['t'] = CH_LITERAL, ['u'] = CH_LITERAL,
};

/* Skips an array of scalars (numbers and literals) in one tight loop: the shape of every
 * tensor's "data", so it is most of a request. It accepts exactly what `each` would, and
 * returns false without moving when the array holds anything else, for `each` to walk. */
static bool skip_flat_array(scanner *s)
{
    const char *p = s->p + 1, *end = s->end;
    while (p < end && is_ws(*p)) p++;
    if (p < end && *p == ']') goto done;
    for (;;) {
        const char *start = p;
        while (p < end && char_class[(unsigned char)*p]) p++;
        if (p == start) return false;
        while (p < end && is_ws(*p)) p++;
        if (p < end && *p == ',') {
            p++;
            while (p < end && is_ws(*p)) p++;
            continue;
        }
        if (p < end && *p == ']') goto done;
        return false;
    }
done:
    if (s->depth + 1 > s->max_depth) return false; /* let `each` report it */
    s->p = p + 1;
    return true;
}

static bool skip_value(scanner *s)
{
    ws(s);
    if (s->p >= s->end) return bad(s, "unexpected end");
    switch (*s->p) {
    case '{': return each(s, '{', NULL, NULL);
    case '[': return skip_flat_array(s) || each(s, '[', NULL, NULL);
    case '"': return skip_string(s);
    default: {
        const char *start = s->p, *p = start, *end = s->end;
        while (p < end && char_class[(unsigned char)*p]) p++;
        s->p = p;
        return p > start || bad(s, "unexpected character");
    }
    }
}

int cs_api_json_depth(const char *p, size_t len, int max)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return -1;
            if (depth > deepest) deepest = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

/* --- small values through jansson ----------------------------------------------------- */

static bool key_is(const char *key, size_t klen, const char *want)
{
    return strlen(want) == klen && memcmp(key, want, klen) == 0;
}

/* The value as a jansson tree, or NULL with err set. Only small values come here. */
static json_t *load(scanner *s, cs_v2_span v, const char *field)
{
    json_error_t jerr;
    json_t *j = json_loadb(v.p, v.len, JSON_DECODE_ANY, &jerr);
    if (!j) cs_error_set(s->err, CS_ERR_PARSE, "%s: %s", field, jerr.text);
    return j;
}

static long unescape(const char **pp, const char *end, char *dst);

/* Whether n bytes are well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as jansson requires of every string. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (!len || n - i < len) return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
        i += len;
    }
    return true;
}

/* A string value, unescaped into the arena: names and datatypes come once per input, so
 * they are read here rather than through a jansson tree. Strings holding NUL are refused,
 * as C strings cannot carry them. */
static const char *load_string(scanner *s, cs_v2_span v, cs_arena *a, const char *field)
{
    if (v.len < 2 || v.p[0] != '"') {
        cs_error_set(s->err, CS_ERR_INVALID, "%s must be a string", field);
        return NULL;
    }
    char *out = cs_arena_alloc(a, v.len, 1);
    if (!out) {
        cs_error_set(s->err, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const char *p = v.p;
    long n = unescape(&p, v.p + v.len, out);
    if (n < 0 || p != v.p + v.len || !utf8_valid((const unsigned char *)out, (size_t)n)) {
        cs_error_set(s->err, CS_ERR_PARSE, "%s: not a valid JSON string", field);
        return NULL;
    }
    if (memchr(out, 0, (size_t)n)) {
        cs_error_set(s->err, CS_ERR_INVALID, "%s must be a string without NUL characters", field);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

/* "shape": an array of at most CS_MAX_RANK non-negative integers; the rank, or -1. */
static int load_shape(cs_v2_span v, int64_t dims[CS_MAX_RANK])
{
    const char *p = v.p, *end = v.p + v.len;
    int rank = 0;
    if (p == end || *p++ != '[') return -1;
    for (;;) {
        while (p < end && is_ws(*p)) p++;
        if (p < end && *p == ']' && rank == 0) return 0;
        if (p == end || *p < '0' || *p > '9' || rank == CS_MAX_RANK) return -1;
        int64_t d = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (d > (INT64_MAX - 9) / 10) return -1;
            d = d * 10 + (*p - '0');
        }
        dims[rank++] = d;
        while (p < end && is_ws(*p)) p++;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        return p < end && *p == ']' && p + 1 == end ? rank : -1;
    }
}

/* parameters: {"binary_data_size": N, ...}; unknown parameters are accepted and ignored. */
static bool int_param(scanner *s, json_t *params, const char *key, const char *where, int64_t max,
                      int64_t *out)
{
    json_t *v = json_object_get(params, key);
    if (!v) return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        cs_error_set(s->err, CS_ERR_INVALID,
                     "%s: parameter '%s' must be an integer in [0, %" PRId64 "]", where, key, max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool bool_param(scanner *s, json_t *params, const char *key, const char *where, bool *out)
{
    json_t *v = json_object_get(params, key);
    if (!v) return true;
    if (!json_is_boolean(v)) {
        cs_error_set(s->err, CS_ERR_INVALID, "%s: parameter '%s' must be true or false", where,
                     key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static json_t *load_params(scanner *s, cs_v2_span v, const char *where)
{
    json_t *j = load(s, v, where);
    if (j && !json_is_object(j)) {
        cs_error_set(s->err, CS_ERR_INVALID, "%s: parameters must be an object", where);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* --- the request ------------------------------------------------------------------------ */

#define MAX_TENSORS 256 /* inputs or outputs named in one request */

typedef struct decoder {
    cs_v2_request *req;
    const cs_api_limits *lim;
    cs_arena *a;
    int cap_in, cap_out;
} decoder;

/* Grows an arena array by doubling (the old copy stays in the arena until the request
 * ends: a few KiB at most, given MAX_TENSORS). */
static void *grow(cs_arena *a, void *old, int n, int *cap, size_t elem)
{
    if (n < *cap) return old;
    int ncap = *cap ? *cap * 2 : 4;
    void *p = cs_arena_zalloc(a, (size_t)ncap * elem, 16);
    if (p && old) memcpy(p, old, (size_t)n * elem);
    if (p) *cap = ncap;
    return p;
}

static const char *input_where(char where[32], const decoder *d)
{
    snprintf(where, 32, "inputs[%d]", d->req->n_inputs);
    return where;
}

static bool input_member(void *ud, scanner *s, const char *key, size_t klen, cs_v2_span v)
{
    decoder *d = ud;
    cs_v2_input *in = &d->req->inputs[d->req->n_inputs];
    char where[32]; /* for messages, formatted only on the paths that may need it */
    if (key_is(key, klen, "name")) {
        return (in->name = load_string(s, v, d->a, "input name")) != NULL;
    } else if (key_is(key, klen, "datatype")) {
        const char *dt = load_string(s, v, d->a, "datatype");
        if (!dt) return false;
        if ((in->dtype = cs_v2_dtype_parse(dt)) == CS_DTYPE_UNDEFINED) {
            cs_error_set(s->err, CS_ERR_INVALID,
                         "%s: unknown datatype '%s' (BOOL, UINT8..UINT64, INT8..INT64, FP16, "
                         "FP32, FP64, BF16 or BYTES)",
                         input_where(where, d), dt);
            return false;
        }
    } else if (key_is(key, klen, "shape")) {
        in->rank = load_shape(v, in->dims);
        if (in->rank < 0)
            cs_error_set(s->err, CS_ERR_INVALID,
                         "%s: shape must be an array of at most %d non-negative integers",
                         input_where(where, d), CS_MAX_RANK);
        return in->rank >= 0;
    } else if (key_is(key, klen, "parameters")) {
        json_t *p = load_params(s, v, input_where(where, d));
        bool ok = p && int_param(s, p, "binary_data_size", where, INT64_MAX, &in->binary_size);
        json_decref(p);
        return ok;
    } else if (key_is(key, klen, "data")) {
        in->data = v;
    }
    return true;
}

/* Elements in dims, or -1 past max (checked before anything is allocated for them). */
static int64_t numel_bounded(const int64_t *dims, int rank, int64_t max)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && n > max / dims[i]) return -1;
        n *= dims[i];
    }
    return n <= max ? n : -1;
}

static bool input(void *ud, scanner *s, const char *key, size_t klen, cs_v2_span v)
{
    decoder *d = ud;
    cs_v2_request *req = d->req;
    if (req->n_inputs == MAX_TENSORS) {
        cs_error_set(s->err, CS_ERR_LIMIT, "more than %d inputs", MAX_TENSORS);
        return false;
    }
    req->inputs = grow(d->a, req->inputs, req->n_inputs, &d->cap_in, sizeof *req->inputs);
    if (!req->inputs) return cs_error_set(s->err, CS_ERR_NOMEM, "out of memory"), false;
    cs_v2_input *in = &req->inputs[req->n_inputs];
    *in = (cs_v2_input){.rank = -1, .binary_size = -1};
    scanner sub = {s->base, v.p, v.p + v.len, s->depth, s->max_depth, s->err};
    if (!each(&sub, '{', input_member, d)) return false;
    int i = req->n_inputs++;
    const char *missing = !in->name                              ? "name"
                          : in->dtype == CS_DTYPE_UNDEFINED      ? "datatype"
                          : in->rank < 0                         ? "shape"
                          : !in->data.len && in->binary_size < 0 ? "data"
                                                                 : NULL;
    if (missing) {
        cs_error_set(s->err, CS_ERR_INVALID, "inputs[%d]%s%s%s: missing \"%s\"", i,
                     in->name ? " ('" : "", in->name ? in->name : "", in->name ? "')" : "",
                     missing);
        return false;
    }
    if (in->data.len && in->binary_size >= 0) {
        cs_error_set(s->err, CS_ERR_INVALID,
                     "input '%s': give either \"data\" or parameters.binary_data_size, not both",
                     in->name);
        return false;
    }
    if (numel_bounded(in->dims, in->rank, d->lim->max_elements) < 0) {
        cs_error_set(s->err, CS_ERR_LIMIT, "input '%s': more than %" PRId64 " elements", in->name,
                     d->lim->max_elements);
        return false;
    }
    return true;
}

static bool output(void *ud, scanner *s, const char *key, size_t klen, cs_v2_span v)
{
    decoder *d = ud;
    cs_v2_request *req = d->req;
    if (req->n_outputs == MAX_TENSORS) {
        cs_error_set(s->err, CS_ERR_LIMIT, "more than %d outputs", MAX_TENSORS);
        return false;
    }
    req->outputs = grow(d->a, req->outputs, req->n_outputs, &d->cap_out, sizeof *req->outputs);
    if (!req->outputs) return cs_error_set(s->err, CS_ERR_NOMEM, "out of memory"), false;
    char where[32];
    snprintf(where, sizeof where, "outputs[%d]", req->n_outputs);
    json_t *j = load(s, v, where);
    json_t *name = json_object_get(j, "name");
    json_t *params = json_object_get(j, "parameters");
    bool binary = false, ok = false;
    if (!j) return false;
    if (!json_is_string(name)) {
        cs_error_set(s->err, CS_ERR_INVALID, "%s: missing \"name\"", where);
    } else if (params && !json_is_object(params)) {
        cs_error_set(s->err, CS_ERR_INVALID, "%s: parameters must be an object", where);
    } else if (json_object_get(params, "classification")) {
        cs_error_set(s->err, CS_ERR_UNSUPPORTED,
                     "%s: the classification extension is not supported", where);
    } else if (bool_param(s, params, "binary_data", where, &binary)) {
        cs_v2_output *o = &req->outputs[req->n_outputs];
        o->name = cs_arena_strndup(d->a, json_string_value(name), json_string_length(name));
        o->binary = json_object_get(params, "binary_data") ? binary : -1;
        ok = o->name != NULL;
        if (!ok) cs_error_set(s->err, CS_ERR_NOMEM, "out of memory");
        req->n_outputs += ok;
    }
    json_decref(j);
    return ok;
}

static bool top_member(void *ud, scanner *s, const char *key, size_t klen, cs_v2_span v)
{
    decoder *d = ud;
    cs_v2_request *req = d->req;
    if (key_is(key, klen, "id")) return (req->id = load_string(s, v, d->a, "id")) != NULL;
    if (key_is(key, klen, "parameters")) {
        json_t *p = load_params(s, v, "request");
        int64_t prio = 0, timeout = 0;
        bool bdo = false;
        bool ok = p && int_param(s, p, "priority", "request", INT_MAX, &prio) &&
                  int_param(s, p, "timeout", "request", INT64_MAX / 1000, &timeout) &&
                  bool_param(s, p, "binary_data_output", "request", &bdo);
        if (json_object_get(p, "binary_data_output")) req->binary_output = bdo;
        req->priority = (int)prio;
        req->timeout_us = (uint64_t)timeout;
        json_decref(p);
        return ok;
    }
    if (key_is(key, klen, "inputs") || key_is(key, klen, "outputs")) {
        bool is_in = key[0] == 'i';
        scanner sub = {s->base, v.p, v.p + v.len, s->depth, s->max_depth, s->err};
        ws(&sub);
        if (sub.p >= sub.end || *sub.p != '[') {
            cs_error_set(s->err, CS_ERR_INVALID, "\"%s\" must be an array",
                         is_in ? "inputs" : "outputs");
            return false;
        }
        return each(&sub, '[', is_in ? input : output, d);
    }
    return true; /* other members are accepted and ignored */
}

cs_status cs_v2_decode_request(const char *json, size_t len, const cs_api_limits *lim, cs_arena *a,
                               cs_v2_request *out, cs_error *err)
{
    *out = (cs_v2_request){.binary_output = -1};
    decoder d = {out, lim, a, 0, 0};
    scanner s = {json, json, json + len, 0, lim->max_json_depth, err};
    cs_error_clear(err);
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return cs_error_set(err, CS_ERR_INVALID, "the inference request must be a JSON object");
    if (!each(&s, '{', top_member, &d)) return err->code;
    ws(&s);
    if (s.p != s.end) return cs_error_set(err, CS_ERR_PARSE, "trailing data after the JSON object");
    if (out->n_inputs == 0)
        return cs_error_set(err, CS_ERR_INVALID, "the request has no \"inputs\"");
    return CS_OK;
}

/* --- data ---------------------------------------------------------------------------------- */

/* Where the JSON number at p ends (its grammar's characters only: no hex, inf or nan). */
static const char *number_end(const char *p, const char *end)
{
    while (p < end && char_class[(unsigned char)*p] == CH_NUMBER) p++;
    return p;
}

/* Appends the JSON string at *pp (unescaped, as UTF-8) to dst; returns its length or -1.
 * dst has room: an unescaped string is never longer than its JSON text. */
static long unescape(const char **pp, const char *end, char *dst)
{
    const char *p = *pp + 1;
    char *o = dst;
    while (p < end && *p != '"') {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        if (++p >= end) return -1;
        char c = *p++, plain = 0;
        switch (c) {
        case '"':
        case '\\':
        case '/': plain = c; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        default: break;
        }
        if (plain) {
            *o++ = plain;
            continue;
        }
        if (c != 'u' || end - p < 4) return -1;
        char hex[5] = {p[0], p[1], p[2], p[3], 0};
        char *he;
        unsigned long cp = strtoul(hex, &he, 16);
        if (he != hex + 4) return -1;
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            char lo[5] = {p[2], p[3], p[4], p[5], 0};
            unsigned long l = strtoul(lo, &he, 16);
            if (he == lo + 4 && l >= 0xdc00 && l < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (l - 0xdc00);
                p += 6;
            }
        }
        /* UTF-8: at most 4 bytes, never more than the 6 of the escape it replaces. */
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xc0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xe0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (char)(0xf0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    if (p >= end) return -1;
    *pp = p + 1;
    return o - dst;
}

/* Integer ranges by type, for messages and checks (UINT64 is parsed unsigned). */
static void int_range(cs_dtype t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case CS_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case CS_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case CS_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case CS_DTYPE_UINT8: *lo = 0, *hi = UINT8_MAX; break;
    case CS_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; break;
    case CS_DTYPE_UINT32: *lo = 0, *hi = UINT32_MAX; break;
    default: *lo = INT64_MIN, *hi = INT64_MAX; break;
    }
}

static bool is_float(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 || t == CS_DTYPE_FLOAT64 || t == CS_DTYPE_FLOAT16 ||
           t == CS_DTYPE_BFLOAT16;
}

/* The largest finite value of float dtype t: a number past it would become infinity (and
 * come back as null), so it is refused instead. */
static double float_max(cs_dtype t)
{
    switch (t) {
    case CS_DTYPE_FLOAT16: return 65504.0;
    case CS_DTYPE_BFLOAT16: return 3.3895313892515355e38;
    case CS_DTYPE_FLOAT32: return FLT_MAX;
    default: return DBL_MAX;
    }
}

/* Decodes the scalar at *pp into element i of t (BYTES: appends at *wp). */
static cs_status put_element(cs_v2_input *in, int64_t i, const char **pp, const char *end,
                             char **wp, cs_error *err)
{
    const char *p = *pp;
    cs_tensor *t = &in->t;
    if (t->dtype == CS_DTYPE_STRING) {
        if (*p != '"') goto wrong;
        char *w = *wp;
        long n = unescape(&p, end, w + 4);
        if (n < 0)
            return cs_error_set(err, CS_ERR_PARSE, "input '%s': element %" PRId64 ": bad string",
                                in->name, i);
        uint32_t len = (uint32_t)n;
        memcpy(w, &len, 4); /* little-endian hosts only, like the engine */
        *wp = w + 4 + n;
        *pp = p;
        return CS_OK;
    }
    if (t->dtype == CS_DTYPE_BOOL) {
        bool v = end - p >= 4 && memcmp(p, "true", 4) == 0;
        if (!v && !(end - p >= 5 && memcmp(p, "false", 5) == 0)) goto wrong;
        ((uint8_t *)t->data)[i] = v;
        *pp = p + (v ? 4 : 5);
        return CS_OK;
    }
    const char *e = number_end(p, end);
    if (e == p) goto wrong;
    char *conv;
    errno = 0;
    if (is_float(t->dtype)) {
        double v;
        if (cs_numfmt_parse_f64(p, e, &v) != 0 || fabs(v) > float_max(t->dtype)) goto wrong;
        if (t->dtype == CS_DTYPE_FLOAT32) /* the common case, without the typed dispatch */
            ((float *)t->data)[i] = (float)v;
        else
            cs_tensor_set_f64(t, i, v);
    } else if (t->dtype == CS_DTYPE_UINT64) {
        if (*p == '-') goto wrong;
        unsigned long long v = strtoull(p, &conv, 10);
        if (errno || conv != e) goto wrong;
        ((uint64_t *)t->data)[i] = v;
    } else {
        int64_t lo, hi;
        int_range(t->dtype, &lo, &hi);
        long long v = strtoll(p, &conv, 10);
        if (errno || conv != e || v < lo || v > hi) goto wrong;
        cs_tensor_set_i64(t, i, v);
    }
    *pp = e;
    return CS_OK;
wrong:;
    const char *want = t->dtype == CS_DTYPE_STRING ? "a string"
                       : t->dtype == CS_DTYPE_BOOL ? "true or false"
                       : is_float(t->dtype)        ? "a number in range"
                                                   : "an integer in range";
    return cs_error_set(err, CS_ERR_INVALID, "input '%s': element %" PRId64 " is not %s (%s)",
                        in->name, i, want, cs_v2_dtype_name(t->dtype));
}

cs_status cs_v2_decode_data(cs_v2_input *in, cs_arena *a, cs_error *err)
{
    cs_tensor *t = &in->t;
    *t = (cs_tensor){.dtype = in->dtype, .rank = in->rank};
    memcpy(t->dims, in->dims, sizeof t->dims);
    int64_t n = cs_tensor_numel(t);
    bool bytes = in->dtype == CS_DTYPE_STRING;
    /* BYTES: 4 bytes of length per element plus the strings, never longer than their JSON. */
    size_t cap = bytes ? (size_t)n * 4 + in->data.len : (size_t)n * cs_dtype_size(in->dtype);
    t->data = cs_arena_alloc(a, cap ? cap : 1, 64);
    if (!t->data) return cs_error_set(err, CS_ERR_NOMEM, "input '%s': out of memory", in->name);
    const char *p = in->data.p, *end = p + in->data.len;
    char *w = t->data;
    if (*p != '[')
        return cs_error_set(err, CS_ERR_INVALID, "input '%s': \"data\" must be an array", in->name);
    /* "data" is flat, or nested exactly as the shape: every array at depth k (1-based) has
     * dims[k-1] items and the scalars sit at depth rank. The scanner already checked that
     * the brackets balance. */
    const char *q = p + 1;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')) q++;
    bool nested = q < end && *q == '[';
    int depth = 0;
    int64_t items[CS_MAX_RANK + 1] = {0};
    int64_t i = 0;
    while (p < end) {
        char c = *p;
        if (c == '[') {
            if (depth > 0) items[depth - 1]++;
            if (depth >= (nested ? t->rank : 1)) goto shape;
            items[depth++] = 0;
            p++;
            continue;
        }
        if (c == ']') {
            if (nested && items[depth - 1] != t->dims[depth - 1]) goto shape;
            depth--;
            p++;
            continue;
        }
        if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            p++;
            continue;
        }
        if (i == n) break;
        if (nested && depth != t->rank) goto shape;
        items[depth - 1]++;
        cs_status rc = put_element(in, i++, &p, end, &w, err);
        if (rc != CS_OK) return rc;
    }
    if (i != n || p < end)
        return cs_error_set(err, CS_ERR_INVALID,
                            "input '%s': shape has %" PRId64
                            " elements but \"data\" has %s%" PRId64,
                            in->name, n, p < end ? "more than " : "", i);
    in->bytes = bytes ? (size_t)(w - (char *)t->data) : cap;
    return CS_OK;
shape:;
    char want[128];
    cs_shape_format(want, sizeof want, t->rank, t->dims, NULL);
    return cs_error_set(err, CS_ERR_INVALID,
                        "input '%s': nested \"data\" does not match the shape %s (give it flat, or "
                        "nested with one level per dimension)",
                        in->name, want);
}

/* --- the response -------------------------------------------------------------------------- */

/* Appends n bytes as a JSON string literal; control bytes (NUL included) are escaped and
 * everything else passes through, so UTF-8 stays UTF-8. */
static cs_status put_json_bytes(cs_sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cs_status rc = cs_sbuf_puts(b, "\"");
    const char *run = s, *end = s + n;
    for (; rc == CS_OK && s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc = cs_sbuf_append(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        if (c < 0x20) snprintf(esc, sizeof esc, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        if (rc == CS_OK) rc = cs_sbuf_puts(b, esc);
        run = s + 1;
    }
    if (rc == CS_OK) rc = cs_sbuf_append(b, run, (size_t)(s - run));
    return rc == CS_OK ? cs_sbuf_puts(b, "\"") : rc;
}

cs_status cs_api_put_json_string(cs_sbuf *b, const char *s)
{
    return put_json_bytes(b, s, strlen(s));
}

size_t cs_v2_tensor_bytes(const cs_tensor *t)
{
    int64_t n = cs_tensor_numel(t);
    if (t->dtype != CS_DTYPE_STRING) return (size_t)n * cs_dtype_size(t->dtype);
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t len;
        memcpy(&len, (const char *)t->data + off, 4);
        off += 4 + len;
    }
    return off;
}

cs_status cs_v2_put_json_data(cs_sbuf *b, const cs_tensor *t, cs_error *err)
{
    int64_t n = cs_tensor_numel(t);
    cs_status rc = cs_sbuf_append(b, "[", 1);
    const char *sp = t->data; /* BYTES: the next element */
    for (int64_t i = 0; i < n && rc == CS_OK; i++) {
        char num[CS_NUMFMT_MAX + 1], *o = num;
        if (i) *o++ = ',';
        if (t->dtype == CS_DTYPE_STRING) {
            uint32_t len;
            memcpy(&len, sp, 4);
            rc = cs_sbuf_append(b, num, (size_t)(o - num));
            if (rc == CS_OK) rc = put_json_bytes(b, sp + 4, len);
            sp += 4 + len;
            continue;
        }
        if (t->dtype == CS_DTYPE_BOOL) {
            bool v = ((const uint8_t *)t->data)[i];
            memcpy(o, v ? "true" : "false", v ? 4 : 5);
            o += v ? 4 : 5;
        } else if (t->dtype == CS_DTYPE_UINT64) {
            o += cs_numfmt_u64(o, ((const uint64_t *)t->data)[i]);
        } else if (is_float(t->dtype)) {
            double v = cs_tensor_get_f64(t, i);
            /* JSON has no NaN or infinity; null is what Python's and Go's clients accept. */
            if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
                memcpy(o, "null", 4);
                o += 4;
            } else if (t->dtype == CS_DTYPE_FLOAT64) {
                o += snprintf(o, CS_NUMFMT_MAX, "%.17g", v);
            } else {
                o += cs_numfmt_f32(o, (float)v); /* FP16 and BF16 widen to float exactly */
            }
        } else {
            o += cs_numfmt_i64(o, cs_tensor_get_i64(t, i));
        }
        rc = cs_sbuf_append(b, num, (size_t)(o - num));
    }
    if (rc == CS_OK) rc = cs_sbuf_append(b, "]", 1);
    return rc == CS_OK ? CS_OK : cs_error_set(err, rc, "response too large for memory");
}

int cs_v2_output_index(const cs_model_t *m, const char *name)
{
    int n = cs_model_output_count(m);
    for (int j = 0; j < n; j++)
        if (strcmp(cs_model_output(m, j).name, name) == 0) return j;
    return -1;
}

cs_status cs_v2_encode_response(const cs_v2_request *req, const char *model, const char *version,
                                const cs_model_t *m, int n_outputs, const cs_tensor *outputs,
                                cs_sbuf *out, size_t *header_len, cs_error *err)
{
    int n = req->n_outputs ? req->n_outputs : n_outputs;
    cs_status rc = cs_sbuf_puts(out, "{\"model_name\":");
    if (rc == CS_OK) rc = cs_api_put_json_string(out, model);
    if (rc == CS_OK) rc = cs_sbuf_puts(out, ",\"model_version\":");
    if (rc == CS_OK) rc = cs_api_put_json_string(out, version);
    if (rc == CS_OK && req->id) rc = cs_sbuf_puts(out, ",\"id\":");
    if (rc == CS_OK && req->id) rc = cs_api_put_json_string(out, req->id);
    if (rc == CS_OK) rc = cs_sbuf_puts(out, ",\"outputs\":[");
    for (int k = 0; k < n && rc == CS_OK; k++) {
        int j = req->n_outputs ? cs_v2_output_index(m, req->outputs[k].name) : k;
        bool binary = (req->n_outputs ? req->outputs[k].binary : req->binary_output) > 0;
        const cs_tensor *t = &outputs[j];
        const char *dt = cs_v2_dtype_name(t->dtype);
        if (!dt)
            return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                "output '%s' has type %s, which v2 cannot carry",
                                cs_model_output(m, j).name, cs_dtype_name(t->dtype));
        rc = cs_sbuf_puts(out, k ? ",{\"name\":" : "{\"name\":");
        if (rc == CS_OK) rc = cs_api_put_json_string(out, cs_model_output(m, j).name);
        if (rc == CS_OK) rc = cs_sbuf_puts(out, ",\"datatype\":\"");
        if (rc == CS_OK) rc = cs_sbuf_puts(out, dt);
        if (rc == CS_OK) rc = cs_sbuf_puts(out, "\",\"shape\":[");
        for (int d = 0; d < t->rank && rc == CS_OK; d++) {
            char num[CS_NUMFMT_MAX + 1];
            num[0] = ',';
            size_t len = cs_numfmt_i64(num + 1, t->dims[d]);
            rc = cs_sbuf_append(out, d ? num : num + 1, d ? len + 1 : len);
        }
        if (rc == CS_OK && binary)
            rc = cs_sbuf_printf(out, "],\"parameters\":{\"binary_data_size\":%zu}}",
                                cs_v2_tensor_bytes(t));
        if (rc == CS_OK && !binary) rc = cs_sbuf_puts(out, "],\"data\":");
        if (rc == CS_OK && !binary && (rc = cs_v2_put_json_data(out, t, err)) == CS_OK)
            rc = cs_sbuf_puts(out, "}");
    }
    if (rc == CS_OK) rc = cs_sbuf_puts(out, "]}");
    *header_len = out->len;
    for (int k = 0; k < n && rc == CS_OK; k++) {
        bool binary = (req->n_outputs ? req->outputs[k].binary : req->binary_output) > 0;
        int j = req->n_outputs ? cs_v2_output_index(m, req->outputs[k].name) : k;
        if (binary) rc = cs_v2_put_binary_data(out, &outputs[j], err);
    }
    return rc == CS_OK ? CS_OK : cs_error_set(err, rc, "cannot encode the response: out of memory");
}

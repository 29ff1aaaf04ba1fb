/*
 * kutil.c - helpers shared by all kernels: attributes, element access, broadcasting,
 * axes, half-precision conversion, node-scoped errors and parallel loops.
 *
 * The element accessors (cs_tensor_get_f64 and friends) switch on the type for every element:
 * they are for shape inputs, attributes and reference paths, not for hot loops.
 */
#include "engine/kernel.h"

#include "base/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const cs__attr *cs__attr_find(const cs__node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (!strcmp(n->attr[i].name, name)) return &n->attr[i];
    return NULL;
}

int64_t cs__attr_int(const cs__node *n, const char *name, int64_t def)
{
    const cs__attr *a = cs__attr_find(n, name);
    return a && a->type == CS__ATTR_INT ? a->i : def;
}

float cs__attr_float(const cs__node *n, const char *name, float def)
{
    const cs__attr *a = cs__attr_find(n, name);
    if (!a) return def;
    if (a->type == CS__ATTR_FLOAT) return a->f;
    if (a->type == CS__ATTR_INT) return (float)a->i;
    return def;
}

const char *cs__attr_str(const cs__node *n, const char *name, const char *def)
{
    const cs__attr *a = cs__attr_find(n, name);
    return a && a->type == CS__ATTR_STRING ? a->s : def;
}

int cs__attr_ints(const cs__node *n, const char *name, const int64_t **v)
{
    const cs__attr *a = cs__attr_find(n, name);
    if (!a || a->type != CS__ATTR_INTS) return -1;
    *v = a->ints;
    return a->n;
}

int cs__attr_floats(const cs__node *n, const char *name, const float **v)
{
    const cs__attr *a = cs__attr_find(n, name);
    if (!a || a->type != CS__ATTR_FLOATS) return -1;
    *v = a->floats;
    return a->n;
}

void cs__strides(const cs_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= t->dims[i];
    }
}

void cs__same_shape(cs_tensor *dst, const cs_tensor *src)
{
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
}

int64_t cs_tensor_get_i64(const cs_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case CS_DTYPE_INT64: return ((const int64_t *)d)[i];
    case CS_DTYPE_INT32: return ((const int32_t *)d)[i];
    case CS_DTYPE_INT16: return ((const int16_t *)d)[i];
    case CS_DTYPE_INT8: return ((const int8_t *)d)[i];
    case CS_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case CS_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case CS_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case CS_DTYPE_UINT8:
    case CS_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    default: return (int64_t)cs_tensor_get_f64(t, i);
    }
}

double cs_tensor_get_f64(const cs_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case CS_DTYPE_FLOAT32: return ((const float *)d)[i];
    case CS_DTYPE_FLOAT64: return ((const double *)d)[i];
    case CS_DTYPE_FLOAT16: return cs__f16_to_f32(((const uint16_t *)d)[i]);
    case CS_DTYPE_BFLOAT16: return cs__bf16_to_f32(((const uint16_t *)d)[i]);
    case CS_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    default: return (double)cs_tensor_get_i64(t, i);
    }
}

void cs_tensor_set_f64(cs_tensor *t, int64_t i, double v)
{
    void *d = t->data;
    switch (t->dtype) {
    case CS_DTYPE_FLOAT32: ((float *)d)[i] = (float)v; break;
    case CS_DTYPE_FLOAT64: ((double *)d)[i] = v; break;
    case CS_DTYPE_FLOAT16: ((uint16_t *)d)[i] = cs__f32_to_f16((float)v); break;
    case CS_DTYPE_BFLOAT16: ((uint16_t *)d)[i] = cs__f32_to_bf16((float)v); break;
    case CS_DTYPE_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    default: cs_tensor_set_i64(t, i, (int64_t)v); break;
    }
}

void cs_tensor_set_i64(cs_tensor *t, int64_t i, int64_t v)
{
    void *d = t->data;
    switch (t->dtype) {
    case CS_DTYPE_INT64: ((int64_t *)d)[i] = v; break;
    case CS_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)v; break;
    case CS_DTYPE_INT16: ((int16_t *)d)[i] = (int16_t)v; break;
    case CS_DTYPE_INT8: ((int8_t *)d)[i] = (int8_t)v; break;
    case CS_DTYPE_UINT64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    case CS_DTYPE_UINT32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case CS_DTYPE_UINT16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case CS_DTYPE_UINT8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case CS_DTYPE_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    default: cs_tensor_set_f64(t, i, (double)v); break;
    }
}

cs_status cs__broadcast(int n, const cs_tensor *const *ts, cs_tensor *out, cs_error *err)
{
    int rank = 0;
    for (int k = 0; k < n; k++)
        if (ts[k] && ts[k]->rank > rank) rank = ts[k]->rank;
    for (int d = 0; d < rank; d++) {
        int64_t dim = 1;
        for (int k = 0; k < n; k++) {
            if (!ts[k]) continue;
            int off = rank - ts[k]->rank;
            if (d < off) continue;
            int64_t x = ts[k]->dims[d - off];
            if (x == dim || x == 1) continue;
            if (dim != 1)
                return cs_error_set(err, CS_ERR_INVALID,
                                    "shapes cannot be broadcast: dimension %d is %lld and %lld", d,
                                    (long long)dim, (long long)x);
            dim = x;
        }
        out->dims[d] = dim;
    }
    out->rank = rank;
    return CS_OK;
}

cs_status cs__axis(const cs__node *n, int64_t axis, int rank, bool inclusive, int *out,
                   cs_error *err)
{
    int64_t hi = inclusive ? rank + 1 : rank;
    if (axis < -hi || axis >= hi)
        return cs__node_error(err, n, CS_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + hi : axis);
    return CS_OK;
}

float cs__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t cs__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent */
    return (uint16_t)half;
}

float cs__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t cs__f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

cs_status cs__node_error(cs_error *err, const cs__node *n, cs_status code, const char *fmt, ...)
{
    if (!err) return code;
    char msg[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n->name && n->name[0])
        return cs_error_set(err, code, "%s '%s': %s", n->op_type, n->name, msg);
    return cs_error_set(err, code, "%s: %s", n->op_type, msg);
}

typedef struct range_job {
    cs__range_fn fn;
    void *arg;
    int64_t n, chunk;
} range_job;

static void run_range(void *p, int i)
{
    range_job *j = p;
    int64_t begin = (int64_t)i * j->chunk, end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
    j->fn(j->arg, begin, end);
}

void cs__parallel_for(cs__kctx *ctx, int64_t n, int64_t min_chunk, cs__range_fn fn, void *arg)
{
    int threads = ctx && ctx->pool ? ctx->threads : 1;
    if (min_chunk < 1) min_chunk = 1;
    if (threads > n / min_chunk) threads = (int)(n / min_chunk);
    if (threads <= 1) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    range_job j = {fn, arg, n, (n + threads - 1) / threads};
    cs_pool_run(ctx->pool, (int)((n + j.chunk - 1) / j.chunk), run_range, &j);
}

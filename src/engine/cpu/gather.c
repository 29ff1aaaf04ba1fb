/*
 * gather.c - CPU kernels that move elements by index: Gather, GatherElements, GatherND,
 * Scatter/ScatterElements, ScatterND, OneHot, NonZero and Pad.
 *
 * These kernels work on element size, not dtype: they copy bytes, so every numeric type
 * and bool shares one loop. Only the scatter reductions (add/mul/max/min) look at values,
 * through a per-element switch on dtype; scatters are rarely hot, so that cost is accepted
 * for the one code path. Every index is checked before it is used: an out-of-range index
 * is an error naming the node, never a stray read or write. Nothing here allocates.
 */
#include "engine/kernel.h"

#include <string.h>

/* --- shared helpers -------------------------------------------------------------------- */

static cs_status need_index_type(const cs__node *n, const cs_tensor *t, const char *what,
                                 cs_error *err)
{
    if (t->dtype == CS_DTYPE_INT32 || t->dtype == CS_DTYPE_INT64) return CS_OK;
    return cs__node_error(err, n, CS_ERR_INVALID, "%s must be int32 or int64, got %s", what,
                          cs_dtype_name(t->dtype));
}

static inline int64_t index_at(const cs_tensor *t, int64_t i)
{
    return t->dtype == CS_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                      : ((const int32_t *)t->data)[i];
}

/* Reads index i of t, resolves a negative index against dim and checks the range. */
static cs_status fetch_index(const cs__node *n, const cs_tensor *t, int64_t i, int64_t dim,
                             int64_t *out, cs_error *err)
{
    int64_t v = index_at(t, i);
    int64_t r = v < 0 ? v + dim : v;
    if (r < 0 || r >= dim)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "index %lld is out of range for a dimension of size %lld",
                              (long long)v, (long long)dim);
    *out = r;
    return CS_OK;
}

static int64_t prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

/* Element counts past 2^62 cannot be allocated and would overflow offset arithmetic. */
static cs_status check_size(const cs__node *n, const cs_tensor *t, cs_error *err)
{
    double total = 1;
    for (int d = 0; d < t->rank; d++) total *= (double)t->dims[d];
    if (total < 0x1p62) return CS_OK;
    return cs__node_error(err, n, CS_ERR_LIMIT, "the output would have %g elements", total);
}

static bool is_float_type(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 || t == CS_DTYPE_FLOAT64 || t == CS_DTYPE_FLOAT16 ||
           t == CS_DTYPE_BFLOAT16;
}

/* --- Gather ---------------------------------------------------------------------------- */

static cs_status gather_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    cs_status rc = need_index_type(n, idx, "indices", err);
    if (rc) return rc;
    if (x->rank < 1) return cs__node_error(err, n, CS_ERR_INVALID, "data must have rank >= 1");
    int axis;
    if ((rc = cs__axis(n, cs__attr_int(n, "axis", 0), x->rank, false, &axis, err))) return rc;
    if (x->rank + idx->rank - 1 > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank %d exceeds %d",
                              x->rank + idx->rank - 1, CS_MAX_RANK);
    out->dtype = x->dtype;
    out->rank = 0;
    for (int d = 0; d < axis; d++) out->dims[out->rank++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) out->dims[out->rank++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++) out->dims[out->rank++] = x->dims[d];
    return CS_OK;
}

typedef struct gather_job {
    const uint8_t *src;
    uint8_t *dst;
    const cs_tensor *idx;
    int64_t n_idx, dim;
    size_t block; /* bytes copied per index */
} gather_job;

/* Rows are (outer, index) pairs; indices were validated before the copy starts. */
static void gather_rows(void *arg, int64_t begin, int64_t end)
{
    const gather_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r / j->n_idx, v = index_at(j->idx, r % j->n_idx);
        if (v < 0) v += j->dim;
        memcpy(j->dst + (size_t)r * j->block, j->src + (size_t)(o * j->dim + v) * j->block,
               j->block);
    }
}

static cs_status gather_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    int axis;
    cs_status rc =
        cs__axis(ctx->node, cs__attr_int(ctx->node, "axis", 0), x->rank, false, &axis, ctx->err);
    if (rc) return rc;
    gather_job j = {
        x->data,       out->data,
        idx,           cs__numel(idx),
        x->dims[axis], (size_t)prod(x->dims, axis + 1, x->rank) * cs_dtype_size(x->dtype)};
    for (int64_t i = 0; i < j.n_idx; i++) {
        int64_t v = 0;
        if ((rc = fetch_index(ctx->node, idx, i, j.dim, &v, ctx->err))) return rc;
    }
    int64_t rows = prod(x->dims, 0, axis) * j.n_idx;
    cs__parallel_for(ctx, rows, j.block >= 4096 ? 16 : 4096, gather_rows, &j);
    return CS_OK;
}

/* --- GatherElements, ScatterElements ---------------------------------------------------- */

/*
 * Both walk the elements of `indices` in order and pair each with an element of `data`
 * that has the same coordinates except along `axis`, where the index value picks it.
 * The walker keeps the data offset of the current coordinates with the axis coordinate
 * left out, so each step costs O(1) amortised.
 */
typedef struct elem_walk {
    int rank, axis;
    const int64_t *shape; /* the indices' shape */
    int64_t stride[CS_MAX_RANK];
    int64_t coord[CS_MAX_RANK];
    int64_t base;
} elem_walk;

static void walk_init(elem_walk *w, const cs_tensor *data, const cs_tensor *idx, int axis)
{
    w->rank = idx->rank;
    w->axis = axis;
    w->shape = idx->dims;
    cs__strides(data, w->stride);
    memset(w->coord, 0, sizeof w->coord);
    w->base = 0;
}

static void walk_next(elem_walk *w)
{
    for (int d = w->rank - 1; d >= 0; d--) {
        int64_t s = d == w->axis ? 0 : w->stride[d];
        if (++w->coord[d] < w->shape[d]) {
            w->base += s;
            return;
        }
        w->base -= s * (w->coord[d] - 1);
        w->coord[d] = 0;
    }
}

static cs_status elements_check(const cs__node *n, const cs_tensor *data, const cs_tensor *idx,
                                int *axis, cs_error *err)
{
    cs_status rc = need_index_type(n, idx, "indices", err);
    if (rc) return rc;
    if (data->rank < 1 || idx->rank != data->rank)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "data and indices must have the same rank >= 1, got %d and %d",
                              data->rank, idx->rank);
    if ((rc = cs__axis(n, cs__attr_int(n, "axis", 0), data->rank, false, axis, err))) return rc;
    for (int d = 0; d < data->rank; d++)
        if (d != *axis && idx->dims[d] > data->dims[d])
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "indices dimension %d is %lld, larger than data's %lld", d,
                                  (long long)idx->dims[d], (long long)data->dims[d]);
    return CS_OK;
}

static cs_status gather_elements_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                       cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    int axis;
    cs_status rc = elements_check(n, in[0], in[1], &axis, err);
    if (rc) return rc;
    cs__same_shape(out, in[1]);
    out->dtype = in[0]->dtype;
    return CS_OK;
}

static cs_status gather_elements_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                     cs_tensor *out, int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    int axis;
    cs_status rc = elements_check(ctx->node, x, idx, &axis, ctx->err);
    if (rc) return rc;
    size_t es = cs_dtype_size(x->dtype);
    elem_walk w;
    walk_init(&w, x, idx, axis);
    int64_t total = cs__numel(idx);
    for (int64_t i = 0; i < total; i++, walk_next(&w)) {
        int64_t v = 0;
        if ((rc = fetch_index(ctx->node, idx, i, x->dims[axis], &v, ctx->err))) return rc;
        memcpy((uint8_t *)out->data + i * es,
               (const uint8_t *)x->data + (w.base + v * w.stride[axis]) * es, es);
    }
    return CS_OK;
}

typedef enum reduction { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } reduction;

static cs_status parse_reduction(const cs__node *n, reduction *r, cs_error *err)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *s = cs__attr_str(n, "reduction", "none");
    int count = n->opset >= 18 ? 5 : 3;
    for (int i = 0; i < count; i++) {
        if (!strcmp(s, names[i])) {
            *r = (reduction)i;
            return CS_OK;
        }
    }
    return cs__node_error(err, n, CS_ERR_INVALID, "unsupported reduction '%s'", s);
}

#define RED_APPLY(T, d, s, r)                           \
    do {                                                \
        T *d_ = (T *)(d);                               \
        T s_ = *(const T *)(s);                         \
        switch (r) {                                    \
        case RED_ADD: *d_ = (T)(*d_ + s_); break;       \
        case RED_MUL: *d_ = (T)(*d_ * s_); break;       \
        case RED_MAX: *d_ = *d_ > s_ ? *d_ : s_; break; \
        case RED_MIN: *d_ = *d_ < s_ ? *d_ : s_; break; \
        default: *d_ = s_; break;                       \
        }                                               \
    } while (0)

/* Combines `count` elements of src into dst with reduction r. */
static void reduce_into(void *dst, const void *src, int64_t count, cs_dtype t, reduction r)
{
    size_t es = cs_dtype_size(t);
    if (r == RED_NONE) {
        memcpy(dst, src, (size_t)count * es);
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        uint8_t *d = (uint8_t *)dst + i * es;
        const uint8_t *s = (const uint8_t *)src + i * es;
        switch (t) {
        case CS_DTYPE_FLOAT32: RED_APPLY(float, d, s, r); break;
        case CS_DTYPE_FLOAT64: RED_APPLY(double, d, s, r); break;
        case CS_DTYPE_INT8: RED_APPLY(int8_t, d, s, r); break;
        case CS_DTYPE_INT16: RED_APPLY(int16_t, d, s, r); break;
        case CS_DTYPE_INT32: RED_APPLY(int32_t, d, s, r); break;
        case CS_DTYPE_INT64: RED_APPLY(int64_t, d, s, r); break;
        case CS_DTYPE_UINT8: RED_APPLY(uint8_t, d, s, r); break;
        case CS_DTYPE_UINT16: RED_APPLY(uint16_t, d, s, r); break;
        case CS_DTYPE_UINT32: RED_APPLY(uint32_t, d, s, r); break;
        case CS_DTYPE_UINT64: RED_APPLY(uint64_t, d, s, r); break;
        case CS_DTYPE_BOOL: /* add is "or", mul is "and" */
            RED_APPLY(uint8_t, d, s, r);
            *d = *d != 0;
            break;
        default: { /* float16 and bfloat16 go through float */
            cs_tensor td = {.dtype = t, .data = d}, ts = {.dtype = t, .data = (void *)s};
            float a = (float)cs_tensor_get_f64(&td, 0), b = (float)cs_tensor_get_f64(&ts, 0);
            RED_APPLY(float, &a, &b, r);
            cs_tensor_set_f64(&td, 0, a);
            break;
        }
        }
    }
}

static cs_status scatter_elements_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                        cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    int axis;
    reduction r = 0;
    cs_status rc = elements_check(n, in[0], in[1], &axis, err);
    if (rc || (rc = parse_reduction(n, &r, err))) return rc;
    if (in[2]->dtype != in[0]->dtype || in[2]->rank != in[1]->rank ||
        memcmp(in[2]->dims, in[1]->dims, sizeof(int64_t) * (size_t)in[1]->rank))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "updates must have data's type and the indices' shape");
    cs__same_shape(out, in[0]);
    return CS_OK;
}

static cs_status scatter_elements_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                      cs_tensor *out, int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    int axis;
    reduction r = 0;
    cs_status rc = elements_check(ctx->node, x, idx, &axis, ctx->err);
    if (rc || (rc = parse_reduction(ctx->node, &r, ctx->err))) return rc;
    size_t es = cs_dtype_size(x->dtype);
    memcpy(out->data, x->data, (size_t)cs__numel(x) * es);
    elem_walk w;
    walk_init(&w, x, idx, axis);
    int64_t total = cs__numel(idx);
    for (int64_t i = 0; i < total; i++, walk_next(&w)) {
        int64_t v = 0;
        if ((rc = fetch_index(ctx->node, idx, i, x->dims[axis], &v, ctx->err))) return rc;
        reduce_into((uint8_t *)out->data + (w.base + v * w.stride[axis]) * es,
                    (const uint8_t *)upd->data + i * es, 1, x->dtype, r);
    }
    return CS_OK;
}

/* --- GatherND, ScatterND ----------------------------------------------------------------- */

/*
 * Both split `indices` into tuples of its last dimension k; a tuple (after batch_dims
 * leading batch coordinates, GatherND only) addresses a slice of data of
 * prod(data.dims[b+k:]) elements. nd_offset turns tuple t into that slice's element offset.
 */
typedef struct nd_plan {
    int b, k;
    int64_t n_batch, per_batch; /* tuples per batch */
    int64_t slice;              /* elements per addressed slice */
    int64_t batch_stride;       /* elements of data per batch */
    int64_t stride[CS_MAX_RANK];
} nd_plan;

static cs_status nd_plan_init(const cs__node *n, const cs_tensor *data, const cs_tensor *idx, int b,
                              nd_plan *p, cs_error *err)
{
    cs_status rc = need_index_type(n, idx, "indices", err);
    if (rc) return rc;
    if (data->rank < 1 || idx->rank < 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "data and indices must have rank >= 1");
    if (b < 0 || b >= idx->rank || b >= data->rank)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "batch_dims %d must be less than both ranks (%d and %d)", b,
                              data->rank, idx->rank);
    int64_t k = idx->dims[idx->rank - 1];
    if (k < 1 || k > data->rank - b)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "the indices' last dimension is %lld; it must be in [1, %d]",
                              (long long)k, data->rank - b);
    for (int d = 0; d < b; d++)
        if (idx->dims[d] != data->dims[d])
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "batch dimension %d differs: data %lld, indices %lld", d,
                                  (long long)data->dims[d], (long long)idx->dims[d]);
    p->b = b;
    p->k = (int)k;
    p->n_batch = prod(data->dims, 0, b);
    p->per_batch = prod(idx->dims, b, idx->rank - 1);
    p->slice = prod(data->dims, b + p->k, data->rank);
    p->batch_stride = prod(data->dims, b, data->rank);
    cs__strides(data, p->stride);
    return CS_OK;
}

static cs_status nd_offset(const cs__node *n, const nd_plan *p, const cs_tensor *data,
                           const cs_tensor *idx, int64_t t, int64_t *off, cs_error *err)
{
    int64_t o = t / p->per_batch * p->batch_stride;
    for (int j = 0; j < p->k; j++) {
        int64_t v = 0;
        cs_status rc = fetch_index(n, idx, t * p->k + j, data->dims[p->b + j], &v, err);
        if (rc) return rc;
        o += v * p->stride[p->b + j];
    }
    *off = o;
    return CS_OK;
}

static cs_status gather_nd_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    nd_plan p;
    cs_status rc = nd_plan_init(n, x, idx, (int)cs__attr_int(n, "batch_dims", 0), &p, err);
    if (rc) return rc;
    int rank = idx->rank - 1 + x->rank - p.b - p.k;
    if (rank > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank,
                              CS_MAX_RANK);
    out->dtype = x->dtype;
    out->rank = 0;
    for (int d = 0; d < idx->rank - 1; d++) out->dims[out->rank++] = idx->dims[d];
    for (int d = p.b + p.k; d < x->rank; d++) out->dims[out->rank++] = x->dims[d];
    return CS_OK;
}

static cs_status gather_nd_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                               int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    nd_plan p;
    cs_status rc = nd_plan_init(ctx->node, x, idx, (int)cs__attr_int(ctx->node, "batch_dims", 0),
                                &p, ctx->err);
    if (rc) return rc;
    size_t block = (size_t)p.slice * cs_dtype_size(x->dtype);
    int64_t tuples = p.n_batch * p.per_batch;
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off;
        if ((rc = nd_offset(ctx->node, &p, x, idx, t, &off, ctx->err))) return rc;
        memcpy((uint8_t *)out->data + t * block,
               (const uint8_t *)x->data + off * cs_dtype_size(x->dtype), block);
    }
    return CS_OK;
}

static cs_status scatter_nd_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    nd_plan p;
    reduction r = 0;
    cs_status rc = nd_plan_init(n, x, idx, 0, &p, err);
    if (rc || (rc = parse_reduction(n, &r, err))) return rc;
    /* updates' shape is indices.shape[:-1] + data.shape[k:] */
    bool ok = upd->dtype == x->dtype && upd->rank == idx->rank - 1 + x->rank - p.k;
    for (int d = 0; ok && d < upd->rank; d++)
        ok = upd->dims[d] == (d < idx->rank - 1 ? idx->dims[d] : x->dims[d - idx->rank + 1 + p.k]);
    if (!ok)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "updates must have data's type and shape "
                              "indices.shape[:-1] + data.shape[%d:]",
                              p.k);
    cs__same_shape(out, x);
    return CS_OK;
}

static cs_status scatter_nd_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                                int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    nd_plan p;
    reduction r = 0;
    cs_status rc = nd_plan_init(ctx->node, x, idx, 0, &p, ctx->err);
    if (rc || (rc = parse_reduction(ctx->node, &r, ctx->err))) return rc;
    size_t es = cs_dtype_size(x->dtype);
    memcpy(out->data, x->data, (size_t)cs__numel(x) * es);
    for (int64_t t = 0; t < p.per_batch; t++) {
        int64_t off;
        if ((rc = nd_offset(ctx->node, &p, x, idx, t, &off, ctx->err))) return rc;
        reduce_into((uint8_t *)out->data + off * es, (const uint8_t *)upd->data + t * p.slice * es,
                    p.slice, x->dtype, r);
    }
    return CS_OK;
}

/* --- OneHot ------------------------------------------------------------------------------ */

static cs_status onehot_depth(const cs__node *n, const cs_tensor *t, int64_t *depth, cs_error *err)
{
    if (cs__numel(t) != 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "depth must hold exactly one value");
    double d = cs_tensor_get_f64(t, 0);
    if (!(d >= 1 && d < 9.2e18))
        return cs__node_error(err, n, CS_ERR_INVALID, "depth must be positive, got %g", d);
    *depth = (int64_t)d;
    return CS_OK;
}

static cs_status onehot_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *idx = in[0], *dep = in[1], *val = in[2];
    if (cs__numel(val) != 2)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "values must hold exactly two elements [off, on], got %lld",
                              (long long)cs__numel(val));
    if (idx->rank + 1 > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank exceeds %d", CS_MAX_RANK);
    int axis;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", -1), idx->rank, true, &axis, err);
    if (rc) return rc;
    if (!dep->data) return CS__DEFER;
    int64_t depth = 0;
    if ((rc = onehot_depth(n, dep, &depth, err))) return rc;
    out->dtype = val->dtype;
    out->rank = idx->rank + 1;
    for (int d = 0, s = 0; d < out->rank; d++) out->dims[d] = d == axis ? depth : idx->dims[s++];
    return check_size(n, out, err);
}

static cs_status onehot_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *idx = in[0], *val = in[2];
    int axis;
    cs_status rc =
        cs__axis(ctx->node, cs__attr_int(ctx->node, "axis", -1), idx->rank, true, &axis, ctx->err);
    if (rc) return rc;
    int64_t depth = out->dims[axis], inner = prod(idx->dims, axis, idx->rank);
    int64_t total = cs__numel(out);
    size_t es = cs_dtype_size(val->dtype);
    const uint8_t *off = val->data, *on = off + es;
    uint8_t *o = out->data;
    for (int64_t i = 0; i < total; i++) memcpy(o + i * es, off, es);
    /* Indices outside [-depth, depth) leave their row all "off", as the spec asks. */
    int64_t n_idx = cs__numel(idx);
    for (int64_t i = 0; i < n_idx; i++) {
        int64_t v = cs_tensor_get_i64(idx, i);
        if (v < 0) v += depth;
        if (v < 0 || v >= depth) continue;
        memcpy(o + ((i / inner * depth + v) * inner + i % inner) * es, on, es);
    }
    return CS_OK;
}

/* --- NonZero ----------------------------------------------------------------------------- */

/* Element i is nonzero when any of its bytes is, except that float -0.0 counts as zero. */
static bool elem_nonzero(const cs_tensor *t, int64_t i)
{
    size_t es = cs_dtype_size(t->dtype);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)i * es;
    uint8_t top = is_float_type(t->dtype) ? 0x7f : 0xff; /* little-endian: sign is in p[es-1] */
    for (size_t b = 0; b + 1 < es; b++)
        if (p[b]) return true;
    return (p[es - 1] & top) != 0;
}

static cs_status nonzero_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    (void)n, (void)n_in, (void)n_out, (void)err;
    const cs_tensor *x = in[0];
    if (!x->data) return CS__DEFER;
    int64_t count = 0, total = cs__numel(x);
    for (int64_t i = 0; i < total; i++) count += elem_nonzero(x, i);
    out->dtype = CS_DTYPE_INT64;
    out->rank = 2;
    out->dims[0] = x->rank > 0 ? x->rank : 1; /* numpy treats a scalar as shape [1] */
    out->dims[1] = count;
    return CS_OK;
}

static cs_status nonzero_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                             int n_out)
{
    (void)ctx, (void)n_in, (void)n_out;
    const cs_tensor *x = in[0];
    int64_t total = cs__numel(x), count = out->dims[1], k = 0;
    int64_t *o = out->data;
    int64_t strides[CS_MAX_RANK];
    cs__strides(x, strides);
    for (int64_t i = 0; i < total && k < count; i++) {
        if (!elem_nonzero(x, i)) continue;
        if (x->rank == 0) o[k] = 0;
        for (int d = 0; d < x->rank; d++) o[d * count + k] = i / strides[d] % x->dims[d];
        k++;
    }
    return CS_OK;
}

/* --- Pad --------------------------------------------------------------------------------- */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE } pad_mode;

/* The pads, mode and constant of a Pad node: attributes before opset 11, inputs after. */
typedef struct pad_args {
    pad_mode mode;
    int64_t pads[2 * CS_MAX_RANK];
    uint8_t value[8]; /* the constant in the data's type */
} pad_args;

static cs_status pad_args_read(const cs__node *n, const cs_tensor *const *in, int n_in, pad_args *a,
                               cs_error *err)
{
    const cs_tensor *x = in[0];
    const char *mode = cs__attr_str(n, "mode", "constant");
    if (!strcmp(mode, "constant"))
        a->mode = PAD_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        a->mode = PAD_REFLECT;
    else if (!strcmp(mode, "edge"))
        a->mode = PAD_EDGE;
    else
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "unsupported mode '%s'", mode);
    int count;
    memset(a->value, 0, sizeof a->value);
    if (n->opset < 11) {
        const int64_t *p;
        count = cs__attr_ints(n, "pads", &p);
        if (count < 0)
            return cs__node_error(err, n, CS_ERR_INVALID, "the 'pads' attribute is required");
        if (count == 2 * x->rank) memcpy(a->pads, p, sizeof(int64_t) * (size_t)count);
        cs_tensor v = {.dtype = x->dtype, .data = a->value};
        cs_tensor_set_f64(&v, 0, cs__attr_float(n, "value", 0.0f));
    } else {
        const cs_tensor *p = in[1];
        if (!p->data) return CS__DEFER;
        if (p->dtype != CS_DTYPE_INT64)
            return cs__node_error(err, n, CS_ERR_INVALID, "pads must be int64, got %s",
                                  cs_dtype_name(p->dtype));
        count = (int)cs__numel(p);
        if (count == 2 * x->rank) memcpy(a->pads, p->data, sizeof(int64_t) * (size_t)count);
        const cs_tensor *c = n_in > 2 ? in[2] : NULL;
        if (c && cs__numel(c) > 0) {
            if (c->dtype != x->dtype)
                return cs__node_error(err, n, CS_ERR_INVALID, "constant_value is %s but data is %s",
                                      cs_dtype_name(c->dtype), cs_dtype_name(x->dtype));
            if (!c->data) return CS__DEFER;
            memcpy(a->value, c->data, cs_dtype_size(x->dtype));
        }
    }
    if (count != 2 * x->rank)
        return cs__node_error(err, n, CS_ERR_INVALID, "pads must hold 2 * rank = %d values, got %d",
                              2 * x->rank, count);
    for (int d = 0; d < x->rank; d++) {
        int64_t b = a->pads[d], e = a->pads[d + x->rank];
        if (b < -0x1p62 || b > 0x1p62 || e < -0x1p62 || e > 0x1p62)
            return cs__node_error(err, n, CS_ERR_LIMIT, "pads for dimension %d are too large", d);
        int64_t kept = x->dims[d] + (b < 0 ? b : 0) + (e < 0 ? e : 0);
        if (kept < 0)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "pads remove more than dimension %d's %lld elements", d,
                                  (long long)x->dims[d]);
        if (a->mode != PAD_CONSTANT && kept == 0 && b + e + x->dims[d] > 0)
            return cs__node_error(err, n, CS_ERR_INVALID, "cannot %s-pad dimension %d: it is empty",
                                  a->mode == PAD_EDGE ? "edge" : "reflect", d);
    }
    return CS_OK;
}

static cs_status pad_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    (void)n_out;
    pad_args a;
    cs_status rc = pad_args_read(n, in, n_in, &a, err);
    if (rc) return rc;
    cs__same_shape(out, in[0]);
    for (int d = 0; d < out->rank; d++) out->dims[d] += a.pads[d] + a.pads[d + out->rank];
    return check_size(n, out, err);
}

/* Maps output coordinate o of an axis to a source coordinate, or -1 for the constant.
 * Negative pads crop first; edge and reflect then extend the cropped range, as in
 * onnxruntime. */
static int64_t pad_source(pad_mode mode, int64_t o, int64_t begin, int64_t end, int64_t dim)
{
    int64_t lo = begin < 0 ? -begin : 0, n = dim - lo - (end < 0 ? -end : 0);
    int64_t s = o - (begin > 0 ? begin : 0);
    if (s >= 0 && s < n) return lo + s;
    switch (mode) {
    case PAD_EDGE: return lo + (s < 0 ? 0 : n - 1);
    case PAD_REFLECT: {
        if (n == 1) return lo;
        int64_t period = 2 * (n - 1), m = s % period;
        if (m < 0) m += period;
        return lo + (m < n ? m : period - m);
    }
    default: return -1;
    }
}

/*
 * Walks the output row by row (all axes but the last); each row maps to a source row or
 * to the constant, and within a row the part inside the source is one memcpy, so the cost
 * is a few index computations per row plus one per padded element.
 */
static cs_status pad_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    (void)n_out;
    const cs_tensor *x = in[0];
    pad_args a;
    cs_status rc = pad_args_read(ctx->node, in, n_in, &a, ctx->err);
    if (rc) return rc;
    size_t es = cs_dtype_size(x->dtype);
    int r = x->rank;
    if (r == 0) {
        memcpy(out->data, x->data, es);
        return CS_OK;
    }
    int64_t ow = out->dims[r - 1], iw = x->dims[r - 1];
    int64_t begin = a.pads[r - 1], end = a.pads[2 * r - 1];
    int64_t rows = prod(out->dims, 0, r - 1), xstr[CS_MAX_RANK];
    cs__strides(x, xstr);
    /* The span [lo, hi) of each row that copies the (cropped) source row in one piece. */
    int64_t lo = begin > 0 ? begin : 0;
    int64_t kept = iw + (begin < 0 ? begin : 0) + (end < 0 ? end : 0);
    int64_t hi = lo + kept < ow ? lo + kept : ow;
    for (int64_t row = 0; row < rows; row++) {
        uint8_t *dst = (uint8_t *)out->data + (size_t)(row * ow) * es;
        int64_t src = 0, q = row;
        for (int d = r - 2; d >= 0 && src >= 0; d--) {
            int64_t s = pad_source(a.mode, q % out->dims[d], a.pads[d], a.pads[d + r], x->dims[d]);
            q /= out->dims[d];
            src = s < 0 ? -1 : src + s * xstr[d];
        }
        const uint8_t *srow = (const uint8_t *)x->data + (src < 0 ? 0 : src) * (int64_t)es;
        if (src >= 0 && hi > lo)
            memcpy(dst + lo * es, srow + pad_source(a.mode, lo, begin, end, iw) * es,
                   (size_t)(hi - lo) * es);
        for (int64_t i = 0; i < ow; i++) {
            if (src >= 0 && i == lo && hi > lo) i = hi;
            if (i >= ow) break;
            int64_t s = src < 0 ? -1 : pad_source(a.mode, i, begin, end, iw);
            memcpy(dst + i * es, s < 0 ? a.value : srow + s * es, es);
        }
    }
    return CS_OK;
}

const cs__op cs__ops_gather[] = {
    {"Gather", NULL, 1, gather_infer},
    {"GatherElements", NULL, 11, gather_elements_infer},
    {"GatherND", NULL, 11, gather_nd_infer},
    {"Scatter", NULL, 9, scatter_elements_infer},
    {"ScatterElements", NULL, 11, scatter_elements_infer},
    {"ScatterND", NULL, 11, scatter_nd_infer},
    {"OneHot", NULL, 9, onehot_infer},
    {"NonZero", NULL, 9, nonzero_infer},
    {"Pad", NULL, 2, pad_infer},
    {0},
};

const cs__kernel cs__kernels_gather[] = {
    {"Gather", NULL, 1, CS__T_ALL, 0, gather_run, NULL},
    {"GatherElements", NULL, 11, CS__T_ALL, 0, gather_elements_run, NULL},
    {"GatherND", NULL, 11, CS__T_ALL, 0, gather_nd_run, NULL},
    {"Scatter", NULL, 9, CS__T_ALL, 0, scatter_elements_run, NULL},
    {"ScatterElements", NULL, 11, CS__T_ALL, 0, scatter_elements_run, NULL},
    {"ScatterND", NULL, 11, CS__T_ALL, 0, scatter_nd_run, NULL},
    {"OneHot", NULL, 9, CS__T_ALL, 2, onehot_run, NULL},
    {"NonZero", NULL, 9, CS__T_ALL, 0, nonzero_run, NULL},
    {"Pad", NULL, 2, CS__T_ALL, 0, pad_run, NULL},
    {0},
};

/*
 * gather.c - CPU kernels that move elements by index: Gather, GatherElements, GatherND,
 * Scatter/ScatterElements, ScatterND, OneHot, NonZero and Pad; their schemas (shape and
 * type inference) are in ops/gather.c.
 *
 * These kernels work on element size, not dtype: they copy bytes, so every numeric type
 * and bool shares one loop. Only the scatter reductions (add/mul/max/min) look at values,
 * through a per-element switch on dtype; scatters are rarely hot, so that cost is accepted
 * for the one code path. Every index is checked before it is used: an out-of-range index
 * is an error naming the node, never a stray read or write. Nothing here allocates.
 */
#include "engine/kernel.h"
#include "engine/ops/gather.h"

#include <string.h>

/* --- shared helpers -------------------------------------------------------------------- */

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

/* --- Gather ---------------------------------------------------------------------------- */

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
        x->dims[axis], (size_t)cs__dims_prod(x->dims, axis + 1, x->rank) * cs_dtype_size(x->dtype)};
    for (int64_t i = 0; i < j.n_idx; i++) {
        int64_t v = 0;
        if ((rc = fetch_index(ctx->node, idx, i, j.dim, &v, ctx->err))) return rc;
    }
    int64_t rows = cs__dims_prod(x->dims, 0, axis) * j.n_idx;
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

static cs_status gather_elements_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                     cs_tensor *out, int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    int axis;
    cs_status rc = cs__elements_check(ctx->node, x, idx, &axis, ctx->err);
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

#define RED_APPLY(T, d, s, r)                               \
    do {                                                    \
        T *d_ = (T *)(d);                                   \
        T s_ = *(const T *)(s);                             \
        switch (r) {                                        \
        case CS__RED_ADD: *d_ = (T)(*d_ + s_); break;       \
        case CS__RED_MUL: *d_ = (T)(*d_ * s_); break;       \
        case CS__RED_MAX: *d_ = *d_ > s_ ? *d_ : s_; break; \
        case CS__RED_MIN: *d_ = *d_ < s_ ? *d_ : s_; break; \
        default: *d_ = s_; break;                           \
        }                                                   \
    } while (0)

/* Combines `count` elements of src into dst with reduction r. */
static void reduce_into(void *dst, const void *src, int64_t count, cs_dtype t, cs__reduction r)
{
    size_t es = cs_dtype_size(t);
    if (r == CS__RED_NONE) {
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

static cs_status scatter_elements_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                      cs_tensor *out, int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    int axis;
    cs__reduction r = 0;
    cs_status rc = cs__elements_check(ctx->node, x, idx, &axis, ctx->err);
    if (rc || (rc = cs__reduction_get(ctx->node, &r, ctx->err))) return rc;
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

/* The element offset in data of the slice that tuple t addresses; checks its indices. */
static cs_status nd_offset(const cs__node *n, const cs__nd_plan *p, const cs_tensor *data,
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

static cs_status gather_nd_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                               int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    cs__nd_plan p;
    cs_status rc = cs__nd_plan_init(ctx->node, x, idx,
                                    (int)cs__attr_int(ctx->node, "batch_dims", 0), &p, ctx->err);
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

static cs_status scatter_nd_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                                int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    cs__nd_plan p;
    cs__reduction r = 0;
    cs_status rc = cs__nd_plan_init(ctx->node, x, idx, 0, &p, ctx->err);
    if (rc || (rc = cs__reduction_get(ctx->node, &r, ctx->err))) return rc;
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

static cs_status onehot_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    (void)n_in, (void)n_out;
    const cs_tensor *idx = in[0], *val = in[2];
    int axis;
    cs_status rc =
        cs__axis(ctx->node, cs__attr_int(ctx->node, "axis", -1), idx->rank, true, &axis, ctx->err);
    if (rc) return rc;
    int64_t depth = out->dims[axis], inner = cs__dims_prod(idx->dims, axis, idx->rank);
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
        if (!cs__elem_nonzero(x, i)) continue;
        if (x->rank == 0) o[k] = 0;
        for (int d = 0; d < x->rank; d++) o[d * count + k] = i / strides[d] % x->dims[d];
        k++;
    }
    return CS_OK;
}

/* --- Pad --------------------------------------------------------------------------------- */

/* Maps output coordinate o of an axis to a source coordinate, or -1 for the constant.
 * Negative pads crop first; edge and reflect then extend the cropped range, as in
 * onnxruntime. */
static int64_t pad_source(cs__padding mode, int64_t o, int64_t begin, int64_t end, int64_t dim)
{
    int64_t lo = begin < 0 ? -begin : 0, n = dim - lo - (end < 0 ? -end : 0);
    int64_t s = o - (begin > 0 ? begin : 0);
    if (s >= 0 && s < n) return lo + s;
    switch (mode) {
    case CS__PADDING_EDGE: return lo + (s < 0 ? 0 : n - 1);
    case CS__PADDING_REFLECT: {
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
    cs__pad_args a;
    cs_status rc = cs__pad_args_read(ctx->node, in, n_in, &a, ctx->err);
    if (rc) return rc;
    size_t es = cs_dtype_size(x->dtype);
    int r = x->rank;
    if (r == 0) {
        memcpy(out->data, x->data, es);
        return CS_OK;
    }
    int64_t ow = out->dims[r - 1], iw = x->dims[r - 1];
    int64_t begin = a.pads[r - 1], end = a.pads[2 * r - 1];
    int64_t rows = cs__dims_prod(out->dims, 0, r - 1), xstr[CS_MAX_RANK];
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

/*
 * gather.c - schemas of the operators that move elements by index: Gather, GatherElements,
 * GatherND, Scatter/ScatterElements, ScatterND, OneHot, NonZero and Pad: shape and type
 * inference, apart from any backend.
 *
 * Indices must be int32 or int64 and their shapes must fit the data's; their values are
 * only checked when the kernels read them. OneHot's depth, NonZero's input and Pad's pads
 * decide the output shape, so infer defers until they are known. Output element counts
 * past 2^62 are refused. What the kernels check by the same rules (the element-wise and
 * ND index geometry, the scatter reduction, Pad's arguments) is declared in ops/gather.h.
 */
#include "engine/ops/gather.h"

#include <string.h>

/* --- shared helpers -------------------------------------------------------------------- */

static cs_status need_index_type(const cs__node *n, const cs_tensor *t, const char *what,
                                 cs_error *err)
{
    if (t->dtype == CS_DTYPE_INT32 || t->dtype == CS_DTYPE_INT64) return CS_OK;
    return cs__node_error(err, n, CS_ERR_INVALID, "%s must be int32 or int64, got %s", what,
                          cs_dtype_name(t->dtype));
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

/* --- GatherElements, ScatterElements ---------------------------------------------------- */

cs_status cs__elements_check(const cs__node *n, const cs_tensor *data, const cs_tensor *idx,
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
    cs_status rc = cs__elements_check(n, in[0], in[1], &axis, err);
    if (rc) return rc;
    cs__same_shape(out, in[1]);
    out->dtype = in[0]->dtype;
    return CS_OK;
}

cs_status cs__reduction_get(const cs__node *n, cs__reduction *r, cs_error *err)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *s = cs__attr_str(n, "reduction", "none");
    int count = n->opset >= 18 ? 5 : 3;
    for (int i = 0; i < count; i++) {
        if (!strcmp(s, names[i])) {
            *r = (cs__reduction)i;
            return CS_OK;
        }
    }
    return cs__node_error(err, n, CS_ERR_INVALID, "unsupported reduction '%s'", s);
}

static cs_status scatter_elements_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                        cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    int axis;
    cs__reduction r = 0;
    cs_status rc = cs__elements_check(n, in[0], in[1], &axis, err);
    if (rc || (rc = cs__reduction_get(n, &r, err))) return rc;
    if (in[2]->dtype != in[0]->dtype || in[2]->rank != in[1]->rank ||
        memcmp(in[2]->dims, in[1]->dims, sizeof(int64_t) * (size_t)in[1]->rank))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "updates must have data's type and the indices' shape");
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* --- GatherND, ScatterND ----------------------------------------------------------------- */

cs_status cs__nd_plan_init(const cs__node *n, const cs_tensor *data, const cs_tensor *idx, int b,
                           cs__nd_plan *p, cs_error *err)
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
    p->n_batch = cs__dims_prod(data->dims, 0, b);
    p->per_batch = cs__dims_prod(idx->dims, b, idx->rank - 1);
    p->slice = cs__dims_prod(data->dims, b + p->k, data->rank);
    p->batch_stride = cs__dims_prod(data->dims, b, data->rank);
    cs__strides(data, p->stride);
    return CS_OK;
}

static cs_status gather_nd_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1];
    cs__nd_plan p;
    cs_status rc = cs__nd_plan_init(n, x, idx, (int)cs__attr_int(n, "batch_dims", 0), &p, err);
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

static cs_status scatter_nd_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0], *idx = in[1], *upd = in[2];
    cs__nd_plan p;
    cs__reduction r = 0;
    cs_status rc = cs__nd_plan_init(n, x, idx, 0, &p, err);
    if (rc || (rc = cs__reduction_get(n, &r, err))) return rc;
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

/* --- NonZero ----------------------------------------------------------------------------- */

/* Element i is nonzero when any of its bytes is, except that float -0.0 counts as zero. */
bool cs__elem_nonzero(const cs_tensor *t, int64_t i)
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
    for (int64_t i = 0; i < total; i++) count += cs__elem_nonzero(x, i);
    out->dtype = CS_DTYPE_INT64;
    out->rank = 2;
    out->dims[0] = x->rank > 0 ? x->rank : 1; /* numpy treats a scalar as shape [1] */
    out->dims[1] = count;
    return CS_OK;
}

/* --- Pad --------------------------------------------------------------------------------- */

cs_status cs__pad_args_read(const cs__node *n, const cs_tensor *const *in, int n_in,
                            cs__pad_args *a, cs_error *err)
{
    const cs_tensor *x = in[0];
    const char *mode = cs__attr_str(n, "mode", "constant");
    if (!strcmp(mode, "constant"))
        a->mode = CS__PADDING_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        a->mode = CS__PADDING_REFLECT;
    else if (!strcmp(mode, "edge"))
        a->mode = CS__PADDING_EDGE;
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
        if (a->mode != CS__PADDING_CONSTANT && kept == 0 && b + e + x->dims[d] > 0)
            return cs__node_error(err, n, CS_ERR_INVALID, "cannot %s-pad dimension %d: it is empty",
                                  a->mode == CS__PADDING_EDGE ? "edge" : "reflect", d);
    }
    return CS_OK;
}

static cs_status pad_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    (void)n_out;
    cs__pad_args a;
    cs_status rc = cs__pad_args_read(n, in, n_in, &a, err);
    if (rc) return rc;
    cs__same_shape(out, in[0]);
    for (int d = 0; d < out->rank; d++) out->dims[d] += a.pads[d] + a.pads[d + out->rank];
    return check_size(n, out, err);
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

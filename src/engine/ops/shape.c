/*
 * shape.c - schemas of the operators that relabel or produce shapes and small tensors:
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference), Shape, Size,
 * Constant, ConstantOfShape, Range and EyeLike: shape and type inference, apart from any
 * backend. Also the helpers the shape and layout families share (ops/shape.h).
 *
 * Integer arguments that were attributes in old opsets and became inputs later (Squeeze's
 * and Unsqueeze's axes, Reshape's shape) are read through cs__ints_get, which prefers the
 * input and falls back to the attribute, so one schema serves every version. Outputs whose
 * shape comes from input values (Reshape, ConstantOfShape, Range) defer until they are known.
 */
#include "engine/ops/shape.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers shared with the layout family (declared in shape.h) --------------------- */

int64_t cs__ints_at(const cs__ints *l, int i)
{
    return l->t ? cs_tensor_get_i64(l->t, i) : l->v[i];
}

cs_status cs__ints_get(const cs__node *n, const cs_tensor *const *in, int n_in, int idx,
                       const char *attr, cs__ints *l, cs_error *err)
{
    *l = (cs__ints){NULL, NULL, -1};
    if (idx < n_in && in[idx]) {
        const cs_tensor *t = in[idx];
        int64_t count = cs__numel(t);
        if (t->rank > 1 || cs_dtype_size(t->dtype) == 0 || count > INT_MAX)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "input %d must be a 1-D list of integers (got %s, rank %d)", idx,
                                  cs_dtype_name(t->dtype), t->rank);
        if (count && !t->data) return CS__DEFER;
        l->t = t;
        l->n = (int)count;
        return CS_OK;
    }
    if (attr) l->n = cs__attr_ints(n, attr, &l->v);
    return CS_OK;
}

const char *cs__fmt_dims(char *buf, size_t size, const int64_t *d, int rank)
{
    int k = snprintf(buf, size, "[");
    for (int i = 0; i < rank && k > 0 && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, "%s%lld", i ? "," : "", (long long)d[i]);
    if (k > 0 && (size_t)k < size) snprintf(buf + k, size - (size_t)k, "]");
    return buf;
}

cs_status cs__set_dims(const cs__node *n, cs_tensor *out, const int64_t *dims, int rank,
                       cs_error *err)
{
    char buf[200];
    int64_t total = 1;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0 || __builtin_mul_overflow(total, dims[i], &total))
            return cs__node_error(err, n, CS_ERR_INVALID, "invalid output shape %s",
                                  cs__fmt_dims(buf, sizeof buf, dims, rank));
    out->rank = rank;
    if (out->dims != dims) memcpy(out->dims, dims, (size_t)rank * sizeof dims[0]);
    return CS_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ----------------------------------- */

/* Shape from the shape input (opset 5+) or attribute (opset 1); 0 copies the input's dim
 * unless allowzero (opset 14), and one -1 takes what is left. */
static cs_status reshape_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    const cs_tensor *x = in[0];
    char buf[200];
    cs__ints s;
    cs_status rc = cs__ints_get(n, in, n_in, 1, "shape", &s, err);
    if (rc != CS_OK) return rc;
    if (s.n < 0) return cs__node_error(err, n, CS_ERR_INVALID, "needs a shape input");
    if (s.n > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "target rank %d exceeds the maximum %d",
                              s.n, CS_MAX_RANK);
    bool allowzero = cs__attr_int(n, "allowzero", 0) != 0;
    int64_t want[CS_MAX_RANK], known = 1, total = cs__numel(x);
    int fill_at = -1;
    for (int i = 0; i < s.n; i++) want[i] = cs__ints_at(&s, i);
    for (int i = 0; i < s.n; i++) {
        int64_t d = want[i];
        if (d == 0 && !allowzero) {
            if (i >= x->rank)
                return cs__node_error(err, n, CS_ERR_INVALID,
                                      "shape %s copies dimension %d, but the input has rank %d",
                                      cs__fmt_dims(buf, sizeof buf, want, s.n), i, x->rank);
            d = x->dims[i];
        } else if (d == -1) {
            if (fill_at >= 0)
                return cs__node_error(err, n, CS_ERR_INVALID, "shape %s has more than one -1",
                                      cs__fmt_dims(buf, sizeof buf, want, s.n));
            fill_at = i;
            continue;
        } else if (d < -1) {
            return cs__node_error(err, n, CS_ERR_INVALID, "shape %s has a negative dimension",
                                  cs__fmt_dims(buf, sizeof buf, want, s.n));
        }
        out->dims[i] = d;
        if (__builtin_mul_overflow(known, d, &known)) known = -1;
    }
    if (fill_at >= 0 && known > 0 && total % known == 0) {
        out->dims[fill_at] = total / known;
        known = total;
    } else if (fill_at >= 0) {
        known = -1; /* nothing fits the -1 (or, next to zeros, anything would) */
    }
    if (known != total)
        return cs__node_error(err, n, CS_ERR_INVALID, "cannot reshape %lld elements into %s",
                              (long long)total, cs__fmt_dims(buf, sizeof buf, want, s.n));
    out->dtype = x->dtype;
    out->rank = s.n;
    return CS_OK;
}

/* Flatten's axis lies in [-rank, rank] and a negative one counts from the end (unlike
 * cs__axis's inclusive mode, which reads -1 as "after the last axis"). */
static cs_status flatten_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    const cs_tensor *x = in[0];
    int64_t axis = cs__attr_int(n, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return cs__node_error(err, n, CS_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    out->dtype = x->dtype;
    out->rank = 2;
    out->dims[0] = out->dims[1] = 1;
    for (int d = 0; d < x->rank; d++) out->dims[d < axis ? 0 : 1] *= x->dims[d];
    return CS_OK;
}

/* Axes from the input (opset 13) or attribute; with none, every axis of size 1 goes. */
static cs_status squeeze_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    const cs_tensor *x = in[0];
    bool drop[CS_MAX_RANK] = {0};
    cs__ints axes;
    cs_status rc = cs__ints_get(n, in, n_in, 1, "axes", &axes, err);
    if (rc != CS_OK) return rc;
    for (int d = 0; d < x->rank && axes.n < 0; d++) drop[d] = x->dims[d] == 1;
    for (int i = 0; i < axes.n; i++) {
        int a;
        if ((rc = cs__axis(n, cs__ints_at(&axes, i), x->rank, false, &a, err)) != CS_OK) return rc;
        if (x->dims[a] != 1)
            return cs__node_error(err, n, CS_ERR_INVALID, "cannot squeeze axis %d of size %lld", a,
                                  (long long)x->dims[a]);
        drop[a] = true;
    }
    out->dtype = x->dtype;
    out->rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) out->dims[out->rank++] = x->dims[d];
    return CS_OK;
}

/* Axes (input from opset 13, attribute before) index the output, whose rank grows by
 * their count. */
static cs_status unsqueeze_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 cs_tensor *out, int n_out, cs_error *err)
{
    const cs_tensor *x = in[0];
    bool added[CS_MAX_RANK] = {0};
    cs__ints axes;
    cs_status rc = cs__ints_get(n, in, n_in, 1, "axes", &axes, err);
    if (rc != CS_OK) return rc;
    if (axes.n < 0) return cs__node_error(err, n, CS_ERR_INVALID, "needs axes");
    int rank = x->rank + axes.n;
    if (rank > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d",
                              rank, CS_MAX_RANK);
    for (int i = 0; i < axes.n; i++) {
        int a;
        if ((rc = cs__axis(n, cs__ints_at(&axes, i), rank, false, &a, err)) != CS_OK) return rc;
        if (added[a]) return cs__node_error(err, n, CS_ERR_INVALID, "axis %d is repeated", a);
        added[a] = true;
    }
    out->dtype = x->dtype;
    out->rank = rank;
    for (int d = 0, k = 0; d < rank; d++) out->dims[d] = added[d] ? 1 : x->dims[k++];
    return CS_OK;
}

static cs_status identity_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                cs_tensor *out, int n_out, cs_error *err)
{
    cs__same_shape(&out[0], in[0]);
    return CS_OK;
}

/* ---- Shape, Size ---------------------------------------------------------------------- */

/* Shape's [start, end) window over the dims (opset 15); negative bounds count from the end
 * and out-of-range ones clamp. */
void cs__shape_window(const cs__node *n, int rank, int64_t *start, int64_t *end)
{
    int64_t s = cs__attr_int(n, "start", 0), e = cs__attr_int(n, "end", rank);
    *start = cs__clamp64(s < 0 ? s + rank : s, 0, rank);
    *end = cs__clamp64(e < 0 ? e + rank : e, 0, rank);
    if (*end < *start) *end = *start;
}

static cs_status shape_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    int64_t start, end;
    cs__shape_window(n, in[0]->rank, &start, &end);
    out->dtype = CS_DTYPE_INT64;
    out->rank = 1;
    out->dims[0] = end - start;
    return CS_OK;
}

static cs_status size_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    out->dtype = CS_DTYPE_INT64;
    out->rank = 0;
    return CS_OK;
}

/* ---- Dropout -------------------------------------------------------------------------- */

/* Dropout is served for inference only: the output is the input and the optional mask is
 * all ones. Opset 12's training_mode input asks for a random mask, which is only
 * equivalent when the ratio is 0; anything else is refused rather than silently ignored.
 * (Before opset 7, is_test = 0 also meant training; like other runtimes, those nodes are
 * read as inference.) Checked at plan time when the inputs are known, else at run time. */
cs_status cs__dropout_check(const cs__node *n, const cs_tensor *const *in, int n_in, cs_error *err)
{
    if (n_in < 3 || !in[2] || !in[2]->data || !cs_tensor_get_i64(in[2], 0)) return CS_OK;
    const cs_tensor *r = n_in > 1 ? in[1] : NULL;
    if (r && !r->data) return CS_OK;
    double ratio = r ? cs_tensor_get_f64(r, 0) : 0.5;
    if (ratio != 0)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                              "training_mode with ratio %g is not supported (inference only)",
                              ratio);
    return CS_OK;
}

static cs_status dropout_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    for (int i = 1; i < n_in && i < 3; i++)
        if (in[i] && cs__numel(in[i]) != 1)
            return cs__node_error(err, n, CS_ERR_INVALID, "%s must be a scalar",
                                  i == 1 ? "ratio" : "training_mode");
    cs__same_shape(&out[0], in[0]);
    if (n_out > 1) {
        cs__same_shape(&out[1], in[0]);
        if (n->opset >= 10) out[1].dtype = CS_DTYPE_BOOL;
    }
    return cs__dropout_check(n, in, n_in, err);
}

/* ---- Constant, ConstantOfShape, Range, EyeLike ---------------------------------------- */

/* Constant's value: the `value` tensor, or (opset 12) value_float(s) / value_int(s), seen
 * as a tensor without copying. Sets t's dtype and shape and *src to the bytes. */
cs_status cs__constant_value(const cs__node *n, cs_tensor *t, const void **src, cs_error *err)
{
    for (int i = 0; i < n->n_attr; i++) {
        const cs__attr *a = &n->attr[i];
        if (!strcmp(a->name, "value") && a->type == CS__ATTR_TENSOR && a->t) {
            if (cs_dtype_size(a->t->dtype) == 0)
                return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "%s values are not supported",
                                      cs_dtype_name(a->t->dtype));
            cs__same_shape(t, a->t);
            *src = a->t->data;
            return CS_OK;
        }
        bool many = !strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints");
        if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_floats")) {
            t->dtype = CS_DTYPE_FLOAT32;
            *src = many ? (const void *)a->floats : &a->f;
        } else if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
            t->dtype = CS_DTYPE_INT64;
            *src = many ? (const void *)a->ints : &a->i;
        } else if (!strcmp(a->name, "sparse_value") || !strncmp(a->name, "value_string", 12)) {
            return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "attribute %s is not supported",
                                  a->name);
        } else {
            continue;
        }
        t->rank = many;
        t->dims[0] = a->n;
        return CS_OK;
    }
    return cs__node_error(err, n, CS_ERR_INVALID, "has no value attribute");
}

static cs_status constant_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                cs_tensor *out, int n_out, cs_error *err)
{
    const void *src;
    return cs__constant_value(n, out, &src, err);
}

/* ConstantOfShape's fill value: a one-element tensor attribute, default float32 zero. */
const cs_tensor *cs__constantofshape_value(const cs__node *n)
{
    const cs__attr *a = cs__attr_find(n, "value");
    return a && a->type == CS__ATTR_TENSOR ? a->t : NULL;
}

static cs_status constantofshape_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                       cs_tensor *out, int n_out, cs_error *err)
{
    const cs_tensor *v = cs__constantofshape_value(n);
    int64_t dims[CS_MAX_RANK];
    cs__ints s;
    cs_status rc = cs__ints_get(n, in, n_in, 0, NULL, &s, err);
    if (rc != CS_OK) return rc;
    if (v && (cs__numel(v) != 1 || cs_dtype_size(v->dtype) == 0))
        return cs__node_error(err, n, CS_ERR_INVALID, "value must be one number");
    if (s.n > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d",
                              s.n, CS_MAX_RANK);
    for (int i = 0; i < s.n; i++) dims[i] = cs__ints_at(&s, i);
    out->dtype = v ? v->dtype : CS_DTYPE_FLOAT32;
    return cs__set_dims(n, out, dims, s.n, err);
}

/* Outputs beyond this are refused: a Range that large is a malformed model. */
#define RANGE_MAX ((int64_t)1 << 31)

/* Range's length, max(ceil((limit - start) / delta), 0); integers are counted exactly in
 * unsigned arithmetic so extreme int64 bounds cannot overflow. */
static cs_status range_count(const cs__node *n, const cs_tensor *const *in, int n_in,
                             int64_t *count, cs_error *err)
{
    static const char *const names[] = {"start", "limit", "delta"};
    for (int i = 0; i < 3; i++) {
        if (i >= n_in || !in[i] || cs__numel(in[i]) != 1 || in[i]->dtype != in[0]->dtype)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "%s must be a scalar of the same type as start", names[i]);
        if (!in[i]->data) return CS__DEFER;
    }
    if (cs__is_float(in[0]->dtype)) {
        double s = cs_tensor_get_f64(in[0], 0), l = cs_tensor_get_f64(in[1], 0),
               d = cs_tensor_get_f64(in[2], 0);
        double c = ceil((l - s) / d);
        if (d == 0 || !(c < (double)RANGE_MAX))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "cannot count from %g to %g in steps of %g", s, l, d);
        *count = c > 0 ? (int64_t)c : 0;
    } else {
        int64_t s = cs_tensor_get_i64(in[0], 0), l = cs_tensor_get_i64(in[1], 0),
                d = cs_tensor_get_i64(in[2], 0);
        if (d == 0) return cs__node_error(err, n, CS_ERR_INVALID, "delta must not be 0");
        uint64_t span = d > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
        uint64_t step = d > 0 ? (uint64_t)d : -(uint64_t)d;
        uint64_t c = (d > 0 ? l > s : l < s) ? (span - 1) / step + 1 : 0;
        if (c >= (uint64_t)RANGE_MAX)
            return cs__node_error(err, n, CS_ERR_LIMIT, "output of %llu elements is too large",
                                  (unsigned long long)c);
        *count = (int64_t)c;
    }
    return CS_OK;
}

static cs_status range_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    cs_status rc = range_count(n, in, n_in, &out->dims[0], err);
    out->dtype = in[0]->dtype;
    out->rank = 1;
    return rc;
}

static cs_status eyelike_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    if (in[0]->rank != 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "input must be 2-D, got rank %d",
                              in[0]->rank);
    cs__same_shape(out, in[0]);
    out->dtype = (cs_dtype)cs__attr_int(n, "dtype", in[0]->dtype);
    if (cs_dtype_size(out->dtype) == 0)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "dtype %s is not supported",
                              cs_dtype_name(out->dtype));
    return CS_OK;
}

/* One entry per operator: each infer reads n->opset where versions differ. */
const cs__op cs__ops_shape[] = {
    {"Reshape", NULL, 1, reshape_infer},
    {"Flatten", NULL, 1, flatten_infer},
    {"Squeeze", NULL, 1, squeeze_infer},
    {"Unsqueeze", NULL, 1, unsqueeze_infer},
    {"Identity", NULL, 1, identity_infer},
    {"Shape", NULL, 1, shape_infer, CS__OP_SHAPE_ONLY},
    {"Size", NULL, 1, size_infer, CS__OP_SHAPE_ONLY},
    {"Dropout", NULL, 1, dropout_infer},
    {"Constant", NULL, 1, constant_infer},
    {"ConstantOfShape", NULL, 9, constantofshape_infer},
    {"Range", NULL, 11, range_infer},
    {"EyeLike", NULL, 9, eyelike_infer},
    {0},
};

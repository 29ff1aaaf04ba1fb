/*
 * reduce.c - schemas of the reductions along axes: the Reduce* family, ArgMax/ArgMin,
 * CumSum and TopK: shape and type inference, apart from any backend.
 *
 * Reduce* drop the reduced axes (or keep them as 1 with keepdims), read from the `axes`
 * attribute or, from the opset CS__REDUCE_OPS gives, the axes input; an axes input whose
 * values are unknown defers inference to run time. ArgMax/ArgMin reduce one axis to int64
 * indices, CumSum keeps the shape, and TopK gives K values and their int64 indices along
 * its axis.
 */
#include "engine/ops/reduce.h"

#include <string.h>

cs_status cs__reduce_axes(const cs__node *n, int axes_input_since, const cs_tensor *const *in,
                          int n_in, bool *mask, bool *noop, cs_error *err)
{
    const int rank = in[0]->rank;
    const bool from_input = n->opset >= axes_input_since;
    const cs_tensor *at = from_input && n_in > 1 ? in[1] : NULL;
    const int64_t *attr = NULL;
    int64_t na = 0;
    if (at) {
        if (at->rank != 1)
            return cs__node_error(err, n, CS_ERR_INVALID, "axes must be a 1-D tensor, got rank %d",
                                  at->rank);
        if (at->dtype != CS_DTYPE_INT64)
            return cs__node_error(err, n, CS_ERR_INVALID, "axes must be int64, got %s",
                                  cs_dtype_name(at->dtype));
        na = cs__numel(at);
        if (na && !at->data) return CS__DEFER;
    } else if (!from_input) {
        na = cs__attr_ints(n, "axes", &attr);
        if (na < 0) na = 0;
    }
    memset(mask, 0, CS_MAX_RANK * sizeof *mask);
    *noop = false;
    if (na == 0) {
        if (from_input && cs__attr_int(n, "noop_with_empty_axes", 0))
            *noop = true;
        else
            for (int d = 0; d < rank; d++) mask[d] = true;
        return CS_OK;
    }
    for (int64_t i = 0; i < na; i++) {
        int a;
        cs_status rc = cs__axis(n, at ? cs_tensor_get_i64(at, i) : attr[i], rank, false, &a, err);
        if (rc != CS_OK) return rc;
        if (mask[a])
            return cs__node_error(err, n, CS_ERR_INVALID, "axis %d is listed twice in axes", a);
        mask[a] = true;
    }
    return CS_OK;
}

static cs_status reduce_infer(int axes_input_since, const cs__node *n, const cs_tensor *const *in,
                              int n_in, cs_tensor *out, cs_error *err)
{
    bool mask[CS_MAX_RANK], noop;
    cs_status rc = cs__reduce_axes(n, axes_input_since, in, n_in, mask, &noop, err);
    if (rc != CS_OK) return rc;
    const bool keep = cs__attr_int(n, "keepdims", 1) != 0;
    out->dtype = in[0]->dtype;
    out->rank = 0;
    for (int d = 0; d < in[0]->rank; d++) {
        if (!mask[d] || noop)
            out->dims[out->rank++] = in[0]->dims[d];
        else if (keep)
            out->dims[out->rank++] = 1;
    }
    return CS_OK;
}

#define REDUCE_INFER(Op, name, axes_input_since, types)                                    \
    static cs_status name##_infer(const cs__node *n, const cs_tensor *const *in, int n_in, \
                                  cs_tensor *out, int n_out, cs_error *err)                \
    {                                                                                      \
        return reduce_infer(axes_input_since, n, in, n_in, out, err);                      \
    }
CS__REDUCE_OPS(REDUCE_INFER)

/* --- ArgMax / ArgMin ------------------------------------------------------------------- */

static cs_status arg_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    int axis;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", 0), in[0]->rank, false, &axis, err);
    if (rc != CS_OK) return rc;
    if (in[0]->dims[axis] == 0)
        return cs__node_error(err, n, CS_ERR_INVALID, "cannot take the index over empty axis %d",
                              axis);
    const bool keep = cs__attr_int(n, "keepdims", 1) != 0;
    out->dtype = CS_DTYPE_INT64;
    out->rank = 0;
    for (int d = 0; d < in[0]->rank; d++) {
        if (d != axis)
            out->dims[out->rank++] = in[0]->dims[d];
        else if (keep)
            out->dims[out->rank++] = 1;
    }
    return CS_OK;
}

/* --- CumSum ---------------------------------------------------------------------------- */

cs_status cs__cumsum_axis(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          cs_error *err)
{
    const cs_tensor *a = n_in > 1 ? in[1] : NULL;
    if (!a) return cs__node_error(err, n, CS_ERR_INVALID, "the axis input is required");
    if (a->rank > 1 || cs__numel(a) != 1 ||
        (a->dtype != CS_DTYPE_INT32 && a->dtype != CS_DTYPE_INT64))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "axis must be one int32 or int64 value, got %s of rank %d",
                              cs_dtype_name(a->dtype), a->rank);
    if (!a->data) return CS__DEFER;
    return cs__axis(n, cs_tensor_get_i64(a, 0), in[0]->rank, false, axis, err);
}

static cs_status cumsum_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    int axis;
    cs_status rc = cs__cumsum_axis(n, in, n_in, &axis, err);
    if (rc != CS_OK && rc != CS__DEFER) return rc; /* the shape never depends on the axis */
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* --- TopK ------------------------------------------------------------------------------ */

cs_status cs__topk_params(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          int64_t *k, cs_error *err)
{
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", -1), in[0]->rank, false, axis, err);
    if (rc != CS_OK) return rc;
    if (n->opset < 10) {
        *k = cs__attr_int(n, "k", -1);
    } else {
        const cs_tensor *kt = n_in > 1 ? in[1] : NULL;
        if (!kt || kt->rank > 1 || cs__numel(kt) != 1 || kt->dtype != CS_DTYPE_INT64)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "K must be a 1-D int64 tensor with one element");
        if (!kt->data) return CS__DEFER;
        *k = cs_tensor_get_i64(kt, 0);
    }
    if (*k < 0 || *k > in[0]->dims[*axis])
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "K=%lld is out of range [0, %lld] for axis %d", (long long)*k,
                              (long long)in[0]->dims[*axis], *axis);
    return CS_OK;
}

static cs_status topk_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    int axis = 0;
    int64_t k = 0;
    cs_status rc = cs__topk_params(n, in, n_in, &axis, &k, err);
    if (rc != CS_OK) return rc;
    if (n_out != 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "expected 2 outputs, got %d", n_out);
    cs__same_shape(&out[0], in[0]);
    out[0].dims[axis] = k;
    cs__same_shape(&out[1], &out[0]);
    out[1].dtype = CS_DTYPE_INT64;
    return CS_OK;
}

/* --- the table ------------------------------------------------------------------------- */

#define REDUCE_OP_ENTRY(Op, name, axes_input_since, types) {#Op, NULL, 1, name##_infer},

/* clang-format off */
const cs__op cs__ops_reduce[] = {
    CS__REDUCE_OPS(REDUCE_OP_ENTRY)
    {"ArgMax", NULL, 1, arg_infer},
    {"ArgMin", NULL, 1, arg_infer},
    {"CumSum", NULL, 11, cumsum_infer},
    {"TopK", NULL, 1, topk_infer},
    {0},
};
/* clang-format on */

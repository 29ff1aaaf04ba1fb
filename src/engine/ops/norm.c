/*
 * norm.c - schemas of the normalisations: Softmax, LogSoftmax, Hardmax,
 * BatchNormalization, InstanceNormalization, LayerNormalization, LRN and
 * MeanVarianceNormalization: shape and type inference, apart from any backend.
 *
 * Every output has the input's shape and type, so infer's job is to check the axes,
 * attributes and parameter tensors (per-channel for BatchNormalization and
 * InstanceNormalization, the normalised shape for LayerNormalization) with messages that
 * name them. LayerNormalization's optional Mean and InvStdDev outputs take stash_type and
 * keep the dims before the axis; BatchNormalization's running statistics keep theirs.
 */
#include "engine/ops/norm.h"

#include <string.h>

static bool is_float(cs_dtype t)
{
    return (unsigned)t < 32 && (CS__T_FLOAT & (1u << t));
}

/* --- Softmax, LogSoftmax, Hardmax ------------------------------------------------------- */

cs_status cs__softmax_geom_get(const cs__node *n, const cs_tensor *x, cs__softmax_geom *p,
                               cs_error *err)
{
    int axis;
    const bool coerce = n->opset < 13;
    if (x->rank < 1) return cs__node_error(err, n, CS_ERR_INVALID, "input must have rank >= 1");
    /* Before opset 13 the axis splits the input into 2-D; either way its range is
     * [-r, r-1] and a negative axis counts from the back. */
    cs_status rc =
        cs__axis(n, cs__attr_int(n, "axis", coerce ? 1 : -1), x->rank, false, &axis, err);
    if (rc != CS_OK) return rc;
    p->outer = cs__dims_prod(x->dims, 0, axis);
    if (coerce) {
        p->len = cs__dims_prod(x->dims, axis, x->rank);
        p->inner = 1;
    } else {
        p->len = x->dims[axis];
        p->inner = cs__dims_prod(x->dims, axis + 1, x->rank);
    }
    if (!strcmp(n->op_type, "Softmax"))
        p->mode = CS__SOFTMAX;
    else if (!strcmp(n->op_type, "LogSoftmax"))
        p->mode = CS__LOGSOFTMAX;
    else
        p->mode = CS__HARDMAX;
    return CS_OK;
}

static cs_status softmax_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs_tensor *out, int n_out, cs_error *err)
{
    cs__softmax_geom g;
    cs_status rc = cs__softmax_geom_get(n, in[0], &g, err);
    if (rc != CS_OK) return rc;
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* --- BatchNormalization ----------------------------------------------------------------- */

/* Per-channel parameters have C elements; before opset 9, spatial=0 gave them one per
 * element of a sample, C x D1 x ... */
static cs_status bn_check(const cs__node *n, const cs_tensor *const *in, int n_in, cs_error *err)
{
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    if (n_in < 5) return cs__node_error(err, n, CS_ERR_INVALID, "expected 5 inputs, got %d", n_in);
    const cs_tensor *x = in[0];
    if (x->rank < 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "X must have rank >= 2 (N x C x ...), got %d",
                              x->rank);
    const int64_t c = x->dims[1], per_sample = cs__dims_prod(x->dims, 1, x->rank);
    for (int i = 1; i < 5; i++) {
        if (!in[i]) return cs__node_error(err, n, CS_ERR_INVALID, "input %s is required", names[i]);
        if (!is_float(in[i]->dtype))
            return cs__node_error(err, n, CS_ERR_INVALID, "%s must be a float tensor, got %s",
                                  names[i], cs_dtype_name(in[i]->dtype));
        const int64_t k = cs__numel(in[i]);
        if (k != c && (k != per_sample || n->opset >= 9 || cs__attr_int(n, "spatial", 1)))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "%s has %lld elements, expected one per channel (%lld)", names[i],
                                  (long long)k, (long long)c);
    }
    return CS_OK;
}

static cs_status bn_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out, cs_error *err)
{
    cs_status rc = bn_check(n, in, n_in, err);
    if (rc != CS_OK) return rc;
    if (n_out > 1 && n->opset < 14)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                              "training outputs before opset 14 are not supported");
    if (n_out > 3)
        return cs__node_error(err, n, CS_ERR_INVALID, "expected at most 3 outputs, got %d", n_out);
    cs__same_shape(&out[0], in[0]);
    /* Outside training the running statistics pass through unchanged. */
    for (int j = 1; j < n_out; j++) cs__same_shape(&out[j], in[2 + j]);
    return CS_OK;
}

/* --- InstanceNormalization and LayerNormalization --------------------------------------- */

static cs_status in_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out, cs_error *err)
{
    if (n_in < 3 || !in[1] || !in[2])
        return cs__node_error(err, n, CS_ERR_INVALID, "expected inputs input, scale and B");
    if (in[0]->rank < 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "input must have rank >= 2, got %d",
                              in[0]->rank);
    for (int i = 1; i < 3; i++)
        if (cs__numel(in[i]) != in[0]->dims[1] || in[i]->dtype != in[0]->dtype)
            return cs__node_error(
                err, n, CS_ERR_INVALID, "%s must be %s with one element per channel (%lld)",
                i == 1 ? "scale" : "B", cs_dtype_name(in[0]->dtype), (long long)in[0]->dims[1]);
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* W and B must cover the normalised shape dims[axis:] exactly (leading 1s allowed). */
static cs_status ln_check_param(const cs__node *n, const char *name, const cs_tensor *t,
                                const cs_tensor *x, int axis, cs_error *err)
{
    bool ok = t->dtype == x->dtype && t->rank <= x->rank;
    for (int d = 0; ok && d < t->rank; d++) {
        const int xd = x->rank - t->rank + d;
        ok = xd >= axis ? t->dims[d] == x->dims[xd] : t->dims[d] == 1;
    }
    ok = ok && cs__numel(t) == cs__dims_prod(x->dims, axis, x->rank);
    if (!ok)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "%s must be %s with the normalised shape (dims %d.. of X)", name,
                              cs_dtype_name(x->dtype), axis);
    return CS_OK;
}

static cs_status ln_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out, cs_error *err)
{
    int axis;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", -1), in[0]->rank, false, &axis, err);
    if (rc != CS_OK) return rc;
    if (n_in < 2 || !in[1]) return cs__node_error(err, n, CS_ERR_INVALID, "Scale is required");
    rc = ln_check_param(n, "Scale", in[1], in[0], axis, err);
    if (rc == CS_OK && n_in > 2 && in[2]) rc = ln_check_param(n, "B", in[2], in[0], axis, err);
    if (rc != CS_OK) return rc;
    const int64_t stash = cs__attr_int(n, "stash_type", 1);
    if (stash != CS_DTYPE_FLOAT32 && stash != CS_DTYPE_BFLOAT16 && stash != CS_DTYPE_FLOAT64 &&
        stash != CS_DTYPE_FLOAT16)
        return cs__node_error(err, n, CS_ERR_INVALID, "stash_type %lld is not a float type",
                              (long long)stash);
    if (n_out > 3)
        return cs__node_error(err, n, CS_ERR_INVALID, "expected at most 3 outputs, got %d", n_out);
    cs__same_shape(&out[0], in[0]);
    for (int j = 1; j < n_out; j++) {
        cs__same_shape(&out[j], in[0]);
        out[j].dtype = (cs_dtype)stash;
        for (int d = axis; d < in[0]->rank; d++) out[j].dims[d] = 1;
    }
    return CS_OK;
}

/* --- LRN -------------------------------------------------------------------------------- */

static cs_status lrn_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    if (in[0]->rank < 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "X must have rank >= 2 (N x C x ...), got %d",
                              in[0]->rank);
    const int64_t size = cs__attr_int(n, "size", 0);
    if (size < 1)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "attribute size must be a positive integer, got %lld",
                              (long long)size);
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* --- MeanVarianceNormalization ---------------------------------------------------------- */

cs_status cs__mvn_axes(const cs__node *n, const cs_tensor *x, bool *mask, int64_t *slots,
                       cs_error *err)
{
    static const int64_t def[] = {0, 2, 3};
    const int64_t *axes = def;
    int na = cs__attr_ints(n, "axes", &axes);
    if (na < 0) {
        axes = def;
        na = 3;
    }
    memset(mask, 0, CS_MAX_RANK * sizeof *mask);
    for (int i = 0; i < na; i++) {
        int a;
        cs_status rc = cs__axis(n, axes[i], x->rank, false, &a, err);
        if (rc != CS_OK) return rc;
        if (mask[a])
            return cs__node_error(err, n, CS_ERR_INVALID, "axis %d is listed twice in axes", a);
        mask[a] = true;
    }
    *slots = 1;
    for (int d = 0; d < x->rank; d++)
        if (!mask[d]) *slots *= x->dims[d];
    return CS_OK;
}

static cs_status mvn_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    bool mask[CS_MAX_RANK];
    int64_t slots;
    cs_status rc = cs__mvn_axes(n, in[0], mask, &slots, err);
    if (rc != CS_OK) return rc;
    cs__same_shape(out, in[0]);
    return CS_OK;
}

const cs__op cs__ops_norm[] = {
    {"Softmax", NULL, 1, softmax_infer},
    {"LogSoftmax", NULL, 1, softmax_infer},
    {"Hardmax", NULL, 1, softmax_infer},
    {"BatchNormalization", NULL, 1, bn_infer},
    {"InstanceNormalization", NULL, 1, in_infer},
    {"LayerNormalization", NULL, 17, ln_infer},
    {"LRN", NULL, 1, lrn_infer},
    {"MeanVarianceNormalization", NULL, 9, mvn_infer},
    {0},
};

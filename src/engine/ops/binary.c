/*
 * binary.c - schemas of the elementwise operators over two or more broadcast inputs:
 * arithmetic (Add, Sub, Mul, Div, Pow, Mod), logic (And, Or, Xor, BitShift), comparisons
 * (Equal, Greater, Less, GreaterOrEqual, LessOrEqual), the variadic Max, Min, Mean and Sum,
 * Where and PRelu: shape and type inference, apart from any backend.
 *
 * Outputs take numpy's multidirectional broadcast of the inputs' shapes (cs__broadcast);
 * before opset 7 only B broadcasts onto A, as the `broadcast` and `axis` attributes say
 * (cs__binary_legacy_view, which the kernels use too). Inputs must share one element type,
 * except Pow's exponent and Where's condition; comparisons and logic give bool.
 */
#include "engine/ops/binary.h"

#include <string.h>

static cs_status check_inputs(const cs__node *n, const cs_tensor *const *in, int n_in, int lo,
                              int hi, cs_error *err)
{
    if (n_in < lo || n_in > hi) {
        if (lo == hi)
            return cs__node_error(err, n, CS_ERR_INVALID, "expects %d inputs, got %d", lo, n_in);
        return cs__node_error(err, n, CS_ERR_INVALID, "expects at least %d inputs, got %d", lo,
                              n_in);
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return cs__node_error(err, n, CS_ERR_INVALID, "input %d is missing", i);
    return CS_OK;
}

static cs_status check_same_type(const cs__node *n, const cs_tensor *const *in, int first, int n_in,
                                 cs_error *err)
{
    for (int i = first + 1; i < n_in; i++)
        if (in[i]->dtype != in[first]->dtype)
            return cs__node_error(
                err, n, CS_ERR_INVALID, "input %d is %s but input %d is %s; they must match", i,
                cs_dtype_name(in[i]->dtype), first, cs_dtype_name(in[first]->dtype));
    return CS_OK;
}

static cs_status broadcast(const cs__node *n, int n_in, const cs_tensor *const *in, cs_tensor *out,
                           cs_error *err)
{
    cs_error e;
    if (cs__broadcast(n_in, in, out, &e) != CS_OK)
        return cs__node_error(err, n, e.code, "%s", e.msg);
    return CS_OK;
}

cs_status cs__binary_legacy_view(const cs__node *n, const cs_tensor *a, const cs_tensor *b,
                                 cs_tensor *view, cs_error *err)
{
    char sa[160], sb[160];
    *view = *b;
    if (n->opset >= 7) return CS_OK;
    if (!strcmp(n->op_type, "PRelu")) {
        if (b->rank == 1 && a->rank >= 2 && b->dims[0] == a->dims[1] && b->dims[0] != 1) {
            view->rank = a->rank - 1;
            for (int d = 1; d < view->rank; d++) view->dims[d] = 1;
        }
        return CS_OK;
    }
    if (!cs__attr_int(n, "broadcast", 0)) {
        bool same = a->rank == b->rank;
        for (int d = 0; same && d < a->rank; d++) same = a->dims[d] == b->dims[d];
        if (!same)
            return cs__node_error(
                err, n, CS_ERR_INVALID, "shapes %s and %s differ and broadcast=0 (opset %lld)",
                cs_shape_format(sa, sizeof sa, a->rank, a->dims, NULL),
                cs_shape_format(sb, sizeof sb, b->rank, b->dims, NULL), (long long)n->opset);
        return CS_OK;
    }
    const cs__attr *ax = cs__attr_find(n, "axis");
    if (!ax) return CS_OK; /* B aligns with A's trailing dims: numpy's rule */
    int axis;
    cs_status rc = cs__axis(n, ax->i, a->rank, false, &axis, err);
    if (rc != CS_OK) return rc;
    if (axis + b->rank > a->rank)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "B of shape %s does not fit in A of shape %s at axis %d",
                              cs_shape_format(sb, sizeof sb, b->rank, b->dims, NULL),
                              cs_shape_format(sa, sizeof sa, a->rank, a->dims, NULL), axis);
    view->rank = a->rank;
    for (int d = 0; d < a->rank; d++)
        view->dims[d] = d >= axis && d < axis + b->rank ? b->dims[d - axis] : 1;
    return CS_OK;
}

/* Two inputs broadcast together; the output has out_type, or the inputs' type when
 * out_type is UNDEFINED. same_type is false for Pow, whose exponent may differ. */
static cs_status infer_pair(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            cs_dtype out_type, bool same_type, cs_error *err)
{
    cs_tensor b;
    cs_status rc = check_inputs(n, in, n_in, 2, 2, err);
    if (rc == CS_OK && same_type) rc = check_same_type(n, in, 0, 2, err);
    if (rc == CS_OK) rc = cs__binary_legacy_view(n, in[0], in[1], &b, err);
    if (rc != CS_OK) return rc;
    const cs_tensor *ops[2] = {in[0], &b};
    rc = broadcast(n, 2, ops, out, err);
    out->dtype = out_type != CS_DTYPE_UNDEFINED ? out_type : in[0]->dtype;
    return rc;
}

static cs_status infer_same(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    return infer_pair(n, in, n_in, out, CS_DTYPE_UNDEFINED, true, err);
}

static cs_status infer_bool(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    return infer_pair(n, in, n_in, out, CS_DTYPE_BOOL, true, err);
}

static cs_status infer_pow(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    cs_status rc = infer_pair(n, in, n_in, out, CS_DTYPE_UNDEFINED, false, err);
    if (rc == CS_OK && !((CS__T_NUMERIC >> in[1]->dtype) & 1))
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "exponent type %s is not numeric",
                              cs_dtype_name(in[1]->dtype));
    return rc;
}

static cs_status infer_mod(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out, cs_error *err)
{
    int64_t fmod_attr = cs__attr_int(n, "fmod", 0);
    if (fmod_attr != 0 && fmod_attr != 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "fmod must be 0 or 1, got %lld",
                              (long long)fmod_attr);
    cs_status rc = infer_same(n, in, n_in, out, n_out, err);
    if (rc == CS_OK && fmod_attr == 0 && ((CS__T_FLOAT >> in[0]->dtype) & 1))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "fmod must be 1 for floating-point inputs (%s)",
                              cs_dtype_name(in[0]->dtype));
    return rc;
}

static cs_status infer_bitshift(const cs__node *n, const cs_tensor *const *in, int n_in,
                                cs_tensor *out, int n_out, cs_error *err)
{
    const char *dir = cs__attr_str(n, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "direction must be \"LEFT\" or \"RIGHT\", got \"%s\"", dir);
    return infer_same(n, in, n_in, out, n_out, err);
}

static cs_status infer_variadic(const cs__node *n, const cs_tensor *const *in, int n_in,
                                cs_tensor *out, int n_out, cs_error *err)
{
    cs_status rc = check_inputs(n, in, n_in, 1, INT32_MAX, err);
    if (rc == CS_OK) rc = check_same_type(n, in, 0, n_in, err);
    if (rc == CS_OK) rc = broadcast(n, n_in, in, out, err);
    out->dtype = n_in > 0 && in[0] ? in[0]->dtype : CS_DTYPE_UNDEFINED;
    return rc;
}

static cs_status infer_where(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    cs_status rc = check_inputs(n, in, n_in, 3, 3, err);
    if (rc != CS_OK) return rc;
    if (in[0]->dtype != CS_DTYPE_BOOL)
        return cs__node_error(err, n, CS_ERR_INVALID, "condition must be bool, got %s",
                              cs_dtype_name(in[0]->dtype));
    rc = check_same_type(n, in, 1, 3, err);
    if (rc == CS_OK) rc = broadcast(n, 3, in, out, err);
    out->dtype = in[1]->dtype;
    return rc;
}

/* PRelu broadcasts slope onto X only: the output keeps X's shape. */
static cs_status infer_prelu(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    char sx[160], ss[160];
    cs_status rc = infer_same(n, in, n_in, out, n_out, err);
    if (rc != CS_OK) return rc;
    bool same = out->rank == in[0]->rank;
    for (int d = 0; same && d < out->rank; d++) same = out->dims[d] == in[0]->dims[d];
    if (!same)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "slope of shape %s does not broadcast to X's shape %s",
                              cs_shape_format(ss, sizeof ss, in[1]->rank, in[1]->dims, NULL),
                              cs_shape_format(sx, sizeof sx, in[0]->rank, in[0]->dims, NULL));
    return CS_OK;
}

const cs__op cs__ops_binary[] = {
    {"Add", NULL, 1, infer_same},
    {"Sub", NULL, 1, infer_same},
    {"Mul", NULL, 1, infer_same},
    {"Div", NULL, 1, infer_same},
    {"Pow", NULL, 1, infer_pow},
    {"Mod", NULL, 10, infer_mod},
    {"BitShift", NULL, 11, infer_bitshift},
    {"And", NULL, 1, infer_bool},
    {"Or", NULL, 1, infer_bool},
    {"Xor", NULL, 1, infer_bool},
    {"Equal", NULL, 1, infer_bool},
    {"Greater", NULL, 1, infer_bool},
    {"GreaterOrEqual", NULL, 12, infer_bool},
    {"Less", NULL, 1, infer_bool},
    {"LessOrEqual", NULL, 12, infer_bool},
    {"Max", NULL, 1, infer_variadic},
    {"Min", NULL, 1, infer_variadic},
    {"Mean", NULL, 1, infer_variadic},
    {"Sum", NULL, 1, infer_variadic},
    {"Where", NULL, 9, infer_where},
    {"PRelu", NULL, 1, infer_prelu},
    {0},
};

/*
 * unary.c - schemas of the elementwise unary operator family, Cast and CastLike: shape and
 * type inference, apart from any backend.
 *
 * Every operator in CS__UNARY_OPS (ops/unary.h) has one infer: the input must be of one of
 * the operator's element types, and the output has the input's shape and its type (bool
 * for the predicates IsInf and IsNaN). Cast and CastLike keep the shape and take the target
 * type from `to` or from the second input. Clip's bounds (attributes before opset 11,
 * optional scalar inputs from 11) are read here too, since the planner reads them to fuse a
 * Clip into its producer whichever backend runs it.
 */
#include "engine/ops/unary.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <strings.h>

cs_status cs__unary_check_input(const cs__node *n, uint32_t types, const cs_tensor *const *in,
                                int n_in, cs_error *err)
{
    if (n_in < 1 || !in[0]) return cs__node_error(err, n, CS_ERR_INVALID, "missing input");
    cs_dtype t = in[0]->dtype;
    if ((unsigned)t >= 32 || !(types & (1u << t)))
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "element type %s is not supported",
                              cs_dtype_name(t));
    return CS_OK;
}

static cs_status unary_infer(uint32_t types, cs_dtype out_type, const cs__node *n,
                             const cs_tensor *const *in, int n_in, cs_tensor *out, int n_out,
                             cs_error *err)
{
    cs_status st = cs__unary_check_input(n, types, in, n_in, err);
    if (st) return st;
    if (n_out < 1) return cs__node_error(err, n, CS_ERR_INVALID, "missing output");
    cs__same_shape(&out[0], in[0]);
    if (out_type != CS_DTYPE_UNDEFINED) out[0].dtype = out_type;
    return CS_OK;
}

#define STAMP_INFER(Op, name, since, types, otype)                                         \
    static cs_status infer_##name(const cs__node *n, const cs_tensor *const *in, int n_in, \
                                  cs_tensor *out, int n_out, cs_error *err)                \
    {                                                                                      \
        return unary_infer(types, CS_DTYPE_##otype, n, in, n_in, out, n_out, err);         \
    }
CS__UNARY_OPS(STAMP_INFER)

/* --- Clip's bounds ----------------------------------------------------------------------- */

cs_status cs__clip_bound(const cs__node *n, const cs_tensor *b, const char *what, bool isint,
                         double *f, int64_t *i, cs_error *err)
{
    if (!b) return CS_OK;
    if (cs__numel(b) != 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "%s must be a scalar, got %lld elements",
                              what, (long long)cs__numel(b));
    if (!b->data) return cs__node_error(err, n, CS_ERR_INVALID, "%s has no data", what);
    if (isint)
        *i = cs_tensor_get_i64(b, 0);
    else
        *f = cs_tensor_get_f64(b, 0);
    return CS_OK;
}

cs_status cs__clip_bounds(const cs__node *n, const cs_tensor *const *in, int n_in, double *lo,
                          double *hi, cs_error *err)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (n->opset < 11) {
        *lo = cs__attr_float(n, "min", -FLT_MAX);
        *hi = cs__attr_float(n, "max", FLT_MAX);
        return CS_OK;
    }
    cs_status st = cs__clip_bound(n, n_in > 1 ? in[1] : NULL, "min", false, lo, NULL, err);
    return st ? st : cs__clip_bound(n, n_in > 2 ? in[2] : NULL, "max", false, hi, NULL, err);
}

/* --- Cast and CastLike ------------------------------------------------------------------- */

static cs_dtype dtype_from_name(const char *s)
{
    static const struct {
        const char *name;
        cs_dtype t;
    } names[] = {
        {"FLOAT", CS_DTYPE_FLOAT32},   {"FLOAT32", CS_DTYPE_FLOAT32},
        {"DOUBLE", CS_DTYPE_FLOAT64},  {"FLOAT64", CS_DTYPE_FLOAT64},
        {"FLOAT16", CS_DTYPE_FLOAT16}, {"BFLOAT16", CS_DTYPE_BFLOAT16},
        {"INT8", CS_DTYPE_INT8},       {"INT16", CS_DTYPE_INT16},
        {"INT32", CS_DTYPE_INT32},     {"INT64", CS_DTYPE_INT64},
        {"UINT8", CS_DTYPE_UINT8},     {"UINT16", CS_DTYPE_UINT16},
        {"UINT32", CS_DTYPE_UINT32},   {"UINT64", CS_DTYPE_UINT64},
        {"BOOL", CS_DTYPE_BOOL},       {"STRING", CS_DTYPE_STRING},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) return names[i].t;
    return CS_DTYPE_UNDEFINED;
}

static cs_status check_cast_type(const cs__node *n, const char *what, int64_t t, cs_error *err)
{
    if (t == CS_DTYPE_STRING)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                              "casting %s string tensors is not supported", what);
    if (t < 0 || t > CS_DTYPE_BFLOAT16 || cs_dtype_size((cs_dtype)t) == 0)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "casting %s type %lld is not supported",
                              what, (long long)t);
    return CS_OK;
}

cs_status cs__cast_target(const cs__node *n, const cs_tensor *const *in, int n_in, cs_dtype *to,
                          cs_error *err)
{
    if (n_in < 1 || !in[0]) return cs__node_error(err, n, CS_ERR_INVALID, "missing input");
    cs_status st = check_cast_type(n, "from", in[0]->dtype, err);
    if (st) return st;
    int64_t t;
    if (!strcmp(n->op_type, "CastLike")) {
        if (n_in < 2 || !in[1])
            return cs__node_error(err, n, CS_ERR_INVALID, "missing input 'target_type'");
        t = in[1]->dtype;
    } else {
        const cs__attr *a = cs__attr_find(n, "to");
        if (!a) return cs__node_error(err, n, CS_ERR_INVALID, "missing attribute 'to'");
        if (a->type == CS__ATTR_STRING) {
            t = dtype_from_name(a->s);
            if (t == CS_DTYPE_UNDEFINED)
                return cs__node_error(err, n, CS_ERR_INVALID, "unknown type name '%s'", a->s);
        } else {
            t = cs__attr_int(n, "to", CS_DTYPE_UNDEFINED);
        }
    }
    st = check_cast_type(n, "to", t, err);
    if (st) return st;
    *to = (cs_dtype)t;
    return CS_OK;
}

static cs_status cast_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    cs_dtype to = CS_DTYPE_UNDEFINED;
    cs_status st = cs__cast_target(n, in, n_in, &to, err);
    if (st) return st;
    if (n_out < 1) return cs__node_error(err, n, CS_ERR_INVALID, "missing output");
    cs__same_shape(&out[0], in[0]);
    out[0].dtype = to;
    return CS_OK;
}

/* --- the table --------------------------------------------------------------------------- */

#define OP_ENTRY(Op, name, since, types, otype) {#Op, NULL, since, infer_##name},

/* clang-format off */
const cs__op cs__ops_unary[] = {
    CS__UNARY_OPS(OP_ENTRY)
    {"Cast", NULL, 1, cast_infer},
    {"CastLike", NULL, 15, cast_infer},
    {0},
};
/* clang-format on */

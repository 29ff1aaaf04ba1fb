/*
 * ops_rows.c - the CUDA wrappers of the per-row family, float32 and float16: Softmax and
 * LogSoftmax over the last axis (softmax.cu), LayerNormalization over the last axes
 * (layernorm.cu) and ReduceSum, ReduceMean, ReduceMax and ReduceMin over a contiguous run
 * of axes (reduce.cu). One launch per node, one block per row for the row kernels.
 *
 * Declined, so run on the CPU: bfloat16 and other types; a Softmax (opset 13 on) along
 * another axis than the last; a LayerNormalization with its Mean/InvStdDev outputs, a
 * stash_type other than float, or a scale or bias that broadcasts (the kernel reads one per
 * column); reductions over axes that are not contiguous, axes unknown at plan time, empty
 * axes with noop_with_empty_axes, and Mean/Max/Min over no elements.
 */
#include "engine/cuda/cuda_ops.h"

#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"

#include <string.h>

#define HALVES (CS__T(FLOAT32) | CS__T(FLOAT16))
#define BY_TYPE(op)                                \
    {                                              \
        CS__CUK_##op##_f32, CS__CUK_##op##_f16, -1 \
    }

/* A grid of one block per row, as many rows at once as fill the device. */
static cs_status launch_rows(cs__kctx *ctx, int kid, int64_t rows, void **params)
{
    if (rows <= 0) return CS_OK;
    const unsigned grid[3] = {cs__cuda_blocks(ctx, rows * CS_CUDA_ROW_BLOCK, CS_CUDA_ROW_BLOCK), 1,
                              1},
                   block[3] = {CS_CUDA_ROW_BLOCK, 1, 1};
    return cs__cuda_launch(ctx, kid, grid, block, params);
}

/* --- Softmax, LogSoftmax ---------------------------------------------------------------- */

static cs_status softmax_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                             int n_out)
{
    static const int soft[3] = BY_TYPE(softmax), logsoft[3] = BY_TYPE(log_softmax);
    (void)n_in, (void)n_out;
    cs__softmax_geom g;
    cs_status rc = cs__softmax_geom_get(ctx->node, in[0], &g, ctx->err);
    if (rc || !cs_tensor_numel(out)) return rc;
    const int *kid = g.mode == CS__LOGSOFTMAX ? logsoft : soft;
    void *params[] = {(void *)&in[0]->data, &out->data, &g.outer, &g.len};
    return launch_rows(ctx, kid[cs__cuda_ftype(out->dtype)], g.outer, params);
}

static bool softmax_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    cs__softmax_geom g;
    if (cs__softmax_geom_get(n, in[0], &g, err)) return false;
    if (g.inner != 1)
        return cs__cuda_decline(err, n, "the CUDA kernel works along the last axis only");
    return true;
}

/* --- LayerNormalization ------------------------------------------------------------------ */

static int ln_axis(const cs__node *n, const cs_tensor *x)
{
    int axis = 0;
    return cs__axis(n, cs__attr_int(n, "axis", -1), x->rank, false, &axis, NULL) ? -1 : axis;
}

static cs_status layernorm_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                               int n_out)
{
    static const int kid[3] = BY_TYPE(layernorm);
    (void)n_out;
    const cs_tensor *x = in[0];
    int axis = ln_axis(ctx->node, x);
    int64_t rows = cs__dims_prod(x->dims, 0, axis), cols = cs__dims_prod(x->dims, axis, x->rank);
    float eps = cs__attr_float(ctx->node, "epsilon", 1e-5f);
    const void *bias = n_in > 2 && in[2] ? in[2]->data : NULL;
    if (!cols) return CS_OK;
    void *params[] = {
        (void *)&x->data, (void *)&in[1]->data, &bias, &out->data, &rows, &cols, &eps};
    return launch_rows(ctx, kid[cs__cuda_ftype(out->dtype)], rows, params);
}

static bool layernorm_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    const cs_tensor *x = in[0];
    if (n->n_out > 1) return cs__cuda_decline(err, n, "the CUDA kernel gives no Mean or InvStdDev");
    if (cs__attr_int(n, "stash_type", 1) != CS_DTYPE_FLOAT32)
        return cs__cuda_decline(err, n, "the CUDA kernel computes in float32 only");
    int axis = ln_axis(n, x);
    if (axis < 0) return cs__cuda_decline(err, n, "axis out of range");
    int64_t cols = cs__dims_prod(x->dims, axis, x->rank);
    for (int k = 1; k < 3 && k < n->n_in; k++)
        if (in[k] && (in[k]->dtype != x->dtype || cs_tensor_numel(in[k]) != cols))
            return cs__cuda_decline(err, n, "the CUDA kernel takes a %s %s of %lld elements",
                                    cs_dtype_name(x->dtype), k == 1 ? "Scale" : "B",
                                    (long long)cols);
    return true;
}

/* --- ReduceSum, ReduceMean, ReduceMax, ReduceMin -------------------------------------------- */

/* x as [outer, reduced, inner] around the reduced axes; false when they are not one run
 * (or when there is nothing to reduce: noop_with_empty_axes). */
static bool reduce_view(const cs__node *n, int axes_since, const cs_tensor *const *in,
                        cs_cuda_reduce_args *a, cs_error *err)
{
    bool mask[CS_MAX_RANK], noop = false;
    const cs_tensor *x = in[0];
    if (cs__reduce_axes(n, axes_since, in, n->n_in, mask, &noop, err) != CS_OK) return false;
    int first = 0, last = x->rank - 1;
    while (first < x->rank && !mask[first]) first++;
    while (last >= 0 && !mask[last]) last--;
    if (noop || first > last) return false;
    for (int d = first; d <= last; d++)
        if (!mask[d]) return false;
    *a = (cs_cuda_reduce_args){cs__dims_prod(x->dims, 0, first),
                               cs__dims_prod(x->dims, first, last + 1),
                               cs__dims_prod(x->dims, last + 1, x->rank)};
    return true;
}

static cs_status reduce_run(cs__kctx *ctx, int axes_since, const int *rows_kid, const int *cols_kid,
                            const cs_tensor *const *in, cs_tensor *out)
{
    cs_cuda_reduce_args a;
    if (!reduce_view(ctx->node, axes_since, in, &a, ctx->err))
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "axes changed since planning");
    int t = cs__cuda_ftype(out->dtype);
    void *params[] = {(void *)&in[0]->data, &out->data, &a};
    if (a.inner == 1) return launch_rows(ctx, rows_kid[t], a.outer, params);
    return cs__cuda_launch_1d(ctx, cols_kid[t], a.outer * a.inner, CS_CUDA_BLOCK, params);
}

static bool reduce_accepts(const cs__node *n, int axes_since, const cs_tensor *const *in,
                           cs_error *err)
{
    cs_cuda_reduce_args a;
    if (!reduce_view(n, axes_since, in, &a, err))
        return cs__cuda_decline(err, n,
                                "the CUDA kernel reduces one run of axes known at plan "
                                "time");
    if (!a.reduced && strcmp(n->op_type, "ReduceSum"))
        return cs__cuda_decline(err, n, "nothing to reduce");
    return true;
}

#define REDUCE(name, axes_since)                                                              \
    static cs_status reduce_##name##_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                         cs_tensor *out, int n_out)                           \
    {                                                                                         \
        static const int rows[3] = BY_TYPE(reduce_##name##_rows);                             \
        static const int cols[3] = BY_TYPE(reduce_##name##_cols);                             \
        (void)n_in, (void)n_out;                                                              \
        return reduce_run(ctx, axes_since, rows, cols, in, out);                              \
    }                                                                                         \
    static bool reduce_##name##_accepts(const cs__node *n, const cs_tensor *const *in,        \
                                        cs_error *err)                                        \
    {                                                                                         \
        return reduce_accepts(n, axes_since, in, err);                                        \
    }
REDUCE(sum, 13)
REDUCE(mean, 18)
REDUCE(max, 18)
REDUCE(min, 18)

/* The axes input (input 1 once axes are an input) stays on the host, as reduce_view reads. */
#define REDUCE_ENTRY(Op, name)                                                                  \
    {                                                                                           \
        Op, "", 1, HALVES, 0, reduce_##name##_run, NULL, 0, NULL, 0x2u, reduce_##name##_accepts \
    }

const cs__kernel cs__cuda_rows_kernels[] = {
    {"Softmax", "", 1, HALVES, 0, softmax_run, NULL, 0, NULL, 0, softmax_accepts},
    {"LogSoftmax", "", 1, HALVES, 0, softmax_run, NULL, 0, NULL, 0, softmax_accepts},
    {"LayerNormalization", "", 17, HALVES, 0, layernorm_run, NULL, 0, NULL, 0, layernorm_accepts},
    REDUCE_ENTRY("ReduceSum", sum),
    REDUCE_ENTRY("ReduceMean", mean),
    REDUCE_ENTRY("ReduceMax", max),
    REDUCE_ENTRY("ReduceMin", min),
    {0},
};

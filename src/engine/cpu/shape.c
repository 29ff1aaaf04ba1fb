/*
 * shape.c - CPU kernels for operators that relabel or produce shapes and small tensors:
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference), Shape, Size,
 * Constant, ConstantOfShape, Range and EyeLike; their schemas (shape and type inference)
 * are in ops/shape.c. Operators that rearrange elements live in layout.c; the helpers both
 * families share are declared in ops/shape.h.
 *
 * Ops whose output is their input relabelled (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout) copy the bytes only when the planner did not alias the two buffers.
 */
#include "engine/kernel.h"
#include "engine/ops/shape.h"

#include <string.h>

/* ---- moving bytes --------------------------------------------------------------------- */

static size_t bytes_of(const cs_tensor *t)
{
    return (size_t)cs__numel(t) * cs_dtype_size(t->dtype);
}

/* out = in for ops that only relabel the shape; nothing to do when the planner aliased them. */
static void move_bytes(const cs_tensor *in, cs_tensor *out)
{
    size_t bytes = bytes_of(in);
    if (bytes && out->data != in->data) memmove(out->data, in->data, bytes);
}

static cs_status run_move(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    move_bytes(in[0], &out[0]);
    return CS_OK;
}

/* Repeats one element of esize bytes n times, doubling the filled prefix each step. */
static void fill(void *dst, const void *elem, size_t esize, int64_t n)
{
    size_t total = (size_t)n * esize, done = esize;
    if (n <= 0) return;
    memcpy(dst, elem, esize);
    while (done < total) {
        size_t chunk = done < total - done ? done : total - done;
        memcpy((char *)dst + done, dst, chunk);
        done += chunk;
    }
}

/* Fills t with the number v converted to t's type. */
static void fill_value(cs_tensor *t, double v)
{
    uint64_t elem = 0;
    cs_tensor one = {.dtype = t->dtype, .data = &elem};
    cs_tensor_set_f64(&one, 0, v);
    fill(t->data, &elem, cs_dtype_size(t->dtype), cs__numel(t));
}

/* ---- Shape, Size ---------------------------------------------------------------------- */

static cs_status shape_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    int64_t start, end;
    cs__shape_window(ctx->node, in[0]->rank, &start, &end);
    for (int64_t i = start; i < end; i++) ((int64_t *)out->data)[i - start] = in[0]->dims[i];
    return CS_OK;
}

static cs_status size_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    *(int64_t *)out->data = cs__numel(in[0]);
    return CS_OK;
}

/* ---- Dropout -------------------------------------------------------------------------- */

static cs_status dropout_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                             int n_out)
{
    cs_status rc = cs__dropout_check(ctx->node, in, n_in, ctx->err);
    if (rc != CS_OK) return rc;
    move_bytes(in[0], &out[0]);
    if (n_out > 1) fill_value(&out[1], 1);
    return CS_OK;
}

/* ---- Constant, ConstantOfShape, Range, EyeLike ---------------------------------------- */

static cs_status constant_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                              int n_out)
{
    cs_tensor t;
    const void *src;
    cs_status rc = cs__constant_value(ctx->node, &t, &src, ctx->err);
    if (rc != CS_OK) return rc;
    size_t bytes = bytes_of(&t);
    if (bytes) memcpy(out->data, src, bytes);
    return CS_OK;
}

static cs_status constantofshape_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                     cs_tensor *out, int n_out)
{
    const cs_tensor *v = cs__constantofshape_value(ctx->node);
    if (v)
        fill(out->data, v->data, cs_dtype_size(v->dtype), cs__numel(out));
    else if (bytes_of(out))
        memset(out->data, 0, bytes_of(out));
    return CS_OK;
}

static cs_status range_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    int64_t count = cs__numel(out);
    if (cs__is_float(in[0]->dtype)) {
        double s = cs_tensor_get_f64(in[0], 0), d = cs_tensor_get_f64(in[2], 0);
        for (int64_t i = 0; i < count; i++) cs_tensor_set_f64(out, i, s + (double)i * d);
    } else {
        uint64_t s = (uint64_t)cs_tensor_get_i64(in[0], 0),
                 d = (uint64_t)cs_tensor_get_i64(in[2], 0);
        for (int64_t i = 0; i < count; i++)
            cs_tensor_set_i64(out, i, (int64_t)(s + (uint64_t)i * d));
    }
    return CS_OK;
}

/* Ones on the k-th diagonal (k > 0 above the main one), zeros elsewhere. */
static cs_status eyelike_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                             int n_out)
{
    int64_t rows = out->dims[0], cols = out->dims[1], k = cs__attr_int(ctx->node, "k", 0);
    if (bytes_of(out)) memset(out->data, 0, bytes_of(out));
    if (k >= cols || k <= -rows) return CS_OK;
    for (int64_t i = k < 0 ? -k : 0; i < rows && i + k < cols; i++)
        cs_tensor_set_f64(out, i * cols + i + k, 1);
    return CS_OK;
}

const cs__kernel cs__kernels_shape[] = {
    {"Reshape", NULL, 1, CS__T_ALL, 0, run_move, NULL},
    {"Flatten", NULL, 1, CS__T_ALL, 0, run_move, NULL},
    {"Squeeze", NULL, 1, CS__T_ALL, 0, run_move, NULL},
    {"Unsqueeze", NULL, 1, CS__T_ALL, 0, run_move, NULL},
    {"Identity", NULL, 1, CS__T_ALL, 0, run_move, NULL},
    {"Shape", NULL, 1, 0, 0, shape_run, NULL},
    {"Size", NULL, 1, 0, 0, size_run, NULL},
    {"Dropout", NULL, 1, CS__T_FLOAT, 0, dropout_run, NULL},
    {"Constant", NULL, 1, 0, 0, constant_run, NULL},
    {"ConstantOfShape", NULL, 9, CS__T(INT64), 0, constantofshape_run, NULL},
    {"Range", NULL, 11, CS__T_FLOAT | CS__T_SINT, 0, range_run, NULL},
    {"EyeLike", NULL, 9, CS__T_ALL, 0, eyelike_run, NULL},
    {0},
};

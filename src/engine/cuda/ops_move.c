/*
 * ops_move.c - the CUDA wrappers of data movement, by element width (copy.cu, gather.cu,
 * concat.cu serve every 2-, 4- and 8-byte type) and the float casts (cast.cu):
 *  - Transpose: the tiled transpose2d when the perm swaps the last two axes only, else one
 *    strided copy with the perm folded into the strides; Slice and Expand as strided copies
 *    (starts and steps folded into the base and strides; 0 strides along expanded axes);
 *  - Gather along any axis, int32 or int64 indices: they stay on the host, where every run
 *    checks them against the axis (ONNX's error, which the kernel cannot report) and queues
 *    them to the step's scratch as int64;
 *  - Concat, one launch per non-empty input;
 *  - Cast and CastLike between float32 and float16 or bfloat16, and to the same type;
 *  - Reshape, Flatten, Squeeze, Unsqueeze and Identity: one device-to-device copy (any type).
 * Shape, axes and bound inputs stay on the host (host_inputs). Declined: 1-byte types for
 * all but the plain copies, and casts between other types.
 */
#include "engine/cuda/cuda_ops.h"

#include "engine/ops/layout.h"
#include "engine/ops/unary.h"

#define W248                                                                                    \
    (CS__T_FLOAT | CS__T(INT16) | CS__T(INT32) | CS__T(INT64) | CS__T(UINT16) | CS__T(UINT32) | \
     CS__T(UINT64))
#define BY_WIDTH(op)                                               \
    {                                                              \
        CS__CUK_##op##_b16, CS__CUK_##op##_b32, CS__CUK_##op##_b64 \
    }
#define IDX_CHUNK 256 /* indices checked and converted per host-to-device copy */

static void row_major(const cs_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) strides[d] = s, s *= t->dims[d];
}

/* y[i] = x[base + sum(idx_k * strides_k)] over y's dims. */
static cs_status strided_copy(cs__kctx *ctx, const cs_tensor *x, cs_tensor *y, int64_t base,
                              const int64_t *strides)
{
    static const int kid[3] = BY_WIDTH(strided_copy);
    cs_cuda_strided s = {.rank = y->rank, .base = base};
    for (int d = 0; d < y->rank; d++) s.dims[d] = y->dims[d], s.strides[d] = strides[d];
    int64_t n = cs_tensor_numel(y);
    void *params[] = {(void *)&x->data, &y->data, &n, &s};
    return cs__cuda_launch_1d(ctx, kid[cs__cuda_width(y->dtype)], n, CS_CUDA_BLOCK, params);
}

static unsigned at_most(int64_t v, int64_t most)
{
    return (unsigned)(v < most ? v : most);
}

static cs_status transpose_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                               int n_out)
{
    static const int kid[3] = BY_WIDTH(transpose2d);
    (void)n_in, (void)n_out;
    const cs_tensor *x = in[0];
    int perm[CS_MAX_RANK], r = x->rank;
    cs_status rc = cs__transpose_perm(ctx->node, r, perm, ctx->err);
    if (rc || !cs_tensor_numel(out)) return rc;
    bool swap_last = r >= 2 && perm[r - 2] == r - 1 && perm[r - 1] == r - 2;
    for (int d = 0; swap_last && d < r - 2; d++) swap_last = perm[d] == d;
    if (!swap_last) {
        int64_t xs[CS_MAX_RANK] = {0}, strides[CS_MAX_RANK] = {0};
        row_major(x, xs);
        for (int d = 0; d < r; d++) strides[d] = xs[perm[d]];
        return strided_copy(ctx, x, out, 0, strides);
    }
    int64_t batch = cs__dims_prod(x->dims, 0, r - 2), rows = x->dims[r - 2], cols = x->dims[r - 1];
    const unsigned grid[3] = {at_most((cols + CS_CUDA_TILE - 1) / CS_CUDA_TILE, INT32_MAX),
                              at_most((rows + CS_CUDA_TILE - 1) / CS_CUDA_TILE, 65535),
                              at_most(batch, 65535)},
                   block[3] = {CS_CUDA_TILE, CS_CUDA_TILE_ROWS, 1};
    void *params[] = {(void *)&x->data, &out->data, &batch, &rows, &cols};
    return cs__cuda_launch(ctx, kid[cs__cuda_width(x->dtype)], grid, block, params);
}

static cs_status slice_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    (void)n_out;
    const cs_tensor *x = in[0];
    int64_t start[CS_MAX_RANK], step[CS_MAX_RANK], count[CS_MAX_RANK], xs[CS_MAX_RANK], base = 0;
    cs_status rc = cs__slice_window(ctx->node, in, n_in, start, step, count, ctx->err);
    if (rc) return rc;
    row_major(x, xs);
    for (int d = 0; d < x->rank; d++) base += start[d] * xs[d], xs[d] *= step[d];
    return strided_copy(ctx, x, out, base, xs);
}

static cs_status expand_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    (void)n_in, (void)n_out;
    int64_t strides[CS_MAX_RANK];
    cs__cuda_bcast_strides(in[0], out, strides);
    return strided_copy(ctx, in[0], out, 0, strides);
}

/* Gather's geometry: x as [outer, axis_dim, inner]. */
static cs_status gather_view(const cs__node *n, const cs_tensor *const *in, cs_cuda_gather_args *g,
                             cs_error *err)
{
    const cs_tensor *x = in[0];
    int axis = 0;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", 0), x->rank, false, &axis, err);
    if (rc) return rc;
    *g = (cs_cuda_gather_args){cs__dims_prod(x->dims, 0, axis), x->dims[axis],
                               cs__dims_prod(x->dims, axis + 1, x->rank), cs_tensor_numel(in[1])};
    return CS_OK;
}

static size_t gather_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                             const cs_tensor *out, int n_out)
{
    (void)n, (void)n_in, (void)out, (void)n_out;
    return (size_t)cs_tensor_numel(in[1]) * sizeof(int64_t);
}

/* The host's indices, checked against the axis and widened to int64, into the scratch. */
static cs_status upload_indices(cs__kctx *ctx, const cs_tensor *idx, int64_t axis_dim)
{
    int64_t buf[IDX_CHUNK], n = cs_tensor_numel(idx);
    bool wide = idx->dtype == CS_DTYPE_INT64;
    for (int64_t at = 0; at < n; at += IDX_CHUNK) {
        int64_t m = n - at < IDX_CHUNK ? n - at : IDX_CHUNK;
        for (int64_t i = 0; i < m; i++) {
            int64_t k =
                wide ? ((const int64_t *)idx->data)[at + i] : ((const int32_t *)idx->data)[at + i];
            if (k < -axis_dim || k >= axis_dim)
                return cs__node_error(ctx->err, ctx->node, CS_ERR_INVALID,
                                      "index %lld is out of range for an axis of %lld",
                                      (long long)k, (long long)axis_dim);
            buf[i] = k;
        }
        cs_status rc =
            cs__cuda_copy(ctx, (int64_t *)ctx->scratch + at, buf, (size_t)m * sizeof *buf, true);
        if (rc) return rc;
    }
    return CS_OK;
}

static cs_status gather_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    static const int kid[3] = BY_WIDTH(gather);
    (void)n_in, (void)n_out;
    cs_cuda_gather_args g;
    cs_status rc = gather_view(ctx->node, in, &g, ctx->err);
    if (rc == CS_OK) rc = upload_indices(ctx, in[1], g.axis_dim);
    if (rc) return rc;
    void *params[] = {(void *)&in[0]->data, &ctx->scratch, &out->data, &g};
    return cs__cuda_launch_1d(ctx, kid[cs__cuda_width(out->dtype)], cs_tensor_numel(out),
                              CS_CUDA_BLOCK, params);
}

static bool gather_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    if (in[1]->dtype != CS_DTYPE_INT64 && in[1]->dtype != CS_DTYPE_INT32)
        return cs__cuda_decline(err, n, "indices of type %s", cs_dtype_name(in[1]->dtype));
    cs_cuda_gather_args g;
    return gather_view(n, in, &g, err) == CS_OK;
}

static cs_status concat_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    static const int kid[3] = BY_WIDTH(concat);
    (void)n_out;
    int axis = 0;
    cs_status rc = cs__concat_axis(ctx->node, in, n_in, &axis, ctx->err);
    int64_t inner = cs__dims_prod(out->dims, axis + 1, out->rank);
    cs_cuda_concat_args c = {cs__dims_prod(out->dims, 0, axis), 0, out->dims[axis] * inner, 0};
    for (int i = 0; rc == CS_OK && i < n_in; i++) {
        if (!in[i]) continue;
        c.in_inner = in[i]->dims[axis] * inner;
        void *params[] = {(void *)&in[i]->data, &out->data, &c};
        rc = cs__cuda_launch_1d(ctx, kid[cs__cuda_width(out->dtype)], c.outer * c.in_inner,
                                CS_CUDA_BLOCK, params);
        c.offset += c.in_inner;
    }
    return rc;
}

/* The cast kernel from in's type to out's, -1 for the same type (a copy), -2 for none. */
static int cast_kernel(cs_dtype from, cs_dtype to)
{
    if (from == to) return -1;
    if (from == CS_DTYPE_FLOAT32)
        return to == CS_DTYPE_FLOAT16    ? CS__CUK_cast_f32_f16
               : to == CS_DTYPE_BFLOAT16 ? CS__CUK_cast_f32_bf16
                                         : -2;
    if (to != CS_DTYPE_FLOAT32) return -2;
    return from == CS_DTYPE_FLOAT16    ? CS__CUK_cast_f16_f32
           : from == CS_DTYPE_BFLOAT16 ? CS__CUK_cast_bf16_f32
                                       : -2;
}

static cs_status copy_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    (void)n_in, (void)n_out;
    size_t bytes = (size_t)cs_tensor_numel(out) * cs_dtype_size(out->dtype);
    return cs__cuda_copy(ctx, out->data, in[0]->data, bytes, false);
}

static cs_status cast_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    int kid = cast_kernel(in[0]->dtype, out->dtype);
    if (kid == -1) return copy_run(ctx, in, n_in, out, n_out);
    int64_t n = cs_tensor_numel(out);
    void *params[] = {(void *)&in[0]->data, &out->data, &n};
    return cs__cuda_launch_1d(ctx, kid, n, CS_CUDA_BLOCK, params);
}

static bool cast_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    cs_dtype to;
    if (cs__cast_target(n, in, n->n_in, &to, err)) return false;
    if (cast_kernel(in[0]->dtype, to) == -2)
        return cs__cuda_decline(err, n, "no CUDA kernel casts %s to %s",
                                cs_dtype_name(in[0]->dtype), cs_dtype_name(to));
    return true;
}

#define MOVE(op, since, types, run, scratch, host, accepts)           \
    {                                                                 \
        op, "", since, types, 0, run, scratch, 0, NULL, host, accepts \
    }

const cs__kernel cs__cuda_move_kernels[] = {
    MOVE("Transpose", 1, W248, transpose_run, NULL, 0, NULL),
    MOVE("Slice", 1, W248, slice_run, NULL, 0x1eu, NULL), /* starts, ends, axes, steps */
    MOVE("Expand", 8, W248, expand_run, NULL, 0x2u, NULL),
    MOVE("Gather", 1, W248, gather_run, gather_scratch, 0x2u, gather_accepts),
    MOVE("Concat", 4, W248, concat_run, NULL, 0, NULL),
    MOVE("Cast", 6, CS__T_FLOAT, cast_run, NULL, 0, cast_accepts),
    MOVE("CastLike", 15, CS__T_FLOAT, cast_run, NULL, 0x2u, cast_accepts),
    MOVE("Reshape", 5, CS__T_ALL, copy_run, NULL, 0x2u, NULL),
    MOVE("Flatten", 1, CS__T_ALL, copy_run, NULL, 0, NULL),
    MOVE("Squeeze", 1, CS__T_ALL, copy_run, NULL, 0x2u, NULL),
    MOVE("Unsqueeze", 1, CS__T_ALL, copy_run, NULL, 0x2u, NULL),
    MOVE("Identity", 1, CS__T_ALL, copy_run, NULL, 0, NULL),
    {0},
};

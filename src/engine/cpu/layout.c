/*
 * layout.c - CPU kernels for operators that rearrange elements: Transpose, Slice, Split,
 * Concat, Expand, Tile, Trilu, DepthToSpace and SpaceToDepth; their schemas (shape and
 * type inference) are in ops/layout.c.
 *
 * Everything but Concat and Trilu goes through one strided view (a destination shape plus,
 * per destination axis, a step in the source), so each operator is only the few lines that
 * build its view. Copies work on element size (1, 2, 4 or 8 bytes), never on the type, so
 * one path serves every dtype. The node's arguments are read by the same functions infer
 * uses (ops/layout.h), so both see one set of rules.
 */
#include "engine/kernel.h"
#include "engine/ops/layout.h"

#include <string.h>

/* ---- strided views -------------------------------------------------------------------- */

/* Tile splits each axis in two (repeat, original), so views need twice the tensor rank. */
#define VIEW_RANK (2 * CS_MAX_RANK)

/* A source read as a strided view and written out row-major into a contiguous destination.
 * dims is the destination shape; strides[i] is how many source elements one step along
 * destination axis i moves (0 repeats, negative walks backwards); offset is the source
 * element behind destination index 0. */
typedef struct view {
    int rank;
    int64_t dims[VIEW_RANK];
    int64_t strides[VIEW_RANK];
    int64_t offset;
} view;

typedef struct view_job {
    view v;
    const char *src;
    char *dst;
    size_t esize;
} view_job;

/* A view that reads t whole, in order; callers then edit the axes they rearrange. */
static void view_init(view *v, const cs_tensor *t)
{
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof t->dims);
    cs__strides(t, v->strides);
    v->offset = 0;
}

/* Drops unit axes and merges neighbours that walk the source contiguously, so the common
 * cases (a slice of whole rows, a transpose that keeps the last axes) become a few long
 * rows that memcpy can take. */
static void view_simplify(view *v)
{
    int r = 0;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] == 1) continue;
        if (r > 0 && v->strides[r - 1] == v->strides[i] * v->dims[i]) {
            v->dims[r - 1] *= v->dims[i];
            v->strides[r - 1] = v->strides[i];
            continue;
        }
        v->dims[r] = v->dims[i];
        v->strides[r] = v->strides[i];
        r++;
    }
    v->rank = r;
}

#define GATHER_AS(T) \
    for (int64_t i = 0; i < n; i++) ((T *)dst)[i] = ((const T *)src)[i * stride]

static void copy_row(char *dst, const char *src, int64_t n, int64_t stride, size_t esize)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * esize);
        return;
    }
    switch (esize) {
    case 1: GATHER_AS(uint8_t); break;
    case 2: GATHER_AS(uint16_t); break;
    case 4: GATHER_AS(uint32_t); break;
    default: GATHER_AS(uint64_t); break;
    }
}

#undef GATHER_AS

/* Copies destination rows [begin, end): the outer axes advance like an odometer. */
static void view_rows(void *arg, int64_t begin, int64_t end)
{
    const view_job *j = arg;
    const view *v = &j->v;
    int outer = v->rank - 1;
    int64_t inner = v->dims[outer], idx[VIEW_RANK], off = v->offset, r = begin;
    for (int d = outer - 1; d >= 0; d--) {
        idx[d] = r % v->dims[d];
        r /= v->dims[d];
        off += idx[d] * v->strides[d];
    }
    for (int64_t row = begin; row < end; row++) {
        copy_row(j->dst + (size_t)(row * inner) * j->esize, j->src + off * (int64_t)j->esize, inner,
                 v->strides[outer], j->esize);
        for (int d = outer - 1; d >= 0; d--) {
            off += v->strides[d];
            if (++idx[d] < v->dims[d]) break;
            off -= v->strides[d] * v->dims[d];
            idx[d] = 0;
        }
    }
}

/* Copies the view of `src` into `dst`, rows spread over the pool when there are enough. */
static void view_copy(cs__kctx *ctx, view *v, const void *src, void *dst, size_t esize)
{
    int64_t total = 1;
    for (int i = 0; i < v->rank; i++) total *= v->dims[i];
    if (total == 0) return;
    view_simplify(v);
    if (v->rank == 0) {
        memcpy(dst, (const char *)src + v->offset * (int64_t)esize, esize);
        return;
    }
    view_job job = {*v, src, dst, esize};
    int64_t inner = v->dims[v->rank - 1];
    cs__parallel_for(ctx, total / inner, inner >= 16384 ? 1 : 16384 / inner, view_rows, &job);
}

static void view_run(cs__kctx *ctx, view *v, const cs_tensor *in, cs_tensor *out)
{
    view_copy(ctx, v, in->data, out->data, cs_dtype_size(in->dtype));
}

/* ---- Transpose, Slice, Split, Expand, Tile -------------------------------------------- */

static cs_status transpose_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                               int n_out)
{
    int perm[CS_MAX_RANK];
    view src, v;
    cs_status rc = cs__transpose_perm(ctx->node, in[0]->rank, perm, ctx->err);
    if (rc != CS_OK) return rc;
    view_init(&src, in[0]);
    v = src;
    for (int i = 0; i < v.rank; i++) {
        v.dims[i] = src.dims[perm[i]];
        v.strides[i] = src.strides[perm[i]];
    }
    view_run(ctx, &v, in[0], out);
    return CS_OK;
}

static cs_status slice_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    int64_t start[CS_MAX_RANK], step[CS_MAX_RANK], count[CS_MAX_RANK];
    view v;
    cs_status rc = cs__slice_window(ctx->node, in, n_in, start, step, count, ctx->err);
    if (rc != CS_OK) return rc;
    view_init(&v, in[0]);
    for (int d = 0; d < v.rank; d++) {
        if (count[d] == 0) return CS_OK;
        v.offset += start[d] * v.strides[d];
        v.strides[d] *= step[d];
        v.dims[d] = count[d];
    }
    view_run(ctx, &v, in[0], out);
    return CS_OK;
}

static cs_status split_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    int axis;
    int64_t equal = 0, first = 0;
    cs__ints parts;
    view v;
    cs_status rc = cs__split_parts(ctx->node, in, n_in, n_out, &axis, &parts, &equal, ctx->err);
    if (rc != CS_OK) return rc;
    view_init(&v, in[0]);
    for (int j = 0; j < n_out; j++) {
        view part = v;
        part.dims[axis] = cs__split_part(&parts, equal, j);
        part.offset = first * v.strides[axis];
        first += part.dims[axis];
        view_run(ctx, &part, in[0], &out[j]);
    }
    return CS_OK;
}

static cs_status expand_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    const cs_tensor *x = in[0];
    int64_t xs[CS_MAX_RANK];
    view v = {.rank = out->rank};
    cs__strides(x, xs);
    for (int d = 0; d < out->rank; d++) {
        int k = d - (out->rank - x->rank);
        v.dims[d] = out->dims[d];
        v.strides[d] = k < 0 || x->dims[k] == 1 ? 0 : xs[k];
    }
    view_run(ctx, &v, x, out);
    return CS_OK;
}

/* The output, row-major, is the view [rep0, dim0, rep1, dim1, ...] with the repeat axes
 * standing still in the source. */
static cs_status tile_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    int64_t rep[CS_MAX_RANK], xs[CS_MAX_RANK];
    view v = {.rank = 2 * in[0]->rank};
    cs_status rc = cs__tile_repeats(ctx->node, in, n_in, rep, ctx->err);
    if (rc != CS_OK) return rc;
    cs__strides(in[0], xs);
    for (int d = 0; d < in[0]->rank; d++) {
        v.dims[2 * d] = rep[d];
        v.dims[2 * d + 1] = in[0]->dims[d];
        v.strides[2 * d + 1] = xs[d];
    }
    view_run(ctx, &v, in[0], out);
    return CS_OK;
}

/* ---- Concat --------------------------------------------------------------------------- */

/* Each outer index gets one contiguous block from every input in turn. */
static cs_status concat_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    int axis;
    cs_status rc = cs__concat_axis(ctx->node, in, n_in, &axis, ctx->err);
    if (rc != CS_OK) return rc;
    size_t inner = cs_dtype_size(out->dtype), row, at = 0;
    int64_t outer = 1;
    for (int d = 0; d < axis; d++) outer *= out->dims[d];
    for (int d = axis + 1; d < out->rank; d++) inner *= (size_t)out->dims[d];
    row = inner * (size_t)out->dims[axis];
    for (int k = 0; k < n_in; k++) {
        size_t block = inner * (size_t)in[k]->dims[axis];
        for (int64_t o = 0; o < outer && block; o++)
            memcpy((char *)out->data + (size_t)o * row + at,
                   (const char *)in[k]->data + (size_t)o * block, block);
        at += block;
    }
    return CS_OK;
}

/* ---- Trilu ---------------------------------------------------------------------------- */

/* Keeps the upper (j - i >= k) or lower (j - i <= k) triangle of every matrix and zeros the
 * rest. Each row splits at one column into a kept and a zeroed run, so a row is at most one
 * copy and one memset. Works in place when the planner aliases input and output. */
static cs_status trilu_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    const cs_tensor *x = in[0];
    int64_t k = 0, rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    bool upper = cs__attr_int(ctx->node, "upper", 1) != 0;
    cs_status rc = n_in > 1 && in[1] ? cs__scalar_i64(ctx->node, in[1], "k", &k, ctx->err) : CS_OK;
    if (rc != CS_OK) return rc;
    size_t esize = cs_dtype_size(x->dtype), pitch = (size_t)cols * esize;
    int64_t all_rows = rows && cols ? cs__numel(x) / cols : 0;
    k = cs__clamp64(k, -rows - 1, cols + 1);
    for (int64_t r = 0; r < all_rows; r++) {
        /* Columns before `split` are kept by lower and zeroed by upper. */
        int64_t i = r % rows, split = cs__clamp64(i + k + (upper ? 0 : 1), 0, cols);
        char *dst = (char *)out->data + (size_t)r * pitch;
        const char *src = (const char *)x->data + (size_t)r * pitch;
        size_t cut = (size_t)split * esize, keep_at = upper ? cut : 0;
        size_t keep_len = upper ? pitch - cut : cut;
        if (dst != src && keep_len) memcpy(dst + keep_at, src + keep_at, keep_len);
        memset(upper ? dst : dst + cut, 0, pitch - keep_len);
    }
    return CS_OK;
}

/* ---- DepthToSpace, SpaceToDepth ------------------------------------------------------- */

static cs_status space_depth_run(cs__kctx *ctx, const cs_tensor *const *in, cs_tensor *out,
                                 bool to_space)
{
    cs__space_depth sd;
    view v = {.rank = 6};
    cs_status rc = cs__space_depth_get(ctx->node, in[0], to_space, &sd, ctx->err);
    if (rc != CS_OK) return rc;
    memcpy(v.dims, sd.dims, sizeof sd.dims);
    memcpy(v.strides, sd.strides, sizeof sd.strides);
    view_run(ctx, &v, in[0], out);
    return CS_OK;
}

static cs_status depthtospace_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out)
{
    return space_depth_run(ctx, in, out, true);
}

static cs_status spacetodepth_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out)
{
    return space_depth_run(ctx, in, out, false);
}

const cs__kernel cs__kernels_layout[] = {
    {"Transpose", NULL, 1, CS__T_ALL, 0, transpose_run, NULL},
    {"Slice", NULL, 1, CS__T_ALL, 0, slice_run, NULL},
    {"Split", NULL, 1, CS__T_ALL, 0, split_run, NULL},
    {"Expand", NULL, 8, CS__T_ALL, 0, expand_run, NULL},
    {"Tile", NULL, 1, CS__T_ALL, 0, tile_run, NULL},
    {"Concat", NULL, 1, CS__T_ALL, 0, concat_run, NULL},
    {"Trilu", NULL, 14, CS__T_ALL, 0, trilu_run, NULL},
    {"DepthToSpace", NULL, 1, CS__T_ALL, 0, depthtospace_run, NULL},
    {"SpaceToDepth", NULL, 1, CS__T_ALL, 0, spacetodepth_run, NULL},
    {0},
};

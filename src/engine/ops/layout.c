/*
 * layout.c - schemas of the operators that rearrange elements: Transpose, Slice, Split,
 * Concat, Expand, Tile, Trilu, DepthToSpace and SpaceToDepth: shape and type inference,
 * apart from any backend.
 *
 * Outputs keep the input's element type. Arguments that moved from attributes to inputs
 * across opsets (Slice's starts/ends/axes, Split's split, Expand's shape, Tile's repeats)
 * are read through cs__ints_get (ops/shape.h), which defers while their values are unknown.
 * The readers that the kernels call too (Transpose's perm, Slice's window, Split's parts,
 * Tile's repeats, Concat's axis, the depth/space shuffle) are declared in ops/layout.h.
 */
#include "engine/ops/layout.h"

#include <string.h>

/* A scalar input's value as int64; in must be known and hold one element. */
cs_status cs__scalar_i64(const cs__node *n, const cs_tensor *t, const char *what, int64_t *v,
                         cs_error *err)
{
    if (cs__numel(t) != 1 || cs_dtype_size(t->dtype) == 0)
        return cs__node_error(err, n, CS_ERR_INVALID, "%s must hold one number", what);
    if (!t->data) return CS__DEFER;
    *v = cs_tensor_get_i64(t, 0);
    return CS_OK;
}

/* ---- Transpose, Slice, Split, Expand, Tile -------------------------------------------- */

/* Transpose's perm: the attribute, checked to be a permutation, or the axes reversed. */
cs_status cs__transpose_perm(const cs__node *n, int rank, int *perm, cs_error *err)
{
    const int64_t *p;
    int count = cs__attr_ints(n, "perm", &p);
    bool seen[CS_MAX_RANK] = {0};
    for (int i = 0; i < rank && count < 0; i++) perm[i] = rank - 1 - i;
    if (count >= 0 && count != rank)
        return cs__node_error(err, n, CS_ERR_INVALID, "perm has %d entries for rank %d", count,
                              rank);
    for (int i = 0; i < count; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "perm is not a permutation of the %d input axes", rank);
        seen[p[i]] = true;
        perm[i] = (int)p[i];
    }
    return CS_OK;
}

static cs_status transpose_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 cs_tensor *out, int n_out, cs_error *err)
{
    int perm[CS_MAX_RANK];
    cs_status rc = cs__transpose_perm(n, in[0]->rank, perm, err);
    if (rc != CS_OK) return rc;
    cs__same_shape(out, in[0]);
    for (int i = 0; i < out->rank; i++) out->dims[i] = in[0]->dims[perm[i]];
    return CS_OK;
}

/* Slice's window per axis (start, step, count) after ONNX's rules: negative indices count
 * from the end, starts and ends clamp to the axis (to [0, dim-1] and [-1, dim-1] when
 * stepping backwards), so INT64_MAX-style "to the end" bounds work. Arguments are inputs
 * from opset 10 and attributes before (no steps then). */
cs_status cs__slice_window(const cs__node *n, const cs_tensor *const *in, int n_in, int64_t *start,
                           int64_t *step, int64_t *count, cs_error *err)
{
    const cs_tensor *x = in[0];
    bool seen[CS_MAX_RANK] = {0};
    cs__ints starts, ends, axes, steps;
    cs_status rc;
    if ((rc = cs__ints_get(n, in, n_in, 1, "starts", &starts, err)) != CS_OK ||
        (rc = cs__ints_get(n, in, n_in, 2, "ends", &ends, err)) != CS_OK ||
        (rc = cs__ints_get(n, in, n_in, 3, "axes", &axes, err)) != CS_OK ||
        (rc = cs__ints_get(n, in, n_in, 4, NULL, &steps, err)) != CS_OK)
        return rc;
    if (starts.n < 0 || ends.n != starts.n || (axes.n >= 0 && axes.n != starts.n) ||
        (steps.n >= 0 && steps.n != starts.n) || starts.n > x->rank)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "starts, ends, axes and steps must have one entry per sliced axis");
    for (int d = 0; d < x->rank; d++) {
        start[d] = 0;
        step[d] = 1;
        count[d] = x->dims[d];
    }
    for (int i = 0; i < starts.n; i++) {
        int a = i;
        if (axes.n >= 0 && (rc = cs__axis(n, cs__ints_at(&axes, i), x->rank, false, &a, err)))
            return rc;
        if (seen[a]) return cs__node_error(err, n, CS_ERR_INVALID, "axis %d is repeated", a);
        seen[a] = true;
        int64_t dim = x->dims[a], b = cs__ints_at(&starts, i), e = cs__ints_at(&ends, i);
        int64_t st = steps.n >= 0 ? cs__ints_at(&steps, i) : 1;
        if (st == 0) return cs__node_error(err, n, CS_ERR_INVALID, "step must not be 0");
        /* Steps longer than the axis take at most one element; clamping them keeps the
         * arithmetic below in range. */
        st = cs__clamp64(st, -dim - 1, dim + 1);
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        if (st > 0) {
            b = cs__clamp64(b, 0, dim);
            e = cs__clamp64(e, 0, dim);
            count[a] = e > b ? (e - b - 1) / st + 1 : 0;
        } else {
            b = cs__clamp64(b, 0, dim - 1);
            e = cs__clamp64(e, -1, dim - 1);
            count[a] = b > e ? (b - e - 1) / -st + 1 : 0;
        }
        start[a] = b;
        step[a] = st;
    }
    return CS_OK;
}

static cs_status slice_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    int64_t start[CS_MAX_RANK], step[CS_MAX_RANK];
    cs__same_shape(out, in[0]);
    return cs__slice_window(n, in, n_in, start, step, out->dims, err);
}

/* Split's part sizes along *axis: the split input (opset 13) or attribute, else equal
 * parts. part j is then cs__split_part(parts, equal, j). */
cs_status cs__split_parts(const cs__node *n, const cs_tensor *const *in, int n_in, int n_out,
                          int *axis, cs__ints *parts, int64_t *equal, cs_error *err)
{
    const cs_tensor *x = in[0];
    if (n_out < 1) return cs__node_error(err, n, CS_ERR_INVALID, "needs outputs");
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", 0), x->rank, false, axis, err);
    if (rc != CS_OK || (rc = cs__ints_get(n, in, n_in, 1, "split", parts, err)) != CS_OK) return rc;
    int64_t dim = x->dims[*axis], sum = 0;
    if (parts->n < 0) {
        if (dim % n_out)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "cannot split axis %d of size %lld into %d equal parts", *axis,
                                  (long long)dim, n_out);
        *equal = dim / n_out;
        return CS_OK;
    }
    if (parts->n != n_out)
        return cs__node_error(err, n, CS_ERR_INVALID, "split has %d sizes for %d outputs", parts->n,
                              n_out);
    for (int j = 0; j < n_out && sum <= dim; j++) {
        int64_t p = cs__ints_at(parts, j);
        if (p < 0) return cs__node_error(err, n, CS_ERR_INVALID, "split size %lld", (long long)p);
        sum += p > dim ? dim + 1 : p;
    }
    if (sum != dim)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "split sizes do not add up to %lld, the size of axis %d",
                              (long long)dim, *axis);
    return CS_OK;
}

static cs_status split_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    int axis;
    int64_t equal = 0;
    cs__ints parts;
    cs_status rc = cs__split_parts(n, in, n_in, n_out, &axis, &parts, &equal, err);
    for (int j = 0; j < n_out && rc == CS_OK; j++) {
        cs__same_shape(&out[j], in[0]);
        out[j].dims[axis] = cs__split_part(&parts, equal, j);
    }
    return rc;
}

/* Expand broadcasts the input against the shape input both ways (numpy rules). */
static cs_status expand_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    char a[200], b[200];
    cs_tensor shape = {0};
    cs__ints s;
    cs_status rc = cs__ints_get(n, in, n_in, 1, NULL, &s, err);
    if (rc != CS_OK) return rc;
    if (s.n < 0 || s.n > CS_MAX_RANK)
        return cs__node_error(err, n, CS_ERR_INVALID, "needs a shape of at most %d dims",
                              CS_MAX_RANK);
    shape.rank = s.n;
    for (int i = 0; i < s.n; i++) shape.dims[i] = cs__ints_at(&s, i);
    const cs_tensor *both[2] = {in[0], &shape};
    if (cs__broadcast(2, both, out, NULL) != CS_OK)
        return cs__node_error(err, n, CS_ERR_INVALID, "cannot expand %s to %s",
                              cs__fmt_dims(a, sizeof a, in[0]->dims, in[0]->rank),
                              cs__fmt_dims(b, sizeof b, shape.dims, shape.rank));
    out->dtype = in[0]->dtype;
    return cs__set_dims(n, out, out->dims, out->rank, err);
}

/* Tile's repeat count per axis: the repeats input (opset 6), or in opset 1 `tiles` copies
 * along `axis`. */
cs_status cs__tile_repeats(const cs__node *n, const cs_tensor *const *in, int n_in, int64_t *rep,
                           cs_error *err)
{
    int rank = in[0]->rank;
    cs_status rc;
    for (int d = 0; d < rank; d++) rep[d] = 1;
    if (n->opset < 6 && n_in >= 3 && in[1] && in[2]) {
        int64_t tiles = 1, axis = 0;
        int a;
        if ((rc = cs__scalar_i64(n, in[1], "tiles", &tiles, err)) != CS_OK ||
            (rc = cs__scalar_i64(n, in[2], "axis", &axis, err)) != CS_OK ||
            (rc = cs__axis(n, axis, rank, false, &a, err)) != CS_OK)
            return rc;
        rep[a] = tiles;
    } else {
        cs__ints r;
        if ((rc = cs__ints_get(n, in, n_in, 1, NULL, &r, err)) != CS_OK) return rc;
        if (r.n != rank)
            return cs__node_error(err, n, CS_ERR_INVALID, "repeats has %d entries for rank %d", r.n,
                                  rank);
        for (int d = 0; d < rank; d++) rep[d] = cs__ints_at(&r, d);
    }
    for (int d = 0; d < rank; d++)
        if (rep[d] < 0)
            return cs__node_error(err, n, CS_ERR_INVALID, "repeat count %lld is negative",
                                  (long long)rep[d]);
    return CS_OK;
}

static cs_status tile_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    int64_t rep[CS_MAX_RANK], dims[CS_MAX_RANK];
    cs_status rc = cs__tile_repeats(n, in, n_in, rep, err);
    if (rc != CS_OK) return rc;
    for (int d = 0; d < in[0]->rank; d++)
        if (__builtin_mul_overflow(in[0]->dims[d], rep[d], &dims[d])) dims[d] = -1;
    out->dtype = in[0]->dtype;
    return cs__set_dims(n, out, dims, in[0]->rank, err);
}

/* ---- Concat --------------------------------------------------------------------------- */

/* Concat's axis: required from opset 4, 1 by default before. */
cs_status cs__concat_axis(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          cs_error *err)
{
    if (n_in < 1 || !in[0]) return cs__node_error(err, n, CS_ERR_INVALID, "needs inputs");
    if (n->opset >= 4 && !cs__attr_find(n, "axis"))
        return cs__node_error(err, n, CS_ERR_INVALID, "needs the axis attribute");
    return cs__axis(n, cs__attr_int(n, "axis", 1), in[0]->rank, false, axis, err);
}

static cs_status concat_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    char a[200], b[200];
    int axis;
    cs_status rc = cs__concat_axis(n, in, n_in, &axis, err);
    if (rc != CS_OK) return rc;
    cs__same_shape(out, in[0]);
    out->dims[axis] = 0;
    for (int k = 0; k < n_in; k++) {
        const cs_tensor *t = in[k];
        bool same = t && t->dtype == out->dtype && t->rank == out->rank;
        for (int d = 0; same && d < t->rank; d++) same = d == axis || t->dims[d] == out->dims[d];
        if (!same)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "input %d (%s %s) does not match input 0 (%s %s) outside axis %d",
                                  k, t ? cs_dtype_name(t->dtype) : "absent",
                                  t ? cs__fmt_dims(a, sizeof a, t->dims, t->rank) : "",
                                  cs_dtype_name(in[0]->dtype),
                                  cs__fmt_dims(b, sizeof b, in[0]->dims, in[0]->rank), axis);
        if (__builtin_add_overflow(out->dims[axis], t->dims[axis], &out->dims[axis]))
            return cs__node_error(err, n, CS_ERR_INVALID, "output is too large");
    }
    return CS_OK;
}

/* ---- Trilu ---------------------------------------------------------------------------- */

static cs_status trilu_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    if (in[0]->rank < 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "input must have rank 2 or more, got %d",
                              in[0]->rank);
    if (n_in > 1 && in[1] && cs__numel(in[1]) != 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "k must be a scalar");
    cs__same_shape(out, in[0]);
    return CS_OK;
}

/* ---- DepthToSpace, SpaceToDepth ------------------------------------------------------- */

/* Both shuffles are one 6-D view of an NCHW tensor with block size b (ops/layout.h). DepthToSpace
 * writes [N, C/b², H, b, W, b] (= [N, C/b², H·b, W·b]); SpaceToDepth writes [N, b, b, C, H/b, W/b]
 * (= [N, C·b², H/b, W/b]). */
cs_status cs__space_depth_get(const cs__node *n, const cs_tensor *x, bool to_space,
                              cs__space_depth *v, cs_error *err)
{
    int64_t b = cs__attr_int(n, "blocksize", 0);
    if (x->rank != 4)
        return cs__node_error(err, n, CS_ERR_INVALID, "input must be 4-D (NCHW), got rank %d",
                              x->rank);
    if (b <= 0 || b > INT32_MAX)
        return cs__node_error(err, n, CS_ERR_INVALID, "blocksize %lld must be positive",
                              (long long)b);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (to_space) {
        const char *mode = n->opset >= 11 ? cs__attr_str(n, "mode", "DCR") : "DCR";
        bool crd = !strcmp(mode, "CRD");
        if (!crd && strcmp(mode, "DCR"))
            return cs__node_error(err, n, CS_ERR_INVALID, "mode '%s' must be DCR or CRD", mode);
        if (C % (b * b))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "channels (%lld) are not a multiple of blocksize² (%lld)",
                                  (long long)C, (long long)(b * b));
        int64_t c = C / (b * b), hw = H * W;
        /* Input channel of (c, i, j): DCR (i·b + j)·C/b² + c, CRD c·b² + i·b + j. */
        int64_t dims[6] = {N, c, H, b, W, b};
        int64_t strides[6] = {C * hw, crd ? b * b * hw : hw, W, crd ? b * hw : b * c * hw,
                              1,      crd ? hw : c * hw};
        memcpy(v->dims, dims, sizeof dims);
        memcpy(v->strides, strides, sizeof strides);
    } else {
        if (H % b || W % b)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "height %lld and width %lld must be multiples of blocksize %lld",
                                  (long long)H, (long long)W, (long long)b);
        int64_t dims[6] = {N, b, b, C, H / b, W / b};
        int64_t strides[6] = {C * H * W, W, 1, H * W, b * W, b};
        memcpy(v->dims, dims, sizeof dims);
        memcpy(v->strides, strides, sizeof strides);
    }
    return CS_OK;
}

static cs_status space_depth_infer(const cs__node *n, const cs_tensor *const *in, cs_tensor *out,
                                   bool to_space, cs_error *err)
{
    cs__space_depth v = {0};
    cs_status rc = cs__space_depth_get(n, in[0], to_space, &v, err);
    if (rc != CS_OK) return rc;
    out->dtype = in[0]->dtype;
    out->rank = 4;
    out->dims[0] = v.dims[0];
    out->dims[1] = to_space ? v.dims[1] : v.dims[1] * v.dims[2] * v.dims[3];
    out->dims[2] = to_space ? v.dims[2] * v.dims[3] : v.dims[4];
    out->dims[3] = to_space ? v.dims[4] * v.dims[5] : v.dims[5];
    return CS_OK;
}

static cs_status depthtospace_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                    cs_tensor *out, int n_out, cs_error *err)
{
    return space_depth_infer(n, in, out, true, err);
}

static cs_status spacetodepth_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                                    cs_tensor *out, int n_out, cs_error *err)
{
    return space_depth_infer(n, in, out, false, err);
}

/* One entry per operator: each infer reads n->opset where versions differ. */
const cs__op cs__ops_layout[] = {
    {"Transpose", NULL, 1, transpose_infer},
    {"Slice", NULL, 1, slice_infer},
    {"Split", NULL, 1, split_infer},
    {"Expand", NULL, 8, expand_infer},
    {"Tile", NULL, 1, tile_infer},
    {"Concat", NULL, 1, concat_infer},
    {"Trilu", NULL, 14, trilu_infer},
    {"DepthToSpace", NULL, 1, depthtospace_infer},
    {"SpaceToDepth", NULL, 1, spacetodepth_infer},
    {0},
};

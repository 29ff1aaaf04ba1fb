/*
 * conv.c - schemas of the convolutions, Conv and ConvTranspose, 1-D to 6-D, grouped: shape
 * and type inference, apart from any backend.
 *
 * X is [N, C, spatial...], W [M, C/group, kernel...] (ConvTranspose: [C, M/group,
 * kernel...]) and the optional B [M], all of one type. The spatial extent of Y follows the
 * sliding-window rules of ops/window.h; ConvTranspose's, the adjoint's, also takes
 * output_padding and output_shape. cs__conv_shape_init (ops/conv.h) validates all of it and
 * gives the geometry that the kernels walk too.
 */
#include "engine/ops/conv.h"

#include <limits.h>

/* ConvTranspose's output extent: the full scatter s*(in-1) + output_padding + kernel extent,
 * less the pads; or output_shape, with pads derived from it (SAME_UPPER puts the odd one
 * at the end, other modes at the start); or in*s under SAME. A negative total padding
 * leaves the extra positions at the end, where they receive only the bias. */
static cs_status transpose_extent(const cs__node *n, const int64_t *xdims, cs__window *w,
                                  cs__pad_mode mode, cs_error *err)
{
    int nd = w->nd;
    int64_t opad[CS__MAX_SPATIAL], oshape[CS__MAX_SPATIAL];
    cs_status rc = cs__ints_attr(n, "output_padding", nd, 0, 0, opad, err);
    if (rc != CS_OK) return rc;
    const int64_t *os;
    int n_os = cs__attr_ints(n, "output_shape", &os);
    if (n_os >= 0 && n_os != nd && n_os != nd + 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "output_shape has %d values, expected %d",
                              n_os, nd);
    for (int j = 0; j < nd && n_os >= 0; j++) oshape[j] = os[n_os - nd + j];
    w->in_size = w->out_size = 1;
    for (int j = 0; j < nd; j++) {
        int64_t full = w->s[j] * (xdims[j] - 1) + opad[j] + (w->k[j] - 1) * w->d[j] + 1, out;
        if (n_os >= 0 || mode == CS__PAD_SAME_UPPER || mode == CS__PAD_SAME_LOWER) {
            out = n_os >= 0 ? oshape[j] : xdims[j] * w->s[j];
            int64_t total = full - out;
            w->pb[j] = total <= 0 ? 0 : mode == CS__PAD_SAME_UPPER ? total / 2 : total - total / 2;
        } else {
            if (mode == CS__PAD_VALID) w->pb[j] = w->pe[j] = 0;
            out = full - w->pb[j] - w->pe[j];
        }
        if (out < 1)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "output extent %lld on spatial axis %d is not positive",
                                  (long long)out, j);
        w->pe[j] = full - out - w->pb[j];
        w->in[j] = out;
        w->out[j] = xdims[j];
        w->in_size *= out;
        w->out_size *= xdims[j];
    }
    return CS_OK;
}

/* Validates X [N,C,...], W ([M,C/g,k...] or transposed [C,M/g,k...]) and B [M], and sets
 * the geometry; fills y's shape when given. */
cs_status cs__conv_shape_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                              bool transpose, cs__conv_shape *c, cs_tensor *y, cs_error *err)
{
    const cs_tensor *x = in[0], *wt = in[1], *b = n_in > 2 ? in[2] : NULL;
    if (x->rank < 3)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "X must be [N,C,spatial...] with rank >= 3, got rank %d", x->rank);
    if (wt->rank != x->rank)
        return cs__node_error(err, n, CS_ERR_INVALID, "W has rank %d but X has rank %d", wt->rank,
                              x->rank);
    if (wt->dtype != x->dtype || (b && b->dtype != x->dtype))
        return cs__node_error(err, n, CS_ERR_INVALID, "X, W and B must share one type");
    int nd = x->rank - 2;
    const int64_t *ks;
    int n_ks = cs__attr_ints(n, "kernel_shape", &ks);
    if (n_ks >= 0) {
        if (n_ks != nd)
            return cs__node_error(err, n, CS_ERR_INVALID, "kernel_shape has %d values, expected %d",
                                  n_ks, nd);
        for (int j = 0; j < nd; j++)
            if (ks[j] != wt->dims[2 + j])
                return cs__node_error(err, n, CS_ERR_INVALID,
                                      "kernel_shape[%d] is %lld but W's dimension is %lld", j,
                                      (long long)ks[j], (long long)wt->dims[2 + j]);
    }
    c->transpose = transpose;
    c->N = x->dims[0];
    c->C = x->dims[1];
    c->group = cs__attr_int(n, "group", 1);
    if (c->group < 1 || c->C % c->group)
        return cs__node_error(err, n, CS_ERR_INVALID, "group %lld does not divide %lld channels",
                              (long long)c->group, (long long)c->C);
    c->Cg = c->C / c->group;
    if (transpose) {
        if (wt->dims[0] != c->C)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "W has %lld input channels, X has %lld (W is [C, M/group, k...])",
                                  (long long)wt->dims[0], (long long)c->C);
        c->Mg = wt->dims[1];
        c->M = c->Mg * c->group;
    } else {
        if (wt->dims[1] * c->group != c->C)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "X has %lld channels but W expects %lld per group x %lld groups",
                                  (long long)c->C, (long long)wt->dims[1], (long long)c->group);
        c->M = wt->dims[0];
        if (c->M % c->group)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "group %lld does not divide %lld output channels",
                                  (long long)c->group, (long long)c->M);
        c->Mg = c->M / c->group;
    }
    if (b && (b->rank != 1 || b->dims[0] != c->M))
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "B must hold one bias per output channel, [%lld]; got %s%lld values",
                              (long long)c->M, b->rank == 1 ? "" : "a non-1-D tensor of ",
                              (long long)cs__numel(b));
    cs__pad_mode mode = CS__PAD_NOTSET;
    cs_status rc = cs__pad_mode_get(n, &mode, err);
    if (rc == CS_OK) rc = cs__window_init(n, nd, x->dims + 2, wt->dims + 2, &c->w, err);
    if (rc != CS_OK) return rc;
    rc = transpose ? transpose_extent(n, x->dims + 2, &c->w, mode, err)
                   : cs__window_forward(n, &c->w, mode, false, err);
    if (rc != CS_OK) return rc;
    int64_t rows = (transpose ? c->Mg : c->Cg) * c->w.k_size;
    int64_t gm = transpose ? rows : c->Mg, gk = transpose ? c->Cg : rows;
    if (gm > INT_MAX || gk > INT_MAX || c->w.out_size > INT_MAX)
        return cs__node_error(err, n, CS_ERR_LIMIT, "convolution too large for BLAS");
    if (y) {
        y->dtype = x->dtype;
        y->rank = x->rank;
        y->dims[0] = c->N;
        y->dims[1] = c->M;
        for (int j = 0; j < nd; j++) y->dims[2 + j] = transpose ? c->w.in[j] : c->w.out[j];
    }
    return CS_OK;
}

static cs_status conv_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    cs__conv_shape c = {0};
    return cs__conv_shape_init(n, in, n_in, false, &c, &out[0], err);
}

static cs_status convt_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                             cs_tensor *out, int n_out, cs_error *err)
{
    cs__conv_shape c = {0};
    return cs__conv_shape_init(n, in, n_in, true, &c, &out[0], err);
}

const cs__op cs__ops_conv[] = {
    {"Conv", "", 1, conv_infer},
    {"ConvTranspose", "", 1, convt_infer},
    {0},
};

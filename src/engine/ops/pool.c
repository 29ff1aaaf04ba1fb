/*
 * pool.c - schemas of the pools: AveragePool, MaxPool (with Indices), LpPool and their
 * Global variants, 1-D to 6-D: shape and type inference, apart from any backend.
 *
 * Every pool has Conv's sliding-window geometry (ops/window.h) plus ceil_mode; a Global
 * pool's window covers the whole plane. Y keeps X's type, and MaxPool's optional Indices
 * are int64 of Y's shape. cs__pool_window (ops/pool.h) gives the geometry the kernels walk.
 */
#include "engine/ops/pool.h"

#include <string.h>

static const cs__pool_op pool_ops[] = {
    {"MaxPool", CS__POOL_MAX, false},
    {"AveragePool", CS__POOL_AVG, false},
    {"LpPool", CS__POOL_LP, false},
    {"GlobalMaxPool", CS__POOL_MAX, true},
    {"GlobalAveragePool", CS__POOL_AVG, true},
    {"GlobalLpPool", CS__POOL_LP, true},
};

/* The schema table below and the kernel table route only these operators here. */
const cs__pool_op *cs__pool_op_of(const cs__node *n)
{
    for (size_t i = 0; i < sizeof pool_ops / sizeof pool_ops[0]; i++)
        if (!strcmp(n->op_type, pool_ops[i].name)) return &pool_ops[i];
    return &pool_ops[0];
}

/* The geometry of X [N, C, spatial...] under the node's attributes. */
cs_status cs__pool_window(const cs__node *n, const cs_tensor *x, cs__window *w, cs_error *err)
{
    if (x->rank < 3)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "X must be [N,C,spatial...] with rank >= 3, got rank %d", x->rank);
    int nd = x->rank - 2;
    const cs__pool_op *op = cs__pool_op_of(n);
    if (op->global) {
        /* The window is the whole plane: no strides, pads or dilations apply. */
        *w = (cs__window){.nd = nd, .in_size = 1, .out_size = 1, .k_size = 1};
        for (int j = 0; j < nd; j++) {
            w->in[j] = w->k[j] = x->dims[2 + j];
            w->out[j] = w->s[j] = w->d[j] = 1;
            w->in_size *= w->in[j];
            w->k_size *= w->k[j];
        }
        return CS_OK;
    }
    const int64_t *ks;
    int n_ks = cs__attr_ints(n, "kernel_shape", &ks);
    if (n_ks != nd)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "kernel_shape must have %d values for a rank-%d input, got %d", nd,
                              x->rank, n_ks < 0 ? 0 : n_ks);
    cs__pad_mode mode = CS__PAD_NOTSET;
    cs_status rc = cs__pad_mode_get(n, &mode, err);
    if (rc == CS_OK) rc = cs__window_init(n, nd, x->dims + 2, ks, w, err);
    if (rc != CS_OK) return rc;
    return cs__window_forward(n, w, mode, cs__attr_int(n, "ceil_mode", 0) != 0, err);
}

static cs_status pool_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    cs__window w = {0};
    cs_status rc = cs__pool_window(n, in[0], &w, err);
    if (rc != CS_OK) return rc;
    if (n_out > 1 && cs__pool_op_of(n)->kind != CS__POOL_MAX)
        return cs__node_error(err, n, CS_ERR_INVALID, "has %d outputs, expected 1", n_out);
    double p = cs__attr_float(n, "p", 2.0f);
    if (cs__pool_op_of(n)->kind == CS__POOL_LP && !(p > 0))
        return cs__node_error(err, n, CS_ERR_INVALID, "p is %g, must be positive", p);
    int64_t order = cs__attr_int(n, "storage_order", 0);
    if (order != 0 && order != 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "storage_order is %lld, must be 0 or 1",
                              (long long)order);
    for (int i = 0; i < n_out; i++) {
        out[i].dtype = i ? CS_DTYPE_INT64 : in[0]->dtype;
        out[i].rank = in[0]->rank;
        out[i].dims[0] = in[0]->dims[0];
        out[i].dims[1] = in[0]->dims[1];
        for (int j = 0; j < w.nd; j++) out[i].dims[2 + j] = w.out[j];
    }
    return CS_OK;
}

const cs__op cs__ops_pool[] = {
    {"AveragePool", "", 1, pool_infer},
    {"MaxPool", "", 1, pool_infer},
    {"LpPool", "", 1, pool_infer},
    {"GlobalAveragePool", "", 1, pool_infer},
    {"GlobalMaxPool", "", 1, pool_infer},
    {"GlobalLpPool", "", 1, pool_infer},
    {0},
};

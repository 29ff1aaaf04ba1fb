/*
 * norm.h - what the normalisation family's schemas (ops/norm.c) share with its kernels
 * (internal): Softmax's geometry and MeanVarianceNormalization's axes, which infer and run
 * both read from the node.
 */
#ifndef CS_ENGINE_OPS_NORM_H
#define CS_ENGINE_OPS_NORM_H

#include "engine/op.h"

enum { CS__SOFTMAX, CS__LOGSOFTMAX, CS__HARDMAX };

/* Softmax, LogSoftmax and Hardmax work along rows of `len` elements, `inner` apart, in
 * `outer` blocks. */
typedef struct cs__softmax_geom {
    int64_t outer, len, inner;
    int mode; /* CS__SOFTMAX, CS__LOGSOFTMAX or CS__HARDMAX, from the node's op_type */
} cs__softmax_geom;

/* Before opset 13 the input is seen as 2-D, [cs__dims_prod(dims[:axis]),
 * cs__dims_prod(dims[axis:])], with axis defaulting to 1; from 13 the operator works along the one
 * axis, default -1. */
cs_status cs__softmax_geom_get(const cs__node *n, const cs_tensor *x, cs__softmax_geom *p,
                               cs_error *err);

/* MeanVarianceNormalization's `axes` (default N, H, W) as a mask over x's dims
 * (CS_MAX_RANK entries), and the number of statistics slots (the product of the other
 * dims). */
cs_status cs__mvn_axes(const cs__node *n, const cs_tensor *x, bool *mask, int64_t *slots,
                       cs_error *err);

#endif

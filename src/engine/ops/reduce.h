/*
 * reduce.h - what the reduction family's schemas (ops/reduce.c) share with its kernels
 * (internal): the list of Reduce* operators, their element types, and the readers of axes
 * and of TopK's K that infer and run both call.
 */
#ifndef CS_ENGINE_OPS_REDUCE_H
#define CS_ENGINE_OPS_REDUCE_H

#include "engine/op.h"

/* The types the specs list: Reduce* take floats and 32/64-bit integers, ReduceMax/Min
 * also 8-bit ones (opset 12); CumSum the same without 8-bit; the rest every number. */
#define CS__T_REDUCE (CS__T_FLOAT | CS__T(INT32) | CS__T(INT64) | CS__T(UINT32) | CS__T(UINT64))

#define CS__T_REDUCE_MINMAX (CS__T_REDUCE | CS__T(INT8) | CS__T(UINT8))

/* ONNX name, C name, opset from which axes is input 1 rather than an attribute (ReduceSum
 * took it from 13, the others from 18), accepted input types. Each serves from opset 1. */
#define CS__REDUCE_OPS(X)                       \
    X(ReduceSum, sum, 13, CS__T_REDUCE)         \
    X(ReduceMean, mean, 18, CS__T_REDUCE)       \
    X(ReduceProd, prod, 18, CS__T_REDUCE)       \
    X(ReduceMax, max, 18, CS__T_REDUCE_MINMAX)  \
    X(ReduceMin, min, 18, CS__T_REDUCE_MINMAX)  \
    X(ReduceL1, l1, 18, CS__T_REDUCE)           \
    X(ReduceL2, l2, 18, CS__T_REDUCE)           \
    X(ReduceSumSquare, sumsq, 18, CS__T_REDUCE) \
    X(ReduceLogSum, logsum, 18, CS__T_REDUCE)   \
    X(ReduceLogSumExp, lse, 18, CS__T_REDUCE)

/* Reads the axes into a mask over the input's dims (CS_MAX_RANK entries); *noop is set when
 * empty axes mean "no reduction". Returns CS__DEFER when the axes input is not known yet. */
cs_status cs__reduce_axes(const cs__node *n, int axes_input_since, const cs_tensor *const *in,
                          int n_in, bool *mask, bool *noop, cs_error *err);

/* CumSum's axis input: a scalar or one-element int32/int64 tensor. Returns CS__DEFER when
 * its value is not known yet. */
cs_status cs__cumsum_axis(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          cs_error *err);

/* TopK's axis and K: K is an attribute before opset 10, then a one-element int64 input.
 * Returns CS__DEFER when K is an input whose value is not known yet. */
cs_status cs__topk_params(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          int64_t *k, cs_error *err);

#endif

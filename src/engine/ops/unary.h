/*
 * unary.h - what the unary family's schemas (ops/unary.c) and its kernels share (internal):
 * the list of elementwise operators with their opsets and element types, the input check
 * both infer and run make, Clip's integer bounds and Cast's target type.
 */
#ifndef CS_ENGINE_OPS_UNARY_H
#define CS_ENGINE_OPS_UNARY_H

#include "engine/op.h"

/* ONNX name, C name, first opset served, accepted input types, output type as a CS_DTYPE_
 * suffix (UNDEFINED: the input's type). */
#define CS__UNARY_OPS(X)                                   \
    X(Abs, abs, 1, CS__T_NUMERIC, UNDEFINED)               \
    X(Acos, acos, 7, CS__T_FLOAT, UNDEFINED)               \
    X(Acosh, acosh, 9, CS__T_FLOAT, UNDEFINED)             \
    X(Asin, asin, 7, CS__T_FLOAT, UNDEFINED)               \
    X(Asinh, asinh, 9, CS__T_FLOAT, UNDEFINED)             \
    X(Atan, atan, 7, CS__T_FLOAT, UNDEFINED)               \
    X(Atanh, atanh, 9, CS__T_FLOAT, UNDEFINED)             \
    X(Ceil, ceil, 1, CS__T_FLOAT, UNDEFINED)               \
    X(Celu, celu, 12, CS__T_FLOAT, UNDEFINED)              \
    X(Clip, clip, 1, CS__T_NUMERIC, UNDEFINED)             \
    X(Cos, cos, 7, CS__T_FLOAT, UNDEFINED)                 \
    X(Cosh, cosh, 9, CS__T_FLOAT, UNDEFINED)               \
    X(Elu, elu, 1, CS__T_FLOAT, UNDEFINED)                 \
    X(Erf, erf, 9, CS__T_NUMERIC, UNDEFINED)               \
    X(Exp, exp, 1, CS__T_FLOAT, UNDEFINED)                 \
    X(Floor, floor, 1, CS__T_FLOAT, UNDEFINED)             \
    X(HardSigmoid, hardsigmoid, 1, CS__T_FLOAT, UNDEFINED) \
    X(HardSwish, hardswish, 14, CS__T_FLOAT, UNDEFINED)    \
    X(IsInf, isinf, 10, CS__T_FLOAT, BOOL)                 \
    X(IsNaN, isnan, 9, CS__T_FLOAT, BOOL)                  \
    X(LeakyRelu, leakyrelu, 1, CS__T_FLOAT, UNDEFINED)     \
    X(Log, log, 1, CS__T_FLOAT, UNDEFINED)                 \
    X(Neg, neg, 1, CS__T_FLOAT | CS__T_SINT, UNDEFINED)    \
    X(Not, not, 1, CS__T(BOOL), UNDEFINED)                 \
    X(Reciprocal, reciprocal, 1, CS__T_FLOAT, UNDEFINED)   \
    X(Relu, relu, 1, CS__T_FLOAT | CS__T_SINT, UNDEFINED)  \
    X(Round, round, 11, CS__T_FLOAT, UNDEFINED)            \
    X(Selu, selu, 1, CS__T_FLOAT, UNDEFINED)               \
    X(Shrink, shrink, 9, CS__T_NUMERIC, UNDEFINED)         \
    X(Sigmoid, sigmoid, 1, CS__T_FLOAT, UNDEFINED)         \
    X(Sign, sign, 9, CS__T_NUMERIC, UNDEFINED)             \
    X(Sin, sin, 7, CS__T_FLOAT, UNDEFINED)                 \
    X(Sinh, sinh, 9, CS__T_FLOAT, UNDEFINED)               \
    X(Softplus, softplus, 1, CS__T_FLOAT, UNDEFINED)       \
    X(Softsign, softsign, 1, CS__T_FLOAT, UNDEFINED)       \
    X(Sqrt, sqrt, 1, CS__T_FLOAT, UNDEFINED)               \
    X(Tan, tan, 7, CS__T_FLOAT, UNDEFINED)                 \
    X(Tanh, tanh, 1, CS__T_FLOAT, UNDEFINED)               \
    X(ThresholdedRelu, thresholdedrelu, 10, CS__T_FLOAT, UNDEFINED)

/* Input 0 is present and its element type is one of `types`. */
cs_status cs__unary_check_input(const cs__node *n, uint32_t types, const cs_tensor *const *in,
                                int n_in, cs_error *err);

/* A Clip bound from an optional input (opset 11 on), read into *i (isint) or *f: absent
 * leaves the default. The input must be a scalar with data. */
cs_status cs__clip_bound(const cs__node *n, const cs_tensor *b, const char *what, bool isint,
                         double *f, int64_t *i, cs_error *err);

/* The target type: Cast's `to` (an int from opset 6, a type name before), CastLike's
 * second input's type. Checks that both types are ones Cast converts (not string). */
cs_status cs__cast_target(const cs__node *n, const cs_tensor *const *in, int n_in, cs_dtype *to,
                          cs_error *err);

#endif

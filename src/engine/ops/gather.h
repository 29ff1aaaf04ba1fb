/*
 * gather.h - what the index family's schemas (ops/gather.c) and its kernels (cpu/gather.c)
 * share (internal): the checks of GatherElements'/ScatterElements' and GatherND's/
 * ScatterND's index geometry, the scatter reduction, NonZero's test and Pad's arguments,
 * which infer and run both make by the same rules.
 */
#ifndef CS_ENGINE_OPS_GATHER_H
#define CS_ENGINE_OPS_GATHER_H

#include "engine/op.h"

/* GatherElements and ScatterElements: int indices of data's rank, no larger than data
 * outside the axis, which it sets. */
cs_status cs__elements_check(const cs__node *n, const cs_tensor *data, const cs_tensor *idx,
                             int *axis, cs_error *err);

/* The scatter operators' `reduction` (add, mul; max and min from opset 18). */
typedef enum cs__reduction {
    CS__RED_NONE,
    CS__RED_ADD,
    CS__RED_MUL,
    CS__RED_MAX,
    CS__RED_MIN
} cs__reduction;

cs_status cs__reduction_get(const cs__node *n, cs__reduction *r, cs_error *err);

/*
 * GatherND and ScatterND split `indices` into tuples of its last dimension k; a tuple
 * (after batch_dims leading batch coordinates, GatherND only) addresses a slice of data of
 * prod(data.dims[b+k:]) elements.
 */
typedef struct cs__nd_plan {
    int b, k;
    int64_t n_batch, per_batch; /* tuples per batch */
    int64_t slice;              /* elements per addressed slice */
    int64_t batch_stride;       /* elements of data per batch */
    int64_t stride[CS_MAX_RANK];
} cs__nd_plan;

/* Checks data and indices for batch_dims b and sets the plan. */
cs_status cs__nd_plan_init(const cs__node *n, const cs_tensor *data, const cs_tensor *idx, int b,
                           cs__nd_plan *p, cs_error *err);

/* Whether element i of t counts as nonzero for NonZero. */
bool cs__elem_nonzero(const cs_tensor *t, int64_t i);

typedef enum cs__padding {
    CS__PADDING_CONSTANT,
    CS__PADDING_REFLECT,
    CS__PADDING_EDGE
} cs__padding;

/* The pads, mode and constant of a Pad node: attributes before opset 11, inputs after. */
typedef struct cs__pad_args {
    cs__padding mode;
    int64_t pads[2 * CS_MAX_RANK];
    uint8_t value[8]; /* the constant in the data's type */
} cs__pad_args;

/* Reads and checks them; CS__DEFER while the pads or the constant are unknown. */
cs_status cs__pad_args_read(const cs__node *n, const cs_tensor *const *in, int n_in,
                            cs__pad_args *a, cs_error *err);

#endif

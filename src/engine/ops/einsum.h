/*
 * einsum.h - what Einsum's schema (ops/einsum.c) and its kernel (cpu/einsum.c) share
 * (internal): the plan parsed from the equation over the inputs' shapes.
 */
#ifndef CS_ENGINE_OPS_EINSUM_H
#define CS_ENGINE_OPS_EINSUM_H

#include "engine/op.h"

#define CS__EINSUM_MAX_IN     16
#define CS__EINSUM_LETTERS    52 /* 'A'..'Z' then 'a'..'z', ASCII order as numpy's implicit output */
#define CS__EINSUM_MAX_LABELS (CS__EINSUM_LETTERS + CS_MAX_RANK)

/* Labels 0..51 are letters, the ones after them the ellipsis dimensions. size is each
 * label's extent (-1: unused) and stride[k][label] how far one step along it moves in
 * operand k. The output's axes are out_labels; sum_labels are contracted. */
typedef struct cs__einsum_plan {
    int n_in;
    int out_rank, n_sum;
    int out_labels[CS_MAX_RANK];
    int sum_labels[CS__EINSUM_MAX_LABELS];
    int64_t size[CS__EINSUM_MAX_LABELS];
    int64_t stride[CS__EINSUM_MAX_IN][CS__EINSUM_MAX_LABELS];
} cs__einsum_plan;

/* Builds the plan for the node's equation over the given inputs' shapes. */
cs_status cs__einsum_plan_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs__einsum_plan *pl, cs_error *err);

#endif

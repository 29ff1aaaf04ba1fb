/*
 * layout.h - what the layout family's schemas (ops/layout.c) and its kernels
 * (cpu/layout.c) share (internal): the readers of each operator's arguments, which check
 * them once by one set of rules and which both infer and run call.
 */
#ifndef CS_ENGINE_OPS_LAYOUT_H
#define CS_ENGINE_OPS_LAYOUT_H

#include "engine/ops/shape.h"

/* A scalar input's value as int64; t must hold one element. Returns CS__DEFER while its
 * value is unknown. */
cs_status cs__scalar_i64(const cs__node *n, const cs_tensor *t, const char *what, int64_t *v,
                         cs_error *err);

/* Transpose's perm for a rank-`rank` input: the attribute, checked to be a permutation, or
 * the axes reversed. */
cs_status cs__transpose_perm(const cs__node *n, int rank, int *perm, cs_error *err);

/* Slice's window per input axis: the first element, the step and the element count. */
cs_status cs__slice_window(const cs__node *n, const cs_tensor *const *in, int n_in, int64_t *start,
                           int64_t *step, int64_t *count, cs_error *err);

/* Split's axis and part sizes: `parts` from the split input or attribute, or absent
 * (parts->n < 0) with `equal` parts. */
cs_status cs__split_parts(const cs__node *n, const cs_tensor *const *in, int n_in, int n_out,
                          int *axis, cs__ints *parts, int64_t *equal, cs_error *err);

/* The size of part j along Split's axis. */
static inline int64_t cs__split_part(const cs__ints *parts, int64_t equal, int j)
{
    return parts->n >= 0 ? cs__ints_at(parts, j) : equal;
}

/* Tile's repeat count per input axis. */
cs_status cs__tile_repeats(const cs__node *n, const cs_tensor *const *in, int n_in, int64_t *rep,
                           cs_error *err);

/* Concat's axis, checked against in[0]'s rank. */
cs_status cs__concat_axis(const cs__node *n, const cs_tensor *const *in, int n_in, int *axis,
                          cs_error *err);

/* DepthToSpace (to_space) and SpaceToDepth as one 6-D strided read of the NCHW input x:
 * the output, row-major, is `dims`, and one step along axis i moves strides[i] elements in
 * x. */
typedef struct cs__space_depth {
    int64_t dims[6];
    int64_t strides[6];
} cs__space_depth;

cs_status cs__space_depth_get(const cs__node *n, const cs_tensor *x, bool to_space,
                              cs__space_depth *v, cs_error *err);

#endif

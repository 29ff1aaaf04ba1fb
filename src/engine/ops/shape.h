/*
 * shape.h - what the shape and layout families share, schemas (ops/shape.c, ops/layout.c)
 * and kernels (cpu/shape.c, cpu/layout.c) alike (internal): integer-list arguments that
 * moved from attributes to inputs across opsets, shapes built from input values, shape
 * formatting for error messages, and the attribute readers of the shape family's operators
 * that both infer and run call.
 */
#ifndef CS_ENGINE_OPS_SHAPE_H
#define CS_ENGINE_OPS_SHAPE_H

#include "engine/op.h"

/* A list of integers from an input tensor (newer opsets) or an INTS attribute (older).
 * Borrowed: it points into the tensor or the node's attribute. */
typedef struct cs__ints {
    const cs_tensor *t; /* values from this tensor, or else from v */
    const int64_t *v;
    int n; /* -1 when the argument is absent */
} cs__ints;

/* Reads in[idx] when that input is present, else the attribute `attr` (NULL: none).
 * Returns CS__DEFER when the input exists but its values are not known yet. */
cs_status cs__ints_get(const cs__node *n, const cs_tensor *const *in, int n_in, int idx,
                       const char *attr, cs__ints *l, cs_error *err);
/* Element i of the list, i < l->n. */
int64_t cs__ints_at(const cs__ints *l, int i);

/* Writes "[2,3,4]" into buf for error messages and returns buf. */
const char *cs__fmt_dims(char *buf, size_t size, const int64_t *d, int rank);

/* Sets out's rank and dims from sizes taken from input values, rejecting negative sizes
 * and element counts that overflow. */
cs_status cs__set_dims(const cs__node *n, cs_tensor *out, const int64_t *dims, int rank,
                       cs_error *err);

static inline int64_t cs__clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline bool cs__is_float(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 || t == CS_DTYPE_FLOAT64 || t == CS_DTYPE_FLOAT16 ||
           t == CS_DTYPE_BFLOAT16;
}

/* Shape's [start, end) window over the dims of a rank-`rank` input (opset 15). */
void cs__shape_window(const cs__node *n, int rank, int64_t *start, int64_t *end);

/* Refuses Dropout in training mode unless its ratio is 0; passes while the inputs that
 * decide it are unknown. */
cs_status cs__dropout_check(const cs__node *n, const cs_tensor *const *in, int n_in, cs_error *err);

/* Constant's value: sets t's dtype and shape and *src to its bytes, borrowed from the
 * node's attribute. */
cs_status cs__constant_value(const cs__node *n, cs_tensor *t, const void **src, cs_error *err);

/* ConstantOfShape's one-element fill value (borrowed), or NULL for float32 zero. */
const cs_tensor *cs__constantofshape_value(const cs__node *n);

#endif

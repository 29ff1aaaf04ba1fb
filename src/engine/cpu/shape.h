/*
 * shape.h - helpers shared by the shape (shape.c) and layout (layout.c) kernel families
 * (internal): integer-list arguments that moved from attributes to inputs across opsets,
 * shapes built from input values, and shape formatting for error messages.
 */
#ifndef CS_ENGINE_CPU_SHAPE_H
#define CS_ENGINE_CPU_SHAPE_H

#include "engine/kernel.h"

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

#endif

/*
 * vec.h - a growable array of fixed-size elements.
 *
 * Capacity doubles on growth, so push is amortised O(1). The element size is fixed at
 * init; elements are stored contiguously and may move on growth (do not keep pointers
 * across a push).
 */
#ifndef CS_BASE_VEC_H
#define CS_BASE_VEC_H

#include <stddef.h>

#include "capstan/status.h"

typedef struct cs_vec {
    void *data;
    size_t len, cap, elem_size;
} cs_vec;

void cs_vec_init(cs_vec *v, size_t elem_size);
/* Appends one element copied from elem; CS_ERR_NOMEM leaves v unchanged. */
cs_status cs_vec_push(cs_vec *v, const void *elem);
/* Makes room for at least n elements in total. */
cs_status cs_vec_reserve(cs_vec *v, size_t n);
/* Pointer to element i (i < len). */
void *cs_vec_at(const cs_vec *v, size_t i);
/* Removes the last element, copying it to out when out is not NULL; returns 0 when empty. */
int cs_vec_pop(cs_vec *v, void *out);
void cs_vec_clear(cs_vec *v); /* len = 0, keeps capacity */
void cs_vec_free(cs_vec *v);

#endif

/*
 * vec.c - growable array of fixed-size elements; see vec.h for the contract.
 *
 * Growth doubles the capacity (starting at 8 elements) with one cs_realloc, and checks
 * every size computation for overflow. A failed growth leaves the vector exactly as it was.
 */
#include "base/vec.h"

#include "base/alloc.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

void cs_vec_init(cs_vec *v, size_t elem_size)
{
    assert(elem_size > 0);
    v->data = NULL;
    v->len = v->cap = 0;
    v->elem_size = elem_size;
}

cs_status cs_vec_reserve(cs_vec *v, size_t n)
{
    if (n <= v->cap) return CS_OK;
    size_t cap = v->cap ? v->cap : 8;
    while (cap < n) {
        if (cap > SIZE_MAX / 2) {
            cap = n;
            break;
        }
        cap *= 2;
    }
    if (cap > SIZE_MAX / v->elem_size) return CS_ERR_NOMEM;
    void *data = cs_realloc(v->data, cap * v->elem_size);
    if (!data) return CS_ERR_NOMEM;
    v->data = data;
    v->cap = cap;
    return CS_OK;
}

cs_status cs_vec_push(cs_vec *v, const void *elem)
{
    if (v->len == SIZE_MAX) return CS_ERR_NOMEM;
    cs_status rc = cs_vec_reserve(v, v->len + 1);
    if (rc != CS_OK) return rc;
    memcpy((char *)v->data + v->len * v->elem_size, elem, v->elem_size);
    v->len++;
    return CS_OK;
}

void *cs_vec_at(const cs_vec *v, size_t i)
{
    assert(i < v->len);
    return (char *)v->data + i * v->elem_size;
}

int cs_vec_pop(cs_vec *v, void *out)
{
    if (v->len == 0) return 0;
    v->len--;
    if (out) memcpy(out, (char *)v->data + v->len * v->elem_size, v->elem_size);
    return 1;
}

void cs_vec_clear(cs_vec *v)
{
    v->len = 0;
}

void cs_vec_free(cs_vec *v)
{
    cs_free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

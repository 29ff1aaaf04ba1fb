/*
 * sbuf.c - bounded string builder; see sbuf.h for the contract.
 *
 * An empty builder points at a shared one-byte "" so that init never allocates and data is
 * never NULL; the first append allocates. Capacity doubles (never past max + 1 bytes), and
 * every failed append - out of memory or over the bound - leaves the content untouched.
 */
#include "base/sbuf.h"

#include "base/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Only ever read, or written with the '\0' it already holds. */
static char empty[1];

void cs_sbuf_init(cs_sbuf *b, size_t max)
{
    b->data = empty;
    b->len = b->cap = 0;
    b->max = max;
}

/* Makes room for `extra` more bytes plus the terminator. */
static cs_status grow(cs_sbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len) return CS_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (b->max && need - 1 > b->max) return CS_ERR_LIMIT;
    if (need <= b->cap) return CS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max && cap > b->max + 1) cap = b->max + 1;
    char *data = cs_realloc(b->cap ? b->data : NULL, cap);
    if (!data) return CS_ERR_NOMEM;
    if (!b->cap) data[0] = '\0';
    b->data = data;
    b->cap = cap;
    return CS_OK;
}

cs_status cs_sbuf_append(cs_sbuf *b, const char *s, size_t n)
{
    cs_status rc = grow(b, n);
    if (rc != CS_OK) return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CS_OK;
}

cs_status cs_sbuf_reserve(cs_sbuf *b, size_t n)
{
    return grow(b, n);
}

cs_status cs_sbuf_puts(cs_sbuf *b, const char *s)
{
    return cs_sbuf_append(b, s, strlen(s));
}

cs_status cs_sbuf_printf(cs_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->cap) b->data[b->len] = '\0';
        return CS_ERR_INVALID;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return CS_OK;
    }
    /* It did not fit: vsnprintf may have written a partial copy past len, so put the
     * terminator back before anything can fail. */
    if (b->cap) b->data[b->len] = '\0';
    cs_status rc = grow(b, (size_t)n);
    if (rc != CS_OK) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CS_OK;
}

void cs_sbuf_clear(cs_sbuf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

char *cs_sbuf_take(cs_sbuf *b)
{
    char *s = b->cap ? b->data : cs_strdup("");
    cs_sbuf_init(b, b->max);
    return s;
}

void cs_sbuf_free(cs_sbuf *b)
{
    if (b->cap) cs_free(b->data);
    cs_sbuf_init(b, b->max);
}

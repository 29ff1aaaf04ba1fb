/*
 * sbuf.h - a string builder: append text and formatted output to a growable buffer.
 *
 * The buffer is always NUL-terminated. An optional maximum bounds its growth (curl's
 * dynbuf): an append past it fails with CS_ERR_LIMIT and leaves the content unchanged.
 */
#ifndef CS_BASE_SBUF_H
#define CS_BASE_SBUF_H

#include <stddef.h>

#include "capstan/status.h"

typedef struct cs_sbuf {
    char *data; /* never NULL after init: "" when empty */
    size_t len, cap, max;
} cs_sbuf;

/* Starts an empty buffer; allocates nothing. max bounds len (the bytes before the NUL);
 * 0 for no bound. */
void cs_sbuf_init(cs_sbuf *b, size_t max);
/* Appends n bytes of s / a C string / printf output. CS_ERR_LIMIT past max, CS_ERR_NOMEM
 * when memory runs out, CS_ERR_INVALID for a bad format; on any failure b is unchanged. */
cs_status cs_sbuf_append(cs_sbuf *b, const char *s, size_t n);
cs_status cs_sbuf_puts(cs_sbuf *b, const char *s);
cs_status cs_sbuf_printf(cs_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes, so that appends up to that size do not reallocate; the same
 * failures as an append of n bytes. */
cs_status cs_sbuf_reserve(cs_sbuf *b, size_t n);
void cs_sbuf_clear(cs_sbuf *b);
/* Hands the buffer to the caller (free with cs_free) and resets b; NULL only when an empty
 * buffer's copy cannot be allocated. */
char *cs_sbuf_take(cs_sbuf *b);
void cs_sbuf_free(cs_sbuf *b);

#endif

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

/* max = 0 for no bound. */
void cs_sbuf_init(cs_sbuf *b, size_t max);
cs_status cs_sbuf_append(cs_sbuf *b, const char *s, size_t n);
cs_status cs_sbuf_puts(cs_sbuf *b, const char *s);
cs_status cs_sbuf_printf(cs_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cs_sbuf_clear(cs_sbuf *b);
/* Hands the buffer to the caller (free with cs_free) and resets b. */
char *cs_sbuf_take(cs_sbuf *b);
void cs_sbuf_free(cs_sbuf *b);

#endif

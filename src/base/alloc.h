/*
 * alloc.h - the allocator every capstan module calls instead of malloc.
 *
 * One indirection lets tests make allocation fail on purpose (cs_alloc_fail_after) so that
 * out-of-memory paths are exercised, as SQLite's and curl's torture tests do. Outside tests
 * these are plain malloc/calloc/realloc/free.
 */
#ifndef CS_BASE_ALLOC_H
#define CS_BASE_ALLOC_H

#include <stddef.h>

void *cs_malloc(size_t size);
void *cs_calloc(size_t n, size_t size); /* checks n*size for overflow */
void *cs_realloc(void *p, size_t size);
void cs_free(void *p);
char *cs_strdup(const char *s);
char *cs_strndup(const char *s, size_t n);

/* Test hook: the next `n` allocations succeed, every later one fails, until reset with
 * n < 0. Not thread-safe by design: tests call it from one thread. */
void cs_alloc_fail_after(long n);

#endif

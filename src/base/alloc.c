/*
 * alloc.c - malloc wrappers with a failure-injection hook for tests.
 *
 * The countdown is the one piece of global mutable state in base; it is only written by
 * tests. Production code never sets it, so the cost is one predictable branch.
 */
#include "base/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static long fail_countdown = -1;

void cs_alloc_fail_after(long n)
{
    fail_countdown = n;
}

static int should_fail(void)
{
    if (fail_countdown < 0) return 0;
    if (fail_countdown == 0) return 1;
    fail_countdown--;
    return 0;
}

void *cs_malloc(size_t size)
{
    if (should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *cs_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    if (should_fail()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *cs_realloc(void *p, size_t size)
{
    if (should_fail()) return NULL;
    return realloc(p, size ? size : 1);
}

void cs_free(void *p)
{
    free(p);
}

char *cs_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cs_malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *cs_strdup(const char *s)
{
    return cs_strndup(s, SIZE_MAX);
}

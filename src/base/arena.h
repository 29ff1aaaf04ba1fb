/*
 * arena.h - bump allocation by lifetime (nginx pools, ggml's allocator).
 *
 * Memory is carved from large blocks and released all at once with cs_arena_reset or
 * cs_arena_free; there is no per-object free. An arena is for one lifetime: a loaded model,
 * a plan, one request. Allocation is O(1) amortised; a request larger than the block size
 * gets a block of its own.
 *
 * Building with -DCS_ARENA_DEBUG turns every allocation into its own malloc so that
 * AddressSanitizer sees each object's bounds; the sanitizer build sets it.
 */
#ifndef CS_BASE_ARENA_H
#define CS_BASE_ARENA_H

#include <stddef.h>

typedef struct cs_arena_block cs_arena_block;

typedef struct cs_arena {
    cs_arena_block *head; /* newest block first */
    size_t block_size;    /* default size of a new block */
    size_t allocated;     /* bytes handed out since the last reset */
    size_t limit;         /* 0 = unlimited; else allocations past it fail */
} cs_arena;

/* Initialises an empty arena; no memory is taken until the first allocation. */
void cs_arena_init(cs_arena *a, size_t block_size);

/* Returns `size` bytes aligned to `align` (a power of two, at most 4096), or NULL when
 * memory or the arena's limit runs out. The memory is not zeroed. */
void *cs_arena_alloc(cs_arena *a, size_t size, size_t align);

/* As cs_arena_alloc, zeroed. */
void *cs_arena_zalloc(cs_arena *a, size_t size, size_t align);

/* Copies n bytes of s (stopping at a NUL) into the arena and terminates it. */
char *cs_arena_strndup(cs_arena *a, const char *s, size_t n);

/* Forgets every allocation but keeps one block as large as all blocks together, so an
 * arena reset once per request or run stops calling malloc after the first round. */
void cs_arena_reset(cs_arena *a);

/* Releases every block. The arena may be initialised again. */
void cs_arena_free(cs_arena *a);

#endif

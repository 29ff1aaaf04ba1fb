/*
 * arena.c - block-based bump allocator; see arena.h for the contract.
 *
 * Blocks form a singly linked list, newest first; only the head is bumped, and a request
 * larger than the block size gets a block of its own behind the head. A reset keeps
 * the single largest block so steady-state users (one request, one run) stop allocating.
 */
#include "base/arena.h"

#include "base/alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cs_arena_block {
    cs_arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    /* malloc only guarantees max_align_t; larger alignments are found at run time, so the
     * block type must not demand more (an _Alignas(64) here made every block misaligned). */
    _Alignas(max_align_t) unsigned char data[];
};

void cs_arena_init(cs_arena *a, size_t block_size)
{
    memset(a, 0, sizeof *a);
    a->block_size = block_size ? block_size : 64 * 1024;
}

static cs_arena_block *new_block(size_t size)
{
    if (size > SIZE_MAX - sizeof(cs_arena_block)) return NULL;
    cs_arena_block *b = cs_malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *cs_arena_alloc(cs_arena *a, size_t size, size_t align)
{
    if (align == 0) align = 1;
    if ((align & (align - 1)) || align > 4096) return NULL;
    if (a->limit && (size > a->limit || a->allocated > a->limit - size)) return NULL;
#ifdef CS_ARENA_DEBUG
    /* One block per object: ASan then flags any overflow past `size`. */
    if (size > SIZE_MAX - align) return NULL;
    cs_arena_block *b = new_block(size + align);
    if (!b) return NULL;
    b->next = a->head;
    a->head = b;
    uintptr_t p = ((uintptr_t)b->data + align - 1) & ~(uintptr_t)(align - 1);
    a->allocated += size;
    return (void *)p;
#else
    cs_arena_block *b = a->head;
    if (b) {
        uintptr_t base = (uintptr_t)b->data;
        uintptr_t p = (base + b->used + align - 1) & ~(uintptr_t)(align - 1);
        if (p - base <= b->size && size <= b->size - (p - base)) {
            b->used = p - base + size;
            a->allocated += size;
            return (void *)p;
        }
    }
    if (size > SIZE_MAX - align) return NULL;
    size_t need = size + align;
    b = new_block(need > a->block_size ? need : a->block_size);
    if (!b) return NULL;
    if (need > a->block_size && a->head) {
        /* A block of its own goes behind the head, so the head's free space stays in use
         * for the small allocations that follow. */
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    uintptr_t p = ((uintptr_t)b->data + align - 1) & ~(uintptr_t)(align - 1);
    b->used = p - (uintptr_t)b->data + size;
    a->allocated += size;
    return (void *)p;
#endif
}

void *cs_arena_zalloc(cs_arena *a, size_t size, size_t align)
{
    void *p = cs_arena_alloc(a, size, align);
    if (p) memset(p, 0, size);
    return p;
}

char *cs_arena_strndup(cs_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cs_arena_alloc(a, len + 1, 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void cs_arena_reset(cs_arena *a)
{
#ifdef CS_ARENA_DEBUG
    cs_arena_free(a);
#else
    /* One block that holds what all of them held, so the next use of the same size (the
     * next request, the next run) allocates nothing. If that malloc fails, the largest
     * block is kept instead. */
    size_t total = 0, n = 0;
    cs_arena_block *largest = NULL;
    for (cs_arena_block *b = a->head; b; b = b->next, n++) {
        total += b->size;
        if (!largest || b->size > largest->size) largest = b;
    }
    cs_arena_block *keep = n > 1 ? new_block(total) : NULL;
    if (!keep) keep = largest;
    cs_arena_block *b = a->head;
    while (b) {
        cs_arena_block *next = b->next;
        if (b != keep) cs_free(b);
        b = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
    a->allocated = 0;
#endif
}

void cs_arena_free(cs_arena *a)
{
    cs_arena_block *b = a->head;
    while (b) {
        cs_arena_block *next = b->next;
        cs_free(b);
        b = next;
    }
    a->head = NULL;
    a->allocated = 0;
}

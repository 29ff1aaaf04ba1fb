/*
 * map.c - string-keyed hash map with open addressing and linear probing; see map.h.
 *
 * Slots hold a copied key, its value and the key's hash (so probing and rehashing compare
 * hashes before strings and never rehash a key). A deleted slot becomes a tombstone so
 * that probe chains stay intact; tombstones count towards the 3/4 load factor and are
 * purged by the next rehash, which doubles the table only when live entries need it.
 * Capacity is a power of two, so a probe step is a mask, not a division.
 */
#include "base/map.h"

#include "base/alloc.h"

#include <stdint.h>
#include <string.h>

struct cs_map_entry {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    void *value;
    uint64_t hash;
};

/* A unique address marks deleted slots; it is never dereferenced. */
static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

#define MIN_CAP 8

/* FNV-1a: short keys (tensor names, routes) hash fast and spread well enough for probing. */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int is_live(const cs_map_entry *e)
{
    return e->key && e->key != TOMBSTONE;
}

void cs_map_init(cs_map *m)
{
    m->slots = NULL;
    m->cap = m->len = m->tombstones = 0;
}

/* Index of key's slot, or of the empty slot ending its probe chain (SIZE_MAX when the
 * table is empty). */
static size_t find(const cs_map *m, const char *key, uint64_t h)
{
    if (!m->cap) return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const cs_map_entry *e = &m->slots[i];
        if (!e->key) return i;
        if (e->key != TOMBSTONE && e->hash == h && strcmp(e->key, key) == 0) return i;
    }
}

/* Moves every live entry into a table of `cap` slots; on failure nothing changes. */
static cs_status rehash(cs_map *m, size_t cap)
{
    cs_map_entry *slots = cs_calloc(cap, sizeof *slots);
    if (!slots) return CS_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        cs_map_entry *e = &m->slots[i];
        if (!is_live(e)) continue;
        size_t j = (size_t)e->hash & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    cs_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->tombstones = 0;
    return CS_OK;
}

cs_status cs_map_put(cs_map *m, const char *key, void *value)
{
    uint64_t h = hash_key(key);
    size_t i = find(m, key, h);
    if (i != SIZE_MAX && m->slots[i].key) {
        m->slots[i].value = value;
        return CS_OK;
    }
    /* Copy the key first: if the rehash then fails, only the copy needs undoing. */
    char *copy = cs_strdup(key);
    if (!copy) return CS_ERR_NOMEM;
    if ((m->len + m->tombstones + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap : MIN_CAP;
        if ((m->len + 1) * 2 > cap) {
            if (cap > SIZE_MAX / 2 / sizeof(cs_map_entry)) {
                cs_free(copy);
                return CS_ERR_NOMEM;
            }
            cap *= 2;
        }
        if (rehash(m, cap) != CS_OK) {
            cs_free(copy);
            return CS_ERR_NOMEM;
        }
        i = find(m, key, h);
    }
    /* Reuse the first tombstone on the probe chain when there is one. */
    size_t mask = m->cap - 1;
    for (size_t j = (size_t)h & mask; j != i; j = (j + 1) & mask) {
        if (m->slots[j].key == TOMBSTONE) {
            i = j;
            m->tombstones--;
            break;
        }
    }
    m->slots[i] = (cs_map_entry){copy, value, h};
    m->len++;
    return CS_OK;
}

void *cs_map_get(const cs_map *m, const char *key)
{
    size_t i = find(m, key, hash_key(key));
    return i != SIZE_MAX && m->slots[i].key ? m->slots[i].value : NULL;
}

int cs_map_del(cs_map *m, const char *key)
{
    size_t i = find(m, key, hash_key(key));
    if (i == SIZE_MAX || !m->slots[i].key) return 0;
    cs_free(m->slots[i].key);
    m->slots[i].key = TOMBSTONE;
    m->slots[i].value = NULL;
    m->len--;
    m->tombstones++;
    if (m->len == 0) {
        /* Nothing live: clear the tombstones now instead of at the next rehash. */
        memset(m->slots, 0, m->cap * sizeof *m->slots);
        m->tombstones = 0;
    }
    return 1;
}

size_t cs_map_len(const cs_map *m)
{
    return m->len;
}

int cs_map_next(const cs_map *m, size_t *it, const char **key, void **value)
{
    for (size_t i = *it; i < m->cap; i++) {
        if (!is_live(&m->slots[i])) continue;
        if (key) *key = m->slots[i].key;
        if (value) *value = m->slots[i].value;
        *it = i + 1;
        return 1;
    }
    *it = m->cap;
    return 0;
}

void cs_map_free(cs_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (is_live(&m->slots[i])) cs_free(m->slots[i].key);
    cs_free(m->slots);
    cs_map_init(m);
}

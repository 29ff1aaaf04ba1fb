/*
 * map.h - a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied into the map; values are opaque pointers the caller owns. The table
 * doubles when it is 3/4 full, so get/put are O(1) expected.
 */
#ifndef CS_BASE_MAP_H
#define CS_BASE_MAP_H

#include <stddef.h>

#include "capstan/status.h"

typedef struct cs_map_entry cs_map_entry;

typedef struct cs_map {
    cs_map_entry *slots;
    size_t cap, len, tombstones;
} cs_map;

void cs_map_init(cs_map *m);
/* Inserts or replaces key's value. CS_ERR_NOMEM leaves the map unchanged. */
cs_status cs_map_put(cs_map *m, const char *key, void *value);
/* Returns the value, or NULL when absent (store non-NULL values to tell them apart). */
void *cs_map_get(const cs_map *m, const char *key);
/* Removes key; returns 1 when it was there. */
int cs_map_del(cs_map *m, const char *key);
size_t cs_map_len(const cs_map *m);
/* Iteration: start with *it = 0; returns 0 when done. Order is unspecified. */
int cs_map_next(const cs_map *m, size_t *it, const char **key, void **value);
void cs_map_free(cs_map *m);

#endif

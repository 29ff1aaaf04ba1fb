/*
 * dra_int.h - what the DRA files share and nobody else needs: the decoder's context (so
 * every message names the object, the field path and the line) and the entry points the
 * reader calls in the validator and the allocator calls in the capacity rules.
 */
#ifndef CS_DEVICES_DRA_INT_H
#define CS_DEVICES_DRA_INT_H

#include "base/map.h"
#include "devices/dra.h"

/* Where a decoder is: "ResourceClaim ns/gpu" and "spec.devices.requests[0]". */
typedef struct cs__dra_ctx {
    cs_arena *a;
    const char *kind, *name;
    char path[256];
    cs_error *err;
} cs__dra_ctx;

/* Sets ctx->err to "KIND NAME: PATH: message (line L)"; line 0 leaves the line out. */
cs_status cs__dra_fail(cs__dra_ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks one claim against the classes read so far and compiles every CEL selector of
 * classes and claims (programs go to set->programs). */
cs_status cs__dra_validate_class(cs_dra_set *set, cs_dra_class *cls, cs_error *err);
cs_status cs__dra_validate_slice(cs_dra_slice *s, cs_error *err);
cs_status cs__dra_validate_claim(cs_dra_set *set, cs_dra_claim *claim, cs_error *err);

/* Looks an attribute or capacity up by its fully qualified name ("domain/name"): an entry
 * written with the domain, or a bare entry when the domain is the driver's. */
const cs_dra_attr *cs__dra_find_attr(const cs_dra_device *d, const char *driver,
                                     const char *qualified);
const cs_dra_capacity *cs__dra_find_cap(const cs_dra_device *d, const char *driver,
                                        const char *qualified);

/* Consumable capacity: how much of capacity `cap` one allocation with `requested` (NULL =
 * not requested) consumes under its requestPolicy. Returns false when the request cannot
 * be met on this device at all (above validRange.max or every valid value). */
bool cs__dra_consumed(const cs_dra_capacity *cap, const cs_quantity *requested, cs_quantity *out);

/* ---- the inventory: pools and devices one allocate call works on (dra_pool.c) ---- */

typedef struct cs__dra_dev {
    const cs_dra_device *d;
    const cs_dra_slice *slice; /* driver and pool names */
    size_t pool;
    bool foreign;             /* another node's: counts for the pool, never allocated here */
    bool used;                /* allocated exclusively (not counting admin access) */
    size_t shares;            /* allocations of an allowMultipleAllocations device */
    int64_t *consumed;        /* milli-units per d->caps entry, for shared devices */
    int *cpus;                /* the device's coreCPUs, or NULL */
    unsigned char *cpu_taken; /* per cpus entry: held by some allocation */
    size_t n_cpus;
} cs__dra_dev;

typedef struct cs__dra_pool {
    const char *driver, *name;
    bool incomplete;
    const char *invalid; /* why the pool is invalid, or NULL */
    const cs_dra_counter_set **sets;
    size_t n_sets;
    int64_t **used; /* milli-units consumed per set, per counter */
} cs__dra_pool;

typedef struct cs__dra_inv {
    cs__dra_pool *pools;
    size_t n_pools;
    cs__dra_dev *devs; /* pool order, then slice order, then device order */
    size_t n_devs;
    cs_map index; /* "driver\x1fpool\x1fdevice" -> device index + 1 */
} cs__dra_inv;

/* Gathers the pools a node sees, as Kubernetes' GatherPools does: only the newest
 * generation of each pool counts; a pool with fewer slices than resourceSliceCount is
 * incomplete; duplicate device names or unknown counters make it invalid. Allocates in a.
 * Cost: O(slices + devices). Then applies every claim that is already allocated. */
cs_status cs__dra_inventory(const cs_dra_set *set, const cs_dra_options *opt, cs_arena *a,
                            cs__dra_inv *inv, cs_error *err);
void cs__dra_inventory_free(cs__dra_inv *inv);

/* Marks a claim's results as in use for the claims that come after it. */
void cs__dra_commit(cs__dra_inv *inv, const cs_dra_claim *claim);

/* Counter set `name` of a pool, or -1. */
int cs__dra_find_set(const cs__dra_pool *p, const char *name);
/* Counter `name` in a set, or -1. */
int cs__dra_find_counter(const cs_dra_counter_set *s, const char *name);

/* ---- nodes (dra_node.c) ---- */

/* Whether a device available at nodeName / allNodes / sel serves opt's node (always true
 * without opt->node, as capstan allocates without a node then). */
bool cs__dra_node_matches(const char *node_name, bool all_nodes, const cs_ynode *sel,
                          const cs_dra_options *opt);
/* A slice is gathered when it serves the node or selects per device (GatherPools)... */
bool cs__dra_slice_eligible(const cs_dra_slice *s, const cs_dra_options *opt);
/* ... and then each of its devices when the slice does not select per device or it does. */
bool cs__dra_device_eligible(const cs_dra_slice *s, const cs_dra_device *d,
                             const cs_dra_options *opt);

/* Parses a Linux cpulist ("0-3,8,10-11") into *out (in a): distinct CPUs 0..65535, at
 * most CS_DRA_MAX_CPUS. Returns a message for people on bad input, NULL when it is good
 * (or "out of memory"). O(CPUs^2) for the duplicate check; lists are a few hundred. */
const char *cs__dra_cpulist(const char *s, cs_arena *a, int **out, size_t *n);

/* Gives every result of claim that consumes cores of a device with coreCPUs its CPUs (the
 * lowest free ones) and marks them taken in inv. O(results x CPUs of the device). */
cs_status cs__dra_assign_cpus(cs_dra_set *set, cs__dra_inv *inv, cs_dra_claim *claim);

/* Decodes a list of device requests (spec.devices.requests) from seq into *out, and
 * checks them as claim validation does, with paths under c->path ("spec.devices.requests"
 * for a claim). Selectors are compiled into set->programs. */
cs_status cs__dra_decode_requests(cs_dra_set *set, cs__dra_ctx *c, const cs_ynode *seq,
                                  cs_dra_request **out, size_t *n);
cs_status cs__dra_check_requests(cs_dra_set *set, cs__dra_ctx *c, cs_dra_request *reqs, size_t n);

/* Decodes one document already built as a tree in set->arena (as cs_dra_read does for a
 * parsed stream). */
cs_status cs__dra_read_doc(cs_dra_set *set, cs_ynode *doc, const char *source, cs_error *err);

/* True when one of the request's tolerations tolerates the taint (ToleratesTaint). */
bool cs__dra_tolerates(const cs_dra_request *r, const cs_dra_taint *t);

#endif

/*
 * placement.h - where an instance runs: a ResourceClaim built from structs, allocated by
 * the DRA allocator among every claim the server holds, answered as structs.
 *
 * The runtime places each instance of a deployment with one claim: cs_placement_claim
 * builds the claim from cs_dra_request structs (what cs_placement_parse_requests makes of a
 * deployment's `resources.devices.requests`, or written by hand), allocates it against the
 * server's ResourceSlices with every claim held so far counting as allocated, keeps it in
 * the state (so later claims, and GET /api/v1/claims, see the capacity it took) and fills a
 * cs_placement: the devices, the CPUs of the cores it got on cpu.capstan.dev devices (to pin
 * the instance's threads), and the ordinal and memory budget of a GPU. cs_placement_release
 * frees the claim's devices at once.
 *
 * Thread safety: every call may come from any thread (the controller's and the API's); they
 * go through the state's one lock (see dra_state.c for what it costs).
 */
#ifndef CS_DEVICES_PLACEMENT_H
#define CS_DEVICES_PLACEMENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "capstan/status.h"
#include "devices/dra.h"
#include "devices/dra_state.h"

#define CS_PLACEMENT_GPU_DRIVER "gpu.nvidia.com"

/* One allocated device. Strings and arrays live in the placement's arena. */
typedef struct cs_placement_device {
    const char *request; /* "req" or "req/sub" */
    const char *driver, *pool, *device;
    const char *share_id; /* NULL for an exclusive allocation */
    const int *cpus;      /* the CPUs of the cores taken (coreCPUs devices), else NULL */
    size_t n_cpus;
} cs_placement_device;

typedef struct cs_placement {
    cs_arena arena;
    cs_placement_device *devices;
    size_t n_devices;
    int *cpus; /* every device's CPUs, in result order: one per core, for pinning */
    size_t n_cpus;
    int gpu;            /* the attribute `index` of the first gpu.nvidia.com device; -1: none */
    int64_t gpu_memory; /* bytes of that GPU's memory the claim holds (consumed, or all of it) */
} cs_placement;

/* Builds the claim `claim_name` (a DNS subdomain) with the n requests, allocates it and
 * keeps it. Always initialises out; free it with cs_placement_free, also after a failure.
 * The requests are read, not kept: count 0 or CS_DRA_COUNT_UNSET means 1, a NULL field
 * means absent. Errors: CS_ERR_NO_FIT when no allocation fits now, with the allocator's
 * reason ("ResourceClaim web-0: cannot be allocated: request cpu: no device of class
 * cpu.capstan.dev has 2 cores free (the most free: cpu.capstan.dev/node/numa-0 with 1 of
 * 8)"), nothing kept; CS_ERR_INVALID for requests the API would refuse (named by the
 * claim's field path), CS_ERR_EXISTS for a name held already, CS_ERR_LIMIT past
 * CS_DRA_STATE_MAX_OBJS claims, CS_ERR_NOMEM. */
cs_status cs_placement_claim(cs_dra_state *st, const char *claim_name,
                             const cs_dra_request *requests, size_t n, cs_placement *out,
                             cs_error *err);

/* Frees the claim's devices, cores and capacity. CS_ERR_NOT_FOUND names it. */
cs_status cs_placement_release(cs_dra_state *st, const char *claim_name, cs_error *err);

void cs_placement_free(cs_placement *p);

/* Reads a JSON array shaped like a ResourceClaim's spec.devices.requests (a deployment's
 * resources.devices.requests) into *out, allocated in a (the strings too; a must outlive
 * the requests), checked as the API server checks a claim: fields, allocationMode, count,
 * tolerations, CEL syntax of every selector. Classes are looked up at claim time (a
 * missing class leaves the claim unallocatable with the reason). Errors are CS_ERR_INVALID
 * with the field path under `path`: "spec.resources.devices.requests[0].exactly.
 * deviceClassName: required". Cost O(input). */
cs_status cs_placement_parse_requests(const json_t *requests, const char *path, cs_arena *a,
                                      cs_dra_request **out, size_t *n, cs_error *err);

#endif

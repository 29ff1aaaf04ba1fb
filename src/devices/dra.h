/*
 * dra.h - Kubernetes Dynamic Resource Allocation (resource.k8s.io/v1) in capstan.
 *
 * The object model: DeviceClass, ResourceSlice and ResourceClaim as Kubernetes defines
 * them, read from and written to Kubernetes YAML (multi-document) so that slices and claims
 * move between capstan and a cluster unchanged, and the structured allocator that fills a
 * claim's status.allocation with Kubernetes' semantics (see dra_alloc.c).
 *
 * Ownership: a cs_dra_set owns everything read into it (one arena plus the compiled CEL
 * programs); every pointer in the structs below is borrowed from the set and lives until
 * cs_dra_set_free. Field names follow the Kubernetes API; comments say only what capstan
 * adds or restricts.
 */
#ifndef CS_DEVICES_DRA_H
#define CS_DEVICES_DRA_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "base/vec.h"
#include "capstan/status.h"
#include "devices/cel.h"
#include "devices/quantity.h"
#include "devices/ytree.h"

#define CS_DRA_MAX_RESULTS  32 /* resourceapi.AllocationResultsMaxSize */
#define CS_DRA_MAX_REQUESTS 32 /* DeviceRequestsMaxSize, also for constraints */
#define CS_DRA_MAX_OBJECTS  100000

/* A device that lists its cores' CPUs in this string attribute (a Linux cpulist, one CPU
 * per core, as many as its capacity `cores`) gets concrete cores allocated: each result on
 * it records the lowest free CPUs, as many as the cores it consumes (all of them for an
 * exclusive allocation). cpu.capstan.dev devices publish it. */
#define CS_DRA_CORE_CPUS "coreCPUs"
#define CS_DRA_CORES     "cores"
#define CS_DRA_MAX_CPUS  4096 /* per device */

/* A device attribute: `name` as written in the slice ("model" or "domain/model"). The value
 * uses the CEL evaluator's type (INT, BOOL, STRING or VERSION). */
typedef struct cs_dra_attr {
    const char *name;
    cs_cel_attr value;
} cs_dra_attr;

typedef struct cs_dra_qty_entry { /* one entry of a map[name]quantity */
    const char *name;
    cs_quantity value;
} cs_dra_qty_entry;

/* DeviceCapacity with its optional requestPolicy. */
typedef struct cs_dra_capacity {
    const char *name;
    cs_quantity value;
    bool has_policy, has_default, has_range, has_max, has_step;
    cs_quantity def, min, max, step;
    cs_quantity *valid_values; /* ascending, as the API requires */
    size_t n_valid_values;
} cs_dra_capacity;

/* A CounterSet (sharedCounters) or a DeviceCounterConsumption (consumesCounters). */
typedef struct cs_dra_counter_set {
    const char *name; /* counterSet for consumptions */
    cs_dra_qty_entry *counters;
    size_t n_counters;
} cs_dra_counter_set;

typedef struct cs_dra_taint {
    const char *key, *value, *effect;
} cs_dra_taint;

typedef struct cs_dra_toleration {
    const char *key, *op, *value, *effect; /* op: Exists or Equal (default) */
} cs_dra_toleration;

typedef struct cs_dra_device {
    const char *name;
    cs_dra_attr *attrs;
    size_t n_attrs;
    cs_dra_capacity *caps;
    size_t n_caps;
    cs_dra_counter_set *consumes;
    size_t n_consumes;
    cs_dra_taint *taints;
    size_t n_taints;
    bool allow_multiple;
    /* Where the device is available, with perDeviceNodeSelection (one of the three). */
    const char *node_name;
    bool all_nodes;
    const cs_ynode *node_sel; /* a core/v1 NodeSelector as written */
    /* bindingConditions and bindingFailureConditions as written (NULL when absent): copied
     * into each allocation result as Kubernetes' allocator does; capstan does not wait for
     * them before binding. */
    const cs_ynode *binding_conditions, *binding_failure_conditions;
} cs_dra_device;

typedef struct cs_dra_slice {
    const char *name, *driver, *pool, *node_name;
    int64_t generation, slice_count;
    bool all_nodes;
    bool per_device;          /* perDeviceNodeSelection: each device says where it is */
    const cs_ynode *node_sel; /* spec.nodeSelector as written (one term), or NULL */
    cs_dra_device *devices;
    size_t n_devices;
    cs_dra_counter_set *shared;
    size_t n_shared;
    cs_ynode *doc; /* the object as read, for writing it back */
} cs_dra_slice;

typedef struct cs_dra_selector {
    const char *expr;
    cs_cel_program *prog;
} cs_dra_selector;

typedef struct cs_dra_class {
    const char *name;
    cs_dra_selector *selectors;
    size_t n_selectors;
    cs_ynode *config; /* spec.config (a sequence) or NULL */
    cs_ynode *doc;    /* the object as read, for writing it back */
} cs_dra_class;

typedef enum cs_dra_mode { CS_DRA_EXACT_COUNT, CS_DRA_ALL } cs_dra_mode;

/* A request's count before validation when the YAML gives none (any value given, -1 too,
 * is checked: it must be > 0). */
#define CS_DRA_COUNT_UNSET INT64_MIN

/* An `exactly` request or one firstAvailable sub-request (then n_subs == 0). A request
 * with firstAvailable has subs and no class of its own. */
typedef struct cs_dra_request {
    const char *name, *class_name;
    const cs_dra_class *cls; /* resolved by validation */
    cs_dra_selector *selectors;
    size_t n_selectors;
    cs_dra_mode mode;
    int64_t count; /* CS_DRA_COUNT_UNSET until validation defaults it to 1 */
    bool admin_access;
    cs_dra_toleration *tolerations;
    size_t n_tolerations;
    cs_ynode *tolerations_node; /* copied into results as written */
    cs_dra_qty_entry *cap_requests;
    size_t n_cap_requests;
    struct cs_dra_request *subs;
    size_t n_subs;
} cs_dra_request;

typedef struct cs_dra_constraint {
    const char **requests; /* empty = every request */
    size_t n_requests;
    const char *match_attr, *distinct_attr; /* exactly one is set */
} cs_dra_constraint;

typedef struct cs_dra_result {
    const char *request; /* "req" or "req/sub" */
    const char *driver, *pool, *device;
    bool admin_access;
    const char *share_id; /* NULL for exclusive allocations */
    cs_dra_qty_entry *consumed;
    size_t n_consumed;
    /* The CPUs of the cores taken on a device that lists coreCPUs (one per core): written
     * to and read from status.devices[].data.cpus; NULL/0 for other devices. */
    const int *cpus;
    size_t n_cpus;
    const cs_dra_request *req; /* the (sub)request, for tolerations; NULL when read */
    const cs_dra_slice *slice; /* where the device came from, for the node selector; */
    const cs_dra_device *dev;  /* both NULL when read */
} cs_dra_result;

typedef enum cs_dra_claim_state {
    CS_DRA_PENDING,       /* not allocated yet */
    CS_DRA_ALLOCATED,     /* has status.allocation (read or made) */
    CS_DRA_UNALLOCATABLE, /* no solution; reason says why */
    CS_DRA_FAILED,        /* an error, as Kubernetes' allocator returns one; reason */
} cs_dra_claim_state;

typedef struct cs_dra_claim {
    const char *name, *namespace_;
    cs_dra_request *requests;
    size_t n_requests;
    cs_dra_constraint *constraints;
    size_t n_constraints;
    cs_ynode *config; /* spec.devices.config or NULL */
    cs_dra_claim_state state;
    bool allocated_on_input; /* status.allocation was in the input */
    cs_dra_result *results;
    size_t n_results;
    const char *reason;            /* for UNALLOCATABLE and FAILED */
    const cs_dra_request **chosen; /* per request: the (sub)request allocated */
    const char **chosen_names;     /* per request: "req" or "req/sub" */
    cs_ynode *doc;                 /* the object as read; written back with new status */
} cs_dra_claim;

/* Everything read from one or more inputs. Object order is file order. */
typedef struct cs_dra_set {
    cs_arena arena;
    cs_vec streams;  /* cs_ystream, the trees objects point into */
    cs_vec classes;  /* cs_dra_class * */
    cs_vec slices;   /* cs_dra_slice * */
    cs_vec claims;   /* cs_dra_claim * */
    cs_vec programs; /* cs_cel_program *, freed with the set */
} cs_dra_set;

void cs_dra_set_init(cs_dra_set *set);
void cs_dra_set_free(cs_dra_set *set);

/* Reads a YAML stream of DeviceClass, ResourceSlice and ResourceClaim objects
 * (apiVersion resource.k8s.io/v1; kind List is unpacked) into set and validates it.
 * `source` names the input in messages. Errors name the object, the field and the line:
 * "ResourceClaim gpu: spec.devices.requests[0].exactly.count: must be > 0 (line 12)".
 * Unknown fields inside the parts capstan interprets are rejected (a typo must not silently
 * change an allocation); metadata, unknown top-level fields and the API fields capstan
 * does not use are kept and written back unchanged. On error set keeps what it had. */
cs_status cs_dra_read(cs_dra_set *set, const char *text, size_t len, const char *source,
                      cs_error *err);

typedef enum cs_dra_policy {
    CS_DRA_POLICY_FIRST,    /* Kubernetes' answer: the first solution in device order */
    CS_DRA_POLICY_BEST_FIT, /* the best-scoring candidates first; see dra_alloc.c */
} cs_dra_policy;

typedef struct cs_dra_options {
    const char *node;        /* NULL: every slice is eligible */
    const char *node_labels; /* the node's labels, "k=v,k2=v2" (NULL: none), for slices
                                and devices with a nodeSelector */
    cs_dra_policy policy;
    uint64_t max_steps; /* search steps per pod; 0 = CS_DRA_DEFAULT_STEPS */
    /* true: the pending claims are one pod's, allocated together in one search, all or
     * none, as Kubernetes allocates a pod's claims (backtracking across claims); false:
     * each pending claim is a pod of its own, in file order. */
    bool pod;
} cs_dra_options;

#define CS_DRA_DEFAULT_STEPS 2000000

/* Allocates every pending claim: with opt->pod all of them together (when one cannot be
 * allocated, none is, and each gets a reason), otherwise claim by claim in file order, each
 * allocation counting for the claims after it. Claims that cannot be allocated get state
 * UNALLOCATABLE or FAILED with a reason; the call itself fails only when memory runs out. */
cs_status cs_dra_allocate(cs_dra_set *set, const cs_dra_options *opt, cs_error *err);

/* Writes every claim (with status.allocation, or with the annotation
 * dra.capstan.io/unallocated: REASON) as a YAML stream, or as a JSON v1 List. */
cs_status cs_dra_write_claims(cs_dra_set *set, bool json, cs_sbuf *out, cs_error *err);
/* The same for one claim of a set, as a single YAML document or JSON object. */
cs_status cs_dra_write_claim(const cs_dra_claim *claim, bool json, cs_sbuf *out, cs_error *err);

#define CS_DRA_REASON_ANNOTATION "dra.capstan.io/unallocated"

#endif

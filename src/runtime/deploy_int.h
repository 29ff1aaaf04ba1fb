/*
 * deploy_int.h - what the deployer's files share and nobody else sees: a deployment's
 * in-memory state (its slots, rollout and autoscaler) and the steps the controller takes.
 *
 * deploy.c runs the controller loop, the public calls and the request path;
 * deploy_slots.c loads versions into slots and adds, removes and heals their instances;
 * deploy_rollout.c runs canary rollouts and their analysis; deploy_status.c writes the
 * status objects the API and CLI show; deploy_metrics.c keeps the capstan_deployment_*
 * series.
 */
#ifndef CS_RUNTIME_DEPLOY_INT_H
#define CS_RUNTIME_DEPLOY_INT_H

#include "base/arena.h"
#include "base/map.h"
#include "base/vec.h"
#include "devices/placement.h"
#include "obs/metrics.h"
#include "runtime/autoscale.h"
#include "runtime/balance.h"
#include "runtime/deploy.h"

#include <pthread.h>
#include <stdint.h>

#define MAX_SLOTS  (2 * CS_DEPLOY_MAX_TARGETS)
#define VERSION_SZ 24

typedef struct slot {
    char version[VERSION_SZ]; /* "" = free */
    cs_rt_model *m;           /* held while loaded */
    int ids[CS_DEPLOY_MAX_INST], n_ids;
    int claims[CS_DEPLOY_MAX_INST]; /* parallel to ids: the claim's number, 0 = none */
    int ready;                      /* Ready instances, as of the last pass */
    int weight, wanted;             /* routing percent now; wanted percent, -1 = not a target */
    int restarts;                   /* failed instances replaced */
    cs_backoff backoff;             /* restart back-off (heal) */
    int64_t retry_at_ms, last_failure_ms;
    struct ext_pool *ext; /* an external runtime's instances (deploy_external.c), else NULL */
} slot;

/* A canary rollout (strategy canary): stable keeps 100 - weight percent, canary weight. */
typedef enum ro_phase { RO_NONE, RO_PROGRESSING, RO_SUCCEEDED, RO_FAILED } ro_phase;
#define RO_BUCKETS 32

typedef struct rollout {
    ro_phase phase;
    char stable[VERSION_SZ], canary[VERSION_SZ];
    int step, weight, failed; /* the next step, the canary's weight, failed checks */
    int64_t step_at_ms, check_at_ms;
    uint64_t ok0, fail0, b0[RO_BUCKETS]; /* the canary's counts when the interval began */
    double last_rate, last_p99_ms;       /* the last check's figures (NAN: no traffic) */
    uint64_t last_n;
    char reason[256];
    bool rearmed; /* failed, and the target has moved off the canary since */
} rollout;

/* Instances by state in the metrics and status: Pending, then cs_rt_instance_state's. */
#define CS__DEP_STATES 5

typedef struct cs__dep_families {
    cs_metric_family *desired, *ready, *state, *panic, *canary, *activator, *restarts, *cold;
} cs__dep_families;

typedef struct cs__dep_series { /* one deployment's; all NULL without a metrics registry */
    cs_metric *desired, *ready, *state[CS__DEP_STATES], *panic, *canary, *activator, *restarts,
        *cold;
} cs__dep_series;

/* Where an implicit deployment's one version comes from (deploy_implicit.c): a file the
 * server was told to serve (--model, DATA_DIR/models), loaded with its own configuration. */
#define CS__DEP_IMPLICIT_VERSION "1"

typedef struct implicit_src {
    char origin[32]; /* what declared it, the capstan.dev/implicit annotation: "--model" */
    char *path;      /* the .onnx (owned) */
    cs_model_config cfg;
} implicit_src;

typedef struct dep {
    cs_deploy_spec spec;    /* written by the controller only (under mu), read by it without */
    implicit_src *implicit; /* an implicit deployment's own copy (owned), else NULL */
    cs_deploy_spec next;    /* an applied spec the next pass takes over (has_next) */
    bool has_next;
    int64_t generation;
    int64_t passed; /* the generation the last finished pass worked to */
    slot s[MAX_SLOTS];
    cs_kpa kpa;
    int desired, ticks;
    double conc_sum; /* concurrency readings since the last sample (the controller's) */
    int conc_n;
    bool poked;         /* a request met no Ready instance: scale from zero now */
    uint64_t poked_ns;  /* when the first such request came, for the cold-start metric */
    char reason[512];   /* why instances are missing ("" when none are) */
    cs_arena req_arena; /* reqs: spec.resources.devices.requests as allocator structs */
    cs_dra_request *reqs;
    size_t n_reqs;
    bool reqs_ready;
    int next_claim; /* claims are named DEPLOYMENT-vVERSION-N */
    rollout ro;
    cs_rollout_action ro_cmd;  /* a promote or abort for the next pass (0: none) */
    char ro_actor[64];         /* who asked for it */
    char full[VERSION_SZ];     /* the version that last had all traffic, and the one before */
    char previous[VERSION_SZ]; /* it (what `rollout undo` goes back to) */
    int pending;               /* instances wanted that no device fits (as of the last pass) */
    cs__dep_series m;
} dep;

struct cs_deployer {
    cs_deployer_options o;
    pthread_mutex_t mu; /* deps and every routing field of a dep */
    pthread_cond_t wake;
    pthread_cond_t passed; /* a pass over a deployment finished */
    cs_map deps;           /* name -> dep * */
    cs_map implicit;       /* name -> implicit_src *: declared, whether shadowed or not */
    cs_vec deleted;        /* dep *: out of the map until the controller has freed it */
    bool stop, kicked;     /* kicked: a pass is wanted now (a poke, an apply, a delete) */
    pthread_t thread;
    cs__dep_families fam;
    struct ext_workers *ext; /* proxy threads for external runtimes, made on first use */
};

/* --- deploy.c ------------------------------------------------------------------------- */

/* A new dep for spec (taken over), registered in the map and the controller woken. Caller
 * holds mu. */
cs_status cs__dep_add(cs_deployer *d, cs_deploy_spec *spec, int64_t generation, dep **out,
                      cs_error *err);
/* Takes deployment name out of the map for the controller to drain and free. Caller holds
 * mu. */
void cs__dep_forget(cs_deployer *d, const char *name);
/* Waits (caller holds mu, released while waiting) until the controller has drained and freed
 * every deployment forgotten so far, at most 60 s: a name is free to reuse afterwards. */
void cs__dep_wait_freed(cs_deployer *d);
/* Drains, unloads and frees p (the controller, or the last thread at shutdown). */
void cs__dep_free(cs_deployer *d, dep *p);

/* The slot serving version, or NULL. */
slot *cs__dep_find_slot(dep *p, const char *version);
/* Records a change of state in the audit log under the deployment's name; takes detail. */
void cs__dep_event(cs_deployer *d, dep *p, const char *action, json_t *detail);

/* The slot a request goes to: `version` when given, else one by the traffic split (a
 * weighted random choice over the routing weights); NULL when none. Caller holds mu. */
slot *cs__dep_pick_slot(dep *p, const char *version);
/* A request met no Ready instance: scale from zero now. Caller holds mu. */
void cs__dep_poke(cs_deployer *d, dep *p);
/* The restart back-off policy of the spec (spec.restartBackoff). */
cs_backoff_policy cs__dep_backoff_policy(const cs_deploy_spec *s);

/* --- deploy_slots.c (the controller, without mu unless said) -------------------------- */

/* Loads version with no instances into a free slot (the wanted percent set by the caller). */
slot *cs__dep_load_slot(cs_deployer *d, dep *p, const char *version, cs_error *err);
/* Up to CS_DEPLOY_MAX_INST instances of a slot into *info (cs_malloc'd: the records are
 * large); returns how many, 0 on out of memory. */
int cs__dep_instances(const slot *s, cs_rt_instance_info **info);
/* Ready instances of a slot, from the runtime. */
int cs__dep_count_ready(const slot *s);
/* The name of claim number n of a slot: DEPLOYMENT-vVERSION-N. */
void cs__dep_claim_name(const dep *p, const slot *s, int n, char *out, size_t cap);
/* Adds or removes instances on s until it has `want`. */
void cs__dep_scale_slot(cs_deployer *d, dep *p, slot *s, int want);
/* Drains and unloads a slot that gets no traffic and is no longer wanted. */
void cs__dep_unload_slot(cs_deployer *d, dep *p, slot *s);
/* Replaces FAILED instances, with the restart back-off. */
void cs__dep_heal(cs_deployer *d, dep *p, slot *s, int64_t now_ms);

/* --- deploy_implicit.c ------------------------------------------------------------------ */

/* Brings back the implicit deployment declared under name, once no deployment of that name is
 * left (an explicit one that shadowed it was deleted). The controller, without mu. */
void cs__dep_implicit_return(cs_deployer *d, const char *name);
/* Frees the declared sources (cs_deployer_free). */
void cs__dep_implicit_free_all(cs_deployer *d);
/* CS_ERR_EXISTS naming the origin when p is implicit and `what` ("deleted", ...) cannot be
 * done to it; CS_OK otherwise. */
cs_status cs__dep_implicit_refuse(const dep *p, const char *what, cs_error *err);

/* --- deploy_external.c: the same steps for an external runtime's slot (s->ext) ----------- */

/* Publishes the free slot s as `version` of an external runtime (with no instances yet),
 * whose artifact is at path. */
cs_status cs__ext_load_slot(cs_deployer *d, dep *p, slot *s, const char *version, const char *path,
                            cs_error *err);
/* Adds or removes instances (child processes) until there are `want`. */
void cs__ext_scale_slot(cs_deployer *d, dep *p, slot *s, int want);
/* Replaces failed instances after their back-off. */
void cs__ext_heal(cs_deployer *d, dep *p, slot *s, int64_t now_ms);
/* Stops every instance (in-flight requests finish first, up to the grace period) and frees
 * the pool; s->ext is NULL afterwards. */
void cs__ext_unload_slot(cs_deployer *d, dep *p, slot *s);
/* Up to max instances as the runtime describes its own; returns how many. */
int cs__ext_instances(const slot *s, cs_rt_instance_info *out, int max);
/* Requests outstanding on or waiting for the slot's instances (lock-free). */
double cs__ext_concurrency(const slot *s);
/* Adds port, pid, devices and restarts to instance id's status object. Caller holds mu. */
void cs__ext_instance_json(const slot *s, int id, json_t *obj);
/* Stops the proxy threads (cs_deployer_free, after every deployment is freed); `begin` first
 * tells the waiting requests to give up (before the deployments are freed). */
void cs__ext_shutdown(cs_deployer *d, bool begin);

/* --- deploy_rollout.c ------------------------------------------------------------------- */

/* Canary strategy, one traffic target resolving to `target`: starts, advances or ends the
 * rollout *ro (the controller's copy); reconcile turns its stable, canary and weight into
 * wanted percents. */
void cs__dep_rollout_step(cs_deployer *d, dep *p, rollout *ro, const char *target, int64_t now_ms);

/* Applies a promote (the canary takes all traffic now) or an abort (rolled back now, as
 * a failed analysis would) to a rollout in progress; nothing otherwise. */
void cs__dep_rollout_command(cs_deployer *d, dep *p, rollout *ro, cs_rollout_action a,
                             const char *actor);

/* --- deploy_metrics.c ------------------------------------------------------------------ */

/* Registers the capstan_deployment_* families (none without d->o.metrics). */
void cs__dep_metrics_register(cs_deployer *d);
/* Gets p's series (after its spec is set). */
void cs__dep_metrics_bind(cs_deployer *d, dep *p);
/* Publishes a pass's figures: instances by state (Pending first), requests waiting for a
 * cold start. Caller holds mu. */
void cs__dep_metrics_publish(dep *p, const int states[CS__DEP_STATES], double waiting);

#endif

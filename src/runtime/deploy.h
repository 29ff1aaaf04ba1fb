/*
 * deploy.h - the deployer: makes the declared deployments so and keeps them so.
 *
 * A deployment (deploy_spec.h) names a registry model and a traffic split over its
 * versions or aliases. For each target the deployer loads the version into the runtime
 * once, as (deployment name, version), and then only adds and removes instances (engine
 * sessions with their workers) on it: an instance count of zero keeps the version parsed
 * and its queue open, so a request to a deployment at zero waits in that queue - the
 * activator - while the deployer starts an instance at once, and is answered as soon as
 * that instance is model-ready. Requests at zero wait at most CS_DEPLOY_ACTIVATION_MS (or
 * their own timeout); a deployment that cannot start an instance (the thread budget or a
 * device does not fit) answers at once with the reason.
 *
 * Autoscaling is Knative's KPA (autoscale.h): the deployment's concurrency (requests
 * running or queued, over all its targets) is sampled every tick (1 s), a decision is taken
 * every second tick, and the desired count is shared out over the targets by percent
 * (ceil; at least one instance for a target with traffic while any is desired). Traffic is
 * split per request by a weighted random choice over the targets.
 *
 * An alias move (or a new latest version) changes what a target resolves to: the new
 * version is loaded and given its instances, traffic moves to it once one is Ready, and the
 * old version drains and is unloaded (no request fails for the move).
 *
 * Specs are stored in the registry (registry/deployments.c), so a restarted server
 * reconciles to what was declared; changes of state ("deployment.scaled", ...) are audited.
 *
 * Implicit deployments (deploy_implicit.c): a model the server serves from a file (--model,
 * DATA_DIR/models) is a deployment too, declared by the server rather than applied: version
 * "1", loaded with the model's own configuration, its instance count as both min and max.
 * It is not stored (the command line declares it again at each start), it is listed with
 * the annotation capstan.dev/implicit naming its origin, it can be scaled (until the next
 * start) but not deleted or rolled out, and a registry change cannot touch it. An explicit
 * deployment of the same name wins: applying one replaces the implicit deployment, and
 * deleting it brings the implicit one back.
 *
 * Threads: one controller thread; every function here may be called from any thread.
 */
#ifndef CS_RUNTIME_DEPLOY_H
#define CS_RUNTIME_DEPLOY_H

#include <jansson.h>
#include <stdbool.h>

#include "registry/registry.h"
#include "runtime/deploy_spec.h"
#include "runtime/extproc.h"
#include "runtime/runtime.h"

struct cs_metrics;

#define CS_DEPLOY_ACTIVATION_MS 60000 /* the longest a request waits for a cold start */

typedef struct cs_deployer cs_deployer;

typedef struct cs_deployer_options {
    cs_runtime *rt;
    cs_registry_t *registry;      /* specs, the versions' artifacts, the audit log */
    struct cs_metrics *metrics;   /* optional: the capstan_deployment_* families */
    struct cs_dra_state *devices; /* where instances with resources.devices are placed */
    int tick_ms;                  /* 0 = 1000 */
} cs_deployer_options;

/* Reads the stored deployments and starts the controller thread, which brings them up. */
cs_status cs_deployer_new(const cs_deployer_options *o, cs_deployer **out, cs_error *err);
/* Stops the controller and unloads every deployment's versions. */
void cs_deployer_free(cs_deployer *d);

/* Creates or replaces a deployment (kubectl apply): the model and every version a target
 * names must exist (CS_ERR_NOT_FOUND otherwise; an alias that does not exist yet is
 * refused too, except `prod`, which falls back to `latest` as serving does). Stored first,
 * then reconciled by the controller. *created says whether it is new. */
cs_status cs_deployer_apply(cs_deployer *d, const cs_deploy_spec *spec, const char *actor,
                            bool *created, cs_error *err);
/* Deletes it: its instances drain and its versions are unloaded. */
cs_status cs_deployer_delete(cs_deployer *d, const char *name, const char *actor, cs_error *err);
/* Makes deployment name (NULL: every one) what the registry's store holds now, after
 * another server changed it (cluster mode): a stored spec that differs from the one held
 * is reconciled to, one no longer stored is deleted here too (its instances drain). Nothing
 * is written to the store. Cost: one store read (a list for NULL). */
cs_status cs_deployer_reload(cs_deployer *d, const char *name, cs_error *err);
/* Sets spec.instances.min/max (negative leaves one as it is); stored like an apply. */
cs_status cs_deployer_scale(cs_deployer *d, const char *name, int min, int max, const char *actor,
                            cs_error *err);

/* Rollouts, in `kubectl rollout`'s and Argo Rollouts' terms. start sets the deployment's
 * traffic to one target, `to` (a version number or an alias), and applies it: the canary
 * strategy then rolls out through its steps, rolling replaces the instances. promote ends
 * a rollout in progress with the canary taking all traffic; abort rolls it back now. undo
 * starts a rollout back to the version served before: the stable one while a rollout is in
 * progress or failed, else the one that had all traffic before the current one. promote
 * and abort without a rollout in progress, and undo with nothing to go back to, are
 * CS_ERR_EXISTS (409, a conflict with the deployment's state). */
typedef enum cs_rollout_action {
    CS_ROLLOUT_PROMOTE = 1,
    CS_ROLLOUT_ABORT,
} cs_rollout_action;

cs_status cs_deployer_rollout_start(cs_deployer *d, const char *name, const char *to,
                                    const char *actor, cs_error *err);
cs_status cs_deployer_rollout(cs_deployer *d, const char *name, cs_rollout_action a,
                              const char *actor, cs_error *err);
cs_status cs_deployer_rollout_undo(cs_deployer *d, const char *name, const char *actor,
                                   cs_error *err);

/* {apiVersion, kind, metadata (with generation), spec, status} of one deployment, or NULL
 * (CS_ERR_NOT_FOUND in err) when there is none. status: desiredInstances, readyInstances,
 * panic, traffic (each target with the version it resolves to), instances[] (name,
 * version, state, since, restarts, reason), reason (why instances are missing). */
json_t *cs_deployer_get(cs_deployer *d, const char *name, cs_error *err);
/* Every deployment as cs_deployer_get gives it, by name. */
json_t *cs_deployer_list(cs_deployer *d);

/* Calls fn(deployment, claim) for each ResourceClaim an instance of a deployment holds
 * (built-in and external runtimes alike), under the deployer's lock: fn must be quick and
 * must not call back into the deployer. O(deployments + instances); no allocation. */
void cs_deployer_each_claim(cs_deployer *d,
                            void (*fn)(const char *deployment, const char *claim, void *ud),
                            void *ud);

/* Declares the implicit deployment `name`, serving the model at path with cfg (copied; its
 * instances become min and max) and annotated with origin ("--model"). Unless an explicit
 * deployment of that name shadows it (then *shadowed is true and nothing is loaded until that
 * one is deleted), the version is loaded and its instances started before this returns, so a
 * load error is the caller's: CS_ERR_EXISTS with `replace` false when it is loaded already
 * (nothing changes), else the old one is drained first. A name that is no deployment name (a
 * DNS label) is CS_ERR_INVALID: the caller serves it by itself. */
cs_status cs_deployer_implicit(cs_deployer *d, const char *name, const char *path,
                               const cs_model_config *cfg, const char *origin, bool replace,
                               bool *shadowed, cs_error *err);
/* Withdraws the implicit deployment `name`: its instances drain and its version is unloaded
 * before this returns (an explicit deployment of that name is left as it is). CS_ERR_NOT_FOUND
 * when none was declared. */
cs_status cs_deployer_implicit_drop(cs_deployer *d, const char *name, cs_error *err);

/* Whether a deployment of this name exists (a map lookup). */
bool cs_deployer_has(cs_deployer *d, const char *name);

/* The version a request to deployment `name` goes to, held (release with
 * cs_rt_model_release): version NULL picks a target by the traffic split, else that version
 * when it is one of the deployment's targets. CS_OK with *out NULL when there is no
 * deployment of that name (one lookup on the request path of every model);
 * CS_ERR_NOT_FOUND when it has no such target; CS_ERR_LIMIT when no instance can start,
 * with the reason; CS_ERR_UNSUPPORTED for a deployment of an external runtime (see below).
 * *activate_by_ns is set, when the chosen target has no Ready instance, to the deadline of
 * the wait for one (else 0). */
cs_status cs_deployer_acquire(cs_deployer *d, const char *name, const char *version,
                              cs_rt_model **out, uint64_t *activate_by_ns, cs_error *err);

/* --- external runtimes (deploy_external.c) ---------------------------------------------
 * A deployment whose spec.runtime is a command has no cs_rt_model: cs_deployer_acquire
 * answers CS_ERR_UNSUPPORTED for it, and its requests go to cs_deployer_proxy instead. */

/* One request to proxy. Everything is borrowed until `done` has been called. */
typedef struct cs_deploy_proxy {
    const char *method;
    const char *suffix; /* the path after /v2/models/{name}[/versions/{v}]: "/infer", "" */
    const char *content_type, *header_length; /* Inference-Header-Content-Length; NULL: none */
    const char *body;
    size_t len;
    /* Called exactly once, on a proxy thread, never on the caller's: CS_OK with the runtime's
     * answer (whatever its status; resp->body is the callee's to cs_free or hand on), else
     * with msg and resp NULL: CS_ERR_SHUTDOWN (no instance became available within
     * CS_DEPLOY_ACTIVATION_MS, or the deployment went away: 503), CS_ERR_IO (the instance
     * died mid-request and the retry on another one failed too: 502), CS_ERR_TIMEOUT (no answer
     * within spec.runtime.requestTimeout: 504), CS_ERR_LIMIT (an answer too large: 502). */
    void (*done)(void *ud, cs_status rc, const char *msg, cs_proxy_resp *resp);
    void *ud;
} cs_deploy_proxy;

/* Queues req for deployment `name` (version NULL: by the traffic split, else that version)
 * and returns at once; a proxy thread picks a Ready instance of the chosen version by power
 * of two choices on outstanding requests (never one at spec.instances.containerConcurrency),
 * waiting while none can take it (a deployment at zero is scaled up at once: the activator),
 * forwards the request with the path rewritten to spec.runtime.modelName, and retries once
 * on another instance when the first one gave no answer at all. CS_ERR_NOT_FOUND when there
 * is no such deployment or target, CS_ERR_LIMIT when 10,000 requests wait already; `done` is
 * then never called. */
cs_status cs_deployer_proxy(cs_deployer *d, const char *name, const char *version,
                            const cs_deploy_proxy *req, cs_error *err);

#endif

/*
 * deploy.c - the deployer's controller loop, routing and status; see deploy.h.
 *
 * Each deployment has slots: versions loaded into the runtime as (deployment, version),
 * each with the instance ids the deployer added on it, a routing weight (the percent of
 * requests it gets now) and a wanted percent (-1 once no target resolves to it). Only the
 * controller thread loads, adds, removes and unloads (slow: a session build or a drain),
 * without `mu`; it publishes the results under `mu`, which the request path takes for a
 * weighted choice and one runtime acquire. The API threads change specs under `mu` and
 * wake the controller.
 *
 * One pass over a deployment (reconcile): resolve every target to a version (registry
 * reads), load new versions with no instances, share the desired count out over the
 * wanted slots and add or remove instances to match, move the routing weights to the
 * wanted percents once a new slot has a Ready instance (or the old ones have none either),
 * then drain and unload slots that are no longer wanted and get no traffic.
 */
#include "runtime/deploy.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/map.h"
#include "base/vec.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "devices/placement.h"
#include "runtime/autoscale.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
    int64_t backoff_ms, retry_at_ms, last_failure_ms; /* restart back-off (heal) */
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
} rollout;

typedef struct dep {
    cs_deploy_spec spec; /* written by the controller only (under mu), read by it without */
    cs_deploy_spec next; /* an applied spec the next pass takes over (has_next) */
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
    cs_metric *m_desired, *m_ready, *m_panic, *m_cold;
} dep;

struct cs_deployer {
    cs_deployer_options o;
    pthread_mutex_t mu; /* deps and every routing field of a dep */
    pthread_cond_t wake;
    pthread_cond_t passed; /* a pass over a deployment finished */
    cs_map deps;           /* name -> dep * */
    cs_vec deleted;        /* dep *: out of the map, for the controller to drain and free */
    bool stop, kicked;     /* kicked: a pass is wanted now (a poke, an apply, a delete) */
    pthread_t thread;
    cs_metric_family *f_desired, *f_ready, *f_panic, *f_cold;
};

/* --- resolving targets --------------------------------------------------------------- */

/* The ready version a target names, as a decimal string. `prod` falls back to `latest`. */
static cs_status resolve(cs_deployer *d, const char *model, const cs_deploy_target *t,
                         char version[VERSION_SZ], cs_error *err)
{
    char ref[CS_DEPLOY_NAME_MAX + 1];
    if (t->alias[0])
        snprintf(ref, sizeof ref, "%s", t->alias);
    else
        snprintf(ref, sizeof ref, "%" PRId64, t->version);
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_version v;
    cs_status rc = cs_registry_version_get(d->o.registry, model, ref, &a, &v, err);
    if (rc == CS_ERR_NOT_FOUND && !strcmp(ref, "prod"))
        rc = cs_registry_version_get(d->o.registry, model, "latest", &a, &v, err);
    if (rc == CS_OK && v.state != CS_REGISTRY_STATE_READY)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' version %" PRId64 " is archived",
                          model, v.version);
    if (rc == CS_OK) snprintf(version, VERSION_SZ, "%" PRId64, v.version);
    cs_arena_free(&a);
    return rc;
}

/* --- the controller's steps (no lock held unless said) -------------------------------- */

static slot *find_slot(dep *p, const char *version)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && !strcmp(p->s[i].version, version)) return &p->s[i];
    return NULL;
}

/* Loads version with no instances into a free slot (the wanted percent set by the caller). */
static slot *load_slot(cs_deployer *d, dep *p, const char *version, cs_error *err)
{
    slot *free_slot = NULL;
    for (int i = 0; i < MAX_SLOTS && !free_slot; i++)
        if (!p->s[i].version[0]) free_slot = &p->s[i];
    if (!free_slot) {
        cs_error_set(err, CS_ERR_LIMIT, "too many versions in flight");
        return NULL;
    }
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_version v;
    const char *path;
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.instances = 0;
    cfg.max_batch_size = p->spec.max_batch_size;
    cfg.max_queue_delay_us = (uint64_t)p->spec.max_queue_delay_us;
    cs_status rc = cs_registry_artifact(d->o.registry, p->spec.model, version, &a, &v, &path, err);
    if (rc == CS_OK) rc = cs_runtime_load(d->o.rt, p->spec.name, version, path, &cfg, err);
    if (rc == CS_ERR_EXISTS) rc = CS_OK; /* loaded before (a restart of this pass): adopt it */
    cs_arena_free(&a);
    cs_rt_model *m = rc == CS_OK ? cs_runtime_acquire(d->o.rt, p->spec.name, version) : NULL;
    if (!m) {
        if (rc == CS_OK) cs_error_set(err, CS_ERR_SHUTDOWN, "version %s was unloaded", version);
        return NULL;
    }
    pthread_mutex_lock(&d->mu);
    *free_slot = (slot){.m = m, .wanted = -1};
    snprintf(free_slot->version, VERSION_SZ, "%.23s", version);
    pthread_mutex_unlock(&d->mu);
    cs_log(CS_LOG_INFO, "deployment version loaded", "deployment", p->spec.name, "version", version,
           NULL);
    return free_slot;
}

/* Ready instances of a slot, from the runtime. */
/* Up to CS_DEPLOY_MAX_INST instances of a slot into *info (cs_malloc'd: the records are
 * large); returns how many, 0 on out of memory. */
static int list_instances(const slot *s, cs_rt_instance_info **info)
{
    *info = cs_malloc(CS_DEPLOY_MAX_INST * sizeof **info);
    int n = *info ? cs_rt_model_instances(s->m, *info, CS_DEPLOY_MAX_INST) : 0;
    return n < CS_DEPLOY_MAX_INST ? n : CS_DEPLOY_MAX_INST;
}

static int count_ready(const slot *s)
{
    cs_rt_instance_info *info;
    int n = list_instances(s, &info), ready = 0;
    for (int i = 0; i < n; i++) ready += info[i].state == CS_RT_INSTANCE_READY;
    cs_free(info);
    return ready;
}

static void claim_name(const dep *p, const slot *s, int n, char *out, size_t cap)
{
    snprintf(out, cap, "%s-v%s-%d", p->spec.name, s->version, n);
}

/* Frees the devices of instance i's claim, if it has one. */
static void release_claim(cs_deployer *d, const dep *p, const slot *s, int i)
{
    if (!s->claims[i] || !d->o.devices) return;
    char name[CS_DEPLOY_NAME_MAX + 48];
    claim_name(p, s, s->claims[i], name, sizeof name);
    cs_error err;
    if (cs_placement_release(d->o.devices, name, &err) != CS_OK)
        cs_log(CS_LOG_WARN, "claim not released", "claim", name, "error", err.msg, NULL);
}

static void set_reason(cs_deployer *d, dep *p, const slot *s, const char *what, const char *msg)
{
    pthread_mutex_lock(&d->mu);
    snprintf(p->reason, sizeof p->reason, "instance %d of version %s %s: %.300s", s->n_ids + 1,
             s->version, what, msg);
    pthread_mutex_unlock(&d->mu);
}

/* Adds or removes instances on s until it has `want`; the first failure to add is the
 * deployment's reason. With resources.devices, each instance first gets a claim of its own
 * from the allocator (CPU cores to pin its threads to), released when the instance goes. */
static void scale_slot(cs_deployer *d, dep *p, slot *s, int want)
{
    while (s->n_ids < want) {
        cs_error err;
        cs_rt_instance_opts io = {0};
        cs_placement pl = {0};
        int id, claim = 0;
        if (p->n_reqs && d->o.devices) {
            char name[CS_DEPLOY_NAME_MAX + 48];
            claim_name(p, s, claim = ++p->next_claim, name, sizeof name);
            if (cs_placement_claim(d->o.devices, name, p->reqs, p->n_reqs, &pl, &err) != CS_OK) {
                cs_placement_free(&pl);
                set_reason(d, p, s, "cannot be placed", err.msg);
                return;
            }
            io.cpus = pl.cpus;
            io.n_cpus = (int)pl.n_cpus;
        }
        cs_status rc = cs_rt_model_add_instance(s->m, &io, &id, &err);
        cs_placement_free(&pl);
        if (rc != CS_OK) {
            s->claims[s->n_ids] = claim;
            release_claim(d, p, s, s->n_ids);
            set_reason(d, p, s, "cannot start", err.msg);
            return;
        }
        pthread_mutex_lock(&d->mu);
        s->claims[s->n_ids] = claim;
        s->ids[s->n_ids++] = id;
        s->ready = count_ready(s);
        if (p->poked && s->ready > 0) { /* a request was waiting: that was a cold start */
            if (p->m_cold) cs_metric_observe(p->m_cold, (double)(cs_now_ns() - p->poked_ns) / 1e9);
            p->poked = false;
        }
        pthread_mutex_unlock(&d->mu);
    }
    while (s->n_ids > want) {
        cs_error err;
        int id = s->ids[s->n_ids - 1];
        pthread_mutex_lock(&d->mu);
        s->n_ids--;
        pthread_mutex_unlock(&d->mu);
        if (cs_rt_model_remove_instance(s->m, id, &err) != CS_OK)
            cs_log(CS_LOG_WARN, "instance not removed", "deployment", p->spec.name, "version",
                   s->version, "error", err.msg, NULL);
        release_claim(d, p, s, s->n_ids);
    }
}

/* Drains and unloads a slot that gets no traffic and is no longer wanted. */
static void unload_slot(cs_deployer *d, dep *p, slot *s)
{
    cs_rt_model *m = s->m;
    char version[VERSION_SZ];
    snprintf(version, sizeof version, "%s", s->version);
    slot gone = *s;
    pthread_mutex_lock(&d->mu);
    *s = (slot){0};
    pthread_mutex_unlock(&d->mu);
    cs_rt_model_release(m);
    cs_error err;
    if (cs_runtime_unload(d->o.rt, p->spec.name, version, &err) == CS_OK)
        cs_log(CS_LOG_INFO, "deployment version unloaded", "deployment", p->spec.name, "version",
               version, NULL);
    for (int i = 0; i < gone.n_ids; i++) release_claim(d, p, &gone, i); /* after the drain */
}

static void event(cs_deployer *d, dep *p, const char *action, json_t *detail);

/* Self-healing: FAILED instances (an engine error left their session unusable) are
 * forgotten and replaced, no sooner than the back-off Kubernetes gives a crashing container:
 * 10 s, doubling to 5 min, back to 10 s after 10 min without a failure. */
static void heal(cs_deployer *d, dep *p, slot *s, int64_t now_ms)
{
    cs_rt_instance_info *info;
    int n = list_instances(s, &info);
    for (int i = 0; i < n; i++) {
        if (info[i].state != CS_RT_INSTANCE_FAILED) continue;
        cs_error err;
        cs_rt_model_remove_instance(s->m, info[i].id, &err);
        for (int j = 0; j < s->n_ids; j++)
            if (s->ids[j] == info[i].id) release_claim(d, p, s, j);
        pthread_mutex_lock(&d->mu);
        for (int j = 0; j < s->n_ids; j++)
            if (s->ids[j] == info[i].id) {
                s->ids[j] = s->ids[--s->n_ids];
                s->claims[j] = s->claims[s->n_ids];
            }
        s->restarts++;
        if (now_ms - s->last_failure_ms >= 10 * 60 * 1000) s->backoff_ms = 0;
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 10000;
        if (s->backoff_ms > 300000) s->backoff_ms = 300000;
        s->retry_at_ms = now_ms + s->backoff_ms;
        s->last_failure_ms = now_ms;
        pthread_mutex_unlock(&d->mu);
        event(d, p, "deployment.instance_failed",
              json_pack("{s:s, s:i, s:s, s:I}", "version", s->version, "instance", info[i].id,
                        "reason", info[i].reason, "retry_in_ms", (json_int_t)s->backoff_ms));
    }
    cs_free(info);
}

static void event(cs_deployer *d, dep *p, const char *action, json_t *detail)
{
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(detail);
    cs_error err;
    if (cs_registry_deployment_event(d->o.registry, p->spec.name, action, text, &err) != CS_OK)
        cs_log(CS_LOG_WARN, "deployment event not recorded", "deployment", p->spec.name, "error",
               err.msg, NULL);
    free(text);
}

static cs_kpa_config kpa_config(const cs_deploy_spec *s)
{
    cs_kpa_config c = cs_kpa_config_default(s->container_concurrency);
    c.target = s->target_concurrency;
    c.stable_window_ms = s->stable_window_ms;
    c.panic_window_pct = s->panic_window_pct;
    c.panic_threshold_pct = s->panic_threshold_pct;
    c.max_scale_up_rate = s->max_scale_up_rate;
    c.max_scale_down_rate = s->max_scale_down_rate;
    c.scale_to_zero_grace_ms = s->scale_to_zero_grace_ms;
    c.min = s->min;
    c.max = s->max;
    return c;
}

/* The autoscaler's step: one sample each pass, one decision every second pass (and at once
 * when a request is waiting at zero). */
/* Requests running or queued over the deployment's versions now. */
static double concurrency(const dep *p)
{
    double conc = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0])
            conc += cs_rt_model_in_flight(p->s[i].m) + cs_rt_model_queue_depth(p->s[i].m);
    return conc;
}

static void autoscale(cs_deployer *d, dep *p, int64_t now_ms, bool poked)
{
    double conc = (p->conc_sum + concurrency(p)) / (p->conc_n + 1);
    p->conc_sum = 0;
    p->conc_n = 0;
    int ready = 0;
    for (int i = 0; i < MAX_SLOTS; i++) ready += p->s[i].version[0] ? p->s[i].ready : 0;
    cs_kpa_sample(&p->kpa, now_ms, conc);
    int before = p->desired;
    if (++p->ticks % 2 == 0 || poked) p->desired = cs_kpa_tick(&p->kpa, now_ms, ready);
    if (poked && p->desired < 1 && (p->spec.max == 0 || p->spec.max >= 1)) {
        p->desired = 1;
        p->kpa.desired = 1;
    }
    if (p->desired != before)
        event(d, p, "deployment.scaled",
              json_pack("{s:i, s:i, s:f, s:b}", "from", before, "to", p->desired, "concurrency",
                        conc, "panic", p->kpa.panic));
}

/* The canary's counters now: successes, failures and latency buckets. */
static void canary_counts(const slot *s, uint64_t *ok, uint64_t *fail, uint64_t *b,
                          const double **bounds, int *nb)
{
    cs_rt_stats st;
    cs_rt_model_stats(s->m, &st);
    *ok = st.success.count;
    *fail = st.fail.count;
    *nb = cs_metric_buckets(cs_rt_model_latency(s->m), b, RO_BUCKETS, bounds);
    if (*nb > RO_BUCKETS) *nb = 0; /* not ours to read: no latency check */
}

static void ro_snapshot(rollout *ro, const slot *s)
{
    const double *bounds;
    int nb;
    memset(ro->b0, 0, sizeof ro->b0);
    ro->ok0 = ro->fail0 = 0;
    if (s) canary_counts(s, &ro->ok0, &ro->fail0, ro->b0, &bounds, &nb);
}

/* One analysis interval of the canary, as Flagger's checks: the request success rate (the
 * runtime's successes over its answers) and the p99 latency from its request histogram. */
static void ro_check(cs_deployer *d, dep *p, rollout *ro, const slot *s, int64_t now_ms)
{
    const cs_deploy_spec *sp = &p->spec;
    uint64_t ok = 0, fail = 0, b[RO_BUCKETS] = {0};
    const double *bounds = NULL;
    int nb = 0;
    if (s) canary_counts(s, &ok, &fail, b, &bounds, &nb);
    uint64_t n = ok - ro->ok0 + fail - ro->fail0;
    for (int i = 0; i < nb; i++) b[i] -= ro->b0[i];
    double rate = n ? 100.0 * (double)(ok - ro->ok0) / (double)n : NAN;
    double p99 = n && nb ? 1000 * cs_metric_quantile(0.99, b, nb, bounds) : NAN;
    char why[200] = "";
    if (!n && sp->no_traffic == CS_DEPLOY_NO_TRAFFIC_FAIL)
        snprintf(why, sizeof why, "no requests reached the canary in an interval");
    else if (!n && sp->no_traffic == CS_DEPLOY_NO_TRAFFIC_HOLD)
        ro->step_at_ms += sp->interval_ms; /* the pause waits for evidence */
    else if (n && rate < sp->success_rate_min)
        snprintf(why, sizeof why, "success rate %.2f%% is below %g%%", rate, sp->success_rate_min);
    else if (n && p99 > sp->p99_max_ms)
        snprintf(why, sizeof why, "p99 latency %.1f ms is above %g ms", p99, sp->p99_max_ms);
    if (why[0]) {
        ro->failed++;
        snprintf(ro->reason, sizeof ro->reason, "check %d of %d failed: %s", ro->failed,
                 sp->threshold, why);
    }
    ro->last_rate = rate;
    ro->last_p99_ms = p99;
    ro->last_n = n;
    ro->check_at_ms = now_ms + sp->interval_ms;
    ro_snapshot(ro, s);
    if (why[0])
        event(d, p, "deployment.canary_check_failed",
              json_pack("{s:s, s:s, s:i}", "canary", ro->canary, "reason", why, "failed",
                        ro->failed));
}

/* Walks the steps (a setWeight takes effect at once, a pause waits) and the analysis; ends
 * the rollout when the checks fail threshold times (rollback) or the steps run out
 * (promotion). Caller: the controller, without mu, on its own copy of the rollout. */
static void ro_progress(cs_deployer *d, dep *p, rollout *ro, int64_t now_ms)
{
    const cs_deploy_spec *sp = &p->spec;
    slot *c = find_slot(p, ro->canary);
    if (c && c->weight > 0 && now_ms >= ro->check_at_ms) ro_check(d, p, ro, c, now_ms);
    if (ro->failed >= sp->threshold) {
        ro->phase = RO_FAILED;
        ro->weight = 0;
        event(d, p, "deployment.rollout_failed",
              json_pack("{s:s, s:s, s:s}", "stable", ro->stable, "canary", ro->canary, "reason",
                        ro->reason));
        return;
    }
    while (ro->step < sp->n_steps) {
        const cs_deploy_step *st = &sp->steps[ro->step];
        if (st->set_weight >= 0) {
            ro->weight = st->set_weight;
        } else if (now_ms - ro->step_at_ms < st->pause_ms || (c && c->weight != ro->weight)) {
            return; /* pausing, or the weight has not taken effect yet */
        }
        ro->step++;
        ro->step_at_ms = now_ms;
    }
    ro->phase = RO_SUCCEEDED;
    ro->weight = 100;
    snprintf(ro->reason, sizeof ro->reason, "promoted: every step passed");
    event(d, p, "deployment.rollout_succeeded",
          json_pack("{s:s, s:s}", "from", ro->stable, "to", ro->canary));
    snprintf(ro->stable, sizeof ro->stable, "%s", ro->canary);
}

/* Canary strategy, one traffic target resolving to `target`: starts, advances or ends a
 * rollout; reconcile turns ro's stable, canary and weight into wanted percents. */
static void ro_step(cs_deployer *d, dep *p, rollout *ro, const char *target, int64_t now_ms)
{
    const slot *served = NULL;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && p->s[i].weight > 0 &&
            (!served || p->s[i].weight > served->weight))
            served = &p->s[i];
    bool moving = ro->phase == RO_PROGRESSING;
    if (moving && !strcmp(target, ro->stable)) { /* moved back: nothing to roll out */
        ro->phase = RO_NONE;
        snprintf(ro->reason, sizeof ro->reason, "the target went back to version %s", target);
        return;
    }
    bool start = moving ? strcmp(target, ro->canary) != 0
                        : served && strcmp(target, served->version) &&
                              !(ro->phase == RO_FAILED && !strcmp(target, ro->canary));
    if (start) {
        char stable[VERSION_SZ];
        snprintf(stable, sizeof stable, "%s", moving ? ro->stable : served->version);
        *ro = (rollout){.phase = RO_PROGRESSING,
                        .step_at_ms = now_ms,
                        .check_at_ms = now_ms + p->spec.interval_ms};
        snprintf(ro->stable, sizeof ro->stable, "%s", stable);
        snprintf(ro->canary, sizeof ro->canary, "%s", target);
        ro_snapshot(ro, find_slot(p, target));
        event(d, p, "deployment.rollout_started",
              json_pack("{s:s, s:s}", "stable", ro->stable, "canary", ro->canary));
    }
    if (ro->phase == RO_PROGRESSING) ro_progress(d, p, ro, now_ms);
}

/* One pass over a deployment; see the top of this file. */
static void reconcile(cs_deployer *d, dep *p, int64_t now_ms, bool poked)
{
    pthread_mutex_lock(&d->mu);
    if (p->has_next) {
        cs_deploy_spec_free(&p->spec);
        p->spec = p->next;
        p->has_next = false;
        cs_kpa_config c = kpa_config(&p->spec);
        p->kpa.cfg = c;
        p->reqs_ready = false;
    }
    int64_t generation = p->generation;
    pthread_mutex_unlock(&d->mu);
    if (!p->reqs_ready) { /* checked at apply: this cannot fail but for memory */
        cs_error err;
        cs_arena_free(&p->req_arena);
        cs_arena_init(&p->req_arena, 4096);
        p->n_reqs = 0;
        if (p->spec.device_requests &&
            cs_placement_parse_requests(p->spec.device_requests, "spec.resources.devices.requests",
                                        &p->req_arena, &p->reqs, &p->n_reqs, &err) != CS_OK)
            p->n_reqs = 0;
        p->reqs_ready = true;
    }
    /* 1. Resolve the targets; a failure keeps what is served and becomes the reason. */
    char versions[CS_DEPLOY_MAX_TARGETS][VERSION_SZ];
    cs_error err;
    char reason[512] = "";
    int n = p->spec.n_traffic;
    for (int i = 0; i < n; i++)
        if (resolve(d, p->spec.model, &p->spec.traffic[i], versions[i], &err) != CS_OK) {
            snprintf(reason, sizeof reason, "%.250s", err.msg);
            n = 0; /* leave the slots as they are */
        }
    for (int i = 0; i < n; i++)
        if (!find_slot(p, versions[i]) && !load_slot(d, p, versions[i], &err)) {
            snprintf(reason, sizeof reason, "version %s cannot be loaded: %.200s", versions[i],
                     err.msg);
            n = 0;
        }
    bool canary = n == 1 && p->spec.strategy == CS_DEPLOY_CANARY;
    rollout ro = p->ro; /* the controller's copy: the status reads p->ro under mu */
    if (canary) ro_step(d, p, &ro, versions[0], now_ms);
    pthread_mutex_lock(&d->mu);
    p->ro = ro;
    if (canary && (p->ro.phase == RO_PROGRESSING || p->ro.phase == RO_FAILED) &&
        find_slot(p, p->ro.stable)) {
        /* During a rollout, and after a rollback while the target still names the failed
         * canary, the stable version keeps the rest. */
        for (int i = 0; i < MAX_SLOTS; i++) p->s[i].wanted = -1;
        bool progressing = p->ro.phase == RO_PROGRESSING;
        find_slot(p, p->ro.stable)->wanted = progressing ? 100 - p->ro.weight : 100;
        slot *c = progressing ? find_slot(p, p->ro.canary) : NULL;
        if (c) c->wanted = p->ro.weight;
    } else if (n) {
        for (int i = 0; i < MAX_SLOTS; i++) p->s[i].wanted = -1;
        for (int i = 0; i < n; i++) {
            slot *s = find_slot(p, versions[i]);
            s->wanted = (s->wanted < 0 ? 0 : s->wanted) + p->spec.traffic[i].percent;
        }
    }
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    pthread_mutex_unlock(&d->mu);

    /* 2. How many instances, shared out over the wanted slots. */
    autoscale(d, p, now_ms, poked);
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (!s->version[0]) continue;
        /* A slot on its way out keeps its instances: the unload drains them. */
        int want = s->wanted < 0 ? s->n_ids : 0;
        if (s->wanted > 0 && p->desired > 0) want = (int)ceil(p->desired * s->wanted / 100.0);
        heal(d, p, s, now_ms);
        if (now_ms >= s->retry_at_ms) scale_slot(d, p, s, want);
    }

    /* 3. Routing: the wanted percents once every wanted slot with traffic can serve (or
     * nothing can: at zero, requests wait in the new version's queue as well as any). */
    bool all_ready = true, any_ready = false;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (!s->version[0]) continue;
        s->ready = count_ready(s);
        any_ready |= s->ready > 0;
        if (s->wanted > 0 && s->ready == 0 && p->desired > 0) all_ready = false;
    }
    bool switch_now = all_ready || !any_ready || p->reason[0];
    if (switch_now)
        for (int i = 0; i < MAX_SLOTS; i++)
            if (p->s[i].version[0]) p->s[i].weight = p->s[i].wanted > 0 ? p->s[i].wanted : 0;
    int ready = 0;
    for (int i = 0; i < MAX_SLOTS; i++) ready += p->s[i].version[0] ? p->s[i].ready : 0;
    if (ready > 0) p->poked = false;
    if (p->m_desired) cs_metric_set(p->m_desired, p->desired);
    if (p->m_ready) cs_metric_set(p->m_ready, ready);
    if (p->m_panic) cs_metric_set(p->m_panic, p->kpa.panic);
    pthread_mutex_unlock(&d->mu);

    /* 4. Slots nobody wants and nobody is routed to: drain and unload. */
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && p->s[i].wanted < 0 && p->s[i].weight == 0)
            unload_slot(d, p, &p->s[i]);
    pthread_mutex_lock(&d->mu);
    p->passed = generation;
    pthread_cond_broadcast(&d->passed);
    pthread_mutex_unlock(&d->mu);
}

static void dep_free(cs_deployer *d, dep *p)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0]) unload_slot(d, p, &p->s[i]); /* drains the queue first */
    cs_deploy_spec_free(&p->spec);
    cs_arena_free(&p->req_arena);
    cs_free(p);
}

/* The controller thread: a pass over every deployment each tick, or at once when kicked;
 * deleted deployments are drained and freed here, after any pass that was using them. */
static void *controller(void *arg)
{
    cs_deployer *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        /* A snapshot of the names: reconcile runs without mu. */
        int n = (int)d->deps.len, k = 0;
        char(*names)[CS_DEPLOY_NAME_MAX + 1] = cs_malloc((size_t)(n ? n : 1) * sizeof *names);
        bool *poked = cs_malloc((size_t)(n ? n : 1) * sizeof *poked);
        size_t it = 0;
        const char *key;
        void *v;
        while (names && poked && cs_map_next(&d->deps, &it, &key, &v)) {
            snprintf(names[k], sizeof names[k], "%s", key);
            poked[k++] = ((dep *)v)->poked;
        }
        pthread_mutex_unlock(&d->mu);
        int64_t now_ms = (int64_t)(cs_now_ns() / 1000000);
        for (int i = 0; i < k; i++) {
            pthread_mutex_lock(&d->mu);
            dep *p = cs_map_get(&d->deps, names[i]);
            pthread_mutex_unlock(&d->mu);
            /* Only this thread removes deps from the map, so p stays valid. */
            if (p) reconcile(d, p, now_ms, poked[i]);
        }
        cs_free(names);
        cs_free(poked);
        pthread_mutex_lock(&d->mu);
        while (d->deleted.len) {
            dep *p = *(dep **)cs_vec_at(&d->deleted, d->deleted.len - 1);
            d->deleted.len--;
            pthread_mutex_unlock(&d->mu);
            dep_free(d, p);
            pthread_mutex_lock(&d->mu);
        }
        /* Until the next tick: ten concurrency readings, so that the tick's sample is an
         * average over the second (as Knative's queue-proxy reports it), not one instant. */
        uint64_t tick_end = cs_now_ns() + (uint64_t)d->o.tick_ms * 1000000;
        while (!d->kicked && !d->stop && cs_now_ns() < tick_end) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (int64_t)d->o.tick_ms * 100000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&d->wake, &d->mu, &ts);
            it = 0;
            while (cs_map_next(&d->deps, &it, &key, &v)) {
                ((dep *)v)->conc_sum += concurrency(v);
                ((dep *)v)->conc_n++;
            }
        }
        d->kicked = false;
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* --- the public side ----------------------------------------------------------------- */

static void kick(cs_deployer *d) /* caller holds mu */
{
    d->kicked = true;
    pthread_cond_signal(&d->wake);
}

/* A new dep for spec (taken over), registered in the map under mu. */
static cs_status add_dep(cs_deployer *d, cs_deploy_spec *spec, int64_t generation, cs_error *err)
{
    dep *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    p->spec = *spec;
    p->generation = generation;
    cs_arena_init(&p->req_arena, 4096);
    cs_kpa_config c = kpa_config(spec);
    cs_kpa_init(&p->kpa, &c, (int64_t)(cs_now_ns() / 1000000));
    p->desired = p->kpa.desired;
    const char *const label[] = {spec->name};
    if (d->f_desired) {
        p->m_desired = cs_metric_get(d->f_desired, label);
        p->m_ready = cs_metric_get(d->f_ready, label);
        p->m_panic = cs_metric_get(d->f_panic, label);
        p->m_cold = cs_metric_get(d->f_cold, label);
    }
    if (cs_map_put(&d->deps, spec->name, p) != CS_OK) {
        cs_free(p);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    *spec = (cs_deploy_spec){0};
    kick(d);
    return CS_OK;
}

static void register_metrics(cs_deployer *d)
{
    if (!d->o.metrics) return;
    static const char *const labels[] = {"deployment", NULL};
    static const double cold[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    d->f_desired =
        cs_metrics_family(d->o.metrics, CS_METRIC_GAUGE, "capstan_deployment_desired_instances",
                          "Instances the autoscaler wants", labels, NULL, 0);
    d->f_ready =
        cs_metrics_family(d->o.metrics, CS_METRIC_GAUGE, "capstan_deployment_ready_instances",
                          "Instances that are model-ready", labels, NULL, 0);
    d->f_panic = cs_metrics_family(d->o.metrics, CS_METRIC_GAUGE, "capstan_deployment_panic_mode",
                                   "1 while the autoscaler is in panic mode", labels, NULL, 0);
    d->f_cold =
        cs_metrics_family(d->o.metrics, CS_METRIC_HISTOGRAM, "capstan_cold_start_duration_seconds",
                          "From a request meeting no Ready instance to the first Ready instance",
                          labels, cold, (int)(sizeof cold / sizeof cold[0]));
    if (!d->f_desired || !d->f_ready || !d->f_panic || !d->f_cold)
        d->f_desired = d->f_ready = d->f_panic = d->f_cold = NULL;
}

cs_status cs_deployer_new(const cs_deployer_options *o, cs_deployer **out, cs_error *err)
{
    cs_deployer *d = cs_calloc(1, sizeof *d);
    if (!d) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    d->o = *o;
    if (d->o.tick_ms <= 0) d->o.tick_ms = 1000;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->wake, NULL);
    pthread_cond_init(&d->passed, NULL);
    cs_map_init(&d->deps);
    cs_vec_init(&d->deleted, sizeof(dep *));
    register_metrics(d);

    /* What was declared before the restart. A spec that no longer parses (a newer server's
     * field, a hand-edited store) is skipped with a log line, not fatal. */
    cs_arena a;
    cs_arena_init(&a, 1 << 14);
    cs_registry_deployment *items;
    int n;
    cs_status rc = cs_registry_deployment_list(o->registry, &a, &items, &n, err);
    for (int i = 0; rc == CS_OK && i < n; i++) {
        json_t *doc = json_loads(items[i].spec, 0, NULL);
        cs_deploy_spec spec;
        cs_error perr;
        if (doc && cs_deploy_spec_parse(doc, &spec, &perr) == CS_OK) {
            pthread_mutex_lock(&d->mu);
            rc = add_dep(d, &spec, items[i].generation, err);
            pthread_mutex_unlock(&d->mu);
            if (rc != CS_OK) cs_deploy_spec_free(&spec);
        } else {
            cs_log(CS_LOG_ERROR, "stored deployment skipped", "deployment", items[i].name, "error",
                   doc ? perr.msg : "not JSON", NULL);
        }
        json_decref(doc);
    }
    cs_arena_free(&a);
    if (rc == CS_OK && pthread_create(&d->thread, NULL, controller, d) != 0)
        rc = cs_error_set(err, CS_ERR_INTERNAL, "cannot start the deployer's thread");
    if (rc != CS_OK) {
        size_t it = 0;
        const char *key;
        void *v;
        while (cs_map_next(&d->deps, &it, &key, &v)) dep_free(d, v);
        cs_map_free(&d->deps);
        cs_vec_free(&d->deleted);
        cs_free(d);
        return rc;
    }
    *out = d;
    return CS_OK;
}

void cs_deployer_free(cs_deployer *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    kick(d);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&d->deps, &it, &key, &v)) {
        dep *p = v;
        if (p->has_next) cs_deploy_spec_free(&p->next);
        dep_free(d, p);
    }
    for (size_t i = 0; i < d->deleted.len; i++) dep_free(d, *(dep **)cs_vec_at(&d->deleted, i));
    cs_map_free(&d->deps);
    cs_vec_free(&d->deleted);
    pthread_cond_destroy(&d->wake);
    pthread_cond_destroy(&d->passed);
    pthread_mutex_destroy(&d->mu);
    cs_free(d);
}

/* The canonical text of spec, as the registry stores it (free with free); NULL when out of
 * memory. */
static char *spec_text(const cs_deploy_spec *spec)
{
    json_t *doc = cs_deploy_spec_json(spec);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    return text;
}

/* Hands spec (taken over) to p's controller as its next spec, or adds it as a new
 * deployment when p is NULL. Caller holds mu. */
static cs_status adopt(cs_deployer *d, dep *p, cs_deploy_spec *spec, int64_t generation,
                       cs_error *err)
{
    if (!p) return add_dep(d, spec, generation, err);
    if (p->has_next) cs_deploy_spec_free(&p->next);
    p->next = *spec;
    p->has_next = true;
    p->generation = generation;
    *spec = (cs_deploy_spec){0};
    kick(d);
    return CS_OK;
}

/* Takes deployment name out of the map for the controller to drain and free. Caller holds
 * mu. */
static void forget(cs_deployer *d, const char *name)
{
    dep *p = cs_map_get(&d->deps, name);
    if (p && cs_vec_push(&d->deleted, &p) == CS_OK) {
        cs_map_del(&d->deps, name);
        for (int i = 0; i < MAX_SLOTS; i++) p->s[i].weight = 0;
        kick(d);
    }
}

/* Stores spec (its canonical form) and hands it to the controller; spec is taken over. */
static cs_status store_and_apply(cs_deployer *d, cs_deploy_spec *spec, const char *actor,
                                 bool *created, cs_error *err)
{
    char *text = spec_text(spec);
    if (!text) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_deployment rec;
    bool changed;
    cs_status rc = cs_registry_deployment_put(d->o.registry, spec->name, text, actor, &a, &rec,
                                              created, &changed, err);
    free(text);
    pthread_mutex_lock(&d->mu);
    dep *p = rc == CS_OK ? cs_map_get(&d->deps, spec->name) : NULL;
    if (rc == CS_OK && (!p || changed)) rc = adopt(d, p, spec, rec.generation, err);
    /* Wait (briefly) for the controller's first pass over this generation, so that the
     * answer's status shows its versions loaded and a request right after finds them. */
    uint64_t until = cs_now_ns() + 10ull * 1000000000;
    while (rc == CS_OK && (p = cs_map_get(&d->deps, rec.name)) && p->passed < rec.generation &&
           cs_now_ns() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&d->passed, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    cs_arena_free(&a);
    cs_deploy_spec_free(spec);
    return rc;
}

cs_status cs_deployer_apply(cs_deployer *d, const cs_deploy_spec *spec, const char *actor,
                            bool *created, cs_error *err)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_model m;
    cs_status rc = cs_registry_model_get(d->o.registry, spec->model, &a, &m, err);
    cs_arena_free(&a);
    if (rc == CS_ERR_NOT_FOUND)
        return cs_error_set(err, rc, "spec.model: no model '%s' in the registry", spec->model);
    for (int i = 0; rc == CS_OK && i < spec->n_traffic; i++) {
        char version[VERSION_SZ];
        if (resolve(d, spec->model, &spec->traffic[i], version, err) != CS_OK)
            return cs_error_set(err, CS_ERR_NOT_FOUND, "spec.traffic[%d]: %s", i, err->msg);
    }
    if (rc != CS_OK) return rc;
    if (spec->device_requests) {
        cs_arena ra;
        cs_arena_init(&ra, 4096);
        cs_dra_request *reqs;
        size_t n;
        rc = cs_placement_parse_requests(spec->device_requests, "spec.resources.devices.requests",
                                         &ra, &reqs, &n, err);
        cs_arena_free(&ra);
        if (rc != CS_OK) return rc;
        if (!d->o.devices)
            return cs_error_set(err, CS_ERR_INVALID,
                                "spec.resources: this server has no devices to allocate");
    }
    /* A deep copy the deployer owns: the canonical JSON parsed back. */
    json_t *doc = cs_deploy_spec_json(spec);
    cs_deploy_spec own;
    rc = doc ? cs_deploy_spec_parse(doc, &own, err)
             : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    json_decref(doc);
    return rc == CS_OK ? store_and_apply(d, &own, actor, created, err) : rc;
}

cs_status cs_deployer_scale(cs_deployer *d, const char *name, int min, int max, const char *actor,
                            cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    json_t *doc = p ? cs_deploy_spec_json(p->has_next ? &p->next : &p->spec) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (!p) return cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    json_t *inst = json_object_get(json_object_get(doc, "spec"), "instances");
    if (min >= 0) json_object_set_new(inst, "min", json_integer(min));
    if (max >= 0) json_object_set_new(inst, "max", json_integer(max));
    cs_deploy_spec spec;
    cs_status rc = doc ? cs_deploy_spec_parse(doc, &spec, err)
                       : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    json_decref(doc);
    bool created;
    return rc == CS_OK ? store_and_apply(d, &spec, actor, &created, err) : rc;
}

cs_status cs_deployer_delete(cs_deployer *d, const char *name, const char *actor, cs_error *err)
{
    cs_status rc = cs_registry_deployment_delete(d->o.registry, name, actor, err);
    if (rc != CS_OK) return rc;
    pthread_mutex_lock(&d->mu);
    forget(d, name);
    pthread_mutex_unlock(&d->mu);
    return CS_OK;
}

/* Makes name what rec (NULL: nothing stored) says: adopts a stored spec that differs from
 * the one held, forgets one no longer stored. */
static cs_status reload_one(cs_deployer *d, const char *name, const cs_registry_deployment *rec,
                            cs_error *err)
{
    cs_deploy_spec spec = {0};
    cs_status rc = CS_OK;
    if (rec) {
        json_t *doc = json_loads(rec->spec, 0, NULL);
        rc = doc ? cs_deploy_spec_parse(doc, &spec, err)
                 : cs_error_set(err, CS_ERR_IO, "deployment '%s': stored spec is not JSON", name);
        json_decref(doc);
    }
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    if (!rec) {
        forget(d, name);
    } else if (rc == CS_OK) {
        char *held = p ? spec_text(p->has_next ? &p->next : &p->spec) : NULL;
        if (!p || !held || strcmp(held, rec->spec) != 0)
            rc = adopt(d, p, &spec, rec->generation, err);
        free(held);
    }
    pthread_mutex_unlock(&d->mu);
    cs_deploy_spec_free(&spec);
    return rc;
}

cs_status cs_deployer_reload(cs_deployer *d, const char *name, cs_error *err)
{
    cs_arena a;
    cs_arena_init(&a, 1 << 14);
    cs_registry_deployment *items = NULL, one;
    int n = 0;
    cs_status rc;
    if (name) {
        rc = cs_registry_deployment_get(d->o.registry, name, &a, &one, err);
        if (rc == CS_OK || rc == CS_ERR_NOT_FOUND)
            rc = reload_one(d, name, rc == CS_OK ? &one : NULL, err);
        cs_arena_free(&a);
        return rc;
    }
    rc = cs_registry_deployment_list(d->o.registry, &a, &items, &n, err);
    for (int i = 0; rc == CS_OK && i < n; i++) rc = reload_one(d, items[i].name, &items[i], err);
    /* Then those held that are no longer stored (n x held compares: deployments are few). */
    pthread_mutex_lock(&d->mu);
    size_t it = 0;
    const char *key;
    void *v;
    cs_vec gone;
    cs_vec_init(&gone, sizeof(const char *));
    while (rc == CS_OK && cs_map_next(&d->deps, &it, &key, &v)) {
        bool stored = false;
        for (int i = 0; i < n && !stored; i++) stored = !strcmp(items[i].name, key);
        const char *held = ((dep *)v)->spec.name; /* lives until the controller frees it */
        if (!stored && cs_vec_push(&gone, &held) != CS_OK)
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CS_OK && i < gone.len; i++)
        forget(d, *(const char **)cs_vec_at(&gone, i));
    pthread_mutex_unlock(&d->mu);
    cs_vec_free(&gone);
    cs_arena_free(&a);
    return rc;
}

bool cs_deployer_has(cs_deployer *d, const char *name)
{
    pthread_mutex_lock(&d->mu);
    bool has = cs_map_get(&d->deps, name) != NULL;
    pthread_mutex_unlock(&d->mu);
    return has;
}

/* A per-thread xorshift: the traffic split needs speed, not quality. */
static unsigned pick_percent(void)
{
    static _Thread_local uint64_t x;
    if (!x) x = cs_now_ns() | 1;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return (unsigned)(x % 100);
}

cs_status cs_deployer_acquire(cs_deployer *d, const char *name, const char *version,
                              cs_rt_model **out, uint64_t *activate_by_ns, cs_error *err)
{
    *out = NULL;
    *activate_by_ns = 0;
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    slot *s = NULL;
    if (p && version) {
        s = find_slot(p, version);
    } else if (p) {
        int total = 0, r;
        for (int i = 0; i < MAX_SLOTS; i++) total += p->s[i].version[0] ? p->s[i].weight : 0;
        r = total ? (int)(pick_percent() * (unsigned)total / 100) : 0;
        for (int i = 0; i < MAX_SLOTS && total && !s; i++)
            if (p->s[i].version[0] && p->s[i].weight > 0 && (r -= p->s[i].weight) < 0) s = &p->s[i];
    }
    cs_status rc = CS_OK;
    if (!p)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%s'", name);
    else if (!s && version)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "deployment '%s' serves no version %s", name,
                          version);
    else if (!s)
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "deployment '%s' has no version loaded yet%s%s",
                          name, p->reason[0] ? ": " : "", p->reason);
    else if (s->ready == 0 && p->reason[0] && s->n_ids == 0)
        rc =
            cs_error_set(err, CS_ERR_LIMIT, "deployment '%s' has no instance: %s", name, p->reason);
    else if (!(*out = cs_runtime_acquire(d->o.rt, name, s->version)))
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "deployment '%s' version %s was unloaded", name,
                          s->version);
    else if (s->ready == 0) {
        /* The activator: the request waits in the version's queue for a cold start. */
        *activate_by_ns = cs_now_ns() + (uint64_t)CS_DEPLOY_ACTIVATION_MS * 1000000;
        if (!p->poked) p->poked_ns = cs_now_ns();
        p->poked = true;
        kick(d);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* --- status ----------------------------------------------------------------------------- */

/* RFC 3339 UTC, to the millisecond. */
static json_t *timestamp(uint64_t wall_ns)
{
    time_t t = (time_t)(wall_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[40];
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%03uZ", (unsigned)(wall_ns / 1000000 % 1000));
    return json_string(b);
}

/* Caller holds mu. */
static json_t *dep_json(const dep *p)
{
    json_t *doc = cs_deploy_spec_json(p->has_next ? &p->next : &p->spec);
    json_t *instances = json_array(), *traffic = json_array();
    int ready = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        const slot *s = &p->s[i];
        if (!s->version[0]) continue;
        if (s->wanted > 0 || s->weight > 0)
            json_array_append_new(traffic, json_pack("{s:s, s:i, s:i}", "version", s->version,
                                                     "percent", s->weight, "wantedPercent",
                                                     s->wanted > 0 ? s->wanted : 0));
        cs_rt_instance_info *info;
        int n = list_instances(s, &info);
        for (int j = 0; j < n; j++) {
            char name[CS_DEPLOY_NAME_MAX + 48];
            snprintf(name, sizeof name, "%s-v%s-%d", p->spec.name, s->version, info[j].id);
            ready += info[j].state == CS_RT_INSTANCE_READY;
            json_t *cpus = json_array();
            for (int k = 0; k < info[j].n_cpus; k++)
                json_array_append_new(cpus, json_integer(info[j].cpus[k]));
            char claim[CS_DEPLOY_NAME_MAX + 48] = "";
            for (int k = 0; k < s->n_ids; k++)
                if (s->ids[k] == info[j].id && s->claims[k])
                    claim_name(p, s, s->claims[k], claim, sizeof claim);
            json_array_append_new(
                instances,
                json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:i, s:i, s:s}", "name", name, "claim",
                          claim[0] ? json_string(claim) : json_null(), "cpus", cpus, "version",
                          s->version, "state", cs_rt_instance_state_name(info[j].state), "since",
                          timestamp(info[j].since_ns), "restarts", s->restarts, "running",
                          info[j].running, "reason", info[j].reason));
        }
        cs_free(info);
    }
    static const char *const phases[] = {"", "Progressing", "Succeeded", "Failed"};
    const rollout *ro = &p->ro;
    json_t *rj =
        ro->phase == RO_NONE
            ? json_null()
            : json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:{s:I, s:o, s:o}}", "phase",
                        phases[ro->phase], "stable", ro->stable, "canary", ro->canary, "step",
                        ro->step, "canaryWeight", ro->weight, "failedChecks", ro->failed, "reason",
                        ro->reason, "lastCheck", "requests", (json_int_t)ro->last_n, "successRate",
                        isnan(ro->last_rate) ? json_null() : json_real(ro->last_rate), "p99Ms",
                        isnan(ro->last_p99_ms) ? json_null() : json_real(ro->last_p99_ms));
    json_object_set_new(json_object_get(doc, "metadata"), "generation",
                        json_integer(p->generation));
    json_object_set_new(doc, "status",
                        json_pack("{s:i, s:i, s:b, s:o, s:o, s:s, s:o}", "desiredInstances",
                                  p->desired, "readyInstances", ready, "panic", p->kpa.panic,
                                  "traffic", traffic, "instances", instances, "reason", p->reason,
                                  "rollout", rj));
    return doc;
}

json_t *cs_deployer_get(cs_deployer *d, const char *name, cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    json_t *j = p ? dep_json(p) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (!p)
        cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    else if (!j)
        cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    return j;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(
                      json_object_get(json_object_get(*(json_t *const *)a, "metadata"), "name")),
                  json_string_value(
                      json_object_get(json_object_get(*(json_t *const *)b, "metadata"), "name")));
}

json_t *cs_deployer_list(cs_deployer *d)
{
    json_t *items = json_array();
    pthread_mutex_lock(&d->mu);
    size_t it = 0;
    const char *key;
    void *v;
    while (items && cs_map_next(&d->deps, &it, &key, &v)) json_array_append_new(items, dep_json(v));
    pthread_mutex_unlock(&d->mu);
    size_t n = json_array_size(items);
    json_t **all = n ? cs_malloc(n * sizeof *all) : NULL;
    if (!all) return items;
    for (size_t i = 0; i < n; i++) all[i] = json_incref(json_array_get(items, i));
    qsort(all, n, sizeof *all, by_name);
    json_array_clear(items);
    for (size_t i = 0; i < n; i++) json_array_append_new(items, all[i]);
    cs_free(all);
    return items;
}

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
#include "runtime/deploy_int.h"
#include "runtime/rolling.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/name.h"
#include "obs/log.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

slot *cs__dep_find_slot(dep *p, const char *version)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && !strcmp(p->s[i].version, version)) return &p->s[i];
    return NULL;
}

void cs__dep_event(cs_deployer *d, dep *p, const char *action, json_t *detail)
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
        if (p->s[i].ext)
            conc += cs__ext_concurrency(&p->s[i]);
        else if (p->s[i].version[0])
            conc += cs_rt_model_in_flight(p->s[i].m) + cs_rt_model_queue_depth(p->s[i].m);
    return conc;
}

/* The decision is taken under mu: the status reads the desired count and the panic mode. */
static void autoscale(cs_deployer *d, dep *p, int64_t now_ms, bool poked)
{
    pthread_mutex_lock(&d->mu);
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
    pthread_mutex_unlock(&d->mu);
    if (p->desired != before)
        cs__dep_event(d, p, "deployment.scaled",
                      json_pack("{s:i, s:i, s:f, s:b}", "from", before, "to", p->desired,
                                "concurrency", conc, "panic", p->kpa.panic));
}

/* A rolling update is under way when the one target's slot is there and an old slot still
 * has instances: fills wants[] (per slot) with one step of it (rolling.c) and says true. The
 * old slots give up instances in slot order; one whose last instance is to go gets -1
 * instead: it keeps that instance, gets no more traffic, and its unload drains its queue
 * (removing the last instance first would leave queued requests with none to run them). */
static bool rolling_wants(dep *p, const char *target, int wants[MAX_SLOTS])
{
    slot *nu = cs__dep_find_slot(p, target);
    cs_rolling_view v = {.desired = p->desired};
    for (int i = 0; i < MAX_SLOTS; i++) {
        const slot *s = &p->s[i];
        wants[i] = s->n_ids;
        if (!s->version[0] || s == nu) continue;
        v.old_total += s->n_ids;
        v.old_ready += s->ready;
    }
    if (!nu || v.old_total == 0) return false;
    v.surge = cs_deploy_amount_of(p->spec.max_surge, p->desired, true);
    v.unavailable = cs_deploy_amount_of(p->spec.max_unavailable, p->desired, false);
    v.new_total = nu->n_ids;
    v.new_ready = nu->ready;
    cs_rolling_plan plan = cs_rolling_step(&v);
    int take = v.old_total - plan.old_want;
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (s == nu) {
            wants[i] = plan.new_want;
        } else if (s->version[0] && take > 0) {
            int k = take < s->n_ids ? take : s->n_ids;
            wants[i] = k == s->n_ids ? -1 : s->n_ids - k;
            take -= k;
        }
    }
    return true;
}

/* During a rolling update requests go to every Ready instance alike, old or new, as a
 * Kubernetes Service spreads them over the pods of both ReplicaSets: each slot's weight is
 * its share of the Ready instances (none for a leaving slot, wants[i] < 0), the rounding
 * remainder to the target's slot. Caller holds mu. False, changing nothing, when no Ready
 * instance is routable. */
static bool rolling_weights(dep *p, const char *target, const int wants[MAX_SLOTS])
{
    int ready = 0, given = 0;
    slot *nu = cs__dep_find_slot(p, target), *rest = NULL;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && wants[i] >= 0 && p->s[i].ready) {
            ready += p->s[i].ready;
            if (!rest || &p->s[i] == nu) rest = &p->s[i];
        }
    if (!ready) return false;
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (!s->version[0]) continue;
        s->weight = wants[i] < 0 ? 0 : 100 * s->ready / ready;
        given += s->weight;
    }
    rest->weight += 100 - given;
    return true;
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
    cs_rollout_action cmd = p->ro_cmd;
    char actor[sizeof p->ro_actor];
    snprintf(actor, sizeof actor, "%s", p->ro_actor);
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
    if (p->implicit) /* its one version is a file, not a registry version */
        snprintf(versions[0], VERSION_SZ, "%s", CS__DEP_IMPLICIT_VERSION);
    for (int i = 0; i < n && !p->implicit; i++)
        if (resolve(d, p->spec.model, &p->spec.traffic[i], versions[i], &err) != CS_OK) {
            snprintf(reason, sizeof reason, "%.250s", err.msg);
            n = 0; /* leave the slots as they are */
        }
    for (int i = 0; i < n; i++)
        if (!cs__dep_find_slot(p, versions[i]) && !cs__dep_load_slot(d, p, versions[i], &err)) {
            snprintf(reason, sizeof reason, "version %s cannot be loaded: %.200s", versions[i],
                     err.msg);
            n = 0;
        }
    bool canary = n == 1 && p->spec.strategy == CS_DEPLOY_CANARY;
    rollout ro = p->ro; /* the controller's copy: the status reads p->ro under mu */
    if (canary && cmd) cs__dep_rollout_command(d, p, &ro, cmd, actor);
    if (canary) cs__dep_rollout_step(d, p, &ro, versions[0], now_ms);
    pthread_mutex_lock(&d->mu);
    p->ro = ro;
    if (cmd == p->ro_cmd) p->ro_cmd = 0; /* done (or moot: the rollout had ended) */
    if (canary && (p->ro.phase == RO_PROGRESSING || p->ro.phase == RO_FAILED) &&
        cs__dep_find_slot(p, p->ro.stable)) {
        /* During a rollout, and after a rollback while the target still names the failed
         * canary, the stable version keeps the rest. */
        for (int i = 0; i < MAX_SLOTS; i++) p->s[i].wanted = -1;
        bool progressing = p->ro.phase == RO_PROGRESSING;
        cs__dep_find_slot(p, p->ro.stable)->wanted = progressing ? 100 - p->ro.weight : 100;
        slot *c = progressing ? cs__dep_find_slot(p, p->ro.canary) : NULL;
        if (c) c->wanted = p->ro.weight;
    } else if (n) {
        for (int i = 0; i < MAX_SLOTS; i++) p->s[i].wanted = -1;
        for (int i = 0; i < n; i++) {
            slot *s = cs__dep_find_slot(p, versions[i]);
            s->wanted = (s->wanted < 0 ? 0 : s->wanted) + p->spec.traffic[i].percent;
        }
    }
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    pthread_mutex_unlock(&d->mu);

    /* 2. How many instances, shared out over the wanted slots; a rolling update steps the
     * new version up and the old ones down instead. */
    autoscale(d, p, now_ms, poked);
    int wants[MAX_SLOTS];
    bool rolling = n == 1 && !canary && rolling_wants(p, versions[0], wants);
    int pending = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (!s->version[0]) continue;
        /* A slot on its way out keeps its instances: the unload drains them. */
        int want = s->wanted < 0 ? s->n_ids : 0;
        if (s->wanted > 0 && p->desired > 0) want = (int)ceil(p->desired * s->wanted / 100.0);
        if (rolling) want = wants[i] < 0 ? s->n_ids : wants[i];
        cs__dep_heal(d, p, s, now_ms);
        if (now_ms >= s->retry_at_ms) cs__dep_scale_slot(d, p, s, want);
        if (s->n_ids < want) pending += want - s->n_ids; /* no device fits, or backing off */
    }

    /* 3. Routing: the wanted percents once every wanted slot with traffic can serve (or
     * nothing can: at zero, requests wait in the new version's queue as well as any). */
    bool all_ready = true, any_ready = false;
    int states[CS__DEP_STATES] = {pending};
    double waiting = 0; /* requests queued on versions with no Ready instance */
    pthread_mutex_lock(&d->mu);
    p->pending = pending;
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (!s->version[0]) continue;
        cs_rt_instance_info *info;
        int k = cs__dep_instances(s, &info);
        s->ready = 0;
        for (int j = 0; j < k; j++) {
            states[1 + info[j].state]++;
            s->ready += info[j].state == CS_RT_INSTANCE_READY;
        }
        cs_free(info);
        if (s->ready == 0)
            waiting += s->ext ? cs__ext_concurrency(s) : cs_rt_model_queue_depth(s->m);
        any_ready |= s->ready > 0;
        if (s->wanted > 0 && s->ready == 0 && p->desired > 0) all_ready = false;
    }
    bool switch_now = all_ready || !any_ready || p->reason[0];
    bool rolled = rolling && rolling_weights(p, versions[0], wants);
    if (!rolled && switch_now)
        for (int i = 0; i < MAX_SLOTS; i++)
            if (p->s[i].version[0]) p->s[i].weight = p->s[i].wanted > 0 ? p->s[i].wanted : 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &p->s[i];
        if (s->version[0] && s->weight == 100 && strcmp(s->version, p->full)) {
            snprintf(p->previous, sizeof p->previous, "%s", p->full); /* what undo goes to */
            snprintf(p->full, sizeof p->full, "%s", s->version);
        }
    }
    if (states[1 + CS_RT_INSTANCE_READY] > 0) p->poked = false;
    cs__dep_metrics_publish(p, states, waiting);
    pthread_mutex_unlock(&d->mu);

    /* 4. Slots nobody wants and nobody is routed to: drain and unload. */
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0] && p->s[i].wanted < 0 && p->s[i].weight == 0)
            cs__dep_unload_slot(d, p, &p->s[i]);
    pthread_mutex_lock(&d->mu);
    p->passed = generation;
    pthread_cond_broadcast(&d->passed);
    pthread_mutex_unlock(&d->mu);
}

void cs__dep_free(cs_deployer *d, dep *p)
{
    int none[CS__DEP_STATES] = {0}; /* its series read 0 from now on */
    p->desired = 0;
    p->ro.phase = RO_NONE;
    cs__dep_metrics_publish(p, none, 0);
    for (int i = 0; i < MAX_SLOTS; i++)
        if (p->s[i].version[0]) cs__dep_unload_slot(d, p, &p->s[i]); /* drains the queue first */
    cs_deploy_spec_free(&p->spec);
    if (p->implicit) cs_free(p->implicit->path);
    cs_free(p->implicit);
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
        /* Each stays in `deleted` until it is freed: cs__dep_wait_freed waits for that. An
         * explicit deployment that goes gives its name back to an implicit one. */
        while (d->deleted.len) {
            dep *p = *(dep **)cs_vec_at(&d->deleted, 0);
            char name[CS_DEPLOY_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s", p->spec.name);
            bool explicit = !p->implicit;
            pthread_mutex_unlock(&d->mu);
            cs__dep_free(d, p);
            if (explicit) cs__dep_implicit_return(d, name);
            pthread_mutex_lock(&d->mu);
            d->deleted.len--;
            memmove(d->deleted.data, (dep **)d->deleted.data + 1, d->deleted.len * sizeof p);
            pthread_cond_broadcast(&d->passed);
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

cs_status cs__dep_add(cs_deployer *d, cs_deploy_spec *spec, int64_t generation, dep **out,
                      cs_error *err)
{
    dep *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    p->spec = *spec;
    p->generation = generation;
    cs_arena_init(&p->req_arena, 4096);
    cs_kpa_config c = kpa_config(spec);
    cs_kpa_init(&p->kpa, &c, (int64_t)(cs_now_ns() / 1000000));
    p->desired = p->kpa.desired;
    cs__dep_metrics_bind(d, p);
    if (cs_map_put(&d->deps, spec->name, p) != CS_OK) {
        cs_free(p);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    *spec = (cs_deploy_spec){0};
    if (out) *out = p;
    kick(d);
    return CS_OK;
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
    cs_map_init(&d->implicit);
    cs_vec_init(&d->deleted, sizeof(dep *));
    cs__dep_metrics_register(d);

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
            rc = cs__dep_add(d, &spec, items[i].generation, NULL, err);
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
        while (cs_map_next(&d->deps, &it, &key, &v)) cs__dep_free(d, v);
        cs_map_free(&d->deps);
        cs_map_free(&d->implicit);
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
    cs__ext_shutdown(d, true);
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&d->deps, &it, &key, &v)) {
        dep *p = v;
        if (p->has_next) cs_deploy_spec_free(&p->next);
        cs__dep_free(d, p);
    }
    for (size_t i = 0; i < d->deleted.len; i++) cs__dep_free(d, *(dep **)cs_vec_at(&d->deleted, i));
    cs__ext_shutdown(d, false);
    cs_map_free(&d->deps);
    cs__dep_implicit_free_all(d);
    cs_vec_free(&d->deleted);
    pthread_cond_destroy(&d->wake);
    pthread_cond_destroy(&d->passed);
    pthread_mutex_destroy(&d->mu);
    cs_free(d);
}

/* Waits (caller holds mu) up to 50 ms for the controller to finish a pass. */
static void wait_passed(cs_deployer *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&d->passed, &d->mu, &ts);
}

void cs__dep_wait_freed(cs_deployer *d)
{
    uint64_t until = cs_now_ns() + 60ull * 1000000000;
    while (d->deleted.len && !d->stop && cs_now_ns() < until) wait_passed(d);
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
    if (!p) return cs__dep_add(d, spec, generation, NULL, err);
    if (p->has_next) cs_deploy_spec_free(&p->next);
    p->next = *spec;
    p->has_next = true;
    p->generation = generation;
    *spec = (cs_deploy_spec){0};
    kick(d);
    return CS_OK;
}

void cs__dep_forget(cs_deployer *d, const char *name)
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
    if (p && p->implicit) { /* an explicit deployment wins: the implicit one drains first */
        cs__dep_forget(d, spec->name);
        cs__dep_wait_freed(d);
        p = cs_map_get(&d->deps, spec->name);
        changed = true;
    }
    if (rc == CS_OK && (!p || changed)) rc = adopt(d, p, spec, rec.generation, err);
    /* Wait (briefly) for the controller's first pass over this generation, so that the
     * answer's status shows its versions loaded and a request right after finds them. */
    uint64_t until = cs_now_ns() + 10ull * 1000000000;
    while (rc == CS_OK && (p = cs_map_get(&d->deps, rec.name)) && p->passed < rec.generation &&
           cs_now_ns() < until)
        wait_passed(d);
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
    pthread_mutex_lock(&d->mu);
    dep *live = cs_map_get(&d->deps, spec->name);
    bool switched = live && !live->implicit &&
                    (live->has_next ? live->next : live->spec).external != spec->external;
    pthread_mutex_unlock(&d->mu);
    if (switched) /* a version's slot is of one kind for its whole life */
        return cs_error_set(err, CS_ERR_INVALID,
                            "spec.runtime: cannot change between builtin and a command on an "
                            "existing deployment; delete it and apply again");
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

/* The deployment's spec as applied last, as canonical JSON to edit; NULL when none. */
static json_t *current_spec(cs_deployer *d, const char *name, cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    json_t *doc = p ? cs_deploy_spec_json(p->has_next ? &p->next : &p->spec) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (!p) cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    if (p && !doc) cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    return doc;
}

/* Checks an edited spec (taken) and applies it: stored, audited and reconciled. */
static cs_status reapply(cs_deployer *d, json_t *doc, const char *actor, cs_error *err)
{
    cs_deploy_spec spec;
    cs_status rc = cs_deploy_spec_parse(doc, &spec, err);
    json_decref(doc);
    if (rc != CS_OK) return rc;
    bool created;
    rc = cs_deployer_apply(d, &spec, actor, &created, err);
    cs_deploy_spec_free(&spec);
    return rc;
}

cs_status cs_deployer_scale(cs_deployer *d, const char *name, int min, int max, const char *actor,
                            cs_error *err)
{
    json_t *doc = current_spec(d, name, err);
    if (!doc) return err->code;
    json_t *inst = json_object_get(json_object_get(doc, "spec"), "instances");
    if (min >= 0) json_object_set_new(inst, "min", json_integer(min));
    if (max >= 0) json_object_set_new(inst, "max", json_integer(max));
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    bool implicit = p && p->implicit;
    pthread_mutex_unlock(&d->mu);
    if (!implicit) return reapply(d, doc, actor, err);
    /* An implicit deployment is not stored: scaled here until the next start. */
    cs_deploy_spec spec;
    cs_status rc = cs_deploy_spec_parse(doc, &spec, err);
    json_decref(doc);
    if (rc != CS_OK) return rc;
    pthread_mutex_lock(&d->mu);
    p = cs_map_get(&d->deps, name);
    if (p && p->implicit) {
        rc = adopt(d, p, &spec, p->generation + 1, err);
        cs__dep_event(d, p, "deployment.scaled_by_hand",
                      json_pack("{s:i, s:i, s:s}", "min", min, "max", max, "actor",
                                actor ? actor : "anonymous"));
    } else {
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    }
    pthread_mutex_unlock(&d->mu);
    cs_deploy_spec_free(&spec);
    return rc;
}

cs_status cs_deployer_rollout_start(cs_deployer *d, const char *name, const char *to,
                                    const char *actor, cs_error *err)
{
    char *end;
    long long v = strtoll(to, &end, 10);
    bool number = *to && !*end;
    if (number ? v < 1 : !cs_dns_label(to))
        return cs_error_set(err, CS_ERR_INVALID,
                            "to: '%.64s' is neither a version number nor an alias", to);
    pthread_mutex_lock(&d->mu);
    cs_status rc = cs__dep_implicit_refuse(cs_map_get(&d->deps, name), "rolled out", err);
    pthread_mutex_unlock(&d->mu);
    if (rc != CS_OK) return rc;
    json_t *doc = current_spec(d, name, err);
    if (!doc) return err->code;
    json_t *target = number ? json_pack("{s:I, s:i}", "version", (json_int_t)v, "percent", 100)
                            : json_pack("{s:s, s:i}", "alias", to, "percent", 100);
    json_object_set_new(json_object_get(doc, "spec"), "traffic", json_pack("[o]", target));
    return reapply(d, doc, actor, err);
}

cs_status cs_deployer_rollout(cs_deployer *d, const char *name, cs_rollout_action a,
                              const char *actor, cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    cs_status rc = CS_OK;
    if (!p)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    else if (p->ro.phase != RO_PROGRESSING)
        rc =
            cs_error_set(err, CS_ERR_EXISTS, "deployment '%.64s' has no rollout in progress", name);
    if (rc == CS_OK) {
        p->ro_cmd = a;
        snprintf(p->ro_actor, sizeof p->ro_actor, "%.63s", actor ? actor : "anonymous");
        kick(d);
        /* Until the controller took it, so that the answer shows the outcome. */
        uint64_t until = cs_now_ns() + 10ull * 1000000000;
        while ((p = cs_map_get(&d->deps, name)) && p->ro_cmd && cs_now_ns() < until) wait_passed(d);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

cs_status cs_deployer_rollout_undo(cs_deployer *d, const char *name, const char *actor,
                                   cs_error *err)
{
    char to[VERSION_SZ] = "";
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    if (p)
        snprintf(to, sizeof to, "%s",
                 p->ro.phase == RO_PROGRESSING || p->ro.phase == RO_FAILED ? p->ro.stable
                                                                           : p->previous);
    pthread_mutex_unlock(&d->mu);
    if (!p) return cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    if (!to[0])
        return cs_error_set(err, CS_ERR_EXISTS,
                            "deployment '%.64s' has served no other version to go back to", name);
    return cs_deployer_rollout_start(d, name, to, actor, err);
}

cs_status cs_deployer_delete(cs_deployer *d, const char *name, const char *actor, cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    cs_status rc = cs__dep_implicit_refuse(cs_map_get(&d->deps, name), "deleted", err);
    pthread_mutex_unlock(&d->mu);
    if (rc == CS_OK) rc = cs_registry_deployment_delete(d->o.registry, name, actor, err);
    if (rc != CS_OK) return rc;
    pthread_mutex_lock(&d->mu);
    cs__dep_forget(d, name);
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
    if (p && p->implicit && rec && rc == CS_OK) { /* an explicit one takes the name over */
        cs__dep_forget(d, name);
        cs__dep_wait_freed(d);
        p = cs_map_get(&d->deps, name);
    }
    if (!rec) {
        if (p && !p->implicit) cs__dep_forget(d, name); /* implicit ones are not stored */
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
        if (!stored && !((dep *)v)->implicit && cs_vec_push(&gone, &held) != CS_OK)
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CS_OK && i < gone.len; i++)
        cs__dep_forget(d, *(const char **)cs_vec_at(&gone, i));
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

slot *cs__dep_pick_slot(dep *p, const char *version)
{
    if (version) return cs__dep_find_slot(p, version);
    int total = 0, r;
    for (int i = 0; i < MAX_SLOTS; i++) total += p->s[i].version[0] ? p->s[i].weight : 0;
    r = total ? (int)(pick_percent() * (unsigned)total / 100) : 0;
    for (int i = 0; i < MAX_SLOTS && total; i++)
        if (p->s[i].version[0] && p->s[i].weight > 0 && (r -= p->s[i].weight) < 0) return &p->s[i];
    return NULL;
}

void cs__dep_poke(cs_deployer *d, dep *p)
{
    if (!p->poked) p->poked_ns = cs_now_ns();
    p->poked = true;
    kick(d);
}

cs_backoff_policy cs__dep_backoff_policy(const cs_deploy_spec *s)
{
    return (cs_backoff_policy){s->backoff_initial_ms, s->backoff_max_ms, s->backoff_reset_ms};
}

cs_status cs_deployer_acquire(cs_deployer *d, const char *name, const char *version,
                              cs_rt_model **out, uint64_t *activate_by_ns, cs_error *err)
{
    *out = NULL;
    *activate_by_ns = 0;
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    slot *s = p && !p->spec.external ? cs__dep_pick_slot(p, version) : NULL;
    cs_status rc = CS_OK;
    if (!p)
        ; /* not a deployment: CS_OK with *out NULL */
    else if (p->spec.external)
        rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                          "deployment '%s' runs an external runtime: its requests are proxied",
                          name);
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
        cs__dep_poke(d, p);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

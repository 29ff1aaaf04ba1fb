/*
 * deploy_slots.c - a deployment's slots: versions loaded into the runtime with no
 * instances, instances added and removed on them (each placed on a claim of its own when
 * the spec asks for devices), failed ones replaced with a back-off, and drained slots
 * unloaded. Only the controller calls these; see deploy_int.h.
 */
#include "runtime/deploy_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <stdio.h>
#include <string.h>

/* Loads version with no instances into a free slot (the wanted percent set by the caller).
 * An implicit deployment's version loads from its file with its own configuration, whose
 * instances start with it and are the slot's. */
slot *cs__dep_load_slot(cs_deployer *d, dep *p, const char *version, cs_error *err)
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
    cfg.max_batch_requests = p->spec.container_concurrency; /* 0: no limit */
    cfg.max_queue_delay_us = (uint64_t)p->spec.max_queue_delay_us;
    cs_status rc = CS_OK;
    if (p->implicit) {
        cfg = p->implicit->cfg;
        path = p->implicit->path;
    } else {
        rc = cs_registry_artifact(d->o.registry, p->spec.model, version, &a, &v, &path, err);
    }
    if (rc == CS_OK && p->spec.external) { /* a command serves it: nothing to load here */
        rc = cs__ext_load_slot(d, p, free_slot, version, path, err);
        cs_arena_free(&a);
        return rc == CS_OK ? free_slot : NULL;
    }
    if (rc == CS_OK) rc = cs_runtime_load(d->o.rt, p->spec.name, version, path, &cfg, err);
    if (rc == CS_ERR_EXISTS) rc = CS_OK; /* loaded before (a restart of this pass): adopt it */
    cs_arena_free(&a);
    cs_rt_model *m = rc == CS_OK ? cs_runtime_acquire(d->o.rt, p->spec.name, version) : NULL;
    if (!m) {
        if (rc == CS_OK) cs_error_set(err, CS_ERR_SHUTDOWN, "version %s was unloaded", version);
        return NULL;
    }
    cs_rt_instance_info *info = NULL;
    int n = p->implicit ? cs_rt_model_instances(m, NULL, 0) : 0;
    if (n > 0 && (info = cs_malloc((size_t)n * sizeof *info))) {
        int listed = cs_rt_model_instances(m, info, n);
        n = listed < n ? listed : n;
    }
    pthread_mutex_lock(&d->mu);
    *free_slot = (slot){.m = m, .wanted = -1};
    snprintf(free_slot->version, VERSION_SZ, "%.23s", version);
    for (int i = 0; info && i < n && i < CS_DEPLOY_MAX_INST; i++)
        free_slot->ids[free_slot->n_ids++] = info[i].id;
    free_slot->ready = cs__dep_count_ready(free_slot);
    pthread_mutex_unlock(&d->mu);
    cs_free(info);
    cs_log(CS_LOG_INFO, "deployment version loaded", "deployment", p->spec.name, "version", version,
           NULL);
    return free_slot;
}

/* Up to CS_DEPLOY_MAX_INST instances of a slot into *info (cs_malloc'd: the records are
 * large); returns how many, 0 on out of memory. */
int cs__dep_instances(const slot *s, cs_rt_instance_info **info)
{
    *info = cs_malloc(CS_DEPLOY_MAX_INST * sizeof **info);
    int n = !*info   ? 0
            : s->ext ? cs__ext_instances(s, *info, CS_DEPLOY_MAX_INST)
                     : cs_rt_model_instances(s->m, *info, CS_DEPLOY_MAX_INST);
    return n < CS_DEPLOY_MAX_INST ? n : CS_DEPLOY_MAX_INST;
}

int cs__dep_count_ready(const slot *s)
{
    cs_rt_instance_info *info;
    int n = cs__dep_instances(s, &info), ready = 0;
    for (int i = 0; i < n; i++) ready += info[i].state == CS_RT_INSTANCE_READY;
    cs_free(info);
    return ready;
}

void cs__dep_claim_name(const dep *p, const slot *s, int n, char *out, size_t cap)
{
    snprintf(out, cap, "%s-v%s-%d", p->spec.name, s->version, n);
}

/* Frees the devices of instance i's claim, if it has one. */
static void release_claim(cs_deployer *d, const dep *p, const slot *s, int i)
{
    if (!s->claims[i] || !d->o.devices) return;
    char name[CS_DEPLOY_NAME_MAX + 48];
    cs__dep_claim_name(p, s, s->claims[i], name, sizeof name);
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

/* An instance allocated a GPU runs its session there, bounded by the GPU memory its claim
 * holds, where this machine can run sessions on it; a GPU that is only in an inventory
 * (--devices, no driver) leaves it on the CPU, which its status shows. */
static void gpu_device(const dep *p, const cs_placement *pl, cs_rt_instance_opts *io, char *buf,
                       size_t cap)
{
    if (pl->gpu < 0) return;
    cs_error why;
    if (cs_device_check((cs_device){CS_DEVICE_CUDA, pl->gpu}, &why) != CS_OK) {
        cs_log(CS_LOG_INFO, "instance runs on the cpu", "deployment", p->spec.name, "reason",
               why.msg, NULL);
        return;
    }
    snprintf(buf, cap, "cuda:%d", pl->gpu);
    io->device = buf;
    io->max_memory = pl->gpu_memory > 0 ? (size_t)pl->gpu_memory : 0;
}

/* Adds or removes instances on s until it has `want`; the first failure to add is the
 * deployment's reason. With resources.devices, each instance first gets a claim of its own
 * from the allocator (CPU cores to pin its threads to), released when the instance goes. */
void cs__dep_scale_slot(cs_deployer *d, dep *p, slot *s, int want)
{
    if (s->ext) {
        cs__ext_scale_slot(d, p, s, want);
        return;
    }
    while (s->n_ids < want) {
        cs_error err;
        cs_rt_instance_opts io = {0};
        cs_placement pl = {0};
        char gpu[CS_RT_DEVICE_MAX];
        int id, claim = 0;
        if (p->n_reqs && d->o.devices) {
            char name[CS_DEPLOY_NAME_MAX + 48];
            cs__dep_claim_name(p, s, claim = ++p->next_claim, name, sizeof name);
            if (cs_placement_claim(d->o.devices, name, p->reqs, p->n_reqs, &pl, &err) != CS_OK) {
                cs_placement_free(&pl);
                set_reason(d, p, s, "cannot be placed", err.msg);
                return;
            }
            io.cpus = pl.cpus;
            io.n_cpus = (int)pl.n_cpus;
            gpu_device(p, &pl, &io, gpu, sizeof gpu);
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
        s->ready = cs__dep_count_ready(s);
        if (p->poked && s->ready > 0) { /* a request was waiting: that was a cold start */
            if (p->m.cold) cs_metric_observe(p->m.cold, (double)(cs_now_ns() - p->poked_ns) / 1e9);
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
void cs__dep_unload_slot(cs_deployer *d, dep *p, slot *s)
{
    if (s->ext) {
        cs__ext_unload_slot(d, p, s);
        return;
    }
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

/* Self-healing: FAILED instances (an engine error left their session unusable) are
 * forgotten and replaced, no sooner than the back-off Kubernetes gives a crashing container
 * (spec.restartBackoff: 10 s, doubling to 5 min, back to 10 s after 10 min without a
 * failure). */
void cs__dep_heal(cs_deployer *d, dep *p, slot *s, int64_t now_ms)
{
    if (s->ext) {
        cs__ext_heal(d, p, s, now_ms);
        return;
    }
    cs_rt_instance_info *info;
    int n = cs__dep_instances(s, &info);
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
        if (p->m.restarts) cs_metric_add(p->m.restarts, 1);
        cs_backoff_policy bp = cs__dep_backoff_policy(&p->spec);
        int64_t delay = cs_backoff_next(&s->backoff, &bp, now_ms - s->last_failure_ms);
        s->retry_at_ms = now_ms + delay;
        s->last_failure_ms = now_ms;
        pthread_mutex_unlock(&d->mu);
        cs__dep_event(d, p, "deployment.instance_failed",
                      json_pack("{s:s, s:i, s:s, s:I}", "version", s->version, "instance",
                                info[i].id, "reason", info[i].reason, "retry_in_ms",
                                (json_int_t)delay));
    }
    cs_free(info);
}

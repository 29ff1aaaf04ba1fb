/*
 * deploy_status.c - the objects cs_deployer_get and cs_deployer_list return: the
 * deployment's spec as applied, with metadata.generation and a status (instances with
 * their claims and cores, the traffic split, the rollout and its last check), and the
 * claims each deployment holds (for the GPU metrics' deployment label).
 */
#include "runtime/deploy_int.h"

#include "base/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        int n = cs__dep_instances(s, &info);
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
                    cs__dep_claim_name(p, s, s->claims[k], claim, sizeof claim);
            json_t *inst =
                json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:i, s:i, s:s}", "name", name,
                          "claim", claim[0] ? json_string(claim) : json_null(), "cpus", cpus,
                          "device", info[j].device[0] ? json_string(info[j].device) : json_null(),
                          "version", s->version, "state", cs_rt_instance_state_name(info[j].state),
                          "since", timestamp(info[j].since_ns), "restarts", s->restarts, "running",
                          info[j].running, "reason", info[j].reason);
            if (inst && s->ext) cs__ext_instance_json(s, info[j].id, inst);
            json_array_append_new(instances, inst);
        }
        cs_free(info);
    }
    for (int k = 0; k < p->pending; k++) { /* wanted, but not placed or not started */
        char name[CS_DEPLOY_NAME_MAX + 32];
        snprintf(name, sizeof name, "%s-pending-%d", p->spec.name, k + 1);
        json_array_append_new(instances, json_pack("{s:s, s:n, s:[], s:s, s:i, s:s}", "name", name,
                                                   "claim", "cpus", "state", "Pending", "restarts",
                                                   0, "reason", p->reason));
    }
    static const char *const phases[] = {"", "Progressing", "Succeeded", "Failed"};
    const rollout *ro = &p->ro;
    const cs_deploy_spec *sp = &p->spec;
    /* Progressing and waiting in a pause step: Paused, as Argo Rollouts shows it. */
    bool paused =
        ro->phase == RO_PROGRESSING && ro->step < sp->n_steps && sp->steps[ro->step].set_weight < 0;
    json_t *rj =
        ro->phase == RO_NONE
            ? json_null()
            : json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:{s:I, s:o, s:o}}", "phase",
                        paused ? "Paused" : phases[ro->phase], "stable", ro->stable, "canary",
                        ro->canary, "step", ro->step, "steps", sp->n_steps, "canaryWeight",
                        ro->weight, "failedChecks", ro->failed, "reason", ro->reason, "lastCheck",
                        "requests", (json_int_t)ro->last_n, "successRate",
                        isnan(ro->last_rate) ? json_null() : json_real(ro->last_rate), "p99Ms",
                        isnan(ro->last_p99_ms) ? json_null() : json_real(ro->last_p99_ms));
    json_object_set_new(json_object_get(doc, "metadata"), "generation",
                        json_integer(p->generation));
    if (p->implicit) /* declared by the server, as Kubernetes marks the objects it generates */
        json_object_set_new(json_object_get(doc, "metadata"), "annotations",
                            json_pack("{s:s}", "capstan.dev/implicit", p->implicit->origin));
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

void cs_deployer_each_claim(cs_deployer *d,
                            void (*fn)(const char *deployment, const char *claim, void *ud),
                            void *ud)
{
    pthread_mutex_lock(&d->mu);
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&d->deps, &it, &key, &v)) {
        const dep *p = v;
        for (int i = 0; i < MAX_SLOTS; i++) {
            const slot *s = &p->s[i];
            if (!s->version[0]) continue;
            for (int k = 0; k < s->n_ids; k++) {
                if (!s->claims[k]) continue;
                char claim[CS_DEPLOY_NAME_MAX + 48];
                cs__dep_claim_name(p, s, s->claims[k], claim, sizeof claim);
                fn(p->spec.name, claim, ud);
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
}

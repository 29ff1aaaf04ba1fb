/*
 * deploy_metrics.c - the deployments' state as Prometheus series, read at scrape time.
 *
 * The deployer keeps its own gauges of desired and ready instances, panic mode and the
 * cold-start histogram (runtime/deploy.c). What the dashboard needs besides - instances by
 * state, the traffic split (a canary's weight), the canary rollout's weight and restarts -
 * is all in the status the deployer already reports (cs_deployer_list), so GET /metrics
 * turns that status into series just before rendering, and the deployer's hot paths stay
 * as they are:
 *   capstan_deployment_instances{deployment, state}          gauge, one per instance state
 *   capstan_deployment_traffic_percent{deployment, version}  gauge, routing percent now
 *   capstan_deployment_canary_weight{deployment}             gauge, 0 without a rollout
 *   capstan_deployment_restarts_total{deployment, version}   counter, failed instances replaced
 * A series whose deployment or version has gone is set to 0 rather than left at its last
 * value. Restarts are counted from the deployer's per-version count as scrapes see it (only
 * while the version has instances to report it): a count that went down (the version was
 * loaded again) counts from zero.
 *
 * Cost: one cs_deployer_list (the deployer's lock, a JSON tree of every deployment) per
 * scrape; a lock of its own so that concurrent scrapes count each restart once. Series
 * are bounded by what the deployer bounds: deployments times versions times states.
 */
#include "api/api.h"

#include "base/alloc.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX (2 * CS_DEPLOY_NAME_MAX + 32)

/* One series this collector has set, by "family\x1fdeployment\x1fversion-or-state". */
typedef struct series {
    cs_metric *m;
    json_int_t last; /* restarts: the deployer's count at the last scrape */
    bool seen;       /* set in this scrape */
} series;

struct cs_api_deploy_metrics {
    pthread_mutex_t mu;
    cs_metric_family *instances, *traffic, *canary, *restarts;
    cs_map series; /* key -> series * */
};

cs_status cs__api_deploy_metrics_new(cs_server *s, cs_error *err)
{
    static const char *const by_state[] = {"deployment", "state", NULL};
    static const char *const by_version[] = {"deployment", "version", NULL};
    static const char *const by_dep[] = {"deployment", NULL};
    cs_api_deploy_metrics *dm = cs_calloc(1, sizeof *dm);
    if (!dm) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    dm->instances = cs_metrics_family(
        s->metrics, CS_METRIC_GAUGE, "capstan_deployment_instances",
        "A deployment's instances by state (Starting, Ready, Draining, Failed)", by_state, NULL, 0);
    dm->traffic = cs_metrics_family(
        s->metrics, CS_METRIC_GAUGE, "capstan_deployment_traffic_percent",
        "Percent of a deployment's requests routed to each version now", by_version, NULL, 0);
    dm->canary = cs_metrics_family(s->metrics, CS_METRIC_GAUGE, "capstan_deployment_canary_weight",
                                   "The canary's weight while a canary rollout progresses, else 0",
                                   by_dep, NULL, 0);
    dm->restarts = cs_metrics_family(
        s->metrics, CS_METRIC_COUNTER, "capstan_deployment_restarts_total",
        "Failed instances of a deployment's version replaced", by_version, NULL, 0);
    if (!dm->instances || !dm->traffic || !dm->canary || !dm->restarts) {
        cs_free(dm);
        return cs_error_set(err, CS_ERR_NOMEM, "cannot register the deployment metrics");
    }
    pthread_mutex_init(&dm->mu, NULL);
    cs_map_init(&dm->series);
    s->deploy_metrics = dm;
    return CS_OK;
}

void cs__api_deploy_metrics_free(cs_api_deploy_metrics *dm)
{
    if (!dm) return;
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&dm->series, &it, &key, &v)) cs_free(v);
    cs_map_free(&dm->series);
    pthread_mutex_destroy(&dm->mu);
    cs_free(dm);
}

/* The series of family f (tag names it in the key) for labels {dep, second}, created on
 * first use and marked seen; NULL when out of memory (that series is then left out). */
static series *get(cs_api_deploy_metrics *dm, cs_metric_family *f, const char *tag, const char *dep,
                   const char *second)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", tag, dep, second ? second : "");
    series *s = cs_map_get(&dm->series, key);
    if (!s) {
        const char *const values[] = {dep, second};
        cs_metric *m = cs_metric_get(f, values);
        if (!m || !(s = cs_calloc(1, sizeof *s))) return NULL;
        s->m = m;
        if (cs_map_put(&dm->series, key, s) != CS_OK) {
            cs_free(s);
            return NULL;
        }
    }
    s->seen = true;
    return s;
}

static void set(cs_api_deploy_metrics *dm, cs_metric_family *f, const char *tag, const char *dep,
                const char *second, double v)
{
    series *s = get(dm, f, tag, dep, second);
    if (s) cs_metric_set(s->m, v);
}

static void collect_one(cs_api_deploy_metrics *dm, json_t *d)
{
    const char *dep = json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));
    json_t *st = json_object_get(d, "status");
    if (!dep || !st) return;
    int counts[CS_RT_INSTANCE_FAILED + 1] = {0};
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(st, "instances"), i, x)
    {
        const char *state = json_string_value(json_object_get(x, "state"));
        for (int k = 0; state && k <= CS_RT_INSTANCE_FAILED; k++)
            if (!strcmp(state, cs_rt_instance_state_name((cs_rt_instance_state)k))) counts[k]++;
        /* Every instance of a version repeats the version's count: the last one wins. */
        const char *version = json_string_value(json_object_get(x, "version"));
        series *r = version ? get(dm, dm->restarts, "r", dep, version) : NULL;
        json_int_t now = json_integer_value(json_object_get(x, "restarts"));
        if (r && now != r->last) {
            cs_metric_add(r->m, (double)(now > r->last ? now - r->last : now));
            r->last = now;
        }
    }
    for (int k = 0; k <= CS_RT_INSTANCE_FAILED; k++)
        set(dm, dm->instances, "i", dep, cs_rt_instance_state_name((cs_rt_instance_state)k),
            counts[k]);
    json_array_foreach(json_object_get(st, "traffic"), i, x)
    {
        const char *version = json_string_value(json_object_get(x, "version"));
        if (version)
            set(dm, dm->traffic, "t", dep, version,
                (double)json_integer_value(json_object_get(x, "percent")));
    }
    json_t *ro = json_object_get(st, "rollout");
    const char *phase = json_string_value(json_object_get(ro, "phase"));
    set(dm, dm->canary, "c", dep, NULL,
        phase && !strcmp(phase, "Progressing")
            ? (double)json_integer_value(json_object_get(ro, "canaryWeight"))
            : 0);
}

void cs__api_deploy_metrics_update(cs_server *s)
{
    cs_api_deploy_metrics *dm = s->deploy_metrics;
    if (!dm || !s->deployer) return;
    json_t *list = cs_deployer_list(s->deployer);
    pthread_mutex_lock(&dm->mu);
    size_t it = 0, i;
    const char *key;
    void *v;
    while (cs_map_next(&dm->series, &it, &key, &v)) ((series *)v)->seen = false;
    json_t *d;
    json_array_foreach(list, i, d) collect_one(dm, d);
    /* Gone since the last scrape: gauges to 0; counters keep their total. */
    it = 0;
    while (cs_map_next(&dm->series, &it, &key, &v)) {
        series *x = v;
        if (!x->seen && key[0] != 'r') cs_metric_set(x->m, 0);
    }
    pthread_mutex_unlock(&dm->mu);
    json_decref(list);
}

/*
 * deploy_metrics.c - the capstan_deployment_* metric families and their per-deployment
 * series: desired and ready instances, instances by state (Pending for those no device
 * fits), panic mode, the canary's weight, requests held by the activator, restarts and the
 * cold-start histogram. The controller publishes them at the end of each pass.
 */
#include "runtime/deploy_int.h"

#include <string.h>

/* Instances by state: Pending, then the runtime's states in their order. */
static const char *const state_names[CS__DEP_STATES] = {"Pending", "Starting", "Ready", "Draining",
                                                        "Failed"};

void cs__dep_metrics_register(cs_deployer *d)
{
    if (!d->o.metrics) return;
    static const char *const by_dep[] = {"deployment", NULL};
    static const char *const by_state[] = {"deployment", "state", NULL};
    static const double cold[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    cs_metrics *r = d->o.metrics;
    cs__dep_families *f = &d->fam;
    f->desired = cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_desired_instances",
                                   "Instances the autoscaler wants", by_dep, NULL, 0);
    f->ready = cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_ready_instances",
                                 "Instances that are model-ready", by_dep, NULL, 0);
    f->state = cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_instances",
                                 "Instances by state (Pending: no device fits)", by_state, NULL, 0);
    f->panic = cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_panic_mode",
                                 "1 while the autoscaler is in panic mode", by_dep, NULL, 0);
    f->canary =
        cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_canary_weight",
                          "Percent of requests the canary gets during a rollout", by_dep, NULL, 0);
    f->activator =
        cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_deployment_activator_queue_depth",
                          "Requests waiting for a cold start (no Ready instance)", by_dep, NULL, 0);
    f->restarts = cs_metrics_family(r, CS_METRIC_COUNTER, "capstan_deployment_restarts_total",
                                    "Failed instances replaced", by_dep, NULL, 0);
    f->cold = cs_metrics_family(r, CS_METRIC_HISTOGRAM, "capstan_cold_start_duration_seconds",
                                "From a request meeting no Ready instance to the first Ready "
                                "instance",
                                by_dep, cold, (int)(sizeof cold / sizeof cold[0]));
    if (!f->desired || !f->ready || !f->state || !f->panic || !f->canary || !f->activator ||
        !f->restarts || !f->cold)
        *f = (cs__dep_families){0};
}

void cs__dep_metrics_bind(cs_deployer *d, dep *p)
{
    const cs__dep_families *f = &d->fam;
    if (!f->desired) return;
    const char *const label[] = {p->spec.name};
    cs__dep_series *m = &p->m;
    m->desired = cs_metric_get(f->desired, label);
    m->ready = cs_metric_get(f->ready, label);
    m->panic = cs_metric_get(f->panic, label);
    m->canary = cs_metric_get(f->canary, label);
    m->activator = cs_metric_get(f->activator, label);
    m->restarts = cs_metric_get(f->restarts, label);
    m->cold = cs_metric_get(f->cold, label);
    for (int i = 0; i < CS__DEP_STATES; i++) {
        const char *const labels[] = {p->spec.name, state_names[i]};
        m->state[i] = cs_metric_get(f->state, labels);
    }
}

void cs__dep_metrics_publish(dep *p, const int states[CS__DEP_STATES], double waiting)
{
    const cs__dep_series *m = &p->m;
    if (!m->desired) return;
    cs_metric_set(m->desired, p->desired);
    cs_metric_set(m->ready, states[1 + CS_RT_INSTANCE_READY]);
    cs_metric_set(m->panic, p->kpa.panic);
    cs_metric_set(m->canary, p->ro.phase == RO_PROGRESSING ? p->ro.weight : 0);
    cs_metric_set(m->activator, waiting);
    for (int i = 0; i < CS__DEP_STATES; i++) cs_metric_set(m->state[i], states[i]);
}

/*
 * deploy_rollout.c - canary rollouts (strategy canary): the steps (setWeight, pause), and
 * each interval an analysis as Flagger's - the canary's request success rate and p99
 * latency read from the runtime's own counters and histogram - that rolls back after
 * `threshold` failed checks and promotes once every step passed. See deploy_int.h.
 */
#include "runtime/deploy_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
        cs__dep_event(d, p, "deployment.canary_check_failed",
                      json_pack("{s:s, s:s, s:i}", "canary", ro->canary, "reason", why, "failed",
                                ro->failed));
}

/* Ends the rollout with the canary taking all traffic (the old stable drains). */
static void promote(cs_deployer *d, dep *p, rollout *ro, const char *reason)
{
    ro->phase = RO_SUCCEEDED;
    ro->weight = 100;
    snprintf(ro->reason, sizeof ro->reason, "%s", reason);
    cs__dep_event(
        d, p, "deployment.rollout_succeeded",
        json_pack("{s:s, s:s, s:s}", "from", ro->stable, "to", ro->canary, "reason", reason));
    snprintf(ro->stable, sizeof ro->stable, "%s", ro->canary);
}

/* Walks the steps (a setWeight takes effect at once, a pause waits) and the analysis; ends
 * the rollout when the checks fail threshold times (rollback) or the steps run out
 * (promotion). Caller: the controller, without mu, on its own copy of the rollout. */
static void ro_progress(cs_deployer *d, dep *p, rollout *ro, int64_t now_ms)
{
    const cs_deploy_spec *sp = &p->spec;
    slot *c = cs__dep_find_slot(p, ro->canary);
    if (c && c->weight > 0 && now_ms >= ro->check_at_ms) ro_check(d, p, ro, c, now_ms);
    if (ro->failed >= sp->threshold) {
        ro->phase = RO_FAILED;
        ro->weight = 0;
        cs__dep_event(d, p, "deployment.rollout_failed",
                      json_pack("{s:s, s:s, s:s}", "stable", ro->stable, "canary", ro->canary,
                                "reason", ro->reason));
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
    promote(d, p, ro, "promoted: every step passed");
}

/* Canary strategy, one traffic target resolving to `target`: starts, advances or ends a
 * rollout; reconcile turns ro's stable, canary and weight into wanted percents. */
void cs__dep_rollout_step(cs_deployer *d, dep *p, rollout *ro, const char *target, int64_t now_ms)
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
    /* A failed canary is not tried again while the target still names it; once the target
     * has named another version, naming it again is a new rollout. */
    if (ro->phase == RO_FAILED && strcmp(target, ro->canary)) ro->rearmed = true;
    /* A rollout that just succeeded has made the target stable, though until the weights
     * follow the old version may still serve the most: that is no reason to start again. */
    bool succeeded = ro->phase == RO_SUCCEEDED && !strcmp(target, ro->stable);
    bool start = moving
                     ? strcmp(target, ro->canary) != 0
                     : served && strcmp(target, served->version) && !succeeded &&
                           !(ro->phase == RO_FAILED && !ro->rearmed && !strcmp(target, ro->canary));
    if (start) {
        char stable[VERSION_SZ];
        snprintf(stable, sizeof stable, "%s", moving ? ro->stable : served->version);
        *ro = (rollout){.phase = RO_PROGRESSING,
                        .step_at_ms = now_ms,
                        .check_at_ms = now_ms + p->spec.interval_ms};
        snprintf(ro->stable, sizeof ro->stable, "%s", stable);
        snprintf(ro->canary, sizeof ro->canary, "%s", target);
        ro_snapshot(ro, cs__dep_find_slot(p, target));
        cs__dep_event(d, p, "deployment.rollout_started",
                      json_pack("{s:s, s:s}", "stable", ro->stable, "canary", ro->canary));
    }
    if (ro->phase == RO_PROGRESSING) ro_progress(d, p, ro, now_ms);
}

void cs__dep_rollout_command(cs_deployer *d, dep *p, rollout *ro, cs_rollout_action a,
                             const char *actor)
{
    if (ro->phase != RO_PROGRESSING) return; /* it ended meanwhile: nothing to do */
    char why[160];
    if (a == CS_ROLLOUT_PROMOTE) {
        snprintf(why, sizeof why, "promoted by %.100s before its steps ended", actor);
        promote(d, p, ro, why);
        return;
    }
    ro->phase = RO_FAILED;
    ro->weight = 0;
    snprintf(ro->reason, sizeof ro->reason, "aborted by %.100s", actor);
    cs__dep_event(d, p, "deployment.rollout_aborted",
                  json_pack("{s:s, s:s, s:s}", "stable", ro->stable, "canary", ro->canary, "reason",
                            ro->reason));
}

/*
 * autoscale.c - the Knative Pod Autoscaler (KPA) decision, as ANCHORS.md states it
 * (knative/serving pkg/autoscaler, config/core/configmaps/autoscaler.yaml).
 *
 * Per tick: ready = max(1, readyInstances); the stable and panic averages are the means of
 * the samples inside each window; stable = ceil(stableAvg / target) and
 * panic = ceil(panicAvg / target), each clamped to [floor(ready / maxScaleDownRate),
 * ceil(maxScaleUpRate · ready)]. Panic mode begins when panicAvg / target / ready ≥
 * panicThreshold (2.0), is extended by every tick still over it and ends one stable window
 * after the last such tick; in panic desired = max(stable, panic) and never decreases.
 * Scale to zero: a decision of 0 is only taken once there has been no traffic for a whole
 * stable window plus the grace period (until then 1 is held, so an instance still loading or
 * just idle is not killed: kserve#1247, knative#15316). Finally [min, max] bounds apply.
 *
 * Cost: a tick is O(samples in the stable window), at most CS_KPA_MAX_SAMPLES.
 */
#include "runtime/autoscale.h"

#include <math.h>

cs_kpa_config cs_kpa_config_default(int container_concurrency)
{
    return (cs_kpa_config){
        .target = (container_concurrency > 0 ? container_concurrency : 100) * 0.7,
        .stable_window_ms = 60000,
        .panic_window_pct = 10,
        .panic_threshold_pct = 200,
        .max_scale_up_rate = 1000,
        .max_scale_down_rate = 2,
        .scale_to_zero_grace_ms = 30000,
        .min = 0,
        .max = 0,
    };
}

int64_t cs_kpa_panic_window_ms(const cs_kpa_config *cfg)
{
    int64_t w = (int64_t)((double)cfg->stable_window_ms * cfg->panic_window_pct / 100.0);
    return w < 1000 ? 1000 : w;
}

static int bounded(const cs_kpa_config *cfg, int n)
{
    if (n < cfg->min) n = cfg->min;
    if (cfg->max > 0 && n > cfg->max) n = cfg->max;
    return n;
}

void cs_kpa_init(cs_kpa *k, const cs_kpa_config *cfg, int64_t now_ms)
{
    k->cfg = *cfg;
    k->head = k->n = 0;
    k->last_traffic_ms = now_ms;
    k->last_over_ms = 0;
    k->panic = false;
    k->desired = bounded(cfg, 1);
}

void cs_kpa_sample(cs_kpa *k, int64_t now_ms, double concurrency)
{
    int i = (k->head + k->n) % CS_KPA_MAX_SAMPLES;
    if (k->n == CS_KPA_MAX_SAMPLES)
        k->head = (k->head + 1) % CS_KPA_MAX_SAMPLES;
    else
        k->n++;
    k->t_ms[i] = now_ms;
    k->v[i] = concurrency;
    if (concurrency > 0) k->last_traffic_ms = now_ms;
}

/* The mean of the samples taken in (now - window, now]; 0 when there are none. */
static double window_avg(const cs_kpa *k, int64_t now_ms, int64_t window_ms)
{
    double sum = 0;
    int cnt = 0;
    for (int j = k->n - 1; j >= 0; j--) {
        int i = (k->head + j) % CS_KPA_MAX_SAMPLES;
        if (k->t_ms[i] <= now_ms - window_ms) break;
        if (k->t_ms[i] > now_ms) continue;
        sum += k->v[i];
        cnt++;
    }
    return cnt ? sum / cnt : 0;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int cs_kpa_tick(cs_kpa *k, int64_t now_ms, int ready_instances)
{
    const cs_kpa_config *c = &k->cfg;
    int ready = ready_instances > 1 ? ready_instances : 1;
    double stable_avg = window_avg(k, now_ms, c->stable_window_ms);
    double panic_avg = window_avg(k, now_ms, cs_kpa_panic_window_ms(c));
    int lo = (int)floor(ready / c->max_scale_down_rate);
    int hi = (int)ceil(c->max_scale_up_rate * ready);
    int stable = clamp((int)ceil(stable_avg / c->target), lo, hi);
    int panic = clamp((int)ceil(panic_avg / c->target), lo, hi);

    bool over = panic_avg / c->target / ready >= c->panic_threshold_pct / 100.0;
    if (over) {
        k->panic = true;
        k->last_over_ms = now_ms;
    } else if (k->panic && now_ms - k->last_over_ms >= c->stable_window_ms) {
        k->panic = false;
    }

    int desired;
    if (k->panic) {
        desired = stable > panic ? stable : panic;
        if (desired < k->desired) desired = k->desired;
    } else {
        desired = stable;
    }
    if (desired == 0 &&
        now_ms - k->last_traffic_ms < c->stable_window_ms + c->scale_to_zero_grace_ms)
        desired = 1;
    k->desired = bounded(c, desired);
    return k->desired;
}

/*
 * autoscale.h - Knative's KPA as a pure decision over a state struct.
 *
 * The caller samples a deployment's in-flight concurrency once a second
 * (cs_kpa_sample) and asks for a decision every 2 s (cs_kpa_tick). No clock reads, no locks,
 * no allocation: the state is one fixed-size struct the caller owns.
 */
#ifndef CS_RUNTIME_AUTOSCALE_H
#define CS_RUNTIME_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

/* At one sample a second this holds the longest stable window Knative allows (1 h). */
#define CS_KPA_MAX_SAMPLES 3600

typedef struct cs_kpa_config {
    double target;                  /* concurrency per instance (containerConcurrency × 0.7) */
    int64_t stable_window_ms;       /* 60 s */
    double panic_window_pct;        /* 10: panic window = 10% of stable, at least 1 s */
    double panic_threshold_pct;     /* 200: panic when panic-desired / ready ≥ 2.0 */
    double max_scale_up_rate;       /* 1000 per tick */
    double max_scale_down_rate;     /* 2 per tick */
    int64_t scale_to_zero_grace_ms; /* 30 s */
    int min;                        /* 0 allows scale to zero */
    int max;                        /* 0 = unbounded */
} cs_kpa_config;

/* Knative's defaults for a containerConcurrency (0 = unlimited, which targets 100 × 0.7). */
cs_kpa_config cs_kpa_config_default(int container_concurrency);

typedef struct cs_kpa {
    cs_kpa_config cfg;
    int64_t t_ms[CS_KPA_MAX_SAMPLES];
    double v[CS_KPA_MAX_SAMPLES];
    int head, n;             /* ring of samples, oldest at head */
    int64_t last_traffic_ms; /* the last sample with concurrency > 0, or cs_kpa_init's now */
    int64_t last_over_ms;    /* the last tick over the panic threshold (panic mode only) */
    bool panic;
    int desired; /* the last decision; cs_kpa_init starts at the initial scale, 1 */
} cs_kpa;

/* Starts k at now_ms with the initial scale (1, raised to min and lowered to max). */
void cs_kpa_init(cs_kpa *k, const cs_kpa_config *cfg, int64_t now_ms);

/* Records one concurrency sample taken at now_ms (non-decreasing). When samples come faster
 * than once a second the ring drops the oldest, which shortens a long window. */
void cs_kpa_sample(cs_kpa *k, int64_t now_ms, double concurrency);

/* One decision at now_ms given how many instances are Ready: the desired instance count. */
int cs_kpa_tick(cs_kpa *k, int64_t now_ms, int ready_instances);

/* The panic window in ms: panic_window_pct of the stable window, at least 1 s. */
int64_t cs_kpa_panic_window_ms(const cs_kpa_config *cfg);

#endif

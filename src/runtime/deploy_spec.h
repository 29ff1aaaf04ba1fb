/*
 * deploy_spec.h - the Deployment object (apiVersion capstan.dev/v1): decoding, validation
 * with field paths, Knative/Kubernetes/Flagger defaults, and its canonical JSON form.
 *
 * A document is refused whole, with the first offending field's path and what is allowed
 * ("spec.traffic: percents sum to 110, must be 100"); unknown fields are refused too, so a
 * typo never silently falls back to a default. The canonical JSON (cs_deploy_spec_json) has
 * every default filled in and is what the registry stores and the API returns as `spec`:
 * applying it again changes nothing.
 *
 * Defaults (../shared/ANCHORS.md): traffic 100% to the alias prod (which, while the model has
 * no such alias, means its latest version, as serving a model does); instances min 0, max 0
 * (unbounded), containerConcurrency 0 (unlimited), targetConcurrency containerConcurrency x 0.7 (70
 * when unlimited); autoscaling stableWindow 60s, panicWindowPercent 10, panicThresholdPercent 200,
 * scaleToZeroGracePeriod 30s, maxScaleUpRate 1000, maxScaleDownRate 2; rollout rolling with
 * maxSurge 25% and maxUnavailable 25% (Kubernetes); canary analysis interval 60s, threshold 1,
 * successRateMin 99, p99MaxMs 500 (Flagger), noTraffic hold; canary steps when none are
 * given: setWeight 10, pause 60s, setWeight 50, pause 60s; restartBackoff initial 10s, max 5m,
 * resetAfter 10m (the kubelet's). An external runtime: readinessPath /v2/health/ready,
 * modelName the spec's model, startupTimeout 300s (Triton's chart: 10 s x 30), probePeriod 10s,
 * probeTimeout 1s, failureThreshold 3 (Kubernetes' probes), terminationGracePeriod 30s
 * (Kubernetes), requestTimeout 300s (Knative's timeoutSeconds).
 */
#ifndef CS_RUNTIME_DEPLOY_SPEC_H
#define CS_RUNTIME_DEPLOY_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "capstan/status.h"

#define CS_DEPLOY_NAME_MAX    63 /* DNS labels, as Kubernetes object names */
#define CS_DEPLOY_MAX_TARGETS 8
#define CS_DEPLOY_MAX_STEPS   32
#define CS_DEPLOY_MAX_INST    256

/* One traffic target: a registry version (version > 0) or an alias (alias[0] != 0). */
typedef struct cs_deploy_target {
    char alias[CS_DEPLOY_NAME_MAX + 1];
    int64_t version;
    int percent;
} cs_deploy_target;

/* A count, or a percentage of the desired instance count (maxSurge "25%"). */
typedef struct cs_deploy_amount {
    int value;
    bool percent;
} cs_deploy_amount;

typedef enum cs_deploy_strategy { CS_DEPLOY_ROLLING, CS_DEPLOY_CANARY } cs_deploy_strategy;
typedef enum cs_deploy_no_traffic {
    CS_DEPLOY_NO_TRAFFIC_HOLD, /* the interval counts neither way; the rollout waits */
    CS_DEPLOY_NO_TRAFFIC_FAIL, /* counts as a failed check (Flagger's behaviour) */
    CS_DEPLOY_NO_TRAFFIC_PASS, /* counts as a passed check */
} cs_deploy_no_traffic;

/* One canary step: set the canary's weight, or pause (pause_ms > 0). */
typedef struct cs_deploy_step {
    int set_weight; /* -1 on a pause step */
    int64_t pause_ms;
} cs_deploy_step;

typedef struct cs_deploy_spec {
    char name[CS_DEPLOY_NAME_MAX + 1];
    char model[CS_DEPLOY_NAME_MAX + 1];
    json_t *labels; /* metadata.labels: an object of strings (owned) */
    cs_deploy_target traffic[CS_DEPLOY_MAX_TARGETS];
    int n_traffic;
    /* runtime: builtin, or an external process (command owned, env an object of strings),
     * serving model_name over KServe v2 HTTP on port (the first instance's; see extproc.h). */
    bool external;
    json_t *command, *env;
    int port;
    char readiness_path[128];
    char model_name[CS_DEPLOY_NAME_MAX * 2 + 3]; /* modelName; default spec.model */
    int64_t startup_timeout_ms, probe_period_ms, probe_timeout_ms, grace_ms, request_timeout_ms;
    int failure_threshold;
    int min, max; /* instances; max 0 = unbounded */
    double target_concurrency;
    int container_concurrency; /* 0 = unlimited; else a hard limit per instance */
    int max_batch_size;
    int64_t max_queue_delay_us;
    json_t *device_requests; /* resources.devices.requests as given (owned), or NULL */
    int64_t stable_window_ms, scale_to_zero_grace_ms;
    double panic_window_pct, panic_threshold_pct, max_scale_up_rate, max_scale_down_rate;
    cs_deploy_strategy strategy;
    cs_deploy_amount max_surge, max_unavailable;
    cs_deploy_step steps[CS_DEPLOY_MAX_STEPS];
    int n_steps;
    int64_t interval_ms;
    int threshold;
    double success_rate_min, p99_max_ms;
    cs_deploy_no_traffic no_traffic;
    int64_t backoff_initial_ms, backoff_max_ms, backoff_reset_ms; /* spec.restartBackoff */
} cs_deploy_spec;

/* Decodes and validates one document ({apiVersion, kind, metadata, spec}). On failure
 * CS_ERR_INVALID with the field's path and what is allowed; *out is then empty (nothing to
 * free). On success free *out with cs_deploy_spec_free. */
cs_status cs_deploy_spec_parse(const json_t *doc, cs_deploy_spec *out, cs_error *err);
void cs_deploy_spec_free(cs_deploy_spec *s);

/* The canonical document with every default filled in (a new reference; NULL when out of
 * memory). Parsing it gives back an equal spec. */
json_t *cs_deploy_spec_json(const cs_deploy_spec *s);

/* An amount resolved against a desired count: percents of maxSurge round up, of
 * maxUnavailable down, as Kubernetes does. */
int cs_deploy_amount_of(cs_deploy_amount a, int desired, bool round_up);

#endif

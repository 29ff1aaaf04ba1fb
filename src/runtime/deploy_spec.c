/*
 * deploy_spec.c - decoding and validating a Deployment document; see deploy_spec.h.
 *
 * Each section has a decoder that knows its path ("spec.autoscaling") and its allowed
 * fields; the small readers below check one field's type and range and say what is
 * allowed when it is wrong. Absent fields keep the defaults set up front.
 */
#include "runtime/deploy_spec.h"

#include "base/clock.h"
#include "base/name.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HOUR_MS (3600 * 1000LL)

/* --- field readers: each leaves *out alone when the field is absent -------------------- */

/* o must be an object whose keys are all in allowed (NULL-terminated). */
static cs_status only(const json_t *o, const char *path, const char *const *allowed, cs_error *err)
{
    if (!json_is_object(o)) return cs_error_set(err, CS_ERR_INVALID, "%s: must be an object", path);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        int i = 0;
        while (allowed[i] && strcmp(allowed[i], key)) i++;
        if (allowed[i]) continue;
        char list[256] = "";
        for (i = 0; allowed[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     allowed[i]);
        return cs_error_set(err, CS_ERR_INVALID, "%s.%.64s: unknown field (allowed: %s)", path, key,
                            list);
    }
    return CS_OK;
}

static cs_status int_field(const json_t *o, const char *path, const char *key, int64_t lo,
                           int64_t hi, int64_t *out, cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return CS_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return cs_error_set(err, CS_ERR_INVALID, "%s.%s: must be an integer from %lld to %lld",
                            path, key, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return CS_OK;
}

static cs_status small_int(const json_t *o, const char *path, const char *key, int lo, int hi,
                           int *out, cs_error *err)
{
    int64_t v = *out;
    cs_status rc = int_field(o, path, key, lo, hi, &v, err);
    *out = (int)v;
    return rc;
}

static cs_status num_field(const json_t *o, const char *path, const char *key, double lo, double hi,
                           double *out, cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return CS_OK;
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= lo && d <= hi))
        return cs_error_set(err, CS_ERR_INVALID, "%s.%s: must be a number from %g to %g", path, key,
                            lo, hi);
    *out = d;
    return CS_OK;
}

/* A Go/Kubernetes duration string ("60s", "500ms", "1m30s") from lo_ms to hi_ms. */
static cs_status dur_field(const json_t *o, const char *path, const char *key, int64_t lo_ms,
                           int64_t hi_ms, int64_t *out_ms, cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return CS_OK;
    int64_t ns;
    if (!json_is_string(v) || cs_duration_parse(json_string_value(v), &ns) != 0 ||
        ns / 1000000 < lo_ms || ns / 1000000 > hi_ms || ns % 1000000)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.%s: must be a duration such as \"30s\" or \"500ms\", from %lldms "
                            "to %lldms, in whole milliseconds",
                            path, key, (long long)lo_ms, (long long)hi_ms);
    *out_ms = ns / 1000000;
    return CS_OK;
}

/* A DNS label: 1-63 lowercase letters, digits and '-', starting and ending alphanumeric. */
static cs_status name_field(const json_t *o, const char *path, const char *key, bool required,
                            char out[CS_DEPLOY_NAME_MAX + 1], cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required) return CS_OK;
    if (!cs_dns_label(json_string_value(v)))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.%s: %s 1-63 lowercase letters, digits and '-', starting and "
                            "ending with a letter or digit",
                            path, key, v ? "must be" : "is required:");
    snprintf(out, CS_DEPLOY_NAME_MAX + 1, "%s", json_string_value(v));
    return CS_OK;
}

/* An object whose values are all strings (labels, env). */
static cs_status string_map(const json_t *o, const char *path, const char *key, json_t **out,
                            cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return CS_OK;
    const char *k;
    json_t *x;
    bool ok = json_is_object(v) && json_object_size(v) <= 256;
    json_object_foreach(v, k, x) ok = ok && json_is_string(x) && strlen(k) <= 256;
    if (!ok)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.%s: must be an object of at most 256 string values", path, key);
    *out = json_deep_copy(v);
    return *out ? CS_OK : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

/* An int or a "N%" string (Kubernetes' IntOrString). */
static cs_status amount_field(const json_t *o, const char *path, const char *key,
                              cs_deploy_amount *out, cs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) return CS_OK;
    const char *s = json_string_value(v);
    int n = -1, used = 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 1000)
        *out = (cs_deploy_amount){(int)json_integer_value(v), false};
    else if (s && sscanf(s, "%d%%%n", &n, &used) == 1 && used == (int)strlen(s) && n >= 0 &&
             n <= 100)
        *out = (cs_deploy_amount){n, true};
    else
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.%s: must be a count (0-1000) or a percentage such as \"25%%\"",
                            path, key);
    return CS_OK;
}

/* --- sections -------------------------------------------------------------------------- */

static cs_status traffic(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *t = json_object_get(spec, "traffic");
    if (!t) { /* everything to the model's default version: prod (else latest, deploy.c) */
        s->n_traffic = 1;
        s->traffic[0] = (cs_deploy_target){.alias = "prod", .percent = 100};
        return CS_OK;
    }
    size_t n = json_array_size(t);
    if (!json_is_array(t) || n < 1 || n > CS_DEPLOY_MAX_TARGETS)
        return cs_error_set(err, CS_ERR_INVALID, "spec.traffic: must be a list of 1 to %d targets",
                            CS_DEPLOY_MAX_TARGETS);
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        char path[48];
        snprintf(path, sizeof path, "spec.traffic[%zu]", i);
        json_t *e = json_array_get(t, i);
        static const char *const allowed[] = {"alias", "version", "percent", NULL};
        cs_deploy_target *d = &s->traffic[i];
        d->percent = -1;
        cs_status rc = only(e, path, allowed, err);
        if (rc == CS_OK) rc = name_field(e, path, "alias", false, d->alias, err);
        if (rc == CS_OK) rc = int_field(e, path, "version", 1, INT64_MAX, &d->version, err);
        if (rc == CS_OK) rc = small_int(e, path, "percent", 0, 100, &d->percent, err);
        if (rc != CS_OK) return rc;
        if (!d->alias[0] == !d->version)
            return cs_error_set(err, CS_ERR_INVALID, "%s: give exactly one of alias and version",
                                path);
        if (d->percent < 0)
            return cs_error_set(err, CS_ERR_INVALID, "%s.percent: is required (0-100)", path);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->traffic[j].alias, d->alias) && s->traffic[j].version == d->version)
                return cs_error_set(err, CS_ERR_INVALID,
                                    "%s: names the same target as spec.traffic[%zu]", path, j);
        sum += d->percent;
    }
    s->n_traffic = (int)n;
    if (sum != 100)
        return cs_error_set(err, CS_ERR_INVALID, "spec.traffic: percents sum to %d, must be 100",
                            sum);
    return CS_OK;
}

static cs_status runtime(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *r = json_object_get(spec, "runtime");
    if (!r || (json_is_string(r) && !strcmp(json_string_value(r), "builtin"))) return CS_OK;
    static const char *const allowed[] = {"command",          "port",
                                          "readinessPath",    "env",
                                          "modelName",        "startupTimeout",
                                          "probePeriod",      "probeTimeout",
                                          "failureThreshold", "terminationGracePeriod",
                                          "requestTimeout",   NULL};
    const char *path = "spec.runtime";
    if (json_is_string(r))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s: must be \"builtin\" or {command, port, readinessPath, env}", path);
    cs_status rc = only(r, path, allowed, err);
    if (rc != CS_OK) return rc;
    json_t *cmd = json_object_get(r, "command");
    bool ok = json_is_array(cmd) && json_array_size(cmd) >= 1 && json_array_size(cmd) <= 256;
    for (size_t i = 0; ok && i < json_array_size(cmd); i++)
        ok = json_is_string(json_array_get(cmd, i)) &&
             json_string_length(json_array_get(cmd, i)) > 0;
    if (!ok)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.command: is required: a list of 1-256 non-empty strings (the "
                            "program and its arguments)",
                            path);
    s->external = true;
    s->port = -1;
    if ((rc = small_int(r, path, "port", 1, 65535, &s->port, err)) != CS_OK) return rc;
    if (s->port < 0)
        return cs_error_set(err, CS_ERR_INVALID, "%s.port: is required (1-65535)", path);
    json_t *rp = json_object_get(r, "readinessPath");
    if (rp) {
        const char *p = json_string_value(rp);
        if (!p || p[0] != '/' || strlen(p) >= sizeof s->readiness_path || strpbrk(p, " \r\n\t"))
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s.readinessPath: must be a path starting with '/', at most %zu "
                                "characters, without spaces",
                                path, sizeof s->readiness_path - 1);
        snprintf(s->readiness_path, sizeof s->readiness_path, "%s", p);
    }
    json_t *mn = json_object_get(r, "modelName");
    const char *name = mn ? json_string_value(mn) : s->model;
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n >= sizeof s->model_name ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                     "OPQRSTUVWXYZ0123456789._-") != n)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.modelName: must be 1-%zu letters, digits, '.', '_' or '-' (the "
                            "model name the runtime serves)",
                            path, sizeof s->model_name - 1);
    snprintf(s->model_name, sizeof s->model_name, "%s", name);
    if ((rc = dur_field(r, path, "startupTimeout", 1, 24 * HOUR_MS, &s->startup_timeout_ms, err)) !=
            CS_OK ||
        (rc = dur_field(r, path, "probePeriod", 1, HOUR_MS, &s->probe_period_ms, err)) != CS_OK ||
        (rc = dur_field(r, path, "probeTimeout", 1, HOUR_MS, &s->probe_timeout_ms, err)) != CS_OK ||
        (rc = small_int(r, path, "failureThreshold", 1, 1000, &s->failure_threshold, err)) !=
            CS_OK ||
        (rc = dur_field(r, path, "terminationGracePeriod", 0, HOUR_MS, &s->grace_ms, err)) !=
            CS_OK ||
        (rc = dur_field(r, path, "requestTimeout", 1, 24 * HOUR_MS, &s->request_timeout_ms, err)) !=
            CS_OK ||
        (rc = string_map(r, path, "env", &s->env, err)) != CS_OK)
        return rc;
    s->command = json_deep_copy(cmd);
    return s->command ? CS_OK : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

static cs_status instances(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "instances");
    static const char *const allowed[] = {"min", "max", "targetConcurrency", "containerConcurrency",
                                          NULL};
    const char *path = "spec.instances";
    if (!o)
        o = json_object();
    else
        json_incref(o);
    cs_status rc = only(o, path, allowed, err);
    if (rc == CS_OK) rc = small_int(o, path, "min", 0, CS_DEPLOY_MAX_INST, &s->min, err);
    if (rc == CS_OK) rc = small_int(o, path, "max", 0, CS_DEPLOY_MAX_INST, &s->max, err);
    if (rc == CS_OK)
        rc = small_int(o, path, "containerConcurrency", 0, 1000, &s->container_concurrency, err);
    s->target_concurrency = 0.7 * (s->container_concurrency ? s->container_concurrency : 100);
    if (rc == CS_OK)
        rc = num_field(o, path, "targetConcurrency", 0.01, 1000, &s->target_concurrency, err);
    json_decref(o);
    if (rc != CS_OK) return rc;
    if (s->max && s->min > s->max)
        return cs_error_set(err, CS_ERR_INVALID, "%s: min %d is above max %d", path, s->min,
                            s->max);
    if (s->container_concurrency && s->target_concurrency > s->container_concurrency)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.targetConcurrency: %g is above containerConcurrency %d", path,
                            s->target_concurrency, s->container_concurrency);
    return CS_OK;
}

static cs_status batching(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "batching");
    if (!o) return CS_OK;
    static const char *const allowed[] = {"maxBatchSize", "maxQueueDelayUs", NULL};
    const char *path = "spec.batching";
    cs_status rc = only(o, path, allowed, err);
    if (rc == CS_OK) rc = small_int(o, path, "maxBatchSize", 0, 65536, &s->max_batch_size, err);
    if (rc == CS_OK)
        rc = int_field(o, path, "maxQueueDelayUs", 0, 60000000, &s->max_queue_delay_us, err);
    return rc;
}

static cs_status resources(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "resources");
    if (!o) return CS_OK;
    static const char *const top[] = {"devices", NULL}, *const dev[] = {"requests", NULL};
    cs_status rc = only(o, "spec.resources", top, err);
    json_t *d = json_object_get(o, "devices");
    if (rc == CS_OK && d) rc = only(d, "spec.resources.devices", dev, err);
    if (rc != CS_OK || !d) return rc;
    json_t *req = json_object_get(d, "requests");
    if (!json_is_array(req) || json_array_size(req) < 1 || json_array_size(req) > 32)
        return cs_error_set(err, CS_ERR_INVALID,
                            "spec.resources.devices.requests: must be a list of 1 to 32 device "
                            "requests, as in a ResourceClaim");
    s->device_requests = json_deep_copy(req);
    return s->device_requests ? CS_OK : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

static cs_status autoscaling(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "autoscaling");
    if (!o) return CS_OK;
    static const char *const allowed[] = {"stableWindow",
                                          "panicWindowPercent",
                                          "panicThresholdPercent",
                                          "scaleToZeroGracePeriod",
                                          "maxScaleUpRate",
                                          "maxScaleDownRate",
                                          NULL};
    const char *path = "spec.autoscaling";
    cs_status rc = only(o, path, allowed, err);
    if (rc == CS_OK)
        rc = dur_field(o, path, "stableWindow", 1000, HOUR_MS, &s->stable_window_ms, err);
    if (rc == CS_OK)
        rc = num_field(o, path, "panicWindowPercent", 1, 100, &s->panic_window_pct, err);
    if (rc == CS_OK)
        rc = num_field(o, path, "panicThresholdPercent", 110, 1000, &s->panic_threshold_pct, err);
    if (rc == CS_OK)
        rc = dur_field(o, path, "scaleToZeroGracePeriod", 0, HOUR_MS, &s->scale_to_zero_grace_ms,
                       err);
    if (rc == CS_OK)
        rc = num_field(o, path, "maxScaleUpRate", 1.01, 1e6, &s->max_scale_up_rate, err);
    if (rc == CS_OK)
        rc = num_field(o, path, "maxScaleDownRate", 1.01, 1e6, &s->max_scale_down_rate, err);
    return rc;
}

static cs_status restart_backoff(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "restartBackoff");
    if (!o) return CS_OK;
    static const char *const allowed[] = {"initial", "max", "resetAfter", NULL};
    const char *path = "spec.restartBackoff";
    cs_status rc = only(o, path, allowed, err);
    if (rc == CS_OK) rc = dur_field(o, path, "initial", 0, HOUR_MS, &s->backoff_initial_ms, err);
    if (rc == CS_OK) rc = dur_field(o, path, "max", 0, 24 * HOUR_MS, &s->backoff_max_ms, err);
    if (rc == CS_OK)
        rc = dur_field(o, path, "resetAfter", 1, 24 * HOUR_MS, &s->backoff_reset_ms, err);
    if (rc == CS_OK && s->backoff_max_ms < s->backoff_initial_ms)
        rc = cs_error_set(err, CS_ERR_INVALID, "%s.max: %lldms is below initial %lldms", path,
                          (long long)s->backoff_max_ms, (long long)s->backoff_initial_ms);
    return rc;
}

static cs_status steps(const json_t *o, const char *path, cs_deploy_spec *s, cs_error *err)
{
    json_t *a = json_object_get(o, "steps");
    if (!a) return CS_OK;
    size_t n = json_array_size(a);
    if (!json_is_array(a) || n < 1 || n > CS_DEPLOY_MAX_STEPS)
        return cs_error_set(err, CS_ERR_INVALID, "%s.steps: must be a list of 1 to %d steps", path,
                            CS_DEPLOY_MAX_STEPS);
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s.steps[%zu]", path, i);
        json_t *e = json_array_get(a, i);
        static const char *const allowed[] = {"setWeight", "pause", NULL};
        cs_deploy_step *st = &s->steps[i];
        *st = (cs_deploy_step){-1, 0};
        cs_status rc = only(e, p, allowed, err);
        if (rc == CS_OK) rc = small_int(e, p, "setWeight", 0, 100, &st->set_weight, err);
        if (rc == CS_OK) rc = dur_field(e, p, "pause", 1, 24 * HOUR_MS, &st->pause_ms, err);
        if (rc != CS_OK) return rc;
        if ((st->set_weight >= 0) == (st->pause_ms > 0))
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s: give exactly one of setWeight (0-100) and pause (a duration)",
                                p);
        if (st->set_weight >= 0 && st->set_weight < last)
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s.setWeight: %d is below the step before's %d (weights only "
                                "grow; abort to go back)",
                                p, st->set_weight, last);
        if (st->set_weight >= 0) last = st->set_weight;
    }
    s->n_steps = (int)n;
    return CS_OK;
}

static cs_status analysis(const json_t *o, const char *path, cs_deploy_spec *s, cs_error *err)
{
    json_t *a = json_object_get(o, "analysis");
    if (!a) return CS_OK;
    char p[48];
    snprintf(p, sizeof p, "%s.analysis", path);
    static const char *const allowed[] = {"interval", "threshold", "successRateMin",
                                          "p99MaxMs", "noTraffic", NULL};
    cs_status rc = only(a, p, allowed, err);
    if (rc == CS_OK) rc = dur_field(a, p, "interval", 100, 24 * HOUR_MS, &s->interval_ms, err);
    if (rc == CS_OK) rc = small_int(a, p, "threshold", 1, 1000, &s->threshold, err);
    if (rc == CS_OK) rc = num_field(a, p, "successRateMin", 0, 100, &s->success_rate_min, err);
    if (rc == CS_OK) rc = num_field(a, p, "p99MaxMs", 0.001, 3.6e6, &s->p99_max_ms, err);
    if (rc != CS_OK) return rc;
    json_t *nt = json_object_get(a, "noTraffic");
    if (!nt) return CS_OK;
    static const char *const modes[] = {"hold", "fail", "pass"};
    for (int i = 0; i < 3; i++)
        if (json_is_string(nt) && !strcmp(json_string_value(nt), modes[i])) {
            s->no_traffic = (cs_deploy_no_traffic)i;
            return CS_OK;
        }
    return cs_error_set(err, CS_ERR_INVALID, "%s.noTraffic: must be \"hold\", \"fail\" or \"pass\"",
                        p);
}

static cs_status rollout(const json_t *spec, cs_deploy_spec *s, cs_error *err)
{
    json_t *o = json_object_get(spec, "rollout");
    if (!o) return CS_OK;
    static const char *const allowed[] = {"strategy", "rolling", "steps", "analysis", NULL};
    const char *path = "spec.rollout";
    cs_status rc = only(o, path, allowed, err);
    if (rc != CS_OK) return rc;
    json_t *st = json_object_get(o, "strategy");
    const char *name = st ? json_string_value(st) : "rolling";
    if (name && !strcmp(name, "canary") && s->external)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s.strategy: canary needs the builtin runtime (an external "
                            "runtime's requests are not analysed yet); use \"rolling\"",
                            path);
    if (name && !strcmp(name, "canary"))
        s->strategy = CS_DEPLOY_CANARY;
    else if (!name || strcmp(name, "rolling"))
        return cs_error_set(err, CS_ERR_INVALID, "%s.strategy: must be \"rolling\" or \"canary\"",
                            path);
    json_t *r = json_object_get(o, "rolling");
    if (r) {
        static const char *const ra[] = {"maxSurge", "maxUnavailable", NULL};
        const char *rp = "spec.rollout.rolling";
        if ((rc = only(r, rp, ra, err)) == CS_OK)
            rc = amount_field(r, rp, "maxSurge", &s->max_surge, err);
        if (rc == CS_OK) rc = amount_field(r, rp, "maxUnavailable", &s->max_unavailable, err);
        if (rc != CS_OK) return rc;
        if (s->max_surge.value == 0 && s->max_unavailable.value == 0)
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s: maxSurge and maxUnavailable must not both be 0", rp);
    }
    if ((rc = steps(o, path, s, err)) != CS_OK) return rc;
    return analysis(o, path, s, err);
}

static void defaults(cs_deploy_spec *s)
{
    *s = (cs_deploy_spec){
        .stable_window_ms = 60000,
        .scale_to_zero_grace_ms = 30000,
        .panic_window_pct = 10,
        .panic_threshold_pct = 200,
        .max_scale_up_rate = 1000,
        .max_scale_down_rate = 2,
        .strategy = CS_DEPLOY_ROLLING,
        .max_surge = {25, true},
        .max_unavailable = {25, true},
        .interval_ms = 60000,
        .threshold = 1,
        .success_rate_min = 99,
        .p99_max_ms = 500,
        .no_traffic = CS_DEPLOY_NO_TRAFFIC_HOLD,
        .readiness_path = "/v2/health/ready",
        .startup_timeout_ms = 300000,
        .probe_period_ms = 10000,
        .probe_timeout_ms = 1000,
        .failure_threshold = 3,
        .grace_ms = 30000,
        .request_timeout_ms = 300000,
        .backoff_initial_ms = 10000,
        .backoff_max_ms = 300000,
        .backoff_reset_ms = 600000,
    };
    static const cs_deploy_step canary[] = {{10, 0}, {-1, 60000}, {50, 0}, {-1, 60000}};
    memcpy(s->steps, canary, sizeof canary);
    s->n_steps = 4;
}

cs_status cs_deploy_spec_parse(const json_t *doc, cs_deploy_spec *out, cs_error *err)
{
    defaults(out);
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    static const char *const meta[] = {
        "name", "labels", "annotations", "uid", "generation", "creationTimestamp", NULL};
    static const char *const spec_fields[] = {
        "model",     "traffic",     "runtime", "instances",      "batching",
        "resources", "autoscaling", "rollout", "restartBackoff", NULL};
    cs_status rc = only(doc, "(document)", top, err);
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    json_t *m = json_object_get(doc, "metadata"), *spec = json_object_get(doc, "spec");
    if (rc != CS_OK)
        ;
    else if (!api || strcmp(api, "capstan.dev/v1"))
        rc = cs_error_set(err, CS_ERR_INVALID, "apiVersion: must be \"capstan.dev/v1\"");
    else if (!kind || strcmp(kind, "Deployment"))
        rc = cs_error_set(err, CS_ERR_INVALID, "kind: must be \"Deployment\"");
    else if (!m)
        rc = cs_error_set(err, CS_ERR_INVALID, "metadata: is required (with a name)");
    else if ((rc = only(m, "metadata", meta, err)) != CS_OK ||
             (rc = name_field(m, "metadata", "name", true, out->name, err)) != CS_OK ||
             (rc = string_map(m, "metadata", "labels", &out->labels, err)) != CS_OK)
        ;
    else if (!spec)
        rc = cs_error_set(err, CS_ERR_INVALID, "spec: is required (with a model)");
    else if ((rc = only(spec, "spec", spec_fields, err)) != CS_OK ||
             (rc = name_field(spec, "spec", "model", true, out->model, err)) != CS_OK)
        ;
    else if ((rc = traffic(spec, out, err)) != CS_OK || (rc = runtime(spec, out, err)) != CS_OK ||
             (rc = instances(spec, out, err)) != CS_OK ||
             (rc = batching(spec, out, err)) != CS_OK ||
             (rc = resources(spec, out, err)) != CS_OK ||
             (rc = autoscaling(spec, out, err)) != CS_OK ||
             (rc = restart_backoff(spec, out, err)) != CS_OK)
        ;
    else
        rc = rollout(spec, out, err);
    if (rc != CS_OK) cs_deploy_spec_free(out);
    return rc;
}

void cs_deploy_spec_free(cs_deploy_spec *s)
{
    json_decref(s->labels);
    json_decref(s->command);
    json_decref(s->env);
    json_decref(s->device_requests);
    s->labels = s->command = s->env = s->device_requests = NULL;
}

/* A duration in the form the parser reads back: whole seconds as "Ns", else "Nms". */
static json_t *dur_json(int64_t ms)
{
    char b[32];
    if (ms % 1000 == 0)
        snprintf(b, sizeof b, "%llds", (long long)(ms / 1000));
    else
        snprintf(b, sizeof b, "%lldms", (long long)ms);
    return json_string(b);
}

static json_t *amount_json(cs_deploy_amount a)
{
    if (!a.percent) return json_integer(a.value);
    char b[16];
    snprintf(b, sizeof b, "%d%%", a.value);
    return json_string(b);
}

json_t *cs_deploy_spec_json(const cs_deploy_spec *s)
{
    json_t *traffic = json_array(), *steps = json_array();
    for (int i = 0; i < s->n_traffic; i++) {
        const cs_deploy_target *t = &s->traffic[i];
        json_array_append_new(
            traffic, t->alias[0] ? json_pack("{s:s, s:i}", "alias", t->alias, "percent", t->percent)
                                 : json_pack("{s:I, s:i}", "version", (json_int_t)t->version,
                                             "percent", t->percent));
    }
    for (int i = 0; i < s->n_steps; i++)
        json_array_append_new(steps,
                              s->steps[i].set_weight >= 0
                                  ? json_pack("{s:i}", "setWeight", s->steps[i].set_weight)
                                  : json_pack("{s:o}", "pause", dur_json(s->steps[i].pause_ms)));
    static const char *const no_traffic[] = {"hold", "fail", "pass"};
    json_t *runtime =
        s->external
            ? json_pack("{s:O, s:i, s:s, s:o, s:s, s:o, s:o, s:o, s:i, s:o, s:o}", "command",
                        s->command, "port", s->port, "readinessPath", s->readiness_path, "env",
                        s->env ? json_incref(s->env) : json_object(), "modelName", s->model_name,
                        "startupTimeout", dur_json(s->startup_timeout_ms), "probePeriod",
                        dur_json(s->probe_period_ms), "probeTimeout", dur_json(s->probe_timeout_ms),
                        "failureThreshold", s->failure_threshold, "terminationGracePeriod",
                        dur_json(s->grace_ms), "requestTimeout", dur_json(s->request_timeout_ms))
            : json_string("builtin");
    json_t *spec = json_pack(
        "{s:s, s:o, s:o, s:{s:i, s:i, s:f, s:i}, s:{s:i, s:I}, s:{s:o, s:f, s:f, s:o, s:f, s:f},"
        " s:{s:s, s:{s:o, s:o}, s:o, s:{s:o, s:i, s:f, s:f, s:s}}}",
        "model", s->model, "traffic", traffic, "runtime", runtime, "instances", "min", s->min,
        "max", s->max, "targetConcurrency", s->target_concurrency, "containerConcurrency",
        s->container_concurrency, "batching", "maxBatchSize", s->max_batch_size, "maxQueueDelayUs",
        (json_int_t)s->max_queue_delay_us, "autoscaling", "stableWindow",
        dur_json(s->stable_window_ms), "panicWindowPercent", s->panic_window_pct,
        "panicThresholdPercent", s->panic_threshold_pct, "scaleToZeroGracePeriod",
        dur_json(s->scale_to_zero_grace_ms), "maxScaleUpRate", s->max_scale_up_rate,
        "maxScaleDownRate", s->max_scale_down_rate, "rollout", "strategy",
        s->strategy == CS_DEPLOY_CANARY ? "canary" : "rolling", "rolling", "maxSurge",
        amount_json(s->max_surge), "maxUnavailable", amount_json(s->max_unavailable), "steps",
        steps, "analysis", "interval", dur_json(s->interval_ms), "threshold", s->threshold,
        "successRateMin", s->success_rate_min, "p99MaxMs", s->p99_max_ms, "noTraffic",
        no_traffic[s->no_traffic]);
    if (spec)
        json_object_set_new(spec, "restartBackoff",
                            json_pack("{s:o, s:o, s:o}", "initial", dur_json(s->backoff_initial_ms),
                                      "max", dur_json(s->backoff_max_ms), "resetAfter",
                                      dur_json(s->backoff_reset_ms)));
    if (spec && s->device_requests)
        json_object_set_new(spec, "resources",
                            json_pack("{s:{s:O}}", "devices", "requests", s->device_requests));
    json_t *meta = json_pack("{s:s}", "name", s->name);
    if (meta && s->labels) json_object_set(meta, "labels", s->labels);
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "capstan.dev/v1", "kind", "Deployment",
                     "metadata", meta, "spec", spec);
}

int cs_deploy_amount_of(cs_deploy_amount a, int desired, bool round_up)
{
    if (!a.percent) return a.value;
    double v = (double)a.value * desired / 100.0;
    return (int)(round_up ? ceil(v) : floor(v));
}

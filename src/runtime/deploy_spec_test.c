/*
 * deploy_spec_test.c - Deployment documents: the full example decodes with every
 * field; defaults are the anchors'; the canonical JSON parses back to itself (an external
 * runtime's too); each kind of bad document is refused with its field path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/deploy_spec.h"

#include <stdlib.h>
#include <string.h>

static const char *const full =
    "{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\","
    " \"metadata\": {\"name\": \"digits\", \"labels\": {\"team\": \"vision\"}},"
    " \"spec\": {\"model\": \"digits\","
    "  \"traffic\": [{\"alias\": \"prod\", \"percent\": 90}, {\"version\": 3, \"percent\": 10}],"
    "  \"runtime\": \"builtin\","
    "  \"instances\": {\"min\": 0, \"max\": 4, \"targetConcurrency\": 4, "
    "\"containerConcurrency\": 0},"
    "  \"batching\": {\"maxBatchSize\": 16, \"maxQueueDelayUs\": 500},"
    "  \"resources\": {\"devices\": {\"requests\": [{\"name\": \"cpu\", \"exactly\": "
    "{\"deviceClassName\": \"cpu.capstan.dev\", \"capacity\": {\"requests\": {\"cores\": 1}}}}]}},"
    "  \"autoscaling\": {\"stableWindow\": \"60s\", \"panicWindowPercent\": 10, "
    "\"panicThresholdPercent\": 200, \"scaleToZeroGracePeriod\": \"30s\", \"maxScaleUpRate\": "
    "1000, \"maxScaleDownRate\": 2},"
    "  \"rollout\": {\"strategy\": \"canary\", \"steps\": [{\"setWeight\": 10}, {\"pause\": "
    "\"60s\"}, {\"setWeight\": 50}, {\"pause\": \"1m30s\"}],"
    "   \"analysis\": {\"interval\": \"30s\", \"threshold\": 2, \"successRateMin\": 99, "
    "\"p99MaxMs\": 50, \"noTraffic\": \"fail\"}}}}";

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    return j;
}

static void test_full_example(void **state)
{
    (void)state;
    json_t *doc = load(full);
    cs_deploy_spec s;
    cs_error err;
    assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_OK);
    assert_string_equal(s.name, "digits");
    assert_string_equal(s.model, "digits");
    assert_string_equal(json_string_value(json_object_get(s.labels, "team")), "vision");
    assert_int_equal(s.n_traffic, 2);
    assert_string_equal(s.traffic[0].alias, "prod");
    assert_int_equal(s.traffic[0].percent, 90);
    assert_int_equal(s.traffic[1].version, 3);
    assert_false(s.external);
    assert_int_equal(s.max, 4);
    assert_true(s.target_concurrency == 4);
    assert_int_equal(s.max_batch_size, 16);
    assert_int_equal(s.max_queue_delay_us, 500);
    assert_int_equal(json_array_size(s.device_requests), 1);
    assert_int_equal(s.strategy, CS_DEPLOY_CANARY);
    assert_int_equal(s.n_steps, 4);
    assert_int_equal(s.steps[3].pause_ms, 90000);
    assert_int_equal(s.steps[2].set_weight, 50);
    assert_int_equal(s.interval_ms, 30000);
    assert_int_equal(s.threshold, 2);
    assert_true(s.p99_max_ms == 50);
    assert_int_equal(s.no_traffic, CS_DEPLOY_NO_TRAFFIC_FAIL);

    /* The canonical form parses back to the same canonical form. */
    json_t *c1 = cs_deploy_spec_json(&s);
    cs_deploy_spec s2;
    assert_int_equal(cs_deploy_spec_parse(c1, &s2, &err), CS_OK);
    json_t *c2 = cs_deploy_spec_json(&s2);
    assert_true(json_equal(c1, c2));
    json_decref(c1);
    json_decref(c2);
    cs_deploy_spec_free(&s2);
    cs_deploy_spec_free(&s);
    json_decref(doc);
}

static void test_defaults(void **state)
{
    (void)state;
    json_t *doc = load("{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", "
                       "\"metadata\": {\"name\": \"a\"}, \"spec\": {\"model\": \"m\"}}");
    cs_deploy_spec s;
    cs_error err;
    assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_OK);
    assert_int_equal(s.n_traffic, 1);
    assert_string_equal(s.traffic[0].alias, "prod");
    assert_int_equal(s.min, 0);
    assert_int_equal(s.max, 0);
    assert_true(s.target_concurrency == 70);
    assert_int_equal(s.stable_window_ms, 60000);
    assert_int_equal(s.scale_to_zero_grace_ms, 30000);
    assert_true(s.panic_threshold_pct == 200 && s.max_scale_down_rate == 2);
    assert_int_equal(s.strategy, CS_DEPLOY_ROLLING);
    assert_true(s.max_surge.percent && s.max_surge.value == 25);
    assert_int_equal(cs_deploy_amount_of(s.max_surge, 3, true), 1);
    assert_int_equal(cs_deploy_amount_of(s.max_unavailable, 3, false), 0);
    assert_int_equal(s.threshold, 1);
    assert_int_equal(s.no_traffic, CS_DEPLOY_NO_TRAFFIC_HOLD);
    cs_deploy_spec_free(&s);
    json_decref(doc);

    /* containerConcurrency sets the target to 70% of it. */
    doc = load("{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": "
               "{\"name\": \"a\"}, \"spec\": {\"model\": \"m\", \"instances\": "
               "{\"containerConcurrency\": 10}}}");
    assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_OK);
    assert_true(s.target_concurrency == 7);
    cs_deploy_spec_free(&s);
    json_decref(doc);
}

/* An external runtime with every field: decoded, and the canonical form parses back to itself;
 * with only command and port, the anchors' defaults. */
static void test_external_runtime(void **state)
{
    (void)state;
    json_t *doc = load(
        "{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": "
        "{\"name\": \"ext\"}, \"spec\": {\"model\": \"digits\", \"runtime\": {\"command\": "
        "[\"capstan\", \"serve\", \"--port\", \"$(PORT)\"], \"port\": 9100, \"readinessPath\": "
        "\"/ready\", \"env\": {\"A\": \"1\"}, \"modelName\": \"Digits_1.0\", "
        "\"startupTimeout\": \"20s\", \"probePeriod\": \"500ms\", \"probeTimeout\": \"200ms\", "
        "\"failureThreshold\": 2, \"terminationGracePeriod\": \"0s\", \"requestTimeout\": "
        "\"5s\"}, \"restartBackoff\": {\"initial\": \"1s\", \"max\": \"4s\", \"resetAfter\": "
        "\"1m\"}}}");
    cs_deploy_spec s, s2;
    cs_error err;
    assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_OK);
    assert_true(s.external);
    assert_int_equal(json_array_size(s.command), 4);
    assert_int_equal(s.port, 9100);
    assert_string_equal(s.readiness_path, "/ready");
    assert_string_equal(s.model_name, "Digits_1.0");
    assert_int_equal(s.startup_timeout_ms, 20000);
    assert_int_equal(s.probe_period_ms, 500);
    assert_int_equal(s.probe_timeout_ms, 200);
    assert_int_equal(s.failure_threshold, 2);
    assert_int_equal(s.grace_ms, 0);
    assert_int_equal(s.request_timeout_ms, 5000);
    assert_int_equal(s.backoff_initial_ms, 1000);
    assert_int_equal(s.backoff_max_ms, 4000);
    assert_int_equal(s.backoff_reset_ms, 60000);
    json_t *c1 = cs_deploy_spec_json(&s);
    assert_int_equal(cs_deploy_spec_parse(c1, &s2, &err), CS_OK);
    json_t *c2 = cs_deploy_spec_json(&s2);
    assert_true(json_equal(c1, c2));
    json_decref(c1);
    json_decref(c2);
    cs_deploy_spec_free(&s);
    cs_deploy_spec_free(&s2);
    json_decref(doc);

    doc = load("{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": "
               "{\"name\": \"ext\"}, \"spec\": {\"model\": \"digits\", \"runtime\": "
               "{\"command\": [\"srv\"], \"port\": 9100}}}");
    assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_OK);
    assert_string_equal(s.readiness_path, "/v2/health/ready");
    assert_string_equal(s.model_name, "digits");
    assert_int_equal(s.startup_timeout_ms, 300000);
    assert_int_equal(s.probe_period_ms, 10000);
    assert_int_equal(s.probe_timeout_ms, 1000);
    assert_int_equal(s.failure_threshold, 3);
    assert_int_equal(s.grace_ms, 30000);
    assert_int_equal(s.request_timeout_ms, 300000);
    assert_int_equal(s.backoff_initial_ms, 10000);
    assert_int_equal(s.backoff_max_ms, 300000);
    assert_int_equal(s.backoff_reset_ms, 600000);
    c1 = cs_deploy_spec_json(&s);
    json_t *env = json_object_get(json_object_get(json_object_get(c1, "spec"), "runtime"), "env");
    assert_true(json_is_object(env) && json_object_size(env) == 0);
    json_decref(c1);
    cs_deploy_spec_free(&s);
    json_decref(doc);
}

/* Each case: a spec fragment (inside a valid document) and what the error must say. */
static void test_refused(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"\"traffic\": [{\"alias\": \"prod\", \"percent\": 90}, {\"version\": 3, \"percent\": 20}]",
         "spec.traffic: percents sum to 110, must be 100"},
        {"\"traffic\": [{\"alias\": \"prod\", \"version\": 2, \"percent\": 100}]",
         "spec.traffic[0]: give exactly one of alias and version"},
        {"\"traffic\": [{\"version\": 0, \"percent\": 100}]", "spec.traffic[0].version"},
        {"\"traffic\": [{\"alias\": \"prod\"}]", "spec.traffic[0].percent: is required"},
        {"\"traffic\": [{\"alias\": \"a\", \"percent\": 50}, {\"alias\": \"a\", \"percent\": 50}]",
         "spec.traffic[1]: names the same target"},
        {"\"instances\": {\"min\": 5, \"max\": 2}", "spec.instances: min 5 is above max 2"},
        {"\"instances\": {\"mni\": 1}", "spec.instances.mni: unknown field (allowed: min, max"},
        {"\"instances\": {\"max\": -1}", "spec.instances.max: must be an integer from 0 to 256"},
        {"\"autoscaling\": {\"stableWindow\": \"forever\"}", "spec.autoscaling.stableWindow"},
        {"\"autoscaling\": {\"stableWindow\": 60}", "spec.autoscaling.stableWindow: must be a"},
        {"\"rollout\": {\"strategy\": \"bluegreen\"}", "spec.rollout.strategy: must be"},
        {"\"rollout\": {\"steps\": [{\"setWeight\": 50}, {\"setWeight\": 10}]}",
         "spec.rollout.steps[1].setWeight: 10 is below"},
        {"\"rollout\": {\"steps\": [{\"setWeight\": 50, \"pause\": \"1s\"}]}",
         "spec.rollout.steps[0]: give exactly one"},
        {"\"rollout\": {\"analysis\": {\"noTraffic\": \"maybe\"}}",
         "spec.rollout.analysis.noTraffic"},
        {"\"rollout\": {\"rolling\": {\"maxSurge\": 0, \"maxUnavailable\": 0}}",
         "must not both be 0"},
        {"\"rollout\": {\"rolling\": {\"maxSurge\": \"150%\"}}", "spec.rollout.rolling.maxSurge"},
        {"\"runtime\": {\"port\": 8000}", "spec.runtime.command: is required"},
        {"\"runtime\": {\"command\": [\"srv\"]}", "spec.runtime.port: is required"},
        {"\"runtime\": \"docker\"", "spec.runtime: must be \"builtin\""},
        {"\"runtime\": {\"command\": [\"srv\", \"\"], \"port\": 1}", "spec.runtime.command: is"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 70000}", "spec.runtime.port: must be"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"readinessPath\": \"ready\"}",
         "spec.runtime.readinessPath: must be a path"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"env\": {\"A\": 1}}",
         "spec.runtime.env: must be an object"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"modelName\": \"a/b\"}",
         "spec.runtime.modelName: must be"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"probePeriod\": \"0s\"}",
         "spec.runtime.probePeriod: must be a duration"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"failureThreshold\": 0}",
         "spec.runtime.failureThreshold: must be an integer from 1"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1, \"image\": \"x\"}",
         "spec.runtime.image: unknown field"},
        {"\"restartBackoff\": {\"initial\": \"10s\", \"max\": \"1s\"}",
         "spec.restartBackoff.max: 1000ms is below initial 10000ms"},
        {"\"restartBackoff\": {\"resetAfter\": \"0s\"}", "spec.restartBackoff.resetAfter"},
        {"\"runtime\": {\"command\": [\"srv\"], \"port\": 1}, \"rollout\": {\"strategy\": "
         "\"canary\"}",
         "spec.rollout.strategy: canary needs the builtin runtime"},
        {"\"resources\": {\"devices\": {\"requests\": []}}", "spec.resources.devices.requests"},
        {"\"colour\": 1", "spec.colour: unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": "
                 "{\"name\": \"a\"}, \"spec\": {\"model\": \"m\", %s}}",
                 cases[i][0]);
        json_t *doc = load(text);
        cs_deploy_spec s;
        cs_error err;
        assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_ERR_INVALID);
        if (!strstr(err.msg, cases[i][1]))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i][1]);
        assert_null(s.labels);
        json_decref(doc);
    }
    static const char *const docs[][2] = {
        {"{\"apiVersion\": \"v1\", \"kind\": \"Deployment\"}", "apiVersion: must be"},
        {"{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Pod\"}", "kind: must be"},
        {"{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": "
         "\"Bad_Name\"}}",
         "metadata.name: must be"},
        {"{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": "
         "\"a\"}}",
         "spec: is required"},
        {"{\"apiVersion\": \"capstan.dev/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": "
         "\"a\"}, \"spec\": {}}",
         "spec.model: is required"},
        {"[1]", "(document): must be an object"},
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *doc = load(docs[i][0]);
        cs_deploy_spec s;
        cs_error err;
        assert_int_equal(cs_deploy_spec_parse(doc, &s, &err), CS_ERR_INVALID);
        if (!strstr(err.msg, docs[i][1]))
            fail_msg("doc %zu: '%s' lacks '%s'", i, err.msg, docs[i][1]);
        json_decref(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_external_runtime),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * otlp_test.c - the OpenTelemetry configuration and sampler: every OTEL_* variable read or
 * refused with its name, the parent-based and ratio samplers' decisions, and span text
 * bounded however long the values. Export itself is tested end to end (tests/otlp).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "obs/otlp.h"

#include <stdlib.h>
#include <string.h>

static const char *const vars[] = {
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    cs_otlp_options o;
    cs_error err;
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.endpoint, ""); /* nothing is exported unless asked */
    assert_string_equal(o.service_name, "capstan");
    assert_int_equal(o.sampler, CS_OTLP_PARENT_ALWAYS_ON);
    assert_int_equal(o.schedule_delay_ms, 5000);
    assert_int_equal(o.max_batch, 512);
    assert_int_equal(o.max_queue, 2048);
    assert_int_equal(o.export_timeout_ms, 30000);
    assert_int_equal(o.request_timeout_ms, 10000);
}

/* OTEL_EXPORTER_OTLP_(TRACES_)HEADERS: W3C baggage syntax, percent-decoded, the traces
 * variable instead of the generic one; a bad member refused by its place, never its value. */
static void test_headers(void **state)
{
    (void)state;
    cs_otlp_options o;
    cs_error err;
    setenv("OTEL_EXPORTER_OTLP_HEADERS", " api-key = s%3Dcret ,, Authorization=Bearer%20T x,", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.headers, "api-key: s=cret\nAuthorization: Bearer T x\n");
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=t1", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.headers, "X-Tenant: t1\n");
    static const struct {
        const char *value, *msg;
    } bad[] = {
        {"a=1,secret-without-equals", "OTEL_EXPORTER_OTLP_TRACES_HEADERS: member 2: expected"},
        {"bad key=1", "member 1: expected key=value"},
        {"=1", "member 1: expected key=value"},
        {"k=%zz", "header 'k': a '%' must start a %XX escape"},
        {"k=%4", "header 'k': a '%' must start a %XX escape"},
        {"k=a%0d%0aInjected: 1", "header 'k': control characters are not allowed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", bad[i].value, 1);
        assert_int_equal(cs_otlp_options_env(&o, &err), CS_ERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i].msg));
        assert_null(strstr(err.msg, "secret"));
    }
    char big[CS_OTLP_HEADERS_MAX + 16];
    memset(big, 'v', sizeof big - 1);
    memcpy(big, "k=", 2);
    big[sizeof big - 1] = '\0';
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", big, 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "longer than 4095 bytes"));
}

static void test_endpoints(void **state)
{
    (void)state;
    cs_otlp_options o;
    cs_error err;
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.endpoint, "http://collector:4318/v1/traces");
    /* The signal-specific variable is the URL as given, and wins. */
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c:4318/custom", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.endpoint, "https://c:4318/custom");
    assert_int_equal(cs_otlp_options_endpoint(&o, "http://x:1", &err), CS_OK);
    assert_string_equal(o.endpoint, "http://x:1/v1/traces");
    assert_int_equal(cs_otlp_options_endpoint(&o, "grpc://x:4317", &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "--otlp-endpoint: expected an http:// or https:// URL"));
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.endpoint, "");
    unsetenv("OTEL_TRACES_EXPORTER");
    setenv("OTEL_SDK_DISABLED", "TRUE", 1);
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    assert_string_equal(o.endpoint, "");
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *var, *value, *msg;
    } bad[] = {
        {"OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER: expected always_on"},
        {"OTEL_BSP_SCHEDULE_DELAY", "-5", "OTEL_BSP_SCHEDULE_DELAY: expected an integer"},
        {"OTEL_BSP_MAX_QUEUE_SIZE", "0", "OTEL_BSP_MAX_QUEUE_SIZE: expected an integer 1.."},
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "12x", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
        {"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER: expected otlp or none"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env(NULL);
        setenv(bad[i].var, bad[i].value, 1);
        cs_otlp_options o;
        cs_error err;
        assert_int_equal(cs_otlp_options_env(&o, &err), CS_ERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i].msg));
    }
    clear_env(NULL);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
    cs_otlp_options o;
    cs_error err;
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "OTEL_TRACES_SAMPLER_ARG: expected a ratio 0..1"));
}

/* A real exporter (pointing nowhere) for the sampler decisions, which read its options. */
static cs_otlp *exporter(const char *sampler, const char *arg)
{
    clear_env(NULL);
    setenv("OTEL_TRACES_SAMPLER", sampler, 1);
    if (arg) setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
    cs_otlp_options o;
    cs_error err;
    assert_int_equal(cs_otlp_options_env(&o, &err), CS_OK);
    cs_otlp *e = NULL;
    assert_int_equal(cs_otlp_new(&o, NULL, &e, &err), CS_OK);
    return e;
}

static void test_samplers(void **state)
{
    (void)state;
    cs_trace_ctx on = {.flags = CS_TRACE_FLAG_SAMPLED}, off = {.flags = 0};
    uint8_t low[16] = {0}, high[16];
    memset(high, 0xff, sizeof high);
    /* No exporter: parent-based, roots sampled. */
    assert_true(cs_otlp_sampled(NULL, NULL, high));
    assert_false(cs_otlp_sampled(NULL, &off, high));
    assert_true(cs_otlp_sampled(NULL, &on, high));
    cs_otlp *e = exporter("always_off", NULL);
    assert_false(cs_otlp_sampled(e, &on, low));
    assert_false(cs_otlp_sampled(e, NULL, low));
    cs_otlp_free(e);
    e = exporter("always_on", NULL);
    assert_true(cs_otlp_sampled(e, &off, high));
    cs_otlp_free(e);
    e = exporter("parentbased_always_off", NULL);
    assert_true(cs_otlp_sampled(e, &on, high));
    assert_false(cs_otlp_sampled(e, NULL, low));
    cs_otlp_free(e);
    /* Ratio 0.5: the trace id's low 56 bits decide; a parent overrides when parent-based. */
    e = exporter("traceidratio", "0.5");
    assert_true(cs_otlp_sampled(e, NULL, low));
    assert_false(cs_otlp_sampled(e, NULL, high));
    assert_false(cs_otlp_sampled(e, &on, high));
    cs_otlp_free(e);
    e = exporter("parentbased_traceidratio", "0.5");
    assert_true(cs_otlp_sampled(e, &on, high));
    assert_false(cs_otlp_sampled(e, &off, low));
    assert_true(cs_otlp_sampled(e, NULL, low));
    assert_false(cs_otlp_sampled(e, NULL, high));
    cs_otlp_free(e);
    e = exporter("traceidratio", "0");
    assert_false(cs_otlp_sampled(e, NULL, low));
    cs_otlp_free(e);
}

static void test_span_bounds(void **state)
{
    (void)state;
    cs_trace_ctx c = {.trace_id = {1}, .span_id = {2}, .flags = 1};
    cs_span s;
    cs_span_init(&s, &c, NULL, NULL, CS_SPAN_SERVER, "GET /x", 200, 100);
    assert_true(s.end_unix_ns == s.start_unix_ns); /* an end before its start is clamped */
    assert_false(s.has_parent);
    char big[3000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < CS_SPAN_MAX_ATTRS + 4; i++) cs_span_str(&s, "k", big);
    assert_true(s.n_attrs <= CS_SPAN_MAX_ATTRS);
    assert_true(s.text_len <= CS_SPAN_TEXT_MAX);
    assert_int_equal(s.text[CS_SPAN_TEXT_MAX - 1], '\0'); /* the cut value is terminated */
    cs_span_int(&s, "n", 5);
    assert_true(s.n_attrs <= CS_SPAN_MAX_ATTRS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_endpoints, clear_env),
        cmocka_unit_test_setup(test_headers, clear_env),
        cmocka_unit_test_setup(test_refused, clear_env),
        cmocka_unit_test_setup(test_samplers, clear_env),
        cmocka_unit_test_setup(test_span_bounds, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

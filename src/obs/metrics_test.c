/*
 * metrics_test.c - the registry through its rendering: every test parses the text back
 * (names, unescaped labels, values) and checks what a scraper would read, plus
 * registration rules, concurrent updates with exact totals, and allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "obs/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

/* ---- a small parser for the text format, strict about escapes -------------------- */

#define MAX_SAMPLES 512

typedef struct sample {
    char name[128];
    char labels[512]; /* k=v,k=v with values unescaped, in rendered order */
    double value;
    int line; /* line number, to check ordering */
} sample;

typedef struct parsed {
    sample s[MAX_SAMPLES];
    int n;
    char types[64][128]; /* "name type" from # TYPE lines, in order */
    int n_types;
} parsed;

static const char *parse_labels(const char *p, char *dst, size_t cap)
{
    size_t at = 0;
    dst[0] = '\0';
    if (*p != '{') return p;
    p++;
    while (*p != '}') {
        if (at) dst[at++] = ',';
        while (*p != '=') dst[at++] = *p++;
        dst[at++] = *p++;
        assert_int_equal(*p++, '"');
        while (*p != '"') {
            char c = *p++;
            if (c == '\\') {
                c = *p++;
                assert_true(c == '\\' || c == '"' || c == 'n');
                if (c == 'n') c = '\n';
            } else {
                assert_int_not_equal(c, '\n');
            }
            dst[at++] = c;
            assert_true(at < cap - 2);
        }
        p++;
        if (*p == ',') p++;
    }
    dst[at] = '\0';
    return p + 1;
}

static void parse(const char *text, parsed *out)
{
    memset(out, 0, sizeof *out);
    int line = 0;
    for (const char *p = text; *p; line++) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol); /* every line ends with a newline */
        if (strncmp(p, "# TYPE ", 7) == 0) {
            assert_true(out->n_types < 64);
            snprintf(out->types[out->n_types++], 128, "%.*s", (int)(eol - p - 7), p + 7);
        } else if (*p != '#') {
            assert_true(out->n < MAX_SAMPLES);
            sample *s = &out->s[out->n++];
            size_t nlen = strcspn(p, "{ ");
            snprintf(s->name, sizeof s->name, "%.*s", (int)nlen, p);
            const char *q = parse_labels(p + nlen, s->labels, sizeof s->labels);
            assert_int_equal(*q, ' ');
            char *end = NULL;
            s->value = strtod(q + 1, &end);
            assert_ptr_equal(end, eol);
            s->line = line;
        }
        p = eol + 1;
    }
}

static const sample *find(const parsed *ps, const char *name, const char *labels)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->s[i].name, name) == 0 && strcmp(ps->s[i].labels, labels) == 0)
            return &ps->s[i];
    return NULL;
}

static double value_of(const parsed *ps, const char *name, const char *labels)
{
    const sample *s = find(ps, name, labels);
    if (!s) fail_msg("no sample %s{%s}", name, labels);
    return s->value;
}

static char *render(cs_metrics *r, parsed *ps)
{
    char *text = NULL;
    size_t len = 0;
    cs_error err;
    assert_int_equal(cs_metrics_render(r, &text, &len, &err), CS_OK);
    assert_int_equal(strlen(text), len);
    parse(text, ps);
    return text;
}

static parsed ps; /* large: kept off the stack */

/* ---- tests ------------------------------------------------------------------------- */

static void test_counters_gauges_and_order(void **state)
{
    cs_metrics *r = NULL;
    cs_error err;
    assert_int_equal(cs_metrics_new(&r, &err), CS_OK);
    const char *const labels[] = {"model", "code", NULL};
    cs_metric_family *req =
        cs_metrics_family(r, CS_METRIC_COUNTER, "req_total", "Requests.", labels, NULL, 0);
    cs_metric_family *temp = cs_metrics_family(r, CS_METRIC_GAUGE, "temp", "Temp.", NULL, NULL, 0);
    cs_metric_family *empty =
        cs_metrics_family(r, CS_METRIC_GAUGE, "unused", "No series.", labels, NULL, 0);
    assert_non_null(req);
    assert_non_null(temp);
    assert_non_null(empty);

    const char *b200[] = {"b", "200"}, *a500[] = {"a", "500"};
    cs_metric *m1 = cs_metric_get(req, b200);
    cs_metric *m2 = cs_metric_get(req, a500);
    const char *none404[] = {"", "404"};
    cs_metric_add(cs_metric_get(req, none404), 1);
    assert_ptr_equal(cs_metric_get(req, b200), m1);
    assert_ptr_not_equal(m1, m2);
    cs_metric_add(m1, 3);
    cs_metric_add(m1, 0.5);
    cs_metric_add(m2, 1e15);
    cs_metric *t = cs_metric_get(temp, NULL);
    cs_metric_set(t, 0.1);
    cs_metric_add(t, -2);
    assert_true(cs_metric_value(m1) == 3.5);
    assert_true(fabs(cs_metric_value(t) - (0.1 - 2)) < 1e-12);

    char *text = render(r, &ps);
    assert_true(value_of(&ps, "req_total", "model=b,code=200") == 3.5);
    assert_true(value_of(&ps, "req_total", "model=a,code=500") == 1e15);
    assert_true(value_of(&ps, "temp", "") == 0.1 - 2);
    /* Series in creation order, families in registration order, the empty one absent. */
    assert_true(find(&ps, "req_total", "model=b,code=200")->line <
                find(&ps, "req_total", "model=a,code=500")->line);
    assert_string_equal(ps.types[0], "req_total counter");
    assert_string_equal(ps.types[1], "temp gauge");
    assert_string_equal(ps.types[2], "process_cpu_seconds_total counter");
    assert_null(strstr(text, "unused"));
    /* An empty label value is left out, as Prometheus reads it anyway. */
    assert_non_null(strstr(text, "\nreq_total{code=\"404\"} 1\n"));
    assert_null(strstr(text, "model=\"\""));
    assert_non_null(strstr(text, "# HELP req_total Requests.\n# TYPE req_total counter\n"));
    cs_free(text);

    cs_metric_set(t, -INFINITY);
    text = render(r, &ps);
    assert_non_null(strstr(text, "\ntemp -Inf\n"));
    cs_free(text);
    cs_metric_set(t, NAN);
    text = render(r, &ps);
    assert_non_null(strstr(text, "\ntemp NaN\n"));
    cs_free(text);
    cs_metrics_free(r);
}

static void test_histogram_buckets(void **state)
{
    cs_metrics *r = NULL;
    assert_int_equal(cs_metrics_new(&r, NULL), CS_OK);
    const char *const labels[] = {"model", NULL};
    const double bounds[] = {1, 2, 4};
    cs_metric_family *h =
        cs_metrics_family(r, CS_METRIC_HISTOGRAM, "batch", "Batch.", labels, bounds, 3);
    cs_metric_family *lat =
        cs_metrics_family(r, CS_METRIC_HISTOGRAM, "lat_seconds", "Latency.", NULL, NULL, 0);
    assert_non_null(h);
    assert_non_null(lat);
    const char *m[] = {"x"};
    cs_metric *s = cs_metric_get(h, m);
    const double obs[] = {0.5, 1, 1.5, 3, 100, 4};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) cs_metric_observe(s, obs[i]);
    assert_true(cs_metric_value(s) == 6);
    cs_metric_observe(cs_metric_get(lat, NULL), 0.003);

    char *text = render(r, &ps);
    assert_true(value_of(&ps, "batch_bucket", "model=x,le=1") == 2);
    assert_true(value_of(&ps, "batch_bucket", "model=x,le=2") == 3);
    assert_true(value_of(&ps, "batch_bucket", "model=x,le=4") == 5);
    assert_true(value_of(&ps, "batch_bucket", "model=x,le=+Inf") == 6);
    assert_true(value_of(&ps, "batch_sum", "model=x") == 110);
    assert_true(value_of(&ps, "batch_count", "model=x") == 6);
    assert_string_equal(ps.types[0], "batch histogram");

    /* The default latency buckets: 100 us to 10 s in a 1-2.5-5 progression. */
    assert_int_equal(cs_metrics_latency_bucket_count, 16);
    assert_true(cs_metrics_latency_buckets[0] == 0.0001);
    assert_true(cs_metrics_latency_buckets[15] == 10);
    static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                     "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                     "1",      "2.5",     "5",      "10",    "+Inf"};
    double prev = 0;
    for (int i = 0; i < 17; i++) {
        char l[32];
        snprintf(l, sizeof l, "le=%s", le[i]);
        double v = value_of(&ps, "lat_seconds_bucket", l);
        assert_true(v == (i >= 5 ? 1 : 0));
        assert_true(v >= prev);
        prev = v;
    }
    assert_true(value_of(&ps, "lat_seconds_sum", "") == 0.003);
    cs_free(text);
    cs_metrics_free(r);
}

static void test_escaping(void **state)
{
    cs_metrics *r = NULL;
    assert_int_equal(cs_metrics_new(&r, NULL), CS_OK);
    const char *const labels[] = {"v", NULL};
    cs_metric_family *f =
        cs_metrics_family(r, CS_METRIC_COUNTER, "esc_total",
                          "Help with \\ and\nnewline \"quoted\".", labels, NULL, 0);
    const char *nasty[] = {"a\"b\\c\nd é"};
    const char *plain[] = {"1:x"};  /* looks like the index's length prefix */
    const char *plain2[] = {"1:x"}; /* a distinct pointer to the same text */
    cs_metric_add(cs_metric_get(f, nasty), 1);
    cs_metric_add(cs_metric_get(f, plain), 2);
    assert_ptr_equal(cs_metric_get(f, plain2), cs_metric_get(f, plain));

    char *text = render(r, &ps);
    assert_non_null(strstr(text, "esc_total{v=\"a\\\"b\\\\c\\nd é\"} 1\n"));
    assert_non_null(strstr(text, "# HELP esc_total Help with \\\\ and\\nnewline \"quoted\".\n"));
    assert_true(value_of(&ps, "esc_total", "v=a\"b\\c\nd é") == 1);
    assert_true(value_of(&ps, "esc_total", "v=1:x") == 2);
    cs_free(text);
    cs_metrics_free(r);
}

static void test_registration_rules(void **state)
{
    cs_metrics *r = NULL;
    assert_int_equal(cs_metrics_new(&r, NULL), CS_OK);
    const char *const ab[] = {"a", "b", NULL}, *const ba[] = {"b", "a", NULL};
    const char *const a[] = {"a", NULL};
    const double b3[] = {1, 2, 3}, b3inf[] = {1, 2, 3, INFINITY}, b2[] = {1, 2};
    cs_metric_family *c = cs_metrics_family(r, CS_METRIC_COUNTER, "c_total", "C.", ab, NULL, 0);
    assert_non_null(c);
    assert_ptr_equal(cs_metrics_family(r, CS_METRIC_COUNTER, "c_total", "Other help.", ab, NULL, 0),
                     c);
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "c_total", "C.", ab, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_COUNTER, "c_total", "C.", ba, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_COUNTER, "c_total", "C.", a, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_COUNTER, "c_total", "C.", NULL, NULL, 0));

    cs_metric_family *h = cs_metrics_family(r, CS_METRIC_HISTOGRAM, "h", "H.", a, b3, 3);
    assert_non_null(h);
    assert_ptr_equal(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "h", "H.", a, b3inf, 4), h);
    assert_null(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "h", "H.", a, b2, 2));
    assert_null(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "h", "H.", a, NULL, 0));

    /* Invalid names, labels and buckets are refused. */
    const char *const bad_label[] = {"1a", NULL}, *const reserved[] = {"__x", NULL};
    const char *const dup[] = {"a", "a", NULL}, *const le[] = {"le", NULL};
    const double unsorted[] = {1, 3, 2}, with_nan[] = {1, NAN};
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "", "x", NULL, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "9lives", "x", NULL, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "a-b", "x", NULL, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, NULL, "x", NULL, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "process_mine", "x", NULL, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "g", "x", bad_label, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "g", "x", reserved, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "g", "x", dup, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "g", "x", le, NULL, 0));
    assert_null(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "g", "x", NULL, unsorted, 3));
    assert_null(cs_metrics_family(r, CS_METRIC_HISTOGRAM, "g", "x", NULL, with_nan, 2));
    assert_null(cs_metrics_family(r, (cs_metric_type)7, "g", "x", NULL, NULL, 0));
    assert_non_null(cs_metrics_family(r, CS_METRIC_GAUGE, "ns:g", "x", le, NULL, 0));

    /* A series needs a value for every label. */
    const char *one_null[] = {"x", NULL};
    assert_null(cs_metric_get(c, NULL));
    assert_null(cs_metric_get(c, one_null));
    assert_null(cs_metric_get(NULL, NULL));
    cs_metrics_free(r);
}

static void test_process_metrics(void **state)
{
    cs_metrics *r = NULL;
    assert_int_equal(cs_metrics_new(&r, NULL), CS_OK);
    char *text = render(r, &ps);
    double now = (double)time(NULL);
    assert_true(value_of(&ps, "process_resident_memory_bytes", "") > 0);
    assert_true(value_of(&ps, "process_virtual_memory_bytes", "") >=
                value_of(&ps, "process_resident_memory_bytes", ""));
    assert_true(value_of(&ps, "process_cpu_seconds_total", "") >= 0);
    assert_true(value_of(&ps, "process_threads", "") >= 1);
    assert_true(value_of(&ps, "process_open_fds", "") >= 1);
    assert_true(value_of(&ps, "process_max_fds", "") >= value_of(&ps, "process_open_fds", ""));
    double start = value_of(&ps, "process_start_time_seconds", "");
    assert_true(start > now - 3600 && start <= now + 2);
    cs_free(text);
    cs_metrics_free(r);
}

/* ---- concurrency: exact totals; TSan checks the rest ------------------------------- */

#define THREADS 8
#define ITERS   20000

typedef struct shared {
    cs_metric_family *counter, *hist;
    cs_metrics *r;
} shared;

static void *worker(void *arg)
{
    shared *sh = arg;
    const char *v[] = {"same"};
    /* Every thread finds (or races to create) the same series. */
    cs_metric *c = cs_metric_get(sh->counter, v);
    cs_metric *h = cs_metric_get(sh->hist, v);
    for (int i = 0; i < ITERS; i++) {
        cs_metric_add(c, 1);
        cs_metric_observe(h, (double)(i % 4) * 0.5); /* exact in binary */
    }
    return c;
}

static void *scraper(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < 20; i++) {
        char *text = NULL;
        size_t len = 0;
        if (cs_metrics_render(sh->r, &text, &len, NULL) == CS_OK) cs_free(text);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    shared sh;
    assert_int_equal(cs_metrics_new(&sh.r, NULL), CS_OK);
    const char *const labels[] = {"k", NULL};
    const double bounds[] = {0.5, 1};
    sh.counter = cs_metrics_family(sh.r, CS_METRIC_COUNTER, "n_total", "N.", labels, NULL, 0);
    sh.hist = cs_metrics_family(sh.r, CS_METRIC_HISTOGRAM, "h", "H.", labels, bounds, 2);
    pthread_t t[THREADS + 1];
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, &sh), 0);
    assert_int_equal(pthread_create(&t[THREADS], NULL, scraper, &sh), 0);
    void *first = NULL;
    for (int i = 0; i < THREADS; i++) {
        void *got = NULL;
        pthread_join(t[i], &got);
        if (i == 0) first = got;
        assert_ptr_equal(got, first);
    }
    pthread_join(t[THREADS], NULL);

    char *text = render(sh.r, &ps);
    double n = (double)THREADS * ITERS;
    assert_true(value_of(&ps, "n_total", "k=same") == n);
    assert_true(value_of(&ps, "h_bucket", "k=same,le=0.5") == n / 2);
    assert_true(value_of(&ps, "h_bucket", "k=same,le=1") == n * 3 / 4);
    assert_true(value_of(&ps, "h_bucket", "k=same,le=+Inf") == n);
    assert_true(value_of(&ps, "h_count", "k=same") == n);
    assert_true(value_of(&ps, "h_sum", "k=same") == n / 4 * (0 + 0.5 + 1 + 1.5));
    cs_free(text);
    cs_metrics_free(sh.r);
}

/* ---- allocation failure at every step ---------------------------------------------- */

/* One full use of the registry; returns 1 when every step succeeded. A failed step must
 * leave nothing leaked (ASan checks) and the registry usable for the next steps. */
static int use_registry(void)
{
    cs_metrics *r = NULL;
    cs_error err;
    cs_status rc = cs_metrics_new(&r, &err);
    if (rc != CS_OK) {
        assert_int_equal(rc, CS_ERR_NOMEM);
        assert_null(r);
        return 0;
    }
    int ok = 1;
    const char *const labels[] = {"model", NULL};
    cs_metric_family *c = cs_metrics_family(r, CS_METRIC_COUNTER, "a_total", "A.", labels, NULL, 0);
    cs_metric_family *h = cs_metrics_family(r, CS_METRIC_HISTOGRAM, "b", "B.", labels, NULL, 0);
    ok &= c && h;
    const char *long_value[] = {
        "a label value long enough that its index key does not fit in the stack buffer: "
        "................................................................................"
        "................................................................................"};
    const char *v[] = {"m"};
    cs_metric *mc = c ? cs_metric_get(c, v) : NULL;
    cs_metric *ml = c ? cs_metric_get(c, long_value) : NULL;
    cs_metric *mh = h ? cs_metric_get(h, v) : NULL;
    ok &= mc && ml && mh;
    if (mc) cs_metric_add(mc, 1);
    if (mh) cs_metric_observe(mh, 0.2);
    char *text = NULL;
    size_t len = 0;
    rc = cs_metrics_render(r, &text, &len, &err);
    if (rc == CS_OK) {
        assert_non_null(text);
        cs_free(text);
    } else {
        assert_int_equal(rc, CS_ERR_NOMEM);
        assert_null(text);
        assert_non_null(strstr(err.msg, "out of memory"));
        ok = 0;
    }
    cs_metrics_free(r);
    return ok;
}

static void test_allocation_failure(void **state)
{
    int n = 0;
    for (;; n++) {
        cs_alloc_fail_after(n);
        int ok = use_registry();
        cs_alloc_fail_after(-1);
        if (ok) break;
        assert_true(n < 1000);
    }
    assert_true(n > 5); /* the loop did exercise failures */

    /* After failures the same registry recovers: a refused series can be made later. */
    cs_metrics *r = NULL;
    assert_int_equal(cs_metrics_new(&r, NULL), CS_OK);
    cs_metric_family *g = cs_metrics_family(r, CS_METRIC_GAUGE, "g", "G.", NULL, NULL, 0);
    assert_non_null(g);
    cs_alloc_fail_after(0);
    assert_null(cs_metric_get(g, NULL));
    assert_null(cs_metrics_family(r, CS_METRIC_GAUGE, "g2", "G.", NULL, NULL, 0));
    cs_alloc_fail_after(-1);
    cs_metric *m = cs_metric_get(g, NULL);
    assert_non_null(m);
    cs_metric_set(m, 4);
    char *text = render(r, &ps);
    assert_true(value_of(&ps, "g", "") == 4);
    cs_free(text);
    cs_metrics_free(r);
}

/* Buckets and quantiles as Prometheus' histogram_quantile computes them. */
static void test_quantile(void **state)
{
    (void)state;
    cs_metrics *r;
    cs_error err;
    assert_int_equal(cs_metrics_new(&r, &err), CS_OK);
    static const double b[] = {0.01, 0.1, 1};
    cs_metric_family *f = cs_metrics_family(r, CS_METRIC_HISTOGRAM, "q_seconds", "q", NULL, b, 3);
    cs_metric *m = cs_metric_get(f, NULL);
    for (int i = 0; i < 90; i++) cs_metric_observe(m, 0.005); /* 90 in (0, 0.01] */
    for (int i = 0; i < 10; i++) cs_metric_observe(m, 0.5);   /* 10 in (0.1, 1] */
    uint64_t c[8];
    const double *bounds;
    assert_int_equal(cs_metric_buckets(m, c, 8, &bounds), 4);
    assert_true(c[0] == 90 && c[1] == 0 && c[2] == 10 && c[3] == 0);
    assert_true(fabs(cs_metric_quantile(0.5, c, 4, bounds) - 0.01 * 50 / 90) < 1e-12);
    /* rank 99 is the 9th of the 10 in (0.1, 1]: 0.1 + 0.9 * 9/10. */
    assert_true(fabs(cs_metric_quantile(0.99, c, 4, bounds) - 0.91) < 1e-12);
    c[3] = 1000; /* mostly +Inf: the highest bound */
    assert_true(cs_metric_quantile(0.99, c, 4, bounds) == 1);
    uint64_t zero[4] = {0};
    assert_true(isnan(cs_metric_quantile(0.99, zero, 4, bounds)));
    cs_metrics_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_quantile, reset_alloc),
        cmocka_unit_test_teardown(test_counters_gauges_and_order, reset_alloc),
        cmocka_unit_test_teardown(test_histogram_buckets, reset_alloc),
        cmocka_unit_test_teardown(test_escaping, reset_alloc),
        cmocka_unit_test_teardown(test_registration_rules, reset_alloc),
        cmocka_unit_test_teardown(test_process_metrics, reset_alloc),
        cmocka_unit_test_teardown(test_concurrent_updates, reset_alloc),
        cmocka_unit_test_teardown(test_allocation_failure, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

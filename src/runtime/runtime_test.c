/*
 * runtime_test.c - the serving runtime on real ONNX models: the digits example model
 * (image [batch,1,8,8] -> probabilities [batch,10]) and a Relu over x [N,M] whose ONNX
 * bytes the test writes itself (two dynamic dimensions, so shapes can disagree).
 *
 * Batching is checked under concurrency against plain single-row session runs; queue
 * limits, deadlines, priorities, unload, drain and shutdown use a "gate" request whose
 * `done` callback blocks the only worker, so that later requests stay queued on purpose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/metrics.h"
#include "runtime/runtime.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIGITS   CS_SOURCE_DIR "/models/digits.onnx"
#define MAX_ELEM 64

/* ---- a hand-written ONNX model: Relu over x[dims] (dims < 0 are symbolic) ------------- */

typedef struct pb {
    uint8_t b[512];
    size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v)
{
    do {
        assert_true(p->n < sizeof p->b);
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void pb_int(pb *p, int field, uint64_t v)
{
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, v);
}

static void pb_bytes(pb *p, int field, const void *d, size_t n)
{
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    assert_true(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_str(pb *p, int field, const char *s)
{
    pb_bytes(p, field, s, strlen(s));
}

static void pb_msg(pb *p, int field, const pb *sub)
{
    pb_bytes(p, field, sub->b, sub->n);
}

/* ValueInfoProto{name, type{tensor_type{elem_type float, shape{dim...}}}} */
static void value_info(pb *out, const char *name, const int64_t *dims, int rank)
{
    static const char *const syms[] = {"N", "M"};
    pb shape = {0}, tensor = {0}, type = {0};
    for (int d = 0; d < rank; d++) {
        pb dim = {0};
        if (dims[d] < 0)
            pb_str(&dim, 2, syms[d]);
        else
            pb_int(&dim, 1, (uint64_t)dims[d]);
        pb_msg(&shape, 1, &dim);
    }
    pb_int(&tensor, 1, CS_DTYPE_FLOAT32);
    pb_msg(&tensor, 2, &shape);
    pb_msg(&type, 1, &tensor);
    pb_str(out, 1, name);
    pb_msg(out, 2, &type);
}

/* Writes the model to a temporary file; the caller unlinks *path. */
static void write_relu_model(char *path, size_t cap, const int64_t *dims, int rank)
{
    pb node = {0}, in = {0}, out = {0}, graph = {0}, opset = {0}, model = {0};
    pb_str(&node, 1, "x");
    pb_str(&node, 2, "y");
    pb_str(&node, 4, "Relu");
    value_info(&in, "x", dims, rank);
    value_info(&out, "y", dims, rank);
    pb_msg(&graph, 1, &node);
    pb_str(&graph, 2, "relu");
    pb_msg(&graph, 11, &in);
    pb_msg(&graph, 12, &out);
    pb_str(&opset, 1, "");
    pb_int(&opset, 2, 13);
    pb_int(&model, 1, 7);
    pb_msg(&model, 7, &graph);
    pb_msg(&model, 8, &opset);
    snprintf(path, cap, "/tmp/cs_runtime_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, model.b, model.n), (ssize_t)model.n);
    close(fd);
}

/* ---- requests and their answers --------------------------------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_order;
static bool g_gate_open, g_gate_entered;

typedef struct job {
    /* what was sent: borrowed by the runtime until done */
    const char *name;
    cs_tensor in;
    float data[MAX_ELEM];
    bool gate; /* done blocks until the gate opens */
    /* what came back (g_lock) */
    bool done;
    cs_status rc;
    char msg[CS_ERROR_MSG_MAX];
    int n_outputs;
    bool had_outputs;
    cs_tensor out;
    float out_data[MAX_ELEM];
    int order;
    pthread_t thread; /* the one that called done */
} job;

static void on_done(void *ud, cs_status rc, const char *msg, int n_outputs,
                    const cs_tensor *outputs)
{
    job *j = ud;
    pthread_mutex_lock(&g_lock);
    if (j->gate) {
        g_gate_entered = true;
        pthread_cond_broadcast(&g_cond);
        while (!g_gate_open) pthread_cond_wait(&g_cond, &g_lock);
    }
    j->rc = rc;
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "");
    /* No cmocka asserts here: this runs on a worker thread. Oddities show in `out`. */
    j->n_outputs = n_outputs;
    j->had_outputs = outputs != NULL;
    if (rc == CS_OK && n_outputs == 1 && cs_tensor_numel(&outputs[0]) <= MAX_ELEM) {
        j->out = outputs[0];
        memcpy(j->out_data, outputs[0].data, (size_t)cs_tensor_numel(&outputs[0]) * sizeof(float));
    }
    j->order = ++g_order;
    j->thread = pthread_self();
    j->done = true;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

/* A float tensor named `name` of the given shape, filled with distinct positive values. */
static void job_init(job *j, const char *name, int rank, const int64_t *dims, int seed)
{
    memset(j, 0, sizeof *j);
    j->name = name;
    j->in.dtype = CS_DTYPE_FLOAT32;
    j->in.rank = rank;
    memcpy(j->in.dims, dims, (size_t)rank * sizeof dims[0]);
    j->in.data = j->data;
    int64_t n = cs_tensor_numel(&j->in);
    assert_true(n <= MAX_ELEM);
    for (int64_t k = 0; k < n; k++) j->data[k] = (float)((seed * 37 + k * 11) % 17) + 0.25f;
}

static void digits_job(job *j, int seed)
{
    static const int64_t dims[] = {1, 1, 8, 8};
    job_init(j, "image", 4, dims, seed);
}

static cs_status submit(cs_rt_model *m, job *j, int priority, uint64_t deadline, cs_error *err)
{
    cs_infer_request req = {.n_inputs = 1,
                            .input_names = &j->name,
                            .inputs = &j->in,
                            .priority = priority,
                            .deadline_ns = deadline,
                            .done = on_done,
                            .ud = j};
    return cs_rt_model_submit(m, &req, err);
}

static void submit_ok(cs_rt_model *m, job *j, int priority, uint64_t deadline)
{
    cs_error err;
    cs_status rc = submit(m, j, priority, deadline, &err);
    if (rc) fail_msg("submit: %s", err.msg);
}

static void wait_jobs(job *jobs, int n)
{
    uint64_t limit = cs_now_ns() + 60ull * 1000000000u;
    pthread_mutex_lock(&g_lock);
    for (int k = 0; k < n; k++)
        while (!jobs[k].done) {
            pthread_mutex_unlock(&g_lock);
            assert_true(cs_now_ns() < limit);
            cs_sleep_ns(200 * 1000);
            pthread_mutex_lock(&g_lock);
        }
    pthread_mutex_unlock(&g_lock);
}

/* Submits a gate request and returns once its done callback holds the worker. */
static void close_gate(cs_rt_model *m, job *gate)
{
    pthread_mutex_lock(&g_lock);
    g_gate_open = g_gate_entered = false;
    g_order = 0;
    pthread_mutex_unlock(&g_lock);
    digits_job(gate, 0);
    gate->gate = true;
    submit_ok(m, gate, 0, 0);
    pthread_mutex_lock(&g_lock);
    while (!g_gate_entered) pthread_cond_wait(&g_cond, &g_lock);
    pthread_mutex_unlock(&g_lock);
}

/* Holds the worker with a gate request, then queues n digits jobs behind it (priorities
 * from prio, or 0). */
static void queue_behind_gate(cs_rt_model *m, job *gate, job *jobs, int n, const int *prio)
{
    close_gate(m, gate);
    for (int k = 0; k < n; k++) {
        digits_job(&jobs[k], k + 1);
        submit_ok(m, &jobs[k], prio ? prio[k] : 0, 0);
    }
}

static void open_gate(void)
{
    pthread_mutex_lock(&g_lock);
    g_gate_open = true;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

static cs_runtime *new_runtime(int max_threads)
{
    cs_runtime *rt = NULL;
    cs_error err;
    cs_rt_options opts = {.max_threads = max_threads};
    assert_int_equal(cs_runtime_new(&opts, &rt, &err), CS_OK);
    return rt;
}

static cs_rt_model *load(cs_runtime *rt, const char *name, const char *path,
                         const cs_model_config *cfg)
{
    cs_error err;
    cs_status rc = cs_runtime_load(rt, name, "1", path, cfg, &err);
    if (rc) fail_msg("load: %s", err.msg);
    cs_rt_model *m = cs_runtime_acquire(rt, name, "1");
    assert_non_null(m);
    return m;
}

/* One instance, no batching: requests run one at a time in queue order. */
static cs_rt_model *load_serial(cs_runtime *rt, int max_queue)
{
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_queue_size = max_queue;
    return load(rt, "digits", DIGITS, &cfg);
}

/* digits with the default options but max_batch_size. */
static cs_rt_model *load_digits(cs_runtime *rt, int max_batch)
{
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = max_batch;
    return load(rt, "digits", DIGITS, &cfg);
}

/* ---- running on the caller's thread ------------------------------------------------------ */

/* A version that does not batch runs fast requests on the submitting thread once a worker
 * has timed one: done has run, on this thread, when submit returns, with the same answer
 * the worker gave. A batching version never does, nor any version when it is turned off.
 * The bound is set far above any run here, so that sanitizer builds time alike. */
static void run_three(cs_rt_model *m, const job *first, bool inline_expected)
{
    static job again[3];
    for (int k = 0; k < 3; k++) {
        digits_job(&again[k], 5);
        submit_ok(m, &again[k], 0, 0);
        wait_jobs(&again[k], 1);
        assert_int_equal(pthread_equal(again[k].thread, pthread_self()) != 0, inline_expected);
        assert_int_equal(again[k].rc, CS_OK);
        assert_memory_equal(again[k].out_data, first->out_data, 10 * sizeof(float));
        while (cs_rt_model_in_flight(m)) cs_sleep_ns(100 * 1000); /* its timing is in */
    }
}

static void test_fast_unbatched_requests_run_inline(void **state)
{
    const int bounds[] = {1000 * 1000, -1};
    for (int b = 0; b < 2; b++) {
        cs_runtime *rt = NULL;
        cs_error err;
        cs_rt_options opts = {.max_threads = 2, .inline_max_us = bounds[b]};
        assert_int_equal(cs_runtime_new(&opts, &rt, &err), CS_OK);
        for (int max_batch = 0; max_batch <= 4; max_batch += 4) {
            cs_rt_model *m = load_digits(rt, max_batch);
            static job first;
            digits_job(&first, 5);
            submit_ok(m, &first, 0, 0);
            wait_jobs(&first, 1);
            assert_false(pthread_equal(first.thread, pthread_self())); /* untimed: a worker */
            while (cs_rt_model_in_flight(m)) cs_sleep_ns(100 * 1000);
            run_three(m, &first, bounds[b] > 0 && max_batch == 0);
            cs_rt_stats st;
            cs_rt_model_stats(m, &st);
            assert_int_equal(st.success.count, 4);
            cs_rt_model_release(m);
            assert_int_equal(cs_runtime_unload(rt, "digits", "1", &err), CS_OK);
        }
        cs_runtime_free(rt);
    }
    cs_runtime *rt = NULL;
    cs_error err;
    cs_rt_options bad = {.inline_max_us = -2};
    assert_int_equal(cs_runtime_new(&bad, &rt, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "inline_max_us"));
}

/* ---- batching ------------------------------------------------------------------------- */

#define CLIENTS    8
#define PER_CLIENT 16

typedef struct client {
    cs_rt_model *m;
    job jobs[PER_CLIENT];
    int id;
} client;

/* Each client submits single rows one after another, waiting for each answer. */
static void *client_main(void *arg)
{
    client *c = arg;
    for (int k = 0; k < PER_CLIENT; k++) {
        digits_job(&c->jobs[k], c->id * PER_CLIENT + k + 1);
        submit_ok(c->m, &c->jobs[k], 0, 0);
        wait_jobs(&c->jobs[k], 1);
    }
    return NULL;
}

static void test_batching_matches_single_runs(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_queue_delay_us = 5000;
    cs_rt_model *m = load(rt, "digits", DIGITS, &cfg);

    static client clients[CLIENTS];
    pthread_t th[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        clients[c] = (client){.m = m, .id = c};
        assert_int_equal(pthread_create(&th[c], NULL, client_main, &clients[c]), 0);
    }
    for (int c = 0; c < CLIENTS; c++) pthread_join(th[c], NULL);

    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    assert_int_equal(st.inference_count, CLIENTS * PER_CLIENT);
    assert_int_equal(st.fail.count, 0);
    assert_true(st.execution_count < st.inference_count);
    cs_rt_batch_stats bs[9];
    assert_int_equal(cs_rt_model_batch_sizes(m), 9); /* never more than max_batch_size rows */
    cs_rt_model_batch_stats(m, bs, 9);
    uint64_t batched = 0, runs = 0;
    for (int b = 1; b < 9; b++) {
        runs += bs[b].compute_infer.count;
        if (b > 1) batched += bs[b].compute_infer.count;
        assert_true(bs[b].compute_infer.count == 0 || bs[b].compute_infer.ns > 0);
    }
    assert_int_equal(runs, st.execution_count);
    assert_true(batched > 0);
    assert_true(st.compute_infer.ns <= st.success.ns);

    /* Every answer equals the same row run alone through a plain session. */
    cs_model_t *model = NULL;
    cs_session_t *s = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_file(DIGITS, &model, &err), CS_OK);
    assert_int_equal(cs_session_new(model, &(cs_session_options){.threads = 1}, &s, &err), CS_OK);
    for (int c = 0; c < CLIENTS; c++)
        for (int k = 0; k < PER_CLIENT; k++) {
            job *j = &clients[c].jobs[k];
            cs_tensor ref;
            assert_int_equal(cs_session_run(s, 1, &j->name, &j->in, 1, &ref, &err), CS_OK);
            assert_int_equal(j->rc, CS_OK);
            assert_int_equal(j->n_outputs, 1);
            assert_int_equal(j->out.rank, 2);
            assert_int_equal(j->out.dims[0], 1);
            assert_int_equal(j->out.dims[1], 10);
            for (int e = 0; e < 10; e++)
                assert_true(fabsf(j->out_data[e] - ((float *)ref.data)[e]) <= 1e-6f);
        }
    cs_session_free(s);
    cs_model_free(model);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

static void test_incompatible_shapes_never_share(void **state)
{
    char path[64];
    write_relu_model(path, sizeof path, (const int64_t[]){-1, -1}, 2);
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_queue_delay_us = 50 * 1000;
    cs_rt_model *m = load(rt, "relu", path, &cfg);

    /* Widths 3 and 5 interleaved, some with two rows: two groups that must not mix. */
    enum { N = 8 };
    static job jobs[N];
    static const int64_t shapes[N][2] = {{1, 3}, {1, 5}, {2, 3}, {1, 5},
                                         {1, 3}, {2, 5}, {1, 3}, {1, 5}};
    for (int k = 0; k < N; k++) {
        job_init(&jobs[k], "x", 2, shapes[k], k + 1);
        submit_ok(m, &jobs[k], 0, 0);
    }
    wait_jobs(jobs, N);
    for (int k = 0; k < N; k++) {
        assert_int_equal(jobs[k].rc, CS_OK);
        assert_int_equal(jobs[k].out.rank, 2);
        assert_int_equal(jobs[k].out.dims[0], shapes[k][0]);
        assert_int_equal(jobs[k].out.dims[1], shapes[k][1]);
        /* Relu of positive values is the identity: the rows are this request's own. */
        assert_memory_equal(jobs[k].out_data, jobs[k].data,
                            (size_t)(shapes[k][0] * shapes[k][1]) * sizeof(float));
    }
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    assert_true(st.execution_count >= 2);
    assert_true(st.execution_count < N);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
    unlink(path);
}

/* A model whose batch dimension is fixed cannot be batched; one with a symbolic one can. */
static void test_batching_needs_dynamic_first_dim(void **state)
{
    char path[64];
    write_relu_model(path, sizeof path, (const int64_t[]){2, 3}, 2);
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 4;
    cs_error err;
    assert_int_equal(cs_runtime_load(rt, "fixed", "1", path, &cfg, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "input 'x'"));
    assert_null(cs_runtime_acquire(rt, "fixed", NULL));
    cfg.max_batch_size = 0;
    assert_int_equal(cs_runtime_load(rt, "fixed", "1", path, &cfg, &err), CS_OK);
    cs_runtime_free(rt);
    unlink(path);
}

/* Preferred sizes run at once; the partial batch left at unload does not wait its delay. */
static void test_preferred_sizes_and_flush(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_queue_delay_us = 10 * 1000 * 1000;
    cfg.preferred_batch_sizes[0] = 2;
    cfg.n_preferred = 1;
    cs_rt_model *m = load(rt, "digits", DIGITS, &cfg);
    static job jobs[5];
    uint64_t start = cs_now_ns();
    for (int k = 0; k < 4; k++) {
        digits_job(&jobs[k], k + 1);
        submit_ok(m, &jobs[k], 0, 0);
    }
    wait_jobs(jobs, 4);
    digits_job(&jobs[4], 5);
    submit_ok(m, &jobs[4], 0, 0);
    cs_error err;
    assert_int_equal(cs_runtime_unload(rt, "digits", NULL, &err), CS_OK);
    assert_true(jobs[4].done);
    assert_true(cs_now_ns() - start < 5ull * 1000000000u); /* no 10 s delay was waited */
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    cs_rt_batch_stats bs[3];
    cs_rt_model_batch_stats(m, bs, 3);
    assert_int_equal(bs[2].compute_infer.count, 2);
    assert_int_equal(bs[1].compute_infer.count, 1);
    for (int k = 0; k < 5; k++) assert_int_equal(jobs[k].rc, CS_OK);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

/* Recorded series as a scraper reads them. */
static void test_metrics(void **state)
{
    cs_metrics *reg = NULL;
    cs_error err;
    assert_int_equal(cs_metrics_new(&reg, &err), CS_OK);
    cs_runtime *rt = NULL;
    cs_rt_options opts = {.max_threads = 2, .metrics = reg};
    assert_int_equal(cs_runtime_new(&opts, &rt, &err), CS_OK);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 4;
    cfg.preferred_batch_sizes[0] = 3;
    cfg.n_preferred = 1;
    cfg.max_queue_delay_us = 10 * 1000 * 1000;
    cs_rt_model *m = load(rt, "digits", DIGITS, &cfg);
    static job jobs[3];
    for (int k = 0; k < 3; k++) {
        digits_job(&jobs[k], k + 1);
        submit_ok(m, &jobs[k], 0, 0);
    }
    wait_jobs(jobs, 3);
    assert_int_equal(cs_runtime_drain(rt, 10ull * 1000000000u, &err), CS_OK);

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cs_metrics_render(reg, &text, &len, &err), CS_OK);
    static const char *const want[] = {
        "capstan_request_duration_seconds_count{model=\"digits\",version=\"1\"} 3",
        "capstan_queue_duration_seconds_count{model=\"digits\",version=\"1\"} 3",
        "capstan_compute_duration_seconds_count{model=\"digits\",version=\"1\"} 3",
        "capstan_batch_size_count{model=\"digits\",version=\"1\"} 1",
        "capstan_batch_size_bucket{model=\"digits\",version=\"1\",le=\"2\"} 0",
        "capstan_batch_size_bucket{model=\"digits\",version=\"1\",le=\"4\"} 1",
        "capstan_queue_depth{model=\"digits\",version=\"1\"} 0",
        "capstan_inflight_requests{model=\"digits\",version=\"1\"} 0",
        "capstan_model_load_duration_seconds{model=\"digits\",version=\"1\"} ",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        if (!strstr(text, want[k])) fail_msg("missing '%s' in:\n%s", want[k], text);
    cs_free(text);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
    cs_metrics_free(reg);
}

/* ---- limits, deadlines and priorities ------------------------------------------------- */

static void test_queue_full(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 3);
    static job gate, jobs[4];
    queue_behind_gate(m, &gate, jobs, 3, NULL);
    assert_int_equal(cs_rt_model_queue_depth(m), 3);
    assert_int_equal(cs_rt_model_in_flight(m), 1);
    cs_error err;
    digits_job(&jobs[3], 4);
    assert_int_equal(submit(m, &jobs[3], 0, 0, &err), CS_ERR_LIMIT);
    assert_string_equal(err.msg, "queue is full (3 requests)");
    open_gate();
    wait_jobs(jobs, 3);
    for (int k = 0; k < 3; k++) assert_int_equal(jobs[k].rc, CS_OK);
    assert_false(jobs[3].done);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

static void test_deadline_exceeded_never_runs(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 0);
    static job gate, late, fine;
    close_gate(m, &gate);
    digits_job(&late, 1);
    digits_job(&fine, 2);
    submit_ok(m, &late, 0, cs_now_ns() + 2 * 1000 * 1000);
    submit_ok(m, &fine, 0, 0);
    cs_sleep_ns(10 * 1000 * 1000);
    open_gate();
    wait_jobs(&late, 1);
    wait_jobs(&fine, 1);
    assert_int_equal(late.rc, CS_ERR_TIMEOUT);
    assert_non_null(strstr(late.msg, "deadline exceeded"));
    assert_int_equal(late.n_outputs, 0);
    assert_false(late.had_outputs);
    assert_int_equal(fine.rc, CS_OK);
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    assert_int_equal(st.execution_count, 2); /* the gate and `fine` */
    assert_int_equal(st.fail.count, 1);
    assert_true(st.fail.ns > 0);

    /* A deadline already past is refused at submit. */
    cs_error err;
    assert_int_equal(submit(m, &late, 0, 1, &err), CS_ERR_TIMEOUT);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

static void test_priorities_order(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 0);
    static job gate, jobs[6];
    static const int prio[6] = {0, 3, 1, 2, 1, 0};
    static const int expect[6] = {5, 4, 1, 3, 2, 6}; /* answer order after the gate (1) */
    queue_behind_gate(m, &gate, jobs, 6, prio);
    cs_error err;
    assert_int_equal(submit(m, &jobs[0], -1, 0, &err), CS_ERR_INVALID);
    open_gate();
    wait_jobs(jobs, 6);
    for (int k = 0; k < 6; k++) {
        assert_int_equal(jobs[k].rc, CS_OK);
        assert_int_equal(jobs[k].order, expect[k] + 1);
    }
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

/* ---- unload, drain, shutdown ---------------------------------------------------------- */

typedef struct unloader {
    cs_runtime *rt;
    cs_status rc;
} unloader;

static void *unload_main(void *arg)
{
    unloader *u = arg;
    cs_error err;
    u->rc = cs_runtime_unload(u->rt, "digits", "1", &err);
    return NULL;
}

static void test_unload_completes_queued(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 0);
    static job gate, jobs[4], refused;
    queue_behind_gate(m, &gate, jobs, 4, NULL);
    unloader u = {.rt = rt, .rc = CS_ERR_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, unload_main, &u), 0);
    /* The version leaves the registry at once and refuses new requests. */
    cs_error err;
    digits_job(&refused, 9);
    while (submit(m, &refused, 0, 0, &err) != CS_ERR_SHUTDOWN) cs_sleep_ns(100 * 1000);
    assert_null(cs_runtime_acquire(rt, "digits", NULL));
    open_gate();
    pthread_join(th, NULL);
    assert_int_equal(u.rc, CS_OK);
    for (int k = 0; k < 4; k++) {
        assert_true(jobs[k].done);
        assert_int_equal(jobs[k].rc, CS_OK);
    }
    assert_int_equal(cs_runtime_unload(rt, "digits", "1", &err), CS_ERR_NOT_FOUND);
    cs_rt_model_release(m); /* the last reference frees the version */
    cs_runtime_free(rt);
}

static void test_drain_with_timeout(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 0);
    static job gate, jobs[2], refused;
    queue_behind_gate(m, &gate, jobs, 2, NULL);
    cs_error err;
    assert_int_equal(cs_runtime_drain(rt, 20 * 1000 * 1000, &err), CS_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "3 requests"));
    digits_job(&refused, 3);
    assert_int_equal(submit(m, &refused, 0, 0, &err), CS_ERR_SHUTDOWN);
    open_gate();
    assert_int_equal(cs_runtime_drain(rt, 30ull * 1000000000u, &err), CS_OK);
    for (int k = 0; k < 2; k++) {
        assert_true(jobs[k].done);
        assert_int_equal(jobs[k].rc, CS_OK);
    }
    assert_int_equal(cs_rt_model_queue_depth(m), 0);
    assert_int_equal(cs_rt_model_in_flight(m), 0);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

static void *free_main(void *arg)
{
    cs_runtime_free(arg);
    return NULL;
}

static void test_free_drops_queued(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_serial(rt, 0);
    static job gate, jobs[2], refused;
    queue_behind_gate(m, &gate, jobs, 2, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, free_main, rt), 0);
    cs_error err;
    digits_job(&refused, 3);
    while (submit(m, &refused, 0, 0, &err) != CS_ERR_SHUTDOWN) cs_sleep_ns(100 * 1000);
    open_gate();
    pthread_join(th, NULL);
    assert_int_equal(gate.rc, CS_OK); /* the running request finished */
    for (int k = 0; k < 2; k++) assert_int_equal(jobs[k].rc, CS_ERR_SHUTDOWN);
    cs_rt_model_release(m);
}

/* ---- loading, versions, budget, bad input --------------------------------------------- */

static void count_models(void *ud, const cs_rt_model *m)
{
    (*(int *)ud)++;
}

static void test_versions_and_budget(void **state)
{
    cs_runtime *rt = new_runtime(3);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cs_error err;
    assert_int_equal(cs_runtime_load(rt, "digits", "9", DIGITS, &cfg, &err), CS_OK);
    cfg.instances = 2;
    assert_int_equal(cs_runtime_load(rt, "digits", "10", DIGITS, &cfg, &err), CS_OK);
    assert_int_equal(cs_runtime_load(rt, "digits", "10", DIGITS, &cfg, &err), CS_ERR_EXISTS);

    /* 3 threads are in use: one more instance is over the budget. */
    cfg.instances = 1;
    assert_int_equal(cs_runtime_load(rt, "other", "1", DIGITS, &cfg, &err), CS_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "--threads"));
    assert_null(cs_runtime_acquire(rt, "other", NULL));

    cs_rt_model *m = cs_runtime_acquire(rt, "digits", NULL);
    assert_non_null(m);
    assert_string_equal(cs_rt_model_version(m), "10"); /* numeric, not string, order */
    assert_int_equal(cs_rt_model_config(m)->instances, 2);
    assert_int_equal(cs_rt_model_config(m)->max_queue_size, 1024);
    assert_int_equal(cs_model_input_count(cs_rt_model_engine(m)), 1);
    cs_rt_model_release(m);
    int n = 0;
    cs_runtime_foreach(rt, count_models, &n);
    assert_int_equal(n, 2);

    assert_int_equal(cs_runtime_unload(rt, "digits", "10", &err), CS_OK);
    assert_int_equal(cs_runtime_load(rt, "other", "1", DIGITS, &cfg, &err), CS_OK);
    cfg.threads_per_instance = 2;
    assert_int_equal(cs_runtime_load(rt, "big", "1", DIGITS, &cfg, &err), CS_ERR_LIMIT);

    assert_int_equal(cs_runtime_unload(rt, "digits", NULL, &err), CS_OK);
    assert_int_equal(cs_runtime_unload(rt, "digits", NULL, &err), CS_ERR_NOT_FOUND);
    cs_model_config_defaults(&cfg);
    assert_int_equal(cs_runtime_load(rt, "missing", "1", "/nonexistent.onnx", &cfg, &err),
                     CS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent.onnx"));
    cs_runtime_free(rt);
}

static void test_bad_config(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_error err;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 4;
    cfg.preferred_batch_sizes[0] = 8;
    cfg.n_preferred = 1;
    assert_int_equal(cs_runtime_load(rt, "d", "1", DIGITS, &cfg, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "preferred batch size 8"));
    cs_model_config_defaults(&cfg);
    cfg.instances = -1;
    assert_int_equal(cs_runtime_load(rt, "d", "1", DIGITS, &cfg, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "instances"));
    assert_int_equal(cs_runtime_load(rt, "", "1", DIGITS, NULL, &err), CS_ERR_INVALID);
    cs_runtime_free(rt);
}

/* Every allocation of a load failing in turn: a clean CS_ERR_NOMEM (or success), no leak. */
static void test_load_out_of_memory(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 4;
    cs_error err;
    cs_status rc = CS_ERR_NOMEM;
    for (long k = 0; rc != CS_OK && k < 10000; k++) {
        cs_alloc_fail_after(k);
        rc = cs_runtime_load(rt, "digits", "1", DIGITS, &cfg, &err);
        cs_alloc_fail_after(-1);
        if (rc != CS_OK && rc != CS_ERR_NOMEM) fail_msg("after %ld allocations: %s", k, err.msg);
        if (rc) assert_null(cs_runtime_acquire(rt, "digits", NULL));
    }
    assert_int_equal(rc, CS_OK);
    static job j;
    digits_job(&j, 1);
    cs_rt_model *m = cs_runtime_acquire(rt, "digits", "1");
    submit_ok(m, &j, 0, 0);
    wait_jobs(&j, 1);
    assert_int_equal(j.rc, CS_OK);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

static void expect_invalid(cs_rt_model *m, job *j, const char *want)
{
    cs_error err;
    assert_int_equal(submit(m, j, 0, 0, &err), CS_ERR_INVALID);
    if (!strstr(err.msg, want)) fail_msg("'%s' does not mention '%s'", err.msg, want);
}

static void test_invalid_inputs(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_rt_model *m = load_digits(rt, 4);
    static job j;

    digits_job(&j, 1);
    j.name = "img";
    expect_invalid(m, &j, "unknown input 'img'; the model's inputs are 'image'");
    digits_job(&j, 1);
    j.in.dtype = CS_DTYPE_INT32;
    expect_invalid(m, &j, "input 'image': expected float32, got int32");
    digits_job(&j, 1);
    j.in.dims[3] = 4;
    expect_invalid(m, &j, "input 'image': expected shape [batch,1,8,8], got [1,1,8,4]");
    digits_job(&j, 1);
    j.in.rank = 3;
    expect_invalid(m, &j, "input 'image': expected shape");
    job_init(&j, "image", 4, (const int64_t[]){5, 1, 2, 2}, 1);
    j.in.dims[2] = j.in.dims[3] = 8; /* 5 rows: more than max_batch_size; data unused */
    expect_invalid(m, &j,
                   "input 'image': batch dimension 5 must be between 1 and max_batch_size 4");
    digits_job(&j, 1);
    j.in.data = NULL;
    expect_invalid(m, &j, "input 'image' has no data");
    cs_infer_request none = {.n_inputs = 0, .done = on_done};
    cs_error err;
    assert_int_equal(cs_rt_model_submit(m, &none, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "missing input 'image'");
    none.done = NULL;
    assert_int_equal(cs_rt_model_submit(m, &none, &err), CS_ERR_INVALID);

    /* Nothing bad was queued or run. */
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    assert_int_equal(st.execution_count, 0);
    assert_int_equal(cs_rt_model_queue_depth(m), 0);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_unbatched_requests_run_inline),
        cmocka_unit_test(test_batching_matches_single_runs),
        cmocka_unit_test(test_incompatible_shapes_never_share),
        cmocka_unit_test(test_batching_needs_dynamic_first_dim),
        cmocka_unit_test(test_preferred_sizes_and_flush),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_deadline_exceeded_never_runs),
        cmocka_unit_test(test_priorities_order),
        cmocka_unit_test(test_unload_completes_queued),
        cmocka_unit_test(test_drain_with_timeout),
        cmocka_unit_test(test_free_drops_queued),
        cmocka_unit_test(test_versions_and_budget),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test_teardown(test_load_out_of_memory, reset_alloc),
        cmocka_unit_test(test_invalid_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * runtime_test.c - the serving runtime on real ONNX models: the digits example model
 * (image [batch,1,8,8] -> probabilities [batch,10]) and a Relu over x [N,M] whose ONNX
 * bytes the test writes itself (two dynamic dimensions, so shapes can disagree).
 *
 * Batching is checked under concurrency against plain single-row session runs; queue
 * limits, deadlines, priorities, unload, drain and shutdown use a "gate" request whose
 * `done` callback blocks the only worker, so that later requests stay queued on purpose.
 * Live instances are added and removed under a client thread's steady load; an engine that
 * fails as a faulty device would is simulated by wrapping the runtime's session run.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/metrics.h"
#include "runtime/rt_int.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
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

/* cfg.device and cfg.precision reach each instance's session: a bad name is refused at load
 * naming the field, a device or precision the machine cannot run fails the load with the
 * engine's reason (the budget's threads back), and an instance added on another device
 * shows it. */
static void test_device_and_precision(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cs_error err;
    snprintf(cfg.device, sizeof cfg.device, "gpu");
    assert_int_equal(cs_runtime_load(rt, "digits", "1", DIGITS, &cfg, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "device 'gpu'"));
    snprintf(cfg.device, sizeof cfg.device, "cpu");
    cfg.precision = CS_PRECISION_FP16;
    assert_int_not_equal(cs_runtime_load(rt, "digits", "1", DIGITS, &cfg, &err), CS_OK);
    assert_non_null(strstr(err.msg, "precision fp16 is not supported on cpu"));
    cfg.precision = CS_PRECISION_FP32;
    if (access("/dev/nvidia0", F_OK) != 0) {
        snprintf(cfg.device, sizeof cfg.device, "cuda:0");
        assert_int_not_equal(cs_runtime_load(rt, "digits", "1", DIGITS, &cfg, &err), CS_OK);
        assert_non_null(strstr(err.msg, "cuda:0"));
    }
    cfg.device[0] = '\0';
    cfg.instances = 1;
    assert_int_equal(cs_runtime_load(rt, "digits", "1", DIGITS, &cfg, &err), CS_OK); /* 2 free */
    cs_rt_model *m = cs_runtime_acquire(rt, "digits", NULL);
    assert_non_null(m);
    cs_rt_instance_info info[2];
    assert_int_equal(cs_rt_model_instances(m, info, 2), 1);
    assert_string_equal(info[0].device, "cpu");
    cs_rt_instance_opts bad = {.device = "tpu"};
    assert_int_equal(cs_rt_model_add_instance(m, &bad, NULL, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "device 'tpu'"));
    cs_rt_model_release(m);
    cs_runtime_free(rt);
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

/* max_batch_requests (containerConcurrency) caps the requests in one batch, and a batch at
 * the cap runs at once: it does not wait out the queue delay for rows it may not take. */
static void test_batch_request_cap(void **state)
{
    cs_runtime *rt = new_runtime(2);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.max_batch_size = 8;
    cfg.max_batch_requests = 3;
    cfg.max_queue_delay_us = 10 * 1000 * 1000;
    cs_rt_model *m = load(rt, "digits", DIGITS, &cfg);
    static job jobs[7];
    uint64_t start = cs_now_ns();
    for (int k = 0; k < 7; k++) digits_job(&jobs[k], k + 1);
    for (int k = 0; k < 6; k++) submit_ok(m, &jobs[k], 0, 0);
    wait_jobs(jobs, 6);
    assert_true(cs_now_ns() - start < 5ull * 1000000000u); /* full batches waited no delay */
    submit_ok(m, &jobs[6], 0, 0);
    cs_error err;
    assert_int_equal(cs_runtime_unload(rt, "digits", NULL, &err), CS_OK);
    cs_rt_batch_stats bs[9];
    cs_rt_model_batch_stats(m, bs, 9);
    uint64_t rows = 0;
    for (int b = 1; b <= 8; b++) rows += (uint64_t)b * bs[b].compute_infer.count;
    assert_int_equal(rows, 7);
    for (int b = 4; b <= 8; b++) assert_int_equal(bs[b].compute_infer.count, 0);
    assert_int_equal(bs[3].compute_infer.count, 2);
    for (int k = 0; k < 7; k++) assert_int_equal(jobs[k].rc, CS_OK);
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

/* ---- live instances ------------------------------------------------------------------------ */

static cs_runtime *new_worker_runtime(int max_threads)
{
    cs_runtime *rt = NULL;
    cs_error err;
    cs_rt_options opts = {.max_threads = max_threads, .inline_max_us = -1};
    assert_int_equal(cs_runtime_new(&opts, &rt, &err), CS_OK);
    return rt;
}

static cs_rt_model *load_instances(cs_runtime *rt, int instances)
{
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.instances = instances;
    return load(rt, "digits", DIGITS, &cfg);
}

static int add_ok(cs_rt_model *m, const cs_rt_instance_opts *o)
{
    int id = 0;
    cs_error err;
    if (cs_rt_model_add_instance(m, o, &id, &err)) fail_msg("add: %s", err.msg);
    return id;
}

static void remove_ok(cs_rt_model *m, int id)
{
    cs_error err;
    if (cs_rt_model_remove_instance(m, id, &err)) fail_msg("remove %d: %s", id, err.msg);
}

/* The instances listed, as "id:State" words ("1:Ready 2:Draining"). */
static const char *instances_str(const cs_rt_model *m)
{
    static char buf[256];
    static cs_rt_instance_info info[8];
    int n = cs_rt_model_instances(m, info, 8);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && i < 8; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d:%s", i ? " " : "", info[i].id,
                                cs_rt_instance_state_name(info[i].state));
    return buf;
}

/* A client thread: n digits requests, a few at a time with short pauses, so that the queue
 * is served while the test changes the instances. */
typedef struct feeder {
    cs_rt_model *m;
    job *jobs;
    int n;
} feeder;

static void *feed_main(void *arg)
{
    feeder *c = arg;
    for (int k = 0; k < c->n; k++) {
        cs_error err;
        cs_status rc = submit(c->m, &c->jobs[k], 0, 0, &err);
        if (rc) { /* refused: recorded as an answer, so that the test sees it */
            pthread_mutex_lock(&g_lock);
            c->jobs[k].rc = rc;
            snprintf(c->jobs[k].msg, sizeof c->jobs[k].msg, "%s", err.msg);
            c->jobs[k].done = true;
            pthread_mutex_unlock(&g_lock);
        }
        if (k % 4 == 3) cs_sleep_ns(300 * 1000);
    }
    return NULL;
}

/* Fills the feeder's jobs (before its thread runs: the test polls them) and starts it. */
static void start_feeder(feeder *c, pthread_t *th)
{
    for (int k = 0; k < c->n; k++) digits_job(&c->jobs[k], k % 7);
    assert_int_equal(pthread_create(th, NULL, feed_main, c), 0);
}

/* Every request answered CS_OK with the same probabilities as the first of its seed. */
static void expect_all_ok(job *jobs, int n)
{
    wait_jobs(jobs, n);
    for (int k = 0; k < n; k++) {
        if (jobs[k].rc != CS_OK) fail_msg("request %d: %s", k, jobs[k].msg);
        assert_memory_equal(jobs[k].out_data, jobs[k % 7].out_data, 10 * sizeof(float));
    }
}

#define LOAD_N 400

static void test_add_instance_under_load(void **state)
{
    cs_runtime *rt = new_worker_runtime(3);
    cs_rt_model *m = load_instances(rt, 1);
    static job jobs[LOAD_N];
    feeder c = {m, jobs, LOAD_N};
    pthread_t th;
    start_feeder(&c, &th);
    wait_jobs(jobs, 20);
    assert_int_equal(add_ok(m, NULL), 2);
    assert_int_equal(add_ok(m, &(cs_rt_instance_opts){.threads = 1}), 3);
    assert_string_equal(instances_str(m), "1:Ready 2:Ready 3:Ready");

    /* The budget (3 threads) is spent: a fourth is refused and nothing is left behind. */
    cs_error err;
    int id = -1;
    assert_int_equal(cs_rt_model_add_instance(m, NULL, &id, &err), CS_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "model 'digits' version '1': an instance needs 1 threads, "
                                    "but 3 of the 3 allowed are in use"));
    assert_int_equal(cs_rt_model_instances(m, NULL, 0), 3);
    pthread_join(th, NULL);
    expect_all_ok(jobs, LOAD_N);

    /* Every execution was one instance's. */
    while (cs_rt_model_in_flight(m)) cs_sleep_ns(100 * 1000);
    cs_rt_instance_info info[4];
    assert_int_equal(cs_rt_model_instances(m, info, 4), 3);
    uint64_t sum = 0;
    for (int i = 0; i < 3; i++) sum += info[i].executions;
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    assert_int_equal(sum, st.execution_count);
    assert_int_equal(st.execution_count, LOAD_N);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

typedef struct remover {
    cs_rt_model *m;
    int id;
    cs_status rc;
    atomic_bool done;
} remover;

static void *remove_main(void *arg)
{
    remover *r = arg;
    cs_error err;
    r->rc = cs_rt_model_remove_instance(r->m, r->id, &err);
    atomic_store(&r->done, true);
    return NULL;
}

/* A removed instance finishes the request it runs (DRAINING meanwhile) while another serves;
 * removing under load fails no request, and the threads go back to the budget. */
static void test_remove_instance_under_load(void **state)
{
    cs_runtime *rt = new_worker_runtime(2);
    cs_rt_model *m = load_instances(rt, 1);
    static job gate, next, jobs[LOAD_N];
    close_gate(m, &gate); /* instance 1's worker is in the gate's done */
    assert_int_equal(add_ok(m, NULL), 2);
    remover r = {.m = m, .id = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, remove_main, &r), 0);
    while (strcmp(instances_str(m), "1:Draining 2:Ready")) cs_sleep_ns(100 * 1000);
    cs_rt_instance_info info[2];
    cs_rt_model_instances(m, info, 2);
    assert_int_equal(info[0].running, 1);
    digits_job(&next, 1);
    submit_ok(m, &next, 0, 0);
    wait_jobs(&next, 1); /* served by instance 2 */
    assert_int_equal(next.rc, CS_OK);
    assert_false(atomic_load(&r.done));
    open_gate();
    pthread_join(th, NULL);
    assert_int_equal(r.rc, CS_OK);
    assert_int_equal(gate.rc, CS_OK);
    assert_string_equal(instances_str(m), "2:Ready");

    /* Under steady load: add one (the removed one's thread is free again), remove both in turn. */
    feeder c = {m, jobs, LOAD_N};
    start_feeder(&c, &th);
    wait_jobs(jobs, 20);
    assert_int_equal(add_ok(m, NULL), 3);
    wait_jobs(jobs, 120);
    remove_ok(m, 2);
    assert_string_equal(instances_str(m), "3:Ready");
    assert_int_equal(add_ok(m, NULL), 4);
    wait_jobs(jobs, 240);
    remove_ok(m, 3);
    pthread_join(th, NULL);
    expect_all_ok(jobs, LOAD_N);
    assert_string_equal(instances_str(m), "4:Ready");

    cs_error err;
    assert_int_equal(cs_rt_model_remove_instance(m, 3, &err), CS_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "model 'digits' version '1' has no instance 3");
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

/* With no instance requests wait (a deadline still answers at its time) and are served once
 * one is added; a version loaded with none does the same, and an unload answers the rest. */
static void test_zero_instances_queue_until_added(void **state)
{
    cs_runtime *rt = new_worker_runtime(1);
    cs_rt_model *m = load_instances(rt, 1);
    remove_ok(m, 1);
    assert_int_equal(cs_rt_model_instances(m, NULL, 0), 0);
    static job jobs[3], late;
    for (int k = 0; k < 3; k++) {
        digits_job(&jobs[k], k);
        submit_ok(m, &jobs[k], 0, 0);
    }
    digits_job(&late, 4);
    uint64_t t0 = cs_now_ns();
    submit_ok(m, &late, 0, t0 + 30 * 1000 * 1000);
    wait_jobs(&late, 1);
    assert_int_equal(late.rc, CS_ERR_TIMEOUT);
    assert_true(cs_now_ns() - t0 >= 30 * 1000 * 1000);
    cs_sleep_ns(20 * 1000 * 1000);
    for (int k = 0; k < 3; k++) assert_false(jobs[k].done);
    assert_int_equal(cs_rt_model_queue_depth(m), 3);
    assert_int_equal(add_ok(m, NULL), 2); /* the whole budget again */
    wait_jobs(jobs, 3);
    for (int k = 0; k < 3; k++) assert_int_equal(jobs[k].rc, CS_OK);
    cs_rt_model_release(m);

    /* Loaded with instances 0: read and checked, serving nothing, holding no thread. */
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.instances = 0;
    cs_error err;
    assert_int_equal(cs_runtime_load(rt, "none", "1", DIGITS, &cfg, &err), CS_OK);
    cs_rt_model *z = cs_runtime_acquire(rt, "none", "1");
    assert_int_equal(cs_rt_model_instances(z, NULL, 0), 0);
    static job queued[2];
    for (int k = 0; k < 2; k++) {
        digits_job(&queued[k], k);
        submit_ok(z, &queued[k], 0, 0);
    }
    assert_int_equal(cs_runtime_unload(rt, "digits", NULL, &err), CS_OK);
    assert_int_equal(add_ok(z, NULL), 1);
    wait_jobs(queued, 2);
    for (int k = 0; k < 2; k++) assert_int_equal(queued[k].rc, CS_OK);
    remove_ok(z, 1);
    for (int k = 0; k < 2; k++) {
        digits_job(&queued[k], k);
        submit_ok(z, &queued[k], 0, 0);
    }
    assert_int_equal(cs_runtime_unload(rt, "none", "1", &err), CS_OK);
    for (int k = 0; k < 2; k++) {
        assert_true(queued[k].done);
        assert_int_equal(queued[k].rc, CS_ERR_SHUTDOWN);
    }
    assert_int_equal(cs_rt_model_add_instance(z, NULL, NULL, &err), CS_ERR_SHUTDOWN);
    cs_rt_model_release(z);
    cs_runtime_free(rt);
}

/* How many of this process's threads may run on exactly CPU cpu. */
static int threads_pinned_to(int cpu)
{
    char want[16];
    snprintf(want, sizeof want, "%d\n", cpu);
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* exited meanwhile */
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "Cpus_allowed_list:", 18))
                n += !strcmp(line + 18 + strspn(line + 18, " \t"), want);
        fclose(f);
    }
    closedir(d);
    return n;
}

/* The instances' own view: ids, threads, CPUs; a pinned instance's worker and engine threads
 * all run on its CPU, and bad CPU lists are refused with the budget untouched. */
static void test_instance_info_and_pinning(void **state)
{
    cs_runtime *rt = new_worker_runtime(3);
    cs_rt_model *m = load_instances(rt, 0);
    cpu_set_t allowed;
    assert_int_equal(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &allowed)) cpu++;
    int before = threads_pinned_to(cpu);
    uint64_t t0 = cs_wall_ns();
    int id = add_ok(m, &(cs_rt_instance_opts){.threads = 2, .cpus = &cpu, .n_cpus = 1});
    assert_int_equal(id, 1);
    if (CPU_COUNT(&allowed) > 1) /* else every thread may run on that CPU only */
        assert_int_equal(threads_pinned_to(cpu) - before, 2);
    static job j;
    digits_job(&j, 3);
    submit_ok(m, &j, 0, 0);
    wait_jobs(&j, 1);
    assert_int_equal(j.rc, CS_OK);
    while (cs_rt_model_in_flight(m)) cs_sleep_ns(100 * 1000);
    cs_rt_instance_info info[2];
    assert_int_equal(cs_rt_model_instances(m, info, 2), 1);
    assert_int_equal(info[0].id, 1);
    assert_int_equal(info[0].state, CS_RT_INSTANCE_READY);
    assert_true(info[0].since_ns >= t0 && info[0].since_ns <= cs_wall_ns());
    assert_int_equal(info[0].threads, 2);
    assert_int_equal(info[0].running, 0);
    assert_int_equal(info[0].executions, 1);
    assert_int_equal(info[0].n_cpus, 1);
    assert_int_equal(info[0].cpus[0], cpu);
    assert_string_equal(info[0].reason, "");

    cs_error err;
    int bad = -1, far = CPU_SETSIZE - 1, got = 0;
    assert_int_equal(
        cs_rt_model_add_instance(m, &(cs_rt_instance_opts){.cpus = &bad, .n_cpus = 1}, &got, &err),
        CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "cpus[0]: CPU -1 is outside 0.."));
    if (!CPU_ISSET(far, &allowed)) {
        assert_int_equal(cs_rt_model_add_instance(
                             m, &(cs_rt_instance_opts){.cpus = &far, .n_cpus = 1}, &got, &err),
                         CS_ERR_INVALID);
        assert_non_null(strstr(err.msg, "cpus: cannot run on the 1 CPUs listed"));
    }
    assert_int_equal(cs_rt_model_add_instance(m, &(cs_rt_instance_opts){.threads = 2}, &got, &err),
                     CS_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "needs 2 threads, but 2 of the 3 allowed are in use"));
    assert_int_equal(
        cs_rt_model_add_instance(m, &(cs_rt_instance_opts){.threads = 300}, &got, &err),
        CS_ERR_INVALID);
    assert_int_equal(cs_rt_model_instances(m, info, 2), 1); /* failed adds leave nothing */
    remove_ok(m, 1);
    /* Joined threads may linger in /proc/self/task a moment: the kernel wakes pthread_join
     * before it unlists the exiting task. */
    for (int k = 0; k < 1000 && threads_pinned_to(cpu) != before; k++) cs_sleep_ns(1000 * 1000);
    assert_int_equal(threads_pinned_to(cpu), before);
    assert_true(add_ok(m, &(cs_rt_instance_opts){.threads = 3}) > 1); /* ids are not reused */
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

/* ---- an instance that fails ---------------------------------------------------------------- */

#define POISON      666.0f /* fails every instance it runs on */
#define POISON_ONCE 667.0f /* fails the first instance only: a fault of that device */

/* The engine, except that an input starting with POISON fails as a lost device would, and
 * one starting with POISON_ONCE does so once (the fault was the instance's, not the
 * request's: its input then reads as a plain 0). */
static cs_status faulty_run(cs_session_t *s, int n_inputs, const char *const *names,
                            const cs_tensor *inputs, int n_outputs, cs_tensor *outputs,
                            cs_error *err)
{
    float *x0 = n_inputs > 0 ? (float *)inputs[0].data : NULL;
    if (x0 && (*x0 == POISON || *x0 == POISON_ONCE)) {
        if (*x0 == POISON_ONCE) *x0 = 0.0f;
        return cs_error_set(err, CS_ERR_INTERNAL, "simulated device fault");
    }
    return cs_session_run(s, n_inputs, names, inputs, n_outputs, outputs, err);
}

static struct {
    int calls, id;
    char model[64], version[64], reason[128];
} g_failed;

static void on_failed(void *ud, const char *model, const char *version, int id, const char *reason)
{
    cs_runtime *rt = ud;
    pthread_mutex_lock(&g_lock);
    g_failed.calls++;
    g_failed.id = id;
    snprintf(g_failed.model, sizeof g_failed.model, "%s", model);
    snprintf(g_failed.version, sizeof g_failed.version, "%s", version);
    snprintf(g_failed.reason, sizeof g_failed.reason, "%s", reason);
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    /* A controller replaces it from here: the failed one's thread is back in the budget. */
    cs_rt_model *m = cs_runtime_acquire(rt, model, version);
    if (m) {
        int fresh = 0;
        cs_rt_model_add_instance(m, NULL, &fresh, NULL);
        cs_rt_model_release(m);
    }
}

/* A runtime of two threads on faulty_run whose failures on_failed records and replaces. */
static cs_runtime *faulty_runtime(void)
{
    cs_runtime *rt = NULL;
    cs_error err;
    cs_rt_options opts = {.max_threads = 2, .inline_max_us = -1, .on_instance_failed = on_failed};
    assert_int_equal(cs_runtime_new(&opts, &rt, &err), CS_OK);
    rt->run = faulty_run;
    rt->on_failed_ud = rt;
    memset(&g_failed, 0, sizeof g_failed);
    return rt;
}

static void test_failed_instance_is_reported(void **state)
{
    cs_runtime *rt = faulty_runtime();
    cs_rt_model *m = load_instances(rt, 2);
    static job bad, jobs[LOAD_N];
    feeder c = {m, jobs, LOAD_N};
    pthread_t th;
    start_feeder(&c, &th);
    wait_jobs(jobs, 20);
    digits_job(&bad, 1);
    bad.data[0] = POISON_ONCE;
    submit_ok(m, &bad, 0, 0);
    wait_jobs(&bad, 1);
    assert_int_equal(bad.rc, CS_OK); /* retried on the other instance, which served it */
    pthread_mutex_lock(&g_lock);
    while (!g_failed.calls) pthread_cond_wait(&g_cond, &g_lock);
    pthread_mutex_unlock(&g_lock);
    pthread_join(th, NULL);
    expect_all_ok(jobs, LOAD_N); /* the other instance (then the replacement) served them */
    assert_int_equal(g_failed.calls, 1);
    assert_string_equal(g_failed.model, "digits");
    assert_string_equal(g_failed.version, "1");
    assert_string_equal(g_failed.reason, "simulated device fault");

    int failed = g_failed.id;
    char want[64];
    snprintf(want, sizeof want, "%d:%s %d:%s 3:Ready", 1, failed == 1 ? "Failed" : "Ready", 2,
             failed == 2 ? "Failed" : "Ready");
    while (cs_rt_model_instances(m, NULL, 0) < 3) cs_sleep_ns(100 * 1000);
    assert_string_equal(instances_str(m), want);
    cs_rt_instance_info info[3];
    cs_rt_model_instances(m, info, 3);
    assert_string_equal(info[failed - 1].reason, "simulated device fault");
    remove_ok(m, failed);
    assert_int_equal(cs_rt_model_instances(m, NULL, 0), 2);
    cs_rt_model_release(m);
    cs_runtime_free(rt);
}

/* A request that breaks every instance it runs on is retried once, then answered with the
 * engine's error: two instances fail, not one per replacement. */
static void test_retry_once(void **state)
{
    cs_runtime *rt = faulty_runtime();
    cs_rt_model *m = load_instances(rt, 2);
    static job bad, after;
    digits_job(&bad, 1);
    bad.data[0] = POISON;
    submit_ok(m, &bad, 0, 0);
    wait_jobs(&bad, 1);
    assert_int_equal(bad.rc, CS_ERR_INTERNAL);
    assert_string_equal(bad.msg, "simulated device fault");
    /* Both failures are reported by the time the answer came; wait a bounded while. */
    int calls = 0;
    for (int k = 0; k < 5000 && calls < 2; k++) {
        pthread_mutex_lock(&g_lock);
        calls = g_failed.calls;
        pthread_mutex_unlock(&g_lock);
        if (calls < 2) cs_sleep_ns(1000 * 1000);
    }
    digits_job(&after, 2); /* the replacements serve */
    submit_ok(m, &after, 0, 0);
    wait_jobs(&after, 1);
    assert_int_equal(after.rc, CS_OK);
    assert_int_equal(g_failed.calls, 2);
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
        cmocka_unit_test(test_device_and_precision),
        cmocka_unit_test(test_preferred_sizes_and_flush),
        cmocka_unit_test(test_batch_request_cap),
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
        cmocka_unit_test(test_add_instance_under_load),
        cmocka_unit_test(test_remove_instance_under_load),
        cmocka_unit_test(test_zero_instances_queue_until_added),
        cmocka_unit_test(test_instance_info_and_pinning),
        cmocka_unit_test(test_failed_instance_is_reported),
        cmocka_unit_test(test_retry_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

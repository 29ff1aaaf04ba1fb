/*
 * engine_test.c - the engine's public API on bad input and across sessions.
 *
 * Uses the shipped digits model (models/digits.onnx: image [batch,1,8,8] -> probabilities
 * [batch,10]) and small models encoded by hand, so each failure path is reached on
 * purpose: missing and corrupt files, every truncation of a real model, unsupported
 * operators, and wrong input names, types and shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "base/alloc.h"
#include "capstan/engine.h"

#define DIGITS CS_SOURCE_DIR "/models/digits.onnx"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* --- a minimal protobuf writer for hand-made models ------------------------------------- */

typedef struct pbw {
    unsigned char b[1024];
    size_t n;
} pbw;

static void put_varint(pbw *w, uint64_t v)
{
    do {
        w->b[w->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_bytes(pbw *w, int field, const void *data, size_t len)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, len);
    memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void put_str(pbw *w, int field, const char *s)
{
    put_bytes(w, field, s, strlen(s));
}

static void put_int(pbw *w, int field, uint64_t v)
{
    put_varint(w, (uint64_t)field << 3);
    put_varint(w, v);
}

/* A float32 [2] value info named `name`. */
static void put_value_info(pbw *w, int field, const char *name)
{
    pbw dim = {0}, shape = {0}, tensor = {0}, type = {0}, vi = {0};
    put_int(&dim, 1, 2);
    put_bytes(&shape, 1, dim.b, dim.n);
    put_int(&tensor, 1, CS_DTYPE_FLOAT32);
    put_bytes(&tensor, 2, shape.b, shape.n);
    put_bytes(&type, 1, tensor.b, tensor.n);
    put_str(&vi, 1, name);
    put_bytes(&vi, 2, type.b, type.n);
    put_bytes(w, field, vi.b, vi.n);
}

/* ModelProto with one node `op` (x -> y), opset 17. */
static pbw one_node_model(const char *op)
{
    pbw node = {0}, graph = {0}, opset = {0}, model = {0};
    put_str(&node, 1, "x");
    put_str(&node, 2, "y");
    put_str(&node, 4, op);
    put_bytes(&graph, 1, node.b, node.n);
    put_str(&graph, 2, "g");
    put_value_info(&graph, 11, "x");
    put_value_info(&graph, 12, "y");
    put_int(&opset, 2, 17);
    put_int(&model, 1, 8);
    put_bytes(&model, 7, graph.b, graph.n);
    put_bytes(&model, 8, opset.b, opset.n);
    return model;
}

/* --- loading --------------------------------------------------------------------------- */

static void test_missing_and_empty_files(void **state)
{
    cs_model_t *m = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_file("/nonexistent/model.onnx", &m, &err), CS_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(err.msg, "/nonexistent/model.onnx"));
    assert_int_equal(cs_model_load_file("/dev/null", &m, &err), CS_ERR_IO);
    assert_int_equal(cs_model_load_buffer("", 0, NULL, &m, &err), CS_ERR_PARSE);
}

static void test_hand_made_model_runs(void **state)
{
    pbw mb = one_node_model("Relu");
    cs_model_t *m = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_buffer(mb.b, mb.n, NULL, &m, &err), CS_OK);
    assert_int_equal(cs_model_opset(m, ""), 17);
    assert_int_equal(cs_model_input_count(m), 1);
    cs_session_t *s;
    assert_int_equal(cs_session_new(m, NULL, &s, &err), CS_OK);
    float x[2] = {-1.5f, 2.5f};
    cs_tensor in = {CS_DTYPE_FLOAT32, 1, {2}, x}, out;
    const char *names[] = {"x"};
    assert_int_equal(cs_session_run(s, 1, names, &in, 1, &out, &err), CS_OK);
    assert_int_equal(out.rank, 1);
    assert_true(((float *)out.data)[0] == 0.0f && ((float *)out.data)[1] == 2.5f);
    cs_session_free(s);
    cs_model_free(m);
}

static void test_unsupported_operator(void **state)
{
    pbw mb = one_node_model("FancyNewOp");
    cs_model_t *m = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_buffer(mb.b, mb.n, NULL, &m, &err), CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "unsupported operator FancyNewOp (opset 17)");
    assert_null(m);
}

/* Every prefix of a real model either loads or fails with a message; none crashes. */
static void test_truncations_never_crash(void **state)
{
    size_t len;
    unsigned char *buf = slurp(DIGITS, &len);
    int failed = 0;
    size_t step = len / 2000 + 1;
    for (size_t n = 0; n < len; n += step) {
        cs_model_t *m = NULL;
        cs_error err = {0};
        cs_status rc = cs_model_load_buffer(buf, n, NULL, &m, &err);
        if (rc != CS_OK) {
            assert_true(err.msg[0] != '\0');
            failed++;
        }
        cs_model_free(m);
    }
    assert_true(failed > 0);
    free(buf);
}

/* Flipping bytes of a real model must give a clean error or a model, never a crash. */
static void test_corruptions_never_crash(void **state)
{
    size_t len;
    unsigned char *buf = slurp(DIGITS, &len);
    unsigned char *copy = malloc(len);
    uint32_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        memcpy(copy, buf, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = (seed >> 8) % (len < 4096 ? len : 4096); /* headers and graph */
            copy[at] ^= (unsigned char)(seed >> 24 | 1);
        }
        cs_model_t *m = NULL;
        cs_error err = {0};
        if (cs_model_load_buffer(copy, len, NULL, &m, &err) != CS_OK)
            assert_true(err.msg[0] != '\0');
        cs_model_free(m);
    }
    free(copy);
    free(buf);
}

/* --- running --------------------------------------------------------------------------- */

typedef struct digits {
    cs_model_t *m;
    cs_session_t *s;
} digits;

static int digits_setup(void **state)
{
    digits *d = calloc(1, sizeof *d);
    cs_error err;
    if (cs_model_load_file(DIGITS, &d->m, &err) != CS_OK) return -1;
    cs_session_options o = {.threads = 1};
    if (cs_session_new(d->m, &o, &d->s, &err) != CS_OK) return -1;
    *state = d;
    return 0;
}

static int digits_teardown(void **state)
{
    digits *d = *state;
    cs_session_free(d->s);
    cs_model_free(d->m);
    free(d);
    return 0;
}

static void fill(float *x, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 28); /* 0..15 like the digits pixels */
    }
}

static void test_model_description(void **state)
{
    digits *d = *state;
    cs_value_info in = cs_model_input(d->m, 0), out = cs_model_output(d->m, 0);
    assert_string_equal(in.name, "image");
    assert_int_equal(in.dtype, CS_DTYPE_FLOAT32);
    assert_int_equal(in.rank, 4);
    assert_int_equal(in.dims[0], -1);
    assert_string_equal(in.dim_names[0], "batch");
    assert_string_equal(out.name, "probabilities");
    assert_true(cs_model_weight_bytes(d->m) > 0);
}

static void test_bad_inputs_are_named(void **state)
{
    digits *d = *state;
    float x[64] = {0};
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {1, 1, 8, 8}, x}, out;
    cs_error err;
    const char *wrong[] = {"img"}, *right[] = {"image"};
    assert_int_equal(cs_session_run(d->s, 1, wrong, &in, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "unknown input 'img'; the model's inputs are 'image'");
    assert_int_equal(cs_session_run(d->s, 0, NULL, NULL, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "missing input 'image'");
    cs_tensor bad_type = in;
    bad_type.dtype = CS_DTYPE_INT64;
    assert_int_equal(cs_session_run(d->s, 1, right, &bad_type, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "input 'image': expected float32, got int64");
    cs_tensor bad_shape = {CS_DTYPE_FLOAT32, 3, {1, 8, 8}, x};
    assert_int_equal(cs_session_run(d->s, 1, right, &bad_shape, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "input 'image': expected shape [batch,1,8,8], got [1,8,8]");
    cs_tensor two[2] = {in, in};
    const char *twice[] = {"image", "image"};
    assert_int_equal(cs_session_run(d->s, 2, twice, two, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "input 'image' is given twice");
}

static void run_digits(cs_session_t *s, const float *x, int batch, float *probs)
{
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {batch, 1, 8, 8}, (void *)x}, out;
    const char *names[] = {"image"};
    cs_error err;
    assert_int_equal(cs_session_run(s, 1, names, &in, 1, &out, &err), CS_OK);
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], batch);
    assert_int_equal(out.dims[1], 10);
    memcpy(probs, out.data, (size_t)batch * 10 * sizeof(float));
}

/* Plans are cached per input shape: alternating batch sizes must give each row the same
 * answer as a batch of one. */
static void test_plans_per_signature(void **state)
{
    digits *d = *state;
    float x[5 * 64], batch[5 * 10], single[10];
    fill(x, 5 * 64, 7);
    for (int round = 0; round < 2; round++) {
        run_digits(d->s, x, 5, batch);
        for (int r = 0; r < 5; r++) {
            run_digits(d->s, x + r * 64, 1, single);
            float sum = 0;
            for (int k = 0; k < 10; k++) {
                assert_float_equal(single[k], batch[r * 10 + k], 1e-6);
                sum += single[k];
            }
            assert_float_equal(sum, 1.0f, 1e-5);
        }
    }
}

/* Once a plan exists, a run allocates nothing: every cs_malloc after warm-up fails and the
 * run still succeeds, on one thread and on two. */
static void test_run_allocates_nothing(void **state)
{
    digits *d = *state;
    float x[4 * 64], want[4 * 10], got[4 * 10];
    fill(x, 4 * 64, 3);
    cs_session_t *two;
    cs_session_options o = {.threads = 2};
    cs_error err;
    assert_int_equal(cs_session_new(d->m, &o, &two, &err), CS_OK);
    run_digits(d->s, x, 4, want);
    run_digits(two, x, 4, got);
    cs_alloc_fail_after(0);
    run_digits(d->s, x, 4, got);
    run_digits(two, x, 4, got);
    cs_alloc_fail_after(-1);
    for (int k = 0; k < 40; k++) assert_float_equal(got[k], want[k], 1e-6);
    cs_session_free(two);
}

typedef struct timed {
    int calls[16];
    uint64_t ns;
} timed;

static void count_node(void *ctx, int node, uint64_t ns)
{
    timed *t = ctx;
    assert_true(node >= 0 && node < 16);
    t->calls[node]++;
    t->ns += ns;
}

/* The node timer sees every planned node once per run (the digits graph has 9 nodes; its
 * first, a Constant, folds away at plan time and its two Relus fuse into the Gemms before
 * them; the other 6 run), leaves the results alone, and is silent once cleared. */
static void test_node_timer(void **state)
{
    digits *d = *state;
    float x[2 * 64], want[2 * 10], got[2 * 10];
    fill(x, 2 * 64, 5);
    run_digits(d->s, x, 2, want);
    assert_int_equal(cs_model_node_count(d->m), 9);
    assert_string_equal(cs_model_node_op(d->m, 3), "Gemm");
    assert_string_equal(cs_model_node_name(d->m, 3), "/body/body.1/Gemm");
    timed t = {{0}, 0};
    cs_session_set_node_timer(d->s, count_node, &t);
    run_digits(d->s, x, 2, got);
    run_digits(d->s, x, 2, got);
    for (int k = 0; k < 20; k++) assert_float_equal(got[k], want[k], 0);
    int timed_nodes = 0;
    for (int i = 0; i < 9; i++) {
        assert_true(t.calls[i] == 0 || t.calls[i] == 2);
        timed_nodes += t.calls[i] == 2;
    }
    assert_int_equal(timed_nodes, 6);
    assert_int_equal(t.calls[0], 0);
    for (int i = 0; i < 9; i++)
        if (!strcmp(cs_model_node_op(d->m, i), "Relu")) assert_int_equal(t.calls[i], 0);
    assert_true(t.ns > 0);
    cs_session_set_node_timer(d->s, NULL, NULL);
    run_digits(d->s, x, 2, got);
    for (int i = 0; i < 9; i++) assert_true(t.calls[i] == 0 || t.calls[i] == 2);
}

typedef struct worker {
    const cs_model_t *m;
    const float *x;
    float out[3 * 10];
} worker;

static void *run_worker(void *p)
{
    worker *w = p;
    cs_session_t *s;
    cs_error err;
    if (cs_session_new(w->m, NULL, &s, &err) != CS_OK) return NULL;
    for (int i = 0; i < 50; i++) run_digits(s, w->x, 3, w->out);
    cs_session_free(s);
    return NULL;
}

/* One model, sessions on several threads at once: each gets the single-threaded answer. */
static void test_parallel_sessions(void **state)
{
    digits *d = *state;
    float x[3 * 64], want[3 * 10];
    fill(x, 3 * 64, 99);
    run_digits(d->s, x, 3, want);
    worker w[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){d->m, x, {0}};
        assert_int_equal(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        for (int k = 0; k < 30; k++) assert_float_equal(w[i].out[k], want[k], 1e-6);
    }
}

/* Devices and precisions: names parse as PyTorch spells them; a session on a device or a
 * precision this build lacks is refused naming it; the CPU's outputs say they are host
 * memory, and an input that claims another device's memory is refused, never read. */
static void test_devices(void **state)
{
    digits *d = *state;
    cs_device dev;
    cs_precision prec;
    cs_error err;
    char buf[32];
    assert_int_equal(cs_device_parse("cuda:3", &dev, &err), CS_OK);
    assert_int_equal(dev.kind, CS_DEVICE_CUDA);
    assert_string_equal(cs_device_format(dev, buf, sizeof buf), "cuda:3");
    assert_int_equal(cs_device_parse("cuda", &dev, &err), CS_OK);
    assert_string_equal(cs_device_format(dev, buf, sizeof buf), "cuda:0");
    assert_int_equal(cs_device_parse(NULL, &dev, &err), CS_OK);
    assert_string_equal(cs_device_format(dev, buf, sizeof buf), "cpu");
    const char *bad[] = {"gpu", "cuda:", "cuda:-1", "cuda:1x", "cpu:0x", "cudax"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cs_device_parse(bad[i], &dev, &err), CS_ERR_INVALID);
        assert_non_null(strstr(err.msg, "not one of cpu, cuda, cuda:N"));
    }
    assert_int_equal(cs_precision_parse("bf16", &prec, &err), CS_OK);
    assert_string_equal(cs_precision_name(prec), "bf16");
    assert_int_equal(cs_precision_parse("int4", &prec, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "precision 'int4' is not one of fp32, tf32, fp16, bf16");

    cs_session_t *s = NULL;
    cs_session_options opts = {.threads = 1, .device = "cuda:0"};
    setenv("CS_LIBCUDA", "/nonexistent/libcuda.so.1", 1); /* no driver, on any machine */
    assert_int_equal(cs_session_new(d->m, &opts, &s, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "device cuda:0 is unavailable: /nonexistent/libcuda.so.1 "
                                    "could not be loaded: "));
    opts = (cs_session_options){.threads = 1, .device = "tpu"};
    assert_int_equal(cs_session_new(d->m, &opts, &s, &err), CS_ERR_INVALID);
    opts = (cs_session_options){.threads = 1, .device = "cpu", .precision = CS_PRECISION_FP16};
    assert_int_equal(cs_session_new(d->m, &opts, &s, &err), CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "precision fp16 is not supported on cpu, which computes in: fp32");
    assert_null(s);

    float x[64] = {0};
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {1, 1, 8, 8}, x}, out;
    const char *names[] = {"image"};
    assert_int_equal(cs_session_run(d->s, 1, names, &in, 1, &out, &err), CS_OK);
    assert_int_equal(out.device.kind, CS_DEVICE_CPU);
    cs_device where = {CS_DEVICE_CUDA, 3};
    int gemm = 0; /* a node with a step of its own (the first may be a folded Constant) */
    while (strcmp(cs_model_node_op(d->m, gemm), "Gemm")) gemm++;
    assert_true(cs_session_node_device(d->s, gemm, &where));
    assert_int_equal(where.kind, CS_DEVICE_CPU);
    assert_false(cs_session_node_device(d->s, -1, &where));
    assert_false(cs_session_node_device(d->s, cs_model_node_count(d->m), &where));
    in.device = (cs_device){CS_DEVICE_CUDA, 1};
    assert_int_equal(cs_session_run(d->s, 1, names, &in, 1, &out, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "input 'image' lies in cuda:1 memory; a session (this one runs "
                                 "on cpu) takes its inputs in host memory");
}

/* Shapes in messages: symbolic dimensions by name or "?", cut short but terminated. */
static void test_shape_format(void **state)
{
    char buf[32];
    const int64_t dims[] = {-1, 3, 224, -1};
    const char *const names[] = {"batch", NULL, NULL, NULL};
    assert_string_equal(cs_shape_format(buf, sizeof buf, 4, dims, names), "[batch,3,224,?]");
    assert_string_equal(cs_shape_format(buf, sizeof buf, 4, dims, NULL), "[?,3,224,?]");
    assert_string_equal(cs_shape_format(buf, sizeof buf, 0, NULL, NULL), "[]");
    assert_string_equal(cs_shape_format(buf, 6, 4, dims, names), "[batc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_format),
        cmocka_unit_test(test_missing_and_empty_files),
        cmocka_unit_test(test_hand_made_model_runs),
        cmocka_unit_test(test_unsupported_operator),
        cmocka_unit_test(test_truncations_never_crash),
        cmocka_unit_test(test_corruptions_never_crash),
        cmocka_unit_test_setup_teardown(test_model_description, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs_are_named, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_plans_per_signature, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_parallel_sessions, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_run_allocates_nothing, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_node_timer, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_devices, digits_setup, digits_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

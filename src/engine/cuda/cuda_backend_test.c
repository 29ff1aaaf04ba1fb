/*
 * cuda_backend_test.c - the CUDA backend on the fake driver (tests/engine/fake_cuda.c).
 *
 * The fake keeps device memory in host memory and checks what a driver checks (cuInit
 * first, a current context on the calling thread, live streams), so these cases run the
 * backend's real code on a machine without a GPU: init and its per-device state, ordinals
 * the machine lacks, bytes through copy_in/copy_out (from another thread too), allocations
 * beyond the device's memory, and sessions on cuda:0 - with the backend's own kernels a
 * node without one (Gemm) runs on the CPU; with a test table of kernels that compute in the fake's
 * memory (the CPU's kernels, which can read it), the planner uploads, runs and downloads through
 * the backend and a plan that does not fit the device fails naming the bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "engine/cuda/cuda_be.h"
#include "engine/graph.h"

#define DIGITS     CS_SOURCE_DIR "/models/digits.onnx"
#define DEVICE_MEM (1 << 20) /* FAKE_CUDA_MEMORY; the digits model's weights take 68 KB */

static const cs__backend *open_cuda(int id)
{
    const cs__backend *be = NULL;
    cs_error err;
    assert_int_equal(cs__backend_for((cs_device){CS_DEVICE_CUDA, id}, CS_PRECISION_FP32, &be, &err),
                     CS_OK);
    return be;
}

static size_t free_mem(const cs__cuda_be *b)
{
    size_t free_bytes = 0, total = 0;
    assert_int_equal(cs__cuda_enter(b, NULL), CS_OK);
    assert_int_equal(b->cu->MemGetInfo(&free_bytes, &total), 0);
    return free_bytes;
}

static void test_init(void **state)
{
    const cs__backend *be = open_cuda(0);
    assert_ptr_equal(be, cs__cuda_backend_get(0));
    assert_string_equal(be->name, "cuda:0");
    assert_int_equal(be->device.kind, CS_DEVICE_CUDA);
    const cs__cuda_be *b = cs__cuda_be_of(be);
    assert_true(b->ready);
    assert_non_null(b->stream);
    assert_non_null(b->ctx);
    assert_int_equal(b->total_mem, DEVICE_MEM);
    assert_string_equal(b->device_name, "Fake CUDA Device 0");
    assert_int_equal(b->cc_major * 10 + b->cc_minor, 90);
    const cs__backend *half = NULL;
    cs_error err;
    assert_int_equal(
        cs__backend_for((cs_device){CS_DEVICE_CUDA, 0}, CS_PRECISION_FP16, &half, &err), CS_OK);
    assert_ptr_equal(half, be);
    const cs__backend *one = open_cuda(1);
    assert_string_equal(cs__cuda_be_of(one)->device_name, "Fake CUDA Device 1");
    assert_ptr_not_equal(cs__cuda_be_of(one)->stream, b->stream);
}

static void test_missing_devices(void **state)
{
    const cs__backend *be = NULL;
    cs_error err;
    assert_int_equal(cs__backend_for((cs_device){CS_DEVICE_CUDA, 2}, CS_PRECISION_FP32, &be, &err),
                     CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "device cuda:2 is unavailable: this machine has 2 CUDA devices "
                                 "(cuda:0..cuda:1)");
    assert_null(be);
    assert_int_equal(cs__backend_for((cs_device){CS_DEVICE_CUDA, 16}, CS_PRECISION_FP32, &be, &err),
                     CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "device cuda:16: this build has no backend for it (it runs on: "
                                 "cpu, cuda:0..cuda:15)");
    assert_null(cs__cuda_backend_get(16));
    assert_null(cs__cuda_backend_get(-1));
}

typedef struct trip {
    const cs__backend *be;
    size_t bytes;
    cs_status rc;
} trip;

/* Bytes to the device and back through a buffer of be's; rc is the first failure. */
static void *round_trip(void *arg)
{
    trip *t = arg;
    cs_error err;
    unsigned char *in = malloc(t->bytes), *out = calloc(1, t->bytes);
    void *d = t->be->alloc(t->be, t->bytes);
    for (size_t i = 0; i < t->bytes; i++) in[i] = (unsigned char)(i * 7 + 3);
    t->rc = d ? CS_OK : CS_ERR_NOMEM;
    if (t->rc == CS_OK) t->rc = t->be->copy_in(t->be, d, in, t->bytes, &err);
    if (t->rc == CS_OK) t->rc = t->be->sync(t->be, &err);
    if (t->rc == CS_OK) t->rc = t->be->copy_out(t->be, out, d, t->bytes, &err);
    if (t->rc == CS_OK && memcmp(in, out, t->bytes)) t->rc = CS_ERR_INTERNAL;
    if (d) t->be->release(t->be, d);
    free(in);
    free(out);
    return NULL;
}

static void test_round_trip(void **state)
{
    const cs__backend *be = open_cuda(0);
    const cs__cuda_be *b = cs__cuda_be_of(be);
    size_t before = free_mem(b);
    void *d = be->alloc(be, 1000);
    assert_non_null(d);
    assert_int_equal((uintptr_t)d % 64, 0);
    assert_int_equal(free_mem(b), before - 1000);
    be->release(be, d);
    assert_int_equal(free_mem(b), before);

    trip t = {be, 4099, CS_ERR_INTERNAL};
    round_trip(&t);
    assert_int_equal(t.rc, CS_OK);
    /* A thread that never touched the device: the backend makes its context current. */
    pthread_t th;
    t.rc = CS_ERR_INTERNAL;
    assert_int_equal(pthread_create(&th, NULL, round_trip, &t), 0);
    pthread_join(th, NULL);
    assert_int_equal(t.rc, CS_OK);
    assert_int_equal(free_mem(b), before);
}

static void test_alloc_beyond_memory(void **state)
{
    const cs__backend *be = open_cuda(0);
    size_t before = free_mem(cs__cuda_be_of(be));
    assert_null(be->alloc(be, DEVICE_MEM + 1));
    assert_int_equal(free_mem(cs__cuda_be_of(be)), before);
}

typedef struct digits {
    cs_model_t *m;
    cs_session_t *cpu;
    float x[2 * 64], want[2 * 10];
} digits;

static int digits_setup(void **state)
{
    digits *d = calloc(1, sizeof *d);
    cs_error err;
    cs_session_options opts = {.threads = 1};
    if (!d || cs_model_load_file(DIGITS, &d->m, &err) || cs_session_new(d->m, &opts, &d->cpu, &err))
        return -1;
    for (int i = 0; i < 2 * 64; i++) d->x[i] = (float)((i * 37) % 16);
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {2, 1, 8, 8}, d->x}, out;
    const char *names[] = {"image"};
    if (cs_session_run(d->cpu, 1, names, &in, 1, &out, &err)) return -1;
    memcpy(d->want, out.data, sizeof d->want);
    *state = d;
    return 0;
}

static int digits_teardown(void **state)
{
    digits *d = *state;
    cs__cuda_kernels_set(NULL);
    cs_session_free(d->cpu);
    cs_model_free(d->m);
    free(d);
    return 0;
}

static int node_of(const cs_model_t *m, const char *op)
{
    int i = 0;
    while (strcmp(cs_model_node_op(m, i), op)) i++;
    return i;
}

/* Runs the digits model on a batch of two on a cuda:0 session; the status of the run. */
static cs_status run_on_cuda(digits *d, cs_session_t **s, float *probs, cs_error *err)
{
    cs_session_options opts = {.threads = 1, .device = "cuda:0"};
    cs_status rc = *s ? CS_OK : cs_session_new(d->m, &opts, s, err);
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {2, 1, 8, 8}, d->x}, out;
    const char *names[] = {"image"};
    if (rc == CS_OK) rc = cs_session_run(*s, 1, names, &in, 1, &out, err);
    if (rc == CS_OK) {
        assert_int_equal(out.device.kind, CS_DEVICE_CPU);
        memcpy(probs, out.data, 2 * 10 * sizeof *probs);
    }
    return rc;
}

/* The backend's own kernels (cuda_ops.h; the fake computes them in C): Gemm's needs
 * cuBLASLt, which CS_LIBCUBLASLT keeps from loading here (cuda_gemm_test runs it), so
 * supports() says so and the planner runs it on the CPU, the other nodes on cuda:0 (in a
 * build with the kernels; cuda_ops_test.c checks them and a device without them), and the
 * results are the CPU's within float32 rounding of the Softmax's sums. */
static void test_session_own_kernels(void **state)
{
    digits *d = *state;
    const cs__backend *be = open_cuda(0);
    int gemm = node_of(d->m, "Gemm");
    const cs__node *n = &d->m->nodes[gemm];
    const cs_tensor *none[8] = {NULL};
    cs_error err;
    assert_null(be->supports(be, n, none, &err));
    assert_int_equal(err.code, CS_ERR_UNSUPPORTED);
    char want[192];
    snprintf(want, sizeof want, "Gemm '%s': %s", n->name,
             cs__cuda_kernels_built() ? "no cuBLASLt on cuda:0: cannot load "
                                        "/nonexistent/libcublasLt.so.13"
                                      : "no CUDA kernels on cuda:0: this build has no CUDA kernels "
                                        "(built without nvcc)");
    assert_memory_equal(err.msg, want, strlen(want));

    cs_session_t *s = NULL;
    float probs[2 * 10];
    assert_int_equal(run_on_cuda(d, &s, probs, &err), CS_OK);
    for (int i = 0; i < 2 * 10; i++) assert_true(fabsf(probs[i] - d->want[i]) <= 1e-6f);
    cs_device where = {CS_DEVICE_CUDA, 0};
    assert_true(cs_session_node_device(s, gemm, &where));
    assert_int_equal(where.kind, CS_DEVICE_CPU);
    cs_session_free(s);
}

/* A kernel that computes in the fake's memory, which is host memory: the CPU's. */
static cs_status host_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    const cs__node *n = ctx->node;
    for (int j = 0; j < n_out; j++)
        if (out[j].device.kind != CS_DEVICE_CUDA)
            return cs__node_error(ctx->err, n, CS_ERR_INTERNAL, "output %d is not device memory",
                                  j);
    cs__kctx cpu = *ctx;
    cpu.be = &cs__cpu_backend;
    return cs__cpu_kernel_find(n->op_type, n->domain, n->opset)->run(&cpu, in, n_in, out, n_out);
}

static size_t host_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out)
{
    const cs__kernel *k = cs__cpu_kernel_find(n->op_type, n->domain, n->opset);
    return k->scratch ? k->scratch(n, in, n_in, out, n_out) : 0;
}

/* The CPU kernel's packed weights, uploaded like a device kernel's, so that the product runs
 * the CPU's code (pgemm.c's on AVX-512) and gives its bytes. */
static size_t host_prepack(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out, void *dst)
{
    const cs__node *n = ctx->node;
    const cs__kernel *k = cs__cpu_kernel_find(n->op_type, n->domain, n->opset);
    cs__kctx cpu = *ctx;
    cpu.be = &cs__cpu_backend;
    return k->prepack ? k->prepack(&cpu, in, n_in, out, n_out, dst) : 0;
}

static const cs__kernel host_kernels[] = {
    {"Gemm", "", 1, CS__T(FLOAT32), 0, host_run, host_scratch, 0, host_prepack},
    {"Relu", "", 1, CS__T(FLOAT32), 0, host_run, host_scratch},
    {"Flatten", "", 1, 0, 0, host_run, host_scratch},
    {"Mul", "", 1, CS__T(FLOAT32), 0, host_run, host_scratch},
    {"Softmax", "", 1, CS__T(FLOAT32), 0, host_run, host_scratch},
    {0},
};

/* With kernels, the nodes run on cuda:0: inputs and weights uploaded through copy_in, the
 * output back through copy_out, the same bytes as the CPU's. A device whose free memory
 * cannot hold the weights fails the run naming the bytes, and the session works again
 * once the memory is back. */
static void test_session_with_kernels(void **state)
{
    digits *d = *state;
    cs__cuda_kernels_set(host_kernels);
    const cs__backend *be = open_cuda(0);
    const cs__cuda_be *b = cs__cuda_be_of(be);
    size_t before = free_mem(b);
    cs_session_t *s = NULL;
    float probs[2 * 10];
    cs_error err;
    assert_int_equal(run_on_cuda(d, &s, probs, &err), CS_OK);
    assert_memory_equal(probs, d->want, sizeof probs);
    cs_device where = {CS_DEVICE_CPU, 0};
    assert_true(cs_session_node_device(s, node_of(d->m, "Gemm"), &where));
    assert_int_equal(where.kind, CS_DEVICE_CUDA);
    assert_true(free_mem(b) < before - 60000); /* the weights live on the device */
    cs_session_free(s);
    assert_int_equal(free_mem(b), before);

    void *hog = be->alloc(be, before - 16384);
    assert_non_null(hog);
    s = NULL;
    assert_int_equal(run_on_cuda(d, &s, probs, &err), CS_ERR_NOMEM);
    assert_non_null(strstr(err.msg, "out of memory: "));
    assert_non_null(strstr(err.msg, " bytes on cuda:0"));
    be->release(be, hog);
    memset(probs, 0, sizeof probs);
    assert_int_equal(run_on_cuda(d, &s, probs, &err), CS_OK);
    assert_memory_equal(probs, d->want, sizeof probs);
    cs_session_free(s);
    assert_int_equal(free_mem(b), before);
}

int main(void)
{
    setenv("CS_LIBCUDA", CS_FAKE_LIBCUDA, 1);
    setenv("FAKE_CUDA_DEVICES", "2", 1);
    setenv("CS_LIBCUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
    char mem[32];
    snprintf(mem, sizeof mem, "%d", DEVICE_MEM);
    setenv("FAKE_CUDA_MEMORY", mem, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_missing_devices),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_alloc_beyond_memory),
        cmocka_unit_test_setup_teardown(test_session_own_kernels, digits_setup, digits_teardown),
        cmocka_unit_test_setup_teardown(test_session_with_kernels, digits_setup, digits_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * cuda_gemm_test.c - Gemm and MatMul on cuBLASLt, on the fake driver and the fake cuBLASLt
 * (tests/engine/fake_cuda.c, fake_cublaslt.c), which computes float32 products in C.
 *
 * Checked: without a loadable cuBLASLt, digits.onnx's Gemms run on the CPU and supports()
 * says why (first: once loaded the library stays open); with the fake, they run on cuda:0
 * with results matching a CPU session, their plans made once at plan time and their
 * descriptors released with the session (the fake counts live objects: the device's handle
 * alone remains); and supports() takes the forms cuBLASLt's strided batch expresses and
 * declines the others. In a build without nvcc (no kernels embedded) everything runs on
 * the CPU, and that is checked.
 */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/cuda/cuda_ops.h"
#include "engine/graph.h"
#include "engine/ktest.h"

#define DIGITS CS_SOURCE_DIR "/models/digits.onnx"

typedef int (*count_fn)(void);
static count_fn lt_live, lt_matmuls;

static const cs__backend *open_cuda(int id)
{
    const cs__backend *be = NULL;
    cs_error err;
    assert_int_equal(cs__backend_for((cs_device){CS_DEVICE_CUDA, id}, CS_PRECISION_FP32, &be, &err),
                     CS_OK);
    return be;
}

static void run_digits(cs_session_t *s, const float *x, float *probs)
{
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {2, 1, 8, 8}, (void *)x}, out;
    const char *names[] = {"image"};
    cs_error err;
    assert_int_equal(cs_session_run(s, 1, names, &in, 1, &out, &err), CS_OK);
    memcpy(probs, out.data, 2 * 10 * sizeof *probs);
}

/* Runs digits.onnx on the CPU and on cuda:0 and compares; returns how many Gemm nodes
 * landed on cuda:0. */
static int digits_on_cuda(void)
{
    cs_model_t *m = NULL;
    cs_session_t *cpu = NULL, *gpu = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_file(DIGITS, &m, &err), CS_OK);
    cs_session_options copts = {.threads = 1}, gopts = {.threads = 1, .device = "cuda:0"};
    assert_int_equal(cs_session_new(m, &copts, &cpu, &err), CS_OK);
    assert_int_equal(cs_session_new(m, &gopts, &gpu, &err), CS_OK);
    float x[2 * 64], want[2 * 10], got[2 * 10];
    for (int i = 0; i < 2 * 64; i++) x[i] = (float)((i * 37) % 16);
    run_digits(cpu, x, want);
    for (int r = 0; r < 2; r++) { /* the second run reuses the plan's prepacked descriptors */
        run_digits(gpu, x, got);
        for (int i = 0; i < 2 * 10; i++)
            if (!(fabsf(got[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i])))
                fail_msg("element %d: %.9g, want %.9g", i, (double)got[i], (double)want[i]);
    }
    int on_cuda = 0;
    for (int i = 0; i < cs_model_node_count(m); i++) {
        cs_device d = {CS_DEVICE_CPU, -1};
        if (strcmp(cs_model_node_op(m, i), "Gemm")) continue;
        assert_true(cs_session_node_device(gpu, i, &d));
        on_cuda += d.kind == CS_DEVICE_CUDA;
    }
    cs_session_free(gpu);
    cs_session_free(cpu);
    cs_model_free(m);
    return on_cuda;
}

/* A node of op with inputs 0..n_in-1 and the given attributes. */
static cs__node node(const char *op, int n_in, cs__attr *attr, int n_attr)
{
    static int ins[3] = {0, 1, 2}, outs[1] = {3};
    return (cs__node){.name = op,
                      .op_type = op,
                      .domain = "",
                      .n_in = n_in,
                      .n_out = 1,
                      .in = ins,
                      .out = outs,
                      .n_attr = n_attr,
                      .attr = attr,
                      .opset = 13};
}

static cs__attr int_attr(const char *name, int64_t v)
{
    return (cs__attr){.name = name, .type = CS__ATTR_INT, .i = v};
}

static cs__attr float_attr(const char *name, float v)
{
    return (cs__attr){.name = name, .type = CS__ATTR_FLOAT, .f = v};
}

/* Runs first. */
static void test_without_library(void **state)
{
    (void)state;
    setenv("CS_LIBCUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
    assert_int_equal(digits_on_cuda(), 0);
    if (cs__cuda_kernels_built()) {
        const cs__backend *be = open_cuda(0);
        cs_tensor a = {CS_DTYPE_FLOAT32, 2, {2, 3}}, b = {CS_DTYPE_FLOAT32, 2, {3, 4}};
        cs__node mm = node("MatMul", 2, NULL, 0);
        cs_error err;
        assert_null(be->supports(be, &mm, (const cs_tensor *[]){&a, &b}, &err));
        assert_non_null(strstr(err.msg, "no cuBLASLt on cuda:0"));
        assert_non_null(strstr(err.msg, "CS_LIBCUBLASLT"));
    }
    setenv("CS_LIBCUBLASLT", CS_FAKE_LIBCUBLASLT, 1);
}

static void test_digits(void **state)
{
    (void)state;
    int before = lt_matmuls();
    bool built = cs__cuda_kernels_built();
    assert_int_equal(digits_on_cuda(), built ? 3 : 0);
    /* Three Gemms, two runs; nothing but the device's handle outlives the sessions. */
    assert_int_equal(lt_matmuls() - before, built ? 6 : 0);
    assert_int_equal(lt_live(), built ? 1 : 0);
}

static void test_forms(void **state)
{
    (void)state;
    if (!cs__cuda_kernels_built()) skip();
    const cs__backend *be = open_cuda(0);
    cs_error err;
    cs_tensor a = {CS_DTYPE_FLOAT32, 3, {2, 3, 4}}, b = {CS_DTYPE_FLOAT32, 2, {4, 5}};
    cs_tensor b3 = {CS_DTYPE_FLOAT32, 3, {2, 4, 5}}, a4 = {CS_DTYPE_FLOAT32, 4, {2, 1, 3, 4}};
    cs_tensor b4 = {CS_DTYPE_FLOAT32, 4, {1, 2, 4, 5}}, v = {CS_DTYPE_FLOAT32, 1, {4}};
    cs_tensor i32 = {CS_DTYPE_INT32, 2, {4, 5}};
    cs__node mm = node("MatMul", 2, NULL, 0);
    assert_non_null(be->supports(be, &mm, (const cs_tensor *[]){&a, &b}, &err));
    assert_non_null(be->supports(be, &mm, (const cs_tensor *[]){&a, &b3}, &err));
    assert_null(be->supports(be, &mm, (const cs_tensor *[]){&a4, &b4}, &err));
    assert_non_null(strstr(err.msg, "strided batch cannot express"));
    assert_null(be->supports(be, &mm, (const cs_tensor *[]){&a, &v}, &err));
    assert_null(be->supports(be, &mm, (const cs_tensor *[]){&i32, &i32}, &err));

    cs_tensor ga = {CS_DTYPE_FLOAT32, 2, {4, 3}}, gb = {CS_DTYPE_FLOAT32, 2, {5, 4}};
    cs_tensor bias = {CS_DTYPE_FLOAT32, 1, {5}}, full = {CS_DTYPE_FLOAT32, 2, {3, 5}};
    cs_tensor col = {CS_DTYPE_FLOAT32, 2, {3, 1}};
    cs__attr attrs[3] = {int_attr("transA", 1), int_attr("transB", 1), float_attr("beta", 1.0f)};
    cs__node gemm = node("Gemm", 3, attrs, 3);
    assert_non_null(be->supports(be, &gemm, (const cs_tensor *[]){&ga, &gb, &bias}, &err));
    assert_non_null(be->supports(be, &gemm, (const cs_tensor *[]){&ga, &gb, &full}, &err));
    assert_null(be->supports(be, &gemm, (const cs_tensor *[]){&ga, &gb, &col}, &err));
    assert_non_null(strstr(err.msg, "C's broadcast"));
    attrs[2] = float_attr("beta", 0.5f); /* a scaled bias is no epilogue */
    assert_null(be->supports(be, &gemm, (const cs_tensor *[]){&ga, &gb, &bias}, &err));
    assert_non_null(be->supports(be, &gemm, (const cs_tensor *[]){&ga, &gb, &full}, &err));
}

/* n on in (float32, on the host) through the CUDA kernel, prepacked with act and run, then
 * again without packed bytes (a dynamic plan's path); each against the CPU kernel with the
 * activation applied after. */
static void check_against_cpu(const cs__node *n, int n_in, cs_tensor *in, const int64_t *ydims,
                              int yrank, const cs__act *act)
{
    const cs__backend *be = open_cuda(0);
    cs_error err;
    const cs_tensor *hin[3], *din[3];
    cs_tensor dev[3];
    for (int i = 0; i < n_in; i++) {
        in[i].data = ktest_filled(CS_DTYPE_FLOAT32, cs_tensor_numel(&in[i]), 7u + (unsigned)i, 8);
        dev[i] = in[i];
        size_t bytes = (size_t)cs_tensor_numel(&in[i]) * 4;
        dev[i].data = be->alloc(be, bytes);
        assert_int_equal(be->copy_in(be, dev[i].data, in[i].data, bytes, &err), CS_OK);
        hin[i] = &in[i], din[i] = &dev[i];
    }
    cs_tensor want = {CS_DTYPE_FLOAT32, yrank}, got = {CS_DTYPE_FLOAT32, yrank};
    memcpy(want.dims, ydims, (size_t)yrank * sizeof *ydims);
    memcpy(got.dims, ydims, (size_t)yrank * sizeof *ydims);
    size_t bytes = (size_t)cs_tensor_numel(&want) * 4;
    want.data = calloc(1, bytes);
    float *host = calloc(1, bytes);
    got.data = be->alloc(be, bytes);

    const cs__kernel *cpu = cs__cpu_kernel_find(n->op_type, "", n->opset);
    cs__kctx c = {.node = n, .threads = 1, .err = &err};
    assert_int_equal(cpu->run(&c, hin, n_in, &want, 1), CS_OK);
    if (act) cs__act_apply(act, CS_DTYPE_FLOAT32, want.data, cs_tensor_numel(&want));

    const cs__kernel *k = be->supports(be, n, din, &err);
    if (!k) fail_msg("%s", err.msg);
    cs__kctx ctx = {.node = n, .threads = 1, .err = &err, .act = act, .be = be};
    size_t need = k->prepack(&ctx, din, n_in, &got, 1, NULL);
    void *packed = aligned_alloc(64, (need + 63) & ~(size_t)63);
    if (k->prepack(&ctx, din, n_in, &got, 1, packed) == SIZE_MAX) fail_msg("%s", err.msg);
    ctx.scratch_size = k->scratch(n, din, n_in, &got, 1);
    ctx.scratch = be->alloc(be, ctx.scratch_size);
    for (int pass = 0; pass < 2; pass++) {
        ctx.packed = pass ? NULL : packed;
        memset(host, 0xff, bytes);
        assert_int_equal(be->copy_in(be, got.data, host, bytes, &err), CS_OK);
        if (k->run(&ctx, din, n_in, &got, 1) != CS_OK) fail_msg("%s", err.msg);
        assert_int_equal(be->copy_out(be, host, got.data, bytes, &err), CS_OK);
        for (int64_t i = 0; i < cs_tensor_numel(&want); i++)
            if (!(fabsf(host[i] - ((float *)want.data)[i]) <= 1e-5f))
                fail_msg("%s pass %d element %lld: %g, want %g", n->op_type, pass, (long long)i,
                         (double)host[i], (double)((float *)want.data)[i]);
    }
    k->release_packed(be, packed);
    free(packed);
    be->release(be, ctx.scratch);
    be->release(be, got.data);
    free(host);
    free(want.data);
    for (int i = 0; i < n_in; i++) {
        be->release(be, dev[i].data);
        free(in[i].data);
    }
}

static void test_products(void **state)
{
    (void)state;
    if (!cs__cuda_kernels_built()) skip();
    int live = lt_live();
    cs__attr attrs[4] = {int_attr("transA", 1), int_attr("transB", 1), float_attr("alpha", 0.5f),
                         float_attr("beta", 2.0f)};
    cs__node gemm = node("Gemm", 3, attrs, 4);
    cs__act relu = {CS__ACT_CLAMP, 0.0, INFINITY}, clip = {CS__ACT_CLAMP, -1.0, 2.0};
    /* A^T [3,4]^T, B^T [5,4]^T, C [3,5] full with beta 2, fused Clip(-1, 2). */
    cs_tensor g[3] = {{CS_DTYPE_FLOAT32, 2, {4, 3}},
                      {CS_DTYPE_FLOAT32, 2, {5, 4}},
                      {CS_DTYPE_FLOAT32, 2, {3, 5}}};
    check_against_cpu(&gemm, 3, g, (const int64_t[]){3, 5}, 2, &clip);
    /* C [5] as the bias epilogue (beta 1) with a fused Relu, no transposes. */
    attrs[0] = int_attr("transA", 0), attrs[1] = int_attr("transB", 0);
    attrs[3] = float_attr("beta", 1.0f);
    cs_tensor gb[3] = {
        {CS_DTYPE_FLOAT32, 2, {3, 4}}, {CS_DTYPE_FLOAT32, 2, {4, 5}}, {CS_DTYPE_FLOAT32, 1, {5}}};
    check_against_cpu(&gemm, 3, gb, (const int64_t[]){3, 5}, 2, &relu);
    /* MatMul [2,3,4] x [4,5] (B repeated) and [2,3,4] x [2,4,5]. */
    cs__node mm = node("MatMul", 2, NULL, 0);
    cs_tensor m1[2] = {{CS_DTYPE_FLOAT32, 3, {2, 3, 4}}, {CS_DTYPE_FLOAT32, 2, {4, 5}}};
    check_against_cpu(&mm, 2, m1, (const int64_t[]){2, 3, 5}, 3, NULL);
    cs_tensor m2[2] = {{CS_DTYPE_FLOAT32, 3, {2, 3, 4}}, {CS_DTYPE_FLOAT32, 3, {2, 4, 5}}};
    check_against_cpu(&mm, 2, m2, (const int64_t[]){2, 3, 5}, 3, NULL);
    cs_tensor m3[2] = {{CS_DTYPE_FLOAT32, 2, {3, 4}}, {CS_DTYPE_FLOAT32, 4, {2, 2, 4, 5}}};
    check_against_cpu(&mm, 2, m3, (const int64_t[]){2, 2, 3, 5}, 4, &relu);
    assert_int_equal(lt_live(), live); /* every descriptor released */
}

int main(void)
{
    setenv("CS_LIBCUDA", CS_FAKE_LIBCUDA, 1);
    setenv("FAKE_CUDA_DEVICES", "1", 1);
    void *fake = dlopen(CS_FAKE_LIBCUBLASLT, RTLD_NOW);
    if (!fake) return 1;
    lt_live = (count_fn)dlsym(fake, "fake_cublaslt_live");
    lt_matmuls = (count_fn)dlsym(fake, "fake_cublaslt_matmuls");
    if (!lt_live || !lt_matmuls) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_library),
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_products),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dlclose(fake);
    return rc;
}

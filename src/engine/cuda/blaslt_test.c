/*
 * blaslt_test.c - cuBLASLt's loader and the GEMM's host side, without a GPU.
 *
 * The row-major to column-major mapping is checked twice: against hand-worked cases, and
 * by running a plain column-major reference GEMM on the mapped arguments and comparing it
 * with a row-major triple loop on the original ones, over transposes, padded leading
 * dimensions and broadcast batches. The loader is checked with a missing file, a library
 * that is not cuBLASLt, and the real one where the toolkit is installed; the descriptors
 * (host objects) are made with the real library. Products on a device: tools/gpu-check.
 */
#include "engine/cuda/blaslt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void assert_contains(const char *msg, const char *part)
{
    if (!strstr(msg, part)) fail_msg("\"%s\" does not name \"%s\"", msg, part);
}

/* Runs first: once a load succeeded the library stays open for the process. */
static void test_load_missing_names_library_and_variable(void **state)
{
    cs_error err;
    setenv(CS__BLASLT_ENV, "/nonexistent/libcublasLt.so.13", 1);
    assert_int_equal(cs__blaslt_load(&err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "/nonexistent/libcublasLt.so.13");
    assert_contains(err.msg, "CS_LIBCUBLASLT");
    assert_contains(err.msg, "libcublasLt.so.13");
    assert_int_equal(cs__blaslt_version(), 0);
    /* A library that opens but is not cuBLASLt. */
    setenv(CS__BLASLT_ENV, "libm.so.6", 1);
    assert_int_equal(cs__blaslt_load(&err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "lacks cublasLtCreate");
    assert_contains(err.msg, "CS_LIBCUBLASLT");
    unsetenv(CS__BLASLT_ENV);
}

static bool toolkit_installed(void)
{
    return access("/usr/local/cuda/lib64/libcublasLt.so.13", R_OK) == 0 ||
           access("/usr/lib/x86_64-linux-gnu/libcublasLt.so.13", R_OK) == 0;
}

static void test_load_real_library(void **state)
{
    if (!toolkit_installed()) skip();
    cs_error err;
    if (cs__blaslt_load(&err) != CS_OK) fail_msg("%s", err.msg);
    assert_int_equal(cs__blaslt_version() / 10000, 13);
    /* Handles need a device: here either one exists or the error says what is missing.
     * Without a GPU, cuBLASLt leaks on that error path (LeakSanitizer sees its 192 bytes), so
     * the handle is asked for only where a device node exists. */
    if (access("/dev/nvidia0", F_OK) != 0) return;
    void *h = NULL;
    cs_status rc = cs__blaslt_handle_new(&h, &err);
    if (rc == CS_OK) {
        assert_non_null(h);
        cs__blaslt_handle_free(h);
    } else {
        assert_null(h);
        assert_contains(err.msg, "cublasLtCreate");
        assert_contains(err.msg, "CUDA device");
    }
}

static cs__cuda_gemm_shape shape(cs_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K)
{
    return (cs__cuda_gemm_shape){
        .type = t, .trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K, .batch = 1};
}

static void test_layout_hand_worked(void **state)
{
    cs_error err;
    /* Gemm A[2,4] B[4,3]: column-major D^T[3,2] = B^T[3,4] A^T[4,2]. */
    cs__cuda_gemm_shape s = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4);
    assert_int_equal(cs__cuda_gemm_check(&s, &err), CS_OK);
    cs__cuda_gemm_cm c = cs__cuda_gemm_layout(&s);
    assert_int_equal(c.m, 3);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.k, 4);
    assert_int_equal(c.lda, 3);
    assert_int_equal(c.ldb, 4);
    assert_int_equal(c.ldc, 3);
    assert_false(c.transa);
    assert_false(c.transb);
    assert_int_equal(c.a_rows, 3);
    assert_int_equal(c.a_cols, 4);
    assert_int_equal(c.b_rows, 4);
    assert_int_equal(c.b_cols, 2);

    /* transA and transB: A stored [4,2], B stored [3,4]. */
    s = shape(CS_DTYPE_FLOAT16, true, true, 2, 3, 4);
    assert_int_equal(cs__cuda_gemm_check(&s, &err), CS_OK);
    assert_int_equal(s.lda, 2);
    assert_int_equal(s.ldb, 4);
    c = cs__cuda_gemm_layout(&s);
    assert_true(c.transa);
    assert_true(c.transb);
    assert_int_equal(c.lda, 4);
    assert_int_equal(c.ldb, 2);
    assert_int_equal(c.a_rows, 4); /* B's memory, column-major [K, N] */
    assert_int_equal(c.a_cols, 3);
    assert_int_equal(c.b_rows, 2); /* A's memory, column-major [M, K] */
    assert_int_equal(c.b_cols, 4);

    /* Only transB (Gemm with a [N, K] weight, as Linear layers store it). */
    s = shape(CS_DTYPE_FLOAT32, false, true, 8, 16, 32);
    assert_int_equal(cs__cuda_gemm_check(&s, &err), CS_OK);
    c = cs__cuda_gemm_layout(&s);
    assert_true(c.transa);
    assert_false(c.transb);
    assert_int_equal(c.lda, 32);
    assert_int_equal(c.ldb, 32);
    assert_int_equal(c.ldc, 16);

    /* MatMul [5,2,4] x [4,3]: B shared by every batch entry; padded A rows. */
    s = shape(CS_DTYPE_BFLOAT16, false, false, 2, 3, 4);
    s.batch = 5;
    s.lda = 7;
    s.stride_a = 14;
    s.stride_b = 0;
    s.stride_d = 6;
    assert_int_equal(cs__cuda_gemm_check(&s, &err), CS_OK);
    c = cs__cuda_gemm_layout(&s);
    assert_int_equal(c.stride_a, 0);  /* the column-major a is B */
    assert_int_equal(c.stride_b, 14); /* and b is A */
    assert_int_equal(c.ldb, 7);
    assert_int_equal(c.lda, 3);
}

/* Column-major GEMM as cuBLASLt defines it, on the mapped arguments. */
static void cm_gemm(const cs__cuda_gemm_cm *c, int64_t batch, const double *a, const double *b,
                    double *d, int64_t stride_d)
{
    for (int64_t q = 0; q < batch; q++)
        for (int64_t j = 0; j < c->n; j++)
            for (int64_t i = 0; i < c->m; i++) {
                const double *aq = a + q * c->stride_a, *bq = b + q * c->stride_b;
                double sum = 0;
                for (int64_t l = 0; l < c->k; l++)
                    sum += (c->transa ? aq[l + i * c->lda] : aq[i + l * c->lda]) *
                           (c->transb ? bq[j + l * c->ldb] : bq[l + j * c->ldb]);
                d[q * stride_d + i + j * c->ldc] = sum;
            }
}

static void check_mapping(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad,
                          int64_t batch, bool share_b)
{
    cs_error err;
    cs__cuda_gemm_shape s = shape(CS_DTYPE_FLOAT32, ta, tb, M, N, K);
    s.lda = (ta ? M : K) + pad;
    s.ldb = (tb ? K : N) + pad;
    s.ldc = N + pad;
    s.batch = batch;
    int64_t rows_a = ta ? K : M, rows_b = tb ? N : K;
    s.stride_a = rows_a * s.lda;
    s.stride_b = share_b ? 0 : rows_b * s.ldb;
    s.stride_d = M * s.ldc;
    assert_int_equal(cs__cuda_gemm_check(&s, &err), CS_OK);
    size_t na = (size_t)(s.stride_a * batch), nb = (size_t)(rows_b * s.ldb * batch),
           nd = (size_t)(s.stride_d * batch);
    double *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    double *got = calloc(nd, sizeof *got), *want = calloc(nd, sizeof *want);
    for (size_t i = 0; i < na; i++) a[i] = (double)((i * 7) % 13) - 6;
    for (size_t i = 0; i < nb; i++) b[i] = (double)((i * 5) % 11) - 5;
    for (int64_t q = 0; q < batch; q++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                const double *aq = a + q * s.stride_a, *bq = b + q * s.stride_b;
                double sum = 0;
                for (int64_t k = 0; k < K; k++)
                    sum += (ta ? aq[k * s.lda + m] : aq[m * s.lda + k]) *
                           (tb ? bq[n * s.ldb + k] : bq[k * s.ldb + n]);
                want[q * s.stride_d + m * s.ldc + n] = sum;
            }
    cs__cuda_gemm_cm c = cs__cuda_gemm_layout(&s);
    /* The column-major call reads B's memory as its a and A's as its b. */
    cm_gemm(&c, batch, b, a, got, s.stride_d);
    for (size_t i = 0; i < nd; i++)
        if (got[i] != want[i])
            fail_msg("ta=%d tb=%d M=%lld N=%lld K=%lld pad=%lld batch=%lld: d[%zu] = %g, want %g",
                     ta, tb, (long long)M, (long long)N, (long long)K, (long long)pad,
                     (long long)batch, i, got[i], want[i]);
    free(a);
    free(b);
    free(got);
    free(want);
}

static void test_layout_computes_row_major_product(void **state)
{
    for (int tr = 0; tr < 4; tr++)
        for (int64_t pad = 0; pad < 3; pad += 2) {
            check_mapping(tr & 1, tr & 2, 1, 1, 1, pad, 1, false);
            check_mapping(tr & 1, tr & 2, 3, 5, 2, pad, 1, false);
            check_mapping(tr & 1, tr & 2, 4, 1, 7, pad, 1, false);
            check_mapping(tr & 1, tr & 2, 2, 3, 4, pad, 3, false);
            check_mapping(tr & 1, tr & 2, 2, 3, 4, pad, 3, true);
        }
}

static void expect(cs__cuda_gemm_shape s, cs_status code, const char *part)
{
    cs_error err;
    assert_int_equal(cs__cuda_gemm_check(&s, &err), code);
    assert_contains(err.msg, part);
}

static void test_check_rejects(void **state)
{
    expect(shape(CS_DTYPE_INT64, false, false, 2, 2, 2), CS_ERR_UNSUPPORTED, "int64");
    expect(shape(CS_DTYPE_FLOAT64, false, false, 2, 2, 2), CS_ERR_UNSUPPORTED, "float64");
    expect(shape(CS_DTYPE_FLOAT32, false, false, 0, 2, 2), CS_ERR_INVALID, "M = 0");
    expect(shape(CS_DTYPE_FLOAT32, false, false, 2, 2, (int64_t)1 << 31), CS_ERR_INVALID, "K =");
    cs__cuda_gemm_shape s = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4);
    s.lda = 3; /* rows of A hold K = 4 */
    expect(s, CS_ERR_INVALID, "lda = 3");
    s = shape(CS_DTYPE_FLOAT32, false, true, 2, 3, 4);
    s.ldb = 3; /* B stored [N, K] */
    expect(s, CS_ERR_INVALID, "ldb = 3");
    s = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4);
    s.ldc = 2;
    expect(s, CS_ERR_INVALID, "ldc = 2");
    s = shape(CS_DTYPE_FLOAT16, false, false, 2, 3, 4);
    s.tf32 = true;
    expect(s, CS_ERR_INVALID, "tf32");
    s = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4);
    s.batch = 2;
    s.stride_d = 5; /* < M * N = 6: the batches' outputs would overlap */
    expect(s, CS_ERR_INVALID, "stride_d = 5");
    s.stride_d = 6;
    s.stride_a = -1;
    expect(s, CS_ERR_INVALID, "strides");
    s = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4);
    s.align = 2; /* below the element size */
    expect(s, CS_ERR_INVALID, "align = 2");
    s.align = 48;
    expect(s, CS_ERR_INVALID, "align = 48");
    s.align = 0;
    s.epilogue = (cs__cuda_epilogue)17;
    expect(s, CS_ERR_INVALID, "epilogue");
}

static void test_args_check(void **state)
{
    cs_error err;
    cs__cuda_gemm_plan p = {.shape = shape(CS_DTYPE_FLOAT32, false, false, 2, 3, 4),
                            .workspace = 1024};
    p.shape.epilogue = CS__CUDA_EPI_RELU_BIAS;
    assert_int_equal(cs__cuda_gemm_check(&p.shape, &err), CS_OK);
    cs__cuda_gemm_args a = {.plan = &p,
                            .a = 0x1000,
                            .b = 0x2000,
                            .d = 0x3000,
                            .bias = 0x4000,
                            .workspace = 0x8000,
                            .workspace_size = 1024};
    assert_int_equal(cs__cuda_gemm_args_check(&a, &err), CS_OK);
    cs__cuda_gemm_args bad = a;
    bad.bias = 0;
    assert_int_equal(cs__cuda_gemm_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "bias is required");
    bad = a;
    bad.c = 0x5000; /* the plan has no C */
    assert_int_equal(cs__cuda_gemm_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "c given");
    bad = a;
    bad.a = 0x1010; /* 16-byte aligned, the plan promised 64 */
    assert_int_equal(cs__cuda_gemm_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "a = 0x1010 is not aligned");
    bad = a;
    bad.workspace_size = 512;
    assert_int_equal(cs__cuda_gemm_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "needs 1024");
    bad = a;
    bad.plan = NULL;
    assert_int_equal(cs__cuda_gemm(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "no plan");
}

/* The descriptors are host objects: made here with the real library, which checks each
 * attribute's size against what it stores. */
static void test_describe_with_real_library(void **state)
{
    if (!toolkit_installed()) skip();
    cs_error err;
    cs__cuda_gemm_shape s = shape(CS_DTYPE_FLOAT16, true, false, 64, 32, 16);
    s.batch = 4;
    s.stride_a = 16 * 64;
    s.stride_b = 0;
    s.stride_d = 64 * 32;
    s.epilogue = CS__CUDA_EPI_GELU_BIAS;
    cs__cuda_gemm_plan p;
    if (cs__cuda_gemm_plan_describe(&p, &s, &err) != CS_OK) fail_msg("%s", err.msg);
    assert_non_null(p.desc);
    assert_non_null(p.layout_a);
    assert_non_null(p.layout_d);
    cs__cuda_gemm_plan_free(&p);
    assert_null(p.desc);
    assert_null(p.layout_a);
    /* Without a handle the plan stops before the heuristic and keeps nothing. */
    assert_int_equal(cs__cuda_gemm_plan_init(&p, NULL, &s, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "no handle");
    assert_null(p.desc);
    cs__cuda_gemm_plan_free(&p);
    /* Shape errors come first, whatever the handle. */
    s.type = CS_DTYPE_INT8;
    assert_int_equal(cs__cuda_gemm_plan_init(&p, NULL, &s, &err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "int8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_missing_names_library_and_variable),
        cmocka_unit_test(test_load_real_library),
        cmocka_unit_test(test_layout_hand_worked),
        cmocka_unit_test(test_layout_computes_row_major_product),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_args_check),
        cmocka_unit_test(test_describe_with_real_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

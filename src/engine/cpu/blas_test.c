/*
 * blas_test.c - cs__gemm against a plain triple loop: every transpose combination, float32
 * and float64, padded leading dimensions, alpha and beta, one-row products (which take the
 * GEMV path), and the same products split across a thread pool.
 */
#include "engine/cpu/blas.h"
#include "engine/ktest.h"

#include "base/pool.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void check(cs__kctx *ctx, cs_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                  double alpha, double beta)
{
    /* Leading dimensions padded past the stored width, as a sliced operand would be. */
    int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldy = N + 1;
    void *a = ktest_filled(t, (ta ? K : M) * lda, 1, 8),
         *b = ktest_filled(t, (tb ? N : K) * ldb, 2, 8);
    void *y = ktest_filled(t, M * ldy, 3, 8), *want = ktest_filled(t, M * ldy, 3, 8);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += ktest_get(t, a, ta ? k * lda + m : m * lda + k) *
                     ktest_get(t, b, tb ? n * ldb + k : k * ldb + n);
            ktest_set(t, want, m * ldy + n, alpha * s + beta * ktest_get(t, want, m * ldy + n));
        }
    cs__gemm(ctx, t, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, y, ldy);
    for (int64_t i = 0; i < M * ldy; i++) {
        double got = ktest_get(t, y, i), exp = ktest_get(t, want, i);
        if (fabs(got - exp) > 1e-4 * (1 + fabs(exp)))
            fail_msg("%s ta=%d tb=%d M=%lld N=%lld K=%lld: y[%lld] = %g, want %g",
                     t == CS_DTYPE_FLOAT64 ? "f64" : "f32", ta, tb, (long long)M, (long long)N,
                     (long long)K, (long long)i, got, exp);
    }
    free(a);
    free(b);
    free(y);
    free(want);
}

static void sweep(cs__kctx *ctx)
{
    const int64_t ms[] = {1, 2, 17, 40}, ns[] = {1, 5, 33}, ks[] = {1, 7, 64};
    const cs_dtype types[] = {CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT64};
    for (int ti = 0; ti < 2; ti++)
        for (int tr = 0; tr < 4; tr++)
            for (size_t mi = 0; mi < 4; mi++)
                for (size_t ni = 0; ni < 3; ni++)
                    for (size_t ki = 0; ki < 3; ki++) {
                        check(ctx, types[ti], tr & 1, tr & 2, ms[mi], ns[ni], ks[ki], 1.0, 0.0);
                        check(ctx, types[ti], tr & 1, tr & 2, ms[mi], ns[ni], ks[ki], 0.5, 2.0);
                    }
}

static void test_gemm_one_thread(void **state)
{
    cs__kctx ctx = {0};
    sweep(&ctx);
}

static void test_gemm_split_across_threads(void **state)
{
    cs_pool *pool;
    assert_int_equal(cs_pool_new(3, &pool, NULL), CS_OK);
    cs__kctx ctx = {.pool = pool, .threads = 3};
    sweep(&ctx);
    /* Long enough in N (one row) and in M for the 16-wide blocks to split. */
    check(&ctx, CS_DTYPE_FLOAT32, false, true, 1, 100, 9, 1.0, 0.0);
    check(&ctx, CS_DTYPE_FLOAT32, true, false, 1, 100, 9, 1.0, 1.0);
    check(&ctx, CS_DTYPE_FLOAT64, false, false, 100, 3, 9, 2.0, 0.5);
    cs_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_one_thread),
        cmocka_unit_test(test_gemm_split_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

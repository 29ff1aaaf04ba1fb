/*
 * pgemm_test.c - the prepacked AVX-512 GEMM against a plain triple loop in double: row
 * counts around the 8-row panels, column counts around the 16-column vectors and 48-column
 * tiles (tails of 1 and 15), K from 0, with and without bias, no activation, ReLU6, a
 * clamp with lo > hi and NaN inputs, on the calling thread and split across a pool; and the
 * variant with the right operand packed (MatMul's and Gemm's weights, as given or
 * transposed) on the same shapes, its bias one per column.
 * Skipped on CPUs without AVX-512, where conv.c never calls it; CAPSTAN_CPU=portable turns
 * it off where the CPU has it.
 */
#include "engine/cpu/pgemm.h"
#include "engine/ktest.h"

#include "base/pool.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Clip's result for v, NaN kept. */
static double clamp(double v, const cs__act *act)
{
    if (act->kind == CS__ACT_NONE) return v;
    float lo = (float)act->lo, hi = (float)act->hi;
    return CS__CLAMP((float)v, lo, hi);
}

/* y = a * x + bias, then act, against the reference, with a packed (cs__pgemm, a bias per
 * row) or, right, with x packed (cs__pgemm_b, a bias per column), from x itself or, trans,
 * from its transpose. */
static void check_side(cs_pool *pool, int64_t M, int64_t N, int64_t K, bool bias,
                       const cs__act *act, bool nan, bool right, bool trans)
{
    float *a = ktest_filled(CS_DTYPE_FLOAT32, M * K, 1, 0);
    float *x = ktest_filled(CS_DTYPE_FLOAT32, K * N, 2, 0);
    float *b = ktest_filled(CS_DTYPE_FLOAT32, right ? N : M, 3, 0);
    float *xt = ktest_filled(CS_DTYPE_FLOAT32, K * N, 5, 0);
    float *y = ktest_filled(CS_DTYPE_FLOAT32, M * N, 4, 0); /* garbage to overwrite */
    if (nan && K * N > 0) x[(K * N) / 2] = NAN;
    size_t floats = right ? cs__pgemm_cols_floats(K, N) : cs__pgemm_weights_floats(M, K);
    float *packed = aligned_alloc(64, (floats * sizeof(float) + 64) / 64 * 64);
    assert_non_null(packed);
    cs_error err = {0};
    cs__kctx ctx = {.pool = pool, .threads = pool ? cs_pool_size(pool) : 1, .err = &err};
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++) xt[n * K + k] = x[k * N + n];
    if (right) {
        cs__pgemm_cols(K, N, trans ? xt : x, trans, packed);
        cs__pgemm_b(&ctx, M, N, K, a, packed, bias ? b : NULL, act, y);
    } else {
        cs__pgemm_weights(M, K, a, packed);
        cs__pgemm(&ctx, M, N, K, packed, x, bias ? b : NULL, act, y);
    }
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)a[m * K + k] * x[k * N + n];
            /* float32 sum, then the bias and the clamp in float, as the kernel does */
            float bv = bias ? b[right ? n : m] : 0.0f;
            double want = clamp((float)s + bv, act), got = y[m * N + n];
            if (isnan(want) ? !isnan(got) : fabs(got - want) > 1e-5 * (1 + K) * (1 + fabs(want)))
                fail_msg("M=%lld N=%lld K=%lld bias=%d act=%d nan=%d right=%d trans=%d: "
                         "y[%lld,%lld] = %g, want %g",
                         (long long)M, (long long)N, (long long)K, bias, act->kind, nan, right,
                         trans, (long long)m, (long long)n, got, want);
        }
    free(packed);
    free(a);
    free(x);
    free(b);
    free(xt);
    free(y);
}

static void check(cs_pool *pool, int64_t M, int64_t N, int64_t K, bool bias, const cs__act *act,
                  bool nan)
{
    check_side(pool, M, N, K, bias, act, nan, false, false);
    check_side(pool, M, N, K, bias, act, nan, true, false);
    check_side(pool, M, N, K, bias, act, nan, true, true);
}

static void sweep(cs_pool *pool)
{
    static const int64_t ms[] = {1, 7, 8, 9, 17, 24};
    static const int64_t ns[] = {1, 15, 16, 17, 33, 47, 48, 49, 100, 196};
    static const int64_t ks[] = {0, 1, 3, 16, 33};
    const cs__act none = {CS__ACT_NONE, 0, 0}, relu6 = {CS__ACT_CLAMP, 0, 6},
                  crossed = {CS__ACT_CLAMP, 0.5, -0.5};
    const cs__act *acts[] = {&none, &relu6, &crossed};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                size_t v = mi + ni + ki;
                check(pool, ms[mi], ns[ni], ks[ki], v % 2, acts[v % 3], false);
            }
    check(pool, 9, 49, 5, true, &relu6, true);
    check(pool, 9, 49, 5, false, &none, true);
}

static void test_pgemm_one_thread(void **state)
{
    if (!cs__cpu_avx512()) skip();
    sweep(NULL);
}

static void test_pgemm_split_across_threads(void **state)
{
    if (!cs__cpu_avx512()) skip();
    cs_pool *pool;
    assert_int_equal(cs_pool_new(3, &pool, NULL), CS_OK);
    sweep(pool);
    /* enough tiles to split: 8 panels x 21 column blocks of 64 multiply-adds each */
    check(pool, 64, 1000, 64, true, &(cs__act){CS__ACT_CLAMP, 0, 6}, false);
    cs_pool_free(pool);
}

/* CAPSTAN_CPU=portable turns the AVX-512 kernels off on a CPU that has them; it is read
 * once per process, so the check runs in a child. */
static void test_portable_switch(void **state)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || getenv("CAPSTAN_CPU")) skip();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CAPSTAN_CPU", "portable", 1);
        _exit(cs__cpu_avx512() ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(cs__cpu_avx512());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_portable_switch),
        cmocka_unit_test(test_pgemm_one_thread),
        cmocka_unit_test(test_pgemm_split_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

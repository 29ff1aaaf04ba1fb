/*
 * clock_test.c - monotonic clocks never go backwards, sleep sleeps, wall clock is sane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/clock.h"

static void test_monotonic(void **state)
{
    uint64_t prev = cs_now_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = cs_now_ns();
        assert_true(now >= prev);
        prev = now;
    }
    uint64_t us = cs_now_us(), ns = cs_now_ns();
    assert_true(ns / 1000 >= us);
}

static void test_sleep(void **state)
{
    uint64_t t0 = cs_now_ns();
    cs_sleep_ns(20 * 1000 * 1000);
    uint64_t dt = cs_now_ns() - t0;
    assert_true(dt >= 20 * 1000 * 1000);
    assert_true(dt < 5ull * 1000 * 1000 * 1000);
    double s = cs_elapsed_s(t0);
    assert_true(s >= 0.02 && s < 5.0);
    cs_sleep_ns(0);
}

static void test_wall(void **state)
{
    /* After 2020-01-01 and before 2200: catches unit mistakes (us vs ns, s vs ns). */
    uint64_t w = cs_wall_ns();
    assert_true(w > 1577836800ull * 1000000000ull);
    assert_true(w < 7258118400ull * 1000000000ull);
}

static void test_duration(void **state)
{
    int64_t ns;
    assert_int_equal(cs_duration_parse("30d", &ns), 0);
    assert_true(ns == 30LL * 86400 * 1000000000LL);
    assert_int_equal(cs_duration_parse("1h30m", &ns), 0);
    assert_true(ns == 5400LL * 1000000000LL);
    assert_int_equal(cs_duration_parse("500ms", &ns), 0);
    assert_true(ns == 500000000LL);
    assert_int_equal(cs_duration_parse("2m5s", &ns), 0);
    assert_true(ns == 125LL * 1000000000LL);
    assert_int_equal(cs_duration_parse("7us", &ns), 0);
    assert_true(ns == 7000);
    const char *bad[] = {"",        "5", "s", "-5s", "5x", "1.5h", "5s ", "99999999999999999999s",
                         "200000d", NULL};
    for (int i = 0; bad[i]; i++) assert_int_equal(cs_duration_parse(bad[i], &ns), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_wall),
        cmocka_unit_test(test_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_wall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

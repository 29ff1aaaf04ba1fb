/*
 * rolling_test.c - the rolling-update step against Kubernetes' behaviour: how far the new
 * version surges, that ready instances never fall below desired - maxUnavailable while a
 * rollout runs, that a new version which never becomes ready stops it with the old one still
 * serving, that unhealthy old instances go first, and that every rollout finishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/rolling.h"

/* Runs a rollout to the end, with every new instance ready as soon as it exists (the
 * built-in runtime), and checks the bounds at every step. Returns the number of steps. */
static int run_to_end(int desired, int surge, int unavailable)
{
    cs_rolling_view v = {desired, surge, unavailable, 0, 0, desired, desired};
    int eff_unavail = surge == 0 && unavailable == 0 ? 1 : unavailable;
    if (eff_unavail > desired) eff_unavail = desired;
    int steps = 0;
    while (v.old_total > 0 || v.new_total < desired) {
        cs_rolling_plan p = cs_rolling_step(&v);
        assert_true(p.new_want >= v.new_total && p.new_want <= desired);
        assert_true(p.old_want <= v.old_total && p.old_want >= 0);
        assert_true(p.new_want != v.new_total || p.old_want != v.old_total); /* it moves */
        v.new_total = v.new_ready = p.new_want;
        v.old_total = v.old_ready = p.old_want;
        assert_true(v.new_total + v.old_total <= desired + (surge > 0 ? surge : 0));
        assert_true(v.new_ready + v.old_ready >= desired - eff_unavail);
        assert_true(++steps < 100);
    }
    return steps;
}

static void test_surge_one_unavailable_zero(void **state)
{
    (void)state;
    /* The example: {maxSurge: 1, maxUnavailable: 0} on 4 instances goes one at a
     * time, up one, then down one: 8 steps, never below 4 ready nor above 5 in all. */
    cs_rolling_view v = {4, 1, 0, 0, 0, 4, 4};
    cs_rolling_plan p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 1);
    assert_int_equal(p.old_want, 4);
    v.new_total = v.new_ready = 1;
    p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 1);
    assert_int_equal(p.old_want, 3);
    assert_int_equal(run_to_end(4, 1, 0), 8);
}

static void test_kubernetes_defaults(void **state)
{
    (void)state;
    /* 25%/25% of 4: surge 1 (rounded up), unavailable 1 (rounded down). */
    cs_rolling_view v = {4, 1, 1, 0, 0, 4, 4};
    cs_rolling_plan p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 1);
    v.new_total = v.new_ready = 1;
    p = cs_rolling_step(&v);
    assert_int_equal(p.old_want, 2); /* 5 ready, 3 must stay: two old ones go */
    run_to_end(4, 1, 1);
    run_to_end(10, 3, 2);
    run_to_end(1, 1, 0);
    run_to_end(3, 0, 1);
}

static void test_zero_zero_still_moves(void **state)
{
    (void)state;
    /* Both 0 is refused at apply, but a resolved 25% of 1 rounds down to 0: as Kubernetes,
     * unavailable becomes 1 and the single instance is replaced. */
    cs_rolling_view v = {1, 0, 0, 0, 0, 1, 1};
    cs_rolling_plan p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 0);
    assert_int_equal(p.old_want, 0);
    assert_int_equal(run_to_end(1, 0, 0), 2);
}

static void test_new_version_never_ready(void **state)
{
    (void)state;
    /* The new instances start but never become ready: the rollout stops with desired -
     * unavailable old ones still serving, and no further old instance is taken. */
    cs_rolling_view v = {4, 1, 1, 0, 0, 4, 4};
    for (int i = 0; i < 20; i++) {
        cs_rolling_plan p = cs_rolling_step(&v);
        v.new_total = p.new_want; /* none of them ready */
        v.old_total = v.old_ready = p.old_want;
        assert_true(v.old_ready >= 3);
    }
    assert_int_equal(v.old_ready, 3);
    assert_int_equal(v.new_total, 2);
}

static void test_unhealthy_old_first(void **state)
{
    (void)state;
    /* Two of four old instances have failed, so only 2 are ready where 3 must be: no ready
     * one may go, but a failed one can (the one surplus instance over desired - unavailable),
     * and then the new version grows into its place. */
    cs_rolling_view v = {4, 0, 1, 0, 0, 4, 2};
    cs_rolling_plan p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 0);
    assert_int_equal(p.old_want, 3);
    v.old_total = 3; /* 2 ready, 1 failed */
    p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 1);
    assert_int_equal(p.old_want, 3);
}

static void test_scale_to_zero_and_shrink(void **state)
{
    (void)state;
    /* The autoscaler went to zero mid-rollout: everything old goes, nothing new starts. */
    cs_rolling_view v = {0, 1, 0, 0, 0, 3, 3};
    cs_rolling_plan p = cs_rolling_step(&v);
    assert_int_equal(p.new_want, 0);
    assert_int_equal(p.old_want, 0);
    /* Desired fell below what the new version has: it is trimmed to desired. */
    cs_rolling_view w = {2, 1, 0, 3, 3, 1, 1};
    p = cs_rolling_step(&w);
    assert_int_equal(p.new_want, 2);
    assert_int_equal(p.old_want, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_surge_one_unavailable_zero),
        cmocka_unit_test(test_kubernetes_defaults),
        cmocka_unit_test(test_zero_zero_still_moves),
        cmocka_unit_test(test_new_version_never_ready),
        cmocka_unit_test(test_unhealthy_old_first),
        cmocka_unit_test(test_scale_to_zero_and_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * balance_test.c - power of two choices never picks a non-ready or full instance and spreads
 * load as it should over 10k picks; the restart back-off doubles, caps and resets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/balance.h"

static void test_none_available(void **state)
{
    (void)state;
    cs_rng r;
    cs_rng_seed(&r, 1);
    assert_int_equal(cs_balance_pick(NULL, 0, 0, &r), -1);
    cs_balance_inst in[3] = {{false, 0}, {true, 4}, {true, 5}};
    assert_int_equal(cs_balance_pick(in, 3, 4, &r), -1); /* both ready ones at the limit */
    in[1].outstanding = 3;
    for (int i = 0; i < 100; i++) assert_int_equal(cs_balance_pick(in, 3, 4, &r), 1);
    assert_int_not_equal(cs_balance_pick(in, 3, 0, &r), 0); /* unlimited: never the not-ready */
}

static void test_never_picks_ineligible(void **state)
{
    (void)state;
    cs_rng r;
    cs_rng_seed(&r, 42);
    cs_balance_inst in[8];
    for (int it = 0; it < 10000; it++) {
        for (int i = 0; i < 8; i++)
            in[i] = (cs_balance_inst){(cs_rng_next(&r) & 3) != 0, (int)(cs_rng_next(&r) % 6)};
        int k = cs_balance_pick(in, 8, 4, &r);
        int any = 0;
        for (int i = 0; i < 8; i++) any |= in[i].ready && in[i].outstanding < 4;
        if (!any) {
            assert_int_equal(k, -1);
            continue;
        }
        assert_true(k >= 0 && k < 8);
        assert_true(in[k].ready);
        assert_true(in[k].outstanding < 4);
    }
}

/* Two choices always avoid the single most loaded of the eligible instances, and with equal
 * load every instance gets about its share. */
static void test_distribution(void **state)
{
    (void)state;
    cs_rng r;
    cs_rng_seed(&r, 7);
    cs_balance_inst in[4] = {{true, 0}, {true, 0}, {true, 0}, {true, 0}};
    int hits[4] = {0};
    for (int i = 0; i < 10000; i++) hits[cs_balance_pick(in, 4, 0, &r)]++;
    for (int i = 0; i < 4; i++) assert_true(hits[i] > 2000 && hits[i] < 3000);

    /* loads 0,1,2,3: the busiest is never chosen; the idlest wins whenever drawn (half the
     * pairs contain it: P = 3/6). */
    for (int i = 0; i < 4; i++) in[i].outstanding = i, hits[i] = 0;
    for (int i = 0; i < 10000; i++) hits[cs_balance_pick(in, 4, 0, &r)]++;
    assert_int_equal(hits[3], 0);
    assert_true(hits[0] > 4500 && hits[0] < 5500);
    assert_true(hits[1] > hits[2]);

    /* Closed loop: each pick adds one outstanding, each tenth pick drains every instance.
     * The pick is never the unique busiest instance: the other draw is always less busy. */
    for (int i = 0; i < 4; i++) in[i].outstanding = 0;
    for (int i = 0; i < 10000; i++) {
        int k = cs_balance_pick(in, 4, 0, &r), above = 0;
        for (int j = 0; j < 4; j++) above += j != k && in[j].outstanding >= in[k].outstanding;
        assert_true(above >= 1 || in[k].outstanding == 0);
        in[k].outstanding++;
        if (i % 10 == 9)
            for (int j = 0; j < 4; j++) in[j].outstanding = 0;
    }
}

static void test_seeded_is_deterministic(void **state)
{
    (void)state;
    cs_rng a, b;
    cs_rng_seed(&a, 99);
    cs_rng_seed(&b, 99);
    for (int i = 0; i < 100; i++) assert_true(cs_rng_next(&a) == cs_rng_next(&b));
    cs_rng_seed(&a, 0);
    assert_true(cs_rng_next(&a) != 0);
}

static void test_backoff(void **state)
{
    (void)state;
    cs_backoff_policy p = cs_backoff_default();
    assert_true(p.initial_ms == 10000 && p.max_ms == 300000 && p.reset_ms == 600000);
    cs_backoff b = {0};
    const int64_t want[] = {10000, 20000, 40000, 80000, 160000, 300000, 300000};
    for (int i = 0; i < 7; i++) assert_true(cs_backoff_next(&b, &p, 1000) == want[i]);
    assert_int_equal(b.restarts, 7);
    /* just under ten minutes healthy: still capped */
    assert_true(cs_backoff_next(&b, &p, 599999) == 300000);
    /* ten minutes healthy: back to the start */
    assert_true(cs_backoff_next(&b, &p, 600000) == 10000);
    assert_int_equal(b.restarts, 1);
    assert_true(cs_backoff_next(&b, &p, 0) == 20000);

    cs_backoff_policy fast = {100, 250, 1000};
    cs_backoff c = {0};
    assert_true(cs_backoff_next(&c, &fast, 0) == 100);
    assert_true(cs_backoff_next(&c, &fast, 0) == 200);
    assert_true(cs_backoff_next(&c, &fast, 0) == 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_available), cmocka_unit_test(test_never_picks_ineligible),
        cmocka_unit_test(test_distribution),   cmocka_unit_test(test_seeded_is_deterministic),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

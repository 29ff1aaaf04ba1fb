/*
 * pool_test.c - the thread pool: many tasks then wait, shutdown with pending work in drain
 * and drop modes, submit after shutdown, bad sizes, and free without an explicit shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

static void count(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* A gate that holds the workers so that later tasks stay queued. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open, waiting;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = g->waiting = 0;
}

static void gate_wait(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->lock);
    g->waiting++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Waits until n workers sit in gate_wait, so every worker is busy. */
static void gate_until_waiting(gate *g, int n)
{
    pthread_mutex_lock(&g->lock);
    while (g->waiting < n) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void *gate_open_later(void *arg)
{
    gate *g = arg;
    cs_sleep_ns(20 * 1000 * 1000);
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* cs_pool_run: every index runs exactly once, on several threads, even when two callers
 * start jobs at the same time; and it allocates nothing. */
typedef struct run_counts {
    atomic_int hits[1000];
} run_counts;

static void count_index(void *arg, int i)
{
    run_counts *c = arg;
    atomic_fetch_add(&c->hits[i], 1);
}

typedef struct runner {
    cs_pool *pool;
    run_counts counts;
} runner;

static void *run_jobs(void *p)
{
    runner *r = p;
    for (int k = 0; k < 50; k++) cs_pool_run(r->pool, 1000, count_index, &r->counts);
    return NULL;
}

static void test_run_fork_join(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(3, &p, NULL), CS_OK);
    runner r[2] = {{p, {{0}}}, {p, {{0}}}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_jobs, &r[1]), 0);
    cs_alloc_fail_after(0); /* the caller's jobs must not allocate */
    run_jobs(&r[0]);
    cs_alloc_fail_after(-1);
    pthread_join(t, NULL);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(atomic_load(&r[0].counts.hits[i]), 50);
        assert_int_equal(atomic_load(&r[1].counts.hits[i]), 50);
    }
    cs_pool_run(p, 0, count_index, &r[0].counts); /* an empty job returns at once */
    cs_pool_free(p);
}

static void test_bad_size(void **state)
{
    cs_pool *p = (cs_pool *)1;
    cs_error err;
    assert_int_equal(cs_pool_new(0, &p, &err), CS_ERR_INVALID);
    assert_null(p);
    assert_non_null(strstr(err.msg, "1..256"));
    assert_int_equal(cs_pool_new(257, &p, NULL), CS_ERR_INVALID);
    cs_pool_free(NULL);
}

static void test_many_tasks_then_wait(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(4, &p, NULL), CS_OK);
    assert_int_equal(cs_pool_size(p), 4);
    atomic_int n = 0;
    for (int round = 1; round <= 3; round++) {
        for (int i = 0; i < 10000; i++) assert_int_equal(cs_pool_submit(p, count, &n), CS_OK);
        cs_pool_wait(p);
        assert_int_equal(atomic_load(&n), round * 10000);
    }
    cs_pool_wait(p); /* nothing pending: returns at once */
    cs_pool_free(p);
}

static void test_shutdown_drain(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(2, &p, NULL), CS_OK);
    gate g;
    gate_init(&g);
    atomic_int n = 0;
    for (int i = 0; i < 2; i++) assert_int_equal(cs_pool_submit(p, gate_wait, &g), CS_OK);
    gate_until_waiting(&g, 2);
    for (int i = 0; i < 100; i++) assert_int_equal(cs_pool_submit(p, count, &n), CS_OK);
    pthread_t opener;
    pthread_create(&opener, NULL, gate_open_later, &g);
    assert_int_equal(cs_pool_shutdown(p, 1), 0); /* drains: every queued task ran */
    assert_int_equal(atomic_load(&n), 100);
    assert_int_equal(cs_pool_submit(p, count, &n), CS_ERR_SHUTDOWN);
    assert_int_equal(cs_pool_shutdown(p, 0), 0); /* idempotent */
    cs_pool_wait(p);
    pthread_join(opener, NULL);
    cs_pool_free(p);
    assert_int_equal(atomic_load(&n), 100);
    gate_destroy(&g);
}

static void test_shutdown_drop(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(3, &p, NULL), CS_OK);
    gate g;
    gate_init(&g);
    atomic_int n = 0;
    for (int i = 0; i < 3; i++) assert_int_equal(cs_pool_submit(p, gate_wait, &g), CS_OK);
    gate_until_waiting(&g, 3);
    for (int i = 0; i < 50; i++) assert_int_equal(cs_pool_submit(p, count, &n), CS_OK);
    pthread_t opener;
    pthread_create(&opener, NULL, gate_open_later, &g);
    /* The 3 running tasks finish; the 50 queued ones are dropped and counted. */
    assert_int_equal(cs_pool_shutdown(p, 0), 50);
    assert_int_equal(atomic_load(&n), 0);
    assert_int_equal(cs_pool_submit(p, count, &n), CS_ERR_SHUTDOWN);
    cs_pool_wait(p); /* nothing pending after a drop */
    pthread_join(opener, NULL);
    cs_pool_free(p);
    assert_int_equal(atomic_load(&n), 0);
    gate_destroy(&g);
}

static void test_free_drains(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(1, &p, NULL), CS_OK);
    atomic_int n = 0;
    for (int i = 0; i < 1000; i++) assert_int_equal(cs_pool_submit(p, count, &n), CS_OK);
    cs_pool_free(p);
    assert_int_equal(atomic_load(&n), 1000);
}

static void test_submit_nomem(void **state)
{
    cs_pool *p;
    assert_int_equal(cs_pool_new(2, &p, NULL), CS_OK);
    atomic_int n = 0;
    cs_alloc_fail_after(0);
    assert_int_equal(cs_pool_submit(p, count, &n), CS_ERR_NOMEM);
    cs_alloc_fail_after(-1);
    cs_pool_wait(p); /* the failed task is not pending */
    assert_int_equal(atomic_load(&n), 0);
    assert_int_equal(cs_pool_submit(p, count, &n), CS_OK);
    cs_pool_wait(p);
    assert_int_equal(atomic_load(&n), 1);
    cs_pool_free(p);

    /* Creation fails cleanly when either allocation fails. */
    cs_error err;
    for (long k = 0; k < 2; k++) {
        cs_alloc_fail_after(k);
        assert_int_equal(cs_pool_new(2, &p, &err), CS_ERR_NOMEM);
        cs_alloc_fail_after(-1);
        assert_null(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_size),
        cmocka_unit_test(test_run_fork_join),
        cmocka_unit_test(test_many_tasks_then_wait),
        cmocka_unit_test(test_shutdown_drain),
        cmocka_unit_test(test_shutdown_drop),
        cmocka_unit_test(test_free_drains),
        cmocka_unit_test_teardown(test_submit_nomem, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

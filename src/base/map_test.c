/*
 * map_test.c - the hash map through several resizes, with deletions (tombstones),
 * re-insertions, replacement, iteration, and allocation failure leaving it unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 5000

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

/* Values are 1-based indices cast to pointers, so NULL always means absent. */
static void *val(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

static void key(char *buf, size_t n, size_t i)
{
    snprintf(buf, n, "tensor/%zu:0", i);
}

/* Iterates the whole map and checks it holds exactly the keys marked in `present`. */
static void check_iteration(const cs_map *m, const char *present)
{
    size_t it = 0, seen = 0;
    const char *k;
    void *v;
    char *visited = calloc(N, 1);
    while (cs_map_next(m, &it, &k, &v)) {
        size_t i;
        assert_int_equal(sscanf(k, "tensor/%zu:0", &i), 1);
        assert_true(i < N);
        assert_true(present[i]);
        assert_false(visited[i]);
        assert_ptr_equal(v, val(i));
        visited[i] = 1;
        seen++;
    }
    assert_int_equal(seen, cs_map_len(m));
    free(visited);
}

static void test_empty(void **state)
{
    cs_map m;
    cs_map_init(&m);
    assert_null(cs_map_get(&m, "x"));
    assert_int_equal(cs_map_del(&m, "x"), 0);
    assert_int_equal(cs_map_len(&m), 0);
    size_t it = 0;
    assert_int_equal(cs_map_next(&m, &it, NULL, NULL), 0);
    cs_map_free(&m);
}

static void test_put_get_replace(void **state)
{
    cs_map m;
    cs_map_init(&m);
    char k[] = "input";
    assert_int_equal(cs_map_put(&m, k, val(1)), CS_OK);
    k[0] = 'X'; /* the map keeps its own copy */
    assert_ptr_equal(cs_map_get(&m, "input"), val(1));
    assert_null(cs_map_get(&m, "Xnput"));
    assert_int_equal(cs_map_put(&m, "input", val(2)), CS_OK);
    assert_int_equal(cs_map_len(&m), 1);
    assert_ptr_equal(cs_map_get(&m, "input"), val(2));
    assert_int_equal(cs_map_put(&m, "", val(3)), CS_OK); /* the empty key is a key */
    assert_ptr_equal(cs_map_get(&m, ""), val(3));
    cs_map_free(&m);
}

static void test_growth_deletes_iteration(void **state)
{
    cs_map m;
    cs_map_init(&m);
    char *present = calloc(N, 1);
    char k[64];
    size_t resizes = 0, cap = m.cap;
    for (size_t i = 0; i < N; i++) {
        key(k, sizeof k, i);
        assert_int_equal(cs_map_put(&m, k, val(i)), CS_OK);
        present[i] = 1;
        if (m.cap != cap) resizes++, cap = m.cap;
        /* Delete every third key as we go so that tombstones pile up between resizes. */
        if (i % 3 == 0) {
            assert_int_equal(cs_map_del(&m, k), 1);
            assert_int_equal(cs_map_del(&m, k), 0);
            present[i] = 0;
        }
        assert_true((m.len + m.tombstones) * 4 <= m.cap * 3);
    }
    assert_true(resizes >= 5);
    for (size_t i = 0; i < N; i++) {
        key(k, sizeof k, i);
        if (present[i])
            assert_ptr_equal(cs_map_get(&m, k), val(i));
        else
            assert_null(cs_map_get(&m, k));
    }
    check_iteration(&m, present);

    /* Churn: delete and re-insert a window of keys many times; the table must not grow
     * without bound because tombstones are reused or purged. */
    size_t cap_before = m.cap;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 1; i < N; i += 3) {
            key(k, sizeof k, i);
            assert_int_equal(cs_map_del(&m, k), 1);
        }
        for (size_t i = 1; i < N; i += 3) {
            key(k, sizeof k, i);
            assert_int_equal(cs_map_put(&m, k, val(i)), CS_OK);
        }
    }
    assert_int_equal(m.cap, cap_before);
    check_iteration(&m, present);

    /* Delete everything: the map is empty and still usable. */
    for (size_t i = 0; i < N; i++) {
        key(k, sizeof k, i);
        assert_int_equal(cs_map_del(&m, k), present[i]);
        present[i] = 0;
    }
    assert_int_equal(cs_map_len(&m), 0);
    check_iteration(&m, present);
    assert_int_equal(cs_map_put(&m, "again", val(0)), CS_OK);
    assert_ptr_equal(cs_map_get(&m, "again"), val(0));
    cs_map_free(&m);
    free(present);
}

static void test_nomem_leaves_unchanged(void **state)
{
    cs_map m;
    cs_map_init(&m);
    char k[64];
    /* The very first put fails on the key copy or on the table. */
    for (long n = 0; n < 2; n++) {
        cs_alloc_fail_after(n);
        assert_int_equal(cs_map_put(&m, "a", val(0)), CS_ERR_NOMEM);
        cs_alloc_fail_after(-1);
        assert_int_equal(cs_map_len(&m), 0);
        assert_null(cs_map_get(&m, "a"));
    }
    /* Fill until the next insert must rehash, then fail that rehash. */
    size_t i = 0;
    for (;; i++) {
        key(k, sizeof k, i);
        if (m.cap && (m.len + m.tombstones + 1) * 4 > m.cap * 3) break;
        assert_int_equal(cs_map_put(&m, k, val(i)), CS_OK);
    }
    size_t len = m.len, cap = m.cap;
    for (long n = 0; n < 2; n++) { /* fail the key copy, then the new table */
        cs_alloc_fail_after(n);
        assert_int_equal(cs_map_put(&m, k, val(i)), CS_ERR_NOMEM);
        cs_alloc_fail_after(-1);
        assert_int_equal(m.len, len);
        assert_int_equal(m.cap, cap);
        assert_null(cs_map_get(&m, k));
    }
    /* Replacing an existing key needs no memory. */
    cs_alloc_fail_after(0);
    char first[64];
    key(first, sizeof first, 0);
    assert_int_equal(cs_map_put(&m, first, val(0)), CS_OK);
    cs_alloc_fail_after(-1);
    for (size_t j = 0; j < len; j++) {
        key(k, sizeof k, j);
        assert_ptr_equal(cs_map_get(&m, k), val(j));
    }
    key(k, sizeof k, i);
    assert_int_equal(cs_map_put(&m, k, val(i)), CS_OK);
    assert_int_equal(m.len, len + 1);
    cs_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_growth_deletes_iteration),
        cmocka_unit_test_teardown(test_nomem_leaves_unchanged, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

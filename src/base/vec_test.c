/*
 * vec_test.c - push/pop/at/reserve across growth, and allocation failure leaving the
 * vector unchanged and usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/vec.h"

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

typedef struct item {
    int64_t a;
    char tag[5];
} item;

static void test_push_pop(void **state)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(item));
    assert_int_equal(cs_vec_pop(&v, NULL), 0);
    for (int i = 0; i < 1000; i++) {
        item it = {i, {'t', (char)('0' + i % 10), 0, 0, 0}};
        assert_int_equal(cs_vec_push(&v, &it), CS_OK);
        assert_int_equal(v.len, (size_t)i + 1);
        assert_true(v.cap >= v.len);
    }
    for (int i = 0; i < 1000; i++) {
        item *it = cs_vec_at(&v, (size_t)i);
        assert_int_equal(it->a, i);
        assert_int_equal(it->tag[1], '0' + i % 10);
    }
    item out;
    assert_int_equal(cs_vec_pop(&v, &out), 1);
    assert_int_equal(out.a, 999);
    assert_int_equal(cs_vec_pop(&v, NULL), 1);
    assert_int_equal(v.len, 998);
    size_t cap = v.cap;
    cs_vec_clear(&v);
    assert_int_equal(v.len, 0);
    assert_int_equal(v.cap, cap);
    cs_vec_free(&v);
    assert_null(v.data);
    assert_int_equal(v.cap, 0);
    /* Free leaves it reusable. */
    int x = 7;
    cs_vec_init(&v, sizeof x);
    assert_int_equal(cs_vec_push(&v, &x), CS_OK);
    assert_int_equal(*(int *)cs_vec_at(&v, 0), 7);
    cs_vec_free(&v);
}

static void test_reserve(void **state)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(int));
    assert_int_equal(cs_vec_reserve(&v, 100), CS_OK);
    assert_true(v.cap >= 100);
    void *data = v.data;
    for (int i = 0; i < 100; i++) assert_int_equal(cs_vec_push(&v, &i), CS_OK);
    assert_ptr_equal(v.data, data); /* no growth within the reservation */
    assert_int_equal(cs_vec_reserve(&v, 10), CS_OK);
    assert_ptr_equal(v.data, data);
    /* Sizes whose byte count overflows fail without touching the vector. */
    assert_int_equal(cs_vec_reserve(&v, SIZE_MAX / 2), CS_ERR_NOMEM);
    assert_int_equal(cs_vec_reserve(&v, SIZE_MAX), CS_ERR_NOMEM);
    assert_int_equal(v.len, 100);
    assert_int_equal(*(int *)cs_vec_at(&v, 99), 99);
    cs_vec_free(&v);
}

static void test_nomem_leaves_unchanged(void **state)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(int));
    int i = 0;
    /* Fill exactly to capacity so the next push must grow. */
    do {
        assert_int_equal(cs_vec_push(&v, &i), CS_OK);
        i++;
    } while (v.len < v.cap);
    size_t len = v.len, cap = v.cap;
    void *data = v.data;
    cs_alloc_fail_after(0);
    assert_int_equal(cs_vec_push(&v, &i), CS_ERR_NOMEM);
    assert_int_equal(cs_vec_reserve(&v, cap * 4), CS_ERR_NOMEM);
    cs_alloc_fail_after(-1);
    assert_int_equal(v.len, len);
    assert_int_equal(v.cap, cap);
    assert_ptr_equal(v.data, data);
    for (size_t k = 0; k < len; k++) assert_int_equal(*(int *)cs_vec_at(&v, k), (int)k);
    /* And it works again once memory is back. */
    assert_int_equal(cs_vec_push(&v, &i), CS_OK);
    assert_int_equal(*(int *)cs_vec_at(&v, len), i);
    cs_vec_free(&v);

    /* A first push that cannot allocate leaves an empty, usable vector. */
    cs_vec_init(&v, sizeof(int));
    cs_alloc_fail_after(0);
    assert_int_equal(cs_vec_push(&v, &i), CS_ERR_NOMEM);
    cs_alloc_fail_after(-1);
    assert_int_equal(v.len, 0);
    assert_null(v.data);
    assert_int_equal(cs_vec_push(&v, &i), CS_OK);
    cs_vec_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_pop),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test_teardown(test_nomem_leaves_unchanged, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

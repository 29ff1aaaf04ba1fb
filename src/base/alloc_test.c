/*
 * alloc_test.c - the allocator wrappers and the failure-injection countdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"

#include <string.h>

static int reset(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

static void test_basic(void **state)
{
    char *p = cs_malloc(0); /* zero bytes still yields a pointer to free */
    assert_non_null(p);
    cs_free(p);
    int *z = cs_calloc(16, sizeof *z);
    assert_non_null(z);
    for (int i = 0; i < 16; i++) assert_int_equal(z[i], 0);
    z = cs_realloc(z, 1024 * sizeof *z);
    assert_non_null(z);
    assert_int_equal(z[15], 0);
    cs_free(z);
    cs_free(NULL);
}

static void test_calloc_overflow(void **state)
{
    assert_null(cs_calloc(SIZE_MAX / 2, 4));
    assert_null(cs_calloc(4, SIZE_MAX / 2));
}

static void test_strdup(void **state)
{
    char *s = cs_strdup("capstan");
    assert_string_equal(s, "capstan");
    cs_free(s);
    s = cs_strndup("capstan", 3);
    assert_string_equal(s, "cap");
    cs_free(s);
    s = cs_strndup("ab", 10);
    assert_string_equal(s, "ab");
    cs_free(s);
}

static void test_fail_after(void **state)
{
    cs_alloc_fail_after(2);
    void *a = cs_malloc(8), *b = cs_calloc(1, 8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(cs_malloc(8));
    assert_null(cs_calloc(1, 8));
    assert_null(cs_strdup("x"));
    /* A failed realloc leaves the old block alive. */
    assert_null(cs_realloc(a, 64));
    cs_alloc_fail_after(-1);
    void *c = cs_realloc(a, 64);
    assert_non_null(c);
    cs_free(c);
    cs_free(b);

    cs_alloc_fail_after(0);
    assert_null(cs_malloc(1));
    cs_alloc_fail_after(-1);
    void *d = cs_malloc(1);
    assert_non_null(d);
    cs_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_basic, reset),
        cmocka_unit_test_teardown(test_calloc_overflow, reset),
        cmocka_unit_test_teardown(test_strdup, reset),
        cmocka_unit_test_teardown(test_fail_after, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

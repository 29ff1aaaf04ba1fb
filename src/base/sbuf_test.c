/*
 * sbuf_test.c - appends and printf across growth, the max bound, take/clear/free, and
 * allocation failure leaving the content unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/sbuf.h"

#include <stdio.h>
#include <string.h>

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

static void test_empty(void **state)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    cs_sbuf_clear(&b);
    assert_string_equal(b.data, "");
    char *s = cs_sbuf_take(&b); /* an empty buffer still hands out a string to free */
    assert_string_equal(s, "");
    cs_free(s);
    cs_sbuf_free(&b);
    assert_string_equal(b.data, "");
}

static void test_append_printf_growth(void **state)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    char expect[20000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(cs_sbuf_printf(&b, "%d,", i), CS_OK);
        n += (size_t)sprintf(expect + n, "%d,", i);
    }
    assert_int_equal(cs_sbuf_append(&b, "xyz", 2), CS_OK);
    memcpy(expect + n, "xy", 3);
    n += 2;
    assert_int_equal(cs_sbuf_puts(&b, ""), CS_OK);
    assert_int_equal(b.len, n);
    assert_string_equal(b.data, expect);
    /* One printf far larger than the current capacity. */
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cs_sbuf_printf(&b, "[%s]", big), CS_OK);
    assert_int_equal(b.len, n + sizeof big + 1);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[b.len - 1], ']');
    cs_sbuf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(cs_sbuf_puts(&b, "again"), CS_OK);
    char *s = cs_sbuf_take(&b);
    assert_string_equal(s, "again");
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    cs_free(s);
    cs_sbuf_free(&b);
}

static void test_max_bound(void **state)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 10);
    assert_int_equal(cs_sbuf_puts(&b, "0123456"), CS_OK);
    assert_int_equal(cs_sbuf_puts(&b, "7890"), CS_ERR_LIMIT);
    assert_string_equal(b.data, "0123456");
    assert_int_equal(cs_sbuf_printf(&b, "%s", "abcd"), CS_ERR_LIMIT);
    assert_string_equal(b.data, "0123456");
    assert_int_equal(b.len, 7);
    assert_int_equal(cs_sbuf_printf(&b, "%d", 789), CS_OK); /* exactly at the bound */
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(cs_sbuf_append(&b, "x", 1), CS_ERR_LIMIT);
    assert_int_equal(cs_sbuf_append(&b, "", 0), CS_OK);
    assert_true(b.cap <= 11); /* never allocates past the bound */
    assert_int_equal(cs_sbuf_append(&b, "x", SIZE_MAX), CS_ERR_LIMIT); /* overflowing n */
    cs_sbuf_free(&b);
    assert_int_equal(b.max, 10); /* the bound survives a free */
    assert_int_equal(cs_sbuf_puts(&b, "01234567890"), CS_ERR_LIMIT);
    cs_sbuf_free(&b);
}

static void test_nomem_leaves_unchanged(void **state)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    cs_alloc_fail_after(0);
    assert_int_equal(cs_sbuf_puts(&b, "hello"), CS_ERR_NOMEM);
    assert_int_equal(cs_sbuf_printf(&b, "%s", "hello"), CS_ERR_NOMEM);
    assert_null(cs_sbuf_take(&b));
    cs_alloc_fail_after(-1);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);

    assert_int_equal(cs_sbuf_puts(&b, "keep"), CS_OK);
    /* Fill to capacity, then fail the growth: a printf that partly fitted must not leave
     * its partial output behind. */
    while (b.len + 5 < b.cap) assert_int_equal(cs_sbuf_append(&b, ".", 1), CS_OK);
    size_t len = b.len;
    char *copy = cs_strdup(b.data);
    cs_alloc_fail_after(0);
    assert_int_equal(cs_sbuf_printf(&b, "%s", "does not fit"), CS_ERR_NOMEM);
    assert_int_equal(cs_sbuf_append(&b, "0123456789", 10), CS_ERR_NOMEM);
    cs_alloc_fail_after(-1);
    assert_int_equal(b.len, len);
    assert_string_equal(b.data, copy);
    assert_int_equal(cs_sbuf_puts(&b, "!"), CS_OK);
    assert_int_equal(b.data[len], '!');
    cs_free(copy);
    cs_sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append_printf_growth),
        cmocka_unit_test(test_max_bound),
        cmocka_unit_test_teardown(test_nomem_leaves_unchanged, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * arena_test.c - alignment, limits, reset/reuse, large blocks and allocation failure.
 *
 * Runs in both arena modes: the sanitizer build defines CS_ARENA_DEBUG (one malloc per
 * object), where block reuse cannot be observed; those checks are compiled out there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/arena.h"

#include <string.h>

static int reset_alloc(void **state)
{
    cs_alloc_fail_after(-1);
    return 0;
}

static void test_alignment_and_isolation(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 1024);
    unsigned char *ptrs[64];
    size_t sizes[64];
    for (int i = 0; i < 64; i++) {
        size_t align = (size_t)1 << (i % 13); /* 1 .. 4096 */
        sizes[i] = (size_t)(i * 37 % 300) + 1;
        ptrs[i] = cs_arena_alloc(&a, sizes[i], align);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % align, 0);
        memset(ptrs[i], i, sizes[i]);
    }
    /* No allocation overlaps another: every byte still holds its owner's pattern. */
    for (int i = 0; i < 64; i++)
        for (size_t j = 0; j < sizes[i]; j++) assert_int_equal(ptrs[i][j], i);
    assert_null(cs_arena_alloc(&a, 8, 3));     /* not a power of two */
    assert_null(cs_arena_alloc(&a, 8, 8192));  /* above the maximum */
    assert_non_null(cs_arena_alloc(&a, 8, 0)); /* 0 means byte alignment */
    cs_arena_free(&a);
}

static void test_zalloc_strndup(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 0); /* default block size */
    unsigned char *p = cs_arena_alloc(&a, 256, 16);
    memset(p, 0xab, 256);
    cs_arena_reset(&a);
    unsigned char *z = cs_arena_zalloc(&a, 256, 16);
    for (int i = 0; i < 256; i++) assert_int_equal(z[i], 0);
    assert_string_equal(cs_arena_strndup(&a, "graph/node:0", 5), "graph");
    assert_string_equal(cs_arena_strndup(&a, "ab", 100), "ab");
    cs_arena_free(&a);
}

static void test_limit(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 64);
    a.limit = 100;
    assert_non_null(cs_arena_alloc(&a, 60, 1));
    assert_null(cs_arena_alloc(&a, 41, 1));
    assert_non_null(cs_arena_alloc(&a, 40, 1));
    assert_int_equal(a.allocated, 100);
    assert_null(cs_arena_alloc(&a, 1, 1));
    assert_null(cs_arena_alloc(&a, SIZE_MAX, 1));
    cs_arena_reset(&a);
    assert_int_equal(a.allocated, 0);
    assert_non_null(cs_arena_alloc(&a, 100, 1));
    cs_arena_free(&a);
}

static void test_huge_request_fails_cleanly(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 64);
    assert_null(cs_arena_alloc(&a, SIZE_MAX, 1));
    assert_null(cs_arena_alloc(&a, SIZE_MAX - 8, 16));
    assert_non_null(cs_arena_alloc(&a, 8, 8));
    cs_arena_free(&a);
}

static void test_large_blocks(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 256);
    char *small1 = cs_arena_alloc(&a, 16, 1);
    char *big = cs_arena_alloc(&a, 10000, 64);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 64, 0);
    memset(big, 1, 10000);
    char *small2 = cs_arena_alloc(&a, 16, 1);
    assert_non_null(small1);
    assert_non_null(small2);
#ifndef CS_ARENA_DEBUG
    /* The big request got its own block; the small ones keep filling the first. */
    assert_ptr_equal(small2, small1 + 16);
#endif
    /* After a reset one block holds what both held: the same requests again need no
     * malloc at all. */
    cs_arena_reset(&a);
#ifndef CS_ARENA_DEBUG

    cs_alloc_fail_after(0);
#endif
    assert_non_null(cs_arena_alloc(&a, 16, 1));
    assert_non_null(cs_arena_alloc(&a, 10000, 64));
    assert_non_null(cs_arena_alloc(&a, 16, 1));
    cs_alloc_fail_after(-1);
    cs_arena_free(&a);
    assert_null(a.head);
    assert_int_equal(a.allocated, 0);
}

static void test_reset_reuses(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) assert_non_null(cs_arena_alloc(&a, 100, 8));
        cs_arena_reset(&a);
        assert_int_equal(a.allocated, 0);
    }
#ifndef CS_ARENA_DEBUG
    /* Warm: a request that fits the kept block needs no malloc at all. */
    cs_alloc_fail_after(0);
    assert_non_null(cs_arena_alloc(&a, 100, 8));
    cs_alloc_fail_after(-1);
#endif
    cs_arena_free(&a);
}

static void test_alloc_failure(void **state)
{
    cs_arena a;
    cs_arena_init(&a, 128);
    cs_alloc_fail_after(0);
    assert_null(cs_arena_alloc(&a, 16, 8));
    assert_null(cs_arena_zalloc(&a, 16, 8));
    assert_null(cs_arena_strndup(&a, "x", 1));
    assert_int_equal(a.allocated, 0);
    cs_alloc_fail_after(-1);
    /* Still usable afterwards. */
    assert_non_null(cs_arena_alloc(&a, 16, 8));
    assert_int_equal(a.allocated, 16);
    cs_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_isolation),
        cmocka_unit_test(test_zalloc_strndup),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_huge_request_fails_cleanly),
        cmocka_unit_test_teardown(test_large_blocks, reset_alloc),
        cmocka_unit_test_teardown(test_reset_reuses, reset_alloc),
        cmocka_unit_test_teardown(test_alloc_failure, reset_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * trace_test.c - W3C traceparent: valid headers round-trip, every kind of invalid one is
 * refused, new ids are fresh, non-zero and keep the parent's trace, and tracestate is
 * passed on only when it is printable ASCII within the W3C length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "obs/trace.h"

#include <string.h>

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse_and_format(void **state)
{
    (void)state;
    cs_trace_ctx c;
    assert_true(cs_trace_parse(GOOD, &c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, CS_TRACE_FLAG_SAMPLED);
    char out[CS_TRACEPARENT_LEN + 1];
    cs_trace_format(&c, out);
    assert_string_equal(out, GOOD);
    char hex[17];
    cs_trace_hex(c.span_id, 8, hex);
    assert_string_equal(hex, "00f067aa0ba902b7");
    assert_true(cs_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c));
    assert_int_equal(c.flags, 0);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* not version 00 */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* trailing */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",  /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_trace_ctx c;
        memset(&c, 0x5a, sizeof c);
        assert_false(cs_trace_parse(bad[i], &c));
        assert_int_equal(c.trace_id[0], 0x5a); /* untouched */
    }
}

static void test_child_ids(void **state)
{
    (void)state;
    cs_trace_ctx parent, a, b;
    assert_true(cs_trace_parse(GOOD, &parent));
    cs_trace_child(&parent, &a);
    assert_memory_equal(a.trace_id, parent.trace_id, 16);
    assert_memory_not_equal(a.span_id, parent.span_id, 8);
    assert_int_equal(a.flags, parent.flags);
    cs_trace_child(NULL, &a);
    cs_trace_child(NULL, &b);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    assert_memory_not_equal(a.span_id, b.span_id, 8);
    assert_int_equal(a.flags, CS_TRACE_FLAG_SAMPLED);
    char out[CS_TRACEPARENT_LEN + 1];
    cs_trace_format(&a, out);
    cs_trace_ctx back;
    assert_true(cs_trace_parse(out, &back)); /* a generated context is valid */
    assert_memory_equal(&back, &a, sizeof a);
}

static void test_tracestate(void **state)
{
    (void)state;
    assert_true(cs_tracestate_ok("vendor=abc,other=x:1"));
    assert_false(cs_tracestate_ok(NULL));
    assert_false(cs_tracestate_ok(""));
    assert_false(cs_tracestate_ok("a=b\r\nX-Evil: 1")); /* no control characters */
    assert_false(cs_tracestate_ok("a=\xc3\xa9"));       /* ASCII only */
    char big[CS_TRACESTATE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[CS_TRACESTATE_MAX] = '\0';
    assert_true(cs_tracestate_ok(big)); /* exactly the limit */
    big[CS_TRACESTATE_MAX] = 'a';
    big[CS_TRACESTATE_MAX + 1] = '\0';
    assert_false(cs_tracestate_ok(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_child_ids),
        cmocka_unit_test(test_tracestate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

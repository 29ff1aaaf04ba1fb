/*
 * status_test.c - cs_strerror, cs_error_set/prefix/clear: codes, truncation, aliasing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capstan/status.h"

#include <string.h>

static void test_strerror(void **state)
{
    assert_string_equal(cs_strerror(CS_OK), "ok");
    assert_string_equal(cs_strerror(CS_ERR_NOMEM), "out of memory");
    assert_string_equal(cs_strerror(CS_ERR_INTERNAL), "internal error");
    assert_string_equal(cs_strerror(CS_ERR_TIMEOUT), "deadline exceeded");
    assert_string_equal(cs_strerror(CS_ERR_NO_FIT), "no device fits");
    assert_string_equal(cs_strerror(CS_ERR_TOO_LARGE), "too large");
    assert_string_equal(cs_strerror(CS_STATUS_COUNT), "unknown error");
    assert_string_equal(cs_strerror((cs_status)-1), "unknown error");
    for (int c = 0; c < CS_STATUS_COUNT; c++) assert_true(strlen(cs_strerror((cs_status)c)) > 0);
}

static void test_set_and_clear(void **state)
{
    cs_error err;
    assert_int_equal(cs_error_set(&err, CS_ERR_INVALID, "input '%s': rank %d", "x", 3),
                     CS_ERR_INVALID);
    assert_int_equal(err.code, CS_ERR_INVALID);
    assert_string_equal(err.msg, "input 'x': rank 3");
    cs_error_clear(&err);
    assert_int_equal(err.code, CS_OK);
    assert_string_equal(err.msg, "");
    /* NULL is allowed everywhere and still reports the code. */
    assert_int_equal(cs_error_set(NULL, CS_ERR_IO, "x"), CS_ERR_IO);
    cs_error_clear(NULL);
}

static void test_set_truncates(void **state)
{
    char big[2 * CS_ERROR_MSG_MAX];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cs_error err;
    cs_error_set(&err, CS_ERR_LIMIT, "%s", big);
    assert_int_equal(strlen(err.msg), CS_ERROR_MSG_MAX - 1);
}

/* A caller re-wrapping its own message must not corrupt it (overlapping vsnprintf). */
static void test_set_with_own_message(void **state)
{
    cs_error err;
    cs_error_set(&err, CS_ERR_PARSE, "bad header");
    cs_error_set(&err, err.code, "model.onnx: %s (offset %d)", err.msg, 12);
    assert_string_equal(err.msg, "model.onnx: bad header (offset 12)");
    assert_int_equal(err.code, CS_ERR_PARSE);
}

static void test_prefix(void **state)
{
    cs_error err;
    cs_error_set(&err, CS_ERR_NOT_FOUND, "no input 'x'");
    assert_int_equal(cs_error_prefix(&err, "%s: ", "m.onnx"), CS_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "m.onnx: no input 'x'");

    /* A prefix filling the buffer leaves a terminated, truncated message. */
    char big[CS_ERROR_MSG_MAX + 10];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cs_error_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), CS_ERROR_MSG_MAX - 1);
    assert_int_equal(err.msg[0], 'p');

    /* Nearly full: the old message is cut, not overrun. */
    cs_error_set(&err, CS_ERR_IO, "tail-message");
    memset(big, 'q', CS_ERROR_MSG_MAX - 5);
    big[CS_ERROR_MSG_MAX - 5] = '\0';
    cs_error_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), CS_ERROR_MSG_MAX - 1);
    assert_memory_equal(err.msg + CS_ERROR_MSG_MAX - 5, "tail", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),      cmocka_unit_test(test_set_and_clear),
        cmocka_unit_test(test_set_truncates), cmocka_unit_test(test_set_with_own_message),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * quantity_test.c - Kubernetes quantities: parse to milli-units, canonical formatting as
 * Kubernetes prints it, rounding of sub-milli values, errors and ordering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/quantity.h"

#include <stdio.h>
#include <string.h>

typedef struct case_row {
    const char *in;
    int64_t milli;
    const char *canonical;
} case_row;

static const case_row cases[] = {
    {"1.5Gi", INT64_C(1610612736000), "1536Mi"},
    {"100m", 100, "100m"},
    {"2e3", 2000000, "2e3"},
    {"0.1", 100, "100m"},
    {"40Gi", INT64_C(42949672960000), "40Gi"},
    {"1Gi", INT64_C(1073741824000), "1Gi"},
    {"1024Ki", 1048576000, "1Mi"},
    {"1024", 1024000, "1024"},
    {"1000", 1000000, "1k"},
    {"1500", 1500000, "1500"},
    {"1.5k", 1500000, "1500"},
    {"0.5Ki", 512000, "512"},   /* binary below 1024 prints as decimal */
    {"1.5Ki", 1536000, "1536"}, /* no whole Ki count */
    {"0.1Ki", 102400, "102400m"},
    {"12e6", INT64_C(12000000000), "12e6"},
    {"1.5e3", 1500000, "1500"},
    {"1e-3", 1, "1e-3"},
    {"1E3", 1000000, "1e3"},
    {"5M", INT64_C(5000000000), "5M"},
    {"2T", INT64_C(2000000000000000), "2T"},
    {"8Pi", INT64_C(9007199254740992000), "8Pi"},
    {"1P", INT64_C(1000000000000000000), "1P"},
    {"+5", 5000, "5"},
    {"-5Gi", INT64_C(-5368709120000), "-5Gi"},
    {"-100m", -100, "-100m"},
    {"0", 0, "0"},
    {"0Gi", 0, "0"},
    {"-0", 0, "0"},
    {"00012", 12000, "12"},
    {"5.", 5000, "5"},
    {".5", 500, "500m"},
    /* finer than a milli-unit rounds away from zero */
    {"1n", 1, "1m"},
    {"1u", 1, "1m"},
    {"-1n", -1, "-1m"},
    {"0.0001", 1, "1m"},
    {"1.0001", 1001, "1001m"},
    {"1.0000000000000000000000000000001", 1001, "1001m"},
    {"0.0001Ki", 103, "103m"}, /* 102.4m */
    {"100n", 1, "1m"},
    {"0.000", 0, "0"},
};

static void test_parse_format(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const case_row *c = &cases[i];
        cs_quantity q;
        cs_error err;
        if (cs_quantity_parse(c->in, &q, &err) != CS_OK) fail_msg("%s: %s", c->in, err.msg);
        if (q.milli != c->milli)
            fail_msg("%s: %lld milli, want %lld", c->in, (long long)q.milli, (long long)c->milli);
        char buf[64];
        int n = cs_quantity_format(q, buf, sizeof buf);
        if (strcmp(buf, c->canonical))
            fail_msg("%s: formats as %s, want %s", c->in, buf, c->canonical);
        assert_int_equal(n, (int)strlen(buf));
        /* The canonical text parses back to the same value and prints the same. */
        cs_quantity back;
        assert_int_equal(cs_quantity_parse(buf, &back, NULL), CS_OK);
        assert_int_equal(back.milli, q.milli);
        char again[64];
        cs_quantity_format(back, again, sizeof again);
        assert_string_equal(again, buf);
    }
}

static void test_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "1.2.3",
        "Gi",
        "1 Gi",
        "1K",
        "1e",
        "1e+",
        ".",
        "-",
        "1Gb",
        "abc",
        "1ee3",
        "1Gi ",
        " 1",
        "1..0",
        "--1",
        "1E",
        "9Pi",
        "1e19",
        "1e999999999",
        "9223372036854775807",
        "10000000000000000000000",
        "0x10",
        "1.5.Gi",
        "1i",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cs_quantity q = {7, CS_QTY_DECIMAL_SI};
        cs_error err;
        cs_error_clear(&err);
        if (cs_quantity_parse(bad[i], &q, &err) != CS_ERR_INVALID)
            fail_msg("'%s' parsed as %lld milli", bad[i], (long long)q.milli);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(q.milli, 7); /* untouched on failure */
    }
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cs_quantity q;
    cs_error err;
    assert_int_equal(cs_quantity_parse(longer, &q, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "longer"));
    /* Zeros in front of a small value fit the length bound. */
    assert_int_equal(cs_quantity_parse("0.000000000000000000000000000000000000000001", &q, NULL),
                     CS_OK);
    assert_int_equal(q.milli, 1);
}

static void test_limits(void **state)
{
    cs_quantity q;
    /* The largest and smallest values: INT64 milli-units. */
    assert_int_equal(cs_quantity_parse("9223372036854775807m", &q, NULL), CS_OK);
    assert_int_equal(q.milli, INT64_MAX);
    assert_int_equal(cs_quantity_parse("9223372036854775808m", &q, NULL), CS_ERR_INVALID);
    assert_int_equal(cs_quantity_parse("-9223372036854775808m", &q, NULL), CS_OK);
    assert_int_equal(q.milli, INT64_MIN);
    char buf[64];
    cs_quantity_format(q, buf, sizeof buf);
    assert_string_equal(buf, "-9223372036854775808m");
    /* Rounding up past the maximum overflows rather than wraps. */
    assert_int_equal(cs_quantity_parse("9223372036854775.8071", &q, NULL), CS_ERR_INVALID);
    /* A short buffer truncates like snprintf and reports the full length. */
    assert_int_equal(cs_quantity_parse("1536Mi", &q, NULL), CS_OK);
    assert_int_equal(cs_quantity_format(q, buf, 3), 6);
    assert_string_equal(buf, "15");
}

static void test_compare(void **state)
{
    static const char *const ascending[] = {"-1Gi",  "-1", "-1m", "0",  "1n",  "100m", "1",
                                            "1001m", "1k", "1Ki", "1G", "1Gi", "1T",   "8Pi"};
    size_t n = sizeof ascending / sizeof *ascending;
    cs_quantity q[16];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cs_quantity_parse(ascending[i], &q[i], NULL), CS_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            assert_int_equal(cs_quantity_cmp(q[i], q[j]), (i > j) - (i < j));
    cs_quantity a, b;
    assert_int_equal(cs_quantity_parse("1", &a, NULL), CS_OK);
    assert_int_equal(cs_quantity_parse("1000m", &b, NULL), CS_OK);
    assert_int_equal(cs_quantity_cmp(a, b), 0); /* format does not matter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * cel_quantity_test.c - Kubernetes' CEL quantity and semver library tests, ported, plus
 * quantities beyond the int64 milli range.
 *
 * The upstream rows come from k8s.io/apiserver/pkg/cel/library quantity_test.go
 * (TestQuantity) and semver_test.go (TestSemver), each named as upstream and with its
 * expectation: a value, a runtime error (the upstream pattern, matched as a substring)
 * or a compile error (capstan names a list's type "list", cel-go "list(int)"). A capstan
 * selector must be bool, so a value expectation runs as `(expr) == (value)`. Upstream's
 * mul, div and divInt rows are not here: capstan's CEL does not have those functions
 * (tests/dra/README.md). The rows after them follow resource.Quantity's semantics
 * (ParseQuantity, Cmp, Add, AsInt64) for large values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/cel.h"

#include <stdio.h>
#include <string.h>

typedef enum want_kind {
    VALUE,   /* want: CEL text of the expected value */
    RUNTIME, /* want: a substring of the runtime error */
    COMPILE, /* want: a substring of the compile error */
} want_kind;

typedef struct qrow {
    const char *name; /* upstream: "TestQuantity/parse"; capstan's own: what it follows */
    const char *expr;
    want_kind kind;
    const char *want;
} qrow;

static const qrow rows[] = {
    /* k8s.io/apiserver/pkg/cel/library/quantity_test.go */
    {"TestQuantity/parse", "quantity(\"12Mi\")", VALUE, "quantity(\"12582912\")"},
    {"TestQuantity/parseInvalidSuffix", "quantity(\"10Mo\")", RUNTIME,
     "quantities must match the regular expression"},
    {"TestQuantity/parseInvalidSuffixPassesRegex", "quantity(\"10Mm\")", RUNTIME,
     "unable to parse quantity's suffix"},
    {"TestQuantity/isQuantity", "isQuantity(\"20\")", VALUE, "true"},
    {"TestQuantity/isQuantity_megabytes", "isQuantity(\"20M\")", VALUE, "true"},
    {"TestQuantity/isQuantity_mebibytes", "isQuantity(\"20Mi\")", VALUE, "true"},
    {"TestQuantity/isQuantity_invalidSuffix", "isQuantity(\"20Mo\")", VALUE, "false"},
    {"TestQuantity/isQuantity_passingRegex", "isQuantity(\"10Mm\")", VALUE, "false"},
    {"TestQuantity/isQuantity_noOverload", "isQuantity([1, 2, 3])", COMPILE,
     "found no matching overload for 'isQuantity' applied to '(list)'"},
    {"TestQuantity/equality_reflexivity", "quantity(\"200M\") == quantity(\"200M\")", VALUE,
     "true"},
    {"TestQuantity/equality_symmetry",
     "quantity(\"200M\") == quantity(\"0.2G\") && quantity(\"0.2G\") == quantity(\"200M\")", VALUE,
     "true"},
    {"TestQuantity/equality_transitivity",
     "quantity(\"2M\") == quantity(\"0.002G\") && quantity(\"2000k\") == quantity(\"2M\") && "
     "quantity(\"0.002G\") == quantity(\"2000k\")",
     VALUE, "true"},
    {"TestQuantity/inequality", "quantity(\"200M\") == quantity(\"0.3G\")", VALUE, "false"},
    {"TestQuantity/quantity_less", "quantity(\"50M\").isLessThan(quantity(\"50Mi\"))", VALUE,
     "true"},
    {"TestQuantity/quantity_less_obvious", "quantity(\"50M\").isLessThan(quantity(\"100M\"))",
     VALUE, "true"},
    {"TestQuantity/quantity_less_false", "quantity(\"100M\").isLessThan(quantity(\"50M\"))", VALUE,
     "false"},
    {"TestQuantity/quantity_greater", "quantity(\"50Mi\").isGreaterThan(quantity(\"50M\"))", VALUE,
     "true"},
    {"TestQuantity/quantity_greater_obvious",
     "quantity(\"150Mi\").isGreaterThan(quantity(\"100Mi\"))", VALUE, "true"},
    {"TestQuantity/quantity_greater_false", "quantity(\"50M\").isGreaterThan(quantity(\"100M\"))",
     VALUE, "false"},
    {"TestQuantity/compare_equal", "quantity(\"200M\").compareTo(quantity(\"0.2G\"))", VALUE, "0"},
    {"TestQuantity/compare_less", "quantity(\"50M\").compareTo(quantity(\"50Mi\"))", VALUE, "-1"},
    {"TestQuantity/compare_greater", "quantity(\"50Mi\").compareTo(quantity(\"50M\"))", VALUE, "1"},
    {"TestQuantity/add_quantity", "quantity(\"50k\").add(quantity(\"20\")) == quantity(\"50.02k\")",
     VALUE, "true"},
    {"TestQuantity/add_int", "quantity(\"50k\").add(20).isLessThan(quantity(\"50020\"))", VALUE,
     "false"},
    {"TestQuantity/sub_quantity", "quantity(\"50k\").sub(quantity(\"20\")) == quantity(\"49.98k\")",
     VALUE, "true"},
    {"TestQuantity/sub_int", "quantity(\"50k\").sub(20) == quantity(\"49980\")", VALUE, "true"},
    {"TestQuantity/arith_chain_1", "quantity(\"50k\").add(20).sub(quantity(\"100k\")).asInteger()",
     VALUE, "-49980"},
    {"TestQuantity/arith_chain",
     "quantity(\"50k\").add(20).sub(quantity(\"100k\")).sub(-50000).asInteger()", VALUE, "20"},
    {"TestQuantity/as_integer", "quantity(\"50k\").asInteger()", VALUE, "50000"},
    {"TestQuantity/as_integer_error",
     "quantity(\"9999999999999999999999999999999999999G\").asInteger()", RUNTIME,
     "cannot convert value to integer"},
    {"TestQuantity/is_integer (9999...G)",
     "quantity(\"9999999999999999999999999999999999999G\").isInteger()", VALUE, "false"},
    {"TestQuantity/is_integer (50)", "quantity(\"50\").isInteger()", VALUE, "true"},
    {"TestQuantity/as_float", "quantity(\"50.703k\").asApproximateFloat()", VALUE, "50703.0"},

    /* k8s.io/apiserver/pkg/cel/library/semver_test.go */
    {"TestSemver/parse", "semver(\"1.2.3\")", VALUE, "semver(\"1.2.3\")"},
    {"TestSemver/parseInvalidVersion", "semver(\"v1.0\")", RUNTIME,
     "No Major.Minor.Patch elements found"},
    {"TestSemver/isSemver", "isSemver(\"1.2.3-beta.1+build.1\")", VALUE, "true"},
    {"TestSemver/isSemver_empty_false", "isSemver(\"\")", VALUE, "false"},
    {"TestSemver/isSemver_v_prefix_false", "isSemver(\"v1.0.0\")", VALUE, "false"},
    {"TestSemver/isSemver_v_leading_whitespace_false", "isSemver(\" 1.0.0\")", VALUE, "false"},
    {"TestSemver/isSemver_v_contains_whitespace_false", "isSemver(\"1. 0.0\")", VALUE, "false"},
    {"TestSemver/isSemver_v_trailing_whitespace_false", "isSemver(\"1.0.0 \")", VALUE, "false"},
    {"TestSemver/isSemver_leading_zeros_false", "isSemver(\"01.01.01\")", VALUE, "false"},
    {"TestSemver/isSemver_major_only_false", "isSemver(\"1\")", VALUE, "false"},
    {"TestSemver/isSemver_major_minor_only_false", "isSemver(\"1.1\")", VALUE, "false"},
    {"TestSemver/isSemver_empty_normalize_false", "isSemver(\"\", true)", VALUE, "false"},
    {"TestSemver/isSemver_v_leading_whitespace_normalize_false", "isSemver(\" 1.0.0\", true)",
     VALUE, "false"},
    {"TestSemver/isSemver_v_contains_whitespace_normalize_false", "isSemver(\"1. 0.0\", true)",
     VALUE, "false"},
    {"TestSemver/isSemver_v_trailing_whitespace_normalize_false", "isSemver(\"1.0.0 \", true)",
     VALUE, "false"},
    {"TestSemver/isSemver_v_prefix_normalize_true", "isSemver(\"v1.0.0\", true)", VALUE, "true"},
    {"TestSemver/isSemver_leading_zeros_normalize_true", "isSemver(\"01.01.01\", true)", VALUE,
     "true"},
    {"TestSemver/isSemver_major_only_normalize_true", "isSemver(\"1\", true)", VALUE, "true"},
    {"TestSemver/isSemver_major_minor_only_normalize_true", "isSemver(\"1.1\", true)", VALUE,
     "true"},
    {"TestSemver/isSemver_noOverload", "isSemver([1, 2, 3])", COMPILE,
     "found no matching overload for 'isSemver' applied to '(list)'"},
    {"TestSemver/equality_normalize", "semver(\"v01.01\", true) == semver(\"1.1.0\")", VALUE,
     "true"},
    {"TestSemver/equality_reflexivity", "semver(\"1.2.3\") == semver(\"1.2.3\")", VALUE, "true"},
    {"TestSemver/inequality", "semver(\"1.2.3\") == semver(\"1.0.0\")", VALUE, "false"},
    {"TestSemver/semver_less", "semver(\"1.0.0\").isLessThan(semver(\"1.2.3\"))", VALUE, "true"},
    {"TestSemver/semver_less_false", "semver(\"1.0.0\").isLessThan(semver(\"1.0.0\"))", VALUE,
     "false"},
    {"TestSemver/semver_greater", "semver(\"1.2.3\").isGreaterThan(semver(\"1.0.0\"))", VALUE,
     "true"},
    {"TestSemver/semver_greater_false", "semver(\"1.0.0\").isGreaterThan(semver(\"1.0.0\"))", VALUE,
     "false"},
    {"TestSemver/compare_equal", "semver(\"1.2.3\").compareTo(semver(\"1.2.3\"))", VALUE, "0"},
    {"TestSemver/compare_less", "semver(\"1.0.0\").compareTo(semver(\"1.2.3\"))", VALUE, "-1"},
    {"TestSemver/compare_greater", "semver(\"1.2.3\").compareTo(semver(\"1.0.0\"))", VALUE, "1"},
    {"TestSemver/major", "semver(\"1.2.3\").major()", VALUE, "1"},
    {"TestSemver/minor", "semver(\"1.2.3\").minor()", VALUE, "2"},
    {"TestSemver/patch", "semver(\"1.2.3\").patch()", VALUE, "3"},

    /* capstan: resource.Quantity beyond the int64 milli range (ParseQuantity, Cmp, Add,
     * Sub, AsInt64, AsApproximateFloat64, Sign). */
    {"AsInt64 at int64 max", "quantity(\"9223372036854775807\").asInteger()", VALUE,
     "9223372036854775807"},
    {"AsInt64 at int64 min", "quantity(\"-9223372036854775808\").asInteger()", VALUE,
     "-9223372036854775807 - 1"},
    {"AsInt64 past int64 max", "quantity(\"9223372036854775808\").asInteger()", RUNTIME,
     "asInteger: cannot convert value to integer: 9223372036854775808"},
    {"AsInt64 past int64 max (isInteger)", "quantity(\"9223372036854775808\").isInteger()", VALUE,
     "false"},
    {"AsInt64 of a fraction", "quantity(\"1500m\").asInteger()", RUNTIME,
     "cannot convert value to integer: 1.5 "},
    {"AsInt64 of 1E30", "quantity(\"1E30\").isInteger()", VALUE, "false"},
    {"Cmp past int64",
     "quantity(\"9223372036854775808\").compareTo(quantity(\"9223372036854775807\"))", VALUE, "1"},
    {"Cmp of 1E30 and 1e30", "quantity(\"1E30\").compareTo(quantity(\"1e30\"))", VALUE, "0"},
    {"Cmp of 1E30 and its digits",
     "quantity(\"1E30\") == quantity(\"1000000000000000000000000000000\")", VALUE, "true"},
    {"Cmp of 1E30 and 1000000000000E18", "quantity(\"1E30\") == quantity(\"1000000000000E18\")",
     VALUE, "true"},
    {"Cmp of 1E30 and 8Ei", "quantity(\"1E30\").isGreaterThan(quantity(\"8Ei\"))", VALUE, "true"},
    {"Cmp of -1E30 and 1n", "quantity(\"-1E30\").isLessThan(quantity(\"1n\"))", VALUE, "true"},
    {"Cmp of -1E30 and -1E29", "quantity(\"-1E30\").compareTo(quantity(\"-1E29\"))", VALUE, "-1"},
    {"Cmp of 9999...G and 1E46",
     "quantity(\"9999999999999999999999999999999999999G\").compareTo(quantity(\"1E46\"))", VALUE,
     "-1"},
    {"Sign of 9999...G", "quantity(\"9999999999999999999999999999999999999G\").sign()", VALUE, "1"},
    {"Add of 1E30", "quantity(\"1E30\").add(quantity(\"1E30\"))", VALUE, "quantity(\"2E30\")"},
    {"Sub of 1E30", "quantity(\"1E30\").sub(quantity(\"1E30\")).sign()", VALUE, "0"},
    {"Sub of an int from 1E30", "quantity(\"1E30\").sub(1)", VALUE,
     "quantity(\"999999999999999999999999999999\")"},
    {"Add past int64", "quantity(\"9223372036854775807\").add(1)", VALUE,
     "quantity(\"9223372036854775808\")"},
    {"Add of 8Pi", "quantity(\"8Pi\").add(quantity(\"8Pi\"))", VALUE, "quantity(\"16Pi\")"},
    {"Sub to below int64 min", "quantity(\"-9223372036854775808\").sub(1).isInteger()", VALUE,
     "false"},
    {"AsApproximateFloat64 of 1E30", "quantity(\"1E30\").asApproximateFloat()", VALUE, "1e30"},
    {"AsApproximateFloat64 of -2.5E-9 (nano)", "quantity(\"-2.5e-9\").asApproximateFloat()", VALUE,
     "-3e-9"},
    {"ParseQuantity rounds up to nano",
     "quantity(\"0.1n\") == quantity(\"1n\") && "
     "quantity(\"-0.1n\") == quantity(\"-1n\")",
     VALUE, "true"},
    {"ParseQuantity rounds 1e-1000 up to 1n", "quantity(\"1e-1000\")", VALUE, "quantity(\"1n\")"},
    {"ParseQuantity keeps nano precision", "quantity(\"1n\").isLessThan(quantity(\"1m\"))", VALUE,
     "true"},
    {"ParseQuantity caps binary SI at maxAllowed", "quantity(\"16Ei\")", VALUE,
     "quantity(\"9223372036854775807\")"},
    {"ParseQuantity caps binary SI at maxAllowed (8Ei = 2^63)", "quantity(\"8Ei\")", VALUE,
     "quantity(\"9223372036854775807\")"},
    {"ParseQuantity leaves decimal SI uncapped", "quantity(\"10E\")", VALUE, "quantity(\"1e19\")"},
    {"ParseQuantity: an empty string", "quantity(\"\")", RUNTIME,
     "quantities must match the regular expression"},
    {"ParseQuantity: two points", "isQuantity(\"1.2.3\")", VALUE, "false"},
    {"ParseQuantity: exponent without digits", "quantity(\"1e\")", RUNTIME,
     "unable to parse quantity's suffix"},
    /* capstan's limits, where Kubernetes would go on exactly: clear errors, not wrong values */
    {"capstan: 39 significant digits", "quantity(\"123456789012345678901234567890123456789\")",
     RUNTIME, "at most 38 significant digits"},
    {"capstan: 1E30 + 1n needs 40 digits", "quantity(\"1E30\").add(quantity(\"1n\"))", RUNTIME,
     "add: 1000000000000000000000000000000 + 0.000000001 needs more than 38 significant digits"},
    {"capstan: exponent beyond 1e6", "quantity(\"1e1000001\")", RUNTIME, "out of range"},
};

static bool noattr(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    return false;
}

static const cs_cel_env env = {
    .driver = "gpu.example.com", .attribute = noattr, .capacity = noattr};

static void run(const qrow *r)
{
    char expr[1024];
    if (r->kind == VALUE)
        snprintf(expr, sizeof expr, "(%s) == (%s)", r->expr, r->want);
    else
        snprintf(expr, sizeof expr, "(%s) == (%s)", r->expr, r->expr);
    cs_cel_program *p = NULL;
    cs_error err;
    cs_error_clear(&err);
    cs_status rc = cs_cel_compile(expr, &p, &err);
    if (r->kind == COMPILE) {
        if (rc != CS_ERR_PARSE)
            fail_msg("%s: %s compiled, expected a compile error", r->name, expr);
        if (!strstr(err.msg, r->want))
            fail_msg("%s: compile error \"%s\" lacks \"%s\"", r->name, err.msg, r->want);
        return;
    }
    if (rc != CS_OK) fail_msg("%s: %s: %s", r->name, expr, err.msg);
    bool result = false;
    rc = cs_cel_eval(p, &env, 0, &result, &err);
    cs_cel_free(p);
    if (r->kind == RUNTIME) {
        if (rc != CS_ERR_INVALID)
            fail_msg("%s: %s gave %s (%d), expected a runtime error", r->name, expr,
                     cs_strerror(rc), result);
        if (!strstr(err.msg, r->want))
            fail_msg("%s: runtime error \"%s\" lacks \"%s\"", r->name, err.msg, r->want);
        return;
    }
    if (rc != CS_OK) fail_msg("%s: %s: %s", r->name, expr, err.msg);
    if (!result) fail_msg("%s: %s is false", r->name, expr);
}

static void test_upstream_and_large(void **state)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) run(&rows[i]);
}

/* A value expectation must be able to fail: the same rows against a wrong value. */
static void test_wrong_values_fail(void **state)
{
    static const char *const wrong[][2] = {
        {"quantity(\"9223372036854775808\")", "quantity(\"9223372036854775807\")"},
        {"quantity(\"1E30\").sub(1)", "quantity(\"1E30\")"},
        {"quantity(\"0.1n\")", "quantity(\"0\")"},
        {"quantity(\"10E\")", "quantity(\"9223372036854775807\")"},
        {"quantity(\"-1E30\")", "quantity(\"1E30\")"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        char expr[256];
        snprintf(expr, sizeof expr, "%s == %s", wrong[i][0], wrong[i][1]);
        cs_cel_program *p = NULL;
        cs_error err;
        assert_int_equal(cs_cel_compile(expr, &p, &err), CS_OK);
        bool result = true;
        assert_int_equal(cs_cel_eval(p, &env, 0, &result, &err), CS_OK);
        if (result) fail_msg("%s should be false", expr);
        cs_cel_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_and_large),
        cmocka_unit_test(test_wrong_values_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

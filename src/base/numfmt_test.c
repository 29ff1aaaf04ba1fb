/*
 * numfmt_test.c - the number codec against the C library it replaces: the same bytes as
 * snprintf("%.9g") for floats (random bit patterns, every neighbourhood of a power of ten,
 * ties, subnormals, specials), as PRId64/PRIu64 for integers, and the same value and the
 * same acceptance as strtod for decimal text, malformed text included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/numfmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void) /* xorshift64*: seeded, so a failure repeats */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static void check_f32(float v)
{
    char want[64], got[CS_NUMFMT_MAX];
    snprintf(want, sizeof want, "%.9g", (double)v);
    size_t n = cs_numfmt_f32(got, v);
    if (strcmp(want, got) != 0 || n != strlen(want))
        fail_msg("%a: snprintf \"%s\", cs_numfmt_f32 \"%s\" (length %zu)", (double)v, want, got, n);
}

static void test_f32_random_bits(void **state)
{
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)(next() >> 32);
        float v;
        memcpy(&v, &bits, sizeof v);
        check_f32(v);
    }
}

/* Where the decimal exponent changes and where rounding carries into a new digit. */
static void test_f32_powers_of_ten(void **state)
{
    for (int p = -45; p <= 38; p++) {
        float v = (float)pow(10.0, p);
        float up = v, down = v;
        for (int i = 0; i < 200; i++) {
            check_f32(up);
            check_f32(-down);
            up = nextafterf(up, INFINITY);
            down = nextafterf(down, 0);
        }
        check_f32((float)(9.9999999995 * pow(10.0, p)));
    }
}

static void test_f32_specials_and_integers(void **state)
{
    const float special[] = {
        0.0f,          -0.0f,        1.0f,        -1.0f,    0.5f,      0.1f,  0.25f,
        1e-23f,        1.2e-23f,     1.3e-23f,    1e-30f,   1e-45f,    3e38f, 1e9f,
        999999999.0f,  123456789.0f, 16777216.0f, INFINITY, -INFINITY, NAN,   1.17549435e-38f,
        3.40282347e38f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) check_f32(special[i]);
    for (int i = -100000; i <= 100000; i++) {
        check_f32((float)i);
        check_f32((float)i / 1024.0f);
        check_f32((float)i * 0.001f);
    }
    /* Exact ties at the ninth digit (round half to even decides): 2^20 + i/8 and 2^19 + i/16
     * have ten significant digits ending in 5 for odd i. */
    for (int i = 0; i < 100000; i++) {
        check_f32(1048576.0f + 0.125f * (float)i);
        check_f32(524288.0f + 0.0625f * (float)i);
    }
}

static void test_integers(void **state)
{
    char want[32], got[CS_NUMFMT_MAX];
    const int64_t edge[] = {0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 100000; i++) {
        int64_t v = i < sizeof edge / sizeof edge[0] ? edge[i] : (int64_t)next() >> (next() % 64);
        snprintf(want, sizeof want, "%" PRId64, v);
        assert_int_equal(cs_numfmt_i64(got, v), strlen(want));
        assert_string_equal(got, want);
        uint64_t u = (uint64_t)v;
        snprintf(want, sizeof want, "%" PRIu64, u);
        assert_int_equal(cs_numfmt_u64(got, u), strlen(want));
        assert_string_equal(got, want);
    }
}

static void check_parse(const char *text)
{
    size_t n = strlen(text);
    char *stop;
    double want = strtod(text, &stop);
    int want_rc = n > 0 && stop == text + n ? 0 : -1;
    /* No NUL after the number: the codec must not read past end. */
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    double got = -12345.0;
    int rc = cs_numfmt_parse_f64(copy, copy + n, &got);
    free(copy);
    if (rc != want_rc)
        fail_msg("\"%s\": strtod says %d, cs_numfmt_parse_f64 %d", text, want_rc, rc);
    if (rc == 0 && memcmp(&got, &want, sizeof got) != 0)
        fail_msg("\"%s\": strtod %a, cs_numfmt_parse_f64 %a", text, want, got);
}

static void test_parse_against_strtod(void **state)
{
    const char *fixed[] = {"",
                           "-",
                           "+",
                           ".",
                           "-.",
                           "0",
                           "-0",
                           "+0",
                           "0.0",
                           "-0.0e5",
                           "1",
                           "1.",
                           ".5",
                           "-.5",
                           "1e",
                           "1e+",
                           "1e-",
                           "1e5",
                           "1E5",
                           "1e+5",
                           "1e-5",
                           "--1",
                           "1.2.3",
                           "0x10",
                           "inf",
                           "-inf",
                           "nan",
                           "infinity",
                           "1e400",
                           "-1e400",
                           "1e-400",
                           "4.9e-324",
                           "2.4e-324",
                           "1.7976931348623157e308",
                           "9007199254740992",
                           "9007199254740993",
                           "9007199254740993.0",
                           "123456789012345678901234567890",
                           "0.000000000000000000000001",
                           "1e22",
                           "1e23",
                           "123e20",
                           "0.1",
                           "0.2",
                           "0.30000000000000004",
                           "00012",
                           "1 ",
                           " 1",
                           "1e0000000000000000001",
                           "1e-99999999999",
                           "6.5",
                           "16",
                           "0.0625",
                           "3.4028235e38",
                           "1.17549435e-38"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_parse(fixed[i]);

    char text[80];
    const char *formats[] = {"%.17g", "%.9g", "%g", "%.3f", "%.12e", "%.0f", "%.25g"};
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = next();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (i % 2) v = (double)(int64_t)(next() % 2000001) / 1000.0 - 1000.0; /* pixel-like */
        if (isnan(v) || isinf(v)) continue;
        snprintf(text, sizeof text, formats[i % 7], v);
        check_parse(text);
    }
    /* Random digit strings: mantissas of 1 to 25 digits, a point anywhere, any exponent. */
    for (int i = 0; i < 300000; i++) {
        char *o = text;
        if (next() % 2) *o++ = '-';
        int nd = 1 + (int)(next() % 25), point = (int)(next() % (unsigned)(nd + 1));
        for (int d = 0; d < nd; d++) {
            if (d == point) *o++ = '.';
            *o++ = (char)('0' + next() % 10);
        }
        if (next() % 2) o += sprintf(o, "e%d", (int)(next() % 80) - 40);
        *o = 0;
        check_parse(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_random_bits),           cmocka_unit_test(test_f32_powers_of_ten),
        cmocka_unit_test(test_f32_specials_and_integers), cmocka_unit_test(test_integers),
        cmocka_unit_test(test_parse_against_strtod),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

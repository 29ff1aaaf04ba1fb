/*
 * npy_test.c - .npy round trips for every dtype and rank, and every error case: bad magic
 * and version, truncated header and data, trailing bytes, Fortran order, big-endian and
 * unsupported dtypes, malformed dicts and shapes.
 *
 * npy.c belongs to the capstan binary, not to a library, so the test compiles it in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/npy.c"

#include <stdlib.h>
#include <unistd.h>

/* Builds a .npy image with the given version and header dict, followed by nbytes of
 * data counting up from 0. Returns its length; *out is malloc'd. */
static size_t build(int major, const char *dict, size_t nbytes, unsigned char **out)
{
    size_t dlen = strlen(dict), hstart = major == 1 ? 10 : 12;
    size_t len = hstart + dlen + 1 + nbytes;
    unsigned char *b = malloc(len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t hlen = dlen + 1;
    for (size_t i = 0; i < hstart - 8; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + hstart, dict, dlen);
    b[hstart + dlen] = '\n';
    for (size_t i = 0; i < nbytes; i++) b[hstart + hlen + i] = (unsigned char)i;
    *out = b;
    return len;
}

/* Decodes a built image and expects `code` with `needle` in the message. */
static void expect_error(int major, const char *dict, size_t nbytes, cs_status code,
                         const char *needle)
{
    unsigned char *b;
    size_t len = build(major, dict, nbytes, &b);
    cs_tensor t;
    cs_error err;
    cs_status rc = cs_npy_decode(b, len, &t, &err);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("dict %s: got %d '%s', want %d with '%s'", dict, rc, rc ? err.msg : "", code,
                 needle);
    assert_null(t.data);
    free(b);
}

static void test_decode_versions(void **state)
{
    for (int major = 1; major <= 3; major++) {
        unsigned char *b;
        size_t len =
            build(major, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", 12, &b);
        cs_tensor t;
        cs_error err;
        assert_int_equal(cs_npy_decode(b, len, &t, &err), CS_OK);
        assert_int_equal(t.dtype, CS_DTYPE_INT16);
        assert_int_equal(t.rank, 2);
        assert_int_equal(t.dims[0], 2);
        assert_int_equal(t.dims[1], 3);
        assert_int_equal(((int16_t *)t.data)[1], 0x0302);
        cs_free(t.data);
        free(b);
    }
}

static void test_decode_forms(void **state)
{
    /* Key order, quotes, spacing and a missing trailing comma are all NumPy's business. */
    const char *ok[] = {
        "{'descr': '|b1', 'fortran_order': False, 'shape': (), }",
        "{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"|u1\"}",
        "{'descr':'>i1','fortran_order':False,'shape':(1,1,1,1)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }   ",
        "{'descr': '=f4', 'fortran_order': False, 'shape': (1L,), }",
    };
    const size_t bytes[] = {1, 4, 1, 0, 4};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        unsigned char *b;
        size_t len = build(1, ok[i], bytes[i], &b);
        cs_tensor t;
        cs_error err;
        if (cs_npy_decode(b, len, &t, &err) != CS_OK) fail_msg("%s: %s", ok[i], err.msg);
        cs_free(t.data);
        free(b);
    }
}

static void test_decode_errors(void **state)
{
    const char *f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    expect_error(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8,
                 CS_ERR_UNSUPPORTED, "Fortran");
    expect_error(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
                 CS_ERR_UNSUPPORTED, "big-endian");
    expect_error(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16,
                 CS_ERR_UNSUPPORTED, "'<c8'");
    expect_error(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16,
                 CS_ERR_UNSUPPORTED, "unsupported dtype");
    expect_error(1, "{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }", 40,
                 CS_ERR_UNSUPPORTED, "unsupported dtype");
    expect_error(1, "{'descr': '<f16', 'fortran_order': False, 'shape': (2,), }", 32,
                 CS_ERR_UNSUPPORTED, "unsupported dtype");
    expect_error(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
                 CS_ERR_UNSUPPORTED, "structured");
    expect_error(1, f4, 7, CS_ERR_PARSE, "truncated data: shape needs 8 bytes, file has 7");
    expect_error(1, f4, 0, CS_ERR_PARSE, "truncated data");
    expect_error(3, f4, 9, CS_ERR_PARSE, "1 unexpected bytes");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False}", 0, CS_ERR_PARSE, "lacks");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8,
                 CS_ERR_PARSE, "'x'");
    expect_error(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
                 CS_ERR_PARSE, "repeated");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, CS_ERR_PARSE,
                 "shape");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4,
                 CS_ERR_PARSE, "shape");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 4,
                 CS_ERR_PARSE, "shape");
    expect_error(1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
                 "4294967296)}",
                 4, CS_ERR_LIMIT, "too large");
    expect_error(1, "{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}", 8, CS_ERR_PARSE,
                 "malformed");
    expect_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, CS_ERR_PARSE,
                 "malformed");
    expect_error(1, "{'descr: '<f4'", 8, CS_ERR_PARSE, "malformed");
    expect_error(1, "", 0, CS_ERR_PARSE, "malformed");
}

static void test_decode_bad_preamble(void **state)
{
    cs_tensor t;
    cs_error err;
    assert_int_equal(cs_npy_decode("\x93NUMP", 5, &t, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "not a .npy file"));
    assert_int_equal(cs_npy_decode("PK\x03\x04 zipped npz file", 22, &t, &err), CS_ERR_PARSE);
    assert_int_equal(cs_npy_decode("\x93NUMPY\x04\x00\x10\x00", 10, &t, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "version 4.0"));
    assert_int_equal(cs_npy_decode("\x93NUMPY\x02\x00\x10\x00", 10, &t, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "truncated header"));
    assert_int_equal(cs_npy_decode("\x93NUMPY\x01\x00\xff\x00{}", 12, &t, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "truncated header: 255 bytes declared, 2 present"));
}

/* Writes then reads back every dtype at several ranks, including empty and scalar. */
static void test_round_trip(void **state)
{
    char dir[] = "/tmp/cs-npy-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/t.npy", dir);
    const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {2, 0, 3}, {1, 2, 3, 4}};
    const int ranks[] = {0, 1, 2, 3, 4};
    unsigned char data[1024];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + 1);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        for (size_t si = 0; si < sizeof ranks / sizeof ranks[0]; si++) {
            cs_tensor t = {.dtype = types[ti].dtype, .rank = ranks[si], .data = data};
            memcpy(t.dims, shapes[si], sizeof shapes[si]);
            cs_error err;
            assert_int_equal(cs_npy_save(path, &t, &err), CS_OK);
            /* NumPy's layout: the data starts on a 64-byte boundary. */
            struct stat st;
            assert_int_equal(stat(path, &st), 0);
            size_t nbytes = (size_t)cs_tensor_numel(&t) * (size_t)types[ti].size;
            assert_int_equal(((size_t)st.st_size - nbytes) % 64, 0);
            cs_tensor back;
            if (cs_npy_load(path, &back, &err) != CS_OK) fail_msg("%s", err.msg);
            assert_int_equal(back.dtype, t.dtype);
            assert_int_equal(back.rank, t.rank);
            for (int d = 0; d < t.rank; d++) assert_int_equal(back.dims[d], t.dims[d]);
            assert_memory_equal(back.data, data, nbytes);
            cs_free(back.data);
        }
    }
    cs_tensor s = {.dtype = CS_DTYPE_STRING, .rank = 0, .data = data};
    cs_error err;
    assert_int_equal(cs_npy_save(path, &s, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "string"));
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_load_errors(void **state)
{
    cs_tensor t;
    cs_error err;
    assert_int_equal(cs_npy_load("/nonexistent/x.npy", &t, &err), CS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.npy: No such file"));
    assert_int_equal(cs_npy_load("/tmp", &t, &err), CS_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    cs_tensor out = {.dtype = CS_DTYPE_FLOAT32, .rank = 0};
    float v = 1;
    out.data = &v;
    assert_int_equal(cs_npy_save("/nonexistent/y.npy", &out, &err), CS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/y.npy"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_versions), cmocka_unit_test(test_decode_forms),
        cmocka_unit_test(test_decode_errors),   cmocka_unit_test(test_decode_bad_preamble),
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

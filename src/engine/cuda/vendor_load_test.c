/*
 * vendor_load_test.c - loading a vendor library (vendor_load.c) without cuBLASLt or cuDNN.
 *
 * glibc stands in for the vendor: its gnu_get_libc_version serves as the version function
 * (the address it returns, the same in the test and in the loaded library, is the
 * "version"), strlen as a second symbol. Checked: a missing file, a missing symbol, a
 * version other than the one expected (nothing stays loaded, and a later load fails again),
 * a good load, and a handle's constructor succeeding and failing.
 */
#include "engine/cuda/vendor_load.h"

#include <gnu/libc-version.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ENV "CS_TEST_VENDOR_LIB"

static struct {
    size_t (*version)(void);
    size_t (*strlen)(const char *);
    int32_t (*create)(void **);
} fake;

static const cs__vendor_sym syms[] = {
    {"gnu_get_libc_version", (void **)&fake.version},
    {"strlen", (void **)&fake.strlen},
};
static const cs__vendor_sym syms_missing[] = {
    {"gnu_get_libc_version", (void **)&fake.version},
    {"cs_no_such_function", (void **)&fake.strlen},
};

static size_t libc_version(void)
{
    return (size_t)(uintptr_t)gnu_get_libc_version();
}

static void assert_contains(const char *msg, const char *part)
{
    if (!strstr(msg, part)) fail_msg("\"%s\" does not name \"%s\"", msg, part);
}

static void assert_unloaded(cs__vendor_lib *v)
{
    assert_null(v->handle);
    assert_null(fake.version);
    assert_null(fake.strlen);
    assert_int_equal(cs__vendor_version(v), 0);
}

static void test_missing_file(void **state)
{
    cs__vendor_lib v = CS__VENDOR_LIB("libc.so.6", ENV, "fake", 0, syms, &fake.version);
    cs_error err;
    setenv(ENV, "/nonexistent/libfake.so.1", 1);
    assert_int_equal(cs__vendor_load(&v, &err), CS_ERR_UNSUPPORTED);
    unsetenv(ENV);
    assert_contains(err.msg, "/nonexistent/libfake.so.1");
    assert_contains(err.msg, "libc.so.6");
    assert_contains(err.msg, ENV);
    assert_unloaded(&v);
}

static void test_missing_symbol(void **state)
{
    cs__vendor_lib v = CS__VENDOR_LIB("libc.so.6", ENV, "fake", libc_version() / 10000,
                                      syms_missing, &fake.version);
    cs_error err;
    assert_int_equal(cs__vendor_load(&v, &err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "lacks cs_no_such_function");
    assert_contains(err.msg, ENV);
    assert_unloaded(&v);
}

/* A library of another major version leaves nothing loaded, so a second load fails too
 * (it used to keep the library and succeed the second time). */
static void test_wrong_version(void **state)
{
    size_t major = libc_version() / 10000 + 1;
    cs__vendor_lib v = CS__VENDOR_LIB("libc.so.6", ENV, "fake", major, syms, &fake.version);
    char want[64];
    snprintf(want, sizeof want, "built for fake %zu (%s)", major, ENV);
    for (int attempt = 0; attempt < 2; attempt++) {
        cs_error err;
        assert_int_equal(cs__vendor_load(&v, &err), CS_ERR_UNSUPPORTED);
        assert_contains(err.msg, "libc.so.6 reports version");
        assert_contains(err.msg, want);
        assert_unloaded(&v);
    }
}

static int32_t create_ok(void **out)
{
    static int object;
    *out = &object;
    return 0;
}

static int32_t create_fails(void **out)
{
    *out = (void *)(uintptr_t)0xdead;
    return 7;
}

static cs_status fail_with(cs_error *err, const char *what, int32_t status)
{
    return cs_error_set(err, CS_ERR_INTERNAL, "%s: status %d", what, (int)status);
}

static void test_load_and_handles(void **state)
{
    cs__vendor_lib v =
        CS__VENDOR_LIB("libc.so.6", ENV, "fake", libc_version() / 10000, syms, &fake.version);
    cs_error err;
    void *h = (void *)1;
    /* A load that fails fails the handle, which stays NULL. */
    setenv(ENV, "/nonexistent/libfake.so.1", 1);
    assert_int_equal(cs__vendor_handle_new(&v, &fake.create, fail_with, "create", &h, &err),
                     CS_ERR_UNSUPPORTED);
    unsetenv(ENV);
    assert_null(h);

    if (cs__vendor_load(&v, &err) != CS_OK) fail_msg("%s", err.msg);
    assert_non_null(v.handle);
    assert_int_equal(cs__vendor_version(&v), libc_version());
    assert_int_equal(fake.strlen("four"), 4);
    void *first = v.handle;
    assert_int_equal(cs__vendor_load(&v, &err), CS_OK);
    assert_ptr_equal(v.handle, first);

    /* Loaded, the constructor's slot is read as it is now. */
    fake.create = create_ok;
    assert_int_equal(cs__vendor_handle_new(&v, &fake.create, fail_with, "create", &h, &err), CS_OK);
    assert_non_null(h);
    fake.create = create_fails;
    assert_int_equal(cs__vendor_handle_new(&v, &fake.create, fail_with, "fakeCreate", &h, &err),
                     CS_ERR_INTERNAL);
    assert_null(h);
    assert_string_equal(err.msg, "fakeCreate: status 7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_load_and_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

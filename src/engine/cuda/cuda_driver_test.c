/*
 * cuda_driver_test.c - loading the NVIDIA driver: every reason it cannot serve, in words.
 *
 * cs__cu_open is what cs__cu_load does once per process, so each case opens its own
 * library: a missing file, a library that is not a driver, the CUDA toolkit's stub
 * libcuda.so (skipped where the toolkit is absent), the default name on a machine without
 * a driver (skipped where one is installed) and the fake driver (tests/engine/fake_cuda.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <unistd.h>

#include "engine/cuda/driver.h"

#define STUB "/usr/local/cuda/lib64/stubs/libcuda.so"

static void test_missing_file(void **state)
{
    cs__cu cu;
    cs_error err;
    assert_int_equal(cs__cu_open("/nonexistent/libcuda.so.1", &cu, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "/nonexistent/libcuda.so.1 could not be loaded: "));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_null(cu.lib);
}

static void test_no_driver_installed(void **state)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        dlclose(lib);
        skip(); /* this machine has a driver */
    }
    cs__cu cu;
    cs_error err;
    assert_int_equal(cs__cu_open("libcuda.so.1", &cu, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "libcuda.so.1 could not be loaded (no NVIDIA driver on this "
                                    "machine): "));
}

static void test_not_a_driver(void **state)
{
    cs__cu cu;
    cs_error err;
    assert_int_equal(cs__cu_open("libm.so.6", &cu, &err), CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "libm.so.6 is not a usable NVIDIA driver: it does not export "
                                 "cuInit");
}

static void test_toolkit_stub(void **state)
{
    if (access(STUB, R_OK)) skip();
    cs__cu cu;
    cs_error err;
    assert_int_equal(cs__cu_open(STUB, &cu, &err), CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, STUB " is the CUDA toolkit's stub driver "
                                      "(CUDA_ERROR_STUB_LIBRARY): this machine has the CUDA "
                                      "toolkit but no NVIDIA driver");
    assert_null(cu.lib);
}

/* The fake resolves every entry point; its cuInit answers as a driver without GPUs does
 * when told there are none. */
static void test_fake_driver(void **state)
{
    cs__cu cu;
    cs_error err;
    setenv("FAKE_CUDA_DEVICES", "0", 1);
    assert_int_equal(cs__cu_open(CS_FAKE_LIBCUDA, &cu, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "found no CUDA device (CUDA_ERROR_NO_DEVICE)"));
    setenv("FAKE_CUDA_DEVICES", "3", 1);
    assert_int_equal(cs__cu_open(CS_FAKE_LIBCUDA, &cu, &err), CS_OK);
    int n = 0, version = 0;
    assert_int_equal(cu.DeviceGetCount(&n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(cu.DriverGetVersion(&version), 0);
    assert_int_equal(version, 13000);
    cs__cu_close(&cu);
    assert_null(cu.lib);
    unsetenv("FAKE_CUDA_DEVICES");
}

/* A CUresult in words: the driver's name and description, and a status that says what
 * happened (out of memory is CS_ERR_NOMEM); a code the driver does not know keeps its number. */
static void test_error_text(void **state)
{
    cs__cu cu;
    cs_error err;
    assert_int_equal(cs__cu_open(CS_FAKE_LIBCUDA, &cu, &err), CS_OK);
    assert_int_equal(cs__cu_error(&cu, CS__CU_OUT_OF_MEMORY, "cuMemAlloc", &err), CS_ERR_NOMEM);
    assert_string_equal(err.msg, "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
    assert_int_equal(cs__cu_error(&cu, CS__CU_NOT_SUPPORTED, "cuLaunchKernel", &err),
                     CS_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "cuLaunchKernel: CUDA_ERROR_NOT_SUPPORTED (operation not "
                                 "supported)");
    assert_int_equal(cs__cu_error(&cu, 12345, "cuStreamSynchronize", &err), CS_ERR_IO);
    assert_string_equal(err.msg, "cuStreamSynchronize: CUresult 12345 (unknown to this driver)");
    cs__cu_close(&cu);
}

/* The process's driver comes from CS_LIBCUDA, once: a second call gives the same table. */
static void test_load_once(void **state)
{
    setenv("CS_LIBCUDA", CS_FAKE_LIBCUDA, 1);
    const cs__cu *a = NULL, *b = NULL;
    cs_error err;
    assert_int_equal(cs__cu_load(&a, &err), CS_OK);
    assert_int_equal(cs__cu_load(&b, &err), CS_OK);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    int n = 0;
    assert_int_equal(a->DeviceGetCount(&n), 0);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_no_driver_installed),
        cmocka_unit_test(test_not_a_driver), cmocka_unit_test(test_toolkit_stub),
        cmocka_unit_test(test_fake_driver),  cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_load_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

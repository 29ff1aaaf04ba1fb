/*
 * dnn_test.c - cuDNN's loader and the convolution's host side, without a GPU.
 *
 * The loader with a missing file, a library that is not cuDNN, and the real one where the
 * toolkit is installed; the shape checks and output sizes against ONNX's formula; the
 * descriptors (host objects) made with the real library. Convolutions on a device and the
 * v7 heuristic's choice: tools/gpu-check.
 */
#include "engine/cuda/dnn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void assert_contains(const char *msg, const char *part)
{
    if (!strstr(msg, part)) fail_msg("\"%s\" does not name \"%s\"", msg, part);
}

static bool toolkit_installed(void)
{
    return access("/usr/local/cuda/lib64/libcudnn.so.9", R_OK) == 0 ||
           access("/usr/lib/x86_64-linux-gnu/libcudnn.so.9", R_OK) == 0;
}

/* Runs first: once a load succeeded the library stays open for the process. */
static void test_load_missing_names_library_and_variable(void **state)
{
    cs_error err;
    setenv(CS__DNN_ENV, "/nonexistent/libcudnn.so.9", 1);
    assert_int_equal(cs__dnn_load(&err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "/nonexistent/libcudnn.so.9");
    assert_contains(err.msg, "CS_LIBCUDNN");
    assert_int_equal(cs__dnn_version(), 0);
    setenv(CS__DNN_ENV, "libm.so.6", 1);
    assert_int_equal(cs__dnn_load(&err), CS_ERR_UNSUPPORTED);
    assert_contains(err.msg, "lacks cudnnGetVersion");
    assert_contains(err.msg, "libcudnn.so.9");
    unsetenv(CS__DNN_ENV);
}

static void test_load_real_library(void **state)
{
    if (!toolkit_installed()) skip();
    cs_error err;
    if (cs__dnn_load(&err) != CS_OK) fail_msg("%s", err.msg);
    assert_int_equal(cs__dnn_version() / 10000, 9);
    void *h = NULL;
    cs_status rc = cs__dnn_handle_new(&h, &err);
    if (rc == CS_OK) {
        assert_non_null(h);
        cs__dnn_handle_free(h);
    } else {
        assert_null(h);
        assert_contains(err.msg, "cudnnCreate");
        assert_contains(err.msg, "CUDA device");
    }
}

static cs__cuda_conv_shape conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r)
{
    return (cs__cuda_conv_shape){.type = CS_DTYPE_FLOAT32,
                                 .n = n,
                                 .c = c,
                                 .h = h,
                                 .w = w,
                                 .k = k,
                                 .r = r,
                                 .s = r,
                                 .groups = 1,
                                 .stride_h = 1,
                                 .stride_w = 1,
                                 .dil_h = 1,
                                 .dil_w = 1};
}

static void test_output_sizes(void **state)
{
    cs_error err;
    int64_t oh, ow;
    /* ResNet's stem: 224x224, 7x7 stride 2 pad 3 -> 112x112. */
    cs__cuda_conv_shape s = conv(1, 3, 224, 224, 64, 7);
    s.pad_h = s.pad_w = 3;
    s.stride_h = s.stride_w = 2;
    assert_int_equal(cs__cuda_conv_check(&s, &oh, &ow, &err), CS_OK);
    assert_int_equal(oh, 112);
    assert_int_equal(ow, 112);
    /* Depthwise 3x3 dilation 2 pad 2 keeps 10x9; a 1x1 stride-2 halves, rounding down. */
    s = conv(2, 32, 10, 9, 32, 3);
    s.groups = 32;
    s.dil_h = s.dil_w = 2;
    s.pad_h = s.pad_w = 2;
    assert_int_equal(cs__cuda_conv_check(&s, &oh, &ow, &err), CS_OK);
    assert_int_equal(oh, 10);
    assert_int_equal(ow, 9);
    s = conv(1, 8, 7, 7, 16, 1);
    s.stride_h = s.stride_w = 2;
    assert_int_equal(cs__cuda_conv_check(&s, &oh, &ow, &err), CS_OK);
    assert_int_equal(oh, 4);
    assert_int_equal(ow, 4);
}

static void expect(cs__cuda_conv_shape s, cs_status code, const char *part)
{
    cs_error err;
    int64_t oh, ow;
    assert_int_equal(cs__cuda_conv_check(&s, &oh, &ow, &err), code);
    assert_contains(err.msg, part);
}

static void test_check_rejects(void **state)
{
    cs__cuda_conv_shape s = conv(1, 4, 8, 8, 4, 3);
    s.type = CS_DTYPE_BFLOAT16;
    expect(s, CS_ERR_UNSUPPORTED, "bfloat16");
    s.type = CS_DTYPE_INT8;
    expect(s, CS_ERR_UNSUPPORTED, "int8");
    s = conv(1, 4, 8, 8, 4, 3);
    s.type = CS_DTYPE_FLOAT16;
    s.tf32 = true;
    expect(s, CS_ERR_INVALID, "tf32");
    s = conv(1, 6, 8, 8, 4, 3);
    s.groups = 4; /* divides k = 4, not c = 6 */
    expect(s, CS_ERR_INVALID, "groups = 4");
    s = conv(1, 4, 8, 8, 4, 3);
    s.stride_w = 0;
    expect(s, CS_ERR_INVALID, "stride_w = 0");
    s = conv(1, 4, 8, 8, 4, 3);
    s.pad_h = -1;
    expect(s, CS_ERR_INVALID, "pad_h = -1");
    s = conv(1, 4, 4, 4, 4, 3);
    s.dil_h = 2; /* covers 5 rows of a 4-row input */
    expect(s, CS_ERR_INVALID, "larger than the padded");
    s = conv(64, 256, 512, 512, 4, 1); /* 4.3e9 input elements */
    expect(s, CS_ERR_UNSUPPORTED, "more than");
}

static void test_args_check(void **state)
{
    cs_error err;
    cs__cuda_conv_plan p = {.shape = conv(1, 4, 8, 8, 4, 3), .workspace = 256};
    cs__cuda_conv_args a = {.plan = &p,
                            .x = 0x1000,
                            .w = 0x2000,
                            .y = 0x3000,
                            .alpha = 1,
                            .workspace = 0x4000,
                            .workspace_size = 256};
    assert_int_equal(cs__cuda_conv_args_check(&a, &err), CS_OK);
    cs__cuda_conv_args bad = a;
    bad.w = 0;
    assert_int_equal(cs__cuda_conv_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "w is required");
    bad = a;
    bad.workspace_size = 128;
    assert_int_equal(cs__cuda_conv_args_check(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "needs 256");
    bad = a;
    bad.workspace = 0;
    assert_int_equal(cs__cuda_conv(&bad, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "no workspace pointer");
}

static void test_describe_with_real_library(void **state)
{
    if (!toolkit_installed()) skip();
    cs_error err;
    cs__cuda_conv_shape s = conv(8, 32, 56, 56, 64, 3);
    s.type = CS_DTYPE_FLOAT16;
    s.groups = 2;
    s.pad_h = s.pad_w = 1;
    s.stride_h = 2;
    cs__cuda_conv_plan p;
    if (cs__cuda_conv_plan_describe(&p, &s, &err) != CS_OK) fail_msg("%s", err.msg);
    assert_non_null(p.x);
    assert_non_null(p.conv);
    assert_int_equal(p.oh, 28);
    assert_int_equal(p.ow, 56);
    cs__cuda_conv_plan_free(&p);
    assert_null(p.conv);
    assert_int_equal(cs__cuda_conv_plan_init(&p, NULL, &s, &err), CS_ERR_INVALID);
    assert_contains(err.msg, "no handle");
    assert_null(p.x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_missing_names_library_and_variable),
        cmocka_unit_test(test_load_real_library),
        cmocka_unit_test(test_output_sizes),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_args_check),
        cmocka_unit_test(test_describe_with_real_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

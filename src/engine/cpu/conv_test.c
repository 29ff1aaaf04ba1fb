/*
 * conv_test.c - the Conv kernel on grouped and depthwise shapes against a plain seven-deep
 * reference loop: odd sizes, kernels 1/3/5 and non-square, strides 1/2/3, dilation 2,
 * asymmetric pads and auto_pad, channel multiplier 2, batch 2, with and without bias, on
 * the calling thread and split across a pool. float32 depthwise shapes take the direct
 * kernel and ungrouped 3x3 stride-1 ones of 16 channels and up Winograd; the same shapes
 * in float64 take im2col, which checks the reference itself. Every float32 shape runs
 * twice, with the weights as given and with the kernel's prepacked form of them (Winograd's
 * transformed weights; pgemm.c's panels for 1x1 and im2col shapes on AVX-512 CPUs).
 *
 * The tolerance, 1e-5 * (1 + |want|), is float32's: the fixed cases' values are exact
 * multiples of 1/4, so every path sums them exactly; the random Winograd shapes use
 * arbitrary values, where its transforms round differently from the direct sum.
 */
#include "engine/backend.h"
#include "engine/ktest.h"

#include "base/pool.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct conv_case {
    int64_t n, c, mg, group, h, w, kh, kw, sh, sw, dh, dw;
    int64_t pads[4]; /* top, left, bottom, right */
    bool bias;
    const char *auto_pad; /* NULL: explicit pads */
} conv_case;

/* When set, the tensors hold arbitrary values in [-1, 1) instead of multiples of 1/4. */
static bool inexact;

/* Y[n, m, oh, ow] by definition: input channel g*Cg + ci, tap (i, j) at
 * (oh*sh - top + i*dh, ow*sw - left + j*dw), zero outside the image. `pads` are the
 * resolved ones (auto_pad already applied by the caller). */
static double reference(const conv_case *k, const int64_t *pads, int64_t oh_n, int64_t ow_n,
                        cs_dtype t, const void *x, const void *w, const void *b, int64_t i_y)
{
    int64_t ow = i_y % ow_n, oh = i_y / ow_n % oh_n, m = i_y / ow_n / oh_n % (k->mg * k->group);
    int64_t n = i_y / ow_n / oh_n / (k->mg * k->group), cg = k->c / k->group, g = m / k->mg;
    double s = b ? ktest_get(t, b, m) : 0.0;
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t i = 0; i < k->kh; i++)
            for (int64_t j = 0; j < k->kw; j++) {
                int64_t ih = oh * k->sh - pads[0] + i * k->dh,
                        iw = ow * k->sw - pads[1] + j * k->dw;
                if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) continue;
                int64_t c = g * cg + ci;
                s += ktest_get(t, x, ((n * k->c + c) * k->h + ih) * k->w + iw) *
                     ktest_get(t, w, ((m * cg + ci) * k->kh + i) * k->kw + j);
            }
    return s;
}

static void check(cs_pool *pool, cs_dtype t, const conv_case *k)
{
    int64_t m = k->mg * k->group, cg = k->c / k->group;
    int64_t strides[2] = {k->sh, k->sw}, dil[2] = {k->dh, k->dw};
    cs__node node = {.name = "t", .op_type = "Conv", .domain = "", .opset = 17};
    cs__attr attr[5] = {
        {.name = "group", .type = CS__ATTR_INT, .i = k->group},
        {.name = "strides", .type = CS__ATTR_INTS, .n = 2, .ints = strides},
        {.name = "dilations", .type = CS__ATTR_INTS, .n = 2, .ints = dil},
        k->auto_pad ? (cs__attr){.name = "auto_pad",
                                 .type = CS__ATTR_STRING,
                                 .s = k->auto_pad,
                                 .s_len = strlen(k->auto_pad)}
                    : (cs__attr){.name = "pads", .type = CS__ATTR_INTS, .n = 4, .ints = k->pads},
    };
    node.attr = attr;
    node.n_attr = 4;
    cs_tensor x = {.dtype = t, .rank = 4, .dims = {k->n, k->c, k->h, k->w}};
    cs_tensor w = {.dtype = t, .rank = 4, .dims = {m, cg, k->kh, k->kw}};
    cs_tensor b = {.dtype = t, .rank = 1, .dims = {m}}, y;
    x.data = ktest_filled(t, cs__numel(&x), 1, inexact ? 0 : 8);
    w.data = ktest_filled(t, cs__numel(&w), 2, inexact ? 0 : 8);
    b.data = ktest_filled(t, m, 3, inexact ? 0 : 8);
    const cs_tensor *in[3] = {&x, &w, k->bias ? &b : NULL};
    int n_in = k->bias ? 3 : 2;
    const cs__op *op = cs__op_find("Conv", "", 17);
    const cs__kernel *kern = cs__cpu_kernel_find("Conv", "", 17);
    assert_non_null(op);
    assert_non_null(kern);
    node.n_in = n_in;
    node.n_out = 1;
    cs_error err = {0};
    assert_int_equal(op->infer(&node, in, n_in, &y, 1, &err), CS_OK);
    int64_t oh_n = y.dims[2], ow_n = y.dims[3], ny = cs__numel(&y);
    /* Resolved pads: SAME_UPPER puts the odd one at the end. */
    int64_t pads[2] = {k->pads[0], k->pads[1]};
    if (k->auto_pad) {
        int64_t th = (oh_n - 1) * k->sh + (k->kh - 1) * k->dh + 1 - k->h;
        int64_t tw = (ow_n - 1) * k->sw + (k->kw - 1) * k->dw + 1 - k->w;
        pads[0] = th > 0 ? th / 2 : 0;
        pads[1] = tw > 0 ? tw / 2 : 0;
    }
    size_t sb = kern->scratch ? kern->scratch(&node, in, n_in, &y, 1) : 0;
    void *scratch = sb ? aligned_alloc(64, (sb + 63) / 64 * 64) : NULL;
    /* Run with the weights as given, then with what prepack() makes of them, if anything. */
    cs__kctx pctx = {.node = &node, .threads = 1, .err = &err};
    size_t pb = kern->prepack(&pctx, in, n_in, &y, 1, NULL);
    assert_true(pb != SIZE_MAX);
    void *packed = pb ? aligned_alloc(64, (pb + 63) / 64 * 64) : NULL;
    if (pb) assert_true(kern->prepack(&pctx, in, n_in, &y, 1, packed) != SIZE_MAX);
    for (int pass = 0; pass < (pb ? 2 : 1); pass++) {
        y.data = ktest_filled(t, ny, 4, inexact ? 0 : 8); /* garbage the kernel must overwrite */
        cs__kctx ctx = {.node = &node,
                        .scratch = scratch,
                        .scratch_size = sb,
                        .pool = pool,
                        .threads = pool ? cs_pool_size(pool) : 1,
                        .err = &err,
                        .packed = pass ? packed : NULL};
        assert_int_equal(kern->run(&ctx, in, n_in, &y, 1), CS_OK);
        for (int64_t i = 0; i < ny; i++) {
            double got = ktest_get(t, y.data, i);
            double want =
                reference(k, pads, oh_n, ow_n, t, x.data, w.data, in[2] ? b.data : NULL, i);
            if (fabs(got - want) > 1e-5 * (1 + fabs(want)))
                fail_msg("%s n=%lld c=%lld mg=%lld group=%lld %lldx%lld k=%lldx%lld s=%lld,%lld "
                         "d=%lld,%lld pads=%lld,%lld,%lld,%lld%s bias=%d threads=%d packed=%d: "
                         "y[%lld] = %g, want %g",
                         t == CS_DTYPE_FLOAT64 ? "f64" : "f32", (long long)k->n, (long long)k->c,
                         (long long)k->mg, (long long)k->group, (long long)k->h, (long long)k->w,
                         (long long)k->kh, (long long)k->kw, (long long)k->sh, (long long)k->sw,
                         (long long)k->dh, (long long)k->dw, (long long)k->pads[0],
                         (long long)k->pads[1], (long long)k->pads[2], (long long)k->pads[3],
                         k->auto_pad ? k->auto_pad : "", k->bias, ctx.threads, pass, (long long)i,
                         got, want);
        }
        free(y.data);
    }
    free(packed);
    free(scratch);
    free(x.data);
    free(w.data);
    free(b.data);
}

/* Depthwise (group == C) unless stated; n, c, mg, group, h, w, kh, kw, sh, sw, dh, dw, pads. */
static const conv_case cases[] = {
    {1, 3, 1, 3, 7, 9, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 5, 1, 5, 11, 13, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, false, NULL},
    {1, 4, 1, 4, 8, 8, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, true, NULL},
    {1, 2, 1, 2, 5, 6, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, NULL},
    {1, 3, 1, 3, 9, 10, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, true, NULL},
    {2, 3, 1, 3, 12, 11, 5, 5, 2, 2, 1, 1, {1, 2, 3, 0}, false, NULL},
    {1, 4, 1, 4, 13, 12, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, true, NULL},
    {1, 3, 1, 3, 10, 9, 3, 3, 2, 1, 2, 2, {0, 3, 1, 0}, true, NULL},
    {2, 3, 2, 3, 7, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {1, 2, 2, 2, 9, 9, 3, 5, 3, 3, 1, 2, {0, 1, 2, 3}, false, NULL},
    {1, 3, 1, 3, 6, 17, 1, 3, 1, 1, 1, 1, {0, 1, 0, 1}, true, NULL},
    /* a kernel wider than the image */
    {1, 2, 1, 2, 3, 4, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, true, NULL},
    {1, 2, 1, 2, 9, 8, 3, 3, 4, 3, 1, 1, {5, 4, 0, 0}, true, NULL},  /* whole rows of padding */
    {1, 3, 1, 3, 2, 40, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL}, /* a long row */
    /* long rows at stride 2: more than 16 interior outputs, even and odd widths */
    {1, 3, 1, 3, 5, 41, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 2, 1, 2, 6, 70, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, false, NULL},
    {2, 5, 1, 5, 10, 7, 3, 3, 2, 2, 1, 1, {0}, true, "SAME_UPPER"},
    {1, 6, 1, 3, 7, 7, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},  /* grouped, 2 per group */
    {2, 8, 2, 4, 6, 9, 3, 3, 2, 1, 1, 1, {1, 0, 1, 2}, false, NULL}, /* grouped, multiplier 2 */
    /* enough planes to split across the pool */
    {2, 64, 1, 64, 14, 14, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 32, 2, 32, 15, 13, 3, 3, 2, 2, 1, 1, {1, 0, 1, 1}, false, NULL},
    /* 3x3 stride 1 in padded bands (cs__dw512_plane3x3 on AVX-512): three bands, two with
     * asymmetric pads, the widest row it takes and one wider (the row path), pads wider
     * than the kernel (whole rows and columns of padding) */
    {1, 2, 1, 2, 120, 70, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 3, 2, 3, 60, 100, 3, 3, 1, 1, 1, 1, {0, 2, 1, 0}, false, NULL},
    {1, 2, 1, 2, 4, 1361, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {1, 2, 1, 2, 4, 1362, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, false, NULL},
    {1, 2, 1, 2, 4, 5, 3, 3, 1, 1, 1, 1, {3, 3, 3, 3}, true, NULL},
    /* ungrouped 3x3 stride 1: Winograd from 16 channels in and out and 196 outputs over
     * the batch, odd sizes, pads 0/1, asymmetric and wider than the kernel, SAME_UPPER;
     * 15 channels, 2x2 outputs and too few outputs stay on im2col */
    {1, 16, 16, 1, 15, 17, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 17, 16, 1, 15, 12, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, false, NULL},
    {1, 16, 17, 1, 16, 15, 3, 3, 1, 1, 1, 1, {0, 1, 2, 0}, true, NULL},
    {2, 16, 16, 1, 9, 9, 3, 3, 1, 1, 1, 1, {2, 3, 1, 2}, true, NULL},
    {4, 16, 16, 1, 9, 9, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, false, NULL},
    {1, 15, 16, 1, 15, 15, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {1, 16, 15, 1, 15, 15, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, false, NULL},
    {8, 16, 16, 1, 4, 4, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, true, NULL},
    {1, 16, 16, 1, 7, 9, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 24, 20, 1, 11, 13, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
    {2, 16, 16, 1, 10, 11, 3, 3, 1, 1, 1, 1, {0}, true, "SAME_UPPER"},
    /* ungrouped 1x1 and im2col shapes, which take pgemm.c when prepacked: odd channel
     * counts, rows and columns off its 8 x 48 tiles, batch 2, strides, a grouped 1x1 */
    {2, 17, 9, 1, 7, 9, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, NULL},
    {1, 5, 20, 1, 13, 11, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, false, NULL},
    {2, 3, 33, 1, 15, 17, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, true, NULL},
    {1, 16, 24, 1, 7, 7, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, true, NULL},
    {1, 8, 12, 2, 9, 10, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, NULL},
    {1, 64, 40, 1, 14, 14, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true, NULL},
    /* more tiles than one 16 MB block holds (8192 at 16 + 16 channels): the first block
     * ends inside the third image */
    {3, 16, 16, 1, 120, 120, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, NULL},
};

static void sweep(cs_pool *pool)
{
    const cs_dtype types[] = {CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT64};
    for (size_t ti = 0; ti < 2; ti++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            check(pool, types[ti], &cases[i]);
}

static void test_conv_one_thread(void **state)
{
    sweep(NULL);
}

static void test_conv_split_across_threads(void **state)
{
    cs_pool *pool;
    assert_int_equal(cs_pool_new(3, &pool, NULL), CS_OK);
    sweep(pool);
    cs_pool_free(pool);
}

static int64_t pick(unsigned *seed, int64_t lo, int64_t hi)
{
    *seed = *seed * 1103515245u + 12345u;
    return lo + (int64_t)(*seed >> 16) % (hi - lo + 1);
}

/* Seeded random depthwise shapes under both thread counts: sizes from one pixel up,
 * kernels larger than the image, every stride, dilation and pad up to 3 on each side. */
static void test_depthwise_random_shapes(void **state)
{
    cs_pool *pool;
    assert_int_equal(cs_pool_new(2, &pool, NULL), CS_OK);
    unsigned seed = 7;
    for (int done = 0; done < 300;) {
        conv_case k = {.n = pick(&seed, 1, 2)};
        k.group = k.c = pick(&seed, 2, 6);
        k.mg = pick(&seed, 1, 2);
        k.h = pick(&seed, 1, 12);
        k.w = pick(&seed, 1, 12);
        k.kh = pick(&seed, 1, 5);
        k.kw = pick(&seed, 1, 5);
        k.sh = pick(&seed, 1, 3);
        k.sw = pick(&seed, 1, 3);
        k.dh = pick(&seed, 1, 3);
        k.dw = pick(&seed, 1, 3);
        for (int i = 0; i < 4; i++) k.pads[i] = pick(&seed, 0, 3);
        k.bias = pick(&seed, 0, 1);
        if (k.h + k.pads[0] + k.pads[2] < (k.kh - 1) * k.dh + 1 ||
            k.w + k.pads[1] + k.pads[3] < (k.kw - 1) * k.dw + 1)
            continue; /* no output */
        check(done % 2 ? pool : NULL, CS_DTYPE_FLOAT32, &k);
        done++;
    }
    cs_pool_free(pool);
}

/* Seeded random ungrouped 3x3 stride-1 shapes around Winograd's thresholds (14 to 20
 * channels, outputs from 1x1, batch 1 to 3), pads up to 3 on each side, arbitrary float32
 * values, on one thread and on a pool. */
static void test_winograd_random_shapes(void **state)
{
    cs_pool *pool;
    assert_int_equal(cs_pool_new(2, &pool, NULL), CS_OK);
    unsigned seed = 11;
    inexact = true;
    for (int done = 0; done < 120;) {
        conv_case k = {.n = pick(&seed, 1, 3), .group = 1, .kh = 3, .kw = 3};
        k.c = pick(&seed, 14, 20);
        k.mg = pick(&seed, 14, 20);
        k.h = pick(&seed, 1, 16);
        k.w = pick(&seed, 1, 16);
        k.sh = k.sw = k.dh = k.dw = 1;
        for (int i = 0; i < 4; i++) k.pads[i] = pick(&seed, 0, 3);
        k.bias = pick(&seed, 0, 1);
        if (k.h + k.pads[0] + k.pads[2] < 3 || k.w + k.pads[1] + k.pads[3] < 3) continue;
        check(done % 2 ? pool : NULL, CS_DTYPE_FLOAT32, &k);
        done++;
    }
    inexact = false;
    cs_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_one_thread),
        cmocka_unit_test(test_conv_split_across_threads),
        cmocka_unit_test(test_depthwise_random_shapes),
        cmocka_unit_test(test_winograd_random_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

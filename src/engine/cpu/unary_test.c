/*
 * unary_test.c - unit tests for the elementwise unary kernels, Cast and CastLike: edge
 * values (NaN, infinities, signed zeros, integer extremes), every float type against
 * float32, the polynomial math against libm, parallel runs, and the errors.
 */
#include "engine/backend.h"

#include "base/pool.h"

#include <float.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* --- helpers ------------------------------------------------------------------------------ */

typedef struct tnode {
    cs__node n;
    cs__attr attr[4];
} tnode;

static void node_init(tnode *t, const char *op, int64_t opset)
{
    memset(t, 0, sizeof *t);
    t->n.name = "t";
    t->n.op_type = op;
    t->n.domain = "";
    t->n.opset = opset;
    t->n.attr = t->attr;
}

static void attr_f(tnode *t, const char *name, float f)
{
    t->attr[t->n.n_attr++] = (cs__attr){.name = name, .type = CS__ATTR_FLOAT, .f = f};
}

static void attr_i(tnode *t, const char *name, int64_t i)
{
    t->attr[t->n.n_attr++] = (cs__attr){.name = name, .type = CS__ATTR_INT, .i = i};
}

static void attr_s(tnode *t, const char *name, const char *s)
{
    t->attr[t->n.n_attr++] =
        (cs__attr){.name = name, .type = CS__ATTR_STRING, .s = s, .s_len = strlen(s)};
}

static cs_tensor vec(cs_dtype t, int64_t n, void *data)
{
    return (cs_tensor){.dtype = t, .rank = 1, .dims = {n}, .data = data};
}

/* Runs the node on inputs; out->data must be allocated by the caller after infer, so this
 * infers, checks the output type, and runs into `buf`. */
static cs_status run_node(tnode *t, const cs_tensor *const *in, int n_in, cs_tensor *out, void *buf,
                          cs_pool *pool, cs_error *err)
{
    const cs__op *op = cs__op_find(t->n.op_type, "", t->n.opset);
    const cs__kernel *k = cs__cpu_kernel_find(t->n.op_type, "", t->n.opset);
    assert_non_null(op);
    assert_non_null(k);
    t->n.n_in = n_in;
    t->n.n_out = 1;
    cs_status st = op->infer(&t->n, in, n_in, out, 1, err);
    if (st) return st;
    out->data = buf;
    cs__kctx ctx = {
        .node = &t->n, .pool = pool, .threads = pool ? cs_pool_size(pool) : 1, .err = err};
    return k->run(&ctx, in, n_in, out, 1);
}

/* One float32 operator over xs: y must have room for n floats. */
static void run_f32(const char *op, int64_t opset, const float *x, float *y, int64_t n)
{
    tnode t;
    node_init(&t, op, opset);
    cs_tensor in = vec(CS_DTYPE_FLOAT32, n, (void *)x), out;
    const cs_tensor *ins[1] = {&in};
    cs_error err = {0};
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_int_equal(out.dtype, CS_DTYPE_FLOAT32);
}

static bool same_float(double a, double b)
{
    if (a != a || b != b) return a != a && b != b;
    return a == b && signbit(a) == signbit(b);
}

/* --- float edge values -------------------------------------------------------------------- */

static void test_edges(void **state)
{
    const float x[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 100.0f, -100.0f};
    enum { N = sizeof x / sizeof x[0] };
    static const struct {
        const char *op;
        float y[N];
    } cases[] = {
        {"Relu", {NAN, INFINITY, 0, 0, -0.0f, 1, 0, 100, 0}},
        {"Abs", {NAN, INFINITY, INFINITY, 0, 0, 1, 1, 100, 100}},
        {"Neg", {NAN, -INFINITY, INFINITY, -0.0f, 0, -1, 1, -100, 100}},
        {"Sign", {NAN, 1, -1, 0, -0.0f, 1, -1, 1, -1}},
        {"Exp", {NAN, INFINITY, 0, 1, 1, 2.71828183f, 0.367879441f, INFINITY, 3.72007598e-44f}},
        {"Sigmoid", {NAN, 1, 0, 0.5f, 0.5f, 0.731058579f, 0.268941421f, 1, 3.72007598e-44f}},
        {"Tanh", {NAN, 1, -1, 0, -0.0f, 0.761594156f, -0.761594156f, 1, -1}},
        {"Erf", {NAN, 1, -1, 0, -0.0f, 0.842700793f, -0.842700793f, 1, -1}},
        {"Elu", {NAN, INFINITY, -1, 0, -0.0f, 1, -0.632120559f, 100, -1}},
        {"Softsign", {NAN, NAN, NAN, 0, -0.0f, 0.5f, -0.5f, 0.990099013f, -0.990099013f}},
        {"Reciprocal", {NAN, 0, -0.0f, INFINITY, -INFINITY, 1, -1, 0.01f, -0.01f}},
        {"Softplus",
         {NAN, INFINITY, 0, 0.693147181f, 0.693147181f, 1.31326169f, 0.313261687f, 100,
          3.72007598e-44f}},
    };
    float y[N];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_f32(cases[c].op, 17, x, y, N);
        for (int i = 0; i < N; i++) {
            float want = cases[c].y[i];
            bool ok =
                same_float(y[i], want) ||
                (want == want && fabsf(y[i] - want) <= 2e-7f * fabsf(want) + 1.5e-45f && y[i] != 0);
            if (!ok) fail_msg("%s(%g) = %.9g, want %.9g", cases[c].op, x[i], y[i], want);
        }
    }
}

static void test_round_half_even(void **state)
{
    const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49999997f, 2.6f, 1e30f, NAN};
    const float want[] = {0, 2, 2, -0.0f, -2, -2, 0, 3, 1e30f, NAN};
    float y[10];
    run_f32("Round", 11, x, y, 10);
    for (int i = 0; i < 10; i++)
        if (!same_float(y[i], want[i])) fail_msg("Round(%g) = %g", x[i], y[i]);
}

static void test_attributes(void **state)
{
    const float x[] = {-3, -1, -0.25f, 0, 0.25f, 1, 3};
    float y[7];
    tnode t;
    cs_tensor in = vec(CS_DTYPE_FLOAT32, 7, (void *)x), out;
    const cs_tensor *ins[1] = {&in};
    cs_error err = {0};

    node_init(&t, "LeakyRelu", 16);
    attr_f(&t, "alpha", 0.5f);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(y[0] == -1.5f && y[6] == 3);

    node_init(&t, "HardSigmoid", 6); /* defaults alpha 0.2, beta 0.5 */
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(y[0] == 0 && y[3] == 0.5f && y[6] == 1);

    node_init(&t, "HardSwish", 14);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(y[0] == 0 && y[3] == 0 && y[6] == 3 && fabsf(y[5] - 2.0f / 3) < 1e-7f);

    node_init(&t, "Shrink", 9);
    attr_f(&t, "lambd", 0.5f);
    attr_f(&t, "bias", 0.25f);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(y[0] == -2.75f && y[2] == 0 && y[4] == 0 && y[6] == 2.75f);

    node_init(&t, "ThresholdedRelu", 10);
    attr_f(&t, "alpha", 1.0f);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(y[5] == 0 && y[6] == 3 && y[0] == 0);

    node_init(&t, "Celu", 12);
    attr_f(&t, "alpha", 2.0f);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(fabsf(y[0] - 2.0f * expm1f(-1.5f)) < 1e-6f && y[6] == 3);

    node_init(&t, "Selu", 6);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(fabsf(y[6] - 3 * 1.05070102f) < 1e-6f);
    assert_true(fabsf(y[0] - 1.05070102f * 1.67326319f * expm1f(-3)) < 1e-6f);
}

static void test_isinf_isnan(void **state)
{
    const float x[] = {INFINITY, -INFINITY, NAN, 0, FLT_MAX};
    uint8_t y[5];
    tnode t;
    cs_tensor in = vec(CS_DTYPE_FLOAT32, 5, (void *)x), out;
    const cs_tensor *ins[1] = {&in};
    cs_error err = {0};

    node_init(&t, "IsInf", 10);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_int_equal(out.dtype, CS_DTYPE_BOOL);
    assert_memory_equal(y, ((uint8_t[]){1, 1, 0, 0, 0}), 5);

    node_init(&t, "IsInf", 10);
    attr_i(&t, "detect_positive", 0);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 1, 0, 0, 0}), 5);

    node_init(&t, "IsInf", 10);
    attr_i(&t, "detect_negative", 0);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 0, 0, 0, 0}), 5);

    node_init(&t, "IsNaN", 13);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((uint8_t[]){0, 0, 1, 0, 0}), 5);

    uint16_t h[5];
    for (int i = 0; i < 5; i++) h[i] = cs__f32_to_f16(x[i]);
    cs_tensor hin = vec(CS_DTYPE_FLOAT16, 5, h);
    const cs_tensor *hins[1] = {&hin};
    node_init(&t, "IsInf", 10);
    assert_int_equal(run_node(&t, hins, 1, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((uint8_t[]){1, 1, 0, 0, 1}), 5); /* FLT_MAX overflows half */
}

/* Every float operator on float64, float16 and bfloat16 agrees with float32 (within the
 * narrower type's precision). */
static void test_float_types(void **state)
{
    static const char *ops[] = {
        "Abs",   "Acos",        "Acosh",     "Asin",      "Asinh",   "Atan", "Atanh",
        "Ceil",  "Celu",        "Cos",       "Cosh",      "Elu",     "Erf",  "Exp",
        "Floor", "HardSigmoid", "HardSwish", "LeakyRelu", "Log",     "Neg",  "Reciprocal",
        "Relu",  "Round",       "Selu",      "Shrink",    "Sigmoid", "Sign", "Sin",
        "Sinh",  "Softplus",    "Softsign",  "Sqrt",      "Tan",     "Tanh", "ThresholdedRelu",
    };
    enum { N = 40 };
    float x[N], y32[N];
    double xd[N], yd[N];
    uint16_t xh[N], yh[N];
    for (int i = 0; i < N; i++) {
        /* exactly representable in bfloat16, so every type sees the same inputs */
        x[i] = cs__bf16_to_f32(cs__f32_to_bf16((float)(i - N / 2) * 0.1875f));
        if (i % 7 == 0) x[i] = cs__bf16_to_f32(cs__f32_to_bf16(x[i] * 0.37f));
        xd[i] = x[i];
    }
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        run_f32(ops[o], 17, x, y32, N);
        tnode t;
        cs_error err = {0};
        cs_tensor out;
        node_init(&t, ops[o], 17);
        cs_tensor din = vec(CS_DTYPE_FLOAT64, N, xd);
        const cs_tensor *dins[1] = {&din};
        assert_int_equal(run_node(&t, dins, 1, &out, yd, NULL, &err), CS_OK);
        assert_int_equal(out.dtype, CS_DTYPE_FLOAT64);
        for (int i = 0; i < N; i++) {
            if (y32[i] != y32[i] || isinf(y32[i])) {
                if (!same_float((float)yd[i], y32[i]))
                    fail_msg("%s f64 at %g: %g vs %g", ops[o], x[i], yd[i], y32[i]);
                continue;
            }
            if (fabs(yd[i] - y32[i]) > 4e-7 * fabs(yd[i]) + 1e-30)
                fail_msg("%s f64 at %g: %.9g vs %.9g", ops[o], x[i], yd[i], y32[i]);
        }
        for (int half = 0; half < 2; half++) {
            cs_dtype dt = half ? CS_DTYPE_FLOAT16 : CS_DTYPE_BFLOAT16;
            for (int i = 0; i < N; i++) xh[i] = half ? cs__f32_to_f16(x[i]) : cs__f32_to_bf16(x[i]);
            cs_tensor hin = vec(dt, N, xh);
            const cs_tensor *hins[1] = {&hin};
            assert_int_equal(run_node(&t, hins, 1, &out, yh, NULL, &err), CS_OK);
            assert_int_equal(out.dtype, dt);
            for (int i = 0; i < N; i++) {
                uint16_t want = half ? cs__f32_to_f16(y32[i]) : cs__f32_to_bf16(y32[i]);
                float a = half ? cs__f16_to_f32(yh[i]) : cs__bf16_to_f32(yh[i]);
                float b = half ? cs__f16_to_f32(want) : cs__bf16_to_f32(want);
                if (!same_float(a, b) && fabsf(a - b) > (half ? 1e-3f : 8e-3f) * fabsf(b))
                    fail_msg("%s %s at %g: %g vs %g", ops[o], cs_dtype_name(dt), x[i], a, b);
            }
        }
    }
}

/* The polynomial float32 math against double libm on a dense sweep. */
static void test_math_accuracy(void **state)
{
    static const struct {
        const char *op;
        double (*ref)(double);
        float lo, hi;
    } fns[] = {
        {"Exp", exp, -104, 89},
        {"Tanh", tanh, -12, 12},
        {"Erf", erf, -5, 5},
    };
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        for (int i = 0; i < N; i++) x[i] = fns[f].lo + (fns[f].hi - fns[f].lo) * i / (N - 1);
        run_f32(fns[f].op, 17, x, y, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = fns[f].ref(x[i]);
            float w = fabsf((float)want);
            double ulp = w < FLT_MIN ? 1.4e-45 : nextafterf(w, INFINITY) - w;
            double e = fabs(y[i] - want) / ulp;
            if (e > worst) worst = e;
        }
        if (worst > 1.5) fail_msg("%s: %.2f ulp", fns[f].op, worst);
    }
    /* sigmoid from the same exp: relative error only */
    for (int i = 0; i < N; i++) x[i] = -90 + 180.0f * i / (N - 1);
    run_f32("Sigmoid", 13, x, y, N);
    for (int i = 0; i < N; i++) {
        double want = 1 / (1 + exp(-(double)x[i]));
        if (fabs(y[i] - want) > 3e-7 * want + 1.5e-45) fail_msg("Sigmoid(%g) = %g", x[i], y[i]);
    }
    free(x);
    free(y);
}

/* --- integer operators -------------------------------------------------------------------- */

static void test_integers(void **state)
{
    tnode t;
    cs_error err = {0};
    cs_tensor out;

    int8_t i8[] = {-128, -5, 0, 7, 127}, o8[5];
    cs_tensor t8 = vec(CS_DTYPE_INT8, 5, i8);
    const cs_tensor *ins8[1] = {&t8};
    node_init(&t, "Abs", 13);
    assert_int_equal(run_node(&t, ins8, 1, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, ((int8_t[]){-128, 5, 0, 7, 127}), 5);
    node_init(&t, "Neg", 13);
    assert_int_equal(run_node(&t, ins8, 1, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, ((int8_t[]){-128, 5, 0, -7, -127}), 5);
    node_init(&t, "Relu", 14);
    assert_int_equal(run_node(&t, ins8, 1, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, ((int8_t[]){0, 0, 0, 7, 127}), 5);
    node_init(&t, "Sign", 13);
    assert_int_equal(run_node(&t, ins8, 1, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, ((int8_t[]){-1, -1, 0, 1, 1}), 5);

    int64_t i64[] = {INT64_MIN, -1, 0, 1, INT64_MAX}, o64[5];
    cs_tensor t64 = vec(CS_DTYPE_INT64, 5, i64);
    const cs_tensor *ins64[1] = {&t64};
    node_init(&t, "Abs", 13);
    assert_int_equal(run_node(&t, ins64, 1, &out, o64, NULL, &err), CS_OK);
    assert_memory_equal(o64, ((int64_t[]){INT64_MIN, 1, 0, 1, INT64_MAX}), 40);

    uint64_t u64[] = {0, 1, UINT64_MAX, 1ull << 63}, ou64[4];
    cs_tensor tu64 = vec(CS_DTYPE_UINT64, 4, u64);
    const cs_tensor *insu[1] = {&tu64};
    node_init(&t, "Sign", 13);
    assert_int_equal(run_node(&t, insu, 1, &out, ou64, NULL, &err), CS_OK);
    assert_memory_equal(ou64, ((uint64_t[]){0, 1, 1, 1}), 32);
    node_init(&t, "Abs", 13);
    assert_int_equal(run_node(&t, insu, 1, &out, ou64, NULL, &err), CS_OK);
    assert_memory_equal(ou64, u64, 32);

    uint8_t b[] = {0, 1, 1, 0}, ob[4];
    cs_tensor tb = vec(CS_DTYPE_BOOL, 4, b);
    const cs_tensor *insb[1] = {&tb};
    node_init(&t, "Not", 1);
    assert_int_equal(run_node(&t, insb, 1, &out, ob, NULL, &err), CS_OK);
    assert_int_equal(out.dtype, CS_DTYPE_BOOL);
    assert_memory_equal(ob, ((uint8_t[]){1, 0, 0, 1}), 4);
}

static void test_clip(void **state)
{
    tnode t;
    cs_error err = {0};
    cs_tensor out;
    float x[] = {-5, -1, 0, 1, 5, NAN}, y[6];
    cs_tensor tx = vec(CS_DTYPE_FLOAT32, 6, x);

    /* opset 6: attributes */
    node_init(&t, "Clip", 6);
    attr_f(&t, "min", -2);
    attr_f(&t, "max", 2);
    const cs_tensor *ins1[1] = {&tx};
    assert_int_equal(run_node(&t, ins1, 1, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((float[]){-2, -1, 0, 1, 2}), 5 * sizeof(float));
    assert_true(y[5] != y[5]);

    /* opset 13: optional inputs; max only */
    float mx = 0.5f;
    cs_tensor tmax = {.dtype = CS_DTYPE_FLOAT32, .rank = 0, .data = &mx};
    const cs_tensor *ins3[3] = {&tx, NULL, &tmax};
    node_init(&t, "Clip", 13);
    assert_int_equal(run_node(&t, ins3, 3, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((float[]){-5, -1, 0, 0.5f, 0.5f}), 5 * sizeof(float));

    /* min > max gives max everywhere */
    float mn = 1.0f;
    cs_tensor tmin = {.dtype = CS_DTYPE_FLOAT32, .rank = 0, .data = &mn};
    const cs_tensor *ins3b[3] = {&tx, &tmin, &tmax};
    assert_int_equal(run_node(&t, ins3b, 3, &out, y, NULL, &err), CS_OK);
    assert_memory_equal(y, ((float[]){0.5f, 0.5f, 0.5f, 0.5f, 0.5f}), 5 * sizeof(float));

    /* integers, default bounds and explicit ones */
    int8_t i8[] = {-128, -3, 0, 3, 127}, o8[5], lo8 = -2;
    cs_tensor t8 = vec(CS_DTYPE_INT8, 5, i8), tlo8 = {.dtype = CS_DTYPE_INT8, .data = &lo8};
    const cs_tensor *ins8[2] = {&t8, &tlo8};
    assert_int_equal(run_node(&t, ins8, 1, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, i8, 5);
    assert_int_equal(run_node(&t, ins8, 2, &out, o8, NULL, &err), CS_OK);
    assert_memory_equal(o8, ((int8_t[]){-2, -2, 0, 3, 127}), 5);

    uint64_t u[] = {0, 5, UINT64_MAX}, ou[3], hi = 1ull << 63;
    cs_tensor tu = vec(CS_DTYPE_UINT64, 3, u), thi = {.dtype = CS_DTYPE_UINT64, .data = &hi};
    const cs_tensor *insu[3] = {&tu, NULL, &thi};
    assert_int_equal(run_node(&t, insu, 3, &out, ou, NULL, &err), CS_OK);
    assert_memory_equal(ou, ((uint64_t[]){0, 5, 1ull << 63}), 24);

    /* a bound that is not a scalar */
    float two[2] = {0, 1};
    cs_tensor bad = vec(CS_DTYPE_FLOAT32, 2, two);
    const cs_tensor *insbad[2] = {&tx, &bad};
    assert_int_equal(run_node(&t, insbad, 2, &out, y, NULL, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "min must be a scalar"));
}

/* --- Cast --------------------------------------------------------------------------------- */

static cs_status cast(const void *x, cs_dtype from, int64_t n, void *y, cs_dtype to)
{
    tnode t;
    node_init(&t, "Cast", 13);
    attr_i(&t, "to", to);
    cs_tensor in = vec(from, n, (void *)x), out;
    const cs_tensor *ins[1] = {&in};
    cs_error err = {0};
    cs_status st = run_node(&t, ins, 1, &out, y, NULL, &err);
    if (!st) assert_int_equal(out.dtype, to);
    return st;
}

static void test_cast_float_to_int(void **state)
{
    const float x[] = {-1.0f, 300.0f, 2.9f, -2.9f, NAN, 3e9f, -3e9f, 1e20f};
    int32_t i32[8];
    int64_t i64[8];
    uint8_t u8[8];
    int8_t s8[8];
    uint64_t u64[8];
    assert_int_equal(cast(x, CS_DTYPE_FLOAT32, 8, i32, CS_DTYPE_INT32), CS_OK);
    assert_memory_equal(
        i32, ((int32_t[]){-1, 300, 2, -2, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN}), sizeof i32);
    assert_int_equal(cast(x, CS_DTYPE_FLOAT32, 8, i64, CS_DTYPE_INT64), CS_OK);
    assert_memory_equal(
        i64, ((int64_t[]){-1, 300, 2, -2, INT64_MIN, 3000000000ll, -3000000000ll, INT64_MIN}),
        sizeof i64);
    assert_int_equal(cast(x, CS_DTYPE_FLOAT32, 8, u8, CS_DTYPE_UINT8), CS_OK);
    assert_memory_equal(u8, ((uint8_t[]){255, 44, 2, 254, 0, 0, 0, 0}), sizeof u8);
    assert_int_equal(cast(x, CS_DTYPE_FLOAT32, 8, s8, CS_DTYPE_INT8), CS_OK);
    assert_memory_equal(s8, ((int8_t[]){-1, 44, 2, -2, 0, 0, 0, 0}), sizeof s8);
    double big[] = {18446744073709549568.0, 9223372036854775808.0, 1.0};
    assert_int_equal(cast(big, CS_DTYPE_FLOAT64, 3, u64, CS_DTYPE_UINT64), CS_OK);
    assert_memory_equal(u64, ((uint64_t[]){18446744073709549568ull, 1ull << 63, 1}), 24);
}

static void test_cast_float_types(void **state)
{
    /* float64 to float16 must round once: 1 + 2^-11 + 2^-40 is just above the midpoint
     * between two halves, so it rounds up; through float32 it would land on the midpoint
     * and round to even (down). */
    double d[] = {1.0 + 0x1p-11 + 0x1p-40, 65520.0, 65519.99, -0.0, 1e-8, NAN};
    uint16_t h[6];
    assert_int_equal(cast(d, CS_DTYPE_FLOAT64, 6, h, CS_DTYPE_FLOAT16), CS_OK);
    assert_int_equal(h[0], 0x3c01);
    assert_int_equal(h[1], 0x7c00);
    assert_int_equal(h[2], 0x7bff);
    assert_int_equal(h[3], 0x8000);
    assert_int_equal(h[4], 0x0000); /* below half the smallest subnormal */
    assert_true((h[5] & 0x7c00) == 0x7c00 && (h[5] & 0x3ff));

    double b[] = {1.0 + 0x1p-8 + 0x1p-30, 3.0e38, 1e39};
    uint16_t bf[3];
    assert_int_equal(cast(b, CS_DTYPE_FLOAT64, 3, bf, CS_DTYPE_BFLOAT16), CS_OK);
    assert_int_equal(bf[0], 0x3f81);
    assert_int_equal(bf[2], 0x7f80);

    /* int64 to float32 rounds once */
    int64_t big[] = {(1ll << 53) + 1 + (1ll << 29), -(1ll << 62)};
    float f[2];
    assert_int_equal(cast(big, CS_DTYPE_INT64, 2, f, CS_DTYPE_FLOAT32), CS_OK);
    assert_true(f[0] == (float)big[0] && f[1] == -0x1p62f);

    /* float32 to bfloat16 rounds to nearest even */
    float x[] = {0.48033667f, 1.0f};
    uint16_t bx[2];
    assert_int_equal(cast(x, CS_DTYPE_FLOAT32, 2, bx, CS_DTYPE_BFLOAT16), CS_OK);
    assert_int_equal(bx[0], 0x3ef6);
    assert_int_equal(bx[1], 0x3f80);
}

/* Every pair of numeric/bool types: small integers survive a round trip, and a value
 * goes through every type to bool and back. */
static void test_cast_all_pairs(void **state)
{
    static const cs_dtype types[] = {
        CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT64, CS_DTYPE_FLOAT16, CS_DTYPE_BFLOAT16, CS_DTYPE_INT8,
        CS_DTYPE_INT16,   CS_DTYPE_INT32,   CS_DTYPE_INT64,   CS_DTYPE_UINT8,    CS_DTYPE_UINT16,
        CS_DTYPE_UINT32,  CS_DTYPE_UINT64,  CS_DTYPE_BOOL,
    };
    enum { NT = sizeof types / sizeof types[0], N = 5 };
    const double vals[N] = {0, 1, 2, 100, 127};
    for (int a = 0; a < NT; a++) {
        for (int b = 0; b < NT; b++) {
            uint64_t xs[N], ys[N], back[N];
            cs_tensor tx = vec(types[a], N, xs);
            for (int i = 0; i < N; i++) cs_tensor_set_f64(&tx, i, vals[i]);
            assert_int_equal(cast(xs, types[a], N, ys, types[b]), CS_OK);
            cs_tensor ty = vec(types[b], N, ys);
            for (int i = 0; i < N; i++) {
                double want =
                    types[a] == CS_DTYPE_BOOL || types[b] == CS_DTYPE_BOOL ? vals[i] != 0 : vals[i];
                if (cs_tensor_get_f64(&ty, i) != want)
                    fail_msg("%s -> %s: %g gave %g", cs_dtype_name(types[a]),
                             cs_dtype_name(types[b]), vals[i], cs_tensor_get_f64(&ty, i));
            }
            assert_int_equal(cast(ys, types[b], N, back, types[a]), CS_OK);
        }
    }
}

static void test_cast_forms(void **state)
{
    tnode t;
    cs_error err = {0};
    cs_tensor out;
    int32_t x[] = {1, -2};
    float y[2];
    cs_tensor tx = vec(CS_DTYPE_INT32, 2, x);

    /* opset 1: `to` is a type name */
    node_init(&t, "Cast", 1);
    attr_s(&t, "to", "FLOAT");
    const cs_tensor *ins[1] = {&tx};
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_true(out.dtype == CS_DTYPE_FLOAT32 && y[0] == 1 && y[1] == -2);

    /* CastLike takes the type of its second input */
    double like = 0;
    double yd[2];
    cs_tensor tl = {.dtype = CS_DTYPE_FLOAT64, .rank = 0, .data = &like};
    const cs_tensor *ins2[2] = {&tx, &tl};
    node_init(&t, "CastLike", 15);
    assert_int_equal(run_node(&t, ins2, 2, &out, yd, NULL, &err), CS_OK);
    assert_true(out.dtype == CS_DTYPE_FLOAT64 && yd[0] == 1 && yd[1] == -2);

    /* strings are refused at infer with a clear message */
    node_init(&t, "Cast", 13);
    attr_i(&t, "to", CS_DTYPE_STRING);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "string"));
    tl.dtype = CS_DTYPE_STRING;
    node_init(&t, "CastLike", 15);
    assert_int_equal(run_node(&t, ins2, 2, &out, y, NULL, &err), CS_ERR_UNSUPPORTED);
    node_init(&t, "Cast", 13);
    attr_i(&t, "to", 17); /* float8: not a type capstan has */
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_ERR_UNSUPPORTED);
}

/* --- errors, empty tensors, threads ------------------------------------------------------- */

static void test_errors(void **state)
{
    tnode t;
    cs_error err = {0};
    cs_tensor out;
    int32_t x[2] = {1, 2}, y[2];
    cs_tensor tx = vec(CS_DTYPE_INT32, 2, x);
    const cs_tensor *ins[1] = {&tx};
    node_init(&t, "Sqrt", 13);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Sqrt 't'"));
    assert_non_null(strstr(err.msg, "int32"));
    node_init(&t, "Round", 10); /* Round arrived in opset 11 */
    assert_null(cs__op_find("Round", "", 10));
    assert_null(cs__cpu_kernel_find("Round", "", 10));
    assert_non_null(cs__op_find("Round", "", 11));
    assert_non_null(cs__cpu_kernel_find("Round", "", 11));
    assert_null(cs__op_find("CastLike", "", 14));
}

static void test_empty(void **state)
{
    float x[1], y[1];
    tnode t;
    cs_error err = {0};
    cs_tensor in = {.dtype = CS_DTYPE_FLOAT32, .rank = 2, .dims = {0, 3}, .data = x}, out;
    const cs_tensor *ins[1] = {&in};
    node_init(&t, "Tanh", 13);
    assert_int_equal(run_node(&t, ins, 1, &out, y, NULL, &err), CS_OK);
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], 0);
    assert_int_equal(out.dims[1], 3);
}

static void test_threads(void **state)
{
    enum { N = 300001 };
    cs_pool *pool;
    assert_int_equal(cs_pool_new(3, &pool, NULL), CS_OK);
    float *x = malloc(N * sizeof *x), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7919ll) % 2001 - 1000) / 100;
    static const char *ops[] = {"Relu", "Erf", "Cast"};
    for (int o = 0; o < 3; o++) {
        tnode t;
        node_init(&t, ops[o], 13);
        if (o == 2) attr_i(&t, "to", CS_DTYPE_FLOAT16);
        cs_tensor in = vec(CS_DTYPE_FLOAT32, N, x), out;
        const cs_tensor *ins[1] = {&in};
        cs_error err = {0};
        assert_int_equal(run_node(&t, ins, 1, &out, a, NULL, &err), CS_OK);
        assert_int_equal(run_node(&t, ins, 1, &out, b, pool, &err), CS_OK);
        assert_memory_equal(a, b, N * cs_dtype_size(out.dtype));
    }
    /* in place: output buffer is the input buffer */
    memcpy(a, x, N * sizeof *x);
    tnode t;
    node_init(&t, "Sigmoid", 13);
    cs_tensor in = vec(CS_DTYPE_FLOAT32, N, a), out;
    const cs_tensor *ins[1] = {&in};
    cs_error err = {0};
    assert_int_equal(run_node(&t, ins, 1, &out, a, pool, &err), CS_OK);
    in.data = x;
    assert_int_equal(run_node(&t, ins, 1, &out, b, NULL, &err), CS_OK);
    assert_memory_equal(a, b, N * sizeof *a);
    free(x);
    free(a);
    free(b);
    cs_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_round_half_even),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_isinf_isnan),
        cmocka_unit_test(test_float_types),
        cmocka_unit_test(test_math_accuracy),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_cast_float_to_int),
        cmocka_unit_test(test_cast_float_types),
        cmocka_unit_test(test_cast_all_pairs),
        cmocka_unit_test(test_cast_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

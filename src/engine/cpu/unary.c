/*
 * unary.c - CPU kernels for the elementwise unary operator family, Cast and CastLike; their
 * schemas (shape and type inference) are in ops/unary.c.
 *
 * One table-driven core. Every operator is a `uop` row: a float32 loop and a float64 loop
 * stamped from one scalar expression each, an optional int64 loop for the operators ONNX
 * defines on integers, attribute defaults, and a parallel grain. float16 and bfloat16 run
 * the float32 loop on stack chunks converted through float; integer and bool tensors run
 * the int64 loop on chunks widened to int64 (or, for the few operators ONNX allows on
 * integers without an exact integer form, the float64 loop). One dispatcher serves every
 * operator in CS__UNARY_OPS (ops/unary.h). cs__act_apply, the activation fused into a
 * producer, runs Clip's loops.
 *
 * Cast converts between every pair of numeric and bool types through a float64 or int64
 * pivot, with direct loops for the common float pairs. Conversions follow numpy and ONNX
 * Runtime on x86: floats round to nearest even (float64 to float16/bfloat16 without double
 * rounding), float to integer truncates toward zero, and a float outside the target's
 * range (or NaN) gives what x86's conversion gives: the minimum of int32/int64, wrapped
 * for the narrower types. String tensors are not supported.
 */
#include "engine/cpu/isa.h"
#include "engine/kernel.h"
#include "engine/ops/unary.h"

#include <string.h>

/* Last: it sets, for the rest of this file, the float options its math is compiled with. */
#include "engine/cpu/vmath.h"

/* --- parameters -------------------------------------------------------------------------- */

typedef struct uparam {
    float alpha, beta, gamma, lambd, bias;
    double lo, hi;         /* Clip bounds for floating types */
    int64_t ilo, ihi;      /* Clip bounds for integer types (uint64 as its bits) */
    bool det_neg, det_pos; /* IsInf */
    bool is_unsigned;      /* integer loops: the element type is unsigned */
} uparam;

typedef void (*f32_fn)(const float *x, float *y, int64_t n, const uparam *p);
typedef void (*f64_fn)(const double *x, double *y, int64_t n, const uparam *p);
typedef void (*p32_fn)(const float *x, uint8_t *y, int64_t n, const uparam *p);
typedef void (*p64_fn)(const double *x, uint8_t *y, int64_t n, const uparam *p);
typedef void (*i64_fn)(int64_t *t, int64_t n, const uparam *p);

enum { K_PLAIN, K_CLIP, K_ISINF };

typedef struct uop {
    f32_fn f32;  /* float loops; NULL for predicates */
    f32_fn f32w; /* the same for AVX-512 */
    f64_fn f64;
    p32_fn p32; /* predicate loops writing bool; NULL otherwise */
    p64_fn p64;
    i64_fn i64;    /* in-place loop on widened integers; NULL: integers go through float64 */
    int64_t grain; /* elements per parallel range */
    float alpha, beta, gamma, lambd; /* attribute defaults */
    int kind;
} uop;

#define GRAIN_CHEAP (1 << 16)
#define GRAIN_MATH  (1 << 13)
#define CHUNK       512 /* elements converted per stack buffer */

/* --- float32 math in vectorizable form (vmath.h has exp) ------------------------------ */

/* exp(x) - 1 for x <= 0 (callers select another value for x > 0). */
static inline float vexpm1_neg(float x)
{
    x = x < -88.0f ? -88.0f : x; /* -1 below */
    x = x > 0.0f ? 0.0f : x;
    float r;
    int32_t n;
    float q = exp_reduce(x, &r, &n);
    float s = bits_f32((uint32_t)(n + 127) << 23);
    return s * (q * (r * r) + r) + (s - 1.0f);
}

static inline float vtanhf(float x)
{
    float a = fabsf(x), z = x * x;
    float q = -6.104948930e-03f; /* |x| < 0.625: x + x^3 * q(x^2) */
    q = q * z + 2.100364119e-02f;
    q = q * z + -5.385249853e-02f;
    q = q * z + 1.333278269e-01f;
    q = q * z + -3.333332837e-01f;
    float small = copysignf(x + x * z * q, x);
    float e = vexpf(2.0f * (a > 9.0f ? 9.0f : a)); /* tanh(9) is 1 in float */
    float big = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : big;
}

static inline float verff(float x)
{
    float a = fabsf(x), z = x * x;
    float q = -6.008737255e-04f; /* |x| <= 0.921875: x + x * q(x^2) */
    q = q * z + 4.997011740e-03f;
    q = q * z + -2.676949650e-02f;
    q = q * z + 1.128190458e-01f;
    q = q * z + -3.761250377e-01f;
    q = q * z + 1.283791512e-01f;
    float small = x + x * q;
    float t = a > 3.925f ? 3.925f : a; /* erf(3.925) is 1 in float */
    float l = 1.635555236e-06f;        /* log(erfc(t)) as a polynomial in t */
    l = l * t + -4.599288513e-05f;
    l = l * t + 5.959701957e-04f;
    l = l * t + -4.754332826e-03f;
    l = l * t + 2.640233375e-02f;
    l = l * t + -1.100402176e-01f;
    l = l * t + -6.318755746e-01f;
    l = l * t + -1.130200267e+00f;
    l = l * t + 3.109433746e-04f;
    float big = copysignf(1.0f - vexpf(l), x);
    return a <= 0.921875f ? small : big;
}

/* e/(1+e) with e = exp(-|x|): one exp, and accurate down to the subnormals on both sides */
static inline float vsigmoidf(float x)
{
    float e = vexpf(-fabsf(x)), s = 1.0f / (1.0f + e);
    return x < 0 ? e * s : s;
}

static inline double sigmoid64(double x)
{
    double e = exp(-fabs(x)), s = 1.0 / (1.0 + e);
    return x < 0 ? e * s : s;
}

/* --- float loops --------------------------------------------------------------------------
 * name, float32 expression, float64 expression: `v` is the element, `p` the parameters.
 * Comparisons are written so that NaN propagates. */
#define SELU32(v)       ((v) > 0 ? p->gamma * (v) : p->gamma * p->alpha * vexpm1_neg(v))
#define SELU64(v)       ((v) > 0 ? (double)p->gamma * (v) : (double)p->gamma * p->alpha * expm1(v))
#define HSIG(t)         ((t) < 0 ? 0 : (t) > 1 ? 1 : (t))
#define SHRINK(v, l, b) ((v) < -(l) ? (v) + (b) : (v) > (l) ? (v) - (b) : 0)

/* clang-format off */
#define FLOAT_OPS(X)                                                                           \
    X(abs,   fabsf(v),  fabs(v))                                                               \
    X(acos,  acosf(v),  acos(v))                                                               \
    X(acosh, acoshf(v), acosh(v))                                                              \
    X(asin,  asinf(v),  asin(v))                                                               \
    X(asinh, asinhf(v), asinh(v))                                                              \
    X(atan,  atanf(v),  atan(v))                                                               \
    X(atanh, atanhf(v), atanh(v))                                                              \
    X(ceil,  ceilf(v),  ceil(v))                                                               \
    X(celu,  v > 0 ? v : p->alpha * vexpm1_neg(v / p->alpha),                                  \
             v > 0 ? v : (double)p->alpha * expm1(v / p->alpha))                               \
    X(clip,  CS__CLAMP(v, (float)p->lo, (float)p->hi), CS__CLAMP(v, p->lo, p->hi))             \
    X(cos,   cosf(v),   cos(v))                                                                \
    X(cosh,  coshf(v),  cosh(v))                                                               \
    X(elu,   v < 0 ? p->alpha * vexpm1_neg(v) : v, v < 0 ? (double)p->alpha * expm1(v) : v)   \
    X(erf,   verff(v),  erf(v))                                                                \
    X(exp,   vexpf(v),  exp(v))                                                                \
    X(floor, floorf(v), floor(v))                                                              \
    X(hardsigmoid, HSIG(p->alpha * v + p->beta), HSIG((double)p->alpha * v + p->beta))         \
    X(hardswish,   v * HSIG(v * (1.0f / 6) + 0.5f), v * HSIG(v * (1.0 / 6) + 0.5))             \
    X(leakyrelu,   v < 0 ? p->alpha * v : v, v < 0 ? (double)p->alpha * v : v)                 \
    X(log,   logf(v),   log(v))                                                                \
    X(neg,   -v,        -v)                                                                    \
    X(reciprocal, 1.0f / v, 1.0 / v)                                                           \
    X(relu,  v < 0 ? 0.0f : v, v < 0 ? 0.0 : v)                                                \
    X(round, rintf(v),  rint(v)) /* the default rounding mode: half to even */                 \
    X(selu,  SELU32(v), SELU64(v))                                                             \
    X(shrink, SHRINK(v, p->lambd, p->bias), SHRINK(v, (double)p->lambd, (double)p->bias))      \
    X(sigmoid, vsigmoidf(v), sigmoid64(v))                                                     \
    X(sign,  v > 0 ? 1.0f : v < 0 ? -1.0f : v, v > 0 ? 1.0 : v < 0 ? -1.0 : v)                 \
    X(sin,   sinf(v),   sin(v))                                                                \
    X(sinh,  sinhf(v),  sinh(v))                                                               \
    X(softplus, v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)),                                \
                v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)))                                    \
    X(softsign, v / (1.0f + fabsf(v)), v / (1.0 + fabs(v)))                                    \
    X(sqrt,  sqrtf(v),  sqrt(v))                                                               \
    X(tan,   tanf(v),   tan(v))                                                                \
    X(tanh,  vtanhf(v), tanh(v))                                                               \
    X(thresholdedrelu, v > p->alpha ? v : 0.0f, v > (double)p->alpha ? v : 0.0)
/* clang-format on */

/* float32 runs in blocks of VB through a local buffer: the inner loop has a constant trip
 * count and no aliasing, which compilers vectorize at -O2 (x and y may be the same buffer
 * for in-place runs). The tail goes through the same block, zero-padded, so every element
 * gets the same arithmetic. Parameters are copied to a local so that selects may read them
 * unconditionally. */
#define VB 16
#define F32_LOOP(name)                                     \
    {                                                      \
        const uparam p = *pp;                              \
        float t[VB];                                       \
        int64_t i = 0;                                     \
        for (; i + VB <= n; i += VB) {                     \
            memcpy(t, x + i, sizeof t);                    \
            b32_##name(t, &p);                             \
            memcpy(y + i, t, sizeof t);                    \
        }                                                  \
        if (i < n) {                                       \
            memset(t, 0, sizeof t);                        \
            memcpy(t, x + i, (size_t)(n - i) * sizeof *t); \
            b32_##name(t, &p);                             \
            memcpy(y + i, t, (size_t)(n - i) * sizeof *t); \
        }                                                  \
    }
/* Each float32 loop is stamped twice: for baseline x86-64 (SSE2, four lanes) and, chosen
 * at run time where the CPU has it (isa.h), for AVX-512F (sixteen lanes): the same block
 * function inlined into both. */
#define AVX512 __attribute__((target("avx512f")))
#define STAMP_FLOAT(name, e32, e64)                                                        \
    static inline void b32_##name(float *t, const uparam *p)                               \
    {                                                                                      \
        for (int j = 0; j < VB; j++) {                                                     \
            const float v = t[j];                                                          \
            t[j] = (e32);                                                                  \
        }                                                                                  \
    }                                                                                      \
    static void f32_##name(const float *x, float *y, int64_t n, const uparam *pp)          \
        F32_LOOP(name) static AVX512 void f32w_##name(const float *x, float *y, int64_t n, \
                                                      const uparam *pp)                    \
            F32_LOOP(name) static void f64_##name(const double *x, double *y, int64_t n,   \
                                                  const uparam *p)                         \
    {                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            const double v = x[i];                                                         \
            y[i] = (e64);                                                                  \
        }                                                                                  \
    }
FLOAT_OPS(STAMP_FLOAT)

/* --- predicates (bool output) ------------------------------------------------------------ */
#define PRED_OPS(X)  \
    X(isnan, v != v) \
    X(isinf, isinf(v) && (v > 0 ? p->det_pos : p->det_neg))

#define STAMP_PRED(name, e)                                                         \
    static void p32_##name(const float *x, uint8_t *y, int64_t n, const uparam *p)  \
    {                                                                               \
        for (int64_t i = 0; i < n; i++) {                                           \
            const float v = x[i];                                                   \
            y[i] = (uint8_t)(e);                                                    \
        }                                                                           \
    }                                                                               \
    static void p64_##name(const double *x, uint8_t *y, int64_t n, const uparam *p) \
    {                                                                               \
        for (int64_t i = 0; i < n; i++) {                                           \
            const double v = x[i];                                                  \
            y[i] = (uint8_t)(e);                                                    \
        }                                                                           \
    }
PRED_OPS(STAMP_PRED)

/* --- integer loops, on values widened to int64 (uint64 kept as its bits) ----------------- *
 * Arithmetic goes through uint64 so that wrapping (Abs and Neg of the minimum) is defined. */
static void i64_abs(int64_t *t, int64_t n, const uparam *p)
{
    if (p->is_unsigned) return;
    for (int64_t i = 0; i < n; i++) t[i] = t[i] < 0 ? (int64_t)(0 - (uint64_t)t[i]) : t[i];
}

static void i64_neg(int64_t *t, int64_t n, const uparam *p)
{
    for (int64_t i = 0; i < n; i++) t[i] = (int64_t)(0 - (uint64_t)t[i]);
}

static void i64_sign(int64_t *t, int64_t n, const uparam *p)
{
    if (p->is_unsigned)
        for (int64_t i = 0; i < n; i++) t[i] = t[i] != 0;
    else
        for (int64_t i = 0; i < n; i++) t[i] = (t[i] > 0) - (t[i] < 0);
}

static void i64_relu(int64_t *t, int64_t n, const uparam *p)
{
    if (p->is_unsigned) return;
    for (int64_t i = 0; i < n; i++) t[i] = t[i] < 0 ? 0 : t[i];
}

static void i64_clip(int64_t *t, int64_t n, const uparam *p)
{
    if (p->is_unsigned) {
        uint64_t lo = (uint64_t)p->ilo, hi = (uint64_t)p->ihi;
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)t[i];
            v = v < lo ? lo : v;
            t[i] = (int64_t)(v > hi ? hi : v);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = t[i] < p->ilo ? p->ilo : t[i];
            t[i] = v > p->ihi ? p->ihi : v;
        }
    }
}

static void i64_not(int64_t *t, int64_t n, const uparam *p)
{
    for (int64_t i = 0; i < n; i++) t[i] = !t[i];
}

/* --- element conversion ------------------------------------------------------------------ */

static bool is_float(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 || t == CS_DTYPE_FLOAT64 || t == CS_DTYPE_FLOAT16 ||
           t == CS_DTYPE_BFLOAT16;
}

static bool is_unsigned(cs_dtype t)
{
    return t == CS_DTYPE_UINT8 || t == CS_DTYPE_UINT16 || t == CS_DTYPE_UINT32 ||
           t == CS_DTYPE_UINT64 || t == CS_DTYPE_BOOL;
}

/* float64 to float32 rounding to odd: the float nearest zero with the last bit set when the
 * conversion is inexact. Rounding that to a narrower format (at least two bits shorter)
 * then gives the correctly rounded result, with no double rounding. */
static float f64_to_f32_odd(double d)
{
    float f = (float)d;
    if ((double)f == d || d != d) return f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (fabs((double)f) > fabs(d)) u--; /* step toward zero: truncation (inf -> FLT_MAX) */
    u |= 1;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* float to integer as x86's truncating conversions do: NaN and out-of-range values give
 * the type's minimum. The narrower types convert through int32 and wrap, like C casts
 * compiled for x86 (numpy's astype, ONNX Runtime). */
static inline int64_t cvt_i64(double d)
{
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d : INT64_MIN;
}

static inline int32_t cvt_i32(double d)
{
    return d > -2147483649.0 && d < 2147483648.0 ? (int32_t)d : INT32_MIN;
}

static inline uint64_t cvt_u64(double d)
{
    if (d >= 9223372036854775808.0 && d < 18446744073709551616.0)
        return (uint64_t)cvt_i64(d - 9223372036854775808.0) ^ 0x8000000000000000u;
    return (uint64_t)cvt_i64(d);
}

#define LOOP(expr)                        \
    for (int64_t i = 0; i < n; i++) expr; \
    return

/* Any numeric or bool type to float64. */
static void load_f64(cs_dtype t, const void *x, double *d, int64_t n)
{
    switch (t) {
    case CS_DTYPE_FLOAT32: LOOP(d[i] = ((const float *)x)[i]);
    case CS_DTYPE_FLOAT64: LOOP(d[i] = ((const double *)x)[i]);
    case CS_DTYPE_FLOAT16: LOOP(d[i] = cs__f16_to_f32(((const uint16_t *)x)[i]));
    case CS_DTYPE_BFLOAT16: LOOP(d[i] = cs__bf16_to_f32(((const uint16_t *)x)[i]));
    case CS_DTYPE_INT8: LOOP(d[i] = ((const int8_t *)x)[i]);
    case CS_DTYPE_INT16: LOOP(d[i] = ((const int16_t *)x)[i]);
    case CS_DTYPE_INT32: LOOP(d[i] = ((const int32_t *)x)[i]);
    case CS_DTYPE_INT64: LOOP(d[i] = (double)((const int64_t *)x)[i]);
    case CS_DTYPE_UINT8:
    case CS_DTYPE_BOOL: LOOP(d[i] = ((const uint8_t *)x)[i]);
    case CS_DTYPE_UINT16: LOOP(d[i] = ((const uint16_t *)x)[i]);
    case CS_DTYPE_UINT32: LOOP(d[i] = ((const uint32_t *)x)[i]);
    case CS_DTYPE_UINT64: LOOP(d[i] = (double)((const uint64_t *)x)[i]);
    default: return;
    }
}

/* float64 to any numeric or bool type. */
static void store_f64(cs_dtype t, const double *d, void *y, int64_t n)
{
    switch (t) {
    case CS_DTYPE_FLOAT32: LOOP(((float *)y)[i] = (float)d[i]);
    case CS_DTYPE_FLOAT64: LOOP(((double *)y)[i] = d[i]);
    case CS_DTYPE_FLOAT16: LOOP(((uint16_t *)y)[i] = cs__f32_to_f16(f64_to_f32_odd(d[i])));
    case CS_DTYPE_BFLOAT16: LOOP(((uint16_t *)y)[i] = cs__f32_to_bf16(f64_to_f32_odd(d[i])));
    case CS_DTYPE_INT8: LOOP(((int8_t *)y)[i] = (int8_t)cvt_i32(d[i]));
    case CS_DTYPE_INT16: LOOP(((int16_t *)y)[i] = (int16_t)cvt_i32(d[i]));
    case CS_DTYPE_INT32: LOOP(((int32_t *)y)[i] = cvt_i32(d[i]));
    case CS_DTYPE_INT64: LOOP(((int64_t *)y)[i] = cvt_i64(d[i]));
    case CS_DTYPE_UINT8: LOOP(((uint8_t *)y)[i] = (uint8_t)cvt_i32(d[i]));
    case CS_DTYPE_UINT16: LOOP(((uint16_t *)y)[i] = (uint16_t)cvt_i32(d[i]));
    case CS_DTYPE_UINT32: LOOP(((uint32_t *)y)[i] = (uint32_t)cvt_i64(d[i]));
    case CS_DTYPE_UINT64: LOOP(((uint64_t *)y)[i] = cvt_u64(d[i]));
    case CS_DTYPE_BOOL: LOOP(((uint8_t *)y)[i] = d[i] != 0);
    default: return;
    }
}

/* Integer or bool type to int64 (uint64 as its bits). */
static void load_i64(cs_dtype t, const void *x, int64_t *d, int64_t n)
{
    switch (t) {
    case CS_DTYPE_INT8: LOOP(d[i] = ((const int8_t *)x)[i]);
    case CS_DTYPE_INT16: LOOP(d[i] = ((const int16_t *)x)[i]);
    case CS_DTYPE_INT32: LOOP(d[i] = ((const int32_t *)x)[i]);
    case CS_DTYPE_INT64: LOOP(d[i] = ((const int64_t *)x)[i]);
    case CS_DTYPE_UINT8:
    case CS_DTYPE_BOOL: LOOP(d[i] = ((const uint8_t *)x)[i]);
    case CS_DTYPE_UINT16: LOOP(d[i] = ((const uint16_t *)x)[i]);
    case CS_DTYPE_UINT32: LOOP(d[i] = ((const uint32_t *)x)[i]);
    case CS_DTYPE_UINT64: LOOP(d[i] = (int64_t)((const uint64_t *)x)[i]);
    default: return;
    }
}

/* int64 to an integer or bool type: integers wrap, bool is "not zero". */
static void store_i64(cs_dtype t, const int64_t *d, void *y, int64_t n)
{
    switch (t) {
    case CS_DTYPE_INT8: LOOP(((int8_t *)y)[i] = (int8_t)d[i]);
    case CS_DTYPE_INT16: LOOP(((int16_t *)y)[i] = (int16_t)d[i]);
    case CS_DTYPE_INT32: LOOP(((int32_t *)y)[i] = (int32_t)d[i]);
    case CS_DTYPE_INT64: LOOP(((int64_t *)y)[i] = d[i]);
    case CS_DTYPE_UINT8: LOOP(((uint8_t *)y)[i] = (uint8_t)d[i]);
    case CS_DTYPE_UINT16: LOOP(((uint16_t *)y)[i] = (uint16_t)d[i]);
    case CS_DTYPE_UINT32: LOOP(((uint32_t *)y)[i] = (uint32_t)d[i]);
    case CS_DTYPE_UINT64: LOOP(((uint64_t *)y)[i] = (uint64_t)d[i]);
    case CS_DTYPE_BOOL: LOOP(((uint8_t *)y)[i] = d[i] != 0);
    default: return;
    }
}

/* float16 or bfloat16 to and from float32. */
static void load_f32(cs_dtype t, const uint16_t *x, float *d, int64_t n)
{
    if (t == CS_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++) d[i] = cs__f16_to_f32(x[i]);
    else
        for (int64_t i = 0; i < n; i++) d[i] = cs__bf16_to_f32(x[i]);
}

static void store_f32(cs_dtype t, const float *d, uint16_t *y, int64_t n)
{
    if (t == CS_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++) y[i] = cs__f32_to_f16(d[i]);
    else
        for (int64_t i = 0; i < n; i++) y[i] = cs__f32_to_bf16(d[i]);
}

#undef LOOP

/* --- the operator table ------------------------------------------------------------------ */

#define FLOAT_OP(name, g, ...)     \
    static const uop op_##name = { \
        .f32 = f32_##name, .f32w = f32w_##name, .f64 = f64_##name, .grain = g, __VA_ARGS__}
/* Predicates write bool: CS__UNARY_OPS gives their outputs that type. */
#define PRED_OP(name, g, ...) \
    static const uop op_##name = {.p32 = p32_##name, .p64 = p64_##name, .grain = g, __VA_ARGS__}

FLOAT_OP(abs, GRAIN_CHEAP, .i64 = i64_abs);
FLOAT_OP(acos, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(acosh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(asin, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(asinh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(atan, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(atanh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(ceil, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(celu, GRAIN_MATH, .alpha = 1.0f);
FLOAT_OP(clip, GRAIN_CHEAP, .i64 = i64_clip, .kind = K_CLIP);
FLOAT_OP(cos, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(cosh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(elu, GRAIN_MATH, .alpha = 1.0f);
FLOAT_OP(erf, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(exp, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(floor, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(hardsigmoid, GRAIN_CHEAP, .alpha = 0.2f, .beta = 0.5f);
FLOAT_OP(hardswish, GRAIN_CHEAP, .kind = K_PLAIN);
PRED_OP(isinf, GRAIN_CHEAP, .kind = K_ISINF);
PRED_OP(isnan, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(leakyrelu, GRAIN_CHEAP, .alpha = 0.01f);
FLOAT_OP(log, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(neg, GRAIN_CHEAP, .i64 = i64_neg);
static const uop op_not = {.i64 = i64_not, .grain = GRAIN_CHEAP};
FLOAT_OP(reciprocal, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(relu, GRAIN_CHEAP, .i64 = i64_relu);
FLOAT_OP(round, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(selu, GRAIN_MATH, .alpha = 1.67326319217681884765625f,
         .gamma = 1.05070102214813232421875f);
FLOAT_OP(shrink, GRAIN_CHEAP, .lambd = 0.5f);
FLOAT_OP(sigmoid, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(sign, GRAIN_CHEAP, .i64 = i64_sign);
FLOAT_OP(sin, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(sinh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(softplus, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(softsign, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(sqrt, GRAIN_CHEAP, .kind = K_PLAIN);
FLOAT_OP(tan, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(tanh, GRAIN_MATH, .kind = K_PLAIN);
FLOAT_OP(thresholdedrelu, GRAIN_CHEAP, .alpha = 1.0f);

/* --- run -------------------------------------------------------------------------------- */

static cs_status unary_params(const uop *op, const cs__node *n, const cs_tensor *const *in,
                              int n_in, uparam *p, cs_error *err)
{
    cs_dtype t = in[0]->dtype;
    p->alpha = cs__attr_float(n, "alpha", op->alpha);
    p->beta = cs__attr_float(n, "beta", op->beta);
    p->gamma = cs__attr_float(n, "gamma", op->gamma);
    p->lambd = cs__attr_float(n, "lambd", op->lambd);
    p->bias = cs__attr_float(n, "bias", 0.0f);
    p->is_unsigned = is_unsigned(t);
    if (op->kind == K_ISINF) {
        p->det_neg = cs__attr_int(n, "detect_negative", 1) != 0;
        p->det_pos = cs__attr_int(n, "detect_positive", 1) != 0;
    } else if (op->kind == K_CLIP) {
        switch (t) {
        case CS_DTYPE_INT8: p->ilo = INT8_MIN, p->ihi = INT8_MAX; break;
        case CS_DTYPE_INT16: p->ilo = INT16_MIN, p->ihi = INT16_MAX; break;
        case CS_DTYPE_INT32: p->ilo = INT32_MIN, p->ihi = INT32_MAX; break;
        case CS_DTYPE_UINT8: p->ilo = 0, p->ihi = UINT8_MAX; break;
        case CS_DTYPE_UINT16: p->ilo = 0, p->ihi = UINT16_MAX; break;
        case CS_DTYPE_UINT32: p->ilo = 0, p->ihi = UINT32_MAX; break;
        case CS_DTYPE_UINT64:
            p->ilo = 0, p->ihi = -1; /* UINT64_MAX as bits */
            break;
        default: p->ilo = INT64_MIN, p->ihi = INT64_MAX; break;
        }
        if (is_float(t)) return cs__clip_bounds(n, in, n_in, &p->lo, &p->hi, err);
        if (n->opset >= 11) {
            cs_status st =
                cs__clip_bound(n, n_in > 1 ? in[1] : NULL, "min", true, NULL, &p->ilo, err);
            if (!st)
                st = cs__clip_bound(n, n_in > 2 ? in[2] : NULL, "max", true, NULL, &p->ihi, err);
            if (st) return st;
        }
    }
    return CS_OK;
}

void cs__act_apply(const cs__act *a, cs_dtype t, void *y, int64_t n)
{
    uparam p = {.lo = a->lo, .hi = a->hi};
    if (t == CS_DTYPE_FLOAT64)
        f64_clip(y, y, n, &p);
    else if (cs__cpu_avx512())
        f32w_clip(y, y, n, &p);
    else
        f32_clip(y, y, n, &p);
}

typedef struct ujob {
    const uop *op;
    uparam p;
    cs_dtype t;
    const void *x;
    void *y;
} ujob;

static void unary_range(void *arg, int64_t b, int64_t e)
{
    const ujob *j = arg;
    const uop *op = j->op;
    f32_fn f32 = op->f32 && cs__cpu_avx512() ? op->f32w : op->f32;
    switch (j->t) {
    case CS_DTYPE_FLOAT32: {
        const float *x = (const float *)j->x + b;
        if (f32)
            f32(x, (float *)j->y + b, e - b, &j->p);
        else
            op->p32(x, (uint8_t *)j->y + b, e - b, &j->p);
        return;
    }
    case CS_DTYPE_FLOAT64: {
        const double *x = (const double *)j->x + b;
        if (op->f64)
            op->f64(x, (double *)j->y + b, e - b, &j->p);
        else
            op->p64(x, (uint8_t *)j->y + b, e - b, &j->p);
        return;
    }
    case CS_DTYPE_FLOAT16:
    case CS_DTYPE_BFLOAT16: {
        float t[CHUNK];
        for (int64_t c = b; c < e; c += CHUNK) {
            int64_t m = e - c < CHUNK ? e - c : CHUNK;
            load_f32(j->t, (const uint16_t *)j->x + c, t, m);
            if (f32) {
                f32(t, t, m, &j->p);
                store_f32(j->t, t, (uint16_t *)j->y + c, m);
            } else {
                op->p32(t, (uint8_t *)j->y + c, m, &j->p);
            }
        }
        return;
    }
    default: { /* integers and bool */
        size_t sz = cs_dtype_size(j->t);
        for (int64_t c = b; c < e; c += CHUNK) {
            int64_t m = e - c < CHUNK ? e - c : CHUNK;
            const char *x = (const char *)j->x + (size_t)c * sz;
            char *y = (char *)j->y + (size_t)c * sz;
            if (op->i64) {
                int64_t t[CHUNK];
                load_i64(j->t, x, t, m);
                op->i64(t, m, &j->p);
                store_i64(j->t, t, y, m);
            } else {
                double t[CHUNK];
                load_f64(j->t, x, t, m);
                op->f64(t, t, m, &j->p);
                store_f64(j->t, t, y, m);
            }
        }
        return;
    }
    }
}

static cs_status unary_run(const uop *op, uint32_t types, cs__kctx *ctx, const cs_tensor *const *in,
                           int n_in, cs_tensor *out, int n_out)
{
    const cs__node *n = ctx->node;
    cs_status st = cs__unary_check_input(n, types, in, n_in, ctx->err);
    if (st) return st;
    ujob j = {.op = op, .t = in[0]->dtype, .x = in[0]->data, .y = out[0].data};
    st = unary_params(op, n, in, n_in, &j.p, ctx->err);
    if (st) return st;
    cs__parallel_for(ctx, cs__numel(in[0]), op->grain, unary_range, &j);
    return CS_OK;
}

#define STAMP_KERNEL(Op, name, since, types, otype)                                  \
    static cs_status run_##name(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                cs_tensor *out, int n_out)                           \
    {                                                                                \
        return unary_run(&op_##name, types, ctx, in, n_in, out, n_out);              \
    }
CS__UNARY_OPS(STAMP_KERNEL)

/* --- Cast and CastLike ------------------------------------------------------------------- */

typedef struct cjob {
    cs_dtype from, to;
    const void *x;
    void *y;
} cjob;

/* Direct loops for the common pairs; false when (from, to) has none. */
static bool cast_direct(cs_dtype from, cs_dtype to, const void *x, void *y, int64_t n)
{
#define PAIR(a, b) ((uint32_t)(a) << 8 | (uint32_t)(b))
#define DIRECT(tx, ty, expr)                            \
    do {                                                \
        const tx *xs = x;                               \
        ty *ys = y;                                     \
        for (int64_t i = 0; i < n; i++) ys[i] = (expr); \
    } while (0)
    switch (PAIR(from, to)) {
    case PAIR(CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT16):
        DIRECT(float, uint16_t, cs__f32_to_f16(xs[i]));
        return true;
    case PAIR(CS_DTYPE_FLOAT16, CS_DTYPE_FLOAT32):
        DIRECT(uint16_t, float, cs__f16_to_f32(xs[i]));
        return true;
    case PAIR(CS_DTYPE_FLOAT32, CS_DTYPE_BFLOAT16):
        DIRECT(float, uint16_t, cs__f32_to_bf16(xs[i]));
        return true;
    case PAIR(CS_DTYPE_BFLOAT16, CS_DTYPE_FLOAT32):
        DIRECT(uint16_t, float, cs__bf16_to_f32(xs[i]));
        return true;
    case PAIR(CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT64): DIRECT(float, double, xs[i]); return true;
    case PAIR(CS_DTYPE_FLOAT64, CS_DTYPE_FLOAT32): DIRECT(double, float, (float)xs[i]); return true;
    /* int64 to float32 directly: through float64 would round twice */
    case PAIR(CS_DTYPE_INT64, CS_DTYPE_FLOAT32): DIRECT(int64_t, float, (float)xs[i]); return true;
    case PAIR(CS_DTYPE_UINT64, CS_DTYPE_FLOAT32):
        DIRECT(uint64_t, float, (float)xs[i]);
        return true;
    case PAIR(CS_DTYPE_INT32, CS_DTYPE_FLOAT32): DIRECT(int32_t, float, (float)xs[i]); return true;
    case PAIR(CS_DTYPE_INT32, CS_DTYPE_INT64): DIRECT(int32_t, int64_t, xs[i]); return true;
    case PAIR(CS_DTYPE_INT64, CS_DTYPE_INT32):
        DIRECT(int64_t, int32_t, (int32_t)xs[i]);
        return true;
    case PAIR(CS_DTYPE_BOOL, CS_DTYPE_FLOAT32): DIRECT(uint8_t, float, xs[i]); return true;
    case PAIR(CS_DTYPE_FLOAT32, CS_DTYPE_INT64):
        DIRECT(float, int64_t, cvt_i64(xs[i]));
        return true;
    case PAIR(CS_DTYPE_FLOAT32, CS_DTYPE_INT32):
        DIRECT(float, int32_t, cvt_i32(xs[i]));
        return true;
    default: return false;
    }
#undef DIRECT
#undef PAIR
}

static void cast_range(void *arg, int64_t b, int64_t e)
{
    const cjob *j = arg;
    size_t si = cs_dtype_size(j->from), so = cs_dtype_size(j->to);
    const char *x = (const char *)j->x + (size_t)b * si;
    char *y = (char *)j->y + (size_t)b * so;
    int64_t n = e - b;
    if (j->from == j->to) {
        if (x != y) memcpy(y, x, (size_t)n * si);
        return;
    }
    if (cast_direct(j->from, j->to, x, y, n)) return;
    bool ints = !is_float(j->from) && !is_float(j->to);
    for (int64_t c = 0; c < n; c += CHUNK) {
        int64_t m = n - c < CHUNK ? n - c : CHUNK;
        if (ints) {
            int64_t t[CHUNK];
            load_i64(j->from, x + (size_t)c * si, t, m);
            store_i64(j->to, t, y + (size_t)c * so, m);
        } else {
            double t[CHUNK];
            load_f64(j->from, x + (size_t)c * si, t, m);
            store_f64(j->to, t, y + (size_t)c * so, m);
        }
    }
}

static cs_status cast_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    cjob j = {.x = in[0] ? in[0]->data : NULL, .y = out[0].data};
    cs_status st = cs__cast_target(ctx->node, in, n_in, &j.to, ctx->err);
    if (st) return st;
    j.from = in[0]->dtype;
    if (out[0].dtype != j.to)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL,
                              "output buffer is %s, expected %s", cs_dtype_name(out[0].dtype),
                              cs_dtype_name(j.to));
    cs__parallel_for(ctx, cs__numel(in[0]), GRAIN_CHEAP, cast_range, &j);
    return CS_OK;
}

/* --- the table --------------------------------------------------------------------------- */

#define KERNEL_ENTRY(Op, name, since, types, otype) {#Op, NULL, since, types, 0, run_##name, NULL},

/* clang-format off */
const cs__kernel cs__kernels_unary[] = {
    CS__UNARY_OPS(KERNEL_ENTRY)
    {"Cast", NULL, 1, CS__T_ALL, 0, cast_run, NULL},
    {"CastLike", NULL, 15, CS__T_ALL, 0, cast_run, NULL},
    {0},
};
/* clang-format on */

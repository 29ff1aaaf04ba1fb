/*
 * binary.c - CPU kernels for the elementwise operators over two or more broadcast inputs:
 * arithmetic (Add, Sub, Mul, Div, Pow, Mod), logic (And, Or, Xor, BitShift), comparisons
 * (Equal, Greater, Less, GreaterOrEqual, LessOrEqual), the variadic Max, Min, Mean and Sum,
 * Where and PRelu; their schemas (shape and type inference) are in ops/binary.c.
 *
 * Every operator runs through one broadcasting iterator. It gives each operand byte strides
 * over the output's dims (0 along broadcast dims), drops size-1 dims and merges neighbouring
 * dims that are contiguous for every operand: equal shapes become one flat run, a scalar
 * becomes a fixed operand, and a per-channel bias over [N,C,H,W] becomes runs of H*W. The
 * iterator hands each run of the innermost dim to a loop stamped by macros per (operator,
 * type); a loop sees each input either advancing or fixed and has a separate plain loop for
 * each case, so the float32 ones vectorise. Work splits over the pool by flat output index,
 * so one long run parallelises as well as many short ones. Variadic operators fold pairwise
 * into the output.
 *
 * Integer arithmetic wraps (it is done in unsigned types), integer division and modulo by
 * zero give 0 as numpy does, and INT_MIN / -1 wraps instead of trapping: no input value can
 * crash a run. float16 and bfloat16 compute in float32.
 */
#include "engine/kernel.h"
#include "engine/ops/binary.h"

#include <string.h>

#define N_DTYPES     (CS_DTYPE_BFLOAT16 + 1)
#define MAX_OPERANDS 4     /* the output and up to three inputs (Where) */
#define MIN_CHUNK    32768 /* elements per thread below which splitting costs more than it saves */

/* Iterations of the elementwise loops are independent even when the output is also an input
 * (folding, in-place execution): element i is read before it is written. Saying so lets the
 * compilers vectorise without runtime alias checks. */
#if defined(__clang__)
#define INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
/* ...and a loop that cannot vectorise anyway (half conversions, integer division) is fine. */
#pragma clang diagnostic ignored "-Wpass-failed"
#elif defined(__GNUC__)
#define INDEPENDENT _Pragma("GCC ivdep")
#else
#define INDEPENDENT
#endif

/* Computes a run of n output elements. p[0] is the output, p[1..] the inputs; step[k] says
 * whether input k advances along the run (else its one element is broadcast). */
typedef void (*loop_fn)(char *const *p, const bool *step, int64_t n, const void *aux);

/* --- the broadcasting iterator ---------------------------------------------------------- */

typedef struct iter {
    int n_ops, rank;
    int64_t dims[CS_MAX_RANK];
    int64_t st[MAX_OPERANDS][CS_MAX_RANK]; /* byte strides, 0 along broadcast dims */
    char *base[MAX_OPERANDS];
    bool step[MAX_OPERANDS];
    loop_fn fn;
    const void *aux;
} iter;

/* Prepares `it` to run fn over out with the inputs broadcast to out's shape, which infer
 * has checked. Cost: O(rank * operands). */
static void iter_init(iter *it, cs_tensor *out, int n_in, const cs_tensor *const *in, loop_fn fn,
                      const void *aux)
{
    int64_t st[MAX_OPERANDS][CS_MAX_RANK];
    int rank = out->rank;
    it->n_ops = n_in + 1;
    it->rank = 0;
    it->fn = fn;
    it->aux = aux;
    for (int k = 0; k < it->n_ops; k++) {
        const cs_tensor *t = k ? in[k - 1] : out;
        int64_t s = (int64_t)cs_dtype_size(t->dtype);
        it->base[k] = t->data;
        for (int d = rank - 1; d >= 0; d--) {
            int td = d - (rank - t->rank);
            int64_t dim = td >= 0 ? t->dims[td] : 1;
            st[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    for (int d = 0; d < rank; d++) {
        if (out->dims[d] == 1) continue;
        int r = it->rank;
        bool merge = r > 0;
        for (int k = 0; merge && k < it->n_ops; k++)
            merge = it->st[k][r - 1] == st[k][d] * out->dims[d];
        if (merge) {
            it->dims[r - 1] *= out->dims[d];
            for (int k = 0; k < it->n_ops; k++) it->st[k][r - 1] = st[k][d];
        } else {
            it->dims[r] = out->dims[d];
            for (int k = 0; k < it->n_ops; k++) it->st[k][r] = st[k][d];
            it->rank++;
        }
    }
    if (it->rank == 0) { /* a single element */
        it->rank = 1;
        it->dims[0] = 1;
        for (int k = 0; k < it->n_ops; k++) it->st[k][0] = 0;
    }
    for (int k = 0; k < it->n_ops; k++) it->step[k] = it->st[k][it->rank - 1] != 0;
}

/* Runs the loop over flat output elements [begin, end): runs of the innermost dim, the first
 * and last possibly partial, with pointers carried through the outer dims. */
static void iter_range(void *arg, int64_t begin, int64_t end)
{
    const iter *it = arg;
    int last = it->rank - 1;
    int64_t inner = it->dims[last], idx[CS_MAX_RANK];
    int64_t q = begin / inner, off = begin % inner;
    char *p[MAX_OPERANDS];
    for (int d = last - 1; d >= 0; d--) {
        idx[d] = q % it->dims[d];
        q /= it->dims[d];
    }
    for (int k = 0; k < it->n_ops; k++) {
        p[k] = it->base[k] + off * it->st[k][last];
        for (int d = 0; d < last; d++) p[k] += idx[d] * it->st[k][d];
    }
    for (int64_t i = begin; i < end;) {
        int64_t n = inner - off < end - i ? inner - off : end - i;
        it->fn(p, it->step, n, it->aux);
        i += n;
        if (i >= end) break;
        for (int k = 0; k < it->n_ops; k++) p[k] -= off * it->st[k][last];
        off = 0;
        for (int d = last - 1; d >= 0; d--) {
            for (int k = 0; k < it->n_ops; k++) p[k] += it->st[k][d];
            if (++idx[d] < it->dims[d]) break;
            for (int k = 0; k < it->n_ops; k++) p[k] -= it->st[k][d] * it->dims[d];
            idx[d] = 0;
        }
    }
}

static void iter_run(cs__kctx *ctx, cs_tensor *out, int n_in, const cs_tensor *const *in,
                     loop_fn fn, const void *aux)
{
    int64_t total = cs__numel(out);
    if (total == 0) return;
    iter it;
    iter_init(&it, out, n_in, in, fn, aux);
    cs__parallel_for(ctx, total, MIN_CHUNK, iter_range, &it);
}

/* --- per-type loops --------------------------------------------------------------------- */

/* o = EXPR(x, y) with x from input 1 and y from input 2, computed in type C. Each input
 * advances or is fixed along the run; the four cases are separate loops so that each
 * vectorises. Both are fixed when a fold's first pair broadcasts along a dim only a later
 * input has. The output may alias an input element for element. */
#define BIN_LOOP(name, TO, TI, C, LD, ST, EXPR)                                    \
    static void name(char *const *p, const bool *step, int64_t n, const void *aux) \
    {                                                                              \
        TO *o = (TO *)p[0];                                                        \
        const TI *a = (const TI *)p[1], *b = (const TI *)p[2];                     \
        if (step[1] && step[2]) {                                                  \
            INDEPENDENT                                                            \
            for (int64_t i = 0; i < n; i++) {                                      \
                const C x = LD(a[i]), y = LD(b[i]);                                \
                o[i] = ST(EXPR);                                                   \
            }                                                                      \
        } else if (step[1]) {                                                      \
            const C y = LD(b[0]);                                                  \
            INDEPENDENT                                                            \
            for (int64_t i = 0; i < n; i++) {                                      \
                const C x = LD(a[i]);                                              \
                o[i] = ST(EXPR);                                                   \
            }                                                                      \
        } else if (step[2]) {                                                      \
            const C x = LD(a[0]);                                                  \
            INDEPENDENT                                                            \
            for (int64_t i = 0; i < n; i++) {                                      \
                const C y = LD(b[i]);                                              \
                o[i] = ST(EXPR);                                                   \
            }                                                                      \
        } else {                                                                   \
            const C x = LD(a[0]), y = LD(b[0]);                                    \
            const TO v = ST(EXPR);                                                 \
            for (int64_t i = 0; i < n; i++) o[i] = v;                              \
        }                                                                          \
    }

#define LD_ID(v)   (v)
#define ST_ID(v)   (v)
#define ST_BOOL(v) ((uint8_t)(v))

/* X(op, dtype, storage type, compute type, unsigned type for wrapping arithmetic, load, store).
 * 8- and 16-bit integers wrap through `unsigned` so that products cannot overflow int. */
#define FLOATS(X, op)                                                      \
    X(op, FLOAT32, float, float, float, LD_ID, ST_ID)                      \
    X(op, FLOAT64, double, double, double, LD_ID, ST_ID)                   \
    X(op, FLOAT16, uint16_t, float, float, cs__f16_to_f32, cs__f32_to_f16) \
    X(op, BFLOAT16, uint16_t, float, float, cs__bf16_to_f32, cs__f32_to_bf16)
#define SINTS(X, op)                                       \
    X(op, INT8, int8_t, int8_t, unsigned, LD_ID, ST_ID)    \
    X(op, INT16, int16_t, int16_t, unsigned, LD_ID, ST_ID) \
    X(op, INT32, int32_t, int32_t, uint32_t, LD_ID, ST_ID) \
    X(op, INT64, int64_t, int64_t, uint64_t, LD_ID, ST_ID)
#define UINTS(X, op)                                          \
    X(op, UINT8, uint8_t, uint8_t, unsigned, LD_ID, ST_ID)    \
    X(op, UINT16, uint16_t, uint16_t, unsigned, LD_ID, ST_ID) \
    X(op, UINT32, uint32_t, uint32_t, uint32_t, LD_ID, ST_ID) \
    X(op, UINT64, uint64_t, uint64_t, uint64_t, LD_ID, ST_ID)
#define BOOLS(X, op)   X(op, BOOL, uint8_t, uint8_t, unsigned, LD_ID, ST_ID)
#define NUMERIC(X, op) FLOATS(X, op) SINTS(X, op) UINTS(X, op)

/* Stamps op_DTYPE with the output in the input's type, or in bool. */
#define DEF_SAME(op, DT, T, C, W, LD, ST) \
    BIN_LOOP(op##_##DT, T, T, C, LD, ST, EXPR_##op(x, y, C, W))
#define DEF_BOOL(op, DT, T, C, W, LD, ST) \
    BIN_LOOP(op##_##DT, uint8_t, T, C, LD, ST_BOOL, EXPR_##op(x, y, C, W))
#define ENTRY(op, DT, ...) [CS_DTYPE_##DT] = op##_##DT,

#define EXPR_add(x, y, C, W)   ((C)((W)(x) + (W)(y)))
#define EXPR_sub(x, y, C, W)   ((C)((W)(x) - (W)(y)))
#define EXPR_mul(x, y, C, W)   ((C)((W)(x) * (W)(y)))
#define EXPR_div_f(x, y, C, W) ((x) / (y))
/* Signed division truncates toward zero as C and onnxruntime do (numpy's // floors; the
 * reference tests divide only unsigned integers, where the two agree). */
#define EXPR_div_s(x, y, C, W)  ((y) == 0 ? (C)0 : (y) == -1 ? (C)((W)0 - (W)(x)) : (C)((x) / (y)))
#define EXPR_div_u(x, y, C, W)  ((y) == 0 ? (C)0 : (C)((x) / (y)))
#define EXPR_pow_f(x, y, C, W)  ((C) _Generic((x), float : powf, default : pow)((x), (y)))
#define EXPR_fmod_f(x, y, C, W) ((C)fmod((x), (y))) /* exact, so double costs no accuracy */
#define EXPR_fmod_s(x, y, C, W) ((y) == 0 || (y) == -1 ? (C)0 : (C)((x) % (y)))
/* fmod=0: the remainder takes the divisor's sign, as in Python. */
#define PYMOD(r, y)            ((r) != 0 && ((r) < 0) != ((y) < 0) ? (r) + (y) : (r))
#define EXPR_mod_s(x, y, C, W) ((y) == 0 || (y) == -1 ? (C)0 : (C)PYMOD((x) % (y), (y)))
#define EXPR_mod_u(x, y, C, W) ((y) == 0 ? (C)0 : (C)((x) % (y)))
/* NaN in either input propagates, as numpy's maximum/minimum do. Bitwise | and selects
 * between ready values keep the loops free of branches, so they vectorise. */
#define EXPR_max(x, y, C, W) ((((x) > (y)) | ((x) != (x))) ? (x) : (y))
#define EXPR_min(x, y, C, W) ((((x) < (y)) | ((x) != (x))) ? (x) : (y))
#define EXPR_eq(x, y, C, W)  ((x) == (y))
#define EXPR_gt(x, y, C, W)  ((x) > (y))
#define EXPR_ge(x, y, C, W)  ((x) >= (y))
#define EXPR_lt(x, y, C, W)  ((x) < (y))
#define EXPR_le(x, y, C, W)  ((x) <= (y))
#define EXPR_and(x, y, C, W) ((x) && (y))
#define EXPR_or(x, y, C, W)  ((x) || (y))
#define EXPR_xor(x, y, C, W) (!(x) != !(y))
/* Shifting by the width or more is undefined in C; every bit is shifted out instead. */
#define EXPR_shl(x, y, C, W)     ((uint64_t)(y) >= sizeof(C) * 8 ? (C)0 : (C)((W)(x) << (y)))
#define EXPR_shr(x, y, C, W)     ((uint64_t)(y) >= sizeof(C) * 8 ? (C)0 : (C)((x) >> (y)))
#define EXPR_prelu_f(x, y, C, W) ((x) * ((x) < 0 ? (y) : (C)1))
#define EXPR_prelu_s(x, y, C, W) ((x) < 0 ? (C)((W)(x) * (W)(y)) : (x))
#define EXPR_prelu_u(x, y, C, W) ((void)(y), (x)) /* never negative */

NUMERIC(DEF_SAME, add)
NUMERIC(DEF_SAME, sub)
NUMERIC(DEF_SAME, mul)
FLOATS(DEF_SAME, div_f)
SINTS(DEF_SAME, div_s)
UINTS(DEF_SAME, div_u)
FLOATS(DEF_SAME, pow_f)
FLOATS(DEF_SAME, fmod_f)
SINTS(DEF_SAME, fmod_s)
SINTS(DEF_SAME, mod_s)
UINTS(DEF_SAME, mod_u)
NUMERIC(DEF_SAME, max)
NUMERIC(DEF_SAME, min)
NUMERIC(DEF_BOOL, eq)
BOOLS(DEF_BOOL, eq)
NUMERIC(DEF_BOOL, gt)
NUMERIC(DEF_BOOL, ge)
NUMERIC(DEF_BOOL, lt)
NUMERIC(DEF_BOOL, le)
BOOLS(DEF_BOOL, and)
BOOLS(DEF_BOOL, or)
BOOLS(DEF_BOOL, xor)
UINTS(DEF_SAME, shl)
UINTS(DEF_SAME, shr)
FLOATS(DEF_SAME, prelu_f)
SINTS(DEF_SAME, prelu_s)
UINTS(DEF_SAME, prelu_u)

/* Loop tables indexed by the inputs' dtype; NULL where the operator has no loop. */
static const loop_fn add_loops[N_DTYPES] = {NUMERIC(ENTRY, add)};
static const loop_fn sub_loops[N_DTYPES] = {NUMERIC(ENTRY, sub)};
static const loop_fn mul_loops[N_DTYPES] = {NUMERIC(ENTRY, mul)};
static const loop_fn div_loops[N_DTYPES] = {FLOATS(ENTRY, div_f) SINTS(ENTRY, div_s)
                                                UINTS(ENTRY, div_u)};
static const loop_fn pow_loops[N_DTYPES] = {FLOATS(ENTRY, pow_f)};
static const loop_fn fmod_loops[N_DTYPES] = {FLOATS(ENTRY, fmod_f) SINTS(ENTRY, fmod_s)
                                                 UINTS(ENTRY, mod_u)};
static const loop_fn mod_loops[N_DTYPES] = {SINTS(ENTRY, mod_s) UINTS(ENTRY, mod_u)};
static const loop_fn max_loops[N_DTYPES] = {NUMERIC(ENTRY, max)};
static const loop_fn min_loops[N_DTYPES] = {NUMERIC(ENTRY, min)};
static const loop_fn eq_loops[N_DTYPES] = {NUMERIC(ENTRY, eq) BOOLS(ENTRY, eq)};
static const loop_fn gt_loops[N_DTYPES] = {NUMERIC(ENTRY, gt)};
static const loop_fn ge_loops[N_DTYPES] = {NUMERIC(ENTRY, ge)};
static const loop_fn lt_loops[N_DTYPES] = {NUMERIC(ENTRY, lt)};
static const loop_fn le_loops[N_DTYPES] = {NUMERIC(ENTRY, le)};
static const loop_fn and_loops[N_DTYPES] = {BOOLS(ENTRY, and)};
static const loop_fn or_loops[N_DTYPES] = {BOOLS(ENTRY, or)};
static const loop_fn xor_loops[N_DTYPES] = {BOOLS(ENTRY, xor)};
static const loop_fn shl_loops[N_DTYPES] = {UINTS(ENTRY, shl)};
static const loop_fn shr_loops[N_DTYPES] = {UINTS(ENTRY, shr)};
static const loop_fn prelu_loops[N_DTYPES] = {FLOATS(ENTRY, prelu_f) SINTS(ENTRY, prelu_s)
                                                  UINTS(ENTRY, prelu_u)};

/* Where copies elements, so one loop per element size serves every type. The condition and
 * either value may be the fixed one; stride multipliers of 0 or 1 cover every case. */
#define WHERE_LOOP(bits)                                                                           \
    static void where_##bits(char *const *p, const bool *step, int64_t n, const void *aux)         \
    {                                                                                              \
        uint##bits##_t *o = (uint##bits##_t *)p[0];                                                \
        const uint8_t *c = (const uint8_t *)p[1];                                                  \
        const uint##bits##_t *x = (const uint##bits##_t *)p[2], *y = (const uint##bits##_t *)p[3]; \
        const int64_t sc = step[1], sx = step[2], sy = step[3];                                    \
        INDEPENDENT                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const uint##bits##_t xi = x[i * sx], yi = y[i * sy]; /* both read: no branch */        \
            o[i] = c[i * sc] ? xi : yi;                                                            \
        }                                                                                          \
    }
WHERE_LOOP(8)
WHERE_LOOP(16)
WHERE_LOOP(32)
WHERE_LOOP(64)

/* Pow with base and exponent of different types (opset 12+): rare enough for a generic
 * element-at-a-time loop. The result has the base's type; integer bases with integer
 * exponents are computed exactly (wrapping), others in double. */
typedef struct pow_types {
    cs_dtype base, exp;
} pow_types;

static bool is_int(cs_dtype t)
{
    return (CS__T_INT >> t) & 1;
}

static int64_t ipow(int64_t x, int64_t e)
{
    if (e < 0) return x == 1 ? 1 : x == -1 ? (e & 1 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    for (uint64_t k = (uint64_t)e; k; k >>= 1) {
        if (k & 1) r *= b;
        b *= b;
    }
    return (int64_t)r;
}

/* double to an integer base type (int32 or int64) without the undefined behaviour of an
 * out-of-range cast: NaN gives 0, the rest saturates. */
static int64_t sat_int(double v, cs_dtype t)
{
    double lo = t == CS_DTYPE_INT32 ? INT32_MIN : -9223372036854775808.0;
    double hi = t == CS_DTYPE_INT32 ? INT32_MAX : 9223372036854775807.0; /* rounds to 2^63 */
    if (v != v) return 0;
    if (v <= lo) return t == CS_DTYPE_INT32 ? INT32_MIN : INT64_MIN;
    if (v >= hi) return t == CS_DTYPE_INT32 ? INT32_MAX : INT64_MAX;
    return (int64_t)v;
}

static void pow_any(char *const *p, const bool *step, int64_t n, const void *aux)
{
    const pow_types *t = aux;
    int64_t so = (int64_t)cs_dtype_size(t->base);
    int64_t sa = step[1] ? so : 0, sb = step[2] ? (int64_t)cs_dtype_size(t->exp) : 0;
    cs_tensor o = {.dtype = t->base}, a = {.dtype = t->base}, b = {.dtype = t->exp};
    for (int64_t i = 0; i < n; i++) {
        o.data = p[0] + i * so;
        a.data = p[1] + i * sa;
        b.data = p[2] + i * sb;
        if (!is_int(t->base))
            cs_tensor_set_f64(&o, 0, pow(cs_tensor_get_f64(&a, 0), cs_tensor_get_f64(&b, 0)));
        else if (is_int(t->exp))
            cs_tensor_set_i64(&o, 0, ipow(cs_tensor_get_i64(&a, 0), cs_tensor_get_i64(&b, 0)));
        else
            cs_tensor_set_i64(
                &o, 0, sat_int(pow(cs_tensor_get_f64(&a, 0), cs_tensor_get_f64(&b, 0)), t->base));
    }
}

/* --- run -------------------------------------------------------------------------------- */

static loop_fn pick(const loop_fn *loops, cs_dtype t)
{
    return (unsigned)t < N_DTYPES ? loops[t] : NULL;
}

static cs_status no_loop(cs__kctx *ctx, cs_dtype t)
{
    return cs__node_error(ctx->err, ctx->node, CS_ERR_UNSUPPORTED, "no kernel for type %s",
                          cs_dtype_name(t));
}

static cs_status run_pair(cs__kctx *ctx, const cs_tensor *const *in, cs_tensor *out,
                          const loop_fn *loops)
{
    loop_fn fn = pick(loops, in[0]->dtype);
    if (!fn) return no_loop(ctx, in[0]->dtype);
    cs_tensor b;
    cs_status rc = cs__binary_legacy_view(ctx->node, in[0], in[1], &b, ctx->err);
    if (rc != CS_OK) return rc;
    const cs_tensor *ops[2] = {in[0], &b};
    iter_run(ctx, out, 2, ops, fn, NULL);
    return CS_OK;
}

#define PAIR_KERNEL(name, loops)                                                     \
    static cs_status run_##name(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                cs_tensor *out, int n_out)                           \
    {                                                                                \
        return run_pair(ctx, in, out, loops);                                        \
    }
PAIR_KERNEL(add, add_loops)
PAIR_KERNEL(sub, sub_loops)
PAIR_KERNEL(mul, mul_loops)
PAIR_KERNEL(div, div_loops)
PAIR_KERNEL(equal, eq_loops)
PAIR_KERNEL(greater, gt_loops)
PAIR_KERNEL(greater_equal, ge_loops)
PAIR_KERNEL(less, lt_loops)
PAIR_KERNEL(less_equal, le_loops)
PAIR_KERNEL(and, and_loops)
PAIR_KERNEL(or, or_loops)
PAIR_KERNEL(xor, xor_loops)
PAIR_KERNEL(prelu, prelu_loops)

static cs_status run_mod(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    bool c_fmod = cs__attr_int(ctx->node, "fmod", 0) == 1;
    return run_pair(ctx, in, out, c_fmod ? fmod_loops : mod_loops);
}

static cs_status run_bitshift(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                              int n_out)
{
    bool left = !strcmp(cs__attr_str(ctx->node, "direction", ""), "LEFT");
    return run_pair(ctx, in, out, left ? shl_loops : shr_loops);
}

static cs_status run_pow(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    if (in[0]->dtype == in[1]->dtype && pick(pow_loops, in[0]->dtype))
        return run_pair(ctx, in, out, pow_loops);
    pow_types t = {in[0]->dtype, in[1]->dtype};
    cs_tensor b;
    cs_status rc = cs__binary_legacy_view(ctx->node, in[0], in[1], &b, ctx->err);
    if (rc != CS_OK) return rc;
    const cs_tensor *ops[2] = {in[0], &b};
    iter_run(ctx, out, 2, ops, pow_any, &t);
    return CS_OK;
}

/* Folds the inputs pairwise into out. An input sharing out's buffer (an executor running
 * the node in place) goes first, before out is overwritten. */
static cs_status fold(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                      const loop_fn *loops)
{
    loop_fn fn = pick(loops, out->dtype);
    if (!fn) return no_loop(ctx, out->dtype);
    if (n_in == 1) {
        memmove(out->data, in[0]->data, (size_t)cs__numel(out) * cs_dtype_size(out->dtype));
        return CS_OK;
    }
    int first = 0;
    for (int k = 0; k < n_in; k++)
        if (in[k]->data == out->data) first = k;
    const cs_tensor *ops[2] = {in[first], NULL};
    for (int k = 0; k < n_in; k++) {
        if (k == first) continue;
        ops[1] = in[k];
        iter_run(ctx, out, 2, ops, fn, NULL);
        ops[0] = out;
    }
    return CS_OK;
}

static cs_status run_max(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    return fold(ctx, in, n_in, out, max_loops);
}

static cs_status run_min(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    return fold(ctx, in, n_in, out, min_loops);
}

static cs_status run_sum(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    return fold(ctx, in, n_in, out, add_loops);
}

/* Mean divides the sum by the count (rather than multiplying by its reciprocal) to round
 * as numpy's reference does. */
static cs_status run_mean(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    cs_status rc = fold(ctx, in, n_in, out, add_loops);
    if (rc != CS_OK || n_in == 1) return rc;
    loop_fn fn = pick(div_loops, out->dtype);
    if (!fn) return no_loop(ctx, out->dtype);
    double storage; /* room and alignment for one element of any type */
    cs_tensor count = {.dtype = out->dtype, .rank = 0, .data = &storage};
    cs_tensor_set_f64(&count, 0, n_in);
    const cs_tensor *ops[2] = {out, &count};
    iter_run(ctx, out, 2, ops, fn, NULL);
    return CS_OK;
}

static cs_status run_where(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    loop_fn fn;
    switch (cs_dtype_size(out->dtype)) {
    case 1: fn = where_8; break;
    case 2: fn = where_16; break;
    case 4: fn = where_32; break;
    case 8: fn = where_64; break;
    default: return no_loop(ctx, out->dtype);
    }
    iter_run(ctx, out, 3, in, fn, NULL);
    return CS_OK;
}

#define T_POW_BASE (CS__T_FLOAT | CS__T(INT32) | CS__T(INT64))

const cs__kernel cs__kernels_binary[] = {
    {"Add", NULL, 1, CS__T_NUMERIC, 0, run_add, NULL},
    {"Sub", NULL, 1, CS__T_NUMERIC, 0, run_sub, NULL},
    {"Mul", NULL, 1, CS__T_NUMERIC, 0, run_mul, NULL},
    {"Div", NULL, 1, CS__T_NUMERIC, 0, run_div, NULL},
    {"Pow", NULL, 1, T_POW_BASE, 0, run_pow, NULL},
    {"Mod", NULL, 10, CS__T_NUMERIC, 0, run_mod, NULL},
    {"BitShift", NULL, 11, CS__T_UINT, 0, run_bitshift, NULL},
    {"And", NULL, 1, CS__T(BOOL), 0, run_and, NULL},
    {"Or", NULL, 1, CS__T(BOOL), 0, run_or, NULL},
    {"Xor", NULL, 1, CS__T(BOOL), 0, run_xor, NULL},
    {"Equal", NULL, 1, CS__T_ALL, 0, run_equal, NULL},
    {"Greater", NULL, 1, CS__T_NUMERIC, 0, run_greater, NULL},
    {"GreaterOrEqual", NULL, 12, CS__T_NUMERIC, 0, run_greater_equal, NULL},
    {"Less", NULL, 1, CS__T_NUMERIC, 0, run_less, NULL},
    {"LessOrEqual", NULL, 12, CS__T_NUMERIC, 0, run_less_equal, NULL},
    {"Max", NULL, 1, CS__T_NUMERIC, 0, run_max, NULL},
    {"Min", NULL, 1, CS__T_NUMERIC, 0, run_min, NULL},
    {"Mean", NULL, 1, CS__T_FLOAT, 0, run_mean, NULL},
    {"Sum", NULL, 1, CS__T_FLOAT, 0, run_sum, NULL},
    {"Where", NULL, 9, CS__T_ALL, 1, run_where, NULL},
    {"PRelu", NULL, 1, CS__T_FLOAT | CS__T_INT, 0, run_prelu, NULL},
    {0},
};

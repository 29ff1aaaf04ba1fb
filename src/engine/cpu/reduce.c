/*
 * reduce.c - CPU kernels for reductions along axes: the Reduce* family, ArgMax/ArgMin,
 * CumSum and TopK; their schemas (shape and type inference) are in ops/reduce.c.
 *
 * All Reduce* operators share one engine. The input's dims are split into runs of kept
 * and reduced axes (size-1 dims dropped, adjacent runs of the same kind merged), which
 * leaves one of two shapes for the innermost loop:
 *  - the last run is kept ("inner" contiguous outputs): every reduced position adds a
 *    contiguous row of up to BLOCK elements into a stack accumulator, a loop the compiler
 *    vectorises;
 *  - the last run is reduced: each output folds contiguous runs of input through eight
 *    independent lanes, which also vectorise.
 * Further runs on either side are walked with an odometer over strides, so any set of
 * axes works without a transpose or scratch memory. An operator is four small macros
 * (init, map, combine, finish) stamped into one function per element type (REDUCE_LOOPS,
 * a row for each operator of CS__REDUCE_OPS in ops/reduce.h); float32 accumulates in
 * float32, half types in float, integers exactly in 64 bits.
 *
 * ArgMax/ArgMin, CumSum and TopK work along one axis as outer x length x inner.
 */
#include "engine/kernel.h"
#include "engine/ops/reduce.h"

#include <stdint.h>
#include <string.h>
#include <tgmath.h>

/* Outputs handled per work item when the innermost run is kept; stack arrays of this
 * many accumulators stay in L1. */
#define BLOCK 256

/* Elements of input worth one parallel task. */
#define GRAIN 32768

#define N_DTYPES (CS_DTYPE_BFLOAT16 + 1)

/* --- element types ----------------------------------------------------------------------
 * tag, dtype, storage type, value type (what comparisons see), exact accumulator,
 * floating accumulator, load, store, lowest and highest value. */
#define LD_NAT(x)     (x)
#define ST_NAT(T, v)  ((T)(v))
#define ST_F16(T, v)  cs__f32_to_f16((float)(v))
#define ST_BF16(T, v) cs__f32_to_bf16((float)(v))

#define FOR_TYPES(X, ...)                                                                         \
    X(f32, FLOAT32, float, float, float, float, LD_NAT, ST_NAT, -INFINITY, INFINITY, __VA_ARGS__) \
    X(f64, FLOAT64, double, double, double, double, LD_NAT, ST_NAT, -INFINITY, INFINITY,          \
      __VA_ARGS__)                                                                                \
    X(f16, FLOAT16, uint16_t, float, float, float, cs__f16_to_f32, ST_F16, -INFINITY, INFINITY,   \
      __VA_ARGS__)                                                                                \
    X(bf16, BFLOAT16, uint16_t, float, float, float, cs__bf16_to_f32, ST_BF16, -INFINITY,         \
      INFINITY, __VA_ARGS__)                                                                      \
    X(i8, INT8, int8_t, int8_t, int64_t, double, LD_NAT, ST_NAT, INT8_MIN, INT8_MAX, __VA_ARGS__) \
    X(i16, INT16, int16_t, int16_t, int64_t, double, LD_NAT, ST_NAT, INT16_MIN, INT16_MAX,        \
      __VA_ARGS__)                                                                                \
    X(i32, INT32, int32_t, int32_t, int64_t, double, LD_NAT, ST_NAT, INT32_MIN, INT32_MAX,        \
      __VA_ARGS__)                                                                                \
    X(i64, INT64, int64_t, int64_t, int64_t, double, LD_NAT, ST_NAT, INT64_MIN, INT64_MAX,        \
      __VA_ARGS__)                                                                                \
    X(u8, UINT8, uint8_t, uint8_t, uint64_t, double, LD_NAT, ST_NAT, 0, UINT8_MAX, __VA_ARGS__)   \
    X(u16, UINT16, uint16_t, uint16_t, uint64_t, double, LD_NAT, ST_NAT, 0, UINT16_MAX,           \
      __VA_ARGS__)                                                                                \
    X(u32, UINT32, uint32_t, uint32_t, uint64_t, double, LD_NAT, ST_NAT, 0, UINT32_MAX,           \
      __VA_ARGS__)                                                                                \
    X(u64, UINT64, uint64_t, uint64_t, uint64_t, double, LD_NAT, ST_NAT, 0, UINT64_MAX, __VA_ARGS__)

/* One designated initialiser of a per-dtype function table. */
#define FN_ENTRY(tag, DT, T, VT, ACC, FACC, LD, ST, LO, HI, prefix) \
    [CS_DTYPE_##DT] = prefix##_##tag,

typedef void (*range_fn)(void *arg, int64_t begin, int64_t end);

/* --- index walking --------------------------------------------------------------------- */

/* An odometer over a multi-index whose position is an element offset. */
typedef struct odo {
    int n;
    int64_t dim[CS_MAX_RANK], stride[CS_MAX_RANK], idx[CS_MAX_RANK];
    int64_t off;
} odo;

static void odo_seek(odo *o, int64_t i)
{
    o->off = 0;
    for (int d = o->n - 1; d >= 0; d--) {
        o->idx[d] = i % o->dim[d];
        i /= o->dim[d];
        o->off += o->idx[d] * o->stride[d];
    }
}

static inline void odo_next(odo *o)
{
    for (int d = o->n - 1; d >= 0; d--) {
        o->off += o->stride[d];
        if (++o->idx[d] < o->dim[d]) return;
        o->off -= o->idx[d] * o->stride[d];
        o->idx[d] = 0;
    }
}

/* Sizes around one axis: outer x len x inner. */
static void split_at(const cs_tensor *t, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= t->dims[d];
    for (int d = axis + 1; d < t->rank; d++) *inner *= t->dims[d];
    *len = t->dims[axis];
}

static int64_t min_chunk(int64_t work_per_item)
{
    return work_per_item >= GRAIN ? 1 : GRAIN / (work_per_item > 0 ? work_per_item : 1);
}

/* --- the reduction engine -------------------------------------------------------------- */

typedef struct rplan {
    odo kept;      /* kept runs except a trailing one; position = input offset */
    odo red;       /* reduced runs except a trailing one */
    int64_t outer; /* positions of `kept` */
    int64_t nred;  /* positions of `red` */
    int64_t inner; /* length of the trailing kept run, 1 when the last run is reduced */
    int64_t run;   /* length of the trailing reduced run when inner == 1 */
    int64_t count; /* input elements per output */
    const void *x;
    void *y;
} rplan;

static void plan_build(rplan *p, const cs_tensor *x, const bool *mask, void *y)
{
    int64_t strides[CS_MAX_RANK], gdim[CS_MAX_RANK], gstride[CS_MAX_RANK];
    bool gred[CS_MAX_RANK];
    int g = 0;
    int64_t n_out = 1;
    cs__strides(x, strides);
    memset(p, 0, sizeof *p);
    p->x = x->data;
    p->y = y;
    p->count = 1;
    for (int d = 0; d < x->rank; d++) {
        if (mask[d])
            p->count *= x->dims[d];
        else
            n_out *= x->dims[d];
    }
    p->inner = p->run = p->nred = 1;
    if (p->count == 0 || n_out == 0) {
        /* Nothing to read: each output is the finished identity. */
        p->outer = p->count ? 0 : n_out;
        p->run = p->nred = 0;
        return;
    }
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        if (g && gred[g - 1] == mask[d]) {
            gdim[g - 1] *= x->dims[d];
            gstride[g - 1] = strides[d];
        } else {
            gdim[g] = x->dims[d];
            gstride[g] = strides[d];
            gred[g] = mask[d];
            g++;
        }
    }
    if (g && !gred[g - 1])
        p->inner = gdim[--g];
    else if (g)
        p->run = gdim[--g];
    p->outer = 1;
    for (int i = 0; i < g; i++) {
        odo *o = gred[i] ? &p->red : &p->kept;
        o->dim[o->n] = gdim[i];
        o->stride[o->n] = gstride[i];
        o->n++;
        if (gred[i])
            p->nred *= gdim[i];
        else
            p->outer *= gdim[i];
    }
}

/* Operator pieces. MAP turns an element into what COMBINE folds; `sh` is the shift that
 * ReduceLogSumExp subtracts (0 elsewhere). Max and min skip NaNs, like fmax. */
#define INIT_0(lo, hi)   0
#define INIT_1(lo, hi)   1
#define INIT_LO(lo, hi)  (lo)
#define INIT_HI(lo, hi)  (hi)
#define M_ID(x, sh)      (x)
#define M_ABS(x, sh)     ((x) > 0 ? (x) : -(x))
#define M_SQ(x, sh)      ((x) * (x))
#define M_EXP(x, sh)     exp((x) - (sh))
#define C_ADD(a, b)      ((a) + (b))
#define C_MUL(a, b)      ((a) * (b))
#define C_MAX(a, b)      ((b) > (a) ? (b) : (a))
#define C_MIN(a, b)      ((b) < (a) ? (b) : (a))
#define F_ID(a, n, sh)   (a)
#define F_SQRT(a, n, sh) sqrt(a)
#define F_LOG(a, n, sh)  log(a)
#define F_LSE(a, n, sh)  (log(a) + (sh))
#define F_MEAN(a, n, sh) ((a) / (n))
#define SH_NONE(v)       0
#define SH_FINITE(v)     (isfinite(v) ? (v) : 0)
#define SEL_ACC(a, f)    a
#define SEL_FACC(a, f)   f

/* One reduction for one type; a range of work items is a range of outputs when the last
 * run is reduced, else of (output row, block) pairs. */
#define DEFINE_REDUCE(fn, T, ACC, LD, ST, INIT, MAP, COMB, FIN, SHIFT)                 \
    static void fn(void *arg, int64_t begin, int64_t end)                              \
    {                                                                                  \
        const rplan *p = arg;                                                          \
        const T *x = p->x;                                                             \
        T *y = p->y;                                                                   \
        /* Integer means of an empty set give 0 rather than divide by zero. */         \
        const ACC cnt = p->count || (ACC)0.5 != 0 ? (ACC)p->count : (ACC)1;            \
        (void)cnt;                                                                     \
        if (p->inner == 1) {                                                           \
            odo ko = p->kept;                                                          \
            odo_seek(&ko, begin);                                                      \
            for (int64_t o = begin; o < end; o++, odo_next(&ko)) {                     \
                const ACC sh = SHIFT((ACC)LD(y[o]));                                   \
                (void)sh;                                                              \
                ACC acc = INIT;                                                        \
                odo ro = p->red;                                                       \
                odo_seek(&ro, 0);                                                      \
                for (int64_t r = 0; r < p->nred; r++, odo_next(&ro)) {                 \
                    const T *row = x + ko.off + ro.off;                                \
                    ACC lane[8];                                                       \
                    int64_t i = 0;                                                     \
                    for (int l = 0; l < 8; l++) lane[l] = INIT;                        \
                    for (; i + 8 <= p->run; i += 8)                                    \
                        for (int l = 0; l < 8; l++)                                    \
                            lane[l] = COMB(lane[l], MAP((ACC)LD(row[i + l]), sh));     \
                    for (; i < p->run; i++) acc = COMB(acc, MAP((ACC)LD(row[i]), sh)); \
                    for (int l = 0; l < 8; l++) acc = COMB(acc, lane[l]);              \
                }                                                                      \
                y[o] = ST(T, FIN(acc, cnt, sh));                                       \
            }                                                                          \
            return;                                                                    \
        }                                                                              \
        const int64_t nb = (p->inner + BLOCK - 1) / BLOCK;                             \
        for (int64_t item = begin; item < end; item++) {                               \
            const int64_t o = item / nb, j0 = item % nb * BLOCK;                       \
            const int64_t m = p->inner - j0 < BLOCK ? p->inner - j0 : BLOCK;           \
            T *yo = y + o * p->inner + j0;                                             \
            ACC acc[BLOCK], sh[BLOCK];                                                 \
            (void)sh;                                                                  \
            odo ko = p->kept, ro = p->red;                                             \
            odo_seek(&ko, o);                                                          \
            odo_seek(&ro, 0);                                                          \
            for (int64_t j = 0; j < m; j++) {                                          \
                acc[j] = INIT;                                                         \
                sh[j] = SHIFT((ACC)LD(yo[j]));                                         \
            }                                                                          \
            for (int64_t r = 0; r < p->nred; r++, odo_next(&ro)) {                     \
                const T *row = x + ko.off + ro.off + j0;                               \
                for (int64_t j = 0; j < m; j++)                                        \
                    acc[j] = COMB(acc[j], MAP((ACC)LD(row[j]), sh[j]));                \
            }                                                                          \
            for (int64_t j = 0; j < m; j++) yo[j] = ST(T, FIN(acc[j], cnt, sh[j]));    \
        }                                                                              \
    }

#define STAMP_REDUCE(tag, DT, T, VT, ACC, FACC, LD, ST, LO, HI, name, SEL, INIT, MAP, COMB, FIN, \
                     SHIFT)                                                                      \
    DEFINE_REDUCE(name##_##tag, T, SEL(ACC, FACC), LD, ST, INIT(LO, HI), MAP, COMB, FIN, SHIFT)

typedef struct reduce_op {
    const range_fn *pre; /* a first pass into the output (ReduceLogSumExp's max), or NULL */
    const range_fn *fns;
} reduce_op;

/* C name (one row for each of CS__REDUCE_OPS), accumulator, init, map, combine, finish,
 * shift, first pass (an earlier row's functions, or NULL) */
#define REDUCE_LOOPS(X)                                           \
    X(sum, SEL_ACC, INIT_0, M_ID, C_ADD, F_ID, SH_NONE, NULL)     \
    X(mean, SEL_ACC, INIT_0, M_ID, C_ADD, F_MEAN, SH_NONE, NULL)  \
    X(prod, SEL_ACC, INIT_1, M_ID, C_MUL, F_ID, SH_NONE, NULL)    \
    X(max, SEL_ACC, INIT_LO, M_ID, C_MAX, F_ID, SH_NONE, NULL)    \
    X(min, SEL_ACC, INIT_HI, M_ID, C_MIN, F_ID, SH_NONE, NULL)    \
    X(l1, SEL_ACC, INIT_0, M_ABS, C_ADD, F_ID, SH_NONE, NULL)     \
    X(l2, SEL_ACC, INIT_0, M_SQ, C_ADD, F_SQRT, SH_NONE, NULL)    \
    X(sumsq, SEL_ACC, INIT_0, M_SQ, C_ADD, F_ID, SH_NONE, NULL)   \
    X(logsum, SEL_ACC, INIT_0, M_ID, C_ADD, F_LOG, SH_NONE, NULL) \
    X(lse, SEL_FACC, INIT_0, M_EXP, C_ADD, F_LSE, SH_FINITE, max_fns)

#define STAMP_OP(name, SEL, INIT, MAP, COMB, FIN, SHIFT, PRE)                 \
    FOR_TYPES(STAMP_REDUCE, name, SEL, INIT, MAP, COMB, FIN, SHIFT)           \
    static const range_fn name##_fns[N_DTYPES] = {FOR_TYPES(FN_ENTRY, name)}; \
    static const reduce_op name##_op = {PRE, name##_fns};
REDUCE_LOOPS(STAMP_OP)

static void run_pass(cs__kctx *ctx, rplan *p, range_fn fn)
{
    if (p->inner == 1) {
        cs__parallel_for(ctx, p->outer, min_chunk(p->count), fn, p);
    } else {
        const int64_t nb = (p->inner + BLOCK - 1) / BLOCK;
        cs__parallel_for(ctx, p->outer * nb, min_chunk(p->count * BLOCK), fn, p);
    }
}

static cs_status reduce_run(const reduce_op *op, int axes_input_since, cs__kctx *ctx,
                            const cs_tensor *const *in, int n_in, cs_tensor *out)
{
    bool mask[CS_MAX_RANK], noop;
    cs_status rc = cs__reduce_axes(ctx->node, axes_input_since, in, n_in, mask, &noop, ctx->err);
    if (rc == CS__DEFER)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "axes unknown at run time");
    if (rc != CS_OK) return rc;
    const range_fn fn = op->fns[in[0]->dtype];
    if (!fn)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_UNSUPPORTED, "%s input is not supported",
                              cs_dtype_name(in[0]->dtype));
    if (noop) {
        const size_t bytes = (size_t)cs__numel(in[0]) * cs_dtype_size(in[0]->dtype);
        if (bytes) memcpy(out->data, in[0]->data, bytes);
        return CS_OK;
    }
    rplan p;
    plan_build(&p, in[0], mask, out->data);
    if (op->pre) run_pass(ctx, &p, op->pre[in[0]->dtype]);
    run_pass(ctx, &p, fn);
    return CS_OK;
}

#define REDUCE_KERNEL(Op, name, axes_input_since, types)                             \
    static cs_status name##_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                cs_tensor *out, int n_out)                           \
    {                                                                                \
        return reduce_run(&name##_op, axes_input_since, ctx, in, n_in, out);         \
    }
CS__REDUCE_OPS(REDUCE_KERNEL)

/* --- ArgMax / ArgMin ------------------------------------------------------------------- */

typedef struct argplan {
    int64_t outer, len, inner;
    int mode; /* 0: max, 1: max keeping the last, 2: min, 3: min keeping the last */
    const void *x;
    int64_t *y;
} argplan;

/* Work items are (outer, block of inner) pairs; each keeps a block of running bests. */
#define DEFINE_ARG(tag, DT, T, VT, ACC, FACC, LD, ST, LO, HI, unused)        \
    static void arg_##tag(void *arg, int64_t begin, int64_t end)             \
    {                                                                        \
        const argplan *p = arg;                                              \
        const int64_t nb = (p->inner + BLOCK - 1) / BLOCK;                   \
        for (int64_t item = begin; item < end; item++) {                     \
            const int64_t o = item / nb, j0 = item % nb * BLOCK;             \
            const int64_t m = p->inner - j0 < BLOCK ? p->inner - j0 : BLOCK; \
            const T *x = (const T *)p->x + o * p->len * p->inner + j0;       \
            VT best[BLOCK];                                                  \
            int64_t *yo = p->y + o * p->inner + j0;                          \
            for (int64_t j = 0; j < m; j++) {                                \
                best[j] = LD(x[j]);                                          \
                yo[j] = 0;                                                   \
            }                                                                \
            for (int64_t l = 1; l < p->len; l++) {                           \
                const T *row = x + l * p->inner;                             \
                switch (p->mode) {                                           \
                case 0: ARG_ROW(>, VT, LD); break;                           \
                case 1: ARG_ROW(>=, VT, LD); break;                          \
                case 2: ARG_ROW(<, VT, LD); break;                           \
                default: ARG_ROW(<=, VT, LD); break;                         \
                }                                                            \
            }                                                                \
        }                                                                    \
    }
#define ARG_ROW(cmp, VT, LD)          \
    for (int64_t j = 0; j < m; j++) { \
        const VT v = LD(row[j]);      \
        if (v cmp best[j]) {          \
            best[j] = v;              \
            yo[j] = l;                \
        }                             \
    }
FOR_TYPES(DEFINE_ARG, )
static const range_fn arg_fns[N_DTYPES] = {FOR_TYPES(FN_ENTRY, arg)};

static cs_status arg_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    const cs__node *n = ctx->node;
    int axis;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", 0), in[0]->rank, false, &axis, ctx->err);
    if (rc != CS_OK) return rc;
    const range_fn fn = arg_fns[in[0]->dtype];
    if (!fn)
        return cs__node_error(ctx->err, n, CS_ERR_UNSUPPORTED, "%s input is not supported",
                              cs_dtype_name(in[0]->dtype));
    argplan p = {.x = in[0]->data, .y = out->data};
    split_at(in[0], axis, &p.outer, &p.len, &p.inner);
    p.mode =
        (strcmp(n->op_type, "ArgMin") ? 0 : 2) + (cs__attr_int(n, "select_last_index", 0) ? 1 : 0);
    if (p.len == 0) return CS_OK;
    const int64_t nb = (p.inner + BLOCK - 1) / BLOCK;
    cs__parallel_for(ctx, p.outer * nb, min_chunk(p.len * BLOCK), fn, &p);
    return CS_OK;
}

/* --- CumSum ---------------------------------------------------------------------------- */

typedef struct cumplan {
    int64_t outer, len, inner;
    bool exclusive, reverse;
    const void *x;
    void *y;
} cumplan;

/* Sums run in the exact accumulator (float for float32), in the order of the axis. */
#define DEFINE_CUMSUM(tag, DT, T, VT, ACC, FACC, LD, ST, LO, HI, unused)     \
    static void cumsum_##tag(void *arg, int64_t begin, int64_t end)          \
    {                                                                        \
        const cumplan *p = arg;                                              \
        const int64_t nb = (p->inner + BLOCK - 1) / BLOCK;                   \
        for (int64_t item = begin; item < end; item++) {                     \
            const int64_t o = item / nb, j0 = item % nb * BLOCK;             \
            const int64_t m = p->inner - j0 < BLOCK ? p->inner - j0 : BLOCK; \
            const int64_t base = o * p->len * p->inner + j0;                 \
            ACC acc[BLOCK];                                                  \
            for (int64_t j = 0; j < m; j++) acc[j] = 0;                      \
            for (int64_t k = 0; k < p->len; k++) {                           \
                const int64_t l = p->reverse ? p->len - 1 - k : k;           \
                const T *xr = (const T *)p->x + base + l * p->inner;         \
                T *yr = (T *)p->y + base + l * p->inner;                     \
                if (p->exclusive) {                                          \
                    for (int64_t j = 0; j < m; j++) {                        \
                        const ACC v = (ACC)LD(xr[j]);                        \
                        yr[j] = ST(T, acc[j]);                               \
                        acc[j] += v;                                         \
                    }                                                        \
                } else {                                                     \
                    for (int64_t j = 0; j < m; j++) {                        \
                        acc[j] += (ACC)LD(xr[j]);                            \
                        yr[j] = ST(T, acc[j]);                               \
                    }                                                        \
                }                                                            \
            }                                                                \
        }                                                                    \
    }
FOR_TYPES(DEFINE_CUMSUM, )
static const range_fn cumsum_fns[N_DTYPES] = {FOR_TYPES(FN_ENTRY, cumsum)};

static cs_status cumsum_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    const cs__node *n = ctx->node;
    int axis;
    cs_status rc = cs__cumsum_axis(n, in, n_in, &axis, ctx->err);
    if (rc != CS_OK) return rc;
    const range_fn fn = cumsum_fns[in[0]->dtype];
    if (!fn)
        return cs__node_error(ctx->err, n, CS_ERR_UNSUPPORTED, "%s input is not supported",
                              cs_dtype_name(in[0]->dtype));
    cumplan p = {.x = in[0]->data, .y = out->data};
    split_at(in[0], axis, &p.outer, &p.len, &p.inner);
    p.exclusive = cs__attr_int(n, "exclusive", 0) != 0;
    p.reverse = cs__attr_int(n, "reverse", 0) != 0;
    const int64_t nb = (p.inner + BLOCK - 1) / BLOCK;
    cs__parallel_for(ctx, p.outer * nb, min_chunk(p.len * BLOCK), fn, &p);
    return CS_OK;
}

/* --- TopK ------------------------------------------------------------------------------ */

typedef struct topkplan {
    int64_t outer, len, inner, k;
    bool largest;
    const void *x;
    void *values;
    int64_t *indices;
} topkplan;

/* Each slice along the axis keeps a heap of its K best indices, worst at the root, built
 * in place in the Indices output (stride `inner`); then a heap sort leaves them best
 * first. "Better" means larger (smaller) and, between equal values, the lower index, the
 * stable order numpy gives. O(len log K) per slice, no scratch. */
#define DEFINE_TOPK(tag, DT, T, VT, ACC, FACC, LD, ST, LO, HI, unused)                         \
    static bool worse_##tag(const topkplan *p, const T *x, int64_t a, int64_t b)               \
    {                                                                                          \
        const VT va = LD(x[a * p->inner]), vb = LD(x[b * p->inner]);                           \
        if (va == vb) return a > b;                                                            \
        return p->largest ? va < vb : va > vb;                                                 \
    }                                                                                          \
    static void sift_##tag(const topkplan *p, const T *x, int64_t *h, int64_t i, int64_t size) \
    {                                                                                          \
        const int64_t s = p->inner;                                                            \
        for (;;) {                                                                             \
            int64_t c = 2 * i + 1;                                                             \
            if (c >= size) return;                                                             \
            if (c + 1 < size && worse_##tag(p, x, h[(c + 1) * s], h[c * s])) c++;              \
            if (!worse_##tag(p, x, h[c * s], h[i * s])) return;                                \
            const int64_t t = h[c * s];                                                        \
            h[c * s] = h[i * s];                                                               \
            h[i * s] = t;                                                                      \
            i = c;                                                                             \
        }                                                                                      \
    }                                                                                          \
    static void topk_##tag(void *arg, int64_t begin, int64_t end)                              \
    {                                                                                          \
        const topkplan *p = arg;                                                               \
        const int64_t s = p->inner, k = p->k;                                                  \
        for (int64_t item = begin; item < end; item++) {                                       \
            const int64_t o = item / s, j = item % s;                                          \
            const T *x = (const T *)p->x + o * p->len * s + j;                                 \
            int64_t *h = p->indices + o * k * s + j;                                           \
            T *v = (T *)p->values + o * k * s + j;                                             \
            for (int64_t i = 0; i < p->len; i++) {                                             \
                if (i < k) {                                                                   \
                    int64_t c = i;                                                             \
                    h[c * s] = i;                                                              \
                    while (c > 0 && worse_##tag(p, x, h[c * s], h[(c - 1) / 2 * s])) {         \
                        const int64_t t = h[c * s];                                            \
                        h[c * s] = h[(c - 1) / 2 * s];                                         \
                        h[(c - 1) / 2 * s] = t;                                                \
                        c = (c - 1) / 2;                                                       \
                    }                                                                          \
                } else if (worse_##tag(p, x, h[0], i)) {                                       \
                    h[0] = i;                                                                  \
                    sift_##tag(p, x, h, 0, k);                                                 \
                }                                                                              \
            }                                                                                  \
            for (int64_t e = k - 1; e > 0; e--) {                                              \
                const int64_t t = h[e * s];                                                    \
                h[e * s] = h[0];                                                               \
                h[0] = t;                                                                      \
                sift_##tag(p, x, h, 0, e);                                                     \
            }                                                                                  \
            for (int64_t i = 0; i < k; i++) v[i * s] = x[h[i * s] * s];                        \
        }                                                                                      \
    }
FOR_TYPES(DEFINE_TOPK, )
static const range_fn topk_fns[N_DTYPES] = {FOR_TYPES(FN_ENTRY, topk)};

static cs_status topk_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    int axis;
    topkplan p = {.x = in[0]->data, .values = out[0].data, .indices = out[1].data};
    cs_status rc = cs__topk_params(ctx->node, in, n_in, &axis, &p.k, ctx->err);
    if (rc != CS_OK) return rc;
    const range_fn fn = topk_fns[in[0]->dtype];
    if (!fn)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_UNSUPPORTED, "%s input is not supported",
                              cs_dtype_name(in[0]->dtype));
    split_at(in[0], axis, &p.outer, &p.len, &p.inner);
    p.largest = cs__attr_int(ctx->node, "largest", 1) != 0;
    if (p.k == 0) return CS_OK;
    cs__parallel_for(ctx, p.outer * p.inner, min_chunk(p.len * 8), fn, &p);
    return CS_OK;
}

#define REDUCE_KERNEL_ENTRY(Op, name, axes_input_since, types) \
    {#Op, NULL, 1, types, 0, name##_run, NULL},

/* clang-format off */
const cs__kernel cs__kernels_reduce[] = {
    CS__REDUCE_OPS(REDUCE_KERNEL_ENTRY)
    {"ArgMax", NULL, 1, CS__T_NUMERIC, 0, arg_run, NULL},
    {"ArgMin", NULL, 1, CS__T_NUMERIC, 0, arg_run, NULL},
    {"CumSum", NULL, 11, CS__T_REDUCE, 0, cumsum_run, NULL},
    {"TopK", NULL, 1, CS__T_NUMERIC, 0, topk_run, NULL},
    {0},
};
/* clang-format on */

/*
 * norm.c - CPU kernels for normalisations: Softmax, LogSoftmax, Hardmax,
 * BatchNormalization, InstanceNormalization, LayerNormalization, LRN and
 * MeanVarianceNormalization; their schemas (shape and type inference) are in ops/norm.c.
 *
 * They all take statistics over part of a tensor and rescale it. Statistics accumulate
 * in double and variances take two passes (mean, then squared deviations), so float32
 * results stay within a few ulps of a float64 reference even over long rows; the
 * elementwise passes run in float for float32 (and for the half types, converted), double
 * for float64. Loops are stamped per element type from one macro each; per-row work goes
 * through small per-type helpers (row sums, affine rows) picked once per node. Softmax over
 * float32 rows, attention's and classifiers' case, takes a vectorized path: exp from
 * vmath.h, sixteen lanes wide for AVX-512 where the CPU has it (isa.h).
 */
#include "engine/cpu/isa.h"
#include "engine/kernel.h"
#include "engine/ops/norm.h"

#include <stdint.h>
#include <string.h>
#include <tgmath.h>

/* Last: it sets, for the rest of this file, the float options its math is compiled with. */
#include "engine/cpu/vmath.h"

/* Columns handled per work item when the normalised axis is not the innermost; stack
 * arrays of this many statistics stay in L1. */
#define BLOCK 256

/* Elements worth one parallel task. */
#define GRAIN 32768

#define N_DTYPES (CS_DTYPE_BFLOAT16 + 1)

#define LD_NAT(x)     (x)
#define ST_NAT(T, v)  ((T)(v))
#define ST_F16(T, v)  cs__f32_to_f16((float)(v))
#define ST_BF16(T, v) cs__f32_to_bf16((float)(v))

/* tag, dtype, storage type, compute type, load, store, whether the compute type is the
 * storage type (so outputs can hold intermediates). */
#define FOR_FLOATS(X)                                           \
    X(f32, FLOAT32, float, float, LD_NAT, ST_NAT, 1)            \
    X(f64, FLOAT64, double, double, LD_NAT, ST_NAT, 1)          \
    X(f16, FLOAT16, uint16_t, float, cs__f16_to_f32, ST_F16, 0) \
    X(bf16, BFLOAT16, uint16_t, float, cs__bf16_to_f32, ST_BF16, 0)

static int64_t min_chunk(int64_t work_per_item)
{
    return work_per_item >= GRAIN ? 1 : GRAIN / (work_per_item > 0 ? work_per_item : 1);
}

static cs_status unsupported_type(cs_error *err, const cs__node *n, cs_dtype t)
{
    return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "%s input is not supported",
                          cs_dtype_name(t));
}

/* --- per-type row helpers --------------------------------------------------------------- */

typedef struct row_ops {
    double (*sum)(const void *x, int64_t n);
    double (*sqdev)(const void *x, int64_t n, double mean); /* sum of (x - mean)^2 */
    /* y = (x - m) * a + b */
    void (*affine)(const void *x, void *y, int64_t n, double m, double a, double b);
    /* y = (x - m) * a * w[i] + (b ? b[i] : 0), with w and b of the same type as x */
    void (*affine_wb)(const void *x, void *y, int64_t n, double m, double a, const void *w,
                      const void *b);
} row_ops;

/* x - mean in double: a mean rounded to float would cost up to half an ulp of the mean,
 * which is a large relative error on small deviations when |mean| >> std. */
#define CENTER(x, m, CT) ((CT)((double)(x) - (m)))

/* Eight lanes let the compiler vectorise the double sums without reassociating. */
#define DEFINE_ROWS(tag, DT, T, CT, LD, ST, INPLACE)                                               \
    static double sum_##tag(const void *xv, int64_t n)                                             \
    {                                                                                              \
        const T *x = xv;                                                                           \
        double lane[8] = {0}, s = 0;                                                               \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int l = 0; l < 8; l++) lane[l] += (double)LD(x[i + l]);                           \
        for (; i < n; i++) s += (double)LD(x[i]);                                                  \
        for (int l = 0; l < 8; l++) s += lane[l];                                                  \
        return s;                                                                                  \
    }                                                                                              \
    static double sqdev_##tag(const void *xv, int64_t n, double mean)                              \
    {                                                                                              \
        const T *x = xv;                                                                           \
        double lane[8] = {0}, s = 0;                                                               \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int l = 0; l < 8; l++) {                                                          \
                const double d = (double)LD(x[i + l]) - mean;                                      \
                lane[l] += d * d;                                                                  \
            }                                                                                      \
        for (; i < n; i++) {                                                                       \
            const double d = (double)LD(x[i]) - mean;                                              \
            s += d * d;                                                                            \
        }                                                                                          \
        for (int l = 0; l < 8; l++) s += lane[l];                                                  \
        return s;                                                                                  \
    }                                                                                              \
    static void affine_##tag(const void *xv, void *yv, int64_t n, double m, double a, double b)    \
    {                                                                                              \
        const T *x = xv;                                                                           \
        T *y = yv;                                                                                 \
        const CT ac = (CT)a, bc = (CT)b;                                                           \
        for (int64_t i = 0; i < n; i++) y[i] = ST(T, CENTER(LD(x[i]), m, CT) * ac + bc);           \
    }                                                                                              \
    static void affine_wb_##tag(const void *xv, void *yv, int64_t n, double m, double a,           \
                                const void *wv, const void *bv)                                    \
    {                                                                                              \
        const T *x = xv, *w = wv, *b = bv;                                                         \
        T *y = yv;                                                                                 \
        const CT ac = (CT)a;                                                                       \
        if (b)                                                                                     \
            for (int64_t i = 0; i < n; i++)                                                        \
                y[i] = ST(T, CENTER(LD(x[i]), m, CT) * ac * LD(w[i]) + LD(b[i]));                  \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) y[i] = ST(T, CENTER(LD(x[i]), m, CT) * ac * LD(w[i])); \
    }
FOR_FLOATS(DEFINE_ROWS)

#define ROWS_ENTRY(tag, DT, T, CT, LD, ST, INPLACE) \
    [CS_DTYPE_##DT] = {sum_##tag, sqdev_##tag, affine_##tag, affine_wb_##tag},
static const row_ops rows[N_DTYPES] = {FOR_FLOATS(ROWS_ENTRY)};

static const row_ops *rows_for(cs_dtype t)
{
    return (unsigned)t < N_DTYPES && rows[t].sum ? &rows[t] : NULL;
}

/* --- Softmax, LogSoftmax, Hardmax ------------------------------------------------------- */

typedef struct smplan {
    cs__softmax_geom g;
    const void *x;
    void *y;
} smplan;

/* Work items are rows when the axis is innermost, else (outer, block of columns) pairs.
 * Softmax keeps exp(x - max) in the output when that has the compute type, else
 * recomputes it. Hardmax marks the first maximum, as numpy's argmax does. */
#define DEFINE_SOFTMAX(tag, DT, T, CT, LD, ST, INPLACE)                                           \
    static void softmax_##tag(void *arg, int64_t begin, int64_t end)                              \
    {                                                                                             \
        const smplan *p = arg;                                                                    \
        const int64_t n = p->g.len;                                                               \
        if (p->g.inner == 1) {                                                                    \
            for (int64_t o = begin; o < end; o++) {                                               \
                const T *x = (const T *)p->x + o * n;                                             \
                T *y = (T *)p->y + o * n;                                                         \
                CT m = LD(x[0]);                                                                  \
                int64_t am = 0;                                                                   \
                for (int64_t i = 1; i < n; i++)                                                   \
                    if (LD(x[i]) > m) {                                                           \
                        m = LD(x[i]);                                                             \
                        am = i;                                                                   \
                    }                                                                             \
                if (p->g.mode == CS__HARDMAX) {                                                   \
                    for (int64_t i = 0; i < n; i++) y[i] = ST(T, i == am);                        \
                    continue;                                                                     \
                }                                                                                 \
                double s = 0;                                                                     \
                if (p->g.mode == CS__SOFTMAX && INPLACE) {                                        \
                    for (int64_t i = 0; i < n; i++) {                                             \
                        const CT e = exp(LD(x[i]) - m);                                           \
                        y[i] = ST(T, e);                                                          \
                        s += e;                                                                   \
                    }                                                                             \
                    const CT inv = (CT)(1 / s);                                                   \
                    for (int64_t i = 0; i < n; i++) y[i] = ST(T, LD(y[i]) * inv);                 \
                    continue;                                                                     \
                }                                                                                 \
                for (int64_t i = 0; i < n; i++) s += exp(LD(x[i]) - m);                           \
                if (p->g.mode == CS__SOFTMAX) {                                                   \
                    const CT inv = (CT)(1 / s);                                                   \
                    for (int64_t i = 0; i < n; i++) y[i] = ST(T, exp(LD(x[i]) - m) * inv);        \
                } else {                                                                          \
                    const CT ls = (CT)log(s);                                                     \
                    for (int64_t i = 0; i < n; i++) y[i] = ST(T, LD(x[i]) - m - ls);              \
                }                                                                                 \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        const int64_t in = p->g.inner, nb = (in + BLOCK - 1) / BLOCK;                             \
        for (int64_t item = begin; item < end; item++) {                                          \
            const int64_t o = item / nb, j0 = item % nb * BLOCK;                                  \
            const int64_t w = in - j0 < BLOCK ? in - j0 : BLOCK;                                  \
            const T *x = (const T *)p->x + o * n * in + j0;                                       \
            T *y = (T *)p->y + o * n * in + j0;                                                   \
            CT m[BLOCK], c[BLOCK];                                                                \
            double s[BLOCK];                                                                      \
            int64_t am[BLOCK];                                                                    \
            for (int64_t j = 0; j < w; j++) {                                                     \
                m[j] = LD(x[j]);                                                                  \
                am[j] = 0;                                                                        \
                s[j] = 0;                                                                         \
            }                                                                                     \
            for (int64_t l = 1; l < n; l++)                                                       \
                for (int64_t j = 0; j < w; j++)                                                   \
                    if (LD(x[l * in + j]) > m[j]) {                                               \
                        m[j] = LD(x[l * in + j]);                                                 \
                        am[j] = l;                                                                \
                    }                                                                             \
            if (p->g.mode == CS__HARDMAX) {                                                       \
                for (int64_t l = 0; l < n; l++)                                                   \
                    for (int64_t j = 0; j < w; j++) y[l * in + j] = ST(T, am[j] == l);            \
                continue;                                                                         \
            }                                                                                     \
            for (int64_t l = 0; l < n; l++)                                                       \
                for (int64_t j = 0; j < w; j++) {                                                 \
                    const CT e = exp(LD(x[l * in + j]) - m[j]);                                   \
                    if (p->g.mode == CS__SOFTMAX && INPLACE) y[l * in + j] = ST(T, e);            \
                    s[j] += e;                                                                    \
                }                                                                                 \
            if (p->g.mode == CS__SOFTMAX) {                                                       \
                for (int64_t j = 0; j < w; j++) c[j] = (CT)(1 / s[j]);                            \
                for (int64_t l = 0; l < n; l++)                                                   \
                    for (int64_t j = 0; j < w; j++) {                                             \
                        const CT e = INPLACE ? LD(y[l * in + j]) : exp(LD(x[l * in + j]) - m[j]); \
                        y[l * in + j] = ST(T, e * c[j]);                                          \
                    }                                                                             \
            } else {                                                                              \
                for (int64_t j = 0; j < w; j++) c[j] = (CT)log(s[j]);                             \
                for (int64_t l = 0; l < n; l++)                                                   \
                    for (int64_t j = 0; j < w; j++)                                               \
                        y[l * in + j] = ST(T, LD(x[l * in + j]) - m[j] - c[j]);                   \
            }                                                                                     \
        }                                                                                         \
    }
FOR_FLOATS(DEFINE_SOFTMAX)

#define FN_ENTRY(tag, DT, T, CT, LD, ST, INPLACE) [CS_DTYPE_##DT] = softmax_##tag,
static const cs__range_fn softmax_fns[N_DTYPES] = {FOR_FLOATS(FN_ENTRY)};
#undef FN_ENTRY

/* Softmax of float32 rows [begin, end) along the innermost axis: the maximum and the sum of
 * exp(x - max) in 16 lanes (the sums in double, as the generic loops keep them), exp
 * through vmath.h, so that all three passes vectorize where the generic loops call libm's
 * exp element by element. Blocks go through t[] so that in-place rows vectorize too. */
#define VL 16
#define SOFTMAX_ROWS_F32                                                                   \
    {                                                                                      \
        const smplan *p = arg;                                                             \
        const int64_t n = p->g.len;                                                        \
        for (int64_t o = begin; o < end; o++) {                                            \
            const float *x = (const float *)p->x + o * n;                                  \
            float *y = (float *)p->y + o * n, m = x[0], t[VL];                             \
            int64_t i = 0;                                                                 \
            if (n >= VL) {                                                                 \
                memcpy(t, x, sizeof t);                                                    \
                for (i = VL; i + VL <= n; i += VL)                                         \
                    for (int j = 0; j < VL; j++) t[j] = x[i + j] > t[j] ? x[i + j] : t[j]; \
                for (int j = 0; j < VL; j++) m = t[j] > m ? t[j] : m;                      \
            }                                                                              \
            for (; i < n; i++) m = x[i] > m ? x[i] : m;                                    \
            double acc[VL] = {0}, s = 0;                                                   \
            for (i = 0; i + VL <= n; i += VL) {                                            \
                memcpy(t, x + i, sizeof t);                                                \
                for (int j = 0; j < VL; j++) {                                             \
                    t[j] = vexpf(t[j] - m);                                                \
                    acc[j] += t[j];                                                        \
                }                                                                          \
                memcpy(y + i, t, sizeof t);                                                \
            }                                                                              \
            for (; i < n; i++) {                                                           \
                y[i] = vexpf(x[i] - m);                                                    \
                s += y[i];                                                                 \
            }                                                                              \
            for (int j = 0; j < VL; j++) s += acc[j];                                      \
            const float inv = (float)(1 / s);                                              \
            for (i = 0; i < n; i++) y[i] *= inv;                                           \
        }                                                                                  \
    }
static void softmax_rows_f32(void *arg, int64_t begin, int64_t end) SOFTMAX_ROWS_F32 static
    __attribute__((target("avx512f"))) void softmax_rows_f32w(void *arg, int64_t begin,
                                                              int64_t end) SOFTMAX_ROWS_F32

    static cs_status
    softmax_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out, int n_out)
{
    smplan p = {.x = in[0]->data, .y = out->data};
    cs_status rc = cs__softmax_geom_get(ctx->node, in[0], &p.g, ctx->err);
    if (rc != CS_OK) return rc;
    const cs__range_fn fn = softmax_fns[in[0]->dtype];
    if (!fn) return unsupported_type(ctx->err, ctx->node, in[0]->dtype);
    if (p.g.len == 0) return CS_OK;
    if (p.g.inner == 1 && p.g.mode == CS__SOFTMAX && in[0]->dtype == CS_DTYPE_FLOAT32) {
        cs__range_fn rows_fn = cs__cpu_avx512() ? softmax_rows_f32w : softmax_rows_f32;
        cs__parallel_for(ctx, p.g.outer, min_chunk(p.g.len * 8), rows_fn, &p);
    } else if (p.g.inner == 1) {
        cs__parallel_for(ctx, p.g.outer, min_chunk(p.g.len * 8), fn, &p);
    } else {
        const int64_t nb = (p.g.inner + BLOCK - 1) / BLOCK;
        cs__parallel_for(ctx, p.g.outer * nb, min_chunk(p.g.len * BLOCK * 8), fn, &p);
    }
    return CS_OK;
}

/* --- BatchNormalization ----------------------------------------------------------------- */

static bool bn_training(const cs__node *n)
{
    return n->opset >= 14 && cs__attr_int(n, "training_mode", 0) != 0;
}

typedef struct bnplan {
    const cs__node *node;
    const cs_tensor *const *in;
    cs_tensor *out;
    int n_out;
    const row_ops *ops;
    int64_t batch, c, s;
    double eps, momentum;
    bool per_element; /* spatial=0: parameters indexed by (channel, position) */
} bnplan;

/* Inference: work items are (sample, channel) rows. */
static void bn_rows(void *arg, int64_t begin, int64_t end)
{
    const bnplan *p = arg;
    const cs_tensor *const *in = p->in;
    const size_t es = cs_dtype_size(in[0]->dtype);
    for (int64_t r = begin; r < end; r++) {
        const int64_t ch = r % p->c;
        const char *x = (const char *)in[0]->data + (size_t)(r * p->s) * es;
        char *y = (char *)p->out[0].data + (size_t)(r * p->s) * es;
        if (!p->per_element) {
            const double a =
                cs_tensor_get_f64(in[1], ch) / sqrt(cs_tensor_get_f64(in[4], ch) + p->eps);
            p->ops->affine(x, y, p->s, cs_tensor_get_f64(in[3], ch), a,
                           cs_tensor_get_f64(in[2], ch));
            continue;
        }
        for (int64_t i = 0; i < p->s; i++) {
            const int64_t k = ch * p->s + i;
            const double a =
                cs_tensor_get_f64(in[1], k) / sqrt(cs_tensor_get_f64(in[4], k) + p->eps);
            p->ops->affine(x + i * es, y + i * es, 1, cs_tensor_get_f64(in[3], k), a,
                           cs_tensor_get_f64(in[2], k));
        }
    }
}

/* Training: work items are channels; batch statistics (population variance) normalise
 * the channel and blend into the running statistics. */
static void bn_channels(void *arg, int64_t begin, int64_t end)
{
    const bnplan *p = arg;
    const cs_tensor *const *in = p->in;
    const size_t es = cs_dtype_size(in[0]->dtype);
    const double cnt = (double)(p->batch * p->s);
    for (int64_t ch = begin; ch < end; ch++) {
        double sum = 0, sq = 0;
        for (int64_t b = 0; b < p->batch; b++)
            sum += p->ops->sum((const char *)in[0]->data + (size_t)((b * p->c + ch) * p->s) * es,
                               p->s);
        const double mean = cnt ? sum / cnt : 0;
        for (int64_t b = 0; b < p->batch; b++)
            sq += p->ops->sqdev((const char *)in[0]->data + (size_t)((b * p->c + ch) * p->s) * es,
                                p->s, mean);
        const double var = cnt ? sq / cnt : 0;
        const double a = cs_tensor_get_f64(in[1], ch) / sqrt(var + p->eps),
                     bias = cs_tensor_get_f64(in[2], ch);
        for (int64_t b = 0; b < p->batch; b++) {
            const size_t off = (size_t)((b * p->c + ch) * p->s) * es;
            p->ops->affine((const char *)in[0]->data + off, (char *)p->out[0].data + off, p->s,
                           mean, a, bias);
        }
        const double mom = p->momentum;
        if (p->n_out > 1)
            cs_tensor_set_f64(&p->out[1], ch,
                              cs_tensor_get_f64(in[3], ch) * mom + mean * (1 - mom));
        if (p->n_out > 2)
            cs_tensor_set_f64(&p->out[2], ch, cs_tensor_get_f64(in[4], ch) * mom + var * (1 - mom));
    }
}

static cs_status bn_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                        int n_out)
{
    const cs__node *n = ctx->node;
    bnplan p = {.node = n, .in = in, .out = out, .n_out = n_out, .ops = rows_for(in[0]->dtype)};
    if (!p.ops) return unsupported_type(ctx->err, n, in[0]->dtype);
    p.batch = in[0]->dims[0];
    p.c = in[0]->dims[1];
    p.s = cs__dims_prod(in[0]->dims, 2, in[0]->rank);
    p.eps = cs__attr_float(n, "epsilon", 1e-5f);
    p.momentum = cs__attr_float(n, "momentum", 0.9f);
    p.per_element = p.s > 1 && cs__numel(in[1]) != p.c;
    if (bn_training(n)) {
        cs__parallel_for(ctx, p.c, min_chunk(p.batch * p.s * 3), bn_channels, &p);
        return CS_OK;
    }
    cs__parallel_for(ctx, p.batch * p.c, min_chunk(p.s), bn_rows, &p);
    for (int j = 1; j < n_out; j++)
        memcpy(out[j].data, in[2 + j]->data,
               (size_t)cs__numel(in[2 + j]) * cs_dtype_size(in[2 + j]->dtype));
    return CS_OK;
}

/* --- InstanceNormalization and LayerNormalization --------------------------------------- */

/* Rows of `len` elements normalised to mean 0 and variance 1; InstanceNorm scales each row
 * by its channel's scale and B, LayerNorm each column by W and B. */
typedef struct normplan {
    const row_ops *ops;
    const cs_tensor *x, *w, *b;
    cs_tensor *y, *mean, *inv_std; /* LayerNorm's optional outputs, or NULL */
    int64_t len, channels;         /* channels: InstanceNorm's C, 0 for LayerNorm */
    double eps;
} normplan;

static void norm_rows(void *arg, int64_t begin, int64_t end)
{
    const normplan *p = arg;
    const size_t es = cs_dtype_size(p->x->dtype);
    for (int64_t r = begin; r < end; r++) {
        const char *x = (const char *)p->x->data + (size_t)(r * p->len) * es;
        char *y = (char *)p->y->data + (size_t)(r * p->len) * es;
        const double mean = p->len ? p->ops->sum(x, p->len) / (double)p->len : 0;
        const double var = p->len ? p->ops->sqdev(x, p->len, mean) / (double)p->len : 0;
        const double inv = 1 / sqrt(var + p->eps);
        if (p->channels) {
            const int64_t ch = r % p->channels;
            p->ops->affine(x, y, p->len, mean, inv * cs_tensor_get_f64(p->w, ch),
                           cs_tensor_get_f64(p->b, ch));
            continue;
        }
        p->ops->affine_wb(x, y, p->len, mean, inv, p->w->data, p->b ? p->b->data : NULL);
        if (p->mean) cs_tensor_set_f64(p->mean, r, mean);
        if (p->inv_std) cs_tensor_set_f64(p->inv_std, r, inv);
    }
}

static cs_status in_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                        int n_out)
{
    normplan p = {.ops = rows_for(in[0]->dtype), .x = in[0], .w = in[1], .b = in[2], .y = out};
    if (!p.ops) return unsupported_type(ctx->err, ctx->node, in[0]->dtype);
    p.len = cs__dims_prod(in[0]->dims, 2, in[0]->rank);
    p.channels = in[0]->dims[1];
    p.eps = cs__attr_float(ctx->node, "epsilon", 1e-5f);
    cs__parallel_for(ctx, p.channels * in[0]->dims[0], min_chunk(p.len * 3), norm_rows, &p);
    return CS_OK;
}

/* Statistics are always computed in double, whatever stash_type asks; it only sets the
 * type of the Mean and InvStdDev outputs. */
static cs_status ln_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                        int n_out)
{
    const cs__node *n = ctx->node;
    int axis;
    cs_status rc = cs__axis(n, cs__attr_int(n, "axis", -1), in[0]->rank, false, &axis, ctx->err);
    if (rc != CS_OK) return rc;
    normplan p = {.ops = rows_for(in[0]->dtype), .x = in[0], .w = in[1], .y = &out[0]};
    if (!p.ops) return unsupported_type(ctx->err, n, in[0]->dtype);
    p.b = n_in > 2 ? in[2] : NULL;
    p.mean = n_out > 1 ? &out[1] : NULL;
    p.inv_std = n_out > 2 ? &out[2] : NULL;
    p.len = cs__dims_prod(in[0]->dims, axis, in[0]->rank);
    p.eps = cs__attr_float(n, "epsilon", 1e-5f);
    cs__parallel_for(ctx, cs__dims_prod(in[0]->dims, 0, axis), min_chunk(p.len * 3), norm_rows, &p);
    return CS_OK;
}

/* --- LRN -------------------------------------------------------------------------------- */

typedef struct lrnplan {
    int64_t batch, c, s;
    int64_t before, after; /* channels summed below and above each channel */
    double alpha, beta, bias;
    const void *x;
    void *y;
} lrnplan;

/* Work items are (sample, block of positions) pairs; each channel sums the squares of
 * its window, O(size) per element. */
#define DEFINE_LRN(tag, DT, T, CT, LD, ST, INPLACE)                                     \
    static void lrn_##tag(void *arg, int64_t begin, int64_t end)                        \
    {                                                                                   \
        const lrnplan *p = arg;                                                         \
        const int64_t nb = (p->s + BLOCK - 1) / BLOCK;                                  \
        const CT scale = (CT)p->alpha, beta = (CT)p->beta, bias = (CT)p->bias;          \
        for (int64_t item = begin; item < end; item++) {                                \
            const int64_t b = item / nb, j0 = item % nb * BLOCK;                        \
            const int64_t w = p->s - j0 < BLOCK ? p->s - j0 : BLOCK;                    \
            const T *x = (const T *)p->x + b * p->c * p->s + j0;                        \
            T *y = (T *)p->y + b * p->c * p->s + j0;                                    \
            for (int64_t ch = 0; ch < p->c; ch++) {                                     \
                const int64_t lo = ch - p->before > 0 ? ch - p->before : 0;             \
                const int64_t hi = ch + p->after < p->c - 1 ? ch + p->after : p->c - 1; \
                CT acc[BLOCK];                                                          \
                for (int64_t j = 0; j < w; j++) acc[j] = 0;                             \
                for (int64_t k = lo; k <= hi; k++)                                      \
                    for (int64_t j = 0; j < w; j++) {                                   \
                        const CT v = LD(x[k * p->s + j]);                               \
                        acc[j] += v * v;                                                \
                    }                                                                   \
                for (int64_t j = 0; j < w; j++)                                         \
                    y[ch * p->s + j] =                                                  \
                        ST(T, LD(x[ch * p->s + j]) / pow(bias + scale * acc[j], beta)); \
            }                                                                           \
        }                                                                               \
    }
FOR_FLOATS(DEFINE_LRN)

#define FN_ENTRY(tag, DT, T, CT, LD, ST, INPLACE) [CS_DTYPE_##DT] = lrn_##tag,
static const cs__range_fn lrn_fns[N_DTYPES] = {FOR_FLOATS(FN_ENTRY)};
#undef FN_ENTRY

static cs_status lrn_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    const cs__node *n = ctx->node;
    const cs__range_fn fn = lrn_fns[in[0]->dtype];
    if (!fn) return unsupported_type(ctx->err, n, in[0]->dtype);
    const int64_t size = cs__attr_int(n, "size", 1);
    lrnplan p = {.x = in[0]->data, .y = out->data};
    p.batch = in[0]->dims[0];
    p.c = in[0]->dims[1];
    p.s = cs__dims_prod(in[0]->dims, 2, in[0]->rank);
    p.before = (size - 1) / 2;
    p.after = size / 2; /* ceil((size - 1) / 2) */
    p.alpha = cs__attr_float(n, "alpha", 1e-4f) / (double)size;
    p.beta = cs__attr_float(n, "beta", 0.75f);
    p.bias = cs__attr_float(n, "bias", 1.0f);
    const int64_t nb = (p.s + BLOCK - 1) / BLOCK;
    cs__parallel_for(ctx, p.batch * nb, min_chunk(p.c * BLOCK * size), fn, &p);
    return CS_OK;
}

/* --- MeanVarianceNormalization ---------------------------------------------------------- */

/* y = (x - mean) / (std + 1e-9) with statistics over `axes` (default N, H, W). Single
 * threaded: one odometer walks the whole tensor, tracking each element's statistics slot
 * (the offset among kept axes), three times: sums, squared deviations, output. Scratch
 * holds two doubles per slot. */
static size_t mvn_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                          const cs_tensor *out, int n_out)
{
    bool mask[CS_MAX_RANK];
    int64_t slots;
    if (cs__mvn_axes(n, in[0], mask, &slots, NULL) != CS_OK) return 0;
    return (size_t)slots * 2 * sizeof(double);
}

enum { MVN_SUM, MVN_SQDEV, MVN_OUT };

#define DEFINE_MVN(tag, DT, T, CT, LD, ST, INPLACE)                                           \
    static void mvn_##tag(const cs_tensor *xt, cs_tensor *yt, const bool *mask, double *mean, \
                          double *dev, int pass)                                              \
    {                                                                                         \
        const T *x = xt->data;                                                                \
        T *y = yt->data;                                                                      \
        const int rank = xt->rank;                                                            \
        int64_t idx[CS_MAX_RANK] = {0}, kstride[CS_MAX_RANK], slot = 0, s = 1;                \
        for (int d = rank - 1; d >= 0; d--) {                                                 \
            kstride[d] = mask[d] ? 0 : s;                                                     \
            if (!mask[d]) s *= xt->dims[d];                                                   \
        }                                                                                     \
        const int64_t total = cs__numel(xt);                                                  \
        for (int64_t i = 0; i < total; i++) {                                                 \
            const double v = (double)LD(x[i]);                                                \
            if (pass == MVN_SUM)                                                              \
                mean[slot] += v;                                                              \
            else if (pass == MVN_SQDEV)                                                       \
                dev[slot] += (v - mean[slot]) * (v - mean[slot]);                             \
            else                                                                              \
                y[i] = ST(T, (v - mean[slot]) / dev[slot]);                                   \
            for (int d = rank - 1; d >= 0; d--) {                                             \
                slot += kstride[d];                                                           \
                if (++idx[d] < xt->dims[d]) break;                                            \
                slot -= idx[d] * kstride[d];                                                  \
                idx[d] = 0;                                                                   \
            }                                                                                 \
        }                                                                                     \
    }
FOR_FLOATS(DEFINE_MVN)

typedef void (*mvn_fn)(const cs_tensor *, cs_tensor *, const bool *, double *, double *, int);
#define FN_ENTRY(tag, DT, T, CT, LD, ST, INPLACE) [CS_DTYPE_##DT] = mvn_##tag,
static const mvn_fn mvn_fns[N_DTYPES] = {FOR_FLOATS(FN_ENTRY)};
#undef FN_ENTRY

static cs_status mvn_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    bool mask[CS_MAX_RANK];
    int64_t slots;
    cs_status rc = cs__mvn_axes(ctx->node, in[0], mask, &slots, ctx->err);
    if (rc != CS_OK) return rc;
    const mvn_fn fn = mvn_fns[in[0]->dtype];
    if (!fn) return unsupported_type(ctx->err, ctx->node, in[0]->dtype);
    if (cs__numel(in[0]) == 0) return CS_OK;
    if (ctx->scratch_size < (size_t)slots * 2 * sizeof(double))
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "scratch too small");
    double *mean = ctx->scratch, *dev = mean + slots;
    const double per_slot = slots ? (double)cs__numel(in[0]) / (double)slots : 0;
    memset(mean, 0, (size_t)slots * 2 * sizeof(double));
    fn(in[0], out, mask, mean, dev, MVN_SUM);
    for (int64_t k = 0; k < slots; k++) mean[k] /= per_slot;
    fn(in[0], out, mask, mean, dev, MVN_SQDEV);
    for (int64_t k = 0; k < slots; k++) dev[k] = sqrt(dev[k] / per_slot) + 1e-9;
    fn(in[0], out, mask, mean, dev, MVN_OUT);
    return CS_OK;
}

const cs__kernel cs__kernels_norm[] = {
    {"Softmax", NULL, 1, CS__T_FLOAT, 0, softmax_run, NULL},
    {"LogSoftmax", NULL, 1, CS__T_FLOAT, 0, softmax_run, NULL},
    {"Hardmax", NULL, 1, CS__T_FLOAT, 0, softmax_run, NULL},
    {"BatchNormalization", NULL, 1, CS__T_FLOAT, 0, bn_run, NULL},
    {"InstanceNormalization", NULL, 1, CS__T_FLOAT, 0, in_run, NULL},
    {"LayerNormalization", NULL, 17, CS__T_FLOAT, 0, ln_run, NULL},
    {"LRN", NULL, 1, CS__T_FLOAT, 0, lrn_run, NULL},
    {"MeanVarianceNormalization", NULL, 9, CS__T_FLOAT, 0, mvn_run, mvn_scratch},
    {0},
};

/*
 * pool.c - CPU kernels for pooling: AveragePool, MaxPool (with Indices), LpPool and their
 * Global variants, 1-D to 6-D; their schemas (shape and type inference) are in ops/pool.c.
 *
 * Every pool walks the same geometry as Conv (ops/window.h, plus ceil_mode: cs__pool_window
 * in ops/pool.h): for each output position it clips the window to the taps that land inside
 * the input, one box per position, and reduces them in double. Padding never contributes a
 * value; AveragePool's count_include_pad only changes the divisor, which then counts the
 * taps inside the padded input. Planes (n, c) are independent and run in parallel. Global
 * pools are the window that covers the whole plane.
 *
 * 2-D float32 MaxPools without Indices and dilation take a row-wise path, max2d_f32(), with
 * the same results.
 *
 * Types: float16/32/64 for all, int8/uint8 too for MaxPool (opset 12); the reduction in
 * double is exact for max and at least as precise as float for the sums.
 */
#include "engine/kernel.h"
#include "engine/ops/pool.h"

#include <math.h>

#define T_POOL    (CS__T(FLOAT16) | CS__T(FLOAT32) | CS__T(FLOAT64))
#define T_MAXPOOL (T_POOL | CS__T(INT8) | CS__T(UINT8))

/* --- reduction --------------------------------------------------------------------------- */

typedef struct pool_args {
    cs__window w;
    cs__pool_kind kind;
    bool count_pad; /* AveragePool: divide by the taps inside the padded input */
    bool col_major; /* MaxPool storage_order 1: Indices count the spatial dims column-major */
    double p;       /* LpPool's exponent */
    const void *x;
    void *y;
    int64_t *ind; /* MaxPool's Indices, or NULL */
    void (*planes)(const struct pool_args *a, int64_t begin, int64_t end);
} pool_args;

/* Taps k in [0, K) whose position start + k*d lies in [lo, hi): sets the first, returns
 * how many. */
static int64_t taps(int64_t start, int64_t K, int64_t d, int64_t lo, int64_t hi, int64_t *first)
{
    int64_t f = start >= lo ? 0 : (lo - start + d - 1) / d;
    int64_t l = hi - 1 - start < 0 ? -1 : (hi - 1 - start) / d;
    if (l > K - 1) l = K - 1;
    *first = f;
    return l >= f ? l - f + 1 : 0;
}

/* The window of output position oc clipped to the input: per dim the first input index
 * and the tap count. Returns the number of taps inside the input and sets *padded to
 * the number inside the padded input. */
static int64_t clip_box(const cs__window *w, const int64_t *oc, int64_t *first, int64_t *count,
                        int64_t *padded)
{
    int64_t inside = 1, pad = 1, k0;
    for (int j = 0; j < w->nd; j++) {
        int64_t start = oc[j] * w->s[j] - w->pb[j];
        count[j] = taps(start, w->k[j], w->d[j], 0, w->in[j], &k0);
        first[j] = start + k0 * w->d[j];
        inside *= count[j];
        pad *= taps(start, w->k[j], w->d[j], -w->pb[j], w->in[j] + w->pe[j], &k0);
    }
    *padded = pad;
    return inside;
}

/* Row-major plane offset -> column-major (storage_order 1). */
static int64_t col_major(const cs__window *w, int64_t off)
{
    int64_t c[CS__MAX_SPATIAL], r = 0;
    for (int j = w->nd - 1; j >= 0; j--) {
        c[j] = off % w->in[j];
        off /= w->in[j];
    }
    for (int j = w->nd - 1; j >= 0; j--) r = r * w->in[j] + c[j];
    return r;
}

/* Planes [begin, end) of one element type. The box's outer dims step by odometer; the
 * innermost dim is a strided run, reduced by a loop specialised per kind. */
#define POOL_PLANES(SUF, T, LOAD, STORE)                                                           \
    static void planes_##SUF(const pool_args *a, int64_t begin, int64_t end)                       \
    {                                                                                              \
        const cs__window *w = &a->w;                                                               \
        int nd = w->nd, last = nd - 1;                                                             \
        int64_t dl = w->d[last];                                                                   \
        for (int64_t pl = begin; pl < end; pl++) {                                                 \
            const T *x = (const T *)a->x + pl * w->in_size;                                        \
            T *y = (T *)a->y + pl * w->out_size;                                                   \
            int64_t oc[CS__MAX_SPATIAL] = {0};                                                     \
            for (int64_t o = 0; o < w->out_size; o++) {                                            \
                int64_t first[CS__MAX_SPATIAL], count[CS__MAX_SPATIAL], tc[CS__MAX_SPATIAL] = {0}, \
                                                                        padded;                    \
                int64_t inside = clip_box(w, oc, first, count, &padded), arg = -1;                 \
                double acc = a->kind == CS__POOL_MAX ? -INFINITY : 0;                              \
                for (int64_t t = 0; inside && t < inside; t += count[last]) {                      \
                    int64_t at = 0;                                                                \
                    for (int j = 0; j < last; j++)                                                 \
                        at = (at + first[j] + tc[j] * w->d[j]) * w->in[j + 1];                     \
                    at += first[last];                                                             \
                    for (int j = last - 1; j >= 0 && ++tc[j] == count[j]; j--) tc[j] = 0;          \
                    const T *xr = x + at;                                                          \
                    switch (a->kind) {                                                             \
                    case CS__POOL_MAX:                                                             \
                        for (int64_t i = 0; i < count[last]; i++) {                                \
                            double v = LOAD(xr[i * dl]);                                           \
                            if (v > acc || arg < 0) {                                              \
                                acc = v;                                                           \
                                arg = at + i * dl;                                                 \
                            }                                                                      \
                        }                                                                          \
                        break;                                                                     \
                    case CS__POOL_AVG:                                                             \
                        for (int64_t i = 0; i < count[last]; i++) acc += LOAD(xr[i * dl]);         \
                        break;                                                                     \
                    case CS__POOL_LP:                                                              \
                        for (int64_t i = 0; i < count[last]; i++)                                  \
                            acc += pow(fabs(LOAD(xr[i * dl])), a->p);                              \
                        break;                                                                     \
                    }                                                                              \
                }                                                                                  \
                if (a->kind == CS__POOL_AVG) {                                                     \
                    int64_t div = a->count_pad ? padded : inside;                                  \
                    acc = div ? acc / (double)div : 0;                                             \
                } else if (a->kind == CS__POOL_LP) {                                               \
                    acc = pow(acc, 1 / a->p);                                                      \
                }                                                                                  \
                y[o] = STORE(acc);                                                                 \
                if (a->ind) {                                                                      \
                    int64_t idx = arg < 0 ? -1 : a->col_major ? col_major(w, arg) : arg;           \
                    a->ind[pl * w->out_size + o] = idx < 0 ? -1 : pl * w->in_size + idx;           \
                }                                                                                  \
                for (int j = last; j >= 0 && ++oc[j] == w->out[j]; j--) oc[j] = 0;                 \
            }                                                                                      \
        }                                                                                          \
    }

#define LOAD_NUM(v)  ((double)(v))
#define LOAD_F16(v)  ((double)cs__f16_to_f32(v))
#define STORE_F32(v) ((float)(v))
#define STORE_F64(v) (v)
#define STORE_F16(v) cs__f32_to_f16((float)(v))
/* Integer maxima are integers; only an empty window's -inf needs the clamp. */
#define STORE_I8(v) ((int8_t)((v) < INT8_MIN ? INT8_MIN : (v)))
#define STORE_U8(v) ((uint8_t)((v) < 0 ? 0 : (v)))

POOL_PLANES(f32, float, LOAD_NUM, STORE_F32)
POOL_PLANES(f64, double, LOAD_NUM, STORE_F64)
POOL_PLANES(f16, uint16_t, LOAD_F16, STORE_F16)
POOL_PLANES(i8, int8_t, LOAD_NUM, STORE_I8)
POOL_PLANES(u8, uint8_t, LOAD_NUM, STORE_U8)

/* Output columns [from, to) of one row of a 2-D float32 MaxPool, kernel rows x[r0..r1) of
 * the plane, each window clipped to the input: the taps in the generic loop's order, the
 * first taken and then any greater, so the results are the generic loop's. */
static void max2d_cols(const cs__window *w, const float *x, int64_t r0, int64_t r1, float *y,
                       int64_t from, int64_t to)
{
    for (int64_t o = from; o < to; o++) {
        int64_t cs = o * w->s[1] - w->pb[1], c0 = cs < 0 ? 0 : cs;
        int64_t c1 = cs + w->k[1] < w->in[1] ? cs + w->k[1] : w->in[1];
        float m = -INFINITY;
        bool any = false;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = c0; c < c1; c++) {
                float v = x[r * w->in[1] + c];
                if (!any || v > m) m = v;
                any = true;
            }
        y[o] = m;
    }
}

/* Planes [begin, end) of a 2-D float32 MaxPool without Indices and without dilation
 * (ResNet's stem), the generic loop's results without its per-position box and double
 * arithmetic: per output row the kernel rows inside the input, the interior columns (whole
 * windows inside the row) a tap at a time across the row, which vectorizes, in the generic
 * loop's tap order, and the border columns through max2d_cols(). */
static void max2d_f32(const pool_args *a, int64_t begin, int64_t end)
{
    const cs__window *w = &a->w;
    int64_t in_w = w->in[1], out_w = w->out[1], s = w->s[1], k_w = w->k[1];
    /* Interior columns: o * s - pb >= 0 and o * s - pb + k_w <= in_w. */
    int64_t lo = (w->pb[1] + s - 1) / s,
            hi = in_w - k_w + w->pb[1] < 0 ? 0 : (in_w - k_w + w->pb[1]) / s + 1;
    if (hi > out_w) hi = out_w;
    if (lo > hi) lo = hi;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = (const float *)a->x + pl * w->in_size;
        float *y = (float *)a->y + pl * w->out_size;
        for (int64_t oh = 0; oh < w->out[0]; oh++, y += out_w) {
            int64_t h = oh * w->s[0] - w->pb[0], r0 = h < 0 ? 0 : h;
            int64_t r1 = h + w->k[0] < w->in[0] ? h + w->k[0] : w->in[0];
            if (r0 >= r1) { /* no row inside: every window is empty */
                for (int64_t o = 0; o < out_w; o++) y[o] = -INFINITY;
                continue;
            }
            max2d_cols(w, x, r0, r1, y, 0, lo);
            max2d_cols(w, x, r0, r1, y, hi, out_w);
            const float *base = x + r0 * in_w - w->pb[1];
            for (int64_t o = lo; o < hi; o++) y[o] = base[o * s];
            for (int64_t r = r0; r < r1; r++)
                for (int64_t j = r == r0; j < k_w; j++) {
                    const float *xr = x + r * in_w - w->pb[1] + j;
                    for (int64_t o = lo; o < hi; o++) {
                        float v = xr[o * s];
                        y[o] = v > y[o] ? v : y[o];
                    }
                }
        }
    }
}

static void run_planes(void *p, int64_t begin, int64_t end)
{
    const pool_args *a = p;
    a->planes(a, begin, end);
}

/* --- operators --------------------------------------------------------------------------- */

static cs_status pool_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    const cs__node *n = ctx->node;
    pool_args a = {.kind = cs__pool_op_of(n)->kind, .x = in[0]->data, .y = out[0].data};
    cs_status rc = cs__pool_window(n, in[0], &a.w, ctx->err);
    if (rc != CS_OK) return rc;
    a.count_pad = cs__attr_int(n, "count_include_pad", 0) != 0;
    a.col_major = cs__attr_int(n, "storage_order", 0) == 1;
    a.p = cs__attr_float(n, "p", 2.0f);
    a.ind = n_out > 1 ? out[1].data : NULL;
    switch (in[0]->dtype) {
    case CS_DTYPE_FLOAT32: a.planes = planes_f32; break;
    case CS_DTYPE_FLOAT64: a.planes = planes_f64; break;
    case CS_DTYPE_FLOAT16: a.planes = planes_f16; break;
    case CS_DTYPE_INT8: a.planes = planes_i8; break;
    case CS_DTYPE_UINT8: a.planes = planes_u8; break;
    default:
        return cs__node_error(ctx->err, n, CS_ERR_UNSUPPORTED, "type %s is not supported",
                              cs_dtype_name(in[0]->dtype));
    }
    if (a.planes == planes_f32 && a.kind == CS__POOL_MAX && !a.ind && a.w.nd == 2 &&
        a.w.d[0] == 1 && a.w.d[1] == 1)
        a.planes = max2d_f32;
    int64_t work = a.w.out_size * a.w.k_size;
    cs__parallel_for(ctx, in[0]->dims[0] * in[0]->dims[1], work ? 1 + 16384 / work : 1, run_planes,
                     &a);
    return CS_OK;
}

const cs__kernel cs__kernels_pool[] = {
    {"AveragePool", "", 1, T_POOL, 0, pool_run, NULL},
    {"MaxPool", "", 1, T_MAXPOOL, 0, pool_run, NULL},
    {"LpPool", "", 1, T_POOL, 0, pool_run, NULL},
    {"GlobalAveragePool", "", 1, T_POOL, 0, pool_run, NULL},
    {"GlobalMaxPool", "", 1, T_POOL, 0, pool_run, NULL},
    {"GlobalLpPool", "", 1, T_POOL, 0, pool_run, NULL},
    {0},
};

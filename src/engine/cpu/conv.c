/*
 * conv.c - CPU kernels for convolutions: Conv and ConvTranspose, 1-D to 6-D, grouped; their
 * schemas (shape and type inference) are in ops/conv.c, whose geometry (ops/conv.h) the
 * kernels walk.
 *
 * Conv lowers each (image, group) pair to one GEMM: im2col unrolls the input windows into
 * a column matrix [Cg*kernel, out_positions] in scratch memory, and the group's weights
 * [Mg, Cg*kernel] multiply it into the output. A 1x1, stride-1, unpadded convolution needs
 * no unrolling: the input already is the column matrix. A 2-D depthwise convolution (one
 * input channel per group) skips the GEMMs, which would be one-row products per channel,
 * for a direct kernel, dw_planes(). Ungrouped 3x3 stride-1 2-D convolutions wide enough
 * to pay for the transforms take Winograd F(2x2, 3x3) in winograd.c. conv_pick() chooses
 * the algorithm from the shape; faster ones (NCHWc) slot in there. Where the float32
 * weights are known at plan time and the CPU has AVX-512, the 1x1 and im2col GEMMs run on
 * pgemm.c against weights prepacked once, with the epilogue in the GEMM's own stores.
 *
 * ConvTranspose is Conv's adjoint: a GEMM with the transposed weights produces the column
 * matrix [Mg*kernel, in_positions], which col2im scatters (adds) into the output. Both
 * directions share one window walker, window_row(), over a geometry where `in` is the
 * image side and `out` the column side.
 *
 * Conv ends each output block with an epilogue: the bias, then the activation the planner
 * fused into the step (ctx->act; a Relu or Clip that was the Conv's only consumer), applied
 * after each group's GEMM and, in the depthwise kernel, to each output row as it is done.
 *
 * float32 and float64 run natively (the direct depthwise kernel and Winograd: float32
 * only); float16 is widened to float32 in scratch and narrowed back. run() allocates
 * nothing: conv_scratch() sizes the column matrix or Winograd's buffers and the widened
 * copies at plan time.
 */
#include "engine/cpu/blas.h"
#include "engine/cpu/dw512.h"
#include "engine/cpu/pgemm.h"
#include "engine/cpu/winograd.h"
#include "engine/ops/conv.h"

#include <string.h>

#define T_CONV (CS__T(FLOAT16) | CS__T(FLOAT32) | CS__T(FLOAT64))

/* --- window walker ------------------------------------------------------------------- */

/* The output positions [lo, hi) of a run of len, o*s + base, that land inside [0, in): the
 * stretch a loop can cover without bounds checks; the rest falls into padding. */
static void inside(int64_t base, int64_t s, int64_t in, int64_t len, int64_t *lo, int64_t *hi)
{
    *lo = base >= 0 ? 0 : (-base + s - 1) / s;
    *hi = in - 1 - base < 0 ? 0 : (in - 1 - base) / s + 1;
    if (*hi > len) *hi = len;
    if (*lo > *hi) *lo = *hi;
}

/* Row r of the column matrix is image channel r / k_size seen through kernel tap
 * r % k_size; its out_size entries follow the out side in row-major order. Gather (im2col)
 * copies the image into the row, zero where the tap falls into padding; scatter (col2im)
 * adds the row into the image and skips padding. The innermost spatial dim is a strided
 * run over the positions that stay inside the image, so the loop has no bounds checks. */
#define WINDOW_ROW(T)                                                                   \
    static void window_row_##T(const cs__window *w, int64_t r, T *img, T *restrict col, \
                               bool scatter)                                            \
    {                                                                                   \
        int nd = w->nd, last = nd - 1;                                                  \
        int64_t kc[CS__MAX_SPATIAL], oc[CS__MAX_SPATIAL] = {0}, kr = r % w->k_size;     \
        for (int j = last; j >= 0; j--) {                                               \
            kc[j] = kr % w->k[j];                                                       \
            kr /= w->k[j];                                                              \
        }                                                                               \
        img += (r / w->k_size) * w->in_size;                                            \
        col += r * w->out_size;                                                         \
        int64_t len = w->out[last], s = w->s[last], in = w->in[last], lo, hi;           \
        int64_t base = kc[last] * w->d[last] - w->pb[last];                             \
        inside(base, s, in, len, &lo, &hi);                                             \
        for (int64_t o = 0; o < w->out_size; o += len, col += len) {                    \
            bool valid = true;                                                          \
            int64_t off = 0;                                                            \
            for (int j = 0; j < last; j++) {                                            \
                int64_t i = oc[j] * w->s[j] - w->pb[j] + kc[j] * w->d[j];               \
                valid = valid && i >= 0 && i < w->in[j];                                \
                off = off * w->in[j] + i;                                               \
            }                                                                           \
            for (int j = last - 1; j >= 0 && ++oc[j] == w->out[j]; j--) oc[j] = 0;      \
            int64_t at = off * in + base;                                               \
            if (scatter) {                                                              \
                if (valid)                                                              \
                    for (int64_t i = lo; i < hi; i++) img[at + i * s] += col[i];        \
                continue;                                                               \
            }                                                                           \
            if (!valid) {                                                               \
                memset(col, 0, sizeof(T) * (size_t)len);                                \
                continue;                                                               \
            }                                                                           \
            for (int64_t i = 0; i < lo; i++) col[i] = 0;                                \
            for (int64_t i = lo; i < hi; i++) col[i] = img[at + i * s];                 \
            for (int64_t i = hi; i < len; i++) col[i] = 0;                              \
        }                                                                               \
    }

/* y[m, :] += b[m] for every row: the first half of the epilogue. */
#define BIAS_ADD(T)                                                                 \
    static void bias_add_##T(T *restrict y, int64_t rows, int64_t cols, const T *b) \
    {                                                                               \
        for (int64_t m = 0; m < rows; m++, y += cols)                               \
            for (int64_t i = 0; i < cols; i++) y[i] += b[m];                        \
    }

WINDOW_ROW(float)
WINDOW_ROW(double)
BIAS_ADD(float)
BIAS_ADD(double)

typedef struct walk_args {
    const cs__window *w;
    cs_dtype t;
    void *img, *col;
    bool scatter;
} walk_args;

/* Image channels [begin, end): the rows of different channels touch different image planes,
 * so the scatter direction parallelises without races too. */
static void walk_channels(void *p, int64_t begin, int64_t end)
{
    const walk_args *a = p;
    for (int64_t r = begin * a->w->k_size; r < end * a->w->k_size; r++) {
        if (a->t == CS_DTYPE_FLOAT64)
            window_row_double(a->w, r, a->img, a->col, a->scatter);
        else
            window_row_float(a->w, r, a->img, a->col, a->scatter);
    }
}

/* Y[M,N] = op(A)[M,K] * B[K,N], all contiguous. */
static void blas(cs__kctx *ctx, cs_dtype t, bool ta, int64_t M, int64_t N, int64_t K, const void *a,
                 const void *b, void *y)
{
    cs__gemm(ctx, t, ta, false, M, N, K, 1.0, a, ta ? M : K, b, N, 0.0, y, N);
}

typedef struct epi_args {
    cs_dtype t;
    char *y;
    int64_t cols;
    const char *b; /* NULL: no bias */
    const cs__act *act;
} epi_args;

/* Rows [begin, end) of one GEMM's output block: the bias, then the fused activation, while
 * the rows are still in cache from the GEMM's last writes. */
static void epilogue_rows(void *p, int64_t begin, int64_t end)
{
    const epi_args *a = p;
    size_t es = cs_dtype_size(a->t);
    void *y = a->y + (size_t)(begin * a->cols) * es;
    if (a->b && a->t == CS_DTYPE_FLOAT64)
        bias_add_double(y, end - begin, a->cols, (const double *)a->b + begin);
    else if (a->b)
        bias_add_float(y, end - begin, a->cols, (const float *)a->b + begin);
    if (a->act->kind != CS__ACT_NONE) cs__act_apply(a->act, a->t, y, (end - begin) * a->cols);
}

/* The epilogue of a [rows, cols] block, split by rows across the pool in chunks of at
 * least ~16K elements: the unfused activation ran in parallel too. */
static void epilogue(cs__kctx *ctx, cs_dtype t, void *y, int64_t rows, int64_t cols, const void *b,
                     const cs__act *act)
{
    if (!b && act->kind == CS__ACT_NONE) return;
    epi_args a = {t, y, cols, b, act};
    cs__parallel_for(ctx, rows, 1 + (1 << 14) / cols, epilogue_rows, &a);
}

/* --- shapes ------------------------------------------------------------------------------ */

typedef enum conv_algo {
    CONV_POINTWISE, /* the image is its own column matrix: one GEMM, no scratch */
    CONV_IM2COL,
    CONV_DEPTHWISE, /* 2-D, one input channel per group, float32: dw_planes(), no scratch */
    CONV_WINOGRAD,  /* 2-D, ungrouped, 3x3, stride 1, float32: cs__winograd() */
} conv_algo;

/* A convolution's geometry (ops/conv.h) and the algorithm the CPU runs it with. */
typedef struct conv_plan {
    cs__conv_shape c;
    conv_algo algo;
} conv_plan;

/* 2-D depthwise convolutions (group == C > 1) in float32, or float16 widened to it, take
 * the direct kernel; it is written for float only, so float64 ones stay on im2col. So do
 * ungrouped 3x3 stride-1 ones for Winograd, which pays from WINO_MIN channels on both
 * sides, WINO_MIN_OUT outputs on each axis and WINO_MIN_OUTPUTS over the batch: when the
 * weights were still transformed on every run, that transform and the weight-bound
 * 16-column GEMMs made resnet18 1.8x slower on its 7x7 layers at batch 1 (49 outputs,
 * 512 x 512 weights); from batch 4 (196 outputs) they paid. The thresholds have not been
 * measured again since the weights are prepacked once per plan (conv_prepack). */
#define WINO_MIN         16
#define WINO_MIN_OUT     4
#define WINO_MIN_OUTPUTS 196

static conv_algo conv_pick(const cs__conv_shape *c, cs_dtype t)
{
    const cs__window *w = &c->w;
    if (!c->transpose && c->group > 1 && c->Cg == 1 && w->nd == 2 && t != CS_DTYPE_FLOAT64)
        return CONV_DEPTHWISE;
    if (!c->transpose && c->group == 1 && w->nd == 2 && t != CS_DTYPE_FLOAT64 && c->C >= WINO_MIN &&
        c->M >= WINO_MIN && w->out[0] >= WINO_MIN_OUT && w->out[1] >= WINO_MIN_OUT &&
        c->N * w->out_size >= WINO_MIN_OUTPUTS && w->k[0] == 3 && w->k[1] == 3 && w->s[0] == 1 &&
        w->s[1] == 1 && w->d[0] == 1 && w->d[1] == 1)
        return CONV_WINOGRAD;
    for (int j = 0; j < w->nd; j++)
        if (w->k[j] != 1 || w->s[j] != 1 || w->pb[j] != 0 || w->in[j] != w->out[j])
            return CONV_IM2COL;
    return CONV_POINTWISE;
}

static cs_status conv_plan_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                                bool transpose, conv_plan *p, cs_error *err)
{
    cs_status rc = cs__conv_shape_init(n, in, n_in, transpose, &p->c, NULL, err);
    if (rc == CS_OK) p->algo = conv_pick(&p->c, in[0]->dtype);
    return rc;
}

/* --- direct depthwise -------------------------------------------------------------------- */

typedef struct dw_args {
    const cs__conv_shape *c;
    const float *x, *w, *b;
    float *y;
    const cs__act *act;
    bool avx512; /* cs__cpu_avx512(): 3x3 taps and the clamp through dw512.c */
    bool plane;  /* and a 3x3 filter at stride 1: whole planes by cs__dw512_plane3x3 */
} dw_args;

/* y[o] += sum over kernel rows r < nr and taps j < nk of k[r*nk + j] * x[r*xs + o*s + base +
 * j*d], for o in [lo, hi) where every tap lands inside its row. Inlined with nr, nk and s
 * literals (a 3x3 kernel, or one row of 3, at stride 1 or 2), the taps unroll into
 * registers, y is loaded and stored once per nr*nk multiply-adds, and the loop over o
 * vectorises; other kernel widths run it one tap at a time. */
static inline void taps(float *restrict y, const float *restrict x, int64_t xs,
                        const float *restrict k, int64_t nr, int64_t nk, int64_t base, int64_t d,
                        int64_t s, int64_t lo, int64_t hi)
{
    for (int64_t o = lo; o < hi; o++) {
        float acc = y[o];
        for (int64_t r = 0; r < nr; r++)
            for (int64_t j = 0; j < nk; j++)
                acc += k[r * nk + j] * x[r * xs + o * s + base + j * d];
        y[o] = acc;
    }
}

/* Output columns [from, to) of one kernel row with a bounds check on every tap: the border. */
static void border(float *restrict y, const float *restrict x, const float *restrict k,
                   const cs__window *w, int64_t from, int64_t to)
{
    for (int64_t o = from; o < to; o++)
        for (int64_t j = 0; j < w->k[1]; j++) {
            int64_t i = o * w->s[1] - w->pb[1] + j * w->d[1];
            if (i >= 0 && i < w->in[1]) y[o] += k[j] * x[i];
        }
}

/* Kernel rows k[r*k_w ..] for r < nr over the input rows x + r*d_h*W into output row y: the
 * interior columns [lo, hi), where all k_w taps land inside the row, through taps() - a
 * whole 3x3 kernel in one pass when nr is 3 -, the few border columns on either side,
 * where some taps fall into padding, through border(). */
static void kernel_rows(float *restrict y, const float *restrict x, const float *restrict k,
                        int64_t nr, const cs__window *w, int64_t lo, int64_t hi, bool avx512)
{
    int64_t k_w = w->k[1], d = w->d[1], s = w->s[1], base = -w->pb[1], xs = w->d[0] * w->in[1];
    if (avx512 && nr == 3 && k_w == 3 && (s == 1 || s == 2))
        cs__dw512_taps3x3(y, x, xs, k, base, d, s, lo, hi);
    else if (nr == 3 && k_w == 3 && s == 1)
        taps(y, x, xs, k, 3, 3, base, d, 1, lo, hi);
    else if (nr == 3 && k_w == 3 && s == 2)
        taps(y, x, xs, k, 3, 3, base, d, 2, lo, hi);
    else
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = x + r * xs, *kr = k + r * k_w;
            if (k_w == 3 && s == 1)
                taps(y, xr, 0, kr, 1, 3, base, d, 1, lo, hi);
            else if (k_w == 3 && s == 2)
                taps(y, xr, 0, kr, 1, 3, base, d, 2, lo, hi);
            else
                for (int64_t j = 0; j < k_w; j++)
                    taps(y, xr, 0, kr + j, 1, 1, base + j * d, d, s, lo, hi);
        }
    for (int64_t r = 0; r < nr; r++) {
        border(y, x + r * xs, k + r * k_w, w, 0, lo);
        border(y, x + r * xs, k + r * k_w, w, hi, w->out[1]);
    }
}

/* Output planes [begin, end) of a 2-D depthwise Conv: plane p is image p / M, output channel
 * m = p % M, which reads input channel m / Mg alone. Where im2col would copy k_size shifted
 * copies of the plane and run a one-row GEMM per channel, each output row here starts at
 * the bias and adds the kernel: all its rows at once where they all land inside the image,
 * else one kernel row per input row inside it, skipping rows of padding. The output row
 * stays in L1, where the fused activation then passes over it, and nothing is copied or
 * allocated. On AVX-512 a 3x3 stride-1 plane goes whole to cs__dw512_plane3x3 instead,
 * which pads bands of it on the stack and has no per-row work. */
static void dw_planes(void *p, int64_t begin, int64_t end)
{
    const dw_args *a = p;
    const cs__conv_shape *c = a->c;
    const cs__window *w = &c->w;
    int64_t in_h = w->in[0], in_w = w->in[1], out_w = w->out[1], k_h = w->k[0], k_w = w->k[1];
    /* The interior: from the first column the leftmost tap reaches inside the row to the
     * last one the rightmost tap does. */
    int64_t lo, hi, lo_last, hi_first;
    inside(-w->pb[1], w->s[1], in_w, out_w, &lo, &hi_first);
    inside((k_w - 1) * w->d[1] - w->pb[1], w->s[1], in_w, out_w, &lo_last, &hi);
    if (hi < lo) hi = lo;
    for (int64_t pl = begin; pl < end; pl++) {
        int64_t m = pl % c->M;
        const float *x = a->x + (pl / c->M * c->C + m / c->Mg) * w->in_size;
        const float *k = a->w + m * w->k_size;
        float *y = a->y + pl * w->out_size, bias = a->b ? a->b[m] : 0.0f;
        if (a->plane) {
            cs__dw512_plane3x3(y, w->out[0], out_w, x, in_h, in_w, w->pb[0], w->pb[1], k, bias);
            if (a->act->kind != CS__ACT_NONE)
                cs__dw512_clamp(y, w->out_size, (float)a->act->lo, (float)a->act->hi);
            continue;
        }
        for (int64_t oh = 0; oh < w->out[0]; oh++, y += out_w) {
            for (int64_t o = 0; o < out_w; o++) y[o] = bias;
            int64_t ih = oh * w->s[0] - w->pb[0];
            if (ih >= 0 && ih + (k_h - 1) * w->d[0] < in_h)
                kernel_rows(y, x + ih * in_w, k, k_h, w, lo, hi, a->avx512);
            else
                for (int64_t kh = 0; kh < k_h; kh++, ih += w->d[0])
                    if (ih >= 0 && ih < in_h)
                        kernel_rows(y, x + ih * in_w, k + kh * k_w, 1, w, lo, hi, a->avx512);
            if (a->act->kind != CS__ACT_NONE && a->avx512)
                cs__dw512_clamp(y, out_w, (float)a->act->lo, (float)a->act->hi);
            else if (a->act->kind != CS__ACT_NONE)
                cs__act_apply(a->act, CS_DTYPE_FLOAT32, y, out_w);
        }
    }
}

/* All N*M planes across the pool, in chunks of at least ~16K multiply-adds so that the
 * small late layers (7x7 planes) do not pay a thread wake-up for a few hundred. */
static void depthwise(cs__kctx *ctx, const cs__conv_shape *c, const cs_tensor *x,
                      const cs_tensor *wt, const cs_tensor *b, cs_tensor *y, const cs__act *act)
{
    const cs__window *w = &c->w;
    bool avx512 = cs__cpu_avx512();
    bool plane = avx512 && w->k[0] == 3 && w->k[1] == 3 && w->s[0] == 1 && w->s[1] == 1 &&
                 w->d[0] == 1 && w->d[1] == 1 && w->out[1] <= CS__DW512_PLANE_MAX_W;
    dw_args a = {c, x->data, wt->data, b ? b->data : NULL, y->data, act, avx512, plane};
    int64_t work = c->w.out_size * c->w.k_size;
    cs__parallel_for(ctx, c->N * c->M, 1 + (1 << 14) / work, dw_planes, &a);
}

/* --- kernels ----------------------------------------------------------------------------- */

/* Elements of the algorithm's own scratch: im2col's column matrix or Winograd's buffers. */
static size_t col_elems(const conv_plan *p)
{
    const cs__conv_shape *c = &p->c;
    if (p->algo == CONV_WINOGRAD) return cs__winograd_scratch(&c->w, c->N, c->C, c->M);
    if (p->algo != CONV_IM2COL) return 0;
    return (size_t)((c->transpose ? c->Mg : c->Cg) * c->w.k_size * c->w.out_size);
}

/* Bytes of scratch: the algorithm's, then float32 copies of X, W, B and Y for float16.
 * The algorithm's comes first so that it keeps the scratch's 64-byte alignment. */
static size_t conv_scratch_bytes(const conv_plan *c, const cs_tensor *const *in, int n_in,
                                 const cs_tensor *y)
{
    cs_dtype t = in[0]->dtype;
    if (t != CS_DTYPE_FLOAT16) return col_elems(c) * cs_dtype_size(t);
    int64_t wide = cs__numel(in[0]) + cs__numel(in[1]) + cs__numel(y);
    if (n_in > 2 && in[2]) wide += cs__numel(in[2]);
    return (col_elems(c) + (size_t)wide) * sizeof(float);
}

static void widen(const cs_tensor *t, float *restrict dst)
{
    const uint16_t *src = t->data;
    for (int64_t i = 0, n = cs__numel(t); i < n; i++) dst[i] = cs__f16_to_f32(src[i]);
}

static void narrow(cs_tensor *t, const float *restrict src)
{
    uint16_t *dst = t->data;
    for (int64_t i = 0, n = cs__numel(t); i < n; i++) dst[i] = cs__f32_to_f16(src[i]);
}

/* A float32 copy of float16 tensor t at *cursor in scratch; advances the cursor. */
static cs_tensor wide_copy(const cs_tensor *t, float **cursor, bool fill)
{
    cs_tensor w = *t;
    w.dtype = CS_DTYPE_FLOAT32;
    w.data = *cursor;
    *cursor += cs__numel(t);
    if (fill) widen(t, w.data);
    return w;
}

/* The convolution proper on float32 or float64 tensors, with the fused activation act;
 * col is the column matrix. */
static void conv_compute(cs__kctx *ctx, const conv_plan *p, const cs_tensor *x, const cs_tensor *wt,
                         const cs_tensor *b, cs_tensor *y, void *col, const cs__act *act)
{
    const cs__conv_shape *c = &p->c;
    cs_dtype t = x->dtype;
    size_t es = cs_dtype_size(t);
    const cs__window *w = &c->w;
    /* Per-group strides, in elements, of X, W and Y. */
    int64_t xs = c->Cg * (c->transpose ? w->out_size : w->in_size);
    int64_t ws = c->Mg * c->Cg * w->k_size;
    int64_t ys = c->Mg * (c->transpose ? w->in_size : w->out_size);
    int64_t rows = (c->transpose ? c->Mg : c->Cg) * w->k_size;
    if (ys == 0) return;
    if (p->algo == CONV_DEPTHWISE) {
        depthwise(ctx, c, x, wt, b, y, act);
        return;
    }
    if (p->algo == CONV_WINOGRAD) {
        /* Prepacked weights are float32 ones (conv_prepack), so a widened float16 run has none. */
        const float *u = x->dtype == CS_DTYPE_FLOAT32 ? ctx->packed : NULL;
        cs__winograd(ctx, w, c->N, c->C, c->M, x->data, wt->data, u, b ? b->data : NULL, y->data,
                     col, act);
        return;
    }
    /* Weights prepacked for pgemm.c (conv_prepack): float32 runs of ungrouped-per-group
     * products, whose GEMM and epilogue it does in one pass. */
    const float *packed = !c->transpose && t == CS_DTYPE_FLOAT32 ? ctx->packed : NULL;
    size_t packed_stride = cs__pgemm_weights_floats(c->Mg, rows);
    for (int64_t i = 0; i < c->N * c->group; i++) {
        int64_t g = i % c->group;
        const char *xg = (const char *)x->data + (size_t)(i * xs) * es;
        const char *wg = (const char *)wt->data + (size_t)(g * ws) * es;
        char *yg = (char *)y->data + (size_t)(i * ys) * es;
        if (c->transpose) {
            if (p->algo == CONV_POINTWISE) {
                blas(ctx, t, true, c->Mg, w->out_size, c->Cg, wg, xg, yg);
            } else {
                blas(ctx, t, true, rows, w->out_size, c->Cg, wg, xg, col);
                memset(yg, 0, (size_t)ys * es);
                walk_args a = {w, t, yg, col, true};
                cs__parallel_for(ctx, c->Mg, 1, walk_channels, &a);
            }
        } else {
            const void *cols = xg;
            if (p->algo == CONV_IM2COL) {
                /* Gather only reads the image; the walker's pointer is shared with scatter. */
                walk_args a = {w, t, (void *)xg, col, false};
                cs__parallel_for(ctx, c->Cg, 1, walk_channels, &a);
                cols = col;
            }
            if (packed) {
                cs__pgemm(ctx, c->Mg, w->out_size, rows, packed + g * packed_stride, cols,
                          b ? (const float *)b->data + g * c->Mg : NULL, act, (float *)yg);
                continue;
            }
            blas(ctx, t, false, c->Mg, w->out_size, rows, wg, cols, yg);
        }
        epilogue(ctx, t, yg, c->Mg, ys / c->Mg,
                 b ? (const char *)b->data + (size_t)(g * c->Mg) * es : NULL, act);
    }
}

static cs_status conv_run_common(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                 cs_tensor *out, bool transpose)
{
    conv_plan c = {0};
    cs_status rc = conv_plan_init(ctx->node, in, n_in, transpose, &c, ctx->err);
    if (rc != CS_OK) return rc;
    if (ctx->scratch_size < conv_scratch_bytes(&c, in, n_in, &out[0]))
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "scratch memory too small");
    const cs_tensor *b = n_in > 2 ? in[2] : NULL;
    const cs__act none = {CS__ACT_NONE, 0, 0}, *act = ctx->act ? ctx->act : &none;
    if (in[0]->dtype != CS_DTYPE_FLOAT16) {
        conv_compute(ctx, &c, in[0], in[1], b, &out[0], ctx->scratch, act);
        return CS_OK;
    }
    float *cursor = (float *)ctx->scratch + col_elems(&c);
    cs_tensor x = wide_copy(in[0], &cursor, true), wt = wide_copy(in[1], &cursor, true);
    cs_tensor y = wide_copy(&out[0], &cursor, false), wb;
    if (b) wb = wide_copy(b, &cursor, true);
    conv_compute(ctx, &c, &x, &wt, b ? &wb : NULL, &y, ctx->scratch, act);
    narrow(&out[0], y.data);
    return CS_OK;
}

static size_t scratch_common(const cs__node *n, const cs_tensor *const *in, int n_in,
                             const cs_tensor *out, bool transpose)
{
    conv_plan c = {0};
    if (conv_plan_init(n, in, n_in, transpose, &c, NULL) != CS_OK) return 0;
    return conv_scratch_bytes(&c, in, n_in, &out[0]);
}

static size_t conv_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out)
{
    return scratch_common(n, in, n_in, out, false);
}

static size_t convt_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                            const cs_tensor *out, int n_out)
{
    return scratch_common(n, in, n_in, out, true);
}

/* Float32 weights known at plan time are transformed once per plan rather than on every
 * run, kept as long as the plan: Winograd's (16/9 of the weights' size), or, for the 1x1
 * and im2col paths on a CPU with AVX-512, each group's [Mg, Cg * kernel] matrix in
 * pgemm.c's panels (the weights' size, rows padded to a multiple of 8). */
static size_t conv_prepack(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out, void *dst)
{
    const cs__node *n = ctx->node;
    conv_plan p = {0};
    if (in[0]->dtype != CS_DTYPE_FLOAT32 || !in[1]->data ||
        conv_plan_init(n, in, n_in, false, &p, NULL) != CS_OK)
        return 0;
    const cs__conv_shape *c = &p.c;
    if (p.algo == CONV_WINOGRAD) {
        if (dst) cs__winograd_weights(c->C, c->M, in[1]->data, dst);
        return cs__winograd_weights_floats(c->C, c->M) * sizeof(float);
    }
    if ((p.algo != CONV_POINTWISE && p.algo != CONV_IM2COL) || !cs__cpu_avx512()) return 0;
    int64_t k = c->Cg * c->w.k_size;
    size_t per_group = cs__pgemm_weights_floats(c->Mg, k);
    for (int64_t g = 0; dst && g < c->group; g++)
        cs__pgemm_weights(c->Mg, k, (const float *)in[1]->data + g * c->Mg * k,
                          (float *)dst + g * per_group);
    return per_group * (size_t)c->group * sizeof(float);
}

static cs_status conv_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    return conv_run_common(ctx, in, n_in, out, false);
}

static cs_status convt_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                           int n_out)
{
    return conv_run_common(ctx, in, n_in, out, true);
}

const cs__kernel cs__kernels_conv[] = {
    {"Conv", "", 1, T_CONV, 0, conv_run, conv_scratch, CS__K_FUSE_ACT, conv_prepack},
    {"ConvTranspose", "", 1, T_CONV, 0, convt_run, convt_scratch},
    {0},
};

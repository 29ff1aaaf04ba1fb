/*
 * resize.c - CPU kernels for Resize (opsets 10, 11, 13) and Upsample (opsets 7, 9); their
 * schemas (shape and type inference) and the arguments both read (ops/resize.h) are in
 * ops/resize.c.
 *
 * Interpolation is separable: every output coordinate of an axis maps to at most four
 * source coordinates with weights ("taps"), whichever mode and coordinate transformation
 * the node uses. run() computes the taps of every axis once into scratch memory
 * (72 bytes per output coordinate per axis), then each output element is the weighted sum
 * over the product of its axes' taps. Taps with weight zero are dropped, so an axis that is
 * not resized costs one tap and nearest mode is a plain copy of one element (exact for
 * every type). Linear and cubic accumulate in double; float32 reads and writes directly,
 * other types convert per element.
 *
 * The taps follow the ONNX reference (onnx/backend/test/case/node/resize.py): the resized
 * length is scale * input length even when it is not a whole number, a coordinate that
 * falls exactly on a source element takes the left neighbourhood (ratio 1), and neighbours
 * past the edges repeat the edge element.
 */
#include "engine/kernel.h"
#include "engine/ops/resize.h"

#include <string.h>

/* The taps of one output coordinate; n == 0 means outside the crop (extrapolate). */
typedef struct rs_tap {
    int64_t off[4]; /* source index times the axis stride */
    double w[4];
    int64_t n;
} rs_tap;

static size_t resize_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                             const cs_tensor *out, int n_out)
{
    (void)n, (void)in, (void)n_in, (void)n_out;
    int64_t total = 0;
    for (int d = 0; d < out->rank; d++) total += out->dims[d];
    return (size_t)total * sizeof(rs_tap);
}

static void cubic_coeffs(double r, double A, double *c)
{
    double s = 1 - r;
    c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    c[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
    c[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
}

/* Source coordinate of output coordinate x on an axis of input length len; false when
 * tf_crop_and_resize puts it outside the input. */
static bool source_coord(const cs__resize_args *a, int d, int rank, double x, int64_t len,
                         double *out)
{
    double s = a->scale[d], resized = s * (double)len, v;
    switch (a->coord) {
    case CS__RESIZE_HALF_PIXEL: v = (x + 0.5) / s - 0.5; break;
    case CS__RESIZE_PYTORCH_HALF_PIXEL: v = resized > 1 ? (x + 0.5) / s - 0.5 : 0; break;
    case CS__RESIZE_ALIGN_CORNERS:
        v = resized == 1 ? 0 : x * (double)(len - 1) / (resized - 1);
        break;
    case CS__RESIZE_TF_HALF_PIXEL_FOR_NN: v = (x + 0.5) / s; break;
    case CS__RESIZE_TF_CROP_AND_RESIZE: {
        double lo = a->roi[d], hi = a->roi[d + rank], span = (double)(len - 1);
        v = resized > 1 ? lo * span + x * (hi - lo) * span / (resized - 1) : (lo + hi) / 2 * span;
        if (v < 0 || v > span) return false;
        break;
    }
    default: v = x / s; break;
    }
    *out = v;
    return true;
}

/* The taps of output coordinate x on axis d (input length len, element stride stride). */
static void axis_taps(const cs__resize_args *a, int d, int rank, int64_t x, int64_t len,
                      int64_t stride, rs_tap *t)
{
    double v;
    t->n = 0;
    if (!source_coord(a, d, rank, (double)x, len, &v)) return;
    /* The left neighbour is ceil(v) - 1, so that ratio lies in (0, 1]. */
    double base = ceil(v) - 1, ratio = v - base, w[4];
    int64_t first, count;
    if (a->mode == CS__RESIZE_NEAREST) {
        bool right;
        switch (a->round) {
        case CS__RESIZE_ROUND_PREFER_FLOOR: right = ratio > 0.5; break;
        case CS__RESIZE_ROUND_PREFER_CEIL: right = ratio >= 0.5; break;
        case CS__RESIZE_FLOOR: right = ratio == 1; break;
        case CS__RESIZE_CEIL: right = true; break;
        default: right = a->scale[d] < 1 || ratio == 1; break;
        }
        first = (int64_t)base + right;
        count = 1;
        w[0] = 1;
    } else if (a->mode == CS__RESIZE_LINEAR) {
        first = (int64_t)base;
        count = 2;
        w[0] = 1 - ratio;
        w[1] = ratio;
    } else {
        first = (int64_t)base - 1;
        count = 4;
        cubic_coeffs(ratio, a->cubic_a, w);
        if (a->exclude_outside) {
            double sum = 0;
            for (int k = 0; k < 4; k++) {
                if (first + k < 0 || first + k >= len) w[k] = 0;
                sum += w[k];
            }
            for (int k = 0; k < 4 && sum != 0; k++) w[k] /= sum;
        }
    }
    for (int k = 0; k < count; k++) {
        if (w[k] == 0) continue;
        int64_t i = first + k;
        i = i < 0 ? 0 : i >= len ? len - 1 : i;
        t->off[t->n] = i * stride;
        t->w[t->n++] = w[k];
    }
}

typedef struct rs_job {
    const cs_tensor *x;
    cs_tensor *y;
    const cs__resize_args *a;
    const rs_tap *taps[CS_MAX_RANK]; /* per axis, indexed by output coordinate */
} rs_job;

/* Output elements [begin, end): each sums its taps' product with an odometer over axes. */
static void resize_range(void *arg, int64_t begin, int64_t end)
{
    const rs_job *j = arg;
    const cs_tensor *x = j->x;
    cs_tensor *y = j->y;
    int r = y->rank;
    size_t es = cs_dtype_size(x->dtype);
    const uint8_t *src = x->data;
    int64_t coord[CS_MAX_RANK];
    int64_t q = begin;
    for (int d = r - 1; d >= 0; d--) {
        coord[d] = q % y->dims[d];
        q /= y->dims[d];
    }
    for (int64_t i = begin; i < end; i++) {
        const rs_tap *t[CS_MAX_RANK];
        bool outside = false;
        for (int d = 0; d < r; d++) {
            t[d] = &j->taps[d][coord[d]];
            outside |= t[d]->n == 0;
        }
        if (outside) {
            cs_tensor_set_f64(y, i, j->a->extrapolation);
        } else if (j->a->mode == CS__RESIZE_NEAREST) {
            int64_t off = 0;
            for (int d = 0; d < r; d++) off += t[d]->off[0];
            memcpy((uint8_t *)y->data + i * (int64_t)es, src + off * (int64_t)es, es);
        } else {
            int64_t k[CS_MAX_RANK] = {0};
            double acc = 0;
            for (;;) {
                int64_t off = 0;
                double w = 1;
                for (int d = 0; d < r; d++) {
                    off += t[d]->off[k[d]];
                    w *= t[d]->w[k[d]];
                }
                acc += w * (x->dtype == CS_DTYPE_FLOAT32 ? ((const float *)src)[off]
                                                         : cs_tensor_get_f64(x, off));
                int d = r - 1;
                while (d >= 0 && ++k[d] == t[d]->n) k[d--] = 0;
                if (d < 0) break;
            }
            if (y->dtype == CS_DTYPE_FLOAT32)
                ((float *)y->data)[i] = (float)acc;
            else
                cs_tensor_set_f64(y, i, acc);
        }
        for (int d = r - 1; d >= 0 && ++coord[d] == y->dims[d]; d--) coord[d] = 0;
    }
}

static cs_status resize_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    const cs_tensor *x = in[0];
    cs__resize_args a;
    cs_status rc = cs__resize_args_read(ctx->node, in, n_in, &a, ctx->err);
    if (rc) return rc;
    size_t need = resize_scratch(ctx->node, in, n_in, out, n_out);
    if (need > ctx->scratch_size)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL,
                              "scratch of %zu bytes is smaller than the %zu needed",
                              ctx->scratch_size, need);
    if (cs__numel(x) == 0 && cs__numel(out) > 0)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INVALID,
                              "cannot resize an empty tensor to a non-empty one");
    rs_job j = {x, out, &a, {0}};
    rs_tap *taps = ctx->scratch;
    int64_t stride[CS_MAX_RANK];
    cs__strides(x, stride);
    for (int d = 0; d < x->rank; d++) {
        j.taps[d] = taps;
        for (int64_t o = 0; o < out->dims[d]; o++)
            axis_taps(&a, d, x->rank, o, x->dims[d], stride[d], taps++);
    }
    cs__parallel_for(ctx, cs__numel(out), 1024, resize_range, &j);
    return CS_OK;
}

const cs__kernel cs__kernels_resize[] = {
    {"Upsample", NULL, 7, CS__T_ALL, 0, resize_run, resize_scratch},
    {"Resize", NULL, 10, CS__T_ALL, 0, resize_run, resize_scratch},
    {0},
};

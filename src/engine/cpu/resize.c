/*
 * resize.c - CPU kernels for Resize (opsets 10, 11, 13) and Upsample (opsets 7, 9).
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

#include <string.h>

typedef enum rs_mode { RS_NEAREST, RS_LINEAR, RS_CUBIC } rs_mode;

typedef enum rs_coord {
    RS_HALF_PIXEL,
    RS_PYTORCH_HALF_PIXEL,
    RS_ALIGN_CORNERS,
    RS_ASYMMETRIC,
    RS_TF_HALF_PIXEL_FOR_NN,
    RS_TF_CROP_AND_RESIZE,
} rs_coord;

typedef enum rs_round {
    RS_ROUND_PREFER_FLOOR,
    RS_ROUND_PREFER_CEIL,
    RS_FLOOR,
    RS_CEIL,
    RS_SIMPLE, /* opset < 11: floor when upsampling, ceil when downsampling */
} rs_round;

typedef struct rs_args {
    rs_mode mode;
    rs_coord coord;
    rs_round round;
    double cubic_a, extrapolation;
    bool exclude_outside;
    double scale[CS_MAX_RANK];
    double roi[2 * CS_MAX_RANK];
    int64_t out_dims[CS_MAX_RANK];
} rs_args;

/* The taps of one output coordinate; n == 0 means outside the crop (extrapolate). */
typedef struct rs_tap {
    int64_t off[4]; /* source index times the axis stride */
    double w[4];
    int64_t n;
} rs_tap;

/* Matches s against names[0..count); returns the index or -1. */
static int pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static cs_status read_enum(const cs__node *n, const char *attr, const char *def,
                           const char *const *names, int count, int *out, cs_error *err)
{
    const char *s = cs__attr_str(n, attr, def);
    *out = pick(s, names, count);
    if (*out < 0) return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "unsupported %s '%s'", attr, s);
    return CS_OK;
}

static bool present(const cs_tensor *const *in, int n_in, int i)
{
    return i < n_in && in[i] && cs__numel(in[i]) > 0;
}

/* Reads the mode attributes, then the scales or sizes, from attributes (Upsample-7) or
 * inputs (the others); returns CS__DEFER while an input they come from is unknown. */
static cs_status read_args(const cs__node *n, const cs_tensor *const *in, int n_in, rs_args *a,
                           cs_error *err)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {"half_pixel",           "pytorch_half_pixel",
                                         "align_corners",        "asymmetric",
                                         "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const rounds[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
    const cs_tensor *x = in[0];
    bool v11 = !strcmp(n->op_type, "Resize") && n->opset >= 11;
    int mode, coord = RS_ASYMMETRIC, round = RS_SIMPLE;
    cs_status rc = read_enum(n, "mode", "nearest", modes, v11 ? 3 : 2, &mode, err);
    if (rc) return rc;
    if (v11) {
        if ((rc = read_enum(n, "coordinate_transformation_mode", "half_pixel", coords, 6, &coord,
                            err)) ||
            (rc = read_enum(n, "nearest_mode", "round_prefer_floor", rounds, 4, &round, err)))
            return rc;
        if (coord == RS_TF_HALF_PIXEL_FOR_NN && n->opset >= 13)
            return cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                                  "tf_half_pixel_for_nn was removed in opset 13");
    }
    a->mode = (rs_mode)mode;
    a->coord = (rs_coord)coord;
    a->round = (rs_round)round;
    a->cubic_a = cs__attr_float(n, "cubic_coeff_a", -0.75f);
    a->extrapolation = cs__attr_float(n, "extrapolation_value", 0.0f);
    a->exclude_outside = cs__attr_int(n, "exclude_outside", 0) != 0;

    int r = x->rank;
    if (r < 1) return cs__node_error(err, n, CS_ERR_INVALID, "X must have rank >= 1");
    const cs_tensor *scales = NULL, *sizes = NULL;
    if (!strcmp(n->op_type, "Upsample") && n->opset < 9) {
        const float *f;
        int count = cs__attr_floats(n, "scales", &f);
        if (count != r)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "the 'scales' attribute must hold %d values, got %d", r, count);
        for (int d = 0; d < r; d++) a->scale[d] = f[d];
    } else if (!v11) {
        scales = in[1];
    } else {
        scales = present(in, n_in, 2) ? in[2] : NULL;
        sizes = present(in, n_in, 3) ? in[3] : NULL;
        if (!scales == !sizes)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "exactly one of scales and sizes must be given");
    }
    const cs_tensor *given = sizes ? sizes : scales;
    if (given) {
        if (!given->data) return CS__DEFER;
        if (cs__numel(given) != r)
            return cs__node_error(err, n, CS_ERR_INVALID, "%s must hold %d values, got %lld",
                                  sizes ? "sizes" : "scales", r, (long long)cs__numel(given));
        for (int d = 0; d < r; d++) {
            if (sizes) {
                int64_t s = cs_tensor_get_i64(sizes, d);
                if (s < 1)
                    return cs__node_error(err, n, CS_ERR_INVALID,
                                          "sizes[%d] is %lld; it must be positive", d,
                                          (long long)s);
                a->out_dims[d] = s;
                a->scale[d] = x->dims[d] ? (double)s / (double)x->dims[d] : 1.0;
            } else {
                a->scale[d] = cs_tensor_get_f64(scales, d);
            }
        }
    }
    /* Bounded so that a wild scale cannot overflow the element count. */
    double total = 1;
    for (int d = 0; d < r; d++) {
        if (!sizes && !(a->scale[d] > 0 && a->scale[d] * (double)x->dims[d] < 0x1p62))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "scale %g for axis %d must be positive and finite", a->scale[d],
                                  d);
        if (!sizes) a->out_dims[d] = (int64_t)floor(a->scale[d] * (double)x->dims[d]);
        total *= (double)a->out_dims[d];
    }
    if (total >= 0x1p62)
        return cs__node_error(err, n, CS_ERR_LIMIT, "the output would have %g elements", total);
    if (a->coord == RS_TF_CROP_AND_RESIZE) {
        const cs_tensor *roi = present(in, n_in, 1) ? in[1] : NULL;
        if (!roi || cs__numel(roi) != 2 * r)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "tf_crop_and_resize needs roi with %d values", 2 * r);
        if (!roi->data) return CS__DEFER;
        for (int d = 0; d < 2 * r; d++) a->roi[d] = cs_tensor_get_f64(roi, d);
    }
    return CS_OK;
}

static cs_status resize_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_out;
    rs_args a;
    cs_status rc = read_args(n, in, n_in, &a, err);
    if (rc) return rc;
    cs__same_shape(out, in[0]);
    memcpy(out->dims, a.out_dims, sizeof(int64_t) * (size_t)out->rank);
    return CS_OK;
}

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
static bool source_coord(const rs_args *a, int d, int rank, double x, int64_t len, double *out)
{
    double s = a->scale[d], resized = s * (double)len, v;
    switch (a->coord) {
    case RS_HALF_PIXEL: v = (x + 0.5) / s - 0.5; break;
    case RS_PYTORCH_HALF_PIXEL: v = resized > 1 ? (x + 0.5) / s - 0.5 : 0; break;
    case RS_ALIGN_CORNERS: v = resized == 1 ? 0 : x * (double)(len - 1) / (resized - 1); break;
    case RS_TF_HALF_PIXEL_FOR_NN: v = (x + 0.5) / s; break;
    case RS_TF_CROP_AND_RESIZE: {
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
static void axis_taps(const rs_args *a, int d, int rank, int64_t x, int64_t len, int64_t stride,
                      rs_tap *t)
{
    double v;
    t->n = 0;
    if (!source_coord(a, d, rank, (double)x, len, &v)) return;
    /* The left neighbour is ceil(v) - 1, so that ratio lies in (0, 1]. */
    double base = ceil(v) - 1, ratio = v - base, w[4];
    int64_t first, count;
    if (a->mode == RS_NEAREST) {
        bool right;
        switch (a->round) {
        case RS_ROUND_PREFER_FLOOR: right = ratio > 0.5; break;
        case RS_ROUND_PREFER_CEIL: right = ratio >= 0.5; break;
        case RS_FLOOR: right = ratio == 1; break;
        case RS_CEIL: right = true; break;
        default: right = a->scale[d] < 1 || ratio == 1; break;
        }
        first = (int64_t)base + right;
        count = 1;
        w[0] = 1;
    } else if (a->mode == RS_LINEAR) {
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
    const rs_args *a;
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
        } else if (j->a->mode == RS_NEAREST) {
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
    rs_args a;
    cs_status rc = read_args(ctx->node, in, n_in, &a, ctx->err);
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

const cs__op cs__ops_resize[] = {
    {"Upsample", NULL, 7, resize_infer},
    {"Resize", NULL, 10, resize_infer},
    {0},
};

const cs__kernel cs__kernels_resize[] = {
    {"Upsample", NULL, 7, CS__T_ALL, 0, resize_run, resize_scratch},
    {"Resize", NULL, 10, CS__T_ALL, 0, resize_run, resize_scratch},
    {0},
};

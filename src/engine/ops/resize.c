/*
 * resize.c - schemas of Resize (opsets 10, 11, 13) and Upsample (opsets 7, 9): shape and
 * type inference, apart from any backend.
 *
 * The output keeps X's type; each axis's length is sizes[d], or floor(scale * input
 * length) with scales from the attribute (Upsample-7) or an input, which infer defers on
 * while unknown. The mode attributes, scales and roi are read once by cs__resize_args_read
 * (ops/resize.h), which the kernels call too. Outputs past 2^62 elements are refused.
 */
#include "engine/ops/resize.h"

#include <math.h>
#include <string.h>

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
cs_status cs__resize_args_read(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs__resize_args *a, cs_error *err)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {"half_pixel",           "pytorch_half_pixel",
                                         "align_corners",        "asymmetric",
                                         "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const rounds[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
    const cs_tensor *x = in[0];
    bool v11 = !strcmp(n->op_type, "Resize") && n->opset >= 11;
    int mode, coord = CS__RESIZE_ASYMMETRIC, round = CS__RESIZE_SIMPLE;
    cs_status rc = read_enum(n, "mode", "nearest", modes, v11 ? 3 : 2, &mode, err);
    if (rc) return rc;
    if (v11) {
        if ((rc = read_enum(n, "coordinate_transformation_mode", "half_pixel", coords, 6, &coord,
                            err)) ||
            (rc = read_enum(n, "nearest_mode", "round_prefer_floor", rounds, 4, &round, err)))
            return rc;
        if (coord == CS__RESIZE_TF_HALF_PIXEL_FOR_NN && n->opset >= 13)
            return cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                                  "tf_half_pixel_for_nn was removed in opset 13");
    }
    a->mode = (cs__resize_mode)mode;
    a->coord = (cs__resize_coord)coord;
    a->round = (cs__resize_round)round;
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
    if (a->coord == CS__RESIZE_TF_CROP_AND_RESIZE) {
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
    cs__resize_args a;
    cs_status rc = cs__resize_args_read(n, in, n_in, &a, err);
    if (rc) return rc;
    cs__same_shape(out, in[0]);
    memcpy(out->dims, a.out_dims, sizeof(int64_t) * (size_t)out->rank);
    return CS_OK;
}

const cs__op cs__ops_resize[] = {
    {"Upsample", NULL, 7, resize_infer},
    {"Resize", NULL, 10, resize_infer},
    {0},
};

/*
 * resize.h - what Resize's and Upsample's schemas (ops/resize.c) and their kernels
 * (cpu/resize.c) share (internal): the node's arguments, read and checked once.
 */
#ifndef CS_ENGINE_OPS_RESIZE_H
#define CS_ENGINE_OPS_RESIZE_H

#include "engine/op.h"

typedef enum cs__resize_mode {
    CS__RESIZE_NEAREST,
    CS__RESIZE_LINEAR,
    CS__RESIZE_CUBIC
} cs__resize_mode;

typedef enum cs__resize_coord {
    CS__RESIZE_HALF_PIXEL,
    CS__RESIZE_PYTORCH_HALF_PIXEL,
    CS__RESIZE_ALIGN_CORNERS,
    CS__RESIZE_ASYMMETRIC,
    CS__RESIZE_TF_HALF_PIXEL_FOR_NN,
    CS__RESIZE_TF_CROP_AND_RESIZE,
} cs__resize_coord;

typedef enum cs__resize_round {
    CS__RESIZE_ROUND_PREFER_FLOOR,
    CS__RESIZE_ROUND_PREFER_CEIL,
    CS__RESIZE_FLOOR,
    CS__RESIZE_CEIL,
    CS__RESIZE_SIMPLE, /* opset < 11: floor when upsampling, ceil when downsampling */
} cs__resize_round;

typedef struct cs__resize_args {
    cs__resize_mode mode;
    cs__resize_coord coord;
    cs__resize_round round;
    double cubic_a, extrapolation;
    bool exclude_outside;
    double scale[CS_MAX_RANK];
    double roi[2 * CS_MAX_RANK];
    int64_t out_dims[CS_MAX_RANK];
} cs__resize_args;

/* Reads the mode attributes, then the scales or sizes, from attributes (Upsample-7) or
 * inputs (the others), and the roi for tf_crop_and_resize; returns CS__DEFER while an
 * input they come from is unknown. */
cs_status cs__resize_args_read(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs__resize_args *a, cs_error *err);

#endif

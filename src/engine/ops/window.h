/*
 * window.h - sliding-window geometry shared by convolutions and pools, their schemas and
 * their kernels alike (internal).
 *
 * One set of shape rules serves Conv, ConvTranspose and every pool: kernel, strides,
 * dilations and pads from the node's attributes, auto_pad, and the output extent with or
 * without ceil_mode. It is backend-independent: infer sizes the outputs with it, and the
 * kernels (cpu/conv.c, cpu/pool.c, cpu/winograd.c) walk the same geometry.
 */
#ifndef CS_ENGINE_OPS_WINDOW_H
#define CS_ENGINE_OPS_WINDOW_H

#include "engine/op.h"

#define CS__MAX_SPATIAL (CS_MAX_RANK - 2)

typedef enum cs__pad_mode {
    CS__PAD_NOTSET,
    CS__PAD_VALID,
    CS__PAD_SAME_UPPER,
    CS__PAD_SAME_LOWER
} cs__pad_mode;

/* A sliding window over nd spatial dims: position o of the `out` side sees the `in` side
 * at o*s - pb + k*d for kernel tap k. */
typedef struct cs__window {
    int nd;
    int64_t in[CS__MAX_SPATIAL], out[CS__MAX_SPATIAL], k[CS__MAX_SPATIAL], s[CS__MAX_SPATIAL],
        d[CS__MAX_SPATIAL];
    int64_t pb[CS__MAX_SPATIAL], pe[CS__MAX_SPATIAL];
    int64_t in_size, out_size, k_size;
} cs__window;

/* auto_pad attribute. */
cs_status cs__pad_mode_get(const cs__node *n, cs__pad_mode *mode, cs_error *err);
/* Reads an INTS attribute of `len` values, each >= min, or fills `def` when absent. */
cs_status cs__ints_attr(const cs__node *n, const char *name, int len, int64_t min, int64_t def,
                        int64_t *v, cs_error *err);
/* Kernel, strides, dilations and explicit pads; `dims` are the nd spatial input dims. */
cs_status cs__window_init(const cs__node *n, int nd, const int64_t *dims, const int64_t *kernel,
                          cs__window *w, cs_error *err);
/* Output extent of a forward window (Conv, pools), SAME padding resolved. */
cs_status cs__window_forward(const cs__node *n, cs__window *w, cs__pad_mode mode, bool ceil_mode,
                             cs_error *err);

#endif

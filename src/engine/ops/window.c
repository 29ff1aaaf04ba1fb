/*
 * window.c - sliding-window geometry shared by convolutions and pools; see window.h.
 */
#include "engine/ops/window.h"

#include <string.h>

cs_status cs__pad_mode_get(const cs__node *n, cs__pad_mode *mode, cs_error *err)
{
    const char *s = cs__attr_str(n, "auto_pad", "NOTSET");
    if (!strcmp(s, "NOTSET"))
        *mode = CS__PAD_NOTSET;
    else if (!strcmp(s, "VALID"))
        *mode = CS__PAD_VALID;
    else if (!strcmp(s, "SAME_UPPER"))
        *mode = CS__PAD_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER"))
        *mode = CS__PAD_SAME_LOWER;
    else
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "auto_pad '%s' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER", s);
    return CS_OK;
}

/* Reads an INTS attribute of `len` values, each >= min, or fills `def` when absent. */
cs_status cs__ints_attr(const cs__node *n, const char *name, int len, int64_t min, int64_t def,
                        int64_t *v, cs_error *err)
{
    const int64_t *a;
    int got = cs__attr_ints(n, name, &a);
    if (got < 0) {
        for (int i = 0; i < len; i++) v[i] = def;
        return CS_OK;
    }
    if (got != len)
        return cs__node_error(err, n, CS_ERR_INVALID, "%s has %d values, expected %d", name, got,
                              len);
    for (int i = 0; i < len; i++) {
        if (a[i] < min)
            return cs__node_error(err, n, CS_ERR_INVALID, "%s[%d] is %lld, must be >= %lld", name,
                                  i, (long long)a[i], (long long)min);
        v[i] = a[i];
    }
    return CS_OK;
}

/* Kernel, strides, dilations and explicit pads; `in` is the spatial part of `dims`, whose
 * count nd <= CS__MAX_SPATIAL follows from CS_MAX_RANK. */
cs_status cs__window_init(const cs__node *n, int nd, const int64_t *dims, const int64_t *kernel,
                          cs__window *w, cs_error *err)
{
    w->nd = nd;
    int64_t pads[2 * CS__MAX_SPATIAL];
    cs_status rc = cs__ints_attr(n, "strides", nd, 1, 1, w->s, err);
    if (rc == CS_OK) rc = cs__ints_attr(n, "dilations", nd, 1, 1, w->d, err);
    if (rc == CS_OK) rc = cs__ints_attr(n, "pads", 2 * nd, 0, 0, pads, err);
    if (rc != CS_OK) return rc;
    w->in_size = w->k_size = 1;
    for (int j = 0; j < nd; j++) {
        if (kernel[j] < 1)
            return cs__node_error(err, n, CS_ERR_INVALID, "kernel dimension %d is %lld", j,
                                  (long long)kernel[j]);
        w->in[j] = dims[j];
        w->k[j] = kernel[j];
        w->pb[j] = pads[j];
        w->pe[j] = pads[nd + j];
        w->in_size *= w->in[j];
        w->k_size *= w->k[j];
    }
    return CS_OK;
}

/* Output extent of a forward window (Conv, pools): floor division, or ceil_mode's ceiling
 * where a last window that would start in the end padding is dropped. SAME pads so that
 * out = ceil(in / stride), the odd pixel at the end (UPPER) or the beginning (LOWER). */
cs_status cs__window_forward(const cs__node *n, cs__window *w, cs__pad_mode mode, bool ceil_mode,
                             cs_error *err)
{
    w->out_size = 1;
    for (int j = 0; j < w->nd; j++) {
        int64_t eff = (w->k[j] - 1) * w->d[j] + 1, s = w->s[j];
        if (mode == CS__PAD_SAME_UPPER || mode == CS__PAD_SAME_LOWER) {
            w->out[j] = (w->in[j] + s - 1) / s;
            int64_t total = (w->out[j] - 1) * s + eff - w->in[j];
            if (total < 0) total = 0;
            w->pb[j] = mode == CS__PAD_SAME_UPPER ? total / 2 : total - total / 2;
            w->pe[j] = total - w->pb[j];
        } else {
            if (mode == CS__PAD_VALID) w->pb[j] = w->pe[j] = 0;
            int64_t span = w->in[j] + w->pb[j] + w->pe[j] - eff;
            if (span < 0)
                return cs__node_error(
                    err, n, CS_ERR_INVALID,
                    "kernel extent %lld exceeds the padded input %lld on spatial axis %d",
                    (long long)eff, (long long)(w->in[j] + w->pb[j] + w->pe[j]), j);
            w->out[j] = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
            if (ceil_mode && (w->out[j] - 1) * s >= w->in[j] + w->pb[j]) w->out[j]--;
        }
        w->out_size *= w->out[j];
    }
    return CS_OK;
}

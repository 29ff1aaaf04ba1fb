/*
 * kernels.c - the operator table: which kernel serves (op, domain, opset).
 *
 * Each family file under cpu/ exports a {0}-terminated array of entries; this file only
 * lists the families and picks, for an operator, the entry with the highest `since` that
 * does not exceed the model's opset. Lookups happen at load time, never while running.
 */
#include "engine/kernel.h"

#include <string.h>

extern const cs__kernel cs__kernels_unary[];
extern const cs__kernel cs__kernels_binary[];
extern const cs__kernel cs__kernels_reduce[];
extern const cs__kernel cs__kernels_norm[];
extern const cs__kernel cs__kernels_conv[];
extern const cs__kernel cs__kernels_pool[];
extern const cs__kernel cs__kernels_gemm[];
extern const cs__kernel cs__kernels_shape[];
extern const cs__kernel cs__kernels_layout[];
extern const cs__kernel cs__kernels_gather[];
extern const cs__kernel cs__kernels_resize[];
extern const cs__kernel cs__kernels_einsum[];

static const cs__kernel *const families[] = {
    cs__kernels_unary,  cs__kernels_binary, cs__kernels_reduce, cs__kernels_norm,
    cs__kernels_conv,   cs__kernels_pool,   cs__kernels_gemm,   cs__kernels_shape,
    cs__kernels_layout, cs__kernels_gather, cs__kernels_resize, cs__kernels_einsum,
};

static bool same_domain(const char *a, const char *b)
{
    if (!a || !*a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !*b || !strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const cs__kernel *cs__kernel_find(const char *op, const char *domain, int64_t opset)
{
    const cs__kernel *best = NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        for (const cs__kernel *k = families[f]; k->op; k++) {
            if (strcmp(k->op, op) || !same_domain(k->domain, domain)) continue;
            if (k->since <= opset && (!best || k->since > best->since)) best = k;
        }
    }
    return best;
}

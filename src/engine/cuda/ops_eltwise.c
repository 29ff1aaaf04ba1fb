/*
 * ops_eltwise.c - the CUDA wrappers of the elementwise family: Add, Sub, Mul, Div, Pow, Max
 * and Min with numpy broadcasting (binary.cu), and Relu, Sigmoid, Tanh, Exp, Log, Sqrt,
 * Neg, Abs, Erf, Clip, LeakyRelu and HardSigmoid (unary.cu), for float32, float16 and
 * bfloat16. One launch per node.
 *
 * Broadcasting is described to the kernel by the output's dims and each input's strides
 * for them, 0 along a broadcast dim (inputs of lower rank are left-padded); inputs of the
 * output's own shape take the contiguous fast path (rank 0). Declined, so run on the CPU:
 * other element types, Pow with an exponent of another type, Max/Min of other than two
 * inputs, opsets before broadcasting was numpy's (7; 8 for Max/Min), and a Clip whose
 * bounds are unknown at plan time or crossed (ONNX then gives max, the kernel min).
 */
#include "engine/cuda/cuda_ops.h"

#include "engine/ops/unary.h"

#include <float.h>
#include <string.h>

#define FLOATS (CS__T(FLOAT32) | CS__T(FLOAT16) | CS__T(BFLOAT16))
#define BY_TYPE(op)                                                 \
    {                                                               \
        CS__CUK_##op##_f32, CS__CUK_##op##_f16, CS__CUK_##op##_bf16 \
    }

static bool same_dims(const cs_tensor *a, const cs_tensor *y)
{
    if (a->rank != y->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != y->dims[d]) return false;
    return true;
}

static cs_status binary_run(cs__kctx *ctx, const int *kid, const cs_tensor *const *in,
                            cs_tensor *out)
{
    const cs_tensor *a = in[0], *b = in[1];
    cs_cuda_bcast s = {0};
    if (!same_dims(a, out) || !same_dims(b, out)) {
        s.rank = out->rank;
        for (int d = 0; d < out->rank; d++) s.dims[d] = out->dims[d];
        cs__cuda_bcast_strides(a, out, s.a_strides);
        cs__cuda_bcast_strides(b, out, s.b_strides);
    }
    int64_t n = cs_tensor_numel(out);
    void *params[] = {(void *)&a->data, (void *)&b->data, &out->data, &n, &s};
    return cs__cuda_launch_1d(ctx, kid[cs__cuda_ftype(out->dtype)], n, CS_CUDA_BLOCK, params);
}

static bool binary_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    if (n->n_in != 2 || !in[0] || !in[1])
        return cs__cuda_decline(err, n, "the CUDA kernel takes two inputs, not %d", n->n_in);
    if (in[0]->dtype != in[1]->dtype)
        return cs__cuda_decline(err, n, "no CUDA kernel for %s with %s",
                                cs_dtype_name(in[0]->dtype), cs_dtype_name(in[1]->dtype));
    return true;
}

#define BINARY(name)                                                                 \
    static cs_status name##_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                cs_tensor *out, int n_out)                           \
    {                                                                                \
        static const int kid[3] = BY_TYPE(name);                                     \
        (void)n_in, (void)n_out;                                                     \
        return binary_run(ctx, kid, in, out);                                        \
    }
BINARY(add)
BINARY(sub)
BINARY(mul)
BINARY(div)
BINARY(pow)
BINARY(max)
BINARY(min)

/* The parameters unary.cu reads, from the node: Clip's bounds (its inputs are on the host,
 * host_inputs), LeakyRelu's alpha, HardSigmoid's alpha and beta. */
static cs_status unary_args(const cs__node *n, const cs_tensor *const *in, cs_cuda_unary_args *p,
                            cs_error *err)
{
    *p = (cs_cuda_unary_args){0.0f, 0.0f};
    const char *op = n->op_type;
    if (!strcmp(op, "Clip")) {
        double lo = -INFINITY, hi = INFINITY;
        cs_status rc = cs__clip_bounds(n, in, n->n_in, &lo, &hi, err);
        if (rc) return rc;
        *p = (cs_cuda_unary_args){(float)lo, (float)hi};
    } else if (!strcmp(op, "LeakyRelu")) {
        p->alpha = cs__attr_float(n, "alpha", 0.01f);
    } else if (!strcmp(op, "HardSigmoid")) {
        *p =
            (cs_cuda_unary_args){cs__attr_float(n, "alpha", 0.2f), cs__attr_float(n, "beta", 0.5f)};
    }
    return CS_OK;
}

static cs_status unary_run(cs__kctx *ctx, const int *kid, const cs_tensor *const *in,
                           cs_tensor *out)
{
    cs_cuda_unary_args p;
    cs_status rc = unary_args(ctx->node, in, &p, ctx->err);
    if (rc) return rc;
    int64_t n = cs_tensor_numel(out);
    void *params[] = {(void *)&in[0]->data, &out->data, &n, &p};
    return cs__cuda_launch_1d(ctx, kid[cs__cuda_ftype(out->dtype)], n, CS_CUDA_BLOCK, params);
}

static bool clip_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    for (int k = 1; k < n->n_in && k < 3; k++)
        if (in[k] && !in[k]->data)
            return cs__cuda_decline(err, n, "the CUDA kernel takes bounds known at plan time");
    cs_cuda_unary_args p;
    if (unary_args(n, in, &p, err)) return false;
    if (p.alpha > p.beta)
        return cs__cuda_decline(err, n, "min %g is above max %g", (double)p.alpha, (double)p.beta);
    return true;
}

#define UNARY(name)                                                                  \
    static cs_status name##_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, \
                                cs_tensor *out, int n_out)                           \
    {                                                                                \
        static const int kid[3] = BY_TYPE(name);                                     \
        (void)n_in, (void)n_out;                                                     \
        return unary_run(ctx, kid, in, out);                                         \
    }
UNARY(relu)
UNARY(sigmoid)
UNARY(tanh)
UNARY(exp)
UNARY(log)
UNARY(sqrt)
UNARY(neg)
UNARY(abs)
UNARY(erf)
UNARY(clip)
UNARY(leaky_relu)
UNARY(hard_sigmoid)

#define ENTRY(op, since, name, accepts, host)                              \
    {                                                                      \
        op, "", since, FLOATS, 0, name##_run, NULL, 0, NULL, host, accepts \
    }

const cs__kernel cs__cuda_eltwise_kernels[] = {
    ENTRY("Add", 7, add, binary_accepts, 0),
    ENTRY("Sub", 7, sub, binary_accepts, 0),
    ENTRY("Mul", 7, mul, binary_accepts, 0),
    ENTRY("Div", 7, div, binary_accepts, 0),
    ENTRY("Pow", 7, pow, binary_accepts, 0),
    ENTRY("Max", 8, max, binary_accepts, 0),
    ENTRY("Min", 8, min, binary_accepts, 0),
    ENTRY("Relu", 6, relu, NULL, 0),
    ENTRY("Sigmoid", 6, sigmoid, NULL, 0),
    ENTRY("Tanh", 6, tanh, NULL, 0),
    ENTRY("Exp", 6, exp, NULL, 0),
    ENTRY("Log", 6, log, NULL, 0),
    ENTRY("Sqrt", 6, sqrt, NULL, 0),
    ENTRY("Neg", 6, neg, NULL, 0),
    ENTRY("Abs", 6, abs, NULL, 0),
    ENTRY("Erf", 9, erf, NULL, 0),
    ENTRY("Clip", 6, clip, clip_accepts, 0x6u), /* min and max inputs (opset 11) on the host */
    ENTRY("LeakyRelu", 6, leaky_relu, NULL, 0),
    ENTRY("HardSigmoid", 6, hard_sigmoid, NULL, 0),
    {0},
};

/*
 * dnn.c - cuDNN loaded with dlopen, and the NCHW convolution built on it; see dnn.h.
 *
 * Cost: a plan makes four descriptors and asks the v7 heuristic once; a run sets the
 * handle's stream (a host call) and queues one cudnnConvolutionForward, allocating
 * nothing. Math: float32 runs with CUDNN_FMA_MATH (exact, matching the CPU backend's
 * tolerances) unless tf32 is asked, since CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor
 * cores on Ampere and later; float16 runs with CUDNN_TENSOR_OP_MATH and a float32 compute
 * type (accumulation in float32).
 */
#include "engine/cuda/dnn.h"

#include "engine/cuda/vendor_load.h"

#include <string.h>

typedef int32_t dnn_status;

static struct {
    size_t (*version)(void);
    const char *(*error_string)(dnn_status);
    dnn_status (*create)(void **);
    dnn_status (*destroy)(void *);
    dnn_status (*set_stream)(void *, void *);
    dnn_status (*tensor_create)(void **);
    dnn_status (*tensor_destroy)(void *);
    dnn_status (*tensor_set4d)(void *, int32_t, int32_t, int, int, int, int);
    dnn_status (*filter_create)(void **);
    dnn_status (*filter_destroy)(void *);
    dnn_status (*filter_set4d)(void *, int32_t, int32_t, int, int, int, int);
    dnn_status (*conv_create)(void **);
    dnn_status (*conv_destroy)(void *);
    dnn_status (*conv_set2d)(void *, int, int, int, int, int, int, int32_t, int32_t);
    dnn_status (*conv_set_groups)(void *, int);
    dnn_status (*conv_set_math)(void *, int32_t);
    dnn_status (*algo_v7)(void *, void *, void *, void *, void *, int, int *, cs__dnn_fwd_perf *);
    dnn_status (*workspace_size)(void *, void *, void *, void *, void *, int32_t, size_t *);
    dnn_status (*forward)(void *, const void *, void *, const void *, void *, const void *, void *,
                          int32_t, void *, size_t, const void *, void *, void *);
} dnn;

static const cs__vendor_sym dnn_syms[] = {
    {"cudnnGetVersion", (void **)&dnn.version},
    {"cudnnGetErrorString", (void **)&dnn.error_string},
    {"cudnnCreate", (void **)&dnn.create},
    {"cudnnDestroy", (void **)&dnn.destroy},
    {"cudnnSetStream", (void **)&dnn.set_stream},
    {"cudnnCreateTensorDescriptor", (void **)&dnn.tensor_create},
    {"cudnnDestroyTensorDescriptor", (void **)&dnn.tensor_destroy},
    {"cudnnSetTensor4dDescriptor", (void **)&dnn.tensor_set4d},
    {"cudnnCreateFilterDescriptor", (void **)&dnn.filter_create},
    {"cudnnDestroyFilterDescriptor", (void **)&dnn.filter_destroy},
    {"cudnnSetFilter4dDescriptor", (void **)&dnn.filter_set4d},
    {"cudnnCreateConvolutionDescriptor", (void **)&dnn.conv_create},
    {"cudnnDestroyConvolutionDescriptor", (void **)&dnn.conv_destroy},
    {"cudnnSetConvolution2dDescriptor", (void **)&dnn.conv_set2d},
    {"cudnnSetConvolutionGroupCount", (void **)&dnn.conv_set_groups},
    {"cudnnSetConvolutionMathType", (void **)&dnn.conv_set_math},
    {"cudnnGetConvolutionForwardAlgorithm_v7", (void **)&dnn.algo_v7},
    {"cudnnGetConvolutionForwardWorkspaceSize", (void **)&dnn.workspace_size},
    {"cudnnConvolutionForward", (void **)&dnn.forward},
};

static cs__vendor_lib dnn_lib =
    CS__VENDOR_LIB(CS__DNN_LIB, CS__DNN_ENV, "cuDNN", 9, dnn_syms, &dnn.version);

cs_status cs__dnn_load(cs_error *err)
{
    return cs__vendor_load(&dnn_lib, err);
}

size_t cs__dnn_version(void)
{
    return cs__vendor_version(&dnn_lib);
}

static cs_status dnn_fail(cs_error *err, const char *what, dnn_status s)
{
    return cs_error_set(err, s / 1000 == 3 ? CS_ERR_UNSUPPORTED : CS_ERR_INTERNAL,
                        "cuDNN %s: %s (status %d)", what,
                        dnn.error_string ? dnn.error_string(s) : "?", (int)s);
}

cs_status cs__dnn_handle_new(void **out, cs_error *err)
{
    return cs__vendor_handle_new(&dnn_lib, &dnn.create, dnn_fail,
                                 "cudnnCreate (needs a CUDA device and its driver)", out, err);
}

void cs__dnn_handle_free(void *handle)
{
    if (handle && dnn.destroy) dnn.destroy(handle);
}

cs_status cs__cuda_conv_check(const cs__cuda_conv_shape *s, int64_t *oh, int64_t *ow, cs_error *err)
{
    if (s->type != CS_DTYPE_FLOAT32 && s->type != CS_DTYPE_FLOAT16)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "cuDNN convolution: element type %s is not supported "
                            "(float32, float16)",
                            cs_dtype_name(s->type));
    if (s->tf32 && s->type != CS_DTYPE_FLOAT32)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: tf32 applies to float32, not %s",
                            cs_dtype_name(s->type));
    const struct {
        const char *name;
        int64_t v, min;
    } f[] = {{"n", s->n, 1},
             {"c", s->c, 1},
             {"h", s->h, 1},
             {"w", s->w, 1},
             {"k", s->k, 1},
             {"r", s->r, 1},
             {"s", s->s, 1},
             {"groups", s->groups, 1},
             {"pad_h", s->pad_h, 0},
             {"pad_w", s->pad_w, 0},
             {"stride_h", s->stride_h, 1},
             {"stride_w", s->stride_w, 1},
             {"dil_h", s->dil_h, 1},
             {"dil_w", s->dil_w, 1}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < f[i].min || f[i].v > INT32_MAX)
            return cs_error_set(err, CS_ERR_INVALID,
                                "cuDNN convolution: %s = %lld, must be between %lld and %d",
                                f[i].name, (long long)f[i].v, (long long)f[i].min, INT32_MAX);
    if (s->c % s->groups || s->k % s->groups)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: groups = %lld must divide c = %lld and k = %lld",
                            (long long)s->groups, (long long)s->c, (long long)s->k);
    /* The extent a dilated filter covers, then the positions it fits at. */
    int64_t eh = s->dil_h * (s->r - 1) + 1, ew = s->dil_w * (s->s - 1) + 1;
    int64_t ph = s->h + 2 * s->pad_h, pw = s->w + 2 * s->pad_w;
    if (eh > ph || ew > pw)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: the dilated %lldx%lld filter covers %lldx%lld, "
                            "larger than the padded %lldx%lld input",
                            (long long)s->r, (long long)s->s, (long long)eh, (long long)ew,
                            (long long)ph, (long long)pw);
    *oh = (ph - eh) / s->stride_h + 1;
    *ow = (pw - ew) / s->stride_w + 1;
    /* cuDNN's 4-d descriptors count elements in int: every tensor must fit. */
    double nx = (double)s->n * s->c * s->h * s->w, ny = (double)s->n * s->k * *oh * *ow,
           nw = (double)s->k * (s->c / s->groups) * s->r * s->s;
    if (nx > INT32_MAX || ny > INT32_MAX || nw > INT32_MAX)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "cuDNN convolution: a tensor of more than %d elements (input %.0f, "
                            "output %.0f, filter %.0f)",
                            INT32_MAX, nx, ny, nw);
    return CS_OK;
}

void cs__cuda_conv_plan_free(cs__cuda_conv_plan *p)
{
    if (!p) return;
    if (p->x && dnn.tensor_destroy) dnn.tensor_destroy(p->x);
    if (p->y && dnn.tensor_destroy) dnn.tensor_destroy(p->y);
    if (p->filter && dnn.filter_destroy) dnn.filter_destroy(p->filter);
    if (p->conv && dnn.conv_destroy) dnn.conv_destroy(p->conv);
    p->x = p->y = p->filter = p->conv = NULL;
    p->workspace = 0;
}

cs_status cs__cuda_conv_plan_describe(cs__cuda_conv_plan *p, const cs__cuda_conv_shape *shape,
                                      cs_error *err)
{
    memset(p, 0, sizeof *p);
    p->shape = *shape;
    const cs__cuda_conv_shape *s = &p->shape;
    cs_status rc = cs__cuda_conv_check(s, &p->oh, &p->ow, err);
    if (rc != CS_OK) return rc;
    if ((rc = cs__dnn_load(err)) != CS_OK) return rc;
    int32_t type = s->type == CS_DTYPE_FLOAT16 ? CS__DNN_DATA_HALF : CS__DNN_DATA_FLOAT;
    int32_t math = s->type == CS_DTYPE_FLOAT16 ? CS__DNN_TENSOR_OP_MATH
                   : s->tf32                   ? CS__DNN_DEFAULT_MATH
                                               : CS__DNN_FMA_MATH;
    dnn_status st;
    const char *what = "descriptor creation";
    if ((st = dnn.tensor_create(&p->x)) || (st = dnn.tensor_create(&p->y)) ||
        (st = dnn.filter_create(&p->filter)) || (st = dnn.conv_create(&p->conv)))
        goto fail;
    what = "descriptors";
    if ((st = dnn.tensor_set4d(p->x, CS__DNN_TENSOR_NCHW, type, (int)s->n, (int)s->c, (int)s->h,
                               (int)s->w)) ||
        (st = dnn.tensor_set4d(p->y, CS__DNN_TENSOR_NCHW, type, (int)s->n, (int)s->k, (int)p->oh,
                               (int)p->ow)) ||
        (st = dnn.filter_set4d(p->filter, type, CS__DNN_TENSOR_NCHW, (int)s->k,
                               (int)(s->c / s->groups), (int)s->r, (int)s->s)) ||
        (st = dnn.conv_set2d(p->conv, (int)s->pad_h, (int)s->pad_w, (int)s->stride_h,
                             (int)s->stride_w, (int)s->dil_h, (int)s->dil_w,
                             CS__DNN_CROSS_CORRELATION, CS__DNN_DATA_FLOAT)) ||
        (st = dnn.conv_set_groups(p->conv, (int)s->groups)) ||
        (st = dnn.conv_set_math(p->conv, math)))
        goto fail;
    return CS_OK;
fail:
    rc = dnn_fail(err, what, st);
    cs__cuda_conv_plan_free(p);
    return rc;
}

cs_status cs__cuda_conv_plan_init(cs__cuda_conv_plan *p, void *handle,
                                  const cs__cuda_conv_shape *shape, cs_error *err)
{
    cs_status rc = cs__cuda_conv_plan_describe(p, shape, err);
    if (rc != CS_OK) return rc;
    const cs__cuda_conv_shape *s = &p->shape;
    if (!handle) {
        cs__cuda_conv_plan_free(p);
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: no handle (cs__dnn_handle_new)");
    }
    cs__dnn_fwd_perf perf[CS__DNN_FWD_ALGO_COUNT];
    int found = 0;
    const char *what = "cudnnGetConvolutionForwardAlgorithm_v7";
    dnn_status st;
    if ((st = dnn.algo_v7(handle, p->x, p->filter, p->conv, p->y, CS__DNN_FWD_ALGO_COUNT, &found,
                          perf)))
        goto fail;
    /* Ranked fastest first; the v7 results may include algorithms that fail for the
     * shape (status != success) or want more workspace than the caller has. */
    for (int i = 0; i < found; i++) {
        if (perf[i].status != CS__DNN_STATUS_SUCCESS) continue;
        size_t ws = 0;
        if (dnn.workspace_size(handle, p->x, p->filter, p->conv, p->y, perf[i].algo, &ws)) continue;
        if (ws <= s->max_workspace) {
            p->algo = perf[i].algo;
            p->workspace = ws;
            return CS_OK;
        }
    }
    rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                      "cuDNN has no %s convolution algorithm for n=%lld c=%lld %lldx%lld k=%lld "
                      "%lldx%lld groups=%lld within %zu workspace bytes (%d ranked)",
                      cs_dtype_name(s->type), (long long)s->n, (long long)s->c, (long long)s->h,
                      (long long)s->w, (long long)s->k, (long long)s->r, (long long)s->s,
                      (long long)s->groups, s->max_workspace, found);
    cs__cuda_conv_plan_free(p);
    return rc;
fail:
    rc = dnn_fail(err, what, st);
    cs__cuda_conv_plan_free(p);
    return rc;
}

cs_status cs__cuda_conv_args_check(const cs__cuda_conv_args *a, cs_error *err)
{
    if (!a->plan) return cs_error_set(err, CS_ERR_INVALID, "cuDNN convolution: no plan");
    const struct {
        const char *name;
        uint64_t v;
    } ptrs[] = {{"x", a->x}, {"w", a->w}, {"y", a->y}};
    for (int i = 0; i < 3; i++)
        if (!ptrs[i].v)
            return cs_error_set(err, CS_ERR_INVALID, "cuDNN convolution: %s is required",
                                ptrs[i].name);
    if (a->workspace_size < a->plan->workspace)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: workspace of %zu bytes, the plan's algorithm "
                            "needs %zu",
                            a->workspace_size, a->plan->workspace);
    if (a->workspace_size && !a->workspace)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuDNN convolution: workspace_size %zu with no workspace pointer",
                            a->workspace_size);
    return CS_OK;
}

cs_status cs__cuda_conv(const cs__cuda_conv_args *a, cs_error *err)
{
    cs_status rc = cs__cuda_conv_args_check(a, err);
    if (rc != CS_OK) return rc;
    const cs__cuda_conv_plan *p = a->plan;
    if (!p->conv || !a->handle)
        return cs_error_set(err, CS_ERR_INVALID, "cuDNN convolution: plan not made or no handle");
    dnn_status st = dnn.set_stream(a->handle, a->stream);
    if (st) return dnn_fail(err, "cudnnSetStream", st);
    /* alpha and beta are float for float and half data (cuDNN's scaling parameters). */
    st = dnn.forward(a->handle, &a->alpha, p->x, (const void *)(uintptr_t)a->x, p->filter,
                     (const void *)(uintptr_t)a->w, p->conv, p->algo,
                     (void *)(uintptr_t)a->workspace, a->workspace_size, &a->beta, p->y,
                     (void *)(uintptr_t)a->y);
    return st == CS__DNN_STATUS_SUCCESS ? CS_OK : dnn_fail(err, "cudnnConvolutionForward", st);
}

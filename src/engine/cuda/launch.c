/*
 * launch.c - the module of the CUDA backend's own kernels and the launches of its wrappers.
 *
 * The fatbin embedded at build time (kernels.h) is loaded into a device's primary context
 * once, by the backend's init, and every kernel of CS_CUDA_KERNELS is looked up then, so a
 * launch is an index into the device's function table: no lookup, no lock. A device the
 * module cannot serve (built without nvcc, a GPU older than sm_90 with no PTX JIT for it)
 * keeps running sessions, all of their nodes on the CPU, and the reason is kept for
 * supports()'s message. Each launch makes the device's context current on the calling
 * thread (a thread-local store in the driver) and queues on the device's stream.
 */
#include "engine/cuda/cuda_ops.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const kernel_names[CS__CUK_COUNT] = {
#define NAME(suffix) CS_CUDA_KERNEL_NAME(suffix),
    CS_CUDA_KERNELS(NAME)
#undef NAME
};

const char *cs__cuda_kernel_name(int kid)
{
    return kid >= 0 && kid < CS__CUK_COUNT ? kernel_names[kid] : "?";
}

/* The driver's name for r ("CUDA_ERROR_NO_BINARY_FOR_GPU"), for no_kernels. */
static const char *result_name(const cs__cu *cu, cs__cu_result r)
{
    const char *name = NULL;
    return cu->GetErrorName(r, &name) == CS__CU_SUCCESS && name ? name : "an unknown error";
}

void cs__cuda_module_load(cs__cuda_be *b)
{
    const cs__cu *cu = b->cu;
    if (!cs__cuda_kernels_built()) {
        snprintf(b->no_kernels, sizeof b->no_kernels,
                 "this build has no CUDA kernels (built without nvcc)");
        return;
    }
    cs__cu_result r = cu->ModuleLoadData(&b->module, cs__cuda_fatbin);
    if (r != CS__CU_SUCCESS) {
        b->module = NULL;
        snprintf(b->no_kernels, sizeof b->no_kernels,
                 "cuModuleLoadData: %s (the kernels are sm_90 code and compute_90 PTX; %s is "
                 "sm_%d%d)",
                 result_name(cu, r), b->device_name, b->cc_major, b->cc_minor);
        return;
    }
    for (int k = 0; k < CS__CUK_COUNT; k++) {
        if ((r = cu->ModuleGetFunction(&b->fn[k], b->module, kernel_names[k])) != CS__CU_SUCCESS) {
            snprintf(b->no_kernels, sizeof b->no_kernels, "cuModuleGetFunction(%s): %s",
                     kernel_names[k], result_name(cu, r));
            cu->ModuleUnload(b->module);
            b->module = NULL;
            return;
        }
    }
}

int cs__cuda_ftype(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 ? 0 : t == CS_DTYPE_FLOAT16 ? 1 : t == CS_DTYPE_BFLOAT16 ? 2 : -1;
}

int cs__cuda_width(cs_dtype t)
{
    size_t w = cs_dtype_size(t);
    return w == 2 ? 0 : w == 4 ? 1 : w == 8 ? 2 : -1;
}

void cs__cuda_bcast_strides(const cs_tensor *x, const cs_tensor *y, int64_t *strides)
{
    int64_t s = 1;
    for (int d = y->rank - 1, k = x->rank - 1; d >= 0; d--, k--) {
        int64_t dim = k >= 0 ? x->dims[k] : 1;
        strides[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

unsigned cs__cuda_blocks(const cs__kctx *ctx, int64_t n, unsigned block)
{
    /* 4096 threads per SM is twice what an sm_90 SM holds at once: enough to hide the
     * tail, few enough that the grid-stride loops do the rest. */
    int sms = cs__cuda_be_of(ctx->be)->sm_count;
    int64_t most = (int64_t)(sms > 0 ? sms : 64) * 4096 / block;
    int64_t want = (n + block - 1) / block;
    return (unsigned)(want < most ? want : most);
}

cs_status cs__cuda_launch(cs__kctx *ctx, int kid, const unsigned grid[3], const unsigned block[3],
                          void **params)
{
    const cs__cuda_be *b = cs__cuda_be_of(ctx->be);
    cs_status rc = cs__cuda_enter(b, ctx->err);
    if (rc) return rc;
    cs__cu_result r = b->cu->LaunchKernel(b->fn[kid], grid[0], grid[1], grid[2], block[0], block[1],
                                          block[2], 0, b->stream, params, NULL);
    if (r == CS__CU_SUCCESS) return CS_OK;
    cs__cu_error(b->cu, r, "cuLaunchKernel", ctx->err);
    cs_error_prefix(ctx->err, "%s on %s: ", kernel_names[kid], b->base.name);
    return cs__node_error(ctx->err, ctx->node, ctx->err->code, "%s", ctx->err->msg);
}

cs_status cs__cuda_launch_1d(cs__kctx *ctx, int kid, int64_t n, unsigned block, void **params)
{
    if (n <= 0) return CS_OK;
    const unsigned grid[3] = {cs__cuda_blocks(ctx, n, block), 1, 1}, threads[3] = {block, 1, 1};
    return cs__cuda_launch(ctx, kid, grid, threads, params);
}

cs_status cs__cuda_copy(cs__kctx *ctx, void *dst, const void *src, size_t bytes, bool from_host)
{
    const cs__cuda_be *b = cs__cuda_be_of(ctx->be);
    cs_status rc = bytes ? cs__cuda_enter(b, ctx->err) : CS_OK;
    if (rc || !bytes) return rc;
    cs__cu_deviceptr d = (cs__cu_deviceptr)(uintptr_t)dst;
    cs__cu_result r =
        from_host ? b->cu->MemcpyHtoDAsync(d, src, bytes, b->stream)
                  : b->cu->MemcpyDtoDAsync(d, (cs__cu_deviceptr)(uintptr_t)src, bytes, b->stream);
    if (r == CS__CU_SUCCESS) return CS_OK;
    cs__cu_error(b->cu, r, from_host ? "cuMemcpyHtoDAsync" : "cuMemcpyDtoDAsync", ctx->err);
    cs_error_prefix(ctx->err, "%s: ", b->base.name);
    return cs__node_error(ctx->err, ctx->node, ctx->err->code, "%s", ctx->err->msg);
}

bool cs__cuda_decline(cs_error *err, const cs__node *n, const char *fmt, ...)
{
    char msg[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cs__node_error(err, n, CS_ERR_UNSUPPORTED, "%s", msg);
    return false;
}

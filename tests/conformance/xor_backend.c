/*
 * xor_backend.c - a test backend whose memory holds every byte XORed with 0x5A, to check
 * the planner's handling of device backends on a machine without one.
 *
 * Its kernels are the CPU's, wrapped: each decodes its inputs into host copies, runs the
 * CPU kernel, and encodes its outputs in place. A value the planner fails to move across
 * the host/device boundary (a fed input, an initializer, a CPU step's output, a graph
 * output) is read through the wrong encoding and comes out as garbage, and a kernel handed
 * host memory fails outright; fresh allocations are filled with a pattern, so reading
 * memory nothing wrote is garbage too. It claims every operator (xor), or only the half
 * whose name hashes even (xor-half), so that sessions on it exercise the CPU fallback with
 * transfers at every boundary.
 */
#include "xor_backend.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

#define KEY    0x5A
#define MAX_IN 64 /* inputs a wrapped node may have; Concat and Sum in the suites have fewer */

static void xor_bytes(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) d[i] = s[i] ^ KEY;
}

static size_t bytes_of(const cs_tensor *t)
{
    return (size_t)cs_tensor_numel(t) * cs_dtype_size(t->dtype);
}

static const cs__kernel *cpu_kernel(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    return cs__cpu_backend.supports(&cs__cpu_backend, n, in, err);
}

static size_t xor_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                          const cs_tensor *out, int n_out)
{
    cs_error err;
    const cs__kernel *k = cpu_kernel(n, in, &err);
    return k && k->scratch ? k->scratch(n, in, n_in, out, n_out) : 0;
}

static cs_status xor_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                         int n_out)
{
    const cs__node *n = ctx->node;
    const cs__kernel *k = cpu_kernel(n, in, ctx->err);
    if (!k) return CS_ERR_UNSUPPORTED;
    cs_tensor host[MAX_IN];
    const cs_tensor *hin[MAX_IN];
    cs_status rc = n_in > MAX_IN ? cs__node_error(ctx->err, n, CS_ERR_UNSUPPORTED,
                                                  "more than %d inputs", MAX_IN)
                                 : CS_OK;
    int decoded = 0;
    for (int i = 0; rc == CS_OK && i < n_in; i++, decoded = i) {
        hin[i] = NULL;
        if (!in[i]) continue;
        if (in[i]->device.kind == CS_DEVICE_CPU) {
            rc = cs__node_error(ctx->err, n, CS_ERR_INTERNAL, "input %d is in host memory", i);
            break;
        }
        host[i] = *in[i];
        host[i].device = (cs_device){CS_DEVICE_CPU, 0};
        host[i].data = cs_malloc(bytes_of(in[i]) + 1);
        if (!host[i].data) {
            rc = cs_error_set(ctx->err, CS_ERR_NOMEM, "out of memory");
            break;
        }
        xor_bytes(host[i].data, in[i]->data, bytes_of(in[i]));
        hin[i] = &host[i];
    }
    for (int j = 0; rc == CS_OK && j < n_out; j++)
        if (out[j].device.kind == CS_DEVICE_CPU)
            rc = cs__node_error(ctx->err, n, CS_ERR_INTERNAL, "output %d is in host memory", j);
    if (rc == CS_OK) {
        cs__kctx cpu = *ctx;
        cpu.be = &cs__cpu_backend;
        cpu.packed = NULL;
        rc = k->run(&cpu, hin, n_in, out, n_out);
    }
    if (rc == CS_OK)
        for (int j = 0; j < n_out; j++) xor_bytes(out[j].data, out[j].data, bytes_of(&out[j]));
    for (int i = 0; i < decoded; i++)
        if (hin[i]) cs_free(host[i].data);
    return rc;
}

static const cs__kernel xor_kernel = {"*", "", 1, 0, 0, xor_run, xor_scratch, 0, NULL, 0};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static const cs__kernel *supports(const cs__backend *be, const cs__node *n,
                                  const cs_tensor *const *in, cs_error *err, bool half)
{
    (void)be;
    for (int i = 0; i < n->n_in; i++)
        if (in[i] && cs_dtype_size(in[i]->dtype) == 0) {
            cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no xor kernel for %s",
                           cs_dtype_name(in[i]->dtype));
            return NULL;
        }
    if (half && hash(n->op_type) % 2) {
        cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no xor-half kernel");
        return NULL;
    }
    return cpu_kernel(n, in, err) ? &xor_kernel : NULL;
}

static const cs__kernel *supports_all(const cs__backend *be, const cs__node *n,
                                      const cs_tensor *const *in, cs_error *err)
{
    return supports(be, n, in, err, false);
}

static const cs__kernel *supports_half(const cs__backend *be, const cs__node *n,
                                       const cs_tensor *const *in, cs_error *err)
{
    return supports(be, n, in, err, true);
}

static void *xor_alloc(const cs__backend *be, size_t bytes)
{
    (void)be;
    size_t size = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, size ? size : 64);
    if (p) memset(p, 0xC3, size); /* what nothing wrote reads as garbage */
    return p;
}

static void xor_release(const cs__backend *be, void *p)
{
    (void)be;
    free(p);
}

static cs_status copy_in(const cs__backend *be, void *dst, const void *host, size_t bytes,
                         cs_error *err)
{
    (void)be, (void)err;
    xor_bytes(dst, host, bytes);
    return CS_OK;
}

static cs_status copy_out(const cs__backend *be, void *host, const void *src, size_t bytes,
                          cs_error *err)
{
    (void)be, (void)err;
    xor_bytes(host, src, bytes);
    return CS_OK;
}

static cs_status nothing(const cs__backend *be, cs_error *err)
{
    (void)be, (void)err;
    return CS_OK;
}

/* A device kind the session treats as not host memory; id 7 so messages show whose. The
 * two backends differ only in their name and which operators they claim. */
#define XOR_BACKEND(name_, supports_)                                                          \
    {                                                                                          \
        .name = name_, .device = {CS_DEVICE_CUDA, 7}, .precisions = 1u << CS_PRECISION_FP32,   \
        .supports = supports_, .alloc = xor_alloc, .release = xor_release, .copy_in = copy_in, \
        .copy_out = copy_out, .sync = nothing, .init = nothing                                 \
    }
static const cs__backend xor_all = XOR_BACKEND("xor", supports_all);
static const cs__backend xor_half = XOR_BACKEND("xor-half", supports_half);

const cs__backend *cs_test_xor_backend(const char *name)
{
    return !strcmp(name, "xor") ? &xor_all : !strcmp(name, "xor-half") ? &xor_half : NULL;
}

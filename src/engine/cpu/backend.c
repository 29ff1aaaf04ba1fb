/*
 * backend.c - the CPU backend: the kernel table of the families under cpu/, host buffers.
 *
 * Each family file exports a {0}-terminated array of kernels; this file lists the families
 * and picks, for an operator, the entry with the highest `since` that does not exceed the
 * model's opset, as the schema table does (ops.c). Kernels run synchronously on the calling
 * thread and the session's pool, so copies are memcpy and sync has nothing to wait for.
 */
#include "engine/backend.h"
#include "engine/cpu/blas.h"

#include <stdlib.h>
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

#define ALIGN 64

const cs__kernel *cs__cpu_kernel_find(const char *op, const char *domain, int64_t opset)
{
    const cs__kernel *best = NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const cs__kernel *k = families[f]; k->op; k++)
            if (cs__op_entry_serves(k->op, k->domain, k->since, op, domain, opset,
                                    best ? best->since : -1))
                best = k;
    return best;
}

static const cs__kernel *cpu_supports(const cs__backend *be, const cs__node *n,
                                      const cs_tensor *const *in, cs_error *err)
{
    (void)be;
    const cs__kernel *k = cs__cpu_kernel_find(n->op_type, n->domain, n->opset);
    if (!k) {
        cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no cpu kernel (opset %lld)",
                       (long long)n->opset);
        return NULL;
    }
    if (k->types && k->type_input < n->n_in && in[k->type_input]) {
        cs_dtype t = in[k->type_input]->dtype;
        if (t >= 32 || !(k->types & (1u << t))) {
            cs__node_error(err, n, CS_ERR_UNSUPPORTED,
                           "element type %s is not supported (opset %lld)", cs_dtype_name(t),
                           (long long)n->opset);
            return NULL;
        }
    }
    return k;
}

static void *cpu_alloc(const cs__backend *be, size_t bytes)
{
    (void)be;
    return aligned_alloc(ALIGN, (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1));
}

static void cpu_release(const cs__backend *be, void *p)
{
    (void)be;
    free(p);
}

static cs_status cpu_copy(const cs__backend *be, void *dst, const void *src, size_t bytes,
                          cs_error *err)
{
    (void)be, (void)err;
    if (bytes) memcpy(dst, src, bytes);
    return CS_OK;
}

static cs_status cpu_sync(const cs__backend *be, cs_error *err)
{
    (void)be, (void)err;
    return CS_OK;
}

static cs_status cpu_init(const cs__backend *be, cs_error *err)
{
    (void)be;
    return cs__blas_ready(err);
}

const cs__backend cs__cpu_backend = {
    .name = "cpu",
    .device = {CS_DEVICE_CPU, 0},
    .precisions = 1u << CS_PRECISION_FP32,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .sync = cpu_sync,
    .init = cpu_init,
};

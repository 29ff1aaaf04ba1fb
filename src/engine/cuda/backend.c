/*
 * backend.c - the CUDA backend: device memory, copies on the device's stream, its kernels.
 *
 * A backend's init loads the driver (driver.h), checks that the ordinal exists, retains
 * the device's primary context (the one the CUDA runtime, cuBLASLt and cuDNN use too),
 * creates one non-blocking stream and loads the project's kernels (launch.c); it runs
 * under one lock, once per device, and a failure says "device cuda:N is unavailable:
 * <why>" (a module the device cannot load is no failure: its nodes then run on the CPU).
 * supports() picks from the family tables of cuda_ops.h, or from a table a test set.
 * Buffers are cuMemAlloc'd (256-byte aligned). Copies to the device are queued on the
 * stream and return at once (the driver has read pageable host memory by then); copies to
 * the host wait for the stream, since the caller reads the bytes next. Driver calls cost
 * a context switch check each (cuCtxSetCurrent on the calling thread, a thread-local store
 * in the driver).
 */
#include "engine/cuda/blaslt.h"
#include "engine/cuda/cuda_ops.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define PRECISIONS                                                                 \
    (1u << CS_PRECISION_FP32 | 1u << CS_PRECISION_TF32 | 1u << CS_PRECISION_FP16 | \
     1u << CS_PRECISION_BF16)

static cs__cuda_be devices[CS__CUDA_MAX_DEVICES];
static char names[CS__CUDA_MAX_DEVICES][8];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static const cs__kernel *kernels;

void cs__cuda_kernels_set(const cs__kernel *table)
{
    kernels = table;
}

static cs__cuda_be *of(const cs__backend *be)
{
    return &devices[cs__cuda_be_of(be)->id];
}

/* A driver failure as "cuda:0: cuMemAlloc: CUDA_ERROR_... (...)". */
static cs_status fail(const cs__cuda_be *b, cs__cu_result r, const char *call, cs_error *err)
{
    cs__cu_error(b->cu, r, call, err);
    return cs_error_prefix(err, "%s: ", b->base.name);
}

cs_status cs__cuda_enter(const cs__cuda_be *b, cs_error *err)
{
    cs__cu_result r = b->cu->CtxSetCurrent(b->ctx);
    return r == CS__CU_SUCCESS ? CS_OK : fail(b, r, "cuCtxSetCurrent", err);
}

cs_status cs__cuda_blaslt(const cs__cuda_be *cb, void **out, cs_error *err)
{
    cs__cuda_be *b = of(&cb->base);
    pthread_mutex_lock(&init_lock);
    cs_status rc = b->blaslt ? CS_OK : cs__blaslt_load(err);
    if (rc == CS_OK && !b->blaslt && (rc = cs__cuda_enter(b, err)) == CS_OK)
        rc = cs__blaslt_handle_new(&b->blaslt, err);
    *out = b->blaslt;
    pthread_mutex_unlock(&init_lock);
    return rc;
}

/* The entry of table serving n's (op, domain, opset), or NULL. */
static const cs__kernel *find(const cs__kernel *table, const cs__node *n)
{
    const cs__kernel *best = NULL;
    for (const cs__kernel *k = table; k && k->op; k++)
        if (cs__op_entry_serves(k->op, k->domain, k->since, n->op_type, n->domain, n->opset,
                                best ? best->since : -1))
            best = k;
    return best;
}

/* The test table when one is set, else the family tables (cuda_ops.h) when the device has
 * the module; then the kernel's types and its accepts() hook decide. */
static const cs__kernel *cuda_supports(const cs__backend *be, const cs__node *n,
                                       const cs_tensor *const *in, cs_error *err)
{
    static const cs__kernel *const families[] = {cs__cuda_eltwise_kernels, cs__cuda_rows_kernels,
                                                 cs__cuda_move_kernels};
    const cs__cuda_be *b = of(be);
    const cs__kernel *best = find(kernels, n);
    for (size_t i = 0; !kernels && b->module && !best && i < sizeof families / sizeof *families;
         i++)
        best = find(families[i], n);
    void *handle;
    cs_error why;
    if (!kernels && b->module && !best && (best = find(cs__cuda_gemm_kernels, n)) &&
        cs__cuda_blaslt(b, &handle, &why) != CS_OK) {
        cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no cuBLASLt on %s: %s", be->name, why.msg);
        return NULL;
    }
    if (!best) {
        if (!kernels && !b->module)
            cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no CUDA kernels on %s: %s", be->name,
                           b->no_kernels);
        else
            cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no CUDA kernel for it (opset %lld)",
                           (long long)n->opset);
        return NULL;
    }
    if (best->types && best->type_input < n->n_in && in[best->type_input]) {
        cs_dtype t = in[best->type_input]->dtype;
        if (t >= 32 || !(best->types & (1u << t))) {
            cs__node_error(err, n, CS_ERR_UNSUPPORTED, "no CUDA kernel for element type %s",
                           cs_dtype_name(t));
            return NULL;
        }
    }
    return best->accepts && !best->accepts(n, in, err) ? NULL : best;
}

static void *cuda_alloc(const cs__backend *be, size_t bytes)
{
    const cs__cuda_be *b = of(be);
    cs__cu_deviceptr p = 0;
    if (cs__cuda_enter(b, NULL) || b->cu->MemAlloc(&p, bytes ? bytes : 1) != CS__CU_SUCCESS)
        return NULL;
    return (void *)(uintptr_t)p;
}

static void cuda_release(const cs__backend *be, void *p)
{
    const cs__cuda_be *b = of(be);
    if (p && cs__cuda_enter(b, NULL) == CS_OK) b->cu->MemFree((cs__cu_deviceptr)(uintptr_t)p);
}

static cs_status cuda_copy_in(const cs__backend *be, void *dst, const void *host, size_t bytes,
                              cs_error *err)
{
    const cs__cuda_be *b = of(be);
    cs_status rc = bytes ? cs__cuda_enter(b, err) : CS_OK;
    if (rc || !bytes) return rc;
    cs__cu_result r =
        b->cu->MemcpyHtoDAsync((cs__cu_deviceptr)(uintptr_t)dst, host, bytes, b->stream);
    return r == CS__CU_SUCCESS ? CS_OK : fail(b, r, "cuMemcpyHtoDAsync", err);
}

static cs_status cuda_copy_out(const cs__backend *be, void *host, const void *src, size_t bytes,
                               cs_error *err)
{
    const cs__cuda_be *b = of(be);
    cs_status rc = bytes ? cs__cuda_enter(b, err) : CS_OK;
    if (rc || !bytes) return rc;
    cs__cu_result r =
        b->cu->MemcpyDtoHAsync(host, (cs__cu_deviceptr)(uintptr_t)src, bytes, b->stream);
    if (r != CS__CU_SUCCESS) return fail(b, r, "cuMemcpyDtoHAsync", err);
    r = b->cu->StreamSynchronize(b->stream);
    return r == CS__CU_SUCCESS ? CS_OK : fail(b, r, "cuStreamSynchronize", err);
}

static cs_status cuda_sync(const cs__backend *be, cs_error *err)
{
    const cs__cuda_be *b = of(be);
    cs_status rc = cs__cuda_enter(b, err);
    if (rc) return rc;
    cs__cu_result r = b->cu->StreamSynchronize(b->stream);
    return r == CS__CU_SUCCESS ? CS_OK : fail(b, r, "cuStreamSynchronize", err);
}

/* What init finds out about the device, for messages and the memory bound. */
static cs_status describe(cs__cuda_be *b, cs_error *err)
{
    const cs__cu *cu = b->cu;
    cs__cu_result r;
    if ((r = cu->MemGetInfo(&b->free_mem, &b->total_mem))) return fail(b, r, "cuMemGetInfo", err);
    if ((r = cu->DeviceGetName(b->device_name, (int)sizeof b->device_name, b->dev)))
        return fail(b, r, "cuDeviceGetName", err);
    if ((r = cu->DeviceGetAttribute(&b->cc_major, CS__CU_ATTR_CC_MAJOR, b->dev)) ||
        (r = cu->DeviceGetAttribute(&b->cc_minor, CS__CU_ATTR_CC_MINOR, b->dev)) ||
        (r = cu->DeviceGetAttribute(&b->sm_count, CS__CU_ATTR_SM_COUNT, b->dev)))
        return fail(b, r, "cuDeviceGetAttribute", err);
    return CS_OK;
}

static cs_status open_device(cs__cuda_be *b, cs_error *err)
{
    int count = 0;
    cs_status rc = cs__cu_load(&b->cu, err);
    if (rc) return rc;
    cs__cu_result r = b->cu->DeviceGetCount(&count);
    if (r) return fail(b, r, "cuDeviceGetCount", err);
    if (b->id >= count)
        return count ? cs_error_set(err, CS_ERR_UNSUPPORTED,
                                    "this machine has %d CUDA device%s (cuda:0..cuda:%d)", count,
                                    count == 1 ? "" : "s", count - 1)
                     : cs_error_set(err, CS_ERR_UNSUPPORTED, "this machine has no CUDA device");
    if ((r = b->cu->DeviceGet(&b->dev, b->id))) return fail(b, r, "cuDeviceGet", err);
    if ((r = b->cu->DevicePrimaryCtxRetain(&b->ctx, b->dev)))
        return fail(b, r, "cuDevicePrimaryCtxRetain", err);
    rc = cs__cuda_enter(b, err);
    if (rc == CS_OK && (r = b->cu->StreamCreate(&b->stream, CS__CU_STREAM_NON_BLOCKING)))
        rc = fail(b, r, "cuStreamCreate", err);
    if (rc == CS_OK && (rc = describe(b, err))) b->cu->StreamDestroy(b->stream);
    if (rc == CS_OK) cs__cuda_module_load(b);
    if (rc) b->cu->DevicePrimaryCtxRelease(b->dev);
    return rc;
}

static cs_status cuda_init(const cs__backend *be, cs_error *err)
{
    cs__cuda_be *b = of(be);
    /* Nodes without a CUDA kernel run on the CPU, so its libraries must be there too. */
    cs_status rc = cs__cpu_backend.init(&cs__cpu_backend, err);
    if (rc) return rc;
    pthread_mutex_lock(&init_lock);
    rc = b->ready ? CS_OK : open_device(b, err);
    if (rc == CS_OK) b->ready = true;
    pthread_mutex_unlock(&init_lock);
    return rc ? cs_error_prefix(err, "device %s is unavailable: ", be->name) : CS_OK;
}

static void fill_table(void)
{
    for (int i = 0; i < CS__CUDA_MAX_DEVICES; i++) {
        snprintf(names[i], sizeof names[i], "cuda:%d", i);
        devices[i] = (cs__cuda_be){
            .base = {.name = names[i],
                     .device = {CS_DEVICE_CUDA, i},
                     .precisions = PRECISIONS,
                     .supports = cuda_supports,
                     .alloc = cuda_alloc,
                     .release = cuda_release,
                     .copy_in = cuda_copy_in,
                     .copy_out = cuda_copy_out,
                     .sync = cuda_sync,
                     .init = cuda_init},
            .id = i,
        };
    }
}

const cs__backend *cs__cuda_backend_get(int id)
{
    if (id < 0 || id >= CS__CUDA_MAX_DEVICES) return NULL;
    pthread_once(&table_once, fill_table);
    return &devices[id].base;
}

/*
 * fake_cuda.c - a stand-in libcuda.so.1 for testing the CUDA backend where no GPU is.
 *
 * It exports every driver entry point the engine resolves (src/engine/cuda/driver.h) and
 * keeps "device memory" in host memory, so a test can read what the backend wrote: an
 * allocation is a 256-byte aligned block (as cuMemAlloc's), charged against the device's
 * memory, and copies are memcpy. It checks what a real driver checks and the backend must
 * get right: cuInit before anything, a current context on the calling thread for memory
 * and stream calls (a thread-local, as the driver's), valid ordinals and live streams.
 * Modules, kernel launches and graphs answer CUDA_ERROR_NOT_SUPPORTED.
 *
 * Environment, read by cuInit: FAKE_CUDA_DEVICES (default 1; 0 makes cuInit answer
 * CUDA_ERROR_NO_DEVICE, as the driver does on a machine without GPUs) and FAKE_CUDA_MEMORY
 * (bytes per device, default 64 MiB).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
    SUCCESS = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    NOT_INITIALIZED = 3,
    NO_DEVICE = 100,
    INVALID_DEVICE = 101,
    INVALID_CONTEXT = 201,
    INVALID_HANDLE = 400,
    NOT_SUPPORTED = 801,
};

static const struct {
    CUresult r;
    const char *name, *text;
} errors[] = {
    {SUCCESS, "CUDA_SUCCESS", "no error"},
    {INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

#define MAX_DEVICES 16
#define MAX_STREAMS 64
#define HEADER      256 /* before each block: its size; keeps blocks 256-byte aligned */

struct CUctx_st {
    int device;
};
struct CUstream_st {
    int live;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inited, n_devices;
static size_t total_mem, used_mem[MAX_DEVICES];
static struct CUctx_st contexts[MAX_DEVICES];
static struct CUstream_st streams[MAX_STREAMS];
static _Thread_local struct CUctx_st *current, *pushed[8];
static _Thread_local int n_pushed;

static long env_or(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* What most calls check first: the driver is up and a context is current. */
static CUresult ready(void)
{
    return !inited ? NOT_INITIALIZED : !current ? INVALID_CONTEXT : SUCCESS;
}

static CUresult live_stream(struct CUstream_st *s)
{
    CUresult r = ready();
    if (r) return r;
    return s >= streams && s < streams + MAX_STREAMS && s->live ? SUCCESS : INVALID_HANDLE;
}

CUresult cuInit(unsigned flags)
{
    if (flags) return INVALID_VALUE;
    n_devices = (int)env_or("FAKE_CUDA_DEVICES", 1);
    total_mem = (size_t)env_or("FAKE_CUDA_MEMORY", 64L << 20);
    if (n_devices < 1) return NO_DEVICE;
    if (n_devices > MAX_DEVICES) n_devices = MAX_DEVICES;
    inited = 1;
    return SUCCESS;
}

CUresult cuDriverGetVersion(int *v)
{
    *v = 13000;
    return SUCCESS;
}

CUresult cuDeviceGetCount(int *n)
{
    if (!inited) return NOT_INITIALIZED;
    *n = n_devices;
    return SUCCESS;
}

CUresult cuDeviceGet(int *dev, int ordinal)
{
    if (!inited) return NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= n_devices) return INVALID_DEVICE;
    *dev = ordinal;
    return SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, int dev)
{
    if (dev < 0 || dev >= n_devices) return INVALID_DEVICE;
    snprintf(name, (size_t)len, "Fake CUDA Device %d", dev);
    return SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
    if (dev < 0 || dev >= n_devices) return INVALID_DEVICE;
    *bytes = total_mem;
    return SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, int attr, int dev)
{
    if (dev < 0 || dev >= n_devices) return INVALID_DEVICE;
    *v = attr == 75 ? 9 : attr == 76 ? 0 : attr == 16 ? 132 : 0; /* an H200's: sm_90, 132 SMs */
    return SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(struct CUctx_st **ctx, int dev)
{
    if (!inited) return NOT_INITIALIZED;
    if (dev < 0 || dev >= n_devices) return INVALID_DEVICE;
    contexts[dev].device = dev;
    *ctx = &contexts[dev];
    return SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(int dev)
{
    return dev < 0 || dev >= n_devices ? INVALID_DEVICE : SUCCESS;
}

CUresult cuCtxSetCurrent(struct CUctx_st *ctx)
{
    if (!inited) return NOT_INITIALIZED;
    current = ctx;
    return SUCCESS;
}

CUresult cuCtxPushCurrent_v2(struct CUctx_st *ctx)
{
    if (!inited) return NOT_INITIALIZED;
    if (n_pushed == 8) return INVALID_VALUE;
    pushed[n_pushed++] = current;
    current = ctx;
    return SUCCESS;
}

CUresult cuCtxPopCurrent_v2(struct CUctx_st **ctx)
{
    if (!inited) return NOT_INITIALIZED;
    if (!n_pushed) return INVALID_CONTEXT;
    if (ctx) *ctx = current;
    current = pushed[--n_pushed];
    return SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes)
{
    CUresult r = ready();
    if (r) return r;
    if (!bytes) return INVALID_VALUE;
    int dev = current->device;
    pthread_mutex_lock(&lock);
    int fits = bytes <= total_mem - used_mem[dev];
    if (fits) used_mem[dev] += bytes;
    pthread_mutex_unlock(&lock);
    char *block =
        fits ? aligned_alloc(HEADER, HEADER + ((bytes + HEADER - 1) & ~(size_t)(HEADER - 1)))
             : NULL;
    if (!block) {
        if (fits) {
            pthread_mutex_lock(&lock);
            used_mem[dev] -= bytes;
            pthread_mutex_unlock(&lock);
        }
        return OUT_OF_MEMORY;
    }
    memcpy(block, &bytes, sizeof bytes);
    memcpy(block + sizeof bytes, &dev, sizeof dev);
    *p = (CUdeviceptr)(uintptr_t)(block + HEADER);
    return SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p)
{
    CUresult r = ready();
    if (r) return r;
    if (!p) return SUCCESS;
    char *block = (char *)(uintptr_t)p - HEADER;
    size_t bytes;
    int dev;
    memcpy(&bytes, block, sizeof bytes);
    memcpy(&dev, block + sizeof bytes, sizeof dev);
    pthread_mutex_lock(&lock);
    used_mem[dev] -= bytes;
    pthread_mutex_unlock(&lock);
    free(block);
    return SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    CUresult r = ready();
    if (r) return r;
    pthread_mutex_lock(&lock);
    *free_bytes = total_mem - used_mem[current->device];
    pthread_mutex_unlock(&lock);
    *total_bytes = total_mem;
    return SUCCESS;
}

CUresult cuMemAllocHost_v2(void **p, size_t bytes)
{
    CUresult r = ready();
    if (r) return r;
    return (*p = malloc(bytes ? bytes : 1)) ? SUCCESS : OUT_OF_MEMORY;
}

CUresult cuMemFreeHost(void *p)
{
    free(p);
    return SUCCESS;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, struct CUstream_st *s)
{
    CUresult r = live_stream(s);
    if (r == SUCCESS) memcpy((void *)(uintptr_t)dst, src, n);
    return r;
}

CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, struct CUstream_st *s)
{
    CUresult r = live_stream(s);
    if (r == SUCCESS) memcpy(dst, (const void *)(uintptr_t)src, n);
    return r;
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, struct CUstream_st *s)
{
    CUresult r = live_stream(s);
    if (r == SUCCESS) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return r;
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, struct CUstream_st *s)
{
    CUresult r = live_stream(s);
    if (r == SUCCESS) memset((void *)(uintptr_t)dst, v, n);
    return r;
}

CUresult cuStreamCreate(struct CUstream_st **s, unsigned flags)
{
    CUresult r = ready();
    if (r) return r;
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < MAX_STREAMS && streams[i].live) i++;
    if (i < MAX_STREAMS) streams[i].live = 1;
    pthread_mutex_unlock(&lock);
    if (i == MAX_STREAMS) return OUT_OF_MEMORY;
    *s = &streams[i];
    return SUCCESS;
}

CUresult cuStreamDestroy_v2(struct CUstream_st *s)
{
    CUresult r = live_stream(s);
    if (r == SUCCESS) s->live = 0;
    return r;
}

CUresult cuStreamSynchronize(struct CUstream_st *s)
{
    return live_stream(s);
}

CUresult cuModuleLoadData(void **m, const void *image)
{
    return NOT_SUPPORTED;
}

CUresult cuModuleUnload(void *m)
{
    return NOT_SUPPORTED;
}

CUresult cuModuleGetFunction(void **f, void *m, const char *name)
{
    return NOT_SUPPORTED;
}

CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void *s, void **params, void **extra)
{
    return NOT_SUPPORTED;
}

CUresult cuStreamBeginCapture_v2(void *s, int mode)
{
    return NOT_SUPPORTED;
}

CUresult cuStreamEndCapture(void *s, void **g)
{
    return NOT_SUPPORTED;
}

CUresult cuGraphInstantiateWithFlags(void **e, void *g, unsigned long long flags)
{
    return NOT_SUPPORTED;
}

CUresult cuGraphLaunch(void *e, void *s)
{
    return NOT_SUPPORTED;
}

CUresult cuGraphExecDestroy(void *e)
{
    return NOT_SUPPORTED;
}

CUresult cuGraphDestroy(void *g)
{
    return NOT_SUPPORTED;
}

/* As the driver: an unknown code is CUDA_ERROR_INVALID_VALUE with *out set to NULL. */
static CUresult describe(CUresult r, const char **out, int text)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].r == r) {
            *out = text ? errors[i].text : errors[i].name;
            return SUCCESS;
        }
    *out = NULL;
    return INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult r, const char **name)
{
    return describe(r, name, 0);
}

CUresult cuGetErrorString(CUresult r, const char **text)
{
    return describe(r, text, 1);
}

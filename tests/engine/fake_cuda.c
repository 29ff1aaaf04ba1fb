/*
 * fake_cuda.c - a stand-in libcuda.so.1 for testing the CUDA backend where no GPU is.
 *
 * It exports every driver entry point the engine resolves (src/engine/cuda/driver.h) and
 * keeps "device memory" in host memory, so a test can read what the backend wrote: an
 * allocation is a 256-byte aligned block (as cuMemAlloc's), charged against the device's
 * memory, and copies are memcpy. It checks what a real driver checks and the backend must
 * get right: cuInit before anything, a current context on the calling thread for memory
 * and stream calls (a thread-local, as the driver's), valid ordinals and live streams.
 * Modules hold the project's kernels by name (src/engine/cuda/kernels.h), whatever image
 * is loaded: cuModuleGetFunction finds exactly the names of CS_CUDA_KERNELS. cuLaunchKernel
 * checks what the device would (a live stream, the block size kernels.h fixes for the
 * kernel, grid limits, and every pointer parameter inside a live allocation: host memory
 * handed to a kernel is an error here, as it is a fault there), records the launch for
 * the test (fake_cuda.h) and computes the float32 and data-movement kernels in C, after
 * the .cu files, so a session's results can be compared with the CPU's. Graphs answer
 * CUDA_ERROR_NOT_SUPPORTED.
 *
 * Environment, read by cuInit: FAKE_CUDA_DEVICES (default 1; 0 makes cuInit answer
 * CUDA_ERROR_NO_DEVICE, as the driver does on a machine without GPUs) and FAKE_CUDA_MEMORY
 * (bytes per device, default 64 MiB) and FAKE_CUDA_NO_MODULE (an ordinal whose
 * cuModuleLoadData answers CUDA_ERROR_NO_BINARY_FOR_GPU, as for a GPU older than the code).
 */
#include "fake_cuda.h"

#include "engine/cuda/kernels.h"

#include <math.h>
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
    NO_BINARY_FOR_GPU = 209,
    NOT_FOUND = 500,
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
    {NO_BINARY_FOR_GPU, "CUDA_ERROR_NO_BINARY_FOR_GPU",
     "no kernel image is available for "
     "execution on the device"},
    {NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

#define MAX_DEVICES 16
#define MAX_STREAMS 64
#define HEADER      256 /* before each block: its size; keeps blocks 256-byte aligned */
#define MAX_BLOCKS  4096

struct CUctx_st {
    int device;
};
struct CUstream_st {
    int live;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inited, n_devices, no_module_device;
static size_t total_mem, used_mem[MAX_DEVICES];
static struct CUctx_st contexts[MAX_DEVICES];
static struct CUstream_st streams[MAX_STREAMS];
static _Thread_local struct CUctx_st *current, *pushed[8];
static _Thread_local int n_pushed;
/* Live allocations [start, end), for the launches' pointer checks. */
static struct {
    uintptr_t start, end;
} blocks[MAX_BLOCKS];
static int n_blocks;

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
    no_module_device = (int)env_or("FAKE_CUDA_NO_MODULE", -1);
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
    pthread_mutex_lock(&lock);
    int listed = n_blocks < MAX_BLOCKS;
    if (listed) {
        blocks[n_blocks].start = (uintptr_t)*p;
        blocks[n_blocks++].end = (uintptr_t)*p + bytes;
    } else {
        used_mem[dev] -= bytes;
    }
    pthread_mutex_unlock(&lock);
    if (!listed) free(block);
    return listed ? SUCCESS : OUT_OF_MEMORY;
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
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].start == (uintptr_t)p) blocks[i] = blocks[--n_blocks];
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

/* --- modules and launches ---------------------------------------------------------------- */

/* Kernel families by signature (kernels.h): parameter sizes, how many leading parameters
 * are device pointers (and which may be NULL), the block size kernels.h fixes. */
typedef enum {
    BINARY,
    UNARY,
    SOFTMAX,
    LAYERNORM,
    RED_ROWS,
    RED_COLS,
    STRIDED,
    TRANSPOSE,
    GATHER,
    CONCAT,
    BIAS_ACT,
    CAST,
    N_FAMILIES
} family;

static const struct {
    int n;
    size_t size[FAKE_CUDA_MAX_PARAMS];
    int n_ptrs;
    unsigned nullable; /* bits of pointer parameters that may be NULL */
    unsigned bx, by;
} families[N_FAMILIES] = {
    [BINARY] = {5, {8, 8, 8, 8, CS_CUDA_BCAST_SIZE}, 3, 0, CS_CUDA_BLOCK, 1},
    [UNARY] = {4, {8, 8, 8, CS_CUDA_UNARY_ARGS_SIZE}, 2, 0, CS_CUDA_BLOCK, 1},
    [SOFTMAX] = {4, {8, 8, 8, 8}, 2, 0, CS_CUDA_ROW_BLOCK, 1},
    [LAYERNORM] = {7, {8, 8, 8, 8, 8, 8, 4}, 4, 1u << 2, CS_CUDA_ROW_BLOCK, 1},
    [RED_ROWS] = {3, {8, 8, CS_CUDA_REDUCE_ARGS_SIZE}, 2, 0, CS_CUDA_ROW_BLOCK, 1},
    [RED_COLS] = {3, {8, 8, CS_CUDA_REDUCE_ARGS_SIZE}, 2, 0, CS_CUDA_BLOCK, 1},
    [STRIDED] = {4, {8, 8, 8, CS_CUDA_STRIDED_SIZE}, 2, 0, CS_CUDA_BLOCK, 1},
    [TRANSPOSE] = {5, {8, 8, 8, 8, 8}, 2, 0, CS_CUDA_TILE, CS_CUDA_TILE_ROWS},
    [GATHER] = {4, {8, 8, 8, CS_CUDA_GATHER_ARGS_SIZE}, 3, 0, CS_CUDA_BLOCK, 1},
    [CONCAT] = {3, {8, 8, CS_CUDA_CONCAT_ARGS_SIZE}, 2, 0, CS_CUDA_BLOCK, 1},
    [BIAS_ACT] = {4, {8, 8, 8, CS_CUDA_BIAS_ACT_ARGS_SIZE}, 3, 1u << 1, CS_CUDA_BLOCK, 1},
    [CAST] = {3, {8, 8, 8}, 2, 0, CS_CUDA_BLOCK, 1},
};

#define NAME(suffix) CS_CUDA_KERNEL_NAME(suffix),
static const char *const kernel_names[] = {CS_CUDA_KERNELS(NAME)};
#undef NAME
#define N_KERNELS (sizeof kernel_names / sizeof *kernel_names)

struct CUmod_st {
    int live;
};
struct CUfunc_st {
    const char *name;
    family fam;
};
static struct CUmod_st modules[MAX_DEVICES];
static struct CUfunc_st functions[N_KERNELS];
static fake_cuda_launch launches[FAKE_CUDA_MAX_LAUNCHES];
static int n_launches;

static int starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static family family_of(const char *name)
{
    static const struct {
        const char *prefix;
        family f;
    } by_prefix[] = {
        {"cs_softmax_", SOFTMAX},      {"cs_log_softmax_", SOFTMAX},   {"cs_layernorm_", LAYERNORM},
        {"cs_strided_copy_", STRIDED}, {"cs_transpose2d_", TRANSPOSE}, {"cs_gather_", GATHER},
        {"cs_concat_", CONCAT},        {"cs_bias_act_", BIAS_ACT},     {"cs_cast_", CAST},
    };
    for (size_t i = 0; i < sizeof by_prefix / sizeof *by_prefix; i++)
        if (starts(name, by_prefix[i].prefix)) return by_prefix[i].f;
    if (starts(name, "cs_reduce_")) return strstr(name, "_rows_") ? RED_ROWS : RED_COLS;
    static const char *const binary[] = {"add", "sub", "mul", "div", "pow", "max", "min"};
    for (size_t i = 0; i < sizeof binary / sizeof *binary; i++) {
        size_t len = strlen(binary[i]);
        if (!strncmp(name + 3, binary[i], len) && name[3 + len] == '_' &&
            (!strcmp(name + 4 + len, "f32") || !strcmp(name + 4 + len, "f16") ||
             !strcmp(name + 4 + len, "bf16")))
            return BINARY;
    }
    return UNARY;
}

CUresult cuModuleLoadData(struct CUmod_st **m, const void *image)
{
    CUresult r = ready();
    if (r) return r;
    if (!image) return INVALID_VALUE;
    if (current->device == no_module_device) return NO_BINARY_FOR_GPU;
    modules[current->device].live = 1;
    *m = &modules[current->device];
    return SUCCESS;
}

CUresult cuModuleUnload(struct CUmod_st *m)
{
    if (m < modules || m >= modules + MAX_DEVICES || !m->live) return INVALID_HANDLE;
    m->live = 0;
    return SUCCESS;
}

CUresult cuModuleGetFunction(struct CUfunc_st **f, struct CUmod_st *m, const char *name)
{
    if (m < modules || m >= modules + MAX_DEVICES || !m->live) return INVALID_HANDLE;
    for (size_t i = 0; i < N_KERNELS; i++)
        if (!strcmp(kernel_names[i], name)) {
            functions[i] = (struct CUfunc_st){kernel_names[i], family_of(name)};
            *f = &functions[i];
            return SUCCESS;
        }
    return NOT_FOUND;
}

/* Whether p points into a live allocation (lock held). */
static int on_device(const void *p)
{
    for (int i = 0; i < n_blocks; i++)
        if ((uintptr_t)p >= blocks[i].start && (uintptr_t)p < blocks[i].end) return 1;
    return 0;
}

/* --- the kernels in C, after the .cu files (float32 compute, any width for movement) ------ */

#define PARAM(k, T) (*(T *)params[k])

/* name is "cs_<op>_<suffix>" with op as given. */
static int op_is(const char *name, const char *op)
{
    size_t len = strlen(op);
    return !strncmp(name + 3, op, len) && name[3 + len] == '_';
}

static int ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static float nan_max(float a, float b)
{
    return (a > b || a != a) ? a : b;
}

static float nan_min(float a, float b)
{
    return (a < b || a != a) ? a : b;
}

static float binary_op(const char *name, float a, float b)
{
    return op_is(name, "add")   ? a + b
           : op_is(name, "sub") ? a - b
           : op_is(name, "mul") ? a * b
           : op_is(name, "div") ? a / b
           : op_is(name, "pow") ? powf(a, b)
           : op_is(name, "max") ? nan_max(a, b)
                                : nan_min(a, b);
}

static float unary_op(const char *name, float v, cs_cuda_unary_args p)
{
    if (op_is(name, "relu")) return v < 0.0f ? 0.0f : v;
    if (op_is(name, "sigmoid")) return 1.0f / (1.0f + expf(-v));
    if (op_is(name, "tanh")) return tanhf(v);
    if (op_is(name, "exp")) return expf(v);
    if (op_is(name, "log")) return logf(v);
    if (op_is(name, "sqrt")) return sqrtf(v);
    if (op_is(name, "neg")) return -v;
    if (op_is(name, "abs")) return fabsf(v);
    if (op_is(name, "erf")) return erff(v);
    if (op_is(name, "gelu")) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    if (op_is(name, "clip")) return v < p.alpha ? p.alpha : (v > p.beta ? p.beta : v);
    if (op_is(name, "leaky_relu")) return v < 0.0f ? p.alpha * v : v;
    if (op_is(name, "hard_sigmoid")) return fminf(1.0f, fmaxf(0.0f, p.alpha * v + p.beta));
    return v / (1.0f + expf(-v)); /* silu */
}

static void binary(const char *name, void **params)
{
    const float *a = PARAM(0, const float *), *b = PARAM(1, const float *);
    float *y = PARAM(2, float *);
    int64_t n = PARAM(3, int64_t);
    cs_cuda_bcast s = PARAM(4, cs_cuda_bcast);
    for (int64_t i = 0; i < n; i++) {
        int64_t r = i, ia = s.rank ? 0 : i, ib = s.rank ? 0 : i;
        for (int k = s.rank - 1; k >= 0; k--) {
            int64_t q = r / s.dims[k], c = r - q * s.dims[k];
            r = q;
            ia += c * s.a_strides[k];
            ib += c * s.b_strides[k];
        }
        y[i] = binary_op(name, a[ia], b[ib]);
    }
}

static void softmax(const char *name, void **params)
{
    const float *x = PARAM(0, const float *);
    float *y = PARAM(1, float *);
    int64_t rows = PARAM(2, int64_t), cols = PARAM(3, int64_t);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols, m = -INFINITY, s = 0.0f;
        for (int64_t c = 0; c < cols; c++) m = nan_max(m, xr[c]);
        for (int64_t c = 0; c < cols; c++) s += expf(xr[c] - m);
        for (int64_t c = 0; c < cols; c++)
            yr[c] = op_is(name, "log_softmax") ? xr[c] - m - logf(s) : expf(xr[c] - m) / s;
    }
}

static void layernorm(void **params)
{
    const float *x = PARAM(0, const float *), *scale = PARAM(1, const float *),
                *bias = PARAM(2, const float *);
    float *y = PARAM(3, float *), eps = PARAM(6, float);
    int64_t rows = PARAM(4, int64_t), cols = PARAM(5, int64_t);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float mean = 0.0f, var = 0.0f;
        for (int64_t c = 0; c < cols; c++) mean += xr[c];
        mean /= (float)cols;
        for (int64_t c = 0; c < cols; c++) var += (xr[c] - mean) * (xr[c] - mean);
        float inv = 1.0f / sqrtf(var / (float)cols + eps);
        for (int64_t c = 0; c < cols; c++)
            y[r * cols + c] = (xr[c] - mean) * inv * scale[c] + (bias ? bias[c] : 0.0f);
    }
}

static void reduce(const char *name, void **params)
{
    const float *x = PARAM(0, const float *);
    float *y = PARAM(1, float *);
    cs_cuda_reduce_args a = PARAM(2, cs_cuda_reduce_args);
    const char *op = name + strlen("cs_reduce_");
    int sum = starts(op, "sum"), mean = starts(op, "mean"), max = starts(op, "max");
    for (int64_t j = 0; j < a.outer * a.inner; j++) {
        int64_t o = j / a.inner, i = j - o * a.inner;
        float v = sum || mean ? 0.0f : max ? -INFINITY : INFINITY;
        for (int64_t r = 0; r < a.reduced; r++) {
            float e = x[(o * a.reduced + r) * a.inner + i];
            v = sum || mean ? v + e : max ? nan_max(v, e) : nan_min(v, e);
        }
        y[j] = mean ? v / (float)a.reduced : v;
    }
}

/* The movement kernels, for elements of w bytes. */
static void move(family fam, size_t w, void **params)
{
    const char *x = PARAM(0, const char *);
    if (fam == STRIDED) {
        char *y = PARAM(1, char *);
        int64_t n = PARAM(2, int64_t);
        cs_cuda_strided s = PARAM(3, cs_cuda_strided);
        for (int64_t i = 0; i < n; i++) {
            int64_t r = i, src = s.base;
            for (int k = s.rank - 1; k >= 0; k--) {
                int64_t q = r / s.dims[k];
                src += (r - q * s.dims[k]) * s.strides[k];
                r = q;
            }
            memcpy(y + i * w, x + src * w, w);
        }
    } else if (fam == TRANSPOSE) {
        char *y = PARAM(1, char *);
        int64_t batch = PARAM(2, int64_t), rows = PARAM(3, int64_t), cols = PARAM(4, int64_t);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++)
                    memcpy(y + ((b * cols + c) * rows + r) * w, x + ((b * rows + r) * cols + c) * w,
                           w);
    } else if (fam == GATHER) {
        const int64_t *idx = PARAM(1, const int64_t *);
        char *y = PARAM(2, char *);
        cs_cuda_gather_args g = PARAM(3, cs_cuda_gather_args);
        for (int64_t i = 0; i < g.outer * g.n_idx * g.inner; i++) {
            int64_t t = i / g.inner, in = i - t * g.inner, o = t / g.n_idx, j = t - o * g.n_idx;
            int64_t k = idx[j] < 0 ? idx[j] + g.axis_dim : idx[j];
            if (k >= 0 && k < g.axis_dim)
                memcpy(y + i * w, x + ((o * g.axis_dim + k) * g.inner + in) * w, w);
            else
                memset(y + i * w, 0, w);
        }
    } else {
        char *y = PARAM(1, char *);
        cs_cuda_concat_args c = PARAM(2, cs_cuda_concat_args);
        for (int64_t i = 0; i < c.outer * c.in_inner; i++) {
            int64_t o = i / c.in_inner, j = i - o * c.in_inner;
            memcpy(y + (o * c.out_inner + c.offset + j) * w, x + i * w, w);
        }
    }
}

static void bias_act(void **params)
{
    const float *x = PARAM(0, const float *), *bias = PARAM(1, const float *);
    float *y = PARAM(2, float *);
    cs_cuda_bias_act_args a = PARAM(3, cs_cuda_bias_act_args);
    for (int64_t i = 0; i < a.batch * a.channels * a.spatial; i++) {
        float v = x[i] + (bias ? bias[(i / a.spatial) % a.channels] : 0.0f);
        y[i] = a.clamp ? (v < a.lo ? a.lo : (v > a.hi ? a.hi : v)) : v;
    }
}

/* Computes the launch when the fake knows how; whether it did. */
static int execute(const char *name, family fam, void **params)
{
    size_t w = ends(name, "_b16") ? 2 : ends(name, "_b32") ? 4 : ends(name, "_b64") ? 8 : 0;
    if (w && (fam == STRIDED || fam == TRANSPOSE || fam == GATHER || fam == CONCAT)) {
        move(fam, w, params);
        return 1;
    }
    if (!ends(name, "_f32")) return 0;
    switch (fam) {
    case BINARY: binary(name, params); return 1;
    case UNARY: {
        const float *x = PARAM(0, const float *);
        float *y = PARAM(1, float *);
        int64_t n = PARAM(2, int64_t);
        for (int64_t i = 0; i < n; i++) y[i] = unary_op(name, x[i], PARAM(3, cs_cuda_unary_args));
        return 1;
    }
    case SOFTMAX: softmax(name, params); return 1;
    case LAYERNORM: layernorm(params); return 1;
    case RED_ROWS:
    case RED_COLS: reduce(name, params); return 1;
    case BIAS_ACT: bias_act(params); return 1;
    default: return 0;
    }
}

CUresult cuLaunchKernel(struct CUfunc_st *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, struct CUstream_st *s,
                        void **params, void **extra)
{
    CUresult r = live_stream(s);
    if (r) return r;
    if (f < functions || f >= functions + N_KERNELS || !f->name || !params || extra)
        return INVALID_HANDLE;
    const family fam = f->fam;
    if (bx != families[fam].bx || by != families[fam].by || bz != 1 || shared) return INVALID_VALUE;
    if (!gx || !gy || !gz || gy > 65535 || gz > 65535 || gx > 0x7fffffffu) return INVALID_VALUE;
    pthread_mutex_lock(&lock);
    for (int k = 0; k < families[fam].n_ptrs; k++) {
        const void *p = *(void *const *)params[k];
        if (!(p ? on_device(p) : (int)((families[fam].nullable >> k) & 1u))) {
            pthread_mutex_unlock(&lock);
            return INVALID_VALUE; /* the device would fault on a host or dangling pointer */
        }
    }
    fake_cuda_launch *l = n_launches < FAKE_CUDA_MAX_LAUNCHES ? &launches[n_launches++] : NULL;
    if (l) {
        memset(l, 0, sizeof *l);
        snprintf(l->kernel, sizeof l->kernel, "%s", f->name);
        l->grid[0] = gx, l->grid[1] = gy, l->grid[2] = gz;
        l->block[0] = bx, l->block[1] = by, l->block[2] = bz;
        l->n_params = families[fam].n;
        size_t at = 0;
        for (int k = 0; k < l->n_params; k++) {
            l->param_size[k] = families[fam].size[k];
            memcpy(l->params + at, params[k], l->param_size[k]);
            at += l->param_size[k];
        }
    }
    int done = execute(f->name, fam, params);
    if (l) l->executed = done;
    pthread_mutex_unlock(&lock);
    return SUCCESS;
}

int fake_cuda_launch_count(void)
{
    pthread_mutex_lock(&lock);
    int n = n_launches;
    pthread_mutex_unlock(&lock);
    return n;
}

const fake_cuda_launch *fake_cuda_launch_get(int i)
{
    return i >= 0 && i < n_launches ? &launches[i] : NULL;
}

void fake_cuda_launches_clear(void)
{
    pthread_mutex_lock(&lock);
    n_launches = 0;
    pthread_mutex_unlock(&lock);
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

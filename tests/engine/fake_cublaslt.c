/*
 * fake_cublaslt.c - a fake cuBLASLt for the CUDA backend's tests on machines without a GPU,
 * loaded through CS_LIBCUBLASLT: the entry points blaslt.c resolves, with descriptors as
 * small host structs and cublasLtMatmul computed in C for float32 (the fake driver's device
 * pointers are host memory). The heuristic always finds one algorithm, asking for a small
 * workspace so the backend's workspace path is exercised. fake_cublaslt_live() counts the
 * objects not yet destroyed and fake_cublaslt_matmuls() the products computed, for tests
 * (reached with dlsym).
 */
#include "engine/cuda/vendor_abi.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_WORKSPACE 1024

typedef struct desc {
    int32_t transa, transb;
    uint32_t epilogue;
    const float *bias;
} desc;

typedef struct layout {
    int32_t type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch;
    int64_t stride;
} layout;

static int live, matmuls;

int fake_cublaslt_live(void)
{
    return live;
}

int fake_cublaslt_matmuls(void)
{
    return matmuls;
}

static int32_t make(void **out, void *obj)
{
    *out = obj;
    if (!obj) return 3; /* CUBLAS_STATUS_ALLOC_FAILED */
    live++;
    return 0;
}

static int32_t destroy(void *obj)
{
    if (obj) live--;
    free(obj);
    return 0;
}

int32_t cublasLtCreate(void **h)
{
    return make(h, calloc(1, 16));
}

int32_t cublasLtDestroy(void *h)
{
    return destroy(h);
}

size_t cublasLtGetVersion(void)
{
    return 130100;
}

const char *cublasLtGetStatusString(int32_t s)
{
    return s ? "CUBLAS_STATUS_NOT_SUPPORTED (fake)" : "CUBLAS_STATUS_SUCCESS";
}

int32_t cublasLtMatmulDescCreate(void **d, int32_t compute, int32_t scale)
{
    (void)compute;
    if (scale != CS__CUDA_R_32F) return CS__CUBLAS_STATUS_NOT_SUPPORTED;
    desc *x = calloc(1, sizeof *x);
    if (x) x->epilogue = CS__LT_EPILOGUE_DEFAULT;
    return make(d, x);
}

int32_t cublasLtMatmulDescDestroy(void *d)
{
    return destroy(d);
}

int32_t cublasLtMatmulDescSetAttribute(void *d, int32_t attr, const void *v, size_t n)
{
    desc *x = d;
    switch (attr) {
    case CS__LT_DESC_TRANSA: memcpy(&x->transa, v, n); break;
    case CS__LT_DESC_TRANSB: memcpy(&x->transb, v, n); break;
    case CS__LT_DESC_EPILOGUE: memcpy(&x->epilogue, v, n); break;
    case CS__LT_DESC_BIAS_POINTER: memcpy(&x->bias, v, n); break;
    default: break;
    }
    return 0;
}

int32_t cublasLtMatrixLayoutCreate(void **l, int32_t type, uint64_t rows, uint64_t cols, int64_t ld)
{
    layout *x = malloc(sizeof *x);
    if (x) *x = (layout){type, rows, cols, ld, 1, 0};
    return make(l, x);
}

int32_t cublasLtMatrixLayoutDestroy(void *l)
{
    return destroy(l);
}

int32_t cublasLtMatrixLayoutSetAttribute(void *l, int32_t attr, const void *v, size_t n)
{
    layout *x = l;
    if (attr == CS__LT_LAYOUT_BATCH_COUNT) memcpy(&x->batch, v, n);
    if (attr == CS__LT_LAYOUT_STRIDED_BATCH_OFFSET) memcpy(&x->stride, v, n);
    return 0;
}

int32_t cublasLtMatmulPreferenceCreate(void **p)
{
    return make(p, calloc(1, 16));
}

int32_t cublasLtMatmulPreferenceDestroy(void *p)
{
    return destroy(p);
}

int32_t cublasLtMatmulPreferenceSetAttribute(void *p, int32_t attr, const void *v, size_t n)
{
    (void)p, (void)attr, (void)v, (void)n;
    return 0;
}

int32_t cublasLtMatmulAlgoGetHeuristic(void *h, void *d, void *a, void *b, void *c, void *dd,
                                       void *pref, int requested, cs__lt_heuristic *res, int *found)
{
    (void)h, (void)d, (void)b, (void)c, (void)dd, (void)pref;
    *found = 0;
    if (requested < 1 || ((layout *)a)->type != CS__CUDA_R_32F) return 0;
    memset(res, 0, sizeof *res);
    res->workspace_size = FAKE_WORKSPACE;
    *found = 1;
    return 0;
}

/* Column-major: element (i, j) of a stored matrix at data[i + j * ld]. */
static float at(const float *m, const layout *l, int32_t trans, int64_t i, int64_t j)
{
    return trans ? m[j + i * l->ld] : m[i + j * l->ld];
}

int32_t cublasLtMatmul(void *h, void *dp, const void *alpha, const void *A, void *al, const void *B,
                       void *bl, const void *beta, const void *C, void *cl, void *D, void *dl,
                       const cs__lt_algo *algo, void *ws, size_t ws_size, void *stream)
{
    (void)h, (void)algo, (void)stream;
    const desc *d = dp;
    const layout *la = al, *lb = bl, *lc = cl, *ld = dl;
    if (ld->type != CS__CUDA_R_32F || ws_size < FAKE_WORKSPACE || !ws)
        return CS__CUBLAS_STATUS_NOT_SUPPORTED;
    float al_ = *(const float *)alpha, be_ = *(const float *)beta;
    int64_t m = (int64_t)ld->rows, n = (int64_t)ld->cols;
    int64_t k = (int64_t)(d->transa ? la->rows : la->cols);
    bool relu = d->epilogue == CS__LT_EPILOGUE_RELU || d->epilogue == CS__LT_EPILOGUE_RELU_BIAS;
    bool bias = d->epilogue == CS__LT_EPILOGUE_BIAS || d->epilogue == CS__LT_EPILOGUE_RELU_BIAS;
    for (int32_t b = 0; b < ld->batch; b++) {
        const float *a = (const float *)A + b * la->stride, *bb = (const float *)B + b * lb->stride;
        const float *c = (const float *)C + b * lc->stride;
        float *y = (float *)D + b * ld->stride;
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < m; i++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)at(a, la, d->transa, i, p) * at(bb, lb, d->transb, p, j);
                float v = al_ * (float)s + (be_ != 0.0f ? be_ * c[i + j * lc->ld] : 0.0f);
                if (bias) v += d->bias[i];
                y[i + j * ld->ld] = relu && v < 0.0f ? 0.0f : v;
            }
    }
    matmuls++;
    return 0;
}

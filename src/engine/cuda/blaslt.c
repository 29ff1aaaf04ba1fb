/*
 * blaslt.c - cuBLASLt loaded with dlopen, and the row-major GEMM built on it; see blaslt.h.
 *
 * Cost: a plan makes one matmul descriptor, four layouts and one preference, and asks the
 * heuristic once (a host-side query, microseconds to a millisecond); a run sets the bias
 * pointer (a host write into the descriptor) and queues one cublasLtMatmul, allocating
 * nothing. The heuristic is told the alignment the caller guarantees and the workspace it
 * will pass, so the algorithm it returns is valid for every run of the plan.
 *
 * Compute: float32 in CUBLAS_COMPUTE_32F (or _FAST_TF32 when asked); float16 and bfloat16
 * inputs also accumulate in CUBLAS_COMPUTE_32F, with float32 alpha and beta (scale type
 * CUDA_R_32F, as cuBLASLt requires for that compute type).
 */
#include "engine/cuda/blaslt.h"

#include "engine/cuda/vendor_load.h"

#include <string.h>

typedef int32_t lt_status;

static struct {
    lt_status (*create)(void **);
    lt_status (*destroy)(void *);
    size_t (*version)(void);
    const char *(*status_string)(lt_status);
    lt_status (*desc_create)(void **, int32_t, int32_t);
    lt_status (*desc_destroy)(void *);
    lt_status (*desc_set)(void *, int32_t, const void *, size_t);
    lt_status (*layout_create)(void **, int32_t, uint64_t, uint64_t, int64_t);
    lt_status (*layout_destroy)(void *);
    lt_status (*layout_set)(void *, int32_t, const void *, size_t);
    lt_status (*pref_create)(void **);
    lt_status (*pref_destroy)(void *);
    lt_status (*pref_set)(void *, int32_t, const void *, size_t);
    lt_status (*heuristic)(void *, void *, void *, void *, void *, void *, void *, int,
                           cs__lt_heuristic *, int *);
    lt_status (*matmul)(void *, void *, const void *, const void *, void *, const void *, void *,
                        const void *, const void *, void *, void *, void *, const cs__lt_algo *,
                        void *, size_t, void *);
} lt;

static const cs__vendor_sym lt_syms[] = {
    {"cublasLtCreate", (void **)&lt.create},
    {"cublasLtDestroy", (void **)&lt.destroy},
    {"cublasLtGetVersion", (void **)&lt.version},
    {"cublasLtGetStatusString", (void **)&lt.status_string},
    {"cublasLtMatmulDescCreate", (void **)&lt.desc_create},
    {"cublasLtMatmulDescDestroy", (void **)&lt.desc_destroy},
    {"cublasLtMatmulDescSetAttribute", (void **)&lt.desc_set},
    {"cublasLtMatrixLayoutCreate", (void **)&lt.layout_create},
    {"cublasLtMatrixLayoutDestroy", (void **)&lt.layout_destroy},
    {"cublasLtMatrixLayoutSetAttribute", (void **)&lt.layout_set},
    {"cublasLtMatmulPreferenceCreate", (void **)&lt.pref_create},
    {"cublasLtMatmulPreferenceDestroy", (void **)&lt.pref_destroy},
    {"cublasLtMatmulPreferenceSetAttribute", (void **)&lt.pref_set},
    {"cublasLtMatmulAlgoGetHeuristic", (void **)&lt.heuristic},
    {"cublasLtMatmul", (void **)&lt.matmul},
};

static cs__vendor_lib lt_lib =
    CS__VENDOR_LIB(CS__BLASLT_LIB, CS__BLASLT_ENV, "cuBLASLt", 13, lt_syms, &lt.version);

cs_status cs__blaslt_load(cs_error *err)
{
    return cs__vendor_load(&lt_lib, err);
}

size_t cs__blaslt_version(void)
{
    return cs__vendor_version(&lt_lib);
}

static cs_status lt_fail(cs_error *err, const char *what, lt_status s)
{
    return cs_error_set(
        err, s == CS__CUBLAS_STATUS_NOT_SUPPORTED ? CS_ERR_UNSUPPORTED : CS_ERR_INTERNAL,
        "cuBLASLt %s: %s (status %d)", what, lt.status_string ? lt.status_string(s) : "?", (int)s);
}

cs_status cs__blaslt_handle_new(void **out, cs_error *err)
{
    return cs__vendor_handle_new(&lt_lib, &lt.create, lt_fail,
                                 "cublasLtCreate (needs a CUDA device and its driver)", out, err);
}

void cs__blaslt_handle_free(void *handle)
{
    if (handle && lt.destroy) lt.destroy(handle);
}

static int elem_size(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32 ? 4 : 2;
}

static int32_t cuda_type(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT32   ? CS__CUDA_R_32F
           : t == CS_DTYPE_FLOAT16 ? CS__CUDA_R_16F
                                   : CS__CUDA_R_16BF;
}

static bool epilogue_has_bias(cs__cuda_epilogue e)
{
    return e == CS__CUDA_EPI_BIAS || e == CS__CUDA_EPI_RELU_BIAS || e == CS__CUDA_EPI_GELU_BIAS;
}

cs_status cs__cuda_gemm_check(cs__cuda_gemm_shape *s, cs_error *err)
{
    if (s->type != CS_DTYPE_FLOAT32 && s->type != CS_DTYPE_FLOAT16 && s->type != CS_DTYPE_BFLOAT16)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "cuBLASLt GEMM: element type %s is not supported "
                            "(float32, float16, bfloat16)",
                            cs_dtype_name(s->type));
    if (s->tf32 && s->type != CS_DTYPE_FLOAT32)
        return cs_error_set(err, CS_ERR_INVALID, "cuBLASLt GEMM: tf32 applies to float32, not %s",
                            cs_dtype_name(s->type));
    const struct {
        const char *name;
        int64_t v;
    } dims[] = {{"M", s->M}, {"N", s->N}, {"K", s->K}, {"batch", s->batch}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > INT32_MAX)
            return cs_error_set(err, CS_ERR_INVALID,
                                "cuBLASLt GEMM: %s = %lld, must be between 1 and %d", dims[i].name,
                                (long long)dims[i].v, INT32_MAX);
    /* Stored widths: a row of A holds K elements (M when transposed), and so on. */
    int64_t wa = s->trans_a ? s->M : s->K, wb = s->trans_b ? s->K : s->N;
    if (s->lda == 0) s->lda = wa;
    if (s->ldb == 0) s->ldb = wb;
    if (s->ldc == 0) s->ldc = s->N;
    const struct {
        const char *name;
        int64_t ld, width;
    } lds[] = {{"lda", s->lda, wa}, {"ldb", s->ldb, wb}, {"ldc", s->ldc, s->N}};
    for (size_t i = 0; i < 3; i++)
        if (lds[i].ld < lds[i].width || lds[i].ld > INT32_MAX)
            return cs_error_set(err, CS_ERR_INVALID,
                                "cuBLASLt GEMM: %s = %lld, must be between the stored row width "
                                "%lld and %d",
                                lds[i].name, (long long)lds[i].ld, (long long)lds[i].width,
                                INT32_MAX);
    if (s->stride_a < 0 || s->stride_b < 0 || s->stride_c < 0 || s->stride_d < 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: batch strides must be >= 0 (got a %lld, b %lld, "
                            "c %lld, d %lld)",
                            (long long)s->stride_a, (long long)s->stride_b, (long long)s->stride_c,
                            (long long)s->stride_d);
    /* D's entries must not overlap from one batch to the next. */
    if (s->batch > 1 && s->stride_d < s->M * s->ldc)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: stride_d = %lld, must be at least M * ldc = %lld "
                            "when batch > 1",
                            (long long)s->stride_d, (long long)(s->M * s->ldc));
    if ((unsigned)s->epilogue > CS__CUDA_EPI_GELU_BIAS)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: epilogue %d is not one of none, relu, bias, "
                            "relu+bias, gelu, gelu+bias",
                            (int)s->epilogue);
    if (s->align == 0) s->align = 64;
    if ((s->align & (s->align - 1)) || s->align < (size_t)elem_size(s->type) || s->align > 256)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: align = %zu, must be a power of two between the "
                            "element size %d and 256",
                            s->align, elem_size(s->type));
    return CS_OK;
}

cs__cuda_gemm_cm cs__cuda_gemm_layout(const cs__cuda_gemm_shape *s)
{
    /* Row-major D[M,N] is column-major D^T[N,M] = op(B)^T op(A)^T. Row-major B (K x N,
     * row stride ldb) read column-major is the N x K matrix B^T with ld ldb, which is
     * op(B)^T as stored when B is not transposed: the flag carries over unchanged. */
    cs__cuda_gemm_cm c = {
        .m = s->N,
        .n = s->M,
        .k = s->K,
        .lda = s->ldb,
        .ldb = s->lda,
        .ldc = s->ldc,
        .transa = s->trans_b,
        .transb = s->trans_a,
        .stride_a = s->stride_b,
        .stride_b = s->stride_a,
    };
    c.a_rows = c.transa ? c.k : c.m;
    c.a_cols = c.transa ? c.m : c.k;
    c.b_rows = c.transb ? c.n : c.k;
    c.b_cols = c.transb ? c.k : c.n;
    return c;
}

void cs__cuda_gemm_plan_free(cs__cuda_gemm_plan *p)
{
    if (!p) return;
    void **layouts[] = {&p->layout_a, &p->layout_b, &p->layout_c, &p->layout_d};
    for (int i = 0; i < 4; i++) {
        if (*layouts[i] && lt.layout_destroy) lt.layout_destroy(*layouts[i]);
        *layouts[i] = NULL;
    }
    if (p->desc && lt.desc_destroy) lt.desc_destroy(p->desc);
    p->desc = NULL;
    p->workspace = 0;
}

static cs_status make_layout(void **out, int32_t type, int64_t rows, int64_t cols, int64_t ld,
                             int64_t batch, int64_t stride, cs_error *err)
{
    lt_status s = lt.layout_create(out, type, (uint64_t)rows, (uint64_t)cols, ld);
    if (s != CS__CUBLAS_STATUS_SUCCESS) {
        *out = NULL;
        return lt_fail(err, "cublasLtMatrixLayoutCreate", s);
    }
    if (batch > 1) {
        int32_t count = (int32_t)batch;
        if ((s = lt.layout_set(*out, CS__LT_LAYOUT_BATCH_COUNT, &count, sizeof count)) ||
            (s = lt.layout_set(*out, CS__LT_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride)))
            return lt_fail(err, "batch layout", s);
    }
    return CS_OK;
}

static const int32_t lt_epilogue[] = {
    [CS__CUDA_EPI_NONE] = CS__LT_EPILOGUE_DEFAULT,
    [CS__CUDA_EPI_RELU] = CS__LT_EPILOGUE_RELU,
    [CS__CUDA_EPI_BIAS] = CS__LT_EPILOGUE_BIAS,
    [CS__CUDA_EPI_RELU_BIAS] = CS__LT_EPILOGUE_RELU_BIAS,
    [CS__CUDA_EPI_GELU] = CS__LT_EPILOGUE_GELU,
    [CS__CUDA_EPI_GELU_BIAS] = CS__LT_EPILOGUE_GELU_BIAS,
};

cs_status cs__cuda_gemm_plan_describe(cs__cuda_gemm_plan *p, const cs__cuda_gemm_shape *shape,
                                      cs_error *err)
{
    memset(p, 0, sizeof *p);
    p->shape = *shape;
    cs__cuda_gemm_shape *s = &p->shape;
    cs_status rc = cs__cuda_gemm_check(s, err);
    if (rc != CS_OK) return rc;
    if ((rc = cs__blaslt_load(err)) != CS_OK) return rc;
    p->cm = cs__cuda_gemm_layout(s);
    const cs__cuda_gemm_cm *c = &p->cm;
    rc = CS_ERR_INTERNAL;
    lt_status st;
    int32_t compute = s->tf32 ? CS__CUBLAS_COMPUTE_32F_FAST_TF32 : CS__CUBLAS_COMPUTE_32F;
    int32_t type = cuda_type(s->type);
    if ((st = lt.desc_create(&p->desc, compute, CS__CUDA_R_32F))) {
        p->desc = NULL;
        rc = lt_fail(err, "cublasLtMatmulDescCreate", st);
        goto out;
    }
    int32_t ta = c->transa ? CS__CUBLAS_OP_T : CS__CUBLAS_OP_N;
    int32_t tb = c->transb ? CS__CUBLAS_OP_T : CS__CUBLAS_OP_N;
    uint32_t epi = (uint32_t)lt_epilogue[s->epilogue];
    if ((st = lt.desc_set(p->desc, CS__LT_DESC_TRANSA, &ta, sizeof ta)) ||
        (st = lt.desc_set(p->desc, CS__LT_DESC_TRANSB, &tb, sizeof tb)) ||
        (st = lt.desc_set(p->desc, CS__LT_DESC_EPILOGUE, &epi, sizeof epi))) {
        rc = lt_fail(err, "matmul descriptor", st);
        goto out;
    }
    if (epilogue_has_bias(s->epilogue) &&
        (st = lt.desc_set(p->desc, CS__LT_DESC_BIAS_DATA_TYPE, &type, sizeof type))) {
        rc = lt_fail(err, "bias type", st);
        goto out;
    }
    /* C's layout serves D too when there is no C: cuBLASLt reads no C with beta 0. */
    if ((rc = make_layout(&p->layout_a, type, c->a_rows, c->a_cols, c->lda, s->batch, c->stride_a,
                          err)) ||
        (rc = make_layout(&p->layout_b, type, c->b_rows, c->b_cols, c->ldb, s->batch, c->stride_b,
                          err)) ||
        (rc = make_layout(&p->layout_c, type, c->m, c->n, c->ldc, s->batch,
                          s->has_c ? s->stride_c : s->stride_d, err)) ||
        (rc = make_layout(&p->layout_d, type, c->m, c->n, c->ldc, s->batch, s->stride_d, err)))
        goto out;
    rc = CS_OK;
out:
    if (rc != CS_OK) cs__cuda_gemm_plan_free(p);
    return rc;
}

cs_status cs__cuda_gemm_plan_init(cs__cuda_gemm_plan *p, void *handle,
                                  const cs__cuda_gemm_shape *shape, cs_error *err)
{
    cs_status rc = cs__cuda_gemm_plan_describe(p, shape, err);
    if (rc != CS_OK) return rc;
    const cs__cuda_gemm_shape *s = &p->shape;
    void *pref = NULL;
    lt_status st;
    rc = CS_ERR_INTERNAL;
    if (!handle) {
        rc = cs_error_set(err, CS_ERR_INVALID, "cuBLASLt GEMM: no handle (cs__blaslt_handle_new)");
        goto out;
    }
    if ((st = lt.pref_create(&pref))) {
        pref = NULL;
        rc = lt_fail(err, "cublasLtMatmulPreferenceCreate", st);
        goto out;
    }
    uint64_t ws = s->max_workspace;
    uint32_t align = (uint32_t)s->align;
    if ((st = lt.pref_set(pref, CS__LT_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)) ||
        (st = lt.pref_set(pref, CS__LT_PREF_MIN_ALIGNMENT_A_BYTES, &align, sizeof align)) ||
        (st = lt.pref_set(pref, CS__LT_PREF_MIN_ALIGNMENT_B_BYTES, &align, sizeof align)) ||
        (st = lt.pref_set(pref, CS__LT_PREF_MIN_ALIGNMENT_C_BYTES, &align, sizeof align)) ||
        (st = lt.pref_set(pref, CS__LT_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof align))) {
        rc = lt_fail(err, "matmul preference", st);
        goto out;
    }
    cs__lt_heuristic best;
    int found = 0;
    st = lt.heuristic(handle, p->desc, p->layout_a, p->layout_b, p->layout_c, p->layout_d, pref, 1,
                      &best, &found);
    if (st != CS__CUBLAS_STATUS_SUCCESS || found < 1 || best.state != CS__CUBLAS_STATUS_SUCCESS) {
        rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                          "cuBLASLt has no algorithm for %s GEMM M=%lld N=%lld K=%lld batch=%lld "
                          "within %zu workspace bytes: %s",
                          cs_dtype_name(s->type), (long long)s->M, (long long)s->N, (long long)s->K,
                          (long long)s->batch, s->max_workspace,
                          lt.status_string(st          ? st
                                           : found < 1 ? CS__CUBLAS_STATUS_NOT_SUPPORTED
                                                       : best.state));
        goto out;
    }
    p->algo = best.algo;
    p->workspace = best.workspace_size;
    rc = CS_OK;
out:
    if (pref) lt.pref_destroy(pref);
    if (rc != CS_OK) cs__cuda_gemm_plan_free(p);
    return rc;
}

static cs_status check_ptr(const char *name, uint64_t v, bool want, size_t align, cs_error *err)
{
    if (want && !v)
        return cs_error_set(err, CS_ERR_INVALID, "cuBLASLt GEMM: %s is required by the plan", name);
    if (!want && v)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: %s given but the plan has no use for it", name);
    if (v % align)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: %s = 0x%llx is not aligned to the plan's %zu bytes",
                            name, (unsigned long long)v, align);
    return CS_OK;
}

cs_status cs__cuda_gemm_args_check(const cs__cuda_gemm_args *a, cs_error *err)
{
    if (!a->plan) return cs_error_set(err, CS_ERR_INVALID, "cuBLASLt GEMM: no plan");
    const cs__cuda_gemm_shape *s = &a->plan->shape;
    cs_status rc;
    if ((rc = check_ptr("a", a->a, true, s->align, err)) ||
        (rc = check_ptr("b", a->b, true, s->align, err)) ||
        (rc = check_ptr("c", a->c, s->has_c, s->align, err)) ||
        (rc = check_ptr("d", a->d, true, s->align, err)) ||
        (rc = check_ptr("bias", a->bias, epilogue_has_bias(s->epilogue), s->align, err)))
        return rc;
    if (a->workspace_size < a->plan->workspace)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: workspace of %zu bytes, the plan's algorithm needs %zu",
                            a->workspace_size, a->plan->workspace);
    if (a->workspace_size && !a->workspace)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cuBLASLt GEMM: workspace_size %zu with no workspace pointer",
                            a->workspace_size);
    return CS_OK;
}

cs_status cs__cuda_gemm(const cs__cuda_gemm_args *a, cs_error *err)
{
    cs_status rc = cs__cuda_gemm_args_check(a, err);
    if (rc != CS_OK) return rc;
    const cs__cuda_gemm_plan *p = a->plan;
    if (!p->desc || !a->handle)
        return cs_error_set(err, CS_ERR_INVALID, "cuBLASLt GEMM: plan not made or no handle");
    lt_status st;
    if (a->bias) {
        const void *bias = (const void *)(uintptr_t)a->bias;
        if ((st = lt.desc_set(p->desc, CS__LT_DESC_BIAS_POINTER, &bias, sizeof bias)))
            return lt_fail(err, "bias pointer", st);
    }
    float beta = p->shape.has_c ? a->beta : 0.0f;
    /* Without C, D's pointer stands in for it: with beta 0 it is never read. The
     * column-major "a" operand is the caller's B. */
    const void *c = (const void *)(uintptr_t)(p->shape.has_c ? a->c : a->d);
    st = lt.matmul(a->handle, p->desc, &a->alpha, (const void *)(uintptr_t)a->b, p->layout_a,
                   (const void *)(uintptr_t)a->a, p->layout_b, &beta, c, p->layout_c,
                   (void *)(uintptr_t)a->d, p->layout_d, &p->algo, (void *)(uintptr_t)a->workspace,
                   a->workspace_size, a->stream);
    return st == CS__CUBLAS_STATUS_SUCCESS ? CS_OK : lt_fail(err, "cublasLtMatmul", st);
}

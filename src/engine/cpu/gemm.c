/*
 * gemm.c - CPU kernels for matrix products: MatMul (numpy semantics) and Gemm; their
 * schemas (shape and type inference) are in ops/gemm.c, whose geometry (ops/gemm.h) the
 * kernels use.
 *
 * float32 and float64 go to OpenBLAS through cs__gemm (blas.h), split across the
 * session's threads; float16 and bfloat16 are widened to float32 in scratch memory,
 * multiplied there and narrowed back. Integer types use a plain i-k-j loop whose
 * arithmetic wraps like numpy's (done in the unsigned type, so it is defined behaviour).
 *
 * MatMul broadcasts batch dimensions: the batch loop walks the output's batch index and
 * maps it to A's and B's matrices through per-dimension strides that are 0 where a side
 * is broadcast. When B has a single matrix and A's batches are contiguous, the batch folds
 * into M and the whole product is one GEMM call; when B is also known at plan time (a
 * layer's float32 weights) and the CPU has AVX-512, that call is pgemm.c's kernel against B
 * packed once per plan instead of OpenBLAS, which packs it again on every call.
 */
#include "engine/cpu/blas.h"
#include "engine/cpu/pgemm.h"
#include "engine/ops/gemm.h"

#include <string.h>

#define T_GEMM (CS__T_FLOAT | CS__T(INT32) | CS__T(INT64) | CS__T(UINT32) | CS__T(UINT64))

static bool is_half(cs_dtype t)
{
    return t == CS_DTYPE_FLOAT16 || t == CS_DTYPE_BFLOAT16;
}

/* float16/bfloat16 <-> float32 in bulk, for the widen-compute-narrow path. */
static void widen(const cs_tensor *t, float *restrict dst)
{
    const uint16_t *src = t->data;
    int64_t n = cs__numel(t);
    if (t->dtype == CS_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = cs__f16_to_f32(src[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = cs__bf16_to_f32(src[i]);
}

static void narrow(cs_tensor *t, const float *restrict src)
{
    uint16_t *dst = t->data;
    int64_t n = cs__numel(t);
    if (t->dtype == CS_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = cs__f32_to_f16(src[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = cs__f32_to_bf16(src[i]);
}

/* A float32 view of t living at *cursor in scratch memory; advances the cursor. */
static cs_tensor wide_view(const cs_tensor *t, float **cursor)
{
    cs_tensor w = *t;
    w.dtype = CS_DTYPE_FLOAT32;
    w.data = *cursor;
    *cursor += cs__numel(t);
    return w;
}

/* Y[M,N] = op(A) * op(B) with wrapping integer arithmetic; op transposes when asked. */
#define INT_PRODUCT(T, UT)                                                                     \
    static void product_##T(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *va, \
                            const void *vb, void *vy)                                          \
    {                                                                                          \
        const T *a = va, *b = vb;                                                              \
        T *y = vy;                                                                             \
        for (int64_t m = 0; m < M; m++) {                                                      \
            T *restrict row = y + m * N;                                                       \
            for (int64_t n = 0; n < N; n++) row[n] = 0;                                        \
            for (int64_t k = 0; k < K; k++) {                                                  \
                UT av = (UT)(ta ? a[k * M + m] : a[m * K + k]);                                \
                if (tb)                                                                        \
                    for (int64_t n = 0; n < N; n++)                                            \
                        row[n] = (T)((UT)row[n] + av * (UT)b[n * K + k]);                      \
                else                                                                           \
                    for (int64_t n = 0; n < N; n++)                                            \
                        row[n] = (T)((UT)row[n] + av * (UT)b[k * N + n]);                      \
            }                                                                                  \
        }                                                                                      \
    }
INT_PRODUCT(int32_t, uint32_t)
INT_PRODUCT(int64_t, uint64_t)
INT_PRODUCT(uint32_t, uint32_t)
INT_PRODUCT(uint64_t, uint64_t)

/* Y = alpha * op(A) * op(B) + beta * Y for one matrix of any supported non-half type. For
 * integers alpha must be 1 and beta 0 (Gemm applies its integer epilogue separately). */
static void product(cs__kctx *ctx, cs_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                    double alpha, const void *a, const void *b, double beta, void *y)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { /* BLAS rejects lda == 0; the product is all zeros */
        if (beta == 0)
            memset(y, 0, (size_t)(M * N) * cs_dtype_size(t));
        else if (t == CS_DTYPE_FLOAT32)
            for (int64_t i = 0; i < M * N; i++) ((float *)y)[i] *= (float)beta;
        else if (t == CS_DTYPE_FLOAT64)
            for (int64_t i = 0; i < M * N; i++) ((double *)y)[i] *= beta;
        return;
    }
    switch (t) {
    case CS_DTYPE_FLOAT32:
    case CS_DTYPE_FLOAT64:
        cs__gemm(ctx, t, ta, tb, M, N, K, alpha, a, ta ? M : K, b, tb ? K : N, beta, y, N);
        break;
    case CS_DTYPE_INT32: product_int32_t(ta, tb, M, N, K, a, b, y); break;
    case CS_DTYPE_INT64: product_int64_t(ta, tb, M, N, K, a, b, y); break;
    case CS_DTYPE_UINT32: product_uint32_t(ta, tb, M, N, K, a, b, y); break;
    case CS_DTYPE_UINT64: product_uint64_t(ta, tb, M, N, K, a, b, y); break;
    default: break; /* excluded by the kernel table */
    }
}

/* --- MatMul ---------------------------------------------------------------------------- */

static size_t matmul_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                             const cs_tensor *out, int n_out)
{
    if (!is_half(in[0]->dtype)) return 0;
    return sizeof(float) * (size_t)(cs__numel(in[0]) + cs__numel(in[1]) + cs__numel(&out[0]));
}

/* pgemm.c's tiles compute 8 rows whatever M is: below 3 rows OpenBLAS's matrix-vector
 * path is faster. Measured on the mlp's Gemms (64-512-512-10, whole-model p50, 1 thread,
 * OpenBLAS against pgemm): 1 row 0.015 ms against 0.042, 2 rows 0.024 against 0.043, 3
 * rows 0.114 against 0.060. MatMul's products take the same bound: the same kernel. */
#define MIN_PACKED_ROWS 3

/* Whether a MatMul of this geometry runs on pgemm.c's kernel against B packed at plan time:
 * float32, B one matrix known then (a layer's weights), A's batches one tall matrix of at
 * least MIN_PACKED_ROWS rows. */
static bool matmul_packs(const cs__mm_shape *s, const cs_tensor *a, const cs_tensor *b)
{
    return a->dtype == CS_DTYPE_FLOAT32 && b->data && s->b_single && s->a_batches == s->batch &&
           s->batch * s->M >= MIN_PACKED_ROWS && s->K > 0 && cs__cpu_avx512();
}

/* B packed into pgemm.c's column panels once per plan, where matmul_packs(). */
static size_t matmul_prepack(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                             const cs_tensor *out, int n_out, void *dst)
{
    cs__mm_shape s = {0};
    if (cs__mm_shape_init(ctx->node, in[0], in[1], &s, NULL, NULL) != CS_OK ||
        !matmul_packs(&s, in[0], in[1]))
        return 0;
    if (dst) cs__pgemm_cols(s.K, s.N, in[1]->data, false, dst);
    return cs__pgemm_cols_floats(s.K, s.N) * sizeof(float);
}

static void matmul_compute(cs__kctx *ctx, const cs__mm_shape *s, const cs_tensor *a,
                           const cs_tensor *b, cs_tensor *y)
{
    size_t es = cs_dtype_size(y->dtype);
    int64_t mk = s->M * s->K, kn = s->K * s->N, mn = s->M * s->N;
    if (ctx->packed && y->dtype == CS_DTYPE_FLOAT32) {
        cs__pgemm_b(ctx, s->batch * s->M, s->N, s->K, a->data, ctx->packed, NULL, NULL, y->data);
        return;
    }
    if (s->b_single && s->a_batches == s->batch) {
        product(ctx, y->dtype, false, false, s->batch * s->M, s->N, s->K, 1, a->data, b->data, 0,
                y->data);
        return;
    }
    int64_t idx[CS_MAX_RANK] = {0};
    int64_t ao = 0, bo = 0;
    for (int64_t i = 0; i < s->batch; i++) {
        product(ctx, y->dtype, false, false, s->M, s->N, s->K, 1,
                (const char *)a->data + ao * mk * es, (const char *)b->data + bo * kn * es, 0,
                (char *)y->data + i * mn * es);
        /* Odometer step over the batch index, keeping A's and B's matrix offsets. */
        for (int d = s->brank - 1; d >= 0; d--) {
            ao += s->astride[d];
            bo += s->bstride[d];
            if (++idx[d] < s->bdims[d]) break;
            ao -= s->astride[d] * s->bdims[d];
            bo -= s->bstride[d] * s->bdims[d];
            idx[d] = 0;
        }
    }
}

static cs_status matmul_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    cs__mm_shape s = {0};
    cs_status rc = cs__mm_shape_init(ctx->node, in[0], in[1], &s, NULL, ctx->err);
    if (rc != CS_OK) return rc;
    if (!is_half(out[0].dtype)) {
        matmul_compute(ctx, &s, in[0], in[1], &out[0]);
        return CS_OK;
    }
    if (ctx->scratch_size < matmul_scratch(ctx->node, in, n_in, out, n_out))
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "scratch memory too small");
    float *cursor = ctx->scratch;
    cs_tensor a = wide_view(in[0], &cursor), b = wide_view(in[1], &cursor);
    cs_tensor y = wide_view(&out[0], &cursor);
    widen(in[0], a.data);
    widen(in[1], b.data);
    matmul_compute(ctx, &s, &a, &b, &y);
    narrow(&out[0], y.data);
    return CS_OK;
}

/* --- Gemm ------------------------------------------------------------------------------ */

static size_t gemm_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out)
{
    if (!is_half(in[0]->dtype)) return 0;
    int64_t total = cs__numel(in[0]) + cs__numel(in[1]) + cs__numel(&out[0]);
    if (n_in > 2 && in[2]) total += cs__numel(in[2]);
    return sizeof(float) * (size_t)total;
}

/* Y = beta * broadcast(C), the starting point BLAS accumulates onto. */
#define FILL_C(T)                                                                      \
    static void fill_c_##T(const cs__gemm_shape *s, const T *c, T beta, T *restrict y) \
    {                                                                                  \
        for (int64_t m = 0; m < s->M; m++)                                             \
            for (int64_t n = 0; n < s->N; n++)                                         \
                y[m * s->N + n] = beta * c[m * s->c_rs + n * s->c_cs];                 \
    }
FILL_C(float)
FILL_C(double)

/* Integer Gemm: exact integer arithmetic when alpha and beta are 1, else through double. */
static void int_epilogue(const cs__gemm_shape *s, const cs_tensor *c, double alpha, double beta,
                         cs_tensor *y)
{
    for (int64_t m = 0; m < s->M; m++) {
        for (int64_t n = 0; n < s->N; n++) {
            int64_t i = m * s->N + n, v = cs_tensor_get_i64(y, i);
            if (alpha != 1) v = (int64_t)(alpha * (double)v);
            if (c) {
                int64_t cv = cs_tensor_get_i64(c, m * s->c_rs + n * s->c_cs);
                v = (int64_t)((uint64_t)v + (uint64_t)(beta == 1 ? cv : (int64_t)(beta * cv)));
            }
            cs_tensor_set_i64(y, i, v);
        }
    }
}

/* Whether a Gemm of this geometry runs on pgemm.c's kernel against B packed at plan time:
 * float32, B known then (a layer's weights), A not transposed and of at least
 * MIN_PACKED_ROWS rows, alpha 1, and C absent, scaled by 0 or added as is once per column
 * (a layer's bias). */
static bool gemm_packs(const cs__node *n, const cs__gemm_shape *s, const cs_tensor *const *in,
                       int n_in)
{
    const cs_tensor *c = n_in > 2 ? in[2] : NULL;
    double beta = cs__attr_float(n, "beta", 1.0f);
    return in[0]->dtype == CS_DTYPE_FLOAT32 && in[1]->data && !s->ta && s->K > 0 &&
           s->M >= MIN_PACKED_ROWS && cs__attr_float(n, "alpha", 1.0f) == 1 &&
           (!c || beta == 0 || (beta == 1 && s->c_rs == 0 && (s->c_cs == 1 || s->N == 1))) &&
           cs__cpu_avx512();
}

/* B (op(B): transB read through) packed into pgemm.c's column panels, where gemm_packs(). */
static size_t gemm_prepack(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out, void *dst)
{
    cs__gemm_shape s = {0};
    if (cs__gemm_shape_init(ctx->node, in, n_in, &s, NULL) != CS_OK ||
        !gemm_packs(ctx->node, &s, in, n_in))
        return 0;
    if (dst) cs__pgemm_cols(s.K, s.N, in[1]->data, s.tb, dst);
    return cs__pgemm_cols_floats(s.K, s.N) * sizeof(float);
}

static void gemm_compute(cs__kctx *ctx, const cs__gemm_shape *s, const cs_tensor *a,
                         const cs_tensor *b, const cs_tensor *c, double alpha, double beta,
                         cs_tensor *y)
{
    if (c && beta == 0) c = NULL; /* numpy would still propagate NaN/inf from C; BLAS won't */
    if (ctx->packed && y->dtype == CS_DTYPE_FLOAT32) { /* the bias and the activation too */
        cs__pgemm_b(ctx, s->M, s->N, s->K, a->data, ctx->packed, c ? c->data : NULL, ctx->act,
                    y->data);
        return;
    }
    switch (y->dtype) {
    case CS_DTYPE_FLOAT32:
        if (c) fill_c_float(s, c->data, (float)beta, y->data);
        product(ctx, y->dtype, s->ta, s->tb, s->M, s->N, s->K, alpha, a->data, b->data, c ? 1 : 0,
                y->data);
        break;
    case CS_DTYPE_FLOAT64:
        if (c) fill_c_double(s, c->data, beta, y->data);
        product(ctx, y->dtype, s->ta, s->tb, s->M, s->N, s->K, alpha, a->data, b->data, c ? 1 : 0,
                y->data);
        break;
    default:
        product(ctx, y->dtype, s->ta, s->tb, s->M, s->N, s->K, 1, a->data, b->data, 0, y->data);
        if (c || alpha != 1) int_epilogue(s, c, alpha, beta, y);
        break;
    }
    if (ctx->act && ctx->act->kind != CS__ACT_NONE)
        cs__act_apply(ctx->act, y->dtype, y->data, s->M * s->N);
}

static cs_status gemm_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    cs__gemm_shape s = {0};
    cs_status rc = cs__gemm_shape_init(ctx->node, in, n_in, &s, ctx->err);
    if (rc != CS_OK) return rc;
    const cs_tensor *c = n_in > 2 ? in[2] : NULL;
    double alpha = cs__attr_float(ctx->node, "alpha", 1.0f);
    double beta = cs__attr_float(ctx->node, "beta", 1.0f);
    if (!is_half(out[0].dtype)) {
        gemm_compute(ctx, &s, in[0], in[1], c, alpha, beta, &out[0]);
        return CS_OK;
    }
    if (ctx->scratch_size < gemm_scratch(ctx->node, in, n_in, out, n_out))
        return cs__node_error(ctx->err, ctx->node, CS_ERR_INTERNAL, "scratch memory too small");
    float *cursor = ctx->scratch;
    cs_tensor a = wide_view(in[0], &cursor), b = wide_view(in[1], &cursor);
    cs_tensor y = wide_view(&out[0], &cursor), wc;
    widen(in[0], a.data);
    widen(in[1], b.data);
    if (c) {
        wc = wide_view(c, &cursor);
        widen(c, wc.data);
    }
    gemm_compute(ctx, &s, &a, &b, c ? &wc : NULL, alpha, beta, &y);
    narrow(&out[0], y.data);
    return CS_OK;
}

const cs__kernel cs__kernels_gemm[] = {
    {"MatMul", "", 1, T_GEMM, 0, matmul_run, matmul_scratch, CS__K_PACK_BY_INPUTS, matmul_prepack},
    {"Gemm", "", 1, T_GEMM, 0, gemm_run, gemm_scratch, CS__K_FUSE_ACT, gemm_prepack},
    {0},
};

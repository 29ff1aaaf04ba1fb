/*
 * ops_gemm.c - Gemm and MatMul on the GPU through cuBLASLt (blaslt.h).
 *
 * A node's form (gemm_form) maps it onto one cs__cuda_gemm_shape: Gemm's transA/transB,
 * alpha and beta, its C as the epilogue's bias (shape [N] or [1, N] with beta 1) or as a
 * full [M, N] addend; MatMul of rank >= 2 operands as a strided batch, where each operand
 * either has the output's batch dimensions or is one matrix repeated (stride 0). Forms
 * cuBLASLt's strided batch cannot express (1-D operands, partial broadcasts such as
 * [2,1,M,K] x [1,3,K,N], other C shapes, empty dimensions) are declined and run on the CPU.
 *
 * The plan (descriptors, the heuristic's algorithm) is made in prepack and kept in host
 * memory with the step (CS__K_PACKED_HOST), released by release_packed. A fused Relu is
 * cuBLASLt's RELU epilogue; any other fused clamp runs after the product with the
 * bias_act kernel. A step without packed bytes (a dynamic plan) makes the plan per run.
 * The workspace is the step's scratch (device memory).
 */
#include "engine/cuda/blaslt.h"
#include "engine/cuda/cuda_ops.h"

#include <math.h>
#include <string.h>

#define TYPES     (CS__T(FLOAT32) | CS__T(FLOAT16) | CS__T(BFLOAT16))
#define WORKSPACE ((size_t)4 << 20)

/* A node's product, what the plan is made from and what a run needs besides it. */
typedef struct gemm_form {
    cs__cuda_gemm_shape shape;
    float alpha, beta;
    int c_input; /* the input that is C or the bias, -1 for none */
    bool clamp;  /* a fused clamp other than Relu: bias_act after the product */
    float lo, hi;
} gemm_form;

/* What prepack keeps: the plan and the device's handle it was made with. */
typedef struct gemm_packed {
    gemm_form f;
    cs__cuda_gemm_plan plan;
    void *handle;
} gemm_packed;

static bool matrix_of(const cs_tensor *t, int64_t *rows, int64_t *cols)
{
    *rows = t->dims[t->rank - 2];
    *cols = t->dims[t->rank - 1];
    return *rows > 0 && *cols > 0;
}

static int64_t batch_of(const cs_tensor *x)
{
    int64_t b = 1;
    for (int i = 0; i < x->rank - 2; i++) b *= x->dims[i];
    return b;
}

static bool same_batch(const cs_tensor *x, const cs_tensor *y)
{
    if (x->rank != y->rank) return false;
    for (int i = 0; i < x->rank - 2; i++)
        if (x->dims[i] != y->dims[i]) return false;
    return true;
}

/* MatMul as a strided batch: an operand is one matrix for every batch entry (stride 0) or
 * has the other's batch dimensions. */
static bool matmul_form(const cs__node *n, const cs_tensor *const *in, gemm_form *f, cs_error *err)
{
    const cs_tensor *a = in[0], *b = in[1];
    cs__cuda_gemm_shape *s = &f->shape;
    if (a->rank < 2 || b->rank < 2)
        return cs__cuda_decline(err, n, "cuBLASLt is given 1-D operands as no matrix");
    int64_t k2;
    if (!matrix_of(a, &s->M, &s->K) || !matrix_of(b, &k2, &s->N))
        return cs__cuda_decline(err, n, "an empty operand");
    int64_t ba = batch_of(a), bb = batch_of(b);
    if (ba > 1 && bb > 1 && !same_batch(a, b))
        return cs__cuda_decline(err, n, "a broadcast cuBLASLt's strided batch cannot express");
    s->batch = ba > bb ? ba : bb;
    s->stride_a = ba > 1 ? s->M * s->K : 0;
    s->stride_b = bb > 1 ? s->K * s->N : 0;
    s->stride_d = s->M * s->N;
    return true;
}

static bool gemm_c_form(const cs__node *n, const cs_tensor *const *in, int n_in, gemm_form *f,
                        cs_error *err)
{
    cs__cuda_gemm_shape *s = &f->shape;
    const cs_tensor *c = n_in > 2 ? in[2] : NULL;
    if (!c || f->beta == 0.0f) return true;
    f->c_input = 2;
    bool row = (c->rank == 1 || (c->rank == 2 && c->dims[0] == 1)) && c->dims[c->rank - 1] == s->N;
    if (row && f->beta == 1.0f) {
        s->epilogue = CS__CUDA_EPI_BIAS;
        return true;
    }
    if (c->rank == 2 && c->dims[0] == s->M && c->dims[1] == s->N) {
        s->has_c = true;
        s->stride_c = s->M * s->N;
        return true;
    }
    return cs__cuda_decline(err, n, "C's broadcast is neither [N] with beta 1 nor [M, N]");
}

static bool gemm_only_form(const cs__node *n, const cs_tensor *const *in, int n_in, gemm_form *f,
                           cs_error *err)
{
    cs__cuda_gemm_shape *s = &f->shape;
    s->trans_a = cs__attr_int(n, "transA", 0) != 0;
    s->trans_b = cs__attr_int(n, "transB", 0) != 0;
    f->alpha = cs__attr_float(n, "alpha", 1.0f);
    f->beta = cs__attr_float(n, "beta", 1.0f);
    if (in[0]->rank != 2 || in[1]->rank != 2)
        return cs__cuda_decline(err, n, "A and B must be matrices");
    int64_t r, c;
    if (!matrix_of(in[0], &r, &c)) return cs__cuda_decline(err, n, "an empty operand");
    s->M = s->trans_a ? c : r;
    s->K = s->trans_a ? r : c;
    if (!matrix_of(in[1], &r, &c)) return cs__cuda_decline(err, n, "an empty operand");
    s->N = s->trans_b ? r : c;
    s->batch = 1;
    return gemm_c_form(n, in, n_in, f, err);
}

/* The node's form with act (NULL: none) as its epilogue; false, err naming why, for a form
 * declined. */
static bool gemm_form_of(const cs__node *n, const cs_tensor *const *in, int n_in,
                         const cs__act *act, gemm_form *f, cs_error *err)
{
    memset(f, 0, sizeof *f);
    f->shape.type = in[0]->dtype;
    f->shape.max_workspace = WORKSPACE;
    f->alpha = 1.0f;
    f->c_input = -1;
    bool gemm = !strcmp(n->op_type, "Gemm");
    if (gemm ? !gemm_only_form(n, in, n_in, f, err) : !matmul_form(n, in, f, err)) return false;
    if (in[1]->dtype != f->shape.type)
        return cs__cuda_decline(err, n, "operands of different element types");
    if (act && act->kind == CS__ACT_CLAMP) {
        bool bias = f->shape.epilogue == CS__CUDA_EPI_BIAS;
        if (act->lo == 0.0 && act->hi == INFINITY)
            f->shape.epilogue = bias ? CS__CUDA_EPI_RELU_BIAS : CS__CUDA_EPI_RELU;
        else
            f->clamp = true, f->lo = (float)act->lo, f->hi = (float)act->hi;
    }
    cs_error e;
    if (cs__cuda_gemm_check(&f->shape, &e) != CS_OK) return cs__cuda_decline(err, n, "%s", e.msg);
    return true;
}

static bool gemm_accepts(const cs__node *n, const cs_tensor *const *in, cs_error *err)
{
    gemm_form f;
    if (n->n_in < 2 || !in[0] || !in[1]) return cs__cuda_decline(err, n, "no A or B");
    return gemm_form_of(n, in, n->n_in, NULL, &f, err);
}

/* ctx->err's message, for a failure rc of a library call, prefixed with the node. */
static cs_status named(cs__kctx *ctx, cs_status rc)
{
    if (!ctx->err) return rc;
    cs_error e = *ctx->err;
    return cs__node_error(ctx->err, ctx->node, rc, "%s", e.msg);
}

/* Makes the plan of the step on the device's handle. */
static cs_status pack(cs__kctx *ctx, const cs_tensor *const *in, int n_in, gemm_packed *pk)
{
    memset(pk, 0, sizeof *pk);
    if (!gemm_form_of(ctx->node, in, n_in, ctx->act, &pk->f, ctx->err))
        return ctx->err ? ctx->err->code : CS_ERR_UNSUPPORTED;
    const cs__cuda_be *b = cs__cuda_be_of(ctx->be);
    cs_status rc = cs__cuda_blaslt(b, &pk->handle, ctx->err);
    if (rc == CS_OK) rc = cs__cuda_enter(b, ctx->err);
    if (rc == CS_OK) rc = cs__cuda_gemm_plan_init(&pk->plan, pk->handle, &pk->f.shape, ctx->err);
    return rc ? named(ctx, rc) : CS_OK;
}

static size_t gemm_prepack(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out, void *dst)
{
    (void)out, (void)n_out;
    if (!dst) return sizeof(gemm_packed);
    return pack(ctx, in, n_in, dst) == CS_OK ? sizeof(gemm_packed) : SIZE_MAX;
}

static void gemm_release(const cs__backend *be, void *packed)
{
    (void)be;
    cs__cuda_gemm_plan_free(&((gemm_packed *)packed)->plan);
}

static size_t gemm_scratch(const cs__node *n, const cs_tensor *const *in, int n_in,
                           const cs_tensor *out, int n_out)
{
    (void)n, (void)in, (void)n_in, (void)out, (void)n_out;
    return WORKSPACE;
}

static uint64_t dptr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static cs_status clamp_after(cs__kctx *ctx, const gemm_form *f, cs_tensor *y)
{
    static const int kid[3] = {CS__CUK_bias_act_nchw_f32, CS__CUK_bias_act_nchw_f16, -1};
    int t = cs__cuda_ftype(y->dtype);
    if (t < 0 || kid[t] < 0)
        return cs__node_error(ctx->err, ctx->node, CS_ERR_UNSUPPORTED, "no CUDA clamp for %s",
                              cs_dtype_name(y->dtype));
    cs_cuda_bias_act_args a = {1, 1, cs_tensor_numel(y), f->lo, f->hi, 1, 0};
    const void *no_bias = NULL;
    void *params[] = {&y->data, (void *)&no_bias, &y->data, &a};
    return cs__cuda_launch_1d(ctx, kid[t], a.spatial, CS_CUDA_BLOCK, params);
}

static cs_status gemm_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                          int n_out)
{
    (void)n_out;
    const gemm_packed *pk = ctx->packed;
    gemm_packed own;
    cs_status rc = pk ? CS_OK : pack(ctx, in, n_in, &own);
    if (rc) return rc;
    if (!pk) pk = &own;
    const cs__cuda_be *b = cs__cuda_be_of(ctx->be);
    const gemm_form *f = &pk->f;
    const void *c = f->c_input >= 0 ? in[f->c_input]->data : NULL;
    cs__cuda_gemm_args a = {
        .plan = &pk->plan,
        .handle = pk->handle,
        .a = dptr(in[0]->data),
        .b = dptr(in[1]->data),
        .c = f->shape.has_c ? dptr(c) : 0,
        .d = dptr(out->data),
        .bias = f->shape.has_c ? 0 : dptr(c),
        .alpha = f->alpha,
        .beta = f->beta,
        .workspace = pk->plan.workspace ? dptr(ctx->scratch) : 0,
        .workspace_size = pk->plan.workspace ? ctx->scratch_size : 0,
        .stream = b->stream,
    };
    rc = cs__cuda_enter(b, ctx->err);
    if (rc == CS_OK && (rc = cs__cuda_gemm(&a, ctx->err))) named(ctx, rc);
    if (rc == CS_OK && f->clamp) rc = clamp_after(ctx, f, out);
    if (pk == &own) cs__cuda_gemm_plan_free(&own.plan);
    return rc;
}

const cs__kernel cs__cuda_gemm_kernels[] = {
    {"Gemm", "", 1, TYPES, 0, gemm_run, gemm_scratch, CS__K_FUSE_ACT | CS__K_PACKED_HOST,
     gemm_prepack, 0, gemm_accepts, gemm_release},
    {"MatMul", "", 1, TYPES, 0, gemm_run, gemm_scratch, CS__K_FUSE_ACT | CS__K_PACKED_HOST,
     gemm_prepack, 0, gemm_accepts, gemm_release},
    {0},
};

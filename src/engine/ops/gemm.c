/*
 * gemm.c - schemas of the matrix products, MatMul (numpy semantics) and Gemm: shape and
 * type inference, apart from any backend.
 *
 * MatMul promotes 1-D operands to matrices and broadcasts the batch dimensions; Gemm takes
 * 2-D A and B, optionally transposed, and a C that broadcasts to [M, N]. Operands share one
 * type, which Y keeps. The geometry both infer and the kernels use (ops/gemm.h) refuses
 * matrix dimensions past what BLAS takes (INT_MAX).
 */
#include "engine/ops/gemm.h"

#include <limits.h>

static cs_status check_blas_dims(const cs__node *n, int64_t M, int64_t N, int64_t K, cs_error *err)
{
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return cs__node_error(err, n, CS_ERR_LIMIT,
                              "matrix dimensions M=%lld N=%lld K=%lld exceed the BLAS limit %d",
                              (long long)M, (long long)N, (long long)K, INT_MAX);
    return CS_OK;
}

static cs_status same_types(const cs__node *n, const cs_tensor *a, const cs_tensor *b,
                            const char *name, cs_error *err)
{
    if (b->dtype != a->dtype)
        return cs__node_error(err, n, CS_ERR_INVALID, "%s is %s but A is %s", name,
                              cs_dtype_name(b->dtype), cs_dtype_name(a->dtype));
    return CS_OK;
}

/* --- MatMul ---------------------------------------------------------------------------- */

/* Numpy matmul: 1-D operands are promoted to matrices ([K] -> [1,K] for A, [K,1] for B)
 * and the promoted dimension is dropped from the result. */
cs_status cs__mm_shape_init(const cs__node *n, const cs_tensor *a, const cs_tensor *b,
                            cs__mm_shape *s, cs_tensor *out, cs_error *err)
{
    if (a->rank < 1 || b->rank < 1)
        return cs__node_error(err, n, CS_ERR_INVALID, "inputs must have rank >= 1, got %d and %d",
                              a->rank, b->rank);
    int ar = a->rank < 2 ? 0 : a->rank - 2, br = b->rank < 2 ? 0 : b->rank - 2;
    s->M = a->rank < 2 ? 1 : a->dims[a->rank - 2];
    s->K = a->dims[a->rank - 1];
    int64_t kb = b->rank < 2 ? b->dims[0] : b->dims[b->rank - 2];
    s->N = b->rank < 2 ? 1 : b->dims[b->rank - 1];
    if (kb != s->K)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "inner dimensions differ: A has K=%lld, B has K=%lld",
                              (long long)s->K, (long long)kb);
    s->brank = ar > br ? ar : br;
    s->batch = 1;
    s->a_batches = 1;
    s->b_single = true;
    int64_t as = 1, bs = 1;
    for (int d = s->brank - 1; d >= 0; d--) {
        int ai = d - (s->brank - ar), bi = d - (s->brank - br);
        int64_t ad = ai >= 0 ? a->dims[ai] : 1, bd = bi >= 0 ? b->dims[bi] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "batch dimensions cannot be broadcast: %lld and %lld",
                                  (long long)ad, (long long)bd);
        s->bdims[d] = ad == 1 ? bd : ad;
        s->astride[d] = ad == 1 ? 0 : as;
        s->bstride[d] = bd == 1 ? 0 : bs;
        as *= ad;
        bs *= bd;
        s->batch *= s->bdims[d];
    }
    s->a_batches = as;
    s->b_single = bs == 1;
    cs_status rc = check_blas_dims(n, s->M, s->N, s->K, err);
    if (rc != CS_OK) return rc;
    if (out) {
        int r = 0;
        for (int d = 0; d < s->brank; d++) out->dims[r++] = s->bdims[d];
        if (a->rank >= 2) out->dims[r++] = s->M;
        if (b->rank >= 2) out->dims[r++] = s->N;
        out->rank = r;
        out->dtype = a->dtype;
    }
    return CS_OK;
}

static cs_status matmul_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    cs_status rc = same_types(n, in[0], in[1], "B", err);
    if (rc != CS_OK) return rc;
    cs__mm_shape s = {0};
    return cs__mm_shape_init(n, in[0], in[1], &s, &out[0], err);
}

/* --- Gemm ------------------------------------------------------------------------------ */

cs_status cs__gemm_shape_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs__gemm_shape *s, cs_error *err)
{
    const cs_tensor *a = in[0], *b = in[1], *c = n_in > 2 ? in[2] : NULL;
    if (a->rank != 2 || b->rank != 2)
        return cs__node_error(err, n, CS_ERR_INVALID, "A and B must be 2-D, got ranks %d and %d",
                              a->rank, b->rank);
    s->ta = cs__attr_int(n, "transA", 0) != 0;
    s->tb = cs__attr_int(n, "transB", 0) != 0;
    s->M = a->dims[s->ta ? 1 : 0];
    s->K = a->dims[s->ta ? 0 : 1];
    int64_t kb = b->dims[s->tb ? 1 : 0];
    s->N = b->dims[s->tb ? 0 : 1];
    if (kb != s->K)
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "inner dimensions differ: op(A) is [%lld,%lld], op(B) is [%lld,%lld]",
                              (long long)s->M, (long long)s->K, (long long)kb, (long long)s->N);
    s->c_rs = s->c_cs = 0;
    if (c) {
        if (c->rank > 2)
            return cs__node_error(err, n, CS_ERR_INVALID, "C must have rank <= 2, got %d", c->rank);
        int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((cm != 1 && cm != s->M) || (cn != 1 && cn != s->N))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "C of shape [%lld,%lld] cannot be broadcast to [%lld,%lld]",
                                  (long long)cm, (long long)cn, (long long)s->M, (long long)s->N);
        s->c_rs = cm == 1 ? 0 : cn;
        s->c_cs = cn == 1 ? 0 : 1;
    }
    return check_blas_dims(n, s->M, s->N, s->K, err);
}

static cs_status gemm_infer(const cs__node *n, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out, cs_error *err)
{
    cs_status rc = same_types(n, in[0], in[1], "B", err);
    if (rc == CS_OK && n_in > 2 && in[2]) rc = same_types(n, in[0], in[2], "C", err);
    if (rc != CS_OK) return rc;
    cs__gemm_shape s = {0};
    rc = cs__gemm_shape_init(n, in, n_in, &s, err);
    if (rc != CS_OK) return rc;
    out[0].dtype = in[0]->dtype;
    out[0].rank = 2;
    out[0].dims[0] = s.M;
    out[0].dims[1] = s.N;
    return CS_OK;
}

const cs__op cs__ops_gemm[] = {
    {"MatMul", "", 1, matmul_infer},
    {"Gemm", "", 1, gemm_infer},
    {0},
};

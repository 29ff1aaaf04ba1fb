/*
 * einsum.c - CPU kernel for Einsum (opset 12); its schema (shape and type inference) and
 * the equation's parser are in ops/einsum.c.
 *
 * The kernel iterates the plan of ops/einsum.h (a size and, per operand, a stride for
 * each label): the output index space and, for each output element, the space of
 * contracted labels: O(output elements * contracted elements * operands), with no
 * temporary memory. That is general and exact (floats accumulate in double, integers in
 * int64) but not a fast matrix multiply; models that need speed use MatMul.
 */
#include "engine/kernel.h"
#include "engine/ops/einsum.h"

typedef struct es_job {
    const cs__einsum_plan *pl;
    const cs_tensor *const *in;
    cs_tensor *out;
} es_job;

static inline double load_f(const cs_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case CS_DTYPE_FLOAT32: return ((const float *)t->data)[i];
    case CS_DTYPE_FLOAT64: return ((const double *)t->data)[i];
    default: return cs_tensor_get_f64(t, i);
    }
}

/* Sums the products over the contracted labels for output elements [begin, end). */
static void einsum_range(void *arg, int64_t begin, int64_t end)
{
    const es_job *j = arg;
    const cs__einsum_plan *pl = j->pl;
    const cs_tensor *const *in = j->in;
    cs_tensor *out = j->out;
    bool is_float = out->dtype == CS_DTYPE_FLOAT32 || out->dtype == CS_DTYPE_FLOAT64 ||
                    out->dtype == CS_DTYPE_FLOAT16 || out->dtype == CS_DTYPE_BFLOAT16;
    bool empty = false;
    for (int s = 0; s < pl->n_sum; s++) empty |= pl->size[pl->sum_labels[s]] == 0;
    for (int64_t o = begin; o < end; o++) {
        int64_t off[CS__EINSUM_MAX_IN] = {0}, q = o;
        for (int d = pl->out_rank - 1; d >= 0; d--) {
            int label = pl->out_labels[d];
            int64_t c = q % pl->size[label];
            q /= pl->size[label];
            for (int k = 0; k < pl->n_in; k++) off[k] += c * pl->stride[k][label];
        }
        double facc = 0;
        int64_t iacc = 0;
        int64_t idx[CS__EINSUM_MAX_LABELS] = {0};
        while (!empty) {
            if (is_float) {
                double v = 1;
                for (int k = 0; k < pl->n_in; k++) v *= load_f(in[k], off[k]);
                facc += v;
            } else {
                uint64_t v = 1; /* unsigned: wrap-around instead of undefined overflow */
                for (int k = 0; k < pl->n_in; k++) v *= (uint64_t)cs_tensor_get_i64(in[k], off[k]);
                iacc = (int64_t)((uint64_t)iacc + v);
            }
            int s = pl->n_sum - 1;
            for (; s >= 0; s--) {
                int label = pl->sum_labels[s];
                if (++idx[s] < pl->size[label]) {
                    for (int k = 0; k < pl->n_in; k++) off[k] += pl->stride[k][label];
                    break;
                }
                for (int k = 0; k < pl->n_in; k++)
                    off[k] -= pl->stride[k][label] * (pl->size[label] - 1);
                idx[s] = 0;
            }
            if (s < 0) break;
        }
        if (out->dtype == CS_DTYPE_FLOAT32)
            ((float *)out->data)[o] = (float)facc;
        else if (is_float)
            cs_tensor_set_f64(out, o, facc);
        else
            cs_tensor_set_i64(out, o, iacc);
    }
}

static cs_status einsum_run(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                            int n_out)
{
    (void)n_out;
    cs__einsum_plan pl;
    cs_status rc = cs__einsum_plan_init(ctx->node, in, n_in, &pl, ctx->err);
    if (rc) return rc;
    int64_t work = 1;
    for (int s = 0; s < pl.n_sum; s++) work *= pl.size[pl.sum_labels[s]];
    es_job j = {&pl, in, out};
    cs__parallel_for(ctx, cs__numel(out), work > 4096 ? 1 : 4096 / (work + 1) + 1, einsum_range,
                     &j);
    return CS_OK;
}

const cs__kernel cs__kernels_einsum[] = {
    {"Einsum", NULL, 12, CS__T_NUMERIC, 0, einsum_run, NULL},
    {0},
};

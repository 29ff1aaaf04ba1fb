/*
 * einsum.c - schema of Einsum (opset 12): shape and type inference, apart from any
 * backend, and the parser of its equation.
 *
 * The equation is parsed into labels: letters keep their identity, and the dimensions an
 * ellipsis stands for become extra labels aligned from the right, so "..." broadcasts like
 * numpy. Each operand gets a stride per label (strides of a repeated label add up, which
 * reads a diagonal; a dimension of 1 under a larger label gets stride 0, which broadcasts).
 * The output has the sizes of its labels, given after "->" or implicit (the ellipsis, then
 * the letters used once, in ASCII order); operands share one type, which it keeps. The
 * plan (ops/einsum.h) is what the kernels iterate.
 */
#include "engine/ops/einsum.h"

#include <ctype.h>
#include <string.h>

/* One side of the equation for one operand: its letters and where its ellipsis sits. */
typedef struct es_term {
    int labels[CS_MAX_RANK + 1];
    int n;        /* letters */
    int ellipsis; /* index in labels before which the ellipsis stands, or -1 */
} es_term;

static int letter_id(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
    return -1;
}

/* Parses one term from *p up to ',' '-' or the end; advances *p. */
static cs_status parse_term(const cs__node *n, const char **p, es_term *t, cs_error *err)
{
    const char *s = *p;
    t->n = 0;
    t->ellipsis = -1;
    for (; *s && *s != ',' && *s != '-'; s++) {
        if (isspace((unsigned char)*s)) continue;
        if (*s == '.') {
            if (strncmp(s, "...", 3) || t->ellipsis >= 0)
                return cs__node_error(err, n, CS_ERR_INVALID,
                                      "malformed ellipsis in equation at '%s'", s);
            t->ellipsis = t->n;
            s += 2;
            continue;
        }
        int id = letter_id(*s);
        if (id < 0)
            return cs__node_error(err, n, CS_ERR_INVALID, "unexpected character '%c' in equation",
                                  *s);
        if (t->n == CS_MAX_RANK)
            return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "a term has more than %d labels",
                                  CS_MAX_RANK);
        t->labels[t->n++] = id;
    }
    *p = s;
    return CS_OK;
}

static cs_status bind_size(const cs__node *n, cs__einsum_plan *pl, int label, int64_t dim,
                           cs_error *err)
{
    int64_t *s = &pl->size[label];
    if (*s < 0 || *s == 1) {
        *s = dim;
    } else if (dim != *s && dim != 1) {
        return cs__node_error(err, n, CS_ERR_INVALID,
                              "a label spans dimensions of sizes %lld and %lld", (long long)*s,
                              (long long)dim);
    }
    return CS_OK;
}

/* Builds the plan for the node's equation over the given inputs' shapes. */
cs_status cs__einsum_plan_init(const cs__node *n, const cs_tensor *const *in, int n_in,
                               cs__einsum_plan *pl, cs_error *err)
{
    const char *eq = cs__attr_str(n, "equation", NULL);
    if (!eq) return cs__node_error(err, n, CS_ERR_INVALID, "the 'equation' attribute is required");
    if (n_in < 1 || n_in > CS__EINSUM_MAX_IN)
        return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "%d operands; 1 to %d are supported",
                              n_in, CS__EINSUM_MAX_IN);
    es_term terms[CS__EINSUM_MAX_IN];
    int ell_rank = 0, k = 0;
    cs_status rc;
    const char *p = eq;
    for (;; k++) {
        if (k == n_in)
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "equation '%s' has more terms than the %d inputs", eq, n_in);
        if (!in[k] || in[k]->dtype != in[0]->dtype)
            return cs__node_error(err, n, CS_ERR_INVALID, "every input must have the same type");
        if ((rc = parse_term(n, &p, &terms[k], err))) return rc;
        int extra = in[k]->rank - terms[k].n;
        if (extra < 0 || (extra > 0 && terms[k].ellipsis < 0))
            return cs__node_error(err, n, CS_ERR_INVALID,
                                  "term %d of '%s' has %d labels but input %d has rank %d", k, eq,
                                  terms[k].n, k, in[k]->rank);
        if (extra > ell_rank) ell_rank = extra;
        if (*p != ',') break;
        p++;
    }
    if (k + 1 != n_in)
        return cs__node_error(err, n, CS_ERR_INVALID, "equation '%s' has %d terms for %d inputs",
                              eq, k + 1, n_in);

    memset(pl, 0, sizeof *pl);
    pl->n_in = n_in;
    for (int l = 0; l < CS__EINSUM_MAX_LABELS; l++) pl->size[l] = -1;
    int count[CS__EINSUM_MAX_LABELS] = {0};
    for (k = 0; k < n_in; k++) {
        const es_term *t = &terms[k];
        int extra = in[k]->rank - t->n, dim = 0;
        int64_t strides[CS_MAX_RANK];
        cs__strides(in[k], strides);
        for (int i = 0; i <= t->n; i++) {
            if (i == t->ellipsis) {
                for (int e = 0; e < extra; e++, dim++) {
                    int label = CS__EINSUM_LETTERS + ell_rank - extra + e;
                    if ((rc = bind_size(n, pl, label, in[k]->dims[dim], err))) return rc;
                    if (in[k]->dims[dim] != 1) pl->stride[k][label] += strides[dim];
                    count[label]++;
                }
            }
            if (i == t->n) break;
            int label = t->labels[i];
            if ((rc = bind_size(n, pl, label, in[k]->dims[dim], err))) return rc;
            if (in[k]->dims[dim] != 1) pl->stride[k][label] += strides[dim];
            count[label]++;
            dim++;
        }
    }

    bool in_out[CS__EINSUM_MAX_LABELS] = {false};
    if (!strncmp(p, "->", 2)) {
        p += 2;
        es_term t;
        if ((rc = parse_term(n, &p, &t, err))) return rc;
        if (*p)
            return cs__node_error(err, n, CS_ERR_INVALID, "unexpected '%c' in equation '%s'", *p,
                                  eq);
        for (int i = 0; i <= t.n; i++) {
            if (i == t.ellipsis)
                for (int e = 0; e < ell_rank; e++)
                    pl->out_labels[pl->out_rank++] = CS__EINSUM_LETTERS + e;
            if (i == t.n) break;
            int label = t.labels[i];
            if (!count[label] || in_out[label])
                return cs__node_error(err, n, CS_ERR_INVALID,
                                      "output label '%c' is repeated or not among the inputs",
                                      label < 26 ? 'A' + label : 'a' + label - 26);
            if (pl->out_rank == CS_MAX_RANK)
                return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank exceeds %d",
                                      CS_MAX_RANK);
            in_out[label] = true;
            pl->out_labels[pl->out_rank++] = label;
        }
    } else if (*p) {
        return cs__node_error(err, n, CS_ERR_INVALID, "unexpected '%c' in equation '%s'", *p, eq);
    } else {
        /* Implicit output: the ellipsis dimensions, then letters used once, in ASCII order. */
        for (int e = 0; e < ell_rank; e++) pl->out_labels[pl->out_rank++] = CS__EINSUM_LETTERS + e;
        for (int l = 0; l < CS__EINSUM_LETTERS; l++) {
            if (count[l] != 1) continue;
            if (pl->out_rank == CS_MAX_RANK)
                return cs__node_error(err, n, CS_ERR_UNSUPPORTED, "output rank exceeds %d",
                                      CS_MAX_RANK);
            pl->out_labels[pl->out_rank++] = l;
        }
    }
    for (int i = 0; i < pl->out_rank; i++) in_out[pl->out_labels[i]] = true;
    for (int l = 0; l < CS__EINSUM_MAX_LABELS; l++)
        if (count[l] && !in_out[l]) pl->sum_labels[pl->n_sum++] = l;
    return CS_OK;
}

static cs_status einsum_infer(const cs__node *n, const cs_tensor *const *in, int n_in,
                              cs_tensor *out, int n_out, cs_error *err)
{
    (void)n_out;
    cs__einsum_plan pl;
    cs_status rc = cs__einsum_plan_init(n, in, n_in, &pl, err);
    if (rc) return rc;
    out->dtype = in[0]->dtype;
    out->rank = pl.out_rank;
    for (int i = 0; i < pl.out_rank; i++) out->dims[i] = pl.size[pl.out_labels[i]];
    return CS_OK;
}

const cs__op cs__ops_einsum[] = {
    {"Einsum", NULL, 12, einsum_infer},
    {0},
};

/*
 * ops.c - the operator schema table: which cs__op serves (op, domain, opset).
 *
 * Each family file exports a {0}-terminated array of schemas; this file lists the families
 * and picks, for an operator, the entry with the highest `since` that does not exceed the
 * model's opset. Backends' kernel tables follow the same rule (cs__op_entry_serves).
 * Lookups happen at load and plan time, never while running.
 */
#include "engine/op.h"

#include <string.h>

extern const cs__op cs__ops_unary[];
extern const cs__op cs__ops_binary[];
extern const cs__op cs__ops_reduce[];
extern const cs__op cs__ops_norm[];
extern const cs__op cs__ops_conv[];
extern const cs__op cs__ops_pool[];
extern const cs__op cs__ops_gemm[];
extern const cs__op cs__ops_shape[];
extern const cs__op cs__ops_layout[];
extern const cs__op cs__ops_gather[];
extern const cs__op cs__ops_resize[];
extern const cs__op cs__ops_einsum[];

static const cs__op *const families[] = {
    cs__ops_unary, cs__ops_binary, cs__ops_reduce, cs__ops_norm,   cs__ops_conv,   cs__ops_pool,
    cs__ops_gemm,  cs__ops_shape,  cs__ops_layout, cs__ops_gather, cs__ops_resize, cs__ops_einsum,
};

static bool same_domain(const char *a, const char *b)
{
    if (!a || !*a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !*b || !strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

bool cs__op_entry_serves(const char *op, const char *domain, int since, const char *want,
                         const char *want_domain, int64_t opset, int best_since)
{
    return since <= opset && since > best_since && !strcmp(op, want) &&
           same_domain(domain, want_domain);
}

const cs__op *cs__op_find(const char *op, const char *domain, int64_t opset)
{
    const cs__op *best = NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const cs__op *o = families[f]; o->op; o++)
            if (cs__op_entry_serves(o->op, o->domain, o->since, op, domain, opset,
                                    best ? best->since : -1))
                best = o;
    return best;
}

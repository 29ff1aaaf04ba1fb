/*
 * session.c - sessions: plans per input signature and the executor (memory: memplan.c).
 *
 * A plan is built the first time a session sees an input signature (which inputs are fed,
 * with which types and shapes) and cached. Building walks the nodes once:
 *  - each kernel's infer() gives output types and shapes;
 *  - a node whose inputs are all known (initializers, or values folded before it) runs at
 *    plan time: constant folding, which also folds the Shape/Gather/Concat chains exported
 *    graphs use to compute Reshape targets;
 *  - a Relu or constant-bounded Clip that is the only consumer of a Conv's or a Gemm's
 *    output fuses into that step as its epilogue (fuse_activation()) and gets no step of
 *    its own;
 *  - every other node becomes a step; in a static plan its kernel may prepack known inputs
 *    (Winograd-transformed weights) once, into the plan. Step outputs get offsets in one
 *    arena by a liveness-based first-fit plan (buffers of dead values are reused), and the
 *    largest scratch any step asks for is allocated once.
 * A run then only binds the caller's input pointers and calls each step's kernel: no
 * allocation, no shape work. When some output shape depends on runtime data (a kernel's
 * infer returned CS__DEFER), the plan is dynamic: each run infers shapes again and takes
 * buffers from a per-run arena that is reset, not freed, between runs. An optional node
 * timer (cs_session_set_node_timer) sees each step's time; off, it costs a branch per step.
 *
 * A session on a device backend: each node runs on it, or on the CPU when the backend has
 * no kernel for it (folded nodes always run on the CPU). Inputs come and outputs go in host
 * memory. cs__plan_place_values() leaves every step's inputs on its own side of the
 * host/device boundary: known values are uploaded once, other values cross by transfers (copies,
 * each a buffer of the memory plan) before their first reader on the other side, and outputs cross
 * after the last step. A plan whose shapes depend on values runs on the CPU.
 *
 * Memory bound: with cs_session_options.max_memory set, every byte a plan holds (folded
 * values, prepacked weights, the activation arena, scratch) and every per-run buffer of a
 * dynamic plan is charged (cs__charge()) before it is allocated, against the bytes the
 * cached plans hold together: least recently used plans are dropped to make room, and what still
 * does not fit fails with CS_ERR_TOO_LARGE. A 200-byte model whose ConstantOfShape folds to
 * gigabytes is refused before the gigabytes exist.
 */
#include "engine/plan.h"

#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- helpers --------------------------------------------------------------------------- */

/* The schema's output types and shapes, into out[] zeroed first. */
static cs_status infer_node(const cs__node *n, const cs_tensor *const *in, cs_tensor *out,
                            cs_error *err)
{
    for (int j = 0; j < n->n_out; j++) memset(&out[j], 0, sizeof out[j]);
    return n->schema->infer(n, in, n->n_in, out, n->n_out, err);
}

static cs_status run_node(cs_session_t *s, const cs__backend *be, const cs__kernel *k,
                          const cs__node *n, const cs_tensor *const *in, cs_tensor *out,
                          void *scratch, size_t scratch_size, const cs__act *act,
                          const void *packed, cs_error *err)
{
    cs__kctx ctx = {n, scratch, scratch_size, s->pool, s->threads, err, act, packed, be};
    cs_status rc = k->run(&ctx, in, n->n_in, out, n->n_out);
    /* An activation fused for one backend's kernel, run by another's that takes none (a
     * dynamic plan moved to the CPU): applied here, with the unfused loops. */
    if (rc == CS_OK && act && act->kind != CS__ACT_NONE && !(k->flags & CS__K_FUSE_ACT))
        cs__act_apply(act, out[0].dtype, out[0].data, cs_tensor_numel(&out[0]));
    return rc;
}

/* Time a step for the session's node timer; without one, step_start returns 0 and
 * step_done does nothing. */
static uint64_t step_start(const cs_session_t *s)
{
    return s->timer ? cs_now_ns() : 0;
}

static void step_done(const cs_session_t *s, const cs__node *n, uint64_t t0)
{
    if (s->timer) s->timer(s->timer_ctx, (int)(n - s->model->nodes), cs_now_ns() - t0);
}

static size_t scratch_of(const cs__kernel *k, const cs__node *n, const cs_tensor *const *in,
                         const cs_tensor *out)
{
    return k->scratch ? k->scratch(n, in, n->n_in, out, n->n_out) : 0;
}

/* --- building a plan ------------------------------------------------------------------- */

/* Runs a node whose inputs are all known, at plan time, with its CPU kernel k into
 * plan-owned host memory. */
static cs_status fold_node(cs_session_t *s, plan *p, const cs__kernel *k, const cs__node *n,
                           const cs_tensor **in, cs_tensor *out, cs_error *err)
{
    cs_status rc;
    for (int j = 0; j < n->n_out; j++) {
        size_t bytes = cs__tensor_bytes(&out[j]);
        if ((rc = cs__charge(s, NULL, p->bytes, bytes, err))) return rc;
        out[j].data = cs_arena_alloc(&p->arena, bytes, ALIGN);
        if (!out[j].data) return cs_error_set(err, CS_ERR_NOMEM, "out of memory while folding");
        p->bytes += bytes;
    }
    size_t need = scratch_of(k, n, in, out);
    if ((rc = cs__charge(s, NULL, p->bytes, need, err))) return rc; /* freed again below */
    void *scratch = need ? aligned_alloc(ALIGN, (need + ALIGN - 1) & ~(size_t)(ALIGN - 1)) : NULL;
    if (need && !scratch) return cs_error_set(err, CS_ERR_NOMEM, "out of memory while folding");
    rc = run_node(s, &cs__cpu_backend, k, n, in, out, scratch, need, NULL, NULL, err);
    free(scratch);
    return rc;
}

/* Fuses node n, a Relu or a Clip whose bounds are known now, into the step that made its
 * input when that step's kernel takes an activation (CS__K_FUSE_ACT), has none yet, and
 * its float32/float64 output has n as its only consumer (uses[] counts the planned nodes'
 * reads) and is no graph output, which must keep the value before the activation. Returns
 * whether it did; the caller then maps n's output onto the step's. float16 stays unfused:
 * the kernel computes it in float32, and clamping before the narrowing is a different
 * rounding order. A Clip whose bounds are invalid stays too, to fail as it would alone. */
static bool fuse_activation(plan *p, const cs_model_t *m, const cs__node *n,
                            const cs_tensor *const *in, const int *uses, const int *made_by,
                            const bool *known)
{
    bool relu = !strcmp(n->op_type, "Relu");
    if (n->domain[0] || (!relu && strcmp(n->op_type, "Clip")) || n->n_in < 1 || n->in[0] < 0)
        return false;
    int v = n->in[0];
    if (made_by[v] < 0 || uses[v] != 1 || m->values[v].is_output) return false;
    step *st = &p->steps[made_by[v]];
    cs_dtype t = p->vals[v]->dtype;
    if (!(st->k->flags & CS__K_FUSE_ACT) || st->act.kind != CS__ACT_NONE ||
        (t != CS_DTYPE_FLOAT32 && t != CS_DTYPE_FLOAT64))
        return false;
    cs__act act = {CS__ACT_CLAMP, 0.0, INFINITY};
    for (int k = 1; k < n->n_in; k++)
        if (n->in[k] >= 0 && !known[n->in[k]]) return false;
    if (!relu && cs__clip_bounds(n, in, n->n_in, &act.lo, &act.hi, NULL) != CS_OK) return false;
    st->act = act;
    return true;
}

/* Whether steps a and b read the same inputs: the same known bytes, the same shapes. */
static bool same_inputs(const step *a, const step *b)
{
    if (a->node->n_in != b->node->n_in) return false;
    for (int k = 0; k < a->node->n_in; k++) {
        const cs_tensor *x = a->in[k], *y = b->in[k];
        if (!x || !y) {
            if (x != y) return false;
            continue;
        }
        if (x->data != y->data || x->dtype != y->dtype || x->rank != y->rank ||
            memcmp(x->dims, y->dims, sizeof x->dims[0] * (size_t)x->rank))
            return false;
    }
    return true;
}

/* An earlier step of a CS__K_PACK_BY_INPUTS kernel that packed the same inputs into need
 * bytes, or NULL. */
static const step *packed_alike(const plan *p, int i, size_t need)
{
    const step *st = &p->steps[i];
    if (!(st->k->flags & CS__K_PACK_BY_INPUTS) || st->k->release_packed) return NULL;
    for (int j = 0; j < i; j++) {
        const step *o = &p->steps[j];
        if (o->k == st->k && o->packed && o->packed_size == need && same_inputs(o, st)) return o;
    }
    return NULL;
}

/* Lets each step's kernel prepack its known inputs into the plan's arena. Runs before
 * cs__plan_memory(), while only known values have data (the prepack contract). */
static cs_status prepack_steps(cs_session_t *s, plan *p, cs_error *err)
{
    for (int i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        const cs__node *n = st->node;
        if (!st->k->prepack) continue;
        const cs__act *act = st->act.kind != CS__ACT_NONE ? &st->act : NULL;
        cs__kctx ctx = {.node = n, .threads = s->threads, .err = err, .act = act, .be = st->be};
        size_t need = st->k->prepack(&ctx, st->in, n->n_in, st->out, n->n_out, NULL);
        if (need == SIZE_MAX) return err ? err->code : CS_ERR_INTERNAL;
        if (!need) continue;
        const step *alike = packed_alike(p, i, need);
        if (alike) {
            st->packed = alike->packed;
            st->packed_size = need;
            continue;
        }
        cs_status rc = cs__charge(s, NULL, p->bytes, need, err);
        if (rc) return rc;
        void *dst = cs_arena_alloc(&p->arena, need, ALIGN);
        if (!dst) return cs_error_set(err, CS_ERR_NOMEM, "out of memory prepacking %s", n->op_type);
        p->bytes += need;
        if (st->k->prepack(&ctx, st->in, n->n_in, st->out, n->n_out, dst) == SIZE_MAX)
            return err ? err->code : CS_ERR_INTERNAL;
        st->packed = dst;
        st->packed_size = need;
    }
    return CS_OK;
}

static cs_status plan_build(cs_session_t *s, const uint8_t *fed, const cs_tensor *given,
                            plan **out_plan, cs_error *err)
{
    const cs_model_t *m = s->model;
    cs_status rc = CS_ERR_NOMEM;
    plan *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_arena_init(&p->arena, 64 * 1024);
    cs_arena_init(&p->run_arena, 1024 * 1024);
    size_t ni = (size_t)m->n_inputs + 1;
    p->fed = cs_arena_zalloc(&p->arena, ni, 1);
    p->sig = cs_arena_zalloc(&p->arena, ni * sizeof *p->sig, 8);
    p->inputs = cs_arena_zalloc(&p->arena, ni * sizeof *p->inputs, 8);
    p->vals = cs_arena_zalloc(&p->arena, ((size_t)m->n_values + 1) * sizeof *p->vals, 8);
    p->steps = cs_arena_zalloc(&p->arena, ((size_t)m->n_nodes + 1) * sizeof *p->steps, 8);
    bool *known = cs_arena_zalloc(&p->arena, (size_t)m->n_values + 1, 1);
    bool *shaped = cs_arena_zalloc(&p->arena, (size_t)m->n_values + 1, 1);
    int *uses = cs_arena_zalloc(&p->arena, ((size_t)m->n_values + 1) * sizeof *uses, 8);
    int *made_by = cs_arena_alloc(&p->arena, ((size_t)m->n_values + 1) * sizeof *made_by, 8);
    int *root = cs_arena_alloc(&p->arena, ((size_t)m->n_values + 1) * sizeof *root, 8);
    if (!p->fed || !p->sig || !p->inputs || !p->vals || !p->steps || !known || !shaped || !uses ||
        !made_by || !root)
        goto nomem;
    for (int v = 0; v < m->n_values; v++) made_by[v] = -1, root[v] = v;

    for (int v = 0; v < m->n_values; v++) {
        if (m->values[v].init) {
            p->vals[v] = m->values[v].init;
            known[v] = shaped[v] = true;
        }
    }
    for (int i = 0; i < m->n_inputs; i++) {
        p->fed[i] = fed[i];
        if (!fed[i]) continue; /* an initializer default: stays known */
        p->sig[i] = given[i];
        p->sig[i].data = NULL;
        p->inputs[i] = p->sig[i];
        int v = m->inputs[i];
        p->vals[v] = &p->inputs[i];
        known[v] = false;
        shaped[v] = true;
    }

    /* Dead-node removal: only nodes that some graph output depends on are planned. */
    bool *needed = cs_arena_zalloc(&p->arena, (size_t)m->n_values + 1, 1);
    if (!needed) goto nomem;
    for (int j = 0; j < m->n_outputs; j++) needed[m->outputs[j]] = true;
    bool *live = cs_arena_zalloc(&p->arena, (size_t)m->n_nodes + 1, 1);
    if (!live) goto nomem;
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        const cs__node *n = &m->nodes[i];
        for (int k = 0; k < n->n_out && !live[i]; k++) live[i] = needed[n->out[k]];
        if (!live[i]) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) needed[n->in[k]] = true, uses[n->in[k]]++;
    }

    for (int i = 0; i < m->n_nodes; i++) {
        const cs__node *n = &m->nodes[i];
        if (!live[i]) continue;
        const cs_tensor **in = cs_arena_zalloc(&p->arena, (size_t)(n->n_in + 1) * sizeof *in, 8);
        cs_tensor *out = cs_arena_zalloc(&p->arena, (size_t)(n->n_out + 1) * sizeof *out, ALIGN);
        if (!in || !out) goto nomem;
        bool all_known = true, all_shaped = true;
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            if (v < 0) continue;
            in[k] = p->vals[v];
            all_known &= known[v] || (n->schema->flags & CS__OP_SHAPE_ONLY && shaped[v]);
            all_shaped &= shaped[v];
        }
        bool out_shaped = false;
        /* Folded nodes run on the CPU, the rest on the session's backend, or on the CPU
         * when it has no kernel for them (their values cross over: place_values). */
        const cs__kernel *k = NULL;
        const cs__backend *be = all_known ? &cs__cpu_backend : s->be;
        if (all_shaped) {
            if (!(k = be->supports(be, n, in, err)) && be != &cs__cpu_backend) {
                be = &cs__cpu_backend;
                k = be->supports(be, n, in, err);
            }
            if (!k) {
                rc = CS_ERR_UNSUPPORTED;
                goto fail;
            }
            rc = infer_node(n, in, out, err);
            if (rc == CS__DEFER) {
                p->dynamic = true;
            } else if (rc) {
                goto fail;
            } else {
                out_shaped = true;
                if (all_known) {
                    if ((rc = fold_node(s, p, k, n, in, out, err))) goto fail;
                }
            }
        } else {
            p->dynamic = true;
        }
        bool folded = all_known && out_shaped;
        bool fused = !folded && out_shaped && !s->reference &&
                     fuse_activation(p, m, n, in, uses, made_by, known);
        for (int j = 0; j < n->n_out; j++) {
            p->vals[n->out[j]] = fused ? p->vals[n->in[0]] : &out[j];
            root[n->out[j]] = fused ? root[n->in[0]] : n->out[j];
            made_by[n->out[j]] = folded || fused ? -1 : p->n_steps;
            known[n->out[j]] = folded;
            shaped[n->out[j]] = out_shaped;
        }
        if (folded || fused) continue;
        step *st = &p->steps[p->n_steps++];
        st->node = n;
        st->k = all_known ? NULL : k; /* a kernel chosen to fold is the CPU's, not ours */
        st->be = be;
        st->in = in;
        st->out = out;
        for (int j = 0; j < n->n_out; j++) out[j].device = be->device;
        st->scratch = out_shaped && st->k ? scratch_of(st->k, n, in, out) : 0;
    }
    if (p->dynamic && s->be != &cs__cpu_backend) {
        /* Shapes that depend on values are known only as the run goes: such a plan runs on
         * the CPU, every step, its kernels chosen at run time. */
        for (int i = 0; i < p->n_steps; i++) {
            step *st = &p->steps[i];
            st->be = &cs__cpu_backend;
            st->k = NULL;
            for (int j = 0; j < st->node->n_out; j++) st->out[j].device = st->be->device;
        }
    }
    if (!p->dynamic && !s->reference && (rc = prepack_steps(s, p, err))) goto fail;
    if (!p->dynamic) {
        int *last_use = cs__plan_last_uses(p, m, root);
        if (!last_use) goto nomem;
        if (s->be != &cs__cpu_backend && (rc = cs__plan_place_values(s, p, m, root, known, err)))
            goto fail;
        if ((rc = cs__plan_memory(s, p, last_use, err))) goto fail;
    }
    *out_plan = p;
    return CS_OK;
nomem:
    rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory while planning");
fail:
    cs__plan_free(p);
    return rc;
}

/* --- running --------------------------------------------------------------------------- */

static cs_status run_dynamic(cs_session_t *s, plan *p, cs_error *err)
{
    cs_arena_reset(&p->run_arena);
    size_t used = 0; /* this run's buffers, charged on top of the plan's bytes */
    for (int i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        const cs__node *n = st->node;
        if (!st->k && !(st->k = st->be->supports(st->be, n, st->in, err)))
            return CS_ERR_UNSUPPORTED;
        cs_status rc = infer_node(n, st->in, st->out, err);
        if (rc == CS__DEFER)
            return cs__node_error(err, n, CS_ERR_INTERNAL,
                                  "output shape is still unknown at run "
                                  "time");
        if (rc) return rc;
        for (int j = 0; j < n->n_out; j++) {
            size_t bytes = cs__tensor_bytes(&st->out[j]);
            if ((rc = cs__charge(s, p, p->bytes + used, bytes, err))) return rc;
            st->out[j].data = cs_arena_alloc(&p->run_arena, bytes, ALIGN);
            if (!st->out[j].data)
                return cs_error_set(err, CS_ERR_NOMEM, "out of memory for %s outputs", n->op_type);
            used += bytes;
        }
        size_t need = scratch_of(st->k, n, st->in, st->out);
        if ((rc = cs__charge(s, p, p->bytes + used, need, err))) return rc;
        used += need;
        void *scratch = need ? cs_arena_alloc(&p->run_arena, need, ALIGN) : NULL;
        if (need && !scratch) return cs_error_set(err, CS_ERR_NOMEM, "out of memory for scratch");
        uint64_t t0 = step_start(s);
        if ((rc = run_node(s, st->be, st->k, n, st->in, st->out, scratch, need, &st->act, NULL,
                           err)))
            return rc;
        step_done(s, n, t0);
    }
    return CS_OK;
}

static cs_status run_static(cs_session_t *s, plan *p, cs_error *err)
{
    for (int i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        uint64_t t0 = step_start(s);
        cs_status rc = cs__run_copies(s->be, st->copies, st->n_copies, err);
        bool own = st->be == p->be;
        if (rc == CS_OK)
            rc = run_node(s, st->be, st->k, st->node, st->in, st->out,
                          own ? p->scratch : p->host_scratch,
                          own ? p->scratch_size : p->host_scratch_size, &st->act, st->packed, err);
        if (rc) return rc;
        step_done(s, st->node, t0);
    }
    return cs__run_copies(s->be, p->tail, p->n_tail, err);
}

/* Validates the caller's inputs against the model's declarations and orders them by model
 * input index into given[]/fed[]. */
static cs_status bind_inputs(const cs_session_t *s, int n, const char *const *names,
                             const cs_tensor *inputs, cs_tensor *given, uint8_t *fed, cs_error *err)
{
    const cs_model_t *m = s->model;
    memset(fed, 0, (size_t)m->n_inputs);
    for (int k = 0; k < n; k++) {
        int i = 0;
        while (i < m->n_inputs && strcmp(m->values[m->inputs[i]].name, names[k])) i++;
        if (i == m->n_inputs) {
            char list[256] = "";
            size_t len = 0;
            for (int j = 0; j < m->n_inputs && len < sizeof list; j++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", j ? ", " : "",
                                        m->values[m->inputs[j]].name);
            return cs_error_set(err, CS_ERR_INVALID,
                                "unknown input '%s'; the model's inputs are %s", names[k], list);
        }
        if (fed[i]) return cs_error_set(err, CS_ERR_INVALID, "input '%s' is given twice", names[k]);
        const cs__value *v = &m->values[m->inputs[i]];
        const cs_tensor *t = &inputs[k];
        if (v->dtype != CS_DTYPE_UNDEFINED && t->dtype != v->dtype)
            return cs_error_set(err, CS_ERR_INVALID, "input '%s': expected %s, got %s", v->name,
                                cs_dtype_name(v->dtype), cs_dtype_name(t->dtype));
        if (cs_dtype_size(t->dtype) == 0)
            return cs_error_set(err, CS_ERR_INVALID, "input '%s': unsupported element type %s",
                                v->name, cs_dtype_name(t->dtype));
        bool ok = t->rank >= 0 && t->rank <= CS_MAX_RANK;
        if (ok && v->rank >= 0) {
            ok = t->rank == v->rank;
            for (int d = 0; ok && d < v->rank; d++) ok = v->dims[d] < 0 || v->dims[d] == t->dims[d];
        }
        for (int d = 0; ok && d < t->rank; d++) ok = t->dims[d] >= 0;
        if (!ok) {
            char want[160], got[160];
            cs_shape_format(want, sizeof want, v->rank, v->dims, v->dim_names);
            cs_shape_format(got, sizeof got, t->rank < 0 || t->rank > CS_MAX_RANK ? 0 : t->rank,
                            t->dims, NULL);
            return cs_error_set(err, CS_ERR_INVALID, "input '%s': expected shape %s, got %s",
                                v->name, want, got);
        }
        if (!t->data && cs_tensor_numel(t) > 0)
            return cs_error_set(err, CS_ERR_INVALID, "input '%s' has no data", v->name);
        if (t->device.kind != CS_DEVICE_CPU) {
            char in_dev[32], be_dev[32];
            return cs_error_set(err, CS_ERR_INVALID,
                                "input '%s' lies in %s memory; a session (this one runs on %s) "
                                "takes its inputs in host memory",
                                v->name, cs_device_format(t->device, in_dev, sizeof in_dev),
                                cs_device_format(s->be->device, be_dev, sizeof be_dev));
        }
        given[i] = *t;
        fed[i] = 1;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const cs__value *v = &m->values[m->inputs[i]];
        if (!fed[i] && !v->init)
            return cs_error_set(err, CS_ERR_INVALID, "missing input '%s'", v->name);
    }
    return CS_OK;
}

static bool plan_matches(const plan *p, const cs_model_t *m, const uint8_t *fed,
                         const cs_tensor *given)
{
    for (int i = 0; i < m->n_inputs; i++) {
        if (p->fed[i] != fed[i]) return false;
        if (!fed[i]) continue;
        const cs_tensor *a = &p->sig[i], *b = &given[i];
        if (a->dtype != b->dtype || a->rank != b->rank) return false;
        if (memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0])) return false;
    }
    return true;
}

/* The cached plan for this signature, or a new one cached in the place of the least recently
 * used when MAX_PLANS are cached. */
static cs_status plan_for(cs_session_t *s, const uint8_t *fed, const cs_tensor *given, plan **out,
                          cs_error *err)
{
    for (int i = 0; i < s->n_plans; i++)
        if (plan_matches(s->plans[i], s->model, fed, given)) {
            *out = s->plans[i];
            return CS_OK;
        }
    plan *p = NULL;
    cs_status rc = plan_build(s, fed, given, &p, err);
    if (rc) return rc;
    if (s->n_plans == MAX_PLANS) cs__plan_evict_lru(s, NULL);
    s->plans[s->n_plans++] = p;
    s->held += p->bytes;
    *out = p;
    return CS_OK;
}

cs_status cs_session_prepare(cs_session_t *s, cs_error *err)
{
    const cs_model_t *m = s->model;
    if (m->n_inputs > 64) return CS_OK; /* rare; planned at the first run */
    cs_tensor given[64];
    uint8_t fed[64];
    for (int i = 0; i < m->n_inputs; i++) {
        const cs__value *v = &m->values[m->inputs[i]];
        fed[i] = !v->init;
        memset(&given[i], 0, sizeof given[i]);
        if (v->init) continue;
        if (v->rank < 0 || v->dtype == CS_DTYPE_UNDEFINED) return CS_OK;
        given[i].dtype = v->dtype;
        given[i].rank = v->rank;
        for (int d = 0; d < v->rank; d++) {
            if (v->dims[d] < 0) return CS_OK;
            given[i].dims[d] = v->dims[d];
        }
    }
    plan *p;
    return plan_for(s, fed, given, &p, err);
}

cs_status cs_session_run(cs_session_t *s, int n_inputs, const char *const *names,
                         const cs_tensor *inputs, int n_outputs, cs_tensor *outputs, cs_error *err)
{
    const cs_model_t *m = s->model;
    if (n_outputs != m->n_outputs)
        return cs_error_set(err, CS_ERR_INVALID,
                            "the model has %d outputs, the caller asked for %d", m->n_outputs,
                            n_outputs);
    if (n_inputs < 0 || (n_inputs && (!names || !inputs)))
        return cs_error_set(err, CS_ERR_INVALID, "inputs and their names must be given");
    /* Small per-call tables live on the stack for typical models; larger ones are
     * allocated (rare: models with more than 64 inputs). */
    cs_tensor given_stack[64];
    uint8_t fed_stack[64];
    cs_tensor *given = given_stack;
    uint8_t *fed = fed_stack;
    if (m->n_inputs > 64) {
        given = cs_calloc((size_t)m->n_inputs, sizeof *given);
        fed = cs_calloc((size_t)m->n_inputs, 1);
        if (!given || !fed) {
            if (given != given_stack) cs_free(given);
            if (fed != fed_stack) cs_free(fed);
            return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        }
    }
    cs_status rc = bind_inputs(s, n_inputs, names, inputs, given, fed, err);
    plan *p = NULL;
    if (rc == CS_OK) rc = plan_for(s, fed, given, &p, err);
    if (rc == CS_OK) {
        p->last_used = ++s->clock;
        for (int i = 0; i < m->n_inputs; i++)
            if (fed[i]) p->inputs[i].data = given[i].data;
        rc = p->dynamic ? run_dynamic(s, p, err) : run_static(s, p, err);
        if (rc == CS_OK) rc = s->be->sync(s->be, err);
    }
    if (rc == CS_OK)
        for (int j = 0; j < m->n_outputs; j++) outputs[j] = *p->vals[m->outputs[j]];
    if (given != given_stack) cs_free(given);
    if (fed != fed_stack) cs_free(fed);
    return rc;
}

static const plan *last_plan(const cs_session_t *s)
{
    const plan *last = NULL;
    for (int i = 0; i < s->n_plans; i++)
        if (!last || s->plans[i]->last_used > last->last_used) last = s->plans[i];
    return last;
}

int cs__session_steps(const cs_session_t *s)
{
    const plan *last = last_plan(s);
    return last ? last->n_steps : -1;
}

bool cs_session_node_device(const cs_session_t *s, int node, cs_device *out)
{
    const plan *p = node >= 0 && node < s->model->n_nodes ? last_plan(s) : NULL;
    for (int i = 0; p && i < p->n_steps; i++)
        if (p->steps[i].node == &s->model->nodes[node]) {
            *out = p->steps[i].be->device;
            return true;
        }
    return false;
}

void cs__session_set_reference(cs_session_t *s)
{
    s->reference = true;
}

void cs_session_set_node_timer(cs_session_t *s, cs_node_timer_fn fn, void *ctx)
{
    s->timer = fn;
    s->timer_ctx = ctx;
}

/* --- lifecycle ------------------------------------------------------------------------- */

cs_status cs__session_new_on(const cs_model_t *m, const cs_session_options *opts,
                             const cs__backend *be, cs_session_t **out, cs_error *err)
{
    *out = NULL;
    int threads = opts ? opts->threads : 0;
    if (threads < 0 || threads > 256)
        return cs_error_set(err, CS_ERR_INVALID, "threads must be between 0 and 256, not %d",
                            threads);
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    cs_session_t *s = cs_calloc(1, sizeof *s);
    if (!s) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    s->model = m;
    s->be = be;
    s->threads = threads;
    s->max_memory = opts ? opts->max_memory : 0;
    if (threads > 1) {
        /* The calling thread works too, so the pool has one thread fewer. */
        cs_status rc = cs_pool_new(threads - 1, &s->pool, err);
        if (rc) {
            cs_free(s);
            return rc;
        }
    }
    *out = s;
    return CS_OK;
}

cs_status cs_session_new(const cs_model_t *m, const cs_session_options *opts, cs_session_t **out,
                         cs_error *err)
{
    *out = NULL;
    cs_device device;
    const cs__backend *be;
    cs_status rc = cs_device_parse(opts ? opts->device : NULL, &device, err);
    if (rc || (rc = cs__backend_for(device, opts ? opts->precision : CS_PRECISION_FP32, &be, err)))
        return rc;
    return cs__session_new_on(m, opts, be, out, err);
}

void cs_session_free(cs_session_t *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_plans; i++) cs__plan_free(s->plans[i]);
    cs_pool_free(s->pool);
    cs_free(s);
}

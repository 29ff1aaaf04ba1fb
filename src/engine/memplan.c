/*
 * memplan.c - where a plan's bytes live: the session's memory bound, the memory plan, and
 * the values of a device session across the host/device boundary.
 *
 * The memory plan gives every step output (and every transfer's copy) an offset in one
 * allocation per side - the session backend's memory, and the host beside a device
 * backend - by a liveness-based first-fit (buffers of dead values are reused). The
 * boundary: see cs__plan_place_values().
 */
#include "engine/plan.h"

#include <stdlib.h>
#include <string.h>

/* --- the memory bound ------------------------------------------------------------------ */

bool cs__plan_evict_lru(cs_session_t *s, const plan *keep)
{
    int lru = -1;
    for (int i = 0; i < s->n_plans; i++)
        if (s->plans[i] != keep && (lru < 0 || s->plans[i]->last_used < s->plans[lru]->last_used))
            lru = i;
    if (lru < 0) return false;
    s->held -= s->plans[lru]->bytes;
    cs__plan_free(s->plans[lru]);
    s->plans[lru] = s->plans[--s->n_plans];
    return true;
}

cs_status cs__charge(cs_session_t *s, const plan *keep, size_t has, size_t need, cs_error *err)
{
    if (!s->max_memory) return CS_OK;
    size_t own = has > SIZE_MAX - need ? SIZE_MAX : has + need;
    size_t others = keep ? s->held - keep->bytes : s->held;
    while (own <= s->max_memory && others > s->max_memory - own && cs__plan_evict_lru(s, keep))
        others = keep ? s->held - keep->bytes : s->held;
    if (own <= s->max_memory && others <= s->max_memory - own) return CS_OK;
    return cs_error_set(err, CS_ERR_TOO_LARGE,
                        "the plan for these input shapes needs at least %zu bytes, over the "
                        "session memory limit of %zu bytes",
                        own, s->max_memory);
}

/* --- the memory plan ------------------------------------------------------------------- */

typedef struct buffer {
    int first, last; /* steps during which the buffer is live, inclusive */
    size_t size, offset;
    cs_tensor *t;
} buffer;

static int by_size_desc(const void *a, const void *b)
{
    const buffer *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

/* Places buffers largest first, each at the lowest offset that does not overlap a placed
 * buffer whose lifetime intersects its own. O(buffers^2) at plan time; the result is
 * usually close to the peak of live bytes. */
static size_t assign_offsets(buffer *b, int n)
{
    qsort(b, (size_t)n, sizeof *b, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                if (b[j].last < b[i].first || b[i].last < b[j].first) continue;
                if (off < b[j].offset + b[j].size && b[j].offset < off + b[i].size) {
                    off = (b[j].offset + b[j].size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
                    moved = true;
                }
            }
        }
        b[i].offset = off;
        if (off + b[i].size > total) total = off + b[i].size;
    }
    return total;
}

static bool same_device(cs_device a, cs_device b)
{
    return a.kind == b.kind && a.id == b.id;
}

/* Buffers of one side (on the session's backend, or on the host beside it) get offsets in
 * one allocation there; *out is NULL when they need no bytes. */
static cs_status place_buffers(plan *p, buffer *b, int n, const cs__backend *be, void **out,
                               cs_error *err)
{
    size_t size = assign_offsets(b, n);
    *out = size ? be->alloc(be, size) : NULL;
    if (size && !*out)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory: the plan needs %zu bytes on %s",
                            size, be->name);
    for (int i = 0; i < n; i++) b[i].t->data = (char *)*out + b[i].offset;
    p->mem_size += size;
    return CS_OK;
}

/* The largest scratch the steps on be ask for, aligned. */
static size_t scratch_on(const plan *p, const cs__backend *be)
{
    size_t most = 0;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].be == be && p->steps[i].scratch > most) most = p->steps[i].scratch;
    return (most + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* last_use[root[v]] is the last step reading v (n_steps for graph outputs); root[v] is
 * the value whose buffer v lives in: itself, or for a fused activation's output the Conv
 * output it was mapped onto, whose buffer must live as long as either. Every step output
 * and every transfer's copy is a buffer; those in the session backend's memory share one
 * allocation there, those on the host beside a device backend another. */
cs_status cs__plan_memory(cs_session_t *s, plan *p, const int *last_use, cs_error *err)
{
    int n_buf = p->n_tail;
    for (int i = 0; i < p->n_steps; i++) n_buf += p->steps[i].node->n_out + p->steps[i].n_copies;
    buffer *bufs = cs_malloc((size_t)(n_buf + 1) * sizeof *bufs);
    if (!bufs) return cs_error_set(err, CS_ERR_NOMEM, "out of memory while planning");
    n_buf = 0;
    for (int i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        for (int k = 0; k < st->node->n_out; k++) {
            int last = last_use[st->node->out[k]] < i ? i : last_use[st->node->out[k]];
            bufs[n_buf++] = (buffer){i, last, cs__tensor_bytes(&st->out[k]), 0, &st->out[k]};
        }
        for (int c = 0; c < st->n_copies; c++) {
            const transfer *t = &st->copies[c];
            int last = last_use[t->value] < i ? i : last_use[t->value];
            bufs[n_buf++] = (buffer){i, last, cs__tensor_bytes(t->to), 0, t->to};
        }
    }
    for (int c = 0; c < p->n_tail; c++)
        bufs[n_buf++] =
            (buffer){p->n_steps, p->n_steps, cs__tensor_bytes(p->tail[c].to), 0, p->tail[c].to};
    int on_be = 0; /* the session backend's buffers first, the host's after */
    for (int i = 0; i < n_buf; i++) {
        bufs[i].size = (bufs[i].size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
        if (same_device(bufs[i].t->device, s->be->device)) {
            buffer tmp = bufs[on_be];
            bufs[on_be++] = bufs[i];
            bufs[i] = tmp;
        }
    }
    size_t bytes = 0;
    for (int i = 0; i < n_buf; i++) bytes += bufs[i].size;
    p->scratch_size = scratch_on(p, s->be);
    p->host_scratch_size = s->be == &cs__cpu_backend ? 0 : scratch_on(p, &cs__cpu_backend);
    /* Charged at the sum of the buffers (a bound on what the offsets need), then trued. */
    cs_status rc =
        cs__charge(s, NULL, p->bytes, bytes + p->scratch_size + p->host_scratch_size, err);
    p->be = s->be;
    if (rc == CS_OK) rc = place_buffers(p, bufs, on_be, s->be, &p->mem, err);
    if (rc == CS_OK)
        rc = place_buffers(p, bufs + on_be, n_buf - on_be, &cs__cpu_backend, &p->host_mem, err);
    cs_free(bufs);
    if (rc) return rc;
    p->bytes += p->mem_size + p->scratch_size + p->host_scratch_size;
    if (p->scratch_size && !(p->scratch = s->be->alloc(s->be, p->scratch_size)))
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory: scratch of %zu bytes",
                            p->scratch_size);
    if (p->host_scratch_size &&
        !(p->host_scratch = cs__cpu_backend.alloc(&cs__cpu_backend, p->host_scratch_size)))
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory: scratch of %zu bytes",
                            p->host_scratch_size);
    return CS_OK;
}

/* Where the bytes of each value's last reader are: last_use[v] for v a buffer root. */
int *cs__plan_last_uses(plan *p, const cs_model_t *m, const int *root)
{
    int *last_use = cs_arena_alloc(&p->arena, (size_t)(m->n_values + 1) * sizeof *last_use, 8);
    if (!last_use) return NULL;
    for (int v = 0; v < m->n_values; v++) last_use[v] = -1;
    for (int i = 0; i < p->n_steps; i++) {
        const cs__node *n = p->steps[i].node;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) last_use[root[n->in[k]]] = i;
    }
    for (int j = 0; j < m->n_outputs; j++) last_use[root[m->outputs[j]]] = p->n_steps;
    return last_use;
}

/* --- values across the host/device boundary -------------------------------------------- */

static bool on_host(const cs_tensor *t)
{
    return t->device.kind == CS_DEVICE_CPU;
}

/* Puts bytes of host memory into be's memory for as long as the plan lives: a known
 * value's copy (c) or a step's packed weights. */
static cs_status upload(cs_session_t *s, plan *p, const cs__backend *be, const void *host,
                        size_t bytes, void **out, cs_error *err)
{
    cs_status rc = cs__charge(s, NULL, p->bytes, bytes, err);
    if (rc) return rc;
    void *d = be->alloc(be, bytes ? bytes : 1);
    if (!d)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory: %zu bytes on %s", bytes, be->name);
    p->be = be; /* the backend plan_free releases uploads on, should planning fail before the memory
                   plan */
    p->uploads[p->n_uploads++] = d;
    p->bytes += bytes;
    *out = d;
    return bytes ? be->copy_in(be, d, host, bytes, err) : CS_OK;
}

static size_t data_bytes(const cs_tensor *t)
{
    return (size_t)cs_tensor_numel(t) * cs_dtype_size(t->dtype);
}

/* A session on a device backend: leaves each step's inputs where its backend reads them
 * (a device kernel's host_inputs on the host, the rest in device memory, a CPU step's on
 * the host). A value made on the other side gets one copy there, by a transfer before its
 * first reader there; a known value is uploaded once, now; graph outputs in device memory
 * are copied into host memory after the last step. Runs after prepacking (which reads
 * known inputs on the host) and before the memory plan (which places the copies). */
cs_status cs__plan_place_values(cs_session_t *s, plan *p, const cs_model_t *m, const int *root,
                                const bool *known, cs_error *err)
{
    const cs__backend *dev = s->be;
    cs_tensor **other = cs_arena_zalloc(&p->arena, ((size_t)m->n_values + 1) * sizeof *other, 8);
    p->uploads = cs_arena_zalloc(
        &p->arena, ((size_t)m->n_values + (size_t)p->n_steps + 1) * sizeof *p->uploads, 8);
    p->tail = cs_arena_zalloc(&p->arena, ((size_t)m->n_outputs + 1) * sizeof *p->tail, 8);
    if (!other || !p->uploads || !p->tail) goto nomem;
    cs_status rc;
    for (int i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        const cs__node *n = st->node;
        bool on_dev = st->be == dev;
        st->copies = cs_arena_zalloc(&p->arena, ((size_t)n->n_in + 1) * sizeof *st->copies, 8);
        if (!st->copies) goto nomem;
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0 || !st->in[k]) continue;
            bool want_host = !on_dev || (k < 32 && (st->k->host_inputs >> k & 1u));
            if (on_host(st->in[k]) == want_host) continue;
            int r = root[n->in[k]];
            if (!other[r]) {
                cs_tensor *c = cs_arena_alloc(&p->arena, sizeof *c, 8);
                if (!c) goto nomem;
                *c = *st->in[k];
                c->data = NULL;
                c->device = want_host ? (cs_device){CS_DEVICE_CPU, 0} : dev->device;
                if (known[r] && !want_host) {
                    if ((rc = upload(s, p, dev, st->in[k]->data, data_bytes(c), &c->data, err)))
                        return rc;
                } else {
                    st->copies[st->n_copies++] = (transfer){st->in[k], c, r};
                }
                other[r] = c;
            }
            st->in[k] = other[r];
        }
        if (on_dev && st->packed && !(st->k->flags & CS__K_PACKED_HOST)) {
            void *d = NULL;
            if ((rc = upload(s, p, dev, st->packed, st->packed_size, &d, err))) return rc;
            st->packed = d;
        }
    }
    for (int j = 0; j < m->n_outputs; j++) {
        int v = m->outputs[j], r = root[v];
        if (on_host(p->vals[v])) continue;
        if (!other[r]) {
            cs_tensor *c = cs_arena_alloc(&p->arena, sizeof *c, 8);
            if (!c) goto nomem;
            *c = *p->vals[v];
            c->data = NULL;
            c->device = (cs_device){CS_DEVICE_CPU, 0};
            p->tail[p->n_tail++] = (transfer){p->vals[v], c, r};
            other[r] = c;
        }
        p->vals[v] = other[r];
    }
    return CS_OK;
nomem:
    return cs_error_set(err, CS_ERR_NOMEM, "out of memory while planning");
}

cs_status cs__run_copies(const cs__backend *be, const transfer *c, int n, cs_error *err)
{
    for (int i = 0; i < n; i++) {
        size_t bytes = data_bytes(c[i].to);
        if (!bytes) continue;
        cs_status rc = on_host(c[i].to)
                           ? be->copy_out(be, c[i].to->data, c[i].from->data, bytes, err)
                           : be->copy_in(be, c[i].to->data, c[i].from->data, bytes, err);
        if (rc) return rc;
    }
    return CS_OK;
}

void cs__plan_free(plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++) {
        const step *st = &p->steps[i];
        if (st->packed && st->k->release_packed && (st->k->flags & CS__K_PACKED_HOST))
            st->k->release_packed(st->be, (void *)st->packed);
    }
    if (p->mem) p->be->release(p->be, p->mem);
    if (p->scratch) p->be->release(p->be, p->scratch);
    for (int i = 0; i < p->n_uploads; i++) p->be->release(p->be, p->uploads[i]);
    if (p->host_mem) cs__cpu_backend.release(&cs__cpu_backend, p->host_mem);
    if (p->host_scratch) cs__cpu_backend.release(&cs__cpu_backend, p->host_scratch);
    cs_arena_free(&p->run_arena);
    cs_arena_free(&p->arena);
    cs_free(p);
}

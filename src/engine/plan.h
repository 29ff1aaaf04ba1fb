/*
 * plan.h - a session's plans, shared by the planner and executor (session.c) and the
 * memory plan (memplan.c) (internal).
 */
#ifndef CS_ENGINE_PLAN_H
#define CS_ENGINE_PLAN_H

#include "engine/backend.h"

#include "base/alloc.h"
#include "base/pool.h"

#define MAX_PLANS 8
#define ALIGN     64

/* A copy of a value across the host/device boundary, run before the step that reads it
 * there (or after the last step, for a graph output left in device memory). */
typedef struct transfer {
    const cs_tensor *from; /* where the value was made, or a fed input's slot */
    cs_tensor *to;         /* its copy on the other side, a buffer of the memory plan */
    int value;             /* the value whose buffer it copies: it lives as long as its uses */
} transfer;

typedef struct step {
    const cs__node *node;
    const cs__kernel *k;   /* the backend's kernel for it, chosen once its input types are known */
    const cs__backend *be; /* where it runs: the session's, or the CPU's for a node it lacks */
    const cs_tensor **in;  /* n_in pointers into the plan's value table (NULL = absent) */
    cs_tensor *out;        /* n_out tensors: the canonical storage of the output values */
    size_t scratch;        /* static plans: bytes of scratch this step needs */
    cs__act act;           /* activation fused into this step, CS__ACT_NONE when none */
    const void *packed;    /* static plans: the kernel's prepack() output, or NULL */
    size_t packed_size;
    transfer *copies; /* run before the step: its inputs brought to its side */
    int n_copies;
} step;

typedef struct plan {
    /* signature */
    uint8_t *fed;       /* per model input: 1 when the caller feeds it */
    cs_tensor *sig;     /* per model input: dtype and shape (data unused) */
    uint64_t last_used; /* for LRU eviction */

    cs_arena arena;         /* everything below, and folded constants */
    const cs_tensor **vals; /* per value: its tensor (input slot, initializer, folded, step out) */
    cs_tensor *inputs;      /* per model input: the slot a run binds the caller's tensor into */
    step *steps;
    int n_steps;
    bool dynamic;

    size_t bytes; /* charged to the session: folded values, packed weights, mem, scratch */
    void *mem;    /* static plans: the activation arena and the scratch area */
    size_t mem_size;
    void *scratch;
    size_t scratch_size;
    cs_arena run_arena;    /* dynamic plans: per-run buffers */
    const cs__backend *be; /* the session's: where mem and scratch were allocated */
    /* A session on a device backend: the host side of the plan (CPU steps' buffers and
     * scratch, host copies of values), constants and packed weights uploaded once, and the
     * copies of graph outputs into host memory after the last step. */
    void *host_mem, *host_scratch;
    size_t host_scratch_size;
    void **uploads;
    int n_uploads;
    transfer *tail;
    int n_tail;
} plan;

struct cs_session {
    const cs_model_t *model;
    const cs__backend *be;
    int threads;
    cs_pool *pool;
    plan *plans[MAX_PLANS];
    int n_plans;
    size_t max_memory; /* 0 = no bound */
    size_t held;       /* bytes the cached plans hold (their `bytes`, summed) */
    uint64_t clock;
    cs_node_timer_fn timer; /* NULL unless a profiler asked for per-node times */
    void *timer_ctx;
    bool reference; /* plans without fusion or prepacking (cs__session_set_reference) */
};

static inline size_t cs__tensor_bytes(const cs_tensor *t)
{
    size_t b = (size_t)cs_tensor_numel(t) * cs_dtype_size(t->dtype);
    return b ? b : 1;
}

/* Drops the least recently used cached plan other than keep; false when there is none. */
bool cs__plan_evict_lru(cs_session_t *s, const plan *keep);
/* Before need more bytes are allocated for plan p, which holds `has` already (charged to
 * s->held when p is cached, the caller's `keep`; NULL while p is being built): drops other
 * plans until the session's total fits under max_memory, else fails with CS_ERR_TOO_LARGE
 * and nothing is allocated. The caller adds need to its count once allocated. */
cs_status cs__charge(cs_session_t *s, const plan *keep, size_t has, size_t need, cs_error *err);
/* last_use[v], for each buffer root v: the last step reading it, n_steps for outputs. */
int *cs__plan_last_uses(plan *p, const cs_model_t *m, const int *root);
/* The steps' values across the host/device boundary of a device session (memplan.c). */
cs_status cs__plan_place_values(cs_session_t *s, plan *p, const cs_model_t *m, const int *root,
                                const bool *known, cs_error *err);
/* Offsets and memory for every buffer of a static plan, and its scratch. */
cs_status cs__plan_memory(cs_session_t *s, plan *p, const int *last_use, cs_error *err);
/* Runs transfers between host memory and be's. */
cs_status cs__run_copies(const cs__backend *be, const transfer *c, int n, cs_error *err);
void cs__plan_free(plan *p);

#endif

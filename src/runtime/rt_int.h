/*
 * rt_int.h - the runtime's private structures, shared by runtime.c (the registry of loaded
 * versions and their lifetimes), batcher.c (queue, batch formation, workers) and
 * model_config.c (configuration checks against the model).
 *
 * Locking: the runtime's `lock` guards its list of versions and the thread budget. Each
 * version's `lock` guards its queue, its free list of request slots, its stats, its instance
 * table (every field of an instance but the session and buffers its worker owns) and the
 * closing/stopping flags; workers hold it only to pick a batch and to return slots, never
 * while the engine runs or while a `done` callback runs. The two locks are never held
 * together.
 *
 * Instances: the party that takes an instance out of the table joins its worker and frees it
 * (remove, a failed add, or stop); `removing` marks one that a remove or a failed add owns.
 * A worker returns its engine threads to the budget itself when it exits, and the version
 * counts live workers (`live`) so that stop can wait for every one, owned or not.
 */
#ifndef CS_RUNTIME_RT_INT_H
#define CS_RUNTIME_RT_INT_H

#include "runtime/runtime.h"

#include "base/vec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct cs_metric;

/* Instances one version may list at once, FAILED ones included (and the bound on
 * cs_model_config.instances). */
#define CS__RT_MAX_INSTANCES 256

/* One request's bookkeeping: a slot from the version's preallocated table, so that a
 * submit never allocates. While queued it sits in a list sorted by (priority, arrival). */
typedef struct cs__rt_req {
    struct cs__rt_req *prev, *next;
    const cs_tensor **in; /* per model input, in model order; NULL = not fed */
    void (*done)(void *ud, cs_status rc, const char *msg, int n_outputs, const cs_tensor *outputs);
    void *ud;
    cs_infer_timing *timing; /* NULL: nobody asked */
    int prio;                /* effective priority: 0 is mapped to INT_MAX (the lowest) */
    int64_t rows;            /* the batch dimension (1 when the version does not batch) */
    uint64_t enqueued_ns, deadline_ns;
    bool retried; /* it ran once on an instance that broke: the next failure is answered */
    bool requeue; /* set by serve_batch: back into the queue rather than answered */
} cs__rt_req;

/* One engine session and the worker thread that drives it, with the buffers a batch is
 * concatenated into and the output views handed to each request. The worker creates and
 * frees the session itself, after pinning itself, so that the session's pool threads
 * inherit its CPU affinity. */
typedef struct cs__rt_instance {
    struct cs_rt_model *model;
    int id;
    cs_rt_instance_state state; /* version's lock, as everything down to `session` */
    uint64_t since_ns;          /* wall clock of the last change of state */
    bool removing;              /* a remove (or a failed add) joins and frees it */
    bool was_ready;             /* reached READY: a later failure is reported */
    int threads;                /* engine threads: the worker and its session's pool */
    int n_cpus;
    int cpus[CS_RT_MAX_CPUS];
    char device[CS_RT_DEVICE_MAX]; /* where its session runs: "cpu", "cuda:0" */
    size_t max_memory;             /* its session's bound; 0 = the runtime's */
    int running;                   /* requests in the batch it runs now */
    uint64_t executions;           /* successful engine runs */
    cs_status failure;             /* FAILED: why, with reason */
    char reason[CS_ERROR_MSG_MAX];
    cs_session_t *session;
    pthread_t thread;
    bool busy;          /* running a batch, on its worker or inline (version's lock) */
    cs__rt_req **batch; /* max(1, max_batch_size) requests */
    void **buf;         /* per model input: concatenation buffer */
    size_t *buf_cap;    /* bytes */
    cs_tensor *in;      /* per model input: what the session is given */
    const char **names; /* names of the fed inputs, parallel to `in` */
    cs_tensor *out;     /* per model output: the session's results */
    cs_tensor *view;    /* per model output: one request's rows */
} cs__rt_instance;

/* A block of request slots: the queue's at load, then max(1, max_batch_size) more for each
 * instance the version has held at once (the most it has had, not the number now). */
typedef struct cs__rt_slots {
    struct cs__rt_slots *next;
    cs__rt_req *req;
    const cs_tensor **in; /* per slot, n_in pointers */
} cs__rt_slots;

/* How a worker runs its session: cs_session_run, which a test may wrap to make the engine fail
 * as a device would. */
typedef cs_status (*cs__rt_run_fn)(cs_session_t *s, int n_inputs, const char *const *names,
                                   const cs_tensor *inputs, int n_outputs, cs_tensor *outputs,
                                   cs_error *err);

/* The metric series of one version; all NULL without a registry. */
typedef struct cs__rt_series {
    struct cs_metric *request, *queue, *compute, *batch, *depth, *inflight, *load;
} cs__rt_series;

struct cs_rt_model {
    struct cs_runtime *rt; /* valid while the version is in the registry */
    char *name, *version;
    cs_model_t *engine;
    cs_model_config cfg; /* normalised: no zero defaults left */
    int n_in, n_out;
    const char **in_names; /* the engine's input names, in model order */
    atomic_int refs;       /* the registry holds one; every acquire one more */
    bool loading;          /* in the registry but not serving yet (runtime's lock) */

    pthread_mutex_t lock;
    pthread_cond_t work; /* workers: a request arrived, or stop */
    pthread_cond_t idle; /* drain: queue and workers are empty */
    cs__rt_req *head, *tail;
    pthread_cond_t changed; /* an instance changed state, a worker or the reaper exited */
    cs__rt_req *free_slots;
    cs__rt_slots *slots;         /* the blocks behind free_slots */
    int slot_insts;              /* instances the blocks provide for */
    atomic_int depth, in_flight; /* written under lock, read anywhere */
    atomic_bool closing;         /* submit refuses (unload, runtime free); set under lock */
    bool stopping;               /* workers exit once the queue is empty */
    bool dropping;               /* workers answer queued requests with CS_ERR_SHUTDOWN */
    cs_rt_stats stats;
    cs_rt_batch_stats *batch_stats; /* cs_rt_model_batch_sizes entries, by rows */
    uint64_t last_compute_ns;       /* the last execution's engine time, for claim_inline */
    uint64_t inline_max_ns;         /* the runtime's, copied: m->rt goes at unload */
    cs_rt_failed_fn on_failed;      /* the runtime's, copied */
    void *on_failed_ud;
    cs__rt_run_fn run; /* the runtime's, copied */

    cs__rt_instance *inst[CS__RT_MAX_INSTANCES]; /* by age; FAILED ones stay until removed */
    int n_inst;
    int next_id;
    int ready;   /* instances READY */
    int live;    /* workers that have not finished exiting */
    int adding;  /* cs_rt_model_add_instance calls under way (an unload waits for them) */
    bool reaper; /* a reaper thread runs (no instance READY, requests queued) */
    int threads; /* engine threads this version holds against the budget */
    cs__rt_series metrics;
};

struct cs_runtime {
    pthread_mutex_t lock;
    cs_vec models; /* cs_rt_model *, in load order */
    int max_threads, threads_used;
    size_t max_session_memory; /* each session's bound (cs_rt_options); 0 = none */
    uint64_t inline_max_ns;    /* 0: never run on the caller (cs_rt_options.inline_max_us) */
    cs_rt_failed_fn on_failed;
    void *on_failed_ud;
    cs__rt_run_fn run; /* cs_session_run; tests may replace it before loading */
    atomic_bool draining;
    struct cs_metrics *metrics;
};

/* model_config.c: copies cfg (NULL = defaults) into out with the zero defaults filled in
 * and checks its bounds; the message names the field. */
cs_status cs__rt_config_normalize(const cs_model_config *cfg, cs_model_config *out, cs_error *err);
/* Checks that the model's inputs and outputs can be batched as cfg (normalised) asks; the
 * message names the tensor. */
cs_status cs__rt_config_check_model(const cs_model_config *cfg, const cs_model_t *m, cs_error *err);

/* batcher.c: allocates the queue's request slots and starts cfg.instances instances, whose
 * threads the caller has reserved (counted in m->threads and the runtime's budget). On
 * failure the caller stops and frees what was made with cs__rt_stop and cs__rt_batcher_free,
 * and returns what m->threads still holds. */
cs_status cs__rt_batcher_start(cs_rt_model *m, cs_error *err);
/* Starts one instance with `threads` engine threads (reserved by the caller as above; on
 * failure they are returned) pinned to cpus[0..n_cpus) when n_cpus > 0, and waits until its
 * session is ready. *id gets its id. */
cs_status cs__rt_instance_start(cs_rt_model *m, int threads, const cs_rt_instance_opts *o, int *id,
                                cs_error *err);
/* Refuses new requests and makes the workers exit once the queue is empty (drop: answer
 * what is still queued with CS_ERR_SHUTDOWN instead of running it); joins them, and answers
 * with CS_ERR_SHUTDOWN what no instance was left to serve. Blocks until the last running
 * request has been answered and every worker has exited. */
void cs__rt_stop(cs_rt_model *m, bool drop);
/* Frees the slots and what is left of the instances (after cs__rt_stop). */
void cs__rt_batcher_free(cs_rt_model *m);
/* runtime.c: moves n threads from the version back to the runtime's budget. */
void cs__rt_give_back(cs_rt_model *m, int n);
/* Waits (the version's lock) until the queue is empty and no request runs, or until the
 * monotonic deadline; returns the number of requests still pending. */
int cs__rt_wait_idle(cs_rt_model *m, uint64_t deadline_ns);

#endif

/*
 * runtime.h - serving models: instances, request queues and the dynamic batcher.
 *
 * The runtime owns the loaded model versions. Each version has a set of instances, each an
 * engine session driven by its own worker thread, and one priority queue in front of them.
 * A free worker takes the next batch from the queue, so work goes to whichever instance is
 * free first (least loaded). With max_batch_size > 0 the model's first dimension of every
 * input and output is the batch dimension: queued requests whose other dimensions and types
 * agree are concatenated along it (up to max_batch_size, waiting at most max_queue_delay_us
 * for more, preferring preferred_batch_sizes), run as one, and each request gets back exactly
 * its own rows.
 *
 * Batch formation: the seed is the highest-priority, oldest live request; later queued
 * requests join while their rows fit and every input has the seed's dtype and non-batch
 * dimensions. The batch runs at once when it holds max_batch_size rows, or when its
 * requests make exactly one of preferred_batch_sizes (the largest such size is taken; the
 * rest stay queued); otherwise it waits until the seed has been queued max_queue_delay_us.
 * At unload or shutdown a partial batch runs without waiting. Requests whose deadline has
 * passed are answered when a worker meets them in the queue and are never run.
 *
 * Priorities: 1 is the highest; 0 (the default) ranks below every explicit level; FIFO
 * within a level.
 *
 * The caller runs it: a version that does not batch, whose last execution took at most
 * cs_rt_options.inline_max_us (CS_RT_INLINE_MAX_US by default) of compute, runs a request on
 * the submitting thread when nothing is queued and a READY instance is idle. Handing a request to a
 * worker and back costs two thread wake-ups, several microseconds of CPU and far more of latency,
 * which is more than such a model's whole computation; a slow model never blocks its caller, since
 * its first request (run by a worker) shows it is slow.
 *
 * Metrics (when cs_rt_options.metrics is set), each with labels model and version:
 *   capstan_request_duration_seconds     histogram  submit to response (latency buckets)
 *   capstan_queue_duration_seconds       histogram  submit to the start of its batch
 *   capstan_compute_duration_seconds     histogram  engine time of the request's batch
 *   capstan_batch_size                   histogram  rows per execution (1,2,4,...,128)
 *   capstan_queue_depth                  gauge      requests waiting
 *   capstan_inflight_requests            gauge      requests running (worker or caller), unanswered
 *   capstan_model_load_duration_seconds  gauge      file to serving, for the last load
 * The duration histograms use cs_metrics_latency_buckets (100 us to 10 s) and count each
 * request once (expired and dropped requests count only in the request histogram).
 *
 * Instances: a load starts cfg.instances of them (0 is allowed: the version is read and
 * checked and serves nothing yet); cs_rt_model_add_instance and cs_rt_model_remove_instance
 * change the set while the version serves. An instance is STARTING until its session exists,
 * READY while it takes batches, DRAINING once removed (it takes no new batch and finishes the
 * one it runs), FAILED when the engine reported an error that leaves its session unusable
 * (CS_ERR_INTERNAL from a run): its request is answered with that error, its worker exits,
 * its threads go back to the budget, cs_rt_options.on_instance_failed is called, and the
 * others keep serving; a FAILED instance stays listed until it is removed. With no READY
 * instance (all removed, or none started) requests still queue up to max_queue_size and wait
 * until an instance is added, which is what scaling from zero relies on; meanwhile a request
 * whose deadline passes is answered CS_ERR_TIMEOUT at its deadline, and an unload answers the
 * rest CS_ERR_SHUTDOWN. Ids count from 1 per version and are never reused.
 *
 * Threads: the runtime never starts more engine threads than cs_rt_options.max_threads in
 * total (the threads of every instance that has not exited, summed over loaded versions); a
 * load or an add that would exceed it fails with CS_ERR_LIMIT.
 *
 * Lifetimes: cs_runtime_acquire returns a counted reference; a version that is unloaded
 * stops taking requests at once and is freed when its queue has drained and the last
 * reference is released.
 */
#ifndef CS_RUNTIME_RUNTIME_H
#define CS_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "capstan/engine.h"
#include "capstan/status.h"

struct cs_metrics;

typedef struct cs_runtime cs_runtime;
typedef struct cs_rt_model cs_rt_model;

#define CS_RT_MAX_PREFERRED 8

#define CS_RT_DEVICE_MAX 16 /* "cuda:NNN" and its terminator, with room */

typedef struct cs_model_config {
    int instances;               /* started at load, each a session and a worker; default 1 */
    int threads_per_instance;    /* engine threads per session; default 1 */
    int max_batch_size;          /* 0 = no batching (inputs are run as given) */
    int max_batch_requests;      /* requests one batch may hold, so one instance has at most
                                  * that many in flight (containerConcurrency); 0 = no limit */
    uint64_t max_queue_delay_us; /* how long a partial batch may wait for more requests */
    int preferred_batch_sizes[CS_RT_MAX_PREFERRED];
    int n_preferred;
    int max_queue_size; /* requests waiting; 0 = default 1024; full = CS_ERR_LIMIT */
    bool inline_only;   /* refuse external data: a content-addressed artifact (registry) */
    char device[CS_RT_DEVICE_MAX]; /* where sessions run: "" or "cpu" (default), "cuda[:N]" */
    cs_precision precision;        /* the arithmetic sessions may use; 0 = fp32 */
} cs_model_config;

/* Fills cfg with the defaults above. A zero in threads_per_instance or max_queue_size also
 * means its default; instances 0 means none (see the top). Bounds, checked at load:
 * instances 0..256,
 * threads_per_instance 1..256, max_batch_size 0..65536, max_queue_size up to 2^20,
 * max_queue_delay_us up to one minute, preferred sizes 1..max_batch_size. */
void cs_model_config_defaults(cs_model_config *cfg);

/* An instance of (model, version) failed (see the top): called once, on its worker thread
 * after its threads went back to the budget, with no lock held. It may call
 * cs_rt_model_add_instance (on a reference it holds) but not remove this instance or unload
 * the version: those wait for this thread. Strings are valid during the call. */
typedef void (*cs_rt_failed_fn)(void *ud, const char *model, const char *version, int id,
                                const char *reason);

typedef struct cs_rt_options {
    int max_threads;            /* total engine threads; 0 = number of cores */
    struct cs_metrics *metrics; /* optional: queue/compute histograms, batch sizes, gauges */
    int inline_max_us;          /* a fast request's bound (see the top); 0 = CS_RT_INLINE_MAX_US,
                                   -1 = every request goes to a worker */
    /* Each instance's session memory (cs_session_options.max_memory); 0 = no bound. A version
     * whose inputs are all static is planned as its instances start, so a plan over the
     * bound fails the load (CS_ERR_TOO_LARGE); otherwise a request whose shapes need a plan
     * over it fails with CS_ERR_TOO_LARGE and the instance keeps serving. */
    size_t max_session_memory;
    cs_rt_failed_fn on_instance_failed; /* optional */
    void *on_instance_failed_ud;
} cs_rt_options;

cs_status cs_runtime_new(const cs_rt_options *opts, cs_runtime **out, cs_error *err);
/* Stops every worker (after cs_runtime_drain, or dropping queued requests with
 * CS_ERR_SHUTDOWN) and frees everything. */
void cs_runtime_free(cs_runtime *rt);

/* Loads path as (name, version) and starts its instances. Returns when the version is
 * ready to serve. CS_ERR_EXISTS when that version is loaded (or loading) already,
 * CS_ERR_LIMIT over the thread budget, CS_ERR_INVALID for a bad cfg or, with
 * max_batch_size > 0, a model input or output without a dynamic first dimension (named in
 * the message), CS_ERR_SHUTDOWN after cs_runtime_drain; the engine's codes for the file.
 * cfg NULL = defaults. Names and versions are 1..255 characters. */
cs_status cs_runtime_load(cs_runtime *rt, const char *name, const char *version, const char *path,
                          const cs_model_config *cfg, cs_error *err);
/* Unloads one version, or every version of name when version is NULL. CS_ERR_NOT_FOUND when
 * nothing matched. Queued requests still complete: the version leaves the registry and
 * refuses new requests at once, and the call blocks until its queue is served and its
 * workers have stopped (so it must not be called from a `done` callback). */
cs_status cs_runtime_unload(cs_runtime *rt, const char *name, const char *version, cs_error *err);

/* A reference to (name, version); version NULL = the highest loaded version (compared as
 * integers when both are numeric, else as strings). NULL when not loaded. */
cs_rt_model *cs_runtime_acquire(cs_runtime *rt, const char *name, const char *version);
void cs_rt_model_release(cs_rt_model *m);

const char *cs_rt_model_name(const cs_rt_model *m);
const char *cs_rt_model_version(const cs_rt_model *m);
const cs_model_t *cs_rt_model_engine(const cs_rt_model *m); /* inputs, outputs, metadata */
/* The configuration the version was loaded with (cfg.instances is what the load started;
 * cs_rt_model_instances lists the instances now). */
const cs_model_config *cs_rt_model_config(const cs_rt_model *m);

/* --- instances (see the top) ------------------------------------------------------------- */

#define CS_RT_MAX_CPUS 256

typedef enum cs_rt_instance_state {
    CS_RT_INSTANCE_STARTING,
    CS_RT_INSTANCE_READY,
    CS_RT_INSTANCE_DRAINING,
    CS_RT_INSTANCE_FAILED,
} cs_rt_instance_state;

/* "Starting", "Ready", "Draining", "Failed". */
const char *cs_rt_instance_state_name(cs_rt_instance_state s);

typedef struct cs_rt_instance_opts {
    int threads;        /* engine threads (the worker included); 0 = cfg.threads_per_instance */
    const int *cpus;    /* CPUs the worker and its engine threads may run on; borrowed */
    int n_cpus;         /* 0 = not pinned; at most CS_RT_MAX_CPUS */
    const char *device; /* where its session runs ("cuda:1"); NULL = the version's cfg.device */
    size_t max_memory;  /* its session's memory bound (a GPU claim's); 0 = the runtime's */
} cs_rt_instance_opts;

/* Starts one more instance (o NULL = the version's defaults) and returns once its session is
 * ready and its worker takes batches; *id_out (when not NULL) gets its id. CS_ERR_LIMIT over
 * the thread budget (the message says how many are in use) or with 256 instances listed
 * already, CS_ERR_INVALID for bad options (named) or CPUs the process may not use,
 * CS_ERR_SHUTDOWN when the version is being unloaded or the runtime drains. Blocks for the
 * session's start (no lock held meanwhile); must not race cs_runtime_free. */
cs_status cs_rt_model_add_instance(cs_rt_model *m, const cs_rt_instance_opts *o, int *id_out,
                                   cs_error *err);

/* Removes instance id: it takes no new batch from now on (DRAINING) while the others keep
 * serving the queue, and the call returns once the batch it runs has been answered, its
 * worker has exited and its threads are back in the budget. A FAILED instance is only
 * forgotten. Removing the last instance is allowed (see the top). CS_ERR_NOT_FOUND for an id
 * not listed or being removed already. Must not be called from a `done` callback. */
cs_status cs_rt_model_remove_instance(cs_rt_model *m, int id, cs_error *err);

typedef struct cs_rt_instance_info {
    int id;
    cs_rt_instance_state state;
    uint64_t since_ns;   /* wall clock (ns since the epoch) of the last change of state */
    int threads;         /* engine threads, the worker included */
    int running;         /* requests in the batch it runs now */
    uint64_t executions; /* successful engine runs */
    int n_cpus;          /* 0 = not pinned */
    int cpus[CS_RT_MAX_CPUS];
    char device[CS_RT_DEVICE_MAX]; /* where its session runs: "cpu", "cuda:0" */
    char reason[CS_ERROR_MSG_MAX]; /* FAILED: the engine's message; else "" */
} cs_rt_instance_info;

/* Copies up to max instances, oldest first, into out and returns how many the version lists
 * (which may be more than max). O(instances) under the version's lock. */
int cs_rt_model_instances(const cs_rt_model *m, cs_rt_instance_info *out, int max);

/* A count of requests (or executions) and their summed duration. */
typedef struct cs_rt_duration {
    uint64_t count, ns;
} cs_rt_duration;

/* Triton's statistics extension, kept per version and updated before a request's `done`
 * runs (so an answer's client already sees it counted). Per request: queue (arrival to the
 * start of its execution), compute_input (concatenating the batch's inputs),
 * compute_infer (the engine run), compute_output (checking and splitting the outputs);
 * each is the whole batch's time for every request in it, as Triton counts. success and
 * fail: arrival to the answer being ready; fail includes inputs refused after arrival,
 * expired and dropped requests. There is no response cache, so the cache fields stay 0. */
typedef struct cs_rt_stats {
    uint64_t inference_count;   /* rows (the batch dimension) of successful requests */
    uint64_t execution_count;   /* successful engine runs (a batch counts once) */
    uint64_t last_inference_ms; /* wall clock, ms since the epoch; 0 = never */
    cs_rt_duration success, fail, queue, compute_input, compute_infer, compute_output;
    cs_rt_duration cache_hit, cache_miss;
} cs_rt_stats;

/* Successful executions of one batch size (rows): count and summed time of each phase. */
typedef struct cs_rt_batch_stats {
    cs_rt_duration compute_input, compute_infer, compute_output;
} cs_rt_batch_stats;

/* Copies the version's statistics (takes its lock; O(1)). */
void cs_rt_model_stats(const cs_rt_model *m, cs_rt_stats *out);
/* The number of batch sizes the version keeps: max(1, max_batch_size) + 1 (index 0 unused). */
int cs_rt_model_batch_sizes(const cs_rt_model *m);
/* Copies per-batch-size statistics into out[0..n) (out[b] = batch size b; zeros for sizes
 * never run), n at most cs_rt_model_batch_sizes. O(n) under the version's lock. */
void cs_rt_model_batch_stats(const cs_rt_model *m, cs_rt_batch_stats *out, int n);

/* Every loaded version, for repository listings: calls fn for each (under the runtime's
 * lock: fn must not call back into the runtime). */
void cs_runtime_foreach(cs_runtime *rt, void (*fn)(void *ud, const cs_rt_model *m), void *ud);

/* Requests of a non-batching version run on the caller's thread while its last execution
 * took at most this (see the top of this file). */
#define CS_RT_INLINE_MAX_US 50

/* When one request waited and ran, in cs_now_ns time, for its trace's spans. The runtime fills
 * it just before `done` runs; a request answered without running (expired, dropped) gets
 * queued_ns only, the rest 0. */
typedef struct cs_infer_timing {
    uint64_t queued_ns;                    /* submitted */
    uint64_t start_ns;                     /* its batch began: inputs being concatenated */
    uint64_t infer_start_ns, infer_end_ns; /* the engine run */
    uint64_t end_ns;                       /* outputs checked; `done` runs next */
    int64_t batch_rows;                    /* rows of the whole batch it ran in */
    int instance;                          /* the id of the instance that ran it */
} cs_infer_timing;

/* One inference. Inputs are borrowed until `done` has been called. */
typedef struct cs_infer_request {
    int n_inputs;
    const char *const *input_names;
    const cs_tensor *inputs;
    int priority;         /* 0 = default; 1 is the highest, larger numbers are lower */
    uint64_t deadline_ns; /* absolute, in cs_now_ns time; 0 = none. Expired requests are
                             answered with CS_ERR_TIMEOUT and never run */
    /* Called exactly once, on a worker thread or, for a request run inline (see above),
     * on the submitting thread before cs_rt_model_submit returns, with every model output
     * (rows of this request only). outputs point into runtime memory valid only during the
     * call; msg is the error message when rc != CS_OK (outputs are then NULL). */
    void (*done)(void *ud, cs_status rc, const char *msg, int n_outputs, const cs_tensor *outputs);
    void *ud;
    cs_infer_timing *timing; /* optional (borrowed until `done`): filled before `done` runs */
} cs_infer_request;

/* Validates req against the model (names, types, shapes; the message names the input) and
 * queues it. On a non-OK return `done` is never called: CS_ERR_INVALID for bad inputs,
 * CS_ERR_LIMIT when the queue is full, CS_ERR_TIMEOUT when the deadline has passed already,
 * CS_ERR_SHUTDOWN when the runtime is draining or the version is being unloaded. */
cs_status cs_rt_model_submit(cs_rt_model *m, const cs_infer_request *req, cs_error *err);

/* Requests waiting, and requests running (on a worker or inline) and not yet answered, for gauges
 * and readiness. Lock-free reads. */
int cs_rt_model_queue_depth(const cs_rt_model *m);
/* The version's capstan_request_duration_seconds series (submit to answer), for a canary's
 * analysis (cs_metric_buckets); NULL without cs_rt_options.metrics. */
const struct cs_metric *cs_rt_model_latency(const cs_rt_model *m);
int cs_rt_model_in_flight(const cs_rt_model *m);
/* Whether a request submitted now would find room in the queue (a racy hint, lock-free: the
 * submit decides), so that a server can refuse a request before reading its body. */
bool cs_rt_model_has_room(const cs_rt_model *m);

/* Refuses new requests from now on and waits until every queued and running request has
 * completed, or until timeout_ns passes (then returns CS_ERR_LIMIT). */
cs_status cs_runtime_drain(cs_runtime *rt, uint64_t timeout_ns, cs_error *err);

#endif

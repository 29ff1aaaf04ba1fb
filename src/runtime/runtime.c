/*
 * runtime.c - the registry of loaded model versions: load and unload, counted references,
 * listing, drain, and the engine-thread budget shared by every version.
 *
 * The runtime's lock guards a short list of versions (linear scans: a server holds tens of
 * versions, not thousands) and the thread budget; it is never held while a model loads,
 * while workers are joined, or together with a version's own lock. A version enters the
 * list as `loading` (so a second load of the same name and version fails at once with
 * CS_ERR_EXISTS and the budget is reserved), becomes visible to acquire when its workers
 * run, and leaves the list the moment it is unloaded. The registry holds one reference;
 * memory is freed when the last reference goes, on whichever thread releases it.
 *
 * The budget counts threads per version (m->threads, under the version's lock) and in total
 * (under the runtime's lock); the two move together, one lock after the other. A load reserves
 * all its instances' threads at once, an add one instance's; an exiting worker returns its own
 * (batcher.c), and what a failed load never started is returned here.
 */
#define _GNU_SOURCE /* CPU_SETSIZE */
#include "runtime/rt_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/metrics.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAME 256

cs_status cs_runtime_new(const cs_rt_options *opts, cs_runtime **out, cs_error *err)
{
    *out = NULL;
    int max_threads = opts ? opts->max_threads : 0;
    if (max_threads < 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "max_threads must be 0 (one per core) or more, "
                            "not %d",
                            max_threads);
    int inline_max_us = opts ? opts->inline_max_us : 0;
    if (inline_max_us < -1)
        return cs_error_set(err, CS_ERR_INVALID,
                            "inline_max_us must be -1 (never), 0 (the default) or more, not %d",
                            inline_max_us);
    if (max_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        max_threads = n > 0 ? (int)n : 1;
    }
    cs_runtime *rt = cs_calloc(1, sizeof *rt);
    if (!rt) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&rt->lock, NULL);
    cs_vec_init(&rt->models, sizeof(cs_rt_model *));
    rt->max_threads = max_threads;
    rt->max_session_memory = opts ? opts->max_session_memory : 0;
    rt->metrics = opts ? opts->metrics : NULL;
    rt->on_failed = opts ? opts->on_instance_failed : NULL;
    rt->on_failed_ud = opts ? opts->on_instance_failed_ud : NULL;
    rt->run = cs_session_run;
    rt->inline_max_ns = inline_max_us < 0    ? 0
                        : inline_max_us == 0 ? (uint64_t)CS_RT_INLINE_MAX_US * 1000
                                             : (uint64_t)inline_max_us * 1000;
    atomic_init(&rt->draining, false);
    *out = rt;
    return CS_OK;
}

static cs_rt_model *model_at(const cs_runtime *rt, size_t i)
{
    return *(cs_rt_model **)cs_vec_at(&rt->models, i);
}

/* Runtime's lock held. */
static cs_rt_model *find(const cs_runtime *rt, const char *name, const char *version)
{
    for (size_t i = 0; i < rt->models.len; i++) {
        cs_rt_model *m = model_at(rt, i);
        if (!strcmp(m->name, name) && !strcmp(m->version, version)) return m;
    }
    return NULL;
}

/* Runtime's lock held. */
static void forget(cs_runtime *rt, const cs_rt_model *m)
{
    for (size_t i = 0; i < rt->models.len; i++) {
        if (model_at(rt, i) != m) continue;
        char *base = rt->models.data;
        memmove(base + i * sizeof m, base + (i + 1) * sizeof m,
                (rt->models.len - i - 1) * sizeof m);
        rt->models.len--;
        return;
    }
}

static void model_destroy(cs_rt_model *m)
{
    cs__rt_batcher_free(m);
    cs_model_free(m->engine);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->work);
    pthread_cond_destroy(&m->idle);
    pthread_cond_destroy(&m->changed);
    cs_free(m->in_names);
    cs_free(m->name);
    cs_free(m->version);
    cs_free(m);
}

void cs_rt_model_release(cs_rt_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) model_destroy(m);
}

static cs_rt_model *model_new(cs_runtime *rt, const char *name, const char *version)
{
    cs_rt_model *m = cs_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->rt = rt;
    m->inline_max_ns = rt->inline_max_ns;
    m->on_failed = rt->on_failed;
    m->on_failed_ud = rt->on_failed_ud;
    m->run = rt->run;
    m->name = cs_strdup(name);
    m->version = cs_strdup(version);
    atomic_init(&m->refs, 1);
    atomic_init(&m->depth, 0);
    atomic_init(&m->in_flight, 0);
    m->loading = true;
    /* Workers wait with deadlines taken from cs_now_ns, a CLOCK_MONOTONIC reading. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->work, &attr);
    pthread_cond_init(&m->idle, &attr);
    pthread_cond_init(&m->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (!m->name || !m->version) {
        model_destroy(m);
        return NULL;
    }
    return m;
}

/* Looks up the version's metric series once, so that workers only observe and set. */
static void bind_metrics(cs_rt_model *m, cs_metrics *r)
{
    static const char *const labels[] = {"model", "version", NULL};
    static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128};
    const char *values[] = {m->name, m->version};
    struct {
        cs_metric **slot;
        cs_metric_type type;
        const char *name, *help;
        const double *buckets;
        int n_buckets;
    } table[] = {
        {&m->metrics.request, CS_METRIC_HISTOGRAM, "capstan_request_duration_seconds",
         "Time from submit to response, queue and compute included.", NULL, 0},
        {&m->metrics.queue, CS_METRIC_HISTOGRAM, "capstan_queue_duration_seconds",
         "Time requests waited in the queue before their batch ran.", NULL, 0},
        {&m->metrics.compute, CS_METRIC_HISTOGRAM, "capstan_compute_duration_seconds",
         "Engine time of the batch each request ran in.", NULL, 0},
        {&m->metrics.batch, CS_METRIC_HISTOGRAM, "capstan_batch_size", "Rows per engine execution.",
         batch_buckets, 8},
        {&m->metrics.depth, CS_METRIC_GAUGE, "capstan_queue_depth",
         "Requests waiting in the queue.", NULL, 0},
        {&m->metrics.inflight, CS_METRIC_GAUGE, "capstan_inflight_requests",
         "Requests being run (by a worker or inline) and not answered yet.", NULL, 0},
        {&m->metrics.load, CS_METRIC_GAUGE, "capstan_model_load_duration_seconds",
         "Time the last load of this version took, file to serving.", NULL, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        cs_metric_family *f = cs_metrics_family(r, table[i].type, table[i].name, table[i].help,
                                                labels, table[i].buckets, table[i].n_buckets);
        *table[i].slot = f ? cs_metric_get(f, values) : NULL;
    }
}

void cs__rt_give_back(cs_rt_model *m, int n)
{
    pthread_mutex_lock(&m->lock);
    m->threads -= n;
    cs_runtime *rt = m->rt;
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_lock(&rt->lock);
    rt->threads_used -= n;
    pthread_mutex_unlock(&rt->lock);
}

/* After cs__rt_stop: whatever the version still holds is threads no worker took. */
static void give_back_rest(cs_rt_model *m)
{
    pthread_mutex_lock(&m->lock);
    int n = m->threads;
    pthread_mutex_unlock(&m->lock);
    if (n) cs__rt_give_back(m, n);
}

/* Everything a load does after the version holds its place in the registry. */
static cs_status start_version(cs_rt_model *m, const char *path, cs_error *err)
{
    cs_status rc = m->cfg.inline_only ? cs_model_load_file_inline(path, &m->engine, err)
                                      : cs_model_load_file(path, &m->engine, err);
    if (rc) return rc;
    rc = cs__rt_config_check_model(&m->cfg, m->engine, err);
    if (rc) return rc;
    m->n_in = cs_model_input_count(m->engine);
    m->n_out = cs_model_output_count(m->engine);
    m->in_names = cs_calloc((size_t)(m->n_in ? m->n_in : 1), sizeof *m->in_names);
    if (!m->in_names) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_in; i++) m->in_names[i] = cs_model_input(m->engine, i).name;
    if (m->rt->metrics) bind_metrics(m, m->rt->metrics); /* before the workers read them */
    return cs__rt_batcher_start(m, err);
}

cs_status cs_runtime_load(cs_runtime *rt, const char *name, const char *version, const char *path,
                          const cs_model_config *cfg, cs_error *err)
{
    if (!name || !*name || strlen(name) >= MAX_NAME || !version || !*version ||
        strlen(version) >= MAX_NAME)
        return cs_error_set(err, CS_ERR_INVALID,
                            "a model needs a name and a version of 1 to %d characters",
                            MAX_NAME - 1);
    if (!path) return cs_error_set(err, CS_ERR_INVALID, "model '%s': no file given", name);
    uint64_t start = cs_now_ns();
    cs_model_config norm;
    cs_status rc = cs__rt_config_normalize(cfg, &norm, err);
    if (rc) return cs_error_prefix(err, "model '%s' version '%s': ", name, version);
    int inst = norm.instances, tpi = norm.threads_per_instance, threads = inst * tpi;

    cs_rt_model *m = model_new(rt, name, version);
    if (!m) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    m->cfg = norm;
    pthread_mutex_lock(&rt->lock);
    if (atomic_load(&rt->draining))
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "the runtime is draining; no new loads");
    else if (find(rt, name, version))
        rc = cs_error_set(err, CS_ERR_EXISTS, "model '%s' version '%s' is loaded already", name,
                          version);
    else if (threads > rt->max_threads - rt->threads_used)
        rc = cs_error_set(err, CS_ERR_LIMIT,
                          "model '%s' version '%s' needs %d threads (%d instances x %d), but "
                          "%d of the %d allowed are in use; lower instances or "
                          "threads_per_instance, unload a model, or raise --threads",
                          name, version, threads, inst, tpi, rt->threads_used, rt->max_threads);
    else if (cs_vec_push(&rt->models, &m))
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    if (rc == CS_OK) {
        rt->threads_used += threads;
        m->threads = threads;
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc) {
        cs_rt_model_release(m);
        return rc;
    }

    rc = start_version(m, path, err);
    if (rc == CS_OK && m->metrics.load) cs_metric_set(m->metrics.load, cs_elapsed_s(start));
    pthread_mutex_lock(&rt->lock);
    if (rc)
        forget(rt, m);
    else
        m->loading = false;
    pthread_mutex_unlock(&rt->lock);
    if (rc) {
        cs__rt_stop(m, true);
        give_back_rest(m);
        cs_rt_model_release(m);
        /* The engine's own messages start with the file already: name it once. */
        if (strncmp(err->msg, path, strlen(path)))
            cs_error_prefix(err, "model '%s' version '%s' (%s): ", name, version, path);
        else
            cs_error_prefix(err, "model '%s' version '%s': ", name, version);
    }
    return rc;
}

/* Reserves n threads on rt for one more instance of m: CS_ERR_LIMIT over the budget. */
static cs_status reserve(cs_rt_model *m, cs_runtime *rt, int n, cs_error *err)
{
    cs_status rc = CS_OK;
    pthread_mutex_lock(&rt->lock);
    if (atomic_load(&rt->draining))
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "the runtime is draining; no new instances");
    else if (n > rt->max_threads - rt->threads_used)
        rc = cs_error_set(err, CS_ERR_LIMIT,
                          "an instance needs %d threads, but %d of the %d allowed are in use; "
                          "remove an instance, give it fewer threads, or raise --threads",
                          n, rt->threads_used, rt->max_threads);
    else
        rt->threads_used += n;
    pthread_mutex_unlock(&rt->lock);
    if (rc) return rc;
    pthread_mutex_lock(&m->lock);
    m->threads += n;
    pthread_mutex_unlock(&m->lock);
    return CS_OK;
}

cs_status cs_rt_model_add_instance(cs_rt_model *m, const cs_rt_instance_opts *o, int *id_out,
                                   cs_error *err)
{
    cs_rt_instance_opts none = {0};
    if (!o) o = &none;
    int threads = o->threads ? o->threads : m->cfg.threads_per_instance;
    cs_status rc = CS_OK;
    if (threads < 0 || threads > 256)
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "threads must be 0 (threads_per_instance) or 1 to 256, not %d",
                          o->threads);
    else if (o->n_cpus < 0 || o->n_cpus > CS_RT_MAX_CPUS || (o->n_cpus && !o->cpus))
        rc = cs_error_set(err, CS_ERR_INVALID, "cpus: a list of 0 to %d CPUs, not %d",
                          CS_RT_MAX_CPUS, o->n_cpus);
    for (int i = 0; rc == CS_OK && i < o->n_cpus; i++)
        if (o->cpus[i] < 0 || o->cpus[i] >= CPU_SETSIZE)
            rc = cs_error_set(err, CS_ERR_INVALID, "cpus[%d]: CPU %d is outside 0..%d", i,
                              o->cpus[i], CPU_SETSIZE - 1);
    cs_device dev;
    if (rc == CS_OK && o->device &&
        (strlen(o->device) >= CS_RT_DEVICE_MAX || cs_device_parse(o->device, &dev, err) != CS_OK))
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "device '%.32s' is not one of cpu, cuda, cuda:N (N from 0)", o->device);
    /* An unload waits for adds under way (m->adding), so m->rt stays valid until the end. */
    cs_runtime *rt = NULL;
    if (rc == CS_OK) {
        pthread_mutex_lock(&m->lock);
        rt = atomic_load(&m->closing) ? NULL : m->rt;
        if (rt) m->adding++;
        pthread_mutex_unlock(&m->lock);
        if (!rt) rc = cs_error_set(err, CS_ERR_SHUTDOWN, "the version is being unloaded");
    }
    if (rc == CS_OK) rc = reserve(m, rt, threads, err);
    if (rc == CS_OK) rc = cs__rt_instance_start(m, threads, o, id_out, err);
    if (rt) {
        pthread_mutex_lock(&m->lock);
        m->adding--;
        pthread_cond_broadcast(&m->changed);
        pthread_mutex_unlock(&m->lock);
    }
    if (rc) cs_error_prefix(err, "model '%s' version '%s': ", m->name, m->version);
    return rc;
}

/* Stops a version that has left the registry (its queue served, or dropped), returns its
 * threads to the budget and drops the registry's reference. Blocks while requests run. */
static void retire(cs_rt_model *m, bool drop)
{
    cs__rt_stop(m, drop);
    if (m->metrics.depth) cs_metric_set(m->metrics.depth, 0);
    if (m->metrics.inflight) cs_metric_set(m->metrics.inflight, 0);
    give_back_rest(m);
    pthread_mutex_lock(&m->lock);
    m->rt = NULL;
    pthread_mutex_unlock(&m->lock);
    cs_rt_model_release(m);
}

cs_status cs_runtime_unload(cs_runtime *rt, const char *name, const char *version, cs_error *err)
{
    if (!name) return cs_error_set(err, CS_ERR_INVALID, "unload needs a model name");
    /* Take the matches out of the registry first (no new acquires), then stop each one
     * without the runtime's lock: stopping waits for their queues. */
    cs_vec gone;
    cs_vec_init(&gone, sizeof(cs_rt_model *));
    cs_status rc = CS_OK;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->models.len && rc == CS_OK;) {
        cs_rt_model *m = model_at(rt, i);
        bool match =
            !m->loading && !strcmp(m->name, name) && (!version || !strcmp(m->version, version));
        if (!match) {
            i++;
        } else if ((rc = cs_vec_push(&gone, &m)) == CS_OK) {
            forget(rt, m);
        }
    }
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < gone.len; i++) retire(*(cs_rt_model **)cs_vec_at(&gone, i), false);
    size_t n = gone.len;
    cs_vec_free(&gone);
    if (rc) return cs_error_set(err, CS_ERR_NOMEM, "out of memory while unloading '%s'", name);
    if (n == 0)
        return version ? cs_error_set(err, CS_ERR_NOT_FOUND,
                                      "model '%s' version '%s' is not loaded", name, version)
                       : cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' is not loaded", name);
    return CS_OK;
}

void cs_runtime_free(cs_runtime *rt)
{
    if (!rt) return;
    pthread_mutex_lock(&rt->lock);
    cs_vec all = rt->models;
    cs_vec_init(&rt->models, sizeof(cs_rt_model *));
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < all.len; i++) retire(*(cs_rt_model **)cs_vec_at(&all, i), true);
    cs_vec_free(&all);
    cs_vec_free(&rt->models);
    pthread_mutex_destroy(&rt->lock);
    cs_free(rt);
}

/* Versions compare as integers when both are all digits ("10" > "9"), else as strings. */
static int version_cmp(const char *a, const char *b)
{
    size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
    if (!a[na] && !b[nb]) {
        while (na > 1 && *a == '0') a++, na--;
        while (nb > 1 && *b == '0') b++, nb--;
        if (na != nb) return na < nb ? -1 : 1;
    }
    return strcmp(a, b);
}

cs_rt_model *cs_runtime_acquire(cs_runtime *rt, const char *name, const char *version)
{
    if (!name) return NULL;
    cs_rt_model *best = NULL;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->models.len; i++) {
        cs_rt_model *m = model_at(rt, i);
        if (m->loading || strcmp(m->name, name)) continue;
        if (version ? !strcmp(m->version, version)
                    : !best || version_cmp(m->version, best->version) > 0)
            best = m;
    }
    if (best) atomic_fetch_add(&best->refs, 1);
    pthread_mutex_unlock(&rt->lock);
    return best;
}

void cs_runtime_foreach(cs_runtime *rt, void (*fn)(void *ud, const cs_rt_model *m), void *ud)
{
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->models.len; i++) {
        const cs_rt_model *m = model_at(rt, i);
        if (!m->loading) fn(ud, m);
    }
    pthread_mutex_unlock(&rt->lock);
}

cs_status cs_runtime_drain(cs_runtime *rt, uint64_t timeout_ns, cs_error *err)
{
    atomic_store(&rt->draining, true);
    uint64_t deadline = cs_now_ns() + timeout_ns;
    /* Hold references so that a concurrent unload cannot free a version we wait on. */
    cs_vec held;
    cs_vec_init(&held, sizeof(cs_rt_model *));
    cs_status rc = CS_OK;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->models.len && rc == CS_OK; i++) {
        cs_rt_model *m = model_at(rt, i);
        if (m->loading) continue;
        if ((rc = cs_vec_push(&held, &m)) == CS_OK) atomic_fetch_add(&m->refs, 1);
    }
    pthread_mutex_unlock(&rt->lock);
    int pending = 0;
    for (size_t i = 0; i < held.len; i++) {
        cs_rt_model *m = *(cs_rt_model **)cs_vec_at(&held, i);
        pending += cs__rt_wait_idle(m, deadline);
        cs_rt_model_release(m);
    }
    cs_vec_free(&held);
    if (rc) return cs_error_set(err, CS_ERR_NOMEM, "out of memory while draining");
    if (pending)
        return cs_error_set(err, CS_ERR_LIMIT,
                            "drain timed out after %.3f s with %d requests still queued or "
                            "running",
                            (double)timeout_ns / 1e9, pending);
    return CS_OK;
}

const char *cs_rt_model_name(const cs_rt_model *m)
{
    return m->name;
}

const char *cs_rt_model_version(const cs_rt_model *m)
{
    return m->version;
}

const cs_model_t *cs_rt_model_engine(const cs_rt_model *m)
{
    return m->engine;
}

const cs_model_config *cs_rt_model_config(const cs_rt_model *m)
{
    return &m->cfg;
}

/* Takes the version's lock: the lock is not part of the version's logical state. */
void cs_rt_model_stats(const cs_rt_model *m, cs_rt_stats *out)
{
    cs_rt_model *mm = (cs_rt_model *)m;
    pthread_mutex_lock(&mm->lock);
    *out = m->stats;
    pthread_mutex_unlock(&mm->lock);
}

int cs_rt_model_batch_sizes(const cs_rt_model *m)
{
    return (m->cfg.max_batch_size > 0 ? m->cfg.max_batch_size : 1) + 1;
}

void cs_rt_model_batch_stats(const cs_rt_model *m, cs_rt_batch_stats *out, int n)
{
    cs_rt_model *mm = (cs_rt_model *)m;
    pthread_mutex_lock(&mm->lock);
    memcpy(out, m->batch_stats, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&mm->lock);
}

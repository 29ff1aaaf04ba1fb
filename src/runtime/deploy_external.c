/*
 * deploy_external.c - deployments of an external runtime (spec.runtime: {command, ...}):
 * their instances are child processes (extproc.h) and their requests are proxied to them.
 *
 * A slot of such a deployment has a pool instead of a cs_rt_model. Each instance of the pool
 * holds a claim (placed like a built-in instance: its cores pin the process, its GPU becomes
 * CUDA_VISIBLE_DEVICES), a loopback port (spec.runtime.port for the first, else whatever the
 * kernel gives; the process learns it as PORT or $(PORT) in its command) and, while it runs,
 * its process. The controller starts and stops processes (without mu); a process that fails
 * (exits, or fails its probes) is stopped and started again on the same claim and port after
 * its own restart back-off (balance.h, spec.restartBackoff), shown meanwhile as Failed with
 * the reason and the delay.
 *
 * Requests: cs_deployer_proxy queues a job for the proxy threads (a pool grown on demand up to
 * PROXY_THREADS, each with its own keep-alive HTTP handle). A job picks a slot by the traffic
 * split and an instance by power of two choices on outstanding requests among the Ready ones
 * under containerConcurrency, waits on `avail` (signalled when a request finishes or an
 * instance becomes Ready) while none can take it, up to CS_DEPLOY_ACTIVATION_MS, and pokes the
 * controller when the slot has no Ready instance at all (scale from zero). A job that got no
 * answer at all from its instance (the process died) is tried once more on another one, which
 * it waits for at most RETRY_WAIT_MS; then it is answered 502.
 *
 * Locks: the deployer's mu guards the pools' instance lists, their routing fields and the job
 * queue; a process's own state is read lock-free. Never held across an HTTP call, a process
 * start or a stop (whose monitor thread takes mu in on_change).
 */
#include "runtime/deploy_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROXY_THREADS 256   /* requests proxied at once, over every deployment */
#define PROXY_QUEUE   10000 /* requests queued for a thread, as Knative's activator */
#define RETRY_WAIT_MS 2000  /* how long a retry waits for another instance before its 502 */

typedef struct ext_pool ext_pool;

typedef struct ext_inst {
    int id, claim, port;    /* fixed for its life */
    cs_extproc *proc;       /* NULL while it waits out its back-off */
    atomic_int outstanding; /* proxied requests on it now */
    int refs;               /* jobs holding this record (mu) */
    int restarts;
    cs_backoff bo;
    int64_t retry_at_ms, ready_ms; /* the next start (proc NULL); when it last became Ready */
    uint64_t since_ns;             /* when proc became NULL */
    char reason[CS_ERROR_MSG_MAX]; /* the last failure */
    char devices[256];             /* CAPSTAN_DEVICES, "" without a claim */
    int gpu;
    int cpus[CS_RT_MAX_CPUS], n_cpus;
    ext_pool *pool;
} ext_inst;

struct ext_pool {
    cs_deployer *d;
    dep *p;
    char version[VERSION_SZ];
    char path[4096]; /* the version's artifact: CAPSTAN_MODEL_PATH */
    ext_inst *inst[CS_DEPLOY_MAX_INST];
    int n, next_id;
    atomic_int waiting; /* jobs waiting for one of its instances */
};

typedef struct job {
    cs_deploy_proxy q;
    char name[CS_DEPLOY_NAME_MAX + 1];
    char version[VERSION_SZ]; /* "" = by the traffic split */
    uint64_t wait_until_ns;
    struct job *next;
} job;

struct ext_workers {
    pthread_cond_t work;  /* a job was queued */
    pthread_cond_t avail; /* an instance may take a request now */
    job *head, *tail;
    int queued, threads, idle;
    pthread_t tid[PROXY_THREADS];
    bool stop;
};

static int64_t now_ms(void)
{
    return (int64_t)(cs_now_ns() / 1000000);
}

static bool proc_ready(const ext_inst *in)
{
    return in->proc && cs_extproc_state_of(in->proc) == CS_EXTPROC_READY;
}

/* --- instances (the controller, without mu unless said) ---------------------------------- */

/* "0-3,6" for a CPU list in allocation order (sorted first). */
static void cpu_list(const int *cpus, int n, char *out, size_t cap)
{
    int sorted[CS_RT_MAX_CPUS];
    memcpy(sorted, cpus, (size_t)n * sizeof *cpus);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used < cap;) {
        int j = i;
        while (j + 1 < n && sorted[j + 1] == sorted[j] + 1) j++;
        used += (size_t)snprintf(out + used, cap - used, j > i ? "%s%d-%d" : "%s%d", i ? "," : "",
                                 sorted[i], sorted[j]);
        i = j + 1;
    }
}

static void instance_name(const ext_pool *pool, const ext_inst *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s-v%s-%d", pool->p->spec.name, pool->version, in->id);
}

/* The monitor thread of in's process saw a change: wake the requests waiting for an instance
 * (Ready) or the controller (Failed, to heal now). */
static void on_change(void *ud, cs_extproc_state st)
{
    ext_inst *in = ud;
    cs_deployer *d = in->pool->d;
    dep *p = in->pool->p;
    pthread_mutex_lock(&d->mu);
    if (st == CS_EXTPROC_READY) {
        in->ready_ms = now_ms();
        if (p->poked) { /* a request was waiting: that was a cold start */
            if (p->m.cold) cs_metric_observe(p->m.cold, (double)(cs_now_ns() - p->poked_ns) / 1e9);
            p->poked = false;
        }
        if (d->ext) pthread_cond_broadcast(&d->ext->avail);
    }
    d->kicked = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->mu);
}

/* Starts in's process; on failure in->reason says why. */
static cs_status start_proc(ext_pool *pool, ext_inst *in, cs_extproc **out, cs_error *err)
{
    const cs_deploy_spec *sp = &pool->p->spec;
    char name[CS_DEPLOY_NAME_MAX + 48], port[16], cuda[16];
    instance_name(pool, in, name, sizeof name);
    snprintf(port, sizeof port, "%d", in->port);
    snprintf(cuda, sizeof cuda, "%d", in->gpu);
    int argc = (int)json_array_size(sp->command), n_env = 0;
    const char *argv[256];
    for (int i = 0; i < argc && i < 256; i++)
        argv[i] = json_string_value(json_array_get(sp->command, i));
    /* The spec's variables first: ours, later, win. */
    size_t n_spec = sp->env ? json_object_size(sp->env) : 0;
    const char **env = cs_calloc(n_spec + 8, sizeof *env);
    char **owned = cs_calloc(n_spec + 8, sizeof *owned);
    cs_status rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    if (!env || !owned) goto out;
    const char *key;
    json_t *v;
    json_object_foreach(sp->env, key, v)
    {
        size_t len = strlen(key) + json_string_length(v) + 2;
        if (!(owned[n_env] = cs_malloc(len))) goto out;
        snprintf(owned[n_env], len, "%s=%s", key, json_string_value(v));
        env[n_env] = owned[n_env];
        n_env++;
    }
    const char *ours[][2] = {{"PORT", port},
                             {"CAPSTAN_INSTANCE", name},
                             {"CAPSTAN_MODEL_NAME", sp->model},
                             {"CAPSTAN_MODEL_VERSION", pool->version},
                             {"CAPSTAN_MODEL_PATH", pool->path},
                             {"CAPSTAN_DEVICES", in->devices[0] ? in->devices : NULL},
                             {"CUDA_VISIBLE_DEVICES", in->gpu >= 0 ? cuda : NULL}};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        if (!ours[i][1]) continue;
        size_t len = strlen(ours[i][0]) + strlen(ours[i][1]) + 2;
        if (!(owned[n_env] = cs_malloc(len))) goto out;
        snprintf(owned[n_env], len, "%s=%s", ours[i][0], ours[i][1]);
        env[n_env] = owned[n_env];
        n_env++;
    }
    cs_extproc_opts o = {.name = name,
                         .argv = argv,
                         .argc = argc,
                         .env = env,
                         .n_env = n_env,
                         .port = in->port,
                         .readiness_path = sp->readiness_path,
                         .cpus = in->cpus,
                         .n_cpus = in->n_cpus,
                         .startup_timeout_ms = sp->startup_timeout_ms,
                         .probe_period_ms = sp->probe_period_ms,
                         .probe_timeout_ms = sp->probe_timeout_ms,
                         .failure_threshold = sp->failure_threshold,
                         .on_change = on_change,
                         .ud = in};
    rc = cs_extproc_start(&o, out, err);
out:
    for (int i = 0; owned && i < n_env; i++) cs_free(owned[i]);
    cs_free(owned);
    cs_free(env);
    return rc;
}

/* After a failure to start or a failed process: the next start waits out the back-off. */
/* Records in's failure under mu: when to retry, since when, and why. Returns the delay. */
static int64_t note_failure(ext_pool *pool, ext_inst *in, const char *why, int64_t now)
{
    cs_backoff_policy bp = cs__dep_backoff_policy(&pool->p->spec);
    int64_t ran = in->ready_ms ? now - in->ready_ms : 0;
    int64_t delay = cs_backoff_next(&in->bo, &bp, ran);
    in->retry_at_ms = now + delay;
    in->ready_ms = 0;
    in->since_ns = cs_wall_ns();
    snprintf(in->reason, sizeof in->reason, "%.400s; restarting in %lld ms", why, (long long)delay);
    return delay;
}

static void failure_event(cs_deployer *d, ext_pool *pool, ext_inst *in, const char *why,
                          int64_t delay)
{
    char name[CS_DEPLOY_NAME_MAX + 48];
    instance_name(pool, in, name, sizeof name);
    cs__dep_event(d, pool->p, "deployment.instance_failed",
                  json_pack("{s:s, s:s, s:s, s:I}", "version", pool->version, "instance", name,
                            "reason", why, "retry_in_ms", (json_int_t)delay));
}

static void back_off(cs_deployer *d, ext_pool *pool, ext_inst *in, const char *why, int64_t now)
{
    pthread_mutex_lock(&d->mu);
    int64_t delay = note_failure(pool, in, why, now);
    pthread_mutex_unlock(&d->mu);
    failure_event(d, pool, in, why, delay);
}

/* Starts (or restarts) in's process, publishing it under mu. */
static void run(cs_deployer *d, ext_pool *pool, ext_inst *in)
{
    cs_extproc *proc;
    cs_error err;
    if (start_proc(pool, in, &proc, &err) != CS_OK) {
        back_off(d, pool, in, err.msg, now_ms());
        return;
    }
    pthread_mutex_lock(&d->mu);
    in->proc = proc;
    pthread_mutex_unlock(&d->mu);
}

static void release_claim(cs_deployer *d, const dep *p, const ext_pool *pool, int claim)
{
    if (!claim || !d->o.devices) return;
    char name[CS_DEPLOY_NAME_MAX + 48];
    snprintf(name, sizeof name, "%s-v%s-%d", p->spec.name, pool->version, claim);
    cs_error err;
    if (cs_placement_release(d->o.devices, name, &err) != CS_OK)
        cs_log(CS_LOG_WARN, "claim not released", "claim", name, "error", err.msg, NULL);
}

/* Waits (polling, without mu) until f(in) under mu says done, at most ms (< 0: no bound). */
static void wait_until(cs_deployer *d, ext_inst *in, bool (*f)(const ext_inst *), int64_t ms)
{
    int64_t until = now_ms() + ms;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        bool done = f(in);
        pthread_mutex_unlock(&d->mu);
        if (done || (ms >= 0 && now_ms() >= until)) return;
        usleep(5000);
    }
}

static bool idle(const ext_inst *in)
{
    return atomic_load(&in->outstanding) == 0;
}

static bool unreferenced(const ext_inst *in)
{
    return in->refs == 0;
}

/* Stops in, which is out of the pool's list already: its requests finish first (up to the
 * grace period), then the process gets SIGTERM and, after the grace period, SIGKILL. */
static void retire(cs_deployer *d, ext_pool *pool, ext_inst *in)
{
    int64_t grace = pool->p->spec.grace_ms;
    wait_until(d, in, idle, grace);
    pthread_mutex_lock(&d->mu);
    cs_extproc *proc = in->proc;
    in->proc = NULL;
    pthread_mutex_unlock(&d->mu);
    cs_extproc_stop(proc, grace);
    wait_until(d, in, unreferenced, -1); /* a job still reading from it: short, it is gone */
    release_claim(d, pool->p, pool, in->claim);
    cs_free(in);
}

/* Publishes s's slot list from the pool (ids and claims, for deploy.c). Caller holds mu. */
static void sync_ids(slot *s)
{
    ext_pool *pool = s->ext;
    s->n_ids = pool->n;
    for (int i = 0; i < pool->n; i++) {
        s->ids[i] = pool->inst[i]->id;
        s->claims[i] = pool->inst[i]->claim;
    }
}

static void set_reason(cs_deployer *d, dep *p, const ext_pool *pool, const char *what,
                       const char *msg)
{
    pthread_mutex_lock(&d->mu);
    snprintf(p->reason, sizeof p->reason, "instance %d of version %s %s: %.300s", pool->n + 1,
             pool->version, what, msg);
    pthread_mutex_unlock(&d->mu);
}

cs_status cs__ext_load_slot(cs_deployer *d, dep *p, slot *s, const char *version, const char *path,
                            cs_error *err)
{
    ext_pool *pool = cs_calloc(1, sizeof *pool);
    if (!pool) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    pool->d = d;
    pool->p = p;
    snprintf(pool->version, sizeof pool->version, "%s", version);
    snprintf(pool->path, sizeof pool->path, "%s", path);
    pthread_mutex_lock(&d->mu);
    *s = (slot){.ext = pool, .wanted = -1};
    snprintf(s->version, VERSION_SZ, "%.23s", version);
    pthread_mutex_unlock(&d->mu);
    cs_log(CS_LOG_INFO, "deployment version set up for an external runtime", "deployment",
           p->spec.name, "version", version, NULL);
    return CS_OK;
}

/* A new instance record: its claim (with resources.devices) and its port. */
static ext_inst *new_instance(cs_deployer *d, dep *p, ext_pool *pool)
{
    ext_inst *in = cs_calloc(1, sizeof *in);
    if (!in) {
        set_reason(d, p, pool, "cannot start", "out of memory");
        return NULL;
    }
    in->pool = pool;
    in->gpu = -1;
    in->id = pool->next_id + 1;
    if (p->n_reqs && d->o.devices) {
        char name[CS_DEPLOY_NAME_MAX + 48];
        in->claim = ++p->next_claim;
        snprintf(name, sizeof name, "%s-v%s-%d", p->spec.name, pool->version, in->claim);
        cs_placement pl;
        cs_error err;
        if (cs_placement_claim(d->o.devices, name, p->reqs, p->n_reqs, &pl, &err) != CS_OK) {
            cs_placement_free(&pl);
            set_reason(d, p, pool, "cannot be placed", err.msg);
            cs_free(in);
            return NULL;
        }
        in->n_cpus = (int)(pl.n_cpus < CS_RT_MAX_CPUS ? pl.n_cpus : CS_RT_MAX_CPUS);
        memcpy(in->cpus, pl.cpus, (size_t)in->n_cpus * sizeof *in->cpus);
        in->gpu = pl.gpu;
        char cpus[200] = "";
        cpu_list(in->cpus, in->n_cpus, cpus, sizeof cpus);
        snprintf(in->devices, sizeof in->devices, "%s%s", in->n_cpus ? "cpu:" : "", cpus);
        if (pl.gpu >= 0)
            snprintf(in->devices + strlen(in->devices), sizeof in->devices - strlen(in->devices),
                     "%sgpu:%d", in->n_cpus ? ";" : "", pl.gpu);
        cs_placement_free(&pl);
    }
    /* spec.runtime.port unless another instance of the deployment has it, else a free one. */
    bool taken = false;
    for (int i = 0; i < MAX_SLOTS; i++)
        for (int j = 0; p->s[i].ext && j < p->s[i].ext->n; j++)
            taken |= p->s[i].ext->inst[j]->port == p->spec.port;
    in->port = cs_extproc_pick_port(taken ? 0 : p->spec.port);
    if (in->port < 0) {
        release_claim(d, p, pool, in->claim);
        set_reason(d, p, pool, "cannot start", "no free loopback port");
        cs_free(in);
        return NULL;
    }
    pool->next_id++;
    return in;
}

void cs__ext_scale_slot(cs_deployer *d, dep *p, slot *s, int want)
{
    ext_pool *pool = s->ext;
    while (pool->n < want) {
        ext_inst *in = new_instance(d, p, pool);
        if (!in) return;
        pthread_mutex_lock(&d->mu);
        pool->inst[pool->n++] = in;
        sync_ids(s);
        pthread_mutex_unlock(&d->mu);
        run(d, pool, in);
    }
    while (pool->n > want) {
        /* The least useful goes first: one waiting out a back-off, then one starting. */
        pthread_mutex_lock(&d->mu);
        int victim = pool->n - 1;
        for (int i = pool->n - 1; i >= 0; i--)
            if (!pool->inst[i]->proc) {
                victim = i;
                break;
            } else if (!proc_ready(pool->inst[i]) && proc_ready(pool->inst[victim]))
                victim = i;
        ext_inst *in = pool->inst[victim];
        pool->inst[victim] = pool->inst[--pool->n];
        sync_ids(s);
        pthread_mutex_unlock(&d->mu);
        retire(d, pool, in);
    }
}

void cs__ext_heal(cs_deployer *d, dep *p, slot *s, int64_t now)
{
    ext_pool *pool = s->ext;
    for (int i = 0; i < pool->n; i++) {
        ext_inst *in = pool->inst[i];
        if (in->proc && cs_extproc_state_of(in->proc) == CS_EXTPROC_FAILED) {
            char why[CS_ERROR_MSG_MAX];
            cs_extproc_reason(in->proc, why, sizeof why);
            pthread_mutex_lock(&d->mu);
            cs_extproc *proc = in->proc;
            in->proc = NULL; /* no new requests; the ones on it get no answer and retry */
            in->restarts++;
            if (p->m.restarts) cs_metric_add(p->m.restarts, 1);
            /* with the reason in the same step: a status never shows it Failed without one */
            int64_t delay = note_failure(pool, in, why, now);
            pthread_mutex_unlock(&d->mu);
            cs_extproc_stop(proc, 0); /* it failed: no grace (it exited, or does not answer) */
            failure_event(d, pool, in, why, delay);
        } else if (!in->proc && now >= in->retry_at_ms) {
            run(d, pool, in);
        }
    }
}

void cs__ext_unload_slot(cs_deployer *d, dep *p, slot *s)
{
    ext_pool *pool = s->ext;
    cs__ext_scale_slot(d, p, s, 0);
    pthread_mutex_lock(&d->mu);
    *s = (slot){0};
    pthread_mutex_unlock(&d->mu);
    while (atomic_load(&pool->waiting) > 0) usleep(5000); /* jobs leave on their next wake-up */
    cs_log(CS_LOG_INFO, "deployment version of an external runtime stopped", "deployment",
           p->spec.name, "version", pool->version, NULL);
    cs_free(pool);
}

int cs__ext_instances(const slot *s, cs_rt_instance_info *out, int max)
{
    const ext_pool *pool = s->ext;
    int n = pool->n < max ? pool->n : max;
    for (int i = 0; i < n; i++) {
        const ext_inst *in = pool->inst[i];
        cs_rt_instance_info *o = &out[i];
        memset(o, 0, offsetof(cs_rt_instance_info, cpus));
        o->id = in->id;
        o->running = atomic_load(&in->outstanding);
        o->n_cpus = in->n_cpus;
        memcpy(o->cpus, in->cpus, (size_t)in->n_cpus * sizeof *in->cpus);
        o->reason[0] = '\0';
        o->device[0] = '\0'; /* its own process chooses; CUDA_VISIBLE_DEVICES names the GPUs */
        if (!in->proc) {
            o->state = CS_RT_INSTANCE_FAILED;
            o->since_ns = in->since_ns;
            snprintf(o->reason, sizeof o->reason, "%s", in->reason);
            continue;
        }
        cs_extproc_state st = cs_extproc_state_of(in->proc);
        o->state = st == CS_EXTPROC_READY    ? CS_RT_INSTANCE_READY
                   : st == CS_EXTPROC_FAILED ? CS_RT_INSTANCE_FAILED
                                             : CS_RT_INSTANCE_STARTING;
        o->since_ns = cs_extproc_since_ns(in->proc);
        if (st == CS_EXTPROC_FAILED) cs_extproc_reason(in->proc, o->reason, sizeof o->reason);
    }
    return n;
}

double cs__ext_concurrency(const slot *s)
{
    const ext_pool *pool = s->ext;
    double c = atomic_load(&pool->waiting);
    for (int i = 0; i < pool->n; i++) c += atomic_load(&pool->inst[i]->outstanding);
    return c;
}

void cs__ext_instance_json(const slot *s, int id, json_t *obj)
{
    const ext_pool *pool = s->ext;
    for (int i = 0; i < pool->n; i++) {
        const ext_inst *in = pool->inst[i];
        if (in->id != id) continue;
        json_object_set_new(obj, "port", json_integer(in->port));
        json_object_set_new(obj, "pid",
                            in->proc ? json_integer(cs_extproc_pid(in->proc)) : json_null());
        json_object_set_new(obj, "devices", json_string(in->devices));
        json_object_set_new(obj, "restarts", json_integer(in->restarts));
    }
}

/* --- the proxy threads ------------------------------------------------------------------- */

/* An instance of s for a request, held (refs, outstanding), or NULL when none can take it now.
 * Caller holds mu. */
static ext_inst *pick(const dep *p, slot *s, const void *exclude)
{
    static _Thread_local cs_rng rng;
    if (!rng.s) cs_rng_seed(&rng, cs_now_ns());
    ext_pool *pool = s->ext;
    cs_balance_inst b[CS_DEPLOY_MAX_INST];
    for (int i = 0; i < pool->n; i++)
        b[i] = (cs_balance_inst){proc_ready(pool->inst[i]) && pool->inst[i] != exclude,
                                 atomic_load(&pool->inst[i]->outstanding)};
    int k = cs_balance_pick(b, pool->n, p->spec.container_concurrency, &rng);
    if (k < 0) return NULL;
    ext_inst *in = pool->inst[k];
    in->refs++;
    atomic_fetch_add(&in->outstanding, 1);
    return in;
}

static int ready_count(const ext_pool *pool)
{
    int n = 0;
    for (int i = 0; i < pool->n; i++) n += proc_ready(pool->inst[i]);
    return n;
}

/* Runs one job to its answer. */
static void serve(cs_deployer *d, job *j)
{
    struct ext_workers *w = d->ext;
    const void *failed = NULL; /* the instance that gave no answer: not tried twice */
    char msg[CS_ERROR_MSG_MAX] = "";
    cs_status rc = CS_ERR_SHUTDOWN;
    cs_proxy_resp resp;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        dep *p = w->stop ? NULL : cs_map_get(&d->deps, j->name);
        slot *s = p ? cs__dep_pick_slot(p, j->version[0] ? j->version : NULL) : NULL;
        if (!p || !s || !s->ext) {
            if (!msg[0] || !p)
                snprintf(msg, sizeof msg, "deployment '%s' %s", j->name,
                         !p ? "is gone" : "has no version to serve this request");
            break;
        }
        ext_inst *in = pick(p, s, failed);
        if (!in) {
            bool none = ready_count(s->ext) == 0;
            if (none && s->n_ids == 0 && p->reason[0]) {
                snprintf(msg, sizeof msg, "deployment '%s' has no instance: %.400s", j->name,
                         p->reason);
                break;
            }
            if (none) cs__dep_poke(d, p);
            if (cs_now_ns() >= j->wait_until_ns) {
                if (!failed || !msg[0])
                    snprintf(msg, sizeof msg,
                             none ? "deployment '%s' had no Ready instance within %d s"
                                  : "every instance of deployment '%s' stayed at its "
                                    "containerConcurrency for %d s",
                             j->name, CS_DEPLOY_ACTIVATION_MS / 1000);
                break;
            }
            ext_pool *pool = s->ext;
            atomic_fetch_add(&pool->waiting, 1);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000; /* a bound on a missed signal, and on the deadline's check */
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&w->avail, &d->mu, &ts);
            atomic_fetch_sub(&pool->waiting, 1);
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "/v2/models/%s%s", p->spec.model_name, j->q.suffix);
        cs_proxy_req q = {.port = in->port,
                          .method = j->q.method,
                          .path = path,
                          .content_type = j->q.content_type,
                          .header_length = j->q.header_length,
                          .body = j->q.body,
                          .len = j->q.len,
                          .timeout_ms = p->spec.request_timeout_ms};
        pthread_mutex_unlock(&d->mu);
        cs_error err;
        rc = cs_proxy_call(&q, &resp, &err);
        pthread_mutex_lock(&d->mu);
        atomic_fetch_sub(&in->outstanding, 1);
        in->refs--;
        pthread_cond_broadcast(&w->avail);
        if (rc == CS_OK) break;
        snprintf(msg, sizeof msg, "deployment '%s': the runtime gave no answer: %.300s", j->name,
                 err.msg);
        if (rc != CS_ERR_IO || failed) break;
        failed = in; /* it died mid-request: once more on another instance, soon or never */
        uint64_t soon = cs_now_ns() + RETRY_WAIT_MS * 1000000ull;
        if (j->wait_until_ns > soon) j->wait_until_ns = soon;
    }
    pthread_mutex_unlock(&d->mu);
    if (rc == CS_OK)
        j->q.done(j->q.ud, CS_OK, NULL, &resp);
    else
        j->q.done(j->q.ud, rc, msg, NULL);
}

static void *worker(void *arg)
{
    cs_deployer *d = arg;
    struct ext_workers *w = d->ext;
    pthread_mutex_lock(&d->mu);
    while (!w->stop || w->head) {
        if (!w->head) {
            w->idle++;
            pthread_cond_wait(&w->work, &d->mu);
            w->idle--;
            continue;
        }
        job *j = w->head;
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&d->mu);
        serve(d, j);
        cs_free(j);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

cs_status cs_deployer_proxy(cs_deployer *d, const char *name, const char *version,
                            const cs_deploy_proxy *req, cs_error *err)
{
    job *j = cs_calloc(1, sizeof *j);
    if (!j) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    j->q = *req;
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->version, sizeof j->version, "%s", version ? version : "");
    j->wait_until_ns = cs_now_ns() + (uint64_t)CS_DEPLOY_ACTIVATION_MS * 1000000;
    cs_status rc = CS_OK;
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    if (!p || !p->spec.external)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s' of an external runtime",
                          name);
    else if (version && !cs__dep_find_slot(p, version))
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "deployment '%s' serves no version %s", name,
                          version);
    if (rc == CS_OK && !d->ext) {
        d->ext = cs_calloc(1, sizeof *d->ext);
        if (d->ext) {
            pthread_cond_init(&d->ext->work, NULL);
            pthread_cond_init(&d->ext->avail, NULL);
        } else {
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        }
    }
    struct ext_workers *w = d->ext;
    if (rc == CS_OK && (w->stop || w->queued >= PROXY_QUEUE))
        rc = cs_error_set(err, CS_ERR_LIMIT, "deployment '%s': %d requests wait already", name,
                          w->queued);
    if (rc == CS_OK && w->idle <= w->queued && w->threads < PROXY_THREADS &&
        pthread_create(&w->tid[w->threads], NULL, worker, d) == 0)
        w->threads++;
    if (rc == CS_OK && w->threads == 0)
        rc = cs_error_set(err, CS_ERR_LIMIT, "cannot start a proxy thread");
    if (rc == CS_OK) {
        if (w->tail)
            w->tail->next = j;
        else
            w->head = j;
        w->tail = j;
        w->queued++;
        j = NULL;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&d->mu);
    cs_free(j);
    return rc;
}

void cs__ext_shutdown(cs_deployer *d, bool begin)
{
    struct ext_workers *w = d->ext;
    if (!w) return;
    pthread_mutex_lock(&d->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->avail);
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&d->mu);
    if (begin) return;
    for (int i = 0; i < w->threads; i++) pthread_join(w->tid[i], NULL);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->avail);
    cs_free(w);
    d->ext = NULL;
}

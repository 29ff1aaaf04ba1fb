/*
 * pool.c - fixed-size thread pool; see pool.h for the contract.
 *
 * One mutex guards a FIFO of tasks (a linked list, so submit never blocks on capacity)
 * and the current fork-join job; `work` wakes idle workers, `idle` wakes waiters when the
 * last task finishes and `joined` wakes a cs_pool_run caller when its job completes. The
 * lock is held only to hand work out, never while a task runs. Jobs take priority over
 * queued tasks so that a kernel's parallel loop is not stuck behind background work.
 *
 * An engine runs one short job per operator, a few microseconds of work each: waking a
 * sleeping thread through the kernel costs as much. So a worker that runs out of work
 * first spins a while on `posted` (bumped whenever work arrives) before it sleeps, and a
 * caller waiting for its job spins on `done` before it sleeps, as ONNX Runtime's and
 * OpenMP's pools do. Both still sleep on the condition variables past SPIN_NS, so an idle
 * pool costs nothing.
 */
#include "base/pool.h"

#include "base/alloc.h"

#include "base/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* How long an idle worker or a waiting caller spins before it sleeps. */
#define SPIN_NS 100000u

typedef struct task {
    struct task *next;
    cs_pool_fn fn;
    void *arg;
} task;

/* A fork-join job (cs_pool_run): indices are handed out under the lock, one at a time. */
typedef struct job {
    void (*fn)(void *arg, int i);
    void *arg;
    int n, next;
    atomic_uint done; /* written under the lock, read by a spinning caller without it */
    int active;
} job;

struct cs_pool {
    pthread_mutex_t lock;
    pthread_cond_t work, idle, joined;
    task *head, *tail;
    int pending; /* queued + running */
    int stopping, n;
    pthread_t *threads;
    job job;
    atomic_uint posted; /* bumped under the lock whenever there is new work or a stop */
};

/* Tells the core a spin-wait loop is running (a hyperthread's sibling gets the pipeline). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Spins, the lock not held, for SPIN_NS at most, while *word == value is not until_equal:
 * until a counter moves (a worker waits for work) or reaches a value (a caller waits for
 * its job). */
static void spin(const atomic_uint *word, unsigned value, bool until_equal)
{
    uint64_t end = 0;
    for (unsigned i = 1; (atomic_load_explicit(word, memory_order_acquire) == value) != until_equal;
         i++) {
        if (i % 64 == 0) {
            uint64_t now = cs_now_ns();
            if (!end)
                end = now + SPIN_NS;
            else if (now > end)
                return;
        }
        cpu_relax();
    }
}

/* Marks new work, for workers spinning in spin(); called with the lock held. */
static void post(cs_pool *p)
{
    atomic_fetch_add_explicit(&p->posted, 1, memory_order_release);
}

static bool job_has_work(const cs_pool *p)
{
    return p->job.active && p->job.next < p->job.n;
}

/* Runs one index of the current job; called and returns with the lock held. */
static void job_step(cs_pool *p)
{
    int i = p->job.next++;
    pthread_mutex_unlock(&p->lock);
    p->job.fn(p->job.arg, i);
    pthread_mutex_lock(&p->lock);
    if (atomic_fetch_add(&p->job.done, 1) + 1 == (unsigned)p->job.n)
        pthread_cond_broadcast(&p->joined);
}

static void *worker(void *p)
{
    cs_pool *pool = p;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        if (!pool->head && !job_has_work(pool) && !pool->stopping) {
            unsigned seen = atomic_load_explicit(&pool->posted, memory_order_relaxed);
            pthread_mutex_unlock(&pool->lock);
            spin(&pool->posted, seen, false);
            pthread_mutex_lock(&pool->lock);
        }
        while (!pool->head && !job_has_work(pool) && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->lock);
        if (job_has_work(pool)) {
            job_step(pool);
            continue;
        }
        if (!pool->head) break; /* stopping and nothing left */
        task *t = pool->head;
        pool->head = t->next;
        if (!pool->head) pool->tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        t->fn(t->arg);
        cs_free(t);
        pthread_mutex_lock(&pool->lock);
        if (--pool->pending == 0) pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

cs_status cs_pool_new(int n, cs_pool **out, cs_error *err)
{
    *out = NULL;
    if (n < 1 || n > 256)
        return cs_error_set(err, CS_ERR_INVALID, "thread pool size %d is outside 1..256", n);
    cs_pool *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "thread pool: out of memory");
    p->threads = cs_calloc((size_t)n, sizeof *p->threads);
    if (!p->threads) {
        cs_free(p);
        return cs_error_set(err, CS_ERR_NOMEM, "thread pool: out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    pthread_cond_init(&p->joined, NULL);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker, p);
        if (rc) {
            p->n = i;
            cs_pool_free(p);
            return cs_error_set(err, CS_ERR_NOMEM, "thread pool: cannot start thread %d: %s", i,
                                strerror(rc));
        }
    }
    p->n = n;
    *out = p;
    return CS_OK;
}

cs_status cs_pool_submit(cs_pool *p, cs_pool_fn fn, void *arg)
{
    task *t = cs_malloc(sizeof *t);
    if (!t) return CS_ERR_NOMEM;
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        cs_free(t);
        return CS_ERR_SHUTDOWN;
    }
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->pending++;
    post(p);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return CS_OK;
}

void cs_pool_run(cs_pool *p, int n, void (*fn)(void *arg, int i), void *arg)
{
    pthread_mutex_lock(&p->lock);
    while (p->job.active) pthread_cond_wait(&p->joined, &p->lock); /* one job at a time */
    p->job.fn = fn;
    p->job.arg = arg;
    p->job.n = n;
    p->job.next = 0;
    atomic_store(&p->job.done, 0);
    p->job.active = 1;
    post(p);
    pthread_cond_broadcast(&p->work);
    while (job_has_work(p)) job_step(p);
    if (atomic_load(&p->job.done) < (unsigned)n) {
        pthread_mutex_unlock(&p->lock);
        spin(&p->job.done, (unsigned)n, true);
        pthread_mutex_lock(&p->lock);
    }
    while (atomic_load(&p->job.done) < (unsigned)n) pthread_cond_wait(&p->joined, &p->lock);
    p->job.active = 0;
    pthread_cond_broadcast(&p->joined);
    pthread_mutex_unlock(&p->lock);
}

void cs_pool_wait(cs_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0) pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

int cs_pool_shutdown(cs_pool *p, int drain)
{
    int dropped = 0;
    pthread_mutex_lock(&p->lock);
    if (p->stopping && !p->threads) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    p->stopping = 1;
    post(p);
    if (!drain) {
        while (p->head) {
            task *t = p->head;
            p->head = t->next;
            cs_free(t);
            dropped++;
            p->pending--;
        }
        p->tail = NULL;
        if (p->pending == 0) pthread_cond_broadcast(&p->idle);
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    if (p->threads) {
        for (int i = 0; i < p->n; i++) pthread_join(p->threads[i], NULL);
        cs_free(p->threads);
        p->threads = NULL;
    }
    return dropped;
}

void cs_pool_free(cs_pool *p)
{
    if (!p) return;
    cs_pool_shutdown(p, 1);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->joined);
    pthread_mutex_destroy(&p->lock);
    cs_free(p);
}

int cs_pool_size(const cs_pool *p)
{
    return p->n;
}

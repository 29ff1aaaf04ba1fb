/*
 * pool.h - a small fixed-size thread pool: submit, wait for all, shut down.
 *
 * Tasks run in submission order on `n` worker threads. One pool is meant for one owner
 * (an engine session, a server component): cs_pool_wait waits for every task submitted to
 * this pool, so owners that need separate waits use separate pools.
 *
 * Workers inherit the CPU affinity of the thread that calls cs_pool_new (pthread_create
 * copies it), so pinning that thread pins the pool: the runtime pins an instance this way.
 */
#ifndef CS_BASE_POOL_H
#define CS_BASE_POOL_H

#include "capstan/status.h"

typedef struct cs_pool cs_pool;
typedef void (*cs_pool_fn)(void *arg);

/* Starts n worker threads (1..256). */
cs_status cs_pool_new(int n, cs_pool **out, cs_error *err);

/* Queues fn(arg). Fails with CS_ERR_SHUTDOWN once shutdown began, CS_ERR_NOMEM when the
 * task cannot be queued; the task is then not run and the caller still owns arg. */
cs_status cs_pool_submit(cs_pool *p, cs_pool_fn fn, void *arg);

/* Runs fn(arg, i) for every i in [0, n) on the workers and the calling thread, and returns
 * when all have finished. Allocates nothing, so engine kernels may call it on the run
 * path. Concurrent callers take turns. Must not be called from a pool task. */
void cs_pool_run(cs_pool *p, int n, void (*fn)(void *arg, int i), void *arg);

/* Blocks until every task submitted so far has finished. */
void cs_pool_wait(cs_pool *p);

/* Stops the workers. With drain, queued tasks run first; without, they are dropped and
 * their count is returned (the caller owns their args). Running tasks always finish.
 * Idempotent. */
int cs_pool_shutdown(cs_pool *p, int drain);

/* Shuts down (draining) if needed and frees the pool. NULL is a no-op. */
void cs_pool_free(cs_pool *p);

int cs_pool_size(const cs_pool *p);

#endif

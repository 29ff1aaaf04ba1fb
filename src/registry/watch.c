/*
 * watch.c - cluster mode: hearing of the changes other servers commit to a shared store.
 *
 * Several `capstan serve` replicas may share one PostgreSQL registry. Each change that
 * moves what is served (audit.c's announced kinds) is announced with NOTIFY in its own
 * transaction, as "COUNTER ORIGIN ACTION NAME VERSION", and counted in the store's change
 * counter (store_pg.c). One thread per watching registry keeps a connection of its own in
 * LISTEN and hands each change from another origin to the caller's function, in commit
 * order.
 *
 * Nothing is lost when a notification is: the counter increases by one per change in
 * commit order, so a notification whose counter skips one, a poll (every POLL_MS while no
 * notification comes) that finds the counter past the last one heard, or a reconnection
 * that finds it moved (or the first connection, which cannot know what came before it),
 * each ends in a "resync" - the caller looks at everything it serves again. A lost
 * connection is retried every RETRY_MS. Cost while idle: one indexed read
 * per POLL_MS on one connection.
 */
#define _GNU_SOURCE /* pipe2 */
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "obs/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS     1000 /* the change counter's poll while no notification comes */
#define RETRY_MS    1000 /* reconnection attempts while the store is unreachable */
#define PAYLOAD_MAX 256

typedef struct cs__watch {
    cs_registry_t *r;
    cs_registry_change_fn fn;
    void *user;
    int wake[2]; /* written once to stop the thread */
    pthread_t thread;
} cs__watch;

static void resync(cs__watch *w)
{
    cs_registry_change c = {"resync", "", 0};
    w->fn(w->user, &c);
}

/* One notification: reported unless this registry made the change; a counter that skips
 * one means a change went unheard, which a resync covers. */
static void on_notice(cs__watch *w, const char *payload, int64_t *seen)
{
    int64_t n = 0, version = 0;
    char origin[17], kind[32], name[CS_REGISTRY_NAME_MAX + 1];
    if (sscanf(payload, "%" SCNd64 " %16s %31s %63s %" SCNd64, &n, origin, kind, name, &version) !=
        5) {
        cs_log(CS_LOG_WARN, "cluster: unreadable change notification", "payload", payload, NULL);
        resync(w);
        return;
    }
    bool gap = n > *seen + 1;
    if (n > *seen) *seen = n;
    if (strcmp(origin, cs__registry_origin(w->r)) != 0) {
        cs_registry_change c = {kind, name, version};
        w->fn(w->user, &c);
    }
    if (gap) resync(w);
}

/* Waits ms on the wake pipe; true when the watch is stopping. */
static bool stopping(cs__watch *w, int ms)
{
    struct pollfd p = {.fd = w->wake[0], .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

static void *run(void *arg)
{
    cs__watch *w = arg;
    cs__store s = {NULL, NULL};
    int64_t seen = 0;
    bool heard = false; /* seen holds a counter read from the store */
    bool warned = false;
    for (;;) {
        cs_error err;
        if (!s.iface) {
            int64_t n = 0;
            cs_status rc = cs__store_connect(w->r, &s, &err);
            if (rc == CS_OK && (rc = s.iface->listen(s.ctx, &n, &err)) != CS_OK) {
                s.iface->close(s.ctx);
                s.iface = NULL;
            }
            if (rc != CS_OK) {
                if (!warned)
                    cs_log(CS_LOG_WARN, "cluster: cannot watch the registry, retrying", "error",
                           err.msg, NULL);
                warned = true;
                if (stopping(w, RETRY_MS)) break;
                continue;
            }
            if (warned) cs_log(CS_LOG_INFO, "cluster: watching the registry again", NULL);
            warned = false;
            /* Changes committed while nobody listened are unheard: look again - at the
             * first connection too, for those since the caller last read the store. */
            if (!heard || n != seen) resync(w);
            seen = n;
            heard = true;
        }
        char payload[PAYLOAD_MAX];
        int64_t n = seen;
        cs_status rc =
            s.iface->next_change(s.ctx, POLL_MS, w->wake[0], &n, payload, sizeof payload, &err);
        if (rc == CS_OK) {
            on_notice(w, payload, &seen);
        } else if (rc == CS_ERR_TIMEOUT) {
            if (n > seen) {
                seen = n;
                resync(w);
            }
        } else if (rc == CS_ERR_SHUTDOWN) {
            break;
        } else {
            cs_log(CS_LOG_WARN, "cluster: lost the registry's notifications, reconnecting", "error",
                   err.msg, NULL);
            warned = true;
            s.iface->close(s.ctx);
            s.iface = NULL;
        }
    }
    if (s.iface) s.iface->close(s.ctx);
    return NULL;
}

cs_status cs_registry_watch(cs_registry_t *r, cs_registry_change_fn fn, void *user, cs_error *err)
{
    struct cs__watch **slot = cs__registry_watch_slot(r);
    if (*slot) return cs_error_set(err, CS_ERR_EXISTS, "the registry is watched already");
    if (!cs__registry_shared(r)) return CS_OK;
    cs__watch *w = cs_calloc(1, sizeof *w);
    if (!w) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    *w = (cs__watch){.r = r, .fn = fn, .user = user, .wake = {-1, -1}};
    if (pipe2(w->wake, O_CLOEXEC) != 0) {
        cs_free(w);
        return cs_error_set(err, CS_ERR_INTERNAL, "cannot make the watch's pipe");
    }
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        close(w->wake[0]);
        close(w->wake[1]);
        cs_free(w);
        return cs_error_set(err, CS_ERR_INTERNAL, "cannot start the watch's thread");
    }
    *slot = w;
    return CS_OK;
}

void cs_registry_unwatch(cs_registry_t *r)
{
    struct cs__watch **slot = cs__registry_watch_slot(r);
    cs__watch *w = *slot;
    if (!w) return;
    ssize_t n = write(w->wake[1], "x", 1);
    (void)n;
    pthread_join(w->thread, NULL);
    close(w->wake[0]);
    close(w->wake[1]);
    cs_free(w);
    *slot = NULL;
}

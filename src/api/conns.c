/*
 * conns.c - the table of open connections, so that idle and slow ones cannot lock others out.
 *
 * libmicrohttpd's idle timeout restarts at every byte, so a client sending a header byte
 * every few seconds holds its connection for good, and at the connection limit new clients
 * are refused while such sockets stay open. Here every connection is tracked (from
 * MHD_OPTION_NOTIFY_CONNECTION) with the moment it began waiting for a request's headers:
 * when it opened, or when its last request ended. A connection that waits longer than
 * limits.header_timeout_s is shut down by a reaper thread (4 times a second), and when a new
 * connection leaves less than 1/16 of limits.max_connections free, the oldest waiting one is
 * shut down at once so that the newcomer and those after it get served. A connection whose
 * request is being read, run or answered is never touched here.
 *
 * Closing is shutdown(2) on the socket under the table's lock: libmicrohttpd then sees the
 * end of the stream and closes the connection itself. Its CLOSED notification (which takes
 * the same lock) comes before it closes the descriptor, so a descriptor shut down here
 * always still belongs to its connection. Cost: O(connections) per accept near the limit and
 * per reaper pass, at most max_connections (1024 by default) entries; one small allocation
 * per connection.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <sys/socket.h>

struct cs_api_conn {
    struct cs_api_conn *prev, *next;
    int fd;
    uint64_t waiting_since_ns; /* 0 while a request is in progress */
};

struct cs_api_conns {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    bool stop;
    cs_api_conn *head; /* newest first */
    unsigned n;
    uint64_t header_timeout_ns;
    unsigned reserve; /* connections kept free for newcomers */
};

/* Lock held: shuts down the connection that has waited longest for headers, other than
 * keep. False when none waits. */
static bool evict_oldest(cs_api_conns *t, const cs_api_conn *keep)
{
    cs_api_conn *oldest = NULL;
    for (cs_api_conn *c = t->head; c; c = c->next)
        if (c != keep && c->waiting_since_ns &&
            (!oldest || c->waiting_since_ns <= oldest->waiting_since_ns))
            oldest = c;
    if (!oldest) return false;
    shutdown(oldest->fd, SHUT_RDWR);
    oldest->waiting_since_ns = 0; /* shut once; it leaves the table when MHD closes it */
    return true;
}

static void *reap(void *arg)
{
    cs_api_conns *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        uint64_t now = cs_now_ns();
        for (cs_api_conn *c = t->head; c; c = c->next)
            if (c->waiting_since_ns && now - c->waiting_since_ns > t->header_timeout_ns) {
                shutdown(c->fd, SHUT_RDWR);
                c->waiting_since_ns = 0;
            }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

cs_status cs__api_conns_new(const cs_api_limits *lim, cs_api_conns **out, cs_error *err)
{
    cs_api_conns *t = cs_calloc(1, sizeof *t);
    if (!t) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    t->header_timeout_ns = (uint64_t)lim->header_timeout_s * 1000000000ull;
    t->reserve = lim->max_connections / 16 ? lim->max_connections / 16 : 1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (pthread_create(&t->reaper, NULL, reap, t) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        cs_free(t);
        return cs_error_set(err, CS_ERR_INTERNAL, "cannot start the connection reaper thread");
    }
    *out = t;
    return CS_OK;
}

void cs__api_conns_free(cs_api_conns *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->reaper, NULL);
    while (t->head) {
        cs_api_conn *c = t->head;
        t->head = c->next;
        cs_free(c);
    }
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    cs_free(t);
}

void cs__api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    cs_server *s = cls;
    cs_api_conns *t = s->conns;
    pthread_mutex_lock(&t->lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cs_api_conn *c = fd ? cs_calloc(1, sizeof *c) : NULL;
        if (c) {
            c->fd = fd->connect_fd;
            c->waiting_since_ns = cs_now_ns();
            c->next = t->head;
            if (t->head) t->head->prev = c;
            t->head = c;
            t->n++;
            if (t->n + t->reserve > s->opt.limits.max_connections) evict_oldest(t, c);
        }
        *socket_context = c; /* untracked when out of memory */
    } else if (*socket_context) {
        cs_api_conn *c = *socket_context;
        if (c->prev)
            c->prev->next = c->next;
        else
            t->head = c->next;
        if (c->next) c->next->prev = c->prev;
        t->n--;
        cs_free(c);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&t->lock);
}

void cs__api_conns_busy(cs_server *s, struct MHD_Connection *conn, bool busy)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    cs_api_conn *c = info ? info->socket_context : NULL;
    if (!c) return;
    pthread_mutex_lock(&s->conns->lock);
    c->waiting_since_ns = busy ? 0 : cs_now_ns();
    pthread_mutex_unlock(&s->conns->lock);
}

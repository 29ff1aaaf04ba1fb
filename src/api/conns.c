/*
 * conns.c - the table of open connections, so that idle and slow ones cannot lock others out,
 * and the lingering close of connections answered before their body was read.
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
 * always still belongs to its connection.
 *
 * Lingering close (nginx's lingering_close): a request refused on its headers (401, 403,
 * 413, a full queue's 429) is answered before its body is read, and libmicrohttpd then
 * closes the socket with the body still arriving, which makes the kernel reset the
 * connection; a client still sending its body (most do: they read only after sending) gets
 * "connection reset" instead of the answer. So at the CLOSED notification of such a
 * connection the socket is kept open on a duplicate descriptor: its sending side is shut
 * (the client sees the answer, then the end), and the reaper reads and discards what still
 * arrives until the client closes, LINGER_IDLE_S passes without a byte, or LINGER_TOTAL_S in
 * all (nginx's lingering_timeout and lingering_time); at most MAX_LINGER sockets at once,
 * beyond which they close as before.
 *
 * Cost: O(connections) per accept near the limit and per reaper pass, at most
 * max_connections (1024 by default) entries; one small allocation per connection and per
 * lingering socket; the reaper waits in epoll_wait for lingering sockets' bytes.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LINGER     256
#define LINGER_IDLE_S  5
#define LINGER_TOTAL_S 30

struct cs_api_conn {
    struct cs_api_conn *prev, *next;
    int fd;
    uint64_t waiting_since_ns; /* 0 while a request is in progress */
    bool linger;               /* answered before its body was read: close lingering */
};

typedef struct lingering {
    struct lingering *prev, *next;
    int fd; /* our duplicate; the connection's own is libmicrohttpd's and closed by it */
    uint64_t since_ns, last_ns;
} lingering;

struct cs_api_conns {
    pthread_mutex_t lock;
    pthread_t reaper;
    bool stop;
    int epfd, wake_fd; /* the reaper waits here: lingering sockets and the stop signal */
    cs_api_conn *head; /* newest first */
    unsigned n;
    lingering *lingering;
    unsigned n_lingering;
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

static void linger_end(cs_api_conns *t, lingering *l) /* lock held */
{
    epoll_ctl(t->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    if (l->prev)
        l->prev->next = l->next;
    else
        t->lingering = l->next;
    if (l->next) l->next->prev = l->prev;
    t->n_lingering--;
    cs_free(l);
}

/* Lock held: keeps the socket of a connection libmicrohttpd is about to close open on a
 * duplicate, its answer sent and its sending side shut, for the reaper to drain. */
static void linger_begin(cs_api_conns *t, int fd)
{
    if (t->n_lingering >= MAX_LINGER) return;
    lingering *l = cs_calloc(1, sizeof *l);
    int dup = l ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = l};
    if (dup < 0 || shutdown(dup, SHUT_WR) < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, dup, &ev) < 0) {
        if (dup >= 0) close(dup);
        cs_free(l);
        return;
    }
    l->fd = dup;
    l->since_ns = l->last_ns = cs_now_ns();
    l->next = t->lingering;
    if (t->lingering) t->lingering->prev = l;
    t->lingering = l;
    t->n_lingering++;
}

/* Lock held: reads off and drops what a lingering socket has, at most 256 KiB a wake-up
 * (the socket is level-triggered, so the rest comes at the next one; a fast sender cannot
 * keep the table's lock, which every connection's start and end takes); ends it at its end. */
static void linger_drain(cs_api_conns *t, lingering *l, uint64_t now)
{
    char sink[16384];
    for (int reads = 0; reads < 16; reads++) {
        ssize_t n = recv(l->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) {
            l->last_ns = now;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        linger_end(t, l); /* the client closed, or the connection failed */
        return;
    }
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
        for (lingering *l = t->lingering, *next; l; l = next) {
            next = l->next;
            if (now - l->last_ns > LINGER_IDLE_S * 1000000000ull ||
                now - l->since_ns > LINGER_TOTAL_S * 1000000000ull)
                linger_end(t, l);
        }
        pthread_mutex_unlock(&t->lock);
        struct epoll_event ev[64];
        int n = epoll_wait(t->epfd, ev, 64, 250);
        pthread_mutex_lock(&t->lock);
        now = cs_now_ns();
        /* Only this thread ends lingering sockets, so every pointer here is still live. */
        for (int i = 0; i < n; i++)
            if (ev[i].data.ptr != &t->wake_fd) linger_drain(t, ev[i].data.ptr, now);
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
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &t->wake_fd};
    if (t->epfd < 0 || t->wake_fd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake_fd, &wev) ||
        pthread_create(&t->reaper, NULL, reap, t) != 0) {
        if (t->epfd >= 0) close(t->epfd);
        if (t->wake_fd >= 0) close(t->wake_fd);
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
    pthread_mutex_unlock(&t->lock);
    uint64_t one = 1;
    if (write(t->wake_fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only on overflow, when a wake-up is pending anyway */
    }
    pthread_join(t->reaper, NULL);
    while (t->head) {
        cs_api_conn *c = t->head;
        t->head = c->next;
        cs_free(c);
    }
    while (t->lingering) linger_end(t, t->lingering);
    close(t->epfd);
    close(t->wake_fd);
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
        if (c->linger) linger_begin(t, c->fd);
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

void cs__api_conns_linger(cs_server *s, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    cs_api_conn *c = info ? info->socket_context : NULL;
    if (!c) return;
    pthread_mutex_lock(&s->conns->lock);
    c->linger = true;
    pthread_mutex_unlock(&s->conns->lock);
}

/*
 * front.c - the front door of a plain-HTTP server: accepts connections and checks each
 * one's first request line and headers before libmicrohttpd reads a byte of them.
 *
 * libmicrohttpd 0.9.75 answers some malformed requests itself, before any callback of ours,
 * with fixed HTML bodies (a Content-Length that is not a number, a URI or headers past its
 * memory pool, an HTTP version it does not speak, a bad chunk size), and it cuts a header
 * value at a NUL and joins obsolete folded lines without a trace. So the server listens
 * here: one thread accepts, and peeks (MSG_PEEK, leaving the bytes in the socket) at every
 * new connection's first request as it arrives. Malformed, it is answered here with our
 * JSON `{"error": ...}` and the right status, and closed; well-formed, the socket is handed
 * to libmicrohttpd (MHD_add_connection), which reads the same bytes. Only the first request
 * of a connection passes here: a later one on a kept-alive connection still meets
 * libmicrohttpd's own answers (documented in docs/api.md). With TLS the bytes are encrypted,
 * so a TLS server keeps libmicrohttpd's own listener and answers.
 *
 * Bounds: a connection waits here at most limits.header_timeout_s; at most
 * limits.max_connections wait (when full the oldest is closed for the newcomer), and at most
 * limits.max_connections_per_ip from one address (a connection over it is closed at once, as
 * libmicrohttpd does). A peek reads at most max_header / 2 bytes: what libmicrohttpd's pool
 * of max_header bytes surely parses. Cost: one epoll wake-up and one peek per arriving
 * segment of the first request, O(waiting connections) per accept; one small allocation per
 * waiting connection.
 */
#define _GNU_SOURCE /* accept4 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEADERS 100 /* header lines in a first request */

typedef struct waiting {
    struct waiting *prev, *next; /* oldest last */
    int fd;
    uint64_t since_ns;
    struct sockaddr_storage addr; /* the peer: IPv4, or IPv6 (IPv4-mapped on a dual stack) */
    socklen_t addr_len;
} waiting;

struct cs_api_front {
    cs_server *srv;
    int listen_fd, epfd, wake_fd;
    pthread_t thread;
    waiting *head;
    unsigned n;
    char *buf; /* peek buffer of cap + 1 bytes */
    size_t cap;
};

/* An answer of ours, then close. The answer is far smaller than a socket's send buffer, so
 * one non-blocking send delivers it; what the client sent is read off first so that the close
 * does not reset the connection before the client reads the answer. */
static void refuse(cs_api_front *f, waiting *w, int status, const char *reason, const char *msg)
{
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n{\"error\":\"%s\"}",
                     status, reason, strlen(msg) + 12, msg);
    while (recv(w->fd, f->buf, f->cap, MSG_DONTWAIT) > 0) {
    }
    if (n > 0 && (size_t)n < sizeof out && send(w->fd, out, (size_t)n, MSG_NOSIGNAL) < 0) {
        /* the client left: nothing to tell it */
    }
    shutdown(w->fd, SHUT_WR);
}

static void forget(cs_api_front *f, waiting *w, bool close_fd)
{
    epoll_ctl(f->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    if (close_fd) close(w->fd);
    if (w->prev)
        w->prev->next = w->next;
    else
        f->head = w->next;
    if (w->next) w->next->prev = w->prev;
    f->n--;
    cs_free(w);
}

/* Whether [p, e) is a valid chunk-size line body: hex digits (at most 15 significant, so
 * below 2^60) and optional ";extensions". */
static bool chunk_size_ok(const char *p, const char *e)
{
    const char *d = p;
    while (d < e && *d == '0') d++;
    const char *h = d;
    while (h < e && strchr("0123456789abcdefABCDEF", *h) && *h) h++;
    return h > p && h - d <= 15 && (h == e || *h == ';' || *h == ' ' || *h == '\t');
}

/* Whether [p, e) is a decimal number below 2^64. */
static bool byte_count(const char *p, const char *e)
{
    unsigned long long v = 0;
    if (p == e) return false;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9' || v > (~0ull - (unsigned)(*p - '0')) / 10) return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return true;
}

#define REFUSE(st, why, text) \
    (out->status = (st), out->reason = (why), out->msg = (text), CS__HEAD_REFUSE)

/* The end of the head in [p, e): the start of its empty line, as libmicrohttpd reads lines
 * (each ends in LF, a CR before it optional); *body is set past that line. NULL when the
 * empty line has not arrived. */
static char *head_end(char *p, char *e, char **body)
{
    for (char *lf = memchr(p, '\n', (size_t)(e - p)); lf;
         lf = memchr(lf + 1, '\n', (size_t)(e - lf - 1))) {
        char *q = lf + 1 < e && lf[1] == '\r' ? lf + 2 : lf + 1;
        if (q < e && *q == '\n') {
            *body = q + 1;
            return lf + 1;
        }
    }
    return NULL;
}

cs__head_verdict cs__api_head_judge(char *b, size_t n, bool full, cs__head_refusal *out)
{
    b[n] = '\0';
    /* Empty lines before the request line are ignored (RFC 9112 2.2), as libmicrohttpd does. */
    char *rl = b;
    while (rl < b + n && (*rl == '\n' || (*rl == '\r' && rl + 1 < b + n && rl[1] == '\n')))
        rl += *rl == '\r' ? 2 : 1;
    char *body = NULL, *end = head_end(rl, b + n, &body);
    char *eol = memchr(rl, '\n', n - (size_t)(rl - b));
    if (!end) {
        if (!full) return CS__HEAD_MORE;
        if (!eol) return REFUSE(414, "URI Too Long", "the request line is too long");
        return REFUSE(431, "Request Header Fields Too Large", "the request headers are too large");
    }
    /* The request line: METHOD SP target SP HTTP/x.y, the method a token. */
    char *rle = eol - (eol > rl && eol[-1] == '\r');
    size_t method = strspn(rl, CS__API_TCHAR);
    char *sp2 = rle > rl ? memrchr(rl, ' ', (size_t)(rle - rl)) : NULL;
    if (!method || rl[method] != ' ' || !sp2 || sp2 <= rl + method + 1 || rle - sp2 - 1 < 5 ||
        strncmp(sp2 + 1, "HTTP/", 5))
        return REFUSE(400, "Bad Request",
                      "malformed request line: expected METHOD SP target SP HTTP/1.1");
    for (char *c = rl; c < rle; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return REFUSE(400, "Bad Request",
                          "control characters are not allowed in the request line");
    if (rle - sp2 - 1 != 8 || (strncmp(sp2 + 1, "HTTP/1.1", 8) && strncmp(sp2 + 1, "HTTP/1.0", 8)))
        return REFUSE(505, "HTTP Version Not Supported",
                      "HTTP version not supported: only HTTP/1.0 and HTTP/1.1");
    bool chunked = false, expect = false;
    int headers = 0;
    for (char *line = eol + 1; line < end; headers++) {
        char *next = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)(next - line); /* up to the LF, the CR included */
        if (line[0] == ' ' || line[0] == '\t')
            return REFUSE(400, "Bad Request",
                          "obsolete line folding: a header line may not start with a space");
        if (memchr(line, '\0', len))
            return REFUSE(400, "Bad Request", "control characters are not allowed in headers");
        char *colon = memchr(line, ':', len);
        if (!colon) return REFUSE(400, "Bad Request", "a header line without a colon");
        char *v = colon + 1, *ve = line + len - (len && line[len - 1] == '\r');
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        size_t name = (size_t)(colon - line);
        if (name == 14 && !strncasecmp(line, "Content-Length", 14) && !byte_count(v, ve))
            return REFUSE(400, "Bad Request",
                          "Content-Length: expected a decimal byte count below 2^64");
        if (name == 17 && !strncasecmp(line, "Transfer-Encoding", 17))
            chunked = ve - v == 7 && !strncasecmp(v, "chunked", 7);
        if (name == 6 && !strncasecmp(line, "Expect", 6)) expect = true;
        line = next + 1;
    }
    if (headers > MAX_HEADERS)
        return REFUSE(431, "Request Header Fields Too Large", "too many headers");
    if (chunked && !expect) { /* the first chunk's size line, which follows the headers */
        char *c = body, *ce = memchr(c, '\n', n - (size_t)(c - b));
        if (!ce && !full && n - (size_t)(c - b) < 64) return CS__HEAD_MORE;
        if (ce && !chunk_size_ok(c, ce - (ce > c && ce[-1] == '\r')))
            return REFUSE(400, "Bad Request",
                          "chunked body: a chunk size is hexadecimal digits, below 2^60");
    }
    return CS__HEAD_PASS;
}
#undef REFUSE

/* Peeks at w's bytes and hands it on, answers it, or leaves it waiting. */
static void inspect(cs_api_front *f, waiting *w)
{
    ssize_t n = recv(w->fd, f->buf, f->cap, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) { /* closed or failed before a whole request */
        forget(f, w, true);
        return;
    }
    cs__head_refusal why;
    cs__head_verdict v = cs__api_head_judge(f->buf, (size_t)n, (size_t)n == f->cap, &why);
    if (v == CS__HEAD_MORE) return;
    if (v == CS__HEAD_REFUSE) {
        refuse(f, w, why.status, why.reason, why.msg);
        forget(f, w, true);
        return;
    }
    int fd = w->fd;
    struct sockaddr_storage addr = w->addr;
    socklen_t addr_len = w->addr_len;
    forget(f, w, false);
    /* MHD closes the socket itself when it cannot take it (its limits, memory). */
    MHD_add_connection(f->srv->mhd, fd, (const struct sockaddr *)&addr, addr_len);
}

/* Whether two peers have one IP address (ports aside), as libmicrohttpd's per-IP limit
 * counts them. */
static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

static void accept_all(cs_api_front *f)
{
    const cs_api_limits *lim = &f->srv->opt.limits;
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t alen = sizeof addr;
        int fd =
            accept4(f->listen_fd, (struct sockaddr *)&addr, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or out of descriptors: the next wake-up retries */
        unsigned same = 0;
        for (waiting *w = f->head; w; w = w->next) same += same_ip(&w->addr, &addr);
        waiting *w = same < lim->max_connections_per_ip ? cs_calloc(1, sizeof *w) : NULL;
        if (!w) {
            close(fd);
            continue;
        }
        if (f->n >= lim->max_connections) { /* close the oldest waiting one for the newcomer */
            waiting *old = f->head;
            while (old->next) old = old->next;
            forget(f, old, true);
        }
        *w = (waiting){NULL, f->head, fd, cs_now_ns(), addr, alen};
        if (f->head) f->head->prev = w;
        f->head = w;
        f->n++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.ptr = w};
        if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            forget(f, w, true);
        else
            inspect(f, w); /* what arrived with the handshake */
    }
}

static void *front_main(void *arg)
{
    cs_api_front *f = arg;
    uint64_t timeout_ns = (uint64_t)f->srv->opt.limits.header_timeout_s * 1000000000ull;
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(f->epfd, ev, 64, 250);
        /* Accepting may close the oldest waiting connections, which later events of this batch
         * may name: so the batch's connections are inspected first and accepting comes last. */
        bool incoming = false;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &f->wake_fd) return NULL;
            if (ev[i].data.ptr == f)
                incoming = true;
            else
                inspect(f, ev[i].data.ptr);
        }
        if (incoming) accept_all(f);
        uint64_t now = cs_now_ns();
        for (waiting *w = f->head, *next; w; w = next) {
            next = w->next;
            if (now - w->since_ns > timeout_ns) forget(f, w, true);
        }
    }
}

cs_status cs__api_front_new(cs_server *s, const struct sockaddr *addr, socklen_t addr_len,
                            cs_api_front **out, cs_error *err)
{
    cs_status rc = CS_ERR_IO;
    cs_api_front *f = cs_calloc(1, sizeof *f);
    if (!f) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    f->srv = s;
    f->listen_fd = f->epfd = f->wake_fd = -1;
    f->cap = s->opt.limits.max_header / 2;
    f->buf = cs_malloc(f->cap + 1);
    int one = 1, zero = 0;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (!f->buf) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* An IPv6 address listens dual-stack where the system allows it: "::" takes IPv4 too. */
    f->listen_fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->listen_fd >= 0 && addr->sa_family == AF_INET6)
        setsockopt(f->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (f->listen_fd < 0 ||
        setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(f->listen_fd, addr, addr_len) < 0 || listen(f->listen_fd, 4096) < 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&bound, &blen) < 0) {
        rc = cs_error_set(err, CS_ERR_IO, "cannot listen on %s:%d (is the port in use?): %s",
                          s->opt.host, s->opt.port, strerror(errno));
        goto out;
    }
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = f};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &f->wake_fd};
    if (f->epfd < 0 || f->wake_fd < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->listen_fd, &lev) ||
        epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->wake_fd, &wev) ||
        pthread_create(&f->thread, NULL, front_main, f)) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "cannot start the accepting thread: %s",
                          strerror(errno));
        goto out;
    }
    *out = f;
    f = NULL;
    rc = CS_OK;
out:
    if (f) {
        if (f->listen_fd >= 0) close(f->listen_fd);
        if (f->epfd >= 0) close(f->epfd);
        if (f->wake_fd >= 0) close(f->wake_fd);
        cs_free(f->buf);
        cs_free(f);
    }
    return rc;
}

void cs__api_front_free(cs_api_front *f)
{
    if (!f) return;
    uint64_t one = 1;
    if (write(f->wake_fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only on overflow, when a wake-up is pending anyway */
    }
    pthread_join(f->thread, NULL);
    while (f->head) forget(f, f->head, true);
    close(f->listen_fd);
    close(f->epfd);
    close(f->wake_fd);
    cs_free(f->buf);
    cs_free(f);
}

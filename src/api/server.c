/*
 * server.c - libmicrohttpd setup, the life of one request, limits, and graceful shutdown.
 *
 * libmicrohttpd runs `http_threads` threads, each with its own epoll loop, so a slow client
 * costs a socket and a little memory, never a thread; the idle timeout, the request
 * timeout and the header deadline (conns.c, which also closes the idlest connections when
 * nearly full) close it. Headers that frame a request ambiguously are refused (framing.c),
 * and an inference request for a full queue is refused at its headers. A request is read into a
 * body buffer bounded by limits.max_body (a Content-Length above it is refused before a byte of
 * body is read), then dispatched to the route table. A route that streams its body (a registry
 * push) is dispatched at the headers instead and fed chunk by chunk through its sink (api.h), under
 * its own size limit. Inference usually answers later from a runtime worker: the connection is
 * suspended (MHD_ALLOW_SUSPEND_RESUME) and resumed by the worker once the answer is built, so no
 * HTTP thread waits on a long computation (a fast unbatched model's request may run on the HTTP
 * thread itself and be answered at once; see runtime.h).
 *
 * Shutdown: SIGTERM/SIGINT write a byte to a self-pipe read by cs_server_run (the handler
 * does nothing else). Readiness turns 503 and inference is refused at once; the runtime drains;
 * then the server waits for the last answers to be written before stopping the daemon.
 */
#define _GNU_SOURCE /* pipe2 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "api/stream.h"
#include "api/tls.h"
#include "base/numfmt.h"
#include "obs/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cs_server_options_defaults(cs_server_options *o)
{
    *o = (cs_server_options){
        .host = "127.0.0.1",
        .port = 8080,
        .http_threads = 2,
        .exit_timeout_s = 30,
        .data_dir = "capstan-data",
        .repository_poll_s = 15,
        .limits =
            {
                .max_body = (size_t)64 << 20,
                .max_response = (size_t)64 << 20,
                .max_elements = (int64_t)1 << 26,
                .max_json_depth = 64,
                /* libmicrohttpd clears a connection's whole pool for every request, so
                 * this costs a memset per request: 16 KiB, nginx's order of magnitude. */
                .max_header = 16 << 10,
                .conn_timeout_s = 30,
                .request_timeout_s = 60,
                .min_body_rate = 500,
                .header_timeout_s = 10,
                .max_connections = 1024,
                .max_connections_per_ip = 64,
            },
    };
}

/* The self-pipe's write end, for the signal handler: the only state a handler may touch.
 * A pipe rather than a signalfd because libmicrohttpd sets its threads' signal masks itself
 * (blocking only SIGPIPE), so a signal may land on one of them. */
static volatile sig_atomic_t signal_fd = -1;

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    if (signal_fd >= 0 && write(signal_fd, &b, 1) < 0) {
        /* The pipe is full: a signal is pending already, which is all that matters. */
    }
    errno = saved;
}

static cs_status catch_signals(cs_server *s, cs_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cs_error_set(err, CS_ERR_INTERNAL, "pipe: %s", strerror(errno));
    s->sig_read = fds[0];
    s->sig_write = fds[1];
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    signal_fd = fds[1];
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* reloads the TLS certificate (cs_server_run) */
    /* A client that hangs up mid-answer must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return CS_OK;
}

static char *put_hex(char *o, unsigned long long v)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

/* The request id: the client's X-Request-Id when it is at most 128 bytes without control
 * characters (so it can be logged and echoed safely), else a fresh one. */
static void request_id(cs_api_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = h ? strlen(h) : 0;
    bool ok = n > 0 && n < sizeof r->id;
    for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)h[i] >= 0x20 && h[i] != 0x7f;
    if (ok) {
        memcpy(r->id, h, n + 1);
        return;
    }
    unsigned long long seq = atomic_fetch_add(&r->srv->next_id, 1);
    char *o = put_hex(r->id, r->srv->pid); /* "%x-%llx", without printf's cost */
    *o++ = '-';
    *put_hex(o, seq) = '\0';
}

static cs_api_req *req_new(cs_server *s, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    cs_api_req *r = cs_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = conn;
    r->url = url;
    r->method = method;
    r->start_ns = cs_now_ns();
    cs_sbuf_init(&r->body, s->opt.limits.max_body);
    cs_arena_init(&r->arena, 64 << 10);
    pthread_mutex_init(&r->lock, NULL);
    request_id(r);
    cs__api_trace_start(r);
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void req_free(cs_api_req *r)
{
    if (r->sink) r->sink->close(r->sink->ctx); /* first: its thread may still touch r */
    if (r->resp) MHD_destroy_response(r->resp);
    if (r->m) cs_rt_model_release(r->m);
    cs_sbuf_free(&r->body);
    cs_arena_free(&r->arena);
    pthread_mutex_destroy(&r->lock);
    atomic_fetch_sub(&r->srv->active, 1);
    cs_free(r);
}

static enum MHD_Result queue(cs_api_req *r)
{
    return MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
}

/* An answer at the headers, before any of the body is read: when the request declares a
 * body, its connection closes lingering (conns.c), so that a client still sending the body
 * reads this answer instead of a connection reset. */
static enum MHD_Result answer_early(cs_api_req *r)
{
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((cl && strcmp(cl, "0")) ||
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        cs__api_conns_linger(r->srv, r->conn);
    return queue(r);
}

/* After the handler: queue the answer if there is one, else wait for it suspended. The
 * lock orders this against the worker's answer: either the worker finds `suspended` set
 * and resumes, or this finds the answer and queues it; never neither. */
static enum MHD_Result settle(cs_api_req *r)
{
    pthread_mutex_lock(&r->lock);
    bool ready = r->resp != NULL;
    if (!ready) {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
    return ready ? queue(r) : MHD_YES;
}

/* Checks a declared Content-Length against the limit. A small body gets its room at once
 * (a failed reservation only means it grows as it arrives); a large one grows with what
 * really arrives, so a client cannot make the server reserve memory with a header alone. */
static bool body_too_large(cs_api_req *r, struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > r->srv->opt.limits.max_body) return true;
    if (n && n <= 1 << 20) (void)cs_sbuf_reserve(&r->body, (size_t)n);
    return false;
}

/* Whether the body still arrives in time: a buffered one within request_timeout_s; a streamed
 * one (a push of gigabytes) within request_timeout_s plus a second for every min_body_rate
 * bytes it has delivered, as Apache's mod_reqtimeout extends its body timeout, so a push
 * trickled below that rate is cut off instead of holding a connection for good. */
static bool body_in_time(const cs_api_req *r, const cs_api_limits *lim)
{
    double allowed = lim->request_timeout_s;
    if (r->sink) allowed += (double)r->received / (lim->min_body_rate ? lim->min_body_rate : 1);
    return cs_elapsed_s(r->start_ns) <= allowed;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    cs_server *s = cls;
    cs_api_req *r = *con_cls;
    if (!r) {
        r = req_new(s, conn, url, method);
        if (!r) return MHD_NO; /* out of memory: drop the connection */
        *con_cls = r;
        cs__api_conns_busy(s, conn, true);
        if (!cs__api_framing_or_400(r, version)) return answer_early(r);
        r->route = cs_api_route_find(r);
        if (r->route && !cs_api_admit(r)) return answer_early(r);
        if (cs_api_shed_early(r)) return answer_early(r);
        if (r->encoding != CS_API_ENC_IDENTITY && r->route && r->route->streams) {
            cs_api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                         "Content-Encoding: an upload is sent uncompressed (identity)");
            cs_api_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            return answer_early(r);
        }
        if (cs_api_dispatch_stream(r)) {
            /* Its handler either answered at once (a bad header, an unknown model) or
             * installed a sink whose answer comes at the body's end at the earliest. */
            return r->sink ? MHD_YES : answer_early(r);
        }
        if (body_too_large(r, conn)) {
            cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                         "request body is larger than the %zu-byte limit", s->opt.limits.max_body);
            return answer_early(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        /* libmicrohttpd takes an answer only once the body is in, so a body past the limit is
         * answered 413 at its end and the rest of it is dropped unread, not stored; the
         * request timeout bounds how long that may go on. */
        const cs_api_limits *lim = &s->opt.limits;
        r->received += *upload_size;
        if (r->sink)
            r->sink->write(r->sink->ctx, upload, *upload_size);
        else if (!r->resp && cs_sbuf_append(&r->body, upload, *upload_size) != CS_OK)
            cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                         "request body is larger than the %zu-byte limit", lim->max_body);
        *upload_size = 0;
        if (body_in_time(r, lim)) return MHD_YES;
        r->status = MHD_HTTP_REQUEST_TIMEOUT; /* for the log: the connection just closes */
        return MHD_NO;
    }
    if (r->sink && !r->sink_ended) {
        r->sink_ended = true;
        r->sink->end(r->sink->ctx);
        return settle(r); /* the sink's thread answers, or did already */
    }
    if (r->resp) {
        /* Resumed by the worker that answered, or the end of a body answered already. */
        r->suspended = false;
        return queue(r);
    }
    if (cs__api_decode_body_or_4xx(r)) cs_api_dispatch(r);
    return settle(r);
}

static void log_request(cs_api_req *r, double dur_s)
{
    cs_log_level level = r->status >= 500 ? CS_LOG_ERROR : CS_LOG_INFO;
    if (level < cs_log_get_level()) return; /* filtered: spare the formatting */
    char status[16], dur[32], trace_id[33], span_id[17];
    cs_trace_hex(r->trace.trace_id, 16, trace_id);
    cs_trace_hex(r->trace.span_id, 8, span_id);
    snprintf(status, sizeof status, CS_LOG_NUM "%d", r->status);
    snprintf(dur, sizeof dur, CS_LOG_NUM "%" PRIu64, (uint64_t)(dur_s * 1e6));
    cs_log(level, "request", "request_id", r->id, "method", r->method, "path", r->url, "model",
           r->model, "version", r->version, "status", status, "duration_us", dur, "trace_id",
           trace_id, "span_id", span_id, NULL);
}

static void observe(cs_api_req *r, double dur_s)
{
    cs_server *s = r->srv;
    char code[CS_NUMFMT_MAX];
    cs_numfmt_i64(code, r->status);
    const char *model = r->labelled ? r->model : "";
    const char *version = r->labelled ? r->version : "";
    const char *rl[] = {model, version, code};
    cs_metric *c = s->requests ? cs_metric_get(s->requests, rl) : NULL;
    if (c) cs_metric_add(c, 1);
    const char *dl[] = {r->route ? r->route->pattern : "", model, version};
    cs_metric *h = s->duration ? cs_metric_get(s->duration, dl) : NULL;
    if (h) cs_metric_observe(h, dur_s);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    cs_api_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) cs__api_conns_busy(r->srv, conn, false);
    if (!r->resp && !r->status) r->status = 499; /* the client left before an answer */
    uint64_t end = cs_now_ns();
    double dur = (double)(end - r->start_ns) / 1e9;
    log_request(r, dur);
    observe(r, dur);
    cs__api_trace_end(r, end);
    req_free(r);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    cs_log(CS_LOG_WARN, "http", "detail", msg, NULL);
}

static cs_status register_metrics(cs_server *s, cs_error *err)
{
    static const char *const req_labels[] = {"model", "version", "code", NULL};
    static const char *const route_labels[] = {"http_route", "model", "version", NULL};
    static const char *const build_labels[] = {"version", "revision", NULL};
    s->requests = cs_metrics_family(s->metrics, CS_METRIC_COUNTER, "capstan_requests_total",
                                    "HTTP requests answered, by model, version and status code",
                                    req_labels, NULL, 0);
    /* The runtime's capstan_request_duration_seconds starts at submit; this one starts at
     * the request's headers, so it also counts reading and decoding the body. */
    s->duration = cs_metrics_family(
        s->metrics, CS_METRIC_HISTOGRAM, "capstan_http_request_duration_seconds",
        "Time from request headers to the answer being ready, by route pattern (and model)",
        route_labels, NULL, 0);
    cs_metric_family *build =
        cs_metrics_family(s->metrics, CS_METRIC_GAUGE, "capstan_build_info",
                          "Version and git revision of this binary", build_labels, NULL, 0);
    const char *bv[] = {CS_VERSION, CS_GIT_REV};
    cs_metric *b = build ? cs_metric_get(build, bv) : NULL;
    if (!s->requests || !s->duration || !b)
        return cs_error_set(err, CS_ERR_NOMEM, "cannot register the server's metrics");
    cs_metric_set(b, 1);
    return CS_OK;
}

/* The address to listen on: an IPv4 or IPv6 literal ("0.0.0.0", "::", "::1") or a host
 * name. A name's IPv4 address is preferred ("localhost" is 127.0.0.1, where clients and
 * the docs look first), else its first address as getaddrinfo orders them. */
static cs_status listen_addr(const cs_server_options *o, struct sockaddr_storage *addr,
                             socklen_t *len, cs_error *err)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &res);
    if (gai != 0 || !res)
        return cs_error_set(err, CS_ERR_INVALID,
                            "--host: '%s' is not an IPv4 or IPv6 address or a known host name (%s)",
                            o->host, gai ? gai_strerror(gai) : "no address");
    const struct addrinfo *pick = res;
    for (const struct addrinfo *r = res; r; r = r->ai_next)
        if (r->ai_family == AF_INET) {
            pick = r;
            break;
        }
    memcpy(addr, pick->ai_addr, pick->ai_addrlen);
    *len = pick->ai_addrlen;
    freeaddrinfo(res);
    return CS_OK;
}

static cs_status start_daemon(cs_server *s, cs_error *err)
{
    const cs_server_options *o = &s->opt;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    cs_status lrc = listen_addr(o, &addr, &addr_len, err);
    if (lrc != CS_OK) return lrc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    /* An IPv6 address is dual-stack where the system allows it, as front.c listens. */
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_DUAL_STACK;
    /* Plain HTTP is accepted by front.c, which checks each first request before MHD reads it;
     * TLS leaves listening to MHD (front.c cannot read encrypted bytes). */
    struct MHD_OptionItem tls[] = {{MHD_OPTION_SOCK_ADDR, 0, &addr},
                                   {MHD_OPTION_END, 0, NULL},
                                   {MHD_OPTION_END, 0, NULL},
                                   {MHD_OPTION_END, 0, NULL}};
    if (!o->tls_cert && !o->tls_key) {
        flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    } else {
        cs_status rc = cs_tls_new(o->tls_cert, o->tls_key, &s->tls, err);
        if (rc != CS_OK) return rc;
        flags |= MHD_USE_TLS;
        tls[1] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)cs_tls_retrieve};
        tls[2] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)cs_tls_priorities()};
    }
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
        MHD_OPTION_ARRAY, tls, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, o->limits.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        o->limits.max_connections_per_ip, MHD_OPTION_NOTIFY_CONNECTION, cs__api_conns_notify, s,
        MHD_OPTION_CONNECTION_TIMEOUT, o->limits.conn_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o->limits.max_header, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, cs__api_unescape, NULL, MHD_OPTION_END);
    if (!s->mhd)
        return cs_error_set(err, CS_ERR_IO, "cannot listen on %s:%d (is the port in use?)", o->host,
                            o->port);
    if (!s->tls)
        return cs__api_front_new(s, (const struct sockaddr *)&addr, addr_len, &s->front, err);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    return CS_OK;
}

cs_status cs_server_new(const cs_server_options *o, cs_runtime *rt, cs_metrics *metrics,
                        cs_server **out, cs_error *err)
{
    cs_status rc = CS_ERR_NOMEM;
    cs_server *s = cs_calloc(1, sizeof *s);
    if (!s) return cs_error_set(err, rc, "out of memory");
    s->opt = *o;
    s->rt = rt;
    s->metrics = metrics;
    s->sig_read = s->sig_write = -1;
    s->pid = (unsigned)getpid();
    if (!o->data_dir || !realpath(o->data_dir, s->data_dir_abs)) s->data_dir_abs[0] = '\0';
    pthread_mutex_init(&s->repo_lock, NULL);
    pthread_mutex_init(&s->repo_map_lock, NULL);
    cs_map_init(&s->repo);
    if ((rc = catch_signals(s, err)) != CS_OK) goto out;
    if ((rc = register_metrics(s, err)) != CS_OK) goto out;
    if ((rc = cs_dra_state_new(&o->devices, &s->dra, err)) != CS_OK) goto out;
    s->gpu_metrics = cs__api_gpu_metrics_new(s->dra);
    if ((rc = cs_api_serving_init(s, err)) != CS_OK) goto out;
    if (o->registry) {
        cs_deployer_options d = {
            .rt = rt, .registry = o->registry, .metrics = metrics, .devices = s->dra};
        if ((rc = cs_deployer_new(&d, &s->deployer, err)) != CS_OK) goto out;
    }
    /* After the deployer: the --model entries run as its implicit deployments. */
    if ((rc = cs_api_repo_init(s, err)) != CS_OK) goto out;
    if ((rc = cs__api_cluster_start(s, err)) != CS_OK) goto out;
    if ((rc = cs_api_auth_bootstrap(s, err)) != CS_OK) goto out;
    if ((rc = cs__api_conns_new(&o->limits, &s->conns, err)) != CS_OK) goto out;
    if ((rc = cs__api_stream_new(s, &s->stream, err)) != CS_OK) goto out;
    if ((rc = start_daemon(s, err)) != CS_OK) goto out;
    *out = s;
    s = NULL;
out:
    cs_server_free(s);
    return rc;
}

int cs_server_port(const cs_server *s)
{
    return s->port;
}

/* Waits until every request has been answered and its answer written, or until the
 * deadline; polls every 10 ms, which is nothing next to a drain. */
static bool wait_idle(cs_server *s, uint64_t deadline_ns)
{
    while (atomic_load(&s->active) > 0) {
        if (cs_now_ns() >= deadline_ns) return false;
        cs_sleep_ns(10 * 1000 * 1000);
    }
    return true;
}

/* SIGHUP: new handshakes use the certificate files as they are now; a pair that does not
 * load leaves the old one serving, and the log says why. */
static void reload_tls(cs_server *s)
{
    cs_error e;
    if (!s->tls)
        cs_log(CS_LOG_INFO, "SIGHUP: nothing to reload (no --tls-cert)", NULL);
    else if (cs_tls_reload(s->tls, &e) != CS_OK)
        cs_log(CS_LOG_ERROR, "SIGHUP: TLS certificate not reloaded, the old one stays", "error",
               e.msg, NULL);
    else
        cs_log(CS_LOG_INFO, "SIGHUP: TLS certificate reloaded", "cert", s->opt.tls_cert, NULL);
}

cs_status cs_server_run(cs_server *s, cs_error *err)
{
    char port[16];
    snprintf(port, sizeof port, CS_LOG_NUM "%d", s->port);
    cs_log(CS_LOG_INFO, "listening", "host", s->opt.host, "port", port, "scheme",
           s->tls ? "https" : "http", NULL);
    /* Linux hands a process-directed signal to the main thread (this one) first. Waiting in
     * poll with a timeout rather than in read keeps ThreadSanitizer working: it runs a
     * deferred handler only when the thread next leaves a blocking call, which a bare read
     * on a quiet pipe never does. Waking five times a second costs nothing measurable. */
    unsigned char signo = 0;
    for (;;) {
        struct pollfd pfd = {.fd = s->sig_read, .events = POLLIN};
        int n = poll(&pfd, 1, 200);
        if (n > 0 && read(s->sig_read, &signo, 1) == 1) {
            if (signo != SIGHUP) break;
            reload_tls(s);
        }
        if (n < 0 && errno != EINTR)
            return cs_error_set(err, CS_ERR_INTERNAL, "waiting for signals: %s", strerror(errno));
    }
    atomic_store(&s->draining, true);
    char sig[16];
    snprintf(sig, sizeof sig, "%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
    cs_log(CS_LOG_INFO, "draining", "signal", sig, NULL);

    uint64_t deadline = cs_now_ns() + (uint64_t)s->opt.exit_timeout_s * 1000000000ull;
    cs_status rc = cs_runtime_drain(s->rt, (uint64_t)s->opt.exit_timeout_s * 1000000000ull, err);
    /* Answers built by the last workers still have to reach their clients. A request that
     * arrives now is refused at once, so this only waits for what was in flight. */
    if (rc == CS_OK && !wait_idle(s, deadline))
        rc = cs_error_set(err, CS_ERR_LIMIT, "requests still open after %u s",
                          s->opt.exit_timeout_s);
    if (rc != CS_OK) return rc; /* workers may still answer: the daemon must stay up */
    cs__api_front_free(s->front);
    s->front = NULL;
    cs__api_stream_stop(s->stream);
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    cs__api_conns_free(s->conns);
    s->conns = NULL;
    cs_log(CS_LOG_INFO, "stopped", NULL);
    return rc;
}

void cs_server_free(cs_server *s)
{
    if (!s) return;
    cs__api_front_free(s->front);   /* first: it hands connections to the daemon */
    cs__api_stream_stop(s->stream); /* it resumes what the daemon must not find suspended */
    if (s->mhd) MHD_stop_daemon(s->mhd);
    cs__api_stream_free(s->stream); /* after the daemon: a stream's end uses it */
    cs__api_conns_free(s->conns);   /* after the daemon: its callbacks use the table */
    cs__api_cluster_stop(s);        /* before what its changes refresh */
    cs_deployer_free(s->deployer);
    cs_api_repo_free(s);
    cs__api_gpu_metrics_free(s->gpu_metrics);
    cs_dra_state_free(s->dra);
    cs_api_serving_free(s);
    cs_tls_free(s->tls);
    if (s->sig_write >= 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal_fd = -1;
        close(s->sig_write);
    }
    if (s->sig_read >= 0) close(s->sig_read);
    pthread_mutex_destroy(&s->repo_lock);
    pthread_mutex_destroy(&s->repo_map_lock);
    cs_free(s);
}

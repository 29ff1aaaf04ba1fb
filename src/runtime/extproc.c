/*
 * extproc.c - child processes of an external runtime and the HTTP calls to them; see
 * extproc.h.
 *
 * Start: everything the child needs (argv with $(NAME) expanded, the environment, the CPU
 * set) is built before fork, because a forked child of a threaded server may only make
 * async-signal-safe calls until it execs. A close-on-exec pipe tells the parent whether the
 * exec happened (EOF) or failed (the child writes errno), so a missing program is an error of
 * the start, not a mysterious exit.
 *
 * Monitor: one thread per process polls the output pipe with a timeout that is the next
 * probe's due time (20 ms while starting, probe_period_ms once READY), logs complete lines
 * (at most 4 KiB each; longer ones are split), checks for an exit with waitid(WNOWAIT) on each
 * wake-up, and probes readiness with cs_proxy_call. Costs: a thread and a pipe per process, a
 * loopback HTTP request per probe.
 *
 * Proxy: libcurl's easy interface, one handle per thread (a pthread key frees it when the
 * thread exits), reset between calls so that each call's options start clean while its
 * connection cache keeps the runtime's keep-alive connections.
 */
#define _GNU_SOURCE /* execvpe, sigabbrev_np, sched_setaffinity */
#include "runtime/extproc.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/sbuf.h"
#include "obs/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STARTUP_PROBE_MS 20
#define LINE_MAX_BYTES   4096

struct cs_extproc {
    char name[128];
    char readiness_path[128];
    int port;
    pid_t pid;
    int out_fd; /* read end of the child's stdout+stderr; -1 once at EOF */
    int wake_r, wake_w;
    int64_t startup_timeout_ms, probe_period_ms, probe_timeout_ms;
    int failure_threshold;
    void (*on_change)(void *ud, cs_extproc_state state);
    void *ud;
    pthread_t monitor;
    atomic_int state;
    atomic_ullong since_ns;
    atomic_bool stopping, quit, exited;
    pthread_mutex_t lock; /* reason */
    char reason[CS_ERROR_MSG_MAX];
};

/* --- building the child's argv and environment (before fork) ---------------------------- */

/* The value of NAME (n bytes) among env's "NAME=value" entries, or NULL. */
static const char *lookup(const char *const *env, int n_env, const char *name, size_t n)
{
    for (int i = n_env - 1; i >= 0; i--)
        if (!strncmp(env[i], name, n) && env[i][n] == '=') return env[i] + n + 1;
    return NULL;
}

/* s with $(NAME) replaced from env and $$ turned into $ (Kubernetes' expansion), cs_malloc'd. */
static char *expand(const char *s, const char *const *env, int n_env)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (const char *p = s; *p;) {
        const char *close = p[0] == '$' && p[1] == '(' ? strchr(p + 2, ')') : NULL;
        const char *v = close ? lookup(env, n_env, p + 2, (size_t)(close - p - 2)) : NULL;
        if (v) {
            cs_sbuf_puts(&b, v);
            p = close + 1;
        } else if (p[0] == '$' && p[1] == '$') {
            cs_sbuf_puts(&b, "$");
            p += 2;
        } else {
            cs_sbuf_append(&b, p++, 1);
        }
    }
    return cs_sbuf_take(&b);
}

static void free_strv(char **v)
{
    for (int i = 0; v && v[i]; i++) cs_free(v[i]);
    cs_free(v);
}

/* The server's environment with o->env over it (an entry of the same name replaced). */
static char **child_env(const cs_extproc_opts *o)
{
    int n = 0;
    while (environ[n]) n++;
    char **e = cs_calloc((size_t)(n + o->n_env + 1), sizeof *e);
    int k = 0;
    for (int i = 0; e && i < n; i++) {
        size_t len = strcspn(environ[i], "=");
        if (lookup(o->env, o->n_env, environ[i], len)) continue;
        if (!(e[k++] = cs_strdup(environ[i]))) goto fail;
    }
    for (int i = 0; e && i < o->n_env; i++) {
        size_t len = strcspn(o->env[i], "=");
        bool later = false; /* a name given twice: the last one wins */
        for (int j = i + 1; j < o->n_env; j++)
            later |= !strncmp(o->env[j], o->env[i], len) && o->env[j][len] == '=';
        if (!later && !(e[k++] = cs_strdup(o->env[i]))) goto fail;
    }
    return e;
fail:
    free_strv(e);
    return NULL;
}

/* --- state ------------------------------------------------------------------------------- */

static void set_state(cs_extproc *p, cs_extproc_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_state(cs_extproc *p, cs_extproc_state st, const char *fmt, ...)
{
    pthread_mutex_lock(&p->lock);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->reason, sizeof p->reason, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->since_ns, cs_wall_ns());
    atomic_store(&p->state, (int)st);
    if (st == CS_EXTPROC_READY)
        cs_log(CS_LOG_INFO, "runtime instance ready", "instance", p->name, NULL);
    else if (st == CS_EXTPROC_FAILED)
        cs_log(CS_LOG_WARN, "runtime instance failed", "instance", p->name, "reason", p->reason,
               NULL);
    if (p->on_change && !atomic_load(&p->stopping)) p->on_change(p->ud, st);
}

cs_extproc_state cs_extproc_state_of(const cs_extproc *p)
{
    return (cs_extproc_state)atomic_load(&p->state);
}

int cs_extproc_pid(const cs_extproc *p)
{
    return (int)p->pid;
}

uint64_t cs_extproc_since_ns(const cs_extproc *p)
{
    return atomic_load(&p->since_ns);
}

void cs_extproc_reason(cs_extproc *p, char *out, size_t cap)
{
    pthread_mutex_lock(&p->lock);
    snprintf(out, cap, "%s", cs_extproc_state_of(p) == CS_EXTPROC_FAILED ? p->reason : "");
    pthread_mutex_unlock(&p->lock);
}

/* --- the monitor thread ------------------------------------------------------------------- */

static void log_lines(cs_extproc *p, char *buf, size_t *used, bool flush)
{
    size_t start = 0;
    for (size_t i = 0; i < *used; i++) {
        if (buf[i] != '\n') continue;
        buf[i] = '\0';
        cs_log(CS_LOG_INFO, "runtime output", "instance", p->name, "line", buf + start, NULL);
        start = i + 1;
    }
    if (start == 0 && (*used == LINE_MAX_BYTES - 1 || (flush && *used))) { /* a long line */
        buf[*used] = '\0';
        cs_log(CS_LOG_INFO, "runtime output", "instance", p->name, "line", buf, NULL);
        start = *used;
    }
    memmove(buf, buf + start, *used - start);
    *used -= start;
}

/* Whether the process has exited (without reaping it); the reason is set when it has. */
static bool check_exit(cs_extproc *p)
{
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != p->pid)
        return false;
    atomic_store(&p->exited, true);
    bool starting = cs_extproc_state_of(p) == CS_EXTPROC_STARTING;
    const char *when = starting ? " before it was ready" : "";
    if (si.si_code == CLD_EXITED)
        set_state(p, CS_EXTPROC_FAILED, "process %d exited with status %d%s", (int)p->pid,
                  si.si_status, when);
    else
        set_state(p, CS_EXTPROC_FAILED, "process %d was killed by signal %d (SIG%s)%s", (int)p->pid,
                  si.si_status, sigabbrev_np(si.si_status) ? sigabbrev_np(si.si_status) : "?",
                  when);
    return true;
}

/* GET readiness_path: whether it answered 200; *why says what it got otherwise. */
static bool probe(cs_extproc *p, char *why, size_t cap)
{
    cs_proxy_req q = {.port = p->port,
                      .method = "GET",
                      .path = p->readiness_path,
                      .timeout_ms = p->probe_timeout_ms};
    cs_proxy_resp r;
    cs_error err;
    cs_status rc = cs_proxy_call(&q, &r, &err);
    bool ok = rc == CS_OK && r.status == 200;
    if (rc != CS_OK)
        snprintf(why, cap, "%s", err.msg);
    else if (!ok)
        snprintf(why, cap, "GET %s answered %d", p->readiness_path, r.status);
    cs_free(r.body);
    return ok;
}

static void *monitor(void *arg)
{
    cs_extproc *p = arg;
    char buf[LINE_MAX_BYTES];
    size_t used = 0;
    int64_t started = (int64_t)(cs_now_ns() / 1000000), next_probe = started;
    int fails = 0;
    char why[CS_ERROR_MSG_MAX] = "no answer yet";
    while (!atomic_load(&p->quit)) {
        int64_t now = (int64_t)(cs_now_ns() / 1000000);
        int timeout = next_probe > now ? (int)(next_probe - now) : 0;
        if (cs_extproc_state_of(p) == CS_EXTPROC_FAILED || atomic_load(&p->stopping))
            timeout = 100; /* only the output and the quit flag are left to watch */
        struct pollfd fds[2] = {{.fd = p->wake_r, .events = POLLIN},
                                {.fd = p->out_fd, .events = POLLIN}};
        int n = poll(fds, p->out_fd >= 0 ? 2 : 1, timeout);
        if (n > 0 && fds[0].revents) {
            char drain[64];
            while (read(p->wake_r, drain, sizeof drain) > 0) {
            }
        }
        if (n > 0 && p->out_fd >= 0 && fds[1].revents) {
            ssize_t got = read(p->out_fd, buf + used, sizeof buf - 1 - used);
            if (got > 0) {
                used += (size_t)got;
                log_lines(p, buf, &used, false);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                log_lines(p, buf, &used, true);
                close(p->out_fd);
                p->out_fd = -1;
            }
        }
        if (atomic_load(&p->stopping) || atomic_load(&p->exited)) continue;
        if (check_exit(p)) continue;
        now = (int64_t)(cs_now_ns() / 1000000);
        if (now < next_probe || cs_extproc_state_of(p) == CS_EXTPROC_FAILED) continue;
        bool ok = probe(p, why, sizeof why);
        now = (int64_t)(cs_now_ns() / 1000000);
        if (cs_extproc_state_of(p) == CS_EXTPROC_STARTING) {
            if (ok) {
                set_state(p, CS_EXTPROC_READY, NULL);
                next_probe = now + p->probe_period_ms;
            } else if (now - started >= p->startup_timeout_ms) {
                set_state(p, CS_EXTPROC_FAILED, "not ready within %lld ms (last probe: %s)",
                          (long long)p->startup_timeout_ms, why);
            } else {
                next_probe = now + STARTUP_PROBE_MS;
            }
        } else {
            fails = ok ? 0 : fails + 1;
            if (fails >= p->failure_threshold)
                set_state(p, CS_EXTPROC_FAILED, "readiness probe failed %d times in a row (%s)",
                          fails, why);
            next_probe = now + p->probe_period_ms;
        }
    }
    if (p->out_fd >= 0) { /* what the process wrote before it was stopped */
        ssize_t got;
        while ((got = read(p->out_fd, buf + used, sizeof buf - 1 - used)) > 0) {
            used += (size_t)got;
            log_lines(p, buf, &used, false);
        }
        log_lines(p, buf, &used, true);
    }
    return NULL;
}

/* --- start and stop ----------------------------------------------------------------------- */

/* The child, between fork and exec: async-signal-safe calls only. */
static void child(char **argv, char **envp, int out_w, int err_w, const cpu_set_t *cpus,
                  pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127); /* the parent died before the line above */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0) goto fail;
    if (cpus && sched_setaffinity(0, sizeof *cpus, cpus) != 0) goto fail;
    /* Nothing of the server's (its listening socket, its database) leaks into the runtime;
     * err_w stays open until the exec closes it. */
    if (err_w > 3) close_range(3, (unsigned)err_w - 1, 0);
    close_range((unsigned)err_w + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execvpe(argv[0], argv, envp);
fail:;
    int e = errno;
    (void)!write(err_w, &e, sizeof e);
    _exit(127);
}

cs_status cs_extproc_start(const cs_extproc_opts *o, cs_extproc **out, cs_error *err)
{
    *out = NULL;
    if (o->argc < 1 || o->argc > 256 || o->n_env < 0 || o->n_env > 512)
        return cs_error_set(err, CS_ERR_INVALID, "command: 1-256 arguments, env: at most 512");
    cs_status rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_extproc *p = cs_calloc(1, sizeof *p);
    char **argv = cs_calloc((size_t)o->argc + 1, sizeof *argv), **envp = child_env(o);
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, wake[2] = {-1, -1};
    if (!p || !argv || !envp) goto out;
    for (int i = 0; i < o->argc; i++)
        if (!(argv[i] = expand(o->argv[i], o->env, o->n_env))) goto out;
    snprintf(p->name, sizeof p->name, "%s", o->name);
    snprintf(p->readiness_path, sizeof p->readiness_path, "%s", o->readiness_path);
    p->port = o->port;
    p->startup_timeout_ms = o->startup_timeout_ms;
    p->probe_period_ms = o->probe_period_ms;
    p->probe_timeout_ms = o->probe_timeout_ms;
    p->failure_threshold = o->failure_threshold;
    p->on_change = o->on_change;
    p->ud = o->ud;
    p->out_fd = p->wake_r = p->wake_w = -1;
    atomic_init(&p->state, CS_EXTPROC_STARTING);
    atomic_init(&p->since_ns, cs_wall_ns());
    pthread_mutex_init(&p->lock, NULL);
    cpu_set_t set, *cpus = NULL;
    if (o->n_cpus > 0) {
        CPU_ZERO(&set);
        for (int i = 0; i < o->n_cpus; i++)
            if (o->cpus[i] >= 0 && o->cpus[i] < CPU_SETSIZE) CPU_SET(o->cpus[i], &set);
        cpus = &set;
    }
    if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
        pipe2(wake, O_CLOEXEC | O_NONBLOCK)) {
        rc = cs_error_set(err, CS_ERR_IO, "cannot create pipes: %s", strerror(errno));
        goto out;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        rc = cs_error_set(err, CS_ERR_LIMIT, "cannot start '%s': %s", argv[0], strerror(errno));
        goto out;
    }
    if (pid == 0) child(argv, envp, out_pipe[1], err_pipe[1], cpus, parent);
    setpgid(pid, pid); /* as the child does: whichever runs first */
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
    int child_errno = 0;
    ssize_t got;
    while ((got = read(err_pipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    if (got > 0) {
        waitpid(pid, NULL, 0);
        rc = cs_error_set(err, CS_ERR_INVALID, "command '%s': %s", argv[0], strerror(child_errno));
        goto out;
    }
    p->pid = pid;
    p->out_fd = out_pipe[0];
    p->wake_r = wake[0];
    p->wake_w = wake[1];
    out_pipe[0] = wake[0] = wake[1] = -1;
    if (pthread_create(&p->monitor, NULL, monitor, p) != 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        rc = cs_error_set(err, CS_ERR_LIMIT, "cannot start the monitor thread of '%s'", p->name);
        goto out;
    }
    cs_log(CS_LOG_INFO, "runtime instance started", "instance", p->name, "command", argv[0], NULL);
    *out = p;
    p = NULL;
    rc = CS_OK;
out:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0) close(out_pipe[i]);
        if (err_pipe[i] >= 0) close(err_pipe[i]);
        if (wake[i] >= 0) close(wake[i]);
    }
    if (p) {
        if (p->out_fd >= 0) close(p->out_fd);
        if (p->wake_r >= 0) close(p->wake_r);
        if (p->wake_w >= 0) close(p->wake_w);
        pthread_mutex_destroy(&p->lock);
        cs_free(p);
    }
    free_strv(argv);
    free_strv(envp);
    return rc;
}

/* Waits up to ms for the process to exit; whether it did. */
static bool wait_exit(cs_extproc *p, int64_t ms)
{
    uint64_t until = cs_now_ns() + (uint64_t)ms * 1000000;
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == p->pid)
            return true;
        if (cs_now_ns() >= until) return false;
        usleep(5000);
    }
}

void cs_extproc_stop(cs_extproc *p, int64_t grace_ms)
{
    if (!p) return;
    atomic_store(&p->stopping, true);
    /* The group is ours until the leader is reaped below, even when the leader has exited. */
    if (grace_ms > 0 && !wait_exit(p, 0)) {
        kill(-p->pid, SIGTERM);
        wait_exit(p, grace_ms);
    }
    kill(-p->pid, SIGKILL);
    int st;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
    atomic_store(&p->quit, true);
    (void)!write(p->wake_w, "q", 1);
    pthread_join(p->monitor, NULL);
    if (p->out_fd >= 0) close(p->out_fd);
    close(p->wake_r);
    close(p->wake_w);
    pthread_mutex_destroy(&p->lock);
    cs_log(CS_LOG_INFO, "runtime instance stopped", "instance", p->name, NULL);
    cs_free(p);
}

int cs_extproc_pick_port(int preferred)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int port = attempt == 0 ? preferred : 0;
        if (attempt == 0 && port <= 0) continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                  getsockname(fd, (struct sockaddr *)&a, &len) == 0;
        close(fd);
        if (ok) return ntohs(a.sin_port);
    }
    return -1;
}

/* --- proxying ------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;

static void curl_free_handle(void *h)
{
    curl_easy_cleanup(h);
}

static void curl_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&curl_key, curl_free_handle);
}

typedef struct call_ctx {
    cs_proxy_resp *out;
    cs_sbuf body;
    bool too_large;
} call_ctx;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    call_ctx *c = ud;
    if (cs_sbuf_append(&c->body, p, size * n) != CS_OK) {
        c->too_large = true;
        return 0;
    }
    return size * n;
}

/* Keeps the headers the v2 protocol needs from an answer. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    call_ctx *c = ud;
    size_t len = size * n;
    static const char ct[] = "content-type:", hl[] = "inference-header-content-length:";
    char *dst = NULL;
    size_t cap = 0, skip = 0;
    if (len > sizeof ct - 1 && !strncasecmp(p, ct, sizeof ct - 1))
        dst = c->out->content_type, cap = sizeof c->out->content_type, skip = sizeof ct - 1;
    else if (len > sizeof hl - 1 && !strncasecmp(p, hl, sizeof hl - 1))
        dst = c->out->header_length, cap = sizeof c->out->header_length, skip = sizeof hl - 1;
    if (dst) {
        const char *v = p + skip, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
        snprintf(dst, cap, "%.*s", (int)(end - v), v);
    }
    return len;
}

cs_status cs_proxy_call(const cs_proxy_req *q, cs_proxy_resp *out, cs_error *err)
{
    *out = (cs_proxy_resp){0};
    pthread_once(&curl_once, curl_setup);
    CURL *h = pthread_getspecific(curl_key);
    if (!h) {
        if (!(h = curl_easy_init()) || pthread_setspecific(curl_key, h) != 0) {
            if (h) curl_easy_cleanup(h);
            return cs_error_set(err, CS_ERR_NOMEM, "out of memory (an HTTP client handle)");
        }
    }
    curl_easy_reset(h);
    char url[320], ct[160], hl[80];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", q->port, q->path);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    if (q->content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %.128s", q->content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    if (q->header_length) {
        snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %.32s", q->header_length);
        hdrs = curl_slist_append(hdrs, hl);
    }
    call_ctx c = {.out = out};
    cs_sbuf_init(&c.body, CS_PROXY_MAX_BODY);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body || strcmp(q->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(q->timeout_ms > 0 ? q->timeout_ms : 1));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* loopback: never through an http_proxy */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    cs_status rc = CS_OK;
    if (c.too_large)
        rc = cs_error_set(err, CS_ERR_LIMIT, "the runtime's answer is over %zu bytes",
                          CS_PROXY_MAX_BODY);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = cs_error_set(err, CS_ERR_TIMEOUT, "no answer from port %d within %lld ms", q->port,
                          (long long)q->timeout_ms);
    else if (cc != CURLE_OK)
        rc = cs_error_set(err, CS_ERR_IO, "port %d: %s", q->port, curl_easy_strerror(cc));
    if (rc != CS_OK) {
        cs_sbuf_free(&c.body);
        *out = (cs_proxy_resp){0};
        return rc;
    }
    out->status = (int)status;
    out->len = c.body.len;
    out->body = cs_sbuf_take(&c.body);
    if (!out->body) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

/*
 * extproc.h - an external runtime's instance: one child process that serves KServe v2 over
 * HTTP on a loopback port, health-checked, stopped on demand; and the HTTP call that proxies a
 * request to it.
 *
 * A process starts in a process group of its own (so that a stop reaches whatever it forked),
 * with stdin from /dev/null, its stdout and stderr read line by line into the server's log under
 * the instance's name, the server's environment plus the given variables, pinned to the given
 * CPUs, and killed by the kernel if the thread that started it (the deployer's controller) dies.
 * `$(NAME)` in the arguments is replaced by the given variable NAME (PORT, CAPSTAN_DEVICES, ...)
 * as Kubernetes expands a container's command; `$$` is a literal `$`; an unknown name stays as
 * written.
 *
 * Lifecycle (Kubernetes' probes, ANCHORS.md): STARTING until GET readiness_path answers 200
 * (probed every 20 ms, so that a cold start costs the runtime's own start-up and no more), FAILED
 * when that has not happened within startup_timeout_ms; READY then, probed every
 * probe_period_ms (each probe bounded by probe_timeout_ms), FAILED after failure_threshold
 * probes in a row fail; FAILED at once when the process exits, with the exit status or signal as
 * the reason. A monitor thread per process does this and calls on_change at each transition
 * (never after cs_extproc_stop began). Exits are observed with waitid(WNOWAIT) and the process is
 * reaped only by cs_extproc_stop, so its process group cannot be reused while it is signalled;
 * nothing here depends on SIGCHLD, which the server leaves at its default.
 */
#ifndef CS_RUNTIME_EXTPROC_H
#define CS_RUNTIME_EXTPROC_H

#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"

typedef enum cs_extproc_state {
    CS_EXTPROC_STARTING,
    CS_EXTPROC_READY,
    CS_EXTPROC_FAILED,
} cs_extproc_state;

typedef struct cs_extproc cs_extproc;

typedef struct cs_extproc_opts {
    const char *name;        /* the instance, in log lines and reasons */
    const char *const *argv; /* the program (looked up in PATH) and its arguments */
    int argc;                /* 1..256 */
    const char *const *env;  /* "NAME=value" entries over the server's environment */
    int n_env;               /* at most 512 */
    int port;                /* probes go to http://127.0.0.1:port */
    const char *readiness_path;
    const int *cpus; /* CPUs the process may run on (borrowed); n_cpus 0 = any */
    int n_cpus;
    int64_t startup_timeout_ms, probe_period_ms, probe_timeout_ms;
    int failure_threshold;
    /* Called on the monitor thread at each change of state, with no lock held. */
    void (*on_change)(void *ud, cs_extproc_state state);
    void *ud;
} cs_extproc_opts;

/* Starts the process; returns once it has exec'd (or failed to: CS_ERR_INVALID naming the
 * program, e.g. "command 'srv': No such file or directory"). The strings in o are copied.
 * Free with cs_extproc_stop. */
cs_status cs_extproc_start(const cs_extproc_opts *o, cs_extproc **out, cs_error *err);

/* Lock-free reads of the current state, its pid, and when it last changed (wall clock ns). */
cs_extproc_state cs_extproc_state_of(const cs_extproc *p);
int cs_extproc_pid(const cs_extproc *p);
uint64_t cs_extproc_since_ns(const cs_extproc *p);
/* Why it is FAILED ("" otherwise), copied under the process's lock. */
void cs_extproc_reason(cs_extproc *p, char *out, size_t cap);

/* SIGTERM to the process group, SIGKILL to it after grace_ms (at once with 0), reaps the
 * process, joins the monitor (which logs what the process still wrote) and frees p. Blocks up
 * to grace_ms plus a probe's timeout. */
void cs_extproc_stop(cs_extproc *p, int64_t grace_ms);

/* A loopback port for a new instance: `preferred` when nothing listens there and it can be
 * bound, else one the kernel picks; -1 when neither can be had. Racy by nature (the process
 * binds it later): a clash shows up as that instance failing its start-up. */
int cs_extproc_pick_port(int preferred);

/* --- proxying ---------------------------------------------------------------------------- */

#define CS_PROXY_MAX_BODY ((size_t)256 << 20) /* the largest answer taken from a runtime */

typedef struct cs_proxy_req {
    int port;
    const char *method, *path; /* path: "/v2/models/NAME/infer" */
    const char *content_type;  /* NULL: none */
    const char *header_length; /* Inference-Header-Content-Length, NULL: none */
    const char *body;          /* borrowed; NULL with len 0 for none */
    size_t len;
    int64_t timeout_ms; /* the whole exchange */
} cs_proxy_req;

typedef struct cs_proxy_resp {
    int status;
    char content_type[128]; /* "" when the runtime sent none */
    char header_length[32]; /* Inference-Header-Content-Length, "" when absent */
    char *body;             /* cs_malloc'd (NUL-terminated at len); the caller frees it */
    size_t len;
} cs_proxy_resp;

/* One HTTP exchange with the runtime on 127.0.0.1:port, over a libcurl handle kept per thread
 * (so keep-alive connections are reused by the next call on the same thread). CS_OK when the
 * runtime answered, whatever its status; CS_ERR_IO when no answer came at all (refused, reset,
 * an empty reply: the request can be retried elsewhere); CS_ERR_TIMEOUT past timeout_ms;
 * CS_ERR_LIMIT for an answer over CS_PROXY_MAX_BODY. On failure out->body is NULL. */
cs_status cs_proxy_call(const cs_proxy_req *q, cs_proxy_resp *out, cs_error *err);

#endif

/*
 * api.h - what the files of src/api share: the server and request structs, the route
 * handlers, the helpers that answer a request (cs_api_*), and the v2 tensor codecs.
 *
 * A request lives from the first byte of its headers to the moment its response has been
 * sent (server.c frees it then). Every handler answers exactly once, through cs_api_reply
 * or a helper built on it, or queues inference whose `done` answers later from a runtime
 * worker thread under the request's lock; server.c queues whatever answer is there and
 * suspends the connection while there is none. Helpers named `..._or_NNN` answer
 * the error themselves and return false, so handlers read straight down.
 */
#ifndef CS_API_API_H
#define CS_API_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/server.h"
#include "base/arena.h"
#include "base/map.h"
#include "base/sbuf.h"
#include "capstan/engine.h"
#include "devices/dra_state.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "registry/registry.h"
#include "runtime/deploy.h"
#include "runtime/runtime.h"

#define CS_API_NAME_MAX 128 /* model names and versions in routes */
#define CS_API_ID_MAX   129 /* request ids (X-Request-Id or generated), with the NUL */

struct cs_server {
    cs_server_options opt;
    cs_runtime *rt;
    cs_metrics *metrics;
    struct MHD_Daemon *mhd;
    int port;
    int sig_read, sig_write;                /* the self-pipe that signals arrive on */
    atomic_bool draining;                   /* readiness 503, inference refused */
    atomic_int active;                      /* requests started and not yet completed */
    atomic_ullong next_id;                  /* for generated request ids */
    unsigned pid;                           /* their prefix: getpid() is a syscall */
    pthread_mutex_t repo_lock;              /* serialises repository loads and unloads */
    pthread_mutex_t repo_map_lock;          /* guards the map itself (entries join at run time) */
    cs_map repo;                            /* name -> cs_api_repo_model *, see repository.c */
    struct cs_api_repo_poll *repo_poll;     /* --model-control-mode poll's thread, or NULL */
    cs_metric_family *requests, *duration;  /* the runtime keeps per-model metrics */
    cs_dra_state *dra;                      /* devices, classes, claims (devices.c) */
    struct cs_api_gpu_metrics *gpu_metrics; /* NVML's GPU series (gpu_metrics.c), or NULL */
    struct cs_api_serving *serving;         /* registry models being served, see serving.c */
    cs_deployer *deployer;                  /* declared deployments (with a registry) */
    struct cs_api_conns *conns;             /* open connections, see conns.c */
    struct cs_api_stream *stream;           /* GET /api/v1/stream's event thread (stream.c) */
    struct cs_api_front *front;             /* plain HTTP: the accepting thread, see front.c */
    struct cs_tls *tls;                     /* NULL for plain HTTP */
    char data_dir_abs[4096];                /* realpath of opt.data_dir, "" if it has none */
};

/* gpu_metrics.c: DCGM exporter's GPU series on /metrics, read from NVML per scrape. new
 * gives NULL where NVML cannot be had (then there are no such series); it reads the GPU
 * devices of dra's slices once. render appends the series, labelled with the deployments
 * holding each GPU, to out; CS_ERR_NOMEM or out's bound are its only failures. */
typedef struct cs_api_gpu_metrics cs_api_gpu_metrics;
cs_api_gpu_metrics *cs__api_gpu_metrics_new(cs_dra_state *dra);
void cs__api_gpu_metrics_free(cs_api_gpu_metrics *g);
cs_status cs__api_gpu_metrics_render(cs_server *s, cs_sbuf *out);

typedef struct cs_api_route cs_api_route;
struct cs_triton_config;

enum { CS_API_ENC_IDENTITY, CS_API_ENC_GZIP, CS_API_ENC_DEFLATE }; /* request Content-Encoding */

typedef struct cs_api_req {
    cs_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url; /* borrowed from MHD for the request's lifetime */
    cs_sbuf body;             /* bounded by limits.max_body; NUL-terminated */
    uint64_t start_ns;
    char id[CS_API_ID_MAX];
    cs_trace_ctx trace; /* the server span: the client's trace (traceparent) or a new one */
    bool has_parent;    /* the client sent a valid traceparent, whose span is parent_id */
    uint8_t parent_id[8];
    char trace_state[CS_TRACESTATE_MAX + 1]; /* the client's tracestate, passed on; "" if none */
    /* Inference only, for the trace's child spans (spans.c): the runtime's timings, and
     * when `done` encoded the answer (cs_now_ns; 0 = the runtime never answered). */
    cs_infer_timing timing;
    uint64_t encode_start_ns, encode_end_ns;
    char model[CS_API_NAME_MAX], version[CS_API_NAME_MAX]; /* route captures, "" if none */
    char name[CS_DRA_NAME_MAX + 1];                        /* {name}: a DRA object's */
    int encoding;   /* the body's Content-Encoding (framing.c), CS_API_ENC_* */
    bool labelled;  /* model/version name a loaded model, so they may be metric labels */
    bool suspended; /* the connection waits for an answer from a runtime worker */
    int status;
    struct MHD_Response *resp; /* the answer, queued by server.c */
    pthread_mutex_t lock;      /* guards resp/status/suspended while inference is queued */
    cs_arena arena;            /* memory for this request's lifetime */
    cs_rt_model *m;            /* held from cs_api_model_or_404 until the request ends */
    uint64_t activate_by_ns;   /* m is a deployment's version at zero: wait for it until then */
    struct cs_api_sink *sink;  /* set by a streaming route's handler, see below */
    bool sink_ended;           /* the sink has been told the body is complete */
    uint64_t received;         /* body bytes read so far (limits.min_body_rate) */
    const cs_api_route *route; /* found at the headers; NULL: 404/405 */
    /* Who is asking: the token's name with authentication on, else "anonymous"; the
     * audit log records it. */
    char principal[CS_REGISTRY_ACTOR_MAX + 1];
    cs_registry_role role; /* the token's role; admin with authentication off */
} cs_api_req;

/* A route marked `streams` in routes.c takes its body incrementally, for uploads far past
 * limits.max_body: its handler runs as soon as the headers are in, and either answers at
 * once (the body is then dropped unread) or sets r->sink. server.c then hands the sink
 * every chunk on the HTTP thread, tells it when the body is complete, and closes it when
 * the request ends however it ends (a client that leaves mid-upload included). The sink
 * answers the request itself, possibly from another thread, through
 * cs_api_unlock_and_resume. Such a request is bounded by the sink's own size limit, by the
 * idle timeout and by limits.min_body_rate (request_timeout_s plus a second for every
 * min_body_rate bytes delivered), not by limits.max_body. */
typedef struct cs_api_sink {
    void (*write)(void *ctx, const char *p, size_t n); /* may block for back-pressure */
    void (*end)(void *ctx);
    void (*close)(void *ctx); /* last call: stop, join and release everything */
    void *ctx;
} cs_api_sink;

/* --- answering (respond.c) ------------------------------------------------------------ */
/* Replaces every path under the data directory in msg (cap bytes) by "(data directory)";
 * true when it replaced any. cs_api_error applies it to every error a client sees. */
bool cs_api_hide_paths(const cs_server *s, char *msg, size_t cap);

/* Answers with body (taken: allocated with cs_malloc, freed by MHD once sent). A second
 * answer to the same request is a broken contract. */
void cs_api_reply(cs_api_req *r, int status, const char *content_type, char *body, size_t len);
/* Answers with a body of `size` bytes that read(cls, ...) produces as the client takes it
 * (libmicrohttpd's content reader: it may end the stream with an error, which closes the
 * connection before the body is complete); done(cls) runs once the response is freed, or
 * at once when it cannot be made (a 500 is then the answer and false returned). */
bool cs_api_reply_stream(cs_api_req *r, int status, const char *content_type, uint64_t size,
                         MHD_ContentReaderCallback read, void *cls,
                         MHD_ContentReaderFreeCallback done);
/* Adds a header to the answer given already. */
void cs_api_header(cs_api_req *r, const char *name, const char *value);
/* Answers {"error": "<message>"}; 429 and 503 also get Retry-After. */
void cs_api_error(cs_api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with j serialised (j is taken: its reference is released). 500 when it cannot
 * be serialised. */
void cs_api_json(cs_api_req *r, int status, json_t *j);
/* The HTTP status for a runtime or codec status: INVALID/PARSE 400, NOT_FOUND 404, LIMIT
 * 429, SHUTDOWN 503, UNSUPPORTED 400, everything else 500. */
int cs_api_http_status(cs_status rc);
/* The body as a JSON object (an empty body is {}), or a 400 and NULL. The caller owns
 * the result. Depth is checked against limits.max_json_depth before jansson sees it. */
json_t *cs_api_json_or_400(cs_api_req *r);
/* For an answer built off the HTTP thread: call with r->lock held once r is answered.
 * Unlocks and resumes the connection if server.c suspended it; r may be completed and
 * freed by the HTTP thread from then on (unless the caller's sink keeps it alive). */
void cs_api_unlock_and_resume(cs_api_req *r);
/* Holds the model named by the route (r->model, r->version) in r->m, or answers 404
 * (unknown name) / not_loaded (known to the repository but not loaded: 503 for inference,
 * 400 for readiness, whose 4xx means "false" in the protocol) and returns false. A
 * deployment of an external runtime has no model to hold: its request is proxied
 * (cs_api_proxy) and false returned too. */
bool cs_api_model_or_status(cs_api_req *r, int not_loaded);
/* The request to deployment r->model, whose runtime is an external process, proxied to one
 * of its instances (v2_proxy.c): answered later from a proxy thread, or now with an error. */
void cs_api_proxy(cs_api_req *r);
/* cs_api_model_or_status with 503 for a model that is not loaded. */
bool cs_api_model_or_404(cs_api_req *r);
/* Called once r->m is held: r->version becomes its version and r->labelled is set (labels
 * come only from loaded models, so clients cannot mint metric series). Returns true. */
bool cs_api_held(cs_api_req *r);

/* --- routes (routes.c) and their handlers ---------------------------------------------- */

typedef void (*cs_api_handler)(cs_api_req *r);

/* One row of the route table: every route declares the least role that may call it. */
struct cs_api_route {
    const char *method, *pattern;
    cs_api_handler fn;
    cs_registry_role need; /* CS_ROLE_NONE: public; checked by cs_api_admit before the body */
    bool streams;          /* runs at the headers and takes the body through a sink (api.h) */
};

/* At the headers: the route that fits r's method and path (filling r's captures), or
 * NULL when none does (cs_api_dispatch then answers 404 or 405). */
const cs_api_route *cs_api_route_find(cs_api_req *r);
/* Runs r->route's handler, or answers 404/405 when it is NULL. */
void cs_api_dispatch(cs_api_req *r);
/* --- traces (spans.c) ------------------------------------------------------------------ */

/* At the request's start: continues the client's traceparent (keeping its tracestate) or
 * starts a trace, with the sampler's decision in r->trace.flags. */
void cs__api_trace_start(cs_api_req *r);
/* At the request's end (end_ns in cs_now_ns time): a sampled request's SERVER span and, for
 * inference, its queue, compute and encode spans, to the exporter. Nothing without one. */
void cs__api_trace_end(cs_api_req *r, uint64_t end_ns);

/* --- the front door (front.c) ---------------------------------------------------------- */

struct sockaddr;
typedef struct cs_api_front cs_api_front;

/* Listens on addr, IPv4 or IPv6 (s->port gets the port bound) and hands every connection whose
 * first request is well-formed to s->mhd, which must have been started with
 * MHD_USE_NO_LISTEN_SOCKET. Free it before stopping s->mhd. */
cs_status cs__api_front_new(cs_server *s, const struct sockaddr *addr, socklen_t addr_len,
                            cs_api_front **out, cs_error *err);
void cs__api_front_free(cs_api_front *f);

/* The front door's check of a first request's head, a pure function (fuzz/front_fuzz.c):
 * b holds the n bytes received so far and has room for one more (a NUL is written at b[n]);
 * full says no more will fit. MORE: the head is not complete yet; PASS: libmicrohttpd may
 * read it; REFUSE: *out holds the status, its reason phrase and a message (JSON-safe: no quote
 * or backslash) to answer with before closing. */
typedef enum cs__head_verdict { CS__HEAD_MORE, CS__HEAD_PASS, CS__HEAD_REFUSE } cs__head_verdict;
typedef struct cs__head_refusal {
    int status;
    const char *reason, *msg;
} cs__head_refusal;
cs__head_verdict cs__api_head_judge(char *b, size_t n, bool full, cs__head_refusal *out);
/* The bytes of an RFC 9110 token: a method, a header name. */
#define CS__API_TCHAR \
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
/* --- cluster mode (cluster.c) ---------------------------------------------------------- */

/* Starts acting on the changes other servers make to a shared registry (nothing on
 * SQLite); stop before the deployer and the serving table are freed. */
cs_status cs__api_cluster_start(cs_server *s, cs_error *err);
void cs__api_cluster_stop(cs_server *s);

/* --- connections (conns.c) -------------------------------------------------------------- */

typedef struct cs_api_conn cs_api_conn;
typedef struct cs_api_conns cs_api_conns;
/* The table and its reaper thread; free after the daemon has stopped. */
cs_status cs__api_conns_new(const cs_api_limits *lim, cs_api_conns **out, cs_error *err);
void cs__api_conns_free(cs_api_conns *t);
/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the server. */
void cs__api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe);
/* A request's headers are in (busy) or its answer is done (waiting for the next headers). */
void cs__api_conns_busy(cs_server *s, struct MHD_Connection *conn, bool busy);
/* The request was answered before its body was read: when libmicrohttpd closes the
 * connection, it closes lingering (see conns.c) so that the client reads the answer. */
void cs__api_conns_linger(cs_server *s, struct MHD_Connection *conn);
/* libmicrohttpd's unescaper for paths and query arguments: %HH decoded in place, except %00,
 * which stays as written (cs__api_framing_or_400 refuses it). */
size_t cs__api_unescape(void *cls, struct MHD_Connection *conn, char *s);

/* At the headers (framing.c): true when they frame one request only and ask for nothing the
 * server cannot honour; else answers 400 (501 for a transfer coding other than chunked, 415
 * for a Content-Encoding other than gzip or deflate, 417 for an Expect) with
 * `Connection: close` and returns false. Sets r->encoding. */
bool cs__api_framing_or_400(cs_api_req *r, const char *version);
/* Once the body is in (content_encoding.c): replaces a gzip or deflate body by its plain bytes,
 * bounded by limits.max_body; answers 413 past it, 400 for corrupt data, and returns false. */
bool cs__api_decode_body_or_4xx(cs_api_req *r);
/* At the headers: answers an inference request 429 (and returns true) when its model's queue
 * is full already, so that its body is never read; false, with nothing done, otherwise. */
bool cs_api_shed_early(cs_api_req *r);
/* At the headers: runs r's route when it is one that streams its body (and returns true);
 * false, with nothing done, for every other request. */
bool cs_api_dispatch_stream(cs_api_req *r);

/* --- admission (admit.c): who is asking, and may they ------------------------------- */

/* At the headers, before any body is read, for every request with a route: with
 * authentication on, a route that is not public needs `Authorization: Bearer <token>`
 * (401 with WWW-Authenticate otherwise) of a live token whose role reaches the route's
 * need and whose models glob admits the route's model (403 naming what is missing).
 * Sets r->principal. Returns false once it has answered. */
bool cs_api_admit(cs_api_req *r);
/* With authentication on: makes the admin token "bootstrap" hold opt.bootstrap_token when
 * given (cs_registry_token_ensure); else creates the first admin token when the store has
 * none, its secret in DATA_DIR/admin.token (mode 0600), whose path is logged, never the
 * secret. */
cs_status cs_api_auth_bootstrap(cs_server *s, cs_error *err);

/* /api/v1/deployments (mgmt_deployments.c); 404 without a registry. */
void cs_api_deployments_list(cs_api_req *r);
void cs_api_deployment_create(cs_api_req *r);
void cs_api_deployment_apply(cs_api_req *r);
void cs_api_deployment_get(cs_api_req *r);
void cs_api_deployment_delete(cs_api_req *r);
void cs_api_deployment_scale(cs_api_req *r);
void cs_api_rollout_get(cs_api_req *r);
void cs_api_rollout_start(cs_api_req *r);
void cs_api_rollout_promote(cs_api_req *r);
void cs_api_rollout_abort(cs_api_req *r);
void cs_api_rollout_undo(cs_api_req *r);

void cs_api_tokens_list(cs_api_req *r);
/* GET /api/v1/whoami: the caller's token name and role, for the dashboard (mgmt_tokens.c). */
void cs_api_whoami(cs_api_req *r);
/* GET /ui and /ui/{name}: the embedded dashboard (ui.c); GET /api/v1/stream: its live
 * numbers as server-sent events (stream.c). */
void cs_api_ui(cs_api_req *r);
void cs_api_stream(cs_api_req *r);
void cs_api_token_create(cs_api_req *r);
void cs_api_token_revoke(cs_api_req *r);

void cs_v2_live(cs_api_req *r);
void cs_v2_ready(cs_api_req *r);
void cs_v2_server_metadata(cs_api_req *r);
void cs_v2_model_metadata(cs_api_req *r);
void cs_v2_model_ready(cs_api_req *r);
void cs_v2_model_config(cs_api_req *r); /* Triton's model configuration extension */
void cs_v2_models_list(cs_api_req *r);  /* KServe's GET /v2/models */
void cs_v2_model_stats(cs_api_req *r);
void cs_v2_all_stats(cs_api_req *r);
void cs_v2_infer(cs_api_req *r);
bool cs_v2_infer_shed(cs_api_req *r); /* cs_api_shed_early's check for one infer route */
void cs_api_repo_index(cs_api_req *r);
void cs_api_repo_load(cs_api_req *r);
void cs_api_repo_unload(cs_api_req *r);
void cs_api_metrics(cs_api_req *r);
void cs_api_devices_list(cs_api_req *r);
void cs_api_classes_list(cs_api_req *r);
void cs_api_classes_create(cs_api_req *r);
void cs_api_class_get(cs_api_req *r);
void cs_api_class_delete(cs_api_req *r);
void cs_api_claims_list(cs_api_req *r);
void cs_api_claims_create(cs_api_req *r);
void cs_api_claim_get(cs_api_req *r);
void cs_api_claim_delete(cs_api_req *r);

/* The registry's management API (docs/api.md): mgmt_models.c, mgmt_versions.c,
 * mgmt_audit.c. Each answers 404 when the server runs without a registry. */
void cs_api_models_list(cs_api_req *r);
void cs_api_model_create(cs_api_req *r);
void cs_api_model_get(cs_api_req *r);
void cs_api_model_patch(cs_api_req *r);
void cs_api_model_delete(cs_api_req *r);
void cs_api_versions_list(cs_api_req *r);
void cs_api_version_push(cs_api_req *r); /* streams: see cs_api_sink */
void cs_api_version_get(cs_api_req *r);
void cs_api_version_patch(cs_api_req *r);
void cs_api_version_delete(cs_api_req *r);
/* GET .../versions/{v}/artifact: the version's ONNX file, streamed (mgmt_artifact.c). */
void cs_api_version_artifact(cs_api_req *r);
void cs_api_aliases_list(cs_api_req *r);
void cs_api_alias_put(cs_api_req *r);
void cs_api_alias_delete(cs_api_req *r);
void cs_api_audit_list(cs_api_req *r);
void cs_api_registry_gc(cs_api_req *r);

/* --- management helpers (mgmt.c) -------------------------------------------------------- */

/* A query parameter, or NULL. Borrowed from MHD for the request's lifetime. */
const char *cs_api_query(cs_api_req *r, const char *key);
/* Who makes a change, for the audit log: the token's name with authentication on, else
 * NULL ("anonymous"). Headers such as X-Capstan-Actor are never trusted for this. */
const char *cs_api_actor(cs_api_req *r);
/* The registry, or a 404 when the server runs without one. */
cs_registry_t *cs_api_registry_or_404(cs_api_req *r);
/* Answers a registry failure with cs_registry_http_status's code and err's message. */
void cs_api_registry_error(cs_api_req *r, const cs_error *err);
/* Answers with a JSON text from cs_registry_*_json (taken; NULL is a 500). */
void cs_api_json_text(cs_api_req *r, int status, char *json);
/* Fills o from ?prefix, ?selector, ?order=asc|desc, ?page_token and ?limit; strings are
 * borrowed from the request. */
bool cs_api_list_opts_or_400(cs_api_req *r, cs_registry_list_opts *o);
/* Appends one item's JSON text (taken) to a page under construction; on failure (NULL
 * json, no memory) frees items, answers 500 and returns false. */
bool cs_api_list_add_or_500(cs_api_req *r, cs_sbuf *items, char *json);
/* A list page: {"items": [...], "next_page_token": "..." | null}. items holds the
 * comma-separated JSON of the items and is released. */
void cs_api_list_reply(cs_api_req *r, cs_sbuf *items, const char *next_page_token);
/* Labels from a JSON object of strings, into r's arena; 400 and false otherwise. */
/* Answers 400 naming the first member of the JSON object body that is not in allowed (a
 * NULL-terminated list), and returns false; true when every member is known. */
bool cs_api_fields_or_400(cs_api_req *r, json_t *body, const char *const *allowed);
bool cs_api_labels_or_400(cs_api_req *r, json_t *obj, const char *what, int *n,
                          cs_registry_label **labels);
/* A positive version number from the route, or a 400. */
bool cs_api_version_number_or_400(cs_api_req *r, int64_t *out);

/* --- serving registered models (serving.c) ---------------------------------------------- */

/* Sets up (and frees) the table of served registry models; nothing without a registry. */
cs_status cs_api_serving_init(cs_server *s, cs_error *err);
void cs_api_serving_free(cs_server *s);
/* cs_api_model_or_404 for a model the registry holds: resolves the route's version (a
 * number, an alias, or none for the served default), loads it on first use, and holds it
 * in r->m; answers 404/500 and returns false otherwise. */
bool cs_api_serving_acquire_or_404(cs_api_req *r);
/* After a change to model's versions or aliases: moves the served default to what `prod`
 * (else `latest`) now names, loading it before traffic moves and unloading the old one
 * once its queue drains; `gone` (0 for none) is a version that may no longer be served. */
void cs_api_serving_refresh(cs_server *s, const char *model, int64_t gone);
/* cs_api_serving_refresh for every model served now (after missed changes: cluster.c). */
void cs_api_serving_refresh_all(cs_server *s);
/* Loads path as (name, version) with cfg (NULL: defaults with automatic batching when
 * auto_batch and every input and output has a dynamic first dimension); logs it. Shared by
 * the repository and the registry. CS_OK when that version is loaded already. */
cs_status cs_api_load(cs_server *s, const char *name, const char *version, const char *path,
                      const cs_model_config *cfg, bool auto_batch, cs_error *err);

/* --- repository (repository.c) --------------------------------------------------------- */

/* Registers the command-line models, the --model-repository folder's and
 * DATA_DIR/models/NAME.onnx, then loads the command-line ones and the folder's (as the control
 * mode says), and starts the poll thread in poll mode. Called once by cs_server_new. */
cs_status cs_api_repo_init(cs_server *s, cs_error *err);
void cs_api_repo_free(cs_server *s);
/* Whether name is a repository entry (loaded or not). */
bool cs_api_repo_known(cs_server *s, const char *name);
/* Adds every repository entry's name to the JSON object set (as a key). */
void cs_api_repo_names(cs_server *s, json_t *set);
/* Copies the Triton configuration in force for a repository entry (its config.pbtxt, or the
 * `config` of its last load) into out; false when it has none. */
bool cs_api_repo_triton(cs_server *s, const char *name, struct cs_triton_config *out);

/* --- v2 tensor codecs (v2_json.c, v2_binary.c) ----------------------------------------- */

/* The v2 datatype name for an engine type ("FP32"), or NULL when v2 has none. */
const char *cs_v2_dtype_name(cs_dtype t);
/* CS_DTYPE_UNDEFINED for a name v2 does not define. BYTES is CS_DTYPE_STRING. */
cs_dtype cs_v2_dtype_parse(const char *name);

/* BYTES tensors (CS_DTYPE_STRING) travel in Triton's serialised form everywhere in the
 * codec: each element is a 4-byte little-endian length and then its bytes. */

/* A span of the request body. */
typedef struct cs_v2_span {
    const char *p;
    size_t len;
} cs_v2_span;

typedef struct cs_v2_input {
    const char *name;
    cs_dtype dtype;
    int rank;
    int64_t dims[CS_MAX_RANK];
    cs_v2_span data;     /* the JSON "data" value; len 0 when absent */
    int64_t binary_size; /* parameters.binary_data_size; -1 when the data is JSON */
    size_t bytes;        /* of t.data, once decoded */
    cs_tensor t;         /* data in the request arena (or in the body, for binary) */
} cs_v2_input;

typedef struct cs_v2_output {
    const char *name;
    int binary; /* 1 binary, 0 JSON (while decoding, -1: the request's default) */
} cs_v2_output;

typedef struct cs_v2_request {
    const char *id;          /* NULL when absent */
    int priority;            /* parameters.priority, 0 = default */
    uint64_t timeout_us;     /* parameters.timeout, 0 = none */
    int binary_output;       /* parameters.binary_data_output; -1 absent until bound (below) */
    int n_inputs, n_outputs; /* n_outputs 0 = every output, in binary_output's form */
    cs_v2_input *inputs;
    cs_v2_output *outputs;
} cs_v2_request;

/* Decodes the JSON part of an inference request (json is NUL-terminated at json[len] or
 * followed by binary data): ids, parameters, input names, types and shapes, requested
 * outputs. Data stays in the body; cs_v2_decode_data reads it. Everything lives in a.
 * CS_ERR_INVALID/PARSE/LIMIT with a message naming the field. */
cs_status cs_v2_decode_request(const char *json, size_t len, const cs_api_limits *lim, cs_arena *a,
                               cs_v2_request *out, cs_error *err);
/* Decodes one input's JSON data straight into a tensor buffer of its type (flat or nested
 * arrays, row-major); the element count must match the shape. */
cs_status cs_v2_decode_data(cs_v2_input *in, cs_arena *a, cs_error *err);

/* Binary extension. Given the body and the JSON header's length, points every input with
 * binary_data_size at its bytes (in order, without copying) and checks the sizes against
 * the shapes; JSON inputs are decoded with cs_v2_decode_data. Then settles the outputs' form:
 * what binary_data_output or an output's binary_data asked for, else binary when any input
 * came binary (a client that sends binary reads binary) and JSON otherwise. */
cs_status cs_v2_bind_inputs(cs_v2_request *req, const char *body, size_t len, size_t header_len,
                            cs_arena *a, cs_error *err);
/* The whole body as the single input of m ("Inference-Header-Content-Length: 0"): the
 * shape is the model's, with its one dynamic dimension (if any) taken from the size. Every
 * output comes back binary, as the binary extension says of raw requests. */
cs_status cs_v2_raw_request(const cs_model_t *m, const char *body, size_t len,
                            const cs_api_limits *lim, cs_arena *a, cs_v2_request *out,
                            cs_error *err);

/* Encodes a response: the JSON header into out, then each binary output's bytes after it;
 * *header_len is the JSON part's length (== out->len when nothing is binary). Outputs are
 * filtered and ordered as req asks (every model output when req names none). */
cs_status cs_v2_encode_response(const cs_v2_request *req, const char *model, const char *version,
                                const cs_model_t *m, int n_outputs, const cs_tensor *outputs,
                                cs_sbuf *out, size_t *header_len, cs_error *err);
/* Appends t's data as a JSON array (flat, row-major), or its bytes (binary extension). */
cs_status cs_v2_put_json_data(cs_sbuf *b, const cs_tensor *t, cs_error *err);
cs_status cs_v2_put_binary_data(cs_sbuf *b, const cs_tensor *t, cs_error *err);
/* Index of m's output called name, or -1. */
int cs_v2_output_index(const cs_model_t *m, const char *name);
/* Bytes of t's data: numel x element size, or the serialised length for BYTES. */
size_t cs_v2_tensor_bytes(const cs_tensor *t);

/* Appends s as a JSON string literal (quoted, escaped). */
cs_status cs_api_put_json_string(cs_sbuf *b, const char *s);
/* How deep the JSON text nests, or -1 as soon as it passes max (strings are skipped, so
 * brackets inside them do not count). O(len), no allocation. */
int cs_api_json_depth(const char *p, size_t len, int max);

#endif

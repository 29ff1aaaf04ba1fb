/*
 * server.h - capstan's HTTP server: the Open Inference Protocol v2 (KServe, Triton) over
 * libmicrohttpd, with the binary tensor and model repository extensions and /metrics.
 *
 * The server borrows a runtime (models are loaded into it by the caller or through the
 * repository endpoints) and a metrics registry. cs_server_run blocks until SIGTERM or
 * SIGINT, then drains: readiness turns 503, new inference is refused, in-flight requests
 * finish (up to exit_timeout_s) and it returns. The server owns the SIGTERM and SIGINT
 * handlers from cs_server_new to cs_server_free: one server per process.
 */
#ifndef CS_API_SERVER_H
#define CS_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"
#include "devices/dra_state.h"
#include "runtime/runtime.h"

struct cs_metrics;
struct cs_otlp;
struct cs_registry;

typedef struct cs_server cs_server;

/* Limits against abuse; every field has a default (cs_server_options_defaults). */
typedef struct cs_api_limits {
    size_t max_body;                 /* request body bytes (64 MiB); larger is 413 */
    int64_t max_elements;            /* elements in one tensor (1 << 26) */
    int max_json_depth;              /* nesting of the JSON header (64) */
    size_t max_header;               /* per-connection memory for the request line and headers */
    unsigned conn_timeout_s;         /* an idle connection is closed after this (30 s) */
    unsigned request_timeout_s;      /* a request body must arrive within this (60 s) */
    unsigned min_body_rate;          /* a streamed body (a push) gets request_timeout_s plus
                                        a second per this many bytes it delivered (500) */
    unsigned header_timeout_s;       /* a request's headers must arrive within this from the
                                        connection's start or the previous answer (10 s) */
    unsigned max_connections;        /* concurrent connections (1024); the oldest waiting for
                                        headers are closed when fewer than 1/16 are free */
    unsigned max_connections_per_ip; /* concurrent connections from one address (64) */
    size_t max_response;             /* inference answer bytes (64 MiB; 0 = no bound); larger
                                        is 413, refused before it is encoded */
} cs_api_limits;

/* One model the repository can load: given with --model, or found in DATA_DIR/models. */
typedef struct cs_repo_entry {
    const char *name, *path;       /* borrowed for the server's lifetime */
    const cs_model_config *config; /* NULL for the runtime's defaults */
    /* Nobody chose max_batch_size: batching turns on (32 rows, 500 us) when every input and
     * output of the model has a dynamic first dimension. */
    bool auto_batch;
} cs_repo_entry;

/* Applies the keys of a model's YAML file (see model_config.c) to cfg; *batch_given (may be
 * NULL) is set when the file names max_batch_size. Errors name the file, line and key. */
cs_status cs_api_model_config_load(const char *path, cs_model_config *cfg, bool *batch_given,
                                   cs_error *err);

/* How models of --model-repository load (Triton's --model-control-mode). */
typedef enum cs_repo_control {
    CS_REPO_CONTROL_EXPLICIT, /* the repository API loads and unloads; at start, load_models */
    CS_REPO_CONTROL_NONE,     /* every model loads at start; the API's load and unload are 400 */
    CS_REPO_CONTROL_POLL,     /* NONE, and the folder is re-read every repository_poll_s */
} cs_repo_control;

typedef struct cs_server_options {
    const char *host;          /* "127.0.0.1" */
    int port;                  /* 8080; 0 picks a free port (see cs_server_port) */
    int http_threads;          /* threads reading and writing sockets (2) */
    unsigned exit_timeout_s;   /* how long a drain may wait for in-flight work (30) */
    const char *data_dir;      /* DATA_DIR/models/NAME.onnx are repository entries */
    const cs_repo_entry *repo; /* models named on the command line, loaded at start */
    int n_repo;
    /* A Triton-layout folder (model_repo.h), or NULL. Only read: capstan's own files stay in
     * data_dir (a `file:` load writes DATA_DIR/repository/NAME/VERSION/model.onnx). */
    const char *model_repository;
    cs_repo_control control;
    const char *const *load_models; /* EXPLICIT: the repository's models loaded at start; "*" all */
    int n_load_models;
    int repository_poll_s; /* POLL: seconds between reads of the folder (15) */
    cs_api_limits limits;
    cs_dra_state_options devices; /* the slices: discovered, or a YAML file */
    /* The model registry behind /api/v1 and served under /v2/models (borrowed; NULL: no
     * management API, only repository models). */
    struct cs_registry *registry;
    int64_t max_artifact; /* a push whose Content-Length is larger is refused at once (0:
                             the registry's own limit applies as the body streams) */
    /* Bearer tokens (admit.c) for every route but health; needs the registry's store. */
    bool auth;
    /* The admin token's secret from the operator (--auth-token-file, a Kubernetes Secret),
     * borrowed for cs_server_new; NULL: DATA_DIR/admin.token when no token exists. */
    const char *bootstrap_token;
    /* HTTPS: both PEM paths, or both NULL for plain HTTP. Re-read on SIGHUP (tls.c). */
    const char *tls_cert, *tls_key;
    /* Traces: the sampler and exporter (borrowed, must outlive the server; NULL: spans are
     * not exported, an incoming traceparent's sampled flag is kept, new traces sampled). */
    struct cs_otlp *otlp;
} cs_server_options;

void cs_server_options_defaults(cs_server_options *o);

/* Starts listening. rt and metrics are borrowed and must outlive the server. */
cs_status cs_server_new(const cs_server_options *o, cs_runtime *rt, struct cs_metrics *metrics,
                        cs_server **out, cs_error *err);
/* The port actually bound. */
int cs_server_port(const cs_server *s);
/* Serves until SIGTERM/SIGINT, then drains and stops (see above). CS_ERR_LIMIT when the
 * drain ran past exit_timeout_s: runtime workers may then still answer into live
 * connections, so neither the server nor the runtime may be freed; the caller exits. */
cs_status cs_server_run(cs_server *s, cs_error *err);
void cs_server_free(cs_server *s);

#endif

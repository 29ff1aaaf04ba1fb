/*
 * cmd_serve.c - `capstan serve`: the KServe v2 / Open Inference Protocol server.
 *
 * Parses the options into server options and one repository entry per --model (or bare
 * MODEL.onnx argument, named after its file), builds
 * the metrics registry, the runtime and the server (src/api/server.h), and serves until
 * SIGTERM or SIGINT. Each model's serving options start from the defaults, then
 * --instances/--max-batch-size, then its --model-config YAML file. The model registry
 * (SQLite in --data-dir, or PostgreSQL with --registry) is opened here and lent to the
 * server, which serves its models and its management API (/api/v1).
 */
#include "cli/cli.h"

#include "api/server.h"
#include "base/alloc.h"
#include "base/name.h"
#include "base/vec.h"
#include "devices/quantity.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/otlp.h"
#include "registry/registry.h"
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: capstan serve [MODEL.onnx]... [--host ADDR] [--port N] [--data-dir DIR]\n"
    "                     [--model NAME=PATH.onnx]...\n"
    "                     [--model-config NAME=FILE.yaml]... [--threads N] [--exit-timeout "
    "DURATION]\n"
    "                     [--log-level LEVEL] [--log-format json|text] [--registry URL]\n"
    "                     [--webhook URL --webhook-secret-file FILE] [--max-artifact-size SIZE]\n"
    "                     [--devices FILE.yaml] [--device-policy P] [--otlp-endpoint URL]\n"
    "                     [--max-session-memory SIZE] [--max-response-size SIZE]\n"
    "                     [--require-signed --trusted-keys DIR]\n"
    "                     [--model-repository DIR [--model-control-mode none|explicit|poll]\n"
    "                      [--load-model NAME]... [--repository-poll-secs N]]\n\n"
    "Serves models over the Open Inference Protocol v2 (KServe, Triton) with the binary tensor\n"
    "and model repository extensions, and Prometheus metrics at /metrics. Allocates devices\n"
    "as Kubernetes DRA does through /api/v1/devices, /api/v1/deviceclasses and /api/v1/claims.\n\n"
    "options:\n"
    "  --host ADDR              address to listen on (127.0.0.1): IPv4, IPv6 (:: listens\n"
    "                           dual-stack where the system allows) or a host name\n"
    "  --port N                 TCP port (8080; 0 picks a free one)\n"
    "  --data-dir DIR           DIR/models/NAME.onnx (+ NAME.yaml) can be loaded through the\n"
    "                           repository API (./capstan-data)\n"
    "  MODEL.onnx               serve the file under its name (models/digits.onnx: digits)\n"
    "  --model NAME=PATH.onnx   serve PATH as NAME, version 1, loaded at start; repeatable\n"
    "  --model-config NAME=FILE YAML serving options for NAME: instances, threads_per_instance,\n"
    "                           max_batch_size, max_queue_delay_us, preferred_batch_sizes,\n"
    "                           max_queue_size\n"
    "  --model-repository DIR   serve a Triton-layout repository: DIR/NAME/VERSION/model.onnx,\n"
    "                           with an optional DIR/NAME/config.pbtxt (docs/api.md) or\n"
    "                           config.yaml; only read (capstan's files stay in --data-dir)\n"
    "  --model-control-mode M   none (load every model at start; the default), explicit (load\n"
    "                           --load-model ones, then through the repository API) or poll\n"
    "                           (none, and re-read DIR: new versions load, removed ones unload)\n"
    "  --load-model NAME        explicit mode: load NAME at start; repeatable; '*' loads all\n"
    "  --repository-poll-secs N poll mode: seconds between reads of DIR (15)\n"
    "  --instances N            engine sessions per model given here (1)\n"
    "  --max-batch-size N       dynamic batching limit per model given here (0 = off; by\n"
    "                           default 32 when the model's first dimension is dynamic)\n"
    "  --threads N              engine threads in total (0 = one per core, the default)\n"
    "  --http-threads N         threads serving connections (2)\n"
    "  --exit-timeout DURATION  how long SIGTERM waits for in-flight requests (30s)\n"
    "  --max-body-size SIZE     largest request body (64Mi)\n"
    "  --header-timeout DURATION a request's headers must arrive within this long of the\n"
    "                           connection's start or the previous answer (10s)\n"
    "  --request-timeout DURATION a request body must arrive within this long (60s); a push\n"
    "                           gets it plus a second per --min-body-rate bytes delivered\n"
    "  --min-body-rate SIZE     the slowest push body allowed, in bytes a second (500)\n"
    "  --max-connections N      open connections; the oldest idle ones are closed when\n"
    "                           nearly full (1024)\n"
    "  --max-connections-per-ip N  open connections from one address (64)\n"
    "  --max-session-memory SIZE  memory one engine session's plans may hold (4Gi; a quantity:\n"
    "                           512Mi, 2G, 0 = no bound). Checked from the memory plan before\n"
    "                           allocating: a model over it fails to load, a request whose\n"
    "                           input shapes need more is refused with 413\n"
    "  --max-response-size SIZE largest inference answer (64Mi; 0 = no bound); a larger one\n"
    "                           is refused with 413 before it is encoded\n"
    "  --log-level LEVEL        debug, info, warn, error or off (info)\n"
    "  --log-format F           json (one object per line) or text (key=value); text when\n"
    "                           stderr is a terminal, else json\n"
    "  --registry URL           model registry store: postgres://... (PostgreSQL); by default\n"
    "                           SQLite in DIR/registry.db. Registered models are served under\n"
    "                           /v2/models/NAME (alias prod, else the latest version) and\n"
    "                           managed through /api/v1 (docs/api.md)\n"
    "  --webhook URL            POST registry events (pushes, alias moves, ...) to URL\n"
    "  --webhook-secret-file F  HMAC-SHA256 key for the X-Capstan-Signature header (its first\n"
    "                           line); required with --webhook\n"
    "  --max-artifact-size SIZE largest version push (16Gi)\n"
    "  --devices FILE.yaml      ResourceSlices (and DeviceClasses, ResourceClaims) to allocate\n"
    "                           from instead of this machine's devices (tests, what-if plans)\n"
    "  --device-policy P        first (Kubernetes' answer, the default) or best-fit\n"
    "  --auth MODE              tokens (bearer tokens with roles; 'capstan token') or none;\n"
    "                           tokens by default unless --host is a loopback address. With\n"
    "                           tokens and none yet, DIR/admin.token gets an admin token\n"
    "  --auth-token-file F      tokens, and the admin token 'bootstrap' has the secret in F\n"
    "                           (its first line; or $CAPSTAN_BOOTSTRAP_TOKEN with tokens on):\n"
    "                           a Kubernetes Secret shared by every replica, stored hashed;\n"
    "                           no DIR/admin.token\n"
    "  --tls-cert FILE.pem      serve HTTPS (TLS 1.2+) with this certificate chain; with\n"
    "  --tls-key FILE.pem       its private key. SIGHUP re-reads both files\n"
    "  --require-signed         serve only registry versions signed (`capstan model push\n"
    "                           --sign`) by a key in --trusted-keys; others fail to load\n"
    "  --trusted-keys DIR       ed25519 public keys (*.pem) whose signatures are trusted\n"
    "  --otlp-endpoint URL      export traces over OTLP/HTTP (JSON) to URL/v1/traces, as\n"
    "                           OTEL_EXPORTER_OTLP_ENDPOINT does (which it overrides); the\n"
    "                           other OTEL_* variables are honoured too (docs/observability.md)\n"
    "  -h, --help               show this help\n\n"
    "SIZE is a byte count or a Kubernetes quantity (512Ki, 64Mi, 2Gi, 1G); DURATION is a\n"
    "Kubernetes/Go duration (500ms, 30s, 5m, 1h30m, 2d) or a number of seconds.\n"
    "Logs go to stderr; a request's line carries its trace_id and span_id. SIGTERM or SIGINT: "
    "readiness turns 503, new inference is\n"
    "refused, in-flight requests finish, exit 0 (1 when --exit-timeout ran out).\n";

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_DATA_DIR,
    OPT_MODEL,
    OPT_MODEL_CONFIG,
    OPT_INSTANCES,
    OPT_MAX_BATCH,
    OPT_THREADS,
    OPT_HTTP_THREADS,
    OPT_EXIT_TIMEOUT,
    OPT_MAX_BODY,
    OPT_HEADER_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_MAX_CONNS,
    OPT_MAX_CONNS_PER_IP,
    OPT_LOG_LEVEL,
    OPT_REGISTRY,
    OPT_WEBHOOK,
    OPT_WEBHOOK_SECRET,
    OPT_MAX_ARTIFACT,
    OPT_DEVICES,
    OPT_DEVICE_POLICY,
    OPT_AUTH,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_OTLP_ENDPOINT,
    OPT_LOG_FORMAT,
    OPT_MAX_SESSION_MEMORY,
    OPT_MAX_RESPONSE,
    OPT_MIN_BODY_RATE,
    OPT_REQUIRE_SIGNED,
    OPT_TRUSTED_KEYS,
    OPT_AUTH_TOKEN_FILE,
    OPT_MODEL_REPOSITORY,
    OPT_CONTROL_MODE,
    OPT_LOAD_MODEL,
    OPT_POLL_SECS,
};

/* --max-session-memory's default: far above what the shipped models need (resnet18 batching
 * 32 rows holds about 0.3 GiB), far below what a hostile 200-byte model asks for. */
#define DEFAULT_SESSION_MEMORY ((size_t)4 << 30)

typedef struct name_path {
    const char *name, *path;   /* borrowed from argv (name is cut at '='); name NULL: own */
    char own[CS_NAME_MAX + 1]; /* a bare MODEL.onnx argument's name, from its file name */
} name_path;

static const char *np_name(const name_path *np)
{
    return np->name ? np->name : np->own;
}

typedef struct serve_opts {
    cs_server_options srv;
    cs_registry_options reg;
    cs_vec models, configs;            /* name_path */
    int threads, instances, max_batch; /* instances/max_batch: -1 = not given */
    const char *auth;                  /* "tokens", "none", or NULL: by --host */
    const char *otlp_endpoint;         /* --otlp-endpoint, or NULL */
    size_t max_session_memory;         /* --max-session-memory in bytes; 0 = no bound */
    bool require_signed;               /* --require-signed (needs --trusted-keys) */
    const char *token_file;            /* --auth-token-file, or NULL */
    const char *control;               /* --model-control-mode, or NULL */
    cs_vec load_models;                /* const char *: --load-model */
    int poll_secs;                     /* --repository-poll-secs; -1 = not given */
} serve_opts;

/* Splits NAME=VALUE in place into v. */
static int name_value(const char *opt, char *arg, cs_vec *v)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return cs_cli_usage_error("serve", "%s expects NAME=FILE, got '%s'", opt, arg);
    *eq = '\0'; /* argv strings are ours to edit */
    name_path np = {arg, eq + 1, ""};
    if (cs_vec_push(v, &np) != CS_OK) return cs_cli_error("serve", "out of memory");
    return CS_CLI_CONTINUE;
}

static int on_option(void *ctx, int opt, const char *arg)
{
    static const struct {
        int opt;
        const char *name;
        long min, max;
    } ints[] = {
        {OPT_PORT, "--port", 0, 65535},
        {OPT_INSTANCES, "--instances", 1, 64},
        {OPT_MAX_BATCH, "--max-batch-size", 0, 4096},
        {OPT_THREADS, "--threads", 0, 1024},
        {OPT_HTTP_THREADS, "--http-threads", 1, 64},
        {OPT_MAX_CONNS, "--max-connections", 16, 1000000},
        {OPT_MAX_CONNS_PER_IP, "--max-connections-per-ip", 1, 1000000},
        {OPT_POLL_SECS, "--repository-poll-secs", 1, 86400},
    };
    serve_opts *o = ctx;
    cs_error err;
    long n = 0;
    int64_t secs;
    uint64_t bytes;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].opt == opt && cs_cli_parse_int(arg, ints[i].min, ints[i].max, &n) != 0)
            return cs_cli_usage_error("serve", "%s expects %ld..%ld, got '%s'", ints[i].name,
                                      ints[i].min, ints[i].max, arg);
    switch (opt) {
    case OPT_HOST: o->srv.host = arg; break;
    case OPT_PORT: o->srv.port = (int)n; break;
    case OPT_DATA_DIR: o->srv.data_dir = arg; break;
    case OPT_MODEL: return name_value("--model", (char *)arg, &o->models);
    case OPT_MODEL_CONFIG: return name_value("--model-config", (char *)arg, &o->configs);
    case OPT_INSTANCES: o->instances = (int)n; break;
    case OPT_MAX_BATCH: o->max_batch = (int)n; break;
    case OPT_THREADS: o->threads = (int)n; break;
    case OPT_HTTP_THREADS: o->srv.http_threads = (int)n; break;
    case OPT_EXIT_TIMEOUT:
        if (cs_cli_parse_seconds("serve", "--exit-timeout", arg, 0, 3600, &secs) != CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->srv.exit_timeout_s = (unsigned)secs;
        break;
    case OPT_MAX_BODY:
        if (cs_cli_parse_size("serve", "--max-body-size", arg, 1024, (uint64_t)1 << 32, &bytes) !=
            CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->srv.limits.max_body = (size_t)bytes;
        break;
    case OPT_HEADER_TIMEOUT:
        if (cs_cli_parse_seconds("serve", "--header-timeout", arg, 1, 3600, &secs) !=
            CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->srv.limits.header_timeout_s = (unsigned)secs;
        break;
    case OPT_REQUEST_TIMEOUT:
        if (cs_cli_parse_seconds("serve", "--request-timeout", arg, 1, 86400, &secs) !=
            CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->srv.limits.request_timeout_s = (unsigned)secs;
        break;
    case OPT_MIN_BODY_RATE:
        if (cs_cli_parse_size("serve", "--min-body-rate", arg, 1, (uint64_t)1 << 30, &bytes) !=
            CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->srv.limits.min_body_rate = (unsigned)bytes;
        break;
    case OPT_REQUIRE_SIGNED: o->require_signed = true; break;
    case OPT_TRUSTED_KEYS: o->reg.trusted_keys_dir = arg; break;
    case OPT_MAX_CONNS: o->srv.limits.max_connections = (unsigned)n; break;
    case OPT_MAX_CONNS_PER_IP: o->srv.limits.max_connections_per_ip = (unsigned)n; break;
    case OPT_REGISTRY: o->reg.store_url = arg; break;
    case OPT_WEBHOOK: o->reg.webhook_url = arg; break;
    case OPT_WEBHOOK_SECRET: o->reg.webhook_secret_file = arg; break;
    case OPT_MAX_ARTIFACT:
        if (cs_cli_parse_size("serve", "--max-artifact-size", arg, 1024, (uint64_t)1 << 40,
                              &bytes) != CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        o->reg.max_artifact_bytes = (int64_t)bytes;
        break;
    case OPT_DEVICES: o->srv.devices.devices_file = arg; break;
    case OPT_AUTH:
        if (strcmp(arg, "tokens") && strcmp(arg, "none"))
            return cs_cli_usage_error("serve", "--auth expects tokens or none, got '%s'", arg);
        o->auth = arg;
        break;
    case OPT_TLS_CERT: o->srv.tls_cert = arg; break;
    case OPT_TLS_KEY: o->srv.tls_key = arg; break;
    case OPT_OTLP_ENDPOINT: o->otlp_endpoint = arg; break;
    case OPT_MAX_SESSION_MEMORY:
    case OPT_MAX_RESPONSE:
        if (cs_cli_parse_size(
                "serve", opt == OPT_MAX_RESPONSE ? "--max-response-size" : "--max-session-memory",
                arg, 0, (uint64_t)1 << 50, &bytes) != CS_CLI_CONTINUE)
            return CS_CLI_USAGE;
        *(opt == OPT_MAX_RESPONSE ? &o->srv.limits.max_response : &o->max_session_memory) =
            (size_t)bytes;
        break;
    case OPT_AUTH_TOKEN_FILE: o->token_file = arg; break;
    case OPT_MODEL_REPOSITORY: o->srv.model_repository = arg; break;
    case OPT_POLL_SECS: o->poll_secs = (int)n; break;
    case OPT_CONTROL_MODE:
        if (strcmp(arg, "none") && strcmp(arg, "explicit") && strcmp(arg, "poll"))
            return cs_cli_usage_error(
                "serve", "--model-control-mode expects none, explicit or poll, got '%s'", arg);
        o->control = arg;
        break;
    case OPT_LOAD_MODEL:
        if (cs_vec_push(&o->load_models, &arg) != CS_OK)
            return cs_cli_error("serve", "out of memory");
        break;
    case OPT_LOG_FORMAT: {
        cs_log_format f;
        if (cs_log_parse_format(arg, &f, &err) != CS_OK)
            return cs_cli_usage_error("serve", "--log-format: %s", err.msg);
        cs_log_set_format(f);
        break;
    }
    case OPT_DEVICE_POLICY:
        if (strcmp(arg, "first") && strcmp(arg, "best-fit"))
            return cs_cli_usage_error("serve",
                                      "--device-policy expects first or best-fit, got '%s'", arg);
        o->srv.devices.policy = strcmp(arg, "first") ? CS_DRA_POLICY_BEST_FIT : CS_DRA_POLICY_FIRST;
        break;
    default: { /* OPT_LOG_LEVEL */
        cs_log_level level;
        if (cs_log_parse_level(arg, &level, &err) != CS_OK)
            return cs_cli_usage_error("serve", "--log-level: %s", err.msg);
        cs_log_set_level(level);
        break;
    }
    }
    return CS_CLI_CONTINUE;
}

/* --model-repository and its flags: the control mode (none by default), --load-model only in
 * explicit mode ('*' alone), the poll period only in poll mode; DIR must be a folder that
 * does not hold --data-dir, so that capstan never writes into it. */
static int repository_opts(serve_opts *o)
{
    cs_server_options *srv = &o->srv;
    if (!srv->model_repository) {
        if (o->control || o->load_models.len || o->poll_secs >= 0)
            return cs_cli_usage_error("serve", "--model-control-mode, --load-model and "
                                               "--repository-poll-secs need --model-repository");
        return CS_CLI_CONTINUE;
    }
    srv->control = !o->control || !strcmp(o->control, "none") ? CS_REPO_CONTROL_NONE
                   : !strcmp(o->control, "poll")              ? CS_REPO_CONTROL_POLL
                                                              : CS_REPO_CONTROL_EXPLICIT;
    if (o->load_models.len && srv->control != CS_REPO_CONTROL_EXPLICIT)
        return cs_cli_usage_error("serve", "--load-model needs --model-control-mode explicit");
    for (size_t i = 0; i < o->load_models.len && o->load_models.len > 1; i++)
        if (!strcmp(*(const char **)cs_vec_at(&o->load_models, i), "*"))
            return cs_cli_usage_error("serve", "--load-model '*' loads every model: give it alone");
    if (o->poll_secs >= 0 && srv->control != CS_REPO_CONTROL_POLL)
        return cs_cli_usage_error("serve",
                                  "--repository-poll-secs needs --model-control-mode poll");
    if (o->poll_secs > 0) srv->repository_poll_s = o->poll_secs;
    srv->load_models = o->load_models.data;
    srv->n_load_models = (int)o->load_models.len;
    char repo[PATH_MAX], data[PATH_MAX];
    if (!realpath(srv->model_repository, repo))
        return cs_cli_usage_error("serve", "--model-repository %s: %s", srv->model_repository,
                                  strerror(errno));
    size_t n = strlen(repo);
    if (realpath(srv->data_dir, data) && !strncmp(data, repo, n) &&
        (data[n] == '\0' || data[n] == '/'))
        return cs_cli_usage_error("serve",
                                  "--data-dir %s is inside --model-repository %s: capstan's own "
                                  "files (registry, blobs) never go into the model repository",
                                  srv->data_dir, srv->model_repository);
    return CS_CLI_CONTINUE;
}

/* A bare `serve MODEL.onnx` argument, served as llama-server -m serves its file: under the
 * file's name without .onnx, made a DNS label (lowercase; other characters become '-'). */
static int bare_model(serve_opts *o, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".onnx")) len -= 5;
    name_path np = {NULL, path, ""};
    size_t n = 0;
    for (size_t i = 0; i < len && n < CS_NAME_MAX; i++) {
        char c = (char)tolower((unsigned char)base[i]);
        np.own[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
    }
    while (n && np.own[n - 1] == '-') n--;
    np.own[n] = '\0';
    size_t lead = strspn(np.own, "-");
    memmove(np.own, np.own + lead, n - lead + 1);
    if (!cs_dns_label(np.own))
        return cs_cli_usage_error("serve", "cannot name a model after '%s'; use --model NAME=%s",
                                  path, path);
    for (size_t i = 0; i < o->models.len; i++)
        if (!strcmp(np_name(cs_vec_at(&o->models, i)), np.own))
            return cs_cli_usage_error("serve",
                                      "%s would be served as '%s', which is taken; use "
                                      "--model NAME=%s",
                                      path, np.own, path);
    if (cs_vec_push(&o->models, &np) != CS_OK) return cs_cli_error("serve", "out of memory");
    return CS_CLI_CONTINUE;
}

/* One repository entry per --model, each with its config: defaults, flags, YAML file. */
static int build_entries(serve_opts *o, cs_repo_entry *entries, cs_model_config *cfgs)
{
    for (size_t k = 0; k < o->configs.len; k++) {
        const name_path *c = cs_vec_at(&o->configs, k);
        bool found = false;
        for (size_t i = 0; i < o->models.len && !found; i++)
            found = !strcmp(np_name(cs_vec_at(&o->models, i)), c->name);
        if (!found)
            return cs_cli_usage_error("serve", "--model-config %s: no --model %s=PATH", c->name,
                                      c->name);
    }
    for (size_t i = 0; i < o->models.len; i++) {
        const name_path *m = cs_vec_at(&o->models, i);
        cs_model_config *cfg = &cfgs[i];
        cs_model_config_defaults(cfg);
        if (o->instances > 0) cfg->instances = o->instances;
        if (o->max_batch >= 0) cfg->max_batch_size = o->max_batch;
        bool batch_given = o->max_batch >= 0;
        for (size_t k = 0; k < o->configs.len; k++) {
            const name_path *c = cs_vec_at(&o->configs, k);
            cs_error err;
            if (!strcmp(c->name, np_name(m)) &&
                cs_api_model_config_load(c->path, cfg, &batch_given, &err) != CS_OK)
                return cs_cli_error("serve", "%s", err.msg);
        }
        entries[i] = (cs_repo_entry){np_name(m), m->path, cfg, !batch_given};
    }
    return CS_CLI_CONTINUE;
}

/* The bootstrap token's secret into buf: the first line of --auth-token-file (a mounted
 * Secret's file, which may lack the final newline), else $CAPSTAN_BOOTSTRAP_TOKEN; "" when
 * neither is given. The registry checks its form. */
static int read_token(const serve_opts *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *env = getenv("CAPSTAN_BOOTSTRAP_TOKEN");
    if (!o->token_file) {
        snprintf(buf, cap, "%s", env ? env : "");
    } else {
        FILE *f = fopen(o->token_file, "re");
        if (!f)
            return cs_cli_usage_error("serve", "--auth-token-file %s: %s", o->token_file,
                                      strerror(errno));
        if (!fgets(buf, (int)cap, f)) buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    if (o->token_file && !buf[0])
        return cs_cli_usage_error("serve", "--auth-token-file %s is empty", o->token_file);
    return CS_CLI_CONTINUE;
}

static int serve_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"model", required_argument, NULL, OPT_MODEL},
        {"model-config", required_argument, NULL, OPT_MODEL_CONFIG},
        {"instances", required_argument, NULL, OPT_INSTANCES},
        {"max-batch-size", required_argument, NULL, OPT_MAX_BATCH},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
        {"exit-timeout", required_argument, NULL, OPT_EXIT_TIMEOUT},
        {"max-body-size", required_argument, NULL, OPT_MAX_BODY},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
        {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"registry", required_argument, NULL, OPT_REGISTRY},
        {"auth-token-file", required_argument, NULL, OPT_AUTH_TOKEN_FILE},
        {"webhook", required_argument, NULL, OPT_WEBHOOK},
        {"webhook-secret-file", required_argument, NULL, OPT_WEBHOOK_SECRET},
        {"max-artifact-size", required_argument, NULL, OPT_MAX_ARTIFACT},
        {"devices", required_argument, NULL, OPT_DEVICES},
        {"device-policy", required_argument, NULL, OPT_DEVICE_POLICY},
        {"auth", required_argument, NULL, OPT_AUTH},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"otlp-endpoint", required_argument, NULL, OPT_OTLP_ENDPOINT},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"max-session-memory", required_argument, NULL, OPT_MAX_SESSION_MEMORY},
        {"max-response-size", required_argument, NULL, OPT_MAX_RESPONSE},
        {"min-body-rate", required_argument, NULL, OPT_MIN_BODY_RATE},
        {"require-signed", no_argument, NULL, OPT_REQUIRE_SIGNED},
        {"trusted-keys", required_argument, NULL, OPT_TRUSTED_KEYS},
        {"model-repository", required_argument, NULL, OPT_MODEL_REPOSITORY},
        {"model-control-mode", required_argument, NULL, OPT_CONTROL_MODE},
        {"load-model", required_argument, NULL, OPT_LOAD_MODEL},
        {"repository-poll-secs", required_argument, NULL, OPT_POLL_SECS},
        {0}};
    static const cs_cli_spec spec = {"serve", usage, "", longopts};
    serve_opts o = {.instances = -1,
                    .max_batch = -1,
                    .poll_secs = -1,
                    .max_session_memory = DEFAULT_SESSION_MEMORY};
    cs_server_options_defaults(&o.srv);
    cs_vec_init(&o.models, sizeof(name_path));
    cs_vec_init(&o.configs, sizeof(name_path));
    cs_vec_init(&o.load_models, sizeof(const char *));
    cs_repo_entry *entries = NULL;
    cs_model_config *cfgs = NULL;
    cs_metrics *metrics = NULL;
    cs_runtime *rt = NULL;
    cs_server *srv = NULL;
    cs_registry_t *reg = NULL;
    cs_otlp *otlp = NULL;
    cs_otlp_options otlp_opt;
    cs_error err;
    int first;
    char token[128];
    token[0] = '\0';

    cs_log_set_format(isatty(2) ? CS_LOG_TEXT : CS_LOG_JSON); /* --log-format overrides */
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) goto out;
    for (int k = first; k < argc; k++)
        if ((rc = bare_model(&o, argv[k])) != CS_CLI_CONTINUE) goto out;
    /* Secure by default: anything but loopback needs tokens unless --auth none says so. */
    o.srv.auth = o.auth ? !strcmp(o.auth, "tokens")
                        : !(strncmp(o.srv.host, "127.", 4) == 0 || !strcmp(o.srv.host, "::1") ||
                            !strcmp(o.srv.host, "localhost"));
    if (!o.srv.tls_cert != !o.srv.tls_key) {
        rc = cs_cli_usage_error("serve", "--tls-cert and --tls-key go together");
        goto out;
    }
    if (o.require_signed != !!o.reg.trusted_keys_dir) {
        rc = cs_cli_usage_error("serve", "--require-signed and --trusted-keys go together");
        goto out;
    }
    if ((rc = read_token(&o, token, sizeof token)) != CS_CLI_CONTINUE) goto out;
    if (o.token_file && o.auth && !o.srv.auth) {
        rc = cs_cli_usage_error("serve", "--auth-token-file and --auth none contradict");
        goto out;
    }
    o.srv.auth = o.srv.auth || o.token_file; /* a token file asks for tokens */
    o.srv.bootstrap_token = token[0] ? token : NULL;
    if (!o.reg.webhook_url != !o.reg.webhook_secret_file) {
        rc = cs_cli_usage_error("serve", "--webhook and --webhook-secret-file go together");
        goto out;
    }
    if (cs_otlp_options_env(&otlp_opt, &err) != CS_OK ||
        (o.otlp_endpoint && cs_otlp_options_endpoint(&otlp_opt, o.otlp_endpoint, &err) != CS_OK)) {
        rc = cs_cli_usage_error("serve", "%s", err.msg);
        goto out;
    }
    entries = cs_calloc(o.models.len + 1, sizeof *entries);
    cfgs = cs_calloc(o.models.len + 1, sizeof *cfgs);
    if (!entries || !cfgs) {
        rc = cs_cli_error("serve", "out of memory");
        goto out;
    }
    if ((rc = build_entries(&o, entries, cfgs)) != CS_CLI_CONTINUE) goto out;
    if ((rc = repository_opts(&o)) != CS_CLI_CONTINUE) goto out;
    o.srv.repo = entries;
    o.srv.n_repo = (int)o.models.len;

    rc = CS_CLI_RUNTIME;
    if (cs_metrics_new(&metrics, &err) != CS_OK) {
        cs_cli_error("serve", "%s", err.msg);
        goto out;
    }
    if (otlp_opt.endpoint[0]) {
        if (cs_otlp_new(&otlp_opt, metrics, &otlp, &err) != CS_OK) {
            cs_cli_error("serve", "%s", err.msg);
            goto out;
        }
        cs_log(CS_LOG_INFO, "exporting traces", "endpoint", otlp_opt.endpoint, "service",
               otlp_opt.service_name, NULL);
    }
    o.srv.otlp = otlp;
    o.reg.data_dir = o.srv.data_dir;
    if (cs_registry_open(&o.reg, &reg, &err) != CS_OK) {
        cs_cli_error("serve", "registry: %s", err.msg);
        goto out;
    }
    o.srv.registry = reg;
    o.srv.max_artifact = cs_registry_max_artifact(reg); /* 16 GiB when not given */
    cs_rt_options ro = {
        .max_threads = o.threads, .metrics = metrics, .max_session_memory = o.max_session_memory};
    if (cs_runtime_new(&ro, &rt, &err) != CS_OK ||
        cs_server_new(&o.srv, rt, metrics, &srv, &err) != CS_OK) {
        cs_cli_error("serve", "%s", err.msg);
        goto out;
    }
    if (cs_server_run(srv, &err) != CS_OK) {
        /* Workers may still be answering into the server: exit without freeing either. */
        cs_log(CS_LOG_ERROR, "shutdown incomplete", "error", err.msg, NULL);
        return CS_CLI_RUNTIME;
    }
    rc = CS_CLI_OK;
out:
    explicit_bzero(token, sizeof token);
    cs_server_free(srv);
    cs_runtime_free(rt);
    cs_registry_close(reg); /* after the server: its pushes are joined by then */
    cs_otlp_free(otlp);     /* after the server and runtime: exports the last spans */
    cs_metrics_free(metrics);
    cs_free(entries);
    cs_free(cfgs);
    cs_vec_free(&o.models);
    cs_vec_free(&o.configs);
    cs_vec_free(&o.load_models);
    return rc;
}

const cs_cli_command cs_cli_serve_cmd = {
    "serve", "serve models over KServe v2 / Open Inference Protocol", serve_main};

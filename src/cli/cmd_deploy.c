/*
 * cmd_deploy.c - deployments in kubectl's idiom: `capstan apply -f FILE`, `get deployments
 * [NAME] [-o wide|name|json|yaml]`, `describe deployment NAME`, `delete deployment NAME` and
 * `scale deployment NAME --min N --max M`, through /api/v1/deployments.
 *
 * get prints through output.h: a table sized to its content, -o wide|name|json|yaml.
 *
 * apply reads YAML (several documents per file, "-" for stdin) or JSON, checks every
 * document's kind before sending any, and PUTs each one: the server validates it whole, so
 * an invalid document changes nothing, and the documents before it stay applied (as with
 * kubectl). The server comes from --server or $CAPSTAN_SERVER, the token from
 * $CAPSTAN_TOKEN or ~/.config/capstan/token (http_client.h).
 */
#include "cli/cli.h"
#include "cli/http_client.h"
#include "cli/output.h"
#include "devices/ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILE (16 << 20)

enum { OPT_SERVER = 256, OPT_CACERT, OPT_MIN, OPT_MAX };

typedef struct deploy_opts {
    const char *cmd; /* apply, get, describe, delete, scale */
    const char *file, *server, *cacert;
    bool output; /* -o given */
    cs_cli_format out;
    int min, max; /* -1 = not given */
} deploy_opts;

static const char usage_apply[] =
    "usage: capstan apply -f FILE [--server URL]\n\n"
    "Creates or replaces the deployments in FILE (YAML, several documents per file, or JSON;\n"
    "- reads stdin). Each document is a capstan.dev/v1 Deployment (docs/deployments.md).\n\n"
    "options:\n"
    "  -f, --filename FILE  the file to apply\n"
    "  --server URL         the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE        CA certificates (PEM) that verify an https server\n"
    "  -h, --help           show this help\n";
static const char usage_get[] =
    "usage: capstan get deployments [NAME] [-o wide|name|json|yaml] [--server URL]\n\n"
    "Lists deployments (or one) with their instances: READY is Ready/desired.\n\n"
    "options:\n"
    "  -o, --output F  wide (more columns), name (deployment.capstan.dev/NAME), json or yaml\n"
    "                  (the whole object with status); any case\n"
    "  --server URL    the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE   CA certificates (PEM) that verify an https server\n"
    "  -h, --help      show this help\n";
static const char usage_describe[] =
    "usage: capstan describe deployment NAME [--server URL]\n\n"
    "Shows a deployment's spec, traffic, instances and recent events.\n\n"
    "options:\n"
    "  --server URL    the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE   CA certificates (PEM) that verify an https server\n"
    "  -h, --help      show this help\n";
static const char usage_delete[] =
    "usage: capstan delete deployment NAME [--server URL]\n\n"
    "Deletes a deployment: its instances drain, its versions are unloaded.\n\n"
    "options:\n"
    "  --server URL    the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE   CA certificates (PEM) that verify an https server\n"
    "  -h, --help      show this help\n";
static const char usage_scale[] =
    "usage: capstan scale deployment NAME [--min N] [--max M] [--server URL]\n\n"
    "Sets a deployment's instance bounds (max 0 = unbounded; min 0 allows scale to zero).\n\n"
    "options:\n"
    "  --min N         the fewest instances (0-256)\n"
    "  --max M         the most instances (0-256, 0 = unbounded)\n"
    "  --server URL    the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE   CA certificates (PEM) that verify an https server\n"
    "  -h, --help      show this help\n";

static int on_option(void *user, int opt, const char *arg)
{
    deploy_opts *o = user;
    char *end;
    long n;
    switch (opt) {
    case 'f': o->file = arg; break;
    case OPT_SERVER: o->server = arg; break;
    case OPT_CACERT: o->cacert = arg; break;
    case OPT_MIN:
    case OPT_MAX:
        n = strtol(arg, &end, 10);
        if (!*arg || *end || n < 0 || n > 256)
            return cs_cli_usage_error(o->cmd, "--%s expects 0-256, got '%s'",
                                      opt == OPT_MIN ? "min" : "max", arg);
        *(opt == OPT_MIN ? &o->min : &o->max) = (int)n;
        break;
    default: /* 'o' */ o->output = true; return cs_cli_output_parse(o->cmd, arg, &o->out);
    }
    return CS_CLI_CONTINUE;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : "-";
}

static json_t *at(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

/* --- apply ------------------------------------------------------------------------------ */

int cs__cli_read_file(const char *cmd, const char *path, cs_sbuf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cs_cli_error(cmd, "cannot open '%s'", path);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b->len < MAX_FILE)
        if (cs_sbuf_append(b, chunk, n) != CS_OK) break;
    bool bad = ferror(f) || b->len >= MAX_FILE;
    if (f != stdin) fclose(f);
    if (bad) return cs_cli_error(cmd, "cannot read '%s' (or it is over 16 MiB)", path);
    return CS_CLI_OK;
}

static int apply(cs_http *h, const deploy_opts *o)
{
    if (!o->file) return cs_cli_usage_error("apply", "-f FILE is required");
    cs_sbuf text;
    cs_sbuf_init(&text, 0);
    int rc = cs__cli_read_file("apply", o->file, &text);
    cs_ystream ys = {0};
    cs_error err;
    if (rc == CS_CLI_OK &&
        cs_ystream_parse(&ys, text.data ? text.data : "", text.len, &err) != CS_OK)
        rc = cs_cli_error("apply", "%s: %s", o->file, err.msg);
    if (rc == CS_CLI_OK && ys.n_docs == 0) rc = cs_cli_error("apply", "%s: no documents", o->file);
    /* Every document's kind and name first, so a typo in the third sends nothing. */
    for (size_t i = 0; rc == CS_CLI_OK && i < ys.n_docs; i++) {
        const char *kind = cs_ynode_str(ys.docs[i], "kind");
        const char *name = cs_ynode_str(cs_ynode_get(ys.docs[i], "metadata"), "name");
        if (!kind || strcmp(kind, "Deployment"))
            rc = cs_cli_error("apply", "%s: document %zu: kind must be Deployment, got '%s'",
                              o->file, i + 1, kind ? kind : "");
        else if (!name || !*name || strlen(name) > 63 || strpbrk(name, "/?#%"))
            rc = cs_cli_error("apply", "%s: document %zu: metadata.name is missing or invalid",
                              o->file, i + 1);
    }
    for (size_t i = 0; rc == CS_CLI_OK && i < ys.n_docs; i++) {
        cs_sbuf body, path;
        cs_sbuf_init(&body, 0);
        cs_sbuf_init(&path, 0);
        const char *name = cs_ynode_str(cs_ynode_get(ys.docs[i], "metadata"), "name");
        cs_http_reply rep = {0};
        json_t *j = NULL;
        if (cs_ynode_write_json(ys.docs[i], &body) == CS_OK &&
            cs_sbuf_puts(&path, "/api/v1/deployments/") == CS_OK &&
            cs_sbuf_puts(&path, name) == CS_OK)
            j = cs_http_json(h, "PUT", path.data, body.data, &rep, &err);
        else
            cs_error_set(&err, CS_ERR_NOMEM, "out of memory");
        if (j)
            printf("deployment.capstan.dev/%s %s\n", name,
                   rep.status == 201 ? "created" : "configured");
        else
            rc = cs_cli_error("apply", "deployment '%s': %s", name, err.msg);
        json_decref(j);
        cs_sbuf_free(&rep.body);
        cs_sbuf_free(&body);
        cs_sbuf_free(&path);
    }
    cs_ystream_free(&ys);
    cs_sbuf_free(&text);
    return rc;
}

/* --- get, describe, delete, scale --------------------------------------------------------- */

static bool is_deployments(const char *kind, bool plural_ok)
{
    return !strcmp(kind, "deployment") || !strcmp(kind, "deploy") ||
           (plural_ok && !strcmp(kind, "deployments"));
}

static void traffic_text(const json_t *d, char *out, size_t cap)
{
    size_t i, n = 0;
    json_t *t;
    out[0] = '\0';
    json_array_foreach(at(d, "status", "traffic"), i, t)
    {
        if (json_integer_value(json_object_get(t, "percent")) == 0) continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%sv%s:%lld%%", n ? "," : "",
                              str(t, "version"),
                              (long long)json_integer_value(json_object_get(t, "percent")));
    }
    if (!out[0]) snprintf(out, cap, "-");
}

static void ready_text(const json_t *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%lld/%lld",
             (long long)json_integer_value(at(d, "status", "readyInstances")),
             (long long)json_integer_value(at(d, "status", "desiredInstances")));
}

static void panic_text(const json_t *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", json_is_true(at(d, "status", "panic")) ? "yes" : "no");
}

/* What declared an implicit deployment (--model, ...), "-" for one that was applied. */
static void declared_text(const json_t *d, char *buf, size_t cap)
{
    const char *by = json_string_value(
        json_object_get(at(d, "metadata", "annotations"), "capstan.dev/implicit"));
    snprintf(buf, cap, "%s", by ? by : "-");
}

static const cs_cli_column columns[] = {
    {"NAME", "metadata.name", CS_CLI_CELL_TEXT, false, NULL},
    {"MODEL", "spec.model", CS_CLI_CELL_TEXT, false, NULL},
    {"READY", NULL, CS_CLI_CELL_TEXT, false, ready_text},
    {"TRAFFIC", NULL, CS_CLI_CELL_TEXT, false, traffic_text},
    {"MIN", "spec.instances.min", CS_CLI_CELL_TEXT, true, NULL},
    {"MAX", "spec.instances.max", CS_CLI_CELL_TEXT, true, NULL},
    {"PANIC", NULL, CS_CLI_CELL_TEXT, true, panic_text},
    {"ROLLOUT", "status.rollout.phase", CS_CLI_CELL_TEXT, true, NULL},
    {"REASON", "status.reason", CS_CLI_CELL_TEXT, true, NULL},
    {"IMPLICIT", NULL, CS_CLI_CELL_TEXT, true, declared_text},
};
static const cs_cli_view view = {"deployment.capstan.dev", "metadata.name", NULL, columns,
                                 sizeof columns / sizeof columns[0]};

static void describe(cs_http *h, const json_t *d)
{
    const json_t *spec = json_object_get(d, "spec"), *st = json_object_get(d, "status");
    const json_t *inst = json_object_get(spec, "instances");
    printf("Name:         %s\n", str(json_object_get(d, "metadata"), "name"));
    printf("Model:        %s\n", str(spec, "model"));
    char by[64];
    declared_text(d, by, sizeof by);
    if (strcmp(by, "-")) printf("Implicit:     declared by %s\n", by);
    printf("Generation:   %lld\n", (long long)json_integer_value(at(d, "metadata", "generation")));
    printf("Instances:    min %lld, max %lld, target concurrency %g, container concurrency %lld\n",
           (long long)json_integer_value(json_object_get(inst, "min")),
           (long long)json_integer_value(json_object_get(inst, "max")),
           json_number_value(json_object_get(inst, "targetConcurrency")),
           (long long)json_integer_value(json_object_get(inst, "containerConcurrency")));
    printf("Rollout:      %s\n", str(json_object_get(spec, "rollout"), "strategy"));
    printf("Status:       %lld desired, %lld ready%s\n",
           (long long)json_integer_value(json_object_get(st, "desiredInstances")),
           (long long)json_integer_value(json_object_get(st, "readyInstances")),
           json_is_true(json_object_get(st, "panic")) ? ", panic mode" : "");
    if (json_string_length(json_object_get(st, "reason")))
        printf("Reason:       %s\n", str(st, "reason"));
    printf("Traffic:\n");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(spec, "traffic"), i, t)
    {
        char target[80];
        if (json_object_get(t, "alias"))
            snprintf(target, sizeof target, "alias %s", str(t, "alias"));
        else
            snprintf(target, sizeof target, "version %lld",
                     (long long)json_integer_value(json_object_get(t, "version")));
        printf("  %-24s %3lld%%\n", target,
               (long long)json_integer_value(json_object_get(t, "percent")));
    }
    json_array_foreach(json_object_get(st, "traffic"), i, t)
        printf("  -> version %-9s %3lld%% now, %lld%% wanted\n", str(t, "version"),
               (long long)json_integer_value(json_object_get(t, "percent")),
               (long long)json_integer_value(json_object_get(t, "wantedPercent")));
    /* Times as ages, as kubectl describe shows them: how long each instance has been in its
     * state, how long ago each event happened. */
    int64_t now = (int64_t)time(NULL);
    char age[16];
    printf("Instances:\n  %-32s %-8s %-9s %-6s %s\n", "NAME", "VERSION", "STATE", "AGE", "REASON");
    json_array_foreach(json_object_get(st, "instances"), i, t)
    {
        cs_cli_age_text(str(t, "since"), now, age, sizeof age);
        printf("  %-32s %-8s %-9s %-6s %s\n", str(t, "name"), str(t, "version"), str(t, "state"),
               age, str(t, "reason"));
    }
    /* Recent events: the deployment's audit entries. */
    char path[160];
    snprintf(path, sizeof path, "/api/v1/audit?model=%s&limit=10",
             str(json_object_get(d, "metadata"), "name"));
    cs_http_reply rep = {0};
    cs_error err;
    json_t *ev = cs_http_json(h, "GET", path, NULL, &rep, &err);
    printf("Events:\n  %-6s %-20s %-10s %s\n", "AGE", "ACTION", "ACTOR", "DETAIL");
    json_array_foreach(json_object_get(ev, "items"), i, t)
    {
        const char *action = str(t, "action");
        if (strncmp(action, "deployment.", 11)) continue;
        char *detail = json_dumps(json_object_get(t, "after"), JSON_COMPACT);
        cs_cli_age_text(str(t, "at"), now, age, sizeof age);
        printf("  %-6s %-20s %-10s %.120s\n", age, action, str(t, "actor"),
               strcmp(action, "deployment.scaled") || !detail ? "" : detail);
        free(detail);
    }
    if (!ev) printf("  (not readable: %s)\n", err.msg);
    json_decref(ev);
    cs_sbuf_free(&rep.body);
}

static int object_cmd(cs_http *h, const deploy_opts *o, int argc, char **argv)
{
    const char *cmd = o->cmd;
    bool get = !strcmp(cmd, "get");
    if (argc < 1 || !is_deployments(argv[0], get)) {
        static const char *const kinds[] = {"deployment", "deployments", "deploy"};
        const char *near =
            argc ? cs_cli_nearest(argv[0], kinds, get ? 3 : 1, sizeof kinds[0]) : NULL;
        if (near)
            return cs_cli_usage_error(cmd, "unknown kind '%s' (did you mean '%s'?)", argv[0], near);
        return cs_cli_usage_error(cmd, "expected '%s deployment%s NAME'%s", cmd, get ? "s" : "",
                                  argc ? " (deployments are the only kind here)" : "");
    }
    if (argc > 2 || (!get && argc != 2))
        return cs_cli_usage_error(cmd, "expected one deployment NAME");
    char path[200];
    snprintf(path, sizeof path, "/api/v1/deployments%s%.63s%s", argc == 2 ? "/" : "",
             argc == 2 ? argv[1] : "", !strcmp(cmd, "scale") ? "/scale" : "");
    cs_http_reply rep = {0};
    cs_error err;
    json_t *j = NULL, *body = NULL;
    char *text = NULL;
    int rc = CS_CLI_OK;
    if (!strcmp(cmd, "scale")) {
        if (o->min < 0 && o->max < 0) return cs_cli_usage_error(cmd, "give --min and/or --max");
        body = json_object();
        if (o->min >= 0) json_object_set_new(body, "min", json_integer(o->min));
        if (o->max >= 0) json_object_set_new(body, "max", json_integer(o->max));
        text = json_dumps(body, JSON_COMPACT);
    }
    const char *method = !strcmp(cmd, "delete")  ? "DELETE"
                         : !strcmp(cmd, "scale") ? "PATCH"
                                                 : "GET";
    j = cs_http_json(h, method, path, text, &rep, &err);
    if (!j)
        rc = cs_cli_error(cmd, "%s", err.msg);
    else if (!strcmp(cmd, "delete"))
        printf("deployment.capstan.dev/%s deleted\n", argv[1]);
    else if (!strcmp(cmd, "scale"))
        printf("deployment.capstan.dev/%s scaled\n", argv[1]);
    else if (!strcmp(cmd, "describe"))
        describe(h, j);
    else if (argc == 2) {
        json_t *one = json_pack("[O]", j);
        rc = cs_cli_output(cmd, o->out, &view, j, one);
        json_decref(one);
    } else
        rc = cs_cli_output(cmd, o->out, &view, j, json_object_get(j, "items"));
    free(text);
    json_decref(body);
    json_decref(j);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int deploy_main(const char *cmd, const char *usage, int argc, char **argv)
{
    static const struct option longopts[] = {{"filename", required_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"server", required_argument, NULL, OPT_SERVER},
                                             {"cacert", required_argument, NULL, OPT_CACERT},
                                             {"min", required_argument, NULL, OPT_MIN},
                                             {"max", required_argument, NULL, OPT_MAX},
                                             {0}};
    const cs_cli_spec spec = {cmd, usage, "f:o:", longopts};
    deploy_opts o = {.cmd = cmd, .min = -1, .max = -1};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    bool is_apply = !strcmp(cmd, "apply");
    if ((o.file && !is_apply) || (o.output && strcmp(cmd, "get")) ||
        ((o.min >= 0 || o.max >= 0) && strcmp(cmd, "scale")))
        return cs_cli_usage_error(cmd, "an option given is not one of '%s' (see --help)", cmd);
    if (is_apply && first != argc) return cs_cli_usage_error(cmd, "apply takes only -f FILE");
    cs_http h;
    char server[1024];
    cs_error err;
    cs_status st = cs_http_open(&h, o.server, o.cacert, server, sizeof server, &err);
    if (st == CS_ERR_INVALID) return cs_cli_usage_error(cmd, "%s", err.msg);
    if (st != CS_OK) return cs_cli_error(cmd, "%s", err.msg);
    rc = is_apply ? apply(&h, &o) : object_cmd(&h, &o, argc - first, argv + first);
    cs_http_free(&h);
    return rc;
}

static int apply_main(int argc, char **argv)
{
    return deploy_main("apply", usage_apply, argc, argv);
}
static int get_main(int argc, char **argv)
{
    return deploy_main("get", usage_get, argc, argv);
}
static int describe_main(int argc, char **argv)
{
    return deploy_main("describe", usage_describe, argc, argv);
}
static int delete_main(int argc, char **argv)
{
    return deploy_main("delete", usage_delete, argc, argv);
}
static int scale_main(int argc, char **argv)
{
    return deploy_main("scale", usage_scale, argc, argv);
}

const cs_cli_command cs_cli_apply_cmd = {"apply", "create or replace deployments from a file",
                                         apply_main};
const cs_cli_command cs_cli_get_cmd = {"get", "list deployments", get_main};
const cs_cli_command cs_cli_describe_cmd = {"describe", "show a deployment in detail",
                                            describe_main};
const cs_cli_command cs_cli_delete_cmd = {"delete", "delete a deployment", delete_main};
const cs_cli_command cs_cli_scale_cmd = {"scale", "set a deployment's instance bounds", scale_main};

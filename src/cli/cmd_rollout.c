/*
 * cmd_rollout.c - `capstan rollout start|status|promote|abort|undo NAME`, as `kubectl
 * rollout` (and Argo Rollouts' promote and abort) have them, through
 * /api/v1/deployments/NAME/rollout.
 *
 * `status` waits, as kubectl's does, until the rollout ends, printing each change of phase,
 * step or weight: exit 0 once it succeeded (or when there is none), 1 when it failed or the
 * --timeout passed. `--watch=false` prints once; `-o json|yaml` prints the rollout object
 * (output.h), `-o name` the deployment as deployment.capstan.dev/NAME.
 */
#include "base/clock.h"
#include "cli/cli.h"
#include "cli/http_client.h"
#include "cli/output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage[] =
    "usage: capstan rollout start NAME --to VERSION|ALIAS\n"
    "       capstan rollout status NAME [--watch=false] [--timeout DURATION]\n"
    "                                  [-o json|yaml|name]\n"
    "       capstan rollout promote|abort|undo NAME\n\n"
    "Rolls a deployment out to a new version. start makes VERSION (a number) or ALIAS the\n"
    "deployment's one traffic target: a canary deployment then goes through its steps and\n"
    "analysis, a rolling one replaces its instances. promote gives the canary all traffic\n"
    "now; abort rolls it back now; undo rolls out the version served before.\n\n"
    "options:\n"
    "  --to REF            the version or alias to roll out (start)\n"
    "  -w, --watch[=BOOL]  status: wait until the rollout ends (default true)\n"
    "  --timeout DURATION  status: give up waiting after this long (default 10m)\n"
    "  -o, --output F      status: json or yaml (the rollout object), name\n"
    "                      (deployment.capstan.dev/NAME) or wide (the status line); any\n"
    "                      case; implies --watch=false\n"
    "  --server URL        the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE       CA certificates (PEM) that verify an https server\n"
    "  -h, --help          show this help\n";

enum { OPT_TO = 256, OPT_TIMEOUT, OPT_SERVER, OPT_CACERT };

typedef struct rollout_opts {
    const char *to, *server, *cacert;
    bool output; /* -o given */
    cs_cli_format out;
    bool watch;
    int64_t timeout_ns;
} rollout_opts;

static int on_option(void *user, int opt, const char *arg)
{
    rollout_opts *o = user;
    switch (opt) {
    case OPT_TO: o->to = arg; break;
    case OPT_SERVER: o->server = arg; break;
    case OPT_CACERT: o->cacert = arg; break;
    case OPT_TIMEOUT:
        if (cs_duration_parse(arg, &o->timeout_ns) != 0 || o->timeout_ns <= 0)
            return cs_cli_usage_error("rollout", "--timeout expects a duration (30s, 5m), got '%s'",
                                      arg);
        break;
    case 'w':
        if (arg && strcasecmp(arg, "true") && strcasecmp(arg, "false"))
            return cs_cli_usage_error("rollout", "--watch expects true or false, got '%s'", arg);
        o->watch = !arg || !strcasecmp(arg, "true");
        break;
    default: /* 'o' */ o->output = true; return cs_cli_output_parse("rollout", arg, &o->out);
    }
    return CS_CLI_CONTINUE;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* One line for a rollout object: "Progressing: step 1 of 2, canary 3 at 50% (stable 1)". */
static void describe(const char *name, const json_t *ro, char *out, size_t cap)
{
    if (!json_is_object(ro)) {
        snprintf(out, cap, "deployment \"%s\" has had no rollout", name);
        return;
    }
    int n =
        snprintf(out, cap, "%s: step %d of %d, canary %s at %d%% (stable %s)", str(ro, "phase"),
                 (int)json_integer_value(json_object_get(ro, "step")),
                 (int)json_integer_value(json_object_get(ro, "steps")), str(ro, "canary"),
                 (int)json_integer_value(json_object_get(ro, "canaryWeight")), str(ro, "stable"));
    if (*str(ro, "reason") && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ": %s", str(ro, "reason"));
}

static int status(cs_http *h, const rollout_opts *o, const char *name, const char *path)
{
    uint64_t until = cs_now_ns() + (uint64_t)(o->timeout_ns ? o->timeout_ns : 600000000000ll);
    char last[600] = "";
    for (;;) {
        cs_http_reply rep = {0};
        cs_error err;
        json_t *j = cs_http_json(h, "GET", path, NULL, &rep, &err);
        if (!j) {
            cs_sbuf_free(&rep.body);
            return cs_cli_error("rollout", "%s", err.msg);
        }
        const json_t *ro = json_object_get(j, "rollout");
        const char *phase = str(ro, "phase");
        bool done = !json_is_object(ro) || !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
        int rc = !strcmp(phase, "Failed") ? CS_CLI_RUNTIME : CS_CLI_OK;
        if (o->out == CS_CLI_OUT_JSON || o->out == CS_CLI_OUT_YAML) {
            if (cs_cli_output("rollout", o->out, NULL, ro, NULL) != CS_CLI_OK) rc = CS_CLI_RUNTIME;
        } else if (o->out == CS_CLI_OUT_NAME) {
            printf("deployment.capstan.dev/%s\n", name);
        } else {
            char line[600];
            describe(name, ro, line, sizeof line);
            if (strcmp(line, last)) printf("%s\n", line);
            snprintf(last, sizeof last, "%s", line);
            fflush(stdout);
        }
        json_decref(j);
        cs_sbuf_free(&rep.body);
        if (done || o->output || !o->watch) return rc;
        if (cs_now_ns() >= until)
            return cs_cli_error("rollout", "timed out waiting for deployment \"%s\"'s rollout",
                                name);
        cs_sleep_ns(500 * 1000000ull);
    }
}

static int run(cs_http *h, const rollout_opts *o, const char *sub, int argc, char **argv)
{
    static const char *const subs[] = {"start", "status", "promote", "abort", "undo"};
    bool known = false;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) known |= !strcmp(sub, subs[i]);
    if (!known) {
        const char *near = cs_cli_nearest(sub, subs, 5, sizeof subs[0]);
        if (near)
            return cs_cli_usage_error("rollout", "unknown subcommand '%s' (did you mean '%s'?)",
                                      sub, near);
        return cs_cli_usage_error("rollout", "unknown subcommand '%s' (%s)", sub,
                                  "start, status, promote, abort or undo");
    }
    if (argc != 1) return cs_cli_usage_error("rollout", "%s expects one deployment NAME", sub);
    bool start = !strcmp(sub, "start"), is_status = !strcmp(sub, "status");
    if (start != (o->to != NULL))
        return cs_cli_usage_error("rollout", start ? "start needs --to VERSION|ALIAS"
                                                   : "--to is for start only");
    if (!is_status && (o->output || o->timeout_ns))
        return cs_cli_usage_error("rollout", "-o and --timeout are for status only");
    char path[200];
    snprintf(path, sizeof path, "/api/v1/deployments/%.63s/rollout%s%s", argv[0],
             is_status ? "" : "/", is_status ? "" : sub);
    if (is_status) return status(h, o, argv[0], path);
    json_t *body = start ? json_pack("{s:s}", "to", o->to) : json_object();
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    cs_http_reply rep = {0};
    cs_error err;
    json_t *j = cs_http_json(h, "POST", path, text, &rep, &err);
    free(text);
    int rc = CS_CLI_OK;
    if (!j) {
        rc = cs_cli_error("rollout", "%s", err.msg);
    } else {
        char line[600];
        describe(argv[0], json_object_get(json_object_get(j, "status"), "rollout"), line,
                 sizeof line);
        printf("deployment.capstan.dev/%s %s\n%s\n", argv[0],
               start                     ? "rollout started"
               : !strcmp(sub, "undo")    ? "rolled back"
               : !strcmp(sub, "promote") ? "promoted"
                                         : "aborted",
               line);
    }
    json_decref(j);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int rollout_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"to", required_argument, NULL, OPT_TO},
                                             {"watch", optional_argument, NULL, 'w'},
                                             {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                             {"output", required_argument, NULL, 'o'},
                                             {"server", required_argument, NULL, OPT_SERVER},
                                             {"cacert", required_argument, NULL, OPT_CACERT},
                                             {0}};
    static const cs_cli_spec spec = {"rollout", usage, "wo:", longopts};
    rollout_opts o = {.watch = true};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc)
        return cs_cli_usage_error("rollout", "expected start, status, promote, abort or undo");
    cs_http h;
    char server[1024];
    cs_error err;
    cs_status st = cs_http_open(&h, o.server, o.cacert, server, sizeof server, &err);
    if (st == CS_ERR_INVALID) return cs_cli_usage_error("rollout", "%s", err.msg);
    if (st != CS_OK) return cs_cli_error("rollout", "%s", err.msg);
    rc = run(&h, &o, argv[first], argc - first - 1, argv + first + 1);
    cs_http_free(&h);
    return rc;
}

const cs_cli_command cs_cli_rollout_cmd = {"rollout",
                                           "start, watch, promote, abort or undo a "
                                           "deployment's rollout",
                                           rollout_main};

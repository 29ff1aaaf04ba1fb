/*
 * cmd_token.c - `capstan token create|ls|revoke`: the API tokens of a running server
 * (admin only), through /api/v1/tokens.
 *
 * `create` prints the secret once, on its own line, so `capstan token create ci --role
 * invoker > ci.token` captures just it; the server keeps only its hash. The server comes
 * from --server or $CAPSTAN_SERVER, the caller's own token from $CAPSTAN_TOKEN or
 * ~/.config/capstan/token (http_client.h).
 */
#include "cli/cli.h"
#include "base/clock.h"
#include "cli/http_client.h"
#include "cli/output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char usage[] =
    "usage: capstan token create NAME --role ROLE [--models GLOB] [--ttl DURATION]\n"
    "       capstan token ls [-o json|yaml|wide|name]\n"
    "       capstan token revoke NAME\n\n"
    "Manages the bearer tokens of a running `capstan serve --auth tokens` (admin only).\n"
    "Roles: viewer (health, metadata, statistics, listings), invoker (+ inference),\n"
    "deployer (+ registry, repository, claims), admin (+ tokens, gc, device classes).\n\n"
    "options:\n"
    "  --role ROLE      viewer, invoker, deployer or admin (create)\n"
    "  --models GLOB    the models the token may address (\"*\", the default; e.g. team-*)\n"
    "  --ttl DURATION   expiry, e.g. 30d, 12h, 90m (default: never)\n"
    "  -o, --output F   ls: a table by default; wide, name (token/NAME), json or yaml\n"
    "  --server URL     the server (default $CAPSTAN_SERVER, else http://127.0.0.1:8080)\n"
    "  --cacert FILE    CA certificates (PEM) that verify an https server\n"
    "  -h, --help       show this help\n";

enum { OPT_ROLE = 256, OPT_MODELS, OPT_TTL, OPT_SERVER, OPT_CACERT };

typedef struct token_opts {
    const char *role, *models, *ttl, *server, *cacert;
    cs_cli_format out;
} token_opts;

static int on_option(void *user, int opt, const char *arg)
{
    token_opts *o = user;
    switch (opt) {
    case OPT_ROLE: o->role = arg; break;
    case OPT_MODELS: o->models = arg; break;
    case OPT_TTL: {
        int64_t ns;
        if (cs_duration_parse(arg, &ns) != 0 || ns <= 0)
            return cs_cli_usage_error("token",
                                      "--ttl expects a positive duration such as 30d, 12h or 90m "
                                      "(units ns, us, ms, s, m, h, d), got '%s'",
                                      arg);
        o->ttl = arg;
        break;
    }
    case OPT_SERVER: o->server = arg; break;
    case OPT_CACERT: o->cacert = arg; break;
    default: /* 'o' */ return cs_cli_output_parse("token", arg, &o->out);
    }
    return CS_CLI_CONTINUE;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* When a token expires, from now: "29d", "expired", "never". */
static void expires_text(const json_t *t, char *buf, size_t cap)
{
    const char *at = json_string_value(json_object_get(t, "expires_at"));
    int64_t when = cs_cli_parse_time(at), now = (int64_t)time(NULL);
    if (!at)
        snprintf(buf, cap, "never");
    else if (when >= 0 && when <= now)
        snprintf(buf, cap, "expired");
    else if (when >= 0)
        cs_cli_duration_text(when - now, buf, cap);
    else
        snprintf(buf, cap, "%s", at);
}

static void state_text(const json_t *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", json_is_string(json_object_get(t, "revoked_at")) ? "revoked" : "live");
}

static const cs_cli_column columns[] = {
    {"NAME", "name", CS_CLI_CELL_TEXT, false, NULL},
    {"ROLE", "role", CS_CLI_CELL_TEXT, false, NULL},
    {"MODELS", "models", CS_CLI_CELL_TEXT, false, NULL},
    {"EXPIRES", NULL, CS_CLI_CELL_TEXT, false, expires_text},
    {"STATE", NULL, CS_CLI_CELL_TEXT, false, state_text},
    {"AGE", "created_at", CS_CLI_CELL_AGE, false, NULL},
    {"EXPIRES-AT", "expires_at", CS_CLI_CELL_TEXT, true, NULL},
    {"CREATED-BY", "created_by", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view view = {"token", "name", NULL, columns,
                                 sizeof columns / sizeof columns[0]};

static int run(cs_http *h, const token_opts *o, const char *sub, int argc, char **argv)
{
    cs_http_reply rep;
    cs_error err;
    json_t *j = NULL, *body = NULL;
    char path[256];
    int rc = CS_CLI_OK;
    if (!strcmp(sub, "create")) {
        if (argc != 1) return cs_cli_usage_error("token", "create expects one NAME");
        if (!o->role) return cs_cli_usage_error("token", "create needs --role");
        body = json_pack("{s:s, s:s}", "name", argv[0], "role", o->role);
        if (o->models) json_object_set_new(body, "models", json_string(o->models));
        if (o->ttl) json_object_set_new(body, "ttl", json_string(o->ttl));
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        j = text ? cs_http_json(h, "POST", "/api/v1/tokens", text, &rep, &err) : NULL;
        free(text);
        if (j) {
            printf("%s\n", str(j, "token"));
            fprintf(stderr,
                    "token '%s' (role %s, models %s) created; the line above is its "
                    "secret, shown only now\n",
                    str(j, "name"), str(j, "role"), str(j, "models"));
        }
    } else if (!strcmp(sub, "ls")) {
        if (argc != 0) return cs_cli_usage_error("token", "ls takes no arguments");
        j = cs_http_json(h, "GET", "/api/v1/tokens", NULL, &rep, &err);
        if (j) rc = cs_cli_output("token", o->out, &view, j, json_object_get(j, "items"));
    } else if (!strcmp(sub, "revoke")) {
        if (argc != 1) return cs_cli_usage_error("token", "revoke expects one NAME");
        snprintf(path, sizeof path, "/api/v1/tokens/%.200s", argv[0]);
        j = cs_http_json(h, "DELETE", path, NULL, &rep, &err);
        if (j) printf("token '%s' revoked\n", argv[0]);
    } else {
        static const char *const subs[] = {"create", "ls", "revoke"};
        const char *near = cs_cli_nearest(sub, subs, 3, sizeof subs[0]);
        if (near)
            return cs_cli_usage_error("token", "unknown subcommand '%s' (did you mean '%s'?)", sub,
                                      near);
        return cs_cli_usage_error("token", "unknown subcommand '%s' (create, ls or revoke)", sub);
    }
    if (!j) rc = cs_cli_error("token", "%s", err.msg);
    json_decref(j);
    json_decref(body);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int token_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"role", required_argument, NULL, OPT_ROLE},
                                             {"models", required_argument, NULL, OPT_MODELS},
                                             {"ttl", required_argument, NULL, OPT_TTL},
                                             {"server", required_argument, NULL, OPT_SERVER},
                                             {"cacert", required_argument, NULL, OPT_CACERT},
                                             {"output", required_argument, NULL, 'o'},
                                             {0}};
    static const cs_cli_spec spec = {"token", usage, "o:", longopts};
    token_opts o = {0};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc) return cs_cli_usage_error("token", "expected create, ls or revoke");
    cs_http h;
    char server[1024];
    cs_error err;
    cs_status st = cs_http_open(&h, o.server, o.cacert, server, sizeof server, &err);
    if (st == CS_ERR_INVALID) return cs_cli_usage_error("token", "%s", err.msg);
    if (st != CS_OK) return cs_cli_error("token", "%s", err.msg);
    rc = run(&h, &o, argv[first], argc - first - 1, argv + first + 1);
    cs_http_free(&h);
    return rc;
}

const cs_cli_command cs_cli_token_cmd = {"token", "create, list and revoke API tokens", token_main};

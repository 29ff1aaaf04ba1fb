/*
 * routes.c - the route table: method + path pattern -> handler, and 404/405 for the rest.
 *
 * Patterns are matched segment by segment; `{m}` captures a model name and `{v}` a
 * version into the request (cut to CS_API_NAME_MAX - 1 bytes: still an invalid name), `{name}`
 * a DRA object name (at most CS_DRA_NAME_MAX bytes, else the route does not match). The table is
 * small, so a linear scan (O(routes x segments) per request) beats any index. HEAD is served by GET
 * routes (libmicrohttpd drops the body). A path that some route fits under another method is 405
 * with Allow; no fit at all is 404.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

typedef cs_api_route route;

/* Who may call what: health is public; viewers read; invokers infer; deployers change
 * models, versions, aliases, deployments, the repository and claims; admins also run gc and manage
 * tokens and device classes. */
#define PUBLIC   CS_ROLE_NONE
#define VIEWER   CS_ROLE_VIEWER
#define INVOKER  CS_ROLE_INVOKER
#define DEPLOYER CS_ROLE_DEPLOYER
#define ADMIN    CS_ROLE_ADMIN

static const route routes[] = {
    {"GET", "/v2/health/live", cs_v2_live, PUBLIC},
    {"GET", "/v2/health/ready", cs_v2_ready, PUBLIC},
    {"GET", "/v2", cs_v2_server_metadata, VIEWER},
    {"GET", "/v2/models", cs_v2_models_list, VIEWER},
    {"GET", "/v2/models/stats", cs_v2_all_stats, VIEWER}, /* before {m}: "stats" is no model name */
    {"GET", "/v2/models/{m}", cs_v2_model_metadata, VIEWER},
    {"GET", "/v2/models/{m}/versions/{v}", cs_v2_model_metadata, VIEWER},
    {"GET", "/v2/models/{m}/ready", cs_v2_model_ready, VIEWER},
    {"GET", "/v2/models/{m}/versions/{v}/ready", cs_v2_model_ready, VIEWER},
    {"GET", "/v2/models/{m}/config", cs_v2_model_config, VIEWER},
    {"GET", "/v2/models/{m}/versions/{v}/config", cs_v2_model_config, VIEWER},
    {"GET", "/v2/models/{m}/stats", cs_v2_model_stats, VIEWER},
    {"GET", "/v2/models/{m}/versions/{v}/stats", cs_v2_model_stats, VIEWER},
    {"POST", "/v2/models/{m}/infer", cs_v2_infer, INVOKER},
    {"POST", "/v2/models/{m}/versions/{v}/infer", cs_v2_infer, INVOKER},
    {"POST", "/v2/repository/index", cs_api_repo_index, VIEWER},
    {"POST", "/v2/repository/models/{m}/load", cs_api_repo_load, DEPLOYER},
    {"POST", "/v2/repository/models/{m}/unload", cs_api_repo_unload, DEPLOYER},
    {"GET", "/metrics", cs_api_metrics, VIEWER},
    {"GET", "/api/v1/devices", cs_api_devices_list, VIEWER},
    {"GET", "/api/v1/deviceclasses", cs_api_classes_list, VIEWER},
    {"POST", "/api/v1/deviceclasses", cs_api_classes_create, ADMIN},
    {"GET", "/api/v1/deviceclasses/{name}", cs_api_class_get, VIEWER},
    {"DELETE", "/api/v1/deviceclasses/{name}", cs_api_class_delete, ADMIN},
    {"GET", "/api/v1/claims", cs_api_claims_list, VIEWER},
    {"POST", "/api/v1/claims", cs_api_claims_create, DEPLOYER},
    {"GET", "/api/v1/claims/{name}", cs_api_claim_get, VIEWER},
    {"DELETE", "/api/v1/claims/{name}", cs_api_claim_delete, DEPLOYER},
    /* The registry's management API; {a} (an alias) is captured where {v} goes. */
    {"GET", "/api/v1/models", cs_api_models_list, VIEWER},
    {"POST", "/api/v1/models", cs_api_model_create, DEPLOYER},
    {"GET", "/api/v1/models/{m}", cs_api_model_get, VIEWER},
    {"PATCH", "/api/v1/models/{m}", cs_api_model_patch, DEPLOYER},
    {"DELETE", "/api/v1/models/{m}", cs_api_model_delete, DEPLOYER},
    {"GET", "/api/v1/models/{m}/versions", cs_api_versions_list, VIEWER},
    {"POST", "/api/v1/models/{m}/versions", cs_api_version_push, DEPLOYER, true},
    {"GET", "/api/v1/models/{m}/versions/{v}", cs_api_version_get, VIEWER},
    {"GET", "/api/v1/models/{m}/versions/{v}/artifact", cs_api_version_artifact, VIEWER},
    {"PATCH", "/api/v1/models/{m}/versions/{v}", cs_api_version_patch, DEPLOYER},
    {"DELETE", "/api/v1/models/{m}/versions/{v}", cs_api_version_delete, DEPLOYER},
    {"GET", "/api/v1/models/{m}/aliases", cs_api_aliases_list, VIEWER},
    {"PUT", "/api/v1/models/{m}/aliases/{a}", cs_api_alias_put, DEPLOYER},
    {"DELETE", "/api/v1/models/{m}/aliases/{a}", cs_api_alias_delete, DEPLOYER},
    {"GET", "/api/v1/audit", cs_api_audit_list, VIEWER},
    {"POST", "/api/v1/gc", cs_api_registry_gc, ADMIN},
    {"GET", "/api/v1/deployments", cs_api_deployments_list, VIEWER},
    {"POST", "/api/v1/deployments", cs_api_deployment_create, DEPLOYER},
    {"GET", "/api/v1/deployments/{name}", cs_api_deployment_get, VIEWER},
    {"PUT", "/api/v1/deployments/{name}", cs_api_deployment_apply, DEPLOYER},
    {"DELETE", "/api/v1/deployments/{name}", cs_api_deployment_delete, DEPLOYER},
    {"PATCH", "/api/v1/deployments/{name}/scale", cs_api_deployment_scale, DEPLOYER},
    {"GET", "/api/v1/deployments/{name}/rollout", cs_api_rollout_get, VIEWER},
    {"POST", "/api/v1/deployments/{name}/rollout/start", cs_api_rollout_start, DEPLOYER},
    {"POST", "/api/v1/deployments/{name}/rollout/promote", cs_api_rollout_promote, DEPLOYER},
    {"POST", "/api/v1/deployments/{name}/rollout/abort", cs_api_rollout_abort, DEPLOYER},
    {"POST", "/api/v1/deployments/{name}/rollout/undo", cs_api_rollout_undo, DEPLOYER},
    {"GET", "/api/v1/tokens", cs_api_tokens_list, ADMIN},
    {"GET", "/api/v1/whoami", cs_api_whoami, PUBLIC}, /* role "none" without a valid token */
    /* The dashboard: its files are public, the data it shows comes from the routes above. */
    {"GET", "/ui", cs_api_ui, PUBLIC},
    {"GET", "/ui/{name}", cs_api_ui, PUBLIC},
    {"GET", "/api/v1/stream", cs_api_stream, VIEWER},
    {"POST", "/api/v1/tokens", cs_api_token_create, ADMIN},
    {"DELETE", "/api/v1/tokens/{name}", cs_api_token_revoke, ADMIN},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Copies one path segment [s, e) into a capture buffer; false when it is empty or, unless
 * `cut`, too long. With `cut` a long segment is cut to the buffer's size: for model names
 * and versions, whose valid forms are far shorter than the buffer, so the handler refuses it
 * as too long (400) rather than the route going missing (404). */
static bool capture(char *dst, size_t cap, bool cut, const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    if (n == 0 || (n >= cap && !cut)) return false;
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* Whether path fits pattern; fills r's captures on the way (they are reset on a miss). */
static bool match(const char *pattern, const char *path, cs_api_req *r)
{
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '{') {
            if (*p++ != *u++) goto miss;
            continue;
        }
        const char *close = strchr(p, '}');
        const char *end = strchr(u, '/');
        if (!end) end = u + strlen(u);
        char *dst = p[1] == 'n' ? r->name : p[1] == 'm' ? r->model : r->version;
        bool dra = dst == r->name;
        if (!capture(dst, dra ? sizeof r->name : CS_API_NAME_MAX, !dra, u, end)) goto miss;
        p = close + 1;
        u = end;
    }
    if (!*p && (!*u || (u[0] == '/' && !u[1]))) return true; /* one trailing '/' is fine */
miss:
    r->model[0] = r->version[0] = r->name[0] = '\0';
    return false;
}

const route *cs_api_route_find(cs_api_req *r)
{
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(routes[i].method, method) == 0 && match(routes[i].pattern, r->url, r))
            return &routes[i];
    return NULL;
}

void cs_api_dispatch(cs_api_req *r)
{
    if (r->route) {
        r->route->fn(r);
        return;
    }
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    char allow[64] = ""; /* every method some route takes this path with, comma-separated */
    size_t n = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].pattern, r->url, r)) continue;
        if (strcmp(routes[i].method, method) == 0) {
            routes[i].fn(r);
            return;
        }
        if (!strstr(allow, routes[i].method) && n < sizeof allow)
            n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                                  routes[i].method);
        r->model[0] = r->version[0] = r->name[0] = '\0';
    }
    if (allow[0]) {
        cs_api_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: method not allowed (use %s)",
                     r->method, r->url, allow);
        cs_api_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        return;
    }
    cs_api_error(r, MHD_HTTP_NOT_FOUND, "no route for %s %s", r->method, r->url);
}

bool cs_api_shed_early(cs_api_req *r)
{
    return r->route && r->route->fn == cs_v2_infer && cs_v2_infer_shed(r);
}

bool cs_api_dispatch_stream(cs_api_req *r)
{
    if (!r->route || !r->route->streams) return false;
    r->route->fn(r);
    return true;
}

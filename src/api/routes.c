/*
 * routes.c - the route table: method + path pattern -> handler, and 404/405 for the rest.
 *
 * Patterns are matched segment by segment; `{m}` captures a model name and `{v}` a
 * version into the request (at most CS_API_NAME_MAX - 1 bytes, else the route does not
 * match), `{name}` a DRA object name (at most CS_DRA_NAME_MAX bytes). The table is small,
 * so a linear scan (O(routes x segments) per request) beats any index. HEAD is served by
 * GET routes (libmicrohttpd drops the body). A path that some route fits under another
 * method is 405 with Allow; no fit at all is 404.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

typedef struct route {
    const char *method, *pattern;
    cs_api_handler fn;
    bool streams; /* runs at the headers and takes the body through a sink (api.h) */
} route;

static const route routes[] = {
    {"GET", "/v2/health/live", cs_v2_live},
    {"GET", "/v2/health/ready", cs_v2_ready},
    {"GET", "/v2", cs_v2_server_metadata},
    {"GET", "/v2/models/stats", cs_v2_all_stats}, /* before {m}: "stats" is no model name */
    {"GET", "/v2/models/{m}", cs_v2_model_metadata},
    {"GET", "/v2/models/{m}/versions/{v}", cs_v2_model_metadata},
    {"GET", "/v2/models/{m}/ready", cs_v2_model_ready},
    {"GET", "/v2/models/{m}/versions/{v}/ready", cs_v2_model_ready},
    {"GET", "/v2/models/{m}/stats", cs_v2_model_stats},
    {"GET", "/v2/models/{m}/versions/{v}/stats", cs_v2_model_stats},
    {"POST", "/v2/models/{m}/infer", cs_v2_infer},
    {"POST", "/v2/models/{m}/versions/{v}/infer", cs_v2_infer},
    {"POST", "/v2/repository/index", cs_api_repo_index},
    {"POST", "/v2/repository/models/{m}/load", cs_api_repo_load},
    {"POST", "/v2/repository/models/{m}/unload", cs_api_repo_unload},
    {"GET", "/metrics", cs_api_metrics},
    {"GET", "/api/v1/devices", cs_api_devices_list},
    {"GET", "/api/v1/deviceclasses", cs_api_classes_list},
    {"POST", "/api/v1/deviceclasses", cs_api_classes_create},
    {"GET", "/api/v1/deviceclasses/{name}", cs_api_class_get},
    {"DELETE", "/api/v1/deviceclasses/{name}", cs_api_class_delete},
    {"GET", "/api/v1/claims", cs_api_claims_list},
    {"POST", "/api/v1/claims", cs_api_claims_create},
    {"GET", "/api/v1/claims/{name}", cs_api_claim_get},
    {"DELETE", "/api/v1/claims/{name}", cs_api_claim_delete},
    /* The registry's management API; {a} (an alias) is captured where {v} goes. */
    {"GET", "/api/v1/models", cs_api_models_list},
    {"POST", "/api/v1/models", cs_api_model_create},
    {"GET", "/api/v1/models/{m}", cs_api_model_get},
    {"PATCH", "/api/v1/models/{m}", cs_api_model_patch},
    {"DELETE", "/api/v1/models/{m}", cs_api_model_delete},
    {"GET", "/api/v1/models/{m}/versions", cs_api_versions_list},
    {"POST", "/api/v1/models/{m}/versions", cs_api_version_push, true},
    {"GET", "/api/v1/models/{m}/versions/{v}", cs_api_version_get},
    {"PATCH", "/api/v1/models/{m}/versions/{v}", cs_api_version_patch},
    {"DELETE", "/api/v1/models/{m}/versions/{v}", cs_api_version_delete},
    {"GET", "/api/v1/models/{m}/aliases", cs_api_aliases_list},
    {"PUT", "/api/v1/models/{m}/aliases/{a}", cs_api_alias_put},
    {"DELETE", "/api/v1/models/{m}/aliases/{a}", cs_api_alias_delete},
    {"GET", "/api/v1/audit", cs_api_audit_list},
    {"POST", "/api/v1/gc", cs_api_registry_gc},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Copies one path segment [s, e) into a capture buffer; false when it is empty or too long. */
static bool capture(char *dst, size_t cap, const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= cap) return false;
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
        if (!capture(dst, dst == r->name ? sizeof r->name : CS_API_NAME_MAX, u, end)) goto miss;
        p = close + 1;
        u = end;
    }
    if (!*p && (!*u || (u[0] == '/' && !u[1]))) return true; /* one trailing '/' is fine */
miss:
    r->model[0] = r->version[0] = r->name[0] = '\0';
    return false;
}

void cs_api_dispatch(cs_api_req *r)
{
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    char allow[64] = ""; /* every method some route takes this path with, comma-separated */
    size_t n = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match(routes[i].pattern, r->url, r)) continue;
        if (strcmp(routes[i].method, method) == 0) {
            r->route = routes[i].pattern;
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
    for (size_t i = 0; i < N_ROUTES; i++)
        if (routes[i].fn == cs_v2_infer && strcmp(routes[i].method, r->method) == 0 &&
            match(routes[i].pattern, r->url, r))
            return cs_v2_infer_shed(r);
    return false;
}

bool cs_api_dispatch_stream(cs_api_req *r)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!routes[i].streams || strcmp(routes[i].method, r->method) != 0 ||
            !match(routes[i].pattern, r->url, r))
            continue;
        r->route = routes[i].pattern;
        routes[i].fn(r);
        return true;
    }
    return false;
}

/*
 * mgmt.c - what the management API's handlers (mgmt_*.c) share: query parameters, list
 * options and pages, labels from JSON, the actor, and registry errors as HTTP answers.
 *
 * The registry renders its records as JSON text (cs_registry_*_json); list pages are
 * assembled from those texts with a string builder rather than re-parsed, so a page of a
 * thousand versions costs one copy of each record.
 */
#include "api/api.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cs_api_query(cs_api_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *cs_api_actor(cs_api_req *r)
{
    return r->principal[0] ? r->principal : NULL; /* NULL is "anonymous" to the registry */
}

cs_registry_t *cs_api_registry_or_404(cs_api_req *r)
{
    cs_registry_t *reg = r->srv->opt.registry;
    if (!reg) cs_api_error(r, MHD_HTTP_NOT_FOUND, "this server runs without a model registry");
    return reg;
}

void cs_api_registry_error(cs_api_req *r, const cs_error *err)
{
    cs_api_error(r, cs_registry_http_status(err->code), "%s", err->msg);
}

void cs_api_json_text(cs_api_req *r, int status, char *json)
{
    if (!json) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the response");
        return;
    }
    cs_api_reply(r, status, "application/json", json, strlen(json));
}

bool cs_api_fields_or_400(cs_api_req *r, json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0) a++;
        if (*a) continue;
        char names[256];
        size_t len = 0;
        for (a = allowed; *a && len < sizeof names; a++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s\"%s\"",
                                    a == allowed ? "" : ", ", *a);
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "unknown field \"%.64s\": the fields are %s", key,
                     names);
        return false;
    }
    return true;
}

bool cs_api_list_opts_or_400(cs_api_req *r, cs_registry_list_opts *o)
{
    *o = (cs_registry_list_opts){
        .prefix = cs_api_query(r, "prefix"),
        .selector = cs_api_query(r, "selector"),
        .page_token = cs_api_query(r, "page_token"),
    };
    const char *order = cs_api_query(r, "order");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "order must be 'asc' or 'desc', not '%s'", order);
        return false;
    }
    o->descending = order && strcmp(order, "desc") == 0;
    const char *limit = cs_api_query(r, "limit");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (end == limit || *end || n < 1 || n > CS_REGISTRY_PAGE_MAX) {
            cs_api_error(r, MHD_HTTP_BAD_REQUEST, "limit must be 1..%d, not '%s'",
                         CS_REGISTRY_PAGE_MAX, limit);
            return false;
        }
        o->limit = (int)n;
    }
    return true;
}

bool cs_api_list_add_or_500(cs_api_req *r, cs_sbuf *items, char *json)
{
    bool ok = json && (items->len == 0 || cs_sbuf_puts(items, ",") == CS_OK) &&
              cs_sbuf_puts(items, json) == CS_OK;
    cs_free(json);
    if (!ok) {
        cs_sbuf_free(items);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the list");
    }
    return ok;
}

void cs_api_list_reply(cs_api_req *r, cs_sbuf *items, const char *next_page_token)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    cs_status rc = cs_sbuf_puts(&b, "{\"items\":[");
    if (rc == CS_OK) rc = cs_sbuf_append(&b, items->data, items->len);
    if (rc == CS_OK) rc = cs_sbuf_puts(&b, "],\"next_page_token\":");
    if (rc == CS_OK)
        rc = next_page_token ? cs_api_put_json_string(&b, next_page_token)
                             : cs_sbuf_puts(&b, "null");
    if (rc == CS_OK) rc = cs_sbuf_puts(&b, "}");
    cs_sbuf_free(items);
    if (rc != CS_OK) {
        cs_sbuf_free(&b);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the list");
        return;
    }
    size_t len = b.len;
    cs_api_reply(r, MHD_HTTP_OK, "application/json", cs_sbuf_take(&b), len);
}

bool cs_api_labels_or_400(cs_api_req *r, json_t *obj, const char *what, int *n,
                          cs_registry_label **labels)
{
    if (!json_is_object(obj)) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "%s must be an object of strings", what);
        return false;
    }
    size_t count = json_object_size(obj);
    if (count > CS_REGISTRY_LABELS_MAX) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "%s: %zu labels, at most %d are allowed", what, count,
                     CS_REGISTRY_LABELS_MAX);
        return false;
    }
    cs_registry_label *l = cs_arena_zalloc(&r->arena, (count ? count : 1) * sizeof *l, 16);
    if (!l) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return false;
    }
    const char *key;
    json_t *value;
    size_t i = 0;
    json_object_foreach(obj, key, value)
    {
        if (!json_is_string(value)) {
            cs_api_error(r, MHD_HTTP_BAD_REQUEST, "%s: the value of '%s' must be a string", what,
                         key);
            return false;
        }
        l[i].key = cs_arena_strndup(&r->arena, key, strlen(key));
        l[i].value =
            cs_arena_strndup(&r->arena, json_string_value(value), json_string_length(value));
        if (!l[i].key || !l[i].value) {
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
            return false;
        }
        i++;
    }
    *n = (int)count;
    *labels = l;
    return true;
}

bool cs_api_version_number_or_400(cs_api_req *r, int64_t *out)
{
    char *end;
    long long v = strtoll(r->version, &end, 10);
    if (r->version[0] < '1' || r->version[0] > '9' || *end || v < 1) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "'%s' is not a version number (aliases and 'latest' name versions only "
                     "for reading)",
                     r->version);
        return false;
    }
    *out = v;
    return true;
}

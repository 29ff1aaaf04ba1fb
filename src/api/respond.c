/*
 * respond.c - the one way a request is answered, and the helpers that answer for a
 * handler (errors as {"error": "..."}, JSON documents, "model or 404").
 *
 * An answer is an MHD response stored in the request; server.c queues it on the MHD thread.
 * Building a response is thread-safe in libmicrohttpd, which lets a runtime worker answer an
 * inference itself (under the request's lock) without a hop back to the HTTP thread.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "obs/log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The headers every answer carries: its type, the request id and the trace context. */
static void common_headers(cs_api_req *r, const char *content_type)
{
    if (content_type) MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r->resp, "X-Request-Id", r->id);
    char tp[CS_TRACEPARENT_LEN + 1];
    cs_trace_format(&r->trace, tp);
    MHD_add_response_header(r->resp, "traceparent", tp);
    if (r->trace_state[0]) MHD_add_response_header(r->resp, "tracestate", r->trace_state);
}

void cs_api_reply(cs_api_req *r, int status, const char *content_type, char *body, size_t len)
{
    assert(!r->resp && "a request is answered once");
    r->status = status;
    r->resp = MHD_create_response_from_buffer_with_free_callback(len, body, cs_free);
    if (!r->resp) {
        /* Out of memory: an empty 500 still tells the client something went wrong. */
        cs_free(body);
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        return;
    }
    common_headers(r, content_type);
}

bool cs_api_reply_stream(cs_api_req *r, int status, const char *content_type, uint64_t size,
                         MHD_ContentReaderCallback read, void *cls,
                         MHD_ContentReaderFreeCallback done)
{
    assert(!r->resp && "a request is answered once");
    r->resp = MHD_create_response_from_callback(size, 64 << 10, read, cls, done);
    if (!r->resp) {
        done(cls);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory starting the response");
        return false;
    }
    r->status = status;
    common_headers(r, content_type);
    return true;
}

void cs_api_header(cs_api_req *r, const char *name, const char *value)
{
    if (r->resp) MHD_add_response_header(r->resp, name, value);
}

/* Replaces every path under `dir` that starts a word of msg (up to a space, a quote, a
 * comma, a closing parenthesis or ": ") by "(data directory)". Returns whether it replaced
 * any. */
static bool scrub_dir(char *msg, size_t cap, const char *dir)
{
    static const char hidden[] = "(data directory)";
    size_t n = dir ? strlen(dir) : 0;
    bool any = false;
    if (n == 0) return false;
    for (char *p = msg; (p = strstr(p, dir));) {
        bool word = p == msg || strchr(" '\"(", p[-1]);
        if (!word || (p[n] && p[n] != '/' && !strchr(" '\",:", p[n]))) {
            p += n;
            continue;
        }
        char *e = p + strcspn(p, " '\",)");
        for (char *c = p; c < e; c++)
            if (c[0] == ':' && (c[1] == ' ' || c[1] == '\0')) e = c;
        size_t tail = strlen(e) + 1, hl = sizeof hidden - 1;
        if ((size_t)(p - msg) + hl + tail > cap) break;
        memmove(p + hl, e, tail);
        memcpy(p, hidden, hl);
        p += hl;
        any = true;
    }
    return any;
}

bool cs_api_hide_paths(const cs_server *s, char *msg, size_t cap)
{
    bool hid = scrub_dir(msg, cap, s->data_dir_abs);
    return scrub_dir(msg, cap, s->opt.data_dir) || hid;
}

void cs_api_error(cs_api_req *r, int status, const char *fmt, ...)
{
    char msg[CS_ERROR_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* No client learns where the server keeps its files: the log keeps the full message. */
    char orig[sizeof msg];
    memcpy(orig, msg, sizeof msg);
    if (r->srv && cs_api_hide_paths(r->srv, msg, sizeof msg))
        cs_log(CS_LOG_INFO, "error path hidden from the client", "request_id", r->id, "error", orig,
               NULL);
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    if (cs_sbuf_puts(&b, "{\"error\":") != CS_OK || cs_api_put_json_string(&b, msg) != CS_OK ||
        cs_sbuf_puts(&b, "}") != CS_OK)
        cs_sbuf_clear(&b);
    size_t len = b.len;
    cs_api_reply(r, status, "application/json", cs_sbuf_take(&b), len);
    if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
        cs_api_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

void cs_api_json(cs_api_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the response");
        return;
    }
    /* jansson allocates with malloc; hand MHD our own copy so one free function fits all. */
    size_t len = strlen(s);
    char *body = cs_strndup(s, len);
    free(s);
    if (!body) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the response");
        return;
    }
    cs_api_reply(r, status, "application/json", body, len);
}

int cs_api_http_status(cs_status rc)
{
    switch (rc) {
    case CS_ERR_INVALID:
    case CS_ERR_PARSE:
    case CS_ERR_UNSUPPORTED: return MHD_HTTP_BAD_REQUEST;
    case CS_ERR_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case CS_ERR_EXISTS: return MHD_HTTP_CONFLICT;
    case CS_ERR_LIMIT: return MHD_HTTP_TOO_MANY_REQUESTS;
    case CS_ERR_SHUTDOWN: return MHD_HTTP_SERVICE_UNAVAILABLE;
    case CS_ERR_TIMEOUT: return MHD_HTTP_GATEWAY_TIMEOUT;
    case CS_ERR_NO_FIT: return MHD_HTTP_UNPROCESSABLE_CONTENT; /* as a claim that cannot fit */
    case CS_ERR_TOO_LARGE: return MHD_HTTP_CONTENT_TOO_LARGE;
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

json_t *cs_api_json_or_400(cs_api_req *r)
{
    if (r->body.len == 0) return json_object();
    if (cs_api_json_depth(r->body.data, r->body.len, r->srv->opt.limits.max_json_depth) < 0) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "request body nests deeper than %d levels",
                     r->srv->opt.limits.max_json_depth);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data, r->body.len, 0, &jerr);
    if (!j) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "request body is not valid JSON: %s (line %d)",
                     jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

void cs_api_unlock_and_resume(cs_api_req *r)
{
    /* Copied out first: after the unlock the HTTP thread may complete and free r. */
    bool resume = r->suspended;
    struct MHD_Connection *conn = r->conn;
    pthread_mutex_unlock(&r->lock);
    if (resume) MHD_resume_connection(conn);
}

bool cs_api_model_or_404(cs_api_req *r)
{
    return cs_api_model_or_status(r, MHD_HTTP_SERVICE_UNAVAILABLE);
}

bool cs_api_held(cs_api_req *r)
{
    r->labelled = true;
    snprintf(r->version, sizeof r->version, "%s", cs_rt_model_version(r->m));
    return true;
}

bool cs_api_model_or_status(cs_api_req *r, int not_loaded)
{
    if (r->srv->deployer) { /* a deployment's version by its traffic split, or the one named */
        cs_error err;
        cs_status rc =
            cs_deployer_acquire(r->srv->deployer, r->model, r->version[0] ? r->version : NULL,
                                &r->m, &r->activate_by_ns, &err);
        if (rc == CS_ERR_UNSUPPORTED) { /* an external runtime's deployment: proxied */
            cs_api_proxy(r);
            return false;
        }
        if (rc != CS_OK) {
            cs_api_error(r,
                         rc == CS_ERR_NOT_FOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                         "%s", err.msg);
            return false;
        }
        if (r->m) return cs_api_held(r);
    }
    /* Command-line and data-dir models keep their names; the registry serves the rest. */
    if (r->srv->serving && !cs_api_repo_known(r->srv, r->model))
        return cs_api_serving_acquire_or_404(r);
    const char *version = r->version[0] ? r->version : NULL;
    r->m = cs_runtime_acquire(r->srv->rt, r->model, version);
    if (r->m) return cs_api_held(r);
    if (!cs_api_repo_known(r->srv, r->model)) {
        cs_api_error(r, MHD_HTTP_NOT_FOUND, "unknown model '%s'", r->model);
        return false;
    }
    if (version) {
        cs_api_error(r, MHD_HTTP_NOT_FOUND, "model '%s' has no loaded version '%s'", r->model,
                     version);
        return false;
    }
    cs_api_error(r, not_loaded,
                 "model '%s' is not loaded (POST /v2/repository/models/%s/load loads it)", r->model,
                 r->model);
    return false;
}

/*
 * devices.c - the device allocation endpoints of the management API:
 *   GET /api/v1/devices                       the ResourceSlices (a v1 List)
 *   GET|POST /api/v1/deviceclasses            list, create
 *   GET|DELETE /api/v1/deviceclasses/{name}
 *   GET|POST /api/v1/claims                   list, create = allocate now
 *   GET|DELETE /api/v1/claims/{name}          delete = release its devices
 *
 * The work is in the server's cs_dra_state (src/devices/dra_state.h); this file turns its
 * results into HTTP: Kubernetes objects in JSON out; JSON or, with Content-Type
 * application/yaml, YAML in. A claim that cannot be allocated is 422 with the allocator's
 * reason, and nothing is kept.
 */
#include "api/api.h"

#include "base/sbuf.h"

#include <string.h>
#include <strings.h>

/* LIMIT from the state means it holds as many objects as it may: storage, not rate. */
static int http_status(cs_status rc)
{
    return rc == CS_ERR_LIMIT ? MHD_HTTP_INSUFFICIENT_STORAGE : cs_api_http_status(rc);
}

/* Answers out as JSON with status, or err as the error when rc failed. */
static void answer(cs_api_req *r, int status, cs_status rc, cs_sbuf *out, const cs_error *err)
{
    if (rc != CS_OK) {
        cs_sbuf_free(out);
        cs_api_error(r, http_status(rc), "%s", err->msg);
        return;
    }
    size_t len = out->len;
    cs_api_reply(r, status, "application/json", cs_sbuf_take(out), len);
}

static bool media_type_is(const char *ct, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* Whether the body may go to the DRA reader: JSON (the default) is parsed as JSON first so
 * a malformed body gets a JSON parser's message; YAML goes as it is. Answers 400/415. */
static bool body_or_4xx(cs_api_req *r)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = ct ? strcspn(ct, "; \t") : 0;
    if (!ct || media_type_is(ct, n, "application/json")) {
        json_t *j = cs_api_json_or_400(r);
        json_decref(j);
        return j != NULL;
    }
    if (media_type_is(ct, n, "application/yaml") || media_type_is(ct, n, "application/x-yaml") ||
        media_type_is(ct, n, "text/yaml"))
        return true;
    cs_api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                 "Content-Type %.*s is not supported: send application/json or application/yaml",
                 (int)(n < 100 ? n : 100), ct);
    return false;
}

static void list(cs_api_req *r, cs_dra_kind kind)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err = {.code = CS_OK};
    cs_status rc = cs_dra_state_list(r->srv->dra, kind, &out);
    if (rc != CS_OK) cs_error_set(&err, rc, "writing the list: %s", cs_strerror(rc));
    answer(r, MHD_HTTP_OK, rc, &out, &err);
}

static void create(cs_api_req *r, cs_dra_kind kind)
{
    if (!body_or_4xx(r)) return;
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err = {.code = CS_OK};
    bool created = false;
    const char *text = r->body.len ? r->body.data : "";
    cs_status rc = cs_dra_state_create(r->srv->dra, kind, text, r->body.len, &out, &created, &err);
    if (rc == CS_OK && !created) {
        cs_sbuf_free(&out);
        cs_api_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "%s", err.msg);
        return;
    }
    answer(r, MHD_HTTP_CREATED, rc, &out, &err);
}

static void get(cs_api_req *r, cs_dra_kind kind)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err = {.code = CS_OK};
    cs_status rc = cs_dra_state_get(r->srv->dra, kind, r->name, &out, &err);
    answer(r, MHD_HTTP_OK, rc, &out, &err);
}

static void delete (cs_api_req *r, cs_dra_kind kind)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err = {.code = CS_OK};
    cs_status rc = cs_dra_state_delete(r->srv->dra, kind, r->name, &out, &err);
    answer(r, MHD_HTTP_OK, rc, &out, &err);
}

void cs_api_devices_list(cs_api_req *r)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err = {.code = CS_OK};
    cs_status rc = cs_dra_state_devices(r->srv->dra, &out);
    if (rc != CS_OK) cs_error_set(&err, rc, "writing the devices: %s", cs_strerror(rc));
    answer(r, MHD_HTTP_OK, rc, &out, &err);
}

void cs_api_classes_list(cs_api_req *r)
{
    list(r, CS_DRA_KIND_CLASS);
}

void cs_api_classes_create(cs_api_req *r)
{
    create(r, CS_DRA_KIND_CLASS);
}

void cs_api_class_get(cs_api_req *r)
{
    get(r, CS_DRA_KIND_CLASS);
}

void cs_api_class_delete(cs_api_req *r)
{
    delete (r, CS_DRA_KIND_CLASS);
}

void cs_api_claims_list(cs_api_req *r)
{
    list(r, CS_DRA_KIND_CLAIM);
}

void cs_api_claims_create(cs_api_req *r)
{
    create(r, CS_DRA_KIND_CLAIM);
}

void cs_api_claim_get(cs_api_req *r)
{
    get(r, CS_DRA_KIND_CLAIM);
}

void cs_api_claim_delete(cs_api_req *r)
{
    delete (r, CS_DRA_KIND_CLAIM);
}

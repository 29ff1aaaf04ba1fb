/*
 * v2_proxy.c - the model routes of a deployment whose runtime is an external process: the
 * request (method, the path after the model, Content-Type, Inference-Header-Content-Length
 * and the body) goes to cs_deployer_proxy, and the runtime's answer comes back as it is,
 * status, those headers and body, from a proxy thread that resumes the connection as a runtime
 * worker does for inference (v2_infer.c). A request that found no instance in time is 503, one
 * whose instance died twice over (or gave an answer too large) 502, one past the runtime's
 * request timeout 504, each with a JSON error.
 */
#include "api/api.h"

#include "base/alloc.h"

#include <stdio.h>
#include <string.h>

/* On a proxy thread; r may be freed once it is answered and unlocked. */
static void proxied(void *ud, cs_status rc, const char *msg, cs_proxy_resp *resp)
{
    cs_api_req *r = ud;
    pthread_mutex_lock(&r->lock);
    if (rc == CS_OK) {
        cs_api_reply(r, resp->status, resp->content_type[0] ? resp->content_type : NULL, resp->body,
                     resp->len);
        if (resp->header_length[0])
            cs_api_header(r, "Inference-Header-Content-Length", resp->header_length);
    } else {
        int status = rc == CS_ERR_TIMEOUT    ? MHD_HTTP_GATEWAY_TIMEOUT
                     : rc == CS_ERR_SHUTDOWN ? MHD_HTTP_SERVICE_UNAVAILABLE
                                             : MHD_HTTP_BAD_GATEWAY;
        cs_api_error(r, status, "%s", msg);
    }
    cs_api_unlock_and_resume(r);
}

void cs_api_proxy(cs_api_req *r)
{
    /* The route matched /v2/models/{m}[/versions/{v}]...: what follows goes on. */
    const char *suffix = strstr(r->url, r->model);
    suffix = suffix ? suffix + strlen(r->model) : "";
    if (r->version[0] && !strncmp(suffix, "/versions/", 10)) suffix += 10 + strlen(r->version);
    cs_deploy_proxy q = {
        .method = r->method,
        .suffix = suffix,
        .content_type =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .header_length = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     "Inference-Header-Content-Length"),
        .body = r->body.len ? r->body.data : NULL,
        .len = r->body.len,
        .done = proxied,
        .ud = r,
    };
    r->labelled = true; /* a deployment's name: it exists, so it may be a metric label */
    cs_error err;
    cs_status rc =
        cs_deployer_proxy(r->srv->deployer, r->model, r->version[0] ? r->version : NULL, &q, &err);
    if (rc != CS_OK)
        cs_api_error(r, rc == CS_ERR_NOT_FOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE,
                     "%s", err.msg);
}

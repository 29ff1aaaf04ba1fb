/*
 * v2_infer.c - POST /v2/models/{m}[/versions/{v}]/infer.
 *
 * The HTTP thread decodes the request (JSON, binary extension, or a raw body) into tensors
 * in the request's arena and submits it to the model. The runtime calls `done` with this
 * request's rows of the outputs, which are only valid during that call: the response is
 * encoded there, straight from runtime memory. Usually that happens on a worker thread and
 * the suspended connection is then resumed; for a fast model that does not batch the
 * runtime may run the request on this thread instead (see runtime.h), and the answer is
 * ready when submit returns, so the connection is never suspended. Either way an HTTP
 * thread waits only on computations shorter than a thread hand-off. Queue full is 429 with
 * Retry-After; a request whose `timeout` (microseconds) passes before it runs is 504.
 */
#include "api/api.h"

#include "base/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct infer_ctx {
    cs_api_req *r;
    cs_v2_request req;
    bool activating; /* its deadline is the activator's wait for a cold start */
} infer_ctx;

/* Reads Inference-Header-Content-Length: false (and a 400) when it is malformed or longer
 * than the body; *has is false when the header is absent. */
static bool header_length_or_400(cs_api_req *r, bool *has, size_t *len)
{
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    *has = h != NULL;
    *len = r->body.len;
    if (!h) return true;
    char *end;
    unsigned long long v = strtoull(h, &end, 10);
    if (end == h || *end || h[0] == '-' || v > r->body.len) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "Inference-Header-Content-Length '%s' is not a size within the %zu-byte body",
                     h, r->body.len);
        return false;
    }
    *len = (size_t)v;
    return true;
}

/* Turns the body into tensors, or answers 400/413/429 and returns false. */
static bool decode_or_400(cs_api_req *r, infer_ctx *c, const cs_model_t *m)
{
    const cs_api_limits *lim = &r->srv->opt.limits;
    bool has_header;
    size_t json_len;
    cs_error err;
    cs_status rc;
    if (!header_length_or_400(r, &has_header, &json_len)) return false;
    if (has_header && json_len == 0) {
        rc = cs_v2_raw_request(m, r->body.data, r->body.len, lim, &r->arena, &c->req, &err);
    } else {
        rc = cs_v2_decode_request(r->body.data, json_len, lim, &r->arena, &c->req, &err);
        if (rc == CS_OK)
            rc = cs_v2_bind_inputs(&c->req, r->body.data, r->body.len, json_len, &r->arena, &err);
    }
    if (rc == CS_OK) return true;
    /* A tensor over the element limit is a request too large, not a full queue. */
    cs_api_error(r, rc == CS_ERR_LIMIT ? MHD_HTTP_CONTENT_TOO_LARGE : cs_api_http_status(rc), "%s",
                 err.msg);
    return false;
}

static bool outputs_or_400(cs_api_req *r, const cs_v2_request *req, const cs_model_t *m)
{
    for (int k = 0; k < req->n_outputs; k++) {
        if (cs_v2_output_index(m, req->outputs[k].name) >= 0) continue;
        cs_sbuf names;
        cs_sbuf_init(&names, 1024);
        for (int j = 0; j < cs_model_output_count(m); j++)
            cs_sbuf_printf(&names, "%s'%s'", j ? ", " : "", cs_model_output(m, j).name);
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "unknown output '%s' (the model's outputs: %s)",
                     req->outputs[k].name, names.data);
        cs_sbuf_free(&names);
        return false;
    }
    return true;
}

/* The bytes of the outputs the answer carries (all of them unless some are asked for). */
static size_t answer_bytes(const cs_v2_request *req, const cs_model_t *m, int n_outputs,
                           const cs_tensor *outputs)
{
    size_t total = 0;
    int n = req->n_outputs ? req->n_outputs : n_outputs;
    for (int k = 0; k < n; k++) {
        const cs_tensor *t =
            &outputs[req->n_outputs ? cs_v2_output_index(m, req->outputs[k].name) : k];
        total += cs_v2_tensor_bytes(t);
    }
    return total;
}

/* Encodes the answer; called with r->lock held. An answer over limits.max_response is
 * refused (413) before any of it is written: by its outputs' bytes, and while it is encoded
 * (JSON text is longer than the tensors) by the buffer's bound. */
static void answer(cs_api_req *r, const cs_v2_request *req, int n_outputs, const cs_tensor *outputs)
{
    const cs_model_t *m = cs_rt_model_engine(r->m);
    size_t max = r->srv->opt.limits.max_response, bytes = answer_bytes(req, m, n_outputs, outputs);
    if (max && bytes > max) {
        cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                     "the answer's outputs hold %zu bytes, over the server's "
                     "--max-response-size of %zu bytes; ask for fewer or smaller outputs",
                     bytes, max);
        return;
    }
    cs_sbuf out;
    cs_sbuf_init(&out, max);
    (void)cs_sbuf_reserve(&out, 1024); /* most answers fit: one allocation instead of five */
    size_t header_len;
    cs_error err;
    cs_status rc = cs_v2_encode_response(req, r->model, r->version, m, n_outputs, outputs, &out,
                                         &header_len, &err);
    if (rc == CS_ERR_LIMIT) /* the buffer's bound */
        cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                     "the answer, encoded, is larger than the server's --max-response-size of "
                     "%zu bytes; ask for binary outputs or fewer of them",
                     max);
    else if (rc)
        cs_api_error(r, cs_api_http_status(err.code), "%s", err.msg);
    if (rc) {
        cs_sbuf_free(&out);
        return;
    }
    size_t len = out.len;
    bool binary = header_len != len;
    cs_api_reply(r, MHD_HTTP_OK, binary ? "application/octet-stream" : "application/json",
                 cs_sbuf_take(&out), len);
    if (binary) {
        char hl[32];
        snprintf(hl, sizeof hl, "%zu", header_len);
        cs_api_header(r, "Inference-Header-Content-Length", hl);
    }
}

/* Runs on a runtime worker; r may be freed once it is answered and unlocked. */
static void done(void *ud, cs_status rc, const char *msg, int n_outputs, const cs_tensor *outputs)
{
    infer_ctx *c = ud;
    cs_api_req *r = c->r;
    pthread_mutex_lock(&r->lock);
    if (rc == CS_OK) {
        r->encode_start_ns = cs_now_ns();
        answer(r, &c->req, n_outputs, outputs);
        r->encode_end_ns = cs_now_ns();
    } else if (rc == CS_ERR_TIMEOUT && c->activating)
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                     "deployment '%s' had no Ready instance within %d s", r->model,
                     CS_DEPLOY_ACTIVATION_MS / 1000);
    else
        cs_api_error(r, cs_api_http_status(rc), "%s", msg); /* 504 for a passed deadline */
    cs_api_unlock_and_resume(r);
}

/* At the headers: a model loaded already whose queue is full gets its 429 now, with
 * `Connection: close` so that the unread body is not read either. Nothing is loaded here and
 * anything else is left to cs_v2_infer; the model is looked up and released again, a map
 * lookup under the runtime's lock. */
bool cs_v2_infer_shed(cs_api_req *r)
{
    cs_rt_model *m = cs_runtime_acquire(r->srv->rt, r->model, r->version[0] ? r->version : NULL);
    if (!m) return false;
    bool full = !cs_rt_model_has_room(m);
    cs_rt_model_release(m);
    if (!full) return false;
    cs_api_error(r, MHD_HTTP_TOO_MANY_REQUESTS,
                 "model '%s' is at capacity: its queue is full; retry later", r->model);
    cs_api_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return true;
}

void cs_v2_infer(cs_api_req *r)
{
    if (atomic_load(&r->srv->draining)) {
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
        return;
    }
    bool follows_default = r->version[0] == '\0';
    if (!cs_api_model_or_404(r)) return;
    const cs_model_t *m = cs_rt_model_engine(r->m);
    infer_ctx *c = cs_arena_zalloc(&r->arena, sizeof *c, 16);
    if (!c) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    c->r = r;
    if (!decode_or_400(r, c, m) || !outputs_or_400(r, &c->req, m)) return;

    int n = c->req.n_inputs;
    const char **names = cs_arena_alloc(&r->arena, (size_t)n * sizeof *names, 16);
    cs_tensor *tensors = cs_arena_alloc(&r->arena, (size_t)n * sizeof *tensors, 16);
    if (!names || !tensors) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        names[i] = c->req.inputs[i].name;
        tensors[i] = c->req.inputs[i].t;
    }
    cs_infer_request ir = {
        .n_inputs = n,
        .input_names = names,
        .inputs = tensors,
        .priority = c->req.priority,
        .deadline_ns = c->req.timeout_us ? cs_now_ns() + c->req.timeout_us * 1000 : 0,
        .done = done,
        .ud = c,
        .timing = &r->timing,
    };
    if (r->activate_by_ns && (!ir.deadline_ns || ir.deadline_ns > r->activate_by_ns)) {
        ir.deadline_ns = r->activate_by_ns;
        c->activating = true;
    }
    /* From a successful submit on, `done` may run at any moment and r is its to answer. */
    cs_error err;
    cs_status rc = cs_rt_model_submit(r->m, &ir, &err);
    /* An alias move may unload the version this request resolved to between its acquire and
     * now (serving.c switches first, then unloads): follow the default to its new version
     * once. The decoded inputs live in the request, so only the submit is repeated; the new
     * version validates them against its own inputs. */
    if (rc == CS_ERR_SHUTDOWN && follows_default && !atomic_load(&r->srv->draining)) {
        cs_rt_model_release(r->m);
        r->m = NULL;
        r->version[0] = '\0';
        if (!cs_api_model_or_404(r)) return;
        rc = cs_rt_model_submit(r->m, &ir, &err);
    }
    if (rc == CS_OK) return;
    if (rc == CS_ERR_LIMIT)
        cs_api_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "model '%s' is at capacity: %s", r->model,
                     err.msg);
    else
        cs_api_error(r, cs_api_http_status(rc), "%s", err.msg);
}

/*
 * spans.c - a request's trace: the W3C context it continues, the sampling decision, and the
 * spans it leaves for the OTLP exporter (src/obs/otlp.h).
 *
 * Every request gets a server span id and answers with its traceparent (and the client's
 * tracestate, unchanged). A sampled request, with an exporter, ends as one SERVER span
 * named "{method} {route}" (the route's pattern, so ids do not mint names) with the HTTP
 * semantic-convention attributes; status ERROR on 5xx only. An inference request adds three
 * INTERNAL children from the runtime's timings: "queue" (submit to its batch's start),
 * "compute" (the batch: concatenation, engine run, output checks; with its batch size,
 * instance and device) and "encode" (the answer's encoding). Cost: a few hundred bytes of
 * span on the stack and one copy into the exporter's queue per span, at the request's end;
 * nothing when the request is not sampled or nothing exports, and one atomic read when the
 * queue is full (a receiver that is down).
 */
#include "api/api.h"

#include "obs/otlp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

void cs__api_trace_start(cs_api_req *r)
{
    cs_trace_ctx parent;
    const char *tp = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "traceparent");
    r->has_parent = cs_trace_parse(tp, &parent);
    cs_trace_child(r->has_parent ? &parent : NULL, &r->trace);
    if (r->has_parent) {
        memcpy(r->parent_id, parent.span_id, sizeof r->parent_id);
        /* A tracestate belongs to its traceparent: without a valid one it is dropped. */
        const char *ts = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "tracestate");
        if (cs_tracestate_ok(ts)) snprintf(r->trace_state, sizeof r->trace_state, "%s", ts);
    }
    bool sampled =
        cs_otlp_sampled(r->srv->opt.otlp, r->has_parent ? &parent : NULL, r->trace.trace_id);
    r->trace.flags = (uint8_t)((r->trace.flags & ~CS_TRACE_FLAG_SAMPLED) |
                               (sampled ? CS_TRACE_FLAG_SAMPLED : 0));
}

static void client_address(cs_api_req *r, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr) return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
                  (socklen_t)n);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
                  (socklen_t)n);
}

/* A child of the server span over [start, end], with a fresh span id. */
static void child(cs_api_req *r, cs_span *s, const char *name, uint64_t start, uint64_t end)
{
    cs_trace_ctx c;
    cs_trace_child(&r->trace, &c);
    cs_span_init(s, &c, r->trace.span_id, r->trace_state, CS_SPAN_INTERNAL, name, start, end);
    if (r->labelled) {
        cs_span_str(s, "capstan.model.name", r->model);
        cs_span_str(s, "capstan.model.version", r->version);
    }
}

static void emit_children(cs_api_req *r, cs_otlp *e, uint64_t end_ns)
{
    const cs_infer_timing *t = &r->timing;
    uint64_t answered = r->encode_start_ns ? r->encode_start_ns : end_ns;
    cs_span s;
    child(r, &s, "queue", t->queued_ns, t->start_ns ? t->start_ns : answered);
    cs_otlp_emit(e, &s);
    if (t->start_ns) {
        child(r, &s, "compute", t->start_ns, t->end_ns);
        cs_span_int(&s, "capstan.batch_size", t->batch_rows);
        cs_span_int(&s, "capstan.instance", t->instance);
        /* The engine has one backend; a GPU backend will name its device here. */
        cs_span_str(&s, "capstan.device", "cpu");
        cs_span_int(&s, "capstan.engine_duration_ns",
                    (int64_t)(t->infer_end_ns - t->infer_start_ns));
        cs_otlp_emit(e, &s);
    }
    if (r->encode_start_ns) {
        child(r, &s, "encode", r->encode_start_ns, r->encode_end_ns);
        cs_otlp_emit(e, &s);
    }
}

void cs__api_trace_end(cs_api_req *r, uint64_t end_ns)
{
    cs_otlp *e = r->srv->opt.otlp;
    if (!e || !(r->trace.flags & CS_TRACE_FLAG_SAMPLED)) return;
    /* A receiver that is down fills the queue: then not even building the spans costs. */
    if (cs_otlp_full(e, r->timing.queued_ns
                            ? 1 + 1 + (r->timing.start_ns != 0) + (r->encode_start_ns != 0)
                            : 1))
        return;
    const char *route = r->route ? r->route->pattern : NULL;
    char name[160], path[512], addr[INET6_ADDRSTRLEN];
    snprintf(name, sizeof name, "%s%s%s", r->method, route ? " " : "", route ? route : "");
    /* url.path without the query, which may carry what a client would not want logged. */
    snprintf(path, sizeof path, "%.*s", (int)strcspn(r->url, "?"), r->url);
    client_address(r, addr, sizeof addr);
    cs_span s;
    cs_span_init(&s, &r->trace, r->has_parent ? r->parent_id : NULL, r->trace_state, CS_SPAN_SERVER,
                 name, r->start_ns, end_ns);
    cs_span_str(&s, "http.request.method", r->method);
    cs_span_str(&s, "url.path", path);
    cs_span_str(&s, "url.scheme", r->srv->tls ? "https" : "http");
    if (route) cs_span_str(&s, "http.route", route);
    cs_span_int(&s, "http.response.status_code", r->status);
    cs_span_int(&s, "server.port", r->srv->port);
    if (addr[0]) cs_span_str(&s, "client.address", addr);
    if (r->labelled) {
        cs_span_str(&s, "capstan.model.name", r->model);
        cs_span_str(&s, "capstan.model.version", r->version);
    }
    cs_span_str(&s, "capstan.request_id", r->id);
    s.error = r->status >= 500;
    cs_otlp_emit(e, &s);
    if (r->timing.queued_ns) emit_children(r, e, end_ns);
}

/*
 * otlp.h - OpenTelemetry traces: the sampler and a batching OTLP/HTTP exporter (JSON).
 *
 * Configuration follows the OpenTelemetry SDK's environment variables (cs_otlp_options_env):
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as given) or OTEL_EXPORTER_OTLP_ENDPOINT (with
 * `/v1/traces` appended), OTEL_SERVICE_NAME ("capstan"), OTEL_TRACES_SAMPLER
 * (parentbased_always_on by default; always_on, always_off, traceidratio,
 * parentbased_always_off, parentbased_traceidratio) with OTEL_TRACES_SAMPLER_ARG (the ratio,
 * 1.0), OTEL_BSP_SCHEDULE_DELAY (5000 ms), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512),
 * OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_EXPORT_TIMEOUT (30000 ms: one batch's attempts
 * together), OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / OTEL_EXPORTER_OTLP_TIMEOUT (10000 ms: one
 * POST), OTEL_EXPORTER_OTLP_TRACES_HEADERS or else OTEL_EXPORTER_OTLP_HEADERS (extra request
 * headers, `key=value,key2=value2` with percent-encoded values, as the OTLP exporter
 * specification says: e.g. `Authorization=Bearer%20T`), OTEL_TRACES_EXPORTER (otlp, or none)
 * and OTEL_SDK_DISABLED. Without an endpoint nothing is exported.
 *
 * The request path only copies a finished span into a bounded ring (cs_otlp_emit: a mutex
 * held for one memcpy, never a wait); a full ring drops the span and counts it. One
 * background thread POSTs batches to the endpoint with libcurl, retrying 429, 502, 503 and
 * 504 (honouring Retry-After) and network errors within the export timeout, never 400.
 * Metrics: capstan_otlp_spans_exported_total, capstan_otlp_spans_dropped_total (ring full
 * or a batch given up) and capstan_otlp_export_errors_total (failed POSTs).
 */
#ifndef CS_OBS_OTLP_H
#define CS_OBS_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "capstan/status.h"
#include "obs/trace.h"

struct cs_metrics;

typedef struct cs_otlp cs_otlp;

typedef enum cs_otlp_sampler {
    CS_OTLP_PARENT_ALWAYS_ON, /* parentbased_always_on: the default */
    CS_OTLP_PARENT_ALWAYS_OFF,
    CS_OTLP_PARENT_RATIO,
    CS_OTLP_ALWAYS_ON,
    CS_OTLP_ALWAYS_OFF,
    CS_OTLP_RATIO,
} cs_otlp_sampler;

#define CS_OTLP_HEADERS_MAX 4096 /* the extra headers' bytes, decoded, newlines included */

typedef struct cs_otlp_options {
    char endpoint[1024]; /* the full traces URL (http:// or https://); "" = no export */
    char service_name[128];
    cs_otlp_sampler sampler;
    double ratio;                      /* 0..1, for the ratio samplers */
    unsigned schedule_delay_ms;        /* longest a span waits for its batch */
    unsigned max_batch;                /* spans per POST; a full batch goes at once */
    unsigned max_queue;                /* spans waiting; more are dropped */
    unsigned export_timeout_ms;        /* one batch, retries included */
    unsigned request_timeout_ms;       /* one POST */
    char headers[CS_OTLP_HEADERS_MAX]; /* extra headers, "Name: value\n" each, decoded */
} cs_otlp_options;

/* Fills o from the environment above; CS_ERR_INVALID naming the variable and what it
 * allows when one is malformed. */
cs_status cs_otlp_options_env(cs_otlp_options *o, cs_error *err);
/* Sets the endpoint as OTEL_EXPORTER_OTLP_ENDPOINT does (base URL: `/v1/traces` appended),
 * for --otlp-endpoint. CS_ERR_INVALID unless it is an http:// or https:// URL. */
cs_status cs_otlp_options_endpoint(cs_otlp_options *o, const char *base, cs_error *err);

/* Starts the exporter thread; registers its metrics in metrics (borrowed, must outlive the
 * exporter). o->endpoint must be set. */
cs_status cs_otlp_new(const cs_otlp_options *o, struct cs_metrics *metrics, cs_otlp **out,
                      cs_error *err);
/* Exports every span still queued, retries included, within 2 s (what is left then is
 * dropped and counted, so a receiver that is down cannot hold up an exit), stops the thread
 * and frees everything. NULL is a no-op. */
void cs_otlp_free(cs_otlp *e);

/* The sampling decision for a new server span of trace_id: parent is the incoming context
 * (NULL when the request had none). e NULL: parentbased_always_on, exporting nothing. */
bool cs_otlp_sampled(const cs_otlp *e, const cs_trace_ctx *parent, const uint8_t trace_id[16]);

#define CS_SPAN_MAX_ATTRS 16
#define CS_SPAN_TEXT_MAX  1024 /* all of one span's string values together */

typedef enum cs_span_kind {
    CS_SPAN_INTERNAL = 1,
    CS_SPAN_SERVER = 2,
} cs_span_kind;

/* A finished span, built on the caller's stack (no allocation) and copied by cs_otlp_emit.
 * String values are copied into the span's text (cut when it is full); keys are borrowed
 * and must be string literals. */
typedef struct cs_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    bool has_parent, error;
    cs_span_kind kind;
    uint64_t start_unix_ns, end_unix_ns;
    char name[128];
    char trace_state[CS_TRACESTATE_MAX + 1];
    int n_attrs;
    struct {
        const char *key;
        bool is_int;
        int64_t num;  /* is_int */
        uint16_t off; /* into text, otherwise */
    } attrs[CS_SPAN_MAX_ATTRS];
    uint16_t text_len;
    char text[CS_SPAN_TEXT_MAX];
} cs_span;

/* Starts s: ctx's trace id and span id, parent_id (NULL: a root span), the trace state (may
 * be NULL), and [start_ns, end_ns] in cs_now_ns time, converted to Unix time here. */
void cs_span_init(cs_span *s, const cs_trace_ctx *ctx, const uint8_t *parent_id,
                  const char *trace_state, cs_span_kind kind, const char *name, uint64_t start_ns,
                  uint64_t end_ns);
void cs_span_str(cs_span *s, const char *key, const char *value);
void cs_span_int(cs_span *s, const char *key, int64_t value);

/* Queues a copy of s for export, or drops and counts it when the queue is full. O(1); never
 * waits on the network. */
void cs_otlp_emit(cs_otlp *e, const cs_span *s);
/* True, counting n spans as dropped, when the queue is full now (one relaxed atomic read, no
 * lock): a caller about to build n spans can skip them. A queue that frees up meanwhile
 * costs those spans, as if they had come a moment earlier. */
bool cs_otlp_full(cs_otlp *e, unsigned n);

#endif

/*
 * otlp.c - the OpenTelemetry sampler, span building and the OTLP/HTTP JSON exporter; see
 * otlp.h for the configuration and the contract.
 *
 * Spans wait in a ring of max_queue slots preallocated at start (2.2 KiB each, so
 * 4.4 MiB at the default 2048, touched only as it fills). The exporter thread wakes when a
 * batch is full, when the schedule delay has passed since the last export, or to stop. It
 * encodes the oldest spans straight from their slots with the lock released: they still
 * count as queued, so no producer can write over them, and they are freed (head moves)
 * only once encoded. The POST and its retries then run with no lock held and no span
 * slot in use. Cost on the request path: one mutex, one copy of the span (cs_otlp_emit).
 *
 * Encoding follows the OTLP/JSON mapping: trace and span ids as lowercase hex, enums as
 * integers, 64-bit integers (times, int attributes) as decimal strings.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "obs/otlp.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/sbuf.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RETRY_AFTER_CAP_S 30   /* a larger Retry-After still waits only this long */
#define STOP_BUDGET_MS    2000 /* what is still queued at a stop must go out within this */

/* The most JSON one span can take: every string escaped to twice its size (a quote or
 * backslash per byte), each attribute's key (a literal, under 64 bytes) and framing, and
 * the ids, times and punctuation. */
#define SPAN_JSON_MAX                                                                              \
    (2 * (CS_SPAN_TEXT_MAX + sizeof(((cs_span *)0)->name) + sizeof(((cs_span *)0)->trace_state)) + \
     CS_SPAN_MAX_ATTRS * (64 + 64) + 512)

struct cs_otlp {
    cs_otlp_options opt;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a batch is full, or stop */
    cs_span *ring;
    unsigned head, len;
    atomic_bool full; /* len == max_queue, written under lock, read without (cs_otlp_full) */
    bool stop;
    uint64_t stop_deadline_ns; /* set with stop */
    pthread_t thread;
    cs_metric *exported, *dropped, *errors;
};

/* Copies src into dst (cap bytes with the NUL) as printable ASCII: any other byte becomes
 * '?', so every string of a span is valid JSON once quotes and backslashes are escaped,
 * whatever bytes a client put in a path or a header. Returns the bytes written. */
static size_t copy_ascii(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && src[n] && n + 1 < cap; n++)
        dst[n] = (unsigned char)src[n] >= 0x20 && (unsigned char)src[n] < 0x7f ? src[n] : '?';
    dst[n] = '\0';
    return n;
}

/* --- configuration -------------------------------------------------------------------- */

static const struct {
    const char *name;
    cs_otlp_sampler sampler;
} samplers[] = {
    {"parentbased_always_on", CS_OTLP_PARENT_ALWAYS_ON},
    {"parentbased_always_off", CS_OTLP_PARENT_ALWAYS_OFF},
    {"parentbased_traceidratio", CS_OTLP_PARENT_RATIO},
    {"always_on", CS_OTLP_ALWAYS_ON},
    {"always_off", CS_OTLP_ALWAYS_OFF},
    {"traceidratio", CS_OTLP_RATIO},
};

static cs_status env_uint(const char *name, unsigned min, unsigned *out, cs_error *err)
{
    const char *v = getenv(name);
    if (!v || !*v) return CS_OK;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || v[0] == '-' || errno || n < min || n > 1u << 30)
        return cs_error_set(err, CS_ERR_INVALID, "%s: expected an integer %u..%u, got '%.64s'",
                            name, min, 1u << 30, v);
    *out = (unsigned)n;
    return CS_OK;
}

static cs_status set_url(cs_otlp_options *o, const char *name, const char *url, const char *suffix,
                         cs_error *err)
{
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s: expected an http:// or https:// URL, got '%.64s'", name, url);
    size_t n = strlen(url);
    if (suffix && n && url[n - 1] == '/') n--; /* base/ + /v1/traces: one slash */
    int w = snprintf(o->endpoint, sizeof o->endpoint, "%.*s%s", (int)n, url, suffix ? suffix : "");
    if (w < 0 || (size_t)w >= sizeof o->endpoint)
        return cs_error_set(err, CS_ERR_INVALID, "%s: longer than %zu bytes", name,
                            sizeof o->endpoint - 1);
    return CS_OK;
}

cs_status cs_otlp_options_endpoint(cs_otlp_options *o, const char *base, cs_error *err)
{
    return set_url(o, "--otlp-endpoint", base, "/v1/traces", err);
}

static bool is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hex_digit(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes name's `key=value,key2=value2` list (W3C baggage syntax: optional blanks around
 * each part, values percent-encoded; a raw blank inside a value is kept, as Go's SDK does)
 * into o->headers as "key: value" lines. Refused, naming the member's place or its key but
 * never echoing a value (they are credentials): a key that is not an HTTP token,
 * a member without '=', a bad %XX, a value that decodes to a control character (which would
 * split the request's headers), or more than CS_OTLP_HEADERS_MAX bytes. */
static cs_status parse_headers(cs_otlp_options *o, const char *name, const char *v, cs_error *err)
{
    size_t n = 0;
    int member = 1;
    o->headers[0] = '\0';
    for (; *v; member++) {
        size_t len = strcspn(v, ",");
        const char *end = v + len, *eq = memchr(v, '=', len);
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        if (v == end) { /* an empty member, as a trailing comma leaves */
            v = *end ? end + 1 : end;
            continue;
        }
        const char *k = v;
        while (v < end && is_tchar((unsigned char)*v)) v++;
        int klen = (int)(v - k);
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        if (!eq || klen == 0 || v != eq)
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s: member %d: expected key=value pairs separated by commas, "
                                "the keys HTTP header names",
                                name, member);
        if (n + (size_t)klen + 2 >= sizeof o->headers) goto too_long;
        n += (size_t)snprintf(o->headers + n, sizeof o->headers - n, "%.*s: ", klen, k);
        const char *p = eq + 1, *vend = end;
        while (p < vend && (*p == ' ' || *p == '\t')) p++;
        while (vend > p && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
        for (; p < vend; p++) {
            int c = (unsigned char)*p;
            if (c == '%') {
                int hi = p + 2 < vend ? hex_digit(p[1]) : -1, lo = hi >= 0 ? hex_digit(p[2]) : -1;
                if (lo < 0)
                    return cs_error_set(err, CS_ERR_INVALID,
                                        "%s: header '%.*s': a '%%' must start a %%XX escape", name,
                                        klen, k);
                c = hi << 4 | lo;
                p += 2;
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return cs_error_set(err, CS_ERR_INVALID,
                                    "%s: header '%.*s': control characters are not allowed in "
                                    "a value",
                                    name, klen, k);
            if (n + 2 >= sizeof o->headers) goto too_long;
            o->headers[n++] = (char)c;
        }
        o->headers[n++] = '\n';
        o->headers[n] = '\0';
        v = *end ? end + 1 : end;
    }
    return CS_OK;
too_long:
    o->headers[0] = '\0';
    return cs_error_set(err, CS_ERR_INVALID, "%s: longer than %d bytes decoded", name,
                        CS_OTLP_HEADERS_MAX - 1);
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && strcasecmp(v, "true") == 0;
}

cs_status cs_otlp_options_env(cs_otlp_options *o, cs_error *err)
{
    *o = (cs_otlp_options){
        .service_name = "capstan",
        .sampler = CS_OTLP_PARENT_ALWAYS_ON,
        .ratio = 1.0,
        .schedule_delay_ms = 5000,
        .max_batch = 512,
        .max_queue = 2048,
        .export_timeout_ms = 30000,
        .request_timeout_ms = 10000,
    };
    const char *v;
    cs_status rc = CS_OK;
    if ((v = getenv("OTEL_SERVICE_NAME")) && *v)
        copy_ascii(o->service_name, sizeof o->service_name, v);
    if ((v = getenv("OTEL_TRACES_SAMPLER")) && *v) {
        size_t i = 0;
        while (i < sizeof samplers / sizeof samplers[0] && strcmp(v, samplers[i].name)) i++;
        if (i == sizeof samplers / sizeof samplers[0])
            return cs_error_set(err, CS_ERR_INVALID,
                                "OTEL_TRACES_SAMPLER: expected always_on, always_off, "
                                "traceidratio, parentbased_always_on, parentbased_always_off or "
                                "parentbased_traceidratio, got '%.64s'",
                                v);
        o->sampler = samplers[i].sampler;
    }
    if ((v = getenv("OTEL_TRACES_SAMPLER_ARG")) && *v &&
        (o->sampler == CS_OTLP_RATIO || o->sampler == CS_OTLP_PARENT_RATIO)) {
        char *end;
        double r = strtod(v, &end);
        if (*end || !(r >= 0 && r <= 1))
            return cs_error_set(err, CS_ERR_INVALID,
                                "OTEL_TRACES_SAMPLER_ARG: expected a ratio 0..1, got '%.64s'", v);
        o->ratio = r;
    }
    if ((rc = env_uint("OTEL_BSP_SCHEDULE_DELAY", 1, &o->schedule_delay_ms, err)) ||
        (rc = env_uint("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, &o->max_batch, err)) ||
        (rc = env_uint("OTEL_BSP_MAX_QUEUE_SIZE", 1, &o->max_queue, err)) ||
        (rc = env_uint("OTEL_BSP_EXPORT_TIMEOUT", 1, &o->export_timeout_ms, err)) ||
        (rc = env_uint("OTEL_EXPORTER_OTLP_TIMEOUT", 1, &o->request_timeout_ms, err)) ||
        (rc = env_uint("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1, &o->request_timeout_ms, err)))
        return rc;
    if (o->max_batch > o->max_queue) o->max_batch = o->max_queue; /* as the SDKs do */
    v = getenv("OTEL_TRACES_EXPORTER");
    if (v && *v && strcmp(v, "otlp") && strcmp(v, "none"))
        return cs_error_set(err, CS_ERR_INVALID,
                            "OTEL_TRACES_EXPORTER: expected otlp or none, got '%.64s'", v);
    if (env_true("OTEL_SDK_DISABLED") || (v && !strcmp(v, "none"))) return CS_OK;
    const char *hname = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    const char *h = getenv(hname);
    if (!h || !*h) h = getenv(hname = "OTEL_EXPORTER_OTLP_HEADERS");
    if (h && *h && (rc = parse_headers(o, hname, h, err)) != CS_OK) return rc;
    if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && *v)
        return set_url(o, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v, NULL, err);
    if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v)
        return set_url(o, "OTEL_EXPORTER_OTLP_ENDPOINT", v, "/v1/traces", err);
    return CS_OK;
}

/* --- sampling --------------------------------------------------------------------------- */

/* TraceIdRatioBased: the trace id's last 7 bytes (its random part in W3C level 2) as a
 * number below ratio x 2^56, so every service with the same ratio agrees. */
static bool ratio_sampled(double ratio, const uint8_t id[16])
{
    uint64_t x = 0;
    for (int i = 9; i < 16; i++) x = x << 8 | id[i];
    return (double)x < ratio * 72057594037927936.0; /* 2^56 */
}

bool cs_otlp_sampled(const cs_otlp *e, const cs_trace_ctx *parent, const uint8_t trace_id[16])
{
    cs_otlp_sampler s = e ? e->opt.sampler : CS_OTLP_PARENT_ALWAYS_ON;
    bool parent_based = s == CS_OTLP_PARENT_ALWAYS_ON || s == CS_OTLP_PARENT_ALWAYS_OFF ||
                        s == CS_OTLP_PARENT_RATIO;
    if (parent && parent_based) return parent->flags & CS_TRACE_FLAG_SAMPLED;
    switch (s) {
    case CS_OTLP_PARENT_ALWAYS_OFF:
    case CS_OTLP_ALWAYS_OFF: return false;
    case CS_OTLP_PARENT_RATIO:
    case CS_OTLP_RATIO: return ratio_sampled(e->opt.ratio, trace_id);
    default: return true;
    }
}

/* --- spans ------------------------------------------------------------------------------ */

void cs_span_init(cs_span *s, const cs_trace_ctx *ctx, const uint8_t *parent_id,
                  const char *trace_state, cs_span_kind kind, const char *name, uint64_t start_ns,
                  uint64_t end_ns)
{
    /* The monotonic clock's offset from Unix time, read now: spans are made at most a
     * request's length after their times, far shorter than clock adjustments act on. */
    uint64_t offset = cs_wall_ns() - cs_now_ns();
    memcpy(s->trace_id, ctx->trace_id, sizeof s->trace_id);
    memcpy(s->span_id, ctx->span_id, sizeof s->span_id);
    s->has_parent = parent_id != NULL;
    if (parent_id) memcpy(s->parent_id, parent_id, sizeof s->parent_id);
    s->error = false;
    s->kind = kind;
    s->start_unix_ns = start_ns + offset;
    s->end_unix_ns = (end_ns < start_ns ? start_ns : end_ns) + offset;
    copy_ascii(s->name, sizeof s->name, name);
    copy_ascii(s->trace_state, sizeof s->trace_state, trace_state);
    s->n_attrs = 0;
    s->text_len = 0;
}

void cs_span_str(cs_span *s, const char *key, const char *value)
{
    size_t room = sizeof s->text - s->text_len;
    if (s->n_attrs == CS_SPAN_MAX_ATTRS || room == 0) return;
    size_t n = copy_ascii(s->text + s->text_len, room, value);
    s->attrs[s->n_attrs].key = key;
    s->attrs[s->n_attrs].is_int = false;
    s->attrs[s->n_attrs++].off = s->text_len;
    s->text_len += (uint16_t)(n + 1);
}

void cs_span_int(cs_span *s, const char *key, int64_t value)
{
    if (s->n_attrs == CS_SPAN_MAX_ATTRS) return;
    s->attrs[s->n_attrs].key = key;
    s->attrs[s->n_attrs].is_int = true;
    s->attrs[s->n_attrs++].num = value;
}

bool cs_otlp_full(cs_otlp *e, unsigned n)
{
    if (!atomic_load_explicit(&e->full, memory_order_relaxed)) return false;
    if (e->dropped) cs_metric_add(e->dropped, n);
    return true;
}

void cs_otlp_emit(cs_otlp *e, const cs_span *s)
{
    pthread_mutex_lock(&e->lock);
    bool room = e->len < e->opt.max_queue;
    if (room) {
        cs_span *slot = &e->ring[(e->head + e->len++) % e->opt.max_queue];
        memcpy(slot, s, offsetof(cs_span, text) + s->text_len);
        /* Only as the queue reaches a batch: the exporter waits for nothing else from here,
         * and one signal per span would wake it for every request while it backs off. */
        if (e->len == e->opt.max_batch) pthread_cond_signal(&e->wake);
        if (e->len == e->opt.max_queue) atomic_store_explicit(&e->full, true, memory_order_relaxed);
    }
    pthread_mutex_unlock(&e->lock);
    if (!room && e->dropped) cs_metric_add(e->dropped, 1);
}

/* --- encoding --------------------------------------------------------------------------- */

/* Appends s (printable ASCII: see copy_ascii) as a JSON string. */
static void put_str(cs_sbuf *b, const char *s)
{
    cs_sbuf_append(b, "\"", 1);
    for (const char *run = s;; s++) {
        if (*s && *s != '"' && *s != '\\') continue;
        cs_sbuf_append(b, run, (size_t)(s - run));
        if (!*s) break;
        cs_sbuf_append(b, "\\", 1);
        run = s; /* the quote or backslash itself goes out with the next run */
    }
    cs_sbuf_append(b, "\"", 1);
}

static void put_str_attr(cs_sbuf *b, const char *key, const char *v)
{
    cs_sbuf_puts(b, "{\"key\":");
    put_str(b, key);
    cs_sbuf_puts(b, ",\"value\":{\"stringValue\":");
    put_str(b, v);
    cs_sbuf_puts(b, "}}");
}

static void put_span(cs_sbuf *b, const cs_span *s)
{
    char trace[33], span[17], parent[17];
    cs_trace_hex(s->trace_id, 16, trace);
    cs_trace_hex(s->span_id, 8, span);
    cs_sbuf_printf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", trace, span);
    if (s->has_parent) {
        cs_trace_hex(s->parent_id, 8, parent);
        cs_sbuf_printf(b, ",\"parentSpanId\":\"%s\"", parent);
    }
    if (s->trace_state[0]) {
        cs_sbuf_puts(b, ",\"traceState\":");
        put_str(b, s->trace_state);
    }
    cs_sbuf_puts(b, ",\"name\":");
    put_str(b, s->name);
    cs_sbuf_printf(b,
                   ",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64
                   "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
                   (int)s->kind, s->start_unix_ns, s->end_unix_ns);
    for (int i = 0; i < s->n_attrs; i++) {
        if (i) cs_sbuf_append(b, ",", 1);
        if (!s->attrs[i].is_int)
            put_str_attr(b, s->attrs[i].key, s->text + s->attrs[i].off);
        else
            cs_sbuf_printf(b, "{\"key\":\"%s\",\"value\":{\"intValue\":\"%" PRId64 "\"}}",
                           s->attrs[i].key, s->attrs[i].num);
    }
    cs_sbuf_append(b, "]", 1);
    /* Unset unless an error: HTTP servers leave 4xx unset (semantic conventions). */
    if (s->error) cs_sbuf_puts(b, ",\"status\":{\"code\":2}");
    cs_sbuf_append(b, "}", 1);
}

/* The ExportTraceServiceRequest for n spans from the ring's head, into b (cleared first).
 * false when out of memory: an append that failed leaves a hole, so the body is not sent. */
static bool encode(cs_otlp *e, unsigned n, cs_sbuf *b)
{
    cs_sbuf_clear(b);
    if (cs_sbuf_reserve(b, 1024 + (size_t)n * SPAN_JSON_MAX) != CS_OK) return false;
    size_t room = b->cap;
    cs_sbuf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    put_str_attr(b, "service.name", e->opt.service_name);
    cs_sbuf_append(b, ",", 1);
    put_str_attr(b, "telemetry.sdk.name", "capstan");
    cs_sbuf_puts(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"capstan\",\"version\":\"" CS_VERSION
                    "\"},\"spans\":[");
    for (unsigned i = 0; i < n; i++) {
        if (i) cs_sbuf_append(b, ",", 1);
        put_span(b, &e->ring[(e->head + i) % e->opt.max_queue]);
    }
    cs_status rc = cs_sbuf_puts(b, "]}]}]}");
    /* The reservation holds any n spans, so no append can have failed; a grown buffer would
     * mean the bound is wrong. */
    return rc == CS_OK && b->cap == room;
}

/* --- sending ---------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

/* Retry-After in seconds (the delta form; an HTTP date waits the default), capped. */
static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    long *retry_s = user;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char *end;
        long v = strtol(p + 12, &end, 10);
        if (end != p + 12 && v >= 0) *retry_s = v < RETRY_AFTER_CAP_S ? v : RETRY_AFTER_CAP_S;
    }
    return len;
}

/* One POST within timeout_ms: 1 delivered, 0 retryable (429/502/503/504, a network
 * error), -1 refused (400 and every other answer). */
static int post(cs_otlp *e, CURL *curl, const char *body, size_t len, uint64_t timeout_ms,
                long *retry_s, long *code)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    char line[CS_OTLP_HEADERS_MAX];
    for (const char *p = e->opt.headers; h2 && *p;) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        h2 = curl_slist_append(h2, line);
        p += n + (p[n] == '\n');
    }
    if (!h2) {
        curl_slist_free_all(h);
        return 0;
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, e->opt.endpoint);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h2);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 1));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, retry_s);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "capstan/" CS_VERSION);
    *retry_s = -1;
    *code = 0;
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
    curl_slist_free_all(h2);
    if (rc == CURLE_OK && *code >= 200 && *code < 300) return 1;
    if (rc != CURLE_OK || *code == 429 || *code == 502 || *code == 503 || *code == 504) return 0;
    return -1;
}

static struct timespec abs_deadline(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* The latest moment a batch that began at start may still be sent: the export timeout, or
 * the stop deadline once stopping. Lock held. */
static uint64_t batch_deadline(const cs_otlp *e, uint64_t start)
{
    uint64_t d = start + (uint64_t)e->opt.export_timeout_ms * 1000000u;
    return e->stop && e->stop_deadline_ns < d ? e->stop_deadline_ns : d;
}

/* Sends one encoded batch of n spans, retrying until its deadline: after Retry-After when
 * the receiver gave one, else after 1 s doubling up to 30 s. Lock not held. */
static void send_batch(cs_otlp *e, CURL *curl, const char *body, size_t len, unsigned n)
{
    uint64_t start = cs_now_ns(), backoff_ms = 1000;
    pthread_mutex_lock(&e->lock);
    uint64_t deadline = batch_deadline(e, start);
    pthread_mutex_unlock(&e->lock);
    long retry_s, code = 0;
    for (uint64_t now = start; now < deadline; now = cs_now_ns()) {
        uint64_t left_ms = (deadline - now) / 1000000u;
        int ok = post(e, curl, body, len,
                      left_ms < e->opt.request_timeout_ms ? left_ms : e->opt.request_timeout_ms,
                      &retry_s, &code);
        if (ok == 1) {
            if (e->exported) cs_metric_add(e->exported, n);
            return;
        }
        if (e->errors) cs_metric_add(e->errors, 1);
        if (ok < 0) break;
        uint64_t until =
            cs_now_ns() + (retry_s >= 0 ? (uint64_t)retry_s * 1000 : backoff_ms) * 1000000u;
        backoff_ms = backoff_ms * 2 < 30000 ? backoff_ms * 2 : 30000;
        /* Waits until then, or until a stop brings the deadline forward. */
        pthread_mutex_lock(&e->lock);
        while ((deadline = batch_deadline(e, start)) > until && cs_now_ns() < until) {
            struct timespec ts = abs_deadline(until);
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        pthread_mutex_unlock(&e->lock);
        if (until >= deadline) break;
    }
    char c[16], spans[16];
    snprintf(c, sizeof c, CS_LOG_NUM "%ld", code);
    snprintf(spans, sizeof spans, CS_LOG_NUM "%u", n);
    cs_log(CS_LOG_WARN, "OTLP export failed; spans dropped", "endpoint", e->opt.endpoint, "status",
           c, "spans", spans, NULL);
    if (e->dropped) cs_metric_add(e->dropped, n);
}

static void *run(void *arg)
{
    cs_otlp *e = arg;
    pthread_setname_np(pthread_self(), "capstan-otlp"); /* for top -H and /proc */
    CURL *curl = curl_easy_init();
    cs_sbuf body; /* reused: after the first batch, encoding allocates nothing */
    cs_sbuf_init(&body, 0);
    pthread_mutex_lock(&e->lock);
    uint64_t next = cs_now_ns() + (uint64_t)e->opt.schedule_delay_ms * 1000000u;
    for (;;) {
        while (!e->stop && e->len < e->opt.max_batch && cs_now_ns() < next) {
            struct timespec ts = abs_deadline(next);
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        if (e->len == 0 && e->stop) break;
        unsigned n = e->len < e->opt.max_batch ? e->len : e->opt.max_batch;
        next = cs_now_ns() + (uint64_t)e->opt.schedule_delay_ms * 1000000u;
        if (n == 0) continue;
        pthread_mutex_unlock(&e->lock);
        bool ok = encode(e, n, &body); /* the slots stay queued, so nobody writes them */
        pthread_mutex_lock(&e->lock);
        e->head = (e->head + n) % e->opt.max_queue;
        e->len -= n;
        atomic_store_explicit(&e->full, false, memory_order_relaxed);
        pthread_mutex_unlock(&e->lock);
        if (ok && curl)
            send_batch(e, curl, body.data, body.len, n);
        else if (e->dropped)
            cs_metric_add(e->dropped, n);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    cs_sbuf_free(&body);
    if (curl) curl_easy_cleanup(curl);
    return NULL;
}

/* --- lifetime --------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

/* Process-wide and never torn down: other modules may use libcurl too. */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static cs_status register_metrics(cs_otlp *e, cs_metrics *m, cs_error *err)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"capstan_otlp_spans_exported_total", "Spans the OTLP receiver accepted",
         offsetof(cs_otlp, exported)},
        {"capstan_otlp_spans_dropped_total",
         "Spans dropped: the export queue was full, or their batch could not be delivered",
         offsetof(cs_otlp, dropped)},
        {"capstan_otlp_export_errors_total", "OTLP export POSTs that failed (each retry counts)",
         offsetof(cs_otlp, errors)},
    };
    for (size_t i = 0; m && i < sizeof counters / sizeof counters[0]; i++) {
        cs_metric_family *f = cs_metrics_family(m, CS_METRIC_COUNTER, counters[i].name,
                                                counters[i].help, NULL, NULL, 0);
        cs_metric *c = f ? cs_metric_get(f, NULL) : NULL;
        if (!c) return cs_error_set(err, CS_ERR_NOMEM, "cannot register %s", counters[i].name);
        *(cs_metric **)((char *)e + counters[i].off) = c;
    }
    return CS_OK;
}

cs_status cs_otlp_new(const cs_otlp_options *o, cs_metrics *metrics, cs_otlp **out, cs_error *err)
{
    if (!o->endpoint[0]) return cs_error_set(err, CS_ERR_INVALID, "OTLP: no endpoint given");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return cs_error_set(err, CS_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    cs_status rc = CS_ERR_NOMEM;
    cs_otlp *e = cs_calloc(1, sizeof *e);
    if (!e) return cs_error_set(err, rc, "out of memory");
    e->opt = *o;
    e->ring = cs_calloc(o->max_queue, sizeof *e->ring);
    if (!e->ring) {
        cs_error_set(err, rc, "out of memory for an OTLP queue of %u spans", o->max_queue);
        goto out;
    }
    if ((rc = register_metrics(e, metrics, err)) != CS_OK) goto out;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* cs_now_ns's clock */
    pthread_cond_init(&e->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&e->thread, NULL, run, e) != 0) {
        pthread_cond_destroy(&e->wake);
        pthread_mutex_destroy(&e->lock);
        rc = cs_error_set(err, CS_ERR_INTERNAL, "cannot start the OTLP exporter thread");
        goto out;
    }
    *out = e;
    return CS_OK;
out:
    cs_free(e->ring);
    cs_free(e);
    return rc;
}

void cs_otlp_free(cs_otlp *e)
{
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    e->stop_deadline_ns = cs_now_ns() + (uint64_t)STOP_BUDGET_MS * 1000000u;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    cs_free(e->ring);
    cs_free(e);
}

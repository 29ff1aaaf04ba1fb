/*
 * trace.h - W3C trace context (https://www.w3.org/TR/trace-context/): parsing and writing
 * `traceparent`, checking `tracestate`, and fresh trace and span ids, for request logs and
 * spans (otlp.h).
 *
 * A traceparent is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase.
 * Version ff, other lengths, uppercase hex and all-zero ids are invalid; an invalid or
 * missing header starts a new trace. Nothing here allocates or locks.
 */
#ifndef CS_OBS_TRACE_H
#define CS_OBS_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define CS_TRACE_FLAG_SAMPLED 0x01
#define CS_TRACEPARENT_LEN    55  /* without the NUL */
#define CS_TRACESTATE_MAX     512 /* W3C: a tracestate of more may be dropped whole */

typedef struct cs_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;
} cs_trace_ctx;

/* Parses a traceparent header (NULL: absent) into out; false, out untouched, when it is
 * missing or invalid. */
bool cs_trace_parse(const char *header, cs_trace_ctx *out);
/* Whether a tracestate header may be passed on unchanged: 1..CS_TRACESTATE_MAX bytes of
 * printable ASCII (which also keeps it safe to log and echo). Its list members are not
 * parsed: capstan adds none and passes it on as the client sent it. */
bool cs_tracestate_ok(const char *header);
/* A new span: in parent's trace with its flags when parent is non-NULL, else in a new
 * sampled trace; its own span id is fresh. Ids come from a per-thread generator seeded
 * from the kernel once (no syscall per call) and are never all zero. */
void cs_trace_child(const cs_trace_ctx *parent, cs_trace_ctx *out);
/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void cs_trace_hex(const uint8_t *id, int n, char *out);
/* ctx as a traceparent header into out (CS_TRACEPARENT_LEN + 1 bytes). */
void cs_trace_format(const cs_trace_ctx *ctx, char *out);

#endif

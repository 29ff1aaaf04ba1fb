/*
 * trace.c - W3C traceparent parsing and formatting and id generation; see trace.h.
 *
 * Ids come from a per-thread splitmix64 seeded from getrandom(2) on a thread's first use
 * (falling back to the clock and the thread's address), so making one costs a few
 * multiplications. They need to be unique, not secret.
 */
#include "obs/trace.h"

#include "base/clock.h"

#include <string.h>
#include <sys/random.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* uppercase is invalid in a traceparent */
}

/* n bytes from 2n lowercase hex digits; false on any other character. */
static bool unhex(const char *s, int n, uint8_t *out)
{
    for (int i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

bool cs_trace_parse(const char *h, cs_trace_ctx *out)
{
    /* Version 00 defines exactly 55 characters; other versions are not parsed. */
    if (!h || strlen(h) != CS_TRACEPARENT_LEN || h[2] != '-' || h[35] != '-' || h[52] != '-')
        return false;
    uint8_t version, flags;
    cs_trace_ctx c;
    if (!unhex(h, 1, &version) || version != 0 || !unhex(h + 3, 16, c.trace_id) ||
        !unhex(h + 36, 8, c.span_id) || !unhex(h + 53, 1, &flags))
        return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8)) return false;
    c.flags = flags;
    *out = c;
    return true;
}

bool cs_tracestate_ok(const char *h)
{
    size_t n = 0;
    for (; h && h[n] && n <= CS_TRACESTATE_MAX; n++)
        if ((unsigned char)h[n] < 0x20 || (unsigned char)h[n] > 0x7e) return false;
    return n > 0 && n <= CS_TRACESTATE_MAX;
}

static _Thread_local uint64_t rng_state;
static _Thread_local bool rng_seeded;

static uint64_t next_random(void)
{
    if (!rng_seeded) {
        if (getrandom(&rng_state, sizeof rng_state, GRND_NONBLOCK) != sizeof rng_state)
            rng_state = cs_now_ns() ^ (uint64_t)(uintptr_t)&rng_state;
        rng_seeded = true;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fresh_id(uint8_t *out, int n)
{
    do {
        for (int i = 0; i < n; i += 8) {
            uint64_t v = next_random();
            memcpy(out + i, &v, (size_t)(n - i < 8 ? n - i : 8));
        }
    } while (all_zero(out, n));
}

void cs_trace_child(const cs_trace_ctx *parent, cs_trace_ctx *out)
{
    if (parent) {
        memcpy(out->trace_id, parent->trace_id, sizeof out->trace_id);
        out->flags = parent->flags;
    } else {
        fresh_id(out->trace_id, sizeof out->trace_id);
        out->flags = CS_TRACE_FLAG_SAMPLED;
    }
    fresh_id(out->span_id, sizeof out->span_id);
}

void cs_trace_hex(const uint8_t *id, int n, char *out)
{
    for (int i = 0; i < n; i++) {
        out[2 * i] = "0123456789abcdef"[id[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[id[i] & 15];
    }
    out[2 * n] = '\0';
}

void cs_trace_format(const cs_trace_ctx *c, char *out)
{
    memcpy(out, "00-", 3);
    cs_trace_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    cs_trace_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    cs_trace_hex(&c->flags, 1, out + 53);
}

/*
 * trace_fuzz.c - libFuzzer target for the W3C trace-context headers a client sends.
 *
 * The input is `traceparent`, a newline, then `tracestate`. The target parses the first
 * and checks the second as the server does (src/api/spans.c), and checks what they promise:
 * a parsed context formats back to the very header it came from, and a tracestate that
 * passes is printable ASCII within the W3C length. Seeds: fuzz/seeds-trace.
 */
#include "obs/trace.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *state = strchr(s, '\n');
    if (state) *state++ = '\0';
    cs_trace_ctx c;
    if (cs_trace_parse(s, &c)) {
        char out[CS_TRACEPARENT_LEN + 1];
        cs_trace_format(&c, out);
        if (strcmp(out, s) != 0) abort();
    }
    if (state && cs_tracestate_ok(state)) {
        size_t n = strlen(state);
        if (n == 0 || n > CS_TRACESTATE_MAX) abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)state[i] < 0x20 || (unsigned char)state[i] > 0x7e) abort();
    }
    free(s);
    return 0;
}

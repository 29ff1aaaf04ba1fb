/*
 * v2_fuzz.c - libFuzzer target for the KServe v2 inference request decoder.
 *
 * The input is an HTTP body: its first two bytes give the length of the JSON header
 * (Inference-Header-Content-Length), the rest is the body. The target decodes the header
 * as the server does (depth check, then cs_v2_decode_request) and binds every input, JSON
 * or binary, under the server's default limits. Seeds: fuzz/seeds-v2.
 */
#include "api/api.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t header_len = (size_t)data[0] | (size_t)data[1] << 8;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    if (header_len == 0 || header_len > len) header_len = len;
    cs_server_options o;
    cs_server_options_defaults(&o);
    char *json = malloc(header_len + 1);
    if (!json) return 0;
    memcpy(json, body, header_len);
    json[header_len] = '\0';
    cs_arena a;
    cs_arena_init(&a, 4096);
    a.limit = (size_t)1 << 28;
    cs_v2_request req;
    cs_error err;
    if (cs_api_json_depth(json, header_len, o.limits.max_json_depth) >= 0 &&
        cs_v2_decode_request(json, header_len, &o.limits, &a, &req, &err) == CS_OK)
        (void)cs_v2_bind_inputs(&req, body, len, header_len, &a, &err);
    cs_arena_free(&a);
    free(json);
    return 0;
}

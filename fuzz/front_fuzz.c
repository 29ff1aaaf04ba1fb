/*
 * front_fuzz.c - libFuzzer target for the front door's check of a first request's head
 * (cs__api_head_judge in src/api/front.c): request line, header lines, Content-Length,
 * Transfer-Encoding and the first chunk-size line, peeked from a socket before
 * libmicrohttpd reads them.
 *
 * The input is the bytes received so far; its first byte's low bit says whether the peek
 * buffer is full. Besides memory errors the target checks the verdict's contract: a refusal
 * is one of the statuses the front answers with, and its message goes into a JSON string
 * unescaped, so it must hold no quote, backslash or control character. Seeds: fuzz/seeds-front.
 */
#include "api/api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool full = data[0] & 1;
    size_t n = size - 1;
    char *b = malloc(n + 1);
    if (!b) return 0;
    memcpy(b, data + 1, n);
    cs__head_refusal why;
    if (cs__api_head_judge(b, n, full, &why) == CS__HEAD_REFUSE) {
        if (why.status != 400 && why.status != 414 && why.status != 431 && why.status != 505)
            abort();
        for (const char *m = why.msg; *m; m++)
            if (*m == '"' || *m == '\\' || (unsigned char)*m < 0x20) abort();
    }
    free(b);
    return 0;
}

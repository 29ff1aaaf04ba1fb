/*
 * content_encoding.c - request bodies sent with `Content-Encoding: gzip` or `deflate`, as
 * Triton's clients send them (tritonclient's request_compression_algorithm).
 *
 * framing.c reads the header and refuses every other coding with 415; once the whole body is
 * in, it is inflated here, before any handler sees it, so every route (inference with its
 * Inference-Header-Content-Length, which counts the decompressed JSON, the repository, the
 * management API) reads plain bytes. The decompressed size is bounded by limits.max_body as
 * the compressed one was: a small body that inflates past it (a zip bomb) is 413 as soon as
 * the output passes the limit, having cost at most that much memory. Cost: one pass of zlib
 * over the body and one copy of its plain form. "deflate" is the zlib format (RFC 9110);
 * a raw DEFLATE stream is accepted too, as browsers and Triton's server do.
 */
#include "api/api.h"

#include <zlib.h>

#include <string.h>

/* Inflates in[0, n) into out with zlib's window bits wbits. Z_OK when the stream ended at the
 * input's end; Z_BUF_ERROR past out's limit; Z_DATA_ERROR for corrupt, truncated or trailing
 * data; Z_MEM_ERROR. */
static int inflate_into(const unsigned char *in, size_t n, int wbits, cs_sbuf *out)
{
    z_stream z = {0};
    if (inflateInit2(&z, wbits) != Z_OK) return Z_MEM_ERROR;
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n; /* bodies are bounded far below 4 GiB (limits.max_body) */
    unsigned char chunk[64 << 10];
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof chunk - z.avail_out;
        cs_status arc = got ? cs_sbuf_append(out, (const char *)chunk, got) : CS_OK;
        if (arc != CS_OK) {
            rc = arc == CS_ERR_LIMIT ? Z_BUF_ERROR : Z_MEM_ERROR;
            break;
        }
        /* No progress with input left or none given: the stream is truncated. */
        if (rc == Z_BUF_ERROR) rc = Z_DATA_ERROR;
    } while (rc == Z_OK);
    if (rc == Z_STREAM_END) rc = z.avail_in ? Z_DATA_ERROR : Z_OK;
    if (rc == Z_NEED_DICT) rc = Z_DATA_ERROR;
    inflateEnd(&z);
    return rc;
}

bool cs__api_decode_body_or_4xx(cs_api_req *r)
{
    if (r->encoding == CS_API_ENC_IDENTITY) return true;
    const char *name = r->encoding == CS_API_ENC_GZIP ? "gzip" : "deflate";
    size_t max = r->srv->opt.limits.max_body;
    cs_sbuf out;
    cs_sbuf_init(&out, max);
    const unsigned char *in = (const unsigned char *)r->body.data;
    int rc = inflate_into(in, r->body.len,
                          r->encoding == CS_API_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS, &out);
    if (rc == Z_DATA_ERROR && r->encoding == CS_API_ENC_DEFLATE) {
        cs_sbuf_clear(&out);
        rc = inflate_into(in, r->body.len, -MAX_WBITS, &out); /* a raw DEFLATE stream */
    }
    if (rc == Z_OK) {
        cs_sbuf_free(&r->body);
        r->body = out;
        r->encoding = CS_API_ENC_IDENTITY;
        return true;
    }
    cs_sbuf_free(&out);
    if (rc == Z_BUF_ERROR)
        cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                     "request body (Content-Encoding: %s) decompresses to more than the %zu-byte "
                     "limit",
                     name, max);
    else if (rc == Z_DATA_ERROR)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "request body is not valid %s data (Content-Encoding: %s): corrupt, "
                     "truncated or followed by other bytes",
                     name, name);
    else
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory decompressing the body");
    return false;
}

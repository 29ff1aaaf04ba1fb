/*
 * framing.c - refuses requests whose headers could be read two ways (request smuggling)
 * before any route or body is looked at.
 *
 * libmicrohttpd 0.9.75 takes the first of two Content-Length headers, frames a body by
 * Content-Length when Transfer-Encoding is also given, accepts HTTP/1.1 without Host (or with two)
 * and header values holding control bytes (a NUL it cuts the value at, unseen here). A proxy in
 * front may read such a request differently, so each is refused here with 400 (501 for a transfer
 * coding other than chunked) and `Connection: close`: whatever bytes follow are never read as a
 * request. Called once per request, at its headers; one pass over them (O(header bytes)), no
 * allocation. The same step refuses what the server cannot honour before a body is read: a
 * Content-Encoding other than gzip or deflate, or more than one (415, with Accept-Encoding;
 * content_encoding.c inflates those two), an Expect other than 100-continue (417),
 * and %00 in the path (400): the unescaper below decodes every %HH but that one, so a NUL
 * never cuts a name short ("dig%00its" is not "dig").
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct framing {
    int content_length, transfer_encoding, host;
    bool chunked_only; /* every Transfer-Encoding value is exactly "chunked" */
    int encodings;     /* Content-Encoding headers other than identity */
    int encoding;      /* CS_API_ENC_*; -1 for one we do not decode */
    bool expect_other; /* an Expect other than 100-continue, the only one HTTP defines */
    char bad_header[64], bad_name[64];
} framing;

static enum MHD_Result scan(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                            const char *value, size_t value_size)
{
    (void)kind;
    framing *f = cls;
    /* A name is an RFC 9110 token: "Content-Length : 0" reaches us as the name
     * "Content-Length ", which a proxy may read as Content-Length. */
    if (!f->bad_name[0] && key_size != strspn(key, CS__API_TCHAR))
        snprintf(f->bad_name, sizeof f->bad_name, "%.*s", (int)(key_size < 48 ? key_size : 48),
                 key);
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) f->content_length++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) f->host++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_ENCODING) &&
        (!value || strcasecmp(value, "identity"))) {
        f->encodings++;
        f->encoding = !value                                                       ? -1
                      : !strcasecmp(value, "gzip") || !strcasecmp(value, "x-gzip") ? CS_API_ENC_GZIP
                      : !strcasecmp(value, "deflate") ? CS_API_ENC_DEFLATE
                                                      : -1;
    }
    if (!strcasecmp(key, MHD_HTTP_HEADER_EXPECT))
        f->expect_other |= !value || strcasecmp(value, "100-continue");
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->transfer_encoding++;
        if (!value || strcasecmp(value, "chunked")) f->chunked_only = false;
    }
    for (size_t i = 0; value && i < value_size && !f->bad_header[0]; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            snprintf(f->bad_header, sizeof f->bad_header, "%.*s",
                     (int)(key_size < 48 ? key_size : 48), key);
    }
    return MHD_YES;
}

/* Hex digit value, or -1. */
static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

size_t cs__api_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi = p[0] == '%' ? hex(p[1]) : -1, lo = hi >= 0 ? hex(p[2]) : -1;
        if (lo >= 0 && (hi | lo)) {
            *w++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *w++ = *p; /* a plain byte, a stray '%', or the '%' of a kept %00 */
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

bool cs__api_framing_or_400(cs_api_req *r, const char *version)
{
    framing f = {.chunked_only = true};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan, &f);
    if (f.bad_header[0])
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "header %s: control characters are not allowed in header values",
                     f.bad_header);
    else if (f.bad_name[0])
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "header '%s': a header name is a token (no spaces before the colon)",
                     f.bad_name);
    else if (f.content_length > 1)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "Content-Length: given %d times, at most once",
                     f.content_length);
    else if (f.transfer_encoding > 1)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "Transfer-Encoding: given %d times, at most once",
                     f.transfer_encoding);
    else if (f.transfer_encoding && f.content_length)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "Transfer-Encoding and Content-Length: give one of them, not both");
    else if (f.transfer_encoding && !f.chunked_only)
        cs_api_error(r, MHD_HTTP_NOT_IMPLEMENTED, "Transfer-Encoding: only chunked is supported");
    else if (f.host > 1)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "Host: given %d times, at most once", f.host);
    else if (!f.host && version && !strcmp(version, MHD_HTTP_VERSION_1_1))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "Host: required in HTTP/1.1 requests");
    else if (strstr(r->url, "%00"))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "the request path may not hold %%00 (a NUL byte)");
    else if (f.expect_other)
        cs_api_error(r, MHD_HTTP_EXPECTATION_FAILED, "Expect: only 100-continue is supported");
    else if (f.encodings > 1 || f.encoding < 0) {
        cs_api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                     "Content-Encoding: one of gzip, deflate or identity (or none) is supported");
        cs_api_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING, "gzip, deflate");
    } else {
        r->encoding = f.encoding;
        return true;
    }
    cs_api_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return false;
}

/*
 * mgmt_artifact.c - GET /api/v1/models/{m}/versions/{v}/artifact: a version's stored ONNX
 * file, for `capstan model pull` (and curl), as application/octet-stream.
 *
 * {v} is a number, an alias or `latest`; X-Capstan-Version names the number it resolved to.
 * The file is streamed from its content-addressed blob in 64 KiB reads as the client takes
 * it, never held in memory, and hashed on the way: the registry's rule that an artifact no
 * longer matching its digest is never handed out holds in one pass, because the last block
 * is sent only once the hash matches. A mismatch ends the stream with an error instead, so
 * the client sees a truncated body (curl: "transfer closed with outstanding read data")
 * and the server logs which version is corrupt. A size that differs is refused (500) before
 * a byte is sent. The answer carries the digest three ways: `ETag: "sha256:<hex>"` (with
 * If-None-Match answered 304), `Digest: sha-256=<base64>` (RFC 3230) and
 * `X-Capstan-Digest: sha256:<hex>`, the push's own header. Cost per download: one open, one
 * sequential read of the file and its sha256, on the HTTP thread serving the connection.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "obs/log.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DIGEST_HEX 64

typedef struct artifact_stream {
    int fd;
    EVP_MD_CTX *md;
    uint64_t size, sent;
    char digest[80]; /* "sha256:<hex>" as recorded */
    char model[CS_API_NAME_MAX];
    int64_t version;
} artifact_stream;

static void stream_free(void *cls)
{
    artifact_stream *s = cls;
    if (s->fd >= 0) close(s->fd);
    EVP_MD_CTX_free(s->md);
    cs_free(s);
}

/* Whether the finished hash is the recorded digest. */
static bool hash_matches(artifact_stream *s)
{
    unsigned char h[32];
    unsigned n = 0;
    char hex[DIGEST_HEX + 1];
    if (EVP_DigestFinal_ex(s->md, h, &n) != 1 || n != sizeof h) return false;
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return strcmp(s->digest + 7, hex) == 0;
}

/* libmicrohttpd's content reader: the next bytes at pos (always where the last call ended). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    artifact_stream *s = cls;
    if (pos != s->sent) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->sent == s->size) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t want = s->size - s->sent < max ? (size_t)(s->size - s->sent) : max;
    ssize_t n = pread(s->fd, buf, want, (off_t)pos);
    if (n <= 0 || EVP_DigestUpdate(s->md, buf, (size_t)n) != 1) {
        cs_log(CS_LOG_ERROR, "artifact download failed reading the blob", "model", s->model,
               "digest", s->digest, NULL);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (s->sent + (uint64_t)n == s->size && !hash_matches(s)) {
        char v[24];
        snprintf(v, sizeof v, "%" PRId64, s->version);
        cs_log(CS_LOG_ERROR,
               "artifact no longer matches its digest: download cut short, version refused",
               "model", s->model, "version", v, "digest", s->digest, NULL);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    s->sent += (uint64_t)n;
    return n;
}

/* Whether an If-None-Match value (a list of entity tags, or "*") names etag. */
static bool etag_listed(const char *inm, const char *etag)
{
    if (strcmp(inm, "*") == 0) return true;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)); p += n) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        if (start && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) return true;
    }
    return false;
}

/* The three digest headers and the resolved number, on an answer given already. */
static void digest_headers(cs_api_req *r, const cs_registry_version *v, const char *etag)
{
    unsigned char raw[32];
    for (int i = 0; i < 32; i++) {
        unsigned b = 0;
        sscanf(v->digest + 7 + 2 * i, "%2x", &b);
        raw[i] = (unsigned char)b;
    }
    char b64[48], digest[64], num[24];
    EVP_EncodeBlock((unsigned char *)b64, raw, sizeof raw);
    snprintf(digest, sizeof digest, "sha-256=%s", b64);
    snprintf(num, sizeof num, "%" PRId64, v->version);
    cs_api_header(r, MHD_HTTP_HEADER_ETAG, etag);
    cs_api_header(r, "Digest", digest);
    cs_api_header(r, "X-Capstan-Digest", v->digest);
    cs_api_header(r, "X-Capstan-Version", num);
}

void cs_api_version_artifact(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_registry_version v;
    cs_error err;
    int fd = -1;
    if (cs_registry_artifact_open(reg, r->model, r->version, &r->arena, &v, &fd, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    char etag[96];
    snprintf(etag, sizeof etag, "\"%s\"", v.digest);
    const char *inm =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && etag_listed(inm, etag)) {
        close(fd);
        cs_api_reply(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0);
        digest_headers(r, &v, etag);
        return;
    }
    artifact_stream *s = cs_calloc(1, sizeof *s);
    if (s) s->md = EVP_MD_CTX_new();
    if (!s || !s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1 ||
        strlen(v.digest) != 7 + DIGEST_HEX) {
        close(fd);
        if (s) EVP_MD_CTX_free(s->md);
        cs_free(s);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory starting the download");
        return;
    }
    s->fd = fd;
    s->size = (uint64_t)v.size;
    s->version = v.version;
    snprintf(s->digest, sizeof s->digest, "%s", v.digest);
    snprintf(s->model, sizeof s->model, "%s", r->model);
    if (!cs_api_reply_stream(r, MHD_HTTP_OK, "application/octet-stream", s->size, stream_read, s,
                             stream_free))
        return;
    char disposition[CS_API_NAME_MAX + 64];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s-%" PRId64 ".onnx\"",
             r->model, v.version);
    cs_api_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    digest_headers(r, &v, etag);
}

/*
 * ui.c - GET /ui and /ui/{file}: the dashboard's files, embedded in the binary at build time
 * (ui_assets.h), so serving them needs no file system, no Node.js and no network.
 *
 * The routes are public (routes.c): the files hold no data. The page signs in with a token and
 * every piece of data it shows comes from the API routes, which check that token as usual.
 * Caching: every answer carries an ETag (the file's hash) and If-None-Match is answered 304.
 * index.html is `no-cache` (always revalidated, so a new binary's page is seen at once); the
 * files it links to are named with their hash (`/ui/app.js?v=HASH`) and are `immutable` for a
 * year when asked for with that hash, else `no-cache` too. Compression: a client that accepts
 * gzip gets the gzip form made at build time (nothing is compressed at run time). Cost per
 * request: a linear scan of a handful of names and a copy of at most a few tens of KiB.
 */
#include "api/api.h"
#include "api/ui_assets.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cs_ui_asset *find(const char *name)
{
    for (int i = 0; i < cs_ui_n_assets; i++)
        if (strcmp(cs_ui_assets[i].name, name) == 0) return &cs_ui_assets[i];
    return NULL;
}

/* Whether a header's comma-separated list holds token (case-insensitive, parameters such as
 * ";q=0" ignored, so "gzip;q=0" counts as no). */
static bool lists(const char *h, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p + strcspn(p, ",");
        if ((size_t)(e - p) >= n && strncasecmp(p, token, n) == 0 &&
            (p[n] == ',' || p[n] == ';' || p[n] == ' ' || p[n] == '\0')) {
            const char *q = strstr(p, "q=");
            return !q || q >= e || strtod(q + 2, NULL) > 0;
        }
        p = e;
    }
    return false;
}

/* Whether If-None-Match names etag (or is "*"); weak validators compare equal (RFC 9110). */
static bool not_modified(cs_api_req *r, const char *etag)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    if (!h) return false;
    if (strcmp(h, "*") == 0) return true;
    for (const char *p = strstr(h, etag); p; p = strstr(p + 1, etag))
        if (p == h || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') return true;
    return false;
}

void cs_api_ui(cs_api_req *r)
{
    const char *name = r->name[0] ? r->name : "index.html";
    const cs_ui_asset *a = find(name);
    if (!a) {
        cs_api_error(r, MHD_HTTP_NOT_FOUND, "no dashboard file '%s' (the dashboard is at /ui)",
                     name);
        return;
    }
    char etag[24];
    snprintf(etag, sizeof etag, "\"%s\"", a->hash);
    const char *v = cs_api_query(r, "v");
    bool immutable = v && strcmp(v, a->hash) == 0;
    const char *ae = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Encoding");
    bool gz = ae && lists(ae, "gzip");
    if (not_modified(r, etag)) {
        cs_api_reply(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0);
    } else {
        const unsigned char *p = gz ? a->gz : a->data;
        size_t n = gz ? a->gz_len : a->len;
        char *body = cs_malloc(n ? n : 1);
        if (!body) {
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
            return;
        }
        memcpy(body, p, n);
        cs_api_reply(r, MHD_HTTP_OK, a->type, body, n);
        if (gz) cs_api_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    }
    cs_api_header(r, MHD_HTTP_HEADER_ETAG, etag);
    cs_api_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    cs_api_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                  immutable ? "public, max-age=31536000, immutable" : "no-cache");
    cs_api_header(r, "X-Content-Type-Options", "nosniff");
    /* The page loads nothing but its own files and talks only to this server. */
    cs_api_header(r, "Content-Security-Policy",
                  "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
}

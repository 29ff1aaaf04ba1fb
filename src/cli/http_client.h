/*
 * http_client.h - the CLI's HTTP client (libcurl): JSON calls, streamed file uploads and
 * downloads to and from a capstan server, with server errors turned into one-line messages.
 */
#ifndef CS_CLI_HTTP_CLIENT_H
#define CS_CLI_HTTP_CLIENT_H

#include <stdbool.h>

#include "base/sbuf.h"

#include <jansson.h>
#include "capstan/status.h"

#define CS_HTTP_REPLY_MAX ((size_t)64 << 20) /* a longer answer is an error */

typedef struct cs_http {
    void *curl;       /* CURL * */
    const char *base; /* borrowed: "http://host:port", no trailing slash needed */
    bool progress;    /* draw an upload progress bar on stderr */
    /* https: the CA bundle (PEM) that verifies the server, borrowed; NULL for the system's
     * store. The server's certificate and host name are always verified. */
    const char *cacert;
    /* Sent as `Authorization: Bearer` when set: $CAPSTAN_TOKEN, else the first line of
     * $XDG_CONFIG_HOME/capstan/token (~/.config/capstan/token); "" for none. */
    char token[128];
} cs_http;

typedef struct cs_http_reply {
    long status;
    cs_sbuf body; /* NUL-terminated; freed with cs_sbuf_free */
} cs_http_reply;

/* Opens a client for base (borrowed) and reads the token (see cs_http.token). Free with
 * cs_http_free. */
cs_status cs_http_init(cs_http *h, const char *base, cs_error *err);
void cs_http_free(cs_http *h);

/* One request: method and path (with its query, already escaped) under base; body is JSON
 * text or NULL. Any answer the server gave is CS_OK with out->status set; CS_ERR_IO when
 * the server cannot be reached (the message names the URL). out->body is initialised
 * either way. */
cs_status cs_http_call(cs_http *h, const char *method, const char *path, const char *body,
                       cs_http_reply *out, cs_error *err);

/* POSTs the file at `file` as application/octet-stream, streamed from disk (never loaded
 * whole), with extra headers ("Name: value", n of them). */
cs_status cs_http_upload(cs_http *h, const char *path, const char *file, const char *const *headers,
                         int n, cs_http_reply *out, cs_error *err);

/* Takes n bytes of a download; false aborts it (the sink keeps its own reason). */
typedef bool (*cs_http_sink)(void *user, const char *p, size_t n);

/* GETs path (with extra headers, "Name: value"), handing a 2xx answer's body to sink as it
 * arrives, never holding it whole; any other answer's body lands in out->body for
 * cs_http_error_text. CS_ERR_IO when the server cannot be reached, or when the answer
 * breaks off or the sink refuses a chunk ("the answer broke off" in the message). */
cs_status cs_http_download(cs_http *h, const char *path, const char *const *headers, int n,
                           cs_http_sink sink, void *user, cs_http_reply *out, cs_error *err);

/* The server a command talks to: server (a --server flag) or $CAPSTAN_SERVER or
 * http://127.0.0.1:8080, trailing slashes cut, into buf; opens h on it with cacert (a
 * --cacert flag) or $CAPSTAN_CACERT. CS_ERR_INVALID for a URL that is not http(s). */
cs_status cs_http_open(cs_http *h, const char *server, const char *cacert, char *buf, size_t cap,
                       cs_error *err);

/* One call whose 2xx answer is JSON: returns it (a new reference; null for an empty body)
 * with rep filled (free rep->body), or NULL with err set to the server's message or why. */
json_t *cs_http_json(cs_http *h, const char *method, const char *path, const char *body,
                     cs_http_reply *rep, cs_error *err);

/* s escaped for a URL's path or query (into b). */
cs_status cs_http_escape(cs_http *h, const char *s, cs_sbuf *b);

/* The server's {"error": "..."} message for a failed reply, or a generic one. Points into
 * buf (cap bytes). */
const char *cs_http_error_text(const cs_http_reply *rep, char *buf, size_t cap);

#endif

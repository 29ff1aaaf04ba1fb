/*
 * http_client.c - cs_http_* on libcurl's easy interface.
 *
 * One easy handle per command, reused across its calls (keep-alive). Answers are read into
 * a string builder bounded by CS_HTTP_REPLY_MAX; uploads are read from the file by curl's
 * read callback, 64 KiB at a time, so a push costs the same memory for 1 MB and 10 GB. The
 * progress bar redraws at most 10 times a second.
 */
#include "cli/http_client.h"

#include "base/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The token from the environment or the user's config file, if any. */
static void read_token(char *out, size_t cap)
{
    const char *env = getenv("CAPSTAN_TOKEN");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    char path[1024];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(path, sizeof path, "%s/capstan/token", xdg);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.config/capstan/token", home);
    else
        return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

cs_status cs_http_init(cs_http *h, const char *base, cs_error *err)
{
    *h = (cs_http){.base = base};
    read_token(h->token, sizeof h->token);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(h->curl = curl_easy_init()))
        return cs_error_set(err, CS_ERR_NOMEM, "cannot start libcurl");
    return CS_OK;
}

void cs_http_free(cs_http *h)
{
    if (h->curl) curl_easy_cleanup(h->curl);
    h->curl = NULL;
    curl_global_cleanup();
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    cs_sbuf *b = user;
    return cs_sbuf_append(b, p, size * n) == CS_OK ? size * n : 0; /* 0 aborts: too long */
}

typedef struct progress {
    uint64_t last_ns;
    bool drawn;
} progress;

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    progress *p = user;
    uint64_t now = cs_now_ns();
    if (ultotal <= 0 || (now - p->last_ns < 100000000ull && ulnow < ultotal)) return 0;
    p->last_ns = now;
    p->drawn = true;
    int width = 40, done = (int)(ulnow * width / ultotal);
    fprintf(stderr, "\r[%.*s%*s] %3d%% %.1f/%.1f MB", done,
            "########################################", width - done, "",
            (int)(ulnow * 100 / ultotal), (double)ulnow / 1e6, (double)ultotal / 1e6);
    return 0;
}

/* Runs the prepared handle and fills out, the body through write(data) (NULL: into
 * out->body); resets the handle for the next call. A transfer that broke off after the
 * answer began (a download cut short) is named as such, not as an unreachable server. */
static cs_status perform_to(cs_http *h, const char *method, const char *path,
                            struct curl_slist *hdrs, curl_write_callback write, void *data,
                            cs_http_reply *out, cs_error *err)
{
    CURL *c = h->curl;
    cs_sbuf url;
    cs_sbuf_init(&url, 8192);
    cs_status rc = cs_sbuf_printf(&url, "%s%s", h->base, path);
    if (rc != CS_OK) {
        cs_sbuf_free(&url);
        return cs_error_set(err, CS_ERR_INVALID, "the URL %s%s is too long", h->base, path);
    }
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write ? write : on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, write ? data : &out->body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    if (h->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
    if (h->token[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->token);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode cc = curl_easy_perform(c);
    long began = 0; /* the status line arrived: the server was reached */
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &began);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    } else if (began &&
               (cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR || cc == CURLE_WRITE_ERROR)) {
        out->status = began;
        rc = cs_error_set(err, CS_ERR_IO, "%s: the answer broke off: %s", url.data,
                          cerr[0] ? cerr : curl_easy_strerror(cc));
    } else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) {
        rc = cs_error_set(err, CS_ERR_IO,
                          "%s: %s (give the CA that signed the server's certificate with "
                          "--cacert FILE or CAPSTAN_CACERT)",
                          url.data, cerr[0] ? cerr : curl_easy_strerror(cc));
    } else {
        rc = cs_error_set(err, CS_ERR_IO,
                          "%s: %s (is `capstan serve` running there? set "
                          "--server or CAPSTAN_SERVER)",
                          url.data, cerr[0] ? cerr : curl_easy_strerror(cc));
    }
    curl_easy_reset(c);
    cs_sbuf_free(&url);
    return rc;
}

static cs_status perform(cs_http *h, const char *method, const char *path, struct curl_slist *hdrs,
                         cs_http_reply *out, cs_error *err)
{
    return perform_to(h, method, path, hdrs, NULL, NULL, out, err);
}

typedef struct download {
    CURL *curl;
    cs_http_sink sink;
    void *user;
    cs_sbuf *body;
} download;

/* A 2xx answer's bytes go to the sink, any other answer's (an error) to the body. */
static size_t on_download(char *p, size_t size, size_t n, void *user)
{
    download *d = user;
    long status = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return d->sink(d->user, p, size * n) ? size * n : 0;
    return cs_sbuf_append(d->body, p, size * n) == CS_OK ? size * n : 0;
}

cs_status cs_http_download(cs_http *h, const char *path, const char *const *headers, int n,
                           cs_http_sink sink, void *user, cs_http_reply *out, cs_error *err)
{
    *out = (cs_http_reply){0};
    cs_sbuf_init(&out->body, CS_HTTP_REPLY_MAX);
    struct curl_slist *hdrs = NULL;
    for (int i = 0; i < n; i++) hdrs = curl_slist_append(hdrs, headers[i]);
    download d = {h->curl, sink, user, &out->body};
    cs_status rc = perform_to(h, "GET", path, hdrs, on_download, &d, out, err);
    curl_slist_free_all(hdrs);
    return rc;
}

cs_status cs_http_call(cs_http *h, const char *method, const char *path, const char *body,
                       cs_http_reply *out, cs_error *err)
{
    *out = (cs_http_reply){0};
    cs_sbuf_init(&out->body, CS_HTTP_REPLY_MAX);
    struct curl_slist *hdrs = NULL;
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    cs_status rc = perform(h, method, path, hdrs, out, err);
    curl_slist_free_all(hdrs);
    return rc;
}

cs_status cs_http_upload(cs_http *h, const char *path, const char *file, const char *const *headers,
                         int n, cs_http_reply *out, cs_error *err)
{
    *out = (cs_http_reply){0};
    cs_sbuf_init(&out->body, CS_HTTP_REPLY_MAX);
    FILE *f = fopen(file, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        cs_status rc = cs_error_set(err, CS_ERR_IO, "%s: %s", file, strerror(errno));
        if (f) fclose(f);
        return rc;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    /* The server answers early (404, 413) without reading a body it would refuse. */
    hdrs = curl_slist_append(hdrs, "Expect: 100-continue");
    for (int i = 0; i < n; i++) hdrs = curl_slist_append(hdrs, headers[i]);
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, f); /* curl's default read function is fread */
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
    progress pg = {0};
    if (h->progress) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pg);
    }
    cs_status rc = perform(h, "POST", path, hdrs, out, err);
    if (pg.drawn) fputc('\n', stderr);
    curl_slist_free_all(hdrs);
    fclose(f);
    return rc;
}

cs_status cs_http_escape(cs_http *h, const char *s, cs_sbuf *b)
{
    char *e = curl_easy_escape(h->curl, s, 0);
    cs_status rc = e ? cs_sbuf_puts(b, e) : CS_ERR_NOMEM;
    curl_free(e);
    return rc;
}

const char *cs_http_error_text(const cs_http_reply *rep, char *buf, size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loadb(rep->body.data, rep->body.len, 0, &jerr);
    const char *msg = json_string_value(json_object_get(j, "error"));
    snprintf(buf, cap, "%s (HTTP %ld)", msg ? msg : "the server answered", rep->status);
    json_decref(j);
    return buf;
}

cs_status cs_http_open(cs_http *h, const char *server, const char *cacert, char *buf, size_t cap,
                       cs_error *err)
{
    const char *env = server ? server : getenv("CAPSTAN_SERVER");
    snprintf(buf, cap, "%s", env && *env ? env : "http://127.0.0.1:8080");
    for (size_t n = strlen(buf); n > 0 && buf[n - 1] == '/';) buf[--n] = '\0';
    if (strncmp(buf, "http://", 7) != 0 && strncmp(buf, "https://", 8) != 0)
        return cs_error_set(err, CS_ERR_INVALID, "--server expects http(s)://HOST:PORT, got '%s'",
                            buf);
    cs_status rc = cs_http_init(h, buf, err);
    if (rc != CS_OK) return rc;
    const char *ca = cacert ? cacert : getenv("CAPSTAN_CACERT");
    h->cacert = ca && *ca ? ca : NULL;
    return CS_OK;
}

json_t *cs_http_json(cs_http *h, const char *method, const char *path, const char *body,
                     cs_http_reply *rep, cs_error *err)
{
    if (cs_http_call(h, method, path, body, rep, err) != CS_OK) return NULL;
    char msg[1024];
    if (rep->status < 200 || rep->status >= 300) {
        cs_error_set(err, CS_ERR_IO, "%s", cs_http_error_text(rep, msg, sizeof msg));
        return NULL;
    }
    json_error_t jerr;
    json_t *j = rep->body.len ? json_loadb(rep->body.data, rep->body.len, 0, &jerr) : json_null();
    if (!j) cs_error_set(err, CS_ERR_PARSE, "the server's answer is not JSON: %s", jerr.text);
    return j;
}

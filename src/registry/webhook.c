/*
 * webhook.c - signed event delivery: a bounded queue and one background sender thread.
 *
 * Registry calls never wait on a receiver: cs__webhook_emit builds the JSON body and
 * queues it in O(1) (a full queue drops the event and counts it, so a dead receiver cannot
 * grow memory without bound). The sender POSTs each body with libcurl, signed with
 * HMAC-SHA256 over the exact bytes sent, and retries 5xx, 408, 429 and network errors
 * with exponential back-off (doubling, capped at BACKOFF_CAP_MS). Events go out in order,
 * one at a time: a slow receiver delays later events rather than reordering them.
 */
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECRET_MAX     4096
#define BACKOFF_CAP_MS 60000
#define ATTEMPTS_MAX   20

typedef struct event {
    char name[40];
    char *body;
} event;

struct cs__webhook {
    char *url;
    unsigned char secret[SECRET_MAX];
    size_t secret_len;
    int max_attempts, backoff_ms, timeout_ms;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* work queued or stop */
    pthread_cond_t idle; /* queue drained */
    event *ring;
    int cap, head, len;
    bool busy, stop;
    uint64_t next_id;
    cs_registry_webhook_stats stats;
    pthread_t thread;
    bool started;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

/* libcurl's global state is process-wide and set up once; it is never torn down, since
 * another module of the process may still use libcurl. */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static cs_status read_secret(const char *path, unsigned char *out, size_t *len, cs_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cs_error_set(err, CS_ERR_INVALID, "webhook secret file %s: %s", path,
                            strerror(errno));
    size_t n = fread(out, 1, SECRET_MAX, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more)
        return cs_error_set(err, CS_ERR_LIMIT, "webhook secret file %s is longer than %d bytes",
                            path, SECRET_MAX);
    /* The secret is the first line: an editor's trailing newline is not part of it. */
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\n' || out[i] == '\r') n = i;
    if (n == 0) return cs_error_set(err, CS_ERR_INVALID, "webhook secret file %s is empty", path);
    *len = n;
    return CS_OK;
}

/* Absolute CLOCK_MONOTONIC deadline ms from now, for pthread_cond_timedwait. */
static struct timespec deadline(int64_t ms)
{
    uint64_t ns = cs_now_ns() + (uint64_t)ms * 1000000u;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    return size * n;
}

/* One POST. Returns 1 delivered, 0 retry, -1 give up (a 4xx the receiver means). */
static int post(cs__webhook *w, CURL *curl, const event *e)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), w->secret, (int)w->secret_len, (const unsigned char *)e->body,
         strlen(e->body), mac, &mac_len);
    char sig[32 + 2 * EVP_MAX_MD_SIZE] = "X-Capstan-Signature: sha256=";
    size_t off = strlen(sig);
    for (unsigned int i = 0; i < mac_len; i++) off += (size_t)sprintf(sig + off, "%02x", mac[i]);
    char ev[80];
    snprintf(ev, sizeof ev, "X-Capstan-Event: %s", e->name);
    struct curl_slist *h = NULL, *t;
    const char *lines[] = {"Content-Type: application/json", "Expect:", ev, sig};
    for (size_t i = 0; i < 4; i++) {
        t = curl_slist_append(h, lines[i]);
        if (!t) {
            curl_slist_free_all(h);
            return 0;
        }
        h = t;
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, w->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(e->body));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "capstan-registry/" CS_VERSION);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) return 0;
    if (code >= 200 && code < 300) return 1;
    if (code >= 500 || code == 408 || code == 429) return 0;
    return -1;
}

static void *sender(void *arg)
{
    cs__webhook *w = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->len == 0) pthread_cond_wait(&w->wake, &w->mu);
        if (w->stop) break;
        event e = w->ring[w->head];
        w->head = (w->head + 1) % w->cap;
        w->len--;
        w->busy = true;
        int outcome = 0;
        for (int attempt = 1; attempt <= w->max_attempts && !w->stop; attempt++) {
            pthread_mutex_unlock(&w->mu);
            outcome = curl ? post(w, curl, &e) : 0;
            pthread_mutex_lock(&w->mu);
            if (outcome != 0 || attempt == w->max_attempts) break;
            w->stats.retries++;
            int64_t delay = (int64_t)w->backoff_ms << (attempt - 1);
            struct timespec until = deadline(delay < BACKOFF_CAP_MS ? delay : BACKOFF_CAP_MS);
            while (!w->stop && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT) {
            }
        }
        if (outcome == 1)
            w->stats.delivered++;
        else
            w->stats.failed++;
        cs_free(e.body);
        w->busy = false;
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    curl_easy_cleanup(curl);
    return NULL;
}

void cs__webhook_free(cs__webhook *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    for (int i = 0; i < w->len; i++) cs_free(w->ring[(w->head + i) % w->cap].body);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    OPENSSL_cleanse(w->secret, sizeof w->secret);
    cs_free(w->ring);
    cs_free(w->url);
    cs_free(w);
}

static int or_default(int v, int def)
{
    return v > 0 ? v : def;
}

cs_status cs__webhook_new(const cs_registry_options *opts, cs__webhook **out, cs_error *err)
{
    cs_status rc = CS_ERR_NOMEM;
    *out = NULL;
    const char *url = opts->webhook_url;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "webhook URL must start with http:// or "
                            "https://: %s",
                            url);
    if (!opts->webhook_secret_file)
        return cs_error_set(err, CS_ERR_INVALID,
                            "a webhook needs --webhook-secret-file: "
                            "receivers check the signature made with it");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return cs_error_set(err, CS_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    cs__webhook *w = cs_calloc(1, sizeof *w);
    if (!w) return cs_error_set(err, rc, "out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->idle, &ca);
    pthread_condattr_destroy(&ca);
    w->max_attempts = or_default(opts->webhook_max_attempts, 6);
    if (w->max_attempts > ATTEMPTS_MAX) w->max_attempts = ATTEMPTS_MAX;
    w->backoff_ms = or_default(opts->webhook_backoff_ms, 500);
    w->timeout_ms = or_default(opts->webhook_timeout_ms, 5000);
    w->cap = or_default(opts->webhook_queue, 1024);
    w->next_id = cs_wall_ns();
    w->url = cs_strdup(url);
    w->ring = cs_calloc((size_t)w->cap, sizeof *w->ring);
    if (!w->url || !w->ring) {
        cs_error_set(err, rc, "out of memory");
        goto out;
    }
    rc = read_secret(opts->webhook_secret_file, w->secret, &w->secret_len, err);
    if (rc != CS_OK) goto out;
    if (pthread_create(&w->thread, NULL, sender, w) != 0) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "cannot start the webhook thread");
        goto out;
    }
    w->started = true;
    *out = w;
    w = NULL;
    rc = CS_OK;
out:
    cs__webhook_free(w);
    return rc;
}

void cs__webhook_emit(cs__webhook *w, const char *name, const char *actor, const char *model,
                      int64_t version, const char *alias, const char *before, const char *after)
{
    if (!w) return;
    json_error_t jerr;
    char id[40];
    pthread_mutex_lock(&w->mu);
    snprintf(id, sizeof id, "%016" PRIx64, w->next_id++);
    pthread_mutex_unlock(&w->mu);
    json_t *body =
        json_pack("{s:s, s:s, s:o*, s:s, s:s, s:I, s:s, s:o*, s:o*}", "id", id, "event", name, "at",
                  cs__json_time((int64_t)cs_wall_ns()), "actor", actor, "model", model, "version",
                  (json_int_t)version, "alias", alias ? alias : "", "before",
                  before ? json_loads(before, JSON_DECODE_ANY, &jerr) : json_null(), "after",
                  after ? json_loads(after, JSON_DECODE_ANY, &jerr) : json_null());
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(body);
    event e = {.body = text ? cs_strdup(text) : NULL};
    free(text);
    snprintf(e.name, sizeof e.name, "%s", name);
    pthread_mutex_lock(&w->mu);
    if (!e.body || w->len == w->cap || w->stop) {
        w->stats.dropped++;
        cs_free(e.body);
    } else {
        w->ring[(w->head + w->len) % w->cap] = e;
        w->len++;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
}

cs_status cs__webhook_flush(cs__webhook *w, int timeout_ms, cs_error *err)
{
    if (!w) return CS_OK;
    cs_status rc = CS_OK;
    struct timespec until = deadline(timeout_ms);
    pthread_mutex_lock(&w->mu);
    while ((w->len > 0 || w->busy) && rc == CS_OK)
        if (pthread_cond_timedwait(&w->idle, &w->mu, &until) == ETIMEDOUT)
            rc = cs_error_set(err, CS_ERR_LIMIT,
                              "webhook queue not drained after %d ms "
                              "(%d events waiting)",
                              timeout_ms, w->len);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void cs__webhook_stats(cs__webhook *w, cs_registry_webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

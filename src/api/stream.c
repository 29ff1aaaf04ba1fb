/*
 * stream.c - GET /api/v1/stream: the dashboard's live numbers as server-sent events, one
 * event a second: per loaded model version its throughput (requests/s), errors/s, p50 and p99
 * latency over that second, queue depth and mean batch size, plus a summary of every
 * deployment (desired and ready instances, the traffic split, the rollout).
 *
 * One thread (started with the server) builds the event once a second, only while some
 * client listens, and every client gets the same bytes. A client holds no HTTP thread: its
 * answer is a libmicrohttpd callback response that copies the newest event out and, when it
 * has sent it, suspends the connection until the thread resumes it with the next one. So a
 * watcher costs a socket, a few KiB and a wake-up per second; at most CS_API_STREAM_MAX
 * watch at once (the next is answered 503 with Retry-After), so a page left open in many tabs
 * cannot crowd out inference. When the server drains, every stream ends at its next event.
 *
 * Locks: hub.mu guards the event, the client list and each client's `suspended` flag; it is
 * taken by the MHD threads (the callback, a client's end) and the event thread. Under it only
 * MHD_suspend_connection is called (libmicrohttpd's lock after ours); connections are resumed
 * after it is released. The runtime and the deployer are read without it.
 */
#include "api/api.h"
#include "api/stream.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODELS_MAX 64 /* versions in one event; the rest are left out */
#define BUCKETS    32 /* latency buckets read; a histogram with more gives no quantiles */
#define KEY_MAX    512

typedef struct client {
    struct cs_api_stream *hub;
    struct MHD_Connection *conn;
    uint64_t seq;    /* the last event copied out */
    char *buf;       /* that event, being sent (its own copy, freed with the client) */
    size_t len, off; /* bytes in buf, and sent */
    bool suspended;  /* waits for the next event */
} client;

/* One version's counters when the last event was built, for the per-second deltas. */
typedef struct sample {
    char key[KEY_MAX]; /* name '\n' version */
    uint64_t ok, fail, rows, runs, t_ns;
    uint64_t b[BUCKETS];
} sample;

struct cs_api_stream {
    cs_server *s;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    char *event; /* "data: {...}\n\n", malloc'd; NULL before the first */
    size_t event_len;
    uint64_t seq;
    client *clients[CS_API_STREAM_MAX];
    int n_clients;
    sample prev[MODELS_MAX], next[MODELS_MAX];
    int n_prev;
};

/* Every loaded version's name and version, copied under the runtime's lock. */
typedef struct names {
    char key[MODELS_MAX][KEY_MAX];
    int n;
} names;

static void add_name(void *ud, const cs_rt_model *m)
{
    names *c = ud;
    if (c->n < MODELS_MAX)
        snprintf(c->key[c->n++], KEY_MAX, "%s\n%s", cs_rt_model_name(m), cs_rt_model_version(m));
}

static json_t *ms_or_null(double s)
{
    return isnan(s) ? json_null() : json_real(s * 1000);
}

/* One version's entry; fills n with its counters now and reads the deltas from p (NULL: the
 * first event that sees it, whose rates are 0). */
static json_t *model_entry(cs_rt_model *m, sample *n, const sample *p)
{
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    const double *bounds = NULL;
    int nb = cs_metric_buckets(cs_rt_model_latency(m), n->b, BUCKETS, &bounds);
    if (nb > BUCKETS) nb = 0;
    n->ok = st.success.count;
    n->fail = st.fail.count;
    n->rows = st.inference_count;
    n->runs = st.execution_count;
    n->t_ns = cs_now_ns();
    double dt = p ? (double)(n->t_ns - p->t_ns) / 1e9 : 0;
    uint64_t d[BUCKETS] = {0};
    for (int i = 0; p && i < nb; i++) d[i] = n->b[i] - p->b[i];
    uint64_t runs = p ? n->runs - p->runs : 0;
    return json_pack("{s:s, s:s, s:f, s:f, s:o, s:o, s:i, s:f}", "name", cs_rt_model_name(m),
                     "version", cs_rt_model_version(m), "throughput",
                     dt > 0 ? (double)(n->ok - p->ok) / dt : 0.0, "errors",
                     dt > 0 ? (double)(n->fail - p->fail) / dt : 0.0, "p50_ms",
                     ms_or_null(nb ? cs_metric_quantile(0.5, d, nb, bounds) : NAN), "p99_ms",
                     ms_or_null(nb ? cs_metric_quantile(0.99, d, nb, bounds) : NAN), "queue",
                     cs_rt_model_queue_depth(m), "batch",
                     runs ? (double)(n->rows - p->rows) / (double)runs : 0.0);
}

static json_t *models_now(struct cs_api_stream *h)
{
    names *c = cs_calloc(1, sizeof *c);
    json_t *list = json_array();
    int n_next = 0;
    if (!c || !list) goto out;
    cs_runtime_foreach(h->s->rt, add_name, c);
    for (int i = 0; i < c->n; i++) {
        char *nl = strchr(c->key[i], '\n');
        *nl = '\0';
        cs_rt_model *m = cs_runtime_acquire(h->s->rt, c->key[i], nl + 1);
        *nl = '\n';
        if (!m) continue; /* unloaded meanwhile */
        const sample *p = NULL;
        for (int k = 0; k < h->n_prev && !p; k++)
            if (strcmp(h->prev[k].key, c->key[i]) == 0) p = &h->prev[k];
        sample *s = &h->next[n_next++];
        memcpy(s->key, c->key[i], KEY_MAX);
        json_array_append_new(list, model_entry(m, s, p));
        cs_rt_model_release(m);
    }
    memcpy(h->prev, h->next, (size_t)n_next * sizeof *h->next);
    h->n_prev = n_next;
out:
    cs_free(c);
    return list;
}

/* Each deployment's name, model, desired and ready counts, traffic and rollout. */
static json_t *deployments_now(struct cs_api_stream *h)
{
    json_t *out = json_array();
    json_t *all = h->s->deployer ? cs_deployer_list(h->s->deployer) : NULL;
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        json_t *st = json_object_get(d, "status");
        json_t *e = json_pack("{s:O, s:O, s:O, s:O}", "name",
                              json_object_get(json_object_get(d, "metadata"), "name"), "model",
                              json_object_get(json_object_get(d, "spec"), "model"), "desired",
                              json_object_get(st, "desiredInstances"), "ready",
                              json_object_get(st, "readyInstances"));
        if (!e) continue;
        json_t *v;
        if ((v = json_object_get(st, "traffic"))) json_object_set(e, "traffic", v);
        if ((v = json_object_get(st, "rollout"))) json_object_set(e, "rollout", v);
        json_array_append_new(out, e);
    }
    json_decref(all);
    return out;
}

static char *build_event(struct cs_api_stream *h, size_t *len)
{
    json_t *j = json_pack("{s:I, s:o, s:o}", "t", (json_int_t)(cs_wall_ns() / 1000000), "models",
                          models_now(h), "deployments", deployments_now(h));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return NULL;
    size_t n = strlen(text);
    char *ev = cs_malloc(n + 9);
    if (ev) *len = (size_t)snprintf(ev, n + 9, "data: %s\n\n", text);
    free(text);
    return ev;
}

/* Takes every waiting client off the wait (under h->mu) into out, for wake() to resume once
 * the lock is released: a connection marked so cannot end before it is resumed, so its
 * pointer stays good, and libmicrohttpd's own lock is never taken under h->mu here. */
static int waiting(struct cs_api_stream *h, struct MHD_Connection **out)
{
    int n = 0;
    for (int i = 0; i < h->n_clients; i++) {
        client *c = h->clients[i];
        if (!c->suspended) continue;
        c->suspended = false;
        out[n++] = c->conn;
    }
    return n;
}

static void wake(struct MHD_Connection **conns, int n)
{
    for (int i = 0; i < n; i++) MHD_resume_connection(conns[i]);
}

static void *run(void *arg)
{
    struct cs_api_stream *h = arg;
    struct MHD_Connection *conns[CS_API_STREAM_MAX];
    int n = 0;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&h->cv, &h->mu, &until);
        if (atomic_load(&h->s->draining)) h->stop = true;
        if (h->stop || h->n_clients == 0) continue;
        pthread_mutex_unlock(&h->mu);
        size_t len = 0;
        char *ev = build_event(h, &len); /* outside the lock: it reads the runtime */
        pthread_mutex_lock(&h->mu);
        if (!ev) continue; /* out of memory: try again next second */
        cs_free(h->event);
        h->event = ev;
        h->event_len = len;
        h->seq++;
        n = waiting(h, conns);
        pthread_mutex_unlock(&h->mu);
        wake(conns, n);
        pthread_mutex_lock(&h->mu);
    }
    n = waiting(h, conns); /* stopping: they end at their next read */
    pthread_mutex_unlock(&h->mu);
    wake(conns, n);
    return NULL;
}

cs_status cs__api_stream_new(cs_server *s, struct cs_api_stream **out, cs_error *err)
{
    struct cs_api_stream *h = cs_calloc(1, sizeof *h);
    if (!h) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    h->s = s;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        cs__api_stream_free(h);
        return cs_error_set(err, CS_ERR_INTERNAL, "cannot start the stream thread");
    }
    h->started = true;
    *out = h;
    return CS_OK;
}

void cs__api_stream_stop(struct cs_api_stream *h)
{
    if (!h || !h->started) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->started = false;
}

void cs__api_stream_free(struct cs_api_stream *h)
{
    if (!h) return;
    cs__api_stream_stop(h);
    cs_free(h->event);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    cs_free(h);
}

/* libmicrohttpd's content reader: the rest of the event being sent, else the next one, else
 * suspend until there is one. Runs on the connection's MHD thread. */
static ssize_t read_event(void *cls, uint64_t pos, char *buf, size_t max)
{
    client *c = cls;
    struct cs_api_stream *h = c->hub;
    ssize_t n = 0;
    pthread_mutex_lock(&h->mu);
    if (c->off == c->len && h->stop) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (c->off == c->len && h->seq > c->seq && h->event) {
        char *copy = cs_malloc(h->event_len);
        if (copy) {
            memcpy(copy, h->event, h->event_len);
            cs_free(c->buf);
            c->buf = copy;
            c->len = h->event_len;
            c->off = 0;
            c->seq = h->seq;
        }
    }
    if (n == 0 && c->off < c->len) {
        n = (ssize_t)(c->len - c->off < max ? c->len - c->off : max);
        memcpy(buf, c->buf + c->off, (size_t)n);
        c->off += (size_t)n;
    } else if (n == 0) {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* The response's end, however the connection ended. */
static void end_client(void *cls)
{
    client *c = cls;
    struct cs_api_stream *h = c->hub;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n_clients; i++)
        if (h->clients[i] == c) h->clients[i] = h->clients[--h->n_clients];
    pthread_mutex_unlock(&h->mu);
    cs_free(c->buf);
    cs_free(c);
}

void cs_api_stream(cs_api_req *r)
{
    struct cs_api_stream *h = r->srv->stream;
    if (atomic_load(&r->srv->draining)) {
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
        return;
    }
    client *c = cs_calloc(1, sizeof *c);
    /* "retry" tells EventSource to reconnect after 2 s when the stream ends. */
    static const char hello[] = "retry: 2000\n\n";
    char *first = cs_malloc(sizeof hello);
    if (!c || !first) {
        cs_free(c);
        cs_free(first);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    memcpy(first, hello, sizeof hello);
    *c = (client){.hub = h, .conn = r->conn, .buf = first, .len = sizeof hello - 1};
    pthread_mutex_lock(&h->mu);
    bool room = !h->stop && h->n_clients < CS_API_STREAM_MAX;
    if (room) {
        h->clients[h->n_clients++] = c;
        c->seq = h->seq ? h->seq - 1 : 0; /* the newest event goes out at once */
    }
    pthread_mutex_unlock(&h->mu);
    if (!room) {
        cs_free(first);
        cs_free(c);
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                     "%d dashboard streams are open already, the most allowed; close one or "
                     "retry later",
                     CS_API_STREAM_MAX);
        return;
    }
    r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_event, c, end_client);
    if (!r->resp) {
        end_client(c);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    r->status = MHD_HTTP_OK;
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r->resp, "X-Accel-Buffering", "no"); /* behind nginx: unbuffered */
    MHD_add_response_header(r->resp, "X-Request-Id", r->id);
}

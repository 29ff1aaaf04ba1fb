/*
 * mgmt_versions.c - /api/v1/models/{m}/versions[/{v}]: push (a streamed upload), list,
 * get, patch (labels, state) and delete.
 *
 * A push never holds the artifact in memory. Its route streams (routes.c): this handler
 * runs at the headers, checks them and the model, and starts a thread that runs
 * cs_registry_push_version with a read callback. The HTTP thread copies each body chunk
 * into a 1 MiB ring that the callback drains; when the ring is full the HTTP thread waits,
 * which is the back-pressure that keeps memory bounded whatever the artifact's size (the
 * cost: that thread's other connections wait with it while the disk catches up). The push
 * thread answers the request itself once the registry has stored the version, and moves
 * what is served (a new `latest`) before it answers. A client that leaves mid-upload makes
 * the read fail, so the registry keeps nothing but a temporary file gc removes; the
 * request's end joins the thread, so it never outlives the request.
 *
 * Metadata travels in headers or, equally, in query parameters (docs/api.md):
 *   X-Capstan-Label: k=v (repeatable)     ?label=k=v (repeatable)
 *   X-Capstan-Description                 ?description=
 *   X-Capstan-Source, -Run-Id, -Parent-Version, -Dataset-Digest    ?source= ?run_id= ...
 *   X-Capstan-Digest: sha256:<hex>        ?digest=   (the push is refused on a mismatch)
 */
#include "api/api.h"

#include "base/alloc.h"
#include "obs/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RING_BYTES ((size_t)1 << 20)

typedef struct push_stream {
    cs_api_req *r;
    cs_api_sink sink;
    cs_registry_push push;
    const char *actor; /* read on the HTTP thread, which owns the connection's headers */
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* data, space, end, abort or the reader's exit */
    char *ring;
    size_t head, len;
    bool eof;         /* the whole body has been written */
    bool aborted;     /* the request ended before the body did */
    bool reader_done; /* the registry stopped reading: further chunks are dropped */
} push_stream;

/* --- the ring ----------------------------------------------------------------------------- */

/* The registry's read callback, on the push thread. */
static cs_status stream_read(void *user, void *buf, size_t cap, size_t *got, cs_error *err)
{
    push_stream *p = user;
    pthread_mutex_lock(&p->mu);
    while (p->len == 0 && !p->eof && !p->aborted) pthread_cond_wait(&p->cv, &p->mu);
    cs_status rc = CS_OK;
    size_t n = p->len < cap ? p->len : cap;
    if (p->aborted) {
        n = 0;
        rc = cs_error_set(err, CS_ERR_IO,
                          "the client closed the connection before the upload "
                          "ended");
    }
    size_t first = n < RING_BYTES - p->head ? n : RING_BYTES - p->head;
    memcpy(buf, p->ring + p->head, first);
    memcpy((char *)buf + first, p->ring, n - first);
    p->head = (p->head + n) % RING_BYTES;
    p->len -= n;
    *got = n;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* On the HTTP thread, per body chunk: waits for space while the ring is full. */
static void stream_write(void *ctx, const char *data, size_t n)
{
    push_stream *p = ctx;
    pthread_mutex_lock(&p->mu);
    while (n > 0 && !p->reader_done && !p->aborted) {
        if (p->len == RING_BYTES) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        size_t tail = (p->head + p->len) % RING_BYTES;
        size_t room = tail >= p->head || p->len == 0 ? RING_BYTES - tail : p->head - tail;
        size_t k = n < room ? n : room;
        memcpy(p->ring + tail, data, k);
        p->len += k;
        data += k;
        n -= k;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

static void stream_end(void *ctx)
{
    push_stream *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->eof = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void stream_close(void *ctx)
{
    push_stream *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->aborted = !p->eof;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->started) pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    cs_free(p->ring);
}

/* --- the push ----------------------------------------------------------------------------- */

static void *push_main(void *arg)
{
    push_stream *p = arg;
    cs_api_req *r = p->r;
    cs_arena arena;
    cs_arena_init(&arena, 16 << 10);
    cs_registry_version v;
    cs_error err;
    cs_status rc = cs_registry_push_version(r->srv->opt.registry, r->model, &p->push, p->actor,
                                            &arena, &v, &err);
    pthread_mutex_lock(&p->mu);
    p->reader_done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* A new version may be the new `latest`: serve it before the client hears of it. */
    if (rc == CS_OK) cs_api_serving_refresh(r->srv, r->model, 0);
    char *json = rc == CS_OK ? cs_registry_version_json(&v) : NULL;
    pthread_mutex_lock(&r->lock);
    if (rc != CS_OK) {
        cs_api_registry_error(r, &err);
    } else {
        cs_api_json_text(r, MHD_HTTP_CREATED, json);
        char loc[CS_API_NAME_MAX + 64];
        snprintf(loc, sizeof loc, "/api/v1/models/%s/versions/%" PRId64, r->model, v.version);
        cs_api_header(r, MHD_HTTP_HEADER_LOCATION, loc);
    }
    cs_api_unlock_and_resume(r);
    cs_arena_free(&arena);
    return NULL;
}

/* A metadata field from its header or, failing that, its query parameter. */
static const char *meta(cs_api_req *r, const char *header, const char *query)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, header);
    return h ? h : cs_api_query(r, query);
}

typedef struct label_scan {
    cs_api_req *r;
    const char *match; /* the header's or the query parameter's name */
    cs_registry_label *labels;
    int n;
    const char *bad; /* the first value that is not k=v, or NULL */
} label_scan;

/* Collects every `k=v` value of one name, in order; counts past the limit so the caller can
 * refuse them (the array has room for one more). */
static enum MHD_Result collect_label(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    label_scan *s = cls;
    if (strcasecmp(key, s->match) != 0) return MHD_YES;
    const char *eq = value ? strchr(value, '=') : NULL;
    if (!eq || eq == value) {
        s->bad = value ? value : "";
        return MHD_NO;
    }
    if (s->n > CS_REGISTRY_LABELS_MAX) return MHD_NO;
    cs_registry_label *l = &s->labels[s->n++];
    l->key = cs_arena_strndup(&s->r->arena, value, (size_t)(eq - value));
    l->value = cs_arena_strndup(&s->r->arena, eq + 1, strlen(eq + 1));
    if (!l->key || !l->value) s->n = CS_REGISTRY_LABELS_MAX + 1; /* reported as too many */
    return MHD_YES;
}

/* Labels from X-Capstan-Label headers and ?label= parameters, or a 400. */
static bool labels_or_400(cs_api_req *r, cs_registry_push *push)
{
    label_scan s = {.r = r, .match = "X-Capstan-Label"};
    s.labels = cs_arena_zalloc(&r->arena, (CS_REGISTRY_LABELS_MAX + 1) * sizeof *s.labels, 16);
    if (!s.labels) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return false;
    }
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_label, &s);
    s.match = "label";
    if (!s.bad) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_label, &s);
    if (s.bad) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "label '%s' is not KEY=VALUE", s.bad);
        return false;
    }
    if (s.n > CS_REGISTRY_LABELS_MAX) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "more than %d labels", CS_REGISTRY_LABELS_MAX);
        return false;
    }
    push->n_labels = s.n;
    push->labels = s.labels;
    return true;
}

/* Refuses a declared size over the limit, and a body that says it is something else. */
static bool body_or_4xx(cs_api_req *r)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && strncasecmp(ct, "application/octet-stream", 24) != 0) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "a version is pushed as Content-Type: application/octet-stream (the ONNX "
                     "file's bytes), not '%s'",
                     ct);
        return false;
    }
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t max = r->srv->opt.max_artifact;
    if (cl && max > 0 && strtoull(cl, NULL, 10) > (unsigned long long)max) {
        cs_api_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                     "the artifact is %s bytes, larger than the %" PRId64 "-byte limit "
                     "(capstan serve --max-artifact-size)",
                     cl, max);
        return false;
    }
    return true;
}

void cs_api_version_push(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg || !body_or_4xx(r)) return;
    push_stream *p = cs_arena_zalloc(&r->arena, sizeof *p, 16);
    if (!p) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    p->push = (cs_registry_push){
        .read = stream_read,
        .user = p,
        .fd = -1,
        .expected_digest = meta(r, "X-Capstan-Digest", "digest"),
        .description = meta(r, "X-Capstan-Description", "description"),
        .source_uri = meta(r, "X-Capstan-Source", "source"),
        .run_id = meta(r, "X-Capstan-Run-Id", "run_id"),
        .parent_version = meta(r, "X-Capstan-Parent-Version", "parent_version"),
        .dataset_digest = meta(r, "X-Capstan-Dataset-Digest", "dataset_digest"),
        .signature = meta(r, "X-Capstan-Signature", "signature"),
        .signer_key = meta(r, "X-Capstan-Signer-Key", "signer_key"),
    };
    if (!labels_or_400(r, &p->push)) return;
    /* An unknown model fails here, before a byte of the artifact is read. */
    cs_registry_model m;
    cs_error err;
    if (cs_registry_model_get(reg, r->model, &r->arena, &m, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    p->r = r;
    p->actor = cs_api_actor(r);
    p->ring = cs_malloc(RING_BYTES);
    if (!p->ring) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->sink = (cs_api_sink){stream_write, stream_end, stream_close, p};
    r->sink = &p->sink; /* from here on stream_close releases p, started or not */
    int e = pthread_create(&p->thread, NULL, push_main, p);
    if (e != 0) {
        r->sink = NULL;
        stream_close(p);
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot start a push thread: %s",
                     strerror(e));
        return;
    }
    p->started = true;
}

/* --- reading and changing versions ---------------------------------------------------------- */

void cs_api_versions_list(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    cs_registry_list_opts o;
    if (!reg || !cs_api_list_opts_or_400(r, &o)) return;
    cs_registry_version *items;
    int n;
    const char *next;
    cs_error err;
    if (cs_registry_version_list(reg, r->model, &o, &r->arena, &items, &n, &next, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (int i = 0; i < n; i++)
        if (!cs_api_list_add_or_500(r, &b, cs_registry_version_json(&items[i]))) return;
    cs_api_list_reply(r, &b, next);
}

/* {v} is a number, an alias or "latest". */
void cs_api_version_get(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_registry_version v;
    cs_error err;
    if (cs_registry_version_get(reg, r->model, r->version, &r->arena, &v, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else
        cs_api_json_text(r, MHD_HTTP_OK, cs_registry_version_json(&v));
}

/* {"labels"?, "state"?: "ready"|"archived"}. Archiving stops serving the version. */
void cs_api_version_patch(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    int64_t number;
    if (!reg || !cs_api_version_number_or_400(r, &number)) return;
    json_t *body = cs_api_json_or_400(r);
    if (!body) return;
    json_t *labels = json_object_get(body, "labels");
    json_t *state = json_object_get(body, "state");
    cs_registry_state st = cs_registry_state_parse(json_string_value(state));
    int n = 0;
    cs_registry_label *l = NULL;
    cs_registry_version v;
    cs_error err;
    static const char *const fields[] = {"labels", "state", NULL};
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if (state && st == CS_REGISTRY_STATE_UNSET)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"state\" must be \"ready\" or \"archived\"");
    else if (labels && !cs_api_labels_or_400(r, labels, "labels", &n, &l))
        ;
    else if (cs_registry_version_patch(reg, r->model, number, labels != NULL, n, l, st,
                                       cs_api_actor(r), &r->arena, &v, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else {
        if (st != CS_REGISTRY_STATE_UNSET)
            cs_api_serving_refresh(r->srv, r->model, st == CS_REGISTRY_STATE_ARCHIVED ? number : 0);
        cs_api_json_text(r, MHD_HTTP_OK, cs_registry_version_json(&v));
    }
    json_decref(body);
}

void cs_api_version_delete(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    int64_t number;
    if (!reg || !cs_api_version_number_or_400(r, &number)) return;
    cs_error err;
    if (cs_registry_version_delete(reg, r->model, number, cs_api_actor(r), &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_api_serving_refresh(r->srv, r->model, number);
    cs_api_reply(r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
}

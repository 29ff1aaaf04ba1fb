/*
 * registry.c - the registry's logic, shared by both stores: validation, transactions,
 * version allocation, aliases, listing, gc and the order of a push.
 *
 * Everything here speaks portable SQL through store.h, so SQLite and PostgreSQL behave
 * the same by construction. Each public call borrows one connection from a small pool,
 * runs one transaction on it and returns it; an audit entry is written inside that
 * transaction, and webhook events are queued only after it commits.
 *
 * A push runs in this order, which is what makes a crash harmless: take the shared blob
 * lock, stream the artifact into a temporary file and rename it to its digest (blobs.c),
 * load it through the engine to read its IO schema, then one write transaction allocates
 * the version number (`UPDATE models SET next_version = next_version + 1 ... RETURNING`,
 * which serialises concurrent pushes to one model on that row in both stores) and inserts
 * the version. A crash before the commit leaves at most a blob no row references.
 */
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/name.h"
#include "base/sbuf.h"
#include "base/vec.h"
#include "capstan/engine.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POOL_MAX          16
#define DEFAULT_POOL      4
#define DEFAULT_MAX_BYTES ((int64_t)16 << 30)
#define DEFAULT_PAGE      100
#define SELECTOR_TERMS    16
#define TOKEN_MAX         512
#define SQL_TEXT_MAX      8000
#define GC_LOCK_KEY       0x6361707367630a /* the cluster's gc advisory lock ("capsgc") */

struct cs_registry {
    cs__blobs blobs;
    char *db; /* SQLite file or PostgreSQL URL */
    bool postgres;
    int64_t max_bytes;
    cs__webhook *webhook;
    cs__trusted *trusted;    /* NULL: every version is served (signing.c) */
    char origin[17];         /* in this registry's notifications (cluster mode) */
    struct cs__watch *watch; /* watch.c's, or NULL */

    pthread_mutex_t mu;
    pthread_cond_t freed;
    cs__store idle[POOL_MAX]; /* connections not in use */
    int n_idle, n_open, max_open;
};

static const char *const STATE_NAMES[] = {"", "ready", "archived"};

int64_t cs_registry_max_artifact(const cs_registry_t *r)
{
    return r->max_bytes;
}

const char *cs_registry_state_name(cs_registry_state s)
{
    return s == CS_REGISTRY_STATE_READY || s == CS_REGISTRY_STATE_ARCHIVED ? STATE_NAMES[s] : "";
}

cs_registry_state cs_registry_state_parse(const char *s)
{
    if (s && strcmp(s, "ready") == 0) return CS_REGISTRY_STATE_READY;
    if (s && strcmp(s, "archived") == 0) return CS_REGISTRY_STATE_ARCHIVED;
    return CS_REGISTRY_STATE_UNSET;
}

int cs_registry_http_status(cs_status code)
{
    switch (code) {
    case CS_OK: return 200;
    case CS_ERR_INVALID: return 400;
    case CS_ERR_NOT_FOUND: return 404;
    case CS_ERR_EXISTS: return 409;
    case CS_ERR_LIMIT: return 413;
    case CS_ERR_PARSE:
    case CS_ERR_UNSUPPORTED: return 422;
    case CS_ERR_SHUTDOWN:
    case CS_ERR_TIMEOUT: return 503;
    default: return 500;
    }
}

/* --- validation ------------------------------------------------------------------------ */

static cs_status check_name(const char *what, const char *name, cs_error *err)
{
    if (cs_dns_label(name)) return CS_OK;
    return cs_error_set(err, CS_ERR_INVALID,
                        "%s name '%s' is invalid: use 1-%d lowercase letters, digits and '-', "
                        "starting and ending with a letter or digit",
                        what, name ? name : "", CS_REGISTRY_NAME_MAX);
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

cs_status cs_registry_alias_check(const char *name, cs_error *err)
{
    cs_status rc = check_name("alias", name, err);
    if (rc != CS_OK) return rc;
    if (strcmp(name, "latest") == 0 || all_digits(name))
        return cs_error_set(err, CS_ERR_INVALID,
                            "alias name '%s' is reserved: 'latest' and "
                            "numbers already name versions",
                            name);
    return CS_OK;
}

/* Kubernetes' label name part: 1-63 of [A-Za-z0-9._-], alphanumeric at both ends; a
 * value may also be empty. */
static bool label_part(const char *s, size_t n, bool may_be_empty)
{
    if (n == 0) return may_be_empty;
    if (n > CS_REGISTRY_LABEL_VALUE_MAX || !isalnum((unsigned char)s[0]) ||
        !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* A key is [prefix/]name with a DNS-subdomain prefix of at most 253 characters. */
static bool label_key(const char *k)
{
    const char *slash = strchr(k, '/');
    if (!slash) return label_part(k, strlen(k), false);
    size_t plen = (size_t)(slash - k);
    if (plen == 0 || plen > 253) return false;
    for (size_t i = 0; i < plen; i++)
        if (!(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '-' ||
              k[i] == '.'))
            return false;
    return label_part(slash + 1, strlen(slash + 1), false);
}

static cs_status check_labels(int n, const cs_registry_label *labels, cs_error *err)
{
    if (n < 0 || n > CS_REGISTRY_LABELS_MAX)
        return cs_error_set(err, n < 0 ? CS_ERR_INVALID : CS_ERR_LIMIT,
                            "%d labels: at most %d are allowed", n, CS_REGISTRY_LABELS_MAX);
    for (int i = 0; i < n; i++) {
        const char *k = labels[i].key, *v = labels[i].value;
        if (!k || !label_key(k))
            return cs_error_set(err, CS_ERR_INVALID,
                                "label key '%s' is invalid: use [prefix/]"
                                "name with up to 63 of [A-Za-z0-9._-], alphanumeric at both ends",
                                k ? k : "");
        if (!v || !label_part(v, strlen(v), true))
            return cs_error_set(err, CS_ERR_INVALID,
                                "label '%s': value '%s' is invalid: use up "
                                "to 63 of [A-Za-z0-9._-], alphanumeric at both ends",
                                k, v ? v : "");
        for (int j = 0; j < i; j++)
            if (strcmp(labels[j].key, k) == 0)
                return cs_error_set(err, CS_ERR_INVALID, "label '%s' is given twice", k);
    }
    return CS_OK;
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 when it is not one: no
 * overlong forms, surrogates or code points past U+10FFFF (what jansson, which renders
 * every record, accepts). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))) return 0;
    if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))) return 0;
    return len;
}

/* Free text (descriptions, lineage): at most max bytes of UTF-8, no control characters
 * but tab. NULL is "not given". */
static cs_status check_text_max(const char *what, const char *s, size_t max, cs_error *err)
{
    if (!s) return CS_OK;
    size_t n = strlen(s);
    if (n > max)
        return cs_error_set(err, CS_ERR_LIMIT, "%s is %zu bytes: at most %zu are allowed", what, n,
                            max);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k == 0)
            return cs_error_set(err, CS_ERR_INVALID, "%s is not valid UTF-8 at byte %zu", what, i);
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return cs_error_set(err, CS_ERR_INVALID,
                                "%s contains a control character at byte "
                                "%zu",
                                what, i);
        i += k;
    }
    return CS_OK;
}

static cs_status check_text(const char *what, const char *s, cs_error *err)
{
    return check_text_max(what, s, CS_REGISTRY_TEXT_MAX, err);
}

/* "Who" made a change: printable ASCII, bounded; NULL is "anonymous". */
static cs_status check_actor(const char **actor, cs_error *err)
{
    if (!*actor || !**actor) *actor = "anonymous";
    size_t n = strlen(*actor);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)(*actor)[i] < 0x20 || (unsigned char)(*actor)[i] > 0x7e ||
            i >= CS_REGISTRY_ACTOR_MAX)
            return cs_error_set(err, CS_ERR_INVALID,
                                "actor must be up to %d printable ASCII "
                                "characters",
                                CS_REGISTRY_ACTOR_MAX);
    return CS_OK;
}

static cs_status nomem(cs_error *err)
{
    return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

/* --- connection pool and transactions ---------------------------------------------------- */

static cs_status store_open(cs_registry_t *r, cs__store *s, cs_error *err)
{
    return r->postgres ? cs__store_pg_open(r->db, r->origin, s, err)
                       : cs__store_sqlite_open(r->db, s, err);
}

cs_status cs__store_connect(cs_registry_t *r, cs__store *s, cs_error *err)
{
    return store_open(r, s, err);
}

bool cs__registry_shared(const cs_registry_t *r)
{
    return r->postgres;
}

const char *cs__registry_origin(const cs_registry_t *r)
{
    return r->origin;
}

struct cs__watch **cs__registry_watch_slot(cs_registry_t *r)
{
    return &r->watch;
}

/* Borrows an idle connection, opens a new one below the pool size, or waits for one. */
static cs_status acquire(cs_registry_t *r, cs__store *s, cs_error *err)
{
    pthread_mutex_lock(&r->mu);
    while (r->n_idle == 0 && r->n_open >= r->max_open) pthread_cond_wait(&r->freed, &r->mu);
    if (r->n_idle > 0) {
        *s = r->idle[--r->n_idle];
        pthread_mutex_unlock(&r->mu);
        return CS_OK;
    }
    r->n_open++;
    pthread_mutex_unlock(&r->mu);
    cs_status rc = store_open(r, s, err);
    if (rc != CS_OK) {
        pthread_mutex_lock(&r->mu);
        r->n_open--;
        pthread_cond_signal(&r->freed);
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

/* Returns a connection; a broken one (keep false) is closed so the next call reconnects. */
static void release(cs_registry_t *r, cs__store *s, bool keep)
{
    if (!keep) s->iface->close(s->ctx);
    pthread_mutex_lock(&r->mu);
    if (keep)
        r->idle[r->n_idle++] = *s;
    else
        r->n_open--;
    pthread_cond_signal(&r->freed);
    pthread_mutex_unlock(&r->mu);
}

typedef cs__tx tx;

static cs_status tx_begin(cs_registry_t *r, tx *t, bool write, cs_error *err)
{
    t->open = false;
    cs_status rc = acquire(r, &t->s, err);
    if (rc != CS_OK) return rc;
    rc = t->s.iface->begin(t->s.ctx, write, err);
    if (rc != CS_OK) {
        release(r, &t->s, false);
        return rc;
    }
    t->open = true;
    return CS_OK;
}

/* Commits when rc is CS_OK, else rolls back; returns the final status. An I/O failure
 * may mean a lost connection, so that connection is not reused. */
static cs_status tx_end(cs_registry_t *r, tx *t, cs_status rc, cs_error *err)
{
    if (!t->open) return rc;
    t->open = false;
    if (rc == CS_OK) rc = t->s.iface->commit(t->s.ctx, err);
    if (rc != CS_OK) t->s.iface->rollback(t->s.ctx);
    release(r, &t->s, rc != CS_ERR_IO);
    return rc;
}

static cs_status exec(tx *t, const char *sql, int n, const cs__sql_val *p, cs__store_row_fn row,
                      void *user, cs_error *err)
{
    return t->s.iface->exec(t->s.ctx, sql, n, p, row, user, err);
}

cs_status cs__tx_begin(cs_registry_t *r, cs__tx *t, bool write, cs_error *err)
{
    return tx_begin(r, t, write, err);
}

cs_status cs__tx_end(cs_registry_t *r, cs__tx *t, cs_status rc, cs_error *err)
{
    return tx_end(r, t, rc, err);
}

cs_status cs__select(cs_registry_t *r, const char *sql, int n, const cs__sql_val *p,
                     cs__store_row_fn row, void *user, cs_error *err)
{
    tx t;
    cs_status rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) return rc;
    return tx_end(r, &t, exec(&t, sql, n, p, row, user, err), err);
}

cs_status cs__rows_copy(const cs_vec *v, cs_arena *arena, void *items, int *n, cs_error *err)
{
    void **out = items;
    *out = NULL;
    *n = 0;
    if (v->len == 0) return CS_OK;
    *out = cs_arena_alloc(arena, v->len * v->elem_size, 8);
    if (!*out) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    memcpy(*out, v->data, v->len * v->elem_size);
    *n = (int)v->len;
    return CS_OK;
}

cs_status cs__check_actor(const char **actor, cs_error *err)
{
    return check_actor(actor, err);
}

/* --- opening ---------------------------------------------------------------------------- */

static cs_status version_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    *(int64_t *)user = c[0].type == CS__SQL_INT ? c[0].i : 0;
    return CS_OK;
}

/* Applies the store's pending migrations up to schema version `upto` (negative: all), each
 * in its own write transaction under the store's schema lock, so that two servers starting
 * at once migrate once. */
static cs_status migrate(cs_registry_t *r, int upto, cs_error *err)
{
    tx t;
    cs_status rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) return rc;
    const cs__store_i *s = t.s.iface;
    if (s->lock_schema) rc = s->lock_schema(t.s.ctx, err);
    if (rc == CS_OK)
        rc = exec(&t,
                  "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                  "applied_ns BIGINT NOT NULL)",
                  0, NULL, NULL, NULL, err);
    int64_t have = 0;
    if (rc == CS_OK)
        rc = exec(&t, "SELECT MAX(version) FROM schema_migrations", 0, NULL, version_row, &have,
                  err);
    if (rc == CS_OK && have > s->n_migrations)
        rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                          "%s store schema is version %" PRId64
                          ", newer than this capstan knows (%d): upgrade capstan",
                          s->name, have, s->n_migrations);
    int64_t last = upto >= 0 && upto < s->n_migrations ? upto : s->n_migrations;
    for (int64_t v = have; rc == CS_OK && v < last; v++) {
        /* Statements are separated by ";\n"; each migration is one transaction. */
        char sql[SQL_TEXT_MAX];
        const char *p = s->migrations[v];
        while (rc == CS_OK && *p) {
            const char *end = strstr(p, ";\n");
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n >= sizeof sql) {
                rc = cs_error_set(err, CS_ERR_INTERNAL, "migration statement too long");
                break;
            }
            memcpy(sql, p, n);
            sql[n] = '\0';
            rc = exec(&t, sql, 0, NULL, NULL, NULL, err);
            p = end ? end + 2 : p + n;
        }
        cs__sql_val pv[] = {cs__sql_int(v + 1), cs__sql_int((int64_t)cs_wall_ns())};
        if (rc == CS_OK)
            rc = exec(&t, "INSERT INTO schema_migrations (version, applied_ns) VALUES (?1, ?2)", 2,
                      pv, NULL, NULL, err);
        if (rc != CS_OK) cs_error_prefix(err, "%s migration %" PRId64 ": ", s->name, v + 1);
    }
    return tx_end(r, &t, rc, err);
}

cs_status cs_registry_open(const cs_registry_options *opts, cs_registry_t **out, cs_error *err)
{
    return cs__registry_open_schema(opts, -1, out, err);
}

cs_status cs__registry_open_schema(const cs_registry_options *opts, int schema, cs_registry_t **out,
                                   cs_error *err)
{
    cs_status rc = CS_ERR_INVALID;
    cs_registry_t *r = NULL;
    *out = NULL;
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return cs_error_set(err, rc, "registry: a data directory is required");
    const char *url = opts->store_url && *opts->store_url ? opts->store_url : NULL;
    if (url && strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0)
        return cs_error_set(err, rc,
                            "registry URL must start with postgres:// or "
                            "postgresql:// (leave it empty for SQLite in the data directory)");
    if (opts->max_connections < 0 || opts->max_connections > POOL_MAX)
        return cs_error_set(err, rc, "registry: max_connections must be 0..%d", POOL_MAX);
    r = cs_calloc(1, sizeof *r);
    if (!r) return nomem(err);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->freed, NULL);
    r->max_open = opts->max_connections ? opts->max_connections : DEFAULT_POOL;
    r->max_bytes = opts->max_artifact_bytes > 0 ? opts->max_artifact_bytes : DEFAULT_MAX_BYTES;
    unsigned char id[8];
    if (RAND_bytes(id, sizeof id) != 1) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "registry: no random bytes for its id");
        goto out;
    }
    for (int i = 0; i < 8; i++) snprintf(r->origin + 2 * i, 3, "%02x", id[i]);
    rc = cs__blobs_init(&r->blobs, opts->data_dir, err);
    if (rc != CS_OK) goto out;
    r->postgres = url != NULL;
    if (url) {
        r->db = cs_strdup(url);
    } else {
        cs_sbuf path;
        cs_sbuf_init(&path, 4096);
        rc = cs_sbuf_printf(&path, "%s/registry.db", opts->data_dir);
        r->db = rc == CS_OK ? cs_sbuf_take(&path) : NULL;
        cs_sbuf_free(&path);
    }
    if (!r->db) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "registry: out of memory");
        goto out;
    }
    rc = migrate(r, schema, err);
    if (rc != CS_OK) goto out;
    if (opts->trusted_keys_dir &&
        (rc = cs__trusted_load(opts->trusted_keys_dir, &r->trusted, err)) != CS_OK)
        goto out;
    if (opts->webhook_url && *opts->webhook_url) {
        rc = cs__webhook_new(opts, &r->webhook, err);
        if (rc != CS_OK) goto out;
    }
    *out = r;
    r = NULL;
out:
    cs_registry_close(r);
    return rc;
}

void cs_registry_close(cs_registry_t *r)
{
    if (!r) return;
    cs_registry_unwatch(r);
    cs__webhook_free(r->webhook);
    cs__trusted_free(r->trusted);
    for (int i = 0; i < r->n_idle; i++) r->idle[i].iface->close(r->idle[i].ctx);
    cs__blobs_free(&r->blobs);
    cs_free(r->db);
    pthread_cond_destroy(&r->freed);
    pthread_mutex_destroy(&r->mu);
    cs_free(r);
}

/* --- rows into records --------------------------------------------------------------------- */

#define MODEL_COLS "m.id, m.name, m.description, m.labels, m.created_by, m.created_ns, m.updated_ns"
#define VERSION_COLS                                                                      \
    "m.id, m.name, v.version, v.digest, v.size, v.format, v.io_schema, v.labels, "        \
    "v.source_uri, v.run_id, v.parent_version, v.dataset_digest, v.state, v.created_by, " \
    "v.created_ns, v.updated_ns, v.signature, v.signer_key, v.description"
#define VERSION_FROM " FROM versions v JOIN models m ON m.id = v.model_id"
#define ALIAS_COLS   "m.name, a.name, a.version, a.updated_by, a.updated_ns"

typedef struct model_rec {
    int64_t id;
    cs_registry_model m;
} model_rec;

typedef struct version_rec {
    int64_t model_id;
    cs_registry_version v;
} version_rec;

/* Collects rows of one record type into a vec, copying text into the caller's arena. */
typedef struct rows {
    cs_arena *arena;
    cs_vec items;
    bool oom;
} rows;

static void rows_init(rows *r, cs_arena *arena, size_t elem)
{
    r->arena = arena;
    r->oom = false;
    cs_vec_init(&r->items, elem);
}

/* One page of a listing: the first `limit` rows (one more was fetched to learn whether
 * another page follows) copied out of their records (`size` bytes at `offset` in each)
 * into an arena array. */
static cs_status page_out(rows *rs, int limit, size_t offset, size_t size, cs_arena *arena,
                          void **items, int *n, bool *more, cs_error *err)
{
    *more = rs->items.len > (size_t)limit;
    if (*more) rs->items.len = (size_t)limit;
    char *dst = cs_arena_alloc(arena, (rs->items.len ? rs->items.len : 1) * size, 16);
    if (!dst) return nomem(err);
    for (size_t i = 0; i < rs->items.len; i++)
        memcpy(dst + i * size, (const char *)cs_vec_at(&rs->items, i) + offset, size);
    *items = dst;
    *n = (int)rs->items.len;
    return CS_OK;
}

static const char *text(rows *r, const cs__sql_val *c)
{
    const char *s = c->type == CS__SQL_TEXT ? c->s : "";
    char *copy = cs_arena_strndup(r->arena, s, strlen(s));
    if (!copy) r->oom = true;
    return copy ? copy : "";
}

static cs_status push_row(rows *r, const void *rec, cs_error *err)
{
    if (r->oom || cs_vec_push(&r->items, rec) != CS_OK) return nomem(err);
    return CS_OK;
}

static cs_status model_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    rows *r = user;
    model_rec rec = {.id = c[0].i};
    rec.m.name = text(r, &c[1]);
    rec.m.description = text(r, &c[2]);
    rec.m.created_by = text(r, &c[4]);
    rec.m.created_ns = c[5].i;
    rec.m.updated_ns = c[6].i;
    cs_status rc = cs__labels_parse(text(r, &c[3]), r->arena, &rec.m.n_labels, &rec.m.labels, err);
    return rc == CS_OK ? push_row(r, &rec, err) : rc;
}

static cs_status version_row_cb(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    rows *r = user;
    version_rec rec = {.model_id = c[0].i};
    cs_registry_version *v = &rec.v;
    v->model = text(r, &c[1]);
    v->version = c[2].i;
    v->digest = text(r, &c[3]);
    v->size = c[4].i;
    v->format = text(r, &c[5]);
    v->io_schema = text(r, &c[6]);
    v->source_uri = text(r, &c[8]);
    v->run_id = text(r, &c[9]);
    v->parent_version = text(r, &c[10]);
    v->dataset_digest = text(r, &c[11]);
    v->state = cs_registry_state_parse(c[12].s);
    v->created_by = text(r, &c[13]);
    v->created_ns = c[14].i;
    v->updated_ns = c[15].i;
    v->signature = text(r, &c[16]);
    v->signer_key = text(r, &c[17]);
    v->description = text(r, &c[18]);
    cs_status rc = cs__labels_parse(text(r, &c[7]), r->arena, &v->n_labels, &v->labels, err);
    return rc == CS_OK ? push_row(r, &rec, err) : rc;
}

static cs_status alias_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    rows *r = user;
    cs_registry_alias a = {
        .model = text(r, &c[0]),
        .name = text(r, &c[1]),
        .version = c[2].i,
        .updated_by = text(r, &c[3]),
        .updated_ns = c[4].i,
    };
    return push_row(r, &a, err);
}

/* Copies the collected records into the arena as one array. */
static cs_status rows_take(rows *r, void **items, int *n, cs_error *err)
{
    size_t bytes = r->items.len * r->items.elem_size;
    *items = cs_arena_alloc(r->arena, bytes ? bytes : 1, 16);
    *n = (int)r->items.len;
    if (!*items) return nomem(err);
    if (bytes) memcpy(*items, r->items.data, bytes);
    return CS_OK;
}

/* Looks a model up by name inside t; CS_ERR_NOT_FOUND names it. */
static cs_status find_model(tx *t, const char *name, cs_arena *arena, model_rec *out, cs_error *err)
{
    rows r;
    rows_init(&r, arena, sizeof(model_rec));
    cs__sql_val p[] = {cs__sql_text(name)};
    cs_status rc =
        exec(t, "SELECT " MODEL_COLS " FROM models m WHERE m.name = ?1", 1, p, model_row, &r, err);
    if (rc == CS_OK && r.items.len == 0)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' not found", name);
    if (rc == CS_OK) *out = *(model_rec *)cs_vec_at(&r.items, 0);
    cs_vec_free(&r.items);
    return rc;
}

static cs_status find_version(tx *t, const char *model, int64_t version, cs_arena *arena,
                              version_rec *out, cs_error *err)
{
    rows r;
    rows_init(&r, arena, sizeof(version_rec));
    cs__sql_val p[] = {cs__sql_text(model), cs__sql_int(version)};
    cs_status rc =
        exec(t, "SELECT " VERSION_COLS VERSION_FROM " WHERE m.name = ?1 AND v.version = ?2", 2, p,
             version_row_cb, &r, err);
    if (rc == CS_OK && r.items.len == 0) {
        model_rec m = {0};
        rc = find_model(t, model, arena, &m, err);
        if (rc == CS_OK)
            rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' has no version %" PRId64, model,
                              version);
    }
    if (rc == CS_OK) *out = *(version_rec *)cs_vec_at(&r.items, 0);
    cs_vec_free(&r.items);
    return rc;
}

/* Replaces an object's rows in a *_labels table (the index selectors query): a model's
 * when version is 0, else that version's. */
static cs_status put_labels(tx *t, int64_t model_id, int64_t version, int n,
                            const cs_registry_label *labels, cs_error *err)
{
    bool is_version = version > 0;
    /* Parameters in statement order: model, [version,] key, value. */
    cs__sql_val p[4] = {cs__sql_int(model_id), cs__sql_int(version)};
    int np = is_version ? 2 : 1;
    cs_status rc =
        exec(t,
             is_version ? "DELETE FROM version_labels WHERE model_id = ?1 AND version = ?2"
                        : "DELETE FROM model_labels WHERE model_id = ?1",
             np, p, NULL, NULL, err);
    for (int i = 0; rc == CS_OK && i < n; i++) {
        p[np] = cs__sql_text(labels[i].key);
        p[np + 1] = cs__sql_text(labels[i].value);
        rc =
            exec(t,
                 is_version ? "INSERT INTO version_labels (model_id, version, key, value) VALUES "
                              "(?1, ?2, ?3, ?4)"
                            : "INSERT INTO model_labels (model_id, key, value) VALUES (?1, ?2, ?3)",
                 np + 2, p, NULL, NULL, err);
    }
    return rc;
}

/* Labels in arena, sorted by key (records always show them sorted). */
static cs_status copy_labels(int n, const cs_registry_label *in, cs_arena *arena,
                             const cs_registry_label **out, cs_error *err)
{
    const char *json = cs__labels_json(n, in, arena);
    int parsed = 0;
    if (!json) return nomem(err);
    return cs__labels_parse(json, arena, &parsed, out, err);
}

/* --- listing helpers ------------------------------------------------------------------------ */

/* A statement being assembled from fixed fragments, with values only ever bound. */
typedef struct query {
    cs_sbuf sql;
    cs__sql_val p[CS__SQL_PARAMS_MAX];
    int n;
    cs_status rc; /* the first failure; later calls do nothing */
} query;

static void q_init(query *q)
{
    cs_sbuf_init(&q->sql, SQL_TEXT_MAX);
    q->n = 0;
    q->rc = CS_OK;
}

static void q_sql(query *q, const char *s)
{
    if (q->rc == CS_OK) q->rc = cs_sbuf_puts(&q->sql, s);
}

static void q_param(query *q, cs__sql_val v)
{
    if (q->rc != CS_OK) return;
    if (q->n == CS__SQL_PARAMS_MAX) {
        q->rc = CS_ERR_LIMIT;
        return;
    }
    q->p[q->n++] = v;
    q->rc = cs_sbuf_printf(&q->sql, "?%d", q->n);
}

/* Ends a list query: ordered by `col`, one row past the page (it tells whether a next
 * page exists); CS_ERR_LIMIT when the query outgrew its buffer or parameters. */
static cs_status q_page(query *q, const char *col, bool descending, int limit, cs_error *err)
{
    q_sql(q, " ORDER BY ");
    q_sql(q, col);
    q_sql(q, descending ? " DESC LIMIT " : " LIMIT ");
    q_param(q, cs__sql_int(limit + 1));
    return q->rc == CS_OK ? CS_OK : cs_error_set(err, q->rc, "list query too large");
}

/* Appends the label selector "k=v,k!=v,k,!k" as EXISTS clauses over `table`, joined to
 * the listed object by `join`. Terms are copied into arena (the params borrow them). */
static cs_status q_selector(query *q, const char *sel, const char *table, const char *join,
                            cs_arena *arena, cs_error *err)
{
    if (!sel || !*sel) return CS_OK;
    size_t len = strlen(sel);
    if (len > 2048) return cs_error_set(err, CS_ERR_LIMIT, "label selector longer than 2048 bytes");
    char *buf = cs_arena_strndup(arena, sel, len);
    if (!buf) return nomem(err);
    int terms = 0;
    for (char *save = NULL, *term = strtok_r(buf, ",", &save); term;
         term = strtok_r(NULL, ",", &save)) {
        if (++terms > SELECTOR_TERMS)
            return cs_error_set(err, CS_ERR_LIMIT, "label selector has more than %d terms",
                                SELECTOR_TERMS);
        while (*term == ' ') term++;
        char *end = term + strlen(term);
        while (end > term && end[-1] == ' ') *--end = '\0';
        bool negate = false, has_value = false;
        char *value = NULL, *eq = strchr(term, '=');
        if (term[0] == '!' && !eq) {
            negate = true;
            term++;
        } else if (eq) {
            has_value = true;
            negate = eq > term && eq[-1] == '!';
            if (negate) eq[-1] = '\0';
            *eq = '\0';
            value = eq + 1;
            if (*value == '=') value++; /* "k==v" means "k=v" */
        }
        cs_registry_label l = {term, value ? value : ""};
        if (check_labels(1, &l, err) != CS_OK)
            return cs_error_prefix(err, "label selector '%s': ", sel);
        q_sql(q, negate ? " AND NOT EXISTS (SELECT 1 FROM " : " AND EXISTS (SELECT 1 FROM ");
        q_sql(q, table);
        q_sql(q, " l WHERE ");
        q_sql(q, join);
        q_sql(q, " AND l.key = ");
        q_param(q, cs__sql_text(term));
        if (has_value) {
            q_sql(q, " AND l.value = ");
            q_param(q, cs__sql_text(value));
        }
        q_sql(q, ")");
    }
    return CS_OK;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Page tokens are base64url text: "<kind>:<a|d>:<key>"; opaque to clients, checked here. */
static const char *token_encode(cs_arena *arena, const char *plain)
{
    size_t n = strlen(plain);
    char *out = cs_arena_alloc(arena, (n + 2) / 3 * 4 + 1, 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)plain[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(unsigned char)plain[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)plain[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return out;
}

static cs_status token_decode(const char *token, char *out, size_t cap, cs_error *err)
{
    size_t n = strlen(token), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (n > TOKEN_MAX) goto bad;
    for (size_t i = 0; i < n; i++) {
        const char *p = token[i] ? strchr(b64url, token[i]) : NULL;
        if (!p) goto bad;
        acc = (acc << 6) | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap) goto bad;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    if (strlen(out) != o) goto bad;
    return CS_OK;
bad:
    return cs_error_set(err, CS_ERR_INVALID,
                        "page token is invalid: pass the next_page_token "
                        "of the previous page unchanged");
}

/* Parses a page token of `kind` ('m', 'v', 'a') and direction; *key points into buf. */
static cs_status token_parse(const char *token, char kind, bool descending, char *buf, size_t cap,
                             const char **key, cs_error *err)
{
    cs_status rc = token_decode(token, buf, cap, err);
    if (rc != CS_OK) return rc;
    if (buf[0] != kind || buf[1] != ':' || buf[2] != (descending ? 'd' : 'a') || buf[3] != ':')
        return cs_error_set(err, CS_ERR_INVALID,
                            "page token does not belong to this list or "
                            "order: repeat the same request with it");
    *key = buf + 4;
    return CS_OK;
}

static cs_status list_limit(const cs_registry_list_opts *o, int *limit, cs_error *err)
{
    *limit = o && o->limit ? o->limit : DEFAULT_PAGE;
    if (*limit < 1 || *limit > CS_REGISTRY_PAGE_MAX)
        return cs_error_set(err, CS_ERR_INVALID, "page size %d: use 1..%d", *limit,
                            CS_REGISTRY_PAGE_MAX);
    return CS_OK;
}

/* --- models ---------------------------------------------------------------------------- */

cs_status cs_registry_model_create(cs_registry_t *r, const char *name, const char *description,
                                   int n_labels, const cs_registry_label *labels, const char *actor,
                                   cs_arena *arena, cs_registry_model *out, cs_error *err)
{
    cs_status rc = check_name("model", name, err);
    if (rc == CS_OK) rc = check_text("description", description, err);
    if (rc == CS_OK) rc = check_labels(n_labels, labels, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    int64_t now = (int64_t)cs_wall_ns(), id = 0;
    cs_registry_model m = {.name = name,
                           .description = description ? description : "",
                           .n_labels = n_labels,
                           .created_by = actor,
                           .created_ns = now,
                           .updated_ns = now};
    rc = copy_labels(n_labels, labels, arena, &m.labels, err);
    const char *labels_json = rc == CS_OK ? cs__labels_json(n_labels, labels, arena) : NULL;
    const char *after = rc == CS_OK ? cs__json_text(cs__model_to_json(&m), arena) : NULL;
    if (rc == CS_OK && (!labels_json || !after)) rc = nomem(err);
    if (rc != CS_OK) return rc;
    tx t;
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) return rc;
    cs__sql_val p[] = {cs__sql_text(name), cs__sql_text(m.description), cs__sql_text(labels_json),
                       cs__sql_text(actor), cs__sql_int(now)};
    rc = exec(&t,
              "INSERT INTO models (name, description, labels, next_version, created_by, "
              "created_ns, updated_ns) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5) RETURNING id",
              5, p, version_row, &id, err);
    if (rc == CS_ERR_EXISTS) rc = cs_error_set(err, rc, "model '%s' already exists", name);
    if (rc == CS_OK) rc = put_labels(&t, id, 0, n_labels, labels, err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "model.created", name, 0, NULL, NULL, after, err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK && out) {
        *out = m;
        out->name = cs_arena_strndup(arena, name, strlen(name));
        out->description = cs_arena_strndup(arena, m.description, strlen(m.description));
        out->created_by = cs_arena_strndup(arena, actor, strlen(actor));
        if (!out->name || !out->description || !out->created_by) rc = nomem(err);
    }
    return rc;
}

cs_status cs_registry_model_get(cs_registry_t *r, const char *name, cs_arena *arena,
                                cs_registry_model *out, cs_error *err)
{
    cs_status rc = check_name("model", name, err);
    if (rc != CS_OK) return rc;
    tx t;
    model_rec m = {0};
    rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) return rc;
    rc = find_model(&t, name, arena, &m, err);
    if (rc == CS_OK) *out = m.m;
    return tx_end(r, &t, rc, err);
}

cs_status cs_registry_model_patch(cs_registry_t *r, const char *name, const char *description,
                                  bool set_labels, int n_labels, const cs_registry_label *labels,
                                  const char *actor, cs_arena *arena, cs_registry_model *out,
                                  cs_error *err)
{
    cs_status rc = check_name("model", name, err);
    if (rc == CS_OK) rc = check_text("description", description, err);
    if (rc == CS_OK && set_labels) rc = check_labels(n_labels, labels, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    tx t;
    model_rec m = {0};
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) return rc;
    rc = find_model(&t, name, arena, &m, err);
    if (rc != CS_OK) goto out;
    const char *before = cs__json_text(cs__model_to_json(&m.m), arena);
    if (description) m.m.description = description;
    if (set_labels) {
        m.m.n_labels = n_labels;
        rc = copy_labels(n_labels, labels, arena, &m.m.labels, err);
        if (rc == CS_OK) rc = put_labels(&t, m.id, 0, n_labels, labels, err);
        if (rc != CS_OK) goto out;
    }
    m.m.updated_ns = (int64_t)cs_wall_ns();
    const char *labels_json = cs__labels_json(m.m.n_labels, m.m.labels, arena);
    const char *after = cs__json_text(cs__model_to_json(&m.m), arena);
    if (!before || !after || !labels_json) {
        rc = nomem(err);
        goto out;
    }
    cs__sql_val p[] = {cs__sql_int(m.id), cs__sql_text(m.m.description), cs__sql_text(labels_json),
                       cs__sql_int(m.m.updated_ns)};
    rc = exec(&t, "UPDATE models SET description = ?2, labels = ?3, updated_ns = ?4 WHERE id = ?1",
              4, p, NULL, NULL, err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "model.updated", name, 0, NULL, before, after, err);
    if (rc == CS_OK && out) *out = m.m;
out:
    return tx_end(r, &t, rc, err);
}

static cs_status count_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    *(int64_t *)user = c[0].i;
    return CS_OK;
}

cs_status cs_registry_model_delete(cs_registry_t *r, const char *name, const char *actor,
                                   cs_error *err)
{
    cs_status rc = check_name("model", name, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    tx t;
    model_rec m = {0};
    int64_t versions = 0;
    const char *before = NULL;
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    rc = find_model(&t, name, &arena, &m, err);
    cs__sql_val p[] = {cs__sql_int(m.id)};
    if (rc == CS_OK)
        rc = exec(&t, "SELECT COUNT(*) FROM versions WHERE model_id = ?1", 1, p, count_row,
                  &versions, err);
    if (rc == CS_OK && versions > 0)
        rc = cs_error_set(err, CS_ERR_EXISTS,
                          "model '%s' still has %" PRId64 " version%s: "
                          "delete them first",
                          name, versions, versions == 1 ? "" : "s");
    if (rc == CS_OK && !(before = cs__json_text(cs__model_to_json(&m.m), &arena))) rc = nomem(err);
    if (rc == CS_OK)
        rc = exec(&t, "DELETE FROM model_labels WHERE model_id = ?1", 1, p, NULL, NULL, err);
    if (rc == CS_OK) rc = exec(&t, "DELETE FROM models WHERE id = ?1", 1, p, NULL, NULL, err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "model.deleted", name, 0, NULL, before, NULL, err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK)
        cs__webhook_emit(r->webhook, "model.deleted", actor, name, 0, NULL, before, NULL);
out:
    cs_arena_free(&arena);
    return rc;
}

cs_status cs_registry_model_list(cs_registry_t *r, const cs_registry_list_opts *opts,
                                 cs_arena *arena, cs_registry_model **items, int *n,
                                 const char **next_page_token, cs_error *err)
{
    static const cs_registry_list_opts none = {0};
    const cs_registry_list_opts *o = opts ? opts : &none;
    char buf[TOKEN_MAX];
    const char *after = NULL;
    int limit = 0;
    rows rs;
    query q;
    tx t = {.open = false};
    rows_init(&rs, arena, sizeof(model_rec));
    q_init(&q);
    *n = 0;
    *next_page_token = NULL;
    cs_status rc = list_limit(o, &limit, err);
    if (rc == CS_OK && o->prefix && *o->prefix &&
        (strlen(o->prefix) > CS_REGISTRY_NAME_MAX ||
         strspn(o->prefix, "abcdefghijklmnopqrstuvwxyz"
                           "0123456789-") != strlen(o->prefix)))
        rc = cs_error_set(err, CS_ERR_INVALID, "name prefix '%s' cannot match a model name",
                          o->prefix);
    if (rc == CS_OK && o->page_token && *o->page_token)
        rc = token_parse(o->page_token, 'm', o->descending, buf, sizeof buf, &after, err);
    if (rc != CS_OK) goto out;
    q_sql(&q, "SELECT " MODEL_COLS " FROM models m WHERE 1 = 1");
    if (o->prefix && *o->prefix) {
        q_sql(&q, " AND substr(m.name, 1, ");
        q_param(&q, cs__sql_int((int64_t)strlen(o->prefix)));
        q_sql(&q, ") = ");
        q_param(&q, cs__sql_text(o->prefix));
    }
    if (after) {
        q_sql(&q, o->descending ? " AND m.name < " : " AND m.name > ");
        q_param(&q, cs__sql_text(after));
    }
    rc = q_selector(&q, o->selector, "model_labels", "l.model_id = m.id", arena, err);
    if (rc != CS_OK) goto out;
    if ((rc = q_page(&q, "m.name", o->descending, limit, err)) != CS_OK) goto out;
    rc = tx_begin(r, &t, false, err);
    if (rc == CS_OK) rc = exec(&t, q.sql.data, q.n, q.p, model_row, &rs, err);
    rc = tx_end(r, &t, rc, err);
    if (rc != CS_OK) goto out;
    bool more;
    if ((rc = page_out(&rs, limit, offsetof(model_rec, m), sizeof **items, arena, (void **)items, n,
                       &more, err)) != CS_OK)
        goto out;
    const model_rec *recs = rs.items.data;
    if (more) {
        char plain[TOKEN_MAX];
        snprintf(plain, sizeof plain, "m:%c:%s", o->descending ? 'd' : 'a',
                 recs[rs.items.len - 1].m.name);
        if (!(*next_page_token = token_encode(arena, plain))) rc = nomem(err);
    }
out:
    cs_vec_free(&rs.items);
    cs_sbuf_free(&q.sql);
    return rc;
}

/* --- versions ------------------------------------------------------------------------------ */

/* {"name":..., "dtype":..., "shape":[...]} for each input or output of the model. */
static json_t *values_json(const cs_model_t *m, bool inputs)
{
    json_t *arr = json_array();
    int count = inputs ? cs_model_input_count(m) : cs_model_output_count(m);
    for (int i = 0; arr && i < count; i++) {
        cs_value_info vi = inputs ? cs_model_input(m, i) : cs_model_output(m, i);
        json_t *shape = vi.rank < 0 ? json_null() : json_array();
        for (int d = 0; shape && d < vi.rank; d++) {
            json_t *dim = vi.dims[d] >= 0                   ? json_integer(vi.dims[d])
                          : vi.dim_names && vi.dim_names[d] ? json_string(vi.dim_names[d])
                                                            : json_null();
            json_array_append_new(shape, dim);
        }
        json_t *one = json_pack("{s:s, s:s, s:o*}", "name", vi.name ? vi.name : "", "dtype",
                                cs_dtype_name(vi.dtype), "shape", shape);
        if (!one || json_array_append_new(arr, one) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Loads the artifact through the engine and renders its IO schema. Anything that keeps
 * the engine from loading it makes the artifact unprocessable (422): CS_ERR_PARSE, or
 * CS_ERR_UNSUPPORTED for an operator the engine lacks. */
static cs_status read_schema(const char *path, cs_arena *arena, const char **schema, cs_error *err)
{
    cs_model_t *m = NULL;
    cs_status rc = cs_model_load_file_inline(path, &m, err);
    if (rc != CS_OK) {
        if (rc != CS_ERR_NOMEM && rc != CS_ERR_UNSUPPORTED) err->code = rc = CS_ERR_PARSE;
        size_t n = strlen(path); /* the engine names the file: a blob path is nobody's business */
        if (!strncmp(err->msg, path, n) && err->msg[n] == ':' && err->msg[n + 1] == ' ')
            memmove(err->msg, err->msg + n + 2, strlen(err->msg + n + 2) + 1);
        return cs_error_prefix(err, "artifact is not a loadable ONNX model: ");
    }
    json_t *io =
        json_pack("{s:o*, s:o*}", "inputs", values_json(m, true), "outputs", values_json(m, false));
    *schema = cs__json_text(io, arena);
    cs_model_free(m);
    return *schema ? CS_OK : nomem(err);
}

static cs_status resolve(tx *t, const char *model, const char *ref, cs_arena *arena,
                         version_rec *out, cs_error *err);

/* A push's parent_version (a number, an alias or "latest" of the same model; NULL or ""
 * for none) as the number it names now, in *number (0 for none). A parent that does not
 * exist is the request's fault, not a missing resource: CS_ERR_INVALID naming the field. */
static cs_status resolve_parent(tx *t, const char *model, const char *ref, cs_arena *arena,
                                int64_t *number, cs_error *err)
{
    *number = 0;
    if (!ref || !*ref) return CS_OK;
    version_rec v;
    cs_status rc = resolve(t, model, ref, arena, &v, err);
    if (rc == CS_OK) {
        *number = v.v.version;
        return CS_OK;
    }
    if (rc == CS_ERR_NOT_FOUND || rc == CS_ERR_INVALID) {
        err->code = rc = CS_ERR_INVALID;
        cs_error_prefix(err, "parent_version '%s' must name an existing version of '%s': ", ref,
                        model);
    }
    return rc;
}

cs_status cs_registry_push_version(cs_registry_t *r, const char *model,
                                   const cs_registry_push *push, const char *actor, cs_arena *arena,
                                   cs_registry_version *out, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    int lock = -1;
    tx t = {.open = false};
    if (rc == CS_OK && (!push || (!push->read && push->fd < 0)))
        rc = cs_error_set(err, CS_ERR_INVALID, "push needs a read callback or a file descriptor");
    if (rc == CS_OK) rc = check_labels(push->n_labels, push->labels, err);
    if (rc == CS_OK) rc = check_text("description", push->description, err);
    if (rc == CS_OK) rc = check_text_max("source_uri", push->source_uri, CS_REGISTRY_URI_MAX, err);
    if (rc == CS_OK) rc = check_text_max("run_id", push->run_id, CS_REGISTRY_RUN_ID_MAX, err);
    if (rc == CS_OK)
        rc = check_text_max("parent_version", push->parent_version, CS_REGISTRY_NAME_MAX, err);
    if (rc == CS_OK) rc = check_text("dataset_digest", push->dataset_digest, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc == CS_OK && !push->signature != !push->signer_key)
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "a signature and its signer key go together; one was given alone");
    if (rc == CS_OK && push->expected_digest && !cs__digest_valid(push->expected_digest))
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "expected digest '%s' is not sha256:<64 lowercase "
                          "hex digits>",
                          push->expected_digest);
    if (rc != CS_OK) return rc;

    /* Fail fast on an unknown model or parent before streaming gigabytes; both are checked
     * again in the version's transaction. */
    model_rec m = {0};
    int64_t parent = 0;
    rc = tx_begin(r, &t, false, err);
    if (rc == CS_OK) rc = find_model(&t, model, arena, &m, err);
    if (rc == CS_OK) rc = resolve_parent(&t, model, push->parent_version, arena, &parent, err);
    rc = tx_end(r, &t, rc, err);
    if (rc != CS_OK) return rc;
    char parent_buf[24] = "";
    if (parent > 0) snprintf(parent_buf, sizeof parent_buf, "%" PRId64, parent);
    const char *parent_text = cs_arena_strndup(arena, parent_buf, strlen(parent_buf));
    if (!parent_text) return nomem(err);

    cs_registry_version v = {
        .model = m.m.name,
        .format = "onnx",
        .n_labels = push->n_labels,
        .description = push->description ? push->description : "",
        .source_uri = push->source_uri ? push->source_uri : "",
        .run_id = push->run_id ? push->run_id : "",
        .parent_version = parent_text,
        .dataset_digest = push->dataset_digest ? push->dataset_digest : "",
        .state = CS_REGISTRY_STATE_READY,
        .created_by = actor,
        .signature = push->signature ? push->signature : "",
        .signer_key = push->signer_key ? push->signer_key : "",
    };
    char digest[CS__DIGEST_LEN];
    cs_registry_push_timing timing = {0};
    rc = cs__blobs_lock(&r->blobs, false, &lock, err);
    if (rc == CS_OK)
        rc = cs__blobs_write(&r->blobs, push->read, push->user, push->fd, r->max_bytes, digest,
                             &v.size, &timing, err);
    if (rc != CS_OK) goto out;
    if (push->expected_digest && strcmp(push->expected_digest, digest) != 0) {
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "artifact digest is %s, the push expected %s: "
                          "the upload was damaged or the wrong file was sent",
                          digest, push->expected_digest);
        goto out;
    }
    if (push->signature &&
        (rc = cs__signature_verify(digest, push->signature, push->signer_key, err)) != CS_OK)
        goto out;
    const char *path = cs__blobs_path(&r->blobs, digest, arena);
    v.digest = cs_arena_strndup(arena, digest, strlen(digest));
    if (!path || !v.digest) {
        rc = nomem(err);
        goto out;
    }
    uint64_t t0 = cs_now_ns();
    rc = read_schema(path, arena, &v.io_schema, err);
    timing.schema_s = cs_elapsed_s(t0);
    if (rc == CS_OK) rc = copy_labels(push->n_labels, push->labels, arena, &v.labels, err);
    const char *labels_json = cs__labels_json(push->n_labels, push->labels, arena);
    if (rc == CS_OK && !labels_json) rc = nomem(err);
    if (rc != CS_OK) goto out;

    t0 = cs_now_ns();
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    cs__sql_val pm[] = {cs__sql_text(model)};
    int64_t model_id = 0;
    v.version = 0;
    rc = exec(&t, "SELECT id FROM models WHERE name = ?1", 1, pm, version_row, &model_id, err);
    if (rc == CS_OK && model_id == 0)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' was deleted during the push", model);
    if (rc == CS_OK && parent > 0) {
        version_rec pv;
        rc = find_version(&t, model, parent, arena, &pv, err);
        if (rc == CS_ERR_NOT_FOUND)
            rc = cs_error_set(err, CS_ERR_INVALID,
                              "parent_version %" PRId64 " of '%s' was deleted during the push",
                              parent, model);
    }
    /* Allocating the number and inserting the row in one transaction is what gives
     * concurrent pushes distinct versions: the UPDATE locks the model's row. */
    cs__sql_val pa[] = {cs__sql_int(model_id)};
    if (rc == CS_OK)
        rc = exec(&t,
                  "UPDATE models SET next_version = next_version + 1 WHERE id = ?1 "
                  "RETURNING next_version - 1",
                  1, pa, version_row, &v.version, err);
    v.created_ns = v.updated_ns = (int64_t)cs_wall_ns();
    cs__sql_val p[] = {
        cs__sql_int(model_id),
        cs__sql_int(v.version),
        cs__sql_text(v.digest),
        cs__sql_int(v.size),
        cs__sql_text(v.format),
        cs__sql_text(v.io_schema),
        cs__sql_text(labels_json),
        cs__sql_text(v.source_uri),
        cs__sql_text(v.run_id),
        cs__sql_text(v.parent_version),
        cs__sql_text(v.dataset_digest),
        cs__sql_text(cs_registry_state_name(v.state)),
        cs__sql_text(actor),
        cs__sql_int(v.created_ns),
        cs__sql_text(v.signature),
        cs__sql_text(v.signer_key),
        cs__sql_text(v.description),
    };
    if (rc == CS_OK)
        rc = exec(&t,
                  "INSERT INTO versions (model_id, version, digest, size, format, io_schema, "
                  "labels, source_uri, run_id, parent_version, dataset_digest, state, "
                  "created_by, created_ns, updated_ns, signature, signer_key, description) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, "
                  "?16, ?17)",
                  17, p, NULL, NULL, err);
    if (rc == CS_OK) rc = put_labels(&t, model_id, v.version, push->n_labels, push->labels, err);
    const char *after = rc == CS_OK ? cs__json_text(cs__version_to_json(&v), arena) : NULL;
    if (rc == CS_OK && !after) rc = nomem(err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "version.created", model, v.version, NULL, NULL, after,
                              err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK) {
        timing.commit_s = cs_elapsed_s(t0);
        if (push->timing) *push->timing = timing;
        cs__webhook_emit(r->webhook, "version.created", actor, model, v.version, NULL, NULL, after);
        if (out) *out = v;
    }
out:
    cs__blobs_unlock(lock);
    return rc;
}

/* Parses a positive decimal version number; false for anything else. */
static bool parse_version(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || !all_digits(s)) return false;
    *out = strtoll(s, NULL, 10);
    return *out > 0;
}

/* Resolves ref inside t: a number, "latest" or an alias - each one statement, so a
 * concurrent alias move is seen entirely before or entirely after. */
static cs_status resolve(tx *t, const char *model, const char *ref, cs_arena *arena,
                         version_rec *out, cs_error *err)
{
    int64_t number = 0;
    if (!ref || !*ref) return cs_error_set(err, CS_ERR_INVALID, "a version reference is empty");
    if (parse_version(ref, &number)) return find_version(t, model, number, arena, out, err);
    bool latest = strcmp(ref, "latest") == 0;
    cs_status rc = latest ? CS_OK : cs_registry_alias_check(ref, err);
    if (rc != CS_OK) return rc;
    rows r;
    rows_init(&r, arena, sizeof(version_rec));
    cs__sql_val p[] = {cs__sql_text(model), cs__sql_text(ref)};
    rc = latest ? exec(t,
                       "SELECT " VERSION_COLS VERSION_FROM " WHERE m.name = ?1 AND "
                       "v.state = 'ready' ORDER BY v.version DESC LIMIT 1",
                       1, p, version_row_cb, &r, err)
                : exec(t,
                       "SELECT " VERSION_COLS VERSION_FROM " JOIN aliases a ON a.model_id = "
                       "v.model_id AND a.version = v.version WHERE m.name = ?1 AND a.name = ?2",
                       2, p, version_row_cb, &r, err);
    if (rc == CS_OK && r.items.len == 0) {
        model_rec m = {0};
        rc = find_model(t, model, arena, &m, err);
        if (rc == CS_OK)
            rc = latest
                     ? cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' has no ready version", model)
                     : cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' has no alias '%s'", model,
                                    ref);
    }
    if (rc == CS_OK) *out = *(version_rec *)cs_vec_at(&r.items, 0);
    cs_vec_free(&r.items);
    return rc;
}

cs_status cs_registry_version_get(cs_registry_t *r, const char *model, const char *ref,
                                  cs_arena *arena, cs_registry_version *out, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc != CS_OK) return rc;
    tx t;
    version_rec v = {0};
    rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) return rc;
    rc = resolve(&t, model, ref, arena, &v, err);
    if (rc == CS_OK) *out = v.v;
    return tx_end(r, &t, rc, err);
}

cs_status cs_registry_artifact(cs_registry_t *r, const char *model, const char *ref,
                               cs_arena *arena, cs_registry_version *version, const char **path,
                               cs_error *err)
{
    cs_status rc = cs_registry_version_get(r, model, ref, arena, version, err);
    if (rc != CS_OK) return rc;
    *path = cs__blobs_path(&r->blobs, version->digest, arena);
    if (!*path) return nomem(err);
    if (r->trusted && (rc = cs__trusted_check(r->trusted, version, err)) != CS_OK) return rc;
    rc = cs__blobs_verify(*path, version->digest, version->size, err);
    if (rc != CS_OK)
        cs_error_prefix(err, "model '%s' version %" PRId64 ": ", model, version->version);
    return rc;
}

cs_status cs_registry_artifact_open(cs_registry_t *r, const char *model, const char *ref,
                                    cs_arena *arena, cs_registry_version *version, int *fd,
                                    cs_error *err)
{
    *fd = -1;
    cs_status rc = cs_registry_version_get(r, model, ref, arena, version, err);
    if (rc != CS_OK) return rc;
    if (r->trusted && (rc = cs__trusted_check(r->trusted, version, err)) != CS_OK) return rc;
    const char *path = cs__blobs_path(&r->blobs, version->digest, arena);
    if (!path) return nomem(err);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f < 0 || fstat(f, &st) != 0) {
        rc = cs_error_set(err, CS_ERR_IO,
                          "model '%s' version %" PRId64 ": its artifact %s cannot be read: %s",
                          model, version->version, path, strerror(errno));
    } else if ((int64_t)st.st_size != version->size) {
        rc = cs_error_set(err, CS_ERR_IO,
                          "model '%s' version %" PRId64 ": its artifact %s is %lld bytes, the "
                          "version records %" PRId64 ": it is refused",
                          model, version->version, path, (long long)st.st_size, version->size);
    }
    if (rc != CS_OK) {
        if (f >= 0) close(f);
        return rc;
    }
    *fd = f;
    return CS_OK;
}

cs_status cs_registry_version_list(cs_registry_t *r, const char *model,
                                   const cs_registry_list_opts *opts, cs_arena *arena,
                                   cs_registry_version **items, int *n,
                                   const char **next_page_token, cs_error *err)
{
    static const cs_registry_list_opts none = {0};
    const cs_registry_list_opts *o = opts ? opts : &none;
    char buf[TOKEN_MAX];
    const char *after = NULL;
    int64_t after_version = 0;
    int limit = 0;
    rows rs;
    query q;
    tx t = {.open = false};
    rows_init(&rs, arena, sizeof(version_rec));
    q_init(&q);
    *n = 0;
    *next_page_token = NULL;
    cs_status rc = check_name("model", model, err);
    if (rc == CS_OK) rc = list_limit(o, &limit, err);
    if (rc == CS_OK && o->page_token && *o->page_token)
        rc = token_parse(o->page_token, 'v', o->descending, buf, sizeof buf, &after, err);
    if (rc == CS_OK && after) {
        const char *colon = strrchr(after, ':');
        if (!colon || strncmp(after, model, (size_t)(colon - after)) != 0 ||
            strlen(model) != (size_t)(colon - after) || !parse_version(colon + 1, &after_version))
            rc = cs_error_set(err, CS_ERR_INVALID, "page token belongs to another model's list");
    }
    if (rc != CS_OK) goto out;
    q_sql(&q, "SELECT " VERSION_COLS VERSION_FROM " WHERE m.name = ");
    q_param(&q, cs__sql_text(model));
    if (after) {
        q_sql(&q, o->descending ? " AND v.version < " : " AND v.version > ");
        q_param(&q, cs__sql_int(after_version));
    }
    rc = q_selector(&q, o->selector, "version_labels",
                    "l.model_id = v.model_id AND l.version = v.version", arena, err);
    if (rc != CS_OK) goto out;
    if ((rc = q_page(&q, "v.version", o->descending, limit, err)) != CS_OK) goto out;
    rc = tx_begin(r, &t, false, err);
    if (rc == CS_OK) rc = exec(&t, q.sql.data, q.n, q.p, version_row_cb, &rs, err);
    if (rc == CS_OK && rs.items.len == 0) {
        model_rec m = {0};
        rc = find_model(&t, model, arena, &m, err);
    }
    rc = tx_end(r, &t, rc, err);
    if (rc != CS_OK) goto out;
    bool more;
    if ((rc = page_out(&rs, limit, offsetof(version_rec, v), sizeof **items, arena, (void **)items,
                       n, &more, err)) != CS_OK)
        goto out;
    const version_rec *recs = rs.items.data;
    if (more) {
        char plain[TOKEN_MAX];
        snprintf(plain, sizeof plain, "v:%c:%s:%" PRId64, o->descending ? 'd' : 'a', model,
                 recs[rs.items.len - 1].v.version);
        if (!(*next_page_token = token_encode(arena, plain))) rc = nomem(err);
    }
out:
    cs_vec_free(&rs.items);
    cs_sbuf_free(&q.sql);
    return rc;
}

/* Names the first alias pointing at a version, for conflict messages ("" when none). */
static cs_status alias_of(tx *t, int64_t model_id, int64_t version, cs_arena *arena,
                          const char **name, cs_error *err)
{
    rows r;
    rows_init(&r, arena, sizeof(cs_registry_alias));
    cs__sql_val p[] = {cs__sql_int(model_id), cs__sql_int(version)};
    cs_status rc = exec(t,
                        "SELECT " ALIAS_COLS " FROM aliases a JOIN models m ON m.id = "
                        "a.model_id WHERE a.model_id = ?1 AND a.version = ?2 ORDER BY a.name "
                        "LIMIT 1",
                        2, p, alias_row, &r, err);
    *name = rc == CS_OK && r.items.len ? ((cs_registry_alias *)cs_vec_at(&r.items, 0))->name : "";
    cs_vec_free(&r.items);
    return rc;
}

cs_status cs_registry_version_patch(cs_registry_t *r, const char *model, int64_t version,
                                    bool set_labels, int n_labels, const cs_registry_label *labels,
                                    cs_registry_state state, const char *actor, cs_arena *arena,
                                    cs_registry_version *out, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc == CS_OK && set_labels) rc = check_labels(n_labels, labels, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc == CS_OK && state != CS_REGISTRY_STATE_UNSET && state != CS_REGISTRY_STATE_READY &&
        state != CS_REGISTRY_STATE_ARCHIVED)
        rc = cs_error_set(err, CS_ERR_INVALID, "state must be 'ready' or 'archived'");
    if (rc != CS_OK) return rc;
    tx t;
    version_rec v = {0};
    const char *before = NULL, *after = NULL, *alias = "";
    bool state_changed = false;
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) return rc;
    rc = find_version(&t, model, version, arena, &v, err);
    if (rc != CS_OK) goto out;
    before = cs__json_text(cs__version_to_json(&v.v), arena);
    state_changed = state != CS_REGISTRY_STATE_UNSET && state != v.v.state;
    if (state_changed && state == CS_REGISTRY_STATE_ARCHIVED) {
        rc = alias_of(&t, v.model_id, version, arena, &alias, err);
        if (rc == CS_OK && *alias)
            rc = cs_error_set(err, CS_ERR_EXISTS,
                              "version %" PRId64 " of '%s' is the target of "
                              "alias '%s': move the alias before archiving it",
                              version, model, alias);
        if (rc != CS_OK) goto out;
    }
    if (state_changed) v.v.state = state;
    if (set_labels) {
        v.v.n_labels = n_labels;
        rc = copy_labels(n_labels, labels, arena, &v.v.labels, err);
        if (rc == CS_OK) rc = put_labels(&t, v.model_id, version, n_labels, labels, err);
        if (rc != CS_OK) goto out;
    }
    v.v.updated_ns = (int64_t)cs_wall_ns();
    const char *labels_json = cs__labels_json(v.v.n_labels, v.v.labels, arena);
    after = cs__json_text(cs__version_to_json(&v.v), arena);
    if (!before || !after || !labels_json) {
        rc = nomem(err);
        goto out;
    }
    cs__sql_val p[] = {cs__sql_int(v.model_id), cs__sql_int(version), cs__sql_text(labels_json),
                       cs__sql_text(cs_registry_state_name(v.v.state)),
                       cs__sql_int(v.v.updated_ns)};
    rc = exec(&t,
              "UPDATE versions SET labels = ?3, state = ?4, updated_ns = ?5 WHERE model_id = "
              "?1 AND version = ?2",
              5, p, NULL, NULL, err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor,
                              state_changed ? "version.state_changed" : "version.updated", model,
                              version, NULL, before, after, err);
    if (rc == CS_OK && out) *out = v.v;
out:
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK && state_changed)
        cs__webhook_emit(r->webhook, "version.state_changed", actor, model, version, NULL, before,
                         after);
    return rc;
}

cs_status cs_registry_version_delete(cs_registry_t *r, const char *model, int64_t version,
                                     const char *actor, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    tx t;
    version_rec v = {0};
    const char *before = NULL, *alias = "";
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    rc = find_version(&t, model, version, &arena, &v, err);
    if (rc == CS_OK) rc = alias_of(&t, v.model_id, version, &arena, &alias, err);
    if (rc == CS_OK && *alias)
        rc = cs_error_set(err, CS_ERR_EXISTS,
                          "version %" PRId64 " of '%s' is the target of "
                          "alias '%s': move or delete the alias first",
                          version, model, alias);
    if (rc == CS_OK && !(before = cs__json_text(cs__version_to_json(&v.v), &arena)))
        rc = nomem(err);
    cs__sql_val p[] = {cs__sql_int(v.model_id), cs__sql_int(version)};
    if (rc == CS_OK)
        rc = exec(&t, "DELETE FROM version_labels WHERE model_id = ?1 AND version = ?2", 2, p, NULL,
                  NULL, err);
    if (rc == CS_OK)
        rc = exec(&t, "DELETE FROM versions WHERE model_id = ?1 AND version = ?2", 2, p, NULL, NULL,
                  err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "version.deleted", model, version, NULL, before, NULL,
                              err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK)
        cs__webhook_emit(r->webhook, "version.deleted", actor, model, version, NULL, before, NULL);
out:
    cs_arena_free(&arena);
    return rc;
}

/* --- aliases --------------------------------------------------------------------------- */

static cs_status find_alias(tx *t, const char *model, const char *name, cs_arena *arena,
                            cs_registry_alias *out, bool *found, cs_error *err)
{
    rows r;
    rows_init(&r, arena, sizeof(cs_registry_alias));
    cs__sql_val p[] = {cs__sql_text(model), cs__sql_text(name)};
    cs_status rc = exec(t,
                        "SELECT " ALIAS_COLS " FROM aliases a JOIN models m ON m.id = "
                        "a.model_id WHERE m.name = ?1 AND a.name = ?2",
                        2, p, alias_row, &r, err);
    *found = rc == CS_OK && r.items.len > 0;
    if (*found) *out = *(cs_registry_alias *)cs_vec_at(&r.items, 0);
    cs_vec_free(&r.items);
    return rc;
}

cs_status cs_registry_alias_put(cs_registry_t *r, const char *model, const char *name,
                                int64_t version, const char *actor, cs_arena *arena,
                                cs_registry_alias *out, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc == CS_OK) rc = cs_registry_alias_check(name, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    tx t;
    version_rec v = {0};
    cs_registry_alias old, a;
    bool existed = false;
    const char *before = NULL, *after = NULL;
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) return rc;
    rc = find_version(&t, model, version, arena, &v, err);
    if (rc == CS_OK && v.v.state != CS_REGISTRY_STATE_READY)
        rc = cs_error_set(err, CS_ERR_EXISTS,
                          "version %" PRId64 " of '%s' is %s: only a ready "
                          "version can take alias '%s'",
                          version, model, cs_registry_state_name(v.v.state), name);
    if (rc == CS_OK) rc = find_alias(&t, model, name, arena, &old, &existed, err);
    if (rc != CS_OK) goto out;
    a = (cs_registry_alias){v.v.model, cs_arena_strndup(arena, name, strlen(name)), version,
                            cs_arena_strndup(arena, actor, strlen(actor)), (int64_t)cs_wall_ns()};
    before = existed ? cs__json_text(cs__alias_to_json(&old), arena) : NULL;
    after = cs__json_text(cs__alias_to_json(&a), arena);
    if (!a.name || !a.updated_by || !after || (existed && !before)) {
        rc = nomem(err);
        goto out;
    }
    /* One upsert: readers see the old target or the new one, never no alias. */
    cs__sql_val p[] = {cs__sql_int(v.model_id), cs__sql_text(name), cs__sql_int(version),
                       cs__sql_text(actor), cs__sql_int(a.updated_ns)};
    rc = exec(&t,
              "INSERT INTO aliases (model_id, name, version, updated_by, updated_ns) VALUES "
              "(?1, ?2, ?3, ?4, ?5) ON CONFLICT (model_id, name) DO UPDATE SET version = "
              "excluded.version, updated_by = excluded.updated_by, updated_ns = "
              "excluded.updated_ns",
              5, p, NULL, NULL, err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "alias.moved", model, version, name, before, after, err);
    if (rc == CS_OK && out) *out = a;
out:
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK)
        cs__webhook_emit(r->webhook, "alias.moved", actor, model, version, name, before, after);
    return rc;
}

cs_status cs_registry_alias_delete(cs_registry_t *r, const char *model, const char *name,
                                   const char *actor, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc == CS_OK) rc = cs_registry_alias_check(name, err);
    if (rc == CS_OK) rc = check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    tx t;
    model_rec m = {0};
    cs_registry_alias old;
    bool existed = false;
    const char *before = NULL;
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    rc = find_model(&t, model, &arena, &m, err);
    if (rc == CS_OK) rc = find_alias(&t, model, name, &arena, &old, &existed, err);
    if (rc == CS_OK && !existed)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' has no alias '%s'", model, name);
    if (rc == CS_OK && !(before = cs__json_text(cs__alias_to_json(&old), &arena))) rc = nomem(err);
    cs__sql_val p[] = {cs__sql_int(m.id), cs__sql_text(name)};
    if (rc == CS_OK)
        rc = exec(&t, "DELETE FROM aliases WHERE model_id = ?1 AND name = ?2", 2, p, NULL, NULL,
                  err);
    if (rc == CS_OK)
        rc = cs__audit_append(&t.s, actor, "alias.deleted", model, old.version, name, before, NULL,
                              err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK)
        cs__webhook_emit(r->webhook, "alias.deleted", actor, model, old.version, name, before,
                         NULL);
out:
    cs_arena_free(&arena);
    return rc;
}

cs_status cs_registry_alias_list(cs_registry_t *r, const char *model, cs_arena *arena,
                                 cs_registry_alias **items, int *n, cs_error *err)
{
    cs_status rc = check_name("model", model, err);
    if (rc != CS_OK) return rc;
    tx t;
    model_rec m = {0};
    rows rs;
    rows_init(&rs, arena, sizeof(cs_registry_alias));
    rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) goto out;
    rc = find_model(&t, model, arena, &m, err);
    cs__sql_val p[] = {cs__sql_int(m.id), cs__sql_int(CS_REGISTRY_PAGE_MAX)};
    if (rc == CS_OK)
        rc = exec(&t,
                  "SELECT " ALIAS_COLS " FROM aliases a JOIN models m ON m.id = a.model_id "
                  "WHERE a.model_id = ?1 ORDER BY a.name LIMIT ?2",
                  2, p, alias_row, &rs, err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK) rc = rows_take(&rs, (void **)items, n, err);
out:
    cs_vec_free(&rs.items);
    return rc;
}

/* --- audit ----------------------------------------------------------------------------- */

cs_status cs_registry_audit_list(cs_registry_t *r, const char *model,
                                 const cs_registry_list_opts *opts, cs_arena *arena,
                                 cs_registry_audit **items, int *n, const char **next_page_token,
                                 cs_error *err)
{
    static const cs_registry_list_opts none = {0};
    const cs_registry_list_opts *o = opts ? opts : &none;
    char buf[TOKEN_MAX];
    const char *after = NULL;
    int64_t before_id = 0;
    int limit = 0;
    *n = 0;
    *next_page_token = NULL;
    cs_status rc = model ? check_name("model", model, err) : CS_OK;
    if (rc == CS_OK) rc = list_limit(o, &limit, err);
    if (rc == CS_OK && o->page_token && *o->page_token)
        rc = token_parse(o->page_token, 'a', true, buf, sizeof buf, &after, err);
    if (rc == CS_OK && after && !parse_version(after, &before_id))
        rc = cs_error_set(err, CS_ERR_INVALID, "page token is invalid");
    if (rc != CS_OK) return rc;
    tx t;
    rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) return rc;
    rc = cs__audit_list(&t.s, model, before_id, limit + 1, arena, items, n, err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK && *n > limit) {
        *n = limit;
        char plain[64];
        snprintf(plain, sizeof plain, "a:d:%" PRId64, (*items)[limit - 1].id);
        if (!(*next_page_token = token_encode(arena, plain))) rc = nomem(err);
    }
    return rc;
}

/* --- gc -------------------------------------------------------------------------------- */

static cs_status digest_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    cs_map *m = user;
    if (c[0].type != CS__SQL_TEXT || cs_map_put(m, c[0].s, (void *)1) != CS_OK) return nomem(err);
    return CS_OK;
}

/* On a shared store, takes the cluster's gc lock on a pooled connection held until
 * cluster_unlock (a server killed mid-gc loses it with its connection); nothing on SQLite,
 * whose one process the blob lock file already orders. */
static cs_status cluster_lock(cs_registry_t *r, cs__store *s, cs_error *err)
{
    cs__store c;
    cs_status rc = acquire(r, &c, err);
    if (rc != CS_OK || !c.iface->try_lock) {
        if (rc == CS_OK) release(r, &c, true);
        return rc;
    }
    bool got = false;
    rc = c.iface->try_lock(c.ctx, GC_LOCK_KEY, &got, err);
    if (rc == CS_OK && !got)
        rc = cs_error_set(err, CS_ERR_TIMEOUT,
                          "another capstan server of this registry is collecting garbage; "
                          "retry when it is done");
    if (rc == CS_OK && got)
        *s = c;
    else
        release(r, &c, rc != CS_ERR_IO);
    return rc;
}

static void cluster_unlock(cs_registry_t *r, cs__store *s)
{
    if (!s->iface) return;
    s->iface->unlock(s->ctx, GC_LOCK_KEY);
    release(r, s, true);
}

cs_status cs_registry_gc(cs_registry_t *r, bool dry_run, const char *actor, cs_registry_gc_fn each,
                         void *user, cs_registry_gc_report *report, cs_error *err)
{
    cs_map referenced;
    cs_map_init(&referenced);
    cs_arena arena;
    cs_arena_init(&arena, 1024);
    memset(report, 0, sizeof *report);
    int lock = -1;
    tx t;
    cs__store cluster = {NULL, NULL}; /* the connection holding the cluster's gc lock */
    cs_status rc = check_actor(&actor, err);
    if (rc == CS_OK) rc = cluster_lock(r, &cluster, err);
    if (rc == CS_OK) rc = cs__blobs_lock(&r->blobs, true, &lock, err);
    if (rc != CS_OK) goto out;
    /* Under the exclusive lock no push is between its blob and its commit, so the set of
     * referenced digests read now covers every blob a version will ever point at. */
    rc = tx_begin(r, &t, false, err);
    if (rc != CS_OK) goto out;
    rc = exec(&t, "SELECT DISTINCT digest FROM versions", 0, NULL, digest_row, &referenced, err);
    rc = tx_end(r, &t, rc, err);
    if (rc == CS_OK) rc = cs__blobs_gc(&r->blobs, &referenced, dry_run, each, user, report, err);
    if (rc != CS_OK || dry_run || report->removed == 0) goto out;
    const char *after =
        cs__json_text(json_pack("{s:I, s:I}", "removed", (json_int_t)report->removed, "bytes",
                                (json_int_t)report->bytes),
                      &arena);
    if (!after) {
        rc = nomem(err);
        goto out;
    }
    rc = tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    rc = cs__audit_append(&t.s, actor, "gc", "", 0, NULL, NULL, after, err);
    rc = tx_end(r, &t, rc, err);
out:
    cs__blobs_unlock(lock);
    cluster_unlock(r, &cluster);
    cs_arena_free(&arena);
    cs_map_free(&referenced);
    return rc;
}

/* --- webhooks ---------------------------------------------------------------------------- */

cs_status cs_registry_webhook_flush(cs_registry_t *r, int timeout_ms, cs_error *err)
{
    return cs__webhook_flush(r->webhook, timeout_ms, err);
}

void cs_registry_webhook_stats_get(cs_registry_t *r, cs_registry_webhook_stats *out)
{
    cs__webhook_stats(r->webhook, out);
}

/*
 * store_pg.c - the PostgreSQL store, for registries shared by several servers.
 *
 * One libpq connection per cs__store. Statements arrive with SQLite-style ?N parameters
 * and are rewritten to $N (outside quoted literals) in a bounded buffer; values travel as
 * text and PostgreSQL infers their types from the statement. Reads run at REPEATABLE READ
 * so that a multi-statement read sees one snapshot; writes run at READ COMMITTED, where
 * two pushes to one model serialise on the row lock that `UPDATE models SET next_version`
 * takes and then each sees the other's increment - no serialisation failures to retry.
 *
 * Cluster mode: every change is announced with NOTIFY on the channel capstan_changes in
 * its own transaction and counted in the one-row table `changes`; a listener (registry
 * watch.c) keeps a connection of its own in LISTEN and polls the counter when no
 * notification comes for a while. Work that one server of the cluster must do at a time
 * takes a session-level advisory lock.
 */
#include "registry/store.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_MAX 8192 /* longest statement the registry sends */

/* OIDs of PostgreSQL's integer types (pg_type.h is a server header). */
enum { INT8OID = 20, INT2OID = 21, INT4OID = 23 };

/* The schema of store_sqlite.c in PostgreSQL's types. Names sort bytewise (COLLATE "C")
 * as in SQLite, so both stores list in the same order whatever the server's locale. */
static const char *const migrations[] = {
    "CREATE TABLE models (\n"
    "  id BIGSERIAL PRIMARY KEY,\n"
    "  name TEXT COLLATE \"C\" NOT NULL UNIQUE,\n"
    "  description TEXT NOT NULL,\n"
    "  labels TEXT NOT NULL,\n"
    "  next_version BIGINT NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns BIGINT NOT NULL,\n"
    "  updated_ns BIGINT NOT NULL);\n"
    "CREATE TABLE versions (\n"
    "  model_id BIGINT NOT NULL REFERENCES models(id),\n"
    "  version BIGINT NOT NULL,\n"
    "  digest TEXT NOT NULL,\n"
    "  size BIGINT NOT NULL,\n"
    "  format TEXT NOT NULL,\n"
    "  io_schema TEXT NOT NULL,\n"
    "  labels TEXT NOT NULL,\n"
    "  source_uri TEXT NOT NULL,\n"
    "  run_id TEXT NOT NULL,\n"
    "  parent_version TEXT NOT NULL,\n"
    "  dataset_digest TEXT NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns BIGINT NOT NULL,\n"
    "  updated_ns BIGINT NOT NULL,\n"
    "  PRIMARY KEY (model_id, version));\n"
    "CREATE INDEX versions_digest ON versions(digest);\n"
    "CREATE TABLE model_labels (\n"
    "  model_id BIGINT NOT NULL REFERENCES models(id),\n"
    "  key TEXT NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (model_id, key));\n"
    "CREATE TABLE version_labels (\n"
    "  model_id BIGINT NOT NULL,\n"
    "  version BIGINT NOT NULL,\n"
    "  key TEXT NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (model_id, version, key),\n"
    "  FOREIGN KEY (model_id, version) REFERENCES versions(model_id, version));\n"
    "CREATE TABLE aliases (\n"
    "  model_id BIGINT NOT NULL,\n"
    "  name TEXT COLLATE \"C\" NOT NULL,\n"
    "  version BIGINT NOT NULL,\n"
    "  updated_by TEXT NOT NULL,\n"
    "  updated_ns BIGINT NOT NULL,\n"
    "  PRIMARY KEY (model_id, name),\n"
    "  FOREIGN KEY (model_id, version) REFERENCES versions(model_id, version));\n"
    "CREATE TABLE audit (\n"
    "  id BIGSERIAL PRIMARY KEY,\n"
    "  at_ns BIGINT NOT NULL,\n"
    "  actor TEXT NOT NULL,\n"
    "  action TEXT NOT NULL,\n"
    "  model TEXT NOT NULL,\n"
    "  version BIGINT NOT NULL,\n"
    "  alias TEXT NOT NULL,\n"
    "  before TEXT NOT NULL,\n"
    "  after TEXT NOT NULL);\n"
    "CREATE INDEX audit_model ON audit(model, id)",
    /* 2: API tokens (tokens.c); only the secret's sha256 is kept. */
    "CREATE TABLE tokens (\n"
    "  name TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "  hash TEXT NOT NULL UNIQUE,\n"
    "  role TEXT NOT NULL,\n"
    "  models TEXT NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns BIGINT NOT NULL,\n"
    "  expires_ns BIGINT NOT NULL,\n"
    "  revoked_ns BIGINT NOT NULL)",
    /* 3: deployments (deployments.c): the canonical spec as JSON text. */
    "CREATE TABLE deployments (\n"
    "  name TEXT COLLATE \"C\" PRIMARY KEY,\n"
    "  spec TEXT NOT NULL,\n"
    "  generation BIGINT NOT NULL,\n"
    "  created_ns BIGINT NOT NULL,\n"
    "  updated_ns BIGINT NOT NULL)",
    /* 4: cluster mode (notify below): one row counting committed changes, which listeners
     * poll to notice notifications they missed while disconnected. */
    "CREATE TABLE changes (\n"
    "  id INT PRIMARY KEY,\n"
    "  n BIGINT NOT NULL);\n"
    "INSERT INTO changes (id, n) VALUES (1, 0)",
    /* 5: signed versions (signing.c): ed25519 signature and public key, hex; '' unsigned. */
    ("ALTER TABLE versions ADD COLUMN signature TEXT NOT NULL DEFAULT '';\n"
     "ALTER TABLE versions ADD COLUMN signer_key TEXT NOT NULL DEFAULT ''"),
    /* 6: a version's description (MLflow's); '' for the versions pushed before it. */
    "ALTER TABLE versions ADD COLUMN description TEXT NOT NULL DEFAULT ''",
};

#define ORIGIN_MAX 16

typedef struct pg_ctx {
    PGconn *conn;
    char origin[ORIGIN_MAX + 1];
} pg_ctx;

/* libpq prints NOTICEs ("relation already exists, skipping") to stderr by default. */
static void quiet(void *arg, const char *msg) {}

/* Rewrites ?N to $N outside '...' and "..." literals; the text keeps its length. */
static cs_status rewrite(const char *sql, char *out, cs_error *err)
{
    size_t n = strlen(sql);
    if (n >= SQL_MAX) return cs_error_set(err, CS_ERR_INTERNAL, "postgres: statement too long");
    char quote = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = sql[i];
        if (quote) {
            if (ch == quote) quote = 0;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '?' && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            ch = '$';
        }
        out[i] = ch;
    }
    return CS_OK;
}

static cs_status fail(pg_ctx *c, PGresult *res, cs_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) len--;
    cs_status code = state && strcmp(state, "23505") == 0 ? CS_ERR_EXISTS : CS_ERR_IO;
    return cs_error_set(err, code, "postgres: %.*s", (int)len, msg);
}

static cs_status exec_sql(void *ctx, const char *sql, int n, const cs__sql_val *params,
                          cs__store_row_fn row, void *user, cs_error *err)
{
    pg_ctx *c = ctx;
    PGresult *res = NULL;
    cs_status rc = CS_ERR_INTERNAL;
    if (n > CS__SQL_PARAMS_MAX) {
        cs_error_set(err, rc, "postgres: %d parameters", n);
        goto out;
    }
    char text[SQL_MAX];
    rc = rewrite(sql, text, err);
    if (rc != CS_OK) goto out;
    char ints[CS__SQL_PARAMS_MAX][24];
    const char *values[CS__SQL_PARAMS_MAX];
    for (int i = 0; i < n; i++) {
        if (params[i].type == CS__SQL_INT) {
            snprintf(ints[i], sizeof ints[i], "%" PRId64, params[i].i);
            values[i] = ints[i];
        } else {
            values[i] = params[i].type == CS__SQL_TEXT ? params[i].s : NULL;
        }
    }
    res = PQexecParams(c->conn, text, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = fail(c, res, err);
        goto out;
    }
    int ncols = PQnfields(res), nrows = PQntuples(res);
    if (row && ncols > CS__SQL_COLS_MAX) {
        rc = cs_error_set(err, CS_ERR_INTERNAL, "postgres: %d result columns", ncols);
        goto out;
    }
    for (int r = 0; row && r < nrows; r++) {
        cs__sql_val cols[CS__SQL_COLS_MAX];
        for (int i = 0; i < ncols; i++) {
            Oid t = PQftype(res, i);
            cols[i].i = 0;
            cols[i].s = NULL;
            if (PQgetisnull(res, r, i)) {
                cols[i].type = CS__SQL_NULL;
            } else if (t == INT8OID || t == INT4OID || t == INT2OID) {
                cols[i].type = CS__SQL_INT;
                cols[i].i = strtoll(PQgetvalue(res, r, i), NULL, 10);
            } else {
                cols[i].type = CS__SQL_TEXT;
                cols[i].s = PQgetvalue(res, r, i);
            }
        }
        rc = row(user, ncols, cols, err);
        if (rc != CS_OK) goto out;
    }
    rc = CS_OK;
out:
    PQclear(res);
    return rc;
}

static cs_status begin(void *ctx, bool write, cs_error *err)
{
    const char *sql = write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                            : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    return exec_sql(ctx, sql, 0, NULL, NULL, NULL, err);
}

static cs_status commit(void *ctx, cs_error *err)
{
    return exec_sql(ctx, "COMMIT", 0, NULL, NULL, NULL, err);
}

static void rollback(void *ctx)
{
    pg_ctx *c = ctx;
    if (PQtransactionStatus(c->conn) != PQTRANS_IDLE) PQclear(PQexec(c->conn, "ROLLBACK"));
}

/* A transaction-scoped advisory lock; the key is arbitrary but fixed ("capstan"). */
static cs_status lock_schema(void *ctx, cs_error *err)
{
    return exec_sql(ctx, "SELECT pg_advisory_xact_lock(?1)", 1,
                    &(cs__sql_val){CS__SQL_INT, 0x63617073746e, NULL}, NULL, NULL, err);
}

static cs_status check(void *ctx, cs_error *err)
{
    return exec_sql(ctx, "SELECT 1 FROM models LIMIT 1", 0, NULL, NULL, NULL, err);
}

/* The change counter's update takes its row lock until the commit, so changes are counted
 * in commit order and a poll that reads N has seen every change up to N. Every notifying
 * statement is the last of its transaction (the audit entry's), so that lock is always
 * taken last and cannot close a cycle with another. */
static cs_status notify(void *ctx, const char *payload, cs_error *err)
{
    pg_ctx *c = ctx;
    cs__sql_val p[] = {{CS__SQL_TEXT, 0, c->origin}, {CS__SQL_TEXT, 0, payload}};
    return exec_sql(ctx,
                    "WITH c AS (UPDATE changes SET n = n + 1 WHERE id = 1 RETURNING n) "
                    "SELECT pg_notify('capstan_changes', c.n || ' ' || ?1 || ' ' || ?2) FROM c",
                    2, p, NULL, NULL, err);
}

static cs_status counter_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    *(int64_t *)user = c[0].type == CS__SQL_INT ? c[0].i : 0;
    return CS_OK;
}

static cs_status read_counter(void *ctx, int64_t *counter, cs_error *err)
{
    return exec_sql(ctx, "SELECT n FROM changes WHERE id = 1", 0, NULL, counter_row, counter, err);
}

static cs_status listen_changes(void *ctx, int64_t *counter, cs_error *err)
{
    cs_status rc = exec_sql(ctx, "LISTEN capstan_changes", 0, NULL, NULL, NULL, err);
    return rc == CS_OK ? read_counter(ctx, counter, err) : rc;
}

/* A notification already read from the socket, copied into buf. */
static bool pending(pg_ctx *c, char *buf, size_t cap)
{
    PGnotify *n = PQnotifies(c->conn);
    if (!n) return false;
    snprintf(buf, cap, "%s", n->extra);
    PQfreemem(n);
    return true;
}

static cs_status next_change(void *ctx, int timeout_ms, int wake_fd, int64_t *counter, char *buf,
                             size_t cap, cs_error *err)
{
    pg_ctx *c = ctx;
    uint64_t until = cs_now_ns() + (uint64_t)timeout_ms * 1000000;
    for (;;) {
        if (!PQconsumeInput(c->conn)) return fail(c, NULL, err);
        if (pending(c, buf, cap)) return CS_OK;
        uint64_t now = cs_now_ns();
        if (now >= until) break;
        struct pollfd p[2] = {{.fd = PQsocket(c->conn), .events = POLLIN},
                              {.fd = wake_fd, .events = POLLIN}};
        int n = poll(p, 2, (int)((until - now + 999999) / 1000000));
        if (n < 0 && errno != EINTR)
            return cs_error_set(err, CS_ERR_IO, "postgres: poll: %s", strerror(errno));
        if (n > 0 && p[1].revents) return cs_error_set(err, CS_ERR_SHUTDOWN, "stopping");
    }
    /* None within the wait: poll the counter (which also finds a dead connection). */
    cs_status rc = read_counter(ctx, counter, err);
    if (rc == CS_OK && pending(c, buf, cap)) return CS_OK;
    return rc == CS_OK ? cs_error_set(err, CS_ERR_TIMEOUT, "no change") : rc;
}

static cs_status bool_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    *(bool *)user = c[0].type == CS__SQL_TEXT && c[0].s[0] == 't';
    return CS_OK;
}

static cs_status try_lock(void *ctx, int64_t key, bool *got, cs_error *err)
{
    *got = false;
    return exec_sql(ctx, "SELECT pg_try_advisory_lock(?1)", 1,
                    &(cs__sql_val){CS__SQL_INT, key, NULL}, bool_row, got, err);
}

static void unlock(void *ctx, int64_t key)
{
    cs_error err;
    exec_sql(ctx, "SELECT pg_advisory_unlock(?1)", 1, &(cs__sql_val){CS__SQL_INT, key, NULL}, NULL,
             NULL, &err);
}

static void close_ctx(void *ctx)
{
    pg_ctx *c = ctx;
    if (!c) return;
    PQfinish(c->conn);
    cs_free(c);
}

static const cs__store_i pg_iface = {
    .name = "postgres",
    .migrations = migrations,
    .n_migrations = (int)(sizeof migrations / sizeof migrations[0]),
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .exec = exec_sql,
    .lock_schema = lock_schema,
    .check = check,
    .notify = notify,
    .listen = listen_changes,
    .next_change = next_change,
    .try_lock = try_lock,
    .unlock = unlock,
    .close = close_ctx,
};

cs_status cs__store_pg_open(const char *url, const char *origin, cs__store *out, cs_error *err)
{
    cs_status rc = CS_ERR_NOMEM;
    pg_ctx *c = cs_calloc(1, sizeof *c);
    if (!c) {
        cs_error_set(err, rc, "postgres: out of memory");
        goto out;
    }
    c->conn = PQconnectdb(url);
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        const char *msg = c->conn ? PQerrorMessage(c->conn) : "out of memory";
        size_t len = strlen(msg);
        while (len && msg[len - 1] == '\n') len--;
        /* The URL may hold a password: name the failure, not the URL. */
        rc = cs_error_set(err, CS_ERR_IO, "postgres: cannot connect: %.*s", (int)len, msg);
        goto out;
    }
    PQsetNoticeProcessor(c->conn, quiet, NULL);
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    out->iface = &pg_iface;
    out->ctx = c;
    c = NULL;
    rc = CS_OK;
out:
    close_ctx(c);
    return rc;
}

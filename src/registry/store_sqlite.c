/*
 * store_sqlite.c - the SQLite store: the registry's default, one file in --data-dir.
 *
 * The database runs in WAL mode so that readers never wait for the writer and a crash at
 * any instant leaves a database that opens cleanly (the WAL is replayed or discarded);
 * synchronous=FULL makes a committed push durable before the call returns, at the cost of
 * one fsync of the WAL per commit. Write transactions use BEGIN IMMEDIATE: the write lock
 * is taken up front, so two pushes queue on the busy timeout instead of one failing with
 * SQLITE_BUSY half-way when it upgrades a read lock.
 */
#include "registry/store.h"

#include "base/alloc.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* How long a statement waits for another connection's write lock before failing. */
#define BUSY_TIMEOUT_MS 30000

/* Schema migrations, in order; see store_pg.c for the same schema in PostgreSQL's types.
 * labels/io_schema columns hold JSON text; the *_labels tables index labels for selectors. */
static const char *const migrations[] = {
    "CREATE TABLE models (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  description TEXT NOT NULL,\n"
    "  labels TEXT NOT NULL,\n"
    "  next_version INTEGER NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns INTEGER NOT NULL,\n"
    "  updated_ns INTEGER NOT NULL);\n"
    "CREATE TABLE versions (\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  version INTEGER NOT NULL,\n"
    "  digest TEXT NOT NULL,\n"
    "  size INTEGER NOT NULL,\n"
    "  format TEXT NOT NULL,\n"
    "  io_schema TEXT NOT NULL,\n"
    "  labels TEXT NOT NULL,\n"
    "  source_uri TEXT NOT NULL,\n"
    "  run_id TEXT NOT NULL,\n"
    "  parent_version TEXT NOT NULL,\n"
    "  dataset_digest TEXT NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns INTEGER NOT NULL,\n"
    "  updated_ns INTEGER NOT NULL,\n"
    "  PRIMARY KEY (model_id, version));\n"
    "CREATE INDEX versions_digest ON versions(digest);\n"
    "CREATE TABLE model_labels (\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  key TEXT NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (model_id, key));\n"
    "CREATE TABLE version_labels (\n"
    "  model_id INTEGER NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  key TEXT NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (model_id, version, key),\n"
    "  FOREIGN KEY (model_id, version) REFERENCES versions(model_id, version));\n"
    "CREATE TABLE aliases (\n"
    "  model_id INTEGER NOT NULL,\n"
    "  name TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  updated_by TEXT NOT NULL,\n"
    "  updated_ns INTEGER NOT NULL,\n"
    "  PRIMARY KEY (model_id, name),\n"
    "  FOREIGN KEY (model_id, version) REFERENCES versions(model_id, version));\n"
    "CREATE TABLE audit (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  at_ns INTEGER NOT NULL,\n"
    "  actor TEXT NOT NULL,\n"
    "  action TEXT NOT NULL,\n"
    "  model TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  alias TEXT NOT NULL,\n"
    "  before TEXT NOT NULL,\n"
    "  after TEXT NOT NULL);\n"
    "CREATE INDEX audit_model ON audit(model, id)",
    /* 2: API tokens (tokens.c); only the secret's sha256 is kept. */
    "CREATE TABLE tokens (\n"
    "  name TEXT PRIMARY KEY,\n"
    "  hash TEXT NOT NULL UNIQUE,\n"
    "  role TEXT NOT NULL,\n"
    "  models TEXT NOT NULL,\n"
    "  created_by TEXT NOT NULL,\n"
    "  created_ns INTEGER NOT NULL,\n"
    "  expires_ns INTEGER NOT NULL,\n"
    "  revoked_ns INTEGER NOT NULL)",
    /* 3: deployments (deployments.c): the canonical spec as JSON text. */
    "CREATE TABLE deployments (\n"
    "  name TEXT PRIMARY KEY,\n"
    "  spec TEXT NOT NULL,\n"
    "  generation INTEGER NOT NULL,\n"
    "  created_ns INTEGER NOT NULL,\n"
    "  updated_ns INTEGER NOT NULL)",
    /* 4: signed versions (signing.c): ed25519 signature and public key, hex; '' unsigned. */
    ("ALTER TABLE versions ADD COLUMN signature TEXT NOT NULL DEFAULT '';\n"
     "ALTER TABLE versions ADD COLUMN signer_key TEXT NOT NULL DEFAULT ''"),
    /* 5: a version's description (MLflow's); '' for the versions pushed before it. */
    "ALTER TABLE versions ADD COLUMN description TEXT NOT NULL DEFAULT ''",
};

typedef struct sqlite_ctx {
    sqlite3 *db;
} sqlite_ctx;

static cs_status fail(sqlite_ctx *c, int rc, const char *what, cs_error *err)
{
    int ext = sqlite3_extended_errcode(c->db);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return cs_error_set(err, CS_ERR_EXISTS, "sqlite: %s: %s", what, sqlite3_errmsg(c->db));
    return cs_error_set(err, CS_ERR_IO, "sqlite: %s: %s (%s)", what, sqlite3_errmsg(c->db),
                        sqlite3_errstr(rc));
}

static cs_status exec_sql(void *ctx, const char *sql, int n, const cs__sql_val *params,
                          cs__store_row_fn row, void *user, cs_error *err)
{
    sqlite_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    cs_status rc = CS_ERR_IO;
    int src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = fail(c, src, "prepare", err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const cs__sql_val *p = &params[i];
        if (p->type == CS__SQL_INT)
            src = sqlite3_bind_int64(st, i + 1, p->i);
        else if (p->type == CS__SQL_TEXT)
            src = sqlite3_bind_text(st, i + 1, p->s, -1, SQLITE_STATIC);
        else
            src = sqlite3_bind_null(st, i + 1);
        if (src != SQLITE_OK) {
            rc = fail(c, src, "bind", err);
            goto out;
        }
    }
    for (;;) {
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) break;
        if (src != SQLITE_ROW) {
            rc = fail(c, src, "step", err);
            goto out;
        }
        if (!row) continue;
        int ncols = sqlite3_column_count(st);
        if (ncols > CS__SQL_COLS_MAX) {
            rc = cs_error_set(err, CS_ERR_INTERNAL, "sqlite: %d result columns", ncols);
            goto out;
        }
        cs__sql_val cols[CS__SQL_COLS_MAX];
        for (int i = 0; i < ncols; i++) {
            int t = sqlite3_column_type(st, i);
            cols[i].i = 0;
            cols[i].s = NULL;
            if (t == SQLITE_NULL) {
                cols[i].type = CS__SQL_NULL;
            } else if (t == SQLITE_INTEGER) {
                cols[i].type = CS__SQL_INT;
                cols[i].i = sqlite3_column_int64(st, i);
            } else {
                cols[i].type = CS__SQL_TEXT;
                cols[i].s = (const char *)sqlite3_column_text(st, i);
                if (!cols[i].s) {
                    rc = cs_error_set(err, CS_ERR_NOMEM, "sqlite: out of memory reading a row");
                    goto out;
                }
            }
        }
        rc = row(user, ncols, cols, err);
        if (rc != CS_OK) goto out;
    }
    rc = CS_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static cs_status begin(void *ctx, bool write, cs_error *err)
{
    return exec_sql(ctx, write ? "BEGIN IMMEDIATE" : "BEGIN", 0, NULL, NULL, NULL, err);
}

static cs_status commit(void *ctx, cs_error *err)
{
    return exec_sql(ctx, "COMMIT", 0, NULL, NULL, NULL, err);
}

static void rollback(void *ctx)
{
    sqlite_ctx *c = ctx;
    if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static cs_status integrity_row(void *user, int ncols, const cs__sql_val *cols, cs_error *err)
{
    int *rows = user;
    if (++*rows == 1 && cols[0].type == CS__SQL_TEXT && strcmp(cols[0].s, "ok") == 0) return CS_OK;
    return cs_error_set(err, CS_ERR_IO, "sqlite: integrity_check: %s",
                        cols[0].type == CS__SQL_TEXT ? cols[0].s : "?");
}

static cs_status check(void *ctx, cs_error *err)
{
    int rows = 0;
    return exec_sql(ctx, "PRAGMA integrity_check", 0, NULL, integrity_row, &rows, err);
}

static void close_ctx(void *ctx)
{
    sqlite_ctx *c = ctx;
    if (!c) return;
    sqlite3_close_v2(c->db);
    cs_free(c);
}

static const cs__store_i sqlite_iface = {
    .name = "sqlite",
    .migrations = migrations,
    .n_migrations = (int)(sizeof migrations / sizeof migrations[0]),
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .exec = exec_sql,
    .lock_schema = NULL,
    .check = check,
    .close = close_ctx,
};

cs_status cs__store_sqlite_open(const char *path, cs__store *out, cs_error *err)
{
    cs_status rc = CS_ERR_NOMEM;
    sqlite_ctx *c = cs_calloc(1, sizeof *c);
    if (!c) {
        cs_error_set(err, rc, "sqlite: out of memory");
        goto out;
    }
    /* NOMUTEX: the pool hands a connection to one thread at a time. */
    int src = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = cs_error_set(err, CS_ERR_IO, "sqlite: cannot open %s: %s", path,
                          c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    static const char *const pragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                          "PRAGMA foreign_keys=ON"};
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
        rc = exec_sql(c, pragmas[i], 0, NULL, NULL, NULL, err);
        if (rc != CS_OK) {
            cs_error_prefix(err, "%s: ", path);
            goto out;
        }
    }
    out->iface = &sqlite_iface;
    out->ctx = c;
    c = NULL;
    rc = CS_OK;
out:
    close_ctx(c);
    return rc;
}

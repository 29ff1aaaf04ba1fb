/*
 * store.h - the registry's store interface: one SQL connection, as an {iface, ctx} pair.
 *
 * The registry's logic (registry.c) speaks portable SQL through this narrow interface, so
 * the SQLite and PostgreSQL back ends hold only what truly differs: connecting, binding,
 * reading rows, transactions, error codes and their schema migrations. Statements use
 * numbered parameters ?1..?N; the PostgreSQL back end rewrites them to $1..$N. Values are
 * always bound, never spliced into SQL text.
 *
 * A cs__store is one connection and is used by one thread at a time; registry.c keeps a
 * pool of them.
 */
#ifndef CS_REGISTRY_STORE_H
#define CS_REGISTRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"

typedef enum cs__sql_type { CS__SQL_NULL, CS__SQL_INT, CS__SQL_TEXT } cs__sql_type;

/* A bound parameter or a result column. Text is borrowed and NUL-terminated. */
typedef struct cs__sql_val {
    cs__sql_type type;
    int64_t i;
    const char *s;
} cs__sql_val;

#define CS__SQL_PARAMS_MAX 48 /* bound parameters per statement */
#define CS__SQL_COLS_MAX   24 /* result columns per statement */

/* Called for each result row; cols are valid during the call only. A status other than
 * CS_OK stops the statement and is returned by exec. */
typedef cs_status (*cs__store_row_fn)(void *user, int ncols, const cs__sql_val *cols,
                                      cs_error *err);

typedef struct cs__store_i {
    const char *name; /* "sqlite", "postgres": for messages */
    /* Versioned migrations: migrations[i] takes the schema from version i to i + 1. Each
     * is one or more statements separated by ";\n" and runs in one transaction. */
    const char *const *migrations;
    int n_migrations;
    /* Starts a transaction. write: the transaction will write, take the write lock now
     * (SQLite's BEGIN IMMEDIATE) so that it never fails half-way on a lock upgrade. */
    cs_status (*begin)(void *ctx, bool write, cs_error *err);
    cs_status (*commit)(void *ctx, cs_error *err);
    void (*rollback)(void *ctx);
    /* Runs one statement with n bound parameters (?1..?n), calling row (may be NULL) per
     * result row. A unique-constraint violation fails with CS_ERR_EXISTS. */
    cs_status (*exec)(void *ctx, const char *sql, int n, const cs__sql_val *params,
                      cs__store_row_fn row, void *user, cs_error *err);
    /* Serialises schema migrations across processes inside the current transaction.
     * Optional (SQLite's write transaction already excludes everyone else). */
    cs_status (*lock_schema)(void *ctx, cs_error *err);
    /* Checks the database's integrity. Optional. */
    cs_status (*check)(void *ctx, cs_error *err);

    /* Cluster mode: several servers on one store (PostgreSQL). All optional: SQLite's store
     * belongs to one process. notify counts a change in the store's change counter and
     * queues "COUNTER ORIGIN payload" (ORIGIN: the id the connection was opened with) for
     * every listener, both in the current transaction, so listeners hear of it when (and
     * only if) it commits. */
    cs_status (*notify)(void *ctx, const char *payload, cs_error *err);
    /* Makes this connection a listener and reads the change counter into *counter. */
    cs_status (*listen)(void *ctx, int64_t *counter, cs_error *err);
    /* Waits up to timeout_ms for the next notification: CS_OK with its text in buf (cap
     * bytes, truncated), CS_ERR_TIMEOUT when none came (after which *counter holds the
     * change counter, polled), CS_ERR_SHUTDOWN when wake_fd became readable, CS_ERR_IO
     * when the connection broke. */
    cs_status (*next_change)(void *ctx, int timeout_ms, int wake_fd, int64_t *counter, char *buf,
                             size_t cap, cs_error *err);
    /* A session-level advisory lock held until unlock or the connection's end (a killed
     * server's lock goes with its connection): *got false when another session holds it. */
    cs_status (*try_lock)(void *ctx, int64_t key, bool *got, cs_error *err);
    void (*unlock)(void *ctx, int64_t key);
    void (*close)(void *ctx);
} cs__store_i;

typedef struct cs__store {
    const cs__store_i *iface;
    void *ctx;
} cs__store;

/* Opens a connection to the SQLite database at path (created when missing) in WAL mode. */
cs_status cs__store_sqlite_open(const char *path, cs__store *out, cs_error *err);
/* Opens a connection to PostgreSQL with a libpq connection URI; origin (up to 16
 * characters, no spaces) names the opening server in its notifications. */
cs_status cs__store_pg_open(const char *url, const char *origin, cs__store *out, cs_error *err);

/* Parameter constructors, for readable call sites. */
static inline cs__sql_val cs__sql_int(int64_t i)
{
    cs__sql_val v = {CS__SQL_INT, i, NULL};
    return v;
}
static inline cs__sql_val cs__sql_text(const char *s)
{
    cs__sql_val v = {s ? CS__SQL_TEXT : CS__SQL_NULL, 0, s};
    return v;
}

#endif

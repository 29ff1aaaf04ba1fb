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
    void (*close)(void *ctx);
} cs__store_i;

typedef struct cs__store {
    const cs__store_i *iface;
    void *ctx;
} cs__store;

/* Opens a connection to the SQLite database at path (created when missing) in WAL mode. */
cs_status cs__store_sqlite_open(const char *path, cs__store *out, cs_error *err);
/* Opens a connection to PostgreSQL with a libpq connection URI. */
cs_status cs__store_pg_open(const char *url, cs__store *out, cs_error *err);

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

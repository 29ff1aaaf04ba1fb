/*
 * registry_int.h - what the registry's files share and nobody else sees: the blob store
 * (blobs.c), the audit log and JSON forms of records (audit.c) and webhook delivery
 * (webhook.c). registry.c ties them to the store.
 */
#ifndef CS_REGISTRY_INT_H
#define CS_REGISTRY_INT_H

#include "base/arena.h"
#include "base/map.h"
#include "base/vec.h"
#include "registry/registry.h"
#include "registry/store.h"

#include <jansson.h>

/* "sha256:" + 64 hex digits + NUL. */
#define CS__DIGEST_LEN 72

/* --- blobs.c: content-addressed files under <data_dir>/blobs ------------------------ */

typedef struct cs__blobs {
    char *root; /* <data_dir>/blobs */
} cs__blobs;

/* Creates blobs/, blobs/sha256/ and blobs/tmp/ where missing. */
cs_status cs__blobs_init(cs__blobs *b, const char *data_dir, cs_error *err);
void cs__blobs_free(cs__blobs *b);

/* Takes the push/gc lock: shared for a push (from before its temporary file exists until
 * its version row is committed), exclusive for gc, which fails with CS_ERR_TIMEOUT instead
 * of waiting while a push holds it. Returns the lock's fd in *fd; release
 * with cs__blobs_unlock. */
cs_status cs__blobs_lock(const cs__blobs *b, bool exclusive, int *fd, cs_error *err);
void cs__blobs_unlock(int fd);

/* Copies the artifact - rd(user), or when rd is NULL the file descriptor src_fd from its
 * current offset - into a temporary file while hashing what was stored, fsyncs it and
 * renames it to its digest's path (keeping an existing identical blob), then fsyncs the
 * directory. A regular file is copied by the kernel (copy_file_range) and hashed from a
 * mapping of the temporary file. More than max bytes fail with CS_ERR_LIMIT. Fills
 * digest, *size and, when not NULL, the blob phases of *timing. */
cs_status cs__blobs_write(const cs__blobs *b, cs_registry_read_fn rd, void *user, int src_fd,
                          int64_t max, char digest[CS__DIGEST_LEN], int64_t *size,
                          cs_registry_push_timing *timing, cs_error *err);

/* The path of a digest's blob, in arena; NULL when out of memory. */
char *cs__blobs_path(const cs__blobs *b, const char *digest, cs_arena *arena);

/* Checks that the blob exists with the given size and digest (size first: it is cheap). */
cs_status cs__blobs_verify(const char *path, const char *digest, int64_t size, cs_error *err);

/* Walks the blobs: those whose digest is not a key of referenced, and every temporary
 * file, are reported and (unless dry_run) removed. The caller holds the exclusive lock. */
cs_status cs__blobs_gc(const cs__blobs *b, const cs_map *referenced, bool dry_run,
                       cs_registry_gc_fn each, void *user, cs_registry_gc_report *report,
                       cs_error *err);

/* Checks "sha256:<64 lowercase hex>". */
bool cs__digest_valid(const char *digest);

/* --- registry.c: transactions for the other record files (tokens.c) ------------------ */

/* One transaction on a pooled connection: tx_begin takes a connection and begins;
 * tx_end commits when rc is CS_OK (else rolls back), returns the connection and the
 * final status. Statements run with t->s.iface->exec. */
typedef struct cs__tx {
    cs__store s;
    bool open;
} cs__tx;
cs_status cs__tx_begin(cs_registry_t *r, cs__tx *t, bool write, cs_error *err);
cs_status cs__tx_end(cs_registry_t *r, cs__tx *t, cs_status rc, cs_error *err);
/* One read-only statement in its own transaction, each row to row(user, ...). */
cs_status cs__select(cs_registry_t *r, const char *sql, int n, const cs__sql_val *p,
                     cs__store_row_fn row, void *user, cs_error *err);
/* Copies the rows collected in v into one array in arena: *(T **)items and *n (NULL and 0
 * when v is empty). */
cs_status cs__rows_copy(const cs_vec *v, cs_arena *arena, void *items, int *n, cs_error *err);
/* Checks an actor for the audit log (NULL or "" becomes "anonymous"). */
cs_status cs__check_actor(const char **actor, cs_error *err);

/* --- registry.c: for the migration tests ---------------------------------------------- */

/* cs_registry_open, migrating the store only up to schema version `schema` (negative: all):
 * a database as an older capstan left it, for tests that upgrade one. */
cs_status cs__registry_open_schema(const cs_registry_options *opts, int schema, cs_registry_t **out,
                                   cs_error *err);

/* --- registry.c: for watch.c ----------------------------------------------------------- */

/* Opens a connection of r's store outside the pool (the watch's own); close it with
 * s->iface->close. */
cs_status cs__store_connect(cs_registry_t *r, cs__store *s, cs_error *err);
/* Whether other servers may share r's store (PostgreSQL, whose store has listen). */
bool cs__registry_shared(const cs_registry_t *r);
/* The id this registry puts in its notifications (16 hex digits, random per open). */
const char *cs__registry_origin(const cs_registry_t *r);
/* The registry's watch slot, which watch.c fills and empties. */
struct cs__watch **cs__registry_watch_slot(cs_registry_t *r);

/* --- audit.c ------------------------------------------------------------------------ */

/* Appends one entry in the caller's transaction. before/after are JSON texts or NULL. On a
 * shared store a change other servers act on (cs_registry_change) is also announced to
 * them, in the same transaction: call it as the transaction's last statement. */
cs_status cs__audit_append(cs__store *s, const char *actor, const char *action, const char *model,
                           int64_t version, const char *alias, const char *before,
                           const char *after, cs_error *err);

/* One page of entries, newest first; model NULL for all. after_id 0 for the first page. */
cs_status cs__audit_list(cs__store *s, const char *model, int64_t before_id, int limit,
                         cs_arena *arena, cs_registry_audit **items, int *n, cs_error *err);

/* RFC 3339 UTC with nanoseconds ("2025-01-02T03:04:05.123456789Z") as a JSON string. */
json_t *cs__timestamp_json(int64_t ns);
/* JSON forms of the records as jansson values (new references; NULL when out of memory). */
json_t *cs__model_to_json(const cs_registry_model *m);
json_t *cs__version_to_json(const cs_registry_version *v);
json_t *cs__alias_to_json(const cs_registry_alias *a);
/* Labels as a JSON object text, in arena. */
char *cs__labels_json(int n, const cs_registry_label *labels, cs_arena *arena);
/* Parses a labels JSON object text (as stored) into arena; CS_ERR_IO when corrupt. */
cs_status cs__labels_parse(const char *text, cs_arena *arena, int *n,
                           const cs_registry_label **labels, cs_error *err);
/* Serialises a JSON value compactly (keys sorted) into arena and releases the reference;
 * NULL when v is NULL or memory runs out. */
char *cs__json_text(json_t *v, cs_arena *arena);
/* An RFC 3339 UTC timestamp with nanoseconds, as a JSON string. */
json_t *cs__json_time(int64_t ns);

/* --- webhook.c ---------------------------------------------------------------------- */

typedef struct cs__webhook cs__webhook;

/* Starts the delivery thread. */
cs_status cs__webhook_new(const cs_registry_options *opts, cs__webhook **out, cs_error *err);
/* Stops the thread (dropping what is queued) and frees w. NULL is a no-op. */
void cs__webhook_free(cs__webhook *w);
/* Queues one event; the body is built now. Never blocks: a full queue drops the event and
 * counts it. before/after are JSON texts or NULL. */
void cs__webhook_emit(cs__webhook *w, const char *event, const char *actor, const char *model,
                      int64_t version, const char *alias, const char *before, const char *after);
cs_status cs__webhook_flush(cs__webhook *w, int timeout_ms, cs_error *err);
void cs__webhook_stats(cs__webhook *w, cs_registry_webhook_stats *out);

/* --- signatures (signing.c) ------------------------------------------------------------- */

/* CS_OK when sig_hex is key_hex's ed25519 signature over the digest text; CS_ERR_INVALID
 * naming what is wrong otherwise. */
cs_status cs__signature_verify(const char *digest, const char *sig_hex, const char *key_hex,
                               cs_error *err);
/* The public keys of a directory's *.pem files; every file must hold an ed25519 key. */
typedef struct cs__trusted cs__trusted;
cs_status cs__trusted_load(const char *dir, cs__trusted **out, cs_error *err);
void cs__trusted_free(cs__trusted *t);
/* CS_OK when v is signed by a key in t and the signature verifies; CS_ERR_INVALID naming
 * which of the three it is not. */
cs_status cs__trusted_check(const cs__trusted *t, const cs_registry_version *v, cs_error *err);

#endif

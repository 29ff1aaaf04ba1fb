/*
 * registry.h - capstan's model registry: models, immutable versions, aliases, audit log,
 * content-addressed artifacts, garbage collection and signed webhooks.
 *
 * This is the one header the HTTP API (`/api/v1/models...`) and the `capstan model` CLI
 * build on. Everything below it - the SQLite and PostgreSQL stores, the blob directory,
 * webhook delivery - is internal.
 *
 * Concepts. A model has a name (a DNS label), a description and labels. A version is an
 * integer, monotonic per model and never reused (not even after a delete), and immutable
 * once created except for its labels and state: it records the artifact's sha256 digest
 * and size, its format ("onnx"), the IO schema read from the artifact through the engine,
 * a description, lineage (source URI, run id, parent version, dataset digest) and who
 * created it. An alias (prod, canary, ...) points at one version
 * and moves atomically; `latest` is implicit (the highest ready version). Every change
 * appends an audit entry - who, what, when, the object before and after as JSON - in the
 * same transaction as the change itself.
 *
 * Threads. A cs_registry_t is safe to use from any number of threads: each call borrows a
 * store connection from a small pool (SQLite in WAL mode lets readers run beside the one
 * writer; PostgreSQL runs them all in parallel).
 *
 * Memory. Calls that return records take a caller-owned cs_arena: every string and array
 * of the result lives in it until the caller resets or frees the arena. Inputs are
 * borrowed for the duration of the call.
 *
 * Errors and their HTTP meaning (cs_registry_http_status encodes this table):
 *   CS_ERR_INVALID      400  a bad name, label, selector, page token, state or digest
 *   CS_ERR_NOT_FOUND    404  no such model, version or alias
 *   CS_ERR_EXISTS       409  a conflict: the name exists, or the change would break a
 *                            reference (deleting a model that has versions, a version an
 *                            alias points to, archiving an alias target)
 *   CS_ERR_LIMIT        413  the artifact or a field is larger than its limit
 *   CS_ERR_PARSE,       422  unprocessable: the request was well formed but the artifact
 *   CS_ERR_UNSUPPORTED       is not an ONNX model this engine can load (malformed, or an
 *                            operator it lacks); the message says which
 *   CS_ERR_IO           500  storage failed, or a stored artifact no longer matches its
 *                            recorded size or digest (it is then refused, never served)
 *   CS_ERR_SHUTDOWN     503  the registry is closing
 *   CS_ERR_TIMEOUT      503  gc found a push in progress, or another server collecting;
 *                            retry (the API adds Retry-After)
 */
#ifndef CS_REGISTRY_H
#define CS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/arena.h"
#include "capstan/status.h"

typedef struct cs_registry cs_registry_t;

/* Limits, enforced on every input. */
#define CS_REGISTRY_NAME_MAX        63   /* model and alias names: DNS labels */
#define CS_REGISTRY_LABELS_MAX      64   /* labels per model or version */
#define CS_REGISTRY_LABEL_VALUE_MAX 63   /* Kubernetes' label value rule */
#define CS_REGISTRY_TEXT_MAX        4096 /* descriptions, dataset digests (bytes of UTF-8) */
#define CS_REGISTRY_URI_MAX         2048 /* a version's source URI */
#define CS_REGISTRY_RUN_ID_MAX      256  /* a version's training run id */
#define CS_REGISTRY_ACTOR_MAX       128  /* "who": a user or token name */
#define CS_REGISTRY_PAGE_MAX        1000 /* items per list page */

typedef struct cs_registry_options {
    const char *data_dir;       /* required: holds blobs/ and, for SQLite, registry.db */
    const char *store_url;      /* NULL or "" for SQLite in data_dir; "postgres://..." or
                                   "postgresql://..." (a libpq URI) for PostgreSQL */
    int64_t max_artifact_bytes; /* 0 = 16 GiB; larger pushes fail with CS_ERR_LIMIT */
    int max_connections;        /* store connections in the pool; 0 = 4 */

    /* Webhooks: a POST per event to webhook_url, signed with the secret in
     * webhook_secret_file (its first line). Both NULL to disable. */
    const char *webhook_url;
    const char *webhook_secret_file;
    int webhook_max_attempts; /* 0 = 6 */
    int webhook_backoff_ms;   /* first retry delay, doubled each time; 0 = 500 */
    int webhook_queue;        /* events waiting at most; 0 = 1024, further ones dropped */
    int webhook_timeout_ms;   /* per request; 0 = 5000 */

    /* Signed versions (signing.c): with a directory of ed25519 public keys (*.pem), the
     * registry hands out only artifacts signed by one of them (cs_registry_artifact). NULL:
     * any version is served. */
    const char *trusted_keys_dir;
} cs_registry_options;

/* Opens (creating where needed) the data directory and the store, and applies pending
 * schema migrations. Fails with CS_ERR_INVALID for a bad URL or option, CS_ERR_IO when the
 * directory or database cannot be opened. *out is freed with cs_registry_close. */
cs_status cs_registry_open(const cs_registry_options *opts, cs_registry_t **out, cs_error *err);
/* The largest artifact a push may bring: max_artifact_bytes, or its default. */
int64_t cs_registry_max_artifact(const cs_registry_t *r);

/* Stops webhook delivery (events still queued are dropped; use cs_registry_webhook_flush
 * first to wait for them), closes every connection and frees r. NULL is a no-op. */
void cs_registry_close(cs_registry_t *r);

/* The HTTP status for a code, per the table above. */
int cs_registry_http_status(cs_status code);

/* --- records ------------------------------------------------------------------------ */

typedef struct cs_registry_label {
    const char *key;   /* [prefix/]name, Kubernetes' rules */
    const char *value; /* up to 63 of [A-Za-z0-9._-], may be empty */
} cs_registry_label;

typedef enum cs_registry_state {
    CS_REGISTRY_STATE_UNSET = 0, /* in a patch: leave the state as it is */
    CS_REGISTRY_STATE_READY = 1,
    CS_REGISTRY_STATE_ARCHIVED = 2,
} cs_registry_state;

/* "ready", "archived"; cs_registry_state_parse returns UNSET for anything else. */
const char *cs_registry_state_name(cs_registry_state s);
cs_registry_state cs_registry_state_parse(const char *s);

typedef struct cs_registry_model {
    const char *name;
    const char *description;
    int n_labels;
    const cs_registry_label *labels; /* sorted by key */
    const char *created_by;
    int64_t created_ns, updated_ns; /* wall clock, ns since the Unix epoch */
} cs_registry_model;

typedef struct cs_registry_version {
    const char *model;
    int64_t version;
    const char *digest; /* "sha256:<64 hex>" */
    int64_t size;       /* bytes */
    const char *format; /* "onnx" */
    /* {"inputs":[{"name":"image","dtype":"float32","shape":["batch",1,8,8]}],"outputs":[..]}
     * - shape entries are integers, a symbol's name, or null when unknown; shape is null
     * when the model declares none. */
    const char *io_schema;
    int n_labels;
    const cs_registry_label *labels; /* sorted by key */
    const char *description;         /* free text (MLflow's version description); "" */
    /* Lineage, "" when unset: where the artifact came from, the training run, the version
     * of the same model it was derived from (a number, checked to exist when pushed) and
     * the training data's digest. */
    const char *source_uri, *run_id, *parent_version, *dataset_digest;
    cs_registry_state state;
    const char *created_by;
    int64_t created_ns, updated_ns;
    /* The ed25519 signature over `digest` and the signer's raw public key, lowercase hex;
     * both "" for an unsigned version. */
    const char *signature, *signer_key;
} cs_registry_version;

/* "SHA256:<64 hex>" of a raw public key given in hex ("" when it is not one): how people
 * and `capstan model show` name the signer. */
#define CS_REGISTRY_FINGERPRINT_MAX 72
void cs_registry_key_fingerprint(const char *key_hex, char out[CS_REGISTRY_FINGERPRINT_MAX]);

/* Signs a file for a push: digest gets its "sha256:<hex>" (72 bytes), sig_hex the ed25519
 * signature over that text with the private key in a PEM file (129 bytes: 128 hex digits),
 * key_hex the public key (65 bytes). CS_ERR_IO when a file cannot be read, CS_ERR_INVALID
 * when the PEM holds no ed25519 private key. Cost: one read of the file. */
cs_status cs_registry_sign_file(const char *key_pem_path, const char *file, char *digest,
                                char *sig_hex, char *key_hex, cs_error *err);

typedef struct cs_registry_alias {
    const char *model;
    const char *name;
    int64_t version;
    const char *updated_by;
    int64_t updated_ns;
} cs_registry_alias;

typedef struct cs_registry_audit {
    int64_t id;         /* increasing */
    int64_t at_ns;      /* wall clock */
    const char *actor;  /* who */
    const char *action; /* "model.created", "version.created", "alias.moved", ... */
    const char *model;
    int64_t version;            /* 0 when the entry is not about one version */
    const char *alias;          /* "" unless an alias changed */
    const char *before, *after; /* JSON of the object; "null" for none */
} cs_registry_audit;

/* JSON renderings of the records (the API's response bodies). Returned strings are
 * allocated with cs_malloc; the caller frees them with cs_free. NULL when out of memory. */
char *cs_registry_model_json(const cs_registry_model *m);
char *cs_registry_version_json(const cs_registry_version *v);
char *cs_registry_alias_json(const cs_registry_alias *a);
char *cs_registry_audit_json(const cs_registry_audit *a);

/* --- listing -------------------------------------------------------------------------- */

/* Options for every list call. Pagination is keyset-based: a page costs the same wherever
 * it starts. Pass the previous page's next_page_token (opaque base64url) with the same
 * filters and order to continue. */
typedef struct cs_registry_list_opts {
    const char *prefix;     /* models: names starting with it; NULL for all */
    const char *selector;   /* labels: "k=v,k!=v,k,!k" (all must hold); NULL for all */
    bool descending;        /* models sort by name, versions by number (audit lists are
                               always newest first) */
    const char *page_token; /* NULL or "" for the first page */
    int limit;              /* 1..CS_REGISTRY_PAGE_MAX; 0 = 100 */
} cs_registry_list_opts;

/* --- models ------------------------------------------------------------------------- */

/* `actor` is who makes a change (recorded in the audit log); NULL means "anonymous". */

/* Creates a model. CS_ERR_EXISTS when the name is taken. */
cs_status cs_registry_model_create(cs_registry_t *r, const char *name, const char *description,
                                   int n_labels, const cs_registry_label *labels, const char *actor,
                                   cs_arena *arena, cs_registry_model *out, cs_error *err);

cs_status cs_registry_model_get(cs_registry_t *r, const char *name, cs_arena *arena,
                                cs_registry_model *out, cs_error *err);

/* Replaces the description (when not NULL) and the labels (when set_labels). */
cs_status cs_registry_model_patch(cs_registry_t *r, const char *name, const char *description,
                                  bool set_labels, int n_labels, const cs_registry_label *labels,
                                  const char *actor, cs_arena *arena, cs_registry_model *out,
                                  cs_error *err);

/* Deletes a model with no versions left (CS_ERR_EXISTS otherwise: delete them first). */
cs_status cs_registry_model_delete(cs_registry_t *r, const char *name, const char *actor,
                                   cs_error *err);

/* One page of models; *next_page_token is NULL on the last page. */
cs_status cs_registry_model_list(cs_registry_t *r, const cs_registry_list_opts *opts,
                                 cs_arena *arena, cs_registry_model **items, int *n,
                                 const char **next_page_token, cs_error *err);

/* --- versions ----------------------------------------------------------------------- */

/* Reads up to cap bytes into buf; sets *got (0 = end of stream). A status other than
 * CS_OK aborts the push with that error. */
typedef cs_status (*cs_registry_read_fn)(void *user, void *buf, size_t cap, size_t *got,
                                         cs_error *err);

/* Where a push's time went, in seconds. The hash runs on a second thread beside the copy,
 * so hash_s overlaps copy_s; copy_s includes waiting for the hash when it falls behind. */
typedef struct cs_registry_push_timing {
    double copy_s;      /* the bytes into the temporary file (and writeback started) */
    double hash_s;      /* sha256 on the hashing thread, busy time */
    double fsync_s;     /* fsync of the temporary file, while the hash finishes */
    double hash_wait_s; /* the hash's tail after the fsync */
    double rename_s;    /* rename to the digest's path and the directory's fsync */
    double schema_s;    /* the engine's load of the stored artifact for its IO schema */
    double commit_s;    /* the version's transaction */
} cs_registry_push_timing;

typedef struct cs_registry_push {
    cs_registry_read_fn read; /* the artifact's bytes; or read == NULL and fd >= 0 */
    void *user;
    int fd;
    const char *expected_digest; /* optional "sha256:<hex>": refuse (400) on mismatch */
    int n_labels;
    const cs_registry_label *labels;
    /* Optional text, each bounded (CS_ERR_LIMIT naming the field and its limit), UTF-8
     * without control characters but tab: description and dataset_digest up to
     * CS_REGISTRY_TEXT_MAX bytes, source_uri CS_REGISTRY_URI_MAX, run_id
     * CS_REGISTRY_RUN_ID_MAX. parent_version names an existing version of the same model
     * by number, alias or "latest" (CS_ERR_INVALID naming it otherwise); the version
     * records the number it resolved to. */
    const char *description;
    const char *source_uri, *run_id, *parent_version, *dataset_digest;
    /* Optional, together (see cs_registry_sign): a signature over the artifact's digest
     * and the signer's public key, hex; a push whose signature does not verify fails
     * (CS_ERR_INVALID) and stores nothing. */
    const char *signature, *signer_key;
    cs_registry_push_timing *timing; /* optional: filled when the push succeeds */
} cs_registry_push;

/* Pushes a new version of an existing model. The artifact is streamed into a temporary
 * file while its sha256 is computed, fsync'd and renamed into the content-addressed store
 * (identical content is stored once), then loaded through the engine to read its IO
 * schema (422 when that fails), and finally one transaction allocates the version number
 * and inserts the version. A crash at any point leaves at most an unreferenced blob that
 * cs_registry_gc removes. Cost: one pass over the data (hash and write; a regular file
 * given as fd is copied inside the kernel and hashed from the stored copy), one fsync, one
 * mmap'd parse of the model (aligned weights are not read). */
cs_status cs_registry_push_version(cs_registry_t *r, const char *model,
                                   const cs_registry_push *push, const char *actor, cs_arena *arena,
                                   cs_registry_version *out, cs_error *err);

/* Resolves `ref` - a version number ("3"), an alias ("prod") or "latest" (the highest
 * ready version) - and returns that version. */
cs_status cs_registry_version_get(cs_registry_t *r, const char *model, const char *ref,
                                  cs_arena *arena, cs_registry_version *out, cs_error *err);

/* Versions of a model (selector applies to version labels; prefix is ignored). */
cs_status cs_registry_version_list(cs_registry_t *r, const char *model,
                                   const cs_registry_list_opts *opts, cs_arena *arena,
                                   cs_registry_version **items, int *n,
                                   const char **next_page_token, cs_error *err);

/* Replaces the labels (when set_labels) and/or changes the state (unless UNSET). Both
 * states may move to the other; archiving a version an alias points to is a conflict. */
cs_status cs_registry_version_patch(cs_registry_t *r, const char *model, int64_t version,
                                    bool set_labels, int n_labels, const cs_registry_label *labels,
                                    cs_registry_state state, const char *actor, cs_arena *arena,
                                    cs_registry_version *out, cs_error *err);

/* Deletes a version no alias points to. Its blob stays until cs_registry_gc. */
cs_status cs_registry_version_delete(cs_registry_t *r, const char *model, int64_t version,
                                     const char *actor, cs_error *err);

/* Resolves `ref` like cs_registry_version_get and returns the artifact's path (in arena)
 * after checking its size and then its sha256 against the version's record: a mismatch
 * fails with CS_ERR_IO naming the blob and both digests, and the version must not be
 * served. With trusted_keys_dir, a version that is unsigned, signed by another key or
 * whose signature does not verify fails with CS_ERR_INVALID saying which. Cost: one read of
 * the whole artifact. */
cs_status cs_registry_artifact(cs_registry_t *r, const char *model, const char *ref,
                               cs_arena *arena, cs_registry_version *version, const char **path,
                               cs_error *err);

/* For a download: resolves `ref` like cs_registry_version_get, applies the signing policy
 * of cs_registry_artifact and opens the artifact read-only into *fd (the caller closes it),
 * checking only its size (CS_ERR_IO on a mismatch or a missing blob). The caller must hash
 * what it reads and compare with version->digest before it hands out the last byte: that
 * keeps one pass over the data where cs_registry_artifact takes two. Cost: one open. */
cs_status cs_registry_artifact_open(cs_registry_t *r, const char *model, const char *ref,
                                    cs_arena *arena, cs_registry_version *version, int *fd,
                                    cs_error *err);

/* --- aliases ------------------------------------------------------------------------ */

/* Whether name may name an alias: a DNS label, neither "latest" nor a number (those already
 * name versions). CS_ERR_INVALID with a message naming the rule otherwise. For clients that
 * check before they send anything (`capstan model push --alias`); every alias call checks
 * it again. */
cs_status cs_registry_alias_check(const char *name, cs_error *err);

/* Points alias `name` at `version` (creating or moving it) in one transaction: readers see
 * the old target or the new one, never neither. The version must exist and be ready. */
cs_status cs_registry_alias_put(cs_registry_t *r, const char *model, const char *name,
                                int64_t version, const char *actor, cs_arena *arena,
                                cs_registry_alias *out, cs_error *err);

cs_status cs_registry_alias_delete(cs_registry_t *r, const char *model, const char *name,
                                   const char *actor, cs_error *err);

/* Every alias of a model, by name (at most one page: a model has few aliases). */
cs_status cs_registry_alias_list(cs_registry_t *r, const char *model, cs_arena *arena,
                                 cs_registry_alias **items, int *n, cs_error *err);

/* --- audit -------------------------------------------------------------------------- */

/* Audit entries, newest first (opts->descending is ignored: the log reads backwards);
 * model NULL for all models. selector and prefix are ignored. */
cs_status cs_registry_audit_list(cs_registry_t *r, const char *model,
                                 const cs_registry_list_opts *opts, cs_arena *arena,
                                 cs_registry_audit **items, int *n, const char **next_page_token,
                                 cs_error *err);

/* --- garbage collection --------------------------------------------------------------- */

typedef struct cs_registry_gc_report {
    int64_t blobs;        /* blobs examined */
    int64_t unreferenced; /* blobs no version references, plus orphaned temporary files */
    int64_t bytes;        /* their total size */
    int64_t removed;      /* how many were removed (0 on a dry run) */
} cs_registry_gc_report;

/* Called for each unreferenced file (its path) before it is removed (or not, when dry). */
typedef void (*cs_registry_gc_fn)(void *user, const char *path, int64_t size);

/* Finds blobs no version references and temporary files left by interrupted pushes, and
 * removes them unless dry_run. Pushes in progress (in any process sharing the blob
 * directory, where its file system has working locks) finish before gc looks, and new ones
 * wait for it: a lock file orders them. On PostgreSQL one server of the cluster collects at
 * a time (an advisory lock): another's gc fails with CS_ERR_TIMEOUT at once. Cost: one
 * directory walk and one query over every version's digest. */
cs_status cs_registry_gc(cs_registry_t *r, bool dry_run, const char *actor, cs_registry_gc_fn each,
                         void *user, cs_registry_gc_report *report, cs_error *err);

/* --- API tokens (tokens.c) ------------------------------------------------------------ */

/* Roles, each allowing what the one before it does and more (Triton's restricted-API
 * groups map onto them): viewer reads (health, metadata, statistics, listings), invoker
 * also infers, deployer also changes the registry, repository and claims, admin also
 * manages tokens, gc and device classes. */
typedef enum cs_registry_role {
    CS_ROLE_NONE = 0, /* public routes only */
    CS_ROLE_VIEWER,
    CS_ROLE_INVOKER,
    CS_ROLE_DEPLOYER,
    CS_ROLE_ADMIN,
} cs_registry_role;

/* "viewer", ...; cs_registry_role_parse returns CS_ROLE_NONE for anything else. */
const char *cs_registry_role_name(cs_registry_role role);
cs_registry_role cs_registry_role_parse(const char *s);

typedef struct cs_registry_token {
    const char *name; /* a DNS label, unique */
    cs_registry_role role;
    const char *models; /* a glob (fnmatch) over model names the token may address; "*" */
    const char *created_by;
    int64_t created_ns;
    int64_t expires_ns; /* 0: never */
    int64_t revoked_ns; /* 0: live */
} cs_registry_token;

/* JSON of a token's record (never its secret), cs_malloc'd. */
char *cs_registry_token_json(const cs_registry_token *t);

/* Creates a token and writes its secret ("cst_" + 43 base64url characters, 256 random
 * bits) to secret (at least CS_REGISTRY_TOKEN_LEN bytes): it is shown once, the store
 * keeps only its sha256. ttl_ns 0 never expires. CS_ERR_EXISTS when the name is taken. */
#define CS_REGISTRY_TOKEN_LEN 48
cs_status cs_registry_token_create(cs_registry_t *r, const char *name, cs_registry_role role,
                                   const char *models, int64_t ttl_ns, const char *actor,
                                   cs_arena *arena, cs_registry_token *out,
                                   char secret[CS_REGISTRY_TOKEN_LEN], cs_error *err);

/* Every token, by name (revoked ones too, with revoked_at). */
cs_status cs_registry_token_list(cs_registry_t *r, cs_arena *arena, cs_registry_token **items,
                                 int *n, cs_error *err);

/* Revokes a live token at once (CS_ERR_NOT_FOUND for an unknown or revoked name). */
cs_status cs_registry_token_revoke(cs_registry_t *r, const char *name, const char *actor,
                                   cs_error *err);

/* The live token whose secret this is: CS_ERR_NOT_FOUND ("unknown", "expired" or
 * "revoked" in the message) otherwise. Cost: one sha256 and one indexed read. */
cs_status cs_registry_token_check(cs_registry_t *r, const char *secret, cs_arena *arena,
                                  cs_registry_token *out, cs_error *err);

/* Whether the token's models glob admits this model name. */
bool cs_registry_token_allows_model(const cs_registry_token *t, const char *model);

/* What cs_registry_token_ensure did. */
typedef enum cs_registry_token_ensured {
    CS_TOKEN_KEPT,    /* the token had this secret already */
    CS_TOKEN_CREATED, /* there was no token of that name */
    CS_TOKEN_ROTATED, /* it had another secret: replaced, live again */
    CS_TOKEN_REVOKED, /* it has this secret but was revoked: it stays revoked */
} cs_registry_token_ensured;

/* Makes token `name` (models "*", no expiry) have role and the given secret, which the
 * caller brings (a Kubernetes Secret's, in the form token_create makes: CS_ERR_INVALID
 * otherwise); only its sha256 is stored. Idempotent: servers starting at once, or again,
 * with the same secret leave one token; a new secret replaces the old one (audited
 * "token.rotated"). A token revoked through the API stays revoked until the secret changes. */
cs_status cs_registry_token_ensure(cs_registry_t *r, const char *name, cs_registry_role role,
                                   const char *secret, cs_registry_token_ensured *how,
                                   cs_error *err);

/* How many live tokens exist (for creating the first admin token at start). */
cs_status cs_registry_token_count(cs_registry_t *r, int64_t *n, cs_error *err);

/* --- deployments ------------------------------------------------------------------------ */

/* A declared deployment (src/runtime/deploy_spec.h validates and renders its spec; the
 * registry only stores it). generation counts changes of the spec, from 1. */
typedef struct cs_registry_deployment {
    const char *name;
    const char *spec; /* the canonical document, JSON text */
    int64_t generation, created_ns, updated_ns;
} cs_registry_deployment;

/* Creates or replaces name's spec (kubectl apply's semantics): the same spec again changes
 * nothing (no new generation, no audit entry); *changed says whether anything was written
 * and *created whether it is new. Audited as "deployment.created" / "deployment.updated"
 * with the model field set to the deployment's name. */
cs_status cs_registry_deployment_put(cs_registry_t *r, const char *name, const char *spec,
                                     const char *actor, cs_arena *arena,
                                     cs_registry_deployment *out, bool *created, bool *changed,
                                     cs_error *err);
/* CS_ERR_NOT_FOUND when there is none. */
cs_status cs_registry_deployment_get(cs_registry_t *r, const char *name, cs_arena *arena,
                                     cs_registry_deployment *out, cs_error *err);
/* Every deployment, by name. */
cs_status cs_registry_deployment_list(cs_registry_t *r, cs_arena *arena,
                                      cs_registry_deployment **items, int *n, cs_error *err);
/* Deletes it ("deployment.deleted"); CS_ERR_NOT_FOUND when there is none. */
cs_status cs_registry_deployment_delete(cs_registry_t *r, const char *name, const char *actor,
                                        cs_error *err);
/* Records a change of a deployment's state in the audit log (action such as
 * "deployment.scaled", detail a JSON text or NULL), in a transaction of its own. */
cs_status cs_registry_deployment_event(cs_registry_t *r, const char *name, const char *action,
                                       const char *detail, cs_error *err);

/* --- cluster mode (watch.c) ------------------------------------------------------------ */

/* A change another server committed to a shared store (PostgreSQL), as its audit entry
 * names it. Token changes are not reported: every request reads its token from the store. */
typedef struct cs_registry_change {
    /* The audit action: "model.deleted", "version.created", "version.state_changed",
     * "version.deleted", "alias.moved", "alias.deleted", "deployment.created",
     * "deployment.updated", "deployment.deleted"; or "resync": changes may have been missed
     * (the watch lost its connection, or a notification), so look at everything again. */
    const char *kind;
    const char *name; /* the model's or the deployment's name; "" for resync */
    int64_t version;  /* the version the change is about, 0 when none */
} cs_registry_change;

typedef void (*cs_registry_change_fn)(void *user, const cs_registry_change *c);

/* Calls fn, on a thread of its own, for each change another server commits to r's store:
 * within milliseconds through PostgreSQL's LISTEN/NOTIFY on a connection of its own, and
 * through a poll of the store's change counter every second (one indexed read) where a
 * notification is missed - while the connection is down (it reconnects every second) or
 * behind a pooler that drops notifications - as a resync. Changes made through r itself
 * are not reported: its caller acted on them already. fn may take long (a model load);
 * later changes wait for it, in commit order. SQLite's store belongs to one process: CS_OK
 * and no thread. One watch per registry; *r must outlive it. */
cs_status cs_registry_watch(cs_registry_t *r, cs_registry_change_fn fn, void *user, cs_error *err);
/* Stops the watch and joins its thread: no call of fn runs once it returns. A no-op
 * without one. */
void cs_registry_unwatch(cs_registry_t *r);

/* --- webhooks ------------------------------------------------------------------------- */

/* Events are POSTed as JSON {"id","event","at","actor","model","version","alias","before",
 * "after"} with the headers X-Capstan-Event and
 * X-Capstan-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>.
 * Events: version.created, version.state_changed, version.deleted, alias.moved,
 * alias.deleted, model.deleted. A 2xx answer delivers; 5xx, 408, 429 and network errors
 * are retried with exponential back-off; other answers drop the event. */

typedef struct cs_registry_webhook_stats {
    int64_t delivered, failed, dropped, retries;
} cs_registry_webhook_stats;

/* Waits up to timeout_ms for the queue to empty. CS_ERR_LIMIT on timeout; CS_OK at once
 * when webhooks are off. */
cs_status cs_registry_webhook_flush(cs_registry_t *r, int timeout_ms, cs_error *err);
void cs_registry_webhook_stats_get(cs_registry_t *r, cs_registry_webhook_stats *out);

#endif

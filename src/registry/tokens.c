/*
 * tokens.c - API tokens in the registry's store: create (the secret shown once), list,
 * revoke, and check a presented secret.
 *
 * A secret is "cst_" + 43 base64url characters (256 bits from OpenSSL's RAND_bytes). The
 * store keeps only the sha256 of the whole secret, as lowercase hex, under a unique index:
 * checking a token is one hash and one indexed read, and the stored hash is compared with
 * the computed one in constant time (CRYPTO_memcmp) before it is trusted. Records are
 * audited like every other change ("token.created", "token.revoked"), never with the
 * secret. A token is revoked by setting revoked_ns; rows are kept so names are not reused
 * by accident and the audit trail stays whole.
 */
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/name.h"
#include "base/vec.h"

#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX   "cst_"
#define HASH_HEX 64
#define GLOB_MAX 128

static const char *const role_names[] = {"none", "viewer", "invoker", "deployer", "admin"};

const char *cs_registry_role_name(cs_registry_role role)
{
    return role >= CS_ROLE_NONE && role <= CS_ROLE_ADMIN ? role_names[role] : "none";
}

cs_registry_role cs_registry_role_parse(const char *s)
{
    for (int i = CS_ROLE_VIEWER; s && i <= CS_ROLE_ADMIN; i++)
        if (!strcmp(s, role_names[i])) return (cs_registry_role)i;
    return CS_ROLE_NONE;
}

/* sha256 of s as 64 lowercase hex digits and a NUL. */
static void hash_hex(const char *s, char out[HASH_HEX + 1])
{
    unsigned char md[32];
    unsigned len = 0;
    EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static cs_status check_fields(const char *name, cs_registry_role role, const char *models,
                              cs_error *err)
{
    if (!cs_dns_label(name))
        return cs_error_set(err, CS_ERR_INVALID,
                            "token name '%.64s' is invalid: use 1-%d lowercase letters, digits "
                            "and '-', starting and ending with a letter or digit",
                            name ? name : "", CS_REGISTRY_NAME_MAX);
    if (role < CS_ROLE_VIEWER || role > CS_ROLE_ADMIN)
        return cs_error_set(err, CS_ERR_INVALID, "role must be viewer, invoker, deployer or admin");
    size_t m = models ? strlen(models) : 0;
    if (m == 0 || m > GLOB_MAX)
        return cs_error_set(err, CS_ERR_INVALID,
                            "models must be a glob of 1-%d characters (\"*\" for every model)",
                            GLOB_MAX);
    for (size_t i = 0; i < m; i++)
        if (!((models[i] >= 'a' && models[i] <= 'z') || (models[i] >= '0' && models[i] <= '9') ||
              strchr("-*?[]!", models[i])))
            return cs_error_set(err, CS_ERR_INVALID,
                                "models: '%.128s' may hold lowercase letters, digits, '-' and "
                                "the glob characters * ? [ ] !",
                                models);
    return CS_OK;
}

char *cs_registry_token_json(const cs_registry_token *t)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "name", t->name, "role",
                  cs_registry_role_name(t->role), "models", t->models, "created_by", t->created_by,
                  "created_at", cs__timestamp_json(t->created_ns), "expires_at",
                  t->expires_ns ? cs__timestamp_json(t->expires_ns) : json_null(), "revoked_at",
                  t->revoked_ns ? cs__timestamp_json(t->revoked_ns) : json_null());
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text) return NULL;
    char *out = cs_strdup(text); /* callers free with cs_free */
    free(text);
    return out;
}

/* One token row: name, role, models, created_by, created_ns, expires_ns, revoked_ns, hash. */
#define COLUMNS "name, role, models, created_by, created_ns, expires_ns, revoked_ns, hash"

typedef struct rows {
    cs_arena *arena;
    cs_vec *items; /* cs_registry_token */
    char hash[HASH_HEX + 1];
} rows;

static cs_status token_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    rows *r = user;
    (void)ncols;
    cs_registry_token t = {
        .name = cs_arena_strndup(r->arena, c[0].s, strlen(c[0].s)),
        .role = cs_registry_role_parse(c[1].s),
        .models = cs_arena_strndup(r->arena, c[2].s, strlen(c[2].s)),
        .created_by = cs_arena_strndup(r->arena, c[3].s, strlen(c[3].s)),
        .created_ns = c[4].i,
        .expires_ns = c[5].i,
        .revoked_ns = c[6].i,
    };
    if (!t.name || !t.models || !t.created_by || cs_vec_push(r->items, &t) != CS_OK)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    snprintf(r->hash, sizeof r->hash, "%s", c[7].s ? c[7].s : "");
    return CS_OK;
}

cs_status cs_registry_token_create(cs_registry_t *r, const char *name, cs_registry_role role,
                                   const char *models, int64_t ttl_ns, const char *actor,
                                   cs_arena *arena, cs_registry_token *out,
                                   char secret[CS_REGISTRY_TOKEN_LEN], cs_error *err)
{
    if (!models) models = "*";
    cs_status rc = check_fields(name, role, models, err);
    if (rc == CS_OK) rc = cs__check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    if (ttl_ns < 0) return cs_error_set(err, CS_ERR_INVALID, "ttl must not be negative");
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return cs_error_set(err, CS_ERR_INTERNAL, "no random bytes for a token");
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *o = secret + sizeof PREFIX - 1;
    memcpy(secret, PREFIX, sizeof PREFIX - 1);
    unsigned acc = 0; /* the bits not yet written: at most 12, so 16 are kept */
    for (int i = 0, bits = 0; i < 32; i++) {
        acc = ((acc << 8) | raw[i]) & 0xffffu;
        for (bits += 8; bits >= 6; bits -= 6) *o++ = b64[(acc >> (bits - 6)) & 63];
        if (i == 31 && bits > 0) *o++ = b64[(acc << (6 - bits)) & 63];
    }
    *o = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    char hash[HASH_HEX + 1];
    hash_hex(secret, hash);
    int64_t now = (int64_t)cs_wall_ns();
    *out = (cs_registry_token){cs_arena_strndup(arena, name, strlen(name)),
                               role,
                               cs_arena_strndup(arena, models, strlen(models)),
                               cs_arena_strndup(arena, actor, strlen(actor)),
                               now,
                               ttl_ns ? now + ttl_ns : 0,
                               0};
    char *after = cs_registry_token_json(out);
    if (!out->name || !out->models || !out->created_by || !after) {
        cs_free(after);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    cs__tx t;
    rc = cs__tx_begin(r, &t, true, err);
    if (rc == CS_OK) {
        cs__sql_val p[] = {cs__sql_text(name),
                           cs__sql_text(hash),
                           cs__sql_text(cs_registry_role_name(role)),
                           cs__sql_text(models),
                           cs__sql_text(actor),
                           cs__sql_int(now),
                           cs__sql_int(out->expires_ns)};
        rc = t.s.iface->exec(t.s.ctx,
                             "INSERT INTO tokens (name, hash, role, models, created_by, "
                             "created_ns, expires_ns, revoked_ns) VALUES (?1, ?2, ?3, ?4, ?5, "
                             "?6, ?7, 0)",
                             7, p, NULL, NULL, err);
        if (rc == CS_ERR_EXISTS) rc = cs_error_set(err, rc, "token '%s' exists", name);
        if (rc == CS_OK)
            rc = cs__audit_append(&t.s, actor, "token.created", "", 0, NULL, NULL, after, err);
        rc = cs__tx_end(r, &t, rc, err);
    }
    cs_free(after);
    if (rc != CS_OK) OPENSSL_cleanse(secret, CS_REGISTRY_TOKEN_LEN);
    return rc;
}

/* Whether s has the form of a secret token_create makes: "cst_" + 43 base64url characters. */
static bool secret_form(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != CS_REGISTRY_TOKEN_LEN - 1 || strncmp(s, PREFIX, sizeof PREFIX - 1) != 0) return false;
    for (size_t i = sizeof PREFIX - 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

/* One attempt: read name's row, then insert it, replace its hash, or leave it. Two servers
 * starting at once may both find no row; the loser's insert fails with CS_ERR_EXISTS and
 * the caller tries again, now finding the winner's. */
static cs_status ensure_once(cs_registry_t *r, const char *name, cs_registry_role role,
                             const char *hash, cs_arena *arena, cs_registry_token_ensured *how,
                             cs_error *err)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_token));
    rows rw = {arena, &v, ""};
    cs__tx t;
    cs_status rc = cs__tx_begin(r, &t, true, err);
    if (rc != CS_OK) goto out;
    cs__sql_val pn[] = {cs__sql_text(name)};
    rc = t.s.iface->exec(t.s.ctx, "SELECT " COLUMNS " FROM tokens WHERE name = ?1", 1, pn,
                         token_row, &rw, err);
    const cs_registry_token *old = rc == CS_OK && v.len ? cs_vec_at(&v, 0) : NULL;
    int64_t now = (int64_t)cs_wall_ns();
    if (rc == CS_OK && old && CRYPTO_memcmp(rw.hash, hash, HASH_HEX) == 0) {
        /* The same secret: kept, and kept revoked when an admin revoked it. */
        *how = old->revoked_ns ? CS_TOKEN_REVOKED : CS_TOKEN_KEPT;
    } else if (rc == CS_OK) {
        cs_registry_token rec = {name, role, "*", "capstan", now, 0, 0};
        char *after = cs_registry_token_json(&rec);
        cs__sql_val p[] = {cs__sql_text(name), cs__sql_text(hash),
                           cs__sql_text(cs_registry_role_name(role)), cs__sql_int(now)};
        if (!after) rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        if (rc == CS_OK)
            rc = t.s.iface->exec(
                t.s.ctx,
                old ? "UPDATE tokens SET hash = ?2, role = ?3, models = '*', created_by = "
                      "'capstan', created_ns = ?4, expires_ns = 0, revoked_ns = 0 WHERE name = ?1"
                    : "INSERT INTO tokens (name, hash, role, models, created_by, created_ns, "
                      "expires_ns, revoked_ns) VALUES (?1, ?2, ?3, '*', 'capstan', ?4, 0, 0)",
                4, p, NULL, NULL, err);
        if (rc == CS_OK)
            rc = cs__audit_append(&t.s, "capstan", old ? "token.rotated" : "token.created", "", 0,
                                  NULL, NULL, after, err);
        cs_free(after);
        *how = old ? CS_TOKEN_ROTATED : CS_TOKEN_CREATED;
    }
    rc = cs__tx_end(r, &t, rc, err);
out:
    cs_vec_free(&v);
    return rc;
}

cs_status cs_registry_token_ensure(cs_registry_t *r, const char *name, cs_registry_role role,
                                   const char *secret, cs_registry_token_ensured *how,
                                   cs_error *err)
{
    cs_status rc = check_fields(name, role, "*", err);
    if (rc != CS_OK) return rc;
    if (!secret_form(secret))
        return cs_error_set(err, CS_ERR_INVALID,
                            "token '%s': the secret must be \"cst_\" and 43 base64url characters "
                            "(A-Z a-z 0-9 - _), as `capstan token create` makes them",
                            name);
    char hash[HASH_HEX + 1];
    hash_hex(secret, hash);
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    rc = ensure_once(r, name, role, hash, &arena, how, err);
    if (rc == CS_ERR_EXISTS) rc = ensure_once(r, name, role, hash, &arena, how, err);
    cs_arena_free(&arena);
    OPENSSL_cleanse(hash, sizeof hash);
    return rc;
}

cs_status cs_registry_token_list(cs_registry_t *r, cs_arena *arena, cs_registry_token **items,
                                 int *n, cs_error *err)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_token));
    rows rw = {arena, &v, ""};
    cs_status rc =
        cs__select(r, "SELECT " COLUMNS " FROM tokens ORDER BY name", 0, NULL, token_row, &rw, err);
    *items = NULL;
    *n = 0;
    if (rc == CS_OK) rc = cs__rows_copy(&v, arena, items, n, err);
    cs_vec_free(&v);
    return rc;
}

cs_status cs_registry_token_revoke(cs_registry_t *r, const char *name, const char *actor,
                                   cs_error *err)
{
    cs_status rc = cs__check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_token));
    rows rw = {&arena, &v, ""};
    cs__tx t;
    rc = cs__tx_begin(r, &t, true, err);
    if (rc == CS_OK) {
        cs__sql_val p[] = {cs__sql_text(name)};
        rc = t.s.iface->exec(t.s.ctx,
                             "SELECT " COLUMNS " FROM tokens WHERE name = ?1 AND revoked_ns = 0", 1,
                             p, token_row, &rw, err);
        if (rc == CS_OK && v.len == 0)
            rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no live token '%.64s'", name);
        char *before = rc == CS_OK ? cs_registry_token_json(cs_vec_at(&v, 0)) : NULL;
        if (rc == CS_OK) {
            cs__sql_val q[] = {cs__sql_int((int64_t)cs_wall_ns()), cs__sql_text(name)};
            rc = t.s.iface->exec(t.s.ctx, "UPDATE tokens SET revoked_ns = ?1 WHERE name = ?2", 2, q,
                                 NULL, NULL, err);
        }
        if (rc == CS_OK)
            rc = cs__audit_append(&t.s, actor, "token.revoked", "", 0, NULL, before, NULL, err);
        cs_free(before);
        rc = cs__tx_end(r, &t, rc, err);
    }
    cs_vec_free(&v);
    cs_arena_free(&arena);
    return rc;
}

cs_status cs_registry_token_check(cs_registry_t *r, const char *secret, cs_arena *arena,
                                  cs_registry_token *out, cs_error *err)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n != CS_REGISTRY_TOKEN_LEN - 1 || strncmp(secret, PREFIX, sizeof PREFIX - 1) != 0)
        return cs_error_set(err, CS_ERR_NOT_FOUND, "unknown token");
    char hash[HASH_HEX + 1];
    hash_hex(secret, hash);
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_token));
    rows rw = {arena, &v, ""};
    cs__sql_val p[] = {cs__sql_text(hash)};
    cs_status rc =
        cs__select(r, "SELECT " COLUMNS " FROM tokens WHERE hash = ?1", 1, p, token_row, &rw, err);
    if (rc == CS_OK && (v.len != 1 || CRYPTO_memcmp(rw.hash, hash, HASH_HEX) != 0))
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "unknown token");
    if (rc == CS_OK) {
        *out = *(cs_registry_token *)cs_vec_at(&v, 0);
        if (out->revoked_ns)
            rc = cs_error_set(err, CS_ERR_NOT_FOUND, "token '%s' is revoked", out->name);
        else if (out->expires_ns && (int64_t)cs_wall_ns() >= out->expires_ns)
            rc = cs_error_set(err, CS_ERR_NOT_FOUND, "token '%s' has expired", out->name);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    cs_vec_free(&v);
    return rc;
}

static cs_status count_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    (void)ncols, (void)err;
    *(int64_t *)user = c[0].type == CS__SQL_INT ? c[0].i : 0;
    return CS_OK;
}

cs_status cs_registry_token_count(cs_registry_t *r, int64_t *n, cs_error *err)
{
    *n = 0;
    return cs__select(r, "SELECT COUNT(*) FROM tokens WHERE revoked_ns = 0", 0, NULL, count_row, n,
                      err);
}

bool cs_registry_token_allows_model(const cs_registry_token *t, const char *model)
{
    return fnmatch(t->models, model, 0) == 0;
}

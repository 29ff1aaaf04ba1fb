/*
 * admit.c - the one admission step every request passes before its body is read: who is
 * asking (a bearer token) and whether their role and model scope allow the route.
 *
 * server.c calls cs_api_admit at the headers for every request whose route exists, the
 * streaming push included, so no handler can forget it and a refused upload is never read.
 * Each route declares the least role it needs (routes.c); roles nest (viewer < invoker <
 * deployer < admin). A token's models glob limits the model-scoped routes ({m}) it may
 * call. Failures follow RFC 6750: 401 with `WWW-Authenticate: Bearer` when no valid token
 * was presented (missing, malformed, unknown, expired, revoked), 403 naming the permission
 * that is missing when the token is valid but not enough.
 *
 * Cost with authentication on: one sha256 and one indexed read of the token's row per
 * request (cs_registry_token_check); with it off, nothing.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* What each role adds, for messages: "cannot infer (needs role invoker)". */
static const char *const verbs[] = {"call", "read", "infer", "deploy", "administer"};

static void unauthorized(cs_api_req *r, const char *error, const char *why)
{
    cs_api_error(r, MHD_HTTP_UNAUTHORIZED, "%s", why);
    char challenge[160];
    snprintf(challenge, sizeof challenge, "Bearer realm=\"capstan\"%s%s%s",
             error ? ", error=\"" : "", error ? error : "", error ? "\"" : "");
    cs_api_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
}

bool cs_api_admit(cs_api_req *r)
{
    cs_server *s = r->srv;
    r->role = s->opt.auth ? CS_ROLE_NONE : CS_ROLE_ADMIN;
    if (!s->opt.auth) return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (r->route->need == CS_ROLE_NONE) {
        /* Public: a valid token still says who is asking (GET /api/v1/whoami shows it); a
         * missing or bad one refuses nothing. */
        cs_registry_token t;
        cs_error err;
        if (h && strncasecmp(h, "Bearer ", 7) == 0 &&
            cs_registry_token_check(s->opt.registry, h + 7 + strspn(h + 7, " "), &r->arena, &t,
                                    &err) == CS_OK) {
            snprintf(r->principal, sizeof r->principal, "%s", t.name);
            r->role = t.role;
        }
        return true;
    }
    if (!h) {
        unauthorized(r, NULL,
                     "this server needs a bearer token: send 'Authorization: Bearer "
                     "<token>' (capstan token create makes one)");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(r, "invalid_request", "the Authorization header must be 'Bearer <token>'");
        return false;
    }
    const char *secret = h + 7;
    while (*secret == ' ') secret++;
    cs_registry_token t;
    cs_error err;
    cs_status rc = cs_registry_token_check(s->opt.registry, secret, &r->arena, &t, &err);
    if (rc == CS_ERR_NOT_FOUND) {
        unauthorized(r, "invalid_token", err.msg);
        return false;
    }
    if (rc != CS_OK) {
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot check the token: %s", err.msg);
        return false;
    }
    snprintf(r->principal, sizeof r->principal, "%s", t.name);
    r->role = t.role;
    cs_registry_role need = r->route->need;
    if (t.role < need) {
        cs_api_error(r, MHD_HTTP_FORBIDDEN, "token '%s' (role %s) cannot %s: %s %s needs role %s",
                     t.name, cs_registry_role_name(t.role), verbs[need], r->method,
                     r->route->pattern, cs_registry_role_name(need));
        return false;
    }
    if (r->model[0] && !cs_registry_token_allows_model(&t, r->model)) {
        cs_api_error(r, MHD_HTTP_FORBIDDEN, "token '%s' may not %s model '%s' (its models: %s)",
                     t.name, verbs[need], r->model, t.models);
        return false;
    }
    return true;
}

/* The admin token "bootstrap" with the operator's secret (a Kubernetes Secret's): stored
 * hashed, the same on every replica and every restart; no admin.token file is written. */
static cs_status bootstrap_from_secret(cs_server *s, cs_error *err)
{
    cs_registry_token_ensured how;
    cs_status rc = cs_registry_token_ensure(s->opt.registry, "bootstrap", CS_ROLE_ADMIN,
                                            s->opt.bootstrap_token, &how, err);
    if (rc != CS_OK) return cs_error_prefix(err, "bootstrap token: ");
    static const char *const said[] = {
        [CS_TOKEN_KEPT] = "bootstrap admin token in place",
        [CS_TOKEN_CREATED] = "bootstrap admin token created from the given secret",
        [CS_TOKEN_ROTATED] = "bootstrap admin token rotated: the given secret replaces the old",
        [CS_TOKEN_REVOKED] = "bootstrap admin token is revoked: give a new secret to revive it",
    };
    cs_log(how == CS_TOKEN_REVOKED ? CS_LOG_WARN : CS_LOG_INFO, said[how], "token", "bootstrap",
           NULL);
    return CS_OK;
}

cs_status cs_api_auth_bootstrap(cs_server *s, cs_error *err)
{
    if (!s->opt.auth) return CS_OK;
    if (!s->opt.registry)
        return cs_error_set(err, CS_ERR_INVALID, "--auth tokens needs the registry's store");
    if (s->opt.bootstrap_token) return bootstrap_from_secret(s, err);
    int64_t live;
    cs_status rc = cs_registry_token_count(s->opt.registry, &live, err);
    if (rc != CS_OK || live > 0) return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/admin.token", s->opt.data_dir);
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    char secret[CS_REGISTRY_TOKEN_LEN];
    cs_registry_token t;
    /* A name of its own each time, so a revoked first token never blocks a new one. */
    char name[32];
    snprintf(name, sizeof name, "admin-%lld", (long long)(cs_wall_ns() / 1000000000));
    rc = cs_registry_token_create(s->opt.registry, name, CS_ROLE_ADMIN, "*", 0, "capstan", &arena,
                                  &t, secret, err);
    cs_arena_free(&arena);
    if (rc != CS_OK) return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || dprintf(fd, "%s\n", secret) < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        memset(secret, 0, sizeof secret);
        return cs_error_set(err, CS_ERR_IO, "cannot write the admin token file in --data-dir: %s",
                            strerror(e));
    }
    close(fd);
    memset(secret, 0, sizeof secret);
    cs_log(CS_LOG_WARN,
           "no token existed: created an admin token (its secret is in the file, "
           "readable by this user only)",
           "token", name, "file", path, NULL);
    return CS_OK;
}

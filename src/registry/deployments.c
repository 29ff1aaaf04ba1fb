/*
 * deployments.c - declared deployments in the registry's store: put (create or replace, as
 * kubectl apply does), get, list, delete, and the audit entries of their changes of state.
 *
 * The spec is stored as the canonical JSON text the runtime renders, so comparing two
 * specs is comparing two strings: an apply of an unchanged spec writes nothing. Each
 * change is audited in the same transaction as the write, with the deployment's name in
 * the audit entry's model field (so /api/v1/audit?model=NAME lists its history).
 */
#include "registry/registry_int.h"

#include "base/clock.h"
#include "base/name.h"
#include "base/vec.h"

#include <string.h>

#define COLUMNS "name, spec, generation, created_ns, updated_ns"

typedef struct rows {
    cs_arena *arena;
    cs_vec *items; /* cs_registry_deployment */
} rows;

static cs_status deployment_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    rows *r = user;
    (void)ncols;
    cs_registry_deployment d = {
        .name = cs_arena_strndup(r->arena, c[0].s, strlen(c[0].s)),
        .spec = cs_arena_strndup(r->arena, c[1].s, strlen(c[1].s)),
        .generation = c[2].i,
        .created_ns = c[3].i,
        .updated_ns = c[4].i,
    };
    if (!d.name || !d.spec || cs_vec_push(r->items, &d) != CS_OK)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

#define SELECT_ALL "SELECT " COLUMNS " FROM deployments ORDER BY name"
#define SELECT_ONE "SELECT " COLUMNS " FROM deployments WHERE name = ?1"

static cs_status check_name(const char *name, cs_error *err)
{
    return cs_dns_label(name)
               ? CS_OK
               : cs_error_set(err, CS_ERR_INVALID, "deployment name '%.64s' is not a DNS label",
                              name ? name : "");
}

cs_status cs_registry_deployment_put(cs_registry_t *r, const char *name, const char *spec,
                                     const char *actor, cs_arena *arena,
                                     cs_registry_deployment *out, bool *created, bool *changed,
                                     cs_error *err)
{
    cs_status rc = check_name(name, err);
    if (rc == CS_OK) rc = cs__check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_deployment));
    rows rw = {arena, &v};
    cs__tx t;
    *created = *changed = false;
    rc = cs__tx_begin(r, &t, true, err);
    if (rc == CS_OK) {
        cs__sql_val key[] = {cs__sql_text(name)};
        rc = t.s.iface->exec(t.s.ctx, SELECT_ONE, 1, key, deployment_row, &rw, err);
        const cs_registry_deployment *old = v.len ? cs_vec_at(&v, 0) : NULL;
        int64_t now = (int64_t)cs_wall_ns();
        if (rc == CS_OK && old && !strcmp(old->spec, spec)) {
            *out = *old;
        } else if (rc == CS_OK) {
            *out = (cs_registry_deployment){cs_arena_strndup(arena, name, strlen(name)),
                                            cs_arena_strndup(arena, spec, strlen(spec)),
                                            old ? old->generation + 1 : 1,
                                            old ? old->created_ns : now, now};
            if (!out->name || !out->spec) rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
            cs__sql_val p[] = {cs__sql_text(name), cs__sql_text(spec), cs__sql_int(out->generation),
                               cs__sql_int(out->created_ns), cs__sql_int(now)};
            const char *sql = old ? "UPDATE deployments SET spec = ?2, generation = ?3, "
                                    "created_ns = ?4, updated_ns = ?5 WHERE name = ?1"
                                  : "INSERT INTO deployments (" COLUMNS
                                    ") VALUES (?1, ?2, ?3, ?4, ?5)";
            if (rc == CS_OK) rc = t.s.iface->exec(t.s.ctx, sql, 5, p, NULL, NULL, err);
            if (rc == CS_OK)
                rc =
                    cs__audit_append(&t.s, actor, old ? "deployment.updated" : "deployment.created",
                                     name, 0, NULL, old ? old->spec : NULL, spec, err);
            *created = !old;
            *changed = true;
        }
        rc = cs__tx_end(r, &t, rc, err);
    }
    cs_vec_free(&v);
    if (rc != CS_OK) *created = *changed = false;
    return rc;
}

cs_status cs_registry_deployment_get(cs_registry_t *r, const char *name, cs_arena *arena,
                                     cs_registry_deployment *out, cs_error *err)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_deployment));
    rows rw = {arena, &v};
    cs__sql_val key[] = {cs__sql_text(name)};
    cs_status rc = cs__select(r, SELECT_ONE, 1, key, deployment_row, &rw, err);
    if (rc == CS_OK && v.len == 0)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
    if (rc == CS_OK) *out = *(cs_registry_deployment *)cs_vec_at(&v, 0);
    cs_vec_free(&v);
    return rc;
}

cs_status cs_registry_deployment_list(cs_registry_t *r, cs_arena *arena,
                                      cs_registry_deployment **items, int *n, cs_error *err)
{
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_deployment));
    rows rw = {arena, &v};
    cs_status rc = cs__select(r, SELECT_ALL, 0, NULL, deployment_row, &rw, err);
    *items = NULL;
    *n = 0;
    if (rc == CS_OK) rc = cs__rows_copy(&v, arena, items, n, err);
    cs_vec_free(&v);
    return rc;
}

cs_status cs_registry_deployment_delete(cs_registry_t *r, const char *name, const char *actor,
                                        cs_error *err)
{
    cs_status rc = cs__check_actor(&actor, err);
    if (rc != CS_OK) return rc;
    cs_arena arena;
    cs_arena_init(&arena, 4096);
    cs_vec v;
    cs_vec_init(&v, sizeof(cs_registry_deployment));
    rows rw = {&arena, &v};
    cs__tx t;
    rc = cs__tx_begin(r, &t, true, err);
    if (rc == CS_OK) {
        cs__sql_val p[] = {cs__sql_text(name)};
        rc = t.s.iface->exec(t.s.ctx, SELECT_ONE, 1, p, deployment_row, &rw, err);
        if (rc == CS_OK && v.len == 0)
            rc = cs_error_set(err, CS_ERR_NOT_FOUND, "no deployment '%.64s'", name);
        if (rc == CS_OK)
            rc = t.s.iface->exec(t.s.ctx, "DELETE FROM deployments WHERE name = ?1", 1, p, NULL,
                                 NULL, err);
        if (rc == CS_OK)
            rc = cs__audit_append(&t.s, actor, "deployment.deleted", name, 0, NULL,
                                  ((cs_registry_deployment *)cs_vec_at(&v, 0))->spec, NULL, err);
        rc = cs__tx_end(r, &t, rc, err);
    }
    cs_vec_free(&v);
    cs_arena_free(&arena);
    return rc;
}

cs_status cs_registry_deployment_event(cs_registry_t *r, const char *name, const char *action,
                                       const char *detail, cs_error *err)
{
    cs__tx t;
    cs_status rc = cs__tx_begin(r, &t, true, err);
    if (rc == CS_OK) {
        rc = cs__audit_append(&t.s, "capstan", action, name, 0, NULL, NULL, detail, err);
        rc = cs__tx_end(r, &t, rc, err);
    }
    return rc;
}

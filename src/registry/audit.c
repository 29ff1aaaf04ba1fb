/*
 * audit.c - the append-only audit log, and the JSON form of registry records.
 *
 * Every change appends one row in the same transaction as the change, so the log and the
 * data never disagree: a rolled-back change leaves no entry and a committed one always
 * has one. Entries carry the changed object before and after as JSON - the same JSON the
 * API returns and webhooks send, built here with jansson so escaping is never hand-made.
 * The log is never updated or deleted through this module.
 */
#include "registry/registry_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/vec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- JSON ------------------------------------------------------------------------------ */

/* RFC 3339 UTC with nanoseconds: "2025-01-02T03:04:05.123456789Z". */
json_t *cs__timestamp_json(int64_t ns)
{
    char buf[48];
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09dZ", (int)(ns % 1000000000));
    return json_string(buf);
}

static json_t *labels_object(int n, const cs_registry_label *labels)
{
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++) {
        if (json_object_set_new(o, labels[i].key, json_string(labels[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *cs__json_time(int64_t ns)
{
    return cs__timestamp_json(ns);
}

char *cs__json_text(json_t *v, cs_arena *arena)
{
    if (!v) return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *copy = s ? cs_arena_strndup(arena, s, strlen(s)) : NULL;
    free(s);
    json_decref(v);
    return copy;
}

char *cs__labels_json(int n, const cs_registry_label *labels, cs_arena *arena)
{
    return cs__json_text(labels_object(n, labels), arena);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const cs_registry_label *)a)->key, ((const cs_registry_label *)b)->key);
}

cs_status cs__labels_parse(const char *text, cs_arena *arena, int *n,
                           const cs_registry_label **labels, cs_error *err)
{
    cs_status rc = CS_ERR_IO;
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    *n = 0;
    *labels = NULL;
    if (!json_is_object(o) || json_object_size(o) > CS_REGISTRY_LABELS_MAX) {
        cs_error_set(err, rc, "stored labels are corrupt: %s", text);
        goto out;
    }
    size_t count = json_object_size(o);
    cs_registry_label *items = cs_arena_alloc(arena, (count ? count : 1) * sizeof *items, 8);
    if (!items) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    const char *key;
    json_t *value;
    size_t i = 0;
    json_object_foreach(o, key, value)
    {
        if (!json_is_string(value)) {
            cs_error_set(err, rc, "stored labels are corrupt: %s", text);
            goto out;
        }
        items[i].key = cs_arena_strndup(arena, key, strlen(key));
        items[i].value =
            cs_arena_strndup(arena, json_string_value(value), json_string_length(value));
        if (!items[i].key || !items[i].value) {
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        i++;
    }
    qsort(items, count, sizeof *items, by_key);
    *n = (int)count;
    *labels = items;
    rc = CS_OK;
out:
    json_decref(o);
    return rc;
}

json_t *cs__model_to_json(const cs_registry_model *m)
{
    return json_pack("{s:s, s:s, s:o*, s:s, s:o*, s:o*}", "name", m->name, "description",
                     m->description, "labels", labels_object(m->n_labels, m->labels), "created_by",
                     m->created_by, "created_at", cs__timestamp_json(m->created_ns), "updated_at",
                     cs__timestamp_json(m->updated_ns));
}

json_t *cs__version_to_json(const cs_registry_version *v)
{
    json_error_t jerr;
    json_t *schema = json_loads(v->io_schema, 0, &jerr);
    char fp[CS_REGISTRY_FINGERPRINT_MAX] = "";
    if (v->signer_key && *v->signer_key) cs_registry_key_fingerprint(v->signer_key, fp);
    return json_pack("{s:s, s:I, s:s, s:I, s:s, s:o*, s:o*, s:{s:s, s:s, s:s, s:s}, s:s, s:s, "
                     "s:o*, s:o*, s:o, s:s}",
                     "model", v->model, "version", (json_int_t)v->version, "digest", v->digest,
                     "size", (json_int_t)v->size, "format", v->format, "io_schema", schema,
                     "labels", labels_object(v->n_labels, v->labels), "lineage", "source_uri",
                     v->source_uri, "run_id", v->run_id, "parent_version", v->parent_version,
                     "dataset_digest", v->dataset_digest, "state", cs_registry_state_name(v->state),
                     "created_by", v->created_by, "created_at", cs__timestamp_json(v->created_ns),
                     "updated_at", cs__timestamp_json(v->updated_ns), "signer",
                     fp[0] ? json_string(fp) : json_null(), "description",
                     v->description ? v->description : "");
}

json_t *cs__alias_to_json(const cs_registry_alias *a)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:o*}", "model", a->model, "name", a->name, "version",
                     (json_int_t)a->version, "updated_by", a->updated_by, "updated_at",
                     cs__timestamp_json(a->updated_ns));
}

/* Public renderings: the same JSON as a malloc'd string. */
static char *dump(json_t *v)
{
    char *out = NULL;
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (s) out = cs_strdup(s);
    free(s);
    json_decref(v);
    return out;
}

char *cs_registry_model_json(const cs_registry_model *m)
{
    return dump(cs__model_to_json(m));
}

char *cs_registry_version_json(const cs_registry_version *v)
{
    return dump(cs__version_to_json(v));
}

char *cs_registry_alias_json(const cs_registry_alias *a)
{
    return dump(cs__alias_to_json(a));
}

char *cs_registry_audit_json(const cs_registry_audit *a)
{
    json_error_t jerr;
    json_t *before = json_loads(a->before, JSON_DECODE_ANY, &jerr);
    json_t *after = json_loads(a->after, JSON_DECODE_ANY, &jerr);
    return dump(json_pack("{s:I, s:o*, s:s, s:s, s:s, s:I, s:s, s:o*, s:o*}", "id",
                          (json_int_t)a->id, "at", cs__timestamp_json(a->at_ns), "actor", a->actor,
                          "action", a->action, "model", a->model, "version", (json_int_t)a->version,
                          "alias", a->alias, "before", before, "after", after));
}

/* --- the log ----------------------------------------------------------------------------- */

/* The changes other servers of a cluster act on (cs_registry_change's kinds): what they
 * serve. Token changes need no word (every request reads its token), nor do a deployment's
 * changes of state (each server scales its own instances). */
static bool announced(const char *action)
{
    static const char *const kinds[] = {
        "model.deleted",      "version.created",    "version.state_changed",
        "version.deleted",    "alias.moved",        "alias.deleted",
        "deployment.created", "deployment.updated", "deployment.deleted"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(action, kinds[i])) return true;
    return false;
}

cs_status cs__audit_append(cs__store *s, const char *actor, const char *action, const char *model,
                           int64_t version, const char *alias, const char *before,
                           const char *after, cs_error *err)
{
    cs__sql_val p[] = {
        cs__sql_int((int64_t)cs_wall_ns()),
        cs__sql_text(actor),
        cs__sql_text(action),
        cs__sql_text(model),
        cs__sql_int(version),
        cs__sql_text(alias ? alias : ""),
        cs__sql_text(before ? before : "null"),
        cs__sql_text(after ? after : "null"),
    };
    cs_status rc = s->iface->exec(s->ctx,
                                  "INSERT INTO audit (at_ns, actor, action, model, version, "
                                  "alias, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                  8, p, NULL, NULL, err);
    if (rc != CS_OK || !s->iface->notify || !announced(action)) return rc;
    /* "ACTION NAME VERSION": the names are DNS labels, so spaces separate them safely. */
    char payload[64 + 2 * CS_REGISTRY_NAME_MAX];
    snprintf(payload, sizeof payload, "%s %s %" PRId64, action, model, version);
    return s->iface->notify(s->ctx, payload, err);
}

typedef struct audit_rows {
    cs_arena *arena;
    cs_vec items;
} audit_rows;

static const char *col_text(cs_arena *a, const cs__sql_val *c)
{
    const char *s = c->type == CS__SQL_TEXT ? c->s : "";
    return cs_arena_strndup(a, s, strlen(s));
}

static cs_status audit_row(void *user, int ncols, const cs__sql_val *c, cs_error *err)
{
    audit_rows *rows = user;
    cs_registry_audit e = {
        .id = c[0].i,
        .at_ns = c[1].i,
        .actor = col_text(rows->arena, &c[2]),
        .action = col_text(rows->arena, &c[3]),
        .model = col_text(rows->arena, &c[4]),
        .version = c[5].i,
        .alias = col_text(rows->arena, &c[6]),
        .before = col_text(rows->arena, &c[7]),
        .after = col_text(rows->arena, &c[8]),
    };
    if (!e.actor || !e.action || !e.model || !e.alias || !e.before || !e.after ||
        cs_vec_push(&rows->items, &e) != CS_OK)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading the audit log");
    return CS_OK;
}

cs_status cs__audit_list(cs__store *s, const char *model, int64_t before_id, int limit,
                         cs_arena *arena, cs_registry_audit **items, int *n, cs_error *err)
{
    audit_rows rows = {arena};
    cs_vec_init(&rows.items, sizeof(cs_registry_audit));
    cs__sql_val p[] = {cs__sql_int(before_id > 0 ? before_id : INT64_MAX), cs__sql_int(limit),
                       cs__sql_text(model)};
    const char *sql = model ? "SELECT id, at_ns, actor, action, model, version, alias, before, "
                              "after FROM audit WHERE id < ?1 AND model = ?3 ORDER BY id DESC "
                              "LIMIT ?2"
                            : "SELECT id, at_ns, actor, action, model, version, alias, before, "
                              "after FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2";
    cs_status rc = s->iface->exec(s->ctx, sql, model ? 3 : 2, p, audit_row, &rows, err);
    if (rc == CS_OK) {
        size_t bytes = rows.items.len * sizeof(cs_registry_audit);
        *items = cs_arena_alloc(arena, bytes ? bytes : 1, 8);
        if (!*items)
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        else if (bytes)
            memcpy(*items, rows.items.data, bytes);
        *n = (int)rows.items.len;
    }
    cs_vec_free(&rows.items);
    return rc;
}

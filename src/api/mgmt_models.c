/*
 * mgmt_models.c - /api/v1/models and /api/v1/models/{m}: list, create, get, patch, delete.
 *
 * Each handler is one registry call on the HTTP thread (a store round trip: microseconds on
 * SQLite, a network round trip on PostgreSQL) and answers with the registry's JSON. A model
 * read also lists its aliases, so that one GET shows what is served.
 */
#include "api/api.h"

#include "base/alloc.h"

#include <string.h>

void cs_api_models_list(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    cs_registry_list_opts o;
    if (!reg || !cs_api_list_opts_or_400(r, &o)) return;
    cs_registry_model *items;
    int n;
    const char *next;
    cs_error err;
    if (cs_registry_model_list(reg, &o, &r->arena, &items, &n, &next, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (int i = 0; i < n; i++)
        if (!cs_api_list_add_or_500(r, &b, cs_registry_model_json(&items[i]))) return;
    cs_api_list_reply(r, &b, next);
}

/* The optional "description" (a string) and "labels" of a create or patch body. Sets
 * *desc to NULL when absent and *has_labels when labels were given; answers 400 and
 * returns false for a wrong type. */
static bool model_fields_or_400(cs_api_req *r, json_t *body, const char **desc, bool *has_labels,
                                int *n, cs_registry_label **l)
{
    json_t *d = json_object_get(body, "description");
    json_t *labels = json_object_get(body, "labels");
    if (d && !json_is_string(d)) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"description\" must be a string");
        return false;
    }
    *desc = d ? json_string_value(d) : NULL;
    *has_labels = labels != NULL;
    return !labels || cs_api_labels_or_400(r, labels, "labels", n, l);
}

/* {"name", "description"?, "labels"?} -> 201 and the model. */
void cs_api_model_create(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    json_t *body = reg ? cs_api_json_or_400(r) : NULL;
    if (!body) return;
    const char *name = json_string_value(json_object_get(body, "name")), *desc;
    bool has_labels;
    int n = 0;
    cs_registry_label *l = NULL;
    cs_registry_model m;
    cs_error err;
    static const char *const fields[] = {"name", "description", "labels", NULL};
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if (!name)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"name\" (a string) is required");
    else if (!model_fields_or_400(r, body, &desc, &has_labels, &n, &l))
        ;
    else if (cs_registry_model_create(reg, name, desc ? desc : "", n, l, cs_api_actor(r), &r->arena,
                                      &m, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else
        cs_api_json_text(r, MHD_HTTP_CREATED, cs_registry_model_json(&m));
    json_decref(body);
}

/* The model's JSON with "aliases": {"prod": 3, ...} added. */
void cs_api_model_get(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_registry_model m;
    cs_registry_alias *aliases;
    int n;
    cs_error err;
    if (cs_registry_model_get(reg, r->model, &r->arena, &m, &err) != CS_OK ||
        cs_registry_alias_list(reg, r->model, &r->arena, &aliases, &n, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    char *text = cs_registry_model_json(&m);
    json_error_t jerr;
    json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
    json_t *a = json_object();
    cs_free(text);
    for (int i = 0; j && a && i < n; i++)
        json_object_set_new(a, aliases[i].name, json_integer((json_int_t)aliases[i].version));
    if (j && a && json_object_set(j, "aliases", a) == 0) {
        json_decref(a);
        cs_api_json(r, MHD_HTTP_OK, j);
        return;
    }
    json_decref(a);
    json_decref(j);
    cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory encoding the model");
}

/* {"description"?, "labels"?}: each given field is replaced, the others are kept. */
void cs_api_model_patch(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    json_t *body = reg ? cs_api_json_or_400(r) : NULL;
    if (!body) return;
    const char *desc;
    bool has_labels;
    int n = 0;
    cs_registry_label *l = NULL;
    cs_registry_model m;
    cs_error err;
    static const char *const fields[] = {"description", "labels", NULL};
    if (!cs_api_fields_or_400(r, body, fields) ||
        !model_fields_or_400(r, body, &desc, &has_labels, &n, &l))
        ;
    else if (cs_registry_model_patch(reg, r->model, desc, has_labels, n, l, cs_api_actor(r),
                                     &r->arena, &m, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else
        cs_api_json_text(r, MHD_HTTP_OK, cs_registry_model_json(&m));
    json_decref(body);
}

void cs_api_model_delete(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_error err;
    if (cs_registry_model_delete(reg, r->model, cs_api_actor(r), &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_api_reply(r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
}

/*
 * mgmt_aliases.c - /api/v1/models/{m}/aliases[/{a}]: list, put (create or move), delete.
 *
 * Moving an alias is one registry transaction; when it changes what the model serves
 * (`prod`, or `latest` once `prod` is gone), serving.c then loads the new target, switches
 * traffic and unloads the old one, all before this request is answered, so a client that
 * sees 200 knows the move is complete. The load runs on this HTTP thread (its other
 * connections wait for it; the other threads do not), as repository loads do.
 */
#include "api/api.h"

void cs_api_aliases_list(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_registry_alias *items;
    int n;
    cs_error err;
    if (cs_registry_alias_list(reg, r->model, &r->arena, &items, &n, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (int i = 0; i < n; i++)
        if (!cs_api_list_add_or_500(r, &b, cs_registry_alias_json(&items[i]))) return;
    cs_api_list_reply(r, &b, NULL);
}

/* {"version": N}. routes.c captures the alias name into r->version. */
void cs_api_alias_put(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    json_t *body = reg ? cs_api_json_or_400(r) : NULL;
    if (!body) return;
    json_t *version = json_object_get(body, "version");
    cs_registry_alias a;
    cs_error err;
    static const char *const fields[] = {"version", NULL};
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if (!json_is_integer(version) || json_integer_value(version) < 1)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"version\" (a version number) is required");
    else if (cs_registry_alias_put(reg, r->model, r->version, json_integer_value(version),
                                   cs_api_actor(r), &r->arena, &a, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else {
        cs_api_serving_refresh(r->srv, r->model, 0);
        cs_api_json_text(r, MHD_HTTP_OK, cs_registry_alias_json(&a));
    }
    json_decref(body);
}

void cs_api_alias_delete(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_error err;
    if (cs_registry_alias_delete(reg, r->model, r->version, cs_api_actor(r), &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_api_serving_refresh(r->srv, r->model, 0);
    cs_api_reply(r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
}

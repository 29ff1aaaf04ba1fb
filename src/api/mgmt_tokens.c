/*
 * mgmt_tokens.c - /api/v1/tokens: list, create (the secret is in that answer only) and
 * revoke API tokens. Admin only (routes.c); records and audit live in the registry
 * (tokens.c).
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <stdio.h>
#include <string.h>

void cs_api_tokens_list(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_registry_token *items;
    int n;
    cs_error err;
    if (cs_registry_token_list(reg, &r->arena, &items, &n, &err) != CS_OK) {
        cs_api_registry_error(r, &err);
        return;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    for (int i = 0; i < n; i++)
        if (!cs_api_list_add_or_500(r, &b, cs_registry_token_json(&items[i]))) return;
    cs_api_list_reply(r, &b, NULL);
}

/* {"name", "role", "models"?: glob, "ttl"?: "30d"} -> the record with "token": the secret. */
void cs_api_token_create(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    json_t *body = reg ? cs_api_json_or_400(r) : NULL;
    if (!body) return;
    static const char *const fields[] = {"name", "role", "models", "ttl", NULL};
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *role = json_string_value(json_object_get(body, "role"));
    json_t *models = json_object_get(body, "models"), *ttl = json_object_get(body, "ttl");
    int64_t ttl_ns = 0;
    cs_registry_token t;
    char secret[CS_REGISTRY_TOKEN_LEN];
    cs_error err;
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if (!name)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"name\" (a string) is required");
    else if (cs_registry_role_parse(role) == CS_ROLE_NONE)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "\"role\" must be \"viewer\", \"invoker\", \"deployer\" or \"admin\"");
    else if (models && !json_is_string(models))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"models\" must be a glob string, e.g. \"team-*\"");
    else if (ttl && (!json_is_string(ttl) || cs_duration_parse(json_string_value(ttl), &ttl_ns) ||
                     ttl_ns <= 0))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "\"ttl\" must be a positive duration such as \"30d\", \"12h\" or \"90m\"");
    else if (cs_registry_token_create(reg, name, cs_registry_role_parse(role),
                                      json_string_value(models), ttl_ns, cs_api_actor(r), &r->arena,
                                      &t, secret, &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else {
        char *text = cs_registry_token_json(&t);
        json_t *j = text ? json_loads(text, 0, NULL) : NULL;
        cs_free(text);
        if (j) json_object_set_new(j, "token", json_string(secret));
        memset(secret, 0, sizeof secret);
        cs_api_json(r, MHD_HTTP_CREATED, j);
    }
    json_decref(body);
}

/* DELETE /api/v1/tokens/{name}: revoked at once; the next request with it is 401. */
void cs_api_token_revoke(cs_api_req *r)
{
    cs_registry_t *reg = cs_api_registry_or_404(r);
    if (!reg) return;
    cs_error err;
    if (cs_registry_token_revoke(reg, r->name, cs_api_actor(r), &err) != CS_OK)
        cs_api_registry_error(r, &err);
    else
        cs_api_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "name", r->name, "revoked", 1));
}

/* Who the token is, so that the dashboard shows only what its role may do: public, so that a
 * page can ask before it has a token (role "none" then, and for a token that is not valid).
 * With authentication off every caller is an anonymous admin. */
void cs_api_whoami(cs_api_req *r)
{
    cs_api_json(r, MHD_HTTP_OK,
                json_pack("{s:s, s:s, s:b}", "name", r->principal[0] ? r->principal : "anonymous",
                          "role", cs_registry_role_name(r->role), "auth", r->srv->opt.auth));
}

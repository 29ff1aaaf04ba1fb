/*
 * mgmt_deployments.c - /api/v1/deployments: list, create (POST, 409 when it exists), apply
 * (PUT: create or replace, as kubectl apply), get with status, delete, and the scale
 * subresource (PATCH .../scale {"min", "max"}), and rollouts (GET .../rollout; POST
 * .../rollout/start {"to"}, .../promote, .../abort, .../undo) as `kubectl rollout` has them. The
 * spec is validated whole by runtime/deploy_spec.c (400 with the field's path); the deployer
 * (runtime/deploy.c) stores it and makes it so.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

static cs_deployer *deployer_or_404(cs_api_req *r)
{
    if (!r->srv->deployer)
        cs_api_error(r, MHD_HTTP_NOT_FOUND, "this server runs without a model registry");
    return r->srv->deployer;
}

static int status_of(cs_status rc)
{
    return rc == CS_ERR_NOT_FOUND ? MHD_HTTP_NOT_FOUND
           : rc == CS_ERR_INVALID ? MHD_HTTP_BAD_REQUEST
           : rc == CS_ERR_EXISTS  ? MHD_HTTP_CONFLICT
                                  : cs_registry_http_status(rc);
}

static void reply_deployment(cs_api_req *r, int status)
{
    cs_error err;
    json_t *j = cs_deployer_get(r->srv->deployer, r->name, &err);
    if (j)
        cs_api_json(r, status, j);
    else
        cs_api_error(r, status_of(err.code), "%s", err.msg);
}

void cs_api_deployments_list(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    cs_api_json(r, MHD_HTTP_OK, json_pack("{s:o}", "items", cs_deployer_list(r->srv->deployer)));
}

void cs_api_deployment_get(cs_api_req *r)
{
    if (deployer_or_404(r)) reply_deployment(r, MHD_HTTP_OK);
}

/* The body as a validated spec; for PUT its metadata.name must be the path's. */
static bool spec_or_400(cs_api_req *r, cs_deploy_spec *spec, bool named)
{
    json_t *body = cs_api_json_or_400(r);
    if (!body) return false;
    cs_error err;
    cs_status rc = cs_deploy_spec_parse(body, spec, &err);
    json_decref(body);
    if (rc != CS_OK) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
        return false;
    }
    if (named && strcmp(spec->name, r->name)) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "metadata.name: '%s' is not the name in the path ('%s')", spec->name, r->name);
        cs_deploy_spec_free(spec);
        return false;
    }
    snprintf(r->name, sizeof r->name, "%s", spec->name);
    return true;
}

static void apply(cs_api_req *r, bool named)
{
    cs_deploy_spec spec;
    if (!deployer_or_404(r) || !spec_or_400(r, &spec, named)) return;
    cs_error err;
    bool created = false;
    cs_status rc = CS_OK;
    if (!named && cs_deployer_has(r->srv->deployer, spec.name))
        rc = cs_error_set(&err, CS_ERR_EXISTS,
                          "deployment '%s' exists (PUT /api/v1/deployments/%s replaces it)",
                          spec.name, spec.name);
    if (rc == CS_OK)
        rc = cs_deployer_apply(r->srv->deployer, &spec, cs_api_actor(r), &created, &err);
    cs_deploy_spec_free(&spec);
    if (rc != CS_OK)
        cs_api_error(r, status_of(rc), "%s", err.msg);
    else
        reply_deployment(r, created ? MHD_HTTP_CREATED : MHD_HTTP_OK);
}

void cs_api_deployment_create(cs_api_req *r)
{
    apply(r, false);
}

void cs_api_deployment_apply(cs_api_req *r)
{
    apply(r, true);
}

void cs_api_deployment_delete(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    cs_error err;
    if (cs_deployer_delete(r->srv->deployer, r->name, cs_api_actor(r), &err) != CS_OK)
        cs_api_error(r, status_of(err.code), "%s", err.msg);
    else
        cs_api_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "name", r->name, "deleted", 1));
}

/* {"min"?: N, "max"?: M}: the instance bounds, as `kubectl scale` sets replicas. */
void cs_api_deployment_scale(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    json_t *body = cs_api_json_or_400(r);
    if (!body) return;
    static const char *const fields[] = {"min", "max", NULL};
    json_t *min = json_object_get(body, "min"), *max = json_object_get(body, "max");
    cs_error err;
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if ((!min && !max) || (min && !json_is_integer(min)) || (max && !json_is_integer(max)))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "give \"min\" and/or \"max\" as integers (0-%d; max 0 = unbounded)",
                     CS_DEPLOY_MAX_INST);
    else if (json_integer_value(min) < 0 || json_integer_value(max) < 0 ||
             json_integer_value(min) > CS_DEPLOY_MAX_INST ||
             json_integer_value(max) > CS_DEPLOY_MAX_INST)
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "\"min\" and \"max\" must be from 0 to %d",
                     CS_DEPLOY_MAX_INST);
    else if (cs_deployer_scale(r->srv->deployer, r->name, min ? (int)json_integer_value(min) : -1,
                               max ? (int)json_integer_value(max) : -1, cs_api_actor(r),
                               &err) != CS_OK)
        cs_api_error(r, status_of(err.code), "%s", err.msg);
    else
        reply_deployment(r, MHD_HTTP_OK);
    json_decref(body);
}

/* status.rollout alone (null when the deployment has had none). */
void cs_api_rollout_get(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    cs_error err;
    json_t *j = cs_deployer_get(r->srv->deployer, r->name, &err);
    if (!j) {
        cs_api_error(r, status_of(err.code), "%s", err.msg);
        return;
    }
    json_t *ro = json_object_get(json_object_get(j, "status"), "rollout");
    cs_api_json(r, MHD_HTTP_OK,
                json_pack("{s:s, s:O}", "name", r->name, "rollout", ro ? ro : json_null()));
    json_decref(j);
}

static void rollout_reply(cs_api_req *r, cs_status rc, const cs_error *err)
{
    if (rc != CS_OK)
        cs_api_error(r, status_of(rc), "%s", err->msg);
    else
        reply_deployment(r, MHD_HTTP_OK);
}

/* {"to": "3" | 3 | "prod"}: the deployment's one traffic target from now on. */
void cs_api_rollout_start(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    json_t *body = cs_api_json_or_400(r);
    if (!body) return;
    static const char *const fields[] = {"to", NULL};
    json_t *to = json_object_get(body, "to");
    char ref[32];
    cs_error err;
    if (!cs_api_fields_or_400(r, body, fields))
        ;
    else if (!(json_is_string(to) || json_is_integer(to)))
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "\"to\" is required: a version number or an alias to roll out");
    else {
        if (json_is_integer(to))
            snprintf(ref, sizeof ref, "%" JSON_INTEGER_FORMAT, json_integer_value(to));
        else
            snprintf(ref, sizeof ref, "%.31s", json_string_value(to));
        rollout_reply(
            r, cs_deployer_rollout_start(r->srv->deployer, r->name, ref, cs_api_actor(r), &err),
            &err);
    }
    json_decref(body);
}

static void rollout_action(cs_api_req *r, cs_rollout_action a)
{
    if (!deployer_or_404(r)) return;
    cs_error err;
    rollout_reply(r, cs_deployer_rollout(r->srv->deployer, r->name, a, cs_api_actor(r), &err),
                  &err);
}

void cs_api_rollout_promote(cs_api_req *r)
{
    rollout_action(r, CS_ROLLOUT_PROMOTE);
}

void cs_api_rollout_abort(cs_api_req *r)
{
    rollout_action(r, CS_ROLLOUT_ABORT);
}

void cs_api_rollout_undo(cs_api_req *r)
{
    if (!deployer_or_404(r)) return;
    cs_error err;
    rollout_reply(r, cs_deployer_rollout_undo(r->srv->deployer, r->name, cs_api_actor(r), &err),
                  &err);
}

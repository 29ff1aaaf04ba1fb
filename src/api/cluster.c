/*
 * cluster.c - cluster mode: what this server does when another replica of a shared
 * PostgreSQL registry changes what is served.
 *
 * Replicas keep no state of their own beyond caches of the store: the served default of
 * each model (serving.c) and the deployments' specs (runtime/deploy.c). The registry's
 * watch (registry/watch.c) reports each change another replica commits, within
 * milliseconds; this file runs the same refresh the replica that made it ran: a model's
 * versions or aliases -> cs_api_serving_refresh (load the new default, then drain the
 * old), a deployment's spec -> cs_deployer_reload. A resync (changes may have been missed)
 * refreshes every served model and every deployment. Calls arrive on the watch's thread,
 * one at a time; a refresh that loads a model holds later changes until it is done.
 */
#include "api/api.h"

#include "obs/log.h"

#include <string.h>

static void on_change(void *user, const cs_registry_change *c)
{
    cs_server *s = user;
    cs_error err;
    cs_status rc = CS_OK;
    if (!strcmp(c->kind, "resync")) {
        cs_api_serving_refresh_all(s);
        if (s->deployer) rc = cs_deployer_reload(s->deployer, NULL, &err);
    } else if (!strncmp(c->kind, "deployment.", 11)) {
        if (s->deployer) rc = cs_deployer_reload(s->deployer, c->name, &err);
    } else {
        /* A deleted or archived version may be loaded here by number: drain it too. */
        bool gone =
            !strcmp(c->kind, "version.deleted") || !strcmp(c->kind, "version.state_changed");
        cs_api_serving_refresh(s, c->name, gone ? c->version : 0);
    }
    if (rc != CS_OK)
        cs_log(CS_LOG_ERROR, "cluster: change not applied", "change", c->kind, "name", c->name,
               "error", err.msg, NULL);
}

cs_status cs__api_cluster_start(cs_server *s, cs_error *err)
{
    return s->opt.registry ? cs_registry_watch(s->opt.registry, on_change, s, err) : CS_OK;
}

void cs__api_cluster_stop(cs_server *s)
{
    if (s->opt.registry) cs_registry_unwatch(s->opt.registry);
}

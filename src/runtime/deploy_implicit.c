/*
 * deploy_implicit.c - implicit deployments: the models the server serves from a file
 * (--model NAME=PATH, DATA_DIR/models/NAME.onnx) run as deployments, so that one mechanism
 * keeps every model's instances (heals, scales and reports them) and no registry change or
 * other model can unload them. deploy.h says what users see.
 *
 * d->implicit holds what was declared (name -> implicit_src), whether a deployment serves it
 * now or an explicit deployment of that name shadows it; each implicit dep has a copy of its
 * own, which the controller reads without mu. The version is loaded into the runtime by the
 * declaring thread (so a --model that cannot load still stops the start), with the model's
 * own configuration and instances; the dep then joins the map, and the controller's first
 * pass adopts the loaded version and its instances into a slot (cs__dep_load_slot). Cost: one
 * model load per declaration; nothing on the request path beyond a deployment's.
 */
#include "runtime/deploy_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/name.h"
#include "obs/log.h"

#include <stdio.h>
#include <string.h>

static void src_free(implicit_src *src)
{
    if (src) cs_free(src->path);
    cs_free(src);
}

static implicit_src *src_new(const char *path, const cs_model_config *cfg, const char *origin)
{
    implicit_src *src = cs_calloc(1, sizeof *src);
    if (!src) return NULL;
    src->path = cs_strdup(path);
    src->cfg = *cfg;
    snprintf(src->origin, sizeof src->origin, "%s", origin);
    if (!src->path) src_free(src), src = NULL;
    return src;
}

/* The spec an implicit deployment shows and runs by: its one version at 100 percent, the
 * configuration's instances as both bounds and its batching. */
static cs_status implicit_spec(const char *name, const cs_model_config *cfg, cs_deploy_spec *out,
                               cs_error *err)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:i, s:i}], s:{s:i, s:i, s:i}, s:{s:i, s:I}}}",
                  "apiVersion", "capstan.dev/v1", "kind", "Deployment", "metadata", "name", name,
                  "spec", "model", name, "traffic", "version", 1, "percent", 100, "instances",
                  "min", cfg->instances, "max", cfg->instances, "containerConcurrency",
                  cfg->max_batch_requests, "batching", "maxBatchSize", cfg->max_batch_size,
                  "maxQueueDelayUs", (json_int_t)cfg->max_queue_delay_us);
    cs_status rc = doc ? cs_deploy_spec_parse(doc, out, err)
                       : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    json_decref(doc);
    return rc;
}

/* Replaces what is declared under name by src (taken; NULL withdraws it). Caller holds mu. */
static void declare(cs_deployer *d, const char *name, implicit_src *src)
{
    implicit_src *old = cs_map_get(&d->implicit, name);
    if (old) cs_map_del(&d->implicit, name);
    src_free(old);
    if (src && cs_map_put(&d->implicit, name, src) != CS_OK) src_free(src);
}

/* Loads name's version from own (taken) and adds its dep, unless a deployment took the name
 * meanwhile (then *shadowed, and the version is unloaded again). No lock held; *out is the
 * new dep (valid under mu until it is forgotten). */
static cs_status bring_up(cs_deployer *d, const char *name, implicit_src *own, bool *shadowed,
                          dep **out, cs_error *err)
{
    *shadowed = false;
    *out = NULL;
    cs_deploy_spec spec;
    cs_status rc = implicit_spec(name, &own->cfg, &spec, err);
    if (rc == CS_OK) {
        rc = cs_runtime_load(d->o.rt, name, CS__DEP_IMPLICIT_VERSION, own->path, &own->cfg, err);
        if (rc == CS_ERR_EXISTS) rc = CS_OK; /* loaded already: adopted as it is */
        if (rc != CS_OK) cs_deploy_spec_free(&spec);
    }
    if (rc != CS_OK) {
        src_free(own);
        return rc;
    }
    pthread_mutex_lock(&d->mu);
    *shadowed = cs_map_get(&d->deps, name) != NULL;
    if (!*shadowed) rc = cs__dep_add(d, &spec, 1, out, err);
    if (*out) {
        (*out)->implicit = own;
        own = NULL;
    }
    pthread_mutex_unlock(&d->mu);
    cs_deploy_spec_free(&spec);
    src_free(own);
    cs_error uerr;
    if (!*out) (void)cs_runtime_unload(d->o.rt, name, CS__DEP_IMPLICIT_VERSION, &uerr);
    return rc;
}

cs_status cs_deployer_implicit(cs_deployer *d, const char *name, const char *path,
                               const cs_model_config *cfg, const char *origin, bool replace,
                               bool *shadowed, cs_error *err)
{
    *shadowed = false;
    if (strlen(name) > CS_DEPLOY_NAME_MAX || !cs_dns_label(name))
        return cs_error_set(err, CS_ERR_INVALID,
                            "model '%.64s' is not a deployment name (a DNS label)", name);
    implicit_src *src = src_new(path, cfg, origin), *own = src_new(path, cfg, origin);
    if (!src || !own) {
        src_free(src);
        src_free(own);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&d->mu);
    dep *p = cs_map_get(&d->deps, name);
    if (p && p->implicit && !replace) {
        pthread_mutex_unlock(&d->mu);
        src_free(src);
        src_free(own);
        return cs_error_set(err, CS_ERR_EXISTS, "model '%s' is served already", name);
    }
    declare(d, name, src);
    if (p && !p->implicit) { /* an explicit deployment has the name: it keeps it */
        pthread_mutex_unlock(&d->mu);
        src_free(own);
        *shadowed = true;
        return CS_OK;
    }
    if (p) { /* a new configuration: the old instances drain first */
        cs__dep_forget(d, name);
        cs__dep_wait_freed(d);
    }
    pthread_mutex_unlock(&d->mu);
    cs_status rc = bring_up(d, name, own, shadowed, &p, err);
    pthread_mutex_lock(&d->mu);
    if (rc != CS_OK && !*shadowed) declare(d, name, NULL); /* nothing serves it */
    /* The first pass adopts the loaded version: a request after this call finds it. */
    uint64_t until = cs_now_ns() + 10ull * 1000000000;
    while (p && cs_map_get(&d->deps, name) == p && p->passed < 1 && cs_now_ns() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&d->passed, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

cs_status cs_deployer_implicit_drop(cs_deployer *d, const char *name, cs_error *err)
{
    pthread_mutex_lock(&d->mu);
    bool declared = cs_map_get(&d->implicit, name) != NULL;
    declare(d, name, NULL);
    dep *p = cs_map_get(&d->deps, name);
    if (p && p->implicit) {
        cs__dep_forget(d, name);
        cs__dep_wait_freed(d);
    }
    pthread_mutex_unlock(&d->mu);
    return declared ? CS_OK
                    : cs_error_set(err, CS_ERR_NOT_FOUND, "no implicit deployment '%.64s'", name);
}

void cs__dep_implicit_return(cs_deployer *d, const char *name)
{
    pthread_mutex_lock(&d->mu);
    const implicit_src *src = cs_map_get(&d->implicit, name);
    implicit_src *own = src && !cs_map_get(&d->deps, name) && !d->stop
                            ? src_new(src->path, &src->cfg, src->origin)
                            : NULL;
    pthread_mutex_unlock(&d->mu);
    if (!own) return;
    cs_error err;
    bool shadowed;
    dep *p;
    if (bring_up(d, name, own, &shadowed, &p, &err) != CS_OK)
        cs_log(CS_LOG_ERROR, "implicit deployment not restored", "deployment", name, "error",
               err.msg, NULL);
    else if (p)
        cs_log(CS_LOG_INFO, "implicit deployment restored", "deployment", name, NULL);
}

void cs__dep_implicit_free_all(cs_deployer *d)
{
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&d->implicit, &it, &key, &v)) src_free(v);
    cs_map_free(&d->implicit);
}

cs_status cs__dep_implicit_refuse(const dep *p, const char *what, cs_error *err)
{
    if (!p || !p->implicit) return CS_OK;
    return cs_error_set(err, CS_ERR_EXISTS,
                        "deployment '%s' is implicit (declared by %s) and cannot be %s; apply an "
                        "explicit deployment of that name to replace it",
                        p->spec.name, p->implicit->origin, what);
}

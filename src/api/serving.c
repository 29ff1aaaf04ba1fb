/*
 * serving.c - serving the registry's models under /v2/models/{m}[/versions/{v}], and the
 * hot swap when what a model serves changes.
 *
 * A registered model is loaded into the runtime on first use, not at start: a registry may
 * hold far more versions than the engine-thread budget (--threads) can run, and a model
 * nobody asks for should cost nothing. Its versions run as (name, "N"). The version a
 * request without one gets - the model's default - is the one the alias `prod` points to,
 * else `latest` (the highest ready version); this file keeps that choice per model in a
 * small table, so the hot path is one map lookup and one runtime acquire under `mu`, and
 * the registry is read only when something has to be loaded. /versions/{v} accepts a
 * number or an alias; an archived version is not served.
 *
 * The swap (cs_api_serving_refresh, called by the handlers that push, move or delete
 * aliases, archive or delete versions): load the new default and wait until it is ready,
 * switch the table entry, then unload the old version, which refuses new work at once
 * and returns when its queue has drained. A request that resolved the old version just
 * before the switch and submits just after it is resubmitted to the new one (v2_infer.c),
 * so no request fails for the move. If the new version cannot be loaded the old one keeps
 * serving and the failure is logged. Loads and swaps are serialised by `load_lock` (a load
 * takes milliseconds to seconds); `mu` is never held across a load or an unload.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/vec.h"
#include "obs/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define VERSION_MAX 24 /* an int64 in decimal */

typedef struct cs_api_serving {
    pthread_mutex_t mu;        /* guards `served`; held only for a lookup and an acquire */
    pthread_mutex_t load_lock; /* serialises loads and swaps */
    cs_map served;             /* model name -> char[VERSION_MAX], its default version */
} cs_api_serving;

cs_status cs_api_serving_init(cs_server *s, cs_error *err)
{
    if (!s->opt.registry) return CS_OK;
    s->serving = cs_calloc(1, sizeof *s->serving);
    if (!s->serving) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->serving->mu, NULL);
    pthread_mutex_init(&s->serving->load_lock, NULL);
    cs_map_init(&s->serving->served);
    return CS_OK;
}

void cs_api_serving_free(cs_server *s)
{
    if (!s->serving) return;
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&s->serving->served, &it, &key, &v)) cs_free(v);
    cs_map_free(&s->serving->served);
    pthread_mutex_destroy(&s->serving->mu);
    pthread_mutex_destroy(&s->serving->load_lock);
    cs_free(s->serving);
    s->serving = NULL;
}

/* The ready version `ref` names, as a decimal string; CS_ERR_NOT_FOUND when there is none
 * or it is archived. A store read, no artifact I/O. */
static cs_status resolve(cs_server *s, const char *model, const char *ref, char *version,
                         cs_error *err)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_version v;
    cs_status rc = cs_registry_version_get(s->opt.registry, model, ref, &a, &v, err);
    if (rc == CS_OK && v.state != CS_REGISTRY_STATE_READY)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' version %" PRId64 " is archived",
                          model, v.version);
    if (rc == CS_OK) snprintf(version, VERSION_MAX, "%" PRId64, v.version);
    cs_arena_free(&a);
    return rc;
}

/* `prod`, else `latest`. */
static cs_status resolve_default(cs_server *s, const char *model, char *version, cs_error *err)
{
    cs_status rc = resolve(s, model, "prod", version, err);
    if (rc == CS_ERR_NOT_FOUND) rc = resolve(s, model, "latest", version, err);
    if (rc == CS_ERR_NOT_FOUND)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' has no ready version to serve", model);
    return rc;
}

#define PINNED_MAX 64 /* pinned versions evicted per pass; the next pass takes the rest */

typedef struct pinned {
    cs_server *s;
    int n;
    char model[PINNED_MAX][CS_API_NAME_MAX], version[PINNED_MAX][VERSION_MAX];
} pinned;

/* Collects every loaded version. Called under the runtime's lock, so it takes no other
 * lock (the request path takes `mu`, then the runtime's): evict_pinned filters after. */
static void collect_pinned(void *ud, const cs_rt_model *m)
{
    pinned *p = ud;
    const char *name = cs_rt_model_name(m), *version = cs_rt_model_version(m);
    if (p->n == PINNED_MAX || strlen(name) >= CS_API_NAME_MAX || strlen(version) >= VERSION_MAX)
        return;
    snprintf(p->model[p->n], CS_API_NAME_MAX, "%s", name);
    snprintf(p->version[p->n], VERSION_MAX, "%s", version);
    p->n++;
}

/* Whether (model, version) is a registry version that is not its model's default (one asked
 * for by number or alias). */
static bool is_pinned(cs_server *s, const char *model, const char *version)
{
    if (cs_api_repo_known(s, model) || (s->deployer && cs_deployer_has(s->deployer, model)))
        return false; /* command-line models and deployments' versions are not evicted */
    pthread_mutex_lock(&s->serving->mu);
    const char *def = cs_map_get(&s->serving->served, model);
    bool is_default = def && !strcmp(def, version);
    pthread_mutex_unlock(&s->serving->mu);
    return !is_default;
}

static void unload(cs_server *s, const char *model, const char *version);

/* Unloads every pinned version (see collect_pinned) to give their engine threads back;
 * true when there was one. A pinned version is kept only while the budget has room: a
 * request for it later loads it again. Caller holds load_lock. */
static bool evict_pinned(cs_server *s)
{
    pinned *p = cs_calloc(1, sizeof *p);
    if (!p) return false;
    p->s = s;
    cs_runtime_foreach(s->rt, collect_pinned, p);
    bool any = false;
    for (int i = 0; i < p->n; i++)
        if (is_pinned(s, p->model[i], p->version[i])) {
            unload(s, p->model[i], p->version[i]);
            any = true;
        }
    cs_free(p);
    return any;
}

/* Loads (model, version) unless it is loaded. The registry checks the artifact's size and
 * sha256 on the way (one read of the file), so a damaged blob is never served. Over the
 * thread budget, pinned versions are unloaded and the load tried once more. Caller holds
 * load_lock. */
static cs_status ensure_loaded(cs_server *s, const char *model, const char *version, cs_error *err)
{
    cs_rt_model *m = cs_runtime_acquire(s->rt, model, version);
    if (m) {
        cs_rt_model_release(m);
        return CS_OK;
    }
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_registry_version v;
    const char *path;
    cs_status rc = cs_registry_artifact(s->opt.registry, model, version, &a, &v, &path, err);
    cs_model_config cfg;
    cs_model_config_defaults(&cfg);
    cfg.inline_only = true; /* the blob's folder holds other models' blobs */
    if (rc == CS_OK) rc = cs_api_load(s, model, version, path, &cfg, true, err);
    if (rc == CS_ERR_LIMIT && evict_pinned(s))
        rc = cs_api_load(s, model, version, path, &cfg, true, err);
    cs_arena_free(&a);
    return rc;
}

/* Sets model's default to version (under mu); returns the previous one in old ("" when
 * there was none). */
static cs_status set_default(cs_api_serving *sv, const char *model, const char *version, char *old,
                             cs_error *err)
{
    pthread_mutex_lock(&sv->mu);
    char *e = cs_map_get(&sv->served, model);
    old[0] = '\0';
    if (e) snprintf(old, VERSION_MAX, "%s", e);
    if (!e && (e = cs_calloc(1, VERSION_MAX)) && cs_map_put(&sv->served, model, e) != CS_OK) {
        cs_free(e);
        e = NULL;
    }
    if (e) snprintf(e, VERSION_MAX, "%s", version);
    pthread_mutex_unlock(&sv->mu);
    return e ? CS_OK : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

/* The default version, held: the table's choice when it is loaded, else resolved and
 * loaded now (the first request for a model pays its load). */
static cs_rt_model *acquire_default(cs_server *s, const char *model, cs_error *err)
{
    cs_api_serving *sv = s->serving;
    cs_rt_model *m = NULL;
    pthread_mutex_lock(&sv->mu);
    const char *e = cs_map_get(&sv->served, model);
    if (e) m = cs_runtime_acquire(s->rt, model, e);
    pthread_mutex_unlock(&sv->mu);
    if (m) return m;

    char version[VERSION_MAX], old[VERSION_MAX];
    pthread_mutex_lock(&sv->load_lock);
    cs_status rc = resolve_default(s, model, version, err);
    if (rc == CS_OK) rc = ensure_loaded(s, model, version, err);
    if (rc == CS_OK) rc = set_default(sv, model, version, old, err);
    if (rc == CS_OK && !(m = cs_runtime_acquire(s->rt, model, version)))
        cs_error_set(err, CS_ERR_SHUTDOWN, "model '%s' version %s was unloaded meanwhile", model,
                     version);
    pthread_mutex_unlock(&sv->load_lock);
    return m;
}

/* The version `ref` (a number or an alias) names, held; loaded now when it is not. */
static cs_rt_model *acquire_ref(cs_server *s, const char *model, const char *ref, cs_error *err)
{
    char version[VERSION_MAX];
    if (resolve(s, model, ref, version, err) != CS_OK) return NULL;
    cs_rt_model *m = cs_runtime_acquire(s->rt, model, version);
    if (m) return m;
    pthread_mutex_lock(&s->serving->load_lock);
    if (ensure_loaded(s, model, version, err) == CS_OK &&
        !(m = cs_runtime_acquire(s->rt, model, version)))
        cs_error_set(err, CS_ERR_SHUTDOWN, "model '%s' version %s was unloaded meanwhile", model,
                     version);
    pthread_mutex_unlock(&s->serving->load_lock);
    return m;
}

bool cs_api_serving_acquire_or_404(cs_api_req *r)
{
    cs_error err;
    r->m = r->version[0] ? acquire_ref(r->srv, r->model, r->version, &err)
                         : acquire_default(r->srv, r->model, &err);
    if (r->m) return cs_api_held(r);
    /* An invalid name (uppercase, '_', "..", UTF-8) is the client's mistake: 400. */
    int status = err.code == CS_ERR_NOT_FOUND  ? MHD_HTTP_NOT_FOUND
                 : err.code == CS_ERR_INVALID  ? MHD_HTTP_BAD_REQUEST
                 : err.code == CS_ERR_SHUTDOWN ? MHD_HTTP_SERVICE_UNAVAILABLE
                                               : MHD_HTTP_INTERNAL_SERVER_ERROR;
    cs_api_error(r, status, "%s", err.msg);
    return false;
}

static void unload(cs_server *s, const char *model, const char *version)
{
    cs_error err;
    cs_status rc = cs_runtime_unload(s->rt, model, version, &err);
    if (rc == CS_OK)
        cs_log(CS_LOG_INFO, "model unloaded", "model", model, "version", version, NULL);
    else if (rc != CS_ERR_NOT_FOUND)
        cs_log(CS_LOG_WARN, "model unload failed", "model", model, "version", version, "error",
               err.msg, NULL);
}

void cs_api_serving_refresh(cs_server *s, const char *model, int64_t gone)
{
    cs_api_serving *sv = s->serving;
    /* A command-line model or a deployment of this name serves its own versions under it:
     * a registry change must not unload them (the deployer follows the registry itself). */
    if (!sv || cs_api_repo_known(s, model) || (s->deployer && cs_deployer_has(s->deployer, model)))
        return;
    char current[VERSION_MAX] = "", target[VERSION_MAX] = "", old[VERSION_MAX];
    cs_error err;
    pthread_mutex_lock(&sv->load_lock);
    pthread_mutex_lock(&sv->mu);
    const char *e = cs_map_get(&sv->served, model);
    if (e) snprintf(current, sizeof current, "%s", e);
    pthread_mutex_unlock(&sv->mu);

    /* Nothing served yet: the first request resolves the default itself. */
    cs_status rc = current[0] ? resolve_default(s, model, target, &err) : CS_OK;
    if (rc == CS_ERR_NOT_FOUND) {
        /* Nothing left to serve: forget the model, drain what it served. */
        pthread_mutex_lock(&sv->mu);
        char *v = cs_map_get(&sv->served, model);
        cs_map_del(&sv->served, model);
        cs_free(v);
        pthread_mutex_unlock(&sv->mu);
        unload(s, model, current);
    } else if (rc == CS_OK && current[0] && strcmp(current, target) != 0) {
        rc = ensure_loaded(s, model, target, &err);
        if (rc == CS_OK) rc = set_default(sv, model, target, old, &err);
        if (rc == CS_OK) {
            cs_log(CS_LOG_INFO, "serving switched", "model", model, "from", current, "to", target,
                   NULL);
            unload(s, model, current);
        }
    }
    if (rc != CS_OK && rc != CS_ERR_NOT_FOUND)
        cs_log(CS_LOG_ERROR, "serving not switched", "model", model, "error", err.msg, NULL);
    char g[VERSION_MAX];
    snprintf(g, sizeof g, "%" PRId64, gone);
    if (gone > 0 && strcmp(g, target) != 0) unload(s, model, g);
    pthread_mutex_unlock(&sv->load_lock);
}

void cs_api_serving_refresh_all(cs_server *s)
{
    cs_api_serving *sv = s->serving;
    if (!sv) return;
    cs_vec names; /* char[CS_API_NAME_MAX]: refresh runs without mu */
    cs_vec_init(&names, CS_API_NAME_MAX);
    pthread_mutex_lock(&sv->mu);
    size_t it = 0;
    const char *key;
    void *v;
    char name[CS_API_NAME_MAX];
    while (cs_map_next(&sv->served, &it, &key, &v)) {
        snprintf(name, sizeof name, "%s", key);
        if (cs_vec_push(&names, name) != CS_OK) break;
    }
    pthread_mutex_unlock(&sv->mu);
    for (size_t i = 0; i < names.len; i++) cs_api_serving_refresh(s, cs_vec_at(&names, i), 0);
    cs_vec_free(&names);
}

/*
 * repository.c - the model repository extension: which models this server can serve,
 * and POST /v2/repository/index, /models/{m}/load and /models/{m}/unload.
 *
 * Entries come from --model NAME=PATH (loaded at start) and from DATA_DIR/models/NAME.onnx
 * with an optional NAME.yaml beside it (listed, loaded on request). The set of entries is
 * fixed once the server starts, so lookups need no lock; loads and unloads are serialised by
 * repo_lock because a load takes seconds and two at once would race to the same version.
 * A load runs on the HTTP thread that asked for it: loads are rare, and the thread's other
 * connections wait meanwhile (the other HTTP threads do not).
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPO_VERSION "1" /* one version per entry until the registry provides more */

typedef struct repo_model {
    char *name, *path;
    cs_model_config cfg;
    bool auto_batch;               /* see cs_repo_entry */
    char reason[CS_ERROR_MSG_MAX]; /* why the last load failed; "" when it did not */
} repo_model;

static cs_status add(cs_server *s, const char *name, const char *path, const cs_model_config *cfg,
                     bool auto_batch, cs_error *err)
{
    repo_model *e = cs_calloc(1, sizeof *e);
    if (e) {
        e->name = cs_strdup(name);
        e->path = cs_strdup(path);
    }
    if (!e || !e->name || !e->path || cs_map_put(&s->repo, name, e) != CS_OK) {
        if (e) cs_free(e->name), cs_free(e->path);
        cs_free(e);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    if (cfg)
        e->cfg = *cfg;
    else
        cs_model_config_defaults(&e->cfg);
    e->auto_batch = auto_batch;
    return CS_OK;
}

/* DATA_DIR/models/NAME.onnx, NAME.yaml optional. A missing directory is an empty one; a
 * bad YAML file makes its entry unloadable with the reason shown in the index. */
static cs_status scan_data_dir(cs_server *s, cs_error *err)
{
    char dir[4096], path[4096 + 256], yaml[4096 + 256];
    if ((size_t)snprintf(dir, sizeof dir, "%s/models", s->opt.data_dir) >= sizeof dir)
        return cs_error_set(err, CS_ERR_INVALID, "--data-dir is too long");
    DIR *d = opendir(dir);
    if (!d) return CS_OK;
    cs_status rc = CS_OK;
    struct dirent *de;
    while (rc == CS_OK && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 5 || n - 5 >= CS_API_NAME_MAX || strcmp(de->d_name + n - 5, ".onnx") != 0)
            continue;
        char name[CS_API_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
        if (cs_map_get(&s->repo, name)) continue; /* the command line wins */
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(yaml, sizeof yaml, "%s/%s.yaml", dir, name);
        cs_model_config cfg;
        cs_model_config_defaults(&cfg);
        cs_error cerr;
        struct stat st;
        bool batch_given = false;
        cs_status crc = stat(yaml, &st) == 0
                            ? cs_api_model_config_load(yaml, &cfg, &batch_given, &cerr)
                            : CS_OK;
        rc = add(s, name, path, &cfg, !batch_given, err);
        if (rc == CS_OK && crc != CS_OK) {
            repo_model *e = cs_map_get(&s->repo, name);
            snprintf(e->reason, sizeof e->reason, "%s", cerr.msg);
        }
    }
    closedir(d);
    return rc;
}

/* Whether the model's first dimension is a batch dimension everywhere: dynamic in every
 * input and output. Reads the file's header once more (it is mapped, not copied); when it
 * cannot be read the answer is no and the real load reports why. */
static bool batchable(const char *path)
{
    cs_model_t *m;
    cs_error err;
    if (cs_model_load_file(path, &m, &err) != CS_OK) return false;
    bool ok = cs_model_input_count(m) > 0;
    for (int i = 0; ok && i < cs_model_input_count(m); i++)
        ok = cs_model_input(m, i).rank > 0 && cs_model_input(m, i).dims[0] < 0;
    for (int j = 0; ok && j < cs_model_output_count(m); j++)
        ok = cs_model_output(m, j).rank > 0 && cs_model_output(m, j).dims[0] < 0;
    cs_model_free(m);
    return ok;
}

cs_status cs_api_load(cs_server *s, const char *name, const char *version, const char *path,
                      const cs_model_config *cfg, bool auto_batch, cs_error *err)
{
    uint64_t t0 = cs_now_ns();
    cs_model_config c;
    if (cfg)
        c = *cfg;
    else
        cs_model_config_defaults(&c);
    if (auto_batch && batchable(path)) {
        c.max_batch_size = 32;
        c.max_queue_delay_us = 500;
    }
    cs_status rc = cs_runtime_load(s->rt, name, version, path, &c, err);
    if (rc == CS_ERR_EXISTS) return CS_OK;
    if (rc != CS_OK) {
        cs_log(CS_LOG_ERROR, "model load failed", "model", name, "version", version, "error",
               err->msg, NULL);
        return rc;
    }
    char ms[32]; /* the runtime records capstan_model_load_duration_seconds itself */
    snprintf(ms, sizeof ms, CS_LOG_NUM "%.3f", cs_elapsed_s(t0) * 1e3);
    cs_log(CS_LOG_INFO, "model loaded", "model", name, "version", version, "path", path,
           "duration_ms", ms, NULL);
    return CS_OK;
}

/* Loads e, recording why when it fails. Caller holds repo_lock. */
static cs_status load(cs_server *s, repo_model *e, cs_error *err)
{
    cs_status rc = cs_api_load(s, e->name, REPO_VERSION, e->path, &e->cfg, e->auto_batch, err);
    snprintf(e->reason, sizeof e->reason, "%s", rc == CS_OK ? "" : err->msg);
    cs_api_hide_paths(s, e->reason, sizeof e->reason); /* the index shows it to clients */
    return rc;
}

cs_status cs_api_repo_init(cs_server *s, cs_error *err)
{
    cs_status rc = CS_OK;
    for (int i = 0; i < s->opt.n_repo && rc == CS_OK; i++) {
        const cs_repo_entry *r = &s->opt.repo[i];
        if (cs_map_get(&s->repo, r->name))
            return cs_error_set(err, CS_ERR_INVALID, "--model %s is given twice", r->name);
        rc = add(s, r->name, r->path, r->config, r->auto_batch, err);
    }
    if (rc == CS_OK) rc = scan_data_dir(s, err);
    for (int i = 0; i < s->opt.n_repo && rc == CS_OK; i++)
        rc = load(s, cs_map_get(&s->repo, s->opt.repo[i].name), err);
    return rc;
}

void cs_api_repo_free(cs_server *s)
{
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&s->repo, &it, &key, &v)) {
        repo_model *e = v;
        cs_free(e->name);
        cs_free(e->path);
        cs_free(e);
    }
    cs_map_free(&s->repo);
}

bool cs_api_repo_known(cs_server *s, const char *name)
{
    return cs_map_get(&s->repo, name) != NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(repo_model *const *)a)->name, (*(repo_model *const *)b)->name);
}

/* [{"name", "version", "state": "READY"|"UNAVAILABLE", "reason"}], sorted by name; with
 * {"ready": true} only the loaded ones. */
void cs_api_repo_index(cs_api_req *r)
{
    cs_server *s = r->srv;
    json_t *body = cs_api_json_or_400(r);
    if (!body) return;
    bool ready_only = json_is_true(json_object_get(body, "ready"));
    json_decref(body);
    size_t n = cs_map_len(&s->repo), it = 0, k = 0;
    repo_model **all = cs_calloc(n ? n : 1, sizeof *all);
    json_t *list = json_array();
    if (!all || !list) {
        cs_free(all);
        json_decref(list);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    const char *key;
    void *v;
    while (cs_map_next(&s->repo, &it, &key, &v)) all[k++] = v;
    qsort(all, n, sizeof *all, by_name);
    pthread_mutex_lock(&s->repo_lock);
    for (size_t i = 0; i < n; i++) {
        cs_rt_model *m = cs_runtime_acquire(s->rt, all[i]->name, NULL);
        if (m) {
            json_array_append_new(list,
                                  json_pack("{s:s, s:s, s:s}", "name", all[i]->name, "version",
                                            cs_rt_model_version(m), "state", "READY"));
            cs_rt_model_release(m);
        } else if (!ready_only) {
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", all[i]->name, "state",
                                                  "UNAVAILABLE", "reason",
                                                  all[i]->reason[0] ? all[i]->reason : "unloaded"));
        }
    }
    pthread_mutex_unlock(&s->repo_lock);
    cs_free(all);
    cs_api_json(r, MHD_HTTP_OK, list);
}

/* The entry the route names, or a 404 (unknown), 503 (draining) or 400 (bad body). */
static repo_model *entry_or_404(cs_api_req *r)
{
    repo_model *e = cs_map_get(&r->srv->repo, r->model);
    if (!e) {
        cs_api_error(r, MHD_HTTP_NOT_FOUND,
                     "unknown model '%s' (the repository holds --model entries and "
                     "DATA_DIR/models/*.onnx)",
                     r->model);
        return NULL;
    }
    if (atomic_load(&r->srv->draining)) {
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
        return NULL;
    }
    json_t *body = cs_api_json_or_400(r); /* parameters are accepted and not used yet */
    json_decref(body);
    return body ? e : NULL;
}

void cs_api_repo_load(cs_api_req *r)
{
    repo_model *e = entry_or_404(r);
    if (!e) return;
    cs_error err;
    pthread_mutex_lock(&r->srv->repo_lock);
    cs_status rc = load(r->srv, e, &err);
    pthread_mutex_unlock(&r->srv->repo_lock);
    if (rc == CS_OK)
        cs_api_json(r, MHD_HTTP_OK, json_object());
    else /* a thread budget exceeded is the operator's to fix, not a reason to retry */
        cs_api_error(r, rc == CS_ERR_LIMIT ? MHD_HTTP_BAD_REQUEST : cs_api_http_status(rc),
                     "cannot load '%s': %s", e->name, err.msg);
}

void cs_api_repo_unload(cs_api_req *r)
{
    repo_model *e = entry_or_404(r);
    if (!e) return;
    cs_error err;
    pthread_mutex_lock(&r->srv->repo_lock);
    cs_status rc = cs_runtime_unload(r->srv->rt, e->name, NULL, &err);
    pthread_mutex_unlock(&r->srv->repo_lock);
    /* Unloading what is not loaded leaves the wanted state: success, as in Triton. */
    if (rc == CS_OK || rc == CS_ERR_NOT_FOUND) {
        cs_log(CS_LOG_INFO, "model unloaded", "model", e->name, NULL);
        cs_api_json(r, MHD_HTTP_OK, json_object());
        return;
    }
    cs_api_error(r, cs_api_http_status(rc), "cannot unload '%s': %s", e->name, err.msg);
}

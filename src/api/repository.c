/*
 * repository.c - the model repository extension: which models this server can serve,
 * and POST /v2/repository/index, /models/{m}/load and /models/{m}/unload.
 *
 * Entries are of two kinds. A file entry is one .onnx served as version 1: --model NAME=PATH
 * (loaded at start) or DATA_DIR/models/NAME.onnx with an optional NAME.yaml (listed, loaded
 * on request). A folder entry is a Triton-layout model, NAME/VERSION/model.onnx with an
 * optional config.pbtxt or config.yaml (model_repo.h), from --model-repository or written by a
 * load's `file:` parameters into DATA_DIR/repository (never into the user's folder); loading it
 * re-reads the folder, loads the versions its policy selects and unloads the others, except
 * that while a selected version fails to load the versions loaded before keep serving.
 *
 * --model-control-mode (server.h) decides who loads folder entries: none loads them all at
 * start, explicit the --load-model ones and the API, poll re-reads the folder every
 * repository_poll_s on a thread of its own. With none and poll the API's load and unload
 * answer 400, as Triton's do.
 *
 * Locks: repo_map_lock guards the map (entries join at run time: poll, `file:` loads), held
 * only for a lookup or a copy of the pointers; entries are freed only when the server stops.
 * repo_lock serialises loads and unloads and guards each entry's mutable fields (reason, tc,
 * root); a load runs on the thread that asked for it (an HTTP thread, or the poll thread) and
 * may take seconds. Order: repo_lock, then repo_map_lock, then the runtime's.
 */
#include "api/api.h"

#include "api/model_repo.h"
#include "api/triton_config.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "obs/log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REPO_VERSION "1" /* a file entry's one version */

typedef struct repo_model {
    char *name;
    char *path;         /* a file entry's .onnx; NULL for a folder entry */
    const char *origin; /* a file entry's: "--model" or "DATA_DIR/models" (static) */
    char *root;         /* a folder entry's repository folder, which holds NAME/ */
    cs_model_config cfg;
    bool auto_batch;               /* see cs_repo_entry */
    cs_triton_config *tc;          /* in force: config.pbtxt's or a load's `config`; NULL if none */
    bool tc_given;                 /* tc came from a load's `config`, and overrides config.pbtxt */
    char failed[32];               /* the version whose load failed last; "" when none did */
    char reason[CS_ERROR_MSG_MAX]; /* why the last load failed; "" when it did not */
    char warnings[512];            /* config.pbtxt fields skipped, as last logged */
} repo_model;

typedef struct cs_api_repo_poll {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} cs_api_repo_poll;

static repo_model *find(cs_server *s, const char *name)
{
    pthread_mutex_lock(&s->repo_map_lock);
    repo_model *e = cs_map_get(&s->repo, name);
    pthread_mutex_unlock(&s->repo_map_lock);
    return e;
}

static cs_status add(cs_server *s, const char *name, const char *path, const char *root,
                     const cs_model_config *cfg, bool auto_batch, repo_model **out, cs_error *err)
{
    repo_model *e = cs_calloc(1, sizeof *e);
    if (e) {
        e->name = cs_strdup(name);
        e->path = path ? cs_strdup(path) : NULL;
        e->root = root ? cs_strdup(root) : NULL;
    }
    pthread_mutex_lock(&s->repo_map_lock);
    bool ok = e && e->name && (!path || e->path) && (!root || e->root) &&
              cs_map_put(&s->repo, name, e) == CS_OK;
    pthread_mutex_unlock(&s->repo_map_lock);
    if (!ok) {
        if (e) cs_free(e->name), cs_free(e->path), cs_free(e->root);
        cs_free(e);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    if (cfg)
        e->cfg = *cfg;
    else
        cs_model_config_defaults(&e->cfg);
    e->auto_batch = auto_batch;
    if (out) *out = e;
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
        if (find(s, name)) continue; /* the command line and the model repository win */
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
        repo_model *e = NULL;
        rc = add(s, name, path, NULL, &cfg, !batch_given, &e, err);
        if (rc == CS_OK) e->origin = "DATA_DIR/models";
        if (rc == CS_OK && crc != CS_OK) snprintf(e->reason, sizeof e->reason, "%s", cerr.msg);
    }
    closedir(d);
    return rc;
}

/* Whether the model's first dimension is a batch dimension everywhere: dynamic in every
 * input and output. When it cannot be read the answer is no and the real load reports why. */
static bool batchable(const cs_model_t *m)
{
    bool ok = cs_model_input_count(m) > 0;
    for (int i = 0; ok && i < cs_model_input_count(m); i++)
        ok = cs_model_input(m, i).rank > 0 && cs_model_input(m, i).dims[0] < 0;
    for (int j = 0; ok && j < cs_model_output_count(m); j++)
        ok = cs_model_output(m, j).rank > 0 && cs_model_output(m, j).dims[0] < 0;
    return ok;
}

/* The configuration a version loads with: cfg with a Triton configuration applied (tc may be
 * NULL) and automatic batching decided. Reads the file's header (it is mapped, not copied);
 * a file that cannot be read leaves cfg as it is, for the load to report why. */
static cs_status version_config(const char *path, const cs_model_config *cfg, bool auto_batch,
                                const cs_triton_config *tc, cs_model_config *out, cs_error *err)
{
    cs_model_t *m;
    *out = *cfg;
    cs_error ignored;
    if (cs_model_load_file(path, &m, &ignored) != CS_OK) return CS_OK;
    bool batch_given = false;
    cs_status rc = tc ? cs_triton_config_apply(tc, m, out, &batch_given, err) : CS_OK;
    if (rc == CS_OK && auto_batch && !batch_given && batchable(m)) {
        out->max_batch_size = 32;
        out->max_queue_delay_us = 500;
    }
    cs_model_free(m);
    return rc;
}

/* cs_api_load with version_config's configuration. */
static cs_status load_version(cs_server *s, const char *name, const char *version, const char *path,
                              const cs_model_config *cfg, bool auto_batch,
                              const cs_triton_config *tc, cs_error *err)
{
    cs_model_config c;
    cs_status rc = version_config(path, cfg, auto_batch, tc, &c, err);
    return rc == CS_OK ? cs_api_load(s, name, version, path, &c, false, err) : rc;
}

/* A file entry runs as an implicit deployment (runtime/deploy.h) where there is a deployer
 * and its name is a deployment name, else it is loaded into the runtime as it is. `replace`
 * reloads one that is loaded (a new configuration). */
static cs_status load_file(cs_server *s, repo_model *e, bool replace, cs_error *err)
{
    cs_model_config c;
    cs_status rc = version_config(e->path, &e->cfg, e->auto_batch, e->tc, &c, err);
    if (rc != CS_OK) return rc;
    uint64_t t0 = cs_now_ns();
    bool shadowed = false;
    rc = s->deployer ? cs_deployer_implicit(s->deployer, e->name, e->path, &c, e->origin, replace,
                                            &shadowed, err)
                     : CS_ERR_INVALID;
    if (rc == CS_ERR_INVALID) { /* no deployer, or not a deployment name: served directly */
        if (replace) (void)cs_runtime_unload(s->rt, e->name, NULL, err);
        return cs_api_load(s, e->name, REPO_VERSION, e->path, &c, false, err);
    }
    if (rc == CS_ERR_EXISTS) return CS_OK; /* served already */
    if (rc != CS_OK) {
        cs_log(CS_LOG_ERROR, "model load failed", "model", e->name, "version", REPO_VERSION,
               "error", err->msg, NULL);
        return rc;
    }
    char ms[32];
    snprintf(ms, sizeof ms, CS_LOG_NUM "%.3f", cs_elapsed_s(t0) * 1e3);
    cs_log(CS_LOG_INFO, shadowed ? "model shadowed by an explicit deployment" : "model loaded",
           "model", e->name, "version", REPO_VERSION, "path", e->path, "deployment", e->name,
           "duration_ms", ms, NULL);
    return CS_OK;
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
    if (auto_batch) return load_version(s, name, version, path, &c, true, NULL, err);
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

/* The loaded versions of one model, copied out under the runtime's lock. */
typedef struct loaded {
    const char *name;
    char versions[CS_MODEL_REPO_MAX_VERSIONS][32];
    int n;
} loaded;

static void add_loaded(void *ud, const cs_rt_model *m)
{
    loaded *l = ud;
    if (strcmp(cs_rt_model_name(m), l->name) == 0 && l->n < CS_MODEL_REPO_MAX_VERSIONS)
        snprintf(l->versions[l->n++], sizeof l->versions[0], "%s", cs_rt_model_version(m));
}

static void list_loaded(cs_server *s, const char *name, loaded *l)
{
    l->name = name;
    l->n = 0;
    cs_runtime_foreach(s->rt, add_loaded, l);
}

/* A folder entry: re-reads NAME/, loads the selected versions not loaded yet and, once every
 * one of them is loaded, unloads the versions no longer selected. Caller holds repo_lock. */
static cs_status load_folder(cs_server *s, repo_model *e, cs_error *err)
{
    cs_model_repo_model *m = cs_malloc(sizeof *m);
    if (!m) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_status rc = cs_model_repo_read(e->root, e->name, m, err);
    if (rc == CS_OK && !e->tc_given) {
        if (m->has_pbtxt && !e->tc) e->tc = cs_malloc(sizeof *e->tc);
        if (m->has_pbtxt && !e->tc) rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        if (m->has_pbtxt && e->tc) *e->tc = m->tc;
        if (!m->has_pbtxt) cs_free(e->tc), e->tc = NULL;
    }
    if (rc == CS_OK && e->tc_given) {
        m->tc = *e->tc;
        cs_model_repo_select(m);
    }
    if (rc == CS_OK && m->warnings[0] && strcmp(m->warnings, e->warnings) != 0)
        cs_log(CS_LOG_WARN, "config.pbtxt fields not supported, skipped", "model", e->name,
               "fields", m->warnings, NULL);
    snprintf(e->warnings, sizeof e->warnings, "%s", m->warnings);
    if (rc == CS_OK && m->n_versions == 0 && m->n_found == 0)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND,
                          "model '%s' has no version folder with a model.onnx (NAME/1/model.onnx)",
                          e->name);
    else if (rc == CS_OK && m->n_versions == 0)
        rc = cs_error_set(err, CS_ERR_NOT_FOUND,
                          "the version_policy of model '%s' selects none of its versions", e->name);
    e->failed[0] = '\0';
    char path[CS_MODEL_REPO_PATH_MAX], version[32];
    for (int i = 0; rc == CS_OK && i < m->n_versions; i++) {
        snprintf(version, sizeof version, "%" PRId64, m->versions[i]);
        cs_rt_model *old = cs_runtime_acquire(s->rt, e->name, version);
        if (old) {
            cs_rt_model_release(old);
            continue;
        }
        cs_model_repo_path(e->root, e->name, m->versions[i], path);
        rc = load_version(s, e->name, version, path, &m->cfg, !m->yaml_batch_given, e->tc, err);
        if (rc != CS_OK) {
            snprintf(e->failed, sizeof e->failed, "%s", version);
            cs_error_prefix(err, "version %s: ", version);
        }
    }
    loaded *l = rc == CS_OK ? cs_malloc(sizeof *l) : NULL;
    if (l) list_loaded(s, e->name, l);
    for (int k = 0; l && k < l->n; k++) {
        bool keep = false;
        for (int i = 0; i < m->n_versions && !keep; i++)
            keep = m->versions[i] == strtoll(l->versions[k], NULL, 10);
        cs_error uerr;
        if (!keep && cs_runtime_unload(s->rt, e->name, l->versions[k], &uerr) == CS_OK)
            cs_log(CS_LOG_INFO, "model unloaded", "model", e->name, "version", l->versions[k],
                   "why", "no longer selected", NULL);
    }
    cs_free(l);
    cs_free(m);
    return rc;
}

/* Loads e, recording why when it fails; `replace` reloads what is loaded (a folder entry
 * reloads what changed in any case). Caller holds repo_lock. */
static cs_status load(cs_server *s, repo_model *e, bool replace, cs_error *err)
{
    cs_status rc = e->path ? load_file(s, e, replace, err) : load_folder(s, e, err);
    snprintf(e->reason, sizeof e->reason, "%s", rc == CS_OK ? "" : err->msg);
    cs_api_hide_paths(s, e->reason, sizeof e->reason); /* the index shows it to clients */
    return rc;
}

/* The folder's models join as entries; those already known are left as they are. With
 * `load_new`, every new entry loads too. Caller holds repo_lock (or is the only thread). */
static cs_status add_folder_models(cs_server *s, bool load_new, bool at_start, cs_error *err)
{
    char(*names)[CS_TRITON_NAME_MAX] = cs_malloc(CS_MODEL_REPO_MAX_MODELS * sizeof *names);
    if (!names) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    int n = 0;
    cs_status rc =
        cs_model_repo_list(s->opt.model_repository, names, CS_MODEL_REPO_MAX_MODELS, &n, err);
    for (int i = 0; rc == CS_OK && i < n; i++) {
        repo_model *e = find(s, names[i]);
        if (e && at_start)
            rc = cs_error_set(err, CS_ERR_INVALID,
                              "--model %s and the model repository's %s/ name two models: rename "
                              "one",
                              names[i], names[i]);
        if (e || rc != CS_OK) continue;
        rc = add(s, names[i], NULL, s->opt.model_repository, NULL, true, &e, err);
        cs_error lerr;
        if (rc == CS_OK && load_new) (void)load(s, e, false, &lerr); /* shown in the index */
    }
    cs_free(names);
    return rc;
}

/* Copies the entries' pointers (the map may grow meanwhile); *n is how many. Caller frees. */
static repo_model **entries(cs_server *s, size_t *n)
{
    pthread_mutex_lock(&s->repo_map_lock);
    size_t cap = cs_map_len(&s->repo), it = 0, k = 0;
    repo_model **all = cs_calloc(cap ? cap : 1, sizeof *all);
    const char *key;
    void *v;
    while (all && cs_map_next(&s->repo, &it, &key, &v)) all[k++] = v;
    pthread_mutex_unlock(&s->repo_map_lock);
    *n = k;
    return all;
}

/* Poll mode: every repository_poll_s, new folders join and load and every folder entry
 * reloads (new versions in, removed ones out); a folder that is gone unloads. */
static void *poll_main(void *arg)
{
    cs_server *s = arg;
    cs_api_repo_poll *p = s->repo_poll;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->opt.repository_poll_s;
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0) {
        }
        if (p->stop || atomic_load(&s->draining)) continue;
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_lock(&s->repo_lock);
        cs_error err;
        if (add_folder_models(s, true, false, &err) != CS_OK)
            cs_log(CS_LOG_WARN, "model repository poll failed", "error", err.msg, NULL);
        size_t n;
        repo_model **all = entries(s, &n);
        for (size_t i = 0; all && i < n; i++) {
            repo_model *e = all[i];
            if (e->path) continue;
            char dir[CS_MODEL_REPO_PATH_MAX];
            struct stat st;
            snprintf(dir, sizeof dir, "%s/%s", e->root, e->name);
            if (stat(dir, &st) == 0) {
                (void)load(s, e, false, &err);
            } else if (cs_runtime_unload(s->rt, e->name, NULL, &err) == CS_OK) {
                snprintf(e->reason, sizeof e->reason, "removed from the model repository");
                cs_log(CS_LOG_INFO, "model unloaded", "model", e->name, "why",
                       "removed from the model repository", NULL);
            }
        }
        cs_free(all);
        pthread_mutex_unlock(&s->repo_lock);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static cs_status start_poll(cs_server *s, cs_error *err)
{
    cs_api_repo_poll *p = cs_calloc(1, sizeof *p);
    if (!p) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    s->repo_poll = p;
    if (pthread_create(&p->thread, NULL, poll_main, s) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        cs_free(p);
        s->repo_poll = NULL;
        return cs_error_set(err, CS_ERR_INTERNAL, "cannot start the repository poll thread");
    }
    return CS_OK;
}

/* Which folder models load at start: all (none, poll), or --load-model's (explicit). */
static cs_status load_at_start(cs_server *s, cs_error *err)
{
    const cs_server_options *o = &s->opt;
    bool all = o->control != CS_REPO_CONTROL_EXPLICIT;
    for (int i = 0; i < o->n_load_models; i++) all |= strcmp(o->load_models[i], "*") == 0;
    size_t n;
    repo_model **list = entries(s, &n);
    if (!list) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; all && i < n; i++)
        if (!list[i]->path) (void)load(s, list[i], false, err);
    cs_free(list);
    for (int i = 0; !all && i < o->n_load_models; i++) {
        repo_model *e = find(s, o->load_models[i]);
        if (!e || e->path)
            return cs_error_set(err, CS_ERR_INVALID,
                                "--load-model %s: the model repository has no folder %s/",
                                o->load_models[i], o->load_models[i]);
        (void)load(s, e, false, err); /* a failure shows in the index, as in none mode */
    }
    return CS_OK;
}

cs_status cs_api_repo_init(cs_server *s, cs_error *err)
{
    cs_status rc = CS_OK;
    for (int i = 0; i < s->opt.n_repo && rc == CS_OK; i++) {
        const cs_repo_entry *r = &s->opt.repo[i];
        if (find(s, r->name))
            return cs_error_set(err, CS_ERR_INVALID, "--model %s is given twice", r->name);
        repo_model *e = NULL;
        rc = add(s, r->name, r->path, NULL, r->config, r->auto_batch, &e, err);
        if (rc == CS_OK) e->origin = "--model";
    }
    if (rc == CS_OK && s->opt.model_repository) rc = add_folder_models(s, false, true, err);
    if (rc == CS_OK) rc = scan_data_dir(s, err);
    for (int i = 0; i < s->opt.n_repo && rc == CS_OK; i++)
        rc = load(s, find(s, s->opt.repo[i].name), false, err);
    if (rc == CS_OK && s->opt.model_repository) rc = load_at_start(s, err);
    if (rc == CS_OK && s->opt.model_repository && s->opt.control == CS_REPO_CONTROL_POLL)
        rc = start_poll(s, err);
    return rc;
}

void cs_api_repo_free(cs_server *s)
{
    cs_api_repo_poll *p = s->repo_poll;
    if (p) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        cs_free(p);
        s->repo_poll = NULL;
    }
    size_t it = 0;
    const char *key;
    void *v;
    while (cs_map_next(&s->repo, &it, &key, &v)) {
        repo_model *e = v;
        cs_free(e->name);
        cs_free(e->path);
        cs_free(e->root);
        cs_free(e->tc);
        cs_free(e);
    }
    cs_map_free(&s->repo);
}

bool cs_api_repo_known(cs_server *s, const char *name)
{
    return find(s, name) != NULL;
}

void cs_api_repo_names(cs_server *s, json_t *set)
{
    size_t n;
    repo_model **all = entries(s, &n);
    for (size_t i = 0; all && i < n; i++) json_object_set_new(set, all[i]->name, json_true());
    cs_free(all);
}

bool cs_api_repo_triton(cs_server *s, const char *name, cs_triton_config *out)
{
    repo_model *e = find(s, name);
    if (!e) return false;
    pthread_mutex_lock(&s->repo_lock);
    bool has = e->tc != NULL;
    if (has) *out = *e->tc;
    pthread_mutex_unlock(&s->repo_lock);
    return has;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(repo_model *const *)a)->name, (*(repo_model *const *)b)->name);
}

/* [{"name", "version", "state": "READY"|"UNAVAILABLE", "reason"}], sorted by name, a row per
 * loaded version, one for a version that failed to load, and one for an entry with nothing
 * loaded; with {"ready": true} only the loaded ones. */
void cs_api_repo_index(cs_api_req *r)
{
    cs_server *s = r->srv;
    json_t *body = cs_api_json_or_400(r);
    if (!body) return;
    bool ready_only = json_is_true(json_object_get(body, "ready"));
    json_decref(body);
    size_t n;
    repo_model **all = entries(s, &n);
    json_t *list = json_array();
    loaded *l = cs_arena_alloc(&r->arena, sizeof *l, 16);
    if (!all || !list || !l) {
        cs_free(all);
        json_decref(list);
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    qsort(all, n, sizeof *all, by_name);
    pthread_mutex_lock(&s->repo_lock);
    for (size_t i = 0; i < n; i++) {
        repo_model *e = all[i];
        list_loaded(s, e->name, l);
        for (int k = 0; k < l->n; k++)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", e->name, "version",
                                                  l->versions[k], "state", "READY"));
        if (ready_only || (l->n && !e->failed[0])) continue;
        json_t *row = json_pack("{s:s, s:s, s:s}", "name", e->name, "state", "UNAVAILABLE",
                                "reason", e->reason[0] ? e->reason : "unloaded");
        if (row && e->failed[0]) json_object_set_new(row, "version", json_string(e->failed));
        json_array_append_new(list, row);
    }
    pthread_mutex_unlock(&s->repo_lock);
    cs_free(all);
    cs_api_json(r, MHD_HTTP_OK, list);
}

/* --- load and unload ---------------------------------------------------------------------- */

/* A load's parameters, as Triton takes them. */
typedef struct load_params {
    json_t *config;        /* parameters.config, parsed; NULL when absent */
    const char *files[16]; /* parameters["file:V/model.onnx"]: base64 (borrowed from body) */
    int64_t file_versions[16];
    int n_files;
} load_params;

/* 400 and false when a control mode other than explicit governs the repository. */
static bool explicit_or_400(cs_api_req *r)
{
    cs_repo_control c = r->srv->opt.control;
    if (!r->srv->opt.model_repository || c == CS_REPO_CONTROL_EXPLICIT) return true;
    cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                 "the model control mode is %s: %s; start with --model-control-mode explicit to "
                 "load and unload through the API",
                 c == CS_REPO_CONTROL_NONE ? "none" : "poll",
                 c == CS_REPO_CONTROL_NONE ? "every model loads at start"
                                           : "the repository folder decides what is loaded");
    return false;
}

/* The body's "parameters" (allowed: the names in `allowed`, and file: ones when `files`), or a
 * 400 naming the first one that is not supported. */
static bool params_or_400(cs_api_req *r, json_t *body, bool files, load_params *lp)
{
    memset(lp, 0, sizeof *lp);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "parameters") != 0) {
            cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                         "field '%s' is not supported (a load or unload body holds \"parameters\")",
                         key);
            return false;
        }
    }
    json_t *params = json_object_get(body, "parameters");
    if (params && !json_is_object(params)) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST, "parameters must be an object");
        return false;
    }
    json_object_foreach(params, key, v)
    {
        if (files && !strcmp(key, "config")) {
            json_error_t jerr;
            if (json_is_string(v))
                lp->config = json_loadb(json_string_value(v), json_string_length(v), 0, &jerr);
            if (!lp->config || !json_is_object(lp->config)) {
                cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                             "parameters.config must be a string holding a JSON model "
                             "configuration object");
                return false;
            }
        } else if (files && !strncmp(key, "file:", 5)) {
            char *end;
            long long ver = strtoll(key + 5, &end, 10);
            if (key[5] < '1' || key[5] > '9' || ver <= 0 || strcmp(end, "/model.onnx") != 0 ||
                !json_is_string(v)) {
                cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                             "parameter '%s' is not supported: a file parameter is "
                             "file:VERSION/model.onnx with base64 content",
                             key);
                return false;
            }
            if (lp->n_files == 16) {
                cs_api_error(r, MHD_HTTP_BAD_REQUEST, "more than 16 file: parameters");
                return false;
            }
            lp->file_versions[lp->n_files] = ver;
            lp->files[lp->n_files++] = json_string_value(v);
        } else if (!files && !strcmp(key, "unload_dependents")) {
            if (!json_is_boolean(v)) {
                cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                             "parameters.unload_dependents must be true or false");
                return false;
            }
        } else {
            cs_api_error(r, MHD_HTTP_BAD_REQUEST, "parameter '%s' is not supported (%s)", key,
                         files ? "config, file:VERSION/model.onnx" : "unload_dependents");
            return false;
        }
    }
    if (lp->n_files && !lp->config) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "file: parameters need parameters.config too (the model configuration of "
                     "the files), as in Triton");
        return false;
    }
    return true;
}

/* mkdir that accepts an existing folder. */
static bool make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* Removes DIR/V/model.onnx and the version folders of a previous `file:` load of the model. */
static void clear_override(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[CS_MODEL_REPO_PATH_MAX];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s/model.onnx", dir, de->d_name) < sizeof path)
            unlink(path);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
            rmdir(path);
    }
    closedir(d);
}

/* Writes the `file:` parameters into DATA_DIR/repository/NAME/VERSION/model.onnx (each
 * through a temporary file and a rename); *root is DATA_DIR/repository. */
static bool write_files_or_400(cs_api_req *r, const load_params *lp, char *root, size_t cap)
{
    char dir[CS_MODEL_REPO_PATH_MAX + CS_API_NAME_MAX], path[sizeof dir + 32], tmp[sizeof path + 8];
    snprintf(root, cap, "%s/repository", r->srv->opt.data_dir);
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", root, r->model) >= sizeof dir) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "--data-dir is too long");
        return false;
    }
    if (!make_dir(r->srv->opt.data_dir) || !make_dir(root) || !make_dir(dir)) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot create %s: %s", dir,
                     strerror(errno));
        return false;
    }
    clear_override(dir);
    for (int i = 0; i < lp->n_files; i++) {
        size_t n = strlen(lp->files[i]);
        unsigned char *bytes = cs_malloc(n / 4 * 3 + 3);
        int got = bytes && n % 4 == 0
                      ? EVP_DecodeBlock(bytes, (const unsigned char *)lp->files[i], (int)n)
                      : -1;
        if (got > 0)
            got -= (n && lp->files[i][n - 1] == '=') + (n > 1 && lp->files[i][n - 2] == '=');
        if (got <= 0) {
            cs_free(bytes);
            cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                         "parameter 'file:%" PRId64 "/model.onnx' is not base64 (RFC 4648, "
                         "padded, no line breaks)",
                         lp->file_versions[i]);
            return false;
        }
        snprintf(path, sizeof path, "%s/%" PRId64, dir, lp->file_versions[i]);
        bool ok = make_dir(path);
        snprintf(path, sizeof path, "%s/%" PRId64 "/model.onnx", dir, lp->file_versions[i]);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = ok ? fopen(tmp, "wb") : NULL;
        ok = f && fwrite(bytes, 1, (size_t)got, f) == (size_t)got;
        ok = (f && fclose(f) == 0) && ok && rename(tmp, path) == 0;
        cs_free(bytes);
        if (!ok) {
            unlink(tmp);
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write %s: %s", path,
                         strerror(errno));
            return false;
        }
    }
    return true;
}

/* The entry the route names in *out (NULL: a new name, for a `file:` load), or a 404, 503 or
 * 400 and false. */
static bool entry_or_404(cs_api_req *r, bool has_files, repo_model **out)
{
    repo_model *e = *out = find(r->srv, r->model);
    if (!e && !has_files) {
        cs_api_error(r, MHD_HTTP_NOT_FOUND,
                     "unknown model '%s' (the repository holds --model entries, "
                     "--model-repository folders and DATA_DIR/models/*.onnx; a load with "
                     "file: parameters adds one)",
                     r->model);
        return false;
    }
    if (atomic_load(&r->srv->draining)) {
        cs_api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
        return false;
    }
    if (e && e->path && has_files) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "model '%s' is served from one file given at start: a load with file: "
                     "parameters needs a new name or a --model-repository model",
                     r->model);
        return false;
    }
    return true;
}

void cs_api_repo_load(cs_api_req *r)
{
    json_t *body = cs_api_json_or_400(r);
    load_params lp = {0};
    if (!body || !explicit_or_400(r) || !params_or_400(r, body, true, &lp)) goto out;
    if (lp.n_files && !cs_model_repo_name_ok(r->model)) {
        cs_api_error(r, MHD_HTTP_BAD_REQUEST,
                     "model name '%s': 1..127 letters, digits, '_', '-' or '.', not starting "
                     "with '.'",
                     r->model);
        goto out;
    }
    cs_triton_config *tc = NULL;
    cs_error err;
    if (lp.config) {
        tc = cs_malloc(sizeof *tc);
        if (!tc) {
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
            goto out;
        }
        if (cs_triton_config_read(lp.config, true, tc, NULL, 0, &err) == CS_OK && tc->name[0] &&
            strcmp(tc->name, r->model) != 0)
            cs_error_set(&err, CS_ERR_INVALID, "config: name '%s' is not the model's name '%s'",
                         tc->name, r->model);
        if (err.code != CS_OK) {
            cs_free(tc);
            cs_api_error(r, MHD_HTTP_BAD_REQUEST, "parameters.%s", err.msg);
            goto out;
        }
    }
    pthread_mutex_lock(&r->srv->repo_lock);
    char root[CS_MODEL_REPO_PATH_MAX];
    repo_model *e;
    bool ok = entry_or_404(r, lp.n_files > 0, &e);
    if (ok && lp.n_files) ok = write_files_or_400(r, &lp, root, sizeof root);
    if (ok && !e && add(r->srv, r->model, NULL, root, NULL, true, &e, &err) != CS_OK) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
        ok = false;
    }
    if (ok && lp.n_files && strcmp(e->root, root) != 0) {
        char *dup = cs_strdup(root);
        ok = dup != NULL;
        if (dup) cs_free(e->root), e->root = dup;
        if (!ok) cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    if (ok) {
        /* A `config` holds for this load and the next plain ones, as the folder's would. */
        if (tc) cs_free(e->tc), e->tc = tc, e->tc_given = true, tc = NULL;
        /* New configuration or files: what is loaded reloads, as in Triton. */
        cs_error uerr;
        if (lp.config && !e->path) (void)cs_runtime_unload(r->srv->rt, e->name, NULL, &uerr);
        cs_status rc = load(r->srv, e, lp.config != NULL, &err);
        if (rc == CS_OK)
            cs_api_json(r, MHD_HTTP_OK, json_object());
        else /* a thread budget exceeded is the operator's to fix, not a reason to retry */
            cs_api_error(r,
                         rc == CS_ERR_LIMIT || rc == CS_ERR_NOT_FOUND ? MHD_HTTP_BAD_REQUEST
                                                                      : cs_api_http_status(rc),
                         "cannot load '%s': %s", e->name, err.msg);
    }
    pthread_mutex_unlock(&r->srv->repo_lock);
    cs_free(tc);
out:
    json_decref(lp.config);
    json_decref(body);
}

void cs_api_repo_unload(cs_api_req *r)
{
    json_t *body = cs_api_json_or_400(r);
    load_params lp;
    repo_model *e = NULL;
    bool ok = body && explicit_or_400(r) && params_or_400(r, body, false, &lp) &&
              entry_or_404(r, false, &e);
    json_decref(body);
    if (!ok) return;
    cs_error err;
    pthread_mutex_lock(&r->srv->repo_lock);
    /* A file entry's implicit deployment is withdrawn; an explicit deployment of its name is
     * not this entry's to unload. */
    cs_status rc = e->path && r->srv->deployer
                       ? cs_deployer_implicit_drop(r->srv->deployer, e->name, &err)
                       : CS_ERR_NOT_FOUND;
    if (rc == CS_ERR_NOT_FOUND) rc = cs_runtime_unload(r->srv->rt, e->name, NULL, &err);
    e->failed[0] = '\0';
    pthread_mutex_unlock(&r->srv->repo_lock);
    /* Unloading what is not loaded leaves the wanted state: success, as in Triton. */
    if (rc == CS_OK || rc == CS_ERR_NOT_FOUND) {
        cs_log(CS_LOG_INFO, "model unloaded", "model", e->name, NULL);
        cs_api_json(r, MHD_HTTP_OK, json_object());
        return;
    }
    cs_api_error(r, cs_api_http_status(rc), "cannot unload '%s': %s", e->name, err.msg);
}

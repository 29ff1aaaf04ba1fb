/*
 * model_repo.c - reads a Triton-layout model repository folder (see model_repo.h): the
 * models it holds, each one's configuration, and the versions its policy selects.
 *
 * Pure reading: no server state, no locks, nothing written. Folders and files that do not
 * fit the layout (a version folder without model.onnx, a name with a leading zero, hidden
 * entries) are skipped, as Triton skips them; a model folder is always listed so that a
 * broken one shows in the index with its reason.
 */
#include "api/model_repo.h"

#include "api/server.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cs_model_repo_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= CS_TRITON_NAME_MAX || name[0] == '.') return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

cs_status cs_model_repo_list(const char *dir, char (*names)[CS_TRITON_NAME_MAX], int max, int *n,
                             cs_error *err)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return cs_error_set(err, CS_ERR_NOT_FOUND, "model repository %s: %s", dir, strerror(errno));
    struct dirent *de;
    char path[CS_MODEL_REPO_PATH_MAX];
    while ((de = readdir(d)) && *n < max) {
        if (!cs_model_repo_name_ok(de->d_name)) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path ||
            !is_dir(path))
            continue;
        memcpy(names[(*n)++], de->d_name, strlen(de->d_name) + 1); /* name_ok bounds it */
    }
    closedir(d);
    qsort(names, (size_t)*n, CS_TRITON_NAME_MAX, by_name);
    return CS_OK;
}

void cs_model_repo_path(const char *dir, const char *name, int64_t version, char *path)
{
    snprintf(path, CS_MODEL_REPO_PATH_MAX, "%s/%s/%" PRId64 "/model.onnx", dir, name, version);
}

static int by_version(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A version folder's number: digits without a leading zero, at most 18 of them; else 0. */
static int64_t version_of(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0' || strspn(s, "0123456789") != n) return 0;
    return strtoll(s, NULL, 10);
}

/* The versions with a model.onnx, ascending, into m->found. */
static void find_versions(const char *dir, const char *name, cs_model_repo_model *m)
{
    char path[CS_MODEL_REPO_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *de;
    int64_t all[CS_MODEL_REPO_MAX_VERSIONS];
    int n = 0;
    while ((de = readdir(d))) {
        int64_t v = version_of(de->d_name);
        if (v <= 0) continue;
        cs_model_repo_path(dir, name, v, path);
        if (!is_file(path)) continue; /* not a version (yet): Triton skips it too */
        if (n < CS_MODEL_REPO_MAX_VERSIONS) {
            all[n++] = v;
        } else { /* keep the highest ones */
            qsort(all, (size_t)n, sizeof *all, by_version);
            if (v > all[0]) all[0] = v;
        }
    }
    closedir(d);
    qsort(all, (size_t)n, sizeof *all, by_version);
    memcpy(m->found, all, (size_t)n * sizeof *all);
    m->n_found = n;
}

void cs_model_repo_select(cs_model_repo_model *m)
{
    const cs_triton_config *tc = &m->tc;
    m->n_versions = 0;
    for (int i = 0; i < m->n_found; i++) {
        int64_t v = m->found[i];
        bool take = tc->policy == CS_TRITON_POLICY_ALL ||
                    (tc->policy == CS_TRITON_POLICY_LATEST && i >= m->n_found - tc->latest);
        for (int k = 0; tc->policy == CS_TRITON_POLICY_SPECIFIC && k < tc->n_versions; k++)
            take |= tc->versions[k] == v;
        if (take) m->versions[m->n_versions++] = v;
    }
}

cs_status cs_model_repo_read(const char *dir, const char *name, cs_model_repo_model *out,
                             cs_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    cs_triton_config_defaults(&out->tc);
    cs_model_config_defaults(&out->cfg);
    cs_error_clear(err);
    char pbtxt[CS_MODEL_REPO_PATH_MAX], yaml[CS_MODEL_REPO_PATH_MAX];
    snprintf(pbtxt, sizeof pbtxt, "%s/%s/config.pbtxt", dir, name);
    snprintf(yaml, sizeof yaml, "%s/%s/config.yaml", dir, name);
    out->has_pbtxt = is_file(pbtxt);
    out->has_yaml = is_file(yaml);
    cs_status rc = CS_OK;
    if (out->has_pbtxt && out->has_yaml)
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "model '%s' has both config.pbtxt and config.yaml: keep one", name);
    else if (out->has_pbtxt)
        rc = cs_triton_config_load(pbtxt, &out->tc, out->warnings, sizeof out->warnings, err);
    else if (out->has_yaml)
        rc = cs_api_model_config_load(yaml, &out->cfg, &out->yaml_batch_given, err);
    if (rc == CS_OK && out->tc.name[0] && strcmp(out->tc.name, name) != 0)
        rc = cs_error_set(err, CS_ERR_INVALID, "%s: name '%s' is not the model's folder name '%s'",
                          pbtxt, out->tc.name, name);
    if (rc != CS_OK) cs_triton_config_defaults(&out->tc);
    find_versions(dir, name, out);
    cs_model_repo_select(out);
    return rc;
}

/*
 * vendor_load.c - dlopen, dlsym and the version check for cuBLASLt and cuDNN, and their
 * handles; see vendor_load.h.
 *
 * The library is opened once per successful load; a failed attempt closes what it opened,
 * so the caller can retry (after installing the library, or with another override). The
 * lock is held only while loading or reading the version, never during a library call
 * that computes.
 */
#include "engine/cuda/vendor_load.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

/* Clears every slot and closes h: what a failed load leaves. */
static void unload(void *h, const cs__vendor_sym *syms, int n)
{
    for (int j = 0; j < n; j++) *syms[j].slot = NULL;
    dlclose(h);
}

/* Opens $env or else lib and resolves the n symbols into their slots. On failure nothing
 * stays open, every slot is NULL, and the error names the file, the variable that
 * overrides it, and dlerror's reason or the first missing symbol. */
static void *open_lib(const char *lib, const char *env, const cs__vendor_sym *syms, int n,
                      cs_error *err)
{
    const char *path = getenv(env);
    bool overridden = path && *path;
    if (!overridden) path = lib;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        if (overridden)
            cs_error_set(err, CS_ERR_UNSUPPORTED, "cannot load %s (the %s given by %s): %s", path,
                         lib, env, why ? why : "unknown reason");
        else
            cs_error_set(err, CS_ERR_UNSUPPORTED,
                         "cannot load %s (set %s to its path to use another): %s", lib, env,
                         why ? why : "unknown reason");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            cs_error_set(err, CS_ERR_UNSUPPORTED,
                         "%s lacks %s: not the %s expected (%s overrides the path)", path,
                         syms[i].name, lib, env);
            unload(h, syms, n);
            return NULL;
        }
    }
    return h;
}

cs_status cs__vendor_load(cs__vendor_lib *v, cs_error *err)
{
    cs_status rc = CS_OK;
    pthread_mutex_lock(&v->lock);
    if (!v->handle) {
        void *h = open_lib(v->lib, v->env, v->syms, v->n_syms, err);
        if (!h) {
            rc = CS_ERR_UNSUPPORTED;
        } else if ((*v->version)() / 10000 != v->major) {
            rc = cs_error_set(err, CS_ERR_UNSUPPORTED,
                              "%s reports version %zu; capstan is built for %s %zu (%s)", v->lib,
                              (*v->version)(), v->name, v->major, v->env);
            unload(h, v->syms, v->n_syms);
        } else {
            v->handle = h;
        }
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

size_t cs__vendor_version(cs__vendor_lib *v)
{
    pthread_mutex_lock(&v->lock);
    size_t version = v->handle ? (*v->version)() : 0;
    pthread_mutex_unlock(&v->lock);
    return version;
}

cs_status cs__vendor_handle_new(cs__vendor_lib *v, int32_t (*const *create)(void **),
                                cs__vendor_fail_fn fail, const char *what, void **out,
                                cs_error *err)
{
    *out = NULL;
    cs_status rc = cs__vendor_load(v, err);
    if (rc != CS_OK) return rc;
    int32_t status = (*create)(out);
    if (status != 0) {
        *out = NULL;
        return fail(err, what, status);
    }
    return CS_OK;
}

/*
 * vendor_load.c - dlopen and dlsym for cuBLASLt and cuDNN; see vendor_load.h.
 *
 * The library is opened once per successful load; a failed attempt closes what it opened,
 * so the caller can retry (after installing the library, or with another override).
 */
#include "engine/cuda/vendor_load.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

void *cs__vendor_open(const char *lib, const char *env, const cs__vendor_sym *syms, int n,
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
            for (int j = 0; j < n; j++) *syms[j].slot = NULL;
            dlclose(h);
            return NULL;
        }
    }
    return h;
}

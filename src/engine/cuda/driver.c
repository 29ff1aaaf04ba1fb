/*
 * driver.c - loading the CUDA driver (libcuda.so.1) with dlopen; see driver.h.
 *
 * CS_LIBCUDA, when set and not empty, is the driver file to load instead of libcuda.so.1
 * (a path, or a name dlopen searches for): the tests load a fake driver through it, and an
 * operator can pick one driver out of several installed. The first session on a CUDA
 * device pays for the load (dlopen and cuInit: tens of milliseconds with a real driver);
 * later ones read the cached table or the cached reason it failed.
 */
#include "engine/cuda/driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIB "libcuda.so.1"

static const struct {
    const char *symbol;
    size_t offset;
} entries[] = {
#define CS__CU_ENTRY(member, symbol, params) {symbol, offsetof(cs__cu, member)},
    CS__CU_FUNCS(CS__CU_ENTRY)
#undef CS__CU_ENTRY
};

cs_status cs__cu_error(const cs__cu *cu, cs__cu_result r, const char *call, cs_error *err)
{
    const char *name = NULL, *text = NULL;
    char number[32];
    if (cu->GetErrorName(r, &name) != CS__CU_SUCCESS || !name) {
        snprintf(number, sizeof number, "CUresult %d", r);
        name = number;
    }
    if (cu->GetErrorString(r, &text) != CS__CU_SUCCESS || !text) text = "unknown to this driver";
    cs_status code = r == CS__CU_OUT_OF_MEMORY   ? CS_ERR_NOMEM
                     : r == CS__CU_NOT_SUPPORTED ? CS_ERR_UNSUPPORTED
                                                 : CS_ERR_IO;
    return cs_error_set(err, code, "%s: %s (%s)", call, name, text);
}

/* cuInit's failures that mean "no usable driver here", in words; others by their name. */
static cs_status init_error(const cs__cu *cu, const char *path, cs__cu_result r, cs_error *err)
{
    if (r == CS__CU_STUB_LIBRARY)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "%s is the CUDA toolkit's stub driver (CUDA_ERROR_STUB_LIBRARY): "
                            "this machine has the CUDA toolkit but no NVIDIA driver",
                            path);
    if (r == CS__CU_NO_DEVICE)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "the NVIDIA driver (%s) found no CUDA device (CUDA_ERROR_NO_DEVICE)",
                            path);
    cs__cu_error(cu, r, "cuInit", err);
    return cs_error_prefix(err, "%s: ", path);
}

cs_status cs__cu_open(const char *path, cs__cu *out, cs_error *err)
{
    *out = (cs__cu){0};
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        return cs_error_set(err, CS_ERR_UNSUPPORTED, "%s could not be loaded%s: %s", path,
                            strcmp(path, DEFAULT_LIB) ? "" : " (no NVIDIA driver on this machine)",
                            why ? why : "unknown reason");
    }
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        void *fn = dlsym(lib, entries[i].symbol);
        if (!fn) {
            dlclose(lib);
            return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                "%s is not a usable NVIDIA driver: it does not export %s", path,
                                entries[i].symbol);
        }
        memcpy((char *)out + entries[i].offset, &fn, sizeof fn);
    }
    out->lib = lib;
    cs__cu_result r = out->Init(0);
    if (r != CS__CU_SUCCESS) {
        cs_status rc = init_error(out, path, r, err);
        cs__cu_close(out);
        return rc;
    }
    return CS_OK;
}

void cs__cu_close(cs__cu *cu)
{
    if (cu->lib) dlclose(cu->lib);
    *cu = (cs__cu){0};
}

static struct {
    pthread_once_t once;
    cs_status rc;
    cs_error why;
    cs__cu cu;
} driver = {.once = PTHREAD_ONCE_INIT};

static void load_once(void)
{
    const char *path = getenv("CS_LIBCUDA");
    driver.rc = cs__cu_open(path && *path ? path : DEFAULT_LIB, &driver.cu, &driver.why);
}

cs_status cs__cu_load(const cs__cu **out, cs_error *err)
{
    pthread_once(&driver.once, load_once);
    *out = driver.rc == CS_OK ? &driver.cu : NULL;
    if (driver.rc != CS_OK && err) *err = driver.why;
    return driver.rc;
}

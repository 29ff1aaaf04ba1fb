/*
 * vendor_load.h - opening a vendor library and resolving its functions (internal).
 *
 * Shared by blaslt.c and dnn.c: the library's default soname or the path an environment
 * variable gives, opened with dlopen (RTLD_NOW | RTLD_LOCAL, so its symbols never
 * interpose on the engine's), and a table of (name, slot) pairs filled with dlsym.
 */
#ifndef CS_ENGINE_CUDA_VENDOR_LOAD_H
#define CS_ENGINE_CUDA_VENDOR_LOAD_H

#include <capstan/status.h>

typedef struct cs__vendor_sym {
    const char *name;
    void **slot;
} cs__vendor_sym;

/* Opens $env or else lib and resolves the n symbols into their slots. On failure nothing
 * stays open and the error (CS_ERR_UNSUPPORTED) names the file, the variable that
 * overrides it, and dlerror's reason or the first missing symbol. Returns the dlopen
 * handle, which the caller keeps for the process. */
void *cs__vendor_open(const char *lib, const char *env, const cs__vendor_sym *syms, int n,
                      cs_error *err);

#endif

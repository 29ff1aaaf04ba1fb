/*
 * vendor_load.h - loading a vendor library once per process, and making its handles
 * (internal).
 *
 * Shared by blaslt.c and dnn.c: the library's default soname or the path an environment
 * variable gives, opened with dlopen (RTLD_NOW | RTLD_LOCAL, so its symbols never
 * interpose on the engine's), a table of (name, slot) pairs filled with dlsym, and the
 * library's own version checked against the major version capstan is built for. Each
 * caller keeps one cs__vendor_lib for the process and its function table beside it.
 */
#ifndef CS_ENGINE_CUDA_VENDOR_LOAD_H
#define CS_ENGINE_CUDA_VENDOR_LOAD_H

#include <capstan/status.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cs__vendor_sym {
    const char *name;
    void **slot;
} cs__vendor_sym;

/* One vendor library: what to open and check, filled in by its user (CS__VENDOR_LIB), and
 * the handle once a load succeeded, written once under the lock and never cleared. */
typedef struct cs__vendor_lib {
    const char *lib;            /* default soname, "libcudnn.so.9" */
    const char *env;            /* the variable that overrides it, "CS_LIBCUDNN" */
    const char *name;           /* in messages, "cuDNN" */
    size_t major;               /* version() / 10000 must equal it */
    const cs__vendor_sym *syms; /* every function its user calls, the version one among them */
    int n_syms;
    size_t (**version)(void); /* the slot syms fills with the version function */
    pthread_mutex_t lock;
    void *handle;
} cs__vendor_lib;

#define CS__VENDOR_LIB(lib_, env_, name_, major_, syms_, version_)               \
    {                                                                            \
        .lib = lib_, .env = env_, .name = name_, .major = major_, .syms = syms_, \
        .n_syms = (int)(sizeof syms_ / sizeof syms_[0]), .version = version_,    \
        .lock = PTHREAD_MUTEX_INITIALIZER, .handle = NULL                        \
    }

/* Opens $env or else lib, resolves every symbol of the table and checks the version, once:
 * safe from any thread, and after a success it returns at once (the library stays open for
 * the process). A failure leaves nothing open and every slot NULL, and is not remembered,
 * so a later call retries; it is CS_ERR_UNSUPPORTED, naming the file and the variable, and
 * dlerror's reason, the first missing symbol or the version found. Needs no GPU. */
cs_status cs__vendor_load(cs__vendor_lib *v, cs_error *err);

/* The loaded library's version() (e.g. 91900), 0 before a load succeeded. */
size_t cs__vendor_version(cs__vendor_lib *v);

/* Makes the error for a vendor call `what` that returned a failing status. */
typedef cs_status (*cs__vendor_fail_fn)(cs_error *err, const char *what, int32_t status);

/* Loads v and then calls the handle constructor in *create (a slot of v's table, read once
 * the load filled it) into *out, which the caller frees with the library's destructor.
 * Status 0 is success; any other leaves *out NULL and returns fail(err, what, status). */
cs_status cs__vendor_handle_new(cs__vendor_lib *v, int32_t (*const *create)(void **),
                                cs__vendor_fail_fn fail, const char *what, void **out,
                                cs_error *err);

#endif

/*
 * cuda_be.h - the CUDA backend's state, shared with its kernels (internal).
 *
 * One backend per device ordinal (cuda:0 .. cuda:15), each a cs__cuda_be whose first
 * member is the cs__backend the planner holds, so a kernel turns ctx->be into the device's
 * driver table, context and stream with cs__cuda_be_of(). Every field below `base` is set
 * once by the backend's init (under its lock) and only read afterwards.
 */
#ifndef CS_ENGINE_CUDA_BE_H
#define CS_ENGINE_CUDA_BE_H

#include "engine/backend.h"
#include "engine/cuda/driver.h"
#include "engine/cuda/kernels.h"

#include <stdbool.h>

#define CS__CUDA_MAX_DEVICES 16

/* The project's kernels by index, in kernels.h's CS_CUDA_KERNELS order: CS__CUK_add_f32 is
 * the index of "cs_add_f32" in a device's function table. */
enum {
#define CS__CUK_ENUM(suffix) CS__CUK_##suffix,
    CS_CUDA_KERNELS(CS__CUK_ENUM)
#undef CS__CUK_ENUM
        CS__CUK_COUNT
};

typedef struct cs__cuda_be {
    cs__backend base; /* first: a cs__backend * of this backend is a cs__cuda_be * */
    int id;           /* the device ordinal, N in cuda:N */
    bool ready;       /* init succeeded: the fields below are valid */
    const cs__cu *cu; /* the process's driver (driver.h) */
    cs__cu_device dev;
    cs__cu_context ctx;         /* the device's primary context, retained for the process */
    cs__cu_stream stream;       /* non-blocking; every copy and kernel of the backend runs on it */
    size_t total_mem, free_mem; /* device memory in bytes, as init found it */
    int cc_major, cc_minor, sm_count;
    char device_name[96];
    /* The embedded fatbin, loaded into ctx once by init, and every kernel of it looked up;
     * NULL when it could not be (no_kernels says why), and then no node runs here. */
    cs__cu_module module;
    cs__cu_function fn[CS__CUK_COUNT];
    char no_kernels[192];
    /* Made on first use by cs__cuda_blaslt, under the backend's lock, and kept as long as
     * the context (for the process): the device's cuBLASLt handle, NULL until then. */
    void *blaslt;
} cs__cuda_be;

static inline const cs__cuda_be *cs__cuda_be_of(const cs__backend *be)
{
    return (const cs__cuda_be *)be;
}

/* The backend of cuda:id, NULL for an id outside 0..CS__CUDA_MAX_DEVICES-1. Whether the
 * device exists is known only after its init (cs__backend_for calls it). */
const cs__backend *cs__cuda_backend_get(int id);

/* Makes ctx current on the calling thread (sessions run on any thread), as every driver
 * call of the backend and its kernels needs; an error names the device. */
cs_status cs__cuda_enter(const cs__cuda_be *b, cs_error *err);

/* The device's cuBLASLt handle in *out, loading the library and creating the handle on
 * first use (b's context current); a failure is not remembered, so a later call retries,
 * and its error names the library and the variable that overrides it. */
cs_status cs__cuda_blaslt(const cs__cuda_be *b, void **out, cs_error *err);

/* A {0}-terminated kernel table that supports() picks from instead of the backend's own
 * (cuda_ops.h), by the lookup rule of the CPU's (cs__op_entry_serves); NULL, the default,
 * means the backend's own. Tests set it before sessions are created: the planner reads it
 * unlocked. */
void cs__cuda_kernels_set(const cs__kernel *table);

#endif

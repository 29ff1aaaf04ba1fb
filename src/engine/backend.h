/*
 * backend.h - where a session's nodes run and its buffers live (internal).
 *
 * Organised as ggml's backends and ONNX Runtime's execution providers are: the planner
 * (session.c) knows operators only through their schemas (op.h) and asks the session's
 * backend for everything that depends on the hardware:
 *  - supports(): the kernel from the backend's own table that runs a node for the element
 *    types its inputs have now, chosen at plan time, per session;
 *  - alloc()/release(): the buffers of the memory plan (activations, scratch) in the
 *    backend's memory;
 *  - copy_in()/copy_out(): moving bytes between host memory and the backend's;
 *  - sync(): waiting for the work a run queued (a no-op where kernels run synchronously).
 * A kernel's prepack() is the backend's prepare step: it runs once per static plan and
 * writes the packed form of the known weights that every run then reuses.
 *
 * Constant folding at plan time always runs on the CPU backend: folded values are host
 * memory the planner itself reads (Reshape targets, Slice bounds).
 */
#ifndef CS_ENGINE_BACKEND_H
#define CS_ENGINE_BACKEND_H

#include "engine/kernel.h"

typedef struct cs__backend cs__backend;

struct cs__backend {
    const char *name;    /* "cpu" */
    cs_device device;    /* where alloc() puts buffers */
    uint32_t precisions; /* the cs_precision values it computes in, as (1u << p) bits */
    /* The kernel running n on this backend for its inputs' element types, or NULL with an
     * error naming the node, the type and the device. */
    const cs__kernel *(*supports)(const cs__backend *be, const cs__node *n,
                                  const cs_tensor *const *in, cs_error *err);
    void *(*alloc)(const cs__backend *be, size_t bytes); /* 64-byte aligned; NULL: no memory */
    void (*release)(const cs__backend *be, void *p);
    cs_status (*copy_in)(const cs__backend *be, void *dst, const void *host, size_t bytes,
                         cs_error *err);
    cs_status (*copy_out)(const cs__backend *be, void *host, const void *src, size_t bytes,
                          cs_error *err);
    cs_status (*sync)(const cs__backend *be, cs_error *err);
    /* Loads what the backend needs (its libraries), once; cs__backend_for calls it, so a
     * session on a backend that cannot run fails at creation naming why. */
    cs_status (*init)(const cs__backend *be, cs_error *err);
};

/* The CPU backend: host memory, the kernels under cpu/. Always present; it folds constants
 * for every other backend. */
extern const cs__backend cs__cpu_backend;

/* The CPU kernel table's entry for (op, domain, opset), or NULL. */
const cs__kernel *cs__cpu_kernel_find(const char *op, const char *domain, int64_t opset);

/* The backend for a device as cs_device_parse() gives it, computing in `precision`; fails
 * naming the device or the precision and what this build offers. */
cs_status cs__backend_for(cs_device device, cs_precision precision, const cs__backend **out,
                          cs_error *err);

/* A session on be itself, as cs_session_new gives one for a device (tests bring backends
 * of their own: tests/conformance/xor_backend.c). */
cs_status cs__session_new_on(const cs_model_t *m, const cs_session_options *opts,
                             const cs__backend *be, cs_session_t **out, cs_error *err);

#endif

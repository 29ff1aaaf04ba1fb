/*
 * kernel.h - the contract between the planner/executor and a backend's kernels (internal).
 *
 * A kernel computes one operator (op.h gives its outputs' types and shapes) on one backend.
 * Each operator family file under cpu/ exports a {0}-terminated table of cs__kernel
 * entries; an entry serves one operator from opset `since` until the next entry for the
 * same operator, for the element types in `types` (checked on input `type_input`).
 *
 * run computes outputs whose buffers are already allocated (out[j].data) with the shapes
 * infer gave. It must not allocate: temporary memory comes from `scratch`, whose size the
 * optional scratch() hook reports at plan time. Errors go through cs_error with a message
 * that names the node and the problem. in[i] is NULL for an absent optional input; all
 * n_out outputs always have buffers.
 */
#ifndef CS_ENGINE_KERNEL_H
#define CS_ENGINE_KERNEL_H

#include "engine/op.h"

#include <math.h>
#include <stdbool.h>

struct cs_pool;

/* An elementwise activation fused into the kernel that produces its input: the planner
 * drops a Relu or a Clip that is a Conv's or a Gemm's only consumer and hands that step
 * this descriptor, and the kernel applies it to each output block while the block is still in
 * cache, saving a pass over the activation. Relu is the clamp to [0, +inf], which gives
 * the same value as Relu's own expression for every input, NaN and -0 included. */
typedef enum cs__act_kind {
    CS__ACT_NONE,
    CS__ACT_CLAMP, /* CS__CLAMP(v, lo, hi), with the bounds narrowed to the element type */
} cs__act_kind;

typedef struct cs__act {
    cs__act_kind kind;
    double lo, hi;
} cs__act;

/* max(v, lo) then min(., hi), as Clip computes it: NaN propagates (every comparison with
 * it is false) and with lo > hi every element becomes hi, as ONNX specifies. */
#define CS__CLAMP(v, lo, hi) (((v) < (lo) ? (lo) : (v)) > (hi) ? (hi) : ((v) < (lo) ? (lo) : (v)))

typedef struct cs__kctx {
    const cs__node *node;
    void *scratch; /* scratch() bytes, 64-byte aligned; NULL when none were asked */
    size_t scratch_size;
    struct cs_pool *pool; /* NULL: run on the calling thread */
    int threads;
    cs_error *err;
    const cs__act *act; /* only for CS__K_FUSE_ACT kernels: NULL or the activation to apply */
    const void *packed; /* what the kernel's prepack() wrote for this step, or NULL */
    const struct cs__backend *be; /* the backend the step runs on (its stream, its handles) */
} cs__kctx;

typedef cs_status (*cs__run_fn)(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                                int n_out);
typedef size_t (*cs__scratch_fn)(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 const cs_tensor *out, int n_out);
/* Prepacking: called once per step of a static plan, at plan time, where in[k]->data is
 * non-NULL exactly for the inputs known then (initializers, folded values). ctx gives the
 * node, the backend the step runs on (a device's library handles), the activation fused
 * into the step and err; it has no scratch, pool or packed bytes. Returns the bytes of a
 * prepacked form of known inputs the kernel wants (transformed weights, library
 * descriptors), 0 for none; called again with dst (that many bytes, 64-byte aligned) it
 * writes them. SIZE_MAX, from either call, fails the plan with ctx->err set (the kernel
 * has released what it made). The plan owns the bytes and hands them to every run of the
 * step as ctx->packed. */
typedef size_t (*cs__prepack_fn)(cs__kctx *ctx, const cs_tensor *const *in, int n_in,
                                 const cs_tensor *out, int n_out, void *dst);

typedef struct cs__kernel {
    const char *op;
    const char *domain; /* NULL or "" for the default domain */
    int since;          /* first opset version served by this entry */
    uint32_t types;     /* accepted dtypes of in[type_input] as CS__T() bits; 0 = any */
    int type_input;
    cs__run_fn run;
    cs__scratch_fn scratch; /* optional */
    unsigned flags;         /* CS__K_* */
    cs__prepack_fn prepack; /* optional */
    /* Device kernels: the inputs (bit k for in[k]) they read in host memory - shapes, axes,
     * indices known at plan time - which the planner leaves there instead of uploading. */
    uint32_t host_inputs;
    /* Optional, for kernels that serve only some forms of their operator (an axis, a rank,
     * an attribute): false, with err naming what, sends the node to another backend. Asked
     * at plan time with the inputs' types and shapes (known inputs' data too). */
    bool (*accepts)(const cs__node *n, const cs_tensor *const *in, cs_error *err);
    /* Optional, for CS__K_PACKED_HOST kernels whose packed bytes hold resources (library
     * descriptors): called with them once when the plan is freed, before the bytes go. */
    void (*release_packed)(const struct cs__backend *be, void *packed);
} cs__kernel;

/* run() applies ctx->act to its output (float32 and float64), so the planner may fuse a
 * following activation into it. */
#define CS__K_FUSE_ACT 1u
/* A device kernel's prepack() output is host-side state (an algorithm chosen for the shape,
 * library descriptors), kept in host memory; without the flag a device step's packed bytes
 * are uploaded to the device (transformed weights). */
#define CS__K_PACKED_HOST 2u
/* prepack() output depends on nothing but the step's inputs (their bytes and shapes): steps
 * of the kernel with the same inputs share one packed copy (a weight several nodes use).
 * Kernels with release_packed never share (it would free the shared bytes once per step). */
#define CS__K_PACK_BY_INPUTS 4u

/* Steps in the session's most recently used plan, -1 before its first run: a fused
 * activation has none, which lets tests see that the planner fused. */
int cs__session_steps(const cs_session_t *s);

/* Makes the session's later plans use the reference kernels' paths: no activation fused
 * into its producer, no prepacked weights. The cross-backend check compares a backend
 * against a one-thread CPU session in this mode. */
void cs__session_set_reference(cs_session_t *s);

/* Applies a fused activation in place to n elements of y, float32 or float64, with the
 * unfused Clip's own loops, so fused and unfused results agree bit for bit. */
void cs__act_apply(const cs__act *a, cs_dtype t, void *y, int64_t n);

/* Runs fn over [0, n) split into contiguous ranges, on ctx's pool when there is one and
 * the work is worth it (n >= min_chunk * 2), else inline. */
typedef void (*cs__range_fn)(void *arg, int64_t begin, int64_t end);
void cs__parallel_for(cs__kctx *ctx, int64_t n, int64_t min_chunk, cs__range_fn fn, void *arg);

#endif

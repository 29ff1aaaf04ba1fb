/*
 * kernel.h - the contract between the planner/executor and the operator kernels (internal).
 *
 * Each operator family file under cpu/ exports a table of cs__kernel entries. An entry
 * serves one operator from opset `since` until the next entry for the same operator, for
 * the element types in `types` (checked on input `type_input`).
 *
 * A kernel has two halves:
 *  - infer: from the inputs' types and shapes, set every output's dtype, rank and dims.
 *    It runs at plan time, when input data may be unknown (data == NULL). A kernel whose
 *    output shape depends on input values (Reshape's shape, Range's limits, NonZero) returns
 *    CS__DEFER when that data is unknown; the executor then infers again at run time.
 *    When every input is known at plan time, the planner runs the node then (constant
 *    folding), so shape computations in exported graphs fold away.
 *  - run: compute outputs whose buffers are already allocated (out[j].data) with the shapes
 *    infer gave. It must not allocate: temporary memory comes from `scratch`, whose size the
 *    optional scratch() hook reports at plan time.
 * Both report errors through cs_error with a message that names the node and the problem.
 * in[i] is NULL for an absent optional input; all n_out outputs always have buffers.
 */
#ifndef CS_ENGINE_KERNEL_H
#define CS_ENGINE_KERNEL_H

#include "engine/graph.h"

#include <math.h>
#include <stdbool.h>

/* Returned by infer when an output shape needs input data that is not yet known. */
#define CS__DEFER ((cs_status)(CS_STATUS_COUNT + 1))

struct cs_pool;

/* An elementwise activation fused into the kernel that produces its input: the planner
 * drops a Relu or a Clip that is a Conv's only consumer and hands the Conv this
 * descriptor, and the kernel applies it to each output block while the block is still in
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
} cs__kctx;

typedef cs_status (*cs__infer_fn)(const cs__node *n, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out, cs_error *err);
typedef cs_status (*cs__run_fn)(cs__kctx *ctx, const cs_tensor *const *in, int n_in, cs_tensor *out,
                                int n_out);
typedef size_t (*cs__scratch_fn)(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 const cs_tensor *out, int n_out);
/* Prepacking: called once per step of a static plan, at plan time, where in[k]->data is
 * non-NULL exactly for the inputs known then (initializers, folded values). Returns the
 * bytes of a prepacked form of known inputs the kernel wants (transformed weights), 0 for
 * none; called again with dst (that many bytes, 64-byte aligned) it writes them. The plan
 * owns the bytes and hands them to every run of the step as ctx->packed. */
typedef size_t (*cs__prepack_fn)(const cs__node *n, const cs_tensor *const *in, int n_in,
                                 const cs_tensor *out, int n_out, void *dst);

typedef struct cs__kernel {
    const char *op;
    const char *domain; /* NULL or "" for the default domain */
    int since;          /* first opset version served by this entry */
    uint32_t types;     /* accepted dtypes of in[type_input] as CS__T() bits; 0 = any */
    int type_input;
    cs__infer_fn infer;
    cs__run_fn run;
    cs__scratch_fn scratch; /* optional */
    unsigned flags;         /* CS__K_* */
    cs__prepack_fn prepack; /* optional */
} cs__kernel;

/* run() reads only the inputs' types and shapes, never their data (Shape, Size): the
 * planner folds such a node as soon as its input shapes are known. */
#define CS__K_SHAPE_ONLY 1u
/* run() applies ctx->act to its output (float32 and float64), so the planner may fuse a
 * following activation into it. */
#define CS__K_FUSE_ACT 2u

/* dtype masks for kernel tables */
#define CS__T(x)      (1u << CS_DTYPE_##x)
#define CS__T_FLOAT   (CS__T(FLOAT32) | CS__T(FLOAT64) | CS__T(FLOAT16) | CS__T(BFLOAT16))
#define CS__T_SINT    (CS__T(INT8) | CS__T(INT16) | CS__T(INT32) | CS__T(INT64))
#define CS__T_UINT    (CS__T(UINT8) | CS__T(UINT16) | CS__T(UINT32) | CS__T(UINT64))
#define CS__T_INT     (CS__T_SINT | CS__T_UINT)
#define CS__T_NUMERIC (CS__T_FLOAT | CS__T_INT)
#define CS__T_ALL     (CS__T_NUMERIC | CS__T(BOOL))

/* Finds the kernel for (op, domain, opset). Returns NULL when none serves it; *reason then
 * says why in a form for "unsupported operator X (opset N)" messages. */
const cs__kernel *cs__kernel_find(const char *op, const char *domain, int64_t opset);

/* Steps in the session's most recently used plan, -1 before its first run: a fused
 * activation has none, which lets tests see that the planner fused. */
int cs__session_steps(const cs_session_t *s);

/* --- attributes ------------------------------------------------------------------------ */
const cs__attr *cs__attr_find(const cs__node *n, const char *name);
int64_t cs__attr_int(const cs__node *n, const char *name, int64_t def);
float cs__attr_float(const cs__node *n, const char *name, float def);
const char *cs__attr_str(const cs__node *n, const char *name, const char *def);
/* INTS attribute: returns its count and sets *v, or returns -1 when absent. */
int cs__attr_ints(const cs__node *n, const char *name, const int64_t **v);
/* FLOATS attribute: returns its count and sets *v, or returns -1 when absent. */
int cs__attr_floats(const cs__node *n, const char *name, const float **v);

/* Clip's floating-point bounds, from its attributes (before opset 11) or its optional
 * scalar inputs, which must have data; absent ones leave -inf/+inf (or -/+FLT_MAX). */
cs_status cs__clip_bounds(const cs__node *n, const cs_tensor *const *in, int n_in, double *lo,
                          double *hi, cs_error *err);
/* Applies a fused activation in place to n elements of y, float32 or float64, with the
 * unfused Clip's own loops, so fused and unfused results agree bit for bit. */
void cs__act_apply(const cs__act *a, cs_dtype t, void *y, int64_t n);

/* --- tensors --------------------------------------------------------------------------- */
static inline int64_t cs__numel(const cs_tensor *t)
{
    return cs_tensor_numel(t);
}
/* Row-major strides in elements. */
void cs__strides(const cs_tensor *t, int64_t *strides);
/* Copies dtype and shape of src into dst (not data). */
void cs__same_shape(cs_tensor *dst, const cs_tensor *src);

/* Numpy-style multidirectional broadcast of n shapes into out's rank and dims. */
cs_status cs__broadcast(int n, const cs_tensor *const *ts, cs_tensor *out, cs_error *err);
/* Normalises an axis in [-rank, rank) to [0, rank). With `inclusive` the axis indexes an
 * output of rank+1 (OneHot, Unsqueeze): its range is [-rank-1, rank] and -1 means "after
 * the last input axis". */
cs_status cs__axis(const cs__node *n, int64_t axis, int rank, bool inclusive, int *out,
                   cs_error *err);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float cs__f16_to_f32(uint16_t h);
uint16_t cs__f32_to_f16(float f);
float cs__bf16_to_f32(uint16_t h);
uint16_t cs__f32_to_bf16(float f);

/* Error with the node's identity in front: "Conv 'conv1': ...". */
cs_status cs__node_error(cs_error *err, const cs__node *n, cs_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Runs fn over [0, n) split into contiguous ranges, on ctx's pool when there is one and
 * the work is worth it (n >= min_chunk * 2), else inline. */
typedef void (*cs__range_fn)(void *arg, int64_t begin, int64_t end);
void cs__parallel_for(cs__kctx *ctx, int64_t n, int64_t min_chunk, cs__range_fn fn, void *arg);

#endif

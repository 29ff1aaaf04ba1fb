/*
 * op.h - operators as ONNX defines them, apart from any backend (internal).
 *
 * An operator's schema half says what its outputs are: from the inputs' types and shapes,
 * infer() sets every output's dtype, rank and dims. It is the same whichever backend runs
 * the node, so it lives here and in ops/, and each backend (backend.h) only brings kernels
 * that compute outputs whose shapes infer() gave. Each operator family under ops/ exports a
 * {0}-terminated table of cs__op entries; an entry serves one operator from opset `since`
 * until the next entry for the same operator.
 *
 * infer runs at plan time, when input data may be unknown (data == NULL). An operator whose
 * output shape depends on input values (Reshape's shape, Range's limits, NonZero) returns
 * CS__DEFER when that data is unknown; the executor then infers again at run time. When
 * every input is known at plan time, the planner runs the node then (constant folding), so
 * shape computations in exported graphs fold away. Errors go through cs_error with a message
 * that names the node and the problem. in[i] is NULL for an absent optional input.
 */
#ifndef CS_ENGINE_OP_H
#define CS_ENGINE_OP_H

#include "engine/graph.h"

#include <stdbool.h>

/* Returned by infer when an output shape needs input data that is not yet known. */
#define CS__DEFER ((cs_status)(CS_STATUS_COUNT + 1))

typedef cs_status (*cs__infer_fn)(const cs__node *n, const cs_tensor *const *in, int n_in,
                                  cs_tensor *out, int n_out, cs_error *err);

typedef struct cs__op {
    const char *op;
    const char *domain; /* NULL or "" for the default domain */
    int since;          /* first opset version served by this entry */
    cs__infer_fn infer;
    unsigned flags; /* CS__OP_* */
} cs__op;

/* The operator reads only its inputs' types and shapes, never their data (Shape, Size): the
 * planner folds such a node as soon as its input shapes are known. */
#define CS__OP_SHAPE_ONLY 1u

/* Sets of element types as (1u << dtype) bits, for schemas and kernel tables. */
#define CS__T(x)      (1u << CS_DTYPE_##x)
#define CS__T_FLOAT   (CS__T(FLOAT32) | CS__T(FLOAT64) | CS__T(FLOAT16) | CS__T(BFLOAT16))
#define CS__T_SINT    (CS__T(INT8) | CS__T(INT16) | CS__T(INT32) | CS__T(INT64))
#define CS__T_UINT    (CS__T(UINT8) | CS__T(UINT16) | CS__T(UINT32) | CS__T(UINT64))
#define CS__T_INT     (CS__T_SINT | CS__T_UINT)
#define CS__T_NUMERIC (CS__T_FLOAT | CS__T_INT)
#define CS__T_ALL     (CS__T_NUMERIC | CS__T(BOOL))

/* Finds the schema for (op, domain, opset), or NULL when none serves it. */
const cs__op *cs__op_find(const char *op, const char *domain, int64_t opset);

/* Whether a table entry (op, domain, since) serves (want, want_domain, opset) better than
 * `best_since` (-1 for none yet): the lookup rule that op and kernel tables share. The
 * default domain is spelled NULL, "" or "ai.onnx". */
bool cs__op_entry_serves(const char *op, const char *domain, int since, const char *want,
                         const char *want_domain, int64_t opset, int best_since);

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
/* --- tensors --------------------------------------------------------------------------- */
static inline int64_t cs__numel(const cs_tensor *t)
{
    return cs_tensor_numel(t);
}
/* The product of dims[from..to). */
static inline int64_t cs__dims_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
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

#endif

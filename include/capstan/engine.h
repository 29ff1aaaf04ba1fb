/*
 * engine.h - capstan's ONNX inference engine, usable as a library without the server.
 *
 * A model (cs_model_t) is loaded once, read-only afterwards, and shared by any number of
 * sessions. A session (cs_session_t) owns the plans and memory for running the model; it is
 * reused across runs and is not thread-safe: run different sessions in parallel, not one
 * session from two threads.
 *
 * Ownership: the caller owns what it passes in. Output tensors returned by cs_session_run
 * point into the session's memory and stay valid until the next run on that session or
 * cs_session_free; copy them to keep them longer.
 */
#ifndef CAPSTAN_ENGINE_H
#define CAPSTAN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CS_MAX_RANK 8

/* Element types; the values are ONNX's TensorProto.DataType. */
typedef enum cs_dtype {
    CS_DTYPE_UNDEFINED = 0,
    CS_DTYPE_FLOAT32 = 1,
    CS_DTYPE_UINT8 = 2,
    CS_DTYPE_INT8 = 3,
    CS_DTYPE_UINT16 = 4,
    CS_DTYPE_INT16 = 5,
    CS_DTYPE_INT32 = 6,
    CS_DTYPE_INT64 = 7,
    CS_DTYPE_STRING = 8,
    CS_DTYPE_BOOL = 9,
    CS_DTYPE_FLOAT16 = 10,
    CS_DTYPE_FLOAT64 = 11,
    CS_DTYPE_UINT32 = 12,
    CS_DTYPE_UINT64 = 13,
    CS_DTYPE_BFLOAT16 = 16,
} cs_dtype;

/* ONNX's name for a type ("float32", "int64", ...); "undefined" for unknown values. */
const char *cs_dtype_name(cs_dtype t);
/* Bytes per element; 0 for UNDEFINED and STRING. */
size_t cs_dtype_size(cs_dtype t);

/* Where memory lives, as DLPack's DLDevice says it: a kind and an index among devices of
 * that kind. The zero value is host memory. */
typedef enum cs_device_kind {
    CS_DEVICE_CPU = 0,
    CS_DEVICE_CUDA = 1,
} cs_device_kind;

typedef struct cs_device {
    cs_device_kind kind;
    int id; /* 0 for the CPU */
} cs_device;

/* Parses "cpu", "cuda" (= "cuda:0") or "cuda:N"; NULL and "" mean the CPU. Fails naming
 * the text and the forms allowed. */
cs_status cs_device_parse(const char *text, cs_device *out, cs_error *err);
/* CS_OK when sessions can run on d here (its backend is built in, its driver loads, the
 * device exists); otherwise the reason, as cs_session_new would give it. */
cs_status cs_device_check(cs_device d, cs_error *err);
/* Writes "cpu" or "cuda:N" into buf (cap bytes) and returns buf. */
const char *cs_device_format(cs_device d, char *buf, size_t cap);

/* A dense, row-major tensor. `data` is borrowed: whoever filled the struct owns it. It lies
 * in `device`'s memory: a zero-initialised tensor is on the host. */
typedef struct cs_tensor {
    cs_dtype dtype;
    int rank;
    int64_t dims[CS_MAX_RANK];
    void *data;
    cs_device device;
} cs_tensor;

/* Number of elements (1 for a scalar). */
int64_t cs_tensor_numel(const cs_tensor *t);

/* Writes a shape as "[2,3,batch]" into buf (cap bytes, always NUL-terminated, cut short when
 * it does not fit) for messages: a negative dims[d] prints as names[d], or "?" without one
 * (names may be NULL). Returns buf. */
const char *cs_shape_format(char *buf, size_t cap, int rank, const int64_t *dims,
                            const char *const *names);

/* Element i of t converted to double or int64, and the reverse, for every numeric type and
 * bool (float16 and bfloat16 included; integers wrap, bool is "not zero"). One switch per
 * element: for codecs and shape values, not for hot loops. */
double cs_tensor_get_f64(const cs_tensor *t, int64_t i);
int64_t cs_tensor_get_i64(const cs_tensor *t, int64_t i);
void cs_tensor_set_f64(cs_tensor *t, int64_t i, double v);
void cs_tensor_set_i64(cs_tensor *t, int64_t i, int64_t v);

/* A graph input or output as the model declares it. dims[i] is -1 where the dimension is
 * symbolic or unknown; dim_names[i] is then its symbol ("batch") or NULL. */
typedef struct cs_value_info {
    const char *name;
    cs_dtype dtype;
    int rank; /* -1 when the model does not declare a shape */
    const int64_t *dims;
    const char *const *dim_names;
} cs_value_info;

typedef struct cs_model cs_model_t;
typedef struct cs_session cs_session_t;

/* Loads a model from a file, which is mapped into memory: weights are read in place.
 * Fails with CS_ERR_PARSE for a malformed file and CS_ERR_UNSUPPORTED naming the first
 * operator the engine lacks ("unsupported operator X (opset N)"). */
cs_status cs_model_load_file(const char *path, cs_model_t **out, cs_error *err);
/* External data (ONNX external_data) must be a regular file inside the model's folder after
 * symlinks: an absolute location, `..` or a symlink leading out fails the load with
 * CS_ERR_INVALID. cs_model_load_file_inline refuses any external data (CS_ERR_PARSE naming
 * the tensor): for content-addressed artifacts, whose folder holds other artifacts. */
cs_status cs_model_load_file_inline(const char *path, cs_model_t **out, cs_error *err);

/* Loads a model from memory. The buffer is copied only where needed for alignment: the
 * caller must keep it alive until cs_model_free. External data is resolved against
 * `base_dir` (may be NULL: then a model with external data fails to load). */
cs_status cs_model_load_buffer(const void *buf, size_t len, const char *base_dir, cs_model_t **out,
                               cs_error *err);

void cs_model_free(cs_model_t *m);

int cs_model_input_count(const cs_model_t *m);
int cs_model_output_count(const cs_model_t *m);
/* The i-th input/output (0-based). Strings and arrays live as long as the model. */
cs_value_info cs_model_input(const cs_model_t *m, int i);
cs_value_info cs_model_output(const cs_model_t *m, int i);

/* The opset version imported for `domain` ("" or "ai.onnx" for the default domain),
 * or 0 when the model does not import it. */
int64_t cs_model_opset(const cs_model_t *m, const char *domain);
/* The model's opset imports: count, and the i-th domain ("" for the default domain) and
 * version. */
int cs_model_opset_count(const cs_model_t *m);
void cs_model_opset_at(const cs_model_t *m, int i, const char **domain, int64_t *version);
int64_t cs_model_ir_version(const cs_model_t *m);
const char *cs_model_producer(const cs_model_t *m); /* "" when absent */
const char *cs_model_graph_name(const cs_model_t *m);
/* metadata_props: count, and the i-th key/value pair. */
int cs_model_metadata_count(const cs_model_t *m);
void cs_model_metadata(const cs_model_t *m, int i, const char **key, const char **value);
/* Nodes in the graph and the i-th node's operator type, for histograms. */
int cs_model_node_count(const cs_model_t *m);
const char *cs_model_node_op(const cs_model_t *m, int i);
/* The i-th node's name ("" when the model gives none). */
const char *cs_model_node_name(const cs_model_t *m, int i);
/* Bytes of initializer data the model holds. */
size_t cs_model_weight_bytes(const cs_model_t *m);

/* The arithmetic a session's kernels may use. FP32 computes every operator in the model's
 * own element types; the others let a backend that has them (the CPU has none) compute
 * float32 operators in reduced precision, as TensorRT's and ONNX Runtime's precision flags
 * do. */
typedef enum cs_precision {
    CS_PRECISION_FP32 = 0,
    CS_PRECISION_TF32 = 1,
    CS_PRECISION_FP16 = 2,
    CS_PRECISION_BF16 = 3,
} cs_precision;

/* Parses "fp32", "tf32", "fp16" or "bf16"; fails naming the text and the names allowed. */
cs_status cs_precision_parse(const char *text, cs_precision *out, cs_error *err);
/* "fp32", "tf32", "fp16" or "bf16". */
const char *cs_precision_name(cs_precision p);

typedef struct cs_session_options {
    int threads; /* worker threads for one run; 0 = one per core, 1 = the calling thread */
    /* Bytes the session's plans may hold together (folded constants, packed weights, the
     * activation arena and scratch; a dynamic plan's per-run buffers too); 0 = no bound. Each
     * allocation is charged before it is made: over the bound, least recently used plans are
     * dropped first, and a plan that alone does not fit fails with CS_ERR_TOO_LARGE naming
     * the bytes it needs and the bound, having allocated none of them. */
    size_t max_memory;
    /* Where the session runs: "cpu" (NULL and "" too) or, in builds with that backend,
     * "cuda:N". Nodes the device has no kernel for run on the CPU, their values copied
     * across; inputs are given and outputs returned in host memory (cs_tensor.device zero),
     * whatever the device. */
    const char *device;
    cs_precision precision; /* the arithmetic the backend may use; 0 = the model's own */
} cs_session_options;

/* Creates a session; opts may be NULL for the defaults. The model must outlive it. */
cs_status cs_session_new(const cs_model_t *m, const cs_session_options *opts, cs_session_t **out,
                         cs_error *err);
void cs_session_free(cs_session_t *s);

/* Runs the model. inputs[i] is the input named names[i]; every model input without a
 * default (initializer) must be given exactly once. On success outputs[j] receives the
 * model's j-th output (n_outputs must equal cs_model_output_count), pointing into session
 * memory. Errors name the input and what was expected ("input 'x': expected shape
 * [N,3,224,224], got [1,3,32,32]"). */
cs_status cs_session_run(cs_session_t *s, int n_inputs, const char *const *names,
                         const cs_tensor *inputs, int n_outputs, cs_tensor *outputs, cs_error *err);

/* Builds the plan for the model's declared input shapes when every input without a default
 * has a fully static shape, so that a plan over max_memory fails at load rather than at the
 * first request (CS_ERR_TOO_LARGE, as cs_session_run); the first run with those shapes then
 * reuses it. Does nothing when some dimension is dynamic; other errors are the plan's, as
 * the first run would report them. */
cs_status cs_session_prepare(cs_session_t *s, cs_error *err);

/* Per-node timing for profilers. While set, every run calls fn(ctx, node, ns) on the
 * calling thread after each step, with the node's index in the model (cs_model_node_op,
 * cs_model_node_name) and the nanoseconds its kernel took (for a plan whose shapes depend
 * on data, shape inference and buffer placement too). A Relu or Clip fused into the Conv
 * before it is timed with that Conv; nodes folded at plan time never run and are not
 * reported. fn == NULL turns timing off (the default), which costs one branch per step. */
typedef void (*cs_node_timer_fn)(void *ctx, int node, uint64_t ns);
void cs_session_set_node_timer(cs_session_t *s, cs_node_timer_fn fn, void *ctx);

/* Where the session's most recently used plan runs node i (cs_model_node_* order): its
 * device, or the host for a node the device has no kernel for; false when the node has no
 * step (folded at plan time, fused into its producer, or no output needed) or no plan was
 * built yet. */
bool cs_session_node_device(const cs_session_t *s, int node, cs_device *out);

#ifdef __cplusplus
}
#endif
#endif

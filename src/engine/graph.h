/*
 * graph.h - the engine's in-memory model: values, nodes and attributes (internal).
 *
 * The ONNX reader fills these structures once at load time; afterwards the model is
 * read-only and shared by every session. Values are numbered: a node names its inputs and
 * outputs by value id, -1 for an absent optional input. Names and small arrays live in the
 * model's arena; initializer data points into the mapped file where alignment allows.
 */
#ifndef CS_ENGINE_GRAPH_H
#define CS_ENGINE_GRAPH_H

#include "capstan/engine.h"

#include "base/arena.h"

/* ONNX AttributeProto.AttributeType values. */
typedef enum cs__attr_type {
    CS__ATTR_UNDEFINED = 0,
    CS__ATTR_FLOAT = 1,
    CS__ATTR_INT = 2,
    CS__ATTR_STRING = 3,
    CS__ATTR_TENSOR = 4,
    CS__ATTR_GRAPH = 5,
    CS__ATTR_FLOATS = 6,
    CS__ATTR_INTS = 7,
    CS__ATTR_STRINGS = 8,
    CS__ATTR_TENSORS = 9,
    CS__ATTR_GRAPHS = 10,
} cs__attr_type;

typedef struct cs__attr {
    const char *name;
    cs__attr_type type;
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy; s_len excludes the NUL */
    size_t s_len;
    int n;                /* element count of floats/ints/strings */
    const float *floats;  /* FLOATS */
    const int64_t *ints;  /* INTS */
    const char **strings; /* STRINGS */
    const cs_tensor *t;   /* TENSOR */
} cs__attr;

struct cs__op;

typedef struct cs__node {
    const char *name;
    const char *op_type;
    const char *domain; /* "" for the default ONNX domain */
    int n_in, n_out;
    int *in;  /* value ids; -1 for an absent optional input */
    int *out; /* value ids; an unnamed output gets an anonymous value of its own */
    int n_attr;
    cs__attr *attr;
    int64_t opset;               /* the model's opset for this node's domain */
    const struct cs__op *schema; /* bound at load: shape and type inference */
} cs__node;

typedef struct cs__value {
    const char *name;
    cs_dtype dtype;                     /* declared type, or UNDEFINED */
    int rank;                           /* declared rank, or -1 */
    int64_t dims[CS_MAX_RANK];          /* -1 where symbolic or unknown */
    const char *dim_names[CS_MAX_RANK]; /* symbol for a symbolic dim, else NULL */
    const cs_tensor *init;              /* initializer (constant) or NULL */
    int producer;                       /* node index, or -1 */
    int is_input, is_output;
} cs__value;

typedef struct cs__opset {
    const char *domain;
    int64_t version;
} cs__opset;

typedef struct cs__meta {
    const char *key, *value;
} cs__meta;

struct cs_model {
    cs_arena arena; /* names, arrays, copied tensors: everything the model owns */
    void *map;      /* mapped file, or NULL */
    size_t map_len;
    void **ext_maps; /* mapped external-data files */
    size_t *ext_lens;
    int n_ext;

    int64_t ir_version;
    const char *producer, *graph_name;
    cs__opset *opsets;
    int n_opsets;
    cs__meta *meta;
    int n_meta;

    cs__value *values;
    int n_values;
    cs__node *nodes; /* in topological order once loaded */
    int n_nodes;
    int *inputs; /* graph inputs the caller must or may feed (initialised ones are optional) */
    int n_inputs;
    int *outputs;
    int n_outputs;
    size_t weight_bytes;
};

#endif

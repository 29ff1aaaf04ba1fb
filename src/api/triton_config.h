/*
 * triton_config.h - Triton's model configuration, the subset capstan honours: read from a
 * config.pbtxt (through pbtxt.h) or from the JSON of a repository load's `config` parameter,
 * applied to a model's serving options, and written as the JSON of GET /v2/models/{m}/config.
 *
 * Honoured: name, platform/backend (must name ONNX), max_batch_size, input/output (checked
 * against the model: names, data_type, dims without the batch dimension when max_batch_size
 * > 0), instance_group (the counts, summed), dynamic_batching (preferred_batch_size,
 * max_queue_delay_microseconds), version_policy (latest, all, specific) and
 * default_model_filename (model.onnx only). Any other field is an error when reading strictly
 * (the API) and a warning otherwise (a file in a model repository).
 */
#ifndef CS_API_TRITON_CONFIG_H
#define CS_API_TRITON_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "capstan/engine.h"
#include "runtime/runtime.h"

#define CS_TRITON_MAX_IO       64 /* input and output entries, each */
#define CS_TRITON_MAX_VERSIONS 64 /* version_policy.specific.versions */
#define CS_TRITON_NAME_MAX     128

typedef enum cs_triton_policy {
    CS_TRITON_POLICY_LATEST, /* the `latest` highest versions (default: 1) */
    CS_TRITON_POLICY_ALL,
    CS_TRITON_POLICY_SPECIFIC,
} cs_triton_policy;

typedef struct cs_triton_io {
    char name[CS_TRITON_NAME_MAX];
    cs_dtype dtype; /* CS_DTYPE_UNDEFINED when not given */
    int rank;       /* -1 when dims are not given */
    int64_t dims[CS_MAX_RANK];
} cs_triton_io;

typedef struct cs_triton_config {
    char name[CS_TRITON_NAME_MAX]; /* "" when not given */
    int max_batch_size;            /* -1 when not given */
    int instances;                 /* 0 when no instance_group is given */
    bool dynamic_batching;         /* the message is present */
    int preferred[CS_RT_MAX_PREFERRED], n_preferred;
    int64_t max_queue_delay_us; /* -1 when not given */
    cs_triton_policy policy;
    int latest; /* for CS_TRITON_POLICY_LATEST */
    int64_t versions[CS_TRITON_MAX_VERSIONS];
    int n_versions; /* for CS_TRITON_POLICY_SPECIFIC */
    cs_triton_io inputs[CS_TRITON_MAX_IO], outputs[CS_TRITON_MAX_IO];
    int n_inputs, n_outputs;
} cs_triton_config;

/* The defaults: nothing given, version policy latest 1. */
void cs_triton_config_defaults(cs_triton_config *tc);

/* Reads j (a JSON object as Triton writes a model configuration, or pbtxt's reading of a
 * config.pbtxt) into tc, which starts from the defaults. A field capstan does not honour is
 * CS_ERR_INVALID when strict; otherwise its name is appended to warnings (cap bytes,
 * comma-separated; may be NULL) and it is skipped. Messages name the field and what is
 * allowed. */
cs_status cs_triton_config_read(const json_t *j, bool strict, cs_triton_config *tc, char *warnings,
                                size_t cap, cs_error *err);

/* Reads a config.pbtxt file of at most 1 MiB: cs_pbtxt_parse, then cs_triton_config_read with
 * strict false. */
cs_status cs_triton_config_load(const char *path, cs_triton_config *tc, char *warnings, size_t cap,
                                cs_error *err);

/* Checks tc's input/output against model m and applies what tc gives to cfg (max_batch_size,
 * instances, dynamic batching); *batch_given says whether tc decided batching (else the
 * caller's automatic batching applies). CS_ERR_INVALID naming the field on a mismatch. */
cs_status cs_triton_config_apply(const cs_triton_config *tc, const cs_model_t *m,
                                 cs_model_config *cfg, bool *batch_given, cs_error *err);

/* GET /v2/models/{m}/config's answer for a loaded version: Triton's JSON model configuration
 * (name, platform, backend, version_policy, max_batch_size, input, output, instance_group,
 * dynamic_batching when batching). NULL when out of memory; the caller owns the result. */
json_t *cs_triton_config_json(const char *name, const cs_model_t *m, const cs_model_config *cfg,
                              const cs_triton_config *policy);

#endif

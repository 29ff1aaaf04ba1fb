/*
 * onnx.h - reading ONNX protobuf into the engine's graph (internal).
 */
#ifndef CS_ENGINE_ONNX_H
#define CS_ENGINE_ONNX_H

#include "engine/graph.h"

/* Limits against hostile files: generous for real models, small enough to stop
 * allocation bombs. */
#define CS_ONNX_MAX_NODES      1000000
#define CS_ONNX_MAX_DIMS_NUMEL ((int64_t)1 << 40)

/* Fills m (already zeroed, arena initialised) from a serialised ModelProto. Names and
 * arrays go into m->arena; tensor data points into buf where alignment allows. External
 * data files are resolved against base_dir and mapped (recorded in m->ext_maps). */
cs_status cs__onnx_parse_model(cs_model_t *m, const uint8_t *buf, size_t len, const char *base_dir,
                               cs_error *err);

/* Decodes a serialised TensorProto (as in ONNX test data .pb files) into t, with data in
 * arena (copied; the buffer may be freed afterwards). *name receives the tensor's name
 * (arena copy, "" when absent) when name is not NULL. */
cs_status cs__onnx_parse_tensor(const uint8_t *buf, size_t len, cs_arena *arena, cs_tensor *t,
                                const char **name, cs_error *err);

#endif

/*
 * onnx_fuzz.c - libFuzzer target for the ONNX model reader.
 *
 * Feeds arbitrary bytes to cs_model_load_buffer and, when a model loads, walks every
 * accessor the CLI and server use, so that anything the reader accepts is also safe to
 * describe. Seeds: the model.onnx files of ONNX's node tests (see fuzz/run).
 */
#include "capstan/engine.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_model_t *m = NULL;
    cs_error err;
    if (cs_model_load_buffer(data, size, NULL, &m, &err) != CS_OK) return 0;
    size_t sum = 0;
    for (int i = 0; i < cs_model_input_count(m); i++) {
        cs_value_info v = cs_model_input(m, i);
        sum += strlen(v.name) + (size_t)v.rank;
        for (int d = 0; d < v.rank; d++) sum += v.dim_names[d] ? strlen(v.dim_names[d]) : 0;
    }
    for (int i = 0; i < cs_model_output_count(m); i++) sum += strlen(cs_model_output(m, i).name);
    for (int i = 0; i < cs_model_node_count(m); i++) sum += strlen(cs_model_node_op(m, i));
    for (int i = 0; i < cs_model_metadata_count(m); i++) {
        const char *k, *v;
        cs_model_metadata(m, i, &k, &v);
        sum += strlen(k) + strlen(v);
    }
    sum += strlen(cs_model_producer(m)) + strlen(cs_model_graph_name(m));
    cs_model_free(m);
    return sum == (size_t)-1;
}

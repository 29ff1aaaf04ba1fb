/*
 * model.c - loading models (from a mapped file or a buffer) and the read-only model API.
 *
 * Loading parses the ONNX bytes (onnx.c) and binds every node to its operator schema
 * (op.h). The CPU backend must have a kernel for it too, as it is every other backend's
 * fallback and folds constants for them, so an unsupported operator is reported at load
 * time, never while serving. The model keeps the file mapped for its lifetime: weights are read in
 * place.
 */
#include "engine/backend.h"
#include "engine/onnx.h"

#include "base/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Binds nodes to schemas; the first operator without one, or without a CPU kernel, fails
 * the load. */
static cs_status bind_schemas(cs_model_t *m, cs_error *err)
{
    for (int i = 0; i < m->n_nodes; i++) {
        cs__node *n = &m->nodes[i];
        n->schema = cs__op_find(n->op_type, n->domain, n->opset);
        if (n->schema && cs__cpu_kernel_find(n->op_type, n->domain, n->opset)) continue;
        if (n->domain[0] && strcmp(n->domain, "ai.onnx"))
            return cs_error_set(err, CS_ERR_UNSUPPORTED, "unsupported operator %s.%s (opset %lld)",
                                n->domain, n->op_type, (long long)n->opset);
        return cs_error_set(err, CS_ERR_UNSUPPORTED, "unsupported operator %s (opset %lld)",
                            n->op_type, (long long)n->opset);
    }
    return CS_OK;
}

static cs_status load(cs_model_t *m, const uint8_t *buf, size_t len, const char *base_dir,
                      cs_error *err)
{
    cs_status rc = cs__onnx_parse_model(m, buf, len, base_dir, err);
    if (rc == CS_OK) rc = bind_schemas(m, err);
    return rc;
}

static cs_model_t *model_new(void)
{
    cs_model_t *m = cs_calloc(1, sizeof *m);
    if (m) cs_arena_init(&m->arena, 256 * 1024);
    return m;
}

cs_status cs_model_load_buffer(const void *buf, size_t len, const char *base_dir, cs_model_t **out,
                               cs_error *err)
{
    *out = NULL;
    cs_model_t *m = model_new();
    if (!m) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_status rc = load(m, buf, len, base_dir, err);
    if (rc) {
        cs_model_free(m);
        return rc;
    }
    *out = m;
    return CS_OK;
}

/* Maps path and loads it; external data resolves against the file's folder, or is refused
 * when inline_only. */
static cs_status load_path(const char *path, bool inline_only, cs_model_t **out, cs_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cs_error_set(err, CS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cs_error_set(err, CS_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return cs_error_set(err, CS_ERR_PARSE, "%s: the file is empty", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return cs_error_set(err, CS_ERR_IO, "%s: %s", path, strerror(errno));

    cs_model_t *m = model_new();
    if (!m) {
        munmap(map, len);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    m->map = map;
    m->map_len = len;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    if (slash == path) snprintf(dir, sizeof dir, "/");
    cs_status rc = load(m, map, len, inline_only ? NULL : dir, err);
    if (rc) {
        cs_error_prefix(err, "%s: ", path);
        cs_model_free(m);
        return rc;
    }
    *out = m;
    return CS_OK;
}

cs_status cs_model_load_file(const char *path, cs_model_t **out, cs_error *err)
{
    return load_path(path, false, out, err);
}

cs_status cs_model_load_file_inline(const char *path, cs_model_t **out, cs_error *err)
{
    return load_path(path, true, out, err);
}

void cs_model_free(cs_model_t *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_ext; i++)
        if (m->ext_maps[i]) munmap(m->ext_maps[i], m->ext_lens[i]);
    cs_free(m->ext_maps);
    cs_free(m->ext_lens);
    if (m->map) munmap(m->map, m->map_len);
    cs_arena_free(&m->arena);
    cs_free(m);
}

int cs_model_input_count(const cs_model_t *m)
{
    return m->n_inputs;
}

int cs_model_output_count(const cs_model_t *m)
{
    return m->n_outputs;
}

static cs_value_info info_of(const cs__value *v)
{
    return (cs_value_info){v->name, v->dtype, v->rank, v->dims, v->dim_names};
}

cs_value_info cs_model_input(const cs_model_t *m, int i)
{
    return info_of(&m->values[m->inputs[i]]);
}

cs_value_info cs_model_output(const cs_model_t *m, int i)
{
    return info_of(&m->values[m->outputs[i]]);
}

int64_t cs_model_opset(const cs_model_t *m, const char *domain)
{
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        if (!strcmp(d, "ai.onnx")) d = "";
        if (!strcmp(d, domain)) return m->opsets[i].version;
    }
    return 0;
}

int cs_model_opset_count(const cs_model_t *m)
{
    return m->n_opsets;
}

void cs_model_opset_at(const cs_model_t *m, int i, const char **domain, int64_t *version)
{
    *domain = m->opsets[i].domain;
    *version = m->opsets[i].version;
}

int64_t cs_model_ir_version(const cs_model_t *m)
{
    return m->ir_version;
}

const char *cs_model_producer(const cs_model_t *m)
{
    return m->producer;
}

const char *cs_model_graph_name(const cs_model_t *m)
{
    return m->graph_name ? m->graph_name : "";
}

int cs_model_metadata_count(const cs_model_t *m)
{
    return m->n_meta;
}

void cs_model_metadata(const cs_model_t *m, int i, const char **key, const char **value)
{
    *key = m->meta[i].key;
    *value = m->meta[i].value;
}

int cs_model_node_count(const cs_model_t *m)
{
    return m->n_nodes;
}

const char *cs_model_node_op(const cs_model_t *m, int i)
{
    return m->nodes[i].op_type;
}

const char *cs_model_node_name(const cs_model_t *m, int i)
{
    return m->nodes[i].name ? m->nodes[i].name : "";
}

size_t cs_model_weight_bytes(const cs_model_t *m)
{
    return m->weight_bytes;
}

/*
 * cmd_inspect.c - `capstan inspect MODEL.onnx [-o json|yaml|wide|name]`: what a model
 * declares.
 *
 * Loads the model through the public engine API (so a model the engine cannot run fails
 * here too, naming the first unsupported operator) and prints its inputs and outputs with
 * symbolic dimension names, opset imports, IR version, producer, metadata, an operator
 * histogram and the weight size - as text, or as one JSON object (jansson) printed as JSON
 * or YAML through output.h for scripts.
 */
#include "cli/cli.h"

#include "base/alloc.h"
#include "base/map.h"
#include "base/sbuf.h"
#include "base/vec.h"
#include "capstan/engine.h"
#include "cli/output.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: capstan inspect MODEL.onnx [-o json|yaml|wide|name]\n\n"
    "Shows a model's inputs and outputs (name, type, shape; symbolic dimensions by name,\n"
    "'?' where unknown), opset imports, IR version, producer, metadata, how often each\n"
    "operator occurs and the size of its weights.\n\n"
    "options:\n"
    "  -o, --output F  json or yaml (one object: sizes in bytes), name (model/PATH), or\n"
    "                  wide (the text, the default); any case. --json is -o json\n"
    "  -h, --help      show this help\n";

typedef struct op_count {
    const char *op;
    size_t n;
} op_count;

static int by_count(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->op, y->op);
}

/* The operator histogram, most frequent first, in `ops` (a vec of op_count whose names
 * point into the model). A map from operator name to its index in the vec does the
 * counting in O(nodes). */
static cs_status op_histogram(const cs_model_t *m, cs_vec *ops)
{
    cs_map index;
    cs_map_init(&index);
    cs_vec_init(ops, sizeof(op_count));
    cs_status rc = CS_OK;
    for (int i = 0; i < cs_model_node_count(m) && rc == CS_OK; i++) {
        const char *op = cs_model_node_op(m, i);
        uintptr_t k = (uintptr_t)cs_map_get(&index, op); /* index + 1; 0 when new */
        if (!k) {
            op_count c = {op, 0};
            rc = cs_vec_push(ops, &c);
            if (rc == CS_OK) rc = cs_map_put(&index, op, (void *)(uintptr_t)ops->len);
            k = ops->len;
        }
        if (rc == CS_OK) ((op_count *)cs_vec_at(ops, k - 1))->n++;
    }
    cs_map_free(&index);
    if (ops->len) qsort(ops->data, ops->len, sizeof(op_count), by_count);
    return rc;
}

/* "[N,3,?]": symbols by name, '?' for unknown dimensions, "unknown" without a shape. */
static cs_status shape_text(const cs_value_info *v, cs_sbuf *b)
{
    cs_sbuf_clear(b);
    if (v->rank < 0) return cs_sbuf_puts(b, "unknown");
    cs_status rc = cs_sbuf_puts(b, "[");
    for (int d = 0; d < v->rank && rc == CS_OK; d++) {
        if (d) rc = cs_sbuf_puts(b, ",");
        if (rc != CS_OK) break;
        if (v->dims[d] >= 0)
            rc = cs_sbuf_printf(b, "%lld", (long long)v->dims[d]);
        else
            rc = cs_sbuf_puts(b, v->dim_names && v->dim_names[d] ? v->dim_names[d] : "?");
    }
    return rc == CS_OK ? cs_sbuf_puts(b, "]") : rc;
}

static cs_status print_values(const char *title, const cs_model_t *m, int n,
                              cs_value_info (*get)(const cs_model_t *, int))
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    cs_status rc = CS_OK;
    printf("%s:\n", title);
    for (int i = 0; i < n && rc == CS_OK; i++) {
        cs_value_info v = get(m, i);
        rc = shape_text(&v, &b);
        if (rc == CS_OK) printf("  %-24s %-8s %s\n", v.name, cs_dtype_name(v.dtype), b.data);
    }
    cs_sbuf_free(&b);
    return rc;
}

static cs_status print_text(const char *path, const cs_model_t *m, const cs_vec *ops)
{
    printf("model:      %s\n", path);
    printf("graph:      %s\n", cs_model_graph_name(m));
    printf("ir version: %lld\n", (long long)cs_model_ir_version(m));
    printf("producer:   %s\n", *cs_model_producer(m) ? cs_model_producer(m) : "(none)");
    printf("opsets:    ");
    for (int i = 0; i < cs_model_opset_count(m); i++) {
        const char *domain;
        int64_t v;
        cs_model_opset_at(m, i, &domain, &v);
        printf(" %s %lld", *domain ? domain : "ai.onnx", (long long)v);
    }
    printf("\n");
    cs_status rc = print_values("inputs", m, cs_model_input_count(m), cs_model_input);
    if (rc == CS_OK) rc = print_values("outputs", m, cs_model_output_count(m), cs_model_output);
    if (rc != CS_OK) return rc;
    printf("operators:  %d nodes\n", cs_model_node_count(m));
    for (size_t i = 0; i < ops->len; i++) {
        const op_count *c = cs_vec_at(ops, i);
        printf("  %-24s %zu\n", c->op, c->n);
    }
    size_t w = cs_model_weight_bytes(m);
    char size[32];
    cs_cli_size_text(w, size, sizeof size);
    if (w < 1024)
        printf("weights:    %zu bytes\n", w);
    else
        printf("weights:    %s (%zu bytes)\n", size, w);
    if (cs_model_metadata_count(m)) printf("metadata:\n");
    for (int i = 0; i < cs_model_metadata_count(m); i++) {
        const char *k, *v;
        cs_model_metadata(m, i, &k, &v);
        printf("  %s = %s\n", k, v);
    }
    return CS_OK;
}

/* Shape as JSON: numbers, symbol strings, null for unknown dims; null without a shape. */
static json_t *shape_json(const cs_value_info *v)
{
    if (v->rank < 0) return json_null();
    json_t *a = json_array();
    for (int d = 0; a && d < v->rank; d++) {
        json_t *e = v->dims[d] >= 0                   ? json_integer(v->dims[d])
                    : v->dim_names && v->dim_names[d] ? json_string(v->dim_names[d])
                                                      : json_null();
        if (json_array_append_new(a, e) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *values_json(const cs_model_t *m, int n,
                           cs_value_info (*get)(const cs_model_t *, int))
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        cs_value_info v = get(m, i);
        json_t *o = json_pack("{s:s, s:s, s:o}", "name", v.name, "dtype", cs_dtype_name(v.dtype),
                              "shape", shape_json(&v));
        if (json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Builds the whole object; NULL when jansson runs out of memory. */
static json_t *model_json(const char *path, const cs_model_t *m, const cs_vec *ops)
{
    json_t *opsets = json_object(), *hist = json_object(), *meta = json_object();
    int bad = !opsets || !hist || !meta;
    for (int i = 0; !bad && i < cs_model_opset_count(m); i++) {
        const char *domain;
        int64_t v;
        cs_model_opset_at(m, i, &domain, &v);
        bad = json_object_set_new(opsets, *domain ? domain : "ai.onnx", json_integer(v)) != 0;
    }
    for (size_t i = 0; !bad && i < ops->len; i++) {
        const op_count *c = cs_vec_at(ops, i);
        bad = json_object_set_new(hist, c->op, json_integer((json_int_t)c->n)) != 0;
    }
    for (int i = 0; !bad && i < cs_model_metadata_count(m); i++) {
        const char *k, *v;
        cs_model_metadata(m, i, &k, &v);
        bad = json_object_set_new(meta, k, json_string(v)) != 0;
    }
    if (bad) {
        json_decref(opsets);
        json_decref(hist);
        json_decref(meta);
        return NULL;
    }
    /* "o" steals each reference, also when json_pack fails. */
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:I, s:o}", "model", path,
                     "graph", cs_model_graph_name(m), "ir_version",
                     (json_int_t)cs_model_ir_version(m), "producer", cs_model_producer(m), "opsets",
                     opsets, "inputs", values_json(m, cs_model_input_count(m), cs_model_input),
                     "outputs", values_json(m, cs_model_output_count(m), cs_model_output), "nodes",
                     (json_int_t)cs_model_node_count(m), "operators", hist, "weight_bytes",
                     (json_int_t)cs_model_weight_bytes(m), "metadata", meta);
}

typedef struct inspect_opts {
    cs_cli_format out;
} inspect_opts;

static int on_option(void *ctx, int opt, const char *arg)
{
    inspect_opts *o = ctx;
    if (opt == 'j') { /* --json, as -o json */
        o->out = CS_CLI_OUT_JSON;
        return CS_CLI_CONTINUE;
    }
    return cs_cli_output_parse("inspect", arg, &o->out);
}

static int inspect_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"output", required_argument, NULL, 'o'}, {0}};
    static const cs_cli_spec spec = {"inspect", usage, "o:", longopts};
    inspect_opts o = {0};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc) return cs_cli_usage_error("inspect", "missing MODEL.onnx");
    if (argc - first > 1)
        return cs_cli_usage_error("inspect", "expected one model, got %d", argc - first);
    const char *path = argv[first];

    cs_model_t *m = NULL;
    cs_error err;
    cs_vec ops;
    cs_vec_init(&ops, sizeof(op_count));
    rc = CS_CLI_RUNTIME;
    if (cs_model_load_file(path, &m, &err) != CS_OK) {
        cs_cli_error("inspect", "%s", err.msg);
        goto out;
    }
    if (op_histogram(m, &ops) != CS_OK) {
        cs_cli_error("inspect", "out of memory");
        goto out;
    }
    if (o.out == CS_CLI_OUT_NAME) {
        printf("model/%s\n", path);
    } else if (o.out == CS_CLI_OUT_JSON || o.out == CS_CLI_OUT_YAML) {
        json_t *j = model_json(path, m, &ops);
        int wrc = j ? cs_cli_output("inspect", o.out, NULL, j, NULL)
                    : cs_cli_error("inspect", "out of memory");
        json_decref(j);
        if (wrc != CS_CLI_OK) goto out;
    } else if (print_text(path, m, &ops) != CS_OK) {
        cs_cli_error("inspect", "out of memory");
        goto out;
    }
    rc = CS_CLI_OK;
out:
    cs_vec_free(&ops);
    cs_model_free(m);
    return rc;
}

const cs_cli_command cs_cli_inspect_cmd = {
    "inspect", "show a model's inputs, outputs and operators", inspect_main};

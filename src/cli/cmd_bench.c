/*
 * cmd_bench.c - `capstan bench MODEL.onnx [...]`: a model's speed and memory as a user sees
 * them, on random inputs.
 *
 * Inputs are made from each input's declared type and shape: symbolic dimensions take
 * --dim NAME=V when given, else --batch; --shape replaces an input's whole shape. Values are
 * the same pseudo-random sequence bench/ort_bench.js draws (floats in [0, 1), integers in
 * [0, 100), integer inputs named "*mask*" all ones), or --fill's range. Then it times the
 * load (model and session), the first run (which builds the plan), --warmup untimed runs and
 * --iters timed runs, and reads the peak RSS from getrusage. --profile times every step of
 * the timed runs through the engine's node timer and adds time by operator type and by node.
 * Cost: the inputs live for the whole benchmark; one switch per element while filling them.
 */
#include "cli/cli.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "capstan/engine.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char usage[] =
    "usage: capstan bench MODEL.onnx [--batch B] [--shape NAME=D0,D1,...] [--dim NAME=V]\n"
    "                     [--threads N] [--iters K] [--warmup W] [--fill NAME=int:LO:HI]\n"
    "                     [--device DEV] [--precision P] [--profile] [--json]\n\n"
    "Runs the model on random inputs of each input's declared type and reports the load\n"
    "time (model and session), the first run's time (it plans), the p50/p90/min/mean\n"
    "latency of K runs after W warm-up runs, the throughput (batch x runs per second) and\n"
    "the process's peak resident memory.\n\n"
    "options:\n"
    "  -b, --batch B           value of symbolic dimensions without a --dim (default 1)\n"
    "  --shape NAME=D0,D1,...  the whole shape of input NAME\n"
    "  --dim NAME=V            value of the symbolic dimension NAME\n"
    "  -t, --threads N         worker threads (0 = one per core, the default; 1 = no pool)\n"
    "  --iters K               timed runs (default 50)\n"
    "  --warmup W              untimed runs before them (default 5)\n"
    "  --device DEV            where the session runs: cpu (the default) or cuda:N (the\n"
    "                          NVIDIA driver, libcuda.so.1, is loaded at run time; the\n"
    "                          environment variable CS_LIBCUDA names another file)\n"
    "  --precision P           fp32 (the model's own types, the default), tf32, fp16 or\n"
    "                          bf16 on backends that offer them\n"
    "  --fill NAME=KIND:LO:HI  input NAME uniform in [LO, HI]; KIND is int or float\n"
    "                          (default: floats in [0, 1), integers in [0, 100), ones for\n"
    "                          integer inputs whose name contains 'mask')\n"
    "  --profile               also time each node: time by operator type and by node\n"
    "  --json                  print one JSON object instead of text\n"
    "  -h, --help              show this help\n";

#define MAX_ARGS  16 /* of each of --shape, --dim, --fill */
#define MAX_ELEMS ((int64_t)1 << 31)
#define TOP_NODES 20 /* nodes in the text profile; --json lists all */

typedef struct shape_arg {
    const char *name; /* borrowed from argv, cut at '=' */
    int rank;
    int64_t dims[CS_MAX_RANK];
} shape_arg;

typedef struct dim_arg {
    const char *name;
    int64_t value;
} dim_arg;

typedef struct fill_arg {
    const char *name;
    bool is_int;
    double lo, hi;
} fill_arg;

typedef struct bench_opts {
    long batch, threads, iters, warmup;
    const char *device; /* as given; checked by cs_device_parse */
    cs_precision precision;
    bool profile, json;
    shape_arg shapes[MAX_ARGS];
    dim_arg dims[MAX_ARGS];
    fill_arg fills[MAX_ARGS];
    int n_shapes, n_dims, n_fills;
} bench_opts;

enum {
    OPT_SHAPE = 256,
    OPT_DIM,
    OPT_ITERS,
    OPT_WARMUP,
    OPT_FILL,
    OPT_PROFILE,
    OPT_JSON,
    OPT_DEVICE,
    OPT_PRECISION
};

/* Splits "NAME=REST" in place; returns REST, or NULL when NAME or REST is empty. */
static char *split_eq(char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return NULL;
    *eq = '\0';
    return eq + 1;
}

static int parse_shape(bench_opts *o, char *arg)
{
    shape_arg *s = &o->shapes[o->n_shapes];
    char *rest = o->n_shapes < MAX_ARGS ? split_eq(arg) : NULL;
    if (!rest) return cs_cli_usage_error("bench", "--shape expects NAME=D0,D1,..., got '%s'", arg);
    s->name = arg;
    s->rank = 0;
    for (char *tok = strtok(rest, ","); tok; tok = strtok(NULL, ",")) {
        long d;
        if (s->rank == CS_MAX_RANK || cs_cli_parse_int(tok, 0, 1L << 30, &d) != 0)
            return cs_cli_usage_error("bench",
                                      "--shape %s: expects up to %d dimensions of 0..2^30, "
                                      "got '%s'",
                                      arg, CS_MAX_RANK, tok);
        s->dims[s->rank++] = d;
    }
    o->n_shapes++;
    return CS_CLI_CONTINUE;
}

static int parse_fill(bench_opts *o, char *arg)
{
    fill_arg *f = &o->fills[o->n_fills];
    char *rest = o->n_fills < MAX_ARGS ? split_eq(arg) : NULL;
    char kind[8], *end = NULL;
    int used = 0;
    bool ok = rest && sscanf(rest, "%7[a-z]:%n", kind, &used) == 1 && used > 0;
    if (ok) {
        f->is_int = !strcmp(kind, "int");
        ok = f->is_int || !strcmp(kind, "float");
    }
    if (ok) {
        f->lo = strtod(rest + used, &end);
        ok = end != rest + used && *end == ':';
    }
    if (ok) {
        const char *hi = end + 1;
        f->hi = strtod(hi, &end);
        ok = end != hi && !*end && isfinite(f->lo) && isfinite(f->hi) && f->lo <= f->hi;
    }
    if (rest) rest[-1] = '='; /* the message shows the whole argument */
    if (!ok)
        return cs_cli_usage_error("bench",
                                  "--fill expects NAME=int:LO:HI or NAME=float:LO:HI with "
                                  "LO <= HI, got '%s'",
                                  arg);
    rest[-1] = '\0';
    f->name = arg;
    o->n_fills++;
    return CS_CLI_CONTINUE;
}

static int on_option(void *ctx, int opt, const char *arg)
{
    bench_opts *o = ctx;
    switch (opt) {
    case 'b':
        if (cs_cli_parse_int(arg, 1, 1L << 20, &o->batch) != 0)
            return cs_cli_usage_error("bench", "--batch expects 1..1048576, got '%s'", arg);
        return CS_CLI_CONTINUE;
    case 't':
        if (cs_cli_parse_int(arg, 0, 256, &o->threads) != 0)
            return cs_cli_usage_error("bench", "--threads expects 0..256, got '%s'", arg);
        return CS_CLI_CONTINUE;
    case OPT_ITERS:
        if (cs_cli_parse_int(arg, 1, 1000000, &o->iters) != 0)
            return cs_cli_usage_error("bench", "--iters expects 1..1000000, got '%s'", arg);
        return CS_CLI_CONTINUE;
    case OPT_WARMUP:
        if (cs_cli_parse_int(arg, 0, 1000000, &o->warmup) != 0)
            return cs_cli_usage_error("bench", "--warmup expects 0..1000000, got '%s'", arg);
        return CS_CLI_CONTINUE;
    case OPT_SHAPE: return parse_shape(o, (char *)arg); /* argv strings are ours to edit */
    case OPT_DIM: {
        char *rest = o->n_dims < MAX_ARGS ? split_eq((char *)arg) : NULL;
        long v;
        if (!rest || cs_cli_parse_int(rest, 0, 1L << 30, &v) != 0) {
            if (rest) rest[-1] = '='; /* the message shows the whole argument */
            return cs_cli_usage_error("bench", "--dim expects NAME=V with V in 0..2^30, got '%s'",
                                      arg);
        }
        o->dims[o->n_dims++] = (dim_arg){arg, v};
        return CS_CLI_CONTINUE;
    }
    case OPT_FILL: return parse_fill(o, (char *)arg);
    case OPT_DEVICE: return cs_cli_parse_device("bench", arg, &o->device);
    case OPT_PRECISION: return cs_cli_parse_precision("bench", arg, &o->precision);
    case OPT_PROFILE: o->profile = true; return CS_CLI_CONTINUE;
    default: /* OPT_JSON */ o->json = true; return CS_CLI_CONTINUE;
    }
}

/* --- inputs ----------------------------------------------------------------------------- */

/* The LCG bench/ort_bench.js uses, as a uniform double in [0, 1). */
static double next_uniform(uint32_t *seed)
{
    *seed = *seed * 1664525u + 1013904223u;
    return (*seed >> 8) / 16777216.0;
}

static void fill(cs_tensor *t, const char *name, const fill_arg *f, uint32_t *seed)
{
    int64_t n = cs_tensor_numel(t);
    bool is_float = t->dtype == CS_DTYPE_FLOAT32 || t->dtype == CS_DTYPE_FLOAT64 ||
                    t->dtype == CS_DTYPE_FLOAT16 || t->dtype == CS_DTYPE_BFLOAT16;
    bool mask = !f && !is_float && strstr(name, "mask");
    for (int64_t i = 0; i < n; i++) {
        double u = next_uniform(seed);
        if (f && f->is_int)
            cs_tensor_set_i64(t, i, (int64_t)floor(f->lo + u * (f->hi - f->lo + 1)));
        else if (f)
            cs_tensor_set_f64(t, i, f->lo + u * (f->hi - f->lo));
        else if (t->dtype == CS_DTYPE_BOOL)
            cs_tensor_set_i64(t, i, u < 0.5);
        else if (is_float)
            cs_tensor_set_f64(t, i, u);
        else
            cs_tensor_set_i64(t, i, mask ? 1 : (int64_t)(u * 100));
    }
}

/* Lists the model's input names for messages. */
static const char *input_list(const cs_model_t *m, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < cs_model_input_count(m) && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", i ? ", " : "",
                                cs_model_input(m, i).name);
    return buf;
}

/* Checks that every --shape, --dim and --fill names something the model has. */
static int check_names(const bench_opts *o, const cs_model_t *m)
{
    char list[256];
    const char *names[3 * MAX_ARGS];
    int n = 0;
    for (int k = 0; k < o->n_shapes; k++) names[n++] = o->shapes[k].name;
    for (int k = 0; k < o->n_fills; k++) names[n++] = o->fills[k].name;
    for (int k = 0; k < n; k++) {
        int i = 0;
        while (i < cs_model_input_count(m) && strcmp(cs_model_input(m, i).name, names[k])) i++;
        if (i == cs_model_input_count(m))
            return cs_cli_usage_error("bench", "unknown input '%s'; the model's inputs are %s",
                                      names[k], input_list(m, list, sizeof list));
    }
    for (int k = 0; k < o->n_dims; k++) {
        bool found = false;
        for (int i = 0; i < cs_model_input_count(m) && !found; i++) {
            cs_value_info v = cs_model_input(m, i);
            for (int d = 0; d < v.rank && !found; d++)
                found = v.dim_names && v.dim_names[d] && !strcmp(v.dim_names[d], o->dims[k].name);
        }
        if (!found)
            return cs_cli_usage_error("bench", "--dim %s: no input has a dimension named '%s'",
                                      o->dims[k].name, o->dims[k].name);
    }
    return CS_CLI_CONTINUE;
}

/* Makes input i's tensor (shape from the options, random data); returns CS_CLI_CONTINUE or
 * an exit code after reporting. */
static int make_input(const bench_opts *o, cs_value_info v, cs_tensor *t, uint32_t *seed)
{
    const shape_arg *s = NULL;
    const fill_arg *f = NULL;
    for (int k = 0; k < o->n_shapes; k++)
        if (!strcmp(o->shapes[k].name, v.name)) s = &o->shapes[k];
    for (int k = 0; k < o->n_fills; k++)
        if (!strcmp(o->fills[k].name, v.name)) f = &o->fills[k];
    *t = (cs_tensor){.dtype = v.dtype};
    if (s) {
        t->rank = s->rank;
        memcpy(t->dims, s->dims, sizeof s->dims);
    } else if (v.rank < 0) {
        return cs_cli_usage_error("bench", "input '%s' declares no shape; give --shape %s=D0,...",
                                  v.name, v.name);
    } else {
        t->rank = v.rank;
        for (int d = 0; d < v.rank; d++) {
            t->dims[d] = v.dims[d] >= 0 ? v.dims[d] : o->batch;
            for (int k = 0; v.dims[d] < 0 && v.dim_names && v.dim_names[d] && k < o->n_dims; k++)
                if (!strcmp(o->dims[k].name, v.dim_names[d])) t->dims[d] = o->dims[k].value;
        }
    }
    size_t size = cs_dtype_size(v.dtype);
    if (!size)
        return cs_cli_error("bench", "input '%s': cannot make random %s values", v.name,
                            cs_dtype_name(v.dtype));
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        n *= t->dims[d];
        if (n > MAX_ELEMS)
            return cs_cli_usage_error("bench", "input '%s': more than 2^31 elements", v.name);
    }
    t->data = cs_malloc((size_t)n * size + 1);
    if (!t->data) return cs_cli_error("bench", "out of memory for input '%s'", v.name);
    fill(t, v.name, f, seed);
    return CS_CLI_CONTINUE;
}

/* --- timing and the report --------------------------------------------------------------- */

typedef struct node_times {
    uint64_t *ns; /* per model node, summed over the timed runs */
} node_times;

static void on_node(void *ctx, int node, uint64_t ns)
{
    ((node_times *)ctx)->ns[node] += ns;
}

typedef struct results {
    double load_ms, first_run_ms, p50_ms, p90_ms, min_ms, mean_ms, throughput_per_s;
    long long peak_rss_bytes;
} results;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct op_row {
    const char *op;
    int nodes;
    uint64_t ns;
} op_row;

typedef struct node_row {
    int node;
    uint64_t ns;
} node_row;

static int slowest_first(const void *a, const void *b)
{
    uint64_t x = ((const node_row *)a)->ns, y = ((const node_row *)b)->ns;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int slowest_op_first(const void *a, const void *b)
{
    uint64_t x = ((const op_row *)a)->ns, y = ((const op_row *)b)->ns;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, long n, int pct)
{
    long k = (n * pct + 99) / 100;
    return v[k > 0 ? k - 1 : 0];
}

/* The profile: per operator type and per node, milliseconds per run and shares of the
 * summed step time, slowest first. */

/* Where the plan ran node i: "cuda:0", or "cpu" for a node the device lacks a kernel for. */
static const char *node_device(const cs_session_t *s, int i, char *buf, size_t cap)
{
    cs_device d = {CS_DEVICE_CPU, 0};
    cs_session_node_device(s, i, &d);
    return cs_device_format(d, buf, cap);
}

static json_t *profile_json(const cs_session_t *s, const cs_model_t *m, const node_row *order,
                            int n_nodes, const op_row *ops, int n_ops, long iters, uint64_t total)
{
    json_t *by_op = json_array(), *by_node = json_array();
    for (int k = 0; k < n_ops; k++)
        json_array_append_new(by_op, json_pack("{s:s, s:i, s:f, s:f}", "op", ops[k].op, "nodes",
                                               ops[k].nodes, "ms", ops[k].ns / 1e6 / iters, "pct",
                                               total ? 100.0 * ops[k].ns / total : 0.0));
    for (int k = 0; k < n_nodes && order[k].ns; k++) {
        int i = order[k].node;
        char dev[32];
        json_array_append_new(
            by_node, json_pack("{s:i, s:s, s:s, s:s, s:f, s:f}", "index", i, "name",
                               cs_model_node_name(m, i), "op", cs_model_node_op(m, i), "device",
                               node_device(s, i, dev, sizeof dev), "ms", order[k].ns / 1e6 / iters,
                               "pct", total ? 100.0 * order[k].ns / total : 0.0));
    }
    return json_pack("{s:f, s:o, s:o}", "steps_ms", total / 1e6 / iters, "by_op", by_op, "by_node",
                     by_node);
}

/* A node's name for the table, "#INDEX" when it has none. */
static const char *node_label(const cs_model_t *m, int i, char *buf, size_t cap)
{
    const char *name = cs_model_node_name(m, i);
    if (*name) return name;
    snprintf(buf, cap, "#%d", i);
    return buf;
}

/* Columns as wide as their widest entry, as kubectl's tables are. */
static void profile_text(const cs_session_t *s, const cs_model_t *m, const node_row *order,
                         int n_nodes, const op_row *ops, int n_ops, long iters, uint64_t total)
{
    int op_w = (int)strlen("operator"), name_w = (int)strlen("node (slowest first)");
    int dev_w = (int)strlen("device"), shown = 0;
    char buf[32];
    for (int k = 0; k < n_ops; k++)
        if ((int)strlen(ops[k].op) > op_w) op_w = (int)strlen(ops[k].op);
    while (shown < n_nodes && shown < TOP_NODES && order[shown].ns) {
        int i = order[shown++].node;
        int w = (int)strlen(node_label(m, i, buf, sizeof buf));
        if (w > name_w) name_w = w;
        if ((w = (int)strlen(node_device(s, i, buf, sizeof buf))) > dev_w) dev_w = w;
    }
    printf("\nprofile: %.4f ms per run in steps\n\n%-*s %6s %12s %7s\n", total / 1e6 / iters, op_w,
           "operator", "nodes", "ms/run", "%");
    for (int k = 0; k < n_ops; k++)
        printf("%-*s %6d %12.6f %6.1f%%\n", op_w, ops[k].op, ops[k].nodes, ops[k].ns / 1e6 / iters,
               total ? 100.0 * ops[k].ns / total : 0.0);
    printf("\n%-*s %-*s %-*s %12s %7s\n", name_w, "node (slowest first)", op_w, "operator", dev_w,
           "device", "ms/run", "%");
    for (int k = 0; k < shown; k++) {
        int i = order[k].node;
        char dev[32];
        printf("%-*s %-*s %-*s %12.6f %6.1f%%\n", name_w, node_label(m, i, buf, sizeof buf), op_w,
               cs_model_node_op(m, i), dev_w, node_device(s, i, dev, sizeof dev),
               order[k].ns / 1e6 / iters, total ? 100.0 * order[k].ns / total : 0.0);
    }
}

/* Prints the profile (text, or into obj for --json); returns false when out of memory. */
static bool report_profile(const bench_opts *o, const cs_session_t *s, const cs_model_t *m,
                           const uint64_t *ns, json_t *obj)
{
    int n_nodes = cs_model_node_count(m);
    node_row *order = cs_calloc((size_t)n_nodes + 1, sizeof *order);
    op_row *ops = cs_calloc((size_t)n_nodes + 1, sizeof *ops);
    bool ok = order && ops;
    int n_ops = 0;
    uint64_t total = 0;
    for (int i = 0; ok && i < n_nodes; i++) {
        order[i] = (node_row){i, ns[i]};
        if (!ns[i]) continue;
        total += ns[i];
        int k = 0;
        while (k < n_ops && strcmp(ops[k].op, cs_model_node_op(m, i))) k++;
        if (k == n_ops) ops[n_ops++] = (op_row){cs_model_node_op(m, i), 0, 0};
        ops[k].nodes++;
        ops[k].ns += ns[i];
    }
    if (ok) {
        qsort(order, (size_t)n_nodes, sizeof *order, slowest_first);
        qsort(ops, (size_t)n_ops, sizeof *ops, slowest_op_first);
        if (obj)
            ok = json_object_set_new(
                     obj, "profile",
                     profile_json(s, m, order, n_nodes, ops, n_ops, o->iters, total)) == 0;
        else
            profile_text(s, m, order, n_nodes, ops, n_ops, o->iters, total);
    }
    cs_free(order);
    cs_free(ops);
    return ok;
}

static int report(const bench_opts *o, const char *path, const cs_session_t *s, const cs_model_t *m,
                  const results *r, const cs_tensor *ins, uint64_t *ns)
{
    long threads = o->threads;
    if (!threads) threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (o->json) {
        json_t *obj =
            json_pack("{s:s, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "model",
                      path, "batch", (int)o->batch, "threads", (int)threads, "iters", (int)o->iters,
                      "warmup", (int)o->warmup, "load_ms", r->load_ms, "first_run_ms",
                      r->first_run_ms, "p50_ms", r->p50_ms, "p90_ms", r->p90_ms, "min_ms",
                      r->min_ms, "mean_ms", r->mean_ms, "throughput_per_s", r->throughput_per_s,
                      "peak_rss_bytes", (json_int_t)r->peak_rss_bytes);
        char *text = NULL;
        if (obj && (!ns || report_profile(o, s, m, ns, obj)))
            text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(obj);
        if (!text) return cs_cli_error("bench", "out of memory");
        puts(text);
        free(text);
        return CS_CLI_OK;
    }
    printf("model: %s\n", path);
    for (int i = 0; i < cs_model_input_count(m); i++) {
        char shape[160];
        cs_shape_format(shape, sizeof shape, ins[i].rank, ins[i].dims, NULL);
        printf("input %s: %s %s\n", cs_model_input(m, i).name, cs_dtype_name(ins[i].dtype), shape);
    }
    printf("threads: %ld, batch: %ld\n"
           "load: %.3f ms, first run: %.3f ms\n"
           "latency over %ld runs (after %ld warm-up): p50 %.4g ms, p90 %.4g ms, min %.4g ms, "
           "mean %.4g ms\n"
           "throughput: %.1f per second\n"
           "peak RSS: %.1f MiB\n",
           threads, o->batch, r->load_ms, r->first_run_ms, o->iters, o->warmup, r->p50_ms,
           r->p90_ms, r->min_ms, r->mean_ms, r->throughput_per_s,
           r->peak_rss_bytes / (1024.0 * 1024.0));
    if (ns && !report_profile(o, s, m, ns, NULL)) return cs_cli_error("bench", "out of memory");
    return CS_CLI_OK;
}

static int bench_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"batch", required_argument, NULL, 'b'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"shape", required_argument, NULL, OPT_SHAPE},
                                             {"dim", required_argument, NULL, OPT_DIM},
                                             {"iters", required_argument, NULL, OPT_ITERS},
                                             {"warmup", required_argument, NULL, OPT_WARMUP},
                                             {"fill", required_argument, NULL, OPT_FILL},
                                             {"device", required_argument, NULL, OPT_DEVICE},
                                             {"precision", required_argument, NULL, OPT_PRECISION},
                                             {"profile", no_argument, NULL, OPT_PROFILE},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {0}};
    static const cs_cli_spec spec = {"bench", usage, "b:t:", longopts};
    bench_opts o = {.batch = 1, .threads = 0, .iters = 50, .warmup = 5};
    cs_model_t *m = NULL;
    cs_session_t *s = NULL;
    cs_tensor *ins = NULL, *outs = NULL;
    const char **names = NULL;
    double *ms = NULL;
    node_times times = {NULL};
    int n_in = 0;
    cs_error err;
    int first;

    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc == CS_CLI_CONTINUE) rc = cs_cli_one_operand("bench", "MODEL.onnx", argc, argv, first);
    if (rc != CS_CLI_CONTINUE) goto out;

    rc = CS_CLI_RUNTIME;
    const char *path = argv[first];
    uint64_t t0 = cs_now_ns();
    cs_session_options so = {
        .threads = (int)o.threads, .device = o.device, .precision = o.precision};
    if (cs_model_load_file(path, &m, &err) != CS_OK || cs_session_new(m, &so, &s, &err) != CS_OK) {
        cs_cli_error("bench", "%s", err.msg);
        goto out;
    }
    results r = {.load_ms = (double)(cs_now_ns() - t0) / 1e6};
    if ((rc = check_names(&o, m)) != CS_CLI_CONTINUE) goto out;
    rc = CS_CLI_RUNTIME;
    n_in = cs_model_input_count(m);
    int n_out = cs_model_output_count(m);
    ins = cs_calloc((size_t)n_in + 1, sizeof *ins);
    names = cs_calloc((size_t)n_in + 1, sizeof *names);
    outs = cs_calloc((size_t)n_out + 1, sizeof *outs);
    ms = cs_calloc((size_t)o.iters, sizeof *ms);
    if (o.profile) times.ns = cs_calloc((size_t)cs_model_node_count(m) + 1, sizeof *times.ns);
    if (!ins || !names || !outs || !ms || (o.profile && !times.ns)) {
        cs_cli_error("bench", "out of memory");
        goto out;
    }
    uint32_t seed = 42;
    for (int i = 0; i < n_in; i++) {
        cs_value_info v = cs_model_input(m, i);
        names[i] = v.name;
        if ((rc = make_input(&o, v, &ins[i], &seed)) != CS_CLI_CONTINUE) goto out;
    }
    rc = CS_CLI_RUNTIME;
    double total = 0;
    for (long k = -1 - o.warmup; k < o.iters; k++) {
        if (k == 0 && o.profile) cs_session_set_node_timer(s, on_node, &times);
        t0 = cs_now_ns();
        if (cs_session_run(s, n_in, names, ins, n_out, outs, &err) != CS_OK) {
            cs_cli_error("bench", "%s", err.msg);
            goto out;
        }
        double t = (double)(cs_now_ns() - t0) / 1e6;
        if (k == -1 - o.warmup) r.first_run_ms = t;
        if (k >= 0) total += ms[k] = t;
    }
    qsort(ms, (size_t)o.iters, sizeof *ms, cmp_double);
    r.min_ms = ms[0];
    r.p50_ms = percentile(ms, o.iters, 50);
    r.p90_ms = percentile(ms, o.iters, 90);
    r.mean_ms = total / (double)o.iters;
    r.throughput_per_s = total > 0 ? 1000.0 * (double)(o.batch * o.iters) / total : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.peak_rss_bytes = (long long)ru.ru_maxrss * 1024; /* Linux reports KiB */
    rc = report(&o, path, s, m, &r, ins, times.ns);
out:
    for (int i = 0; ins && i < n_in; i++) cs_free(ins[i].data);
    cs_free(ins);
    cs_free(names);
    cs_free(outs);
    cs_free(ms);
    cs_free(times.ns);
    cs_session_free(s);
    cs_model_free(m);
    return rc;
}

const cs_cli_command cs_cli_bench_cmd = {"bench", "time a model on random inputs", bench_main};

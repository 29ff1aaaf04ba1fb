/*
 * engine_bench.c - in-process latency of one model on the engine.
 *
 * usage: cs-engine-bench MODEL.onnx [--batch N] [--threads N] [--runs N] [--warmup N]
 * Inputs are made from the declared shapes (symbolic dimensions take --batch): floats
 * uniform in [0, 1), integers in [0, 100) ("mask" inputs get ones). Prints one JSON line
 * with p50/p90/mean milliseconds and runs per second, the same fields as bench/ort_bench.js,
 * so bench/run can put the two side by side.
 */
#include "capstan/engine.h"

#include "base/clock.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 16

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill(cs_tensor *t, const char *name, uint32_t *seed)
{
    int64_t n = cs_tensor_numel(t);
    bool mask = strstr(name, "mask") != NULL;
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        double u = (*seed >> 8) / 16777216.0;
        switch (t->dtype) {
        case CS_DTYPE_FLOAT32: ((float *)t->data)[i] = (float)u; break;
        case CS_DTYPE_FLOAT64: ((double *)t->data)[i] = u; break;
        case CS_DTYPE_INT64: ((int64_t *)t->data)[i] = mask ? 1 : (int64_t)(u * 100); break;
        case CS_DTYPE_INT32: ((int32_t *)t->data)[i] = mask ? 1 : (int32_t)(u * 100); break;
        default: memset(t->data, 0, (size_t)n * cs_dtype_size(t->dtype)); return;
        }
    }
}

int main(int argc, char **argv)
{
    int batch = 1, threads = 0, runs = 50, warmup = 5;
    static const struct option opts[] = {{"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"runs", required_argument, 0, 'r'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "b:t:r:w:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        default: return 2;
        }
    }
    if (optind >= argc || runs < 1 || batch < 1) {
        fprintf(stderr, "usage: cs-engine-bench MODEL.onnx [--batch N] [--threads N] "
                        "[--runs N] [--warmup N]\n");
        return 2;
    }
    cs_error err;
    cs_model_t *m;
    cs_session_t *s;
    cs_session_options so = {.threads = threads};
    if (cs_model_load_file(argv[optind], &m, &err) || cs_session_new(m, &so, &s, &err)) {
        fprintf(stderr, "cs-engine-bench: %s\n", err.msg);
        return 1;
    }
    int n_in = cs_model_input_count(m), n_out = cs_model_output_count(m);
    if (n_in > MAX_INPUTS) return 1;
    cs_tensor in[MAX_INPUTS];
    const char *names[MAX_INPUTS];
    uint32_t seed = 42;
    for (int i = 0; i < n_in; i++) {
        cs_value_info v = cs_model_input(m, i);
        in[i] = (cs_tensor){.dtype = v.dtype, .rank = v.rank};
        for (int d = 0; d < v.rank; d++) in[i].dims[d] = v.dims[d] < 0 ? batch : v.dims[d];
        in[i].data = malloc((size_t)cs_tensor_numel(&in[i]) * cs_dtype_size(v.dtype) + 1);
        names[i] = v.name;
        fill(&in[i], v.name, &seed);
    }
    cs_tensor *out = calloc((size_t)n_out, sizeof *out);
    double *ms = calloc((size_t)runs, sizeof *ms), total = 0;
    for (int r = -warmup; r < runs; r++) {
        uint64_t t0 = cs_now_ns();
        if (cs_session_run(s, n_in, names, in, n_out, out, &err)) {
            fprintf(stderr, "cs-engine-bench: %s\n", err.msg);
            return 1;
        }
        if (r >= 0) total += ms[r] = (double)(cs_now_ns() - t0) / 1e6;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("{\"engine\":\"capstan\",\"batch\":%d,\"p50_ms\":%.4f,\"p90_ms\":%.4f,"
           "\"mean_ms\":%.3f,\"runs_per_s\":%.1f}\n",
           batch, ms[runs / 2], ms[runs * 9 / 10], total / runs, 1000.0 * runs / total);
    for (int i = 0; i < n_in; i++) free(in[i].data);
    free(out);
    free(ms);
    cs_session_free(s);
    cs_model_free(m);
    return 0;
}

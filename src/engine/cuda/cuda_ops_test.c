/*
 * cuda_ops_test.c - the CUDA backend's own kernels placed and launched, on the fake driver
 * (tests/engine/fake_cuda.c), which records each launch and computes the float32 and
 * data-movement kernels in C after the .cu files.
 *
 * Checked: which nodes of models/digits.onnx and of a small graph (Mul with broadcasting,
 * Relu, Softmax, Transpose, ReduceMean, Gather, Concat, and a Softmax along an inner axis
 * that the kernel declines) land on cuda:0 and which on the CPU (cs_session_node_device),
 * that the launches are one per device node with the kernel, block and argument bytes
 * kernels.h specifies, that the results match a CPU session's, that Gather's indices are
 * checked on the host, that supports() declines the forms the kernels cannot compute, and
 * that a device whose module cannot load runs every node on the CPU saying why. In a build
 * without nvcc (no kernels embedded) the same sessions run on the CPU, and that is checked.
 */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_cuda.h"
#include "engine/cuda/cuda_ops.h"
#include "engine/graph.h"

#define DIGITS CS_SOURCE_DIR "/models/digits.onnx"

static fake_cuda_count_fn launch_count;
static fake_cuda_get_fn launch_get;
static fake_cuda_clear_fn launches_clear;

static bool built(void)
{
    return cs__cuda_kernels_built();
}

static const cs__backend *open_cuda(int id)
{
    const cs__backend *be = NULL;
    cs_error err;
    assert_int_equal(cs__backend_for((cs_device){CS_DEVICE_CUDA, id}, CS_PRECISION_FP32, &be, &err),
                     CS_OK);
    return be;
}

static cs_device_kind where(const cs_session_t *s, int node)
{
    cs_device d = {CS_DEVICE_CPU, -1};
    assert_true(cs_session_node_device(s, node, &d));
    return d.kind;
}

static void assert_close(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i])))
            fail_msg("element %d: %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

/* A one-thread CPU session and a cuda:0 session of m, to compare. */
static void open_pair(const cs_model_t *m, cs_session_t **cpu, cs_session_t **gpu)
{
    cs_session_options copts = {.threads = 1}, gopts = {.threads = 1, .device = "cuda:0"};
    cs_error err;
    assert_int_equal(cs_session_new(m, &copts, cpu, &err), CS_OK);
    assert_int_equal(cs_session_new(m, &gopts, gpu, &err), CS_OK);
}

/* The i-th launch's parameter k, which must be `size` bytes. */
static const void *param(const fake_cuda_launch *l, int k, size_t size)
{
    assert_true(k < l->n_params);
    assert_int_equal(l->param_size[k], size);
    size_t at = 0;
    for (int j = 0; j < k; j++) at += l->param_size[j];
    return l->params + at;
}

static int64_t param_i64(const fake_cuda_launch *l, int k)
{
    int64_t v;
    memcpy(&v, param(l, k, 8), 8);
    return v;
}

static void assert_launch(const fake_cuda_launch *l, const char *kernel, unsigned block_x)
{
    assert_non_null(l);
    assert_string_equal(l->kernel, kernel);
    assert_int_equal(l->block[0], block_x);
    assert_true(l->grid[0] >= 1);
    assert_true(l->executed);
}

/* --- digits.onnx ---------------------------------------------------------------------- */

static void run_digits(cs_session_t *s, const float *x, float *probs)
{
    cs_tensor in = {CS_DTYPE_FLOAT32, 4, {2, 1, 8, 8}, (void *)x}, out;
    const char *names[] = {"image"};
    cs_error err;
    assert_int_equal(cs_session_run(s, 1, names, &in, 1, &out, &err), CS_OK);
    assert_int_equal(out.device.kind, CS_DEVICE_CPU);
    memcpy(probs, out.data, 2 * 10 * sizeof *probs);
}

/* Mul, Flatten and the Softmax run on cuda:0, the Gemms on the host (cuBLASLt is not
 * loaded here) with both Relus fused into them, so they have no step of their own: two
 * launches a run (Flatten is a device copy), with the digits' shapes in their arguments. */
static void test_digits(void **state)
{
    (void)state;
    cs_model_t *m = NULL;
    cs_session_t *cpu = NULL, *gpu = NULL;
    cs_error err;
    assert_int_equal(cs_model_load_file(DIGITS, &m, &err), CS_OK);
    open_pair(m, &cpu, &gpu);
    float x[2 * 64], want[2 * 10], got[2 * 10];
    for (int i = 0; i < 2 * 64; i++) x[i] = (float)((i * 37) % 16);
    run_digits(cpu, x, want);
    launches_clear();
    run_digits(gpu, x, got);
    assert_close(got, want, 2 * 10);

    int n_gpu = 0;
    for (int i = 0; i < cs_model_node_count(m); i++) {
        const char *op = cs_model_node_op(m, i);
        cs_device d;
        if (!strcmp(op, "Constant") || !strcmp(op, "Relu")) { /* folded; fused */
            assert_false(cs_session_node_device(gpu, i, &d));
            continue;
        }
        bool device = built() && strcmp(op, "Gemm");
        assert_int_equal(where(gpu, i), device ? CS_DEVICE_CUDA : CS_DEVICE_CPU);
        n_gpu += device;
    }
    if (!built()) {
        assert_int_equal(launch_count(), 0);
        goto out;
    }
    assert_int_equal(n_gpu, 3);
    assert_int_equal(launch_count(), 2);
    const fake_cuda_launch *l = launch_get(0);
    assert_launch(l, "cs_mul_f32", CS_CUDA_BLOCK);
    assert_int_equal(param_i64(l, 3), 2 * 64);
    cs_cuda_bcast b;
    memcpy(&b, param(l, 4, CS_CUDA_BCAST_SIZE), sizeof b);
    assert_int_equal(b.rank, 4); /* image [2,1,8,8] times a scalar */
    const int64_t dims[4] = {2, 1, 8, 8}, a_strides[4] = {64, 0, 8, 1}, zero[4] = {0};
    assert_memory_equal(b.dims, dims, sizeof dims);
    assert_memory_equal(b.a_strides, a_strides, sizeof a_strides);
    assert_memory_equal(b.b_strides, zero, sizeof zero);
    l = launch_get(1);
    assert_launch(l, "cs_softmax_f32", CS_CUDA_ROW_BLOCK);
    assert_int_equal(param_i64(l, 2), 2);  /* rows */
    assert_int_equal(param_i64(l, 3), 10); /* cols */
    assert_int_equal(l->grid[0], 2);
out:
    cs_session_free(gpu);
    cs_session_free(cpu);
    cs_model_free(m);
}

/* --- a small graph ---------------------------------------------------------------------- */

/* x [2,3,4] and idx [2] int64 fed; w [4] an initializer:
 *   m = Mul(x, w); r = Relu(m); s = Softmax(r); t = Transpose(s) [2,4,3];
 *   a = Softmax(t, axis 1) (declined: not the last axis); u = ReduceMean(a, axes [2], 0);
 *   g = Gather(x, idx, axis 1) [2,2,4]; c = Concat(m, x, axis 2) [2,3,8].
 * Outputs u, g and c. */
enum { X, W, IDX, M, R, S, T, A, U, G, C, N_VALUES };
enum { N_MUL, N_RELU, N_SOFTMAX, N_TRANSPOSE, N_SOFTMAX1, N_MEAN, N_GATHER, N_CONCAT, N_NODES };

#define MAX_VALUES 16
#define MAX_NODES  10

/* A graph in memory, as onnx.c would load it: values, nodes, initializers. */
typedef struct graph {
    struct cs_model m;
    cs__value values[MAX_VALUES];
    cs__node nodes[MAX_NODES];
    int in[MAX_NODES][5], out[MAX_NODES][1];
    cs__attr attr[MAX_NODES][2];
    int inputs[2], outputs[3];
    cs_tensor init[9];
    float f[8];
    int64_t ints[16];
} graph;

static void add_node_at(graph *g, int i, const char *op, int64_t opset, int n_in, const int *in,
                        int out, int n_attr)
{
    memcpy(g->in[i], in, (size_t)n_in * sizeof *in);
    g->out[i][0] = out;
    g->nodes[i] = (cs__node){.name = op,
                             .op_type = op,
                             .domain = "",
                             .n_in = n_in,
                             .n_out = 1,
                             .in = g->in[i],
                             .out = g->out[i],
                             .n_attr = n_attr,
                             .attr = g->attr[i],
                             .opset = opset,
                             .schema = cs__op_find(op, "", opset)};
    assert_non_null(g->nodes[i].schema);
    g->values[out].producer = i;
    if (i >= g->m.n_nodes) g->m.n_nodes = i + 1;
}

static void add_node(graph *g, int i, const char *op, int n_in, int a, int b, int out, int n_attr)
{
    add_node_at(g, i, op, 13, n_in, (const int[]){a, b}, out, n_attr);
}

/* Names the values, and points the model at the graph's arrays: inputs and outputs are
 * the first n_inputs and n_outputs of g->inputs and g->outputs. */
static void graph_init(graph *g, int n_values, const char *const *names)
{
    memset(g, 0, sizeof *g);
    for (int v = 0; v < n_values; v++)
        g->values[v] = (cs__value){.name = names[v], .rank = -1, .producer = -1};
    g->m.values = g->values;
    g->m.n_values = n_values;
    g->m.nodes = g->nodes;
    g->m.inputs = g->inputs;
    g->m.outputs = g->outputs;
}

static void graph_io(graph *g, int n_inputs, int n_outputs)
{
    g->m.n_inputs = n_inputs;
    g->m.n_outputs = n_outputs;
    for (int i = 0; i < n_inputs; i++) g->values[g->inputs[i]].is_input = 1;
    for (int j = 0; j < n_outputs; j++) g->values[g->outputs[j]].is_output = 1;
}

/* An initializer of g: value v is t, with data. */
static void set_init(graph *g, int slot, int v, cs_dtype t, int rank, const int64_t *dims,
                     void *data)
{
    g->init[slot] = (cs_tensor){.dtype = t, .rank = rank, .data = data};
    memcpy(g->init[slot].dims, dims, (size_t)rank * sizeof *dims);
    g->values[v].init = &g->init[slot];
}

static cs__attr int_attr(const char *name, int64_t v)
{
    return (cs__attr){.name = name, .type = CS__ATTR_INT, .i = v};
}

static cs__attr ints_attr(const char *name, int n, const int64_t *v)
{
    return (cs__attr){.name = name, .type = CS__ATTR_INTS, .n = n, .ints = v};
}

static void build(graph *g)
{
    static const char *const names[N_VALUES] = {"x", "w", "idx", "m", "r", "s",
                                                "t", "a", "u",   "g", "c"};
    static const int64_t perm[3] = {0, 2, 1}, axes[1] = {2}, wdims[1] = {4};
    graph_init(g, N_VALUES, names);
    for (int i = 0; i < 4; i++) g->f[i] = 0.5f * (float)(i + 1);
    set_init(g, 0, W, CS_DTYPE_FLOAT32, 1, wdims, g->f);
    add_node(g, N_MUL, "Mul", 2, X, W, M, 0);
    add_node(g, N_RELU, "Relu", 1, M, -1, R, 0);
    add_node(g, N_SOFTMAX, "Softmax", 1, R, -1, S, 0);
    g->attr[N_TRANSPOSE][0] = ints_attr("perm", 3, perm);
    add_node(g, N_TRANSPOSE, "Transpose", 1, S, -1, T, 1);
    g->attr[N_SOFTMAX1][0] = int_attr("axis", 1);
    add_node(g, N_SOFTMAX1, "Softmax", 1, T, -1, A, 1);
    g->attr[N_MEAN][0] = ints_attr("axes", 1, axes);
    g->attr[N_MEAN][1] = int_attr("keepdims", 0);
    add_node(g, N_MEAN, "ReduceMean", 1, A, -1, U, 2);
    g->attr[N_GATHER][0] = int_attr("axis", 1);
    add_node(g, N_GATHER, "Gather", 2, X, IDX, G, 1);
    g->attr[N_CONCAT][0] = int_attr("axis", 2);
    add_node(g, N_CONCAT, "Concat", 2, M, X, C, 1);
    g->inputs[0] = X;
    g->inputs[1] = IDX;
    g->outputs[0] = U;
    g->outputs[1] = G;
    g->outputs[2] = C;
    graph_io(g, 2, 3);
}

#define N_U (2 * 4)
#define N_G (2 * 2 * 4)
#define N_C (2 * 3 * 8)

static cs_status run_graph(cs_session_t *s, const int64_t *idx, float *u, float *gv, float *c,
                           cs_error *err)
{
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 7) % 11) / 4.0f - 1.0f;
    cs_tensor in[2] = {{CS_DTYPE_FLOAT32, 3, {2, 3, 4}, x}, {CS_DTYPE_INT64, 1, {2}, (void *)idx}};
    cs_tensor out[3];
    const char *names[] = {"x", "idx"};
    cs_status rc = cs_session_run(s, 2, names, in, 3, out, err);
    if (rc) return rc;
    memcpy(u, out[0].data, N_U * sizeof *u);
    memcpy(gv, out[1].data, N_G * sizeof *gv);
    memcpy(c, out[2].data, N_C * sizeof *c);
    return CS_OK;
}

static void test_small_graph(void **state)
{
    (void)state;
    graph *g = calloc(1, sizeof *g);
    build(g);
    cs_session_t *cpu = NULL, *gpu = NULL;
    cs_error err;
    open_pair(&g->m, &cpu, &gpu);
    const int64_t idx[2] = {2, -3};
    float u[N_U], gv[N_G], c[N_C], wu[N_U], wg[N_G], wc[N_C];
    assert_int_equal(run_graph(cpu, idx, wu, wg, wc, &err), CS_OK);
    launches_clear();
    assert_int_equal(run_graph(gpu, idx, u, gv, c, &err), CS_OK);
    assert_close(u, wu, N_U);
    assert_memory_equal(gv, wg, sizeof gv);
    assert_memory_equal(c, wc, sizeof c);
    for (int i = 0; i < N_NODES; i++)
        assert_int_equal(where(gpu, i),
                         built() && i != N_SOFTMAX1 ? CS_DEVICE_CUDA : CS_DEVICE_CPU);
    if (!built()) {
        assert_int_equal(launch_count(), 0);
        goto out;
    }
    static const struct {
        const char *kernel;
        unsigned block;
    } want[] = {
        {"cs_mul_f32", CS_CUDA_BLOCK},
        {"cs_relu_f32", CS_CUDA_BLOCK},
        {"cs_softmax_f32", CS_CUDA_ROW_BLOCK},
        {"cs_transpose2d_b32", CS_CUDA_TILE},
        {"cs_reduce_mean_rows_f32", CS_CUDA_ROW_BLOCK},
        {"cs_gather_b32", CS_CUDA_BLOCK},
        {"cs_concat_b32", CS_CUDA_BLOCK},
        {"cs_concat_b32", CS_CUDA_BLOCK},
    };
    assert_int_equal(launch_count(), 8);
    for (int i = 0; i < 8; i++) assert_launch(launch_get(i), want[i].kernel, want[i].block);
    const fake_cuda_launch *l = launch_get(0);
    cs_cuda_bcast b;
    memcpy(&b, param(l, 4, CS_CUDA_BCAST_SIZE), sizeof b);
    const int64_t dims[3] = {2, 3, 4}, a_strides[3] = {12, 4, 1}, b_strides[3] = {0, 0, 1};
    assert_int_equal(b.rank, 3);
    assert_memory_equal(b.dims, dims, sizeof dims);
    assert_memory_equal(b.a_strides, a_strides, sizeof a_strides);
    assert_memory_equal(b.b_strides, b_strides, sizeof b_strides);
    l = launch_get(1); /* r = Relu(m): 24 elements, the unary arguments */
    assert_int_equal(param_i64(l, 2), 2 * 3 * 4);
    assert_int_equal(l->param_size[3], CS_CUDA_UNARY_ARGS_SIZE);
    l = launch_get(3); /* s [2,3,4] -> t [2,4,3] */
    assert_int_equal(l->block[1], CS_CUDA_TILE_ROWS);
    assert_int_equal(param_i64(l, 2), 2);
    assert_int_equal(param_i64(l, 3), 3);
    assert_int_equal(param_i64(l, 4), 4);
    assert_int_equal(l->grid[2], 2);
    cs_cuda_reduce_args r;
    memcpy(&r, param(launch_get(4), 2, CS_CUDA_REDUCE_ARGS_SIZE), sizeof r);
    assert_int_equal(r.outer, 8);
    assert_int_equal(r.reduced, 3);
    assert_int_equal(r.inner, 1);
    cs_cuda_gather_args ga;
    memcpy(&ga, param(launch_get(5), 3, CS_CUDA_GATHER_ARGS_SIZE), sizeof ga);
    assert_int_equal(ga.outer, 2);
    assert_int_equal(ga.axis_dim, 3);
    assert_int_equal(ga.inner, 4);
    assert_int_equal(ga.n_idx, 2);
    cs_cuda_concat_args cc;
    memcpy(&cc, param(launch_get(7), 2, CS_CUDA_CONCAT_ARGS_SIZE), sizeof cc);
    assert_int_equal(cc.outer, 6);
    assert_int_equal(cc.in_inner, 4);
    assert_int_equal(cc.out_inner, 8);
    assert_int_equal(cc.offset, 4);

    /* An index outside the axis is ONNX's error, found on the host before any launch. */
    launches_clear();
    const int64_t bad[2] = {0, 3};
    assert_int_equal(run_graph(gpu, bad, u, gv, c, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg, "Gather 'Gather': index 3 is out of range for an axis of 3");
out:
    cs_session_free(gpu);
    cs_session_free(cpu);
    free(g);
}

/* x [2,3,4] fed; the rest initializers:
 *   l = LayerNormalization(x, scale, bias) (opset 17);
 *   sl = Slice(l, starts [2, 0], ends [-5, 3], axes [2, 1], steps [-1, 2]) [2,2,3];
 *   e = Expand(sl, [2,2,2,3]); rs = ReduceSum(e, axes [1]) [2,1,2,3]; y = Reshape(rs, [2,6]).
 * Every node on cuda:0; Slice and Expand are strided copies, the ReduceSum the column
 * kernel (inner 6), the Reshape a device copy. */
enum { LX, LSCALE, LBIAS, LL, LST, LEN, LAX, LSP, LSL, LSH, LE, LRA, LRS, LRSH, LY, N_LVALUES };

static void build_layout(graph *g)
{
    static const char *const names[N_LVALUES] = {"x",    "scale", "bias",  "l",      "starts",
                                                 "ends", "axes",  "steps", "sl",     "shape",
                                                 "e",    "raxes", "rs",    "rshape", "y"};
    static const int64_t four[1] = {4}, two[1] = {2}, one[1] = {1};
    static const int64_t vals[16] = {2, 0, -5, 3, 2, 1, -1, 2, 2, 2, 2, 3, 1, 2, 6, 0};
    graph_init(g, N_LVALUES, names);
    memcpy(g->ints, vals, sizeof vals);
    for (int i = 0; i < 8; i++) g->f[i] = 0.25f * (float)(i + 1) - (i >= 4 ? 1.0f : 0.0f);
    set_init(g, 0, LSCALE, CS_DTYPE_FLOAT32, 1, four, g->f);
    set_init(g, 1, LBIAS, CS_DTYPE_FLOAT32, 1, four, g->f + 4);
    for (int k = 0; k < 4; k++) /* starts, ends, axes, steps */
        set_init(g, 2 + k, LST + k, CS_DTYPE_INT64, 1, two, g->ints + 2 * k);
    add_node_at(g, 0, "LayerNormalization", 17, 3, (const int[]){LX, LSCALE, LBIAS}, LL, 0);
    add_node_at(g, 1, "Slice", 13, 5, (const int[]){LL, LST, LEN, LAX, LSP}, LSL, 0);
    set_init(g, 6, LSH, CS_DTYPE_INT64, 1, four, g->ints + 8);
    set_init(g, 7, LRA, CS_DTYPE_INT64, 1, one, g->ints + 12);
    set_init(g, 8, LRSH, CS_DTYPE_INT64, 1, two, g->ints + 13);
    add_node_at(g, 2, "Expand", 13, 2, (const int[]){LSL, LSH}, LE, 0);
    add_node_at(g, 3, "ReduceSum", 13, 2, (const int[]){LE, LRA}, LRS, 0);
    add_node_at(g, 4, "Reshape", 13, 2, (const int[]){LRS, LRSH}, LY, 0);
    g->inputs[0] = LX;
    g->outputs[0] = LY;
    graph_io(g, 1, 1);
}

static void run_layout(cs_session_t *s, float *y)
{
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 5) % 13) / 4.0f - 1.5f;
    cs_tensor in = {CS_DTYPE_FLOAT32, 3, {2, 3, 4}, x}, out;
    const char *names[] = {"x"};
    cs_error err;
    assert_int_equal(cs_session_run(s, 1, names, &in, 1, &out, &err), CS_OK);
    assert_int_equal(out.rank, 2);
    memcpy(y, out.data, 12 * sizeof *y);
}

static void test_layout_graph(void **state)
{
    (void)state;
    graph *g = calloc(1, sizeof *g);
    build_layout(g);
    cs_session_t *cpu = NULL, *gpu = NULL;
    open_pair(&g->m, &cpu, &gpu);
    float want[12], got[12];
    run_layout(cpu, want);
    launches_clear();
    run_layout(gpu, got);
    assert_close(got, want, 12);
    for (int i = 0; i < g->m.n_nodes; i++)
        assert_int_equal(where(gpu, i), built() ? CS_DEVICE_CUDA : CS_DEVICE_CPU);
    if (!built()) {
        assert_int_equal(launch_count(), 0);
        goto out;
    }
    assert_int_equal(launch_count(), 4);
    const fake_cuda_launch *l = launch_get(0);
    assert_launch(l, "cs_layernorm_f32", CS_CUDA_ROW_BLOCK);
    assert_int_equal(param_i64(l, 4), 6); /* rows */
    assert_int_equal(param_i64(l, 5), 4); /* cols */
    float eps;
    memcpy(&eps, param(l, 6, 4), 4);
    assert_true(eps == 1e-5f);
    cs_cuda_strided st;
    assert_launch(launch_get(1), "cs_strided_copy_b32", CS_CUDA_BLOCK);
    memcpy(&st, param(launch_get(1), 3, CS_CUDA_STRIDED_SIZE), sizeof st);
    const int64_t sdims[3] = {2, 2, 3}, sstrides[3] = {12, 8, -1};
    assert_int_equal(st.rank, 3);
    assert_int_equal(st.base, 2);
    assert_memory_equal(st.dims, sdims, sizeof sdims);
    assert_memory_equal(st.strides, sstrides, sizeof sstrides);
    assert_launch(launch_get(2), "cs_strided_copy_b32", CS_CUDA_BLOCK);
    memcpy(&st, param(launch_get(2), 3, CS_CUDA_STRIDED_SIZE), sizeof st);
    const int64_t edims[4] = {2, 2, 2, 3}, estrides[4] = {0, 6, 3, 1};
    assert_int_equal(st.rank, 4);
    assert_int_equal(st.base, 0);
    assert_memory_equal(st.dims, edims, sizeof edims);
    assert_memory_equal(st.strides, estrides, sizeof estrides);
    l = launch_get(3);
    assert_launch(l, "cs_reduce_sum_cols_f32", CS_CUDA_BLOCK);
    cs_cuda_reduce_args r;
    memcpy(&r, param(l, 2, CS_CUDA_REDUCE_ARGS_SIZE), sizeof r);
    assert_int_equal(r.outer, 2);
    assert_int_equal(r.reduced, 2);
    assert_int_equal(r.inner, 6);
out:
    cs_session_free(gpu);
    cs_session_free(cpu);
    free(g);
}

/* --- what supports() declines --------------------------------------------------------- */

static void test_declines(void **state)
{
    (void)state;
    if (!built()) skip();
    graph *g = calloc(1, sizeof *g);
    build(g);
    const cs__backend *be = open_cuda(0);
    cs_error err;
    cs_tensor f32 = {CS_DTYPE_FLOAT32, 3, {2, 3, 4}, NULL}, i64 = {CS_DTYPE_INT64, 3, {2, 3, 4}};
    cs_tensor f16 = {CS_DTYPE_FLOAT16, 3, {2, 3, 4}}, bf16 = {CS_DTYPE_BFLOAT16, 3, {2, 3, 4}};
    cs_tensor i8 = {CS_DTYPE_INT8, 3, {2, 3, 4}}, idx32 = {CS_DTYPE_INT32, 1, {2}};
    cs_tensor idxf = {CS_DTYPE_FLOAT32, 1, {2}};
    const cs_tensor *ff[2] = {&f32, &f32}, *fh[2] = {&f32, &f16}, *ii[2] = {&i64, &i64};
    const cs__node *mul = &g->nodes[N_MUL], *soft = &g->nodes[N_SOFTMAX];
    assert_non_null(be->supports(be, mul, ff, &err));
    assert_null(be->supports(be, mul, ii, &err));
    assert_string_equal(err.msg, "Mul 'Mul': no CUDA kernel for element type int64");
    assert_null(be->supports(be, mul, fh, &err));
    assert_string_equal(err.msg, "Mul 'Mul': no CUDA kernel for float32 with float16");
    const cs_tensor *one[1] = {&bf16};
    assert_non_null(be->supports(be, mul, (const cs_tensor *[]){&bf16, &bf16}, &err));
    assert_null(be->supports(be, soft, one, &err)); /* softmax.cu has f32 and f16 */
    one[0] = &f16;
    assert_non_null(be->supports(be, soft, one, &err));
    one[0] = &f32;
    assert_null(be->supports(be, &g->nodes[N_SOFTMAX1], one, &err));
    assert_string_equal(err.msg,
                        "Softmax 'Softmax': the CUDA kernel works along the last axis only");
    assert_non_null(
        be->supports(be, &g->nodes[N_GATHER], (const cs_tensor *[]){&f32, &idx32}, &err));
    assert_null(be->supports(be, &g->nodes[N_GATHER], (const cs_tensor *[]){&f32, &idxf}, &err));
    assert_null(be->supports(be, &g->nodes[N_CONCAT], (const cs_tensor *[]){&i8, &i8}, &err));
    /* ReduceMean over axes 0 and 2: not one run. */
    static const int64_t split[2] = {0, 2};
    g->attr[N_MEAN][0] = ints_attr("axes", 2, split);
    assert_null(be->supports(be, &g->nodes[N_MEAN], one, &err));
    assert_non_null(strstr(err.msg, "one run of axes"));
    free(g);
}

/* cuda:1's module does not load (FAKE_CUDA_NO_MODULE=1, as a GPU the sm_90 code does not
 * serve): the device still opens, and its sessions run every node on the CPU. */
static void test_module_unavailable(void **state)
{
    (void)state;
    const cs__backend *be = open_cuda(1);
    graph *g = calloc(1, sizeof *g);
    build(g);
    cs_tensor f32 = {CS_DTYPE_FLOAT32, 3, {2, 3, 4}};
    const cs_tensor *ff[2] = {&f32, &f32};
    cs_error err;
    assert_null(be->supports(be, &g->nodes[N_MUL], ff, &err));
    assert_string_equal(err.msg,
                        built() ? "Mul 'Mul': no CUDA kernels on cuda:1: cuModuleLoadData: "
                                  "CUDA_ERROR_NO_BINARY_FOR_GPU (the kernels are sm_90 code and "
                                  "compute_90 PTX; Fake CUDA Device 1 is sm_90)"
                                : "Mul 'Mul': no CUDA kernels on cuda:1: this build has no CUDA "
                                  "kernels (built without nvcc)");
    cs_session_t *s = NULL;
    cs_session_options opts = {.threads = 1, .device = "cuda:1"};
    assert_int_equal(cs_session_new(&g->m, &opts, &s, &err), CS_OK);
    const int64_t idx[2] = {0, 1};
    float u[N_U], gv[N_G], c[N_C];
    launches_clear();
    assert_int_equal(run_graph(s, idx, u, gv, c, &err), CS_OK);
    for (int i = 0; i < N_NODES; i++) assert_int_equal(where(s, i), CS_DEVICE_CPU);
    assert_int_equal(launch_count(), 0);
    cs_session_free(s);
    free(g);
}

int main(void)
{
    setenv("CS_LIBCUDA", CS_FAKE_LIBCUDA, 1);
    setenv("FAKE_CUDA_DEVICES", "2", 1);
    setenv("FAKE_CUDA_NO_MODULE", "1", 1);
    /* No cuBLASLt: Gemm stays on the CPU here (cuda_gemm_test runs it on the fake). */
    setenv("CS_LIBCUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
    void *fake = dlopen(CS_FAKE_LIBCUDA, RTLD_NOW);
    if (!fake) return 1;
    launch_count = (fake_cuda_count_fn)dlsym(fake, "fake_cuda_launch_count");
    launch_get = (fake_cuda_get_fn)dlsym(fake, "fake_cuda_launch_get");
    launches_clear = (fake_cuda_clear_fn)dlsym(fake, "fake_cuda_launches_clear");
    if (!launch_count || !launch_get || !launches_clear) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_small_graph),
        cmocka_unit_test(test_layout_graph),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_module_unavailable),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dlclose(fake);
    return rc;
}

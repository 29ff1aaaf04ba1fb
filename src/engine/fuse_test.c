/*
 * fuse_test.c - the planner's activation fusion: Conv followed by Relu or Clip.
 *
 * Builds small graphs in memory (Conv -> Relu/Clip -> ...) and runs each twice: as is,
 * where the activation should fuse into the Conv, and with the Conv's output added to the
 * graph outputs, which must keep it unfused. The two results must agree bit for bit, and
 * the plans' step counts show whether fusion happened. Covered: Relu, Clip from inputs
 * (opset 17) and attributes (opset 6) including min > max, NaN and infinities in the
 * image and the bias, the im2col, pointwise, depthwise and Winograd paths, float32 and
 * float64 (where the Winograd shape takes im2col), one and two threads, a Conv with a
 * second consumer (no fusion) and an activation with two consumers (fusion). And the
 * Winograd weights the plan prepacks: the same results as weights fed at run time, which
 * are transformed on every run.
 */
#include "engine/kernel.h"
#include "engine/ktest.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Value ids of the test graph. */
enum { X, W, B, Y, Z, LO, HI, U, V, N_VALUES };

typedef struct graph {
    struct cs_model m;
    cs__value values[N_VALUES];
    cs__node nodes[4];
    int in[4][3], out[4][1];
    cs__attr conv_attr[2], clip_attr[2];
    int64_t pads[4];
    cs_tensor w, b, lo, hi;
    double lo_data, hi_data;   /* room for either element type */
    int inputs[2], outputs[4]; /* x and a fed w; Z, U, V and the kept Y at most */
} graph;

typedef struct fcase {
    const char *act;        /* "Relu" or "Clip" */
    int64_t opset;          /* Clip: 6 takes attributes, later ones inputs */
    float lo, hi;           /* Clip bounds */
    cs_dtype t;             /* element type */
    int64_t c, m, group, k; /* channels in and out, groups, square kernel size */
    bool nan;               /* NaN and infinities in the image and the bias */
    bool conv_used_twice;   /* Y also feeds Neg: must not fuse */
    bool act_used_twice;    /* Z feeds Neg and Abs: fuses */
    bool w_fed;             /* W is a graph input rather than an initializer */
} fcase;

static cs_tensor tensor(cs_dtype t, int rank, const int64_t *dims, void *data)
{
    cs_tensor x = {.dtype = t, .rank = rank, .data = data};
    if (rank) memcpy(x.dims, dims, (size_t)rank * sizeof *dims); /* scalars pass no dims */
    return x;
}

static void add_node(graph *g, int i, const char *op, int n_in, const int *in, int out,
                     int64_t opset, int n_attr, cs__attr *attr)
{
    cs__node *n = &g->nodes[i];
    memcpy(g->in[i], in, (size_t)n_in * sizeof *in);
    g->out[i][0] = out;
    *n = (cs__node){.name = op,
                    .op_type = op,
                    .domain = "",
                    .n_in = n_in,
                    .n_out = 1,
                    .in = g->in[i],
                    .out = g->out[i],
                    .n_attr = n_attr,
                    .attr = attr,
                    .opset = opset};
    n->schema = cs__op_find(op, "", opset);
    assert_non_null(n->schema);
    g->values[out].producer = i;
    g->m.n_nodes = i + 1;
}

/* The graph of case f; with `keep_y` the Conv's output is a graph output too. */
static void build(graph *g, const fcase *f, bool keep_y, void *wd, void *bd)
{
    memset(g, 0, sizeof *g);
    static const char *names[N_VALUES] = {"x", "w", "b", "y", "z", "lo", "hi", "u", "v"};
    for (int v = 0; v < N_VALUES; v++)
        g->values[v] = (cs__value){.name = names[v], .rank = -1, .producer = -1};
    int64_t pad = f->k / 2, wdims[4] = {f->m, f->c / f->group, f->k, f->k}, bdims[1] = {f->m};
    for (int j = 0; j < 4; j++) g->pads[j] = pad;
    g->w = tensor(f->t, 4, wdims, wd);
    g->b = tensor(f->t, 1, bdims, bd);
    g->values[W].init = f->w_fed ? NULL : &g->w;
    g->values[B].init = &g->b;
    g->conv_attr[0] = (cs__attr){.name = "group", .type = CS__ATTR_INT, .i = f->group};
    g->conv_attr[1] = (cs__attr){.name = "pads", .type = CS__ATTR_INTS, .n = 4, .ints = g->pads};
    add_node(g, 0, "Conv", 3, (const int[]){X, W, B}, Y, 17, 2, g->conv_attr);
    if (!strcmp(f->act, "Relu")) {
        add_node(g, 1, "Relu", 1, (const int[]){Y}, Z, 17, 0, NULL);
    } else if (f->opset < 11) {
        g->clip_attr[0] = (cs__attr){.name = "min", .type = CS__ATTR_FLOAT, .f = f->lo};
        g->clip_attr[1] = (cs__attr){.name = "max", .type = CS__ATTR_FLOAT, .f = f->hi};
        add_node(g, 1, "Clip", 1, (const int[]){Y}, Z, f->opset, 2, g->clip_attr);
    } else {
        ktest_set(f->t, &g->lo_data, 0, f->lo);
        ktest_set(f->t, &g->hi_data, 0, f->hi);
        g->lo = tensor(f->t, 0, NULL, &g->lo_data);
        g->hi = tensor(f->t, 0, NULL, &g->hi_data);
        g->values[LO].init = &g->lo;
        g->values[HI].init = &g->hi;
        add_node(g, 1, "Clip", 3, (const int[]){Y, LO, HI}, Z, f->opset, 0, NULL);
    }
    g->inputs[0] = X;
    g->values[X].is_input = 1;
    g->inputs[1] = W;
    g->values[W].is_input = f->w_fed;
    int n_out = 0;
    g->outputs[n_out++] = Z;
    if (f->conv_used_twice) {
        add_node(g, 2, "Neg", 1, (const int[]){Y}, U, 17, 0, NULL);
        g->outputs[n_out++] = U;
    } else if (f->act_used_twice) {
        add_node(g, 2, "Neg", 1, (const int[]){Z}, U, 17, 0, NULL);
        add_node(g, 3, "Abs", 1, (const int[]){Z}, V, 17, 0, NULL);
        g->outputs[n_out++] = U;
        g->outputs[n_out++] = V;
    }
    if (keep_y) g->outputs[n_out++] = Y;
    for (int j = 0; j < n_out; j++) g->values[g->outputs[j]].is_output = 1;
    g->m.values = g->values;
    g->m.n_values = N_VALUES;
    g->m.nodes = g->nodes;
    g->m.inputs = g->inputs;
    g->m.n_inputs = f->w_fed ? 2 : 1;
    g->m.outputs = g->outputs;
    g->m.n_outputs = n_out;
}

/* Runs the graph on x (and its weights, when they are an input) `runs` times in one session,
 * calling between(g) before each run after the first; copies the last run's first outputs
 * (all but the kept Y) into res. Returns the plan's step count. */
static int run_n(graph *g, int threads, const cs_tensor *x, cs_tensor *res, int n_res, int runs,
                 void (*between)(graph *g))
{
    cs_session_options o = {.threads = threads};
    cs_session_t *s;
    cs_error err;
    assert_int_equal(cs_session_new(&g->m, &o, &s, &err), CS_OK);
    cs_tensor out[4]; /* as many as graph outputs */
    const char *names[] = {"x", "w"};
    cs_tensor ins[2] = {*x, g->w};
    for (int r = 0; r < runs; r++) {
        if (r) between(g);
        if (cs_session_run(s, g->m.n_inputs, names, ins, g->m.n_outputs, out, &err) != CS_OK)
            fail_msg("%s", err.msg);
    }
    for (int j = 0; j < n_res; j++) {
        size_t bytes = (size_t)cs_tensor_numel(&out[j]) * cs_dtype_size(out[j].dtype);
        res[j] = out[j];
        res[j].data = malloc(bytes);
        memcpy(res[j].data, out[j].data, bytes);
    }
    int steps = cs__session_steps(s);
    cs_session_free(s);
    return steps;
}

static int run(graph *g, int threads, const cs_tensor *x, cs_tensor *res, int n_res)
{
    return run_n(g, threads, x, res, n_res, 1, NULL);
}

static void check(const fcase *f, int threads)
{
    /* 2 x 9 x 11 outputs at k = 3: enough for Winograd */
    int64_t xdims[4] = {2, f->c, 9, 11}, nx = 2 * f->c * 9 * 11;
    void *xd = ktest_filled(f->t, nx, 1, 16),
         *wd = ktest_filled(f->t, f->m * f->c / f->group * f->k * f->k, 2, 16);
    void *bd = ktest_filled(f->t, f->m, 3, 16);
    if (f->nan) {
        for (int64_t i = 0; i < nx; i += 17)
            ktest_set(f->t, xd, i, i % 3 ? NAN : i % 2 ? INFINITY : -INFINITY);
        ktest_set(f->t, bd, 0, NAN);
        ktest_set(f->t, bd, 1, INFINITY);
        ktest_set(f->t, bd, 2, -INFINITY);
    }
    cs_tensor x = tensor(f->t, 4, xdims, xd), fused[3], plain[3];
    graph *g = malloc(sizeof *g);
    int n_res = f->act_used_twice ? 3 : f->conv_used_twice ? 2 : 1;
    build(g, f, false, wd, bd);
    int fused_steps = run(g, threads, &x, fused, n_res);
    build(g, f, true, wd, bd);
    int plain_steps = run(g, threads, &x, plain, n_res);
    /* Unfused: one step per node. Fused: the activation's step is gone. */
    assert_int_equal(plain_steps, g->m.n_nodes);
    assert_int_equal(fused_steps, g->m.n_nodes - (f->conv_used_twice ? 0 : 1));
    for (int j = 0; j < n_res; j++) {
        assert_int_equal(fused[j].rank, plain[j].rank);
        size_t bytes = (size_t)cs_tensor_numel(&plain[j]) * cs_dtype_size(plain[j].dtype);
        if (memcmp(fused[j].data, plain[j].data, bytes))
            fail_msg("%s opset %lld [%g, %g] %s c=%lld m=%lld group=%lld k=%lld threads=%d: "
                     "output %d differs from the unfused run",
                     f->act, (long long)f->opset, f->lo, f->hi, cs_dtype_name(f->t),
                     (long long)f->c, (long long)f->m, (long long)f->group, (long long)f->k,
                     threads, j);
        free(fused[j].data);
        free(plain[j].data);
    }
    free(g);
    free(xd);
    free(wd);
    free(bd);
}

static void sweep(const fcase *f)
{
    /* im2col, depthwise (float32: the direct kernel), pointwise and Winograd (float32)
     * shapes */
    static const int64_t shapes[][4] = {
        {4, 6, 1, 3}, {4, 8, 4, 3}, {6, 6, 6, 3}, {4, 5, 1, 1}, {16, 16, 1, 3},
    };
    const cs_dtype types[] = {CS_DTYPE_FLOAT32, CS_DTYPE_FLOAT64};
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int threads = 1; threads <= 2; threads++) {
                fcase c = *f;
                c.t = types[t];
                c.c = shapes[i][0], c.m = shapes[i][1], c.group = shapes[i][2], c.k = shapes[i][3];
                check(&c, threads);
            }
}

static void test_relu(void **state)
{
    sweep(&(fcase){.act = "Relu"});
}

static void test_clip_inputs(void **state)
{
    sweep(&(fcase){.act = "Clip", .opset = 17, .lo = 0, .hi = 6});
    sweep(&(fcase){.act = "Clip", .opset = 13, .lo = -1.25f, .hi = 2.5f});
}

static void test_clip_attributes_and_min_above_max(void **state)
{
    sweep(&(fcase){.act = "Clip", .opset = 6, .lo = 0, .hi = 6});
    sweep(&(fcase){.act = "Clip", .opset = 6, .lo = 3, .hi = -1});
    sweep(&(fcase){.act = "Clip", .opset = 17, .lo = 2, .hi = 1});
}

static void test_nan_and_infinities(void **state)
{
    sweep(&(fcase){.act = "Relu", .nan = true});
    sweep(&(fcase){.act = "Clip", .opset = 17, .lo = 0, .hi = 6, .nan = true});
    sweep(&(fcase){.act = "Clip", .opset = 6, .lo = -2, .hi = 2, .nan = true});
}

static void test_conv_with_two_consumers_does_not_fuse(void **state)
{
    sweep(&(fcase){.act = "Relu", .conv_used_twice = true});
}

static void test_activation_with_two_consumers_fuses(void **state)
{
    sweep(&(fcase){.act = "Clip", .opset = 17, .lo = 0, .hi = 6, .act_used_twice = true});
}

/* Overwrites the weights with zeros: a plan that prepacked them must not notice. */
static void zero_weights(graph *g)
{
    memset(g->w.data, 0, (size_t)cs_tensor_numel(&g->w) * cs_dtype_size(g->w.dtype));
}

/* A Winograd Conv whose weights are an initializer runs on weights transformed once per
 * plan: bit for bit what weights fed at run time (transformed in each run) give, and a
 * second run does not read the weights again (zeroing them between runs changes nothing,
 * which only prepacked weights survive; initializers are read-only by contract). */
static void test_winograd_weights_prepacked(void **state)
{
    fcase f = {.act = "Relu", .t = CS_DTYPE_FLOAT32, .c = 16, .m = 16, .group = 1, .k = 3};
    int64_t xdims[4] = {2, 16, 9, 11};
    void *xd = ktest_filled(f.t, 2 * 16 * 9 * 11, 1, 16);
    cs_tensor x = tensor(f.t, 4, xdims, xd), packed, fed, again, zeroed;
    graph *g = malloc(sizeof *g);
    for (int threads = 1; threads <= 2; threads++) {
        void *wd = ktest_filled(f.t, 16 * 16 * 9, 2, 16), *bd = ktest_filled(f.t, 16, 3, 16);
        size_t bytes = 2 * 16 * 9 * 11 * sizeof(float);
        f.w_fed = false;
        build(g, &f, false, wd, bd);
        run_n(g, threads, &x, &packed, 1, 2, zero_weights);
        f.w_fed = true;
        build(g, &f, false, wd, bd);
        run_n(g, threads, &x, &zeroed, 1, 1, NULL); /* wd is all zeros now */
        free(wd);
        wd = ktest_filled(f.t, 16 * 16 * 9, 2, 16);
        build(g, &f, false, wd, bd);
        run(g, threads, &x, &fed, 1);
        f.w_fed = false;
        build(g, &f, false, wd, bd);
        run(g, threads, &x, &again, 1);
        assert_memory_equal(packed.data, fed.data, bytes);
        assert_memory_equal(again.data, fed.data, bytes);
        assert_memory_not_equal(zeroed.data, fed.data, bytes);
        free(packed.data), free(fed.data), free(again.data), free(zeroed.data);
        free(wd), free(bd);
    }
    free(g);
    free(xd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_clip_inputs),
        cmocka_unit_test(test_clip_attributes_and_min_above_max),
        cmocka_unit_test(test_nan_and_infinities),
        cmocka_unit_test(test_conv_with_two_consumers_does_not_fuse),
        cmocka_unit_test(test_activation_with_two_consumers_fuses),
        cmocka_unit_test(test_winograd_weights_prepacked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

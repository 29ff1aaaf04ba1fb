/*
 * pgemm.c - the prepacked float32 GEMM of pgemm.h, an AVX-512 register-blocked kernel.
 *
 * OpenBLAS packs both operands into its own layout on every call; on mobilenet_v2's 1x1
 * convolutions (K of 16 to 960 input channels, N of 49 to 12544 pixels) that packing and
 * the separate bias and ReLU6 passes over the output held its sgemm to about 24 GFLOP/s.
 * Here the weights are packed once per plan into panels of MR = 8 rows stored k-major, and
 * the activations are read in place: each tile of 8 rows x 48 columns keeps its 24
 * accumulators in zmm registers over the whole of K, each k step loading three vectors of
 * one row of x (the last one masked at the row's end, so there is no scalar tail) and
 * broadcasting 8 weights: 24 FMAs for 11 loads. The tile's epilogue adds the bias and
 * clamps (the fused Relu or Clip) before its only store, so the output crosses memory
 * once. Summation is over k in order with FMAs, as the BLAS does; bias after the sum, then
 * the clamp with Clip's own NaN and signed-zero behaviour, as the other Conv paths.
 *
 * MatMul's and Gemm's known weights are the right operand instead (cs__pgemm_b): B is
 * packed once in column panels of 48, k-major, and A is read in place, each k step
 * broadcasting one element of each of 8 rows; the same tile does both, through strides,
 * and its epilogue adds Gemm's bias, one per column.
 *
 * Tiles run column block by column block, all row panels of one block in a row, so that
 * block's K x 48 slice of x (at most K * 192 bytes) stays in L2 while the panels pass over
 * it. Compiled for AVX-512 through target attributes and chosen at run time
 * (isa.h's cs__cpu_avx512), so the binary still runs on CPUs without it.
 */
#include "engine/cpu/pgemm.h"

#include <immintrin.h>

#define MR       8         /* rows per panel */
#define NV       3         /* zmm vectors of 16 columns per tile */
#define NR       (16 * NV) /* columns per tile */
#define MIN_MACS (1 << 18) /* per thread's share: as blas.c, a wake-up costs about that */

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define UNROLL _Pragma("GCC unroll 8")

size_t cs__pgemm_weights_floats(int64_t M, int64_t K)
{
    return (size_t)((M + MR - 1) / MR * MR * K);
}

/* Lanes [0, n) of src, lane l's element k at src[l * lane + k * step], into panels of width
 * lanes stored k-major, the last panel padded with zeros: both packed forms. */
static void pack_panels(int64_t n, int64_t width, int64_t depth, const float *src, int64_t lane,
                        int64_t step, float *dst)
{
    for (int64_t p = 0; p < (n + width - 1) / width; p++)
        for (int64_t k = 0; k < depth; k++)
            for (int64_t i = 0; i < width; i++, dst++) {
                int64_t l = p * width + i;
                *dst = l < n ? src[l * lane + k * step] : 0.0f;
            }
}

void cs__pgemm_weights(int64_t M, int64_t K, const float *a, float *dst)
{
    pack_panels(M, MR, K, a, K, 1, dst);
}

typedef struct pg_args {
    int64_t M, N, K, panels;
    const float *a, *x, *bias, *col_bias; /* bias: one per row (Conv); col_bias: per column */
    float *y;
    bool clamp;
    float lo, hi;
    /* Element (i, k) of a row panel is at a[i * ai + k * ak]: (1, MR) for packed weights,
     * (K, 1) for a row-major A read in place. Row k of a column block starts xk floats after
     * row k - 1: N for x read in place, NR in packed column panels (xpacked). */
    int64_t ai, ak, xk;
    bool xpacked;
} pg_args;

/* The tile of row panel p and columns [n0, n0 + 16 * nv), the last vector's store masked
 * by last, and its load too unless full (x's rows hold all 16 * nv: packed panels are padded
 * to NR). Inlined with nv and full literals, so acc[][] lives in registers and the loads are
 * plain ones where they can be: a masked load costs a sanitizer one check per lane. Rows
 * past M (the last panel) are computed from row 0 of the panel, so that an A read in place
 * is never read past its end, and not stored. */
static inline __attribute__((always_inline)) AVX512 void
tile(const pg_args *g, int64_t p, int64_t n0, int nv, __mmask16 last, bool full)
{
    __m512 acc[MR][NV];
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NV; j++) acc[i][j] =
        _mm512_setzero_ps();
    int64_t rows = g->M - p * MR < MR ? g->M - p * MR : MR, off[MR];
    UNROLL for (int i = 0; i < MR; i++) off[i] = (i < rows ? i : 0) * g->ai;
    const float *a = g->a + p * MR * g->K, *x = g->x + (g->xpacked ? n0 * g->K : n0);
    for (int64_t k = 0; k < g->K; k++, a += g->ak, x += g->xk) {
        __m512 xv[NV];
        UNROLL for (int j = 0; j < nv; j++) xv[j] = full || j < nv - 1
                                                        ? _mm512_loadu_ps(x + 16 * j)
                                                        : _mm512_maskz_loadu_ps(last, x + 16 * j);
        UNROLL for (int i = 0; i < MR; i++)
        {
            __m512 av = _mm512_set1_ps(a[off[i]]);
            UNROLL for (int j = 0; j < nv; j++) acc[i][j] = _mm512_fmadd_ps(av, xv[j], acc[i][j]);
        }
    }
    __m512 lo = _mm512_set1_ps(g->lo), hi = _mm512_set1_ps(g->hi);
    UNROLL for (int i = 0; i < MR; i++)
    {
        if (i >= rows) break;
        float *y = g->y + (p * MR + i) * g->N + n0;
        UNROLL for (int j = 0; j < nv; j++)
        {
            __m512 v = acc[i][j];
            if (g->bias) v = _mm512_add_ps(v, _mm512_set1_ps(g->bias[p * MR + i]));
            if (g->col_bias)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(j == nv - 1 ? last : 0xFFFF,
                                                           g->col_bias + n0 + 16 * j));
            /* max(lo, v) is v < lo ? lo : v, NaN and -0 kept; min(hi, .) likewise:
             * CS__CLAMP exactly. */
            if (g->clamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
            _mm512_mask_storeu_ps(y + 16 * j, j == nv - 1 ? last : 0xFFFF, v);
        }
    }
}

/* tile() with nv a literal. */
static inline __attribute__((always_inline)) AVX512 void
tile_nv(const pg_args *g, int64_t p, int64_t n0, int nv, __mmask16 last, bool full)
{
    if (nv == 3)
        tile(g, p, n0, 3, last, full);
    else if (nv == 2)
        tile(g, p, n0, 2, last, full);
    else
        tile(g, p, n0, 1, last, full);
}

/* Tiles [begin, end): tile t is column block t / panels, row panel t % panels. */
static AVX512 void tiles(void *arg, int64_t begin, int64_t end)
{
    const pg_args *g = arg;
    for (int64_t t = begin; t < end; t++) {
        int64_t p = t % g->panels, n0 = t / g->panels * NR;
        int64_t cols = g->N - n0 < NR ? g->N - n0 : NR;
        int nv = (int)((cols + 15) / 16);
        __mmask16 last = (__mmask16)((1u << (cols - 16 * (nv - 1))) - 1);
        if (g->xpacked || cols % 16 == 0)
            tile_nv(g, p, n0, nv, last, true);
        else
            tile_nv(g, p, n0, nv, last, false);
    }
}

/* Splits the tiles of g over the pool. */
static void run(cs__kctx *ctx, pg_args *g)
{
    if (g->M == 0 || g->N == 0) return;
    g->panels = (g->M + MR - 1) / MR;
    int64_t per_tile = MR * NR * (g->K > 0 ? g->K : 1);
    cs__parallel_for(ctx, g->panels * ((g->N + NR - 1) / NR), 1 + MIN_MACS / per_tile, tiles, g);
}

static pg_args args(int64_t M, int64_t N, int64_t K, const float *bias, const cs__act *act,
                    float *y)
{
    bool clamp = act && act->kind != CS__ACT_NONE;
    return (pg_args){.M = M,
                     .N = N,
                     .K = K,
                     .bias = bias,
                     .y = y,
                     .clamp = clamp,
                     .lo = clamp ? (float)act->lo : 0.0f,
                     .hi = clamp ? (float)act->hi : 0.0f};
}

void cs__pgemm(cs__kctx *ctx, int64_t M, int64_t N, int64_t K, const float *packed, const float *x,
               const float *bias, const cs__act *act, float *y)
{
    pg_args g = args(M, N, K, bias, act, y);
    g.a = packed;
    g.ai = 1;
    g.ak = MR;
    g.x = x;
    g.xk = N;
    run(ctx, &g);
}

size_t cs__pgemm_cols_floats(int64_t K, int64_t N)
{
    return (size_t)((N + NR - 1) / NR * NR * K);
}

void cs__pgemm_cols(int64_t K, int64_t N, const float *b, bool trans, float *dst)
{
    if (trans)
        pack_panels(N, NR, K, b, K, 1, dst);
    else
        pack_panels(N, NR, K, b, 1, N, dst);
}

void cs__pgemm_b(cs__kctx *ctx, int64_t M, int64_t N, int64_t K, const float *a,
                 const float *packed, const float *col_bias, const cs__act *act, float *y)
{
    pg_args g = args(M, N, K, NULL, act, y);
    g.col_bias = col_bias;
    g.a = a;
    g.ai = K;
    g.ak = 1;
    g.x = packed;
    g.xk = NR;
    g.xpacked = true;
    run(ctx, &g);
}

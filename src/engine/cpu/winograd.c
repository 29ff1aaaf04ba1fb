/*
 * winograd.c - Winograd F(2x2, 3x3) convolution (Lavin & Gray, 2015) for conv.c.
 *
 * Each 2x2 block of outputs of one (image, output channel) is a 4x4 patch of every input
 * channel convolved with that channel's 3x3 kernel. In the transformed domain the
 * convolution is an elementwise product: Y = A^T [sum_c (G g G^T) .* (B^T d B)] A. Summed
 * over the input channels, each of the 16 transformed positions xi becomes one GEMM,
 *     P[xi] (M x tiles) = U[xi] (M x C) . V[xi] (C x tiles),
 * 16 * M * C multiplies per tile instead of im2col's 36 * M * C: 2.25x fewer, for the
 * price of the transforms, which are O(C + M) per tile rather than O(C * M).
 *
 * The weights' transform, 16 * M * C floats each from 3x3 taps, is done once per plan when
 * the weights are known then (conv.c's prepack), else on every run into the scratch.
 * The tiles are taken in blocks of whole tile rows across the batch, sized so that the
 * block's V and P stay near 16 MB whatever the batch: the input transform fills V, the 16
 * GEMMs run side by side on the pool (each single-threaded), and the output transform
 * reads P, adds the bias and applies the fused activation to each tile row as it is done -
 * bias first, then activation, as the other Conv paths do. Scratch: U, then V and P for
 * one block; nothing is allocated.
 *
 * Non-finite inputs: the transforms add and subtract neighbouring inputs, so an infinity in
 * a tile's 4x4 patch can make that tile's outputs NaN where im2col would give an infinity
 * (as in other Winograd implementations). Finite inputs only see rounding differences,
 * well inside the tolerances the model tests hold the engine to.
 */
#include "engine/cpu/winograd.h"

#include "engine/cpu/blas.h"

/* V and P of one block of tiles: about 16 MB of floats, unless one tile row needs more.
 * On resnet18 4 MB blocks ran 5% (batch 1) and 10% (batch 8) slower: smaller GEMMs, more
 * wake-ups; 64 MB gained nothing. */
#define BLOCK_FLOATS (1 << 22)

typedef struct wino {
    const cs__window *w;
    int64_t N, C, M;
    int64_t th, tw;     /* tile rows and columns per image */
    int64_t rows;       /* tile rows per block */
    int64_t r0, r1;     /* the block being run: global tile rows [r0, r1) */
    int64_t ld;         /* tiles a block holds room for: V's and P's row stride */
    int64_t us, vs, ps; /* strides of U[xi], V[xi] and P[xi], see stride() */
    const float *x, *wt, *b;
    const float *ut; /* the transformed weights products() reads: u, or prepacked ones */
    float *y, *u, *v, *p;
    const cs__act *act;
} wino;

/* The stride between the 16 matrices of U, V or P for n floats each: rounded up to a
 * cache line and one more, so that the transforms' 16 write streams do not share one
 * cache set when n is a power of two (512 x 512 weights); they did, and the weight
 * transform took half of resnet18's time. */
static int64_t stride(int64_t n)
{
    return (n + 15) / 16 * 16 + 16;
}

static void geometry(wino *g, const cs__window *w, int64_t N, int64_t C, int64_t M)
{
    g->w = w;
    g->N = N;
    g->C = C;
    g->M = M;
    g->th = (w->out[0] + 1) / 2;
    g->tw = (w->out[1] + 1) / 2;
    int64_t per_row = 16 * (C + M) * g->tw;
    g->rows = BLOCK_FLOATS / per_row;
    if (g->rows < 1) g->rows = 1;
    if (g->rows > N * g->th) g->rows = N * g->th;
    g->ld = g->rows * g->tw;
    g->us = stride(M * C);
    g->vs = stride(C * g->ld);
    g->ps = stride(M * g->ld);
}

size_t cs__winograd_scratch(const cs__window *w, int64_t N, int64_t C, int64_t M)
{
    wino g;
    geometry(&g, w, N, C, M);
    return (size_t)(16 * (g.us + g.vs + g.ps));
}

/* U[xi][m][c] = (G g G^T)[xi] for (m, c) pairs [begin, end), G = [1 0 0; .5 .5 .5;
 * .5 -.5 .5; 0 0 1]. */
static void weights(void *arg, int64_t begin, int64_t end)
{
    const wino *g = arg;
    int64_t mc = g->us;
    for (int64_t i = begin; i < end; i++) {
        const float *k = g->wt + i * 9;
        float t[4][3];
        for (int j = 0; j < 3; j++) {
            t[0][j] = k[j];
            t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
            t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
            t[3][j] = k[6 + j];
        }
        for (int r = 0; r < 4; r++) {
            float *u = g->u + r * 4 * mc + i;
            u[0] = t[r][0];
            u[mc] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
            u[2 * mc] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
            u[3 * mc] = t[r][2];
        }
    }
}

/* V[xi][c][t] = (B^T d B)[xi] for input channels [begin, end) and every tile t of the
 * block, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. d is the tile's 4x4 patch, read
 * straight from the image when it lies inside, else gathered with zeros for padding. */
static void inputs(void *arg, int64_t begin, int64_t end)
{
    const wino *g = arg;
    const cs__window *w = g->w;
    int64_t H = w->in[0], W = w->in[1], cs = g->vs;
    for (int64_t c = begin; c < end; c++)
        for (int64_t r = g->r0; r < g->r1; r++) {
            int64_t n = r / g->th, iy = 2 * (r % g->th) - w->pb[0];
            const float *img = g->x + (n * g->C + c) * w->in_size;
            float *v = g->v + c * g->ld + (r - g->r0) * g->tw;
            for (int64_t tx = 0; tx < g->tw; tx++) {
                int64_t ix = 2 * tx - w->pb[1];
                float d[4][4];
                if (iy >= 0 && iy + 4 <= H && ix >= 0 && ix + 4 <= W) {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) d[i][j] = img[(iy + i) * W + ix + j];
                } else {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            int64_t yy = iy + i, xx = ix + j;
                            d[i][j] =
                                yy >= 0 && yy < H && xx >= 0 && xx < W ? img[yy * W + xx] : 0.0f;
                        }
                }
                float t[4][4];
                for (int j = 0; j < 4; j++) {
                    t[0][j] = d[0][j] - d[2][j];
                    t[1][j] = d[1][j] + d[2][j];
                    t[2][j] = d[2][j] - d[1][j];
                    t[3][j] = d[1][j] - d[3][j];
                }
                for (int i = 0; i < 4; i++) {
                    float *o = v + 4 * i * cs + tx;
                    o[0] = t[i][0] - t[i][2];
                    o[cs] = t[i][1] + t[i][2];
                    o[2 * cs] = t[i][2] - t[i][1];
                    o[3 * cs] = t[i][1] - t[i][3];
                }
            }
        }
}

/* P[xi] = U[xi] . V[xi] for positions [begin, end): one single-threaded GEMM each, so
 * the 16 run side by side on the pool with one wake-up rather than 16. */
static void products(void *arg, int64_t begin, int64_t end)
{
    const wino *g = arg;
    int64_t tiles = (g->r1 - g->r0) * g->tw;
    for (int64_t xi = begin; xi < end; xi++)
        cs__gemm(NULL, CS_DTYPE_FLOAT32, false, false, g->M, tiles, g->C, 1.0, g->ut + xi * g->us,
                 g->C, g->v + xi * g->vs, g->ld, 0.0, g->p + xi * g->ps, g->ld);
}

/* Output channels [begin, end): Y = A^T m A + b for every tile of the block, A^T =
 * [1 1 1 0; 0 1 -1 -1], dropping the row or column past an odd edge; then the fused
 * activation over each finished tile row's output rows, contiguous in Y. */
static void outputs(void *arg, int64_t begin, int64_t end)
{
    const wino *g = arg;
    const cs__window *w = g->w;
    int64_t OH = w->out[0], OW = w->out[1], ms = g->ps;
    for (int64_t m = begin; m < end; m++) {
        float bias = g->b ? g->b[m] : 0.0f;
        for (int64_t r = g->r0; r < g->r1; r++) {
            int64_t n = r / g->th, oy = 2 * (r % g->th);
            float *y = g->y + (n * g->M + m) * w->out_size + oy * OW;
            const float *p = g->p + m * g->ld + (r - g->r0) * g->tw;
            int64_t h = oy + 1 < OH ? 2 : 1;
            for (int64_t tx = 0; tx < g->tw; tx++) {
                float s[4][4], t[2][4];
                for (int i = 0; i < 16; i++) s[i / 4][i % 4] = p[i * ms + tx];
                for (int j = 0; j < 4; j++) {
                    t[0][j] = s[0][j] + s[1][j] + s[2][j];
                    t[1][j] = s[1][j] - s[2][j] - s[3][j];
                }
                int64_t ox = 2 * tx;
                for (int64_t i = 0; i < h; i++) {
                    y[i * OW + ox] = t[i][0] + t[i][1] + t[i][2] + bias;
                    if (ox + 1 < OW) y[i * OW + ox + 1] = t[i][1] - t[i][2] - t[i][3] + bias;
                }
            }
            if (g->act->kind != CS__ACT_NONE) cs__act_apply(g->act, CS_DTYPE_FLOAT32, y, h * OW);
        }
    }
}

size_t cs__winograd_weights_floats(int64_t C, int64_t M)
{
    return (size_t)(16 * stride(M * C));
}

void cs__winograd_weights(int64_t C, int64_t M, const float *wt, float *u)
{
    wino g = {.C = C, .M = M, .us = stride(M * C), .wt = wt, .u = u};
    weights(&g, 0, M * C);
}

void cs__winograd(cs__kctx *ctx, const cs__window *w, int64_t N, int64_t C, int64_t M,
                  const float *x, const float *wt, const float *u, const float *b, float *y,
                  float *scratch, const cs__act *act)
{
    wino g;
    geometry(&g, w, N, C, M);
    g.x = x;
    g.wt = wt;
    g.b = b;
    g.y = y;
    g.act = act;
    g.u = scratch;
    g.v = g.u + 16 * g.us;
    g.p = g.v + 16 * g.vs;
    /* Chunks of at least ~4K transforms (a few tens of operations each), so that a pool
     * thread is not woken for less work than the wake-up costs. */
    g.ut = u ? u : g.u;
    if (!u) cs__parallel_for(ctx, M * C, 1 << 12, weights, &g);
    for (g.r0 = 0; g.r0 < N * g.th; g.r0 = g.r1) {
        g.r1 = g.r0 + g.rows < N * g.th ? g.r0 + g.rows : N * g.th;
        int64_t tiles = (g.r1 - g.r0) * g.tw;
        cs__parallel_for(ctx, C, 1 + (1 << 12) / tiles, inputs, &g);
        cs__parallel_for(ctx, 16, 1, products, &g);
        cs__parallel_for(ctx, M, 1 + (1 << 12) / tiles, outputs, &g);
    }
}

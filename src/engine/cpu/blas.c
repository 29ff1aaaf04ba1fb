/*
 * blas.c - GEMM split across the session's threads; see blas.h for why.
 *
 * The larger of M and N is cut into one contiguous block per thread (at least 16 rows or
 * columns each, so tiny products stay on the calling thread); each block is an
 * independent single-threaded cblas call writing a disjoint part of Y.
 *
 * One row of A (batch-1 fully connected layers) goes to GEMV instead: GEMM packs both
 * operands into its own layout on every call, which for a single row costs more than the
 * product itself (callgrind put OpenBLAS's packing at over half of the digits model's run).
 */
#include "engine/cpu/blas.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define MIN_BLOCK_MACS (1 << 18)

/* OpenBLAS is loaded at the first session, not linked: linked, its constructor would start a
 * thread per core in every process that links the engine, `capstan version` included, and
 * the engine never uses them. The caller's OPENBLAS_NUM_THREADS=1 (capstan sets it before
 * any thread exists) keeps OpenBLAS from starting any; openblas_set_num_threads(1) makes
 * every call single-threaded either way. */
static struct {
    pthread_once_t once;
    void *lib;
    char why[256];
    void (*sgemm)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, int, int, int,
                  float, const float *, int, const float *, int, float, float *, int);
    void (*dgemm)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, int, int, int,
                  double, const double *, int, const double *, int, double, double *, int);
    void (*sgemv)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, int, int, float, const float *, int,
                  const float *, int, float, float *, int);
    void (*dgemv)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, int, int, double, const double *, int,
                  const double *, int, double, double *, int);
} blas = {.once = PTHREAD_ONCE_INIT};

#define OPENBLAS "libopenblas.so.0"

static void blas_load(void)
{
    void *lib = dlopen(OPENBLAS, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(blas.why, sizeof blas.why, "cannot load %s: %s", OPENBLAS, dlerror());
        return;
    }
    void (*set_threads)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
    *(void **)&blas.sgemm = dlsym(lib, "cblas_sgemm");
    *(void **)&blas.dgemm = dlsym(lib, "cblas_dgemm");
    *(void **)&blas.sgemv = dlsym(lib, "cblas_sgemv");
    *(void **)&blas.dgemv = dlsym(lib, "cblas_dgemv");
    if (!set_threads || !blas.sgemm || !blas.dgemm || !blas.sgemv || !blas.dgemv) {
        snprintf(blas.why, sizeof blas.why, "%s lacks the CBLAS functions the engine calls",
                 OPENBLAS);
        dlclose(lib);
        return;
    }
    set_threads(1);
    blas.lib = lib;
}

cs_status cs__blas_ready(cs_error *err)
{
    pthread_once(&blas.once, blas_load);
    return blas.lib ? CS_OK : cs_error_set(err, CS_ERR_UNSUPPORTED, "%s", blas.why);
}

typedef struct gemm_job {
    cs_dtype t;
    bool ta, tb, split_m;
    int64_t M, N, K, lda, ldb, ldy;
    double alpha, beta;
    const char *a, *b;
    char *y;
} gemm_job;

static void gemm_block(void *p, int64_t begin, int64_t end)
{
    const gemm_job *j = p;
    size_t es = j->t == CS_DTYPE_FLOAT64 ? 8 : 4;
    const char *a = j->a, *b = j->b;
    char *y = j->y;
    int64_t M = j->M, N = j->N;
    if (j->split_m) { /* rows of op(A) and Y */
        a += (size_t)(j->ta ? begin : begin * j->lda) * es;
        y += (size_t)(begin * j->ldy) * es;
        M = end - begin;
    } else { /* columns of op(B) and Y */
        b += (size_t)(j->tb ? begin * j->ldb : begin) * es;
        y += (size_t)begin * es;
        N = end - begin;
    }
    enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = j->tb ? CblasTrans : CblasNoTrans;
    if (M == 1) {
        /* y = op(B)^T a: a row-major op(B) of K x N read transposed, or B of N x K as is.
         * Element k of the row of A sits at a[k * lda] when A is transposed. */
        enum CBLAS_TRANSPOSE t = j->tb ? CblasNoTrans : CblasTrans;
        int rows = j->tb ? (int)N : (int)j->K, cols = j->tb ? (int)j->K : (int)N;
        int inc_a = j->ta ? (int)j->lda : 1;
        if (j->t == CS_DTYPE_FLOAT64)
            blas.dgemv(CblasRowMajor, t, rows, cols, j->alpha, (const double *)b, (int)j->ldb,
                       (const double *)a, inc_a, j->beta, (double *)y, 1);
        else
            blas.sgemv(CblasRowMajor, t, rows, cols, (float)j->alpha, (const float *)b, (int)j->ldb,
                       (const float *)a, inc_a, (float)j->beta, (float *)y, 1);
        return;
    }
    if (j->t == CS_DTYPE_FLOAT64)
        blas.dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)j->K, j->alpha, (const double *)a,
                   (int)j->lda, (const double *)b, (int)j->ldb, j->beta, (double *)y, (int)j->ldy);
    else
        blas.sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)j->K, (float)j->alpha,
                   (const float *)a, (int)j->lda, (const float *)b, (int)j->ldb, (float)j->beta,
                   (float *)y, (int)j->ldy);
}

void cs__gemm(cs__kctx *ctx, cs_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
              double alpha, const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
              void *y, int64_t ldy)
{
    if (M == 0 || N == 0) return;
    pthread_once(&blas.once, blas_load); /* kernels run outside sessions in unit tests */
    gemm_job j = {t, ta, tb, M >= N, M, N, K, lda, ldb, ldy, alpha, beta, a, b, y};
    /* Each block gets at least MIN_BLOCK_MACS multiply-adds: waking a pool thread costs
     * microseconds (tens on a virtual machine), about what a core does with that much
     * work, so a batch-1 layer of 512 x 512 stays on one thread. */
    int64_t per_line = (j.split_m ? N : M) * (K > 0 ? K : 1);
    int64_t min_lines = per_line >= MIN_BLOCK_MACS ? 1 : MIN_BLOCK_MACS / per_line;
    cs__parallel_for(ctx, j.split_m ? M : N, min_lines > 16 ? min_lines : 16, gemm_block, &j);
}

/* Dense products of the model: forward, input gradient, weight gradient, all
 * on the one register-blocked tile of simd_kernels.h (ctx->vk->gemm_tile).
 *
 * The shapes are tall and skinny: M = B*T rows (~15k) against weights of at
 * most 384 x 384, so every weight fits in L2 and K is short enough to run
 * whole in one tile call (accumulators are written once, with the bias and
 * residual added on the way out). Each output element is owned by one thread
 * and summed in an order fixed by the shapes, so results do not depend on the
 * thread count. */
#include "kernels.h"

#include <string.h>

#define ROW_BLOCK_TILES 16 /* row tiles per work item: one block covers a 2-sequence chunk */
#define WGRAD_CHUNK 128    /* rows of inp/dout per pass of the weight gradient */

/* c (M, N; row stride ldc) = ([cin] + [bias] + A (M, kc) @ b (kc, N; row stride
 * ldb)) [* scale (M, N; row stride ldc)], A rows a + m * lda. Parallel over blocks of rows
 * (ica_parallel_chunks, one block per chunk); within a block the columns go panel by panel so a
 * (kc, NR) panel of b stays in L1 while the block's rows pass over it. */
typedef struct {
    const ica_vector_kernels *k;
    float *c;
    const float *cin, *a, *scale, *b, *bias;
    ptrdiff_t ldc, lda, ldb;
    int M, N, kc;
} gemm_args;

static void gemm_block(const void *arg, size_t blk, size_t begin, size_t count) {
    const gemm_args *g = arg;
    const ica_vector_kernels *k = g->k;
    const int NR = k->gemm_nr, MB = k->gemm_mr * ROW_BLOCK_TILES; /* a multiple of gemm_mr1 */
    const ptrdiff_t ldc = g->ldc;
    const int m_begin = (int)blk * MB, m_end = m_begin + MB < g->M ? m_begin + MB : g->M;
    (void)begin, (void)count;
    for (int n0 = 0; n0 < g->N; n0 += NR) {
        int nr = g->N - n0 < NR ? g->N - n0 : NR, rows = gemm_tile_rows(k, nr);
        for (int m0 = m_begin; m0 < m_end; m0 += rows) {
            int mr = m_end - m0 < rows ? m_end - m0 : rows;
            k->gemm_tile(g->c + m0 * ldc + n0, ldc, g->cin ? g->cin + m0 * ldc + n0 : NULL,
                         g->bias ? g->bias + n0 : NULL, g->a + m0 * g->lda, g->lda, 1, g->b + n0,
                         g->ldb, g->kc, mr, nr);
        }
    }
    if (g->scale) /* the block is still in L1/L2 */
        for (int m = m_begin; m < m_end; m++)
            k->mul_inplace(g->c + m * ldc, g->scale + m * ldc, (size_t)g->N);
}

static void gemm_rows(const ica_ctx *ctx, float *c, ptrdiff_t ldc, const float *cin, const float *a,
                      ptrdiff_t lda, const float *scale, const float *b, ptrdiff_t ldb,
                      const float *bias, int M, int N, int kc) {
    const gemm_args g = {ctx->vk, c, cin, a, scale, b, bias, ldc, lda, ldb, M, N, kc};
    const size_t MB = (size_t)ctx->vk->gemm_mr * ROW_BLOCK_TILES;
    ica_parallel_chunks(ctx, gemm_block, &g, (size_t)M, MB);
}

void matmul_forward(const ica_ctx *ctx, float *out, const float *inp, const float *residual,
                    const float *weight, const float *bias, int M, int K, int N) {
    /* out (M,N) = inp (M,K) @ weight (K,N) + bias (N) [+ residual (M,N)]:
     * weight rows are already the contiguous B operand, no packing. */
    gemm_rows(ctx, out, N, residual, inp, K, NULL, weight, N, bias, M, N, K);
}

void matmul_transpose(const ica_ctx *ctx, float *weight_t, const float *weight, int K, int N) {
    /* weight_t (N,K) = weight (K,N)^T */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int n = 0; n < N; n++)
        for (int kk = 0; kk < K; kk++) weight_t[(size_t)n * K + kk] = weight[(size_t)kk * N + n];
}

void matmul_backward_input(const ica_ctx *ctx, float *dinp, const float *dout, const float *scale,
                           const float *weight_t, int M, int K, int N) {
    /* dinp (M,K) = dout (M,N) @ weight^T: the rows of weight_t (N,K) are the
     * contiguous B operand. */
    gemm_rows(ctx, dinp, K, NULL, dout, N, scale, weight_t, K, NULL, M, K, N);
}

typedef struct {
    const ica_vector_kernels *k;
    float *dweight, *dbias;
    const float *dout, *inp;
    int M, K, N, accumulate, parts;
} wgrad_args;

/* Part `part` of `parts` of the weight gradient's output tiles (see below). */
static void wgrad_part(const void *arg, size_t part, size_t begin, size_t count) {
    const wgrad_args *w = arg;
    const ica_vector_kernels *k = w->k;
    const int NR = k->gemm_nr, M = w->M, K = w->K, N = w->N;
    const int MR = gemm_tile_rows(k, N < NR ? N : NR); /* taller tiles when N is one vector */
    const int k_tiles = (K + MR - 1) / MR, n_tiles = (N + NR - 1) / NR;
    const int tiles = k_tiles * n_tiles, split_k = K >= N;
    const int t_begin = (int)((long)tiles * (long)part / w->parts);
    const int t_end = (int)((long)tiles * (long)(part + 1) / w->parts);
    (void)begin, (void)count;
    for (int m0 = 0; m0 < M; m0 += WGRAD_CHUNK) {
        int rows = M - m0 < WGRAD_CHUNK ? M - m0 : WGRAD_CHUNK;
        for (int t = t_begin; t < t_end; t++) {
            int ki = split_k ? t / n_tiles : t % k_tiles;
            int ni = split_k ? t % n_tiles : t / k_tiles;
            int k0 = ki * MR, n0 = ni * NR;
            int mr = K - k0 < MR ? K - k0 : MR, nr = N - n0 < NR ? N - n0 : NR;
            float *ct = w->dweight + (size_t)k0 * N + n0;
            const float *g = w->dout + (size_t)m0 * N + n0;
            int acc = m0 > 0 || w->accumulate;
            k->gemm_tile(ct, N, acc ? ct : NULL, NULL, w->inp + (size_t)m0 * K + k0, 1, K, g, N,
                         rows, mr, nr);
            if (w->dbias && k0 == 0) k->colsum(w->dbias + n0, g, N, rows, nr, acc);
        }
    }
}

void matmul_backward_weight(const ica_ctx *ctx, float *dweight, float *dbias, const float *dout,
                            const float *inp, int M, int K, int N, int accumulate) {
    /* dweight (K,N) = inp^T (K,M) @ dout (M,N); dbias (N) = sum over rows of dout.
     * Output tiles (MR rows of K x NR columns of N) are split statically over
     * threads; every thread walks M in WGRAD_CHUNK-row chunks, and each tile
     * accumulates chunk after chunk, rows in order within a chunk: an order
     * fixed by M alone. The A operand is a column block of inp (a_rs = 1,
     * a_cs = K), the B operand rows of dout: no packing. The tile range of a
     * thread runs along the smaller of K and N, so that each thread streams
     * only its part of the larger operand (inp columns when K >= N, dout
     * columns otherwise) and the smaller one whole; along N, a chunk's dout
     * panel (WGRAD_CHUNK x NR, 24 KB) stays in L1 while the k-tiles pass. */
    const wgrad_args w = {ctx->vk, dweight, dbias, dout, inp, M, K, N, accumulate, ctx->threads};
    ica_parallel_chunks(ctx, wgrad_part, &w, (size_t)ctx->threads, 1); /* one part per thread */
}

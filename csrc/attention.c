/* Multi-head self-attention, one (batch, head) pair per task; every product
 * inside a pair (Q K^T, P V and the four backward ones) is a run of the
 * library's GEMM tile over T x T and T x hs blocks that sit in L1/L2. The
 * backward pass is O(T^2 hs) per pair: dS = P * (dP - rowsum(P * dP)).
 * Causal masks skip the tiles above the diagonal.
 *
 * The probabilities P are not kept between the passes: the backward pass
 * recomputes them per pair with the same code (so bit-identical), in a
 * per-thread scratch that stays in cache. Keeping them would cost a
 * (B,H,T,T) array per layer (44 MB at the paper's size, 880 MB for 20 layers)
 * written once and read once through main memory, slower than the recompute
 * (one T x T x hs product and T rows of exp per pair). */
#include "kernels.h"

#include <math.h>

/* The T x T blocks and the transposed K / V have rows padded to TP(T) floats
 * (a multiple of every vector width), so their rows are written with whole
 * vectors: masked stores are slow on some x86 cores and stop store-to-load
 * forwarding into the next product. Padding columns hold zeros. */
#define TP(T) (((T) + 15) / 16 * 16)

/* per thread: K^T or V^T (hs, TP), P (T, TP), dS (T, TP) */
size_t attention_scratch_floats(int T, int hs, int threads) {
    size_t per_thread = (size_t)TP(T) * ((size_t)hs + 2 * (size_t)T);
    return per_thread * (size_t)(threads > 0 ? threads : 1);
}

/* The calling thread's scratch: thread `tid` of a region of `threads` threads (tid 0 when
 * the pairs run on the calling thread alone, threads == 1). */
static float *thread_scratch(float *scratch, int T, int hs, int threads) {
    int tid = 0;
#ifdef _OPENMP
    if (threads > 1) tid = omp_get_thread_num();
#endif
    ICA_ASSERT(tid < threads); /* the scratch was sized for `threads` */
    return scratch + attention_scratch_floats(T, hs, 1) * (size_t)tid;
}

/* The arguments of a forward or backward call; one (batch, head) pair per
 * chunk of ica_parallel_chunks. */
typedef struct {
    const ica_vector_kernels *k;
    float *out, *scratch; /* out: the attention output (forward) or dqkv (backward) */
    const float *qkv, *dout;
    int B, T, E, H, softmax, causal, threads;
    float *probs; /* forward: NULL, or where each pair's weights go (attention maps) */
    size_t probs_stride;
} attn_args;

/* Prefetch part `part` of `parts` of n floats at base. The (batch, head)
 * loop walks qkv one batch element (a contiguous T x 3E block) at a time, and
 * each head touches only hs columns of it at a stride: without this, the
 * first head of every batch element waits on main memory row by row. Each
 * head of element b fetches 1/H of element b + 1, spreading the requests. */
static void prefetch_part(const float *base, size_t n, int part, int parts, int write) {
    size_t begin = n * part / parts, end = n * (part + 1) / parts;
    for (size_t i = begin / 16 * 16; i < end; i += 16) {
        if (write)
            __builtin_prefetch(base + i, 1, 3);
        else
            __builtin_prefetch(base + i, 0, 3);
    }
}

/* c (T, n) = A (T, kc) @ b (kc, n; row stride ldb), A(t, p) = a[t * a_rs + p],
 * c row stride ldc. Causal: row block [t0, t0 + mr) needs only p < t0 + mr
 * (A is zero beyond the diagonal) or, with `causal_cols`, only the columns
 * < t0 + mr, rounded up to `n_align`. */
static void rows_gemm(const ica_vector_kernels *k, float *c, ptrdiff_t ldc, const float *a,
                      ptrdiff_t a_rs, const float *b, ptrdiff_t ldb, int T, int n, int kc,
                      int causal, int causal_cols, int n_align) {
    const int NR = k->gemm_nr, MR = gemm_tile_rows(k, n < NR ? n : NR);
    for (int t0 = 0; t0 < T; t0 += MR) {
        int mr = T - t0 < MR ? T - t0 : MR, reach = t0 + mr;
        int kk = causal && !causal_cols && reach < kc ? reach : kc;
        int nn = n;
        if (causal && causal_cols) {
            nn = (reach + n_align - 1) / n_align * n_align;
            if (nn > n) nn = n;
        }
        for (int n0 = 0; n0 < nn; n0 += NR)
            k->gemm_tile(c + t0 * ldc + n0, ldc, NULL, NULL, a + t0 * a_rs, a_rs, 1, b + n0, ldb,
                         kk, mr, nn - n0 < NR ? nn - n0 : NR);
    }
}

/* c (T, hs) = A^T @ b (T, hs): c[j] = sum_t A[t][j] b[t], A (T, T) with row
 * stride lda. Causal: A[t][j] = 0 for t < j, so row block [j0, ...) sums from
 * t = j0. */
static void cols_gemm(const ica_vector_kernels *k, float *c, ptrdiff_t ldc, const float *A,
                      ptrdiff_t lda, const float *b, ptrdiff_t ldb, int T, int hs, int causal) {
    const int NR = k->gemm_nr, MR = gemm_tile_rows(k, hs < NR ? hs : NR);
    for (int j0 = 0; j0 < T; j0 += MR) {
        int mr = T - j0 < MR ? T - j0 : MR, t_from = causal ? j0 : 0;
        for (int n0 = 0; n0 < hs; n0 += NR)
            k->gemm_tile(c + j0 * ldc + n0, ldc, NULL, NULL, A + t_from * lda + j0, 1, lda,
                         b + t_from * ldb + n0, ldb, T - t_from, mr, hs - n0 < NR ? hs - n0 : NR);
    }
}

/* P (T, TP) = softmax(Q K^T * scale) (or the masked scaled scores) of one
 * (batch, head); kt (hs, TP) scratch. q, key: rows of stride ld. */
static void attention_probs(const ica_vector_kernels *k, float *P, float *kt, const float *q,
                            const float *key, ptrdiff_t ld, int T, int hs, float scale, int softmax,
                            int causal) {
    const int tp = TP(T);
    k->transpose(kt, tp, key, ld, T, hs);
    rows_gemm(k, P, tp, q, ld, kt, tp, T, tp, hs, causal, 1, 16); /* visible part only */
    k->softmax_rows(P, tp, T, causal, scale, softmax);
}

/* The weights of one (batch, head) into a dense T x T block, zero where masked. */
static void keep_probs(float *dst, const float *P, int T, int causal) {
    const int tp = TP(T);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < T; j++)
            dst[(size_t)t * T + j] = causal && j > t ? 0.0f : P[(size_t)t * tp + j];
}

static void forward_pair(const void *arg, size_t bh, size_t begin, size_t count) {
    const attn_args *x = arg;
    const ica_vector_kernels *k = x->k;
    const int T = x->T, E = x->E, H = x->H, hs = E / H, row = 3 * E, tp = TP(T);
    const int b = (int)bh / H, h = (int)bh % H;
    const float scale = 1.0f / sqrtf((float)hs);
    const float *q = x->qkv + (size_t)b * T * row + h * hs, *key = q + E, *v = q + 2 * E;
    float *kt = thread_scratch(x->scratch, T, hs, x->threads), *P = kt + (size_t)hs * tp;
    (void)begin, (void)count;
    if (b + 1 < x->B) prefetch_part(x->qkv + (size_t)(b + 1) * T * row, (size_t)T * row, h, H, 0);
    attention_probs(k, P, kt, q, key, row, T, hs, scale, x->softmax, x->causal);
    if (x->probs)
        keep_probs(x->probs + (size_t)b * x->probs_stride + (size_t)h * T * T, P, T, x->causal);
    /* O = P V (T, hs) into the head's columns of out */
    rows_gemm(k, x->out + (size_t)b * T * E + h * hs, E, P, tp, v, row, T, hs, T, x->causal, 0, 1);
}

void attention_forward(const ica_ctx *ctx, float *out, float *scratch, const float *qkv, int B,
                       int T, int E, int H, int softmax, int causal, float *probs,
                       size_t probs_stride) {
    /* qkv (B,T,3E) -> out (B,T,E) */
    const attn_args x = {.k = ctx->vk, .out = out, .scratch = scratch, .qkv = qkv, .B = B,
                         .T = T, .E = E, .H = H, .softmax = softmax, .causal = causal,
                         .threads = ctx->threads, .probs = probs, .probs_stride = probs_stride};
    ica_parallel_chunks(ctx, forward_pair, &x, (size_t)B * H, 1);
}

static void backward_pair(const void *arg, size_t bh, size_t begin, size_t count) {
    const attn_args *x = arg;
    const ica_vector_kernels *k = x->k;
    const int T = x->T, E = x->E, H = x->H, hs = E / H, row = 3 * E, tp = TP(T);
    const int b = (int)bh / H, h = (int)bh % H, causal = x->causal;
    const float scale = 1.0f / sqrtf((float)hs);
    const float *q = x->qkv + (size_t)b * T * row + h * hs, *key = q + E, *v = q + 2 * E;
    const float *dO = x->dout + (size_t)b * T * E + h * hs;
    float *dq = x->out + (size_t)b * T * row + h * hs, *dk = dq + E, *dv = dq + 2 * E;
    float *xt = thread_scratch(x->scratch, T, hs, x->threads), *P = xt + (size_t)hs * tp;
    float *dS = P + (size_t)T * tp;
    (void)begin, (void)count;
    if (b + 1 < x->B) {
        prefetch_part(x->qkv + (size_t)(b + 1) * T * row, (size_t)T * row, h, H, 0);
        prefetch_part(x->dout + (size_t)(b + 1) * T * E, (size_t)T * E, h, H, 0);
        prefetch_part(x->out + (size_t)(b + 1) * T * row, (size_t)T * row, h, H, 1);
    }
    attention_probs(k, P, xt, q, key, row, T, hs, scale, x->softmax, causal);
    /* dP = dO V^T (T, TP), then dS = scale * softmax backward, in place */
    k->transpose(xt, tp, v, row, T, hs);
    rows_gemm(k, dS, tp, dO, E, xt, tp, T, tp, hs, causal, 1, 16);
    k->softmax_backward_rows(dS, P, tp, T, causal, scale, x->softmax);
    cols_gemm(k, dv, row, P, tp, dO, E, T, hs, causal);              /* dV = P^T dO */
    rows_gemm(k, dq, row, dS, tp, key, row, T, hs, T, causal, 0, 1); /* dQ = dS K */
    cols_gemm(k, dk, row, dS, tp, q, row, T, hs, causal);            /* dK = dS^T Q */
}

void attention_backward(const ica_ctx *ctx, float *dqkv, float *scratch, const float *dout,
                        const float *qkv, int B, int T, int E, int H, int softmax, int causal) {
    /* dout (B,T,E) -> dqkv (B,T,3E), overwritten */
    const attn_args x = {.k = ctx->vk, .out = dqkv, .scratch = scratch, .qkv = qkv, .dout = dout,
                         .B = B, .T = T, .E = E, .H = H, .softmax = softmax, .causal = causal,
                         .threads = ctx->threads};
    ica_parallel_chunks(ctx, backward_pair, &x, (size_t)B * H, 1);
}

/*
 * Internal declarations shared by the kernel files. Not installed; the public
 * surface is icalign.h. Shapes are given in each comment; every buffer is
 * owned by the caller (the model's arenas), kernels never allocate.
 */
#ifndef ICALIGN_KERNELS_H
#define ICALIGN_KERNELS_H

#include "icalign.h"

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Argument order, for the internal functions as for icalign.h: the context
 * (or the object acted on), outputs (buffers written or updated in place),
 * scratch, inputs, weights, sizes, options. A row stride follows the pointer
 * it belongs to. */

/* ---------------------------------------------------------------- common */

/* Record a formatted message for ica_last_error() and return code. */
ica_status ica_fail(ica_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Report an internal invariant that does not hold, and abort: for states no
 * input can reach (a bug in the library), never for bad input. */
_Noreturn void ica_internal_error(const char *file, int line, const char *what);
#define ICA_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) ica_internal_error(__FILE__, __LINE__, #cond);                                \
    } while (0)

/* 64-byte aligned, zero-filled allocation; NULL on failure. */
void *ica_calloc_aligned(size_t bytes);
void ica_free_aligned(void *ptr);

/* Index of the first non-finite value in x[0..n), or -1. It tests the
 * exponent bits, not x != x, so -ffast-math cannot fold it away. */
ptrdiff_t ica_find_nonfinite(const float *x, size_t n);
/* x is neither NaN nor infinite (by its bits, as ica_find_nonfinite). */
static inline int ica_is_finite(float x) { return ica_find_nonfinite(&x, 1) < 0; }
/* ICA_OK, or ICA_ERR_NONFINITE naming array `name` and the first bad index. */
ica_status ica_check_finite(const char *name, const float *x, size_t n);

/* The size checks of the public calls, made before anything is allocated:
 * *count = a * b * c elements of buffer `what`, or ICA_ERR_NOMEM naming it
 * when that exceeds ICA_MAX_ELEMENTS (no machine holds 2^48 floats). Every
 * scratch size is a checked buffer size times a small factor (< 2^15), so
 * it cannot overflow 64 bits either. */
#define ICA_MAX_ELEMENTS ((size_t)1 << 48)
ica_status ica_check_size(size_t *count, const char *what, size_t a, size_t b, size_t c);

typedef enum { ICA_SIMD_SCALAR = 0, ICA_SIMD_AVX2 = 1, ICA_SIMD_AVX512 = 2 } ica_simd_level;
ica_simd_level ica_simd(void);

/* ------------------------------------------------------- vector kernels */

/* x86-64 with GCC or clang: the AVX2 and AVX-512 kernels are compiled (with
 * target pragmas, so the build stays portable) and chosen at run time. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define ICA_X86_DISPATCH 1
#else
#define ICA_X86_DISPATCH 0
#endif

/* Lanes of the PL kernel: one sequence per double lane (8 on AVX-512). The
 * loss scratch is sized for this many lanes whatever the dispatch path. */
#define ICA_MAX_PL_LANES 8

/* The single-threaded inner kernels of one dispatch path, written once in
 * simd_kernels.h (see there for the exact contracts) and compiled per ISA by
 * simd_avx512.c, simd_avx2.c, simd_scalar.c. The drivers below split work over
 * threads and reach them through the call's context (ctx->vk).
 *
 * Finding a definition: kernel NAME of this table, and vector primitive NAME
 * (vadd, vfma, vd_load, ...), are each defined once as ISA(NAME), the kernels
 * in simd_kernels.h and the primitives in simd.h; the compiled symbols are
 * NAME_avx512, NAME_avx2 and NAME_scalar. Grep for "ISA(NAME)". */
typedef struct {
    const char *name;
    int gemm_mr, gemm_nr;  /* register tile: rows x columns */
    int gemm_vw, gemm_mr1; /* a tile of nr <= gemm_vw columns takes up to gemm_mr1 rows */
    /* c (mr,nr; row stride ldc) = [cin] + [bias] + sum_p A(i,p) b[p*ldb + j],
     * A(i,p) = a[i*a_rs + p*a_cs], mr <= gemm_tile_rows(nr); cin (row stride
     * ldc) may be c */
    void (*gemm_tile)(float *c, ptrdiff_t ldc, const float *cin, const float *bias, const float *a,
                      ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b, ptrdiff_t ldb, int kc, int mr,
                      int nr);
    /* sum (n <= gemm_nr) [+]= column sums of x (rows, n; row stride ld) */
    void (*colsum)(float *sum, const float *x, ptrdiff_t ld, int rows, int n, int accumulate);
    /* xt (hs, ldt) = transpose of T rows x + t*ld of hs floats; columns
     * T..ldt of xt zeroed; ldt a multiple of 16 */
    void (*transpose)(float *xt, int ldt, const float *x, ptrdiff_t ld, int T, int hs);
    /* T rows of stride ld (a multiple of 16), row t visible up to causal ? t+1 : T:
     * P = softmax(scale * scores) or scale * scores (linear), 0 past visible;
     * dS = scale * (P * (dP - rowsum(P * dP)) or dP), in place on dP */
    void (*softmax_rows)(float *P, int ld, int T, int causal, float scale, int softmax);
    void (*softmax_backward_rows)(float *dS, const float *P, int ld, int T, int causal, float scale,
                                  int softmax);
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int rows, int C, float eps);
    void (*layernorm_apply)(float *out, const float *inp, const float *mean, const float *rstd,
                            const float *w, const float *b, int rows, int C);
    void (*layernorm_backward)(float *dinp, float *pw, float *pb, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               const float *w, int rows, int C);
    void (*gelu_forward)(float *out, const float *inp, size_t n);
    void (*gelu_forward_grad)(float *out, float *grad, const float *inp, size_t n);
    void (*mul_inplace)(float *x, const float *y, size_t n);
    /* params, m, v updated from grads */
    void (*adam)(float *params, float *m, float *v, const float *grads, size_t n, float beta1,
                 float beta2, float eps, float step_size, float bc2_sqrt);
    /* PL loss, cosine reward, for pl_lanes (<= ICA_MAX_PL_LANES) sequences at
     * once (losses.c) */
    int pl_lanes;
    void (*pl_cosine_lanes)(double *loss, float *dpred, double *work, const float *pred,
                            const float *ys, const float *rs, int nseq, int N, int d, double scale);
} ica_vector_kernels;

/* Rows of a GEMM tile of nr columns (the most gemm_tile takes). */
static inline int gemm_tile_rows(const ica_vector_kernels *k, int nr) {
    return nr <= k->gemm_vw ? k->gemm_mr1 : k->gemm_mr;
}

extern const ica_vector_kernels ica_vk_scalar;
#if ICA_X86_DISPATCH
extern const ica_vector_kernels ica_vk_avx2, ica_vk_avx512;
#endif

/* ------------------------------------------------------------- context */

/* What a public call reads of the process-wide settings, read once at its
 * start and passed down to every driver: the kernel table of the dispatch
 * path and the number of threads of every parallel region, and of the
 * per-thread workspaces. Changing ica_set_simd_path or ica_set_num_threads
 * from another thread does not reach a call in progress. */
typedef struct {
    const ica_vector_kernels *vk;
    int threads; /* >= 1 */
} ica_ctx;

/* The context of a call starting now. */
ica_ctx ica_ctx_begin(void);
/* The same kernels on the calling thread alone: what a thread of a parallel
 * region passes to the kernels it runs on its own share of the work. */
ica_ctx ica_ctx_serial(const ica_ctx *ctx);

/* The element-chunk driver: fn(arg, index, begin, count) for the chunks
 * [begin, begin + count) of n items cut every `chunk` items (chunk `index`
 * starts at index * chunk), handed to ctx->threads threads statically. With
 * one thread the chunks run in order on the calling thread, with no parallel
 * region: the model's chunk loops call the kernels ~20 times per chunk and
 * layer, and a nested region costs about a microsecond each. */
typedef void (*ica_chunk_fn)(const void *arg, size_t index, size_t begin, size_t count);
void ica_parallel_chunks(const ica_ctx *ctx, ica_chunk_fn fn, const void *arg, size_t n,
                         size_t chunk);

/* Elementwise kernels split n floats into chunks of this many (a multiple of
 * every vector width), handed to threads statically. */
#define ICA_ELEMENT_CHUNK 4096

/* ------------------------------------------------------------------ rng */

/* Philox4x32-10: a counter-based generator. A stream is (key, stream id);
 * draws are a pure function of (key, stream id, position), so any sequence
 * can be regenerated alone, on any thread. */
typedef struct {
    uint32_t key[2];
    uint32_t counter[4];
    uint32_t block[4];
    int used; /* how many words of block are consumed */
} rng_stream;

/* Domains keep the streams of different consumers apart under one seed. */
enum { RNG_DOMAIN_INIT = 1, RNG_DOMAIN_TASK = 2, RNG_DOMAIN_GD = 3 };

void rng_init(rng_stream *rng, uint64_t seed, uint32_t domain, uint64_t stream);
uint32_t rng_u32(rng_stream *rng);
double rng_uniform(rng_stream *rng); /* [0, 1), 53 bits */
double rng_normal(rng_stream *rng);  /* N(0, 1), Box-Muller, one value per call */

/* --------------------------------------------------------------- matmul */

/* out (M,N) = inp (M,K) @ weight (K,N) + bias (N) [+ residual (M,N)]: bias and
 * residual may be NULL, residual may be out itself (the residual add of a
 * block fused into its projection). Overwrites out. */
void matmul_forward(const ica_ctx *ctx, float *out, const float *inp, const float *residual,
                    const float *weight, const float *bias, int M, int K, int N);
/* weight_t (N,K) = weight (K,N)^T: the B operand of matmul_backward_input,
 * packed once per step and layer. */
void matmul_transpose(const ica_ctx *ctx, float *weight_t, const float *weight, int K, int N);
/* dinp (M,K) = dout (M,N) @ weight^T, from weight_t (N,K) (overwrites); with
 * scale (M,K) not NULL, dinp is then multiplied by it elementwise (the GELU
 * derivative, applied while the block is in cache). */
void matmul_backward_input(const ica_ctx *ctx, float *dinp, const float *dout, const float *scale,
                           const float *weight_t, int M, int K, int N);
/* dweight (K,N) [+]= inp^T @ dout; dbias (N) [+]= column sums of dout (may be
 * NULL); accumulate = 0 overwrites. Each output is summed over M in one fixed
 * order (chunks of rows, rows in order), then added to the old value. */
void matmul_backward_weight(const ica_ctx *ctx, float *dweight, float *dbias, const float *dout,
                            const float *inp, int M, int K, int N, int accumulate);

/* ------------------------------------------------------------ layernorm */

/* Rows needed for the chunk partials of layernorm_backward: 2*C floats per
 * LN_CHUNK rows. */
#define LN_CHUNK 64
size_t layernorm_scratch_floats(int rows, int C);

/* out (rows,C) = (inp - mean) * rstd * weight + bias; saves mean, rstd (rows).
 * affine: out = inp * weight + bias (mean 0, rstd 1 saved). */
void layernorm_forward(const ica_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int C, int affine);
/* Recompute out from inp and the saved statistics, bit-identical to forward. */
void layernorm_apply(const ica_ctx *ctx, float *out, const float *inp, const float *mean,
                     const float *rstd, const float *weight, const float *bias, int rows, int C);
/* dinp (rows,C) += LN backward of dout; dweight, dbias (C) [+]= their
 * gradients (accumulate = 0 overwrites). scratch: layernorm_scratch_floats(rows,
 * C) floats. affine: the backward of out = inp * weight + bias. */
void layernorm_backward(const ica_ctx *ctx, float *dinp, float *dweight, float *dbias,
                        float *scratch, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int rows, int C, int accumulate,
                        int affine);

/* ------------------------------------------------------------ attention */

/* Per-thread scratch of the attention kernels (K^T or V^T and two T x T
 * blocks per (batch, head) in flight), for `threads` threads. */
size_t attention_scratch_floats(int T, int hs, int threads);

/* qkv (B,T,3E) -> out (B,T,E). Softmax attention, or (softmax == 0) the
 * masked scaled scores times v. scratch: attention_scratch_floats(T, E/H,
 * ctx->threads). probs (or NULL) receives each (batch b, head h)'s weights as
 * a T x T block at probs + b * probs_stride + h * T * T (zero where masked). */
void attention_forward(const ica_ctx *ctx, float *out, float *scratch, const float *qkv, int B,
                       int T, int E, int H, int softmax, int causal, float *probs,
                       size_t probs_stride);
/* dqkv (B,T,3E) overwritten from dout (B,T,E); the probabilities are
 * recomputed from qkv, bit-identical to the forward pass. O(T^2 hs) per
 * (batch, head). */
void attention_backward(const ica_ctx *ctx, float *dqkv, float *scratch, const float *dout,
                        const float *qkv, int B, int T, int E, int H, int softmax, int causal);

/* ------------------------------------------------------------------ mlp */

/* GELU, tanh approximation (GPT-2): out (n) = gelu(inp). */
void gelu_forward(const ica_ctx *ctx, float *out, const float *inp, size_t n);
/* out (n) = gelu(inp), grad (n) = gelu'(inp). */
void gelu_forward_grad(const ica_ctx *ctx, float *out, float *grad, const float *inp, size_t n);

/* --------------------------------------------------------------- losses */

/* Loss of ONE prediction yhat (d) against k (response, shown reward) pairs:
 * response i is row i of ys (rows of d floats) and order[0..k) holds the pair
 * indices sorted best first (see rank_insert). Adds scale * dloss/dyhat into
 * dyhat (d doubles); returns the loss. work: 2*k doubles. */
double prefix_loss(double *dyhat, double *work, const double *yhat, const float *ys,
                   const int *order, int k, int d, ica_objective objective, ica_reward reward,
                   double scale);

/* The batch objective of ica_sequence_loss with caller-owned scratch:
 * per_sequence (B) doubles, int_scratch (B*N) ints, dbl_scratch doubles;
 * sequence_loss_scratch_doubles() counts per_sequence and dbl_scratch together.
 * loss is the batch mean; dpred (B,N,d) overwritten. PL with cosine reward (the
 * training objective) runs ctx->vk->pl_cosine_lanes, several sequences per
 * vector; the other objectives the scalar prefix_loss. */
void sequence_loss_batch(const ica_ctx *ctx, double *loss, float *dpred, double *per_sequence,
                         int *int_scratch, double *dbl_scratch, const float *pred, const float *ys,
                         const float *rs, int B, int N, int d, ica_objective objective,
                         ica_reward reward);
size_t sequence_loss_scratch_doubles(int B, int N, int d);

/* ICA_OK, or ICA_ERR_ARGUMENT naming the values when objective or reward is
 * not one of the enums': the one check of every entry point that takes them. */
ica_status ica_check_objective(ica_objective objective, ica_reward reward);

/* Insert pair index k into order[0..k) (sorted by rs descending, ties by
 * index ascending): incremental sorting of growing prefixes. */
void rank_insert(int *order, const float *rs, int k);

/* ----------------------------------------------------------------- adam */

/* Bias-corrected Adam, PyTorch formula; step is the 1-based step count.
 * params, m and v are updated from grads. */
void adam_update(const ica_ctx *ctx, float *params, float *m, float *v, const float *grads,
                 size_t n, float lr, float beta1, float beta2, float eps, int64_t step);
/* The first index whose parameter or moments adam_update (same arguments)
 * would make non-finite, or n if none: checked before the update, so that a
 * diverging step leaves the model as it was. */
size_t adam_first_nonfinite(const ica_ctx *ctx, const float *params, const float *m, const float *v,
                            const float *grads, size_t n, float lr, float beta1, float beta2,
                            float eps, int64_t step);

#endif /* ICALIGN_KERNELS_H */

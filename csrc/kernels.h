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

/* ---------------------------------------------------------------- common */

/* Record a formatted message for ica_last_error() and return code. */
ica_status ica_fail(ica_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Threads for the next parallel region (ica_set_num_threads or OpenMP default). */
int ica_threads(void);

/* 64-byte aligned, zero-filled allocation; NULL on failure. */
void *ica_calloc_aligned(size_t bytes);
void ica_free_aligned(void *ptr);

/* Index of the first non-finite value in x[0..n), or -1. */
ptrdiff_t ica_find_nonfinite(const float *x, size_t n);

typedef enum { ICA_SIMD_SCALAR = 0, ICA_SIMD_AVX2 = 1, ICA_SIMD_AVX512 = 2 } ica_simd_level;
ica_simd_level ica_simd(void);

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

/* out (M,N) = inp (M,K) @ weight (K,N) + bias (N); bias may be NULL. */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int M, int K, int N);
/* dinp (M,K) = dout (M,N) @ weight^T (overwrites). */
void matmul_backward_input(float *dinp, const float *dout, const float *weight, int M, int K,
                           int N);
/* dweight (K,N) = inp^T @ dout; dbias (N) = column sums of dout (may be NULL).
 * Overwrites: every weight is used once per step, so no zeroing pass is needed. */
void matmul_backward_weight(float *dweight, float *dbias, const float *dout, const float *inp,
                            int M, int K, int N);

/* ------------------------------------------------------------ layernorm */

/* Rows needed for the chunk partials of layernorm_backward: 2*C floats per
 * LN_CHUNK rows. */
#define LN_CHUNK 64
size_t layernorm_scratch_floats(int rows, int C);

/* out (rows,C) = (inp - mean) * rstd * weight + bias; saves mean, rstd (rows). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int C);
/* Recompute out from inp and the saved statistics, bit-identical to forward. */
void layernorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                     const float *weight, const float *bias, int rows, int C);
/* dinp (rows,C) += LN backward of dout; dweight, dbias (C) overwritten.
 * scratch: layernorm_scratch_floats(rows, C) floats. */
void layernorm_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                        const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int rows, int C);

/* ------------------------------------------------------------ attention */

/* qkv (B,T,3E) -> out (B,T,E); att (B,H,T,T) saves the softmax probabilities
 * (softmax) or the masked scaled scores (linear attention). Masked entries
 * are stored as 0. */
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int E, int H,
                       int softmax, int causal);
/* dqkv (B,T,3E) overwritten from dout (B,T,E); datt (B,H,T,T) is scratch. */
void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                        const float *att, int B, int T, int E, int H, int softmax,
                        int causal);

/* ------------------------------------------------------------------ mlp */

/* GELU, tanh approximation (GPT-2). */
void gelu_forward(float *out, const float *inp, size_t n);
/* dinout (n) = dinout * gelu'(inp): in place on the incoming gradient. */
void gelu_backward_inplace(float *dinout, const float *inp, size_t n);
/* out = a + b, elementwise (out may alias a). */
void residual_forward(float *out, const float *a, const float *b, size_t n);

/* --------------------------------------------------------------- losses */

/* Loss of ONE prediction yhat (d) against k (response, shown reward) pairs:
 * response i is row i of ys (rows of d floats) and order[0..k) holds the pair
 * indices sorted best first (see rank_insert). Adds scale * dloss/dyhat into
 * dyhat (d doubles); returns the loss. work: 2*k doubles. */
double prefix_loss(const float *yhat, const float *ys, const int *order, int k, int d,
                   ica_objective objective, ica_reward reward, double scale, double *dyhat,
                   double *work);

/* The batch objective of ica_sequence_loss with caller-owned scratch:
 * per_sequence (B) doubles, int_scratch (B*N) ints, dbl_scratch
 * (B*(2N+d)) doubles; sequence_loss_scratch_doubles() counts both double
 * buffers together. loss is the batch mean; dpred (B,N,d) overwritten. */
void sequence_loss_batch(const float *pred, const float *ys, const float *rs, int B, int N,
                         int d, ica_objective objective, ica_reward reward, double *loss,
                         float *dpred, double *per_sequence, int *int_scratch,
                         double *dbl_scratch);
size_t sequence_loss_scratch_doubles(int B, int N, int d);

/* Insert pair index k into order[0..k) (sorted by rs descending, ties by
 * index ascending): incremental sorting of growing prefixes. */
void rank_insert(int *order, int k, const float *rs);

/* ----------------------------------------------------------------- adam */

/* Bias-corrected Adam, PyTorch formula; step is the 1-based step count. */
void adam_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t step);

#endif /* ICALIGN_KERNELS_H */

/*
 * icalign: the C core of the in-context alignment package.
 *
 * A GPT-2 (pre-LN) transformer over (query, response, reward) triplets, the
 * ranking losses of in-context alignment (Plackett-Luce, Bradley-Terry), Adam,
 * the synthetic task sampler and the per-task baselines. The mathematics and
 * the parameter names are those of docs/math.md; this header is the whole public
 * surface of the library. Every function that can fail returns an ica_status
 * and leaves a message for ica_last_error().
 *
 * Conventions: float32 everywhere in memory, row-major, dense weights stored
 * (in, out) so that y = x @ W + b. Arrays are (B, N, d) for a batch of B
 * sequences of N examples with d-dimensional queries/responses.
 *
 * Argument order (as llm.c): the object acted on (a model) first, then the
 * outputs (buffers the call writes, or updates in place), then the inputs,
 * then weights, then sizes (dimensions and counts), then options (modes,
 * hyperparameters, seeds). The internal functions of kernels.h follow the
 * same order, with the call context first and scratch after the outputs.
 *
 * Validation happens here, once: every public call checks its sizes (their
 * products included, before it allocates anything), its options and the
 * finiteness of its float inputs, and returns a status naming the argument.
 *
 * Threads and dispatch: a call reads the thread count and the SIMD path once,
 * when it starts; changing either from another thread affects later calls
 * only. Different models may be used from different threads at once; one
 * model runs one call at a time.
 *
 * Determinism: every reduction runs in an order fixed by the problem shape,
 * never by the thread count, so results are bit-identical on 1 or 64 threads.
 */
#ifndef ICALIGN_H
#define ICALIGN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ICA_OK = 0,
    ICA_ERR_ARGUMENT = 1,  /* a size, flag or mode is out of range */
    ICA_ERR_NONFINITE = 2, /* an input holds NaN or infinity */
    ICA_ERR_NOMEM = 3,     /* allocation failed */
    ICA_ERR_NUMERIC = 4,   /* a result became NaN or infinity (divergence) */
} ica_status;

/* Message describing the most recent failure on this thread. */
const char *ica_last_error(void);

typedef enum { ICA_OBJECTIVE_PL = 0, ICA_OBJECTIVE_BT = 1 } ica_objective;
typedef enum { ICA_REWARD_COSINE = 0, ICA_REWARD_NEG_SQ = 1 } ica_reward;

/* ---------------------------------------------------------------- threads */

void ica_set_num_threads(int n); /* n <= 0 restores the OpenMP default */
int ica_get_num_threads(void);
int ica_has_openmp(void);

/* Vector code path: "avx512", "avx2" or "scalar". The best one the CPU
 * supports is chosen at load time (environment variable ICALIGN_SIMD can
 * force a lower one); ica_set_simd_path changes it at run time. */
const char *ica_simd_path(void);
ica_status ica_set_simd_path(const char *name);

/* ------------------------------------------------------------------ model */

typedef struct {
    int n_dims;      /* d: width of queries, responses and reward tokens */
    int n_points;    /* N: maximum number of examples; T = 3 N tokens */
    int n_embd;      /* E */
    int n_layer;     /* L */
    int n_head;      /* H, divides E */
    int softmax;     /* 1: softmax attention, 0: linear attention */
    int ffn;         /* 1: blocks have LayerNorm + GELU MLP after attention */
    int causal;      /* 1: causal mask */
    int reward_head; /* 1: extra read-out at the y-tokens predicting the shown reward */
    int ln_affine;   /* 1: every LayerNorm is only its affine map x * weight + bias (no
                      * centring or scaling; the hand-built models of icalign.theory);
                      * 0 (the default): LayerNorm */
} ica_config;

typedef struct ica_model ica_model;

ica_status ica_config_check(const ica_config *cfg);

/* GPT-2 initialisation from a counter-based RNG keyed by seed. */
ica_status ica_model_create(ica_model **out, const ica_config *cfg, uint64_t seed);
void ica_model_free(ica_model *model);
/* The accessors below take a model returned by ica_model_create, never NULL;
 * the calls returning ica_status refuse a NULL model with ICA_ERR_ARGUMENT. */
const ica_config *ica_model_config(const ica_model *model);

/* The parameter table, in model order (read-in, position embedding, the
 * blocks, final LayerNorm, read-outs). Tensor i lives at
 * params[offset .. offset + numel) of the arena; offsets are 64-byte aligned. */
int ica_model_num_tensors(const ica_model *model);
ica_status ica_model_tensor_info(const ica_model *model, const char **name, int *ndim, int shape[2],
                                 size_t *offset, int index);
size_t ica_model_arena_size(const ica_model *model); /* floats per arena slice */
float *ica_model_params(ica_model *model);
float *ica_model_grads(ica_model *model);
float *ica_model_adam_m(ica_model *model);
float *ica_model_adam_v(ica_model *model);
int64_t ica_model_adam_steps(const ica_model *model);
void ica_model_set_adam_steps(ica_model *model, int64_t steps);

/* pred (B, N, d); rhat (B, N) or NULL (only with reward_head). N <= n_points.
 * The batch arena grows to the largest B seen and is reused afterwards. */
ica_status ica_model_forward(ica_model *model, float *pred, float *rhat, const float *xs,
                             const float *ys, const float *rs, int B, int N);

/* The attention weights of the forward pass, probs (B, L, H, T, T) with T = 3N:
 * row t of block (b, l, h) is the softmax over the keys of query t (the masked
 * scaled scores with linear attention), zero where the causal mask hides a key. */
ica_status ica_model_attention_maps(ica_model *model, float *probs, const float *xs,
                                    const float *ys, const float *rs, int B, int N);

/* Forward, alignment loss (+ reward_weight * reward-head MSE), backward; the
 * gradient lands in ica_model_grads(). Needs N >= 3. */
ica_status ica_model_loss_and_grad(ica_model *model, float *loss, const float *xs, const float *ys,
                                   const float *rs, int B, int N, ica_objective objective,
                                   ica_reward reward, float reward_weight);

/* One bias-corrected Adam update (no weight decay) from the stored gradient. */
ica_status ica_model_adam_update(ica_model *model, float lr, float beta1, float beta2, float eps);

/* loss_and_grad followed by adam_update: one training step, no allocation. */
ica_status ica_model_step(ica_model *model, float *loss, const float *xs, const float *ys,
                          const float *rs, int B, int N, ica_objective objective, ica_reward reward,
                          float reward_weight, float lr);

/* ----------------------------------------------------------------- losses */

/* The training objective (docs/math.md, "Losses") over a batch: for n = 2..N-1 the
 * prediction pred[b, n] is scored against pairs 0..n-1; mean over n, then b.
 * dpred (B, N, d) receives the exact gradient (zero at n < 2). */
ica_status ica_sequence_loss(float *loss, float *dpred, const float *pred, const float *ys,
                             const float *rs, int B, int N, int d, ica_objective objective,
                             ica_reward reward);

/* ------------------------------------------------------------ task sampler */

/* B sequences of the mixed linear alignment task (docs/math.md, "The task"). Sequence b
 * is drawn from the stream (seed, offset + b) alone, so a batch is the same
 * whatever the thread count or the way it is split. With probability
 * reward_noise a shown reward is replaced by a fresh U(0,1) draw; the true
 * mixing weights stay in rs_true. Shapes: xs, ys (B,N,d); rs, rs_true (B,N);
 * ystar, eps (B,d). */
ica_status ica_sample_tasks(float *xs, float *ys, float *rs, float *rs_true, float *ystar,
                            float *eps, int B, int N, int d, uint64_t seed, uint64_t offset,
                            double reward_noise);

/* -------------------------------------------------------------- baselines */

/* GD baseline (docs/math.md, "Baselines"): for every task b and every t in t_values, a
 * bias-free linear map W (d x d), initialised U(-1/sqrt d, 1/sqrt d) from the
 * stream (seed, b, t), is fitted by Adam on the objective (PL or BT with
 * cosine or neg_sq reward; the published baseline is PL with cosine) over
 * examples 0..t-1; out[b, i] = x_b W. out (B, n_t, d). */
ica_status ica_gd_baseline(float *out, const float *xs, const float *ys, const float *rs,
                           const int *t_values, int B, int N, int d, int n_t, int steps, float lr,
                           uint64_t seed, ica_objective objective, ica_reward reward);

/* Surrogate optimum: for every task b and t in t_values, the prediction that
 * minimises the objective over examples 0..t-1, found by Adam directly on the
 * prediction (baselines.c states the variable, the start, the optimiser and
 * the convergence test). out (B, n_t, d) the prediction; grad_norm (B, n_t)
 * the final scale-free gradient of log L (converged where <= tol); steps
 * (B, n_t) the updates made (max_steps where not converged). */
ica_status ica_surrogate_optimum(float *out, float *grad_norm, int *steps, const float *ys,
                                 const float *rs, const int *t_values, int B, int N, int d, int n_t,
                                 ica_objective objective, ica_reward reward, int max_steps,
                                 float lr, float tol);

typedef enum {
    ICA_BASELINE_MEAN = 0,     /* mean of the t responses */
    ICA_BASELINE_BEST = 1,     /* response with the highest shown reward (first on ties) */
    ICA_BASELINE_WEIGHTED = 2, /* softmax(r / temperature)-weighted mean */
    ICA_BASELINE_ORACLE = 3,   /* least-squares y* of y_i = r_i y* + (1 - r_i) eps */
} ica_baseline;

/* out (B, n_t, d): the baseline's answer from examples 0..t-1 of each task. */
ica_status ica_simple_baseline(float *out, const float *ys, const float *rs, const int *t_values,
                               int B, int N, int d, int n_t, ica_baseline kind, float temperature);

#ifdef __cplusplus
}
#endif

#endif /* ICALIGN_H */

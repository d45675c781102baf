/* Ranking losses of in-context alignment (docs/math.md, "Losses and their
 * gradients"), in double precision.
 *
 * Pairs are ranked by shown reward, best first, ties by index. The prefixes of
 * a sequence grow one pair at a time, so each prefix is ranked by inserting
 * its newest pair into the previous order (O(k) per prefix). Plackett-Luce
 * then costs O(k): suffix log-sum-exps and, for the gradient, a running
 * log-sum in log space, so neither overflows for neg_sq scores of any size:
 *   dL/ds_j = sum_{i<=j} exp(s_j - lse_i) - 1 = exp(s_j + A_j) - 1,
 *   A_j = log sum_{i<=j} exp(-lse_i).
 * Bradley-Terry is a mean over the k(k-1)/2 ordered pairs, O(k^2) (k <= N). */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

#define NORM_EPS 1e-8 /* cosine: each norm is clamped below at this value */

static double logaddexp(double a, double b) {
    double hi = a > b ? a : b, lo = a > b ? b : a;
    if (hi == -INFINITY) return -INFINITY;
    return hi + log1p(exp(lo - hi));
}

static double norm_of(const float *x, int d) {
    double sq = 0.0;
    for (int i = 0; i < d; i++) sq += (double)x[i] * x[i];
    return sqrt(sq);
}

static double norm_of_double(const double *x, int d) {
    double sq = 0.0;
    for (int i = 0; i < d; i++) sq += x[i] * x[i];
    return sqrt(sq);
}

ica_status ica_check_objective(ica_objective objective, ica_reward reward) {
    if ((unsigned)objective > ICA_OBJECTIVE_BT || (unsigned)reward > ICA_REWARD_NEG_SQ)
        return ica_fail(ICA_ERR_ARGUMENT, "unknown objective %d or reward %d", (int)objective,
                        (int)reward);
    return ICA_OK;
}

void rank_insert(int *order, const float *rs, int k) {
    /* order[0..k) is sorted; the new index k goes after every pair whose
     * reward is >= its own (stable by index). */
    int pos = k;
    while (pos > 0 && rs[order[pos - 1]] < rs[k]) {
        order[pos] = order[pos - 1];
        pos--;
    }
    order[pos] = k;
}

double prefix_loss(double *dyhat, double *work, const double *yhat, const float *ys,
                   const int *order, int k, int d, ica_objective objective, ica_reward reward,
                   double scale) {
    double *s = work, *g = work + k;
    double yhat_norm = norm_of_double(yhat, d), na = yhat_norm > NORM_EPS ? yhat_norm : NORM_EPS;
    for (int j = 0; j < k; j++) {
        const float *y = ys + (size_t)order[j] * d;
        if (reward == ICA_REWARD_COSINE) {
            double dot = 0.0, nb = norm_of(y, d);
            for (int i = 0; i < d; i++) dot += yhat[i] * y[i];
            s[j] = dot / (na * (nb > NORM_EPS ? nb : NORM_EPS));
        } else {
            double sq = 0.0;
            for (int i = 0; i < d; i++) {
                double diff = yhat[i] - y[i];
                sq += diff * diff;
            }
            s[j] = -sq;
        }
    }

    double loss = 0.0;
    if (objective == ICA_OBJECTIVE_PL) {
        /* g holds the suffix log-sum-exps first, then the gradient. */
        double lse = -INFINITY;
        for (int i = k - 1; i >= 0; i--) {
            lse = logaddexp(s[i], lse);
            g[i] = lse;
            loss += lse - s[i];
        }
        double running = -INFINITY;
        for (int j = 0; j < k; j++) {
            running = logaddexp(running, -g[j]);
            g[j] = exp(s[j] + running) - 1.0;
        }
    } else {
        for (int j = 0; j < k; j++) g[j] = 0.0;
        if (k >= 2) {
            double inv_pairs = 2.0 / ((double)k * (k - 1));
            for (int i = 0; i < k; i++)
                for (int j = i + 1; j < k; j++) {
                    double z = s[j] - s[i]; /* -log sigmoid(s_i - s_j) = softplus(z) */
                    loss += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) * inv_pairs;
                    double sig = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
                    g[i] -= sig * inv_pairs;
                    g[j] += sig * inv_pairs;
                }
        }
    }

    for (int j = 0; j < k; j++) {
        const float *y = ys + (size_t)order[j] * d;
        double gj = g[j] * scale;
        if (reward == ICA_REWARD_COSINE) {
            double nb = norm_of(y, d);
            double inv = 1.0 / (na * (nb > NORM_EPS ? nb : NORM_EPS));
            /* the clamped norm is constant: only then does cos lose its ŷ term */
            double radial = yhat_norm > NORM_EPS ? s[j] / (na * na) : 0.0;
            for (int i = 0; i < d; i++) dyhat[i] += gj * (y[i] * inv - radial * yhat[i]);
        } else {
            for (int i = 0; i < d; i++) dyhat[i] += gj * -2.0 * (yhat[i] - y[i]);
        }
    }
    return loss;
}

/* Scratch per sequence: N ints of order, 2N + 2d doubles. */
static double sequence_loss_one(float *dpred, int *order, double *work, const float *pred,
                                const float *ys, const float *rs, int N, int d,
                                ica_objective objective, ica_reward reward, double scale) {
    double *dy = work + 2 * N, *yhat = dy + d, loss = 0.0;
    rank_insert(order, rs, 0);
    rank_insert(order, rs, 1);
    for (int i = 0; i < 2 * d; i++) dpred[i] = 0.0f;
    for (int n = 2; n < N; n++) {
        for (int i = 0; i < d; i++) {
            dy[i] = 0.0;
            yhat[i] = pred[(size_t)n * d + i];
        }
        loss += prefix_loss(dy, work, yhat, ys, order, n, d, objective, reward, scale);
        for (int i = 0; i < d; i++) dpred[(size_t)n * d + i] = (float)dy[i];
        rank_insert(order, rs, n);
    }
    return loss;
}

/* doubles of work for one group of `lanes` sequences of pl_cosine_lanes */
static size_t pl_work_doubles(int lanes, int N, int d) {
    return (size_t)lanes * ((size_t)N * (d + 5) + 3 * (size_t)d);
}

void sequence_loss_batch(const ica_ctx *ctx, double *loss, float *dpred, double *per_sequence,
                         int *int_scratch, double *dbl_scratch, const float *pred, const float *ys,
                         const float *rs, int B, int N, int d, ica_objective objective,
                         ica_reward reward) {
    /* The mean over n and over the batch is folded into the gradient scale;
     * the per-sequence losses are summed in batch order after the loop. */
    double scale = 1.0 / ((double)(N - 2) * B);
    if (objective == ICA_OBJECTIVE_PL && reward == ICA_REWARD_COSINE) {
        /* the training objective: the vector kernel, one sequence per lane */
        const ica_vector_kernels *k = ctx->vk;
        const int L = k->pl_lanes, groups = (B + L - 1) / L;
        const size_t work = pl_work_doubles(L, N, d);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
        for (int g = 0; g < groups; g++) {
            int b0 = g * L, nseq = B - b0 < L ? B - b0 : L;
            size_t off = (size_t)b0 * N * d;
            k->pl_cosine_lanes(per_sequence + b0, dpred + off, dbl_scratch + (size_t)g * work,
                               pred + off, ys + off, rs + (size_t)b0 * N, nseq, N, d, scale);
        }
    } else {
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
        for (int b = 0; b < B; b++) {
            size_t off = (size_t)b * N * d;
            per_sequence[b] = sequence_loss_one(
                dpred + off, int_scratch + (size_t)b * N, dbl_scratch + (size_t)b * (2 * N + 2 * d),
                pred + off, ys + off, rs + (size_t)b * N, N, d, objective, reward, scale);
        }
    }
    double total = 0.0;
    for (int b = 0; b < B; b++) total += per_sequence[b];
    *loss = total * scale;
}

size_t sequence_loss_scratch_doubles(int B, int N, int d) {
    /* per_sequence (B), then the larger of the two paths' work */
    size_t generic = (size_t)B * (2 * N + 2 * d);
    size_t vector = pl_work_doubles(B + ICA_MAX_PL_LANES, N, d);
    return (size_t)B + (generic > vector ? generic : vector);
}

ica_status ica_sequence_loss(float *loss, float *dpred, const float *pred, const float *ys,
                             const float *rs, int B, int N, int d, ica_objective objective,
                             ica_reward reward) {
    const ica_ctx ctx = ica_ctx_begin();
    if (B < 1 || d < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "batch size and n_dims must be >= 1, got B=%d, d=%d", B,
                        d);
    if (N < 3)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "the sequence loss needs N >= 3 examples (predictions at n = 2..N-1), "
                        "got N=%d",
                        N);
    size_t n_pred, n_rs;
    ica_status st;
    if ((st = ica_check_objective(objective, reward)) != ICA_OK ||
        (st = ica_check_size(&n_pred, "pred", B, N, d)) != ICA_OK ||
        (st = ica_check_size(&n_rs, "rs", B, N, 1)) != ICA_OK ||
        (st = ica_check_finite("pred", pred, n_pred)) != ICA_OK ||
        (st = ica_check_finite("ys", ys, n_pred)) != ICA_OK ||
        (st = ica_check_finite("rs", rs, n_rs)) != ICA_OK)
        return st;
    int *order = malloc(sizeof(int) * n_rs);
    double *scratch = malloc(sizeof(double) * sequence_loss_scratch_doubles(B, N, d));
    if (!order || !scratch) {
        free(order);
        free(scratch);
        return ica_fail(ICA_ERR_NOMEM, "out of memory for the loss scratch (B=%d, N=%d)", B, N);
    }
    double total;
    sequence_loss_batch(&ctx, &total, dpred, scratch, order, scratch + B, pred, ys, rs, B, N, d,
                        objective, reward);
    free(order);
    free(scratch);
    /* finite inputs of any size give a finite loss in double precision, but
     * it, or the gradient, can overflow float32 (responses near FLT_MAX):
     * an error, never a silent inf */
    *loss = (float)total;
    if (ica_find_nonfinite(loss, 1) >= 0)
        return ica_fail(ICA_ERR_NUMERIC,
                        "the loss (%g) is not finite in float32: the inputs are too large "
                        "for the %s objective with the %s reward",
                        total, objective == ICA_OBJECTIVE_PL ? "pl" : "bt",
                        reward == ICA_REWARD_COSINE ? "cosine" : "neg_sq");
    ptrdiff_t bad = ica_find_nonfinite(dpred, n_pred);
    if (bad >= 0)
        return ica_fail(ICA_ERR_NUMERIC,
                        "the gradient dpred is not finite in float32 at flat index %td: the "
                        "inputs are too large",
                        bad);
    return ICA_OK;
}

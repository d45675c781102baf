/* Per-task baselines (docs/math.md, "Baselines"), each given exactly the examples
 * 0..t-1 and the shown rewards the transformer sees at example t.
 *
 * Every baseline has the same shape: validate_batch() checks the batch, the
 * t values and the sizes; the baseline checks its options and any sizes of
 * its own; check_values() checks the input values; run_baseline() calls the
 * baseline's per-(task, t) function, out[b, i] = fn(task b, t_values[i]),
 * over the batch in parallel, with a per-thread scratch of the size the
 * baseline asks for, and refuses an answer that is not finite (a diverged fit,
 * an overflow) instead of returning it. A new baseline is a per-(task, t)
 * function, its option checks and these calls. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The batch of a baseline call: task b is xs, ys (N, d) and rs (N) at offset
 * b; xs may be NULL for baselines that need no queries. */
typedef struct {
    const float *xs, *ys, *rs;
    const int *t_values;
    int B, N, d, n_t;
} baseline_batch;

static ica_status validate_batch(const baseline_batch *in) {
    if (in->B < 1 || in->N < 1 || in->d < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "B, N and d must be >= 1, got %d, %d, %d", in->B, in->N,
                        in->d);
    if (in->n_t < 1) return ica_fail(ICA_ERR_ARGUMENT, "t_values is empty");
    for (int i = 0; i < in->n_t; i++)
        if (in->t_values[i] < 1 || in->t_values[i] > in->N)
            return ica_fail(ICA_ERR_ARGUMENT,
                            "t_values[%d] = %d is outside [1, N=%d]: a baseline at t uses "
                            "examples 0..t-1",
                            i, in->t_values[i], in->N);
    size_t n;
    ica_status st;
    if ((st = ica_check_size(&n, "ys", in->B, in->N, in->d)) != ICA_OK ||
        (st = ica_check_size(&n, "the output", in->B, in->n_t, in->d)) != ICA_OK)
        return st;
    return ICA_OK;
}

/* The input values, once every size and option is checked: all finite. */
static ica_status check_values(const baseline_batch *in) {
    size_t n_y = (size_t)in->B * in->N * in->d, n_r = (size_t)in->B * in->N;
    ica_status st;
    if ((in->xs && (st = ica_check_finite("xs", in->xs, n_y)) != ICA_OK) ||
        (st = ica_check_finite("ys", in->ys, n_y)) != ICA_OK ||
        (st = ica_check_finite("rs", in->rs, n_r)) != ICA_OK)
        return st;
    return ICA_OK;
}

/* out (d) = the baseline's answer for task b from its first t examples; x,
 * ys, rs: the task's rows (x NULL without queries). scratch: the bytes the
 * baseline asked run_baseline for, this thread's own. */
typedef void (*baseline_fn)(const void *options, float *out, void *scratch, const float *x,
                            const float *ys, const float *rs, int b, int t, int N, int d);

/* out (B, n_t, d): fn for every (task, t) pair. The pairs are independent and
 * each is computed whole by one thread, so the schedule (dynamic: pairs
 * differ in cost with t) does not change any result. An answer with NaN or
 * infinity is an ICA_ERR_NUMERIC naming the (task, t) pair: "<what>: its
 * answer for task b at t = T is not finite (x); <remedy>". */
static ica_status run_baseline(const ica_ctx *ctx, float *out, const baseline_batch *in,
                               baseline_fn fn, const void *options, size_t scratch_bytes,
                               const char *what, const char *remedy) {
    const int n_t = in->n_t, N = in->N, d = in->d;
    const ptrdiff_t pairs = (ptrdiff_t)in->B * n_t;
    int failed = 0;
#pragma omp parallel num_threads(ctx->threads)
    {
        void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
        if (scratch_bytes && !scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (ptrdiff_t pair = 0; pair < pairs; pair++) {
            if (scratch_bytes && !scratch) continue;
            int b = (int)(pair / n_t), t = in->t_values[pair % n_t];
            size_t row = (size_t)b * N;
            fn(options, out + (size_t)pair * d, scratch, in->xs ? in->xs + row * d : NULL,
               in->ys + row * d, in->rs + row, b, t, N, d);
        }
        free(scratch);
    }
    if (failed) return ica_fail(ICA_ERR_NOMEM, "out of memory for the baseline's scratch");
    ptrdiff_t bad = ica_find_nonfinite(out, (size_t)pairs * d);
    if (bad < 0) return ICA_OK;
    ptrdiff_t pair = bad / d;
    return ica_fail(ICA_ERR_NUMERIC, "%s: its answer for task %td at t = %d is not finite (%g); %s",
                    what, pair / n_t, in->t_values[pair % n_t], (double)out[bad], remedy);
}

/* ------------------------------------------------------------ GD baseline */

typedef struct {
    int steps;
    double lr;
    uint64_t seed;
    ica_objective objective;
    ica_reward reward;
} gd_options;

/* W, m, v (d x d), dy (d), the prediction (d), the loss work (2N), then the
 * order (N ints). */
static size_t gd_scratch_bytes(int N, int d) {
    return sizeof(double) * (3 * (size_t)d * d + 2 * (size_t)d + 2 * (size_t)N) +
           sizeof(int) * (size_t)N;
}

/* Fits W (d,d), initialised U(-1/sqrt d, 1/sqrt d) from the stream (seed, b,
 * t), by Adam on the objective of x W over the first t examples; out = x W,
 * the prediction held in float32 as the model's is. */
static void gd_fit_one(const void *options, float *out, void *scratch, const float *x,
                       const float *ys, const float *rs, int b, int t, int N, int d) {
    const gd_options *o = options;
    const int steps = o->steps;
    const double lr = o->lr;
    const size_t dd = (size_t)d * d;
    double *W = scratch, *m = W + dd, *v = m + dd, *dy = v + dd, *pred = dy + d, *work = pred + d;
    int *order = (int *)(work + 2 * (size_t)N);
    rng_stream rng;
    rng_init(&rng, o->seed, RNG_DOMAIN_GD, ((uint64_t)b << 32) | (uint32_t)t);
    double bound = 1.0 / sqrt((double)d);
    for (size_t i = 0; i < dd; i++) {
        W[i] = bound * (2.0 * rng_uniform(&rng) - 1.0);
        m[i] = v[i] = 0.0;
    }
    for (int k = 0; k < t; k++) rank_insert(order, rs, k);
    const double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
    for (int step = 1; step <= steps + 1; step++) {
        for (int j = 0; j < d; j++) {
            double acc = 0.0;
            for (int i = 0; i < d; i++) acc += (double)x[i] * W[(size_t)i * d + j];
            pred[j] = (float)acc;
        }
        if (step > steps) break; /* pred now holds x W after the last update */
        for (int j = 0; j < d; j++) dy[j] = 0.0;
        prefix_loss(dy, work, pred, ys, order, t, d, o->objective, o->reward, 1.0);
        double c1 = 1.0 - pow(beta1, step), c2 = 1.0 - pow(beta2, step);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double g = x[i] * dy[j];
                double *mi = &m[(size_t)i * d + j], *vi = &v[(size_t)i * d + j];
                *mi = beta1 * *mi + (1.0 - beta1) * g;
                *vi = beta2 * *vi + (1.0 - beta2) * g * g;
                W[(size_t)i * d + j] -= lr / c1 * *mi / (sqrt(*vi / c2) + adam_eps);
            }
    }
    for (int j = 0; j < d; j++) out[j] = (float)pred[j];
}

ica_status ica_gd_baseline(float *out, const float *xs, const float *ys, const float *rs,
                           const int *t_values, int B, int N, int d, int n_t, int steps, float lr,
                           uint64_t seed, ica_objective objective, ica_reward reward) {
    const ica_ctx ctx = ica_ctx_begin();
    baseline_batch in = {xs, ys, rs, t_values, B, N, d, n_t};
    ica_status st = validate_batch(&in);
    if (st != ICA_OK) return st;
    if (steps < 0) return ica_fail(ICA_ERR_ARGUMENT, "steps must be >= 0, got %d", steps);
    if (!(lr > 0.0f) || !ica_is_finite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number > 0, got %g", (double)lr);
    size_t n_weights;
    if ((st = ica_check_objective(objective, reward)) != ICA_OK ||
        (st = ica_check_size(&n_weights, "the GD weights", d, d, 3)) != ICA_OK ||
        (st = check_values(&in)) != ICA_OK)
        return st;
    gd_options options = {steps, lr, seed, objective, reward};
    return run_baseline(&ctx, out, &in, gd_fit_one, &options, gd_scratch_bytes(N, d), "GD diverged",
                        "lower lr or steps");
}

/* ---------------------------------------------------- surrogate optimum */

typedef struct {
    int max_steps;
    double lr;
    float tol;
    ica_objective objective;
    ica_reward reward;
    const float *out; /* (B, n_t, d): the pair of an answer is its offset / d */
    float *grad_norm; /* (B, n_t) */
    int *steps;       /* (B, n_t) */
} optimum_options;

/* u, m, yhat, g, a candidate (d each), the loss work (2N), then the order (N ints). */
static size_t optimum_scratch_bytes(int N, int d) {
    return sizeof(double) * (5 * (size_t)d + 2 * (size_t)N) + sizeof(int) * (size_t)N;
}

/* Loss at yhat = S u; g (d) = its gradient in u, S dL/dyhat. */
static double optimum_loss(double *g, double *yhat, double *work, const double *u, double S,
                           const float *ys, const int *order, int t, int d,
                           const optimum_options *o) {
    for (int j = 0; j < d; j++) {
        yhat[j] = S * u[j];
        g[j] = 0.0;
    }
    return prefix_loss(g, work, yhat, ys, order, t, d, o->objective, o->reward, S);
}

/* Minimises the objective of the first t examples directly over the
 * prediction. The variable is u = yhat / S, S the RMS length of the t
 * responses, so that the step size does not depend on the data's scale.
 *
 * Start. neg_sq: the mean response. The objective is convex in yhat (PL and BT
 * are log-sum-exps of functions affine in yhat: the |yhat|^2 of every score
 * cancels) and depends on yhat only through its projections on the response
 * differences, so the answer is the minimiser within the affine hull of the
 * responses (on it the objective is strictly convex). cosine: the objective
 * is not convex; the start is the lowest-loss candidate among the mean
 * response, the responses and their negatives (first on ties).
 *
 * Adam (beta 0.9/0.999, eps 1e-8) keeps ONE second-moment estimate for the
 * whole vector (the mean of g^2 over coordinates): each step is a multiple of
 * the running mean of gradients, so the iterates stay in the span of the start
 * and the gradients (the affine hull above), and the answer does not depend on
 * the coordinate system.
 *
 * Convergence is checked before every update on the scale-free gradient of
 * log L: r = R |dL/dyhat| / L, R = |yhat| for cosine (whose objective ignores
 * the length of yhat) and R = S for neg_sq. The task stops at the first
 * iterate with r <= tol, or after max_steps updates. Where the infimum is
 * approached only at infinity (L -> 0 along a direction that orders every
 * pair as shown) r does not vanish, so such a task runs to the cap and is
 * reported unconverged. grad_norm receives r (in float32, as compared), steps
 * the updates made. */
static void optimum_fit_one(const void *options, float *out, void *scratch, const float *x,
                            const float *ys, const float *rs, int b, int t, int N, int d) {
    const optimum_options *o = options;
    (void)x;
    double *u = scratch, *m = u + d, *yhat = m + d, *g = yhat + d, *cand = g + d, *work = cand + d;
    int *order = (int *)(work + 2 * (size_t)N);
    const size_t slot = (size_t)(out - o->out) / (size_t)d;
    (void)b;
    double sq = 0.0;
    for (int j = 0; j < d; j++) u[j] = m[j] = 0.0;
    for (int k = 0; k < t; k++) {
        rank_insert(order, rs, k);
        for (int j = 0; j < d; j++) {
            double y = ys[(size_t)k * d + j];
            u[j] += y / t;
            sq += y * y;
        }
    }
    double S = sqrt(sq / t);
    if (!(S > 1e-30)) { /* every response is zero: so is every score gap */
        for (int j = 0; j < d; j++) out[j] = 0.0f;
        o->grad_norm[slot] = 0.0f;
        o->steps[slot] = 0;
        return;
    }
    for (int j = 0; j < d; j++) u[j] /= S;
    if (o->reward == ICA_REWARD_COSINE) {
        double best = optimum_loss(g, yhat, work, u, S, ys, order, t, d, o);
        for (int c = 0; c < 2 * t; c++) {
            double sign = c < t ? 1.0 : -1.0;
            for (int j = 0; j < d; j++) cand[j] = sign * ys[(size_t)(c % t) * d + j] / S;
            double loss = optimum_loss(g, yhat, work, cand, S, ys, order, t, d, o);
            if (loss < best) {
                best = loss;
                for (int j = 0; j < d; j++) u[j] = cand[j];
            }
        }
    }
    const double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
    double v = 0.0;
    float ratio = 0.0f;
    int step = 0;
    for (;; step++) {
        double loss = optimum_loss(g, yhat, work, u, S, ys, order, t, d, o);
        double g2 = 0.0, ysq = 0.0;
        for (int j = 0; j < d; j++) {
            g2 += g[j] * g[j];
            ysq += yhat[j] * yhat[j];
        }
        /* g is S dL/dyhat; for cosine the scale is |yhat| instead of S */
        double gnorm = o->reward == ICA_REWARD_COSINE ? sqrt(g2 * ysq) / S : sqrt(g2);
        /* t = 1: L = 0 and its gradient 0; L underflowing to 0 with a gradient: inf */
        ratio = gnorm > 0.0 ? (float)(gnorm / loss) : 0.0f;
        if (ratio <= o->tol || step == o->max_steps) break;
        int k = step + 1;
        double c1 = 1.0 - pow(beta1, k), c2 = 1.0 - pow(beta2, k);
        v = beta2 * v + (1.0 - beta2) * g2 / d;
        double den = sqrt(v / c2) + adam_eps;
        for (int j = 0; j < d; j++) {
            m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
            u[j] -= o->lr / c1 * m[j] / den;
        }
    }
    for (int j = 0; j < d; j++) out[j] = (float)yhat[j];
    o->grad_norm[slot] = ratio;
    o->steps[slot] = step;
}

ica_status ica_surrogate_optimum(float *out, float *grad_norm, int *steps, const float *ys,
                                 const float *rs, const int *t_values, int B, int N, int d, int n_t,
                                 ica_objective objective, ica_reward reward, int max_steps,
                                 float lr, float tol) {
    const ica_ctx ctx = ica_ctx_begin();
    baseline_batch in = {NULL, ys, rs, t_values, B, N, d, n_t};
    ica_status st = validate_batch(&in);
    if (st != ICA_OK) return st;
    if (max_steps < 0)
        return ica_fail(ICA_ERR_ARGUMENT, "max_steps must be >= 0, got %d", max_steps);
    if (!(lr > 0.0f) || !ica_is_finite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number > 0, got %g", (double)lr);
    if (!(tol >= 0.0f) || !ica_is_finite(tol))
        return ica_fail(ICA_ERR_ARGUMENT, "tol must be a finite number >= 0, got %g", (double)tol);
    if ((st = ica_check_objective(objective, reward)) != ICA_OK ||
        (st = check_values(&in)) != ICA_OK)
        return st;
    optimum_options options = {max_steps, lr, tol, objective, reward, out, grad_norm, steps};
    return run_baseline(&ctx, out, &in, optimum_fit_one, &options, optimum_scratch_bytes(N, d),
                        "the optimum's Adam diverged", "lower lr");
}

/* ------------------------------------------------------- simple baselines */

typedef struct {
    ica_baseline kind;
    float temperature;
} simple_options;

/* Least squares of y_i = r_i a + (1 - r_i) b for a (the fitted y*), per
 * dimension; the 2x2 normal matrix is shared. When all rewards are equal it
 * has rank one and the minimum-norm solution G+ = G / trace(G)^2 is used. */
static void oracle_fit(float *out, const float *ys, const float *rs, int t, int d) {
    double g11 = 0, g12 = 0, g22 = 0;
    for (int i = 0; i < t; i++) {
        double r = rs[i];
        g11 += r * r;
        g12 += r * (1.0 - r);
        g22 += (1.0 - r) * (1.0 - r);
    }
    double det = g11 * g22 - g12 * g12, trace = g11 + g22;
    double i11, i12;
    if (det > 1e-12 * trace * trace) {
        i11 = g22 / det;
        i12 = -g12 / det;
    } else {
        i11 = g11 / (trace * trace);
        i12 = g12 / (trace * trace);
    }
    for (int j = 0; j < d; j++) {
        double ry = 0, sy = 0;
        for (int i = 0; i < t; i++) {
            double y = ys[(size_t)i * d + j], r = rs[i];
            ry += r * y;
            sy += (1.0 - r) * y;
        }
        out[j] = (float)(i11 * ry + i12 * sy);
    }
}

/* mean: equal weights; weighted: softmax(r / temperature); best: the
 * highest shown reward, first on ties; oracle: oracle_fit. */
static void simple_one(const void *options, float *o, void *scratch, const float *x, const float *y,
                       const float *r, int b, int t, int N, int d) {
    const simple_options *opt = options;
    const ica_baseline kind = opt->kind;
    const float temperature = opt->temperature;
    (void)scratch, (void)x, (void)b, (void)N;
    if (kind == ICA_BASELINE_ORACLE) {
        oracle_fit(o, y, r, t, d);
    } else if (kind == ICA_BASELINE_BEST) {
        int best = 0;
        for (int i = 1; i < t; i++)
            if (r[i] > r[best]) best = i;
        memcpy(o, y + (size_t)best * d, sizeof(float) * d);
    } else {
        double rmax = r[0], total = 0.0;
        for (int i = 1; i < t; i++) rmax = r[i] > rmax ? r[i] : rmax;
        for (int i = 0; i < t; i++)
            total += kind == ICA_BASELINE_MEAN ? 1.0 : exp((r[i] - rmax) / temperature);
        for (int j = 0; j < d; j++) {
            double acc = 0.0;
            for (int i = 0; i < t; i++) {
                double w = kind == ICA_BASELINE_MEAN ? 1.0 : exp((r[i] - rmax) / temperature);
                acc += w * y[(size_t)i * d + j];
            }
            o[j] = (float)(acc / total);
        }
    }
}

ica_status ica_simple_baseline(float *out, const float *ys, const float *rs, const int *t_values,
                               int B, int N, int d, int n_t, ica_baseline kind, float temperature) {
    const ica_ctx ctx = ica_ctx_begin();
    baseline_batch in = {NULL, ys, rs, t_values, B, N, d, n_t};
    ica_status st = validate_batch(&in);
    if (st != ICA_OK) return st;
    if ((unsigned)kind > ICA_BASELINE_ORACLE)
        return ica_fail(ICA_ERR_ARGUMENT, "unknown baseline kind %d", (int)kind);
    if (kind == ICA_BASELINE_WEIGHTED && !(temperature > 0.0f && ica_is_finite(temperature)))
        return ica_fail(ICA_ERR_ARGUMENT, "temperature must be a finite number > 0, got %g",
                        (double)temperature);
    if ((st = check_values(&in)) != ICA_OK) return st;
    simple_options options = {kind, temperature};
    return run_baseline(&ctx, out, &in, simple_one, &options, 0, "the baseline overflowed",
                        "the responses are too large for float32 arithmetic");
}

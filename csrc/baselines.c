/* Per-task baselines of SPEC section 5, each given exactly the examples
 * 0..t-1 and the shown rewards the transformer sees at example t. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ica_status check_t_values(const int *t_values, int n_t, int N) {
    if (n_t < 1) return ica_fail(ICA_ERR_ARGUMENT, "t_values is empty");
    for (int i = 0; i < n_t; i++)
        if (t_values[i] < 1 || t_values[i] > N)
            return ica_fail(ICA_ERR_ARGUMENT,
                            "t_values[%d] = %d is outside [1, N=%d]: a baseline at t uses "
                            "examples 0..t-1",
                            i, t_values[i], N);
    return ICA_OK;
}

/* Fits W (d,d) by Adam on the PL loss of x W over the first t examples. */
static void gd_fit_one(const float *x, const float *ys, const float *rs, int t, int d, int steps,
                       double lr, rng_stream *rng, float *out, double *scratch, int *order) {
    double *W = scratch, *m = W + d * d, *v = m + d * d, *dy = v + d * d, *work = dy + d;
    float *pred = (float *)(work + 2 * t);
    double bound = 1.0 / sqrt((double)d);
    for (int i = 0; i < d * d; i++) {
        W[i] = bound * (2.0 * rng_uniform(rng) - 1.0);
        m[i] = v[i] = 0.0;
    }
    for (int k = 0; k < t; k++) rank_insert(order, k, rs);
    const double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
    for (int step = 1; step <= steps + 1; step++) {
        for (int j = 0; j < d; j++) {
            double acc = 0.0;
            for (int i = 0; i < d; i++) acc += (double)x[i] * W[i * d + j];
            pred[j] = (float)acc;
        }
        if (step > steps) break; /* pred now holds x W after the last update */
        for (int j = 0; j < d; j++) dy[j] = 0.0;
        prefix_loss(pred, ys, order, t, d, ICA_OBJECTIVE_PL, ICA_REWARD_COSINE, 1.0, dy, work);
        double c1 = 1.0 - pow(beta1, step), c2 = 1.0 - pow(beta2, step);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double g = x[i] * dy[j];
                double *mi = &m[i * d + j], *vi = &v[i * d + j];
                *mi = beta1 * *mi + (1.0 - beta1) * g;
                *vi = beta2 * *vi + (1.0 - beta2) * g * g;
                W[i * d + j] -= lr / c1 * *mi / (sqrt(*vi / c2) + adam_eps);
            }
    }
    memcpy(out, pred, sizeof(float) * d);
}

ica_status ica_gd_baseline(const float *xs, const float *ys, const float *rs, int B, int N,
                           int d, const int *t_values, int n_t, int steps, float lr,
                           uint64_t seed, float *out) {
    if (B < 1 || N < 1 || d < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "B, N and d must be >= 1, got %d, %d, %d", B, N, d);
    if (steps < 0) return ica_fail(ICA_ERR_ARGUMENT, "steps must be >= 0, got %d", steps);
    if (!(lr > 0.0f) || !isfinite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number > 0, got %g", (double)lr);
    ica_status st = check_t_values(t_values, n_t, N);
    if (st != ICA_OK) return st;
    int failed = 0;
    size_t scratch_doubles = 3 * (size_t)d * d + d + 2 * (size_t)N + (size_t)d;
#pragma omp parallel num_threads(ica_threads())
    {
        double *scratch = malloc(sizeof(double) * scratch_doubles);
        int *order = malloc(sizeof(int) * (size_t)N);
        if (!scratch || !order) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int task = 0; task < B * n_t; task++) {
            if (!scratch || !order) continue;
            int b = task / n_t, i = task % n_t, t = t_values[i];
            rng_stream rng;
            rng_init(&rng, seed, RNG_DOMAIN_GD, ((uint64_t)b << 32) | (uint32_t)t);
            size_t base = (size_t)b * N;
            gd_fit_one(xs + base * d, ys + base * d, rs + base, t, d, steps, lr, &rng,
                       out + (size_t)task * d, scratch, order);
        }
        free(scratch);
        free(order);
    }
    if (failed) return ica_fail(ICA_ERR_NOMEM, "out of memory in the GD baseline");
    return ICA_OK;
}

/* Least squares of y_i = r_i a + (1 - r_i) b for a (the fitted y*), per
 * dimension; the 2x2 normal matrix is shared. When all rewards are equal it
 * has rank one and the minimum-norm solution G+ = G / trace(G)^2 is used. */
static void oracle_fit(const float *ys, const float *rs, int t, int d, float *out) {
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

ica_status ica_simple_baseline(const float *ys, const float *rs, int B, int N, int d,
                               const int *t_values, int n_t, ica_baseline kind,
                               float temperature, float *out) {
    if (B < 1 || N < 1 || d < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "B, N and d must be >= 1, got %d, %d, %d", B, N, d);
    if ((unsigned)kind > ICA_BASELINE_ORACLE)
        return ica_fail(ICA_ERR_ARGUMENT, "unknown baseline kind %d", (int)kind);
    if (kind == ICA_BASELINE_WEIGHTED && !(temperature > 0.0f && isfinite(temperature)))
        return ica_fail(ICA_ERR_ARGUMENT, "temperature must be a finite number > 0, got %g",
                        (double)temperature);
    ica_status st = check_t_values(t_values, n_t, N);
    if (st != ICA_OK) return st;
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int task = 0; task < B * n_t; task++) {
        int b = task / n_t, t = t_values[task % n_t];
        const float *y = ys + (size_t)b * N * d, *r = rs + (size_t)b * N;
        float *o = out + (size_t)task * d;
        if (kind == ICA_BASELINE_ORACLE) {
            oracle_fit(y, r, t, d, o);
        } else if (kind == ICA_BASELINE_BEST) {
            int best = 0;
            for (int i = 1; i < t; i++)
                if (r[i] > r[best]) best = i;
            memcpy(o, y + (size_t)best * d, sizeof(float) * d);
        } else {
            /* mean: equal weights; weighted: softmax(r / temperature) */
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
    return ICA_OK;
}

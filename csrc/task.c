/* The mixed linear alignment task (docs/math.md, "The task"). */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

ica_status ica_sample_tasks(float *xs, float *ys, float *rs, float *rs_true, float *ystar,
                            float *eps, int B, int N, int d, uint64_t seed, uint64_t offset,
                            double reward_noise) {
    const ica_ctx ctx = ica_ctx_begin();
    (void)ctx; /* read only by the parallel region (none without OpenMP) */
    if (B < 1 || N < 1 || d < 1)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "batch_size, n_points and n_dims must be >= 1, got %d, %d, %d", B, N, d);
    if (!(reward_noise >= 0.0 && reward_noise <= 1.0))
        return ica_fail(ICA_ERR_ARGUMENT, "reward_noise must lie in [0, 1], got %g", reward_noise);
    size_t n;
    ica_status st;
    if ((st = ica_check_size(&n, "xs", B, N, d)) != ICA_OK ||
        (st = ica_check_size(&n, "the task weights", d, d, 2)) != ICA_OK)
        return st;
    const size_t dd = (size_t)d * d;
    int failed = 0;
#pragma omp parallel num_threads(ctx.threads)
    {
        double *scratch = malloc(sizeof(double) * (2 * dd + 3 * (size_t)d));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!scratch) continue;
            double *w_star = scratch, *w_eps = w_star + dd, *x = w_eps + dd;
            double *target = x + d, *noise = target + d;
            /* Draw order is part of the contract: x, W*, W_eps, then per
             * example (reward, noise coin, replacement reward). Every draw is
             * made whatever reward_noise is, so the tasks do not depend on p. */
            rng_stream rng;
            rng_init(&rng, seed, RNG_DOMAIN_TASK, offset + (uint64_t)b);
            for (int i = 0; i < d; i++) x[i] = rng_normal(&rng);
            for (size_t i = 0; i < dd; i++) w_star[i] = rng_normal(&rng);
            for (size_t i = 0; i < dd; i++) w_eps[i] = rng_normal(&rng);
            for (int j = 0; j < d; j++) {
                double a = 0.0, c = 0.0;
                for (int i = 0; i < d; i++) {
                    a += x[i] * w_star[(size_t)i * d + j];
                    c += x[i] * w_eps[(size_t)i * d + j];
                }
                target[j] = a;
                noise[j] = c;
                ystar[(size_t)b * d + j] = (float)a;
                eps[(size_t)b * d + j] = (float)c;
            }
            for (int n = 0; n < N; n++) {
                size_t bn = (size_t)b * N + n;
                double r = rng_uniform(&rng), coin = rng_uniform(&rng), fresh = rng_uniform(&rng);
                rs_true[bn] = (float)r;
                rs[bn] = (float)(coin < reward_noise ? fresh : r);
                for (int j = 0; j < d; j++) {
                    xs[bn * d + j] = (float)x[j];
                    ys[bn * d + j] = (float)(r * target[j] + (1.0 - r) * noise[j]);
                }
            }
        }
        free(scratch);
    }
    if (failed) return ica_fail(ICA_ERR_NOMEM, "out of memory in the task sampler");
    return ICA_OK;
}

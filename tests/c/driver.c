/*
 * Standalone driver of the C core for sanitizer and valgrind runs: it calls
 * every public entry point of icalign.h on tiny shapes (model creation,
 * forward, attention maps, loss and gradient, Adam step, both losses, the task
 * sampler, all baselines), on every SIMD path the CPU runs, on 1 and 2
 * threads, plus the documented error paths and NULL models, and frees
 * everything. Any failure of a call that must succeed, or success of one that
 * must fail, exits 1.
 *
 * Built by tests/test_sanitize_c.py (with -fsanitize=address,undefined) and
 * by tests/sanitize.sh (also for valgrind memcheck).
 * Usage: driver [quick|full]  (full adds a paper-width model, N = 20, E = 96)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icalign.h"

static int failures = 0;

#define EXPECT_OK(call)                                                                    \
    do {                                                                                   \
        ica_status st_ = (call);                                                           \
        if (st_ != ICA_OK) {                                                               \
            fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #call,       \
                    (int)st_, ica_last_error());                                           \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

#define EXPECT_FAIL(call)                                                                  \
    do {                                                                                   \
        ica_status st_ = (call);                                                           \
        if (st_ == ICA_OK || ica_last_error()[0] == '\0') {                                \
            fprintf(stderr, "%s:%d: %s should have failed with a message\n", __FILE__,      \
                    __LINE__, #call);                                                      \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static void check_finite(const char *what, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            fprintf(stderr, "%s: non-finite value at %zu\n", what, i);
            failures++;
            return;
        }
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void run_model(ica_config cfg, int B, int N) {
    ica_model *m = NULL;
    EXPECT_OK(ica_model_create(&m, &cfg, 7));
    if (!m) return;
    int d = cfg.n_dims;
    size_t bnd = (size_t)B * N * d, bn = (size_t)B * N;
    float *xs = xcalloc(bnd, sizeof(float)), *ys = xcalloc(bnd, sizeof(float));
    float *rs = xcalloc(bn, sizeof(float)), *rs_true = xcalloc(bn, sizeof(float));
    float *ystar = xcalloc((size_t)B * d, sizeof(float)), *eps = xcalloc((size_t)B * d, sizeof(float));
    float *pred = xcalloc(bnd, sizeof(float)), *rhat = xcalloc(bn, sizeof(float));
    EXPECT_OK(ica_sample_tasks(xs, ys, rs, rs_true, ystar, eps, B, N, d, 3, 0, 0.25));

    for (int i = 0; i < ica_model_num_tensors(m); i++) {
        const char *name;
        int ndim, shape[2];
        size_t offset;
        EXPECT_OK(ica_model_tensor_info(m, &name, &ndim, shape, &offset, i));
    }
    EXPECT_OK(ica_model_forward(m, pred, cfg.reward_head ? rhat : NULL, xs, ys, rs, B, N));
    check_finite("forward", pred, bnd);
    size_t T = 3 * (size_t)N, n_probs = (size_t)B * cfg.n_layer * cfg.n_head * T * T;
    float *probs = xcalloc(n_probs, sizeof(float));
    EXPECT_OK(ica_model_attention_maps(m, probs, xs, ys, rs, B, N));
    check_finite("attention maps", probs, n_probs);
    free(probs);
    /* a smaller batch after a larger one reuses the arena */
    EXPECT_OK(ica_model_forward(m, pred, NULL, xs, ys, rs, 1, N > 1 ? N - 1 : 1));
    float loss = 0.0f;
    for (int obj = 0; obj < 2; obj++)
        for (int rew = 0; rew < 2; rew++) {
            EXPECT_OK(ica_model_loss_and_grad(m, &loss, xs, ys, rs, B, N, (ica_objective)obj,
                                              (ica_reward)rew, 0.5f));
            check_finite("grads", ica_model_grads(m), ica_model_arena_size(m));
            EXPECT_OK(ica_model_step(m, &loss, xs, ys, rs, B, N, (ica_objective)obj,
                                     (ica_reward)rew, 1.0f, 1e-3f));
        }
    EXPECT_OK(ica_model_adam_update(m, 1e-3f, 0.9f, 0.999f, 1e-8f));
    check_finite("params", ica_model_params(m), ica_model_arena_size(m));

    /* error paths: nothing may be read or written out of bounds */
    EXPECT_FAIL(ica_model_forward(m, pred, NULL, xs, ys, rs, 0, N));
    EXPECT_FAIL(ica_model_forward(m, pred, NULL, xs, ys, rs, B, cfg.n_points + 1));
    EXPECT_FAIL(ica_model_loss_and_grad(m, &loss, xs, ys, rs, B, 2, ICA_OBJECTIVE_PL,
                                        ICA_REWARD_COSINE, 1.0f));
    rs[0] = NAN;
    EXPECT_FAIL(ica_model_forward(m, pred, NULL, xs, ys, rs, B, N));
    EXPECT_FAIL(ica_model_step(m, &loss, xs, ys, rs, B, N, ICA_OBJECTIVE_PL, ICA_REWARD_COSINE,
                               1.0f, 1e-3f));
    rs[0] = 0.5f;

    /* losses on their own */
    float *dpred = xcalloc(bnd, sizeof(float));
    for (int obj = 0; obj < 2; obj++) {
        EXPECT_OK(ica_sequence_loss(&loss, dpred, pred, ys, rs, B, N, d, (ica_objective)obj,
                                    ICA_REWARD_COSINE));
        check_finite("dpred", dpred, bnd);
    }
    EXPECT_FAIL(ica_sequence_loss(&loss, dpred, pred, ys, rs, B, 2, d, ICA_OBJECTIVE_PL,
                                  ICA_REWARD_COSINE));

    /* baselines */
    int t_values[] = {1, 2, N};
    float *out = xcalloc((size_t)B * 3 * d, sizeof(float));
    for (int obj = 0; obj < 2; obj++) {
        for (int rew = 0; rew < 2; rew++) {
            EXPECT_OK(ica_gd_baseline(out, xs, ys, rs, t_values, B, N, d, 3, 5, 0.1f, 1,
                                      (ica_objective)obj, (ica_reward)rew));
            check_finite("gd", out, (size_t)B * 3 * d);
        }
    }
    float *gnorm = xcalloc((size_t)B * 3, sizeof(float));
    int *nsteps = xcalloc((size_t)B * 3, sizeof(int));
    for (int obj = 0; obj < 2; obj++) {
        for (int rew = 0; rew < 2; rew++) {
            EXPECT_OK(ica_surrogate_optimum(out, gnorm, nsteps, ys, rs, t_values, B, N, d, 3,
                                            (ica_objective)obj, (ica_reward)rew, 20, 0.02f,
                                            1e-6f));
            check_finite("optimum", out, (size_t)B * 3 * d);
        }
    }
    free(gnorm);
    free(nsteps);
    for (int kind = 0; kind < 4; kind++) {
        EXPECT_OK(ica_simple_baseline(out, ys, rs, t_values, B, N, d, 3, (ica_baseline)kind,
                                      1.0f));
    }
    int bad_t[] = {N + 1};
    EXPECT_FAIL(ica_gd_baseline(out, xs, ys, rs, bad_t, B, N, d, 1, 5, 0.1f, 1, ICA_OBJECTIVE_PL,
                                ICA_REWARD_COSINE));
    EXPECT_FAIL(ica_simple_baseline(out, ys, rs, bad_t, B, N, d, 1, ICA_BASELINE_MEAN, 1.0f));
    EXPECT_FAIL(ica_simple_baseline(out, ys, rs, t_values, B, N, d, 3, ICA_BASELINE_WEIGHTED,
                                    0.0f));

    free(out);
    free(dpred);
    free(xs);
    free(ys);
    free(rs);
    free(rs_true);
    free(ystar);
    free(eps);
    free(pred);
    free(rhat);
    ica_model_free(m);
}

int main(int argc, char **argv) {
    int full = argc > 1 && strcmp(argv[1], "full") == 0;
    static const char *paths[] = {"scalar", "avx2", "avx512"};
    /* d, N, E, L, H, softmax, ffn, causal, reward_head, ln_affine */
    ica_config configs[] = {
        {3, 6, 8, 1, 2, 1, 1, 1, 0},
        {5, 7, 21, 2, 3, 1, 1, 1, 1},
        {4, 5, 16, 1, 4, 0, 0, 1, 0},
        {2, 4, 6, 2, 1, 1, 1, 0, 0},
        {3, 5, 12, 2, 3, 1, 1, 1, 0, 1},
        {5, 20, 96, 1, 3, 1, 1, 1, 0},
    };
    ica_config bad = {3, 6, 8, 1, 3, 1, 1, 1, 0}; /* 8 % 3 != 0 */
    ica_model *none = NULL;
    EXPECT_FAIL(ica_model_create(&none, &bad, 0));
    EXPECT_FAIL(ica_set_simd_path("sse9"));
    ica_model_free(NULL);
    float loss = 0.0f;
    EXPECT_FAIL(ica_model_adam_update(NULL, 1e-3f, 0.9f, 0.999f, 1e-8f));
    EXPECT_FAIL(ica_model_step(NULL, &loss, NULL, NULL, NULL, 1, 3, ICA_OBJECTIVE_PL,
                               ICA_REWARD_COSINE, 1.0f, 1e-3f));
    size_t last = sizeof configs / sizeof configs[0] - 1; /* the paper-width model */
    size_t n_configs = full ? last + 1 : last;
    for (int p = 0; p < 3; p++) {
        if (ica_set_simd_path(paths[p]) != ICA_OK) continue; /* not on this CPU */
        for (int threads = 1; threads <= 2; threads++) {
            ica_set_num_threads(threads);
            for (size_t c = 0; c < n_configs; c++)
                run_model(configs[c], c == last ? 3 : 2, configs[c].n_points);
        }
    }
    if (failures) {
        fprintf(stderr, "driver: %d failures\n", failures);
        return 1;
    }
    printf("driver: ok (%s path last)\n", ica_simd_path());
    return 0;
}

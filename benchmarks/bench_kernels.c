/* Kernel benchmark at the paper's shapes (batch 256, N 20 -> T 60, n_embd 96,
 * 3 heads): GFLOP/s and % of peak of every matmul (forward, input gradient,
 * weight gradient), attention forward/backward, LayerNorm and GELU.
 *
 * Links the library's C sources (every .c file of csrc/ but binding.c). Build
 * and run (bench_step.py does this for you, with the peak measured by peak.c;
 * the exact command is in benchmarks/README.md), then
 *   ./bench_kernels [--threads N] [--simd avx512|avx2|scalar] [--peak GFLOPS] [--reps R]
 *   ./bench_kernels --chunk E,H [--simd PATH] [--peak GFLOPS]
 * --peak is the machine's fp32 FMA peak for the thread count used (GFLOP/s);
 * without it, % of peak is not printed. Times are the minimum over --reps
 * runs (default 15), after one warm-up run.
 *
 * --chunk E,H times instead the kernels of one layer on one chunk of 2
 * sequences (120 rows), on one thread, as the model's chunk loops run them
 * (operands in cache): the per-chunk cost of each kernel at a model width,
 * and their sum, the time one layer of one chunk needs from these kernels;
 * "of which softmax" is the part of the attention time its softmax takes.
 * LayerNorm is timed as the model's default runs it (normalising, not the
 * affine-only variant).
 */
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(void) { return omp_get_wtime(); }

static float *buffer(size_t n, unsigned seed) {
    float *p = ica_calloc_aligned(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) { /* small deterministic values in [-1, 1) */
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return p;
}

static int reps = 15;
static double peak = 0.0;

static void report(const char *name, const char *shape, double flops, double bytes, double sec) {
    if (sec < 1e-2) /* the per-chunk kernels */
        printf("%-22s %-22s %8.2f us %8.1f GFLOP/s", name, shape, sec * 1e6, flops / sec / 1e9);
    else
        printf("%-22s %-22s %8.3f ms %8.1f GFLOP/s", name, shape, sec * 1e3, flops / sec / 1e9);
    if (peak > 0 && flops > 0) printf(" %6.1f%% peak", 100.0 * flops / sec / 1e9 / peak);
    if (bytes > 0) printf(" %7.1f GB/s", bytes / sec / 1e9);
    printf("\n");
    fflush(stdout);
}

#define TIME(best, stmt)                                                                        \
    do {                                                                                        \
        stmt;                                                                                   \
        best = 1e30;                                                                            \
        for (int r_ = 0; r_ < reps; r_++) {                                                     \
            double t0_ = now();                                                                 \
            stmt;                                                                               \
            double dt_ = now() - t0_;                                                           \
            if (dt_ < best) best = dt_;                                                         \
        }                                                                                       \
    } while (0)

/* --chunk E,H: every kernel of a layer on one 2-sequence chunk, one thread, each
 * call repeated so its operands stay in cache; --peak is the 1-thread peak. */
static int chunk_mode(int E, int H) {
    ica_set_num_threads(1);
    const ica_ctx ctx_value = ica_ctx_begin(), *ctx = &ctx_value;
    const int S = 2, T = 60, M = S * T, hs = E / H, inner = 100;
    printf("# path %s, 1 thread, one chunk: M = %d rows (%d sequences x T %d), E %d, H %d "
           "(head size %d)\n", ica_simd_path(), M, S, T, E, H, hs);
    size_t big = (size_t)M * 4 * E;
    float *x = buffer(big, 1), *y = buffer(big, 2), *z = buffer(big, 3), *res = buffer(big, 9);
    float *w = buffer((size_t)16 * E * E, 4), *bias = buffer(4 * E, 5), *dw = buffer(16 * E * E, 6);
    float *scratch = buffer(attention_scratch_floats(T, hs, 1), 7);
    float *mean = buffer(M, 10), *rstd = buffer(M, 11), *lns = buffer(layernorm_scratch_floats(M, E), 14);
    const struct { const char *name; int K, N; } layers[] = {
        {"attn.c_attn", E, 3 * E}, {"attn.c_proj", E, E}, {"mlp.c_fc", E, 4 * E},
        {"mlp.c_proj", 4 * E, E}};
    double sec, dense = 0.0, total = 0.0, dense_flops = 0.0;
    char name[64], shape[64];
    reps = 7;
#define CHUNK_TIME(stmt) TIME(sec, for (int i_ = 0; i_ < inner; i_++) { stmt; }); sec /= inner
    for (int l = 0; l < 4; l++) {
        int K = layers[l].K, N = layers[l].N;
        double flops = 2.0 * M * K * N;
        snprintf(shape, sizeof shape, "%dx%d @ %dx%d", M, K, K, N);
        CHUNK_TIME(matmul_forward(ctx, y, x, res, w, bias, M, K, N));
        snprintf(name, sizeof name, "fwd %s", layers[l].name);
        report(name, shape, flops, 0, sec);
        dense += sec;
        CHUNK_TIME(matmul_backward_input(ctx, y, x, NULL, w, M, K, N));
        snprintf(name, sizeof name, "bwd-in %s", layers[l].name);
        report(name, shape, flops, 0, sec);
        dense += sec;
        CHUNK_TIME(matmul_backward_weight(ctx, dw, bias, x, y, M, K, N, 1));
        snprintf(name, sizeof name, "bwd-w %s", layers[l].name);
        report(name, shape, flops, 0, sec);
        dense += sec;
        dense_flops += 3 * flops;
    }
    report("dense products, sum", "", dense_flops, 0, dense);
    double pairs = (double)T * (T + 1) / 2, attn_flops = 2.0 * 6 * pairs * hs * S * H, attn;
    snprintf(shape, sizeof shape, "S%d H%d T%d hs%d", S, H, T, hs);
    CHUNK_TIME(attention_forward(ctx, y, scratch, x, S, T, E, H, 1, 1, NULL, 0));
    report("attention fwd", shape, 2.0 * 2 * pairs * hs * S * H, 0, sec);
    attn = sec;
    CHUNK_TIME(attention_backward(ctx, z, scratch, y, x, S, T, E, H, 1, 1));
    report("attention bwd", shape, 2.0 * 4 * pairs * hs * S * H, 0, sec);
    attn += sec;
    report("attention, sum", "", attn_flops, 0, attn);
    {
        /* the softmax inside those, forward and backward once each per (sequence, head)
         * pair (the backward pass's recompute of the probabilities not counted): the
         * elementwise part of attention that any implementation has. Rows padded to
         * whole vectors, as attention.c lays the T x T blocks out. The backward runs on
         * a fresh copy of dP each time (its own result would shrink towards subnormals);
         * the copy, timed alone, is subtracted. */
        const int ld = (T + 15) / 16 * 16;
        const float scale = 1.0f / sqrtf((float)hs);
        float *P = buffer((size_t)T * ld, 15), *dS = buffer((size_t)T * ld, 16);
        float *dP = buffer((size_t)T * ld, 17);
        double soft, copy;
        CHUNK_TIME(for (int p_ = 0; p_ < S * H; p_++) ctx->vk->softmax_rows(P, ld, T, 1, scale, 1));
        soft = sec;
        CHUNK_TIME(for (int p_ = 0; p_ < S * H; p_++) memcpy(dS, dP, sizeof(float) * T * ld));
        copy = sec;
        CHUNK_TIME(for (int p_ = 0; p_ < S * H; p_++) {
            memcpy(dS, dP, sizeof(float) * T * ld);
            ctx->vk->softmax_backward_rows(dS, P, ld, T, 1, scale, 1);
        });
        soft += sec - copy;
        report("of which softmax", "", 0, 0, soft);
    }
    /* per layer: 2 LayerNorms forward, 2 applies and 2 backward; GELU forward and
     * forward + derivative */
    double other = 0.0;
    snprintf(shape, sizeof shape, "%dx%d", M, E);
    CHUNK_TIME(layernorm_forward(ctx, y, mean, rstd, x, w, bias, M, E, 0));
    report("layernorm fwd", shape, 0, 2.0 * M * E * 4, sec);
    other += 2 * sec;
    CHUNK_TIME(layernorm_apply(ctx, y, x, mean, rstd, w, bias, M, E));
    report("layernorm apply", shape, 0, 2.0 * M * E * 4, sec);
    other += 2 * sec;
    CHUNK_TIME(layernorm_backward(ctx, z, dw, dw + E, lns, y, x, mean, rstd, w, M, E, 1, 0));
    report("layernorm bwd", shape, 0, 4.0 * M * E * 4, sec);
    other += 2 * sec;
    snprintf(shape, sizeof shape, "%dx%d", M, 4 * E);
    CHUNK_TIME(gelu_forward(ctx, y, x, (size_t)M * 4 * E));
    report("gelu fwd", shape, 0, 2.0 * M * 4 * E * 4, sec);
    other += sec;
    CHUNK_TIME(gelu_forward_grad(ctx, y, z, x, (size_t)M * 4 * E));
    report("gelu fwd+grad", shape, 0, 3.0 * M * 4 * E * 4, sec);
    other += sec;
#undef CHUNK_TIME
    total = dense + attn + other;
    printf("one layer on one chunk: %.1f us = dense %.1f (%.0f%%) + attention %.1f (%.0f%%) + "
           "LayerNorm/GELU %.1f (%.0f%%)\n", total * 1e6, dense * 1e6, 100 * dense / total,
           attn * 1e6, 100 * attn / total, other * 1e6, 100 * other / total);
    report("layer, counted flops", "", dense_flops + attn_flops, 0, total);
    return 0;
}

int main(int argc, char **argv) {
    int threads = 0, chunk_e = 0, chunk_h = 0;
    const char *simd = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--simd") && i + 1 < argc) simd = argv[++i];
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d", &chunk_e, &chunk_h) != 2 || chunk_e < 1 ||
                chunk_h < 1 || chunk_e % chunk_h) {
                fprintf(stderr, "--chunk E,H: n_embd and a number of heads that divides it\n");
                return 2;
            }
        }
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--simd PATH] [--peak GFLOPS] [--reps R] "
                    "[--chunk E,H]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads > 0) ica_set_num_threads(threads);
    if (simd && ica_set_simd_path(simd) != ICA_OK) {
        fprintf(stderr, "%s\n", ica_last_error());
        return 2;
    }
    if (chunk_e) return chunk_mode(chunk_e, chunk_h);
    const ica_ctx ctx_value = ica_ctx_begin(), *ctx = &ctx_value;
    const int B = 256, T = 60, E = 96, H = 3, M = B * T;
    printf("# path %s, %d threads, M = %d (B %d x T %d), E %d, H %d\n", ica_simd_path(),
           ica_get_num_threads(), M, B, T, E, H);

    /* (K, N) of the four dense layers of a block */
    const struct { const char *name; int K, N; } layers[] = {
        {"attn.c_attn", E, 3 * E}, {"attn.c_proj", E, E}, {"mlp.c_fc", E, 4 * E},
        {"mlp.c_proj", 4 * E, E}};
    size_t big = (size_t)M * 4 * E;
    float *x = buffer(big, 1), *y = buffer(big, 2), *z = buffer(big, 3);
    float *w = buffer((size_t)16 * E * E, 4), *bias = buffer(4 * E, 5), *dw = buffer(16 * E * E, 6);
    float *scratch = buffer(attention_scratch_floats(T, E / H, ctx->threads), 7);
    float *wt = buffer((size_t)16 * E * E, 8);
    double sec;
    char shape[64];
    for (int l = 0; l < 4; l++) {
        int K = layers[l].K, N = layers[l].N;
        double flops = 2.0 * M * K * N;
        snprintf(shape, sizeof shape, "%dx%d @ %dx%d", M, K, K, N);
        TIME(sec, matmul_forward(ctx, y, x, NULL, w, bias, M, K, N));
        char name[64];
        snprintf(name, sizeof name, "fwd %s", layers[l].name);
        report(name, shape, flops, 0, sec);
        matmul_transpose(ctx, wt, w, K, N);
        TIME(sec, matmul_backward_input(ctx, y, x, NULL, wt, M, K, N));
        snprintf(name, sizeof name, "bwd-in %s", layers[l].name);
        report(name, shape, flops, 0, sec);
        TIME(sec, matmul_backward_weight(ctx, dw, bias, x, y, M, K, N, 0));
        snprintf(name, sizeof name, "bwd-w %s", layers[l].name);
        report(name, shape, flops, 0, sec);
    }

    /* attention: flops of the products actually computed (causal half + diagonal);
     * the backward pass recomputes the probabilities (one more Q K^T) */
    {
        float *qkv = x;
        double pairs = (double)T * (T + 1) / 2, hs = E / H;
        double fwd = 2.0 * 2 * pairs * hs * B * H, bwd = 2.0 * 5 * pairs * hs * B * H;
        snprintf(shape, sizeof shape, "B%d H%d T%d hs%d", B, H, T, E / H);
        TIME(sec, attention_forward(ctx, y, scratch, qkv, B, T, E, H, 1, 1, NULL, 0));
        report("attention fwd", shape, fwd, 0, sec);
        TIME(sec, attention_backward(ctx, z, scratch, y, qkv, B, T, E, H, 1, 1));
        report("attention bwd", shape, bwd, 0, sec);
    }

    /* memory-bound kernels: report GB/s */
    {
        float *mean = buffer(M, 10), *rstd = buffer(M, 11);
        float *lnw = buffer(E, 12), *lnb = buffer(E, 13), *lns = buffer(layernorm_scratch_floats(M, E), 14);
        snprintf(shape, sizeof shape, "%dx%d", M, E);
        double bytes = 2.0 * M * E * 4;
        TIME(sec, layernorm_forward(ctx, y, mean, rstd, x, lnw, lnb, M, E, 0));
        report("layernorm fwd", shape, 0, bytes, sec);
        TIME(sec, layernorm_backward(ctx, z, dw, dw + E, lns, y, x, mean, rstd, lnw, M, E, 0, 0));
        report("layernorm bwd", shape, 0, 4.0 * M * E * 4, sec);
        size_t n = (size_t)M * 4 * E;
        snprintf(shape, sizeof shape, "%dx%d", M, 4 * E);
        TIME(sec, gelu_forward(ctx, y, x, n));
        report("gelu fwd", shape, 0, 2.0 * n * 4, sec);
        TIME(sec, gelu_forward_grad(ctx, y, z, x, n));
        report("gelu fwd+grad", shape, 0, 3.0 * n * 4, sec);
    }
    /* accuracy of the vector GELU (exp2 polynomial + reciprocal) against
     * double precision, on a dense grid of [-10, 10] */
    {
        size_t n = 1 << 20;
        float *xs = buffer(n, 15), *g = buffer(n, 16), *dg = buffer(n, 17);
        for (size_t i = 0; i < n; i++) xs[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
        gelu_forward_grad(ctx, g, dg, xs, n);
        double e_val = 0.0, e_der = 0.0;
        for (size_t i = 0; i < n; i++) {
            double x = xs[i], th = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
            double val = 0.5 * x * (1.0 + th);
            double der = 0.5 * (1.0 + th) +
                         0.5 * x * (1.0 - th * th) * 0.7978845608028654 * (1.0 + 3 * 0.044715 * x * x);
            double ev = fabs(g[i] - val) / (fabs(x) > 1.0 ? fabs(x) : 1.0), ed = fabs(dg[i] - der);
            if (ev > e_val) e_val = ev;
            if (ed > e_der) e_der = ed;
        }
        printf("gelu accuracy [-10,10]  max |gelu - exact| / max(1,|x|) = %.2e, "
               "max |gelu' - exact| = %.2e\n", e_val, e_der);
    }
    return 0;
}

/* Adam with bias correction and no weight decay, arranged as torch.optim.Adam
 * computes it (bias corrections in double, denominator sqrt(v)/sqrt(bc2)+eps).
 * Elementwise: ICA_ELEMENT_CHUNK-float chunks to threads (ica_parallel_chunks). */
#include "kernels.h"

#include <math.h>
#include <stdatomic.h>

typedef struct {
    const ica_vector_kernels *vk;
    float *params, *m, *v;
    const float *grads;
    float beta1, beta2, eps, step_size, bc2_sqrt;
} adam_args;

static void adam_chunk(const void *arg, size_t index, size_t i, size_t n) {
    const adam_args *a = arg;
    (void)index;
    a->vk->adam(a->params + i, a->m + i, a->v + i, a->grads + i, n, a->beta1, a->beta2, a->eps,
                a->step_size, a->bc2_sqrt);
}

void adam_update(const ica_ctx *ctx, float *params, float *m, float *v, const float *grads,
                 size_t n, float lr, float beta1, float beta2, float eps, int64_t step) {
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    float step_size = (float)(lr / bias_correction1);
    adam_args a = {ctx->vk, params, m,   v,         grads,
                   beta1,   beta2,  eps, step_size, (float)sqrt(bias_correction2)};
    ica_parallel_chunks(ctx, adam_chunk, &a, n, ICA_ELEMENT_CHUNK);
}

/* The update of adam_update computed without storing it, to find the first
 * element it would make non-finite. The arithmetic is the kernel's (simd
 * kernels: mul, add, div and sqrt, each correctly rounded, no contraction),
 * so the verdict is the kernel's. */
typedef struct {
    const float *params, *m, *v, *grads;
    float beta1, beta2, eps, step_size, bc2_sqrt;
    _Atomic size_t first_bad;
} adam_check_args;

static void adam_check_chunk(const void *arg, size_t index, size_t i0, size_t n) {
    adam_check_args *a = (adam_check_args *)arg;
    const float c1 = 1.0f - a->beta1, c2 = 1.0f - a->beta2;
    (void)index;
    for (size_t i = i0; i < i0 + n; i++) {
        float g = a->grads[i];
        float mi = a->beta1 * a->m[i] + c1 * g;
        float vi = a->beta2 * a->v[i] + c2 * g * g;
        float denom = sqrtf(vi) / a->bc2_sqrt + a->eps;
        float out[3] = {mi, vi, a->params[i] - a->step_size * mi / denom};
        if (ica_find_nonfinite(out, 3) >= 0) {
            size_t seen = atomic_load(&a->first_bad);
            while (i < seen && !atomic_compare_exchange_weak(&a->first_bad, &seen, i)) {
            }
            return;
        }
    }
}

size_t adam_first_nonfinite(const ica_ctx *ctx, const float *params, const float *m, const float *v,
                            const float *grads, size_t n, float lr, float beta1, float beta2,
                            float eps, int64_t step) {
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    adam_check_args a = {params,
                         m,
                         v,
                         grads,
                         beta1,
                         beta2,
                         eps,
                         (float)(lr / bias_correction1),
                         (float)sqrt(bias_correction2),
                         n};
    ica_parallel_chunks(ctx, adam_check_chunk, &a, n, ICA_ELEMENT_CHUNK);
    return atomic_load(&a.first_bad);
}

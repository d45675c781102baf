/* Adam with bias correction and no weight decay, arranged as torch.optim.Adam
 * computes it (bias corrections in double, denominator sqrt(v)/sqrt(bc2)+eps).
 * Elementwise: ICA_ELEMENT_CHUNK-float chunks to threads (ica_parallel_chunks). */
#include "kernels.h"

#include <math.h>

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

/* Adam with bias correction and no weight decay, arranged as torch.optim.Adam
 * computes it (bias corrections in double, denominator sqrt(v)/sqrt(bc2)+eps).
 * Elementwise: ICA_ELEMENT_CHUNK-float chunks to threads. */
#include "kernels.h"

#include <math.h>

void adam_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t step) {
    const ica_vector_kernels *k = ica_vk();
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    float step_size = (float)(lr / bias_correction1);
    float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    long chunks = (long)((n + ICA_ELEMENT_CHUNK - 1) / ICA_ELEMENT_CHUNK);
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (long c = 0; c < chunks; c++) {
        size_t i = (size_t)c * ICA_ELEMENT_CHUNK;
        k->adam(params + i, grads + i, m + i, v + i,
                n - i < ICA_ELEMENT_CHUNK ? n - i : ICA_ELEMENT_CHUNK, beta1, beta2, eps,
                step_size, bias_correction2_sqrt);
    }
}

/* Adam with bias correction and no weight decay, arranged as torch.optim.Adam
 * computes it (bias corrections in double, denominator sqrt(v)/sqrt(bc2)+eps). */
#include "kernels.h"

#include <math.h>

void adam_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                 float beta1, float beta2, float eps, int64_t step) {
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    float step_size = (float)(lr / bias_correction1);
    float bias_correction2_sqrt = (float)sqrt(bias_correction2);
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / bias_correction2_sqrt + eps;
        params[i] -= step_size * m[i] / denom;
    }
}

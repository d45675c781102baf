/* GELU (tanh approximation, as GPT-2) and the residual add. The backward pass
 * takes the GELU input, so the MLP keeps only its pre-activation. */
#include "kernels.h"

#include <math.h>

#define GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_CUBIC 0.044715f

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
    }
}

void gelu_backward_inplace(float *dinout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float th = tanhf(GELU_SCALE * (x + GELU_CUBIC * x * x * x));
        float sech2 = 1.0f - th * th;
        float grad = 0.5f * (1.0f + th) +
                     0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        dinout[i] *= grad;
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* GELU (tanh approximation, as GPT-2). The backward pass takes the GELU input,
 * so the MLP keeps only its pre-activation. The vector tanh of simd.h is
 * within 2.5e-7 of tanhf (absolute). Elementwise: ICA_ELEMENT_CHUNK-float
 * chunks to threads. */
#include "kernels.h"

void gelu_forward(float *out, const float *inp, size_t n) {
    const ica_vector_kernels *k = ica_vk();
    long chunks = (long)((n + ICA_ELEMENT_CHUNK - 1) / ICA_ELEMENT_CHUNK);
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (long c = 0; c < chunks; c++) {
        size_t i = (size_t)c * ICA_ELEMENT_CHUNK;
        k->gelu_forward(out + i, inp + i, n - i < ICA_ELEMENT_CHUNK ? n - i : ICA_ELEMENT_CHUNK);
    }
}

void gelu_forward_grad(float *out, float *grad, const float *inp, size_t n) {
    const ica_vector_kernels *k = ica_vk();
    long chunks = (long)((n + ICA_ELEMENT_CHUNK - 1) / ICA_ELEMENT_CHUNK);
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (long c = 0; c < chunks; c++) {
        size_t i = (size_t)c * ICA_ELEMENT_CHUNK;
        k->gelu_forward_grad(out + i, grad + i, inp + i,
                             n - i < ICA_ELEMENT_CHUNK ? n - i : ICA_ELEMENT_CHUNK);
    }
}

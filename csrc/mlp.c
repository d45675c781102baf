/* GELU (tanh approximation, as GPT-2). The backward pass takes the GELU input,
 * so the MLP keeps only its pre-activation. Its accuracy against double
 * precision is stated with the vector kernel (simd_kernels.h). Elementwise:
 * ICA_ELEMENT_CHUNK-float chunks to threads (ica_parallel_chunks). */
#include "kernels.h"

typedef struct {
    const ica_vector_kernels *vk;
    float *out, *grad;
    const float *inp;
} gelu_args;

static void forward_chunk(const void *arg, size_t index, size_t i, size_t n) {
    const gelu_args *a = arg;
    (void)index;
    a->vk->gelu_forward(a->out + i, a->inp + i, n);
}

static void forward_grad_chunk(const void *arg, size_t index, size_t i, size_t n) {
    const gelu_args *a = arg;
    (void)index;
    a->vk->gelu_forward_grad(a->out + i, a->grad + i, a->inp + i, n);
}

void gelu_forward(const ica_ctx *ctx, float *out, const float *inp, size_t n) {
    gelu_args a = {ctx->vk, out, NULL, inp};
    ica_parallel_chunks(ctx, forward_chunk, &a, n, ICA_ELEMENT_CHUNK);
}

void gelu_forward_grad(const ica_ctx *ctx, float *out, float *grad, const float *inp, size_t n) {
    gelu_args a = {ctx->vk, out, grad, inp};
    ica_parallel_chunks(ctx, forward_grad_chunk, &a, n, ICA_ELEMENT_CHUNK);
}

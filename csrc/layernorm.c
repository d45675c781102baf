/* LayerNorm over the channel dimension, eps 1e-5, biased variance (as torch).
 * The backward pass recomputes the normalised input from the saved mean and
 * rstd instead of keeping the LayerNorm output of every layer. Rows go to
 * threads in LN_CHUNK-row chunks (ica_parallel_chunks); the row kernels are
 * the context's. */
#include "kernels.h"

#define LN_EPS 1e-5f

size_t layernorm_scratch_floats(int rows, int C) {
    return (size_t)((rows + LN_CHUNK - 1) / LN_CHUNK) * 2 * (size_t)C;
}

/* The arguments of every LayerNorm call; a chunk of rows reads its rows.
 * out is dinp for the backward pass; mean, rstd are written by the forward
 * pass, mean_in, rstd_in read by apply and backward. */
typedef struct {
    const ica_vector_kernels *vk;
    float *out, *mean, *rstd, *scratch;
    const float *dout, *inp, *mean_in, *rstd_in, *weight, *bias;
    int C;
} ln_args;

/* forward (statistics computed and saved) or apply (statistics read) */
static void normalise_chunk(const void *arg, size_t index, size_t r0, size_t n) {
    const ln_args *a = arg;
    const size_t at = r0 * a->C;
    (void)index;
    if (a->mean)
        a->vk->layernorm_forward(a->out + at, a->mean + r0, a->rstd + r0, a->inp + at, a->weight,
                                 a->bias, (int)n, a->C, LN_EPS);
    else
        a->vk->layernorm_apply(a->out + at, a->inp + at, a->mean_in + r0, a->rstd_in + r0,
                               a->weight, a->bias, (int)n, a->C);
}

/* Affine-only backward of y = x * w + b: dinp += dout * w, pw += x * dout,
 * pb += dout, rows in order (the same order on every thread count). */
static void affine_backward_chunk(const void *arg, size_t index, size_t r0, size_t n) {
    const ln_args *a = arg;
    const size_t C = (size_t)a->C;
    float *pw = a->scratch + index * 2 * C, *pb = pw + C;
    for (size_t c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
    for (size_t r = r0; r < r0 + n; r++) {
        const float *g = a->dout + r * C, *x = a->inp + r * C;
        float *dx = a->out + r * C;
        for (size_t c = 0; c < C; c++) {
            dx[c] += g[c] * a->weight[c];
            pw[c] += x[c] * g[c];
            pb[c] += g[c];
        }
    }
}

/* the chunk's partial parameter gradients go to its own slot of scratch */
static void backward_chunk(const void *arg, size_t index, size_t r0, size_t n) {
    const ln_args *a = arg;
    int C = a->C;
    float *pw = a->scratch + index * 2 * C, *pb = pw + C;
    for (int c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
    a->vk->layernorm_backward(a->out + r0 * C, pw, pb, a->dout + r0 * C, a->inp + r0 * C,
                              a->mean_in + r0, a->rstd_in + r0, a->weight, (int)n, C);
}

void layernorm_forward(const ica_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int C, int affine) {
    /* inp, out (rows,C); mean, rstd (rows); weight, bias (C). affine: mean 0 and
     * rstd 1 are saved, so the output (and layernorm_apply) is x * weight + bias */
    if (affine) {
        for (int r = 0; r < rows; r++) mean[r] = 0.0f, rstd[r] = 1.0f;
        layernorm_apply(ctx, out, inp, mean, rstd, weight, bias, rows, C);
        return;
    }
    ln_args a = {ctx->vk, out, mean, rstd, NULL, NULL, inp, NULL, NULL, weight, bias, C};
    ica_parallel_chunks(ctx, normalise_chunk, &a, (size_t)rows, LN_CHUNK);
}

void layernorm_apply(const ica_ctx *ctx, float *out, const float *inp, const float *mean,
                     const float *rstd, const float *weight, const float *bias, int rows, int C) {
    ln_args a = {ctx->vk, out, NULL, NULL, NULL, NULL, inp, mean, rstd, weight, bias, C};
    ica_parallel_chunks(ctx, normalise_chunk, &a, (size_t)rows, LN_CHUNK);
}

void layernorm_backward(const ica_ctx *ctx, float *dinp, float *dweight, float *dbias,
                        float *scratch, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int rows, int C, int accumulate,
                        int affine) {
    /* dinp (rows,C) += ...; dweight, dbias (C) [+]=. The parameter
     * gradients are summed per chunk of LN_CHUNK rows, then the chunk partials
     * in chunk order: the same order on any number of threads. */
    ln_args a = {ctx->vk, dinp, NULL, NULL, scratch, dout, inp, mean, rstd, weight, NULL, C};
    ica_parallel_chunks(ctx, affine ? affine_backward_chunk : backward_chunk, &a, (size_t)rows,
                        LN_CHUNK);
    int n_chunks = (rows + LN_CHUNK - 1) / LN_CHUNK;
    if (!accumulate)
        for (int c = 0; c < C; c++) dweight[c] = dbias[c] = 0.0f;
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        const float *pw = scratch + (size_t)chunk * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) {
            dweight[c] += pw[c];
            dbias[c] += pb[c];
        }
    }
}

/* LayerNorm over the channel dimension, eps 1e-5, biased variance (as torch).
 * The backward pass recomputes the normalised input from the saved mean and
 * rstd instead of keeping the LayerNorm output of every layer. Rows go to
 * threads in LN_CHUNK-row chunks; the row kernels are ica_vk()'s. */
#include "kernels.h"

#define LN_EPS 1e-5f

size_t layernorm_scratch_floats(int rows, int C) {
    return (size_t)((rows + LN_CHUNK - 1) / LN_CHUNK) * 2 * (size_t)C;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int C) {
    /* inp, out (rows,C); mean, rstd (rows); weight, bias (C) */
    const ica_vector_kernels *k = ica_vk();
    int n_chunks = (rows + LN_CHUNK - 1) / LN_CHUNK;
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        int r0 = chunk * LN_CHUNK, n = rows - r0 < LN_CHUNK ? rows - r0 : LN_CHUNK;
        k->layernorm_forward(out + (size_t)r0 * C, mean + r0, rstd + r0, inp + (size_t)r0 * C,
                             weight, bias, n, C, LN_EPS);
    }
}

void layernorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                     const float *weight, const float *bias, int rows, int C) {
    const ica_vector_kernels *k = ica_vk();
    int n_chunks = (rows + LN_CHUNK - 1) / LN_CHUNK;
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        int r0 = chunk * LN_CHUNK, n = rows - r0 < LN_CHUNK ? rows - r0 : LN_CHUNK;
        k->layernorm_apply(out + (size_t)r0 * C, inp + (size_t)r0 * C, mean + r0, rstd + r0,
                           weight, bias, n, C);
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                        const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int rows, int C,
                        int accumulate) {
    /* dinp (rows,C) += ...; dweight, dbias (C) [+]=. The parameter
     * gradients are summed per chunk of LN_CHUNK rows, then the chunk partials
     * in chunk order: the same order on any number of threads. */
    const ica_vector_kernels *k = ica_vk();
    int n_chunks = (rows + LN_CHUNK - 1) / LN_CHUNK;
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        float *pw = scratch + (size_t)chunk * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
        int r0 = chunk * LN_CHUNK, n = rows - r0 < LN_CHUNK ? rows - r0 : LN_CHUNK;
        k->layernorm_backward(dinp + (size_t)r0 * C, pw, pb, dout + (size_t)r0 * C,
                              inp + (size_t)r0 * C, mean + r0, rstd + r0, weight, n, C);
    }
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

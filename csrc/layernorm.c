/* LayerNorm over the channel dimension, eps 1e-5, biased variance (as torch).
 * The backward pass recomputes the normalised input from the saved mean and
 * rstd instead of keeping the LayerNorm output of every layer. */
#include "kernels.h"

#include <math.h>

#define LN_EPS 1e-5f

size_t layernorm_scratch_floats(int rows, int C) {
    return (size_t)((rows + LN_CHUNK - 1) / LN_CHUNK) * 2 * (size_t)C;
}

static void layernorm_row(float *o, const float *x, float mean, float rstd, const float *weight,
                          const float *bias, int C) {
    for (int c = 0; c < C; c++) o[c] = (x[c] - mean) * rstd * weight[c] + bias[c];
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int C) {
    /* inp, out (rows,C); mean, rstd (rows); weight, bias (C) */
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * C;
        float sum = 0.0f;
        for (int c = 0; c < C; c++) sum += x[c];
        float m = sum / (float)C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) {
            float dev = x[c] - m;
            var += dev * dev;
        }
        float s = 1.0f / sqrtf(var / (float)C + LN_EPS);
        mean[r] = m;
        rstd[r] = s;
        layernorm_row(out + (size_t)r * C, x, m, s, weight, bias, C);
    }
}

void layernorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                     const float *weight, const float *bias, int rows, int C) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int r = 0; r < rows; r++)
        layernorm_row(out + (size_t)r * C, inp + (size_t)r * C, mean[r], rstd[r], weight, bias,
                      C);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                        const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int rows, int C) {
    /* dinp (rows,C) += ...; dweight, dbias (C) overwritten. The parameter
     * gradients are summed per chunk of LN_CHUNK rows, then the chunk partials
     * in chunk order: the same order on any number of threads. */
    int n_chunks = (rows + LN_CHUNK - 1) / LN_CHUNK;
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        float *pw = scratch + (size_t)chunk * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
        int r1 = (chunk + 1) * LN_CHUNK < rows ? (chunk + 1) * LN_CHUNK : rows;
        for (int r = chunk * LN_CHUNK; r < r1; r++) {
            const float *x = inp + (size_t)r * C, *g = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            float m = mean[r], s = rstd[r];
            float mean_dnorm = 0.0f, mean_dnorm_norm = 0.0f;
            for (int c = 0; c < C; c++) {
                float norm = (x[c] - m) * s, dnorm = weight[c] * g[c];
                mean_dnorm += dnorm;
                mean_dnorm_norm += dnorm * norm;
                pw[c] += norm * g[c];
                pb[c] += g[c];
            }
            mean_dnorm /= (float)C;
            mean_dnorm_norm /= (float)C;
            for (int c = 0; c < C; c++) {
                float norm = (x[c] - m) * s, dnorm = weight[c] * g[c];
                dx[c] += s * (dnorm - mean_dnorm - norm * mean_dnorm_norm);
            }
        }
    }
    for (int c = 0; c < C; c++) dweight[c] = dbias[c] = 0.0f;
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        const float *pw = scratch + (size_t)chunk * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) {
            dweight[c] += pw[c];
            dbias[c] += pb[c];
        }
    }
}

/* Dense products of the model: forward, input gradient, weight gradient.
 * Each output element is owned by one thread and summed in a fixed order, so
 * the result does not depend on the thread count. */
#include "kernels.h"

#include <string.h>

#define ROW_TILE 4 /* rows of `out` sharing each loaded weight row */
#define COL_TILE 4 /* rows of dweight sharing each loaded dout row */

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int M, int K, int N) {
    /* out (M,N) = inp (M,K) @ weight (K,N) + bias (N) */
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int m0 = 0; m0 < M; m0 += ROW_TILE) {
        int m1 = m0 + ROW_TILE < M ? m0 + ROW_TILE : M;
        for (int m = m0; m < m1; m++) {
            float *o = out + (size_t)m * N;
            if (bias)
                memcpy(o, bias, sizeof(float) * (size_t)N);
            else
                memset(o, 0, sizeof(float) * (size_t)N);
        }
        for (int k = 0; k < K; k++) {
            const float *w = weight + (size_t)k * N;
            for (int m = m0; m < m1; m++) {
                float a = inp[(size_t)m * K + k];
                float *o = out + (size_t)m * N;
#pragma omp simd
                for (int n = 0; n < N; n++) o[n] += a * w[n];
            }
        }
    }
}

void matmul_backward_input(float *dinp, const float *dout, const float *weight, int M, int K,
                           int N) {
    /* dinp (M,K) = dout (M,N) @ weight^T, weight (K,N) */
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int m = 0; m < M; m++) {
        const float *g = dout + (size_t)m * N;
        for (int k = 0; k < K; k++) {
            const float *w = weight + (size_t)k * N;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int n = 0; n < N; n++) acc += g[n] * w[n];
            dinp[(size_t)m * K + k] = acc;
        }
    }
}

void matmul_backward_weight(float *dweight, float *dbias, const float *dout, const float *inp,
                            int M, int K, int N) {
    /* dweight (K,N) = inp^T (K,M) @ dout (M,N); dbias (N) = sum over rows of dout */
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int k0 = 0; k0 < K; k0 += COL_TILE) {
        int k1 = k0 + COL_TILE < K ? k0 + COL_TILE : K;
        memset(dweight + (size_t)k0 * N, 0, sizeof(float) * (size_t)(k1 - k0) * N);
        for (int m = 0; m < M; m++) {
            const float *g = dout + (size_t)m * N;
            for (int k = k0; k < k1; k++) {
                float a = inp[(size_t)m * K + k];
                float *dw = dweight + (size_t)k * N;
#pragma omp simd
                for (int n = 0; n < N; n++) dw[n] += a * g[n];
            }
        }
    }
    if (dbias) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
        for (int n0 = 0; n0 < N; n0 += 16) {
            int n1 = n0 + 16 < N ? n0 + 16 : N;
            for (int n = n0; n < n1; n++) dbias[n] = 0.0f;
            for (int m = 0; m < M; m++) {
                const float *g = dout + (size_t)m * N;
                for (int n = n0; n < n1; n++) dbias[n] += g[n];
            }
        }
    }
}

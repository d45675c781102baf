/* Multi-head self-attention, one (batch, head) pair per task. The backward
 * pass is O(T^2) per pair: dS = P * (dP - rowsum(P * dP)) for softmax. */
#include "kernels.h"

#include <math.h>
#include <string.h>

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int E, int H,
                       int softmax, int causal) {
    /* qkv (B,T,3E) -> out (B,T,E); att (B,H,T,T) */
    const int hs = E / H, row = 3 * E;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static) num_threads(ica_threads())
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *base = qkv + (size_t)b * T * row + h * hs;
            float *P = att + ((size_t)b * H + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * row;
                float *p = P + (size_t)t * T;
                int visible = causal ? t + 1 : T;
                float maxval = -INFINITY;
                for (int t2 = 0; t2 < visible; t2++) {
                    const float *k = base + (size_t)t2 * row + E;
                    float s = 0.0f;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    s *= scale;
                    p[t2] = s;
                    if (s > maxval) maxval = s;
                }
                for (int t2 = visible; t2 < T; t2++) p[t2] = 0.0f;
                if (softmax) {
                    float sum = 0.0f;
                    for (int t2 = 0; t2 < visible; t2++) {
                        p[t2] = expf(p[t2] - maxval);
                        sum += p[t2];
                    }
                    float inv = 1.0f / sum;
                    for (int t2 = 0; t2 < visible; t2++) p[t2] *= inv;
                }
                float *o = out + ((size_t)b * T + t) * E + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t2 = 0; t2 < visible; t2++) {
                    const float *v = base + (size_t)t2 * row + 2 * E;
                    float w = p[t2];
                    for (int i = 0; i < hs; i++) o[i] += w * v[i];
                }
            }
        }
    }
}

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                        const float *att, int B, int T, int E, int H, int softmax,
                        int causal) {
    /* dout (B,T,E) -> dqkv (B,T,3E), overwritten; datt (B,H,T,T) scratch */
    const int hs = E / H, row = 3 * E;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static) num_threads(ica_threads())
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *base = qkv + (size_t)b * T * row + h * hs;
            float *dbase = dqkv + (size_t)b * T * row + h * hs;
            const float *P = att + ((size_t)b * H + h) * T * T;
            float *dS = datt + ((size_t)b * H + h) * T * T;
            for (int t = 0; t < T; t++)
                for (int part = 0; part < 3; part++)
                    memset(dbase + (size_t)t * row + part * E, 0, sizeof(float) * hs);
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * row;
                const float *g = dout + ((size_t)b * T + t) * E + h * hs;
                const float *p = P + (size_t)t * T;
                float *ds = dS + (size_t)t * T;
                float *dq = dbase + (size_t)t * row;
                int visible = causal ? t + 1 : T;
                float p_dot_dp = 0.0f;
                for (int t2 = 0; t2 < visible; t2++) {
                    const float *v = base + (size_t)t2 * row + 2 * E;
                    float *dv = dbase + (size_t)t2 * row + 2 * E;
                    float dp = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        dp += g[i] * v[i];
                        dv[i] += p[t2] * g[i];
                    }
                    ds[t2] = dp;
                    p_dot_dp += p[t2] * dp;
                }
                if (softmax)
                    for (int t2 = 0; t2 < visible; t2++) ds[t2] = p[t2] * (ds[t2] - p_dot_dp);
                for (int t2 = 0; t2 < visible; t2++) {
                    const float *k = base + (size_t)t2 * row + E;
                    float *dk = dbase + (size_t)t2 * row + E;
                    float w = ds[t2] * scale;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += w * k[i];
                        dk[i] += w * q[i];
                    }
                }
            }
        }
    }
}

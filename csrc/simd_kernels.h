/*
 * The inner vector kernels, written once against simd.h and compiled once per
 * ISA by simd_avx512.c, simd_avx2.c and simd_scalar.c (each defines SIMD_WIDTH,
 * GEMM_MR, GEMM_NV and includes simd.h, then this file). They are single-
 * threaded and allocation-free; the drivers in matmul.c, attention.c,
 * layernorm.c, mlp.c and adam.c split the work over threads and reach them
 * through ica_vk(). No include guard (one inclusion per ISA).
 *
 * Every reduction here runs in an order fixed by its arguments, so a result
 * depends on the dispatch path but never on how a driver splits the work.
 */

#define NR (GEMM_NV * VW) /* columns of the register tile */

/* Short names of the simd.h primitives: vadd is ISA(vadd), defined in simd.h
 * as "ISA(vadd)" and compiled as vadd_avx512, vadd_avx2, vadd_scalar (the
 * same scheme as the kernels below; see the index in kernels.h). */
#define vzero ISA(vzero)
#define vset1 ISA(vset1)
#define vload ISA(vload)
#define vstore ISA(vstore)
#define vload_n ISA(vload_n)
#define vstore_n ISA(vstore_n)
#define vadd ISA(vadd)
#define vsub ISA(vsub)
#define vmul ISA(vmul)
#define vdiv ISA(vdiv)
#define vmax ISA(vmax)
#define vfma ISA(vfma)
#define vsqrt ISA(vsqrt)
#define vsum ISA(vsum)
#define vhmax ISA(vhmax)
#define vexp2 ISA(vexp2)
#define vload_nfill ISA(vload_nfill)
#define vtranspose ISA(vtranspose)
#define vkeep_n ISA(vkeep_n)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* lanes of the vector starting at column j of a row of n columns */
ALWAYS_INLINE int ISA(lane_count)(int n, int j) {
    int left = n - j;
    return left < 0 ? 0 : left > VW ? VW : left;
}
#define lane_count ISA(lane_count)

/* ----------------------------------------------------------------- gemm */

/* The register-blocked GEMM tile, the one product kernel of the library:
 *   c (mr x nr, row stride ldc) = [cin] + [bias] + sum_{p < kc} A(i, p) B(p, j)
 *   A(i, p) = a[i * a_rs + p * a_cs]   (any strides: rows of inp for the
 *             forward pass, columns of inp for the weight gradient)
 *   B(p, j) = b[p * ldb + j]           (rows contiguous)
 * cin (row stride ldc) may be NULL, a residual stream, or c itself (to
 * accumulate); bias (nr) may be NULL. mr <= GEMM_MR, nr <= NR.
 * mr x nv accumulators stay in registers for the whole kc loop
 * (AVX-512 8 x 3 zmm, AVX2 6 x 2 ymm): per step GEMM_NV loads of B and GEMM_MR
 * broadcasts of A feed GEMM_MR * GEMM_NV FMAs. Rows i >= mr re-read row mr - 1
 * (valid memory) and are not stored, so tails need no second kernel.
 * Each output is summed over p in order, then + bias, then + cin.
 * The tile is compiled for every vector count nv = ceil(nr / VW) <= GEMM_NV
 * (and for full / masked last vectors), so narrow tiles (the hs-wide and
 * causal ones of attention) run only the FMAs they need. A one-vector tile
 * (nr <= VW) takes up to GEMM_MR1 = 2 GEMM_MR rows: with GEMM_MR rows its
 * accumulators are too few to cover the FMA latency on both pipes, and such
 * tiles are common at small widths (head size 12, n_embd 12, the 12-column
 * tail of 108). Each output's sum is the same whatever the tile's height. */
#define GEMM_MR1 (2 * GEMM_MR)
ALWAYS_INLINE void ISA(gemm_tile_impl)(float *c, ptrdiff_t ldc, const float *cin, const float *bias,
                                       const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                                       const float *b, ptrdiff_t ldb, int kc, int mr, int nr,
                                       const int nv, const int full, const int rows) {
    vec acc[GEMM_MR1][GEMM_NV];
    const float *row[GEMM_MR1];
    const int last = nr - (nv - 1) * VW; /* lanes of the last vector */
#pragma GCC unroll 32
    for (int i = 0; i < rows; i++) row[i] = a + (ptrdiff_t)(i < mr ? i : mr - 1) * a_rs;
#pragma GCC unroll 32
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) acc[i][v] = vzero();
    for (int p = 0; p < kc; p++) {
        const ptrdiff_t off = p * a_cs;
        vec bv[GEMM_NV];
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            bv[v] = full || v < nv - 1 ? vload(b + v * VW) : vload_n(b + v * VW, last);
#pragma GCC unroll 32
        for (int i = 0; i < rows; i++) {
            vec ai = vset1(row[i][off]);
#pragma GCC unroll 16
            for (int v = 0; v < nv; v++) acc[i][v] = vfma(ai, bv[v], acc[i][v]);
        }
        b += ldb;
    }
#pragma GCC unroll 32
    for (int i = 0; i < rows; i++) {
        if (i >= mr) break;
        float *ci = c + i * ldc;
        const float *cini = cin ? cin + i * ldc : NULL;
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            vec x = acc[i][v];
            if (full || v < nv - 1) {
                if (bias) x = vadd(x, vload(bias + v * VW));
                if (cini) x = vadd(x, vload(cini + v * VW));
                vstore(ci + v * VW, x);
            } else {
                if (bias) x = vadd(x, vload_n(bias + v * VW, last));
                if (cini) x = vadd(x, vload_n(cini + v * VW, last));
                vstore_n(ci + v * VW, x, last);
            }
        }
    }
}

static void ISA(gemm_tile)(float *c, ptrdiff_t ldc, const float *cin, const float *bias,
                           const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
                           ptrdiff_t ldb, int kc, int mr, int nr) {
    const int nv = (nr + VW - 1) / VW, full = nr == nv * VW;
#define GEMM_CALL(n, rows)                                                                         \
    do {                                                                                           \
        if (full)                                                                                  \
            ISA(gemm_tile_impl)(c, ldc, cin, bias, a, a_rs, a_cs, b, ldb, kc, mr, nr, n, 1, rows); \
        else                                                                                       \
            ISA(gemm_tile_impl)(c, ldc, cin, bias, a, a_rs, a_cs, b, ldb, kc, mr, nr, n, 0, rows); \
    } while (0)
#define GEMM_CASE(n)                                                                               \
    case n: GEMM_CALL(n, GEMM_MR); break;
    switch (nv) {
    case 1:
        if (mr > GEMM_MR)
            GEMM_CALL(1, GEMM_MR1);
        else
            GEMM_CALL(1, GEMM_MR);
        break;
#if GEMM_NV >= 2
        GEMM_CASE(2)
#endif
#if GEMM_NV >= 3
        GEMM_CASE(3)
#endif
#if GEMM_NV >= 4
        GEMM_CASE(4)
#endif
    default: /* the drivers never ask for more than GEMM_NV vectors */
        ica_internal_error(__FILE__, __LINE__, "gemm_tile: nr <= GEMM_NV * VW");
    }
#undef GEMM_CASE
#undef GEMM_CALL
}

/* sum (n) = [sum +] column sums of x (rows x n, row stride ld), n <= NR: the
 * bias gradient. Two interleaved row streams hide the add latency; the order
 * (evens, odds, then their sum, then + sum) is fixed by `rows`. */
static void ISA(colsum)(float *sum, const float *x, ptrdiff_t ld, int rows, int n, int accumulate) {
    vec even[GEMM_NV], odd[GEMM_NV];
    int cnt[GEMM_NV];
#pragma GCC unroll 16
    for (int v = 0; v < GEMM_NV; v++) {
        cnt[v] = lane_count(n, v * VW);
        even[v] = odd[v] = vzero();
    }
    int r = 0;
    for (; r + 1 < rows; r += 2)
#pragma GCC unroll 16
        for (int v = 0; v < GEMM_NV; v++) {
            even[v] = vadd(even[v], vload_n(x + r * ld + v * VW, cnt[v]));
            odd[v] = vadd(odd[v], vload_n(x + (r + 1) * ld + v * VW, cnt[v]));
        }
    if (r < rows)
#pragma GCC unroll 16
        for (int v = 0; v < GEMM_NV; v++)
            even[v] = vadd(even[v], vload_n(x + r * ld + v * VW, cnt[v]));
#pragma GCC unroll 16
    for (int v = 0; v < GEMM_NV; v++) {
        vec s = vadd(even[v], odd[v]);
        if (accumulate) s = vadd(vload_n(sum + v * VW, cnt[v]), s);
        vstore_n(sum + v * VW, s, cnt[v]);
    }
}

/* ------------------------------------------------------------ attention */

/* xt (hs, ldt) = x^T for the T rows x + t * ld of hs floats each, by VW x VW
 * in-register block transposes (whole-vector stores); columns T..ldt are
 * zero. ldt is a multiple of VW. */
static void ISA(transpose)(float *xt, int ldt, const float *x, ptrdiff_t ld, int T, int hs) {
    for (int t0 = 0; t0 < ldt; t0 += VW)
        for (int i0 = 0; i0 < hs; i0 += VW)
            vtranspose(xt + (size_t)i0 * ldt + t0, ldt, x + t0 * ld + i0, ld, lane_count(T, t0),
                       lane_count(hs, i0));
}

/* Attention probabilities of T rows of scores, in place: row t (stride ld, a
 * multiple of VW) holds q_t.k in its first visible_t = causal ? t + 1 : T
 * entries; softmax: p = exp(scale p - max) / sum, else (linear attention)
 * p = scale p; p[visible_t..ld) = 0 (masked). Whole vectors only: the masked
 * lanes of the last visible vector load as -inf for the max and are zeroed
 * (vkeep_n) before the sum and the store. Rows go in blocks of 16, one pass
 * per stage over the block (max, exp and sum, normalise): the rows of a stage
 * are independent, so their latency chains overlap. */
static void ISA(softmax_rows)(float *P, int ld, int T, int causal, float scale, int softmax) {
    const float k = scale * 1.4426950408889634f; /* exp(scale x) = 2^(k x), k > 0 */
    const vec kv = vset1(k), sc = vset1(scale);
    for (int t0 = 0; t0 < T; t0 += 16) {
        int t1 = t0 + 16 < T ? t0 + 16 : T;
        float mk[16], inv[16];
        if (softmax) {
            for (int t = t0; t < t1; t++) {
                const float *p = P + (size_t)t * ld;
                int visible = causal ? t + 1 : T;
                vec mx = vset1(-INFINITY);
                for (int j = 0; j < visible; j += VW)
                    mx = vmax(mx, vload_nfill(p + j, lane_count(visible, j), -INFINITY));
                mk[t - t0] = -vhmax(mx) * k;
            }
            for (int t = t0; t < t1; t++) {
                float *p = P + (size_t)t * ld;
                int visible = causal ? t + 1 : T;
                vec mkv = vset1(mk[t - t0]), s = vzero();
                for (int j = 0; j < visible; j += VW) {
                    vec e = vkeep_n(vexp2(vfma(vload(p + j), kv, mkv)), lane_count(visible, j));
                    vstore(p + j, e);
                    s = vadd(s, e);
                }
                inv[t - t0] = 1.0f / vsum(s);
            }
        }
        for (int t = t0; t < t1; t++) {
            float *p = P + (size_t)t * ld;
            int visible = causal ? t + 1 : T, j;
            if (softmax) {
                vec iv = vset1(inv[t - t0]);
                for (j = 0; j < visible; j += VW) vstore(p + j, vmul(vload(p + j), iv));
            } else {
                for (j = 0; j < visible; j += VW)
                    vstore(p + j, vkeep_n(vmul(vload(p + j), sc), lane_count(visible, j)));
            }
            for (; j < ld; j += VW) vstore(p + j, vzero());
        }
    }
}

/* Backward of softmax_rows, in place on dS (T rows, stride ld), which holds
 * dP = dO . v on entry (computed at least up to the vector holding
 * visible_t - 1): softmax: dS = scale * P * (dP - sum(P * dP)) (P is 0 past
 * visible); linear: dS = scale * dP. dS[visible_t..ld) = 0. scale folds the
 * 1/sqrt(hs) of the scores in. Blocks of 16 rows, as above. */
static void ISA(softmax_backward_rows)(float *dS, const float *P, int ld, int T, int causal,
                                       float scale, int softmax) {
    const vec sc = vset1(scale);
    for (int t0 = 0; t0 < T; t0 += 16) {
        int t1 = t0 + 16 < T ? t0 + 16 : T;
        float dot[16];
        if (softmax)
            for (int t = t0; t < t1; t++) {
                const float *p = P + (size_t)t * ld, *ds = dS + (size_t)t * ld;
                int visible = causal ? t + 1 : T;
                vec acc = vzero();
                for (int j = 0; j < visible; j += VW) acc = vfma(vload(p + j), vload(ds + j), acc);
                dot[t - t0] = vsum(acc);
            }
        for (int t = t0; t < t1; t++) {
            const float *p = P + (size_t)t * ld;
            float *ds = dS + (size_t)t * ld;
            int visible = causal ? t + 1 : T, j;
            if (softmax) {
                vec d = vset1(dot[t - t0]);
                for (j = 0; j < visible; j += VW)
                    vstore(ds + j, vmul(vmul(vload(p + j), vsub(vload(ds + j), d)), sc));
            } else {
                for (j = 0; j < visible; j += VW)
                    vstore(ds + j, vkeep_n(vmul(vload(ds + j), sc), lane_count(visible, j)));
            }
            for (; j < ld; j += VW) vstore(ds + j, vzero());
        }
    }
}

/* ------------------------------------------------------------ layernorm */

/* rows of (C): out = (x - mean) * rstd * weight + bias from saved statistics:
 * the forward pass's own output code, so the backward recompute is
 * bit-identical. */
static void ISA(layernorm_apply)(float *out, const float *inp, const float *mean, const float *rstd,
                                 const float *w, const float *b, int rows, int C) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        vec mv = vset1(mean[r]), sv = vset1(rstd[r]);
        for (int c = 0; c < C; c += VW) {
            int n = lane_count(C, c);
            vec norm = vmul(vsub(vload_n(x + c, n), mv), sv);
            vstore_n(o + c, vfma(norm, vload_n(w + c, n), vload_n(b + c, n)), n);
        }
    }
}

/* Rows go in blocks of LN_BLOCK, one pass per stage over the block (means,
 * variances, outputs): a row's stages form a ~100-cycle latency chain of
 * horizontal sums, and rows of one stage are independent, so they overlap. */
#define LN_BLOCK 16

/* x - m over one row's vector at c, with the masked lanes zero */
ALWAYS_INLINE vec ISA(centred)(const float *x, int C, int c, vec m) {
    int n = lane_count(C, c);
    vec v = vsub(vload_n(x + c, n), m);
    return n < VW ? vkeep_n(v, n) : v;
}

/* rows of (C): out = LN(inp) (biased variance, eps as torch), saving mean,
 * rstd (rows). */
static void ISA(layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                                   const float *w, const float *b, int rows, int C, float eps) {
    for (int r0 = 0; r0 < rows; r0 += LN_BLOCK) {
        int r1 = r0 + LN_BLOCK < rows ? r0 + LN_BLOCK : rows;
        for (int r = r0; r < r1; r++) {
            const float *x = inp + (size_t)r * C;
            vec s = vzero();
            for (int c = 0; c < C; c += VW) s = vadd(s, vload_n(x + c, lane_count(C, c)));
            mean[r] = vsum(s) / (float)C;
        }
        for (int r = r0; r < r1; r++) {
            const float *x = inp + (size_t)r * C;
            vec m = vset1(mean[r]), q = vzero();
            for (int c = 0; c < C; c += VW) {
                vec dev = ISA(centred)(x, C, c, m);
                q = vfma(dev, dev, q);
            }
            rstd[r] = 1.0f / sqrtf(vsum(q) / (float)C + eps);
        }
        const size_t at = (size_t)r0 * C;
        ISA(layernorm_apply)(out + at, inp + at, mean + r0, rstd + r0, w, b, r1 - r0, C);
    }
}

/* rows of (C): dinp += LN backward of dout; pw += sum_r norm * dout and
 * pb += sum_r dout (the chunk partials of the parameter gradients), rows in
 * order. Per block: the two row sums of every row, then pw/pb column by column
 * (accumulators in registers across the block's rows), then dinp. */
static void ISA(layernorm_backward)(float *dinp, float *pw, float *pb, const float *dout,
                                    const float *inp, const float *mean, const float *rstd,
                                    const float *w, int rows, int C) {
    for (int r0 = 0; r0 < rows; r0 += LN_BLOCK) {
        int r1 = r0 + LN_BLOCK < rows ? r0 + LN_BLOCK : rows;
        float mean_d[LN_BLOCK], mean_dn[LN_BLOCK];
        for (int r = r0; r < r1; r++) {
            const float *x = inp + (size_t)r * C, *g = dout + (size_t)r * C;
            vec mv = vset1(mean[r]), sv = vset1(rstd[r]), sd = vzero(), sdn = vzero();
            for (int c = 0; c < C; c += VW) {
                int n = lane_count(C, c);
                vec norm = vmul(ISA(centred)(x, C, c, mv), sv);
                vec dnorm = vmul(vload_n(w + c, n), vload_n(g + c, n)); /* masked lanes: 0 */
                sd = vadd(sd, dnorm);
                sdn = vfma(dnorm, norm, sdn);
            }
            mean_d[r - r0] = vsum(sd) / (float)C;
            mean_dn[r - r0] = vsum(sdn) / (float)C;
        }
        for (int c = 0; c < C; c += VW) {
            int n = lane_count(C, c);
            vec accw = vload_n(pw + c, n), accb = vload_n(pb + c, n);
            for (int r = r0; r < r1; r++) {
                vec gv = vload_n(dout + (size_t)r * C + c, n);
                vec norm =
                    vmul(vsub(vload_n(inp + (size_t)r * C + c, n), vset1(mean[r])), vset1(rstd[r]));
                accw = vfma(norm, gv, accw);
                accb = vadd(accb, gv);
            }
            vstore_n(pw + c, accw, n);
            vstore_n(pb + c, accb, n);
        }
        for (int r = r0; r < r1; r++) {
            const float *x = inp + (size_t)r * C, *g = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            vec mv = vset1(mean[r]), sv = vset1(rstd[r]);
            vec md = vset1(mean_d[r - r0]), mdn = vset1(mean_dn[r - r0]);
            for (int c = 0; c < C; c += VW) {
                int n = lane_count(C, c);
                vec norm = vmul(vsub(vload_n(x + c, n), mv), sv);
                vec dnorm = vmul(vload_n(w + c, n), vload_n(g + c, n));
                vec t = vsub(vsub(dnorm, md), vmul(norm, mdn));
                vstore_n(dx + c, vfma(sv, t, vload_n(dx + c, n)), n);
            }
        }
    }
}

/* ----------------------------------------------------------------- gelu */

/* gelu(x) = 0.5 x (1 + tanh(y)), y = sqrt(2/pi) (x + 0.044715 x^3), computed as
 * x s with s = 0.5 (1 + tanh y) = 1 / (1 + e), e = exp(-2y) = 2^t (log2(e)
 * folded into the cubic's coefficients): one exp2 and one reciprocal per
 * element. gelu'(x) = s + x s (1 - s) (2y)' with 1 - s = e s (no cancellation
 * for large x). Measured against double precision on a dense grid of
 * [-10, 10] (bench_kernels prints it): |gelu error| <= 1.5e-7 max(1, |x|),
 * |gelu' error| <= 2.4e-7 on all three paths. */
#define GELU_T0 -2.3022081981f /* -2 sqrt(2/pi) log2(e) */
#define GELU_T1 -0.1029432396f /* -2 sqrt(2/pi) 0.044715 log2(e) */
#define GELU_D0 1.5957691216f  /* (2y)' = 2 sqrt(2/pi) (1 + 3 0.044715 x^2) */
#define GELU_D1 0.2140644488f

/* out = gelu(inp) over n floats. */
static void ISA(gelu_forward)(float *out, const float *inp, size_t n) {
    vec one = vset1(1.0f), c0 = vset1(GELU_T0), c1 = vset1(GELU_T1);
    for (size_t i = 0; i < n; i += VW) {
        int cnt = n - i < VW ? (int)(n - i) : VW;
        vec x = vload_n(inp + i, cnt);
        vec s = vdiv(one, vadd(one, vexp2(vmul(x, vfma(c1, vmul(x, x), c0)))));
        vstore_n(out + i, vmul(x, s), cnt);
    }
}

/* out = gelu(inp) and grad = gelu'(inp) over n floats: the backward pass's
 * recompute of the GELU output, with the derivative from the same exp2. */
static void ISA(gelu_forward_grad)(float *out, float *grad, const float *inp, size_t n) {
    vec one = vset1(1.0f), c0 = vset1(GELU_T0), c1 = vset1(GELU_T1);
    vec d0 = vset1(GELU_D0), d1 = vset1(GELU_D1);
    for (size_t i = 0; i < n; i += VW) {
        int cnt = n - i < VW ? (int)(n - i) : VW;
        vec x = vload_n(inp + i, cnt), x2 = vmul(x, x);
        vec e = vexp2(vmul(x, vfma(c1, x2, c0))), s = vdiv(one, vadd(one, e));
        vec dy = vmul(x, vfma(d1, x2, d0)); /* x (2y)' */
        vstore_n(out + i, vmul(x, s), cnt);
        vstore_n(grad + i, vmul(s, vfma(vmul(e, s), dy, one)), cnt);
    }
}

/* x *= y over n floats (the GELU derivative applied to an incoming gradient). */
static void ISA(mul_inplace)(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i += VW) {
        int cnt = n - i < VW ? (int)(n - i) : VW;
        vstore_n(x + i, vmul(vload_n(x + i, cnt), vload_n(y + i, cnt)), cnt);
    }
}

/* ----------------------------------------------------------------- adam */

/* m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps), over n floats. */
static void ISA(adam)(float *params, float *m, float *v, const float *grads, size_t n, float beta1,
                      float beta2, float eps, float step_size, float bc2_sqrt) {
    vec b1 = vset1(beta1), c1 = vset1(1.0f - beta1), b2 = vset1(beta2), c2 = vset1(1.0f - beta2);
    vec e = vset1(eps), ss = vset1(step_size), bc = vset1(bc2_sqrt);
    for (size_t i = 0; i < n; i += VW) {
        int cnt = n - i < VW ? (int)(n - i) : VW;
        vec g = vload_n(grads + i, cnt);
        vec mi = vadd(vmul(b1, vload_n(m + i, cnt)), vmul(c1, g));
        vec vi = vadd(vmul(b2, vload_n(v + i, cnt)), vmul(vmul(c2, g), g));
        vec denom = vadd(vdiv(vsqrt(vi), bc), e);
        vec p = vsub(vload_n(params + i, cnt), vdiv(vmul(ss, mi), denom));
        vstore_n(m + i, mi, cnt);
        vstore_n(v + i, vi, cnt);
        vstore_n(params + i, p, cnt);
    }
}

/* ------------------------------------------------------------ PL loss */

#define vd_set1 ISA(vd_set1)
#define vd_load ISA(vd_load)
#define vd_store ISA(vd_store)
#define vd_add ISA(vd_add)
#define vd_sub ISA(vd_sub)
#define vd_mul ISA(vd_mul)
#define vd_div ISA(vd_div)
#define vd_fma ISA(vd_fma)
#define vd_lt ISA(vd_lt)
#define vd_le ISA(vd_le)
#define vd_sqrt ISA(vd_sqrt)
#define vd_max ISA(vd_max)
#define vd_lanes ISA(vd_lanes)
#define vd_sel ISA(vd_sel)

/* e^x for |x| <= 1 (cosine scores): (Taylor_12(x / 4))^4, relative error
 * < 1e-15. */
ALWAYS_INLINE vecd ISA(exp_unit)(vecd x) {
    /* clang-format off */
    static const double inv_fact[13] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120,
                                        1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880,
                                        1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600};
    /* clang-format on */
    vecd r = vd_mul(x, vd_set1(0.25)), p = vd_set1(inv_fact[12]);
    for (int i = 11; i >= 0; i--) p = vd_fma(p, r, vd_set1(inv_fact[i]));
    p = vd_mul(p, p);
    return vd_mul(p, p);
}

/* Plackett-Luce training objective with cosine reward (docs/math.md) for VWD
 * sequences at once, one per lane, in double precision: lane l is sequence
 * min(l, nseq - 1) of pred, ys (rows of N x d), rs (N). For n = 2..N-1 the
 * prediction n is scored against pairs 0..n-1 ranked by shown reward (stable):
 * the stable descending order of all N rewards restricted to indices < n, so
 * every lane runs the same N ranks per prefix, masked. With s_j = cos(yhat,
 * y_j) in [-1, 1], e^s needs no shift:
 *   loss = sum_i log S_i - sum_i s_i,  S_i = sum_{j >= i} e^{s_j},
 *   dL/ds_j = e^{s_j} sum_{i <= j} 1/S_i - 1,
 * and sum_i log S_i is one running product per lane, renormalised by its
 * exponent (one log per sequence at the end).
 *
 * The phases below are the steps of pl_cosine_lanes, in order: rank the
 * responses once; then per prediction n: normalise it, sweep the ranks worst
 * first (scores, suffix sums, the running product), sweep them best first
 * (dL/ds), accumulate A = sum_j g_j u_j, store dL/dyhat. */

/* The work arrays, each with L = VWD lanes innermost (losses.c sizes them). */
typedef struct {
    double *U;             /* (N, d, L) responses / |response|, at their rank */
    double *rank;          /* (N, L) pair index at each rank */
    double *sv, *ev, *Sv;  /* (N, L) scores; exps, then dL/ds; suffix sums */
    double *yn, *yraw, *A; /* (d, L) normalised and raw prediction; A */
    double *rv;            /* (N, L) rewards */
} pl_work;

/* The running sum_i log S_i - sum_i s_i of each lane: prod 2^expo + lsum. */
typedef struct {
    vecd lsum, prod, expo;
} pl_loss_acc;

ALWAYS_INLINE pl_work ISA(pl_carve)(double *work, int N, int d) {
    enum { L = VWD };
    pl_work w;
    w.U = work;
    w.rank = w.U + (size_t)N * d * L;
    w.sv = w.rank + (size_t)N * L;
    w.ev = w.sv + (size_t)N * L;
    w.Sv = w.ev + (size_t)N * L;
    w.yn = w.Sv + (size_t)N * L;
    w.yraw = w.yn + (size_t)d * L;
    w.A = w.yraw + (size_t)d * L;
    w.rv = w.A + (size_t)d * L;
    return w;
}

/* Phase 1: rank of pair k: pairs with a larger reward, or an equal one and a
 * lower index, come first (stable), counted with vector compares, no
 * branches; each response over its norm is scattered to its rank. */
ALWAYS_INLINE void ISA(pl_rank_responses)(const pl_work *w, const float *ys, const float *rs,
                                          int nseq, int N, int d, vecd veps) {
    enum { L = VWD };
    const vecd one = vd_set1(1.0), zero = vd_set1(0.0);
    double tmp[L], lane[L];
    for (int k = 0; k < N; k++) vd_store(w->rv + (size_t)k * L, vd_lanes(rs + k, N, nseq));
    for (int k = 0; k < N; k++) {
        vecd rk = vd_load(w->rv + (size_t)k * L), pos = zero;
        for (int j = 0; j < N; j++) {
            vecd rj = vd_load(w->rv + (size_t)j * L);
            vmaskd before = j < k ? vd_le(rk, rj) : vd_lt(rk, rj);
            pos = vd_add(pos, vd_sel(before, one, zero));
        }
        vecd sq = zero;
        for (int i = 0; i < d; i++) {
            vecd y = vd_lanes(ys + (size_t)k * d + i, (ptrdiff_t)N * d, nseq);
            vd_store(w->yn + (size_t)i * L, y);
            sq = vd_fma(y, y, sq);
        }
        vecd inv = vd_div(one, vd_max(vd_sqrt(sq), veps));
        vd_store(tmp, pos);
        for (int i = 0; i < d; i++) {
            vd_store(lane, vd_mul(vd_load(w->yn + (size_t)i * L), inv));
            for (int l = 0; l < L; l++) w->U[((size_t)tmp[l] * d + i) * L + l] = lane[l];
        }
        for (int l = 0; l < L; l++) w->rank[(size_t)tmp[l] * L + l] = k;
    }
}

/* Phase 2: prediction n over its norm into yn (raw into yraw); *inv_na =
 * 1/|yhat| (clamped); *radial = 1/|yhat|^2, or 0 where the norm is clamped
 * (the clamped norm is constant, and only then does cos lose its yhat term). */
ALWAYS_INLINE void ISA(pl_normalise_prediction)(const pl_work *w, vecd *inv_na, vecd *radial,
                                                const float *pred, int n, int nseq, int N, int d,
                                                vecd veps) {
    enum { L = VWD };
    const vecd one = vd_set1(1.0), zero = vd_set1(0.0);
    vecd sq = zero;
    for (int i = 0; i < d; i++) {
        vecd y = vd_lanes(pred + (size_t)n * d + i, (ptrdiff_t)N * d, nseq);
        vd_store(w->yraw + (size_t)i * L, y);
        sq = vd_fma(y, y, sq);
    }
    vecd norm = vd_sqrt(sq), na = vd_max(norm, veps);
    *inv_na = vd_div(one, na);
    *radial = vd_sel(vd_lt(veps, norm), vd_mul(*inv_na, *inv_na), zero);
    for (int i = 0; i < d; i++)
        vd_store(w->yn + (size_t)i * L, vd_mul(vd_load(w->yraw + (size_t)i * L), *inv_na));
}

/* Phase 3: worst rank first: scores (sv), exps (ev), suffix sums (Sv) of the
 * ranks valid at prefix n (rank < cut), and their product into acc. */
ALWAYS_INLINE void ISA(pl_suffix_sums)(const pl_work *w, pl_loss_acc *acc, vecd cut, int N, int d) {
    enum { L = VWD };
    const vecd one = vd_set1(1.0), zero = vd_set1(0.0);
    vecd S = zero;
    for (int p = N - 1; p >= 0; p--) {
        const double *Up = w->U + (size_t)p * d * L;
        vecd dot = zero;
        for (int i = 0; i < d; i++)
            dot = vd_fma(vd_load(w->yn + (size_t)i * L), vd_load(Up + (size_t)i * L), dot);
        vmaskd valid = vd_lt(vd_load(w->rank + (size_t)p * L), cut);
        vecd e = vd_sel(valid, ISA(exp_unit)(dot), zero);
        S = vd_add(S, e);
        vd_store(w->sv + (size_t)p * L, dot);
        vd_store(w->ev + (size_t)p * L, e);
        vd_store(w->Sv + (size_t)p * L, S);
        acc->prod = vd_mul(acc->prod, vd_sel(valid, S, one));
        acc->lsum = vd_sub(acc->lsum, vd_sel(valid, dot, zero));
        if ((p & 15) == 0) { /* S <= N e: keep the product in range */
            vecd mant, ex = ISA(vd_split)(acc->prod, &mant);
            acc->prod = mant;
            acc->expo = vd_add(acc->expo, ex);
        }
    }
}

/* Phase 4: best rank first: dL/ds_j into ev; returns C = sum_j g_j s_j. */
ALWAYS_INLINE vecd ISA(pl_score_gradient)(const pl_work *w, vecd cut, int N) {
    enum { L = VWD };
    const vecd one = vd_set1(1.0), zero = vd_set1(0.0);
    vecd R = zero, C = zero;
    for (int p = 0; p < N; p++) {
        vmaskd valid = vd_lt(vd_load(w->rank + (size_t)p * L), cut);
        R = vd_add(R, vd_sel(valid, vd_div(one, vd_load(w->Sv + (size_t)p * L)), zero));
        vecd g = vd_sel(valid, vd_sub(vd_mul(vd_load(w->ev + (size_t)p * L), R), one), zero);
        C = vd_fma(g, vd_load(w->sv + (size_t)p * L), C);
        vd_store(w->ev + (size_t)p * L, g);
    }
    return C;
}

/* Phase 5: A = sum_j g_j u_j, eight dimensions at a time held in registers. */
ALWAYS_INLINE void ISA(pl_accumulate_A)(const pl_work *w, int N, int d) {
    enum { L = VWD };
    const vecd zero = vd_set1(0.0);
    for (int i0 = 0; i0 < d; i0 += 8) {
        vecd acc[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[j] = zero;
        for (int p = 0; p < N; p++) {
            const double *Up = w->U + ((size_t)p * d + i0) * L;
            vecd g = vd_load(w->ev + (size_t)p * L);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                if (i0 + j < d) acc[j] = vd_fma(g, vd_load(Up + (size_t)j * L), acc[j]);
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            if (i0 + j < d) vd_store(w->A + (size_t)(i0 + j) * L, acc[j]);
    }
}

/* Phase 6: dpred row n of the real lanes = scale (A / |yhat| - C radial yhat). */
ALWAYS_INLINE void ISA(pl_store_gradient)(float *dpred, const pl_work *w, int n, int nseq, int N,
                                          int d, double scale, vecd inv_na, vecd radial, vecd C) {
    enum { L = VWD };
    double lane[L];
    vecd vs = vd_set1(scale), Cr = vd_mul(C, radial);
    for (int i = 0; i < d; i++) {
        vecd g = vd_sub(vd_mul(vd_load(w->A + (size_t)i * L), inv_na),
                        vd_mul(Cr, vd_load(w->yraw + (size_t)i * L)));
        vd_store(lane, vd_mul(vs, g));
        for (int l = 0; l < nseq && l < L; l++) dpred[((size_t)l * N + n) * d + i] = (float)lane[l];
    }
}

/* loss[l]: the sequence's summed loss (unscaled); dpred rows of the real lanes
 * receive scale * dL/dpred (rows 0, 1 zero). work: see losses.c. */
static void ISA(pl_cosine_lanes)(double *loss, float *dpred, double *work, const float *pred,
                                 const float *ys, const float *rs, int nseq, int N, int d,
                                 double scale) {
    enum { L = VWD };
    const vecd veps = vd_set1(1e-8); /* cosine norms are clamped below at this value */
    const pl_work w = ISA(pl_carve)(work, N, d);
    ISA(pl_rank_responses)(&w, ys, rs, nseq, N, d, veps);
    pl_loss_acc acc = {vd_set1(0.0), vd_set1(1.0), vd_set1(0.0)};
    for (int n = 2; n < N; n++) {
        vecd inv_na, radial;
        ISA(pl_normalise_prediction)(&w, &inv_na, &radial, pred, n, nseq, N, d, veps);
        const vecd cut = vd_set1((double)n);
        ISA(pl_suffix_sums)(&w, &acc, cut, N, d);
        vecd C = ISA(pl_score_gradient)(&w, cut, N);
        ISA(pl_accumulate_A)(&w, N, d);
        ISA(pl_store_gradient)(dpred, &w, n, nseq, N, d, scale, inv_na, radial, C);
    }
    double pr[L], ex[L], ls[L];
    vd_store(pr, acc.prod);
    vd_store(ex, acc.expo);
    vd_store(ls, acc.lsum);
    for (int l = 0; l < nseq && l < L; l++) {
        loss[l] = log(pr[l]) + ex[l] * 0.69314718055994530942 + ls[l];
        for (int i = 0; i < 2 * d; i++) dpred[(size_t)l * N * d + i] = 0.0f;
    }
}

/* ---------------------------------------------------------------- table */

const ica_vector_kernels ISA(ica_vk) = {
    .name = ISA_NAME,
    .gemm_mr = GEMM_MR,
    .gemm_nr = NR,
    .gemm_vw = VW,
    .gemm_mr1 = GEMM_MR1,
    .gemm_tile = ISA(gemm_tile),
    .colsum = ISA(colsum),
    .transpose = ISA(transpose),
    .softmax_rows = ISA(softmax_rows),
    .softmax_backward_rows = ISA(softmax_backward_rows),
    .layernorm_forward = ISA(layernorm_forward),
    .layernorm_apply = ISA(layernorm_apply),
    .layernorm_backward = ISA(layernorm_backward),
    .gelu_forward = ISA(gelu_forward),
    .gelu_forward_grad = ISA(gelu_forward_grad),
    .mul_inplace = ISA(mul_inplace),
    .adam = ISA(adam),
    .pl_lanes = VWD,
    .pl_cosine_lanes = ISA(pl_cosine_lanes),
};

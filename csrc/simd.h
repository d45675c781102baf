/*
 * simd.h: one small vector vocabulary over three instruction sets, so that each
 * vector kernel is written once (simd_kernels.h) and compiled once per ISA.
 *
 * No include guard: a file includes it once per ISA after defining SIMD_WIDTH
 *   16  AVX-512 (F, DQ, VL, BW) + FMA, zmm registers
 *    8  AVX2 + FMA, ymm registers
 *    4  portable C with GCC/clang vector extensions (SSE2 / NEON baseline)
 * inside a `#pragma GCC target` region for that ISA (see simd_avx512.c etc.).
 *
 * vocabulary: vec, VW (lanes), ISA(name) (per-ISA symbol), vzero, vset1, vload,
 * vstore, vload_n / vstore_n (first n lanes, 0 <= n <= VW: never touch memory
 * past p + n; vload_nfill puts `fill` in the other lanes; vkeep_n zeroes
 * lanes >= n of a register), vtranspose (a VW x VW block), vadd, vsub, vmul, vdiv, vmax, vmin,
 * vfma(a, b, c) = a * b + c (fused on the vector paths), vsum / vhmax (horizontal, in a fixed lane
 * order), vsqrt, vexp2.
 *
 * Doubles (the PL loss): vecd with VWD lanes, vd_set1/load/store/add/sub/mul/
 * div/fma/sqrt/max, vd_lt / vd_le (masks) and vd_sel(mask, a, b), vd_split
 * (x = mant 2^exp), vd_lanes (one float from each of VWD strided
 * rows).
 *
 * vexp2: 2^x = 2^n 2^f, n = round(x), |f| <= 1/2, 2^f by its degree-6 Taylor
 * polynomial (relative error < 1.3e-7), times 2^n (scalef on AVX-512,
 * exponent bits otherwise); x clamped to [-126, 127], so 2^x never overflows
 * and bottoms out at 1.2e-38. Callers fold log2(e) into their own constants
 * (one multiply fewer than a natural exp).
 *
 * Every operation here is exactly specified by IEEE 754 or is a bit
 * manipulation, so a path gives the same bits on every CPU that runs it. That
 * is why no hardware estimate appears (rcpps, rsqrtps, rcp14): their results
 * are left to the implementation and differ between Intel and AMD cores.
 * Reciprocals are divisions, which cost nothing measurable where they are used.
 */
#undef VW
#undef VWD
#undef ISA
#undef ISA_CAT
#undef ISA_CAT2

#define ISA_CAT2(a, b) a##_##b
#define ISA_CAT(a, b) ISA_CAT2(a, b)

#if SIMD_WIDTH == 16
#include <immintrin.h>
#define VW 16
#define ISA(name) ISA_CAT(name, avx512)
typedef __m512 vec;
static inline vec ISA(vzero)(void) { return _mm512_setzero_ps(); }
static inline vec ISA(vset1)(float x) { return _mm512_set1_ps(x); }
static inline vec ISA(vload)(const float *p) { return _mm512_loadu_ps(p); }
static inline void ISA(vstore)(float *p, vec v) { _mm512_storeu_ps(p, v); }
static inline __mmask16 ISA(lanes)(int n) { return (__mmask16)((1u << n) - 1u); }
static inline vec ISA(vload_n)(const float *p, int n) {
    return _mm512_maskz_loadu_ps(ISA(lanes)(n), p);
}
static inline void ISA(vstore_n)(float *p, vec v, int n) {
    _mm512_mask_storeu_ps(p, ISA(lanes)(n), v);
}
static inline vec ISA(vadd)(vec a, vec b) { return _mm512_add_ps(a, b); }
static inline vec ISA(vsub)(vec a, vec b) { return _mm512_sub_ps(a, b); }
static inline vec ISA(vmul)(vec a, vec b) { return _mm512_mul_ps(a, b); }
static inline vec ISA(vdiv)(vec a, vec b) { return _mm512_div_ps(a, b); }
static inline vec ISA(vmax)(vec a, vec b) { return _mm512_max_ps(a, b); }
static inline vec ISA(vmin)(vec a, vec b) { return _mm512_min_ps(a, b); }
static inline vec ISA(vfma)(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline vec ISA(vsqrt)(vec a) { return _mm512_sqrt_ps(a); }
static inline float ISA(vsum)(vec v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
static inline float ISA(vhmax)(vec v) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
static inline vec ISA(vround)(vec v) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vec ISA(vscale2)(vec p, vec n) { return _mm512_scalef_ps(p, n); } /* p 2^n */
static inline vec ISA(vkeep_n)(vec v, int n) { /* lanes >= n set to 0 */
    return _mm512_maskz_mov_ps(ISA(lanes)(n), v);
}
static inline vec ISA(vload_nfill)(const float *p, int n, float fill) { /* fill beyond n */
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), ISA(lanes)(n), p);
}
/* dst rows i < cols (row stride ldd, VW floats each) = column i of the block
 * of `rows` rows x `cols` columns at src (row stride lds); lanes >= rows 0.
 * In-register 16 x 16 transpose: 4 shuffle stages. */
static inline void ISA(vtranspose)(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t lds,
                                   int rows, int cols) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] =
            i < rows ? _mm512_maskz_loadu_ps(ISA(lanes)(cols), src + i * lds) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(
            _mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(
            _mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(
            _mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(
            _mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
    for (int i = 0; i < cols; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}

/* doubles: vecd (8 lanes), masks from vd_lt */
#define VWD 8
typedef __m512d vecd;
typedef __mmask8 vmaskd;
static inline vecd ISA(vd_set1)(double x) { return _mm512_set1_pd(x); }
static inline vecd ISA(vd_load)(const double *p) { return _mm512_loadu_pd(p); }
static inline void ISA(vd_store)(double *p, vecd v) { _mm512_storeu_pd(p, v); }
static inline vecd ISA(vd_add)(vecd a, vecd b) { return _mm512_add_pd(a, b); }
static inline vecd ISA(vd_sub)(vecd a, vecd b) { return _mm512_sub_pd(a, b); }
static inline vecd ISA(vd_mul)(vecd a, vecd b) { return _mm512_mul_pd(a, b); }
static inline vecd ISA(vd_div)(vecd a, vecd b) { return _mm512_div_pd(a, b); }
static inline vecd ISA(vd_fma)(vecd a, vecd b, vecd c) { return _mm512_fmadd_pd(a, b, c); }
/* lane l = p[min(l, n - 1) * stride] as a double: one element of each of
 * up to 8 sequences, built in registers (scalar stores read back by one
 * vector load stall store forwarding) */
static inline vecd ISA(vd_lanes)(const float *p, ptrdiff_t stride, int n) {
#define LANE_(l) (double)p[((l) < n ? (l) : n - 1) * stride]
    return _mm512_set_pd(LANE_(7), LANE_(6), LANE_(5), LANE_(4), LANE_(3), LANE_(2), LANE_(1),
                         LANE_(0));
#undef LANE_
}
static inline vecd ISA(vd_sqrt)(vecd a) { return _mm512_sqrt_pd(a); }
static inline vecd ISA(vd_max)(vecd a, vecd b) { return _mm512_max_pd(a, b); }
static inline vmaskd ISA(vd_lt)(vecd a, vecd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
static inline vmaskd ISA(vd_le)(vecd a, vecd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ); }
static inline vecd ISA(vd_sel)(vmaskd m, vecd a, vecd b) { return _mm512_mask_blend_pd(m, b, a); }
/* x = mant * 2^exp, mant in [1, 2), for normal x > 0: returns exp, sets mant */
static inline vecd ISA(vd_split)(vecd x, vecd *mant) {
    *mant = _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    return _mm512_getexp_pd(x);
}

#elif SIMD_WIDTH == 8
#include <immintrin.h>
#define VW 8
#define ISA(name) ISA_CAT(name, avx2)
typedef __m256 vec;
static inline vec ISA(vzero)(void) { return _mm256_setzero_ps(); }
static inline vec ISA(vset1)(float x) { return _mm256_set1_ps(x); }
static inline vec ISA(vload)(const float *p) { return _mm256_loadu_ps(p); }
static inline void ISA(vstore)(float *p, vec v) { _mm256_storeu_ps(p, v); }
static inline __m256i ISA(lanes)(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* The kernels' loops pass full vectors but for their last one, and a full
 * vector takes the plain load and store. AMD's Zen cores microcode vmaskmovps
 * to memory (many times the cost of vmovups), so a partial vector is stored
 * as 4-, 2- and 1-float pieces and nothing past p + n is touched; the masked
 * load is kept for partial vectors but costs more than vmovups too (Zen 3:
 * LayerNorm + GELU of a paper-size chunk 94-98 us with it for full vectors,
 * 79-80 us without). */
static inline vec ISA(vload_n)(const float *p, int n) {
    if (n == 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, ISA(lanes)(n));
}
static inline void ISA(vstore_n)(float *p, vec v, int n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps(v, 1);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)p, part);
        part = _mm_movehl_ps(part, part);
        p += 2;
        n -= 2;
    }
    if (n) _mm_store_ss(p, part);
}
static inline vec ISA(vadd)(vec a, vec b) { return _mm256_add_ps(a, b); }
static inline vec ISA(vsub)(vec a, vec b) { return _mm256_sub_ps(a, b); }
static inline vec ISA(vmul)(vec a, vec b) { return _mm256_mul_ps(a, b); }
static inline vec ISA(vdiv)(vec a, vec b) { return _mm256_div_ps(a, b); }
static inline vec ISA(vmax)(vec a, vec b) { return _mm256_max_ps(a, b); }
static inline vec ISA(vmin)(vec a, vec b) { return _mm256_min_ps(a, b); }
static inline vec ISA(vfma)(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec ISA(vsqrt)(vec a) { return _mm256_sqrt_ps(a); }
static inline float ISA(vsum)(vec v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
static inline float ISA(vhmax)(vec v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
static inline vec ISA(vround)(vec v) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vec ISA(vscale2)(vec p, vec n) { /* p 2^n, integral n in [-126, 127] */
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}
static inline vec ISA(vkeep_n)(vec v, int n) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(ISA(lanes)(n)));
}
static inline vec ISA(vload_nfill)(const float *p, int n, float fill) {
    return _mm256_blendv_ps(_mm256_set1_ps(fill), ISA(vload_n)(p, n),
                            _mm256_castsi256_ps(ISA(lanes)(n)));
}
/* 8 x 8 in-register transpose; contract as in the AVX-512 block above */
static inline void ISA(vtranspose)(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t lds,
                                   int rows, int cols) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++)
        r[i] = i < rows ? ISA(vload_n)(src + i * lds, cols) : _mm256_setzero_ps();
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < cols; i++) _mm256_storeu_ps(dst + i * ldd, t[i]);
}

/* doubles: vecd (4 lanes), masks from vd_lt */
#define VWD 4
typedef __m256d vecd;
typedef __m256d vmaskd;
static inline vecd ISA(vd_set1)(double x) { return _mm256_set1_pd(x); }
static inline vecd ISA(vd_load)(const double *p) { return _mm256_loadu_pd(p); }
static inline void ISA(vd_store)(double *p, vecd v) { _mm256_storeu_pd(p, v); }
static inline vecd ISA(vd_add)(vecd a, vecd b) { return _mm256_add_pd(a, b); }
static inline vecd ISA(vd_sub)(vecd a, vecd b) { return _mm256_sub_pd(a, b); }
static inline vecd ISA(vd_mul)(vecd a, vecd b) { return _mm256_mul_pd(a, b); }
static inline vecd ISA(vd_div)(vecd a, vecd b) { return _mm256_div_pd(a, b); }
static inline vecd ISA(vd_fma)(vecd a, vecd b, vecd c) { return _mm256_fmadd_pd(a, b, c); }
static inline vecd ISA(vd_lanes)(const float *p, ptrdiff_t stride, int n) {
#define LANE_(l) (double)p[((l) < n ? (l) : n - 1) * stride]
    return _mm256_set_pd(LANE_(3), LANE_(2), LANE_(1), LANE_(0));
#undef LANE_
}
static inline vecd ISA(vd_sqrt)(vecd a) { return _mm256_sqrt_pd(a); }
static inline vecd ISA(vd_max)(vecd a, vecd b) { return _mm256_max_pd(a, b); }
static inline vmaskd ISA(vd_lt)(vecd a, vecd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
static inline vmaskd ISA(vd_le)(vecd a, vecd b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
static inline vecd ISA(vd_sel)(vmaskd m, vecd a, vecd b) { return _mm256_blendv_pd(b, a, m); }
static inline vecd ISA(vd_split)(vecd x, vecd *mant) {
    const __m256i mbits = _mm256_set1_epi64x(0x000fffffffffffffll);
    __m256i bits = _mm256_castpd_si256(x);
    *mant = _mm256_castsi256_pd(
        _mm256_or_si256(_mm256_and_si256(bits, mbits), _mm256_set1_epi64x(0x3ff0000000000000ll)));
    /* biased exponent e < 2^11 as a double: bits of (2^52 + e) minus 2^52 */
    __m256i e = _mm256_srli_epi64(bits, 52);
    __m256d big = _mm256_castsi256_pd(_mm256_or_si256(e, _mm256_set1_epi64x(0x4330000000000000ll)));
    return _mm256_sub_pd(big, _mm256_set1_pd(4503599627370496.0 + 1023.0));
}

#elif SIMD_WIDTH == 4
/* Portable C with GCC/clang vector extensions: 4 floats, compiled for the
 * baseline of whatever the target is (SSE2 on x86-64, NEON on arm64); the
 * library's portable path. Lane loops where there is no portable instruction. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#define VW 4
#define ISA(name) ISA_CAT(name, scalar)
typedef float vec __attribute__((vector_size(16)));
typedef int32_t veci __attribute__((vector_size(16)));
static inline vec ISA(vzero)(void) { return (vec){0.0f, 0.0f, 0.0f, 0.0f}; }
static inline vec ISA(vset1)(float x) { return (vec){x, x, x, x}; }
static inline vec ISA(vload)(const float *p) {
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void ISA(vstore)(float *p, vec v) { memcpy(p, &v, sizeof v); }
static inline vec ISA(vload_n)(const float *p, int n) {
    vec v = ISA(vzero)();
    for (int l = 0; l < n; l++) v[l] = p[l];
    return v;
}
static inline void ISA(vstore_n)(float *p, vec v, int n) {
    for (int l = 0; l < n; l++) p[l] = v[l];
}
static inline vec ISA(vadd)(vec a, vec b) { return a + b; }
static inline vec ISA(vsub)(vec a, vec b) { return a - b; }
static inline vec ISA(vmul)(vec a, vec b) { return a * b; }
static inline vec ISA(vdiv)(vec a, vec b) { return a / b; }
static inline vec ISA(vsel_)(veci m, vec a, vec b) { /* a where m, else b */
    return (vec)(((veci)a & m) | ((veci)b & ~m));
}
static inline vec ISA(vmax)(vec a, vec b) { return ISA(vsel_)(a > b, a, b); }
static inline vec ISA(vmin)(vec a, vec b) { return ISA(vsel_)(a < b, a, b); }
/* not fused: the portable path has no guaranteed FMA instruction */
static inline vec ISA(vfma)(vec a, vec b, vec c) { return a * b + c; }
static inline vec ISA(vsqrt)(vec a) {
    for (int l = 0; l < 4; l++) a[l] = sqrtf(a[l]);
    return a;
}
static inline float ISA(vsum)(vec v) { return (v[0] + v[1]) + (v[2] + v[3]); }
static inline float ISA(vhmax)(vec v) {
    float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
    return a > b ? a : b;
}
static inline vec ISA(vkeep_n)(vec v, int n) {
    for (int l = n; l < 4; l++) v[l] = 0.0f;
    return v;
}
static inline vec ISA(vload_nfill)(const float *p, int n, float fill) {
    vec v = ISA(vset1)(fill);
    for (int l = 0; l < n; l++) v[l] = p[l];
    return v;
}
static inline void ISA(vtranspose)(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t lds,
                                   int rows, int cols) {
    for (int i = 0; i < cols; i++)
        for (int l = 0; l < 4; l++) dst[i * ldd + l] = l < rows ? src[l * lds + i] : 0.0f;
}
static inline vec ISA(vround)(vec v) {         /* to nearest, |v| < 2^22 (vexp2's range) */
    const vec magic = ISA(vset1)(12582912.0f); /* 1.5 * 2^23 */
    return (v + magic) - magic;
}
static inline vec ISA(vscale2)(vec p, vec n) { /* p 2^n, integral n in [-126, 127] */
    veci e = (__builtin_convertvector(n, veci) + 127) << 23;
    return p * (vec)e;
}

/* doubles: two lanes */
#define VWD 2
typedef double vecd __attribute__((vector_size(16)));
typedef int64_t vmaskd __attribute__((vector_size(16)));
static inline vecd ISA(vd_set1)(double x) { return (vecd){x, x}; }
static inline vecd ISA(vd_load)(const double *p) {
    vecd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void ISA(vd_store)(double *p, vecd v) { memcpy(p, &v, sizeof v); }
static inline vecd ISA(vd_add)(vecd a, vecd b) { return a + b; }
static inline vecd ISA(vd_sub)(vecd a, vecd b) { return a - b; }
static inline vecd ISA(vd_mul)(vecd a, vecd b) { return a * b; }
static inline vecd ISA(vd_div)(vecd a, vecd b) { return a / b; }
static inline vecd ISA(vd_fma)(vecd a, vecd b, vecd c) { return a * b + c; }
static inline vecd ISA(vd_lanes)(const float *p, ptrdiff_t stride, int n) {
    return (vecd){(double)p[0], (double)p[(1 < n ? 1 : n - 1) * stride]};
}
static inline vecd ISA(vd_sqrt)(vecd a) {
    for (int l = 0; l < 2; l++) a[l] = sqrt(a[l]);
    return a;
}
static inline vmaskd ISA(vd_lt)(vecd a, vecd b) { return a < b; }
static inline vmaskd ISA(vd_le)(vecd a, vecd b) { return a <= b; }
static inline vecd ISA(vd_sel)(vmaskd m, vecd a, vecd b) {
    return (vecd)(((vmaskd)a & m) | ((vmaskd)b & ~m));
}
static inline vecd ISA(vd_max)(vecd a, vecd b) { return ISA(vd_sel)(a > b, a, b); }
static inline vecd ISA(vd_split)(vecd x, vecd *mant) {
    vecd e;
    for (int l = 0; l < 2; l++) {
        int k;
        (*mant)[l] = 2.0 * frexp(x[l], &k); /* frexp: [0.5, 1) */
        e[l] = (double)(k - 1);
    }
    return e;
}

#else
#error "SIMD_WIDTH must be 16, 8 or 4"
#endif

/* 2^x: n = round(x), f = x - n in [-1/2, 1/2], 2^f by its degree-6 Taylor
 * polynomial (relative error < 1.3e-7), times 2^n; x clamped to [-126, 127]. */
static inline vec ISA(vexp2)(vec x) {
    x = ISA(vmin)(ISA(vmax)(x, ISA(vset1)(-126.0f)), ISA(vset1)(127.0f));
    vec n = ISA(vround)(x), f = ISA(vsub)(x, n);
    vec p = ISA(vset1)(1.5403530393381606e-4f); /* ln2^6 / 6! */
    p = ISA(vfma)(p, f, ISA(vset1)(1.3333558146428443e-3f));
    p = ISA(vfma)(p, f, ISA(vset1)(9.6181291076284772e-3f));
    p = ISA(vfma)(p, f, ISA(vset1)(5.5504108664821580e-2f));
    p = ISA(vfma)(p, f, ISA(vset1)(2.4022650695910071e-1f));
    p = ISA(vfma)(p, f, ISA(vset1)(6.9314718055994531e-1f));
    p = ISA(vfma)(p, f, ISA(vset1)(1.0f));
    return ISA(vscale2)(p, n);
}

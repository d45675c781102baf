/* Peak fp32 FMA throughput of this machine: independent FMA chains held in
 * registers (no memory traffic), on 1 thread and on every thread (OpenMP).
 * AVX-512 (zmm) and AVX2 (ymm) variants are chosen at run time, as in the
 * library. Prints one line per (isa, threads): GFLOP/s.
 *
 *   cc -O2 -fopenmp benchmarks/peak.c -o peak && ./peak [seconds]
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12

/* Twelve named accumulators (not an array, which compilers may keep in
 * memory): 12 > FMA latency (4) x FMA pipes (2), so both pipes stay busy. */
#define CHAIN_STEP(FMA)                                                                    \
    a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c);       \
    a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c);       \
    a8 = FMA(a8, m, c); a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c)

__attribute__((target("avx512f"), noinline)) static float fma_zmm(long iters) {
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
           a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
           a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8),
           a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    for (long it = 0; it < iters; it++) {
        CHAIN_STEP(_mm512_fmadd_ps);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_ymm(long iters) {
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
           a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
           a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
           a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    for (long it = 0; it < iters; it++) {
        CHAIN_STEP(_mm256_fmadd_ps);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8], r = 0.0f;
    _mm256_storeu_ps(out, s);
    for (int i = 0; i < 8; i++) r += out[i];
    return r;
}

/* Best of 5 runs of `iters` iterations on `threads` threads: GFLOP/s. */
static double measure(int wide, int threads, long iters) {
    double best = 0.0;
    int lanes = wide ? 16 : 8;
    for (int rep = 0; rep < 5; rep++) {
        volatile float sink = 0.0f;
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
        {
            float r = wide ? fma_zmm(iters) : fma_ymm(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = omp_get_wtime() - t0;
        double gflops = 2.0 * lanes * CHAINS * (double)iters * threads / dt / 1e9;
        if (gflops > best) best = gflops;
    }
    return best;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    int max_threads = omp_get_max_threads();
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has256 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* calibrate: about `seconds` per run on one thread */
    long iters = 1000000;
    if (has256 || has512) {
        double g = measure(has512, 1, iters);
        double flops_per_iter = 2.0 * (has512 ? 16 : 8) * CHAINS;
        iters = (long)(seconds * g * 1e9 / flops_per_iter);
        if (iters < 1000) iters = 1000;
    }
    for (int wide = 1; wide >= 0; wide--) {
        if (wide ? !has512 : !has256) continue;
        for (int t = 1; t <= max_threads; t *= 2)
            printf("%s threads=%d gflops=%.1f\n", wide ? "avx512" : "avx2", t,
                   measure(wide, t, iters));
        if (max_threads & (max_threads - 1))
            printf("%s threads=%d gflops=%.1f\n", wide ? "avx512" : "avx2", max_threads,
                   measure(wide, max_threads, iters));
    }
    return 0;
}

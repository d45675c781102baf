/* Errors, thread count, aligned memory, size checks, the CPU feature dispatch
 * and the call context. */
#include "kernels.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

static _Thread_local char last_error[512];

const char *ica_last_error(void) { return last_error; }

ica_status ica_fail(ica_status code, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return code;
}

_Noreturn void ica_internal_error(const char *file, int line, const char *what) {
    fprintf(stderr, "icalign: internal error at %s:%d: %s does not hold\n", file, line, what);
    abort();
}

/* --------------------------------------------------------------- threads */

/* Set and read by different Python threads while a call runs on a third:
 * atomic, and read once per call (ica_ctx_begin). 0: OpenMP default. */
static _Atomic int requested_threads = 0;

void ica_set_num_threads(int n) { atomic_store(&requested_threads, n > 0 ? n : 0); }

int ica_get_num_threads(void) {
#ifdef _OPENMP
    int n = atomic_load(&requested_threads);
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}

int ica_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------- memory */

void *ica_calloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void ica_free_aligned(void *ptr) { free(ptr); }

ptrdiff_t ica_find_nonfinite(const float *x, size_t n) {
    /* NaN and infinity are the floats whose exponent bits are all ones */
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        if ((bits & 0x7f800000u) == 0x7f800000u) return (ptrdiff_t)i;
    }
    return -1;
}

ica_status ica_check_finite(const char *name, const float *x, size_t n) {
    ptrdiff_t bad = ica_find_nonfinite(x, n);
    if (bad < 0) return ICA_OK;
    return ica_fail(ICA_ERR_NONFINITE, "%s holds a non-finite value (%g) at flat index %td", name,
                    (double)x[bad], bad);
}

ica_status ica_check_size(size_t *count, const char *what, size_t a, size_t b, size_t c) {
    size_t factors[3] = {a, b, c}, product = 1;
    for (int i = 0; i < 3; i++) {
        if (factors[i] != 0 && product > ICA_MAX_ELEMENTS / factors[i])
            return ica_fail(ICA_ERR_NOMEM,
                            "%s would hold %zu x %zu x %zu elements, more than the %zu one "
                            "buffer may hold; use smaller sizes",
                            what, a, b, c, ICA_MAX_ELEMENTS);
        product *= factors[i];
    }
    *count = product;
    return ICA_OK;
}

/* ------------------------------------------------------------- dispatch */

static ica_simd_level supported_level(void) {
#if ICA_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("fma"))
        return ICA_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ICA_SIMD_AVX2;
#endif
    return ICA_SIMD_SCALAR;
}

static const char *const level_names[] = {"scalar", "avx2", "avx512"};
static _Atomic int current_level = -1; /* -1: not yet chosen */

static int level_from_name(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

ica_simd_level ica_simd(void) {
    int level = atomic_load(&current_level);
    if (level < 0) { /* first use; racing threads compute the same value */
        int best = (int)supported_level();
        int forced = level_from_name(getenv("ICALIGN_SIMD"));
        level = (forced >= 0 && forced < best) ? forced : best;
        int unset = -1;
        if (!atomic_compare_exchange_strong(&current_level, &unset, level)) level = unset;
    }
    return (ica_simd_level)level;
}

const char *ica_simd_path(void) { return level_names[ica_simd()]; }

ica_status ica_set_simd_path(const char *name) {
    int level = level_from_name(name);
    if (level < 0)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "simd path '%s' is unknown; expected 'avx512', 'avx2' or 'scalar'",
                        name ? name : "(null)");
    int best = (int)supported_level();
    if (level > best)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "simd path '%s' is not supported by this CPU; the best it runs is '%s'",
                        name, level_names[best]);
    ica_simd(); /* so that a first-use choice cannot overwrite this one */
    atomic_store(&current_level, level);
    return ICA_OK;
}

static const ica_vector_kernels *kernels_of(ica_simd_level level) {
    switch (level) {
#if ICA_X86_DISPATCH
    case ICA_SIMD_AVX512: return &ica_vk_avx512;
    case ICA_SIMD_AVX2: return &ica_vk_avx2;
#endif
    default: return &ica_vk_scalar;
    }
}

/* ------------------------------------------------------------- context */

ica_ctx ica_ctx_begin(void) {
    ica_ctx ctx = {kernels_of(ica_simd()), ica_get_num_threads()};
    ICA_ASSERT(ctx.threads >= 1 && ctx.vk->pl_lanes <= ICA_MAX_PL_LANES);
    return ctx;
}

ica_ctx ica_ctx_serial(const ica_ctx *ctx) {
    ica_ctx serial = {ctx->vk, 1};
    return serial;
}

static void run_chunk(ica_chunk_fn fn, const void *arg, ptrdiff_t c, size_t n, size_t chunk) {
    size_t begin = (size_t)c * chunk;
    fn(arg, (size_t)c, begin, n - begin < chunk ? n - begin : chunk);
}

void ica_parallel_chunks(const ica_ctx *ctx, ica_chunk_fn fn, const void *arg, size_t n,
                         size_t chunk) {
    ptrdiff_t chunks = (ptrdiff_t)((n + chunk - 1) / chunk);
    if (ctx->threads == 1) { /* no parallel region: one costs ~1 us nested in a chunk loop */
        for (ptrdiff_t c = 0; c < chunks; c++) run_chunk(fn, arg, c, n, chunk);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (ptrdiff_t c = 0; c < chunks; c++) run_chunk(fn, arg, c, n, chunk);
}

/* Errors, thread count, aligned memory and the CPU feature dispatch. */
#include "kernels.h"

#include <math.h>
#include <stdarg.h>
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

/* --------------------------------------------------------------- threads */

static int requested_threads = 0; /* 0: OpenMP default */

void ica_set_num_threads(int n) { requested_threads = n > 0 ? n : 0; }

int ica_get_num_threads(void) {
#ifdef _OPENMP
    return requested_threads > 0 ? requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

/* Kernels called from inside a parallel region (the model's chunk loops) run
 * on the calling thread alone. */
int ica_threads(void) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    return ica_get_num_threads();
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
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (ptrdiff_t)i;
    return -1;
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
static int current_level = -1; /* -1: not yet chosen */

static int level_from_name(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

ica_simd_level ica_simd(void) {
    if (current_level < 0) {
        int best = (int)supported_level();
        int forced = level_from_name(getenv("ICALIGN_SIMD"));
        current_level = (forced >= 0 && forced < best) ? forced : best;
    }
    return (ica_simd_level)current_level;
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
    current_level = level;
    return ICA_OK;
}

const ica_vector_kernels *ica_vk(void) {
    switch (ica_simd()) {
#if ICA_X86_DISPATCH
    case ICA_SIMD_AVX512: return &ica_vk_avx512;
    case ICA_SIMD_AVX2: return &ica_vk_avx2;
#endif
    default: return &ica_vk_scalar;
    }
}

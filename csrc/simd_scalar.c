/* The portable build of the vector kernels (simd_kernels.h), the "scalar"
 * dispatch path: compiled with the library's flags only, so it runs on any
 * CPU. It uses the GCC/clang vector extensions (4 floats: SSE2 on x86-64,
 * NEON on arm64; 6 x 8 GEMM tile). */
#include "kernels.h"

#include <math.h>

#if !defined(__GNUC__) && !defined(__clang__)
#error "icalign's portable kernels need GCC or clang (vector extensions)"
#endif
#define SIMD_WIDTH 4
#define GEMM_MR 6
#define GEMM_NV 2
#define ISA_NAME "scalar"
#include "simd.h"
#include "simd_kernels.h"

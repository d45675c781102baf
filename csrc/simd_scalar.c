/* The portable build of the vector kernels (simd_kernels.h), the "scalar"
 * dispatch path: compiled with the library's flags only, so it runs on any
 * CPU. With GCC or clang it uses their vector extensions (4 floats: SSE2 on
 * x86-64, NEON on arm64; 6 x 8 GEMM tile); other compilers get plain C floats
 * (4 x 2 tile). */
#include "kernels.h"

#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#define SIMD_WIDTH 4
#define GEMM_MR 6
#define GEMM_NV 2
#else
#define SIMD_WIDTH 1
#define GEMM_MR 4
#define GEMM_NV 2
#endif
#define ISA_NAME "scalar"
#include "simd.h"
#include "simd_kernels.h"

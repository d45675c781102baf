/* The portable-C build of the vector kernels (simd_kernels.h): portable C: 4 x 2 GEMM tile of plain floats.
 * Compiled with the library's flags only, so it runs on any CPU. */
#include "kernels.h"

#include <math.h>

#define SIMD_WIDTH 1
#define GEMM_MR 4
#define GEMM_NV 2
#define ISA_NAME "scalar"
#include "simd.h"
#include "simd_kernels.h"

/* The avx2 build of the vector kernels (simd_kernels.h): AVX2 + FMA (ymm): 6 x 16 GEMM register
 * tile. Only this file is compiled for the ISA (target pragma, no -m flags), and ica_vk() selects
 * its table only when the CPU has the features. */
#include "kernels.h"

#if ICA_X86_DISPATCH
#include <math.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define SIMD_WIDTH 8
#define GEMM_MR 6
#define GEMM_NV 2
#define ISA_NAME "avx2"
#include "simd.h"
#include "simd_kernels.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* ICA_X86_DISPATCH */

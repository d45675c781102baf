/* The avx512 build of the vector kernels (simd_kernels.h): AVX-512 (zmm): 8 x 48 GEMM register
 * tile. Only this file is compiled for the ISA (target pragma, no -m flags), and ica_vk() selects
 * its table only when the CPU has the features. */
#include "kernels.h"

#if ICA_X86_DISPATCH
#include <math.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma"))),    \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,fma")
#endif

#define SIMD_WIDTH 16
#define GEMM_MR 8
#define GEMM_NV 3
#define ISA_NAME "avx512"
#include "simd.h"
#include "simd_kernels.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* ICA_X86_DISPATCH */

// NNFAST_HD: __host__ __device__ under nvcc, nothing in plain C++, for the
// functions that CUDA kernels and host code share (core/math_scalar.h,
// core/act_formulas.h, core/counter_rng.h).
#pragma once

#if defined(__CUDACC__)
#define NNFAST_HD __host__ __device__
#else
#define NNFAST_HD
#endif

// NNFAST_HD_INLINE: NNFAST_HD and always inlined, for the small shared helpers
// that one caller's formula is split into (core/act_formulas.h): GCC's inlining
// of the CPU activation kernels stays as it was with the formula written in place.
#if defined(__CUDACC__)
#define NNFAST_HD_INLINE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define NNFAST_HD_INLINE inline __attribute__((always_inline))
#else
#define NNFAST_HD_INLINE inline
#endif

// Per-ISA GEMM kernels: compiled three times (NNFAST_ISA_NS = isa_generic,
// isa_avx2, isa_avx512) and picked at run time by gemm.cpp.
//
// The packing, blocking and micro-kernel logic is one template
// (cpu/gemm_internal.h); this file only supplies the vector traits and the
// tile / block sizes of each ISA. The AVX-512 traits are four-line wrappers of
// the same operations as the AVX2 ones, and the tests run the AVX-512 tile
// shapes (12 x 32 fp32, 12 x 16 fp64) through the portable traits on machines
// without AVX-512.
#define NNFAST_GEMM_IMPL 1
#include "cpu/gemm_internal.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nnfast {
namespace NNFAST_ISA_NS {
namespace gemm_impl {

#if defined(__AVX512F__)
struct F32x16 {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static inline R zero() { return _mm512_setzero_ps(); }
  static inline R load(const T* p) { return _mm512_loadu_ps(p); }
  static inline void store(T* p, R v) { _mm512_storeu_ps(p, v); }
  static inline R set1(T x) { return _mm512_set1_ps(x); }
  static inline R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static inline R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
};
struct F64x8 {
  using T = double;
  using R = __m512d;
  static constexpr int W = 8;
  static inline R zero() { return _mm512_setzero_pd(); }
  static inline R load(const T* p) { return _mm512_loadu_pd(p); }
  static inline void store(T* p, R v) { _mm512_storeu_pd(p, v); }
  static inline R set1(T x) { return _mm512_set1_pd(x); }
  static inline R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static inline R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
};
// 32 zmm registers: 24 accumulators + 2 B vectors + broadcasts.
using VF = F32x16;
constexpr int MR_F = 12, NV_F = 2, MC_F = 144, KC_F = 256, NC_F = 4096;
using VD = F64x8;
constexpr int MR_D = 12, NV_D = 2, MC_D = 96, KC_D = 192, NC_D = 4096;

#elif defined(__AVX2__) && defined(__FMA__)
struct F32x8 {
  using T = float;
  using R = __m256;
  static constexpr int W = 8;
  static inline R zero() { return _mm256_setzero_ps(); }
  static inline R load(const T* p) { return _mm256_loadu_ps(p); }
  static inline void store(T* p, R v) { _mm256_storeu_ps(p, v); }
  static inline R set1(T x) { return _mm256_set1_ps(x); }
  static inline R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static inline R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
};
struct F64x4 {
  using T = double;
  using R = __m256d;
  static constexpr int W = 4;
  static inline R zero() { return _mm256_setzero_pd(); }
  static inline R load(const T* p) { return _mm256_loadu_pd(p); }
  static inline void store(T* p, R v) { _mm256_storeu_pd(p, v); }
  static inline R set1(T x) { return _mm256_set1_pd(x); }
  static inline R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static inline R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
};
// 16 ymm registers: 12 accumulators + 2 B vectors + 1 broadcast.
using VF = F32x8;
constexpr int MR_F = 6, NV_F = 2, MC_F = 144, KC_F = 256, NC_F = 4096;
using VD = F64x4;
constexpr int MR_D = 6, NV_D = 2, MC_D = 72, KC_D = 256, NC_D = 4096;

#else
// Portable: 128-bit vectors (SSE2 on x86-64, NEON on ARM).
using VF = VecExt<float, 4>;
constexpr int MR_F = 6, NV_F = 2, MC_F = 120, KC_F = 256, NC_F = 4096;
using VD = VecExt<double, 2>;
constexpr int MR_D = 6, NV_D = 2, MC_D = 96, KC_D = 192, NC_D = 4096;
#endif

}  // namespace gemm_impl

gemm_detail::GemmBlocking gemm_blocking_f32() {
  return {gemm_impl::MR_F, gemm_impl::NV_F * gemm_impl::VF::W, gemm_impl::MC_F, gemm_impl::KC_F, gemm_impl::NC_F};
}
gemm_detail::GemmBlocking gemm_blocking_f64() {
  return {gemm_impl::MR_D, gemm_impl::NV_D * gemm_impl::VD::W, gemm_impl::MC_D, gemm_impl::KC_D, gemm_impl::NC_D};
}

void gemm_block(const gemm_detail::GemmArgs<float>& g, float* ws, index_t i0, index_t i1, index_t j0, index_t j1) {
  using namespace gemm_impl;
  gemm_impl::gemm_block<VF, MR_F, NV_F, MC_F, KC_F, NC_F>(g, ws, i0, i1, j0, j1);
}
void gemm_block(const gemm_detail::GemmArgs<double>& g, double* ws, index_t i0, index_t i1, index_t j0,
                index_t j1) {
  using namespace gemm_impl;
  gemm_impl::gemm_block<VD, MR_D, NV_D, MC_D, KC_D, NC_D>(g, ws, i0, i1, j0, j1);
}

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast

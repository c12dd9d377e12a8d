// The one vector layer of the CPU kernels: GCC/Clang vector extensions
// (`T __attribute__((vector_size(W * sizeof(T))))`), any lane count W, plus the
// few operations the compiler does not spell for us (explicit FMA, sqrt without
// errno, partial loads / stores). Every *_isa.cpp family (activation, loss,
// norm, optim, gemm's portable traits, peak) and core/vec_math.h build on it.
//
// Native width: the register of the ISA this object is compiled for
// (64 bytes AVX-512, 32 AVX2, 16 otherwise: SSE2 / NEON).
//
// Floating-point contraction rule (see also CMakeLists.txt): the kernel library
// is compiled with -ffp-contract=off, so `a * b + c` is always two rounded
// operations on every target (x86 -march=native, aarch64, ...). That keeps the
// fused GEMM epilogue and the standalone activations bit-identical. Code that
// wants a fused multiply-add says so with simd::fma (or an FMA intrinsic, as the
// GEMM micro-kernels do).
//
// ODR: this header is compiled under different -m flags. Everything lives in
// namespace NNFAST_ISA_NS inside an ISA object and in isa_baseline elsewhere,
// so the linker never merges an AVX2 copy into baseline code.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#if defined(NNFAST_ISA_NS)
#define NNFAST_VM_NS NNFAST_ISA_NS
#else
#define NNFAST_VM_NS isa_baseline
#endif

// Vector types are passed between inline helpers only; the warning about their
// ABI across ISAs does not concern any exported symbol.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace nnfast {
namespace NNFAST_VM_NS {
namespace simd {

#if defined(__AVX512F__)
constexpr int kNativeBytes = 64;
#elif defined(__AVX2__)
constexpr int kNativeBytes = 32;
#else
constexpr int kNativeBytes = 16;
#endif

template <typename T, int W>
struct VecOf {
  typedef T type __attribute__((vector_size(W * sizeof(T))));
};
template <typename T, int W>
using Vec = typename VecOf<T, W>::type;
// Lanes of T in one native register, and that register.
template <typename T>
constexpr int kLanes = kNativeBytes / static_cast<int>(sizeof(T));
template <typename T>
using Native = Vec<T, kLanes<T>>;

template <class V>
using elem_t = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<V&>()[0])>>;
template <class V>
constexpr int lanes() { return static_cast<int>(sizeof(V) / sizeof(elem_t<V>)); }
// Comparison result: signed integer lanes of the element's width, -1 (true) or 0.
template <class V>
using mask_t = decltype(std::declval<V>() < std::declval<V>());
template <class V>
using ielem_t = elem_t<mask_t<V>>;
template <class V>
using umask_t = Vec<std::make_unsigned_t<ielem_t<V>>, lanes<V>()>;
template <class V>
constexpr bool is_f32() { return std::is_same<elem_t<V>, float>::value; }

template <class V>
inline V splat(elem_t<V> c) { return c - V{}; }  // c - 0 keeps the sign of -0
template <class V>
inline V load(const elem_t<V>* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
inline void store(elem_t<V>* p, V v) { std::memcpy(p, &v, sizeof(V)); }
// First n < lanes values; the other lanes read as `pad` / are not written.
template <class V>
inline V load_n(const elem_t<V>* p, long n, elem_t<V> pad = 0) {
  V v = splat<V>(pad);
  for (long k = 0; k < n; ++k) v[k] = p[k];
  return v;
}
template <class V>
inline void store_n(elem_t<V>* p, V v, long n) {
  for (long k = 0; k < n; ++k) p[k] = v[k];
}
// Element conversion (same lane count), e.g. float -> double on load.
template <class To, class From>
inline To convert(From v) { return __builtin_convertvector(v, To); }
template <class M, class V>
inline V sel(M m, V a, V b) { return m ? a : b; }
template <class V>
inline V vabs(V x) {
  using I = mask_t<V>;
  return (V)((I)x & std::numeric_limits<ielem_t<V>>::max());
}
// |mag| with the sign bit of s.
template <class V>
inline V copysign_of(V mag, V s) {
  using I = mask_t<V>;
  const ielem_t<V> sign = std::numeric_limits<ielem_t<V>>::min();
  return (V)(((I)mag & ~sign) | ((I)s & sign));
}
template <class V, class F>
inline V lanewise(V x, F f) {
  V r;
  for (int i = 0; i < lanes<V>(); ++i) r[i] = f(x[i]);
  return r;
}
// Lanes summed left to right (a fixed order).
template <class V>
inline elem_t<V> hsum(V v) {
  elem_t<V> s = 0;
  for (int i = 0; i < lanes<V>(); ++i) s += v[i];
  return s;
}

// sqrt per lane. GCC only vectorises std::sqrt under -fno-math-errno, which the
// build does not (and should not globally) set, hence the intrinsics.
template <class V>
inline V sqrt(V x) {
  using E = elem_t<V>;
  constexpr bool f = std::is_same<E, float>::value;
  (void)f;
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) {
    if constexpr (f) return _mm512_sqrt_ps(x); else return _mm512_sqrt_pd(x);
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(V) == 32) {
    if constexpr (f) return _mm256_sqrt_ps(x); else return _mm256_sqrt_pd(x);
  }
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(V) == 16) {
    if constexpr (f) return _mm_sqrt_ps(x); else return _mm_sqrt_pd(x);
  }
#elif defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (sizeof(V) == 16) {
    if constexpr (f) return vsqrtq_f32(x); else return vsqrtq_f64(x);
  }
#endif
  return lanewise(x, [](E v) { return std::sqrt(v); });
}

// a * b + c with one rounding where the target has FMA, else two (baseline
// x86-64 has none). Never produced implicitly (-ffp-contract=off): ask here.
template <class V>
inline V fma(V a, V b, V c) {
  constexpr bool f = std::is_same<elem_t<V>, float>::value;
  (void)f;
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) {
    if constexpr (f) return _mm512_fmadd_ps(a, b, c); else return _mm512_fmadd_pd(a, b, c);
  }
#endif
#if defined(__FMA__)
  if constexpr (sizeof(V) == 32) {
    if constexpr (f) return _mm256_fmadd_ps(a, b, c); else return _mm256_fmadd_pd(a, b, c);
  }
  if constexpr (sizeof(V) == 16) {
    if constexpr (f) return _mm_fmadd_ps(a, b, c); else return _mm_fmadd_pd(a, b, c);
  }
#elif defined(__aarch64__) && defined(__ARM_NEON)
  if constexpr (sizeof(V) == 16) {
    if constexpr (f) return vfmaq_f32(c, a, b); else return vfmaq_f64(c, a, b);
  }
#endif
  return a * b + c;
}

}  // namespace simd
}  // namespace NNFAST_VM_NS
}  // namespace nnfast

// The CPU kernels live in nnfast::cpu::<isa>; let them name this layer `simd` there too.
namespace nnfast::cpu::NNFAST_VM_NS {
namespace simd = ::nnfast::NNFAST_VM_NS::simd;
}  // namespace nnfast::cpu::NNFAST_VM_NS

// Branch-free exp / log / log1p for the pointwise losses (float and double).
// Pure arithmetic, bit casts and selects between already computed values, so
// loops calling them auto-vectorize without fast-math (libm calls do not).
// Accuracy: about 1-2 ulp; special values follow libm (log(0) = -inf,
// log(x < 0) = NaN, NaN in -> NaN out, exp overflow -> inf, underflow -> 0).
// Everything has internal linkage: each translation unit gets its own copy,
// so no copy compiled with other ISA flags can be merged by the linker.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace nnfast::cpu {
namespace {
namespace lmath {

template <typename T>
struct Bits;
template <>
struct Bits<float> {
  using S = std::int32_t;
  static constexpr int mant = 23;
  static constexpr S bias = 127;
  static constexpr S mant_mask = 0x007fffff;
};
template <>
struct Bits<double> {
  using S = std::int64_t;
  static constexpr int mant = 52;
  static constexpr S bias = 1023;
  static constexpr S mant_mask = 0x000fffffffffffffLL;
};

template <typename T>
inline typename Bits<T>::S to_bits(T x) {
  typename Bits<T>::S b;
  std::memcpy(&b, &x, sizeof(T));
  return b;
}
template <typename T>
inline T from_bits(typename Bits<T>::S b) {
  T x;
  std::memcpy(&x, &b, sizeof(T));
  return x;
}

// exp(x): x = n ln2 + r, |r| <= ln2/2; exp(r) by polynomial; 2^n from bits.
inline float exp_bf(float x) {
  const float xc = x < -87.3365447504f ? -87.3365447504f : (x > 88.7228f ? 88.7228f : x);
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float fn = t - 12582912.0f;
  // unsigned bit arithmetic: a NaN's bits may be negative, and shifting a negative int is UB
  const std::uint32_t n = static_cast<std::uint32_t>(to_bits(t)) - static_cast<std::uint32_t>(to_bits(12582912.0f));
  const float r = xc - fn * 0.693359375f - fn * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  const float v = (p * 2.0f) * from_bits<float>(static_cast<std::int32_t>((n + 126u) << 23));  // 2^(n-1): n may be 128
  // beyond the clamp: 0 below, inf above; NaN stays NaN (xc is NaN then)
  return x < -103.0f ? 0.0f : (x > 88.72283f ? std::numeric_limits<float>::infinity() : v);
}

inline double exp_bf(double x) {
  const double xc = x < -708.3964185322641 ? -708.3964185322641 : (x > 709.782 ? 709.782 : x);
  const double t = xc * 1.4426950408889634074 + 6755399441055744.0;
  const double fn = t - 6755399441055744.0;
  const std::uint64_t n = static_cast<std::uint64_t>(to_bits(t)) - static_cast<std::uint64_t>(to_bits(6755399441055744.0));
  const double r = xc - fn * 6.93145751953125E-1 - fn * 1.42860682030941723212E-6;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r * r + r + 1.0;
  const double v = (p * 2.0) * from_bits<double>(static_cast<std::int64_t>((n + 1022u) << 52));  // 2^(n-1): n may be 1024
  return x < -745.2 ? 0.0 : (x > 709.782712893384 ? std::numeric_limits<double>::infinity() : v);
}

// log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1): 2 atanh(s), s = f / (2 + f).
inline float log1p_reduced(float f) {
  const float s = f / (2.0f + f), z = s * s;
  float p = 1.0f / 13;
  p = p * z + 1.0f / 11;
  p = p * z + 1.0f / 9;
  p = p * z + 1.0f / 7;
  p = p * z + 1.0f / 5;
  p = p * z + 1.0f / 3;
  return 2.0f * s + 2.0f * s * z * p;
}
inline double log1p_reduced(double f) {
  const double s = f / (2.0 + f), z = s * s;
  double p = 1.0 / 25;
  p = p * z + 1.0 / 23;
  p = p * z + 1.0 / 21;
  p = p * z + 1.0 / 19;
  p = p * z + 1.0 / 17;
  p = p * z + 1.0 / 15;
  p = p * z + 1.0 / 13;
  p = p * z + 1.0 / 11;
  p = p * z + 1.0 / 9;
  p = p * z + 1.0 / 7;
  p = p * z + 1.0 / 5;
  p = p * z + 1.0 / 3;
  return 2.0 * s + 2.0 * s * z * p;
}

// Exponent field of a (positive, normal) value as T, without int -> float
// conversion instructions (absent for int64 before AVX-512DQ): OR the field
// into the mantissa of 2^mant and subtract.
template <typename T>
inline T exponent_field(typename Bits<T>::S bits) {
  using B = Bits<T>;
  const typename B::S e = (bits >> B::mant) & (2 * B::bias + 1);
  const T two_m = static_cast<T>(typename B::S(1) << B::mant);
  return from_bits<T>(e | to_bits(two_m)) - two_m;
}

template <typename T>
inline T log_bf(T x) {
  using B = Bits<T>;
  using S = typename B::S;
  constexpr int up = B::mant + 2;  // subnormals are scaled by 2^up into the normal range
  const T tiny = std::numeric_limits<T>::min();
  const T xs_up = x * from_bits<T>(static_cast<S>(B::bias + up) << B::mant);
  const bool sub = x < tiny;
  const T xs = sub ? xs_up : x;
  const S bits = to_bits(xs);
  const T e_raw = exponent_field<T>(bits) - static_cast<T>(B::bias);
  const T e_sub = e_raw - static_cast<T>(up);
  T e = sub ? e_sub : e_raw;
  T m = from_bits<T>((bits & B::mant_mask) | (B::bias << B::mant));  // [1, 2)
  // candidates are computed before the selects: a select between computed
  // values vectorizes, a conditional computation does not (FP ops may trap)
  const bool big = m > T(1.41421356237309504880);
  const T m_half = m * T(0.5), e_next = e + T(1);
  m = big ? m_half : m;
  e = big ? e_next : e;
  const T r = log1p_reduced(m - T(1));
  const T v = e * T(6.93145751953125E-1) + (r + e * T(1.42860682030941723212E-6));
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // x == 0: -inf; x < 0: NaN; x == inf: inf; NaN: NaN (x != x)
  return x == T(0) ? -inf : ((x < T(0) || x != x) ? nan : (x == inf ? inf : v));
}

// log1p(u) = log(w) + (u - (w - 1)) / w with w = 1 + u (the quotient restores
// the bits of u that rounding 1 + u lost).
template <typename T>
inline T log1p_bf(T u) {
  const T w = T(1) + u;
  const T lw = log_bf(w);
  const T corr = (u - (w - T(1))) / w;
  const T fixed = lw + corr;
  const bool finite_pos = w > T(0) && w < std::numeric_limits<T>::infinity();
  return finite_pos ? fixed : lw;
}

}  // namespace lmath
}  // namespace
}  // namespace nnfast::cpu

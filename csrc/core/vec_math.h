// Lane-generic math for the pointwise kernels: one source for every width.
//
// Every function here is a template over a GCC/Clang vector type V
// (`T __attribute__((vector_size(W * sizeof(T))))`), W = 1 included. The
// scalar act_forward / act_derivative (core/pointwise.h, also the GEMM
// epilogue) instantiate them with W = 1; the standalone kernels
// (cpu/activation_isa.cpp) with W = 4..16. Each lane therefore runs the same
// IEEE operations in the same order, so fused and standalone results are
// bit-identical, provided no a*b+c is contracted into an FMA: the ISA objects
// turn contraction off (GCC optimize / STDC FP_CONTRACT pragmas), and baseline
// x86-64 has no FMA. Checked by tests/test_activation.py (epilogue vs every SIMD level).
//
// float32: branch-free polynomials (Cephes-style range reductions) evaluated with
// fused multiply-adds through vm::fmadd, which rounds once on EVERY path: the FMA
// instruction where the ISA object has one (AVX2, AVX-512, NEON; one lane
// included), correctly rounded std::fma elsewhere (baseline x86-64: a libm call,
// slow but the same bits). 2^n scaling: AVX-512 vscalefps, elsewhere two exact
// power-of-two products; both round y 2^n once, so the bits agree too.
// Max error vs the float64 result over strided scans of all floats in range:
// exp, expm1, log1p 1.5 ulp; tanh 1.33 (strided scan of every 3rd float, 1e-30..30); softplus 2; sigmoid, SiLU, GELU ~3 ulp
// (mean ~0.1 ulp). float64: libm, lane by lane.
//
// ODR: this header is compiled under different -m flags. Everything lives in
// namespace NNFAST_ISA_NS inside an ISA object and in isa_baseline elsewhere,
// so the linker never merges an AVX2 copy into baseline code.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/act_formulas.h"
#include "core/simd.h"
#include "nnfast/common.h"
#include "core/env_switch.h"


// Forced inlining: an out-of-line exp costs a call plus spilling every live
// vector register around it (GCC kept exp out of line in the softmax rows).
#if defined(__GNUC__)
#define NNFAST_VM_INLINE inline __attribute__((always_inline))
#else
#define NNFAST_VM_INLINE inline
#endif

namespace nnfast {
namespace NNFAST_VM_NS {
namespace vm {

using simd::copysign_of;
using simd::elem_t;
using simd::ielem_t;
using simd::is_f32;
using simd::lanes;
using simd::lanewise;
using simd::load;
using simd::mask_t;
using simd::sel;
using simd::splat;
using simd::store;
using simd::umask_t;
using simd::vabs;
using simd::Vec;

// a * b + c rounded once, identical bits on every ISA and width (see the header
// comment). Vectors wider than a native register are split in halves.
#if defined(__AVX512F__)
constexpr int kFmaBytes = 64;
#elif defined(__FMA__) || (defined(__aarch64__) && defined(__ARM_NEON))
constexpr int kFmaBytes = simd::kNativeBytes;
#else
constexpr int kFmaBytes = 0;  // no FMA instruction: std::fma
#endif
template <class V>
NNFAST_VM_INLINE V fmadd(V a, V b, V c) {
  using E = elem_t<V>;
  constexpr int W = lanes<V>();
  if constexpr (kFmaBytes > 0 && sizeof(V) >= 16 && sizeof(V) <= kFmaBytes) {
    return simd::fma(a, b, c);
  } else if constexpr (kFmaBytes > 0 && sizeof(V) > kFmaBytes) {
    using H = Vec<E, W / 2>;
    constexpr size_t h = sizeof(H);
    H al, ah, bl, bh, cl, ch;
    std::memcpy(&al, &a, h), std::memcpy(&ah, reinterpret_cast<const char*>(&a) + h, h);
    std::memcpy(&bl, &b, h), std::memcpy(&bh, reinterpret_cast<const char*>(&b) + h, h);
    std::memcpy(&cl, &c, h), std::memcpy(&ch, reinterpret_cast<const char*>(&c) + h, h);
    const H lo = fmadd(al, bl, cl), hi = fmadd(ah, bh, ch);
    V r;
    std::memcpy(&r, &lo, h), std::memcpy(reinterpret_cast<char*>(&r) + h, &hi, h);
    return r;
  } else {
    V r;
    for (int i = 0; i < W; ++i) r[i] = std::fma(a[i], b[i], c[i]);
    return r;
  }
}

// ------------------------------------------------------------------ float32 core
// exp(a + c) = 2^n (1 + q) with n = round(a / ln2) taken from a alone, so a
// caller holding a value as an exact big part a plus a small correction c
// (|c| < 0.05) keeps its precision. 2^n = s1 * s2, both normal, so results
// reach the subnormal range without a 2^n underflow. kNonpos (exp_nonpos,
// a <= 0): one clamp, a < ln(FLT_MIN) -> n = -127, and 2^n in s1 alone.
// (A flag, not a helper function: an extra call layer changed GCC's inlining of
// the activation kernels.)
template <class V>
struct ExpParts {
  V q, s1, s2, n;  // exp = 2^n (1 + q) = (1 + q) s1 s2
};
template <bool kCorr = true, bool kNonpos = false, bool kClamp = true, bool kLowClampOnly = false, bool kShort = false,
          class V>
NNFAST_VM_INLINE ExpParts<V> exp_parts_f32(V a, V c) {
  using I = mask_t<V>;
  using U = umask_t<V>;
  if constexpr (!kClamp) {
    // caller guarantees -152 ln2 < a <= 0: 2^n = s1 s2 stays exact (subnormal results kept)
  } else if constexpr (kNonpos) {
    a = a < -87.3365402f ? splat<V>(-88.0f) : a;  // -88 / ln2 rounds to -127; NaN compares false
  } else {
    a = a < -104.0f ? splat<V>(-104.0f) : a;  // NaN passes both clamps
    if constexpr (!kLowClampOnly) a = a > 89.0f ? splat<V>(89.0f) : a;  // (the caller's a <= 0: never taken)
  }
  const V magic = splat<V>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const V t = fmadd(a, splat<V>(1.44269504088896341f), magic);
  const V n = t - magic;
  const I ni = (I)t - (I)magic;
  V r = fmadd(n, splat<V>(-0.693359375f), a);  // Cody-Waite ln2 = C1 + C2
  r = fmadd(n, splat<V>(2.12194440e-4f), r);
  if (kCorr) r = r + c;
  V p;
  if constexpr (kShort) {
    // expm1(r) = r + r^2 P(r), P of degree 4 minimax in the relative error of
    // exp on |r| <= ln2/2 + 5e-4 (fitted in float64, coefficients rounded to
    // float32): 0.07 ulp, one FMA fewer than Cephes's degree 5, whose own error
    // (~1e-10) is far below a rounding. Only where <= 1 ulp is not promised.
    p = fmadd(r, splat<V>(1.38143904e-3f), splat<V>(8.36881716e-3f));
    p = fmadd(p, r, splat<V>(4.16683964e-2f));
    p = fmadd(p, r, splat<V>(1.66665196e-1f));
    p = fmadd(p, r, splat<V>(4.99999940e-1f));
  } else {
    // expm1(r) on |r| <= ln2/2 + 0.05 (Cephes expf coefficients).
    p = fmadd(r, splat<V>(1.9875691500e-4f), splat<V>(1.3981999507e-3f));
    p = fmadd(p, r, splat<V>(8.3334519073e-3f));
    p = fmadd(p, r, splat<V>(4.1665795894e-2f));
    p = fmadd(p, r, splat<V>(1.6666665459e-1f));
    p = fmadd(p, r, splat<V>(5.0000001201e-1f));
  }
  ExpParts<V> out;
  out.q = fmadd(p, r * r, r);
  out.n = n;
  if constexpr (kNonpos) {
    out.s1 = (V)((U)(ni + 127) << 23);  // n = -127: bit pattern 0, +0
    out.s2 = V{};
  } else {
    const I h = ni >> 1;
    out.s1 = (V)((U)(h + 127) << 23);
    out.s2 = (V)((U)(ni - h + 127) << 23);
  }
  return out;
}

// y 2^n rounded once (p from exp_parts_f32 without kNonpos): vscalefps on
// AVX-512 registers, else two exact power-of-two products (same bits).
template <class V>
NNFAST_VM_INLINE V scale2n(V y, const ExpParts<V>& p) {
#if defined(__AVX512F__)
  if constexpr (is_f32<V>() && sizeof(V) == 64) return (V)_mm512_scalef_ps((__m512)y, (__m512)p.n);
#endif
  return (y * p.s1) * p.s2;
}

// log(x) for finite normal x > 0 (Cephes logf).
template <class V>
NNFAST_VM_INLINE V log_f32(V x) {
  using I = mask_t<V>;
  const I ix = (I)x;
  I e = ((ix >> 23) & 0xff) - 126;             // x = m 2^e, m in [0.5, 1)
  V m = (V)((ix & 0x007fffff) | 0x3f000000);
  const auto small = m < 0.70710678118654752440f;
  e = small ? e - 1 : e;
  m = (small ? m + m : m) - 1.0f;
  const V z = m * m;
  V y = fmadd(m, splat<V>(7.0376836292e-2f), splat<V>(-1.1514610310e-1f));
  y = fmadd(y, m, splat<V>(1.1676998740e-1f));
  y = fmadd(y, m, splat<V>(-1.2420140846e-1f));
  y = fmadd(y, m, splat<V>(1.4249322787e-1f));
  y = fmadd(y, m, splat<V>(-1.6668057665e-1f));
  y = fmadd(y, m, splat<V>(2.0000714765e-1f));
  y = fmadd(y, m, splat<V>(-2.4999993993e-1f));
  y = fmadd(y, m, splat<V>(3.3333331174e-1f));
  y = y * m * z;
  const V fe = __builtin_convertvector(e, V);
  y = fmadd(fe, splat<V>(-2.12194440e-4f), y);
  y = fmadd(z, splat<V>(-0.5f), y);
  V r = m + y;
  return fmadd(fe, splat<V>(0.693359375f), r);
}

// ------------------------------------------------------------------ T-generic
template <class V>
NNFAST_VM_INLINE V exp(V x) {
  if constexpr (is_f32<V>()) {
    const ExpParts<V> p = exp_parts_f32<false>(x, V{});
    return scale2n(p.q + 1.0f, p);
  } else {
    return lanewise(x, [](elem_t<V> v) { return std::exp(v); });
  }
}

// exp(x) for x <= 0 (NaN passes), the bits of exp: only the low clamp (subnormal
// results kept, unlike exp_nonpos). The sigmoid family's exp(-|z|).
template <class V>
NNFAST_VM_INLINE V exp_neg(V x) {
  if constexpr (is_f32<V>()) {
    const ExpParts<V> p = exp_parts_f32<false, false, true, true>(x, V{});
    return scale2n(p.q + 1.0f, p);
  } else {
    return lanewise(x, [](elem_t<V> v) { return std::exp(v); });
  }
}

template <class V>
NNFAST_VM_INLINE V expm1(V x) {
  if constexpr (is_f32<V>()) {
    const ExpParts<V> p = exp_parts_f32<false>(x, V{});
    // 2^n (1 + q) - 1 = 2^n q + (2^n - 1); n = 0 gives q exactly.
    return scale2n(p.q, p) + (scale2n(splat<V>(1.0f), p) - 1.0f);
  } else {
    return lanewise(x, [](elem_t<V> v) { return std::expm1(v); });
  }
}

// log1p(v) for v >= 0 (v = exp(-|z|) in softplus).
template <class V>
NNFAST_VM_INLINE V log1p_pos(V v) {
  if constexpr (is_f32<V>()) {
    const V u = v + 1.0f;
    // log(u) plus the rounding error of 1 + v, to first order.
    return log_f32(u) + (v - (u - 1.0f)) / u;
  } else {
    return lanewise(v, [](elem_t<V> a) { return std::log1p(a); });
  }
}

// min(c, x) with x's NaN kept: vminps(c, x) returns its second operand when
// either is NaN, which is exactly `c < x ? c : x`; one instruction where GCC
// emits a compare plus a masked move for the ternary. Only selects, so every
// path (the intrinsics, the ternary) gives the same bits.
template <class V>
NNFAST_VM_INLINE V min_keep_nan(elem_t<V> c, V x) {
#if defined(__AVX512F__)
  if constexpr (is_f32<V>() && sizeof(V) == 64) return (V)_mm512_min_ps((__m512)splat<V>(c), (__m512)x);
#endif
#if defined(__AVX__)
  if constexpr (is_f32<V>() && sizeof(V) == 32) return (V)_mm256_min_ps((__m256)splat<V>(c), (__m256)x);
#endif
  return c < x ? splat<V>(c) : x;
}

// NNFAST_TANH_FAST=0: tanh's big branch as before (the Cephes exp, 17 vector ops
// where the exp2 form takes 12; A/B and fallback). Read once at load time from
// the one variable by every ISA object's copy, the GEMM epilogue's included, so
// fused and standalone tanh keep equal bits under either setting.
inline const bool kTanhFast = env_switch_on("NNFAST_TANH_FAST");

// float32 tanh(|x|) for |x| in [0.625, 10] (NaN passes): 1 - 2 / (e + 1),
// e = exp(2|x|) = 2^y, y = 2|x| log2(e) = n + f, n = round(y), |f| <= 1/2 and
// f = fma(|x|, K, -n) rounded once. K's own rounding and f's are relative
// errors of e weighted by 2 / (e + 1) <= 0.45 in the result, so they cost
// < 0.3 ulp; 2^f a degree-6 minimax polynomial (relative error 1.6e-8, fitted
// in float64 with the coefficients rounded to float32), then 2^n exactly
// (n in [0, 29]). Exhaustive scan of [0.625, 10]: <= 1.46 ulp (old: 1.33).
template <class V>
NNFAST_VM_INLINE V tanh_big_exp2(V ax) {
  using U = umask_t<V>;
  using I = mask_t<V>;
  const V magic = splat<V>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const V k = splat<V>(2.88539008177792681f);  // 2 log2(e)
  const V t = fmadd(ax, k, magic);
  const V n = t - magic;
  const V f = fmadd(ax, k, -n);
  V p = fmadd(f, splat<V>(1.5353362e-4f), splat<V>(1.3398875e-3f));
  p = fmadd(p, f, splat<V>(9.6184369e-3f));
  p = fmadd(p, f, splat<V>(5.5503324e-2f));
  p = fmadd(p, f, splat<V>(2.4022648e-1f));
  p = fmadd(p, f, splat<V>(6.9314718e-1f));
  p = fmadd(p, f, splat<V>(1.0f));
  V e;
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64) e = (V)_mm512_scalef_ps((__m512)p, (__m512)n);
  else
#endif
    e = p * (V)((U)(((I)t - (I)magic) + 127) << 23);  // 2^n normal: one exact product
  return 1.0f - 2.0f / (e + 1.0f);
}

template <class V>
NNFAST_VM_INLINE V tanh(V x) {
  if constexpr (is_f32<V>()) {
    const V ax = min_keep_nan(10.0f, vabs(x));  // tanh(10) rounds to 1; keeps the exp finite
    // Small |x|: the Cephes tanhf odd polynomial (< 1 ulp); else 1 - 2 / (exp(2|x|) + 1).
    const V z = ax * ax;
    V p = fmadd(z, splat<V>(-5.70498872745e-3f), splat<V>(2.06390887954e-2f));
    p = fmadd(p, z, splat<V>(-5.37397155531e-2f));
    p = fmadd(p, z, splat<V>(1.33314422036e-1f));
    p = fmadd(p, z, splat<V>(-3.33332819422e-1f));
    const V small = fmadd(p * z, ax, ax);
    V big;
    if (kTanhFast) {
      big = tanh_big_exp2(ax);
    } else {
      // 2|x| in [1.25, 20] needs no exp clamps, and one scale where expm1 takes two
      // scales and two adds. 2 / (e + 1) <= 0.45, so its error (<= ~1.8 ulp
      // relative) costs < 1 ulp of the result in [0.55, 1).
      const ExpParts<V> ep = exp_parts_f32<false, false, false>(ax + ax, V{});
      big = 1.0f - 2.0f / (scale2n(ep.q + 1.0f, ep) + 1.0f);
    }
    return copysign_of(ax < 0.625f ? small : big, x);
  } else {
    return lanewise(x, [](elem_t<V> v) { return std::tanh(v); });
  }
}

// sigmoid(x) and 1 - sigmoid(x), both without cancellation.
template <class V>
NNFAST_VM_INLINE void sigmoid2(V x, V& s, V& sc) {
  using E = elem_t<V>;
  const V e = exp_neg(-vabs(x));
  const V r = E(1) / (e + E(1));
  const V er = e * r;
  const auto pos = x >= E(0);
  s = pos ? r : er;
  sc = pos ? er : r;
}
// sigmoid2 as a function object, for the formulas of core/act_formulas.h (ISA-local
// type: their instantiations here never merge with another ISA's).
struct Sigmoid2 {
  template <class V>
  NNFAST_HD_INLINE void operator()(V x, V& s, V& sc) const {
    sigmoid2(x, s, sc);
  }
};
// x sigmoid(z) = (z >= 0 ? x : x e) / (1 + e), e = exp(-|z|): no overflow, no
// cancellation, and one rounding after the exp where 1 / (1 + e), e times it and the
// product with x took three (and three operations where that took four).
template <class V>
NNFAST_VM_INLINE V mul_sigmoid(V x, V z) {
  using E = elem_t<V>;
  const V e = exp_neg(-vabs(z));
  return (z >= E(0) ? x : x * e) / (e + E(1));
}
template <class V>
NNFAST_VM_INLINE V sigmoid(V x) {
  V s, sc;
  sigmoid2(x, s, sc);
  return s;
}

// 16-entry table lookup t[idx & 15] per lane: one vpermps on AVX-512 (vpermps
// reads only the low 4 index bits), two plus a blend on AVX2, lane by lane
// elsewhere. It only moves table entries, so every path gives the same bits.
template <class V>
NNFAST_VM_INLINE V lut16(const float* t, mask_t<V> idx) {
#if defined(__AVX512F__)
  if constexpr (is_f32<V>() && sizeof(V) == 64) return (V)_mm512_permutexvar_ps((__m512i)idx, _mm512_load_ps(t));
#endif
#if defined(__AVX2__)
  if constexpr (is_f32<V>() && sizeof(V) == 32) {
    const __m256i i = (__m256i)idx;
    const __m256 lo = _mm256_permutevar8x32_ps(_mm256_load_ps(t), i);
    const __m256 hi = _mm256_permutevar8x32_ps(_mm256_load_ps(t + 8), i);
    return (V)_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
  }
#endif
  V r;
  for (int i = 0; i < lanes<V>(); ++i) r[i] = t[idx[i] & 15];
  return r;
}
// Horner in w over a per-interval coefficient table (row k: the w^k coefficients
// of the 16 intervals), each lane taking its interval's column idx.
template <class V, int kRows>
NNFAST_VM_INLINE V lut_horner(const float (&c)[kRows][16], mask_t<V> idx, V w) {
  V m = lut16<V>(c[kRows - 1], idx);
  for (int k = kRows - 2; k >= 0; --k) m = fmadd(m, w, lut16<V>(c[k], idx));
  return m;
}

// M(u) = Phi(-u) exp(u^2 / 2) on 16 intervals [b - 1, b' - 1) of u, b running
// over the quarter binades of u + 1 in [1, 16) (u in [0, 15)): on each a degree-6
// polynomial in w = u - (b - 1), minimax in relative error (fitted in float64
// against erfc, then coefficient by coefficient rounded to float32 and the rest
// refitted): max relative error 4.5e-8, mostly the rounding of the leading
// coefficient. Narrow intervals near 0 where M changes fastest. Column j holds
// the interval whose index k = (bits(u + 1) >> 21) - 508 has k = j - 4 mod 16, so
// the raw shifted bits index the table. Row k: coefficient of w^k.
alignas(64) constexpr float kNormTailM[7][16] = {
    {2.615782917e-01f, 2.057806700e-01f, 1.681019962e-01f, 1.413313299e-01f, 1.215139478e-01f, 9.441064298e-02f, 7.691930234e-02f, 6.477931142e-02f, 5.589348078e-02f, 4.379878938e-02f, 3.597488999e-02f, 3.050941415e-02f, 5.000000000e-01f, 4.140321016e-01f, 3.496188223e-01f, 3.002324700e-01f},
    {-1.373639554e-01f, -9.027127922e-02f, -6.273827702e-02f, -4.561395198e-02f, -3.440041468e-02f, -2.129971422e-02f, -1.434575580e-02f, -1.026639529e-02f, -7.687903475e-03f, -4.753180314e-03f, -3.218494589e-03f, -2.319891937e-03f, -3.989422619e-01f, -2.954342663e-01f, -2.241328657e-01f, -1.737679243e-01f},
    {6.210608408e-02f, 3.518382832e-02f, 2.131744847e-02f, 1.364958473e-02f, 9.155914187e-03f, 4.605437163e-03f, 2.595879138e-03f, 1.591175096e-03f, 1.039135037e-03f, 5.100438721e-04f, 2.857008949e-04f, 1.754462719e-04f, 2.499988079e-01f, 1.700921953e-01f, 1.188236997e-01f, 8.492322266e-02f},
    {-2.507235296e-02f, -1.245719288e-02f, -6.764169317e-03f, -3.848300083e-03f, -2.307579154e-03f, -9.556566365e-04f, -4.603351408e-04f, -2.456196235e-04f, -1.382085757e-04f, -5.401378803e-05f, -2.509467959e-05f, -1.334658464e-05f, -1.329550147e-01f, -8.443561941e-02f, -5.612527952e-02f, -3.592058271e-02f},
    {9.176153690e-03f, 3.918574657e-03f, 2.249618759e-03f, 1.095725922e-03f, 5.466708099e-04f, 1.849489781e-04f, 8.690090181e-05f, 4.601186811e-05f, 1.802399856e-05f, 5.506246453e-06f, 2.102753342e-06f, 1.228327505e-06f, 6.224328652e-02f, 3.842540830e-02f, 3.400335088e-02f, 7.300610654e-03f},
    {-2.918587532e-03f, -8.551802603e-04f, -1.077586086e-03f, -4.066454421e-04f, -1.123475231e-04f, -2.829667574e-05f, -2.120811405e-05f, -1.511675873e-05f, -2.149133024e-06f, -4.735516654e-07f, -1.354436421e-07f, -2.317501071e-07f, -2.529170737e-02f, -1.940558292e-02f, -5.269556865e-02f, 2.271818742e-02f},
    {6.126420340e-04f, -1.676388138e-06f, 4.934608587e-04f, 1.575522037e-04f, 1.445020189e-05f, 1.942026984e-06f, 4.533196716e-06f, 4.118215656e-06f, 1.661418594e-07f, 2.264020793e-08f, 2.458810267e-09f, 4.225477213e-08f, 7.069993299e-03f, 1.104526222e-02f, 6.544569880e-02f, -3.829624131e-02f},
};

// NNFAST_GELU_EXP_SHORT=0: the normal tail's exp with Cephes's degree-7
// polynomial (A/B; the short one adds <= 0.07 ulp to the exp, GELU stays within
// its 3 ulp). Read once, so the GEMM epilogue and the kernels agree.
inline const bool kGeluExpShort = env_switch_on("NNFAST_GELU_EXP_SHORT");
// Standard normal tail t = Phi(-|x|) and g = exp(-x^2 / 2).
// float32: Phi(-u) = exp(-u^2/2) M(u), M from kNormTailM (table lookups and 6
// FMAs, no division). -u^2/2 = hi + lo exactly (u/2 exact, lo the FMA residual
// of hi), so exp keeps full precision; u is clamped to 14.5, where t already
// rounds to 0, which bounds the exp argument (no clamps inside) and the table
// index. t = 2^n (M + q M): M (1 + q) in one rounding. GELU: <= 3 ulp
// (tests/test_activation.py), the old double rational ~3.1 at twice the cost.
template <bool kShort, class V>
NNFAST_VM_INLINE void normal_tail_f32(V x, V& t, V& g) {
  using I = mask_t<V>;
  const V u = min_keep_nan(14.5f, vabs(x));  // NaN stays NaN (and gives NaN below)
  const V h = u * -0.5f;
  const V hi = h * u;
  const V lo = fmadd(h, u, -hi);
  const ExpParts<V> p = exp_parts_f32<true, false, false, false, kShort>(hi, lo);
  const I b = (I)(u + 1.0f);
  const I idx = b >> 21;
  const V w = u - ((V)(b & (ielem_t<V>)0xffe00000) - 1.0f);  // exact (Sterbenz)
  const V m = lut_horner<V>(kNormTailM, idx, w);
  t = scale2n(fmadd(p.q, m, m), p);
  g = scale2n(p.q + 1.0f, p);
}
// Phi(-u) directly for u in [0, 3) (GELU forward's common case, no exp): 16
// intervals, the eighth binades of u + 1 in [1, 4) (width 0.125 below u = 1, 0.25
// above), a degree-5 polynomial in w = u - (b - 1) on each, fitted like kNormTailM
// (relative error ~1e-7 in float32 Horner). Column j holds the interval whose index
// k = (bits(u + 1) >> 20) - 1016 has k = j + 8 mod 16. Row k: coefficient of w^k.
alignas(64) constexpr float kNormTailP[6][16] = {
    {1.586552560e-01f, 1.056497768e-01f, 6.680720299e-02f, 4.005915672e-02f, 2.275013179e-02f, 1.222447306e-02f, 6.209665444e-03f, 2.979763318e-03f, 5.000000000e-01f, 4.502617717e-01f, 4.012936652e-01f, 3.538302481e-01f, 3.085375428e-01f, 2.659855187e-01f, 2.266273499e-01f, 1.907869577e-01f},
    {-2.419710755e-01f, -1.826496422e-01f, -1.295179278e-01f, -8.627734333e-02f, -5.399098620e-02f, -3.173973784e-02f, -1.752832718e-02f, -9.093576111e-03f, -3.989422917e-01f, -3.958363533e-01f, -3.866646290e-01f, -3.718607426e-01f, -3.520668745e-01f, -3.281570375e-01f, -3.011364639e-01f, -2.720568478e-01f},
    {1.209949329e-01f, 1.141724735e-01f, 9.714892507e-02f, 7.549443096e-02f, 5.399250239e-02f, 3.571022674e-02f, 2.191139944e-02f, 1.250404306e-02f, 8.539328746e-07f, 2.465606853e-02f, 4.811471701e-02f, 7.007673383e-02f, 8.811292052e-02f, 1.023045927e-01f, 1.128658652e-01f, 1.191392019e-01f},
    {-8.619015716e-05f, -1.730321534e-02f, -2.710906602e-02f, -2.969221398e-02f, -2.702586353e-02f, -2.153281868e-02f, -1.535210665e-02f, -9.950364940e-03f, 6.647041440e-02f, 6.679792702e-02f, 6.525691599e-02f, 4.544516653e-02f, 4.188191518e-02f, 3.875016794e-02f, 2.329954877e-02f, 8.096932434e-03f},
    {-1.992967539e-02f, -1.289147045e-02f, -5.425338633e-03f, 6.722514518e-04f, 4.750885535e-03f, 6.403635256e-03f, 6.034986116e-03f, 4.775566980e-03f, 1.819579775e-04f, -2.300181799e-02f, -5.571660772e-02f, 5.406811461e-02f, -1.016379334e-03f, -7.136932760e-02f, -3.512867168e-02f, 6.156149320e-04f},
    {4.402032588e-03f, 4.888201598e-03f, 4.504445475e-03f, 3.301526885e-03f, 1.307774102e-03f, -3.343905846e-04f, -1.003962476e-03f, -1.181788859e-03f, -1.052505430e-02f, 4.422666505e-02f, 1.313943714e-01f, -2.306312323e-01f, -6.470660865e-02f, 1.541021913e-01f, 3.943052515e-02f, -6.935034692e-02f},
};
// NNFAST_GELU_ERF_POLY=0: GELU (erf) forward always through normal_tail (exp and M).
inline const bool kGeluErfPoly = env_switch_on("NNFAST_GELU_ERF_POLY");
// Phi(-u) from kNormTailP; a = u + 1 (the caller's, so its a < 4 test and the
// index see the same rounding). Lanes with a >= 4 or NaN get garbage: select them away.
template <class V>
NNFAST_VM_INLINE V normal_tail_near_f32(V u, V a) {
  using I = mask_t<V>;
  const I b = (I)a;
  const I idx = b >> 20;
  const V w = u - ((V)(b & (ielem_t<V>)0xfff00000) - 1.0f);  // exact (Sterbenz)
  return lut_horner<V>(kNormTailP, idx, w);
}
// True when a < c in every lane (NaN: false). It only skips work, never changes
// bits, so each width may test it its own way.
template <class V>
NNFAST_VM_INLINE bool all_less(V a, elem_t<V> c) {
#if defined(__AVX512F__)
  if constexpr (is_f32<V>() && sizeof(V) == 64)
    return _mm512_cmp_ps_mask((__m512)a, _mm512_set1_ps(c), _CMP_LT_OQ) == 0xffff;
#endif
#if defined(__AVX__)
  if constexpr (is_f32<V>() && sizeof(V) == 32)
    return _mm256_movemask_ps(_mm256_cmp_ps((__m256)a, _mm256_set1_ps(c), _CMP_LT_OQ)) == 0xff;
#endif
  bool all = true;
  for (int i = 0; i < lanes<V>(); ++i) all = all && a[i] < c;
  return all;
}
template <class V>
NNFAST_VM_INLINE void normal_tail(V x, V& t, V& g) {
  if constexpr (is_f32<V>()) {
    if (kGeluExpShort) normal_tail_f32<true>(x, t, g);
    else normal_tail_f32<false>(x, t, g);
  } else {
    using E = elem_t<V>;
    t = lanewise(x, [](E v) { return E(0.5) * std::erfc(std::fabs(v) * E(0.70710678118654752440)); });
    g = lanewise(x, [](E v) { return std::exp(E(-0.5) * v * v); });
  }
}

// ------------------------------------------------------------------ activations
// One struct per nnfast::Act (the list in nnfast/common.h), the ONLY place its
// math lives: fwd(x, a, b) = A(x); grad(s, a, b) = A'(.), where s is the output y
// when act_grad_from_output(A) and the input x otherwise. a, b are ActParams
// (the list names them). Written once over any vector type V (W = 1 included),
// so the standalone SIMD kernels, their tails and the GEMM epilogue (one lane)
// run the same operations and agree bit for bit. Derivatives at kinks follow
// PyTorch. float32 max error vs float64 (ulp, scans of [-30, 30] plus wide
// geometric ranges, tests/test_activation.py::test_float32_ulp_error):
// see the comment on each struct.
template <Act A>
struct ActMath;

template <>
struct ActMath<Act::Identity> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return x; }
  template <class V> NNFAST_VM_INLINE static V grad(V, elem_t<V>, elem_t<V>) { return splat<V>(elem_t<V>(1)); }
};

template <>
struct ActMath<Act::ReLU> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return x < elem_t<V>(0) ? V{} : x; }  // NaN propagates
  template <class V> NNFAST_VM_INLINE static V grad(V y, elem_t<V>, elem_t<V>) { return y > elem_t<V>(0) ? splat<V>(1) : V{}; }
};

template <>
struct ActMath<Act::LeakyReLU> {  // a = negative_slope
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V> a, elem_t<V>) { return x > elem_t<V>(0) ? x : x * a; }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V> a, elem_t<V>) {
    return x > elem_t<V>(0) ? splat<V>(1) : splat<V>(a);
  }
};

template <>
struct ActMath<Act::ELU> {  // a = alpha
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V> a, elem_t<V>) { return x > elem_t<V>(0) ? x : expm1(x) * a; }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V> a, elem_t<V>) { return x > elem_t<V>(0) ? splat<V>(1) : exp(x) * a; }
};

template <>
struct ActMath<Act::Sigmoid> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return sigmoid(x); }
  template <class V> NNFAST_VM_INLINE static V grad(V y, elem_t<V>, elem_t<V>) { return y * (elem_t<V>(1) - y); }
};

template <>
struct ActMath<Act::Tanh> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return tanh(x); }
  template <class V> NNFAST_VM_INLINE static V grad(V y, elem_t<V>, elem_t<V>) { return elem_t<V>(1) - y * y; }
};

template <>
struct ActMath<Act::GELU> {  // exact, erf form
  // float32 forward: Phi(-|x|) by kNormTailP where |x| < 3 (99.7 % of N(0, 1)
  // lanes), by normal_tail elsewhere; the exp is skipped when no lane needs it.
  // Chosen lane by lane, so the bits never depend on a lane's neighbours.
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    V t, g;
    if constexpr (is_f32<V>()) {
      if (kGeluErfPoly) {
        const V u = vabs(x), a = u + 1.0f;
        t = normal_tail_near_f32(u, a);
        if (!all_less(a, 4.0f)) {
          V tf;
          normal_tail(x, tf, g);
          t = a < 4.0f ? t : tf;
        }
        return x * (x < E(0) ? t : E(1) - t);
      }
    }
    normal_tail(x, t, g);
    return x * (x < E(0) ? t : E(1) - t);
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    V t, g;
    normal_tail(x, t, g);
    return (x < E(0) ? t : E(1) - t) + x * g * E(0.39894228040143267794);
  }
};

template <>
struct ActMath<Act::GELUTanh> {
  // 0.5 x (1 + tanh(u)) = x sigmoid(z), z = 2u = x (2k + 2k 0.044715 x^2) (one FMA).
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    return mul_sigmoid(x, x * fmadd(x * x, splat<V>(E(0.07135481627260025)), splat<V>(E(1.5957691216057308))));
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    return formula::gelu_tanh_grad<elem_t<V>>(x, Sigmoid2{});
  }
};

template <>
struct ActMath<Act::SiLU> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return mul_sigmoid(x, x); }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) { return formula::silu_grad<elem_t<V>>(x, Sigmoid2{}); }
};

template <>
struct ActMath<Act::Softplus> {  // a = beta, b = threshold
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V> a, elem_t<V> b) {
    using E = elem_t<V>;
    const V bx = x * a;
    const V soft = log1p_pos(exp(-vabs(bx))) * (E(1) / a) + (bx > E(0) ? x : V{});
    return bx > b ? x : soft;
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V> a, elem_t<V> b) {
    const V bx = x * a;
    return bx > b ? splat<V>(1) : sigmoid(bx);
  }
};

template <>
struct ActMath<Act::Hardtanh> {  // a = min_val, b = max_val
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V> a, elem_t<V> b) {
    return x < a ? splat<V>(a) : (x > b ? splat<V>(b) : x);
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V> a, elem_t<V> b) {
    return (x > a) & (x < b) ? splat<V>(1) : V{};
  }
};

// Mish x tanh(softplus(x)) = x n / (n + 2), n = e (e + 2), e = exp(x): one exp, no
// cancellation; 1 - tanh = 2 / (n + 2). Above x = 20, tanh(softplus(x)) rounds to 1
// in float64 too: t = 1, 1 - t = 0 there (exp clamped so n stays finite). Derivative
// t + x sigmoid(x) (1 - t^2), 1 - t^2 = (1 - t)(1 + t), sigmoid = e / (e + 1).
// float32: <= 4.1 ulp.
template <>
struct ActMath<Act::Mish> {
  template <class V> NNFAST_VM_INLINE static void parts(V x, V& e, V& t, V& tc) {
    using E = elem_t<V>;
    const auto big = x > E(20);
    e = exp(big ? splat<V>(20) : x);
    const V n = e * (e + E(2));
    const V r = E(1) / (n + E(2));
    t = big ? splat<V>(1) : n * r;  // tanh(softplus(x))
    tc = big ? V{} : r + r;         // 1 - t
  }
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    V e, t, tc;
    parts(x, e, t, tc);
    return x * t;
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    V e, t, tc;
    parts(x, e, t, tc);
    return t + x * (e / (e + E(1))) * (tc * (t + E(1)));
  }
};

// Hardswish x relu6(x + 3) / 6; derivative as PyTorch: 0 below -3, x/3 + 1/2 on
// [-3, 3] (both ends), 1 above (NaN: 1). float32: <= 1.9 ulp (two roundings).
template <>
struct ActMath<Act::Hardswish> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    V r = x + E(3);
    r = r < E(0) ? V{} : r;  // NaN propagates
    r = r > E(6) ? splat<V>(6) : r;
    return (x * r) / E(6);
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    return x < E(-3) ? V{} : (x <= E(3) ? x / E(3) + E(0.5) : splat<V>(1));
  }
};

// SELU scale (x > 0 ? x : alpha expm1(x)); derivative at x <= 0 from the exp branch
// (PyTorch's elu_backward). float32: <= 1.7 ulp.
template <>
struct ActMath<Act::SELU> {
  static constexpr double kScale = 1.0507009873554804934193349852946;
  static constexpr double kAlphaScale = 1.6732632423543772848170429916717 * 1.0507009873554804934193349852946;
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    return x <= E(0) ? expm1(x) * E(kAlphaScale) : x * E(kScale);
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    return x <= E(0) ? exp(x) * E(kAlphaScale) : splat<V>(E(kScale));
  }
};

// CELU x > 0 ? x : alpha expm1(x / alpha) (a = alpha != 0, checked in Python);
// derivative at x <= 0 from the exp branch. float32: <= 1.9 ulp.
template <>
struct ActMath<Act::CELU> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V> a, elem_t<V>) {
    using E = elem_t<V>;
    return x <= E(0) ? expm1(x * (E(1) / a)) * a : x;
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V> a, elem_t<V>) {
    using E = elem_t<V>;
    return x <= E(0) ? exp(x * (E(1) / a)) : splat<V>(1);
  }
};

// Softsign x / (1 + |x|) (+-inf -> NaN, as PyTorch); derivative 1 / (1 + |x|)^2.
// float32: <= 1.5 ulp forward, 3.4 derivative.
template <>
struct ActMath<Act::Softsign> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) { return x / (vabs(x) + elem_t<V>(1)); }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    const V d = vabs(x) + elem_t<V>(1);
    return elem_t<V>(1) / (d * d);
  }
};

// LogSigmoid log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)); derivative
// sigmoid(-x) = 1 - sigmoid(x) without cancellation (0.5 at 0). float32: <= 1.9 ulp.
template <>
struct ActMath<Act::LogSigmoid> {
  template <class V> NNFAST_VM_INLINE static V fwd(V x, elem_t<V>, elem_t<V>) {
    using E = elem_t<V>;
    return (x < E(0) ? x : V{}) - log1p_pos(exp(-vabs(x)));
  }
  template <class V> NNFAST_VM_INLINE static V grad(V x, elem_t<V>, elem_t<V>) {
    V s, sc;
    sigmoid2(x, s, sc);
    return sc;
  }
};

// Every code of the list has its ActMath (a missing one fails here, at compile time).
#define NNFAST_ACT_HAS_MATH_(Name, ...) static_assert(sizeof(ActMath<Act::Name>) > 0, "ActMath<Act::" #Name ">");
NNFAST_ACTIVATIONS(NNFAST_ACT_HAS_MATH_)
#undef NNFAST_ACT_HAS_MATH_

template <Act A, class V>
NNFAST_VM_INLINE V act_fwd(V x, elem_t<V> a, elem_t<V> b) {
  return ActMath<A>::fwd(x, a, b);
}
template <Act A, class V>
NNFAST_VM_INLINE V act_grad(V s, elem_t<V> a, elem_t<V> b) {
  return ActMath<A>::grad(s, a, b);
}

// y = A(x) and d = A'(x) from the input in one go (gated units need both).
template <Act A, class V>
NNFAST_VM_INLINE void act_fwd_grad(V x, elem_t<V> a, elem_t<V> b, V& y, V& d) {
  y = act_fwd<A>(x, a, b);
  if constexpr (act_grad_from_output(A)) {
    d = act_grad<A>(y, a, b);
  } else {
    d = act_grad<A>(x, a, b);
  }
}

}  // namespace vm
}  // namespace NNFAST_VM_NS
}  // namespace nnfast

// The CPU kernels live in nnfast::cpu::<isa>; let them name this layer `vm` there too.
namespace nnfast::cpu::NNFAST_VM_NS {
namespace vm = ::nnfast::NNFAST_VM_NS::vm;
}  // namespace nnfast::cpu::NNFAST_VM_NS

// ==================================================================== exp / log / log1p, full range
// The one set of exp / log / log1p the loss kernels use (cpu/loss_isa.cpp rows,
// cpu/loss_pointwise.cpp), float32 and float64, lane-generic like the rest of
// this header. Special values follow libm: exp overflow -> inf, underflow -> 0
// (subnormal results are kept), log(0) = -inf, log(x < 0) = NaN, log(inf) = inf,
// NaN in -> NaN out. float32 builds on exp_parts_f32 / log_f32 above; float64
// has its own range reductions and polynomials here. exp_nonpos: exp for x <= 0
// (softmax rows) with one 2^n scale, subnormal results flushed to +0;
// bit-equal to exp_full where the result is normal.
// Max error vs long double libm (tests/cpp/test_vec_math.cpp: every 127th
// float32 bit pattern, 4M float64 samples over all exponents, the special values):
// float32 exp 0.95 ulp, log 0.82 ulp (subnormal inputs included), log1p 1.44 ulp;
// float64 exp 0.96 ulp, log 0.82 ulp, log1p 1.43 ulp. The test fails above
// 1 / 1 / 1.5 ulp.
namespace nnfast {
namespace NNFAST_VM_NS {
namespace vm {

// exp(a) = 2^n (1 + q), n = round(a / ln2), float64: as exp_parts_f32, with a
// Taylor expm1 to r^13 on |r| <= ln2/2 (truncation < 4e-18 relative).
template <bool kNonpos = false, class V>
NNFAST_VM_INLINE ExpParts<V> exp_parts_f64(V a) {
  using I = mask_t<V>;
  using U = umask_t<V>;
  if constexpr (kNonpos) {
    a = a < -708.3964185322641 ? splat<V>(-709.0) : a;  // -709 / ln2 rounds to -1023
  } else {
    a = a < -746.0 ? splat<V>(-746.0) : a;  // exp(-746) rounds to 0; NaN passes both clamps
    a = a > 710.0 ? splat<V>(710.0) : a;    // exp(710) overflows to inf
  }
  const V magic = splat<V>(6755399441055744.0);  // 1.5 * 2^52
  const V t = a * 1.4426950408889634074 + magic;
  const V n = t - magic;
  const I ni = (I)t - (I)magic;
  V r = a - n * 6.93145751953125e-1;  // Cody-Waite ln2 = C1 + C2, n * C1 exact
  r = r - n * 1.42860682030941723212e-6;
  V p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
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
  ExpParts<V> out;
  out.q = p * (r * r) + r;
  out.n = n;
  if constexpr (kNonpos) {
    out.s1 = (V)((U)(ni + 1023) << 52);  // n = -1023: +0
    out.s2 = V{};
  } else {
    const I h = ni >> 1;  // 2^n = s1 * s2, both normal
    out.s1 = (V)((U)(h + 1023) << 52);
    out.s2 = (V)((U)(ni - h + 1023) << 52);
  }
  return out;
}

// log(x) for finite normal x > 0, float64 (fdlibm's reduction): x = m 2^k,
// m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f),
// log(1 + f) = f - (f^2/2 - s (f^2/2 + R)), R = 2 (s^2/3 + s^4/5 + ... + s^24/25).
template <class V>
NNFAST_VM_INLINE V log_f64(V x) {
  using I = mask_t<V>;
  const I ix = (I)x;
  I e = ((ix >> 52) & 0x7ff) - 1023;
  V m = (V)((ix & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);  // [1, 2)
  const auto big = m > 1.41421356237309504880;
  e = big ? e + 1 : e;
  m = big ? m * 0.5 : m;
  const V f = m - 1.0;
  const V s = f / (f + 2.0), z = s * s;
  V p = z * (1.0 / 25) + 1.0 / 23;
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
  const V R = (z + z) * p;
  const V hfsq = (f * f) * 0.5;
  // e as a double without an int64 -> double conversion (none before AVX-512DQ).
  const V magic = splat<V>(6755399441055744.0);
  const V fe = (V)(e + (I)magic) - magic;
  // ln2 = hi + lo, hi with 32 trailing zero bits: fe * hi is exact
  return fe * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + fe * 1.90821492927058770002e-10)) - f);
}

template <class V>
NNFAST_VM_INLINE V exp_full(V x) {
  if constexpr (is_f32<V>()) {
    return exp(x);  // exp_parts_f32: already full range
  } else {
    const ExpParts<V> p = exp_parts_f64(x);
    return ((p.q + 1.0) * p.s1) * p.s2;
  }
}

// exp(x) for x <= 0 (softmax's x - max): exp_full's reduction and polynomial
// with one 2^n scale instead of two and one clamp instead of two (AVX-512
// float32 sumexp loop: 27 vector ops per register instead of 35). Bit-equal to
// exp_full on [lo, 0], lo = the float just above ln(min normal) (float32
// -87.3365402, float64 -708.3964185322641), so the same ulp bound. Below lo
// (-inf included): +0, never a subnormal (no FTZ here, so a subnormal product
// costs a microcode assist; such terms are far below a row sum's rounding).
// NaN -> NaN. x > 0 is outside the contract.
// kScalef = false: the integer 2^n on AVX-512 too (the softmax rows' A/B switch
// NNFAST_EXP_SCALEF=0; the same bits).
// kShort (float32, the softmax rows' NNFAST_SOFTMAX_EXP_SHORT): the degree-6
// polynomial of exp_parts_f32, <= 0.07 ulp more, no longer bit-equal to exp_full.
template <bool kScalef = true, bool kShort = false, class V>
NNFAST_VM_INLINE V exp_nonpos(V x) {
  if constexpr (is_f32<V>()) {
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64 && kScalef) {
      // vscalefps takes n as it is: no integer 2^n to build (3 of the loop's ~20
      // vector ops). (1 + q) 2^n rounds once, as (1 + q) s1 does, subnormal results
      // included. No input clamp either: lanes below lo (-inf, huge) may compute
      // garbage, and the one compare zeroes them (NaN compares false and passes).
      const ExpParts<V> p = exp_parts_f32<false, true, false, false, kShort>(x, V{});
      const V y = (V)_mm512_scalef_ps((__m512)(p.q + 1.0f), (__m512)p.n);
      return x < -87.3365402f ? V{} : y;
    }
#endif
    const ExpParts<V> p = exp_parts_f32<false, true, true, false, kShort>(x, V{});
    return (p.q + 1.0f) * p.s1;
  } else {
    const ExpParts<V> p = exp_parts_f64<true>(x);
    return (p.q + 1.0) * p.s1;
  }
}

template <class V>
NNFAST_VM_INLINE V log_full(V x) {
  using E = elem_t<V>;
  constexpr bool f32 = is_f32<V>();
  // Subnormals are scaled by 2^up into the normal range, log(2^up) taken off after.
  constexpr int up = f32 ? 25 : 54;
  const E scale = f32 ? E(33554432.0) : E(18014398509481984.0);
  const auto sub = x < std::numeric_limits<E>::min();
  const V xs = sub ? x * scale : x;
  V r;
  if constexpr (f32) r = log_f32(xs); else r = log_f64(xs);
  // up * ln2 as C1 + C2 (up * C1 exact), as in the range reductions
  const V corr_hi = splat<V>(E(-up) * E(f32 ? 0.693359375 : 6.93147180369123816490e-01));
  const V corr_lo = splat<V>(E(-up) * E(f32 ? -2.12194440e-4 : 1.90821492927058770002e-10));
  r = sub ? (r + corr_lo) + corr_hi : r;
  const V inf = splat<V>(std::numeric_limits<E>::infinity());
  const V nan = splat<V>(std::numeric_limits<E>::quiet_NaN());
  r = x == inf ? inf : r;
  r = (x < E(0)) | (x != x) ? nan : r;
  return x == E(0) ? -inf : r;
}

// log1p(u) = log(w) + (u - (w - 1)) / w, w = 1 + u: the quotient restores the
// bits of u that rounding 1 + u lost. u <= -1, u = inf, NaN: log(w) as it is.
template <class V>
NNFAST_VM_INLINE V log1p_full(V u) {
  using E = elem_t<V>;
  const V w = u + E(1);
  const V lw = log_full(w);
  const V fixed = lw + (u - (w - E(1))) / w;
  return (w > E(0)) & (w < std::numeric_limits<E>::infinity()) ? fixed : lw;
}

}  // namespace vm
}  // namespace NNFAST_VM_NS
}  // namespace nnfast

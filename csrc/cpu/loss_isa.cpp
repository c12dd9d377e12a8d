// Per-ISA row primitives of the softmax losses (see cpu/loss_rows.h):
// compiled three times (NNFAST_ISA_NS = isa_generic, isa_avx2, isa_avx512) on
// GCC/Clang vector extensions, so one source serves 16-, 32- and 64-byte
// registers. exp is a branch-free polynomial (Cephes-style range reduction:
// x = n ln2 + r, |r| <= ln2/2) accurate to about 1 ulp in float and double,
// so rows vectorize without fast-math; NaN propagates, exp(-inf) is tiny
// (~1e-38 / 1e-308), never NaN.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/simd.h"
#include "cpu/loss_rows.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

constexpr int kBytes = simd::kNativeBytes;

template <typename T>
struct Traits;

template <>
struct Traits<float> {
  using V = simd::Native<float>;
  using I = simd::Native<std::uint32_t>;  // unsigned: no signed-shift UB
  using S = std::int32_t;
  static constexpr float lo = -87.3365447504f;  // exp(lo) = FLT_MIN
  static constexpr float hi = 88.0f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr int mant = 23;
  static constexpr int bias = 127;
  // exp(r) on |r| <= ln2/2 (Cephes expf).
  template <typename X>
  static inline X poly(X r) {
    X p = X{} + 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    return p * r * r + r + 1.0f;
  }
};

template <>
struct Traits<double> {
  using V = simd::Native<double>;
  using I = simd::Native<std::uint64_t>;
  using S = std::int64_t;
  static constexpr double lo = -708.3964185322641;  // exp(lo) = DBL_MIN
  static constexpr double hi = 709.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93145751953125E-1;
  static constexpr double ln2_lo = 1.42860682030941723212E-6;
  static constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int mant = 52;
  static constexpr int bias = 1023;
  // Taylor series to r^12: truncation error < 2e-16 on |r| <= ln2/2.
  template <typename X>
  static inline X poly(X r) {
    X p = X{} + 1.0 / 479001600.0;
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
    return p * r * r + r + 1.0;
  }
};

template <typename T>
using VecT = typename Traits<T>::V;
template <typename T>
constexpr int lanes() { return kBytes / static_cast<int>(sizeof(T)); }

template <typename T>
inline VecT<T> vload(const T* p) {
  VecT<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void vstore(T* p, VecT<T> v) { std::memcpy(p, &v, sizeof(v)); }

// exp on a vector: clamp, n = round(x log2e), r = x - n ln2, 2^n from bits.
template <typename T>
inline VecT<T> vexp(VecT<T> x) {
  using Tr = Traits<T>;
  using V = typename Tr::V;
  using I = typename Tr::I;
  x = x < Tr::lo ? V{} + Tr::lo : x;  // NaN compares false and stays NaN
  x = x > Tr::hi ? V{} + Tr::hi : x;
  V t = x * Tr::log2e + Tr::magic;
  V fn = t - Tr::magic;
  const T magic = Tr::magic;
  typename Tr::S mb;
  std::memcpy(&mb, &magic, sizeof(T));
  I n = (I)t - static_cast<typename std::make_unsigned<typename Tr::S>::type>(mb);
  V r = x - fn * Tr::ln2_hi - fn * Tr::ln2_lo;
  V p = Tr::poly(r);
  I bits = (n + static_cast<typename std::make_unsigned<typename Tr::S>::type>(Tr::bias)) << Tr::mant;
  return p * (V)bits;
}

template <typename T>
inline T hsum(VecT<T> v) {
  T s = 0;
  for (int i = 0; i < lanes<T>(); ++i) s += v[i];
  return s;
}

// NaN-propagating max: any NaN in the row makes the result NaN.
template <typename T>
T row_max(const T* x, index_t C) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  index_t c = 0;
  T m = x[0];
  bool nan = false;
  if (C >= 2 * W) {
    V a = vload(x), b = vload(x + W), bad = V{} * 0;  // bad: accumulates x != x
    for (; c + 2 * W <= C; c += 2 * W) {
      V u = vload(x + c), v = vload(x + c + W);
      a = u > a ? u : a;
      b = v > b ? v : b;
      bad = bad + (u - u) + (v - v);  // NaN - NaN = NaN, finite - finite = 0, inf - inf = NaN
    }
    a = b > a ? b : a;
    for (int i = 0; i < W; ++i) {
      m = a[i] > m ? a[i] : m;
      nan = nan || bad[i] != bad[i];
    }
  }
  for (; c < C; ++c) {
    m = x[c] > m ? x[c] : m;
    nan = nan || x[c] != x[c];
  }
  if (!nan) return m;
  // inf - inf flagged too: look again for a real NaN.
  for (index_t i = 0; i < C; ++i)
    if (x[i] != x[i]) return x[i];
  return m;
}

// The last partial vector of a row goes through a padded W-lane buffer (pad
// lanes masked to 0), so short rows (C = 10, 100) stay on the vector path.
template <typename T>
T row_sumexp(const T* x, index_t C, T m, T* e) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  V acc0 = V{}, acc1 = V{};
  index_t c = 0;
  if (e) {
    for (; c + 2 * W <= C; c += 2 * W) {
      V u = vexp<T>(vload(x + c) - m), v = vexp<T>(vload(x + c + W) - m);
      vstore(e + c, u);
      vstore(e + c + W, v);
      acc0 += u;
      acc1 += v;
    }
  } else {
    for (; c + 2 * W <= C; c += 2 * W) {
      acc0 += vexp<T>(vload(x + c) - m);
      acc1 += vexp<T>(vload(x + c + W) - m);
    }
  }
  for (; c + W <= C; c += W) {
    V u = vexp<T>(vload(x + c) - m);
    if (e) vstore(e + c, u);
    acc0 += u;
  }
  if (c < C) {
    const index_t rem = C - c;
    alignas(64) T buf[W];
    V mask = V{};
    for (int i = 0; i < W; ++i) {
      buf[i] = i < rem ? x[c + i] : m;
      mask[i] = i < rem ? T(1) : T(0);
    }
    V u = vexp<T>(vload(buf) - m) * mask;
    if (e) {
      vstore(buf, u);
      for (index_t i = 0; i < rem; ++i) e[c + i] = buf[i];
    }
    acc1 += u;
  }
  return hsum<T>(acc0 + acc1);
}

template <typename T>
T row_shift_dot(const T* x, const T* w, index_t C, T m) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  V acc = V{};
  index_t c = 0;
  T s = 0;
  if (w) {
    for (; c + W <= C; c += W) acc += vload(w + c) * (vload(x + c) - m);
    s = hsum<T>(acc);
    for (; c < C; ++c) s += w[c] * (x[c] - m);
  } else {
    for (; c + W <= C; c += W) acc += vload(x + c) - m;
    s = hsum<T>(acc);
    for (; c < C; ++c) s += x[c] - m;
  }
  return s;
}

template <typename T>
void row_affine(T* d, index_t C, T a, T b, const T* w) {
  constexpr int W = lanes<T>();
  index_t c = 0;
  if (w) {
    for (; c + W <= C; c += W) vstore(d + c, vload(d + c) * a + vload(w + c) * b);
    for (; c < C; ++c) d[c] = a * d[c] + b * w[c];
  } else {
    for (; c + W <= C; c += W) vstore(d + c, vload(d + c) * a + b);
    for (; c < C; ++c) d[c] = a * d[c] + b;
  }
}

template <typename T>
loss_detail::RowOps<T> make_row_ops() {
  loss_detail::RowOps<T> o;
  o.max = &row_max<T>;
  o.sumexp = &row_sumexp<T>;
  o.shift_dot = &row_shift_dot<T>;
  o.affine = &row_affine<T>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(loss_detail::RowOps, make_row_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

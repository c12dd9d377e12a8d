// Per-ISA row primitives of the softmax losses (see cpu/loss_rows.h):
// compiled three times (NNFAST_ISA_NS = isa_generic, isa_avx2, isa_avx512) on
// GCC/Clang vector extensions, so one source serves 16-, 32- and 64-byte
// registers. exp is vm::exp_nonpos of core/vec_math.h (branch-free, < 1 ulp in
// float and double), so rows vectorize without fast-math: its argument x - max
// is <= 0, so one 2^n scale and one clamp do (exp_full's two of each made
// cross_entropy ~10% slower).
// NaN propagates; exp(x - max) below the smallest normal (-inf included) is 0.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/simd.h"
#include "core/stream_store.h"
#include "core/vec_math.h"
#include "cpu/loss_rows.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

template <typename T>
using VecT = simd::Native<T>;
template <typename T>
constexpr int lanes() { return simd::kLanes<T>; }

template <typename T>
inline VecT<T> vload(const T* p) { return simd::load<VecT<T>>(p); }
template <typename T>
inline void vstore(T* p, VecT<T> v) { simd::store(p, v); }
template <typename T>
inline VecT<T> vexp(VecT<T> x) { return vm::exp_nonpos(x); }  // x = x_c - max <= 0
template <typename T>
inline T hsum(VecT<T> v) { return simd::hsum(v); }

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
// The next row's prefetch: the exps are the compute-heavy pass, so its DRAM reads
// overlap them instead of stalling the next row's max pass (softmax rows do the same).
template <typename T>
T row_sumexp(const T* x, index_t C, T m, T* e, const T* next) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  V acc0 = V{}, acc1 = V{};
  index_t c = 0;
  constexpr index_t L = 64 / static_cast<index_t>(sizeof(T));  // elements per cache line
  if (e) {
    for (; c + 2 * W <= C; c += 2 * W) {
      if (next)
        for (index_t k = 0; k < 2 * W; k += L) __builtin_prefetch(next + c + k, 0, 3);
      V u = vexp<T>(vload(x + c) - m), v = vexp<T>(vload(x + c + W) - m);
      vstore(e + c, u);
      vstore(e + c + W, v);
      acc0 += u;
      acc1 += v;
    }
  } else {
    for (; c + 2 * W <= C; c += 2 * W) {
      if (next)
        for (index_t k = 0; k < 2 * W; k += L) __builtin_prefetch(next + c + k, 0, 3);
      acc0 += vexp<T>(vload(x + c) - m);
      acc1 += vexp<T>(vload(x + c + W) - m);
    }
  }
  if (next)
    for (index_t k = c; k < C; k += L) __builtin_prefetch(next + k, 0, 3);
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

// ------------------------------------------------------------------ fast rows (NNFAST_CE_FAST)
// The 4-accumulator max over whole groups of 4 vectors from c = 0 (C >= 4 W), folded into m
// = x[0]; `each_group` runs once per group (fast_row_max_emit's stores). c: the first column left.
template <typename T, class Step>
T max_groups4(const T* x, index_t C, index_t& c, Step each_group) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  T m = x[0];
  V a = vload(x), b = vload(x + W), d = vload(x + 2 * W), f = vload(x + 3 * W);
  for (c = 0; c + 4 * W <= C; c += 4 * W) {
    const V u = vload(x + c), v = vload(x + c + W), y = vload(x + c + 2 * W), z = vload(x + c + 3 * W);
    a = u > a ? u : a;
    b = v > b ? v : b;
    d = y > d ? y : d;
    f = z > f ? z : f;
    each_group();
  }
  a = b > a ? b : a;
  d = f > d ? f : d;
  a = d > a ? d : a;
  for (int i = 0; i < W; ++i) m = a[i] > m ? a[i] : m;
  return m;
}

// The same contracts with fewer vector ops per element (this Zen 4 runs 512-bit ops
// double-pumped, so the op count, not DRAM, bounded cross_entropy at 64 MB).
// max: vmaxps only, no NaN accumulator: a NaN the max skips still reaches the sum
// (x - m = NaN, exp(NaN) = NaN), so se, the loss and every dx[c] = a e[c] are NaN
// all the same; only the returned m differs from max's on such rows.
template <typename T>
T fast_row_max(const T* x, index_t C) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  index_t c = 0;
  T m = C >= 4 * W ? max_groups4<T>(x, C, c, [] {}) : x[0];
  for (; c + W <= C; c += W) {
    const V u = vload(x + c);
    for (int i = 0; i < W; ++i) m = u[i] > m ? u[i] : m;
  }
  for (; c < C; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

// exp(x) for x = x_c - max <= 0, NaN passes, results below the smallest normal
// (-inf included) +0. float32 on AVX-512: n = round(x / ln2), r = x - n ln2 in two
// Cody-Waite steps, exp(r) = 1 + r + r^2 P(r) (exp_parts_f32's degree-4 short P)
// by plain Horner down to the constant 1 (6 FMAs where r^2, q = r + r^2 P and q + 1
// take 7 ops), and the 2^n scale zero-masked by the range compare (vscalefps {z}).
// 9 FMA-pipe ops per vector where vexp (exp_nonpos, degree 5 P) takes 10 plus one
// more add. <= 0.86 ulp (tests/test_loss.py scans it). Elsewhere exp_nonpos with
// the short polynomial (float32) or as it is (float64).
template <typename T>
inline VecT<T> vexp_fast(VecT<T> x) {
  using V = VecT<T>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && sizeof(V) == 64) {
    const V magic = V{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const V t = vm::fmadd(x, V{} + 1.44269504088896341f, magic);
    const V n = t - magic;
    V r = vm::fmadd(n, V{} - 0.693359375f, x);
    r = vm::fmadd(n, V{} + 2.12194440e-4f, r);
    V p = vm::fmadd(r, V{} + 1.38143904e-3f, V{} + 8.36881716e-3f);
    p = vm::fmadd(p, r, V{} + 4.16683964e-2f);
    p = vm::fmadd(p, r, V{} + 1.66665196e-1f);
    p = vm::fmadd(p, r, V{} + 4.99999940e-1f);
    p = vm::fmadd(p, r, V{} + 1.0f);
    p = vm::fmadd(p, r, V{} + 1.0f);
    // x >= lo or NaN keeps the lane (NLT_UQ: not-less-than, true on unordered).
    const __mmask16 keep = _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(-87.3365402f), _CMP_NLT_UQ);
    return (V)_mm512_maskz_scalef_ps(keep, (__m512)p, (__m512)n);
  }
#endif
  if constexpr (std::is_same_v<T, float>) return vm::exp_nonpos<true, true>(x);
  else return vm::exp_nonpos(x);
}

// sumexp with vexp_fast, two vectors in flight, the next row prefetched.
template <typename T>
T fast_row_sumexp(const T* x, index_t C, T m, T* e, const T* next) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  V acc0 = V{}, acc1 = V{};
  index_t c = 0;
  constexpr index_t L = 64 / static_cast<index_t>(sizeof(T));  // elements per cache line
  for (; c + 2 * W <= C; c += 2 * W) {
    if (next)
      for (index_t k = 0; k < 2 * W; k += L) __builtin_prefetch(next + c + k, 0, 3);
    const V u = vexp_fast<T>(vload(x + c) - m), v = vexp_fast<T>(vload(x + c + W) - m);
    if (e) {
      vstore(e + c, u);
      vstore(e + c + W, v);
    }
    acc0 += u;
    acc1 += v;
  }
  if (next)
    for (index_t k = c; k < C; k += L) __builtin_prefetch(next + k, 0, 3);
  for (; c + W <= C; c += W) {
    const V u = vexp_fast<T>(vload(x + c) - m);
    if (e) vstore(e + c, u);
    acc0 += u;
  }
  if (c < C) {
    const index_t rem = C - c;
    const V u = vexp_fast<T>(simd::load_n<V>(x + c, rem, -std::numeric_limits<T>::infinity()) - m);
    if (e) simd::store_n(e + c, u, rem);
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

// Unaligned head and the tail through one lane, the body streamed (the peel makes
// d + c vector-aligned; a d that is not element-aligned gets ordinary stores).
template <typename T>
void row_affine_stream(T* d, const T* e, index_t C, T a, T b, const T* w, index_t t, T fix) {
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  namespace ss = ::nnfast::NNFAST_ISA_NS::stream_store;
  const index_t p = ss::peel_count<sizeof(V)>(d, C);
  const bool stream = reinterpret_cast<std::uintptr_t>(d + p) % sizeof(V) == 0;
  auto one = [&](index_t c) {
    const T v = w ? a * e[c] + b * w[c] : a * e[c] + b;
    d[c] = c == t ? v - fix : v;
  };
  index_t c = 0;
  for (; c < p; ++c) one(c);
  const index_t body = p + (stream ? (C - p) / W * W : 0);
  // b = -0 without w (no label smoothing): a e + b = a e bit for bit, one op fewer.
  if (!w && b == T(0) && std::signbit(b)) {
    for (; c < body; c += W) {
      V v = vload(e + c) * a;
      if (t >= c && t < c + W) v[t - c] -= fix;
      ss::store_out<true>(d + c, v);
    }
  }
  for (; c < body; c += W) {
    V v = w ? vload(e + c) * a + vload(w + c) * b : vload(e + c) * a + b;
    if (t >= c && t < c + W) v[t - c] -= fix;
    ss::store_out<true>(d + c, v);
  }
  for (; c < C; ++c) one(c);
}

// fast_max of this row with the previous row's gradient d = a ep (- fix at t)
// streamed out in the same loop (affine_stream with b = -0, no w: the same bits).
// The max pass waits on the row's DRAM reads anyway; the non-temporal stores drain
// alongside instead of in a pass of their own. (Inside the exp loop instead: ~20%
// slower, 1-thread CPU time.)
template <typename T>
T fast_row_max_emit(const T* x, index_t C, T* d, const T* ep, T a, index_t t, T fix) {
  if (!d) return fast_row_max<T>(x, C);
  constexpr int W = lanes<T>();
  using V = VecT<T>;
  namespace ss = ::nnfast::NNFAST_ISA_NS::stream_store;
  const index_t p = ss::peel_count<sizeof(V)>(d, C);
  if (reinterpret_cast<std::uintptr_t>(d + p) % sizeof(V) != 0 || C < 4 * W) {
    row_affine_stream<T>(d, ep, C, a, -T(0), nullptr, t, fix);
    return fast_row_max<T>(x, C);
  }
  const index_t nb = (C - p) / W;
  index_t j = 0;
  auto emit = [&](index_t jj) {
    const index_t c = p + jj * W;
    V v = vload(ep + c) * a;
    if (t >= c && t < c + W) v[t - c] -= fix;
    ss::store_out<true>(d + c, v);
  };
  index_t c = 0;
  T m = max_groups4<T>(x, C, c, [&] {
    for (int q = 0; q < 4 && j < nb; ++q, ++j) emit(j);
  });
  for (; c < C; ++c) m = x[c] > m ? x[c] : m;
  for (; j < nb; ++j) emit(j);
  auto one = [&](index_t i) {
    const T v = a * ep[i];
    d[i] = i == t ? v - fix : v;
  };
  for (index_t i = 0; i < p; ++i) one(i);
  for (index_t i = p + nb * W; i < C; ++i) one(i);
  return m;
}

template <typename T>
loss_detail::RowOps<T> make_row_ops() {
  loss_detail::RowOps<T> o;
  o.max = &row_max<T>;
  o.sumexp = &row_sumexp<T>;
  o.fast_max = &fast_row_max<T>;
  o.fast_sumexp = &fast_row_sumexp<T>;
  o.fast_max_emit = &fast_row_max_emit<T>;
  o.shift_dot = &row_shift_dot<T>;
  o.affine = &row_affine<T>;
  o.affine_stream = &row_affine_stream<T>;
  o.fence = &::nnfast::NNFAST_ISA_NS::stream_store::stream_fence<true>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(loss_detail::RowOps, make_row_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

// Per-ISA row primitives of the softmax losses (see cpu/loss_rows.h):
// compiled three times (NNFAST_ISA_NS = isa_generic, isa_avx2, isa_avx512) on
// GCC/Clang vector extensions, so one source serves 16-, 32- and 64-byte
// registers. exp is vm::exp_nonpos of core/vec_math.h (branch-free, < 1 ulp in
// float and double), so rows vectorize without fast-math: its argument x - max
// is <= 0, so one 2^n scale and one clamp do (exp_full's two of each made
// cross_entropy ~10% slower).
// NaN propagates; exp(x - max) below the smallest normal (-inf included) is 0.
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
  for (; c < body; c += W) {
    V v = w ? vload(e + c) * a + vload(w + c) * b : vload(e + c) * a + b;
    if (t >= c && t < c + W) v[t - c] -= fix;
    ss::store_out<true>(d + c, v);
  }
  for (; c < C; ++c) one(c);
}

template <typename T>
loss_detail::RowOps<T> make_row_ops() {
  loss_detail::RowOps<T> o;
  o.max = &row_max<T>;
  o.sumexp = &row_sumexp<T>;
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

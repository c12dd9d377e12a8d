// Per-ISA row loops of the fused attention kernel (see cpu/attention_internal.h):
// the online-softmax update of a score tile, probabilities from the saved
// log-sum-exp, the softmax gradient and row dot products. Compiled once per
// instruction set (NNFAST_ISA_NS); never include it elsewhere. Tails use one-lane
// vectors, so every width gives the same bits lane by lane (sums are taken in
// a fixed order per width only: the kernels' determinism is per ISA).
#include <cmath>
#include <limits>

#include "core/vec_math.h"
#include "cpu/attention_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

template <typename T>
using VW = vm::Vec<T, simd::kNativeBytes / static_cast<int>(sizeof(T))>;
template <typename T>
using V1 = vm::Vec<T, 1>;
template <typename T>
constexpr index_t width() { return simd::kNativeBytes / static_cast<index_t>(sizeof(T)); }

// exp(x) for x <= 0 (x = -inf gives 0); x is clamped at 0 so a recomputed
// score a rounding above its row's max never leaves exp_nonpos's domain.
template <class V>
inline V exp_le0(V x) {
  return vm::exp_nonpos(x > V{} ? V{} : x);
}

template <typename T>
T row_max(const T* s, index_t n) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  const T ninf = -std::numeric_limits<T>::infinity();
  index_t j = 0;
  T mx = ninf;
  if (n >= W) {
    V acc = vm::load<V>(s);
    for (j = W; j + W <= n; j += W) {
      const V x = vm::load<V>(s + j);
      acc = x > acc ? x : acc;
    }
    for (int k = 0; k < static_cast<int>(W); ++k) mx = acc[k] > mx ? acc[k] : mx;
  }
  for (; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
  return mx;
}

// s := exp(s - shift) over n values; returns their sum (lane partials, then left to right).
template <typename T>
T exp_row(T* s, index_t n, T shift) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  const V sh = vm::splat<V>(shift);
  V acc{};
  index_t j = 0;
  for (; j + W <= n; j += W) {
    const V e = exp_le0(vm::load<V>(s + j) - sh);
    vm::store(s + j, e);
    acc += e;
  }
  T sum = simd::hsum(acc);
  for (; j < n; ++j) {
    const V1<T> e = exp_le0(V1<T>{s[j] - shift});
    s[j] = e[0];
    sum += e[0];
  }
  return sum;
}

template <typename T>
void attn_softmax_update(T* s, index_t rows, index_t n, index_t ld, T* m, T* l, T* alpha) {
  const T ninf = -std::numeric_limits<T>::infinity();
  for (index_t r = 0; r < rows; ++r) {
    T* row = s + r * ld;
    const T mx = row_max(row, n);
    const T m_new = mx > m[r] ? mx : m[r];
    // A row with no key taking part yet keeps m = -inf: shift by 0 so exp(-inf) = 0, not NaN.
    const T shift = m_new == ninf ? T(0) : m_new;
    const T sum = exp_row(row, n, shift);
    const T a = m[r] == ninf ? T(0) : exp_le0(V1<T>{m[r] - shift})[0];
    alpha[r] = a;
    l[r] = l[r] * a + sum;
    m[r] = m_new;
  }
}

template <typename T>
void attn_exp_shift(T* s, index_t rows, index_t n, index_t ld, const T* shift) {
  for (index_t r = 0; r < rows; ++r) (void)exp_row(s + r * ld, n, shift[r]);
}

template <typename T>
void attn_softmax_grad(T* dp, const T* p, index_t rows, index_t n, index_t ld, const T* d) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    T* g = dp + r * ld;
    const T* pr = p + r * ld;
    const V dv = vm::splat<V>(d[r]);
    index_t j = 0;
    for (; j + W <= n; j += W) vm::store(g + j, vm::load<V>(pr + j) * (vm::load<V>(g + j) - dv));
    for (; j < n; ++j) g[j] = pr[j] * (g[j] - d[r]);
  }
}

template <typename T>
void attn_row_dot(T* d, const T* a, const T* b, index_t rows, index_t n) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    const T* x = a + r * n;
    const T* y = b + r * n;
    V acc{};
    index_t j = 0;
    for (; j + W <= n; j += W) acc += vm::load<V>(x + j) * vm::load<V>(y + j);
    T s = simd::hsum(acc);
    for (; j < n; ++j) s += x[j] * y[j];
    d[r] = s;
  }
}

template <typename T>
attn_detail::AttnOps<T> make_attn_ops() {
  attn_detail::AttnOps<T> o;
  o.softmax_update = &attn_softmax_update<T>;
  o.exp_shift = &attn_exp_shift<T>;
  o.softmax_grad = &attn_softmax_grad<T>;
  o.row_dot = &attn_row_dot<T>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(attn_detail::AttnOps, make_attn_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

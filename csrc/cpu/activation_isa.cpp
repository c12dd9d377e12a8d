// Per-ISA loops of the activation / regularization family: compiled three
// times (NNFAST_ISA_NS = isa_generic / isa_avx2 / isa_avx512) and picked at
// run time by isa_ops<ActOps<T>>() in activation.cpp.
//
// All loops are written once over a vector type V of kVecBytes (16 / 32 / 64
// bytes); tails run the same templates with one lane, so element i gets the
// same bits whatever the width or thread split. Width-specific code: none.
//
// No FMA contraction here (the library-wide rule, core/simd.h): the scalar
// act_forward used by the GEMM epilogue must match these loops bit for bit.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "core/stream_store.h"
#include "core/vec_math.h"
#include "cpu/activation_internal.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

using act_detail::kGolden;
using act_detail::kSoftmaxCols;

#if defined(NNFAST_ACT_VEC_BYTES)
constexpr int kVecBytes = NNFAST_ACT_VEC_BYTES;  // tests: run the AVX-512 lane count on AVX2 hardware
#else
constexpr int kVecBytes = simd::kNativeBytes;
#endif

template <typename T>
using VW = vm::Vec<T, kVecBytes / static_cast<int>(sizeof(T))>;
template <typename T>
using V1 = vm::Vec<T, 1>;
template <typename T>
constexpr index_t width() { return kVecBytes / static_cast<index_t>(sizeof(T)); }

using vm::load;
using vm::splat;
using vm::store;
template <class V>
using elem_t_of = vm::elem_t<V>;


// ------------------------------------------------------------------ drivers
// The loop bodies inline f and everything it calls: GCC otherwise keeps a long f
// (GELU) out of line, one call per vector with every constant re-broadcast.
#if defined(__GNUC__)
#define NNFAST_ACT_FLATTEN inline __attribute__((flatten))
#else
#define NNFAST_ACT_FLATTEN inline
#endif
// Streaming stores for outputs too big to cache, the peel to vector alignment
// (core/stream_store.h, shared with the tensor ops), at this file's vector width.
namespace stream_store = ::nnfast::NNFAST_ISA_NS::stream_store;
using stream_store::store_out;
using stream_store::stream_fence;
template <typename T>
inline index_t peel_count(const T* y, index_t n) { return stream_store::peel_count<kVecBytes>(y, n); }
template <typename T>
inline bool use_stream(const T* y, index_t n, index_t peeled) { return stream_store::use_stream<kVecBytes>(y, n, peeled); }

// y[i] = f(x0[i], x1[i], ...) with f a generic lambda over vectors, one driver for
// every input count: the peel to y's alignment and the tail run f on one lane
// (the same bits as the vector body), the body keeps two vectors in flight and
// loads both before storing either (y may alias an input).
template <bool kStream, typename T, class F, size_t... K>
NNFAST_ACT_FLATTEN void map_body(T* y, const T* const* xin, index_t n, index_t i, F f, std::index_sequence<K...>,
                                 bool fence = true) {
  using V = VW<T>;
  const T* const x[] = {xin[K]...};  // locals: no reload of the pointers after each store
  constexpr index_t W = width<T>();
  for (; i + 2 * W <= n; i += 2 * W) {
    const V a[] = {load<V>(x[K] + i)...};
    const V b[] = {load<V>(x[K] + i + W)...};
    store_out<kStream>(y + i, f(a[K]...));
    store_out<kStream>(y + i + W, f(b[K]...));
  }
  for (; i + W <= n; i += W) store_out<kStream>(y + i, f(load<V>(x[K] + i)...));
  if (fence) stream_fence<kStream>();
  for (; i < n; ++i) y[i] = f(V1<T>{x[K][i]}...)[0];
}
// Stream: Auto = by this call's size (use_stream); Rows = the caller decided the
// whole tensor is too big to cache (softmax rows) and fences once after its last row.
enum class Stream { Auto, Rows };
template <typename T, class F, size_t... K>
inline void map_seq(T* y, const T* const* x, index_t n, F f, std::index_sequence<K...> seq,
                    Stream mode = Stream::Auto) {
  const index_t p = peel_count(y, n);
  for (index_t i = 0; i < p; ++i) y[i] = f(V1<T>{x[K][i]}...)[0];
  const bool aligned = reinterpret_cast<uintptr_t>(y + p) % kVecBytes == 0;
  if (mode == Stream::Rows && aligned) map_body<true>(y, x, n, p, f, seq, false);
  else if (mode == Stream::Auto && use_stream(y, n, p)) map_body<true>(y, x, n, p, f, seq);
  else map_body<false>(y, x, n, p, f, seq);
}
template <typename T, class F, class... P>
inline void map_n(T* y, index_t n, F f, Stream mode, const P*... xs) {
  static_assert((std::is_same_v<P, T> && ...), "inputs and output share one element type");
  const T* const x[] = {xs...};
  map_seq(y, x, n, f, std::make_index_sequence<sizeof...(P)>{}, mode);
}
template <typename T, class F>
inline void map1(T* y, const T* x, index_t n, F f, Stream mode = Stream::Auto) {
  map_n(y, n, f, mode, x);
}
template <typename T, class F>
inline void map2(T* y, const T* x0, const T* x1, index_t n, F f, Stream mode = Stream::Auto) {
  map_n(y, n, f, mode, x0, x1);
}

// Horizontal sum of a vector, lanes in order.
template <class V>
inline double hsum(V v) {
  double s = 0;
  for (int i = 0; i < vm::lanes<V>(); ++i) s += static_cast<double>(v[i]);
  return s;
}

// ------------------------------------------------------------------ pointwise
template <typename T, Act A>
void fwd_act(T* y, const T* x, index_t n, T a, T b) {
  map1(y, x, n, [=](auto v) { return vm::act_fwd<A>(v, a, b); });
}
template <typename T, Act A>
void bwd_act(T* dx, const T* dy, const T* s, index_t n, T a, T b, Stream mode) {
  map2(dx, dy, s, n, [=](auto g, auto v) { return g * vm::act_grad<A>(v, a, b); }, mode);
}

template <typename T>
void act_fwd(T* y, const T* x, index_t n, Act act, T a, T b) {
  switch (act) {  // generated from the list (a plain switch: the kernels stay separate functions)
#define NNFAST_ACT_FWD_(Name, ...) \
  case Act::Name: return fwd_act<T, Act::Name>(y, x, n, a, b);
    NNFAST_ACTIVATIONS(NNFAST_ACT_FWD_)
#undef NNFAST_ACT_FWD_
    case Act::Count: break;
  }
}
template <typename T>
void act_bwd_mode(T* dx, const T* dy, const T* s, index_t n, Act act, T a, T b, Stream mode) {
  switch (act) {
#define NNFAST_ACT_BWD_(Name, ...) \
  case Act::Name: return bwd_act<T, Act::Name>(dx, dy, s, n, a, b, mode);
    NNFAST_ACTIVATIONS(NNFAST_ACT_BWD_)
#undef NNFAST_ACT_BWD_
    case Act::Count: break;
  }
}
template <typename T>
void act_bwd(T* dx, const T* dy, const T* s, index_t n, Act act, T a, T b) {
  act_bwd_mode(dx, dy, s, n, act, a, b, Stream::Auto);
}
// dx with non-temporal stores whatever this piece's size (the caller's dy, s, dx
// outgrow the cache together), fenced before returning. The same bits as act_bwd.
template <typename T>
void act_bwd_stream(T* dx, const T* dy, const T* s, index_t n, Act act, T a, T b) {
  act_bwd_mode(dx, dy, s, n, act, a, b, Stream::Rows);
  stream_fence<true>();
}

// ------------------------------------------------------------------ PReLU
template <typename T>
void prelu_seg(T* y, const T* x, index_t n, T w) {
  map1(y, x, n, [=](auto v) { return v > T(0) ? v : v * w; });
}

template <typename T>
double prelu_seg_bwd(T* dx, const T* dy, const T* x, index_t n, T w) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V acc0{}, acc1{};
  index_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V x0 = load<V>(x + i), x1 = load<V>(x + i + W);
    const V g0 = load<V>(dy + i), g1 = load<V>(dy + i + W);
    acc0 += x0 > T(0) ? V{} : g0 * x0;
    acc1 += x1 > T(0) ? V{} : g1 * x1;
    if (dx) {
      store(dx + i, x0 > T(0) ? g0 : g0 * w);
      store(dx + i + W, x1 > T(0) ? g1 : g1 * w);
    }
  }
  for (; i + W <= n; i += W) {
    const V x0 = load<V>(x + i), g0 = load<V>(dy + i);
    acc0 += x0 > T(0) ? V{} : g0 * x0;
    if (dx) store(dx + i, x0 > T(0) ? g0 : g0 * w);
  }
  double s = hsum(acc0 + acc1);
  for (; i < n; ++i) {
    const T xi = x[i], gi = dy[i];
    if (!(xi > T(0))) s += static_cast<double>(gi * xi);
    if (dx) dx[i] = xi > T(0) ? gi : gi * w;
  }
  return s;
}

template <typename T>
void prelu_rows(T* y, const T* x, const T* w, index_t rows, index_t C) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    index_t c = 0;
    for (; c + W <= C; c += W) {
      const V v = load<V>(xr + c);
      store(yr + c, v > T(0) ? v : v * load<V>(w + c));
    }
    for (; c < C; ++c) yr[c] = xr[c] > T(0) ? xr[c] : xr[c] * w[c];
  }
}

template <typename T>
void prelu_rows_bwd(T* dx, T* dw, const T* dy, const T* x, const T* w, index_t rows, index_t C) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    const T* gr = dy + r * C;
    T* dxr = dx ? dx + r * C : nullptr;
    index_t c = 0;
    for (; c + W <= C; c += W) {
      const V v = load<V>(xr + c), g = load<V>(gr + c);
      if (dw) store(dw + c, load<V>(dw + c) + (v > T(0) ? V{} : g * v));
      if (dxr) store(dxr + c, v > T(0) ? g : g * load<V>(w + c));
    }
    for (; c < C; ++c) {
      const T v = xr[c], g = gr[c];
      if (dw && !(v > T(0))) dw[c] += g * v;
      if (dxr) dxr[c] = v > T(0) ? g : g * w[c];
    }
  }
}

// ------------------------------------------------------------------ Swish
template <typename T>
void swish(T* y, const T* x, index_t n, T beta) {
  map1(y, x, n, [=](auto v) { return vm::mul_sigmoid(v, v * beta); });  // beta = 1: SiLU's bits
}

template <typename T>
double swish_bwd(T* dx, const T* dy, const T* x, index_t n, T beta) {
  // dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s), s = sigmoid(beta x).
  auto step = [=](auto v, auto g, auto& acc) {
    decltype(v) s, sc;
    vm::sigmoid2(v * beta, s, sc);
    const auto ss = s * sc;
    acc += g * (v * v) * ss;
    return g * (s + v * ss * beta);
  };
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V acc0{}, acc1{};
  index_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V r0 = step(load<V>(x + i), load<V>(dy + i), acc0);
    const V r1 = step(load<V>(x + i + W), load<V>(dy + i + W), acc1);
    if (dx) {
      store(dx + i, r0);
      store(dx + i + W, r1);
    }
  }
  for (; i + W <= n; i += W) {
    const V r0 = step(load<V>(x + i), load<V>(dy + i), acc0);
    if (dx) store(dx + i, r0);
  }
  double s = hsum(acc0 + acc1);
  for (; i < n; ++i) {
    V1<T> acc{};
    const V1<T> v = {x[i]}, g = {dy[i]};
    const V1<T> r = step(v, g, acc);
    if (dx) dx[i] = r[0];
    s += static_cast<double>(acc[0]);
  }
  return s;
}

// ------------------------------------------------------------------ gated units
template <typename T, Act A>
void glu_t(T* y, const T* value, const T* gate, index_t n) {
  map2(y, value, gate, n, [](auto v, auto g) { return v * vm::act_fwd<A>(g, T(0), T(0)); });
}

template <typename T, Act A>
void glu_bwd_t(T* dvalue, T* dgate, const T* dy, const T* value, const T* gate, index_t n) {
  auto both = [](auto g, auto v, auto z, auto& dv) {
    decltype(z) a, d;
    vm::act_fwd_grad<A>(z, T(0), T(0), a, d);
    dv = g * a;
    return g * v * d;
  };
  using V = VW<T>;
  constexpr index_t W = width<T>();
  index_t i = 0;
  for (; i + W <= n; i += W) {
    V dv;
    const V dg = both(load<V>(dy + i), load<V>(value + i), load<V>(gate + i), dv);
    store(dvalue + i, dv);
    store(dgate + i, dg);
  }
  for (; i < n; ++i) {
    V1<T> dv;
    const V1<T> g = {dy[i]}, v = {value[i]}, z = {gate[i]};
    const V1<T> dg = both(g, v, z, dv);
    dvalue[i] = dv[0];
    dgate[i] = dg[0];
  }
}

template <typename T>
void glu(T* y, const T* value, const T* gate, index_t n, Act act) {
  switch (act) {
    case Act::Sigmoid: glu_t<T, Act::Sigmoid>(y, value, gate, n); break;
    case Act::SiLU: glu_t<T, Act::SiLU>(y, value, gate, n); break;
    case Act::GELU: glu_t<T, Act::GELU>(y, value, gate, n); break;
    case Act::GELUTanh: glu_t<T, Act::GELUTanh>(y, value, gate, n); break;
    case Act::ReLU: glu_t<T, Act::ReLU>(y, value, gate, n); break;
    default: glu_t<T, Act::Identity>(y, value, gate, n); break;
  }
}
template <typename T>
void glu_bwd(T* dvalue, T* dgate, const T* dy, const T* value, const T* gate, index_t n, Act act) {
  switch (act) {
    case Act::Sigmoid: glu_bwd_t<T, Act::Sigmoid>(dvalue, dgate, dy, value, gate, n); break;
    case Act::SiLU: glu_bwd_t<T, Act::SiLU>(dvalue, dgate, dy, value, gate, n); break;
    case Act::GELU: glu_bwd_t<T, Act::GELU>(dvalue, dgate, dy, value, gate, n); break;
    case Act::GELUTanh: glu_bwd_t<T, Act::GELUTanh>(dvalue, dgate, dy, value, gate, n); break;
    case Act::ReLU: glu_bwd_t<T, Act::ReLU>(dvalue, dgate, dy, value, gate, n); break;
    default: glu_bwd_t<T, Act::Identity>(dvalue, dgate, dy, value, gate, n); break;
  }
}

// ------------------------------------------------------------------ softmax rows
template <typename T>
T row_max(const T* x, index_t D) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  const T ninf = -std::numeric_limits<T>::infinity();
  V m0 = splat<V>(ninf), m1 = m0;
  index_t i = 0;
  for (; i + 2 * W <= D; i += 2 * W) {
    const V a = load<V>(x + i), b = load<V>(x + i + W);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  for (; i + W <= D; i += W) {
    const V a = load<V>(x + i);
    m0 = a > m0 ? a : m0;
  }
  m0 = m1 > m0 ? m1 : m0;
  T m = ninf;
  for (int l = 0; l < static_cast<int>(W); ++l) m = m0[l] > m ? m0[l] : m;
  for (; i < D; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// sum exp(x - m), storing exp(x - m) in e when e != nullptr. x - m <= 0 (m is
// the row max), so exp_nonpos: one clamp and one 2^n scale (exp(x - m) below
// the smallest normal is 0, far below the sum's rounding). The last partial
// vector runs padded with -inf (exp -> 0) instead of one lane at a time: a
// row of 1000 floats has an 8-element tail, otherwise ~10% of its exps.
// The row is L1-resident by now; this pass is the compute-heavy one, so it
// prefetches the next row (x + D, and y + D for writing unless y is null: rows
// written with streaming stores must not pull their lines into the cache) to
// overlap its DRAM traffic with the exps instead of paying it in the next row's max pass.
template <typename T, bool kScalef = true, bool kShort = false>
double row_sumexp(const T* x, index_t D, T m, T* e, T* y) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V s0{}, s1{};
  index_t i = 0;
  constexpr index_t L = 64 / static_cast<index_t>(sizeof(T));  // elements per cache line
  for (; i + 2 * W <= D; i += 2 * W) {
    for (index_t k = 0; k < 2 * W; k += L) {
      __builtin_prefetch(x + D + i + k, 0, 3);
      if (y) __builtin_prefetch(y + D + i + k, 1, 3);
    }
    const V a = vm::exp_nonpos<kScalef, kShort>(load<V>(x + i) - m), b = vm::exp_nonpos<kScalef, kShort>(load<V>(x + i + W) - m);
    s0 += a;
    s1 += b;
    if (e) {
      store(e + i, a);
      store(e + i + W, b);
    }
  }
  for (; i + W <= D; i += W) {
    const V a = vm::exp_nonpos<kScalef, kShort>(load<V>(x + i) - m);
    s0 += a;
    if (e) store(e + i, a);
  }
  if (i < D) {
    const V a = vm::exp_nonpos<kScalef, kShort>(simd::load_n<V>(x + i, D - i, -std::numeric_limits<T>::infinity()) - m);
    s1 += a;
    if (e) simd::store_n(e + i, a, D - i);
  }
  return hsum(s0 + s1);
}

// NNFAST_EXP_SCALEF=0: the rows' exp builds 2^n with integer ops on AVX-512 too
// (A/B for vm::exp_nonpos's vscalefps; the same bits). Read once.
const bool kExpScalefOn = env_switch_on("NNFAST_EXP_SCALEF");
// NNFAST_SOFTMAX_EXP_SHORT=0: the rows' exp with the degree-7 polynomial, the
// bits of exp_full (A/B for the degree-6 one, one FMA of ~10 fewer per vector;
// <= 1.07 ulp instead of <= 0.99). Read once. NNFAST_EXP_SCALEF=0 implies it.
const bool kSoftmaxExpShort = env_switch_on("NNFAST_SOFTMAX_EXP_SHORT");
template <typename T>
double row_sumexp_ab(const T* x, index_t D, T m, T* e, T* y) {
  if (!kExpScalefOn) return row_sumexp<T, false>(x, D, m, e, y);
  return kSoftmaxExpShort ? row_sumexp<T, true, true>(x, D, m, e, y) : row_sumexp<T, true>(x, D, m, e, y);
}

// Rows up to this many bytes keep their exps in a stack buffer when streaming.
constexpr size_t kSoftmaxScratchBytes = size_t(16) << 10;

// One row: max, sum of exps, then the output pass. stream (the tensor outgrows
// the cache): the output pass writes y with non-temporal stores, so y's lines are
// never read for ownership (two memory transfers per element instead of three);
// softmax keeps its exps in a stack buffer at y's alignment (the same vector
// split, so the same bits) instead of in y. Rows wider than the buffer: y.
template <typename T>
void softmax_row(T* y, const T* x, index_t D, bool log, bool stream) {
  if (D <= 0) return;
  const T m = row_max(x, D);
  const Stream mode = stream ? Stream::Rows : Stream::Auto;
  if (log) {
    const double s = row_sumexp_ab<T>(x, D, m, nullptr, stream ? nullptr : y);
    const T ls = static_cast<T>(std::log(s));
    map1(y, x, D, [=](auto v) { return (v - m) - ls; }, mode);
    return;
  }
  constexpr index_t kCap = static_cast<index_t>(kSoftmaxScratchBytes / sizeof(T));
  alignas(64) T scratch[kCap + kVecBytes / sizeof(T)];
  T* e = y;
  if (stream && D <= kCap && reinterpret_cast<uintptr_t>(y) % sizeof(T) == 0)
    e = scratch + (reinterpret_cast<uintptr_t>(y) % kVecBytes) / sizeof(T);
  else
    stream = false;
  const double s = row_sumexp_ab<T>(x, D, m, e, stream ? nullptr : y);
  const T r = static_cast<T>(1.0 / s);
  map1(y, e, D, [=](auto v) { return v * r; }, stream ? Stream::Rows : Stream::Auto);
}

template <typename T>
void softmax_rows(T* y, const T* x, index_t rows, index_t D, bool log, bool stream) {
  for (index_t r = 0; r < rows; ++r) softmax_row(y + r * D, x + r * D, D, log, stream);
  if (stream) stream_fence<true>();  // publish the streaming stores before the join
}

// sum(dy y) over one row (softmax backward) or sum(dy) (log-softmax backward).
template <typename T>
T row_grad_dot(const T* dy, const T* y, index_t D, bool log) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V s0{};
  index_t i = 0;
  double s;
  if (log) {
    for (; i + W <= D; i += W) s0 += load<V>(dy + i);
    s = hsum(s0);
    for (; i < D; ++i) s += static_cast<double>(dy[i]);
  } else {
    for (; i + W <= D; i += W) s0 += load<V>(dy + i) * load<V>(y + i);
    s = hsum(s0);
    for (; i < D; ++i) s += static_cast<double>(dy[i] * y[i]);
  }
  return static_cast<T>(s);
}

// Rows of D: the dot pass reads (dy, y) from memory, the output pass finds them in
// L1 / L2 (a row of 1000 floats: 8 KB). stream: dx with non-temporal stores, as the
// forward's y (no read for ownership of dx's lines; the same bits), one fence at the end.
template <typename T>
void softmax_rows_bwd(T* dx, const T* dy, const T* y, index_t rows, index_t D, bool log, bool stream) {
  const Stream mode = stream ? Stream::Rows : Stream::Auto;
  for (index_t r = 0; r < rows; ++r, dx += D, dy += D, y += D) {
    const T st = row_grad_dot(dy, y, D, log);
    if (log)  // dx = dy - exp(y) sum(dy)
      map_n(dx, D, [=](auto g, auto v) { return g - vm::exp(v) * st; }, mode, dy, y);
    else  // dx = y (dy - sum(dy y))
      map_n(dx, D, [=](auto g, auto v) { return v * (g - st); }, mode, dy, y);
  }
  if (stream) stream_fence<true>();  // publish the streaming stores before the join
}

// Column blocks: element (d, c) at p[d * inner + c], c < ncols <= kSoftmaxCols.
// Each loop body runs over the columns with full vectors, then one-lane tails.
template <typename T, class F>
inline void cols_apply(index_t ncols, F f) {
  constexpr index_t W = width<T>();
  index_t c = 0;
  for (; c + W <= ncols; c += W) f(c, VW<T>{});
  for (; c < ncols; ++c) f(c, V1<T>{});
}

template <typename T>
void softmax_cols(T* y, const T* x, index_t D, index_t inner, index_t ncols, bool log) {
  alignas(64) T m[kSoftmaxCols];
  alignas(64) T s[kSoftmaxCols];
  const T ninf = -std::numeric_limits<T>::infinity();
  for (index_t c = 0; c < ncols; ++c) {
    m[c] = ninf;
    s[c] = T(0);
  }
  for (index_t d = 0; d < D; ++d) {
    const T* xd = x + d * inner;
    cols_apply<T>(ncols, [&](index_t c, auto tag) {
      using V = decltype(tag);
      const V a = load<V>(xd + c), b = load<V>(m + c);
      store(m + c, a > b ? a : b);
    });
  }
  for (index_t d = 0; d < D; ++d) {
    const T* xd = x + d * inner;
    T* yd = y + d * inner;
    cols_apply<T>(ncols, [&](index_t c, auto tag) {
      using V = decltype(tag);
      const V e = vm::exp(load<V>(xd + c) - load<V>(m + c));
      if (!log) store(yd + c, e);
      store(s + c, load<V>(s + c) + e);
    });
  }
  for (index_t c = 0; c < ncols; ++c) s[c] = log ? static_cast<T>(std::log(s[c])) : T(1) / s[c];
  for (index_t d = 0; d < D; ++d) {
    const T* xd = x + d * inner;
    T* yd = y + d * inner;
    cols_apply<T>(ncols, [&](index_t c, auto tag) {
      using V = decltype(tag);
      if (log)
        store(yd + c, (load<V>(xd + c) - load<V>(m + c)) - load<V>(s + c));
      else
        store(yd + c, load<V>(yd + c) * load<V>(s + c));
    });
  }
}

template <typename T>
void softmax_cols_bwd(T* dx, const T* dy, const T* y, index_t D, index_t inner, index_t ncols, bool log) {
  alignas(64) T s[kSoftmaxCols];
  for (index_t c = 0; c < ncols; ++c) s[c] = T(0);
  for (index_t d = 0; d < D; ++d) {
    const T* gd = dy + d * inner;
    const T* yd = y + d * inner;
    cols_apply<T>(ncols, [&](index_t c, auto tag) {
      using V = decltype(tag);
      const V g = load<V>(gd + c);
      store(s + c, load<V>(s + c) + (log ? g : g * load<V>(yd + c)));
    });
  }
  for (index_t d = 0; d < D; ++d) {
    const T* gd = dy + d * inner;
    const T* yd = y + d * inner;
    T* xd = dx + d * inner;
    cols_apply<T>(ncols, [&](index_t c, auto tag) {
      using V = decltype(tag);
      const V g = load<V>(gd + c), v = load<V>(yd + c), sv = load<V>(s + c);
      store(xd + c, log ? g - vm::exp(v) * sv : v * (g - sv));
    });
  }
}

// ------------------------------------------------------------------ step / sign
template <typename T>
void step(T* y, const T* x, index_t n, int sign, T thr) {
  if (sign) {
    map1(y, x, n, [](auto v) {
      using V = decltype(v);
      const V one = splat<V>(T(1));
      return v > T(0) ? one : (v < T(0) ? -one : v * T(0));  // 0 -> 0, NaN -> NaN
    });
  } else {
    map1(y, x, n, [=](auto v) {
      using V = decltype(v);
      return v > thr ? splat<V>(T(1)) : (v <= thr ? V{} : v);  // NaN -> NaN
    });
  }
}

// ------------------------------------------------------------------ dropout
// Element i is kept when its 32 random bits are < keep. Pairs (2j, 2j+1) share
// one 64-bit splitmix64 output (low half first), so the vector body walks
// even-aligned pairs; a one-lane head/tail covers odd edges.
template <typename T>
void dropout(T* y, const T* x, index_t i0, index_t n, std::uint64_t key, std::uint32_t keep, T scale) {
  constexpr index_t W = width<T>();
  using V = VW<T>;
  using U64 = vm::Vec<std::uint64_t, W / 2>;
  using U32 = vm::Vec<std::uint32_t, W>;
  using UT = vm::umask_t<V>;  // unsigned lanes of T's width
  index_t i = 0;
  auto one = [&](index_t k) {
    const std::uint32_t bits = act_detail::dropout_bits(key, static_cast<std::uint64_t>(i0 + k));
    y[k] = bits < keep ? x[k] * scale : T(0);
  };
  if ((i0 & 1) && n > 0) one(i++);
  U64 lane_idx;
  for (int l = 0; l < static_cast<int>(W / 2); ++l) lane_idx[l] = static_cast<std::uint64_t>(l);
  for (; i + W <= n; i += W) {
    const std::uint64_t j0 = static_cast<std::uint64_t>(i0 + i) >> 1;  // even: pairs j0 .. j0 + W/2 - 1
    U64 z = key + (lane_idx + j0) * kGolden;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z = z ^ (z >> 31);
    const U32 bits32 = (U32)z;  // little-endian: element 2j = low half
    const UT bits = __builtin_convertvector(bits32, UT);
    const V v = load<V>(x + i);
    store(y + i, bits < static_cast<typename vm::elem_t<UT>>(keep) ? v * scale : V{});
  }
  for (; i < n; ++i) one(i);
}

// ------------------------------------------------------------------ penalties
template <typename T>
double penalty_sum(const T* x, index_t n, bool l2) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V a0{}, a1{};
  index_t i = 0;
  if (l2) {
    for (; i + 2 * W <= n; i += 2 * W) {
      const V u = load<V>(x + i), v = load<V>(x + i + W);
      a0 += u * u;
      a1 += v * v;
    }
  } else {
    for (; i + 2 * W <= n; i += 2 * W) {
      a0 += vm::vabs(load<V>(x + i));
      a1 += vm::vabs(load<V>(x + i + W));
    }
  }
  double s = hsum(a0 + a1);
  for (; i < n; ++i) s += l2 ? static_cast<double>(x[i]) * x[i] : std::fabs(static_cast<double>(x[i]));
  return s;
}

template <typename T>
void penalty_bwd(T* dx, const T* x, index_t n, bool l2, T scale) {
  if (l2) {
    const T s2 = scale * T(2);
    map1(dx, x, n, [=](auto v) { return v * s2; });
  } else {
    map1(dx, x, n, [=](auto v) {
      using V = decltype(v);
      return v > T(0) ? splat<V>(scale) : (v < T(0) ? splat<V>(-scale) : V{});
    });
  }
}

template <typename T>
act_detail::ActOps<T> make_ops() {
  act_detail::ActOps<T> o;
  o.fwd = act_fwd<T>;
  o.bwd = act_bwd<T>;
  o.bwd_stream = act_bwd_stream<T>;
  o.prelu_seg = prelu_seg<T>;
  o.prelu_seg_bwd = prelu_seg_bwd<T>;
  o.prelu_rows = prelu_rows<T>;
  o.prelu_rows_bwd = prelu_rows_bwd<T>;
  o.swish = swish<T>;
  o.swish_bwd = swish_bwd<T>;
  o.glu = glu<T>;
  o.glu_bwd = glu_bwd<T>;
  o.softmax_rows = softmax_rows<T>;
  o.softmax_rows_bwd = softmax_rows_bwd<T>;
  o.softmax_cols = softmax_cols<T>;
  o.softmax_cols_bwd = softmax_cols_bwd<T>;
  o.step = step<T>;
  o.dropout = dropout<T>;
  o.penalty_sum = penalty_sum<T>;
  o.penalty_bwd = penalty_bwd<T>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(act_detail::ActOps, make_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

// Per-ISA fused gate kernels of the recurrent layers: compiled three times
// (NNFAST_ISA_NS = isa_generic / isa_avx2 / isa_avx512) and picked at run time by
// rnn.cpp. Each routine is one row of one step, or of a slice of its hidden units
// (a thread's share): every loop runs one body over full vectors and again with one
// lane for the tail, so an element's bits do not depend on H, the slice or the
// vector width.
#include "core/vec_math.h"
#include "cpu/rnn_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

using vm::load;
using vm::splat;
using vm::store;

template <typename T>
using VW = vm::Vec<T, simd::kNativeBytes / static_cast<int>(sizeof(T))>;
template <typename T>
using V1 = vm::Vec<T, 1>;

// body(V{}, j) for j over [0, H) in steps of V's lanes, tail one lane at a time.
template <typename T, class F>
inline void over_row(index_t H, F body) {
  constexpr index_t W = simd::lanes<VW<T>>();
  index_t j = 0;
  for (; j + W <= H; j += W) body(VW<T>{}, j);
  for (; j < H; ++j) body(V1<T>{}, j);
}

template <class V>
inline V load_or_zero(const simd::elem_t<V>* p, index_t j) {
  return p ? load<V>(p + j) : V{};
}

template <typename T>
void lstm_forward_row(T* g, T* c, T* c_save, T* h, T* h2, const T* b_hh, index_t n, index_t H) {
  over_row<T>(n, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V i = vm::sigmoid(load<V>(g + j) + load_or_zero<V>(b_hh, j));
    const V f = vm::sigmoid(load<V>(g + H + j) + load_or_zero<V>(b_hh, H + j));
    const V gg = vm::tanh(load<V>(g + 2 * H + j) + load_or_zero<V>(b_hh, 2 * H + j));
    const V o = vm::sigmoid(load<V>(g + 3 * H + j) + load_or_zero<V>(b_hh, 3 * H + j));
    const V c1 = f * load<V>(c + j) + i * gg;
    const V h1 = o * vm::tanh(c1);
    store(g + j, i);
    store(g + H + j, f);
    store(g + 2 * H + j, gg);
    store(g + 3 * H + j, o);
    store(c + j, c1);
    store(c_save + j, c1);
    store(h + j, h1);
    if (h2) store(h2 + j, h1);
  });
}

template <typename T>
void lstm_backward_row(T* dg, T* dc, const T* dh, const T* dy, const T* g, const T* c, const T* c_prev, index_t n,
                       index_t H) {
  over_row<T>(n, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V one = splat<V>(T(1));
    const V i = load<V>(g + j), f = load<V>(g + H + j), gg = load<V>(g + 2 * H + j), o = load<V>(g + 3 * H + j);
    const V d = load<V>(dh + j) + load_or_zero<V>(dy, j);
    const V tc = vm::tanh(load<V>(c + j));
    const V dcell = load<V>(dc + j) + d * o * (one - tc * tc);
    store(dg + j, dcell * gg * i * (one - i));
    store(dg + H + j, dcell * load<V>(c_prev + j) * f * (one - f));
    store(dg + 2 * H + j, dcell * i * (one - gg * gg));
    store(dg + 3 * H + j, d * tc * o * (one - o));
    store(dc + j, dcell * f);
  });
}

template <typename T>
void gru_forward_row(T* g, T* hn, T* h, T* h2, const T* h_prev, const T* b_hh, index_t n, index_t H) {
  over_row<T>(n, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V r = vm::sigmoid(load<V>(g + j) + load_or_zero<V>(b_hh, j));
    const V z = vm::sigmoid(load<V>(g + H + j) + load_or_zero<V>(b_hh, H + j));
    const V hnj = load<V>(hn + j) + load_or_zero<V>(b_hh, 2 * H + j);
    const V n = vm::tanh(load<V>(g + 2 * H + j) + r * hnj);
    const V h1 = n + z * (load<V>(h_prev + j) - n);
    store(g + j, r);
    store(g + H + j, z);
    store(g + 2 * H + j, n);
    store(hn + j, hnj);
    store(h + j, h1);
    if (h2) store(h2 + j, h1);
  });
}

template <typename T>
void gru_backward_row(T* dgh, T* dgx, T* dh, const T* dy, const T* g, const T* hn, const T* h_prev, index_t n,
                      index_t H) {
  over_row<T>(n, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V one = splat<V>(T(1));
    const V r = load<V>(g + j), z = load<V>(g + H + j), n = load<V>(g + 2 * H + j);
    const V d = load<V>(dh + j) + load_or_zero<V>(dy, j);
    const V dn = d * (one - z) * (one - n * n);  // gradient of n's pre-activation
    const V dr = dn * load<V>(hn + j) * r * (one - r);
    const V dz = d * (load<V>(h_prev + j) - n) * z * (one - z);
    store(dgh + j, dr);
    store(dgh + H + j, dz);
    store(dgh + 2 * H + j, dn * r);
    store(dgx + j, dr);
    store(dgx + H + j, dz);
    store(dgx + 2 * H + j, dn);
    store(dh + j, d * z);
  });
}

template <typename T>
void rnn_forward_row(T* g, T* h, T* h2, const T* b_hh, index_t H, bool relu) {
  over_row<T>(H, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V pre = load<V>(g + j) + load_or_zero<V>(b_hh, j);
    const V h1 = relu ? (pre > T(0) ? pre : V{}) : vm::tanh(pre);
    store(g + j, h1);
    store(h + j, h1);
    if (h2) store(h2 + j, h1);
  });
}

template <typename T>
void rnn_backward_row(T* dg, const T* dh, const T* dy, const T* g, index_t H, bool relu) {
  over_row<T>(H, [&](auto tag, index_t j) {
    using V = decltype(tag);
    const V h1 = load<V>(g + j);
    const V d = load<V>(dh + j) + load_or_zero<V>(dy, j);
    store(dg + j, relu ? (h1 > T(0) ? d : V{}) : d * (splat<V>(T(1)) - h1 * h1));
  });
}

template <typename T>
void add_row(T* out, const T* a, const T* b, index_t n) {
  over_row<T>(n, [&](auto tag, index_t j) {
    using V = decltype(tag);
    store(out + j, load<V>(a + j) + load_or_zero<V>(b, j));
  });
}

}  // namespace

template <typename T>
rnn_detail::RnnOps<T> make_rnn_ops() {
  rnn_detail::RnnOps<T> o;
  o.lstm_forward = &lstm_forward_row<T>;
  o.lstm_backward = &lstm_backward_row<T>;
  o.gru_forward = &gru_forward_row<T>;
  o.gru_backward = &gru_backward_row<T>;
  o.rnn_forward = &rnn_forward_row<T>;
  o.rnn_backward = &rnn_backward_row<T>;
  o.add = &add_row<T>;
  return o;
}

NNFAST_ISA_TABLE_T(rnn_detail::RnnOps, make_rnn_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

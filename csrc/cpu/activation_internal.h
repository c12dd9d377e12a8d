// Per-ISA serial loops of the activation / regularization family. Compiled
// once per instruction set in activation_isa.cpp (lane-generic templates from
// core/vec_math.h); activation.cpp and dropout.cpp split the work across
// threads and pick the table for the running CPU with isa_ops<ActOps<T>>().
#pragma once
#include <cstdint>

#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace act_detail {

// Which halves of a gated unit feed the activation.
struct GateSpec {
  Act act;          // applied to the gate half
  bool gate_first;  // gate = first half (SwiGLU) or second half (GLU)
};

template <typename T>
struct ActOps {
  // y = act(x) / dx = dy * act'(s) over n contiguous elements (y may be x, dx may be dy).
  void (*fwd)(T* y, const T* x, index_t n, Act act, T a, T b);
  void (*bwd)(T* dx, const T* dy, const T* s, index_t n, Act act, T a, T b);
  // bwd writing dx with non-temporal stores at any n (the same bits).
  void (*bwd_stream)(T* dx, const T* dy, const T* s, index_t n, Act act, T a, T b);
  // PReLU on a segment with one weight w: y = x > 0 ? x : w x.
  void (*prelu_seg)(T* y, const T* x, index_t n, T w);
  // dx = dy * (x > 0 ? 1 : w) (dx may be null); returns sum over x <= 0 of dy * x.
  double (*prelu_seg_bwd)(T* dx, const T* dy, const T* x, index_t n, T w);
  // PReLU over rows of C channels, weight w[c] per column.
  void (*prelu_rows)(T* y, const T* x, const T* w, index_t rows, index_t C);
  // dx as above (may be null); dw[c] += sum over the rows (T accumulation).
  void (*prelu_rows_bwd)(T* dx, T* dw, const T* dy, const T* x, const T* w, index_t rows, index_t C);
  // Swish y = x sigmoid(beta x); backward returns sum dy * x^2 s (1 - s) (dbeta).
  void (*swish)(T* y, const T* x, index_t n, T beta);
  double (*swish_bwd)(T* dx, const T* dy, const T* x, index_t n, T beta);
  // Gated unit y = value * act(gate) on n elements of each half.
  void (*glu)(T* y, const T* value, const T* gate, index_t n, Act act);
  void (*glu_bwd)(T* dvalue, T* dgate, const T* dy, const T* value, const T* gate, index_t n, Act act);
  // Softmax / log-softmax of rows contiguous rows of D values, forward and
  // backward; stream: write y / dx with non-temporal stores (the caller's tensor
  // outgrows the cache).
  void (*softmax_rows)(T* y, const T* x, index_t rows, index_t D, bool log, bool stream);
  void (*softmax_rows_bwd)(T* dx, const T* dy, const T* y, index_t rows, index_t D, bool log, bool stream);
  // The same over ncols (<= kSoftmaxCols) columns of a (D, inner) block: element
  // (d, c) at p[d * inner + c].
  void (*softmax_cols)(T* y, const T* x, index_t D, index_t inner, index_t ncols, bool log);
  void (*softmax_cols_bwd)(T* dx, const T* dy, const T* y, index_t D, index_t inner, index_t ncols, bool log);
  // Step (x > thr ? 1 : 0) or sign (-1, 0, 1); NaN stays NaN.
  void (*step)(T* y, const T* x, index_t n, int sign, T thr);
  // Dropout of elements [i0, i0 + n) of a tensor whose element i is kept when
  // dropout_bits(key, i) < keep; y = kept ? x * scale : 0 (y may be x).
  void (*dropout)(T* y, const T* x, index_t i0, index_t n, std::uint64_t key, std::uint32_t keep, T scale);
  // sum |x| (l2 = false) or sum x^2 (l2 = true).
  double (*penalty_sum)(const T* x, index_t n, bool l2);
  // dx = scale * sign(x) (l1) or scale * 2 x (l2).
  void (*penalty_bwd)(T* dx, const T* x, index_t n, bool l2, T scale);
};

constexpr index_t kSoftmaxCols = 128;

}  // namespace act_detail

NNFAST_ISA_DECLARE_TABLE_T(act_detail::ActOps)

namespace act_detail {

// Counter-based dropout bits: splitmix64 over element pairs, so any thread
// split and any vector width draw the same mask. `static`: this header is
// compiled under several -m flags and its code must never be merged.
static inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
static inline std::uint32_t dropout_bits(std::uint64_t key, std::uint64_t i) {
  const std::uint64_t h = mix64(key + (i >> 1) * kGolden);
  return static_cast<std::uint32_t>(h >> (32 * (i & 1)));
}

}  // namespace act_detail

}  // namespace nnfast::cpu

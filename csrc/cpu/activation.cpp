// Activations, forward then backward: thread split + ISA dispatch. The SIMD
// loops live in activation_isa.cpp (one copy per instruction set).
//
// Threads own disjoint output ranges (parallel_for); reductions into
// parameter gradients (PReLU weight, Swish beta) go through fixed-size blocks
// whose partial sums are added in block order, so results do not depend on the
// thread count.
#include "nnfast/activation.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/cpu_features.h"
#include "core/parallel_for.h"
#include "cpu/activation_internal.h"
#include "core/env_switch.h"

namespace nnfast::cpu {

namespace {

using act_detail::ActOps;

// Elements per reduction block (fixed: it sets the summation order).
constexpr index_t kBlock = 16384;

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Transcendental activations cost ~10-20x a copy per element: split them
// across threads at smaller sizes than the memory-bound ones.
index_t act_grain(Act act) {
  const bool cheap = act == Act::Identity || act == Act::ReLU || act == Act::LeakyReLU || act == Act::Hardtanh;
  return cheap ? kElementwiseGrain : kElementwiseGrain / 8;
}

// Sum of f(lo, hi) over fixed blocks of [0, n), added in block order.
template <class F>
double blocked_sum(index_t n, F f) {
  if (n <= 0) return 0.0;
  const index_t nb = ceil_div(n, kBlock);
  if (nb == 1) return f(index_t(0), n);
  std::vector<double> part(static_cast<size_t>(nb));
  parallel_for(nb, std::max<index_t>(1, kElementwiseGrain / kBlock), [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) part[b] = f(b * kBlock, std::min(n, (b + 1) * kBlock));
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

}  // namespace

// ------------------------------------------------------------------ pointwise
template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p) {
  const auto& ops = isa_ops<ActOps<T>>();
  const T a = T(p.a), b = T(p.b);
  parallel_for(n, act_grain(act), [&](index_t lo, index_t hi) { ops.fwd(y + lo, x + lo, hi - lo, act, a, b); });
}

// The backward streams dx once dy, saved and dx together outgrow a 32 MB
// last-level cache (16 MB tensors: 48 MB), whatever the thread split: the
// per-call rule of the forward (a piece above 16 MB) streams only above 32 MB on
// two threads, and below that every dx line was read for ownership first, four
// transfers per element where three are needed. NNFAST_ACT_BWD_STREAM=0: the
// per-call rule (A/B; the same bits).
template <typename T>
bool act_bwd_streams(index_t n) {
  static const bool on = env_switch_on("NNFAST_ACT_BWD_STREAM");
  return on && 3.0 * double(n) * sizeof(T) > double(size_t(32) << 20);
}

template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p) {
  const auto& ops = isa_ops<ActOps<T>>();
  const T a = T(p.a), b = T(p.b);
  const auto bwd = act_bwd_streams<T>(n) ? ops.bwd_stream : ops.bwd;
  parallel_for(n, act_grain(act),
               [&](index_t lo, index_t hi) { bwd(dx + lo, dy + lo, saved + lo, hi - lo, act, a, b); });
}

// ------------------------------------------------------------------ PReLU
template <typename T>
void prelu_forward(T* y, const T* x, const T* weight, index_t N, index_t C, index_t S) {
  const auto& ops = isa_ops<ActOps<T>>();
  if (C == 1) {
    const T w = weight[0];
    parallel_for(N * S, kElementwiseGrain, [&](index_t lo, index_t hi) { ops.prelu_seg(y + lo, x + lo, hi - lo, w); });
  } else if (S == 1) {
    parallel_for(N, std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(C, 1)), [&](index_t r0, index_t r1) {
      ops.prelu_rows(y + r0 * C, x + r0 * C, weight, r1 - r0, C);
    });
  } else {
    parallel_for(N * C, std::max<index_t>(1, kElementwiseGrain / S), [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) ops.prelu_seg(y + r * S, x + r * S, S, weight[r % C]);
    });
  }
}

template <typename T>
void prelu_backward(T* dx, T* dweight, const T* dy, const T* x, const T* weight, index_t N, index_t C, index_t S) {
  const auto& ops = isa_ops<ActOps<T>>();
  if (N * C * S <= 0) return;
  if (C == 1) {
    const T w = weight[0];
    const double s = blocked_sum(N * S, [&](index_t lo, index_t hi) {
      return ops.prelu_seg_bwd(dx ? dx + lo : nullptr, dy + lo, x + lo, hi - lo, w);
    });
    if (dweight) dweight[0] += static_cast<T>(s);
    return;
  }
  if (S == 1) {
    // Blocks of R rows; block b accumulates its column sums into part[b].
    const index_t R = std::max<index_t>(1, kBlock / C);
    const index_t nb = ceil_div(N, R);
    std::vector<T> part(dweight ? static_cast<size_t>(nb * C) : 0, T(0));
    parallel_for(nb, std::max<index_t>(1, kElementwiseGrain / (R * C)), [&](index_t b0, index_t b1) {
      for (index_t b = b0; b < b1; ++b) {
        const index_t r0 = b * R, rows = std::min(N, r0 + R) - r0;
        ops.prelu_rows_bwd(dx ? dx + r0 * C : nullptr, dweight ? part.data() + b * C : nullptr, dy + r0 * C,
                           x + r0 * C, weight, rows, C);
      }
    });
    if (dweight) {
      for (index_t c = 0; c < C; ++c) {
        double s = 0.0;
        for (index_t b = 0; b < nb; ++b) s += static_cast<double>(part[b * C + c]);
        dweight[c] += static_cast<T>(s);
      }
    }
    return;
  }
  // (n, c) rows of S, each split into K segments of <= kBlock; part[(c N + n) K + k].
  const index_t K = ceil_div(S, kBlock), seg = ceil_div(S, K);
  const index_t tasks = N * C * K;
  std::vector<double> part(static_cast<size_t>(tasks), 0.0);
  parallel_for(tasks, std::max<index_t>(1, kElementwiseGrain / seg), [&](index_t t0, index_t t1) {
    for (index_t t = t0; t < t1; ++t) {
      const index_t k = t % K, r = t / K, n = r / C, c = r % C;
      const index_t lo = r * S + k * seg, len = std::min(S, (k + 1) * seg) - k * seg;
      part[(c * N + n) * K + k] = ops.prelu_seg_bwd(dx ? dx + lo : nullptr, dy + lo, x + lo, len, weight[c]);
    }
  });
  if (dweight) {
    for (index_t c = 0; c < C; ++c) {
      double s = 0.0;
      for (index_t i = 0; i < N * K; ++i) s += part[c * N * K + i];
      dweight[c] += static_cast<T>(s);
    }
  }
}

// ------------------------------------------------------------------ Swish
template <typename T>
void swish_forward(T* y, const T* x, index_t n, T beta) {
  const auto& ops = isa_ops<ActOps<T>>();
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) { ops.swish(y + lo, x + lo, hi - lo, beta); });
}

template <typename T>
void swish_backward(T* dx, T* dbeta, const T* dy, const T* x, index_t n, T beta) {
  const auto& ops = isa_ops<ActOps<T>>();
  const double s = blocked_sum(n, [&](index_t lo, index_t hi) {
    return ops.swish_bwd(dx ? dx + lo : nullptr, dy + lo, x + lo, hi - lo, beta);
  });
  if (dbeta) *dbeta += static_cast<T>(s);
}

// ------------------------------------------------------------------ gated units
// The (outer, L) output of a gated unit split across threads into pieces that
// stay inside one row: f(in, out, len) for each, out the offset of the piece in
// y (and dy), in the offset of the matching elements of the first half of the
// (outer, 2L) input (and dx); the second half is at in + L.
template <class F>
void for_gated_pieces(index_t outer, index_t L, F f) {
  if (L <= 0) return;
  parallel_for(outer * L, kElementwiseGrain, [&](index_t lo, index_t hi) {
    while (lo < hi) {
      const index_t o = lo / L, off = lo % L, len = std::min(L - off, hi - lo);
      f(o * 2 * L + off, o * L + off, len);
      lo += len;
    }
  });
}

template <typename T>
void glu_forward(T* y, const T* x, index_t outer, index_t L, Act act, bool gate_first) {
  const auto& ops = isa_ops<ActOps<T>>();
  const index_t gofs = gate_first ? 0 : L, vofs = gate_first ? L : 0;
  for_gated_pieces(outer, L, [&](index_t in, index_t out, index_t len) {
    ops.glu(y + out, x + in + vofs, x + in + gofs, len, act);
  });
}

template <typename T>
void glu_backward(T* dx, const T* dy, const T* x, index_t outer, index_t L, Act act, bool gate_first) {
  const auto& ops = isa_ops<ActOps<T>>();
  const index_t gofs = gate_first ? 0 : L, vofs = gate_first ? L : 0;
  for_gated_pieces(outer, L, [&](index_t in, index_t out, index_t len) {
    ops.glu_bwd(dx + in + vofs, dx + in + gofs, dy + out, x + in + vofs, x + in + gofs, len, act);
  });
}

// ------------------------------------------------------------------ softmax
// The (outer, D, inner) slices softmax reduces over D, split across threads:
// rows(base, count) for runs of contiguous rows when inner == 1, else cols(base, n)
// for chunks of n <= kSoftmaxCols adjacent columns (stride inner); base is the
// offset of the slice's first element.
template <class Rows, class Cols>
void for_softmax_slices(index_t outer, index_t D, index_t inner, Rows rows, Cols cols) {
  if (outer <= 0 || D <= 0 || inner <= 0) return;
  if (inner == 1) {
    parallel_for(outer, std::max<index_t>(1, kElementwiseGrain / D),
                 [&](index_t r0, index_t r1) { rows(r0 * D, r1 - r0); });
    return;
  }
  const index_t CW = act_detail::kSoftmaxCols, chunks = ceil_div(inner, CW);
  parallel_for(outer * chunks, std::max<index_t>(1, kElementwiseGrain / (D * CW)), [&](index_t t0, index_t t1) {
    for (index_t t = t0; t < t1; ++t) {
      const index_t o = t / chunks, c0 = (t % chunks) * CW;
      cols(o * D * inner + c0, std::min(CW, inner - c0));
    }
  });
}

// Softmax rows (forward y, backward dx) are written with non-temporal stores when
// the arrays the kernel touches (x, y forward; dy, y, dx backward) outgrow this
// (a 32 MB last-level cache: as the pointwise kernels' outputs above 16 MB): the
// output cannot stay cached, and streaming skips the read-for-ownership of each
// line. NNFAST_SOFTMAX_STREAM=0: ordinary stores (A/B; the same bits).
namespace {
constexpr double kSoftmaxStreamBytes = double(size_t(32) << 20);
template <typename T>
bool softmax_stream(index_t outer, index_t D, int arrays) {
  static const bool on = env_switch_on("NNFAST_SOFTMAX_STREAM");
  return on && arrays * double(outer) * double(D) * sizeof(T) > kSoftmaxStreamBytes;
}
}  // namespace

template <typename T>
void softmax_forward(T* y, const T* x, index_t outer, index_t D, index_t inner, bool log) {
  const auto& ops = isa_ops<ActOps<T>>();
  const bool stream = softmax_stream<T>(outer, D, 2);
  for_softmax_slices(
      outer, D, inner, [&](index_t base, index_t rows) { ops.softmax_rows(y + base, x + base, rows, D, log, stream); },
      [&](index_t base, index_t n) { ops.softmax_cols(y + base, x + base, D, inner, n, log); });
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, index_t outer, index_t D, index_t inner, bool log) {
  const auto& ops = isa_ops<ActOps<T>>();
  const bool stream = softmax_stream<T>(outer, D, 3);
  for_softmax_slices(
      outer, D, inner,
      [&](index_t base, index_t rows) { ops.softmax_rows_bwd(dx + base, dy + base, y + base, rows, D, log, stream); },
      [&](index_t base, index_t n) { ops.softmax_cols_bwd(dx + base, dy + base, y + base, D, inner, n, log); });
}

// ------------------------------------------------------------------ step / sign
template <typename T>
void step_forward(T* y, const T* x, index_t n, bool sign, T threshold) {
  const auto& ops = isa_ops<ActOps<T>>();
  parallel_for(n, kElementwiseGrain,
               [&](index_t lo, index_t hi) { ops.step(y + lo, x + lo, hi - lo, sign ? 1 : 0, threshold); });
}

#define NNFAST_ACT_INSTANTIATE(T)                                                                       \
  template void act_forward<T>(T*, const T*, index_t, Act, const ActParams&);                           \
  template void act_backward<T>(T*, const T*, const T*, index_t, Act, const ActParams&);                \
  template void prelu_forward<T>(T*, const T*, const T*, index_t, index_t, index_t);                    \
  template void prelu_backward<T>(T*, T*, const T*, const T*, const T*, index_t, index_t, index_t);     \
  template void swish_forward<T>(T*, const T*, index_t, T);                                             \
  template void swish_backward<T>(T*, T*, const T*, const T*, index_t, T);                              \
  template void glu_forward<T>(T*, const T*, index_t, index_t, Act, bool);                              \
  template void glu_backward<T>(T*, const T*, const T*, index_t, index_t, Act, bool);                   \
  template void softmax_forward<T>(T*, const T*, index_t, index_t, index_t, bool);                      \
  template void softmax_backward<T>(T*, const T*, const T*, index_t, index_t, index_t, bool);           \
  template void step_forward<T>(T*, const T*, index_t, bool, T);
NNFAST_ACT_INSTANTIATE(float)
NNFAST_ACT_INSTANTIATE(double)
#undef NNFAST_ACT_INSTANTIATE

}  // namespace nnfast::cpu

// Regularization: dropout (counter-based mask, regenerated in backward) and
// L1 / L2 penalties. The SIMD loops live in activation_isa.cpp (AVX-512 dropout:
// dropout_isa.cpp).
#include "nnfast/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/counter_rng.h"
#include "core/env_switch.h"
#include "core/parallel_for.h"
#include "cpu/activation_internal.h"
#include "cpu/dropout_internal.h"

namespace nnfast::cpu {
namespace {

using act_detail::ActOps;

constexpr index_t kBlock = 16384;  // reduction block (fixed: it sets the summation order)

// The generator (key, per-element bits, threshold) is core/counter_rng.h, shared
// with the CUDA kernels; the ISA loop computes the same bits lane-wise.
using counter_rng::dropout_stream_key;
using counter_rng::keep_threshold;

template <typename T>
void dropout_apply(T* y, const T* x, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                   std::uint64_t first) {
  if (n <= 0) return;
  if (p <= 0.0) {
    if (y != x) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  if (p >= 1.0) {
    std::fill(y, y + n, T(0));
    return;
  }
  const auto& ops = isa_ops<ActOps<T>>();
  const std::uint64_t key = dropout_stream_key(seed, offset);
  const std::uint32_t keep = keep_threshold(p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const index_t i0 = static_cast<index_t>(first);
  // NNFAST_DROPOUT_FAST=0: ActOps' loop with ordinary stores (the old path, the same bits).
  static const bool fast = env_switch_on("NNFAST_DROPOUT_FAST");
  const auto apply = fast ? isa_ops<dropout_detail::DropoutOps<T>>().apply : nullptr;
  if (apply) {
    // Streamed by the activations' rule (an output above 16 MB per call cannot stay cached;
    // one thread's CPU time, 64 MB: 9.3-10.0 -> 6.2-6.9 ms, the copy's 7.7 ms).
    const bool stream = static_cast<std::size_t>(n) * sizeof(T) > (std::size_t(16) << 20);
    parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
      apply(y + lo, x + lo, i0 + lo, hi - lo, key, keep, scale, stream);
    });
    return;
  }
  parallel_for(n, kElementwiseGrain,
               [&](index_t lo, index_t hi) { ops.dropout(y + lo, x + lo, i0 + lo, hi - lo, key, keep, scale); });
}

}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                     std::uint64_t first) {
  dropout_apply(y, x, n, p, seed, offset, first);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                      std::uint64_t first) {
  dropout_apply(dx, dy, n, p, seed, offset, first);
}

bool dropout_keep(index_t i, double p, std::uint64_t seed, std::uint64_t offset) {
  if (p <= 0.0) return true;
  if (p >= 1.0) return false;
  return counter_rng::dropout_bits(dropout_stream_key(seed, offset), static_cast<std::uint64_t>(i)) <
         keep_threshold(p);
}

template <typename T>
double penalty_sum(const T* x, index_t n, Penalty kind) {
  if (n <= 0) return 0.0;
  const auto& ops = isa_ops<ActOps<T>>();
  const bool l2 = kind == Penalty::L2;
  const index_t nb = (n + kBlock - 1) / kBlock;
  if (nb == 1) return ops.penalty_sum(x, n, l2);
  std::vector<double> part(static_cast<size_t>(nb));
  parallel_for(nb, std::max<index_t>(1, kElementwiseGrain / kBlock), [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) {
      const index_t lo = b * kBlock;
      part[b] = ops.penalty_sum(x + lo, std::min(n, lo + kBlock) - lo, l2);
    }
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

template <typename T>
void penalty_backward(T* dx, const T* x, index_t n, Penalty kind, T scale) {
  const auto& ops = isa_ops<ActOps<T>>();
  const bool l2 = kind == Penalty::L2;
  parallel_for(n, kElementwiseGrain,
               [&](index_t lo, index_t hi) { ops.penalty_bwd(dx + lo, x + lo, hi - lo, l2, scale); });
}

#define NNFAST_DROPOUT_INSTANTIATE(T)                                                      \
  template void dropout_forward<T>(T*, const T*, index_t, double, std::uint64_t, std::uint64_t, std::uint64_t);  \
  template void dropout_backward<T>(T*, const T*, index_t, double, std::uint64_t, std::uint64_t, std::uint64_t); \
  template double penalty_sum<T>(const T*, index_t, Penalty);                              \
  template void penalty_backward<T>(T*, const T*, index_t, Penalty, T);
NNFAST_DROPOUT_INSTANTIATE(float)
NNFAST_DROPOUT_INSTANTIATE(double)
#undef NNFAST_DROPOUT_INSTANTIATE

}  // namespace nnfast::cpu

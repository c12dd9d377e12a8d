// The tape's tensor arithmetic on the CPU (nnfast/tensor.h): broadcasting binary ops,
// reductions over one dim, the max / min backward scatter, casts. Memory-bound loops:
// OpenMP over fixed chunks here; the loops themselves are in tensor_isa.cpp (one copy
// per instruction set, picked at run time).
#include "nnfast/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/parallel_for.h"
#include "core/tensor_math.h"
#include "cpu/tensor_internal.h"
#include "core/env_switch.h"

namespace nnfast::cpu {

bool tensor_detail::stream_enabled() {
  static const bool on = env_switch_on("NNFAST_TENSOR_STREAM");
  return on;
}

bool tensor_detail::fast_enabled() {
  static const bool on = env_switch_on("NNFAST_TENSOR_FAST");
  return on;
}

namespace {
// The level-3 cache of cpu0 in bytes from sysfs (Linux), 0 when it does not say.
std::size_t sysfs_l3_bytes() {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level(dir + "level"), size(dir + "size");
    int lv = 0;
    std::string sz;
    if (!(level >> lv) || lv != 3 || !(size >> sz) || sz.empty()) continue;
    std::size_t v = std::strtoull(sz.c_str(), nullptr, 10);
    const char unit = sz.back();
    if (unit == 'K') v <<= 10;
    else if (unit == 'M') v <<= 20;
    return v;
  }
  return 0;
}
}  // namespace

std::size_t tensor_detail::llc_bytes() {
  static const std::size_t bytes = [] {
    constexpr std::size_t kMeasured = std::size_t(32) << 20;  // the L3 the rules were measured with
    if (const char* e = std::getenv("NNFAST_TENSOR_L3_MB"); e && std::atol(e) > 0)
      return static_cast<std::size_t>(std::atol(e)) << 20;
    if (!env_switch_on("NNFAST_TENSOR_L3")) return kMeasured;
    // sysfs first: one cache instance's size (glibc's sysconf said 320 MB for this 32 MB L3 in a KVM guest)
    std::size_t b = sysfs_l3_bytes();
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (b == 0) b = static_cast<std::size_t>(std::max(0L, sysconf(_SC_LEVEL3_CACHE_SIZE)));
#endif
    // a figure under 1 MB or over 1 GB is not an L3 this rule knows
    return b >= (std::size_t(1) << 20) && b <= (std::size_t(1) << 30) ? b : kMeasured;
  }();
  return bytes;
}

bool tensor_detail::argmax_enabled() {
  static const bool on = env_switch_on("NNFAST_TENSOR_ARGMAX");
  return on;
}

bool tensor_detail::colsum_enabled() {
  static const bool on = env_switch_on("NNFAST_TENSOR_COLSUM");
  return on;
}

namespace {

using tensor_detail::kInnerTile;
using tensor_detail::kSumBlock;
using tensor_detail::TensorOps;

// Inputs of a collapsed broadcast counted as out-sized: those that move along the outermost
// dim (a broadcast row or scalar is not; an (n, 1) column is, an over-count).
inline int full_inputs(const BroadcastArgs& s) { return (s.a_stride[0] != 0) + (s.b_stride[0] != 0); }

// parallel_for over out[0, n) with every thread's slice starting on a 64-byte line of
// out: the threads never share a line (a streaming store there would split it), and each
// slice's vector peel is the same. Neighbouring slices round their common boundary
// the same way, so they still tile [0, n) exactly.
template <typename T, typename F>
void parallel_for_lines(const T* out, index_t n, F&& f) {
  const auto line_start = [out, n](index_t i) {
    if (i == 0 || i >= n) return i;
    const auto addr = reinterpret_cast<std::uintptr_t>(out + i);
    if (addr % sizeof(T) != 0) return i;  // not even element-aligned: no line boundary to find
    return std::min(n, i + static_cast<index_t>((64 - addr % 64) % 64 / sizeof(T)));
  };
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    lo = line_start(lo);
    hi = line_start(hi);
    if (lo < hi) f(lo, hi);
  });
}

template <typename T>
void binary_all(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out) {
  BroadcastArgs s = tensor_math::collapse(args);
  const index_t n = tensor_math::numel(s);
  if (n <= 0) return;
  if (s.ndim == 0) {  // every dim of size 1
    switch (op) {
#define NNFAST_X(E, name) \
  case BinaryOp::E: out[0] = tensor_math::binary<BinaryOp::E>(a[0], b[0]); return;
      NNFAST_BINARY_OPS(NNFAST_X)
#undef NNFAST_X
    }
    return;
  }
  const auto fn = isa_ops<TensorOps<T>>().binary[static_cast<int>(op)];
  const std::size_t out_bytes = static_cast<std::size_t>(n) * sizeof(T);
  const auto stores = tensor_detail::stores_for(out_bytes, out_bytes * full_inputs(s));
  parallel_for_lines(out, n, [&](index_t lo, index_t hi) { fn(s, a, b, out, lo, hi, stores); });
}

constexpr index_t kRowBlock = 64;  // rows per work item of a column sum; blocks are combined in order

// Sums over the middle dim of [outer, n, inner], inner > 1: work items of kRowBlock rows x
// kInnerTile columns (so both cores share even a single long column sum), partial sums in
// double combined in block order -- the result does not depend on the thread count.
// The fast path's rows per block (NNFAST_TENSOR_COLSUM): a function of n alone (the bits
// follow the blocks), 64 up to 512 rows, a multiple of 8 (block_sum_quads' step), ~16 blocks for
// a long sum: fewer double partials to write and add (64-row blocks of a (4096, 1024) float
// matrix wrote and re-read 512 KB of them) while both cores still get blocks.
inline index_t colsum_rows(index_t n) { return std::clamp<index_t>(n / 16 / 8 * 8, kRowBlock, 8 * kRowBlock); }

template <typename T>
void column_sums(const T* x, index_t outer, index_t n, index_t inner, T* out, double scale) {
  const bool quads = tensor_detail::colsum_enabled();
  const auto block_sum = quads ? isa_ops<TensorOps<T>>().block_sum_quads : isa_ops<TensorOps<T>>().block_sum;
  const index_t rows = quads ? colsum_rows(n) : kRowBlock;
  const index_t tiles = (inner + kInnerTile - 1) / kInnerTile, blocks = (n + rows - 1) / rows;
  if (blocks == 1) {
    parallel_for(outer * tiles, 1, [&](index_t lo, index_t hi) {
      double acc[kInnerTile];
      for (index_t w = lo; w < hi; ++w) {
        const index_t o = w / tiles, c0 = (w % tiles) * kInnerTile, cols = std::min(kInnerTile, inner - c0);
        block_sum(acc, x + o * n * inner + c0, 0, n, inner, cols);
        for (index_t c = 0; c < cols; ++c) out[o * inner + c0 + c] = static_cast<T>(acc[c] * scale);
      }
    });
    return;
  }
  std::vector<double> part(static_cast<std::size_t>(outer * blocks * inner));  // allocated outside the parallel region
  parallel_for(outer * tiles * blocks, 1, [&](index_t lo, index_t hi) {
    for (index_t w = lo; w < hi; ++w) {
      const index_t o = w / (tiles * blocks), c0 = (w / blocks % tiles) * kInnerTile, b = w % blocks;
      block_sum(part.data() + (o * blocks + b) * inner + c0, x + o * n * inner + c0, b * rows,
                std::min(n, (b + 1) * rows), inner, std::min(kInnerTile, inner - c0));
    }
  });
  parallel_for(outer * tiles, 1, [&](index_t lo, index_t hi) {
    double acc[kInnerTile];
    for (index_t w = lo; w < hi; ++w) {
      const index_t o = w / tiles, c0 = (w % tiles) * kInnerTile, cols = std::min(kInnerTile, inner - c0);
      std::fill(acc, acc + cols, 0.0);
      for (index_t b = 0; b < blocks; ++b) {
        const double* pb = part.data() + (o * blocks + b) * inner + c0;
        for (index_t c = 0; c < cols; ++c) acc[c] += pb[c];
      }
      for (index_t c = 0; c < cols; ++c) out[o * inner + c0 + c] = static_cast<T>(acc[c] * scale);
    }
  });
}

// Sums of rows too few to give every thread one (x.sum() of a whole tensor is one row): the
// threads share out the rows' kSumBlock blocks, then each row adds its block sums in order, as
// row_sums does -- the same bits for every thread count.
template <typename T>
bool split_row_sums(const T* x, index_t outer, index_t n, T* out, double scale) {
  const index_t blocks = (n + kSumBlock - 1) / kSumBlock;
  if (!tensor_detail::fast_enabled() || outer >= get_num_threads() || blocks < 2 || outer * n < 2 * kElementwiseGrain)
    return false;
  const auto block_sums = isa_ops<TensorOps<T>>().row_block_sums;
  std::vector<double> part(static_cast<std::size_t>(outer * blocks));  // allocated outside the parallel region
  parallel_for(outer * blocks, std::max<index_t>(1, kElementwiseGrain / kSumBlock), [&](index_t lo, index_t hi) {
    while (lo < hi) {  // the run of blocks [lo, hi) cut at row ends
      const index_t o = lo / blocks, b0 = lo % blocks, b1 = std::min(blocks, b0 + hi - lo);
      block_sums(x + o * n, n, b0, b1, part.data() + lo);
      lo += b1 - b0;
    }
  });
  for (index_t o = 0; o < outer; ++o) {
    double total = 0;
    for (index_t b = 0; b < blocks; ++b) total += part[static_cast<std::size_t>(o * blocks + b)];
    out[o] = static_cast<T>(total * scale);
  }
  return true;
}

template <typename T>
void reduce_rows(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index) {
  const TensorOps<T>& K = isa_ops<TensorOps<T>>();
  const bool sum = op == ReduceOp::Sum || op == ReduceOp::Mean;
  const double scale = op == ReduceOp::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  if (inner == 1) {  // one contiguous row per output
    if (sum && split_row_sums(x, outer, n, out, scale)) return;
    const bool fast = tensor_detail::argmax_enabled();
    const auto extreme = op == ReduceOp::Max ? (fast ? K.row_max_fast : K.row_max) : (fast ? K.row_min_fast : K.row_min);
    const auto sums = tensor_detail::fast_enabled() ? K.row_sums : K.row_sums_scalar_tail;
    parallel_for(outer, std::max<index_t>(1, kElementwiseGrain / n), [&](index_t lo, index_t hi) {
      if (sum) sums(x, n, lo, hi, out, scale);
      else extreme(x, n, lo, hi, out, index);
    });
    return;
  }
  if (sum) {
    column_sums(x, outer, n, inner, out, scale);
    return;
  }
  const auto extreme = op == ReduceOp::Max ? K.col_max : K.col_min;
  const index_t tiles = (inner + kInnerTile - 1) / kInnerTile;
  const index_t grain = std::max<index_t>(1, kElementwiseGrain / (n * std::min(inner, kInnerTile)));
  parallel_for(outer * tiles, grain, [&](index_t lo, index_t hi) {
    for (index_t w = lo; w < hi; ++w) {
      const index_t o = w / tiles, c0 = (w % tiles) * kInnerTile, cols = std::min(kInnerTile, inner - c0);
      extreme(x + o * n * inner + c0, n, inner, cols, out + o * inner + c0, index ? index + o * inner + c0 : nullptr);
    }
  });
}

}  // namespace

template <typename T>
void binary_broadcast(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out) {
  binary_all(op, args, a, b, out);
}

template <typename T>
void reduce_dim(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index) {
  if (outer <= 0 || inner <= 0) return;
  if (n <= 0) {  // an empty sum is 0, an empty mean NaN (max / min of nothing: refused by the binding)
    const T v = op == ReduceOp::Sum ? T(0) : std::numeric_limits<T>::quiet_NaN();
    std::fill(out, out + outer * inner, v);
    return;
  }
  reduce_rows(op, x, outer, n, inner, out, index);
}

template <typename T>
void scatter_dim(T* out, const T* grad, const std::int64_t* index, index_t outer, index_t n, index_t inner) {
  parallel_for(outer * n, std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(1, inner)),
               [&](index_t lo, index_t hi) {
                 for (index_t r = lo; r < hi; ++r) {
                   const index_t o = r / n, j = r % n;
                   const T* g = grad + o * inner;
                   const std::int64_t* id = index + o * inner;
                   T* y = out + r * inner;
                   for (index_t c = 0; c < inner; ++c) y[c] = id[c] == j ? g[c] : T(0);
                 }
               });
}

// The widening / narrowing casts run the per-ISA loop (AVX-512: two 8-lane cvtps2pd a
// step, streaming stores for a big output); the same-dtype cast is a plain copy.
template <typename From, typename To>
void cast(To* out, const From* x, index_t n) {
  void (*fn)(To*, const From*, index_t, tensor_detail::Stores) = nullptr;
  if constexpr (std::is_same_v<From, float> && std::is_same_v<To, double>) fn = isa_ops<tensor_detail::CastOps>().f32_to_f64;
  if constexpr (std::is_same_v<From, double> && std::is_same_v<To, float>) fn = isa_ops<tensor_detail::CastOps>().f64_to_f32;
  const auto stores = tensor_detail::stores_for(static_cast<std::size_t>(n) * sizeof(To),
                                                static_cast<std::size_t>(n) * sizeof(From));
  parallel_for_lines(out, n, [&](index_t lo, index_t hi) {
    if constexpr (std::is_same_v<From, To>) std::copy(x + lo, x + hi, out + lo);
    else fn(out + lo, x + lo, hi - lo, stores);
  });
}

#define NNFAST_TENSOR_API(T)                                                                                  \
  template void binary_broadcast<T>(BinaryOp, const BroadcastArgs&, const T*, const T*, T*);                   \
  template void reduce_dim<T>(ReduceOp, const T*, index_t, index_t, index_t, T*, std::int64_t*);               \
  template void scatter_dim<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t);
NNFAST_TENSOR_API(float)
NNFAST_TENSOR_API(double)
#undef NNFAST_TENSOR_API
template void cast<float, double>(double*, const float*, index_t);
template void cast<double, float>(float*, const double*, index_t);
template void cast<float, float>(float*, const float*, index_t);
template void cast<double, double>(double*, const double*, index_t);

}  // namespace nnfast::cpu

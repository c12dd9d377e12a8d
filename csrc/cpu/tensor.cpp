// The tape's tensor arithmetic on the CPU (nnfast/tensor.h): broadcasting binary ops,
// reductions over one dim, the max / min backward scatter, casts. Memory-bound loops:
// OpenMP over fixed chunks, unit-stride inner loops the compiler vectorises.
#include "nnfast/tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel_for.h"
#include "core/tensor_math.h"

namespace nnfast::cpu {
namespace {

using tensor_math::better;

// out[0, len) = a[j * sa] (op) b[j * sb]; the unit / zero stride cases are separate
// loops so that each vectorises.
template <BinaryOp kOp, typename T>
void binary_row(T* out, const T* a, index_t sa, const T* b, index_t sb, index_t len) {
  auto f = [](T x, T y) { return tensor_math::binary<kOp>(x, y); };
  if (sa == 1 && sb == 1) {
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j], y);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (index_t j = 0; j < len; ++j) out[j] = f(x, b[j]);
  } else {
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j * sa], b[j * sb]);
  }
}

// Elements [lo, hi) of out: rows of the last dim, the coordinates of the rest carried
// along (no division per element).
template <BinaryOp kOp, typename T>
void binary_range(const BroadcastArgs& s, const T* a, const T* b, T* out, index_t lo, index_t hi) {
  const int last = s.ndim - 1;
  const index_t cols = s.shape[last];
  index_t coord[kMaxDims] = {};
  index_t rest = lo / cols, oa = 0, ob = 0;
  for (int d = last - 1; d >= 0; --d) {
    coord[d] = rest % s.shape[d];
    rest /= s.shape[d];
    oa += coord[d] * s.a_stride[d];
    ob += coord[d] * s.b_stride[d];
  }
  index_t i = lo, col = lo % cols;
  while (i < hi) {
    const index_t len = std::min(cols - col, hi - i);
    binary_row<kOp>(out + i, a + oa + col * s.a_stride[last], s.a_stride[last], b + ob + col * s.b_stride[last],
                    s.b_stride[last], len);
    i += len;
    col = 0;
    for (int d = last - 1; d >= 0; --d) {  // next row
      oa += s.a_stride[d];
      ob += s.b_stride[d];
      if (++coord[d] < s.shape[d]) break;
      oa -= coord[d] * s.a_stride[d];
      ob -= coord[d] * s.b_stride[d];
      coord[d] = 0;
    }
  }
}

template <BinaryOp kOp, typename T>
void binary_all(const BroadcastArgs& args, const T* a, const T* b, T* out) {
  BroadcastArgs s = tensor_math::collapse(args);
  const index_t n = tensor_math::numel(s);
  if (n <= 0) return;
  if (s.ndim == 0) {  // every dim of size 1
    out[0] = tensor_math::binary<kOp>(a[0], b[0]);
    return;
  }
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) { binary_range<kOp>(s, a, b, out, lo, hi); });
}

constexpr index_t kSumBlock = 4096;  // a row's summation blocks (fixed: they set the order)
constexpr int kLanes = 16;           // independent accumulators of a contiguous row (the adds pipeline)
constexpr index_t kInnerTile = 1024; // columns reduced together when inner > 1 (4 KB of float row)
constexpr index_t kRowBlock = 64;    // rows per work item of a column sum; blocks are combined in order

// Sum of one row of n contiguous elements in double: kLanes lanes (element j to lane
// j % kLanes, so the loop vectorises without reassociation) per block of kSumBlock, the
// lanes added pairwise, the blocks in order. The order depends on n only.
template <typename T>
double row_sum(const T* x, index_t n) {
  double total = 0;
  for (index_t j0 = 0; j0 < n; j0 += kSumBlock) {
    const index_t j1 = std::min(n, j0 + kSumBlock);
    double lane[kLanes] = {};
    index_t j = j0;
    for (; j + kLanes <= j1; j += kLanes)
      for (int k = 0; k < kLanes; ++k) lane[k] += static_cast<double>(x[j + k]);
    for (; j < j1; ++j) lane[0] += static_cast<double>(x[j]);
    for (int w = kLanes / 2; w >= 1; w /= 2)
      for (int k = 0; k < w; ++k) lane[k] += lane[k + w];
    total += lane[0];
  }
  return total;
}

// Max / min of one contiguous row and the index of its first occurrence. The common case
// vectorises: a lane-wise select finds the extreme while a lane-wise v * 0 sum probes for
// NaN (and infinities); then a scan finds the extreme's first index. A row the probe flags
// takes the exact scalar rule (NaN first, then the smaller index).
template <ReduceOp kOp, typename T>
void row_extreme(const T* x, index_t n, T* value, std::int64_t* index) {
  index_t j = 0;
  T m = x[0];
  if (n >= kLanes) {
    T lane[kLanes], probe[kLanes] = {};
    for (int k = 0; k < kLanes; ++k) lane[k] = x[k];
    for (j = 0; j + kLanes <= n; j += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const T v = x[j + k];
        lane[k] = (kOp == ReduceOp::Max ? v > lane[k] : v < lane[k]) ? v : lane[k];
        probe[k] += v * T(0);
      }
    T p = 0;
    for (int k = 0; k < kLanes; ++k) {
      p += probe[k];
      if (kOp == ReduceOp::Max ? lane[k] > m : lane[k] < m) m = lane[k];
    }
    if (p != p) j = n + 1;  // a NaN or an infinity somewhere: the exact rule below
  }
  if (j <= n) {
    for (; j < n; ++j) {  // the tail; NaN here also sends the row to the exact rule
      const T v = x[j];
      if (v != v) break;
      if (kOp == ReduceOp::Max ? v > m : v < m) m = v;
    }
    if (j == n) {
      index_t at = 0;
      while (x[at] != m) ++at;
      *value = x[at];  // the first occurrence's bits (-0 or +0)
      if (index) *index = at;
      return;
    }
  }
  index_t at = 0;
  for (index_t i = 1; i < n; ++i)
    if (better<kOp>(x[i], i, x[at], at)) at = i;
  *value = x[at];
  if (index) *index = at;
}

// Sums over the middle dim of [outer, n, inner], inner > 1: work items of kRowBlock rows x
// kInnerTile columns (so both cores share even a single long column sum), partial sums in
// double combined in block order -- the result does not depend on the thread count.
template <typename T>
void column_sums(const T* x, index_t outer, index_t n, index_t inner, T* out, double scale) {
  const index_t tiles = (inner + kInnerTile - 1) / kInnerTile, blocks = (n + kRowBlock - 1) / kRowBlock;
  auto block_sum = [&](double* acc, const T* xo, index_t j0, index_t j1, index_t cols) {
    std::fill(acc, acc + cols, 0.0);
    for (index_t j = j0; j < j1; ++j) {
      const T* r = xo + j * inner;
      for (index_t c = 0; c < cols; ++c) acc[c] += static_cast<double>(r[c]);
    }
  };
  if (blocks == 1) {
    parallel_for(outer * tiles, 1, [&](index_t lo, index_t hi) {
      double acc[kInnerTile];
      for (index_t w = lo; w < hi; ++w) {
        const index_t o = w / tiles, c0 = (w % tiles) * kInnerTile, cols = std::min(kInnerTile, inner - c0);
        block_sum(acc, x + o * n * inner + c0, 0, n, cols);
        for (index_t c = 0; c < cols; ++c) out[o * inner + c0 + c] = static_cast<T>(acc[c] * scale);
      }
    });
    return;
  }
  std::vector<double> part(static_cast<std::size_t>(outer * blocks * inner));  // allocated outside the parallel region
  parallel_for(outer * tiles * blocks, 1, [&](index_t lo, index_t hi) {
    for (index_t w = lo; w < hi; ++w) {
      const index_t o = w / (tiles * blocks), c0 = (w / blocks % tiles) * kInnerTile, b = w % blocks;
      block_sum(part.data() + (o * blocks + b) * inner + c0, x + o * n * inner + c0, b * kRowBlock,
                std::min(n, (b + 1) * kRowBlock), std::min(kInnerTile, inner - c0));
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

template <ReduceOp kOp, typename T>
void reduce_rows(const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index) {
  constexpr bool kSum = kOp == ReduceOp::Sum || kOp == ReduceOp::Mean;
  const double scale = kOp == ReduceOp::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  if (inner == 1) {  // one contiguous row per output
    parallel_for(outer, std::max<index_t>(1, kElementwiseGrain / n), [&](index_t lo, index_t hi) {
      for (index_t o = lo; o < hi; ++o) {
        if constexpr (kSum) {
          out[o] = static_cast<T>(row_sum(x + o * n, n) * scale);
        } else {
          row_extreme<kOp>(x + o * n, n, out + o, index ? index + o : nullptr);
        }
      }
    });
    return;
  }
  if constexpr (kSum) {
    column_sums(x, outer, n, inner, out, scale);
  } else {
    const index_t tiles = (inner + kInnerTile - 1) / kInnerTile;
    const index_t grain = std::max<index_t>(1, kElementwiseGrain / (n * std::min(inner, kInnerTile)));
    parallel_for(outer * tiles, grain, [&](index_t lo, index_t hi) {
      T best[kInnerTile];
      index_t at[kInnerTile];
      for (index_t w = lo; w < hi; ++w) {
        const index_t o = w / tiles, c0 = (w % tiles) * kInnerTile, cols = std::min(kInnerTile, inner - c0);
        const T* xo = x + o * n * inner + c0;
        for (index_t c = 0; c < cols; ++c) {
          best[c] = xo[c];
          at[c] = 0;
        }
        for (index_t j = 1; j < n; ++j) {
          const T* r = xo + j * inner;
          for (index_t c = 0; c < cols; ++c)
            if (better<kOp>(r[c], j, best[c], at[c])) {
              best[c] = r[c];
              at[c] = j;
            }
        }
        std::int64_t* io = index ? index + o * inner + c0 : nullptr;
        for (index_t c = 0; c < cols; ++c) {
          out[o * inner + c0 + c] = best[c];
          if (io) io[c] = at[c];
        }
      }
    });
  }
}

}  // namespace

template <typename T>
void binary_broadcast(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out) {
  switch (op) {
#define NNFAST_X(E, name) \
  case BinaryOp::E: return binary_all<BinaryOp::E>(args, a, b, out);
    NNFAST_BINARY_OPS(NNFAST_X)
#undef NNFAST_X
  }
}

template <typename T>
void reduce_dim(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index) {
  if (outer <= 0 || inner <= 0) return;
  if (n <= 0) {  // an empty sum is 0, an empty mean NaN (max / min of nothing: refused by the binding)
    const T v = op == ReduceOp::Sum ? T(0) : std::numeric_limits<T>::quiet_NaN();
    std::fill(out, out + outer * inner, v);
    return;
  }
  switch (op) {
#define NNFAST_X(E, name) \
  case ReduceOp::E: return reduce_rows<ReduceOp::E>(x, outer, n, inner, out, index);
    NNFAST_REDUCE_OPS(NNFAST_X)
#undef NNFAST_X
  }
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

template <typename From, typename To>
void cast(To* out, const From* x, index_t n) {
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) out[i] = static_cast<To>(x[i]);
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

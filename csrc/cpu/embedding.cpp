// Embedding kernels (nnfast/embedding.h): row gather, deterministic scatter-add by
// row partitions, bags (sum / mean / max) and max_norm renorm.
#include "nnfast/embedding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel_for.h"

namespace nnfast::cpu {
namespace {

// Elements per thread below which a gather / scatter stays serial: a row copy or add is
// one load and one store per element, so waking a thread only pays off from ~512 KB on.
constexpr index_t kRowGrain = 4 * kElementwiseGrain;

// Rows of a gather / scatter below which a kernel stays serial (each row is D elements).
index_t row_grain(index_t D) { return std::max<index_t>(1, kRowGrain / std::max<index_t>(D, 1)); }

// Row partitions of the scatter-add: row r belongs to partition r % P. P only sets the
// parallelism, never the order of the additions into a row (position order, always).
index_t partitions(index_t N, index_t D) {
  const index_t work = N * std::max<index_t>(D, 1);
  if (work < kRowGrain) return 1;
  return std::max<index_t>(1, std::min<index_t>(64, 4 * static_cast<index_t>(get_num_threads())));
}

template <typename T>
inline void axpy(T* __restrict y, const T* __restrict x, T a, index_t D) {
#pragma omp simd
  for (index_t d = 0; d < D; ++d) y[d] += a * x[d];
}

template <typename T>
inline void add_row(T* __restrict y, const T* __restrict x, index_t D) {
#pragma omp simd
  for (index_t d = 0; d < D; ++d) y[d] += x[d];
}

// dweight[idx[n]] += sum over the positions n that `take` accepts of coef(n) * src(n)
// (coef(n) / count(idx[n]) when freq). Rows are split by partition; a partition lists its
// positions, orders them by row (stable: position order within a row), sums each row in
// a scratch row and adds that sum to dweight once, so a second call adds exactly the
// same bits (the accumulation contract of nnfast/common.h).
template <typename T, typename I, typename Take, typename Coef, typename Src>
void scatter_rows(T* dweight, const I* idx, index_t N, index_t D, bool freq, Take take, Coef coef, Src src) {
  const index_t P = partitions(N, D);
  parallel_for(P, 1, [&](index_t p0, index_t p1) {
    std::vector<index_t> pos;
    std::vector<T> acc(static_cast<size_t>(D));
    for (index_t part = p0; part < p1; ++part) {
      pos.clear();
      for (index_t n = 0; n < N; ++n)
        if (static_cast<index_t>(idx[n]) % P == part && take(n)) pos.push_back(n);
      std::stable_sort(pos.begin(), pos.end(), [&](index_t a, index_t b) { return idx[a] < idx[b]; });
      for (size_t i = 0; i < pos.size();) {
        const index_t r = static_cast<index_t>(idx[pos[i]]);
        size_t j = i;
        while (j < pos.size() && static_cast<index_t>(idx[pos[j]]) == r) ++j;
        const T count = static_cast<T>(j - i);
        for (size_t k = i; k < j; ++k) {
          T c = coef(pos[k]);
          if (freq) c = c / count;
          const T* g = src(pos[k]);
          if (k == i) {
            for (index_t d = 0; d < D; ++d) acc[d] = c * g[d];
          } else {
            axpy(acc.data(), g, c, D);
          }
        }
        add_row(dweight + r * D, acc.data(), D);
        i = j;
      }
    }
  });
}

// bag[n] = the bag position n belongs to, -1 when none (after offsets[B]).
std::vector<index_t> bag_of_positions(const index_t* offsets, index_t B, index_t N) {
  std::vector<index_t> bag(static_cast<size_t>(N), -1);
  for (index_t b = 0; b < B; ++b)
    for (index_t n = offsets[b]; n < offsets[b + 1]; ++n) bag[n] = b;
  return bag;
}

template <typename I>
index_t bag_count(const I* idx, index_t lo, index_t hi, index_t padding_idx) {
  index_t c = 0;
  for (index_t n = lo; n < hi; ++n) c += static_cast<index_t>(idx[n]) != padding_idx;
  return c;
}

template <typename T>
T row_norm(const T* w, index_t D, double p) {
  double s = 0;
  if (p == 2.0) {
    for (index_t d = 0; d < D; ++d) s += static_cast<double>(w[d]) * w[d];
    return static_cast<T>(std::sqrt(s));
  }
  if (p == 1.0) {
    for (index_t d = 0; d < D; ++d) s += std::fabs(static_cast<double>(w[d]));
    return static_cast<T>(s);
  }
  if (std::isinf(p)) {
    for (index_t d = 0; d < D; ++d) s = std::max(s, std::fabs(static_cast<double>(w[d])));
    return static_cast<T>(s);
  }
  for (index_t d = 0; d < D; ++d) s += std::pow(std::fabs(static_cast<double>(w[d])), p);
  return static_cast<T>(std::pow(s, 1.0 / p));
}

}  // namespace

template <typename I>
void embedding_index_range(const I* idx, index_t N, index_t* lo, index_t* hi) {
  index_t mn = std::numeric_limits<index_t>::max(), mx = std::numeric_limits<index_t>::min();
  for (index_t n = 0; n < N; ++n) {
    const index_t v = static_cast<index_t>(idx[n]);
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  *lo = N ? mn : 0;
  *hi = N ? mx : -1;
}

template <typename T, typename I>
void embedding_forward(T* out, const T* weight, const I* idx, index_t N, index_t D) {
  parallel_for(N, row_grain(D), [&](index_t n0, index_t n1) {
    for (index_t n = n0; n < n1; ++n)
      std::memcpy(out + n * D, weight + static_cast<index_t>(idx[n]) * D, static_cast<size_t>(D) * sizeof(T));
  });
}

template <typename T, typename I>
void embedding_backward(T* dweight, const T* dy, const I* idx, index_t N, index_t D, index_t R,
                        index_t padding_idx, bool scale_grad_by_freq) {
  (void)R;
  scatter_rows<T>(
      dweight, idx, N, D, scale_grad_by_freq,
      [&](index_t n) { return static_cast<index_t>(idx[n]) != padding_idx; }, [](index_t) { return T(1); },
      [&](index_t n) { return dy + n * D; });
}

template <typename T, typename I>
void embedding_renorm(T* weight, const I* idx, index_t N, index_t D, index_t R, double max_norm,
                      double norm_type) {
  // Distinct rows in first-occurrence order (a row scaled twice would shrink twice).
  std::vector<unsigned char> seen(static_cast<size_t>(R), 0);
  std::vector<index_t> rows;
  for (index_t n = 0; n < N; ++n) {
    const index_t r = static_cast<index_t>(idx[n]);
    if (!seen[r]) {
      seen[r] = 1;
      rows.push_back(r);
    }
  }
  parallel_for(static_cast<index_t>(rows.size()), row_grain(D), [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      T* w = weight + rows[i] * D;
      const T norm = row_norm(w, D, norm_type);
      if (norm > static_cast<T>(max_norm)) {
        const T scale = static_cast<T>(max_norm) / (norm + static_cast<T>(1e-7));
        for (index_t d = 0; d < D; ++d) w[d] *= scale;
      }
    }
  });
}

template <typename T, typename I>
void embedding_bag_forward(T* out, index_t* max_indices, const T* weight, const I* idx, const index_t* offsets,
                           const T* per_sample_weights, index_t B, index_t D, index_t padding_idx, BagMode mode) {
  // Grain from the rows a bag gathers on average, not one row per bag: 64 bags of 128
  // rows used to stay serial. Each bag is summed by one thread in position order, so the
  // bits do not depend on the split.
  const index_t rows_per_bag = B > 0 ? std::max<index_t>(1, (offsets[B] - offsets[0]) / B) : 1;
  parallel_for(B, std::max<index_t>(1, row_grain(D) / rows_per_bag), [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) {
      T* o = out + b * D;
      std::fill(o, o + D, T(0));
      const index_t lo = offsets[b], hi = offsets[b + 1];
      if (mode == BagMode::Max) {
        index_t* mi = max_indices + b * D;
        std::fill(mi, mi + D, index_t(-1));
        for (index_t n = lo; n < hi; ++n) {
          const index_t r = static_cast<index_t>(idx[n]);
          if (r == padding_idx) continue;
          const T* w = weight + r * D;
          for (index_t d = 0; d < D; ++d)
            if (mi[d] < 0 || w[d] > o[d]) {  // first maximum wins ties
              o[d] = w[d];
              mi[d] = r;
            }
        }
        continue;
      }
      index_t count = 0;
      for (index_t n = lo; n < hi; ++n) {
        const index_t r = static_cast<index_t>(idx[n]);
        if (r == padding_idx) continue;
        ++count;
        if (per_sample_weights)
          axpy(o, weight + r * D, per_sample_weights[n], D);
        else
          add_row(o, weight + r * D, D);
      }
      if (mode == BagMode::Mean && count > 1) {
        const T c = static_cast<T>(count);
        for (index_t d = 0; d < D; ++d) o[d] /= c;
      }
    }
  });
}

template <typename T, typename I>
void embedding_bag_backward(T* dweight, T* dpsw, const T* dy, const T* weight, const I* idx, const index_t* offsets,
                            const T* per_sample_weights, const index_t* max_indices, index_t N, index_t B, index_t D,
                            index_t R, index_t padding_idx, BagMode mode, bool scale_grad_by_freq) {
  (void)R;
  if (mode == BagMode::Max) {
    // Columns split among threads (each dweight column has one writer); in a column, the bags
    // are ordered by the row that won (stable: bag order within a row) and each row's sum is
    // added once.
    if (!dweight) return;
    parallel_for(D, 16, [&](index_t d0, index_t d1) {
      std::vector<index_t> bags;
      for (index_t d = d0; d < d1; ++d) {
        bags.clear();
        for (index_t b = 0; b < B; ++b)
          if (max_indices[b * D + d] >= 0) bags.push_back(b);
        std::stable_sort(bags.begin(), bags.end(),
                         [&](index_t a, index_t b) { return max_indices[a * D + d] < max_indices[b * D + d]; });
        for (size_t i = 0; i < bags.size();) {
          const index_t r = max_indices[bags[i] * D + d];
          T acc = dy[bags[i] * D + d];
          size_t j = i + 1;
          for (; j < bags.size() && max_indices[bags[j] * D + d] == r; ++j) acc += dy[bags[j] * D + d];
          dweight[r * D + d] += acc;
          i = j;
        }
      }
    });
    return;
  }
  const std::vector<index_t> bag = bag_of_positions(offsets, B, N);
  std::vector<T> inv_count;
  if (mode == BagMode::Mean) {
    inv_count.resize(static_cast<size_t>(B));
    for (index_t b = 0; b < B; ++b) {
      const index_t c = bag_count(idx, offsets[b], offsets[b + 1], padding_idx);
      inv_count[b] = c > 0 ? T(1) / static_cast<T>(c) : T(0);
    }
  }
  if (dweight)
    scatter_rows<T>(
        dweight, idx, N, D, scale_grad_by_freq,
        [&](index_t n) { return bag[n] >= 0 && static_cast<index_t>(idx[n]) != padding_idx; },
        [&](index_t n) {
          return mode == BagMode::Mean ? inv_count[bag[n]] : (per_sample_weights ? per_sample_weights[n] : T(1));
        },
        [&](index_t n) { return dy + bag[n] * D; });
  if (dpsw) {
    parallel_for(N, row_grain(D), [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n) {
        const index_t r = static_cast<index_t>(idx[n]);
        T s = T(0);
        if (bag[n] >= 0 && r != padding_idx) {
          const T* w = weight + r * D;
          const T* g = dy + bag[n] * D;
          for (index_t d = 0; d < D; ++d) s += w[d] * g[d];
        }
        dpsw[n] = s;
      }
    });
  }
}

#define NNFAST_EMBEDDING_INSTANTIATE(T, I)                                                                       \
  template void embedding_forward<T, I>(T*, const T*, const I*, index_t, index_t);                              \
  template void embedding_backward<T, I>(T*, const T*, const I*, index_t, index_t, index_t, index_t, bool);     \
  template void embedding_renorm<T, I>(T*, const I*, index_t, index_t, index_t, double, double);                \
  template void embedding_bag_forward<T, I>(T*, index_t*, const T*, const I*, const index_t*, const T*, index_t, \
                                            index_t, index_t, BagMode);                                          \
  template void embedding_bag_backward<T, I>(T*, T*, const T*, const T*, const I*, const index_t*, const T*,     \
                                             const index_t*, index_t, index_t, index_t, index_t, index_t,        \
                                             BagMode, bool);
NNFAST_EMBEDDING_INSTANTIATE(float, std::int32_t)
NNFAST_EMBEDDING_INSTANTIATE(float, std::int64_t)
NNFAST_EMBEDDING_INSTANTIATE(double, std::int32_t)
NNFAST_EMBEDDING_INSTANTIATE(double, std::int64_t)
#undef NNFAST_EMBEDDING_INSTANTIATE
template void embedding_index_range<std::int32_t>(const std::int32_t*, index_t, index_t*, index_t*);
template void embedding_index_range<std::int64_t>(const std::int64_t*, index_t, index_t*, index_t*);

}  // namespace nnfast::cpu

// CUDA embedding kernels: row gather, deterministic scatter-add, max_norm renorm and
// bags. Mirrors csrc/cpu/embedding.cpp (nnfast/cuda/embedding.h).
//
// No float atomics anywhere: a scatter-add gives each (row partition, column) to one
// thread, which walks the positions in order and adds only its rows' contributions,
// so every dweight element is a sum in position order (the CPU's order) on one
// thread. Integer atomics (counts, first occurrences, index min / max) are exact.
// Into a zero gradient this gives the CPU's bits; into an existing one the terms are added
// one by one (the CPU adds each row's sum once), so the last bits may differ there.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include "nnfast/cuda/embedding.h"

namespace nnfast {
namespace cuda {
namespace embedding_k {

constexpr int kThreads = 256;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads); }


// Row partitions of a scatter-add: enough (partition, column) threads to fill the
// device, at most 64 partitions (each thread scans every index once).
inline index_t partitions(index_t D) {
  const index_t p = 65536 / (D > 0 ? D : 1);
  return p < 1 ? 1 : (p > 64 ? 64 : p);
}

template <typename I>
__global__ void index_range_kernel(long long* mm, const I* idx, index_t N) {
  long long lo = mm[0], hi = mm[1];
  NNFAST_GRID_STRIDE(n, N) {
    const long long v = static_cast<long long>(idx[n]);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  atomicMin(&mm[0], lo);
  atomicMax(&mm[1], hi);
}

template <typename T, typename I>
__global__ void gather_kernel(T* out, const T* weight, const I* idx, index_t N, index_t D) {
  NNFAST_GRID_STRIDE(e, N * D) {
    const index_t n = e / D, d = e - n * D;
    out[e] = weight[static_cast<index_t>(idx[n]) * D + d];
  }
}

template <typename I>
__global__ void count_kernel(int* count, const I* idx, index_t N, index_t padding_idx, const index_t* bag) {
  NNFAST_GRID_STRIDE(n, N) {
    const index_t r = static_cast<index_t>(idx[n]);
    if (r != padding_idx && (!bag || bag[n] >= 0)) atomicAdd(&count[r], 1);
  }
}

// dweight[idx[n]] += c_n src(n) with src(n) = g[bag ? bag[n] : n], c_n = (inv_bag ? inv_bag[bag[n]] :
// (psw ? psw[n] : 1)) / (count ? count[idx[n]] : 1). Thread (part, d): rows r with r % P == part, column d.
template <typename T, typename I>
__global__ void scatter_rows_kernel(T* dweight, const T* g, const I* idx, index_t N, index_t D, index_t P,
                                    index_t padding_idx, const int* count, const index_t* bag, const T* psw,
                                    const T* inv_bag) {
  NNFAST_GRID_STRIDE(t, P * D) {
    const index_t part = t / D, d = t - part * D;
    for (index_t n = 0; n < N; ++n) {
      const index_t r = static_cast<index_t>(idx[n]);
      if (r % P != part || r == padding_idx) continue;
      const index_t src = bag ? bag[n] : n;
      if (src < 0) continue;
      T c = inv_bag ? inv_bag[src] : (psw ? psw[n] : T(1));
      if (count) c = c / static_cast<T>(count[r]);
      dweight[r * D + d] += c * g[src * D + d];
    }
  }
}

__global__ void fill_index_kernel(index_t* a, index_t n, index_t v) {
  NNFAST_GRID_STRIDE(i, n) a[i] = v;
}

// first[r] = the first position holding row r (atomicMin of positions: exact).
template <typename I>
__global__ void first_occurrence_kernel(long long* first, const I* idx, index_t N) {
  NNFAST_GRID_STRIDE(n, N) atomicMin(&first[static_cast<index_t>(idx[n])], static_cast<long long>(n));
}

// One thread per distinct row (its first position): the CPU's norm (double sums) and scale.
template <typename T, typename I>
__global__ void renorm_kernel(T* weight, const I* idx, const long long* first, index_t N, index_t D, double max_norm,
                              double p) {
  NNFAST_GRID_STRIDE(n, N) {
    const index_t r = static_cast<index_t>(idx[n]);
    if (first[r] != n) continue;
    T* w = weight + r * D;
    double s = 0;
    for (index_t d = 0; d < D; ++d) {
      const double a = fabs(static_cast<double>(w[d]));
      if (p == 2.0) s += a * a;
      else if (p == 1.0) s += a;
      else if (isinf(p)) s = a > s ? a : s;
      else s += pow(a, p);
    }
    const T norm = static_cast<T>(p == 2.0 ? sqrt(s) : (p == 1.0 || isinf(p)) ? s : pow(s, 1.0 / p));
    if (norm > static_cast<T>(max_norm)) {
      const T scale = static_cast<T>(max_norm) / (norm + static_cast<T>(1e-7));
      for (index_t d = 0; d < D; ++d) w[d] *= scale;
    }
  }
}

// Thread (b, d): bag b's column d, members in order (the CPU's order).
template <typename T, typename I>
__global__ void bag_forward_kernel(T* out, index_t* max_indices, const T* weight, const I* idx,
                                   const index_t* offsets, const T* psw, index_t B, index_t D, index_t padding_idx,
                                   int mode) {
  NNFAST_GRID_STRIDE(e, B * D) {
    const index_t b = e / D, d = e - b * D;
    T acc = T(0);
    index_t count = 0, arg = -1;
    for (index_t n = offsets[b]; n < offsets[b + 1]; ++n) {
      const index_t r = static_cast<index_t>(idx[n]);
      if (r == padding_idx) continue;
      const T v = weight[r * D + d];
      if (mode == 2) {
        if (arg < 0 || v > acc) {
          acc = v;
          arg = r;
        }
      } else {
        acc += psw ? psw[n] * v : v;
        ++count;
      }
    }
    if (mode == 1 && count > 1) acc /= static_cast<T>(count);
    out[e] = acc;
    if (mode == 2) max_indices[e] = arg;
  }
}

// bag[n] for the members of each bag (the array starts at -1); inv_bag[b] = 1 / count (mean).
template <typename T, typename I>
__global__ void bag_members_kernel(index_t* bag, T* inv_bag, const I* idx, const index_t* offsets, index_t B,
                                   index_t padding_idx) {
  NNFAST_GRID_STRIDE(b, B) {
    index_t c = 0;
    for (index_t n = offsets[b]; n < offsets[b + 1]; ++n) {
      bag[n] = b;
      c += static_cast<index_t>(idx[n]) != padding_idx;
    }
    if (inv_bag) inv_bag[b] = c > 0 ? T(1) / static_cast<T>(c) : T(0);
  }
}

template <typename T, typename I>
__global__ void psw_grad_kernel(T* dpsw, const T* weight, const T* dy, const I* idx, const index_t* bag, index_t N,
                                index_t D, index_t padding_idx) {
  NNFAST_GRID_STRIDE(n, N) {
    const index_t r = static_cast<index_t>(idx[n]);
    T s = T(0);
    if (bag[n] >= 0 && r != padding_idx)
      for (index_t d = 0; d < D; ++d) s += weight[r * D + d] * dy[bag[n] * D + d];
    dpsw[n] = s;
  }
}

// Thread d: column d of every bag, bags in order (each dweight column has one writer).
template <typename T>
__global__ void bag_max_backward_kernel(T* dweight, const T* dy, const index_t* max_indices, index_t B, index_t D) {
  NNFAST_GRID_STRIDE(d, D) {
    for (index_t b = 0; b < B; ++b) {
      const index_t r = max_indices[b * D + d];
      if (r >= 0) dweight[r * D + d] += dy[b * D + d];
    }
  }
}

template <typename T, typename I>
void scatter_rows(T* dweight, const T* g, const I* idx, index_t N, index_t D, index_t R, index_t padding_idx,
                  bool freq, const index_t* bag, const T* psw, const T* inv_bag, cudaStream_t stream) {
  Scratch<int> count(freq ? R : 0, stream);
  if (freq) {
    NNFAST_CUDA_CHECK(cudaMemsetAsync(count.p, 0, static_cast<size_t>(R) * sizeof(int), stream));
    auto* kc = count_kernel<I>;
    NNFAST_LAUNCH(kc, grid_for(N), kThreads, 0, stream)(count.p, idx, N, padding_idx, bag);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  const index_t P = partitions(D);
  auto* k = scatter_rows_kernel<T, I>;
  NNFAST_LAUNCH(k, grid_for(P * D), kThreads, 0, stream)(dweight, g, idx, N, D, P, padding_idx,
                                                          freq ? count.p : nullptr, bag, psw, inv_bag);
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace embedding_k

using namespace embedding_k;

template <typename I>
void embedding_index_range(const I* idx, index_t N, index_t* lo, index_t* hi, cudaStream_t stream) {
  *lo = 0;
  *hi = -1;
  if (N <= 0) return;
  Scratch<long long> mm(2, stream);
  long long init[2] = {static_cast<long long>(INT64_MAX), static_cast<long long>(INT64_MIN)};
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(mm.p, init, sizeof(init), cudaMemcpyHostToDevice, stream));
  auto* k = index_range_kernel<I>;
  NNFAST_LAUNCH(k, grid_for(N), kThreads, 0, stream)(mm.p, idx, N);
  NNFAST_CUDA_CHECK_LAUNCH();
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(init, mm.p, sizeof(init), cudaMemcpyDeviceToHost, stream));
  NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  *lo = static_cast<index_t>(init[0]);
  *hi = static_cast<index_t>(init[1]);
}

template <typename T, typename I>
void embedding_forward(T* out, const T* weight, const I* idx, index_t N, index_t D, cudaStream_t stream) {
  if (N * D <= 0) return;
  auto* k = gather_kernel<T, I>;
  NNFAST_LAUNCH(k, grid_for(N * D), kThreads, 0, stream)(out, weight, idx, N, D);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T, typename I>
void embedding_backward(T* dweight, const T* dy, const I* idx, index_t N, index_t D, index_t R,
                        index_t padding_idx, bool scale_grad_by_freq, cudaStream_t stream) {
  if (N * D <= 0) return;
  scatter_rows<T, I>(dweight, dy, idx, N, D, R, padding_idx, scale_grad_by_freq, nullptr, nullptr, nullptr, stream);
}

template <typename T, typename I>
void embedding_renorm(T* weight, const I* idx, index_t N, index_t D, index_t R, double max_norm,
                      double norm_type, cudaStream_t stream) {
  if (N <= 0 || D <= 0) return;
  Scratch<index_t> first(R, stream);
  NNFAST_LAUNCH(fill_index_kernel, grid_for(R), kThreads, 0, stream)(first.p, R, N);
  NNFAST_CUDA_CHECK_LAUNCH();
  auto* kf = first_occurrence_kernel<I>;
  NNFAST_LAUNCH(kf, grid_for(N), kThreads, 0, stream)(reinterpret_cast<long long*>(first.p), idx, N);
  NNFAST_CUDA_CHECK_LAUNCH();
  auto* k = renorm_kernel<T, I>;
  NNFAST_LAUNCH(k, grid_for(N), kThreads, 0, stream)(weight, idx, reinterpret_cast<const long long*>(first.p), N,
                                                      D, max_norm, norm_type);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T, typename I>
void embedding_bag_forward(T* out, index_t* max_indices, const T* weight, const I* idx, const index_t* offsets,
                           const T* per_sample_weights, index_t B, index_t D, index_t padding_idx, BagMode mode,
                           cudaStream_t stream) {
  if (B * D <= 0) return;
  auto* k = bag_forward_kernel<T, I>;
  NNFAST_LAUNCH(k, grid_for(B * D), kThreads, 0, stream)(out, max_indices, weight, idx, offsets, per_sample_weights,
                                                          B, D, padding_idx, static_cast<int>(mode));
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T, typename I>
void embedding_bag_backward(T* dweight, T* dpsw, const T* dy, const T* weight, const I* idx, const index_t* offsets,
                            const T* per_sample_weights, const index_t* max_indices, index_t N, index_t B, index_t D,
                            index_t R, index_t padding_idx, BagMode mode, bool scale_grad_by_freq,
                            cudaStream_t stream) {
  if (mode == BagMode::Max) {
    if (dweight && B * D > 0) {
      auto* k = bag_max_backward_kernel<T>;
      NNFAST_LAUNCH(k, grid_for(D), kThreads, 0, stream)(dweight, dy, max_indices, B, D);
      NNFAST_CUDA_CHECK_LAUNCH();
    }
    return;
  }
  if (N <= 0) return;
  Scratch<index_t> bag(N, stream);
  Scratch<T> inv_bag(mode == BagMode::Mean ? B : 0, stream);
  NNFAST_LAUNCH(fill_index_kernel, grid_for(N), kThreads, 0, stream)(bag.p, N, -1);
  NNFAST_CUDA_CHECK_LAUNCH();
  if (B > 0) {
    auto* km = bag_members_kernel<T, I>;
    NNFAST_LAUNCH(km, grid_for(B), kThreads, 0, stream)(bag.p, inv_bag.p, idx, offsets, B, padding_idx);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (dweight && D > 0)
    scatter_rows<T, I>(dweight, dy, idx, N, D, R, padding_idx, scale_grad_by_freq, bag.p,
                       mode == BagMode::Sum ? per_sample_weights : nullptr, inv_bag.p, stream);
  if (dpsw) {
    auto* kp = psw_grad_kernel<T, I>;
    NNFAST_LAUNCH(kp, grid_for(N), kThreads, 0, stream)(dpsw, weight, dy, idx, bag.p, N, D, padding_idx);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

#define NNFAST_CUDA_EMBEDDING_API(T, I)                                                                           \
  template void embedding_forward<T, I>(T*, const T*, const I*, index_t, index_t, cudaStream_t);                 \
  template void embedding_backward<T, I>(T*, const T*, const I*, index_t, index_t, index_t, index_t, bool,        \
                                         cudaStream_t);                                                          \
  template void embedding_renorm<T, I>(T*, const I*, index_t, index_t, index_t, double, double, cudaStream_t);   \
  template void embedding_bag_forward<T, I>(T*, index_t*, const T*, const I*, const index_t*, const T*, index_t,  \
                                            index_t, index_t, BagMode, cudaStream_t);                             \
  template void embedding_bag_backward<T, I>(T*, T*, const T*, const T*, const I*, const index_t*, const T*,      \
                                             const index_t*, index_t, index_t, index_t, index_t, index_t,         \
                                             BagMode, bool, cudaStream_t);
NNFAST_CUDA_EMBEDDING_API(float, std::int32_t)
NNFAST_CUDA_EMBEDDING_API(float, std::int64_t)
NNFAST_CUDA_EMBEDDING_API(double, std::int32_t)
NNFAST_CUDA_EMBEDDING_API(double, std::int64_t)
#undef NNFAST_CUDA_EMBEDDING_API
template void embedding_index_range<std::int32_t>(const std::int32_t*, index_t, index_t*, index_t*, cudaStream_t);
template void embedding_index_range<std::int64_t>(const std::int64_t*, index_t, index_t*, index_t*, cudaStream_t);

}  // namespace cuda
}  // namespace nnfast

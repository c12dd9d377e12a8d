// CUDA dropout (counter-based mask, regenerated in backward) and L1 / L2 penalties.
// Mirrors csrc/cpu/dropout.cpp (nnfast/cuda/dropout.h).
//
// The mask: element i is kept when counter_rng::dropout_bits(key, i) < keep, with
// key and keep from (seed, offset) and p exactly as on the CPU (core/counter_rng.h
// is the one definition both use), so the CUDA mask equals the CPU's bit for bit;
// y = x * scale is one multiply in T on both sides, so y is bit-identical too.
// One thread per element pair (2j, 2j + 1): one splitmix64 output gives both.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include "core/counter_rng.h"
#include "nnfast/cuda/dropout.h"

namespace nnfast {
namespace cuda {
namespace dropout_k {

constexpr int kThreads = 256;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads); }

template <typename T>
__global__ void dropout_kernel(T* y, const T* x, index_t n, uint64_t key, uint32_t keep, T scale) {
  const index_t pairs = (n + 1) / 2;
  for (index_t j = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < pairs;
       j += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const uint64_t h = counter_rng::mix64(key + static_cast<uint64_t>(j) * counter_rng::kGolden);
    const index_t i = 2 * j;
    // == counter_rng::dropout_bits(key, i) and (key, i + 1): low half first.
    y[i] = static_cast<uint32_t>(h) < keep ? x[i] * scale : T(0);
    if (i + 1 < n) y[i + 1] = static_cast<uint32_t>(h >> 32) < keep ? x[i + 1] * scale : T(0);
  }
}

// An odd first index splits the generator's pairs: one element per thread.
template <typename T>
__global__ void dropout_odd_kernel(T* y, const T* x, index_t n, uint64_t key, uint64_t first, uint32_t keep,
                                   T scale) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = counter_rng::dropout_bits(key, first + static_cast<uint64_t>(i)) < keep ? x[i] * scale : T(0);
}

template <typename T>
__global__ void fill_zero_kernel(T* y, index_t n) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = T(0);
}

// part[b] = sum |x| or x^2 over block b's fixed chunk [n b / P, n (b + 1) / P), in double.
template <typename T>
__global__ void penalty_partial_kernel(double* part, const T* x, index_t n, bool l2) {
  __shared__ double sh[32];
  const index_t P = gridDim.x, p = blockIdx.x;
  const index_t lo = n * p / P, hi = n * (p + 1) / P;
  double s = 0;
  for (index_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const double v = static_cast<double>(x[i]);
    s += l2 ? v * v : fabs(v);
  }
  reduce::block_sums_in_warp_order(sh, s);
  if (threadIdx.x == 0) part[p] = s;
}

__global__ void sum_parts_kernel(double* out, const double* part, int P) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    double s = 0;
    for (int p = 0; p < P; ++p) s += part[p];
    *out = s;
  }
}

template <typename T>
__global__ void penalty_bwd_kernel(T* dx, const T* x, index_t n, bool l2, T scale) {
  const T s2 = scale * T(2);
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const T v = x[i];
    dx[i] = l2 ? v * s2 : (v > T(0) ? scale : (v < T(0) ? -scale : T(0)));
  }
}

template <typename T>
void dropout_apply(T* y, const T* x, index_t n, double p, uint64_t seed, uint64_t offset, cudaStream_t stream,
                   uint64_t first) {
  if (n <= 0) return;
  if (p <= 0.0) {
    if (y != x)
      NNFAST_CUDA_CHECK(
          cudaMemcpyAsync(y, x, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  if (p >= 1.0) {
    auto* k = fill_zero_kernel<T>;
    NNFAST_LAUNCH(k, grid_for(n), kThreads, 0, stream)(y, n);
    NNFAST_CUDA_CHECK_LAUNCH();
    return;
  }
  const uint64_t key = counter_rng::dropout_stream_key(seed, offset);
  const uint32_t keep = counter_rng::keep_threshold(p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  if (first & 1) {
    auto* ko = dropout_odd_kernel<T>;
    NNFAST_LAUNCH(ko, grid_for(n), kThreads, 0, stream)(y, x, n, key, first, keep, scale);
    NNFAST_CUDA_CHECK_LAUNCH();
    return;
  }
  // An even first index keeps the pairs aligned: pair j of this shard is pair j + first / 2 of
  // the stream, i.e. the pair kernel with its key advanced by first / 2 golden steps.
  auto* k = dropout_kernel<T>;
  NNFAST_LAUNCH(k, grid_for((n + 1) / 2), kThreads, 0, stream)(y, x, n, key + (first >> 1) * counter_rng::kGolden,
                                                                keep, scale);
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace dropout_k

template <typename T>
void dropout_forward(T* y, const T* x, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                     cudaStream_t stream, std::uint64_t first) {
  dropout_k::dropout_apply(y, x, n, p, seed, offset, stream, first);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                      cudaStream_t stream, std::uint64_t first) {
  dropout_k::dropout_apply(dx, dy, n, p, seed, offset, stream, first);
}

bool dropout_keep(index_t i, double p, std::uint64_t seed, std::uint64_t offset) {
  if (p <= 0.0) return true;
  if (p >= 1.0) return false;
  return counter_rng::dropout_bits(counter_rng::dropout_stream_key(seed, offset), static_cast<std::uint64_t>(i)) <
         counter_rng::keep_threshold(p);
}

template <typename T>
double penalty_sum(const T* x, index_t n, Penalty kind, cudaStream_t stream) {
  if (n <= 0) return 0.0;
  // Fixed chunk count (a function of n only), partials added in chunk order.
  const index_t chunks = (n + 16383) / 16384;
  const int P = static_cast<int>(chunks < 1024 ? chunks : 1024);
  double* ws = nullptr;
  NNFAST_CUDA_CHECK(cudaMalloc(&ws, static_cast<size_t>(P + 1) * sizeof(double)));
  double s = 0;
  try {
    auto* kp = dropout_k::penalty_partial_kernel<T>;
    NNFAST_LAUNCH(kp, static_cast<unsigned>(P), dropout_k::kThreads, 0, stream)(ws + 1, x, n, kind == Penalty::L2);
    NNFAST_CUDA_CHECK_LAUNCH();
    NNFAST_LAUNCH(dropout_k::sum_parts_kernel, 1, 32, 0, stream)(ws, ws + 1, P);
    NNFAST_CUDA_CHECK_LAUNCH();
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(&s, ws, sizeof(double), cudaMemcpyDeviceToHost, stream));
    NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  } catch (...) {
    cudaFree(ws);
    throw;
  }
  NNFAST_CUDA_CHECK(cudaFree(ws));
  return s;
}

template <typename T>
void penalty_backward(T* dx, const T* x, index_t n, Penalty kind, T scale, cudaStream_t stream) {
  if (n <= 0) return;
  auto* k = dropout_k::penalty_bwd_kernel<T>;
  NNFAST_LAUNCH(k, dropout_k::grid_for(n), dropout_k::kThreads, 0, stream)(dx, x, n, kind == Penalty::L2, scale);
  NNFAST_CUDA_CHECK_LAUNCH();
}

#define NNFAST_CUDA_DROPOUT_API(T)                                                                              \
  template void dropout_forward<T>(T*, const T*, index_t, double, std::uint64_t, std::uint64_t, cudaStream_t,   \
                                   std::uint64_t);                                                             \
  template void dropout_backward<T>(T*, const T*, index_t, double, std::uint64_t, std::uint64_t, cudaStream_t,  \
                                    std::uint64_t);                                                            \
  template double penalty_sum<T>(const T*, index_t, Penalty, cudaStream_t);                                    \
  template void penalty_backward<T>(T*, const T*, index_t, Penalty, T, cudaStream_t);
NNFAST_CUDA_DROPOUT_API(float)
NNFAST_CUDA_DROPOUT_API(double)
#undef NNFAST_CUDA_DROPOUT_API

}  // namespace cuda
}  // namespace nnfast

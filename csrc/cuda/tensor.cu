// CUDA tape arithmetic (nnfast/cuda/tensor.h), mirroring csrc/cpu/tensor.cpp: the same
// per-element math (core/tensor_math.h), so both devices agree to the bit on binary ops,
// casts, scatters and max / min; sums accumulate in double on both (their trees differ).
//
//   binary_broadcast  grid-stride over out, each index decoded over the collapsed shape
//                     (a same-shape contiguous op collapses to 1-D: one division per element)
//   reduce_dim        inner == 1: a block per row (threads stride the row, then a block
//                     reduction); inner > 1: a thread per output column, walking the
//                     reduced dim (consecutive threads read consecutive addresses)
//   scatter_dim, cast grid-stride elementwise
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include <limits>

#include "core/tensor_math.h"
#include "nnfast/cuda/tensor.h"

namespace nnfast {
namespace cuda {
namespace tensor_k {

constexpr int kThreads = reduce::kThreads;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads); }

template <BinaryOp kOp, typename T>
__global__ void binary_kernel(BroadcastArgs s, const T* __restrict__ a, const T* __restrict__ b, T* out, index_t n) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    index_t oa = 0, ob = 0, rest = i;
    for (int d = s.ndim - 1; d >= 0; --d) {
      const index_t c = rest % s.shape[d];
      rest /= s.shape[d];
      oa += c * s.a_stride[d];
      ob += c * s.b_stride[d];
    }
    out[i] = tensor_math::binary<kOp>(a[oa], b[ob]);
  }
}

template <BinaryOp kOp, typename T>
void binary_launch(const BroadcastArgs& args, const T* a, const T* b, T* out, cudaStream_t stream) {
  const BroadcastArgs s = tensor_math::collapse(args);
  const index_t n = tensor_math::numel(s);
  if (n <= 0) return;
  auto* k = binary_kernel<kOp, T>;
  NNFAST_LAUNCH(k, grid_for(n), kThreads, 0, stream)(s, a, b, out, n);
  NNFAST_CUDA_CHECK_LAUNCH();
}

// inner == 1, Sum / Mean: block r reduces row r (grid-stride over rows).
template <typename T>
__global__ void row_sum_kernel(const T* __restrict__ x, index_t rows, index_t n, double scale, T* out) {
  __shared__ double sh[32];
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    double s = 0;
    for (index_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(xr[j]);
    s = reduce::block_sum(s, sh);
    if (threadIdx.x == 0) out[r] = static_cast<T>(s * scale);
  }
}

// inner == 1, Max / Min: each thread scans its strided share, then a shared-memory tree
// keeps the better (value, index) pair (tensor_math::better: NaN first, then the smaller index).
template <ReduceOp kOp, typename T>
__global__ void row_extreme_kernel(const T* __restrict__ x, index_t rows, index_t n, T* out, std::int64_t* index) {
  __shared__ T val[kThreads];
  __shared__ index_t at[kThreads];
  const int t = threadIdx.x;
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    T best = xr[0];
    index_t best_at = 0;
    for (index_t j = t; j < n; j += blockDim.x)
      if (tensor_math::better<kOp>(xr[j], j, best, best_at)) {
        best = xr[j];
        best_at = j;
      }
    __syncthreads();  // val / at may still be read for the previous row
    val[t] = best;
    at[t] = best_at;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (t < half && tensor_math::better<kOp>(val[t + half], at[t + half], val[t], at[t])) {
        val[t] = val[t + half];
        at[t] = at[t + half];
      }
      __syncthreads();
    }
    if (t == 0) {
      out[r] = val[0];
      if (index) index[r] = at[0];
    }
  }
}

// inner > 1: one thread per output (o, i), reducing x[o, :, i] in order.
template <ReduceOp kOp, typename T>
__global__ void column_reduce_kernel(const T* __restrict__ x, index_t outer, index_t n, index_t inner, double scale,
                                     T* out, std::int64_t* index) {
  const index_t total = outer * inner;
  for (index_t w = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; w < total;
       w += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t o = w / inner, i = w % inner;
    const T* xc = x + o * n * inner + i;
    if constexpr (kOp == ReduceOp::Sum || kOp == ReduceOp::Mean) {
      double s = 0;
      for (index_t j = 0; j < n; ++j) s += static_cast<double>(xc[j * inner]);
      out[w] = static_cast<T>(s * scale);
    } else {
      T best = xc[0];
      index_t best_at = 0;
      for (index_t j = 1; j < n; ++j)
        if (tensor_math::better<kOp>(xc[j * inner], j, best, best_at)) {
          best = xc[j * inner];
          best_at = j;
        }
      out[w] = best;
      if (index) index[w] = best_at;
    }
  }
}

template <typename T>
__global__ void fill_kernel(T* y, index_t n, T v) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = v;
}

template <ReduceOp kOp, typename T>
void reduce_launch(const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index,
                   cudaStream_t stream) {
  const double scale = kOp == ReduceOp::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  if (inner > 1) {
    auto* k = column_reduce_kernel<kOp, T>;
    NNFAST_LAUNCH(k, grid_for(outer * inner), kThreads, 0, stream)(x, outer, n, inner, scale, out, index);
  } else {
    const unsigned grid = static_cast<unsigned>(outer < reduce::kMaxGrid ? outer : reduce::kMaxGrid);
    if constexpr (kOp == ReduceOp::Sum || kOp == ReduceOp::Mean) {
      auto* k = row_sum_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(x, outer, n, scale, out);
    } else {
      auto* k = row_extreme_kernel<kOp, T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(x, outer, n, out, index);
    }
  }
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void scatter_kernel(T* out, const T* __restrict__ grad, const std::int64_t* __restrict__ index,
                               index_t n, index_t inner, index_t total) {
  for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t i = e % inner, r = e / inner, j = r % n, o = r / n;
    const index_t w = o * inner + i;
    out[e] = index[w] == j ? grad[w] : T(0);
  }
}

template <typename From, typename To>
__global__ void cast_kernel(To* out, const From* __restrict__ x, index_t n) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    out[i] = static_cast<To>(x[i]);
}

}  // namespace tensor_k

template <typename T>
void binary_broadcast(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out, cudaStream_t stream) {
  switch (op) {
#define NNFAST_X(E, name) \
  case BinaryOp::E: return tensor_k::binary_launch<BinaryOp::E>(args, a, b, out, stream);
    NNFAST_BINARY_OPS(NNFAST_X)
#undef NNFAST_X
  }
}

template <typename T>
void reduce_dim(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index,
                cudaStream_t stream) {
  if (outer <= 0 || inner <= 0) return;
  if (n <= 0) {  // as on the CPU: an empty sum is 0, an empty mean NaN
    const T v = op == ReduceOp::Sum ? T(0) : std::numeric_limits<T>::quiet_NaN();
    auto* k = tensor_k::fill_kernel<T>;
    NNFAST_LAUNCH(k, tensor_k::grid_for(outer * inner), tensor_k::kThreads, 0, stream)(out, outer * inner, v);
    NNFAST_CUDA_CHECK_LAUNCH();
    return;
  }
  switch (op) {
#define NNFAST_X(E, name) \
  case ReduceOp::E: return tensor_k::reduce_launch<ReduceOp::E>(x, outer, n, inner, out, index, stream);
    NNFAST_REDUCE_OPS(NNFAST_X)
#undef NNFAST_X
  }
}

template <typename T>
void scatter_dim(T* out, const T* grad, const std::int64_t* index, index_t outer, index_t n, index_t inner,
                 cudaStream_t stream) {
  const index_t total = outer * n * inner;
  if (total <= 0) return;
  auto* k = tensor_k::scatter_kernel<T>;
  NNFAST_LAUNCH(k, tensor_k::grid_for(total), tensor_k::kThreads, 0, stream)(out, grad, index, n, inner, total);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename From, typename To>
void cast(To* out, const From* x, index_t n, cudaStream_t stream) {
  if (n <= 0) return;
  auto* k = tensor_k::cast_kernel<From, To>;
  NNFAST_LAUNCH(k, tensor_k::grid_for(n), tensor_k::kThreads, 0, stream)(out, x, n);
  NNFAST_CUDA_CHECK_LAUNCH();
}

#define NNFAST_CUDA_TENSOR_API(T)                                                                              \
  template void binary_broadcast<T>(BinaryOp, const BroadcastArgs&, const T*, const T*, T*, cudaStream_t);      \
  template void reduce_dim<T>(ReduceOp, const T*, index_t, index_t, index_t, T*, std::int64_t*, cudaStream_t); \
  template void scatter_dim<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t, cudaStream_t);
NNFAST_CUDA_TENSOR_API(float)
NNFAST_CUDA_TENSOR_API(double)
#undef NNFAST_CUDA_TENSOR_API
template void cast<float, double>(double*, const float*, index_t, cudaStream_t);
template void cast<double, float>(float*, const double*, index_t, cudaStream_t);
template void cast<float, float>(float*, const float*, index_t, cudaStream_t);
template void cast<double, double>(double*, const double*, index_t, cudaStream_t);

}  // namespace cuda
}  // namespace nnfast

// Device scratch memory and deterministic reductions shared by the csrc/cuda families.
//
// Every sum here has a fixed tree (lane butterfly, then warp slots in shared memory,
// then fixed-size chunks of a device array), so a result depends on the sizes only,
// never on scheduling or the device: the CUDA kernels reproduce their own bits run to run.
#pragma once
#include "cuda/common.cuh"

namespace nnfast::cuda {

// Temporary device memory for the life of one launcher call: stream-ordered where the
// runtime has it; otherwise cudaMalloc / cudaFree (cudaFree synchronises the device,
// which the emulator's synchronous streams make free).
template <typename U>
struct Scratch {
  U* p = nullptr;
  cudaStream_t s = nullptr;
  Scratch(index_t n, cudaStream_t stream) : s(stream) {
    if (n <= 0) return;
    const size_t bytes = static_cast<size_t>(n) * sizeof(U);
#if !NNFAST_EMULATED && defined(CUDART_VERSION) && CUDART_VERSION >= 11020
    NNFAST_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p), bytes, s));
#else
    NNFAST_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), bytes));
#endif
  }
  ~Scratch() {
    if (!p) return;
#if !NNFAST_EMULATED && defined(CUDART_VERSION) && CUDART_VERSION >= 11020
    cudaFreeAsync(p, s);
#else
    cudaFree(p);
#endif
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

namespace reduce {

constexpr int kThreads = 256;        // threads per block of the sum kernels
constexpr index_t kSumChunk = 4096;  // elements per block of a device-array sum
constexpr index_t kMaxGrid = 65535;

// Every lane of a full warp calls these (blocks are multiples of 32 threads).
template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every lane holds the same bits (IEEE addition commutes)
}
template <typename V>
__device__ __forceinline__ V warp_max(V v) {
  for (int o = 16; o > 0; o >>= 1) {
    const V u = __shfl_xor_sync(0xffffffffu, v, o);
    v = (u > v || u != u) ? u : v;  // NaN wins, as std::max over a row that has one
  }
  return v;
}

// Sum / max over the block, returned to every thread (every warp reduces the warp
// totals itself: no third barrier). sh: 32 shared slots, reusable right after a call.
template <typename V>
__device__ __forceinline__ V block_sum(V v, V* sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // sh may still be read from a previous call
  if (lane == 0) sh[w] = v;
  __syncthreads();
  V t = lane < nw ? sh[lane] : V(0);
  return warp_sum(t);
}
template <typename V>
__device__ __forceinline__ V block_max(V v, V* sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  V t = lane < nw ? sh[lane] : sh[0];  // a repeated slot is neutral for max
  return warp_max(t);
}

// Block sums whose warp totals are added one after another in warp order (not block_sum's
// butterfly): the tree of the norm and dropout kernels, whose bits depend on it. Sums each
// of v... in place, to every thread. sh: 32 slots per value; ends with a barrier, so sh
// may be reused right away.
template <typename S, typename... V>
__device__ __forceinline__ void block_sums_in_warp_order(S* sh, V&... v) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  ((v = warp_sum(v)), ...);
  __syncthreads();  // sh may still be read from a previous call
  if (lane == 0) {
    int k = 0;
    ((sh[32 * k++ + w] = v), ...);
  }
  __syncthreads();
  ((v = 0), ...);
  for (int i = 0; i < nw; ++i) {
    int k = 0;
    ((v += sh[32 * k++ + i]), ...);
  }
  __syncthreads();
}

// The threads that share a row: one warp (kBlock false; a block holds blockDim.x / 32
// rows at a time) or the whole block. The group takes rows first, first + stride, ...
// (a kernel launched with a group per row uses `first` only); its threads take a row's
// elements lane, lane + size, ... Sums and maxima are over the group, to every thread
// (sh: 32 shared slots, used by the block form only).
template <bool kBlock>
struct RowGroup {
  int lane, size;
  index_t first, stride;
  __device__ RowGroup() {
    if (kBlock) {
      lane = threadIdx.x;
      size = blockDim.x;
      first = blockIdx.x;
      stride = gridDim.x;
    } else {
      lane = threadIdx.x & 31;
      size = 32;
      const index_t per = blockDim.x >> 5;
      first = static_cast<index_t>(blockIdx.x) * per + (threadIdx.x >> 5);
      stride = static_cast<index_t>(gridDim.x) * per;
    }
  }
  template <typename V>
  __device__ V sum(V v, V* sh) const {
    if constexpr (kBlock) return block_sum(v, sh);
    else return warp_sum(v);
  }
  template <typename V>
  __device__ V max(V v, V* sh) const {
    if constexpr (kBlock) return block_max(v, sh);
    else return warp_max(v);
  }
};

// out[b] = sum of v[b*chunk, min(n, (b+1)*chunk)), one block per b.
template <typename V>
__global__ void chunk_sums_kernel(V* out, const V* v, index_t n, index_t chunk) {
  __shared__ V sh[32];
  for (index_t b = blockIdx.x; b * chunk < n; b += gridDim.x) {
    const index_t lo = b * chunk, hi = lo + chunk < n ? lo + chunk : n;
    V acc = 0;
    for (index_t i = lo + threadIdx.x; i < hi; i += blockDim.x) acc += v[i];
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) out[b] = acc;
  }
}

// *dst = sum of v[0, n) (device memory), in a fixed tree. n >= 1.
inline void device_sum(double* dst, const double* v, index_t n, cudaStream_t stream) {
  if (n <= kSumChunk) {
    NNFAST_LAUNCH(chunk_sums_kernel<double>, 1, kThreads, 0, stream)(dst, v, n, n);
    NNFAST_CUDA_CHECK_LAUNCH();
    return;
  }
  const index_t nb = (n + kSumChunk - 1) / kSumChunk;
  Scratch<double> part(nb, stream);
  const unsigned grid = static_cast<unsigned>(nb < kMaxGrid ? nb : kMaxGrid);
  NNFAST_LAUNCH(chunk_sums_kernel<double>, grid, kThreads, 0, stream)(part.p, v, n, kSumChunk);
  NNFAST_CUDA_CHECK_LAUNCH();
  device_sum(dst, part.p, nb, stream);
}

}  // namespace reduce
}  // namespace nnfast::cuda

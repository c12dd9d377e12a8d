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

// Sum over the block, returned to every thread. sh: 32 shared slots.
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

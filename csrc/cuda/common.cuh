// Included first by every csrc/cuda/*.cu file. Under nvcc this is the CUDA runtime;
// in an NNFAST_CUDA=EMULATE build (host compiler) it is nnfast's SIMT emulator
// (csrc/cuda/emu), which runs the same kernel source on the CPU with CUDA's semantics.
// Launch with NNFAST_LAUNCH(kernel, grid, block, smem, stream)(args...) and declare
// dynamic shared memory with NNFAST_DYNAMIC_SHARED(T, name): never <<<...>>> directly.
#pragma once
#include "cuda/emu/cuda_compat.h"

#include <stdexcept>
#include <string>

#include "core/math_scalar.h"
#include "nnfast/cuda/common.h"

// Every CUDA call and launch is checked, reporting file and line.
#define NNFAST_CUDA_CHECK(expr)                                                        \
  do {                                                                                 \
    cudaError_t err__ = (expr);                                                        \
    if (err__ != cudaSuccess)                                                          \
      throw std::runtime_error(std::string("[cuda] ") + cudaGetErrorString(err__) +    \
                               " at " + __FILE__ + ":" + std::to_string(__LINE__));    \
  } while (0)

// After a launch: configuration errors surface here, with the launch site.
#define NNFAST_CUDA_CHECK_LAUNCH() NNFAST_CUDA_CHECK(cudaGetLastError())

namespace nnfast {
namespace cuda {
// Blocks for a grid-stride loop over `work` items with `threads` per block: enough to cover the
// work, at least one, at most `max_blocks` (the loop strides over the rest).
inline unsigned grid_stride_blocks(index_t work, int threads, index_t max_blocks = 8192) {
  const index_t b = (work + threads - 1) / threads;
  return static_cast<unsigned>(b < max_blocks ? (b > 0 ? b : 1) : max_blocks);
}
}  // namespace cuda
}  // namespace nnfast

// for (index_t i over [0, n)) as a grid-stride loop: any grid size covers any n.
#define NNFAST_GRID_STRIDE(i, n)                                                          \
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<index_t>(gridDim.x) * blockDim.x)

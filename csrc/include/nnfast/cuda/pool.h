// CUDA pooling and resampling launchers (csrc/cuda/pool.cu): the same names,
// arguments and semantics as nnfast::cpu in nnfast/pool.h, plus a trailing stream.
// Pointers are device pointers. Both devices evaluate core/pool_math.h, so results
// match the CPU's bit for bit; backward is deterministic (one thread per plane).
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/pool.h"

namespace nnfast {
namespace cuda {

template <typename T>
void max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g,
                        cudaStream_t stream = nullptr);
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                         index_t out_plane, cudaStream_t stream = nullptr);
template <typename T>
void max_unpool2d_forward(T* y, const T* x, const std::int64_t* indices, index_t planes, index_t in_plane,
                          index_t out_plane, cudaStream_t stream = nullptr);
template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                           index_t out_plane, cudaStream_t stream = nullptr);
template <typename T>
void avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, bool count_include_pad,
                        index_t divisor_override, cudaStream_t stream = nullptr);
template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g, bool count_include_pad,
                         index_t divisor_override, cudaStream_t stream = nullptr);
template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, cudaStream_t stream = nullptr);
template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g,
                                  cudaStream_t stream = nullptr);
template <typename T>
void adaptive_max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g,
                                 cudaStream_t stream = nullptr);
template <typename T>
void interpolate_forward(T* y, const T* x, index_t planes, const ResampleGeom& g, Resample mode,
                         cudaStream_t stream = nullptr);
template <typename T>
void interpolate_backward(T* dx, const T* dy, index_t planes, const ResampleGeom& g, Resample mode,
                          cudaStream_t stream = nullptr);
template <typename T>
void pixel_shuffle(T* y, const T* x, index_t N, index_t C, index_t H, index_t W, index_t r, bool unshuffle,
                   cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

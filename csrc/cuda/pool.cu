// CUDA pooling and resampling (nnfast/cuda/pool.h), mirroring csrc/cpu/pool.cpp:
// the formulas are core/pool_math.h on both devices.
//   * forward: one thread per output element (grid-stride);
//   * backward: one thread per plane, which zeroes its plane's gradient and visits the
//     output windows in row-major order (no atomics: the same bits as the CPU on every
//     run). Planes are N * C, usually thousands, so this keeps the GPU busy enough for
//     now; a gather formulation per input element would be faster for few planes.
#include "cuda/common.cuh"

#include "core/pool_math.h"
#include "nnfast/cuda/pool.h"

namespace nnfast {
namespace cuda {
namespace pool_k {

constexpr int kThreads = 256;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads, 65535); }


enum class Fwd { Max, Avg, AdaptiveAvg, AdaptiveMax };

template <typename T, Fwd K>
__global__ void pool_forward_kernel(T* y, std::int64_t* idx, const T* x, index_t planes, PoolGeom g,
                                    bool count_include_pad, index_t divisor_override) {
  const index_t out_plane = g.OH * g.OW;
  NNFAST_GRID_STRIDE(e, planes * out_plane) {
    const index_t p = e / out_plane, o = e % out_plane, oh = o / g.OW, ow = o % g.OW;
    const T* xp = x + p * g.H * g.W;
    if (K == Fwd::Max) y[e] = pool_math::max_pool_at(xp, g, oh, ow, idx + e);
    if (K == Fwd::AdaptiveMax) y[e] = pool_math::adaptive_max_at(xp, g, oh, ow, idx + e);
    if (K == Fwd::Avg) y[e] = pool_math::avg_pool_at(xp, g, oh, ow, count_include_pad, divisor_override);
    if (K == Fwd::AdaptiveAvg) y[e] = pool_math::adaptive_avg_at(xp, g, oh, ow);
  }
}

template <typename T>
__global__ void max_backward_kernel(T* dx, const T* dy, const std::int64_t* idx, index_t planes, index_t in_plane,
                                    index_t out_plane) {
  NNFAST_GRID_STRIDE(p, planes) {
    pool_math::max_plane_backward(dx + p * in_plane, dy + p * out_plane, idx + p * out_plane, in_plane, out_plane);
  }
}

template <typename T>
__global__ void unpool_kernel(T* y, const T* x, const std::int64_t* idx, index_t planes, index_t in_plane,
                              index_t out_plane) {
  NNFAST_GRID_STRIDE(p, planes) {
    pool_math::unpool_plane(y + p * out_plane, x + p * in_plane, idx + p * in_plane, in_plane, out_plane);
  }
}

template <typename T>
__global__ void unpool_backward_kernel(T* dx, const T* dy, const std::int64_t* idx, index_t planes, index_t in_plane,
                                       index_t out_plane) {
  NNFAST_GRID_STRIDE(e, planes * in_plane) {
    const index_t p = e / in_plane;
    dx[e] = pool_math::unpool_grad_at(dy + p * out_plane, idx + p * in_plane, e % in_plane, out_plane);
  }
}

template <typename T>
__global__ void avg_backward_kernel(T* dx, const T* dy, index_t planes, PoolGeom g, bool count_include_pad,
                                    index_t divisor_override, bool adaptive) {
  NNFAST_GRID_STRIDE(p, planes) {
    T* d = dx + p * g.H * g.W;
    const T* u = dy + p * g.OH * g.OW;
    if (adaptive)
      pool_math::adaptive_avg_plane_backward(d, u, g);
    else
      pool_math::avg_plane_backward(d, u, g, count_include_pad, divisor_override);
  }
}

template <typename T>
__global__ void interpolate_forward_kernel(T* y, const T* x, index_t planes, ResampleGeom g, Resample mode) {
  const index_t out_plane = g.OH * g.OW;
  NNFAST_GRID_STRIDE(e, planes * out_plane) {
    const index_t p = e / out_plane, o = e % out_plane;
    y[e] = pool_math::interpolate_at(x + p * g.H * g.W, g, o / g.OW, o % g.OW, mode);
  }
}

template <typename T>
__global__ void interpolate_backward_kernel(T* dx, const T* dy, index_t planes, ResampleGeom g, Resample mode) {
  NNFAST_GRID_STRIDE(p, planes) {
    pool_math::interpolate_plane_backward(dx + p * g.H * g.W, dy + p * g.OH * g.OW, g, mode);
  }
}

template <typename T>
__global__ void pixel_shuffle_kernel(T* y, const T* x, index_t n, index_t C, index_t H, index_t W, index_t r,
                                     bool unshuffle) {
  NNFAST_GRID_STRIDE(e, n) {
    const index_t t = pool_math::pixel_shuffle_target(e, C, H, W, r);
    if (unshuffle)
      y[e] = x[t];
    else
      y[t] = x[e];
  }
}


template <typename T, Fwd K>
void launch_forward(T* y, std::int64_t* idx, const T* x, index_t planes, const PoolGeom& g, bool cip, index_t div,
                    cudaStream_t stream) {
  const index_t n = planes * g.OH * g.OW;
  if (n <= 0) return;
  auto* k = pool_forward_kernel<T, K>;
  NNFAST_LAUNCH(k, grid_for(n), kThreads, 0, stream)(y, idx, x, planes, g, cip, div);
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace pool_k

template <typename T>
void max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g,
                        cudaStream_t stream) {
  pool_k::launch_forward<T, pool_k::Fwd::Max>(y, indices, x, planes, g, false, 0, stream);
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                         index_t out_plane, cudaStream_t stream) {
  if (planes <= 0 || in_plane <= 0) return;
  auto* k = pool_k::max_backward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes), pool_k::kThreads, 0, stream)(dx, dy, indices, planes, in_plane,
                                                                          out_plane);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void max_unpool2d_forward(T* y, const T* x, const std::int64_t* indices, index_t planes, index_t in_plane,
                          index_t out_plane, cudaStream_t stream) {
  if (planes <= 0 || out_plane <= 0) return;
  auto* k = pool_k::unpool_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes), pool_k::kThreads, 0, stream)(y, x, indices, planes, in_plane,
                                                                          out_plane);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                           index_t out_plane, cudaStream_t stream) {
  if (planes * in_plane <= 0) return;
  auto* k = pool_k::unpool_backward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes * in_plane), pool_k::kThreads, 0, stream)(dx, dy, indices, planes,
                                                                                     in_plane, out_plane);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, bool count_include_pad,
                        index_t divisor_override, cudaStream_t stream) {
  pool_k::launch_forward<T, pool_k::Fwd::Avg>(y, nullptr, x, planes, g, count_include_pad, divisor_override, stream);
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g, bool count_include_pad,
                         index_t divisor_override, cudaStream_t stream) {
  if (planes <= 0 || g.H * g.W <= 0) return;
  auto* k = pool_k::avg_backward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes), pool_k::kThreads, 0, stream)(dx, dy, planes, g, count_include_pad,
                                                                          divisor_override, false);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, cudaStream_t stream) {
  pool_k::launch_forward<T, pool_k::Fwd::AdaptiveAvg>(y, nullptr, x, planes, g, false, 0, stream);
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g, cudaStream_t stream) {
  if (planes <= 0 || g.H * g.W <= 0) return;
  auto* k = pool_k::avg_backward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes), pool_k::kThreads, 0, stream)(dx, dy, planes, g, false, 0, true);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void adaptive_max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g,
                                 cudaStream_t stream) {
  pool_k::launch_forward<T, pool_k::Fwd::AdaptiveMax>(y, indices, x, planes, g, false, 0, stream);
}

template <typename T>
void interpolate_forward(T* y, const T* x, index_t planes, const ResampleGeom& g, Resample mode,
                         cudaStream_t stream) {
  const index_t n = planes * g.OH * g.OW;
  if (n <= 0) return;
  auto* k = pool_k::interpolate_forward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(n), pool_k::kThreads, 0, stream)(y, x, planes, g, mode);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void interpolate_backward(T* dx, const T* dy, index_t planes, const ResampleGeom& g, Resample mode,
                          cudaStream_t stream) {
  if (planes <= 0 || g.H * g.W <= 0) return;
  auto* k = pool_k::interpolate_backward_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(planes), pool_k::kThreads, 0, stream)(dx, dy, planes, g, mode);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void pixel_shuffle(T* y, const T* x, index_t N, index_t C, index_t H, index_t W, index_t r, bool unshuffle,
                   cudaStream_t stream) {
  const index_t n = N * C * r * r * H * W;
  if (n <= 0) return;
  auto* k = pool_k::pixel_shuffle_kernel<T>;
  NNFAST_LAUNCH(k, pool_k::grid_for(n), pool_k::kThreads, 0, stream)(y, x, n, C, H, W, r, unshuffle);
  NNFAST_CUDA_CHECK_LAUNCH();
}

#define NNFAST_CUDA_POOL_API(T)                                                                                  \
  template void max_pool2d_forward<T>(T*, std::int64_t*, const T*, index_t, const PoolGeom&, cudaStream_t);     \
  template void max_pool2d_backward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t,            \
                                       cudaStream_t);                                                           \
  template void max_unpool2d_forward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t,          \
                                        cudaStream_t);                                                          \
  template void max_unpool2d_backward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t,         \
                                         cudaStream_t);                                                         \
  template void avg_pool2d_forward<T>(T*, const T*, index_t, const PoolGeom&, bool, index_t, cudaStream_t);     \
  template void avg_pool2d_backward<T>(T*, const T*, index_t, const PoolGeom&, bool, index_t, cudaStream_t);    \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, index_t, const PoolGeom&, cudaStream_t);           \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, index_t, const PoolGeom&, cudaStream_t);          \
  template void adaptive_max_pool2d_forward<T>(T*, std::int64_t*, const T*, index_t, const PoolGeom&,           \
                                               cudaStream_t);                                                   \
  template void interpolate_forward<T>(T*, const T*, index_t, const ResampleGeom&, Resample, cudaStream_t);     \
  template void interpolate_backward<T>(T*, const T*, index_t, const ResampleGeom&, Resample, cudaStream_t);    \
  template void pixel_shuffle<T>(T*, const T*, index_t, index_t, index_t, index_t, index_t, bool, cudaStream_t);
NNFAST_CUDA_POOL_API(float)
NNFAST_CUDA_POOL_API(double)
#undef NNFAST_CUDA_POOL_API

}  // namespace cuda
}  // namespace nnfast

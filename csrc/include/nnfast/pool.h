// Pooling and resampling kernels, forward then backward: max / average / adaptive
// pooling, interpolation (nearest, nearest-exact, bilinear / linear) and pixel
// shuffle.
//
// Layout: x is (planes, H, W), C-contiguous, planes = N * C (1-d ops are H = OH = 1).
// Outputs are (planes, OH, OW). Max pooling saves int64 indices (planes, OH, OW):
// the flat h * W + w of the chosen element in its plane, as PyTorch.
// Backward kernels overwrite dx (=). Each plane's gradient is summed by one thread
// over the output windows in row-major order, so results do not depend on the
// thread count. Formulas: core/pool_math.h (shared with the CUDA kernels).
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

// One (H, W) plane pooled to (OH, OW): kernel, stride, padding, dilation per axis
// (adaptive pooling reads only H, W, OH, OW).
struct PoolGeom {
  index_t H, W, OH, OW, kH, kW, sH, sW, pH, pW, dH, dW;
};

// One (H, W) plane resampled to (OH, OW); scale_h / scale_w are the user's
// scale_factor (used for the source ratio as PyTorch does), <= 0 when not given.
struct ResampleGeom {
  index_t H, W, OH, OW;
  double scale_h, scale_w;
};

enum class Resample : int { Nearest = 0, NearestExact = 1, Bilinear = 2, BilinearAlignCorners = 3 };

namespace cpu {
// ---------------------------------------------------------------- max pooling
template <typename T>
void max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g);

// dx (planes, in_plane) = scatter-sum of dy (planes, out_plane) through indices
// (max pooling and adaptive max pooling).
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                         index_t out_plane);

// Max unpooling: y (planes, out_plane) = 0, then y[p, indices[p, i]] = x[p, i] (a later
// duplicate wins; out-of-range indices skipped). Backward: dx[p, i] = dy[p, indices[p, i]].
template <typename T>
void max_unpool2d_forward(T* y, const T* x, const std::int64_t* indices, index_t planes, index_t in_plane,
                          index_t out_plane);

template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                           index_t out_plane);

// ---------------------------------------------------------------- average pooling
// divisor_override <= 0: none.
template <typename T>
void avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, bool count_include_pad,
                        index_t divisor_override);

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g, bool count_include_pad,
                         index_t divisor_override);

// ---------------------------------------------------------------- adaptive pooling
template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g);

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g);

template <typename T>
void adaptive_max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g);

// ---------------------------------------------------------------- interpolation
template <typename T>
void interpolate_forward(T* y, const T* x, index_t planes, const ResampleGeom& g, Resample mode);

template <typename T>
void interpolate_backward(T* dx, const T* dy, index_t planes, const ResampleGeom& g, Resample mode);

// ---------------------------------------------------------------- pixel shuffle
// shuffle: x (N, C r^2, H, W) -> y (N, C, H r, W r); unshuffle: the inverse
// permutation, x (N, C, H r, W r) -> y (N, C r^2, H, W). C, H, W are the small sizes
// in both directions. The backward of one is the other.
template <typename T>
void pixel_shuffle(T* y, const T* x, index_t N, index_t C, index_t H, index_t W, index_t r, bool unshuffle);

}  // namespace cpu
}  // namespace nnfast

// Pooling and resampling formulas shared by the CPU kernels (csrc/cpu/pool.cpp) and
// the CUDA kernels (csrc/cuda/pool.cu), so both devices compute the same bits:
//   * forward: one output element of one (H, W) plane (`*_at`), called per element by
//     a CPU loop or a CUDA thread;
//   * backward: one whole plane (`*_plane_backward`): the plane's input gradient is
//     zeroed, then the output windows are visited in row-major order and each adds
//     its share. One plane belongs to one thread, so every input element's gradient
//     is summed in the same fixed order whatever the thread count or device.
// Window rules, output sizes and index formulas are PyTorch's (ATen's Pool.h,
// AdaptivePooling.h, UpSample.h), including its float32 index arithmetic for
// 'nearest' (PyTorch computes the source index in float, and so do we).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"
#include "nnfast/pool.h"

namespace nnfast {
namespace pool_math {

// ------------------------------------------------------------------ max pooling
// Window of output (oh, ow): rows oh*sH - pH + k*dH (k < kH), inside [0, H); likewise
// columns. The first maximum wins (strict >), NaN propagates (a NaN replaces the
// running maximum, as in PyTorch). The index is the flat h * W + w of the plane.
template <typename T>
NNFAST_HD inline T max_pool_at(const T* x, const PoolGeom& g, index_t oh, index_t ow, std::int64_t* index) {
  const index_t h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
  T best = -INFINITY;
  std::int64_t best_i = -1;
  for (index_t kh = 0; kh < g.kH; ++kh) {
    const index_t h = h0 + kh * g.dH;
    if (h < 0 || h >= g.H) continue;
    for (index_t kw = 0; kw < g.kW; ++kw) {
      const index_t w = w0 + kw * g.dW;
      if (w < 0 || w >= g.W) continue;
      const T v = x[h * g.W + w];
      if (best_i < 0 || v > best || v != v) {
        best = v;
        best_i = h * g.W + w;
        if (v != v) goto done;  // NaN: nothing can replace it
      }
    }
  }
done:
  *index = best_i;
  return best;
}

// dx (in_plane) = sum of dy over the outputs whose saved index is that element
// (max pooling and adaptive max pooling).
template <typename T>
NNFAST_HD inline void max_plane_backward(T* dx, const T* dy, const std::int64_t* index, index_t in_plane,
                                         index_t out_plane) {
  for (index_t i = 0; i < in_plane; ++i) dx[i] = T(0);
  for (index_t o = 0; o < out_plane; ++o) {
    const std::int64_t i = index[o];
    if (i >= 0 && i < in_plane) dx[i] += dy[o];
  }
}

// ------------------------------------------------------------------ average pooling
// PyTorch's window: [oh*sH - pH, min(.. + kH, H + pH)) clipped to [0, H); the divisor
// is divisor_override if > 0, else the window size with padding (count_include_pad)
// or without it.
struct AvgWindow {
  index_t h0, h1, w0, w1;
  double divisor;
};

NNFAST_HD inline AvgWindow avg_window(const PoolGeom& g, index_t oh, index_t ow, bool count_include_pad,
                                      index_t divisor_override) {
  index_t h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
  index_t h1 = h0 + g.kH < g.H + g.pH ? h0 + g.kH : g.H + g.pH;
  index_t w1 = w0 + g.kW < g.W + g.pW ? w0 + g.kW : g.W + g.pW;
  const index_t padded = (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0;
  w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < g.H ? h1 : g.H;
  w1 = w1 < g.W ? w1 : g.W;
  const index_t n = divisor_override > 0 ? divisor_override : (count_include_pad ? padded : (h1 - h0) * (w1 - w0));
  return {h0, h1, w0, w1, static_cast<double>(n)};
}

// The window sum in double, divided once and rounded to T (an empty window gives 0).
template <typename T>
NNFAST_HD inline T window_mean(const T* x, index_t W, index_t h0, index_t h1, index_t w0, index_t w1,
                               double divisor) {
  if (h1 <= h0 || w1 <= w0) return T(0);
  double s = 0;
  for (index_t h = h0; h < h1; ++h)
    for (index_t w = w0; w < w1; ++w) s += static_cast<double>(x[h * W + w]);
  return static_cast<T>(s / divisor);
}

template <typename T>
NNFAST_HD inline T avg_pool_at(const T* x, const PoolGeom& g, index_t oh, index_t ow, bool count_include_pad,
                               index_t divisor_override) {
  const AvgWindow a = avg_window(g, oh, ow, count_include_pad, divisor_override);
  return window_mean(x, g.W, a.h0, a.h1, a.w0, a.w1, a.divisor);
}

// Adds dy / divisor to every element of the window.
template <typename T>
NNFAST_HD inline void window_spread(T* dx, index_t W, index_t h0, index_t h1, index_t w0, index_t w1, T share) {
  for (index_t h = h0; h < h1; ++h)
    for (index_t w = w0; w < w1; ++w) dx[h * W + w] += share;
}

template <typename T>
NNFAST_HD inline void avg_plane_backward(T* dx, const T* dy, const PoolGeom& g, bool count_include_pad,
                                         index_t divisor_override) {
  for (index_t i = 0; i < g.H * g.W; ++i) dx[i] = T(0);
  for (index_t oh = 0; oh < g.OH; ++oh)
    for (index_t ow = 0; ow < g.OW; ++ow) {
      const AvgWindow a = avg_window(g, oh, ow, count_include_pad, divisor_override);
      window_spread(dx, g.W, a.h0, a.h1, a.w0, a.w1, static_cast<T>(static_cast<double>(dy[oh * g.OW + ow]) / a.divisor));
    }
}

// ------------------------------------------------------------------ adaptive pooling
// Output i of `out` covers [floor(i * in / out), ceil((i + 1) * in / out)).
NNFAST_HD inline index_t adaptive_start(index_t i, index_t in, index_t out) { return (i * in) / out; }
NNFAST_HD inline index_t adaptive_end(index_t i, index_t in, index_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
NNFAST_HD inline T adaptive_avg_at(const T* x, const PoolGeom& g, index_t oh, index_t ow) {
  const index_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
  const index_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
  return window_mean(x, g.W, h0, h1, w0, w1, static_cast<double>((h1 - h0) * (w1 - w0)));
}

template <typename T>
NNFAST_HD inline void adaptive_avg_plane_backward(T* dx, const T* dy, const PoolGeom& g) {
  for (index_t i = 0; i < g.H * g.W; ++i) dx[i] = T(0);
  for (index_t oh = 0; oh < g.OH; ++oh) {
    const index_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
    for (index_t ow = 0; ow < g.OW; ++ow) {
      const index_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
      const double n = static_cast<double>((h1 - h0) * (w1 - w0));
      window_spread(dx, g.W, h0, h1, w0, w1, static_cast<T>(static_cast<double>(dy[oh * g.OW + ow]) / n));
    }
  }
}

template <typename T>
NNFAST_HD inline T adaptive_max_at(const T* x, const PoolGeom& g, index_t oh, index_t ow, std::int64_t* index) {
  const index_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
  const index_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
  T best = -INFINITY;
  std::int64_t best_i = -1;
  for (index_t h = h0; h < h1; ++h)
    for (index_t w = w0; w < w1; ++w) {
      const T v = x[h * g.W + w];
      if (best_i < 0 || v > best || v != v) {
        best = v;
        best_i = h * g.W + w;
        if (v != v) goto done;
      }
    }
done:
  *index = best_i;
  return best;
}

// ------------------------------------------------------------------ interpolation
// The source coordinate ratio of one axis (ATen's area_pixel_compute_scale), in the
// arithmetic type A PyTorch uses (float for float32 data, double for float64).
// scale_factor <= 0 means "not given".
template <typename A>
NNFAST_HD inline A resample_ratio(index_t in, index_t out, bool align_corners, double scale_factor) {
  if (align_corners) return out > 1 ? static_cast<A>(in - 1) / static_cast<A>(out - 1) : A(0);
  return scale_factor > 0 ? static_cast<A>(1.0 / scale_factor) : static_cast<A>(in) / static_cast<A>(out);
}

// 'nearest' (floor(dst * ratio), legacy) and 'nearest-exact' (floor((dst + 0.5) * ratio)),
// in float as PyTorch, clamped to in - 1.
NNFAST_HD inline index_t nearest_source(index_t dst, index_t in, index_t out, double scale_factor, bool exact) {
  const float r = resample_ratio<float>(in, out, false, scale_factor);
  index_t s;
  if (exact) {
    s = static_cast<index_t>(floorf(static_cast<float>((static_cast<double>(dst) + 0.5) * static_cast<double>(r))));
  } else if (out == in) {
    s = dst;
  } else if (out == 2 * in) {
    s = dst >> 1;
  } else {
    s = static_cast<index_t>(floorf(static_cast<float>(dst) * r));
  }
  return s < in - 1 ? s : in - 1;
}

// Linear interpolation along one axis: the two source indices i0 <= i1 and their weights.
template <typename A>
struct LinearTap {
  index_t i0, i1;
  A w0, w1;
};

template <typename A>
NNFAST_HD inline LinearTap<A> linear_tap(index_t dst, index_t in, A ratio, bool align_corners) {
  A src = align_corners ? ratio * static_cast<A>(dst) : ratio * (static_cast<A>(dst) + A(0.5)) - A(0.5);
  if (src < A(0)) src = A(0);
  const index_t i0 = static_cast<index_t>(src);
  const index_t i1 = i0 < in - 1 ? i0 + 1 : i0;
  const A l1 = src - static_cast<A>(i0);
  return {i0, i1, A(1) - l1, l1};
}

// The four taps of output (oh, ow) under 'bilinear' (1-d 'linear' is H = OH = 1).
template <typename T>
struct BilinearTaps {
  LinearTap<T> h, w;
};

template <typename T>
NNFAST_HD inline BilinearTaps<T> bilinear_taps(const ResampleGeom& g, index_t oh, index_t ow, bool align_corners) {
  const T rh = resample_ratio<T>(g.H, g.OH, align_corners, g.scale_h);
  const T rw = resample_ratio<T>(g.W, g.OW, align_corners, g.scale_w);
  return {linear_tap<T>(oh, g.H, rh, align_corners), linear_tap<T>(ow, g.W, rw, align_corners)};
}

template <typename T>
NNFAST_HD inline T interpolate_at(const T* x, const ResampleGeom& g, index_t oh, index_t ow, Resample mode) {
  if (mode == Resample::Nearest || mode == Resample::NearestExact) {
    const bool exact = mode == Resample::NearestExact;
    return x[nearest_source(oh, g.H, g.OH, g.scale_h, exact) * g.W + nearest_source(ow, g.W, g.OW, g.scale_w, exact)];
  }
  const BilinearTaps<T> t = bilinear_taps<T>(g, oh, ow, mode == Resample::BilinearAlignCorners);
  const T* r0 = x + t.h.i0 * g.W;
  const T* r1 = x + t.h.i1 * g.W;
  return t.h.w0 * (t.w.w0 * r0[t.w.i0] + t.w.w1 * r0[t.w.i1]) + t.h.w1 * (t.w.w0 * r1[t.w.i0] + t.w.w1 * r1[t.w.i1]);
}

template <typename T>
NNFAST_HD inline void interpolate_plane_backward(T* dx, const T* dy, const ResampleGeom& g, Resample mode) {
  for (index_t i = 0; i < g.H * g.W; ++i) dx[i] = T(0);
  const bool nearest = mode == Resample::Nearest || mode == Resample::NearestExact;
  const bool exact = mode == Resample::NearestExact;
  for (index_t oh = 0; oh < g.OH; ++oh)
    for (index_t ow = 0; ow < g.OW; ++ow) {
      const T d = dy[oh * g.OW + ow];
      if (nearest) {
        dx[nearest_source(oh, g.H, g.OH, g.scale_h, exact) * g.W + nearest_source(ow, g.W, g.OW, g.scale_w, exact)] += d;
        continue;
      }
      const BilinearTaps<T> t = bilinear_taps<T>(g, oh, ow, mode == Resample::BilinearAlignCorners);
      T* r0 = dx + t.h.i0 * g.W;
      T* r1 = dx + t.h.i1 * g.W;
      r0[t.w.i0] += t.h.w0 * t.w.w0 * d;
      r0[t.w.i1] += t.h.w0 * t.w.w1 * d;
      r1[t.w.i0] += t.h.w1 * t.w.w0 * d;
      r1[t.w.i1] += t.h.w1 * t.w.w1 * d;
    }
}

// ------------------------------------------------------------------ pixel shuffle
// Element e of the (N, C r^2, H, W) layout <-> its place in (N, C, H r, W r):
// channel c r^2 + i r + j at (h, w) goes to (c, h r + i, w r + j).
NNFAST_HD inline index_t pixel_shuffle_target(index_t e, index_t C, index_t H, index_t W, index_t r) {
  const index_t w = e % W;
  index_t t = e / W;
  const index_t h = t % H;
  t /= H;
  const index_t j = t % r;
  t /= r;
  const index_t i = t % r;
  t /= r;  // t = n * C + c
  return ((t * H + h) * r + i) * (W * r) + w * r + j;
}

}  // namespace pool_math
}  // namespace nnfast

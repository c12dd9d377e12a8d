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
// The taps k in [lo, hi) of a window starting at `start` (k * d steps, k < K) that fall
// inside [0, n); the common interior case costs no division.
NNFAST_HD inline void window_taps(index_t start, index_t K, index_t d, index_t n, index_t* lo, index_t* hi) {
  if (start >= 0 && start + (K - 1) * d < n) {
    *lo = 0;
    *hi = K;
    return;
  }
  const index_t l = start < 0 ? (-start + d - 1) / d : 0;
  index_t h = n - start <= 0 ? 0 : (n - start + d - 1) / d;
  h = h < K ? h : K;
  *lo = l;
  *hi = h > l ? h : l;
}

// The maximum of rows h0 + k dH (k in [a0, a1)) x columns w0 + k dW (k in [b0, b1)) and its
// flat index h * W + w, with PyTorch's rule `v > best || isnan(v)`: the first maximum wins and
// NaN propagates (the last NaN's index). An empty window gives -inf and index -1.
template <typename T>
NNFAST_HD inline T window_max(const T* x, index_t W, index_t h0, index_t dH, index_t a0, index_t a1, index_t w0,
                              index_t dW, index_t b0, index_t b1, std::int64_t* index) {
  if (a0 >= a1 || b0 >= b1) {
    *index = -1;
    return -INFINITY;
  }
  std::int64_t bi = (h0 + a0 * dH) * W + w0 + b0 * dW;
  T best = x[bi];
  for (index_t kh = a0; kh < a1; ++kh) {
    const index_t row = (h0 + kh * dH) * W + w0;
    for (index_t kw = b0; kw < b1; ++kw) {
      const index_t i = row + kw * dW;
      const T v = x[i];
      const bool take = (v > best) | (v != v);  // non-short-circuit: selects, not unpredictable branches
      best = take ? v : best;
      bi = take ? i : bi;
    }
  }
  *index = bi;
  return best;
}

// Window of output (oh, ow): rows oh*sH - pH + k*dH (k < kH), inside [0, H); likewise columns.
template <typename T>
NNFAST_HD inline T max_pool_at(const T* x, const PoolGeom& g, index_t oh, index_t ow, std::int64_t* index) {
  const index_t h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
  index_t a0, a1, b0, b1;
  window_taps(h0, g.kH, g.dH, g.H, &a0, &a1);
  window_taps(w0, g.kW, g.dW, g.W, &b0, &b1);
  return window_max(x, g.W, h0, g.dH, a0, a1, w0, g.dW, b0, b1, index);
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

// Max unpooling of one plane: y = 0, then y[index[i]] = x[i] in order (a later duplicate
// index wins, as PyTorch's CPU loop); indices outside [0, out_plane) are skipped (Python
// rejects them before the kernel runs).
template <typename T>
NNFAST_HD inline void unpool_plane(T* y, const T* x, const std::int64_t* index, index_t in_plane, index_t out_plane) {
  for (index_t o = 0; o < out_plane; ++o) y[o] = T(0);
  for (index_t i = 0; i < in_plane; ++i) {
    const std::int64_t o = index[i];
    if (o >= 0 && o < out_plane) y[o] = x[i];
  }
}

// Its backward at input element i: dy at the element's target (0 when skipped).
template <typename T>
NNFAST_HD inline T unpool_grad_at(const T* dy, const std::int64_t* index, index_t i, index_t out_plane) {
  const std::int64_t o = index[i];
  return o >= 0 && o < out_plane ? dy[o] : T(0);
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

// The window sum in double, divided once and rounded to T (an empty window gives 0). Four
// partial sums over columns w0 + 4j + k (then (s0 + s1) + (s2 + s3)): independent add chains
// for long windows (global pooling); windows narrower than 4 use s0 only.
template <typename T>
NNFAST_HD inline T window_mean(const T* x, index_t W, index_t h0, index_t h1, index_t w0, index_t w1,
                               double divisor) {
  if (h1 <= h0 || w1 <= w0) return T(0);
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (index_t h = h0; h < h1; ++h) {
    const T* r = x + h * W;
    index_t w = w0;
    for (; w + 4 <= w1; w += 4) {
      s0 += static_cast<double>(r[w]);
      s1 += static_cast<double>(r[w + 1]);
      s2 += static_cast<double>(r[w + 2]);
      s3 += static_cast<double>(r[w + 3]);
    }
    for (; w < w1; ++w) s0 += static_cast<double>(r[w]);
  }
  return static_cast<T>(((s0 + s1) + (s2 + s3)) / divisor);
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

// Sum of n contiguous values in blocks of 256: in each block, lane l (of 16) of four
// T accumulators j adds x[k + 16 j + l] for k = block start, +64, +128, +192; the lanes
// (a0 + a1) + (a2 + a3) are added into 16 double sums; then the double sums in lane
// order, then the tail. The CPU runs this very order with vectors (cpu/pool.cpp
// span_sum), CUDA threads with these loops: the same bits on both devices.
template <typename T>
NNFAST_HD inline double span_sum_blocked(const T* x, index_t n) {
  double acc[16];
  for (int l = 0; l < 16; ++l) acc[l] = 0.0;
  index_t i = 0;
  for (; i + 256 <= n; i += 256) {
    T a[4][16];
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 16; ++l) a[j][l] = T(0);
    for (index_t k = i; k < i + 256; k += 64)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 16; ++l) a[j][l] = a[j][l] + x[k + 16 * j + l];
    for (int l = 0; l < 16; ++l) acc[l] = acc[l] + static_cast<double>((a[0][l] + a[1][l]) + (a[2][l] + a[3][l]));
  }
  double s = 0;
  for (int l = 0; l < 16; ++l) s += acc[l];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

template <typename T>
NNFAST_HD inline T adaptive_avg_at(const T* x, const PoolGeom& g, index_t oh, index_t ow) {
  const index_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
  const index_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
  if (w0 == 0 && w1 == g.W) {  // whole rows (OW = 1, global pooling): one contiguous run
    const index_t cnt = (h1 - h0) * g.W;
    return cnt > 0 ? static_cast<T>(span_sum_blocked(x + h0 * g.W, cnt) / static_cast<double>(cnt)) : T(0);
  }
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
  return window_max(x, g.W, h0, 1, 0, h1 - h0, w0, 1, 0, w1 - w0, index);
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

// The taps of output row / column `dst` of one axis under 'bilinear' / 'linear' (1-d is
// H = OH = 1). The CPU driver tabulates them once per call; CUDA threads compute their own.
template <typename T>
NNFAST_HD inline LinearTap<T> axis_tap(index_t dst, index_t in, index_t out, double scale_factor, bool align_corners) {
  return linear_tap<T>(dst, in, resample_ratio<T>(in, out, align_corners, scale_factor), align_corners);
}

// One bilinear output from source rows r0 (tap h.i0) and r1 (tap h.i1); the one formula of
// forward on both devices.
template <typename T>
NNFAST_HD inline T bilinear_combine(const T* r0, const T* r1, const LinearTap<T>& h, const LinearTap<T>& w) {
  return h.w0 * (w.w0 * r0[w.i0] + w.w1 * r0[w.i1]) + h.w1 * (w.w0 * r1[w.i0] + w.w1 * r1[w.i1]);
}

// Backward of bilinear_combine: d's shares added to the four source elements, in this order.
template <typename T>
NNFAST_HD inline void bilinear_spread(T* r0, T* r1, const LinearTap<T>& h, const LinearTap<T>& w, T d) {
  r0[w.i0] += h.w0 * w.w0 * d;
  r0[w.i1] += h.w0 * w.w1 * d;
  r1[w.i0] += h.w1 * w.w0 * d;
  r1[w.i1] += h.w1 * w.w1 * d;
}

NNFAST_HD inline bool is_nearest(Resample mode) { return mode == Resample::Nearest || mode == Resample::NearestExact; }

template <typename T>
NNFAST_HD inline T interpolate_at(const T* x, const ResampleGeom& g, index_t oh, index_t ow, Resample mode) {
  if (is_nearest(mode)) {
    const bool exact = mode == Resample::NearestExact;
    return x[nearest_source(oh, g.H, g.OH, g.scale_h, exact) * g.W + nearest_source(ow, g.W, g.OW, g.scale_w, exact)];
  }
  const bool align = mode == Resample::BilinearAlignCorners;
  const LinearTap<T> h = axis_tap<T>(oh, g.H, g.OH, g.scale_h, align);
  const LinearTap<T> w = axis_tap<T>(ow, g.W, g.OW, g.scale_w, align);
  return bilinear_combine(x + h.i0 * g.W, x + h.i1 * g.W, h, w);
}

// The CUDA backward (one thread per plane); the CPU driver runs the same loop over tabulated taps.
template <typename T>
NNFAST_HD inline void interpolate_plane_backward(T* dx, const T* dy, const ResampleGeom& g, Resample mode) {
  for (index_t i = 0; i < g.H * g.W; ++i) dx[i] = T(0);
  const bool exact = mode == Resample::NearestExact;
  const bool align = mode == Resample::BilinearAlignCorners;
  for (index_t oh = 0; oh < g.OH; ++oh) {
    if (is_nearest(mode)) {
      T* row = dx + nearest_source(oh, g.H, g.OH, g.scale_h, exact) * g.W;
      for (index_t ow = 0; ow < g.OW; ++ow) row[nearest_source(ow, g.W, g.OW, g.scale_w, exact)] += dy[oh * g.OW + ow];
      continue;
    }
    const LinearTap<T> h = axis_tap<T>(oh, g.H, g.OH, g.scale_h, align);
    for (index_t ow = 0; ow < g.OW; ++ow)
      bilinear_spread(dx + h.i0 * g.W, dx + h.i1 * g.W, h, axis_tap<T>(ow, g.W, g.OW, g.scale_w, align),
                      dy[oh * g.OW + ow]);
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

// Pooling and resampling on the CPU (nnfast/pool.h): the drivers. The per-element
// forward and per-plane backward formulas are core/pool_math.h, shared with the
// CUDA kernels. Forward splits the (plane, output row) pairs over the threads;
// backward gives each thread whole planes (a plane's gradient is summed by one
// thread in a fixed order: deterministic for any thread count).
#include "nnfast/pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/parallel_for.h"
#include "core/pool_math.h"

namespace nnfast::cpu {
namespace {

// Split `items` of `work_per_item` elements each so a chunk has >= ~32K elements.
inline index_t grain_for(index_t work_per_item) {
  return std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(1, work_per_item));
}

// y[p, oh, ow] = f(x plane p, oh, ow, &index) over every output row (plane, oh).
template <typename T, typename F>
void forward_rows(T* y, std::int64_t* idx, const T* x, index_t planes, index_t in_plane, index_t OH, index_t OW,
                  index_t window, F&& f) {
  parallel_for(planes * OH, grain_for(OW * std::max<index_t>(1, window)), [&](index_t lo, index_t hi) {
    for (index_t r = lo; r < hi; ++r) {
      const index_t p = r / OH, oh = r % OH;
      const T* xp = x + p * in_plane;
      T* yr = y + r * OW;
      std::int64_t* ir = idx ? idx + r * OW : nullptr;
      for (index_t ow = 0; ow < OW; ++ow) yr[ow] = f(xp, oh, ow, ir ? ir + ow : nullptr);
    }
  });
}

// mask (all ones or zero) ? a : b on the bit patterns of floats (no branch).
template <typename T>
inline T blend_bits(std::int64_t mask, T a, T b) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U m = static_cast<U>(mask);
  const U r = (ua & m) | (ub & ~m);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// Each thread takes whole planes: f(p).
template <typename F>
void per_plane(index_t planes, index_t work_per_plane, F&& f) {
  parallel_for(planes, grain_for(work_per_plane), [&](index_t lo, index_t hi) {
    for (index_t p = lo; p < hi; ++p) f(p);
  });
}

}  // namespace

// Max pooling, one output row at a time. Border columns (windows clipped by padding) go
// through pool_math::max_pool_at; the interior columns are updated tap by tap (taps in the
// same row-major order as max_pool_at, so the same bits and indices): the compare / select
// chains of neighbouring outputs are independent and overlap in the pipeline, instead of
// one serial chain per window (3x faster on 2x2 / 3x3 windows; this file is built for the
// baseline ISA, so the column loop stays scalar).
template <typename T>
void max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g) {
  const index_t OH = g.OH, OW = g.OW, W = g.W, in_plane = g.H * W;
  // Interior columns: ow * sW - pW >= 0 and ow * sW - pW + (kW - 1) dW < W.
  const index_t ow_lo = std::min<index_t>(OW, (g.pW + g.sW - 1) / g.sW);
  const index_t last = W - 1 - (g.kW - 1) * g.dW + g.pW;  // largest allowed ow * sW
  const index_t ow_hi = std::max<index_t>(ow_lo, std::min<index_t>(OW, last < 0 ? 0 : last / g.sW + 1));
  parallel_for(planes * OH, grain_for(OW * g.kH * g.kW), [&](index_t lo, index_t hi) {
    for (index_t r = lo; r < hi; ++r) {
      const index_t p = r / OH, oh = r % OH;
      const T* xp = x + p * in_plane;
      T* yr = y + r * OW;
      std::int64_t* ir = indices + r * OW;
      for (index_t ow = 0; ow < ow_lo; ++ow) yr[ow] = pool_math::max_pool_at(xp, g, oh, ow, ir + ow);
      for (index_t ow = ow_hi; ow < OW; ++ow) yr[ow] = pool_math::max_pool_at(xp, g, oh, ow, ir + ow);
      if (ow_lo >= ow_hi) continue;
      const index_t h0 = oh * g.sH - g.pH;
      index_t a0, a1;
      pool_math::window_taps(h0, g.kH, g.dH, g.H, &a0, &a1);
      if (a0 >= a1) {  // no row of the window inside the input
        for (index_t ow = ow_lo; ow < ow_hi; ++ow) yr[ow] = -INFINITY, ir[ow] = -1;
        continue;
      }
      const index_t sW = g.sW, col0 = -g.pW;  // window of ow starts at column ow * sW + col0
      const index_t first = (h0 + a0 * g.dH) * W + col0;
      for (index_t ow = ow_lo; ow < ow_hi; ++ow) {
        yr[ow] = xp[first + ow * sW];
        ir[ow] = first + ow * sW;
      }
      for (index_t kh = a0; kh < a1; ++kh)
        for (index_t kw = 0; kw < g.kW; ++kw) {
          const index_t base = (h0 + kh * g.dH) * W + col0 + kw * g.dW;
          for (index_t ow = ow_lo; ow < ow_hi; ++ow) {
            const index_t i = base + ow * sW;
            const T v = xp[i];
            // take = v > best || isnan(v), applied with bit masks: on random data a branch
            // here mispredicts every other element (GCC emits one for a float ternary).
            const std::int64_t take = -static_cast<std::int64_t>((v > yr[ow]) | (v != v));
            yr[ow] = blend_bits(take, v, yr[ow]);
            ir[ow] = (i & take) | (ir[ow] & ~take);
          }
        }
    }
  });
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                         index_t out_plane) {
  per_plane(planes, in_plane + out_plane, [&](index_t p) {
    pool_math::max_plane_backward(dx + p * in_plane, dy + p * out_plane, indices + p * out_plane, in_plane, out_plane);
  });
}

template <typename T>
void max_unpool2d_forward(T* y, const T* x, const std::int64_t* indices, index_t planes, index_t in_plane,
                          index_t out_plane) {
  per_plane(planes, in_plane + out_plane, [&](index_t p) {
    pool_math::unpool_plane(y + p * out_plane, x + p * in_plane, indices + p * in_plane, in_plane, out_plane);
  });
}

template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const std::int64_t* indices, index_t planes, index_t in_plane,
                           index_t out_plane) {
  per_plane(planes, 2 * in_plane, [&](index_t p) {
    const T* u = dy + p * out_plane;
    const std::int64_t* ip = indices + p * in_plane;
    T* d = dx + p * in_plane;
    for (index_t i = 0; i < in_plane; ++i) d[i] = pool_math::unpool_grad_at(u, ip, i, out_plane);
  });
}

template <typename T>
void avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g, bool count_include_pad,
                        index_t divisor_override) {
  forward_rows(y, static_cast<std::int64_t*>(nullptr), x, planes, g.H * g.W, g.OH, g.OW, g.kH * g.kW,
               [&](const T* xp, index_t oh, index_t ow, std::int64_t*) {
                 return pool_math::avg_pool_at(xp, g, oh, ow, count_include_pad, divisor_override);
               });
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g, bool count_include_pad,
                         index_t divisor_override) {
  per_plane(planes, g.H * g.W + g.OH * g.OW * g.kH * g.kW, [&](index_t p) {
    pool_math::avg_plane_backward(dx + p * g.H * g.W, dy + p * g.OH * g.OW, g, count_include_pad, divisor_override);
  });
}

// pool_math::span_sum_blocked with vectors: lane l of a0..a3 is the scalar form's
// a[j][l], so the same IEEE operations in the same order, the same bits as the CUDA
// kernel. This file is built for the baseline ISA: GCC vector types give SSE2, ~4x
// the scalar double loop.
template <typename T>
double span_sum(const T* x, index_t n) {
  typedef T VT __attribute__((vector_size(16 * sizeof(T))));
  typedef double VD __attribute__((vector_size(16 * sizeof(double))));
  constexpr index_t kBlock = 256;
  VD acc{};
  index_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    VT a0{}, a1{}, a2{}, a3{};
    for (index_t k = i; k < i + kBlock; k += 64) {
      VT v0, v1, v2, v3;
      std::memcpy(&v0, x + k, sizeof(VT));
      std::memcpy(&v1, x + k + 16, sizeof(VT));
      std::memcpy(&v2, x + k + 32, sizeof(VT));
      std::memcpy(&v3, x + k + 48, sizeof(VT));
      a0 += v0, a1 += v1, a2 += v2, a3 += v3;
    }
    acc += __builtin_convertvector((a0 + a1) + (a2 + a3), VD);
  }
  double s = 0;
  for (int l = 0; l < 16; ++l) s += acc[l];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g) {
  if (g.OW == 1 && g.W > 0) {
    // A window spanning whole rows is one contiguous run of the plane (global pooling: OH = OW = 1).
    parallel_for(planes * g.OH, grain_for(g.H * g.W / std::max<index_t>(1, g.OH) + g.W), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const index_t p = r / g.OH, oh = r % g.OH;
        const index_t h0 = pool_math::adaptive_start(oh, g.H, g.OH), h1 = pool_math::adaptive_end(oh, g.H, g.OH);
        const index_t cnt = (h1 - h0) * g.W;
        y[r] = cnt > 0 ? static_cast<T>(span_sum(x + p * g.H * g.W + h0 * g.W, cnt) / static_cast<double>(cnt)) : T(0);
      }
    });
    return;
  }
  const index_t window = (g.H / std::max<index_t>(1, g.OH) + 1) * (g.W / std::max<index_t>(1, g.OW) + 1);
  forward_rows(y, static_cast<std::int64_t*>(nullptr), x, planes, g.H * g.W, g.OH, g.OW, window,
               [&g](const T* xp, index_t oh, index_t ow, std::int64_t*) {
                 return pool_math::adaptive_avg_at(xp, g, oh, ow);
               });
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, index_t planes, const PoolGeom& g) {
  per_plane(planes, 2 * g.H * g.W + g.OH * g.OW, [&](index_t p) {
    pool_math::adaptive_avg_plane_backward(dx + p * g.H * g.W, dy + p * g.OH * g.OW, g);
  });
}

template <typename T>
void adaptive_max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g) {
  const index_t window = (g.H / std::max<index_t>(1, g.OH) + 1) * (g.W / std::max<index_t>(1, g.OW) + 1);
  forward_rows(y, indices, x, planes, g.H * g.W, g.OH, g.OW, window,
               [&g](const T* xp, index_t oh, index_t ow, std::int64_t* i) {
                 return pool_math::adaptive_max_at(xp, g, oh, ow, i);
               });
}

// Interpolation: the source index / taps of every output row and column are tabulated
// once per call (core/pool_math.h computes each entry, as the CUDA threads do), so the
// loops over planes only gather and combine.
namespace {

struct NearestTable {
  std::vector<index_t> row, col;  // source row of each oh, source column of each ow
  NearestTable(const ResampleGeom& g, bool exact) : row(g.OH), col(g.OW) {
    for (index_t o = 0; o < g.OH; ++o) row[o] = pool_math::nearest_source(o, g.H, g.OH, g.scale_h, exact);
    for (index_t o = 0; o < g.OW; ++o) col[o] = pool_math::nearest_source(o, g.W, g.OW, g.scale_w, exact);
  }
};

template <typename T>
struct LinearTable {
  std::vector<pool_math::LinearTap<T>> row, col;
  LinearTable(const ResampleGeom& g, bool align) : row(g.OH), col(g.OW) {
    for (index_t o = 0; o < g.OH; ++o) row[o] = pool_math::axis_tap<T>(o, g.H, g.OH, g.scale_h, align);
    for (index_t o = 0; o < g.OW; ++o) col[o] = pool_math::axis_tap<T>(o, g.W, g.OW, g.scale_w, align);
  }
};

}  // namespace

template <typename T>
void interpolate_forward(T* y, const T* x, index_t planes, const ResampleGeom& g, Resample mode) {
  const index_t in_plane = g.H * g.W, OH = g.OH, OW = g.OW;
  if (pool_math::is_nearest(mode)) {
    const NearestTable t(g, mode == Resample::NearestExact);
    parallel_for(planes * OH, grain_for(OW), [&](index_t lo, index_t hi) {
      for (index_t r = lo; r < hi; ++r) {
        const T* src = x + (r / OH) * in_plane + t.row[r % OH] * g.W;
        T* yr = y + r * OW;
        for (index_t ow = 0; ow < OW; ++ow) yr[ow] = src[t.col[ow]];
      }
    });
    return;
  }
  const LinearTable<T> t(g, mode == Resample::BilinearAlignCorners);
  parallel_for(planes * OH, grain_for(4 * OW), [&](index_t lo, index_t hi) {
    for (index_t r = lo; r < hi; ++r) {
      const auto& h = t.row[r % OH];
      const T* xp = x + (r / OH) * in_plane;
      const T* r0 = xp + h.i0 * g.W;
      const T* r1 = xp + h.i1 * g.W;
      T* yr = y + r * OW;
      for (index_t ow = 0; ow < OW; ++ow) yr[ow] = pool_math::bilinear_combine(r0, r1, h, t.col[ow]);
    }
  });
}

// The loop of pool_math::interpolate_plane_backward over the tables (the same order and bits).
template <typename T>
void interpolate_backward(T* dx, const T* dy, index_t planes, const ResampleGeom& g, Resample mode) {
  const index_t in_plane = g.H * g.W, OH = g.OH, OW = g.OW;
  if (pool_math::is_nearest(mode)) {
    const NearestTable t(g, mode == Resample::NearestExact);
    per_plane(planes, in_plane + OH * OW, [&](index_t p) {
      T* d = dx + p * in_plane;
      const T* u = dy + p * OH * OW;
      std::fill(d, d + in_plane, T(0));
      for (index_t oh = 0; oh < OH; ++oh) {
        T* row = d + t.row[oh] * g.W;
        const T* ur = u + oh * OW;
        for (index_t ow = 0; ow < OW; ++ow) row[t.col[ow]] += ur[ow];
      }
    });
    return;
  }
  const LinearTable<T> t(g, mode == Resample::BilinearAlignCorners);
  per_plane(planes, in_plane + 4 * OH * OW, [&](index_t p) {
    T* d = dx + p * in_plane;
    const T* u = dy + p * OH * OW;
    std::fill(d, d + in_plane, T(0));
    for (index_t oh = 0; oh < OH; ++oh) {
      const auto& h = t.row[oh];
      T* r0 = d + h.i0 * g.W;
      T* r1 = d + h.i1 * g.W;
      for (index_t ow = 0; ow < OW; ++ow) pool_math::bilinear_spread(r0, r1, h, t.col[ow], u[oh * OW + ow]);
    }
  });
}

template <typename T>
void pixel_shuffle(T* y, const T* x, index_t N, index_t C, index_t H, index_t W, index_t r, bool unshuffle) {
  const index_t n = N * C * r * r * H * W;
  // Rows of W elements of the (N, C r^2, H, W) layout: each maps to W elements r apart.
  parallel_for(n / std::max<index_t>(1, W), grain_for(W), [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) {
      const index_t e = row * W;
      const index_t t = pool_math::pixel_shuffle_target(e, C, H, W, r);
      if (unshuffle) {
        for (index_t w = 0; w < W; ++w) y[e + w] = x[t + w * r];
      } else {
        for (index_t w = 0; w < W; ++w) y[t + w * r] = x[e + w];
      }
    }
  });
}

#define NNFAST_POOL_API(T)                                                                                       \
  template void max_pool2d_forward<T>(T*, std::int64_t*, const T*, index_t, const PoolGeom&);                   \
  template void max_pool2d_backward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t);           \
  template void max_unpool2d_forward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t);          \
  template void max_unpool2d_backward<T>(T*, const T*, const std::int64_t*, index_t, index_t, index_t);         \
  template void avg_pool2d_forward<T>(T*, const T*, index_t, const PoolGeom&, bool, index_t);                   \
  template void avg_pool2d_backward<T>(T*, const T*, index_t, const PoolGeom&, bool, index_t);                  \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, index_t, const PoolGeom&);                         \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, index_t, const PoolGeom&);                        \
  template void adaptive_max_pool2d_forward<T>(T*, std::int64_t*, const T*, index_t, const PoolGeom&);          \
  template void interpolate_forward<T>(T*, const T*, index_t, const ResampleGeom&, Resample);                   \
  template void interpolate_backward<T>(T*, const T*, index_t, const ResampleGeom&, Resample);                  \
  template void pixel_shuffle<T>(T*, const T*, index_t, index_t, index_t, index_t, index_t, bool);
NNFAST_POOL_API(float)
NNFAST_POOL_API(double)
#undef NNFAST_POOL_API

}  // namespace nnfast::cpu

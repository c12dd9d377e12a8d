// Pooling and resampling on the CPU (nnfast/pool.h): the drivers. The per-element
// forward and per-plane backward formulas are core/pool_math.h, shared with the
// CUDA kernels. Forward splits the (plane, output row) pairs over the threads;
// backward gives each thread whole planes (a plane's gradient is summed by one
// thread in a fixed order: deterministic for any thread count).
#include "nnfast/pool.h"

#include <algorithm>

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

// Each thread takes whole planes: f(p).
template <typename F>
void per_plane(index_t planes, index_t work_per_plane, F&& f) {
  parallel_for(planes, grain_for(work_per_plane), [&](index_t lo, index_t hi) {
    for (index_t p = lo; p < hi; ++p) f(p);
  });
}

}  // namespace

template <typename T>
void max_pool2d_forward(T* y, std::int64_t* indices, const T* x, index_t planes, const PoolGeom& g) {
  forward_rows(y, indices, x, planes, g.H * g.W, g.OH, g.OW, g.kH * g.kW,
               [&g](const T* xp, index_t oh, index_t ow, std::int64_t* i) {
                 return pool_math::max_pool_at(xp, g, oh, ow, i);
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

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, index_t planes, const PoolGeom& g) {
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

template <typename T>
void interpolate_forward(T* y, const T* x, index_t planes, const ResampleGeom& g, Resample mode) {
  forward_rows(y, static_cast<std::int64_t*>(nullptr), x, planes, g.H * g.W, g.OH, g.OW, 4,
               [&](const T* xp, index_t oh, index_t ow, std::int64_t*) {
                 return pool_math::interpolate_at(xp, g, oh, ow, mode);
               });
}

template <typename T>
void interpolate_backward(T* dx, const T* dy, index_t planes, const ResampleGeom& g, Resample mode) {
  per_plane(planes, g.H * g.W + 4 * g.OH * g.OW, [&](index_t p) {
    pool_math::interpolate_plane_backward(dx + p * g.H * g.W, dy + p * g.OH * g.OW, g, mode);
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

// Pointwise losses l(x, y) (MSE, L1, Huber, SmoothL1, BCE, BCEWithLogits,
// KLDiv, Perceptron), forward then backward, over (R, K) strided operands.
//
// The flat index i = r*K + k runs in fixed blocks of kBlock elements; a
// reduced loss adds per-block double sums in block order, so it is the same
// for any thread count. Each loss is one small struct with value() and
// grad(); the loops are instantiated per loss so the compiler inlines it.
// Both sides of every select are computed, so the compiler may evaluate FP
// operations the scalar code would have skipped. -fno-trapping-math permits
// that (it changes no result, only assumes FP exceptions do not trap) and lets
// GCC vectorize the select-heavy loss loops; it is not fast-math.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel_for.h"
#include "core/vec_math.h"
#include "nnfast/loss.h"

namespace nnfast::cpu {
namespace {

constexpr index_t kBlock = 8192;

namespace simd = ::nnfast::NNFAST_VM_NS::simd;
namespace vm = ::nnfast::NNFAST_VM_NS::vm;

// out[j] = f(x[j]) for j < n, f a lane-generic function of core/vec_math.h, on
// baseline registers (the tail padded with 1, a value every f here accepts).
template <typename T, typename F>
inline void map_lanes(T* out, const T* x, index_t n, F f) {
  using V = simd::Native<T>;
  constexpr index_t W = simd::kLanes<T>;
  index_t j = 0;
  for (; j + W <= n; j += W) simd::store(out + j, f(simd::load<V>(x + j)));
  if (j < n) simd::store_n(out + j, f(simd::load_n<V>(x + j, n - j, T(1))), n - j);
}

template <typename T>
inline T sign_of(T d) { return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0)); }

// Each loss: value(x, y, pw, param, a, b) and grad(x, y, pw, param, a, b, &gx,
// &gy), plain algebra; the optional weight w multiplies both outside. Losses
// with transcendental parts set kPrep and compute them first, per chunk, into
// a and b with prep(): one short loop per function (exp, log, log1p), because
// GCC vectorizes each of those alone but gives up on the combined loop body.
struct NoPrep {
  static constexpr bool kPrep = false;
  template <typename T> static void prep(const T*, const T*, T*, T*, index_t) {}
};
struct MSE : NoPrep {
  template <typename T> static T value(T x, T y, T, T, T, T) { T d = x - y; return d * d; }
  template <typename T> static void grad(T x, T y, T, T, T, T, T& gx, T& gy) {
    T d = T(2) * (x - y);
    gx = d;
    gy = -d;
  }
};
struct L1 : NoPrep {
  template <typename T> static T value(T x, T y, T, T, T, T) { return std::fabs(x - y); }
  template <typename T> static void grad(T x, T y, T, T, T, T, T& gx, T& gy) {
    T s = sign_of(x - y);
    gx = s;
    gy = -s;
  }
};
// Huber and SmoothL1 through c = min(|d|, delta): c (|d| - c/2) equals both
// branches, so the loops vectorize without a select (and never mispredict).
struct Huber : NoPrep {
  template <typename T> static T value(T x, T y, T, T delta, T, T) {
    T a = std::fabs(x - y), c = std::min(a, delta);
    return c * (a - T(0.5) * c);
  }
  template <typename T> static void grad(T x, T y, T, T delta, T, T, T& gx, T& gy) {
    T g = std::max(-delta, std::min(x - y, delta));
    gx = g;
    gy = -g;
  }
};
struct SmoothL1 : NoPrep {  // beta > 0 (beta == 0 runs as L1)
  template <typename T> static T value(T x, T y, T, T beta, T, T) {
    T a = std::fabs(x - y), c = std::min(a, beta);
    return c * (a - T(0.5) * c) / beta;
  }
  template <typename T> static void grad(T x, T y, T, T beta, T, T, T& gx, T& gy) {
    T g = std::max(-beta, std::min(x - y, beta)) / beta;
    gx = g;
    gy = -g;
  }
};
struct BCE {  // x = probability; a = log x, b = log(1 - x), clamped at -100 as in PyTorch
  static constexpr bool kPrep = true;
  template <typename T> static void prep(const T* x, const T*, T* a, T* b, index_t n) {
    map_lanes(a, x, n, [](auto v) { return vm::log_full(v); });
    map_lanes(b, x, n, [](auto v) { return vm::log1p_full(-v); });
    for (index_t j = 0; j < n; ++j) {
      a[j] = std::max(a[j], T(-100));
      b[j] = std::max(b[j], T(-100));
    }
  }
  template <typename T> static T value(T, T y, T, T, T l0, T l1) { return (y - T(1)) * l1 - y * l0; }
  template <typename T> static void grad(T x, T y, T, T, T l0, T l1, T& gx, T& gy) {
    gx = (x - y) / std::max((T(1) - x) * x, T(1e-12));
    gy = l1 - l0;
  }
};
struct BCEWithLogits {  // (1 - y) x + (1 + (pw - 1) y) softplus(-x); a = exp(-|x|), b = softplus(-x)
  static constexpr bool kPrep = true;
  template <typename T> static void prep(const T* x, const T*, T* a, T* b, index_t n) {
    map_lanes(a, x, n, [](auto v) { return vm::exp_full(-simd::vabs(v)); });
    map_lanes(b, a, n, [](auto v) { return vm::log1p_full(v); });
    for (index_t j = 0; j < n; ++j) b[j] += std::max(-x[j], T(0));
  }
  template <typename T> static T value(T x, T y, T pw, T, T, T sp) {
    return (T(1) - y) * x + (T(1) + (pw - T(1)) * y) * sp;
  }
  template <typename T> static void grad(T x, T y, T pw, T, T e, T sp, T& gx, T& gy) {
    T inv = T(1) / (T(1) + e);
    T e_inv = e * inv;
    T sig_neg = x >= T(0) ? e_inv : inv;  // sigmoid(-x) without overflow
    gx = (T(1) - y) - (T(1) + (pw - T(1)) * y) * sig_neg;
    gy = -x + (pw - T(1)) * sp;
  }
};
struct KLDiv {  // xlogy(y, y) - y x (y == 0 contributes 0); a = log y
  static constexpr bool kPrep = true;
  template <typename T> static void prep(const T*, const T* y, T* a, T*, index_t n) {
    map_lanes(a, y, n, [](auto v) { return vm::log_full(v); });
  }
  template <typename T> static T value(T x, T y, T, T, T logy, T) {
    T ylogy = y * logy;
    return (y == T(0) ? T(0) : ylogy) - y * x;
  }
  template <typename T> static void grad(T x, T y, T, T, T logy, T, T& gx, T& gy) {
    gx = -y;
    gy = logy + T(1) - x;
  }
};
struct KLDivLogTarget {  // exp(y) (y - x); a = exp(y)
  static constexpr bool kPrep = true;
  template <typename T> static void prep(const T*, const T* y, T* a, T*, index_t n) {
    map_lanes(a, y, n, [](auto v) { return vm::exp_full(v); });
  }
  template <typename T> static T value(T x, T y, T, T, T e, T) { return e * (y - x); }
  template <typename T> static void grad(T x, T y, T, T, T e, T, T& gx, T& gy) {
    gx = -e;
    gy = e * (y - x + T(1));
  }
};
struct Perceptron : NoPrep {  // max(0, -y x)
  template <typename T> static T value(T x, T y, T, T, T, T) { T v = -y * x; return v > T(0) ? v : T(0); }
  template <typename T> static void grad(T x, T y, T, T, T, T, T& gx, T& gy) {
    bool on = -y * x > T(0);
    T mx = -x, my = -y;
    gx = on ? my : T(0);
    gy = on ? mx : T(0);
  }
};

// Calls f(r, k0, len, i0) for the row segments covering flat indices [lo, hi).
template <typename F>
inline void for_segments(index_t lo, index_t hi, index_t K, F&& f) {
  index_t r = lo / K, k0 = lo - r * K;
  while (lo < hi) {
    const index_t len = std::min(K - k0, hi - lo);
    f(r, k0, len, lo);
    lo += len;
    ++r;
    k0 = 0;
  }
}

// Operands of one row segment made contiguous: unit-stride pointers are used
// as they are, other strides (0 for a broadcast weight) are copied to a small
// buffer, so the value/grad loops below are plain contiguous loops the
// compiler vectorizes (and if-converts: no mispredicted branches on |d| < delta).
constexpr index_t kChunk = 512;

template <typename T>
struct Chunk {
  T xb[kChunk], yb[kChunk], wb[kChunk], pb[kChunk], vb[kChunk], ab[kChunk], bb[kChunk];
  const T *x, *y, *w, *pw;
  void load(const View2<T>& vx, const View2<T>& vy, const View2<T>& vw, const View2<T>& vp, index_t r, index_t k0,
            index_t len) {
    x = get(vx, r, k0, len, xb);
    y = get(vy, r, k0, len, yb);
    w = vw.p ? get(vw, r, k0, len, wb) : nullptr;
    pw = vp.p ? get(vp, r, k0, len, pb) : nullptr;
  }
  static const T* get(const View2<T>& v, index_t r, index_t k0, index_t len, T* buf) {
    const T* p = v.p + r * v.rs + k0 * v.cs;
    if (v.cs == 1) return p;
    for (index_t j = 0; j < len; ++j) buf[j] = p[j * v.cs];
    return buf;
  }
};

template <typename L, typename T>
inline void chunk_values(T* out, Chunk<T>& c, index_t len, T param) {
  const T *x = c.x, *y = c.y, *a = c.ab, *b = c.bb;
  if (L::kPrep) L::prep(x, y, c.ab, c.bb, len);
  if (c.pw) {
    const T* pw = c.pw;
    for (index_t j = 0; j < len; ++j) out[j] = L::value(x[j], y[j], pw[j], param, a[j], b[j]);
  } else {
    for (index_t j = 0; j < len; ++j) out[j] = L::value(x[j], y[j], T(1), param, a[j], b[j]);
  }
  if (c.w) {
    const T* w = c.w;
    for (index_t j = 0; j < len; ++j) out[j] *= w[j];
  }
}

template <typename T>
inline double chunk_sum(const T* v, index_t len) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += static_cast<double>(v[j + l]);
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < len; ++j) s += static_cast<double>(v[j]);
  return s;
}

// Calls f(r, k0, len, i0) for pieces of at most kChunk elements covering [lo, hi).
template <typename F>
inline void for_chunks(index_t lo, index_t hi, index_t K, F&& f) {
  for_segments(lo, hi, K, [&](index_t r, index_t k0, index_t len, index_t i0) {
    for (index_t o = 0; o < len; o += kChunk) f(r, k0 + o, std::min(kChunk, len - o), i0 + o);
  });
}

template <typename L, typename T>
void forward_impl(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pw, index_t R, index_t K, T param,
                  Reduction red, double out_scale) {
  const index_t n = R * K;
  if (n == 0) {
    if (red != Reduction::None) out[0] = static_cast<T>(0.0 * out_scale);
    return;
  }
  const index_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(red == Reduction::None ? 0 : static_cast<size_t>(nb), 0.0);
  parallel_for(nb, std::max<index_t>(1, kElementwiseGrain / kBlock), [&](index_t b0, index_t b1) {
    Chunk<T> c;
    for (index_t b = b0; b < b1; ++b) {
      double acc = 0.0;
      for_chunks(b * kBlock, std::min(n, (b + 1) * kBlock), K, [&](index_t r, index_t k0, index_t len, index_t i0) {
        c.load(x, y, w, pw, r, k0, len);
        if (red == Reduction::None) {
          chunk_values<L>(out + i0, c, len, param);
        } else {
          chunk_values<L>(c.vb, c, len, param);
          acc += chunk_sum(c.vb, len);
        }
      });
      if (red != Reduction::None) part[b] = acc;
    }
  });
  if (red != Reduction::None) {
    double s = 0.0;
    for (double v : part) s += v;
    out[0] = static_cast<T>(s * out_scale);
  }
}

template <typename L, typename T>
void backward_impl(T* dx, T* dy, const T* g, T g_scale, View2<T> x, View2<T> y, View2<T> w, View2<T> pw,
                   index_t R, index_t K, T param) {
  const index_t n = R * K;
  if (n == 0) return;
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    Chunk<T> c;
    T gxb[kChunk], gyb[kChunk];
    for_chunks(lo, hi, K, [&](index_t r, index_t k0, index_t len, index_t i0) {
      c.load(x, y, w, pw, r, k0, len);
      T* gx = dx ? dx + i0 : gxb;
      T* gy = dy ? dy + i0 : gyb;
      if (L::kPrep) L::prep(c.x, c.y, c.ab, c.bb, len);
      const T *xs = c.x, *ys = c.y, *as = c.ab, *bs = c.bb;
      if (c.pw) {
        const T* ps = c.pw;
        for (index_t j = 0; j < len; ++j) L::grad(xs[j], ys[j], ps[j], param, as[j], bs[j], gx[j], gy[j]);
      } else {
        for (index_t j = 0; j < len; ++j) L::grad(xs[j], ys[j], T(1), param, as[j], bs[j], gx[j], gy[j]);
      }
      // scale s_j = g_scale * g[j] * w[j]
      T* sb = c.vb;
      if (g) {
        for (index_t j = 0; j < len; ++j) sb[j] = g[i0 + j] * g_scale;
      } else {
        for (index_t j = 0; j < len; ++j) sb[j] = g_scale;
      }
      if (c.w)
        for (index_t j = 0; j < len; ++j) sb[j] *= c.w[j];
      if (dx)
        for (index_t j = 0; j < len; ++j) gx[j] *= sb[j];
      if (dy)
        for (index_t j = 0; j < len; ++j) gy[j] *= sb[j];
    });
  });
}

template <typename T, typename F>
void with_loss(PointLoss kind, double param, F&& f) {
  if (kind == PointLoss::SmoothL1 && param == 0.0) kind = PointLoss::L1;
  switch (kind) {
    case PointLoss::MSE: f(MSE{}); break;
    case PointLoss::L1: f(L1{}); break;
    case PointLoss::Huber: f(Huber{}); break;
    case PointLoss::SmoothL1: f(SmoothL1{}); break;
    case PointLoss::BCE: f(BCE{}); break;
    case PointLoss::BCEWithLogits: f(BCEWithLogits{}); break;
    case PointLoss::KLDiv: f(KLDiv{}); break;
    case PointLoss::KLDivLogTarget: f(KLDivLogTarget{}); break;
    case PointLoss::Perceptron: f(Perceptron{}); break;
  }
}

}  // namespace

template <typename T>
void pointwise_loss_forward(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pos_weight, index_t R, index_t K,
                            PointLoss kind, double param, Reduction red, double out_scale) {
  with_loss<T>(kind, param, [&](auto l) {
    forward_impl<decltype(l), T>(out, x, y, w, pos_weight, R, K, static_cast<T>(param), red, out_scale);
  });
}

template <typename T>
void pointwise_loss_backward(T* dx, T* dy, const T* g_elems, T g_scale, View2<T> x, View2<T> y, View2<T> w,
                             View2<T> pos_weight, index_t R, index_t K, PointLoss kind, double param) {
  with_loss<T>(kind, param, [&](auto l) {
    backward_impl<decltype(l), T>(dx, dy, g_elems, g_scale, x, y, w, pos_weight, R, K, static_cast<T>(param));
  });
}

template <typename T>
void rmse_loss_forward(T* out, View2<T> x, View2<T> y, index_t R, index_t K) {
  const double n = static_cast<double>(R * K);
  forward_impl<MSE, T>(out, x, y, View2<T>{}, View2<T>{}, R, K, T(0), Reduction::Sum, 1.0);
  out[0] = static_cast<T>(std::sqrt(static_cast<double>(out[0]) / n));
}

template void rmse_loss_forward<float>(float*, View2<float>, View2<float>, index_t, index_t);
template void rmse_loss_forward<double>(double*, View2<double>, View2<double>, index_t, index_t);
template void pointwise_loss_forward<float>(float*, View2<float>, View2<float>, View2<float>, View2<float>, index_t,
                                            index_t, PointLoss, double, Reduction, double);
template void pointwise_loss_forward<double>(double*, View2<double>, View2<double>, View2<double>, View2<double>,
                                             index_t, index_t, PointLoss, double, Reduction, double);
template void pointwise_loss_backward<float>(float*, float*, const float*, float, View2<float>, View2<float>,
                                             View2<float>, View2<float>, index_t, index_t, PointLoss, double);
template void pointwise_loss_backward<double>(double*, double*, const double*, double, View2<double>, View2<double>,
                                              View2<double>, View2<double>, index_t, index_t, PointLoss, double);

}  // namespace nnfast::cpu

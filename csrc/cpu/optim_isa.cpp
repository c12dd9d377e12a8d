// Per-ISA optimizer range kernels: compiled three times (NNFAST_ISA_NS =
// isa_generic, isa_avx2, isa_avx512) and picked at run time by optim.cpp.
//
// Written once over the native vector of core/simd.h. Every kernel streams its
// slice once: load, update in registers, store; partial vectors at the tail are
// zero-padded.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/simd.h"
#include "cpu/optim_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

using namespace ::nnfast::cpu::optim_detail;

template <typename T>
using vec = simd::Native<T>;
template <typename T>
constexpr index_t kLanes = simd::kLanes<T>;

// Sums are accumulated in double vectors of the native width; a float vector
// widens into kParts<float> = 2 of them (a wider-than-native accumulator would
// be split by the compiler through memory and run ~10x slower).
using dvec = simd::Native<double>;
using hvec = simd::Vec<float, simd::kLanes<double>>;
template <typename T>
constexpr int kParts = sizeof(T) == 4 ? 2 : 1;

inline void widen(const vec<double>& x, dvec* out) { out[0] = x; }
inline void widen(const vec<float>& x, dvec* out) {
  hvec lo, hi;
  std::memcpy(&lo, &x, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&x) + sizeof lo, sizeof hi);
  out[0] = simd::convert<dvec>(lo);
  out[1] = simd::convert<dvec>(hi);
}

// acc[j] += x_j * x_j over the double parts of x.
template <typename T>
inline void add_squares(dvec* acc, const vec<T>& x) {
  dvec w[kParts<T>];
  widen(x, w);
  for (int j = 0; j < kParts<T>; ++j) acc[j] = acc[j] + w[j] * w[j];
}
template <typename T>
inline void add_values(dvec* acc, const vec<T>& x) {
  dvec w[kParts<T>];
  widen(x, w);
  for (int j = 0; j < kParts<T>; ++j) acc[j] = acc[j] + w[j];
}

// The lanes of acc[0..parts) summed in a fixed order.
inline double lane_sum(const dvec* acc, int parts) {
  double s = 0.0;
  for (int j = 0; j < parts; ++j)
    for (int l = 0; l < simd::kLanes<double>; ++l) s += acc[j][l];
  return s;
}

template <typename T>
inline vec<T> splat(T x) {
  return vec<T>{} + x;
}

template <typename V>
inline V vsqrt(V x) {
  return simd::sqrt(x);
}

// max/min that propagate NaN from either side (as torch.maximum/minimum do).
template <typename V>
inline V vmax_nan(V a, V b) {
  return ((a > b) | (a != a)) ? a : b;
}
template <typename V>
inline V vmin_nan(V a, V b) {
  return ((a < b) | (a != a)) ? a : b;
}
template <typename V>
inline V vabs(V x) {
  return (x < V{}) ? -x : x;
}

// Full and partial (tail) vector access; the tail is zero-padded on load and
// only its first k lanes are stored.
template <typename T>
struct FullIO {
  vec<T> load(const T* p) const {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  void store(T* p, const vec<T>& v) const { std::memcpy(p, &v, sizeof v); }
  vec<T> keep(vec<T> v) const { return v; }  // lanes that hold data
};

template <typename T>
struct TailIO {
  index_t k;
  vec<T> load(const T* p) const {
    vec<T> v = vec<T>{};
    std::memcpy(&v, p, static_cast<size_t>(k) * sizeof(T));
    return v;
  }
  void store(T* p, const vec<T>& v) const { std::memcpy(p, &v, static_cast<size_t>(k) * sizeof(T)); }
  vec<T> keep(vec<T> v) const {
    for (index_t j = k; j < kLanes<T>; ++j) v[j] = T(0);
    return v;
  }
};

template <typename T, typename Body>
inline void vec_loop(index_t n, Body&& body) {
  constexpr index_t W = kLanes<T>;
  index_t i = 0;
  for (; i + W <= n; i += W) body(FullIO<T>{}, i);
  if (i < n) body(TailIO<T>{n - i}, i);
}

// ------------------------------------------------------------------ steps
// Moment updates of the Adam family, each stored at p and returned.
// m = lerp(m, g, 1 - beta1) (Adam, LAMB; AdaBound keeps the reference's
// beta1 * m + (1 - beta1) * g, which rounds differently).
template <typename T, typename IO>
inline vec<T> update_first_moment(const IO& io, T* p, const vec<T>& g, T omb1) {
  vec<T> m = io.load(p);
  m = m + omb1 * (g - m);
  io.store(p, m);
  return m;
}
// v = beta2 * v + (1 - beta2) * g^2 (Adam, AdaBound, LAMB).
template <typename T, typename IO>
inline vec<T> update_second_moment(const IO& io, T* p, const vec<T>& g, T beta2, T omb2) {
  const vec<T> v = beta2 * io.load(p) + omb2 * (g * g);
  io.store(p, v);
  return v;
}
// AMSGrad / AMSBound: the running max of v, NaN propagating as torch.maximum.
template <typename T, typename IO>
inline vec<T> update_max_second_moment(const IO& io, T* p, const vec<T>& v) {
  const vec<T> mx = vmax_nan(io.load(p), v);
  io.store(p, mx);
  return mx;
}

template <typename T>
void sgd_range(T* param, T* buf, const T* grad, index_t n, const SgdCoef<T>& coef, bool init) {
  const SgdCoef<T> c = coef;  // a local copy the stores cannot alias
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    vec<T> d = io.load(grad + i) * c.sign;
    if (c.l2) d = d + c.wd * p;
    if (c.has_momentum) {
      const vec<T> b = init ? d : c.momentum * io.load(buf + i) + c.damp1 * d;
      io.store(buf + i, b);
      d = c.nesterov ? d + c.momentum * b : b;
    }
    io.store(param + i, p - c.lr * d);
  });
}

template <typename T>
void adam_range(T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad, index_t n,
                const AdamCoef<T>& coef) {
  const AdamCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.decoupled) p = p * c.decay;
    if (c.l2) g = g + c.wd * p;
    const vec<T> m = update_first_moment(io, exp_avg + i, g, c.omb1);
    const vec<T> v = update_second_moment(io, exp_avg_sq + i, g, c.beta2, c.omb2);
    const vec<T> vv = c.amsgrad ? update_max_second_moment(io, max_exp_avg_sq + i, v) : v;
    const vec<T> denom = vsqrt(vv) * c.inv_bc2_sqrt + c.eps;
    io.store(param + i, p - c.step_size * (m / denom));
  });
}

template <typename T>
void adagrad_range(T* param, T* state_sum, const T* grad, index_t n, const AdagradCoef<T>& coef) {
  const AdagradCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> s = io.load(state_sum + i) + g * g;
    io.store(state_sum + i, s);
    io.store(param + i, p - c.clr * (g / (vsqrt(s) + c.eps)));
  });
}

template <typename T>
void rmsprop_range(T* param, T* square_avg, T* grad_avg, T* momentum_buffer, const T* grad, index_t n,
                   const RmspropCoef<T>& coef) {
  const RmspropCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> sq = c.alpha * io.load(square_avg + i) + c.oma * (g * g);
    io.store(square_avg + i, sq);
    vec<T> avg;
    if (c.centered) {
      vec<T> ga = io.load(grad_avg + i);
      ga = ga + c.oma * (g - ga);
      io.store(grad_avg + i, ga);
      avg = vsqrt(sq - ga * ga) + c.eps;
    } else {
      avg = vsqrt(sq) + c.eps;
    }
    if (c.has_momentum) {
      const vec<T> b = c.momentum * io.load(momentum_buffer + i) + g / avg;
      io.store(momentum_buffer + i, b);
      io.store(param + i, p - c.lr * b);
    } else {
      io.store(param + i, p - c.lr * (g / avg));
    }
  });
}

template <typename T>
void adabound_range(T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad, index_t n,
                    const AdaBoundCoef<T>& coef) {
  const AdaBoundCoef<T> c = coef;
  const vec<T> lower = splat(c.lower), upper = splat(c.upper);
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> m = c.beta1 * io.load(exp_avg + i) + c.omb1 * g;
    io.store(exp_avg + i, m);
    const vec<T> v = update_second_moment(io, exp_avg_sq + i, g, c.beta2, c.omb2);
    const vec<T> vv = c.amsbound ? update_max_second_moment(io, max_exp_avg_sq + i, v) : v;
    vec<T> s = c.step_size / (vsqrt(vv) + c.eps);
    s = vmin_nan(vmax_nan(s, lower), upper);  // clamp_(lower, upper)
    io.store(param + i, p - s * m);
  });
}

template <typename T>
void lion_range(T* param, T* exp_avg, const T* grad, index_t n, const LionCoef<T>& coef) {
  const LionCoef<T> c = coef;
  const vec<T> zero = splat(T(0)), one = splat(T(1)), mone = splat(T(-1));
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    const vec<T> g = io.load(grad + i) * c.sign;
    const vec<T> m = io.load(exp_avg + i);
    if (c.has_wd) p = p * c.decay;
    const vec<T> u = c.beta1 * m + c.omb1 * g;
    const vec<T> s = (u > zero) ? one : ((u < zero) ? mone : ((u != u) ? u : zero));  // sign, NaN kept
    io.store(param + i, p - c.lr * s);
    io.store(exp_avg + i, c.beta2 * m + c.omb2 * g);
  });
}

// ------------------------------------------------------------------ Adadelta, Adamax, NAdam, RAdam, ASGD
// These follow PyTorch's single-tensor code operation by operation (addcmul's
// (value * a) * b, addcdiv's (value * a) / b), so float32 results stay within an ulp or two.

// The signed gradient, with L2 weight decay folded in or decoupled decay applied to p.
template <typename T, typename IO>
inline vec<T> decayed_grad(const IO& io, const T* grad, vec<T>& p, const optim_coef::StepConsts<T>& c) {
  vec<T> g = io.load(grad) * c.sign;
  if (c.decoupled) p = p * c.decay;
  if (c.l2) g = g + c.wd * p;
  return g;
}

// s = s * beta + ((1 - beta) * g) * g, stored and returned (PyTorch's mul_ then addcmul_).
template <typename T, typename IO>
inline vec<T> ema_square(const IO& io, T* s, const vec<T>& g, T beta, T omb) {
  const vec<T> v = io.load(s) * beta + (omb * g) * g;
  io.store(s, v);
  return v;
}

template <typename T>
void adadelta_range(T* param, T* square_avg, T* acc_delta, const T* grad, index_t n, const AdadeltaCoef<T>& coef) {
  const AdadeltaCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    const vec<T> g = decayed_grad(io, grad + i, p, c);
    const vec<T> sq = ema_square(io, square_avg + i, g, c.rho, c.omr);
    const vec<T> d = (vsqrt(io.load(acc_delta + i) + c.eps) / vsqrt(sq + c.eps)) * g;
    ema_square(io, acc_delta + i, d, c.rho, c.omr);
    io.store(param + i, p + c.neg_lr * d);
  });
}

template <typename T>
void adamax_range(T* param, T* exp_avg, T* exp_inf, const T* grad, index_t n, const AdamaxCoef<T>& coef) {
  const AdamaxCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    const vec<T> g = decayed_grad(io, grad + i, p, c);
    const vec<T> m = update_first_moment(io, exp_avg + i, g, c.omr);
    const vec<T> u = vmax_nan(io.load(exp_inf + i) * c.beta2, vabs(g) + c.eps);
    io.store(exp_inf + i, u);
    io.store(param + i, p + (c.neg_clr * m) / u);
  });
}

// NAdam's and RAdam's start: p (decoupled decay applied), the decayed gradient g and Adam's
// moments m (lerp) and v (stored).
template <typename T>
struct AdamLike {
  vec<T> p, g, m, v;
};
template <typename T, typename IO>
inline AdamLike<T> adam_like(const IO& io, T* param, T* exp_avg, T* exp_avg_sq, const T* grad,
                             const optim_coef::StepConsts<T>& c) {
  AdamLike<T> a;
  a.p = io.load(param);
  a.g = decayed_grad(io, grad, a.p, c);
  a.m = update_first_moment(io, exp_avg, a.g, c.omr);
  a.v = ema_square(io, exp_avg_sq, a.g, c.beta2, c.omb2);
  return a;
}

template <typename T>
void nadam_range(T* param, T* exp_avg, T* exp_avg_sq, const T* grad, index_t n, const NAdamCoef<T>& coef) {
  const NAdamCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const AdamLike<T> a = adam_like(io, param + i, exp_avg + i, exp_avg_sq + i, grad + i, c);
    const vec<T> d = vsqrt(a.v / c.bc2) + c.eps;
    const vec<T> p = a.p + (c.cg * a.g) / d;
    io.store(param + i, p + (c.cm * a.m) / d);
  });
}

template <typename T>
void radam_range(T* param, T* exp_avg, T* exp_avg_sq, const T* grad, index_t n, const RAdamCoef<T>& coef) {
  const RAdamCoef<T> c = coef;
  const vec<T> one = splat(T(1));
  vec_loop<T>(n, [&](auto io, index_t i) {
    const AdamLike<T> a = adam_like(io, param + i, exp_avg + i, exp_avg_sq + i, grad + i, c);
    vec<T> u = (a.m / c.bc1) * c.lr;
    if (c.rectified) u = (u * ((one / (vsqrt(a.v) + c.eps)) * c.sqrt_bc2)) * c.rect;
    io.store(param + i, a.p - u);
  });
}

template <typename T>
void asgd_range(T* param, T* ax, const T* grad, index_t n, const AsgdCoef<T>& coef) {
  const AsgdCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    const vec<T> g = decayed_grad(io, grad + i, p, c);
    p = p * c.eta_decay + c.neg_eta * g;
    io.store(param + i, p);
    if (c.mu_one) {
      io.store(ax + i, p);
    } else {
      const vec<T> a = io.load(ax + i);
      io.store(ax + i, a + (p - a) * c.mu);
    }
  });
}

template <typename T, typename IO>
inline vec<T> lamb_update(const IO& io, const vec<T>& m, const vec<T>& v, const vec<T>& p, const LambCoef<T>& c) {
  vec<T> u = (m * c.ibc1) / (vsqrt(v) * c.ibc2_sqrt + c.eps);
  if (c.has_wd) u = u + c.wd * p;
  return io.keep(u);
}

template <typename T>
void lamb_pass1(double* param_sq, double* update_sq, T* exp_avg, T* exp_avg_sq, const T* param, const T* grad,
                index_t n, const LambCoef<T>& coef) {
  const LambCoef<T> c = coef;
  dvec ps[kParts<T>] = {}, us[kParts<T>] = {};
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    const vec<T> g = io.load(grad + i) * c.sign;
    const vec<T> m = update_first_moment(io, exp_avg + i, g, c.omb1);
    const vec<T> v = update_second_moment(io, exp_avg_sq + i, g, c.beta2, c.omb2);
    add_squares<T>(ps, p);
    add_squares<T>(us, lamb_update<T>(io, m, v, p, c));
  });
  *param_sq = lane_sum(ps, kParts<T>);
  *update_sq = lane_sum(us, kParts<T>);
}

template <typename T>
void lamb_pass2(T* param, const T* exp_avg, const T* exp_avg_sq, index_t n, const LambCoef<T>& coef, T scale) {
  const LambCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    const vec<T> u = lamb_update<T>(io, io.load(exp_avg + i), io.load(exp_avg_sq + i), p, c);
    io.store(param + i, p - scale * u);
  });
}

// ------------------------------------------------------------------ utilities
template <typename T>
bool all_finite_range(const T* x, index_t n) {
  vec<T> acc = vec<T>{};
  vec_loop<T>(n, [&](auto io, index_t i) { acc = acc + io.load(x + i) * T(0); });  // inf*0 and NaN*0 are NaN
  bool ok = true;
  for (index_t j = 0; j < kLanes<T>; ++j) ok = ok && acc[j] == T(0);
  return ok;
}

template <typename T>
double norm_range(const T* x, index_t n, int kind, double p) {
  constexpr index_t W = kLanes<T>;
  const index_t nv = n / W * W;
  double s = 0.0;
  if (kind == kNormInf || kind == kNormNegInf) {
    const bool mx = kind == kNormInf;
    vec<T> m = splat(mx ? T(0) : std::numeric_limits<T>::infinity());
    for (index_t i = 0; i < nv; i += W) {
      const vec<T> a = vabs(FullIO<T>{}.load(x + i));
      m = mx ? vmax_nan(a, m) : vmin_nan(a, m);
    }
    double r = mx ? 0.0 : std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < W; ++j) r = mx ? (((m[j] > r) | (m[j] != m[j])) ? m[j] : r) : (((m[j] < r) | (m[j] != m[j])) ? m[j] : r);
    for (index_t i = nv; i < n; ++i) {
      const double a = std::fabs(static_cast<double>(x[i]));
      r = mx ? (((a > r) | (a != a)) ? a : r) : (((a < r) | (a != a)) ? a : r);
    }
    return r;
  }
  if (kind == kNormP) {
    for (index_t i = 0; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(x[i])), p);
    return s;
  }
  // Two accumulator sets, so consecutive vectors do not wait on one add chain.
  dvec acc0[kParts<T>] = {}, acc1[kParts<T>] = {};
  const vec<T> zero = splat(T(0)), one = splat(T(1));
  index_t i = 0;
  for (; i + 2 * W <= nv; i += 2 * W) {
    const vec<T> v0 = FullIO<T>{}.load(x + i), v1 = FullIO<T>{}.load(x + i + W);
    if (kind == kNormL2) {
      add_squares<T>(acc0, v0);
      add_squares<T>(acc1, v1);
    } else if (kind == kNormL1) {
      add_values<T>(acc0, vabs(v0));
      add_values<T>(acc1, vabs(v1));
    } else {
      add_values<T>(acc0, (v0 != zero) ? one : zero);
      add_values<T>(acc1, (v1 != zero) ? one : zero);
    }
  }
  for (; i < nv; i += W) {
    const vec<T> v0 = FullIO<T>{}.load(x + i);
    if (kind == kNormL2) add_squares<T>(acc0, v0);
    else if (kind == kNormL1) add_values<T>(acc0, vabs(v0));
    else add_values<T>(acc0, (v0 != zero) ? one : zero);
  }
  s = lane_sum(acc0, kParts<T>) + lane_sum(acc1, kParts<T>);
  for (index_t i = nv; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    s += kind == kNormL2 ? v * v : (kind == kNormL1 ? std::fabs(v) : (v != 0.0 ? 1.0 : 0.0));
  }
  return s;
}

template <typename T>
void scale_range(T* x, index_t n, T scale) {
  vec_loop<T>(n, [&](auto io, index_t i) { io.store(x + i, io.load(x + i) * scale); });
}

template <typename T>
void clamp_range(T* x, index_t n, T lo, T hi) {
  const vec<T> vlo = splat(lo), vhi = splat(hi);
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> v = io.load(x + i);
    io.store(x + i, (v < vlo) ? vlo : ((v > vhi) ? vhi : v));
  });
}

template <typename T>
OptimOps<T> make_range_kernels() {
  OptimOps<T> k;
  k.sgd = &sgd_range<T>;
  k.adam = &adam_range<T>;
  k.adagrad = &adagrad_range<T>;
  k.rmsprop = &rmsprop_range<T>;
  k.adabound = &adabound_range<T>;
  k.lion = &lion_range<T>;
  k.adadelta = &adadelta_range<T>;
  k.adamax = &adamax_range<T>;
  k.nadam = &nadam_range<T>;
  k.radam = &radam_range<T>;
  k.asgd = &asgd_range<T>;
  k.lamb_pass1 = &lamb_pass1<T>;
  k.lamb_pass2 = &lamb_pass2<T>;
  k.all_finite = &all_finite_range<T>;
  k.norm = &norm_range<T>;
  k.scale = &scale_range<T>;
  k.clamp = &clamp_range<T>;
  return k;
}

}  // namespace

NNFAST_ISA_TABLE_T(OptimOps, make_range_kernels)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

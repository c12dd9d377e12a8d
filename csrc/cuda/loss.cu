// CUDA loss kernels (nnfast/cuda/loss.h): the class-dim losses (fused softmax
// cross-entropy with class-index or probability targets, NLL, the shared
// gradient scaling) and the pointwise losses, float and double.
//
// Class-dim losses work on rows r = n*S + s of C values. A row belongs to one
// warp (C < kBlockRowC, 8 rows per 256-thread block) or to a whole 256-thread
// block (larger C). Its log-sum-exp is computed online in one pass (running max
// and rescaled sum per lane, then a butterfly / shared-memory combine); the
// gradient is written in a second pass over the row while it is in cache.
//
// Reductions are deterministic: each row (or each fixed chunk of elements)
// writes a double, and those are summed by fixed-size blocks and then one final
// block, in a fixed tree independent of the device. `mean` denominators of the
// class-dim losses (sum of the class weights of the non-ignored rows) are
// computed first the same way and read on the device, so no host round trip.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nnfast/cuda/loss.h"

namespace nnfast::cuda {
namespace loss_detail {

constexpr int kThreads = 256;           // threads per block of every kernel here
constexpr index_t kBlockRowC = 1024;    // C >= this: one block per row, else one warp per row
using reduce::kSumChunk;                // elements per block of a deterministic sum
constexpr index_t kMaxGrid = 65535;     // grid-stride loops above this many blocks
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();  // an empty mean (0 / 0)

inline unsigned grid_for(index_t work, index_t per_block) {
  const index_t g = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<index_t>(1, std::min(g, kMaxGrid)));
}

// ------------------------------------------------------------------ device math
// exp / log / log1p / fabs: the scalar:: forms of core/math_scalar.h.
template <typename T>
__device__ __forceinline__ T dmin(T a, T b) { return b < a ? b : a; }  // std::min
template <typename T>
__device__ __forceinline__ T dmax(T a, T b) { return a < b ? b : a; }  // std::max
template <typename T>
__device__ __forceinline__ T neg_inf() { return static_cast<T>(-HUGE_VAL); }

// ------------------------------------------------------------------ reductions (cuda/reduce.cuh)
using reduce::block_sum;
using reduce::device_sum;
using reduce::RowGroup;  // a row's threads: one warp (kBlk = false) or the whole block

// Online log-sum-exp state: max m and sum s of exp(x - m).
template <typename T>
__device__ __forceinline__ void lse_push(T& m, T& s, T v) {
  if (v == neg_inf<T>()) return;  // exp(-inf) adds nothing (and -inf - -inf is NaN)
  if (v > m) {
    s = s * scalar::exp(m - v) + T(1);
    m = v;
  } else {
    s += scalar::exp(v - m);  // NaN v lands here and makes s NaN, as the CPU's max does
  }
}
template <typename T>
__device__ __forceinline__ void lse_merge(T& m, T& s, T mo, T so) {
  const T M = m > mo ? m : mo;
  if (M == neg_inf<T>()) return;  // both empty
  s = s * scalar::exp(m - M) + so * scalar::exp(mo - M);  // symmetric in (m,s) <-> (mo,so): every lane agrees
  m = M;
}
template <typename T>
__device__ __forceinline__ void warp_lse(T& m, T& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const T mo = __shfl_xor_sync(0xffffffffu, m, o);
    const T so = __shfl_xor_sync(0xffffffffu, s, o);
    lse_merge(m, s, mo, so);
  }
}

// The log-sum-exp state (m, s) merged over a row's threads (RowGroup<kBlk>: one warp,
// or the whole block), to every thread.
template <bool kBlk, typename T>
__device__ void row_lse(T& m, T& s, T* shm, T* shs) {
  warp_lse(m, s);
  if (!kBlk) return;
  const int l = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (l == 0) {
    shm[w] = m;
    shs[w] = s;
  }
  __syncthreads();
  m = l < nw ? shm[l] : neg_inf<T>();
  s = l < nw ? shs[l] : T(0);
  warp_lse(m, s);
}

// How a reduced loss is written from its device total (and denominator).
enum Finish : int {
  kScale = 0,     // total * scale
  kTimesInv = 1,  // total * (1 / denom)   (cross-entropy mean, as the CPU)
  kDivide = 2,    // total / denom          (nll mean, as the CPU)
  kRmse = 3,      // sqrt(T(total) / scale)
};

template <typename T>
__global__ void finish_kernel(T* out, const double* total, const double* denom, double scale, int mode) {
  const double t = *total;
  double v;
  if (mode == kScale) v = t * scale;
  else if (mode == kTimesInv) v = t * (1.0 / *denom);
  else if (mode == kDivide) v = t / *denom;
  else v = ::sqrt(static_cast<double>(static_cast<T>(t)) / scale);
  out[0] = static_cast<T>(v);
}

template <typename T>
__global__ void set_value_kernel(T* out, double v) {
  out[0] = static_cast<T>(v);
}

template <typename T>
void finish(T* out, const double* total, const double* denom, double scale, Finish mode, cudaStream_t stream) {
  NNFAST_LAUNCH(finish_kernel<T>, 1, 1, 0, stream)(out, total, denom, scale, static_cast<int>(mode));
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void set_value(T* out, double v, cudaStream_t stream) {
  NNFAST_LAUNCH(set_value_kernel<T>, 1, 1, 0, stream)(out, v);
  NNFAST_CUDA_CHECK_LAUNCH();
}

// ------------------------------------------------------------------ targets
__device__ __forceinline__ std::int64_t target_at(const TargetView& t, index_t n, index_t s) {
  return t.p[n * t.sn + s * t.ss];
}

// tw[r] = class weight of row r's target (1 unweighted), 0 when ignored.
template <typename T>
__global__ void target_weights_kernel(double* tw, TargetView tg, const T* w, index_t N, index_t S,
                                      index_t ignore_index) {
  const index_t R = N * S;
  for (index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; r < R;
       r += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t n = r / S, s = r - n * S;
    const std::int64_t t = target_at(tg, n, s);
    tw[r] = t == ignore_index ? 0.0 : (w ? static_cast<double>(w[t]) : 1.0);
  }
}

// *denom = summed target weight of the non-ignored rows (device). R >= 1.
template <typename T>
void target_weight_sum(double* denom, TargetView tg, const T* w, index_t N, index_t S, index_t ignore_index,
                       cudaStream_t stream) {
  const index_t R = N * S;
  Scratch<double> tw(R, stream);
  NNFAST_LAUNCH(target_weights_kernel<T>, grid_for(R, kThreads), kThreads, 0, stream)(tw.p, tg, w, N, S,
                                                                                     ignore_index);
  NNFAST_CUDA_CHECK_LAUNCH();
  device_sum(denom, tw.p, R, stream);
}

__global__ void find_bad_target_kernel(long long* first, TargetView tg, index_t N, index_t S, index_t C,
                                       index_t ignore_index) {
  __shared__ long long sh[32];
  const index_t R = N * S;
  long long best = static_cast<long long>(R);
  for (index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; r < R;
       r += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t n = r / S, s = r - n * S;
    const std::int64_t t = target_at(tg, n, s);
    if (t != ignore_index && (t < 0 || t >= C) && r < best) best = static_cast<long long>(r);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const long long other = __shfl_xor_sync(0xffffffffu, best, o);
    best = other < best ? other : best;
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) sh[w] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int i = 1; i < nw; ++i) best = sh[i] < best ? sh[i] : best;
    if (best < static_cast<long long>(R)) atomicMin(first, best);  // integer min: order-independent
  }
}

// ------------------------------------------------------------------ cross_entropy (class index)
// One row per group. loss_rows (reduction None, T) or row_loss (double) gets the
// row's loss; dx (nullable) the gradient, scaled by k = 1/denom[0] when denom is set.
template <typename T, bool kBlk>
__global__ void ce_rows_kernel(T* loss_rows, double* row_loss, T* dx, View3<T> x, TargetView tg, const T* w,
                               index_t N, index_t C, index_t S, index_t ignore_index, double eps,
                               const double* denom) {
  __shared__ double shd[32];
  __shared__ T shm[32], shs[32];
  const RowGroup<kBlk> g;
  const index_t R = N * S;
  const double k = denom ? 1.0 / *denom : 1.0;
  const double Cd = static_cast<double>(C);
  for (index_t r = g.first; r < R; r += g.stride) {
    const index_t n = r / S, s = r - n * S;
    const std::int64_t t = target_at(tg, n, s);
    T* dxr = dx ? dx + n * C * S + s : nullptr;  // element c at dxr[c * S]
    if (t == ignore_index) {
      if (dxr)
        for (index_t c = g.lane; c < C; c += g.size) dxr[c * S] = T(0);
      if (g.lane == 0) {
        if (loss_rows) loss_rows[r] = T(0);
        if (row_loss) row_loss[r] = 0.0;
      }
      continue;
    }
    const T* xr = x.p + n * x.sn + s * x.ss;
    T m = neg_inf<T>(), se = T(0);
    for (index_t c = g.lane; c < C; c += g.size) lse_push(m, se, xr[c * x.sc]);
    row_lse<kBlk>(m, se, shm, shs);
    const double lse_m = static_cast<double>(scalar::log(se));  // lse - m
    const double wt = w ? static_cast<double>(w[t]) : 1.0;
    double l = (1.0 - eps) * wt * (lse_m - (static_cast<double>(xr[t * x.sc]) - m));
    double Wsum = Cd;
    if (eps > 0.0) {
      double sd = 0.0, ws = 0.0;  // sum_c w_c (x_c - m), sum_c w_c
      for (index_t c = g.lane; c < C; c += g.size) {
        const double wc = w ? static_cast<double>(w[c]) : 1.0;
        sd += wc * (static_cast<double>(xr[c * x.sc]) - m);
        ws += wc;
      }
      sd = g.sum(sd, shd);
      if (w) Wsum = g.sum(ws, shd);
      l += eps / Cd * (Wsum * lse_m - sd);
    }
    if (dxr) {
      const T a = static_cast<T>(k * ((1.0 - eps) * wt + eps * Wsum / Cd) / static_cast<double>(se));
      const T b = static_cast<T>(-k * eps / Cd);
      const T hit = static_cast<T>(k * (1.0 - eps) * wt);
      const bool wb = eps > 0.0 && w;
      for (index_t c = g.lane; c < C; c += g.size) {
        const T e = scalar::exp(xr[c * x.sc] - m);
        T d = a * e + b * (wb ? w[c] : T(1));
        if (c == t) d -= hit;
        dxr[c * S] = d;
      }
    }
    if (g.lane == 0) {
      if (loss_rows) loss_rows[r] = static_cast<T>(l);
      if (row_loss) row_loss[r] = l;
    }
  }
}

template <typename T, bool kBlk>
void launch_rows(void (*kernel)(T*, double*, T*, View3<T>, TargetView, const T*, index_t, index_t, index_t,
                                index_t, double, const double*),
                 index_t R, cudaStream_t stream, T* loss_rows, double* row_loss, T* dx, View3<T> x, TargetView tg,
                 const T* w, index_t N, index_t C, index_t S, index_t ignore_index, double eps,
                 const double* denom) {
  const index_t per_block = kBlk ? 1 : kThreads / 32;
  NNFAST_LAUNCH(kernel, grid_for(R, per_block), kThreads, 0, stream)(loss_rows, row_loss, dx, x, tg, w, N, C, S,
                                                                     ignore_index, eps, denom);
  NNFAST_CUDA_CHECK_LAUNCH();
}

// ------------------------------------------------------------------ cross_entropy (probabilities)
template <typename T, bool kBlk>
__global__ void ce_prob_rows_kernel(T* loss_rows, double* row_loss, T* dx, T* dtarget, View3<T> x, View3<T> tgt,
                                    const T* w, index_t N, index_t C, index_t S, double eps, double k) {
  __shared__ double shd[32];
  __shared__ T shm[32], shs[32];
  const RowGroup<kBlk> g;
  const index_t R = N * S;
  const double off = eps / static_cast<double>(C);
  for (index_t r = g.first; r < R; r += g.stride) {
    const index_t n = r / S, s = r - n * S;
    const T* xr = x.p + n * x.sn + s * x.ss;
    const T* tr = tgt.p + n * tgt.sn + s * tgt.ss;
    T m = neg_inf<T>(), se = T(0);
    for (index_t c = g.lane; c < C; c += g.size) lse_push(m, se, xr[c * x.sc]);
    row_lse<kBlk>(m, se, shm, shs);
    const double lse_m = static_cast<double>(scalar::log(se));
    double Q = 0.0, qx = 0.0;
    for (index_t c = g.lane; c < C; c += g.size) {
      const double q = (w ? static_cast<double>(w[c]) : 1.0) * ((1.0 - eps) * tr[c * tgt.sc] + off);
      Q += q;
      qx += q * (static_cast<double>(xr[c * x.sc]) - m);
    }
    Q = g.sum(Q, shd);
    qx = g.sum(qx, shd);
    const double l = Q * lse_m - qx;
    const index_t base = n * C * S + s;
    if (dtarget) {
      for (index_t c = g.lane; c < C; c += g.size) {
        const double wc = w ? static_cast<double>(w[c]) : 1.0;
        dtarget[base + c * S] =
            static_cast<T>(k * (1.0 - eps) * wc * (lse_m - (static_cast<double>(xr[c * x.sc]) - m)));
      }
    }
    if (dx) {
      const T a = static_cast<T>(k * Q / static_cast<double>(se));
      const T kk = static_cast<T>(k);
      const T t1 = static_cast<T>(1.0 - eps), t0 = static_cast<T>(off);
      for (index_t c = g.lane; c < C; c += g.size) {
        const T wc = w ? w[c] : T(1);
        const T e = scalar::exp(xr[c * x.sc] - m);
        dx[base + c * S] = a * e - kk * wc * (t1 * tr[c * tgt.sc] + t0);
      }
    }
    if (g.lane == 0) {
      if (loss_rows) loss_rows[r] = static_cast<T>(l);
      if (row_loss) row_loss[r] = l;
    }
  }
}

// ------------------------------------------------------------------ loss_scale_grad
template <typename T>
__global__ void scale_grad_kernel(T* dx, const T* saved, const T* g_rows, T g_scalar, index_t N, index_t C,
                                  index_t S) {
  const index_t CS = C * S, n_all = N * CS;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n_all;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    T g = g_scalar;
    if (g_rows) {
      const index_t n = i / CS, s = (i - n * CS) % S;
      g = g_rows[n * S + s];
    }
    dx[i] = saved[i] * g;
  }
}

// ------------------------------------------------------------------ nll_loss
template <typename T>
__global__ void nll_rows_kernel(T* loss_rows, double* row_loss, View3<T> x, TargetView tg, const T* w, index_t N,
                                index_t S, index_t ignore_index) {
  const index_t R = N * S;
  for (index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; r < R;
       r += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t n = r / S, s = r - n * S;
    const std::int64_t t = target_at(tg, n, s);
    double l = 0.0;
    if (t != ignore_index) {
      const double wt = w ? static_cast<double>(w[t]) : 1.0;
      l = -wt * static_cast<double>(x.p[n * x.sn + t * x.sc + s * x.ss]);
    }
    if (loss_rows) loss_rows[r] = static_cast<T>(l);
    if (row_loss) row_loss[r] = l;
  }
}

template <typename T>
__global__ void nll_backward_kernel(T* dx, const T* g_rows, T g_scalar, TargetView tg, const T* w, index_t N,
                                    index_t C, index_t S, index_t ignore_index, const double* denom) {
  const index_t CS = C * S, n_all = N * CS;
  const double k = denom ? 1.0 / *denom : 1.0;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n_all;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t n = i / CS, rem = i - n * CS, c = rem / S, s = rem - c * S;
    const std::int64_t t = target_at(tg, n, s);
    T v = T(0);
    if (t != ignore_index && t == c) {
      const double wt = w ? static_cast<double>(w[t]) : 1.0;
      const double g = g_rows ? static_cast<double>(g_rows[n * S + s]) : static_cast<double>(g_scalar);
      v = static_cast<T>(-g * k * wt);
    }
    dx[i] = v;
  }
}

// ------------------------------------------------------------------ pointwise losses
// value(x, y, pw, param) and grad(x, y, pw, param, gx, gy) per element, in T.
struct PMse {
  template <typename T> __device__ static T value(T x, T y, T, T) { const T d = x - y; return d * d; }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    const T d = T(2) * (x - y);
    gx = d;
    gy = -d;
  }
};
struct PL1 {
  template <typename T> __device__ static T value(T x, T y, T, T) { return scalar::fabs(x - y); }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    const T d = x - y;
    const T s = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
    gx = s;
    gy = -s;
  }
};
struct PHuber {
  template <typename T> __device__ static T value(T x, T y, T, T delta) {
    const T a = scalar::fabs(x - y), c = dmin(a, delta);
    return c * (a - T(0.5) * c);
  }
  template <typename T> __device__ static void grad(T x, T y, T, T delta, T& gx, T& gy) {
    const T g = dmax(-delta, dmin(x - y, delta));
    gx = g;
    gy = -g;
  }
};
struct PSmoothL1 {  // beta > 0 (beta == 0 runs as L1)
  template <typename T> __device__ static T value(T x, T y, T, T beta) {
    const T a = scalar::fabs(x - y), c = dmin(a, beta);
    return c * (a - T(0.5) * c) / beta;
  }
  template <typename T> __device__ static void grad(T x, T y, T, T beta, T& gx, T& gy) {
    const T g = dmax(-beta, dmin(x - y, beta)) / beta;
    gx = g;
    gy = -g;
  }
};
struct PBce {  // logs clamped at -100 as in PyTorch
  template <typename T> __device__ static T value(T x, T y, T, T) {
    const T l0 = dmax(scalar::log(x), T(-100)), l1 = dmax(scalar::log1p(-x), T(-100));
    return (y - T(1)) * l1 - y * l0;
  }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    const T l0 = dmax(scalar::log(x), T(-100)), l1 = dmax(scalar::log1p(-x), T(-100));
    gx = (x - y) / dmax((T(1) - x) * x, T(1e-12));
    gy = l1 - l0;
  }
};
struct PBceLogits {  // (1 - y) x + (1 + (pw - 1) y) softplus(-x)
  template <typename T> __device__ static T softplus_neg(T x, T e) { return scalar::log1p(e) + dmax(-x, T(0)); }
  template <typename T> __device__ static T value(T x, T y, T pw, T) {
    const T e = scalar::exp(-scalar::fabs(x));
    return (T(1) - y) * x + (T(1) + (pw - T(1)) * y) * softplus_neg(x, e);
  }
  template <typename T> __device__ static void grad(T x, T y, T pw, T, T& gx, T& gy) {
    const T e = scalar::exp(-scalar::fabs(x));
    const T inv = T(1) / (T(1) + e);
    const T sig_neg = x >= T(0) ? e * inv : inv;  // sigmoid(-x) without overflow
    gx = (T(1) - y) - (T(1) + (pw - T(1)) * y) * sig_neg;
    gy = -x + (pw - T(1)) * softplus_neg(x, e);
  }
};
struct PKlDiv {  // xlogy(y, y) - y x
  template <typename T> __device__ static T value(T x, T y, T, T) {
    const T ylogy = y * scalar::log(y);
    return (y == T(0) ? T(0) : ylogy) - y * x;
  }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    gx = -y;
    gy = scalar::log(y) + T(1) - x;
  }
};
struct PKlDivLog {  // exp(y) (y - x)
  template <typename T> __device__ static T value(T x, T y, T, T) { return scalar::exp(y) * (y - x); }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    const T e = scalar::exp(y);
    gx = -e;
    gy = e * (y - x + T(1));
  }
};
struct PPerceptron {  // max(0, -y x)
  template <typename T> __device__ static T value(T x, T y, T, T) { const T v = -y * x; return v > T(0) ? v : T(0); }
  template <typename T> __device__ static void grad(T x, T y, T, T, T& gx, T& gy) {
    const bool on = -y * x > T(0);
    gx = on ? -y : T(0);
    gy = on ? -x : T(0);
  }
};

template <typename T>
__device__ __forceinline__ T at2(const View2<T>& v, index_t r, index_t k) {
  return v.p[r * v.rs + k * v.cs];
}

// None: out[i] = w l(x, y). Reduced: part[b] = sum over the fixed chunk b of kSumChunk elements.
template <typename L, typename T>
__global__ void point_forward_kernel(T* out, double* part, View2<T> x, View2<T> y, View2<T> w, View2<T> pw,
                                     index_t R, index_t K, T param) {
  __shared__ double sh[32];
  const index_t n = R * K;
  for (index_t b = blockIdx.x; b * kSumChunk < n; b += gridDim.x) {
    const index_t lo = b * kSumChunk, hi = lo + kSumChunk < n ? lo + kSumChunk : n;
    double acc = 0.0;
    for (index_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      const index_t r = i / K, k = i - r * K;
      T v = L::value(at2(x, r, k), at2(y, r, k), pw.p ? at2(pw, r, k) : T(1), param);
      if (w.p) v *= at2(w, r, k);
      if (part) acc += static_cast<double>(v);
      else out[i] = v;
    }
    if (part) {  // uniform: the whole block takes this branch or not
      acc = block_sum(acc, sh);
      if (threadIdx.x == 0) part[b] = acc;
    }
  }
}

template <typename L, typename T>
__global__ void point_backward_kernel(T* dx, T* dy, const T* g, T g_scale, View2<T> x, View2<T> y, View2<T> w,
                                      View2<T> pw, index_t R, index_t K, T param) {
  const index_t n = R * K;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / K, k = i - r * K;
    T gx, gy;
    L::grad(at2(x, r, k), at2(y, r, k), pw.p ? at2(pw, r, k) : T(1), param, gx, gy);
    T sc = g ? g[i] * g_scale : g_scale;
    if (w.p) sc *= at2(w, r, k);
    if (dx) dx[i] = gx * sc;
    if (dy) dy[i] = gy * sc;
  }
}

template <typename F>
void with_point_loss(PointLoss kind, double param, F&& f) {
  if (kind == PointLoss::SmoothL1 && param == 0.0) kind = PointLoss::L1;
  switch (kind) {
    case PointLoss::MSE: f(PMse{}); break;
    case PointLoss::L1: f(PL1{}); break;
    case PointLoss::Huber: f(PHuber{}); break;
    case PointLoss::SmoothL1: f(PSmoothL1{}); break;
    case PointLoss::BCE: f(PBce{}); break;
    case PointLoss::BCEWithLogits: f(PBceLogits{}); break;
    case PointLoss::KLDiv: f(PKlDiv{}); break;
    case PointLoss::KLDivLogTarget: f(PKlDivLog{}); break;
    case PointLoss::Perceptron: f(PPerceptron{}); break;
  }
}

// out[0] = finish(sum of the pointwise values) (n >= 1), or out = values for None.
template <typename L, typename T>
void point_forward(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pw, index_t R, index_t K, T param,
                   bool reduce, double scale, Finish mode, cudaStream_t stream) {
  const index_t n = R * K;
  const index_t nb = (n + kSumChunk - 1) / kSumChunk;
  auto* kf = point_forward_kernel<L, T>;
  if (!reduce) {
    NNFAST_LAUNCH(kf, grid_for(nb, 1), kThreads, 0, stream)(out, nullptr, x, y, w, pw, R, K, param);
    NNFAST_CUDA_CHECK_LAUNCH();
    return;
  }
  Scratch<double> part(nb + 1, stream);
  NNFAST_LAUNCH(kf, grid_for(nb, 1), kThreads, 0, stream)(out, part.p, x, y, w, pw, R, K, param);
  NNFAST_CUDA_CHECK_LAUNCH();
  device_sum(part.p + nb, part.p, nb, stream);
  finish(out, part.p + nb, static_cast<const double*>(nullptr), scale, mode, stream);
}

// The reduction side of a class-index loss over R = N * S rows (cross_entropy, nll_loss).
// None: the row kernel writes each row's loss to rows_out (the caller's output). Sum /
// Mean: it writes double row losses to row_loss, scratch [0, R), and finish() writes
// their total (at R), divided for Mean by the summed target weight of the non-ignored
// rows (at R + 1: computed first, so the row kernel may read it as denom).
template <typename T>
struct ClassLossReduction {
  Reduction red;
  index_t R;
  Scratch<double> buf;
  T* rows_out = nullptr;
  double* row_loss = nullptr;
  double* denom = nullptr;  // Mean only

  ClassLossReduction(T* loss, Reduction red_, TargetView target, const T* weight, index_t N, index_t S,
                     index_t ignore_index, cudaStream_t stream)
      : red(red_), R(N * S), buf(red_ == Reduction::None ? 0 : N * S + 2, stream) {
    if (red == Reduction::None) {
      rows_out = loss;
      return;
    }
    row_loss = buf.p;
    if (red == Reduction::Mean) {
      denom = buf.p + R + 1;
      target_weight_sum(denom, target, weight, N, S, ignore_index, stream);
    }
  }

  // mean_mode: how Mean divides (cross-entropy and nll round differently, as on the CPU).
  void finish(T* loss, Finish mean_mode, cudaStream_t stream) const {
    if (red == Reduction::None) return;
    device_sum(buf.p + R, buf.p, R, stream);
    loss_detail::finish(loss, buf.p + R, denom, 1.0, red == Reduction::Mean ? mean_mode : kScale, stream);
  }
};

// No rows: a reduced loss is 0, or NaN for Mean (0 / 0), as on the CPU. True when R == 0.
template <typename T>
bool empty_class_loss(T* loss, index_t R, Reduction red, cudaStream_t stream) {
  if (R > 0) return false;
  if (red != Reduction::None) set_value(loss, red == Reduction::Mean ? kNaN : 0.0, stream);
  return true;
}

}  // namespace loss_detail

// Each launcher opens its own detail namespace (a namespace-scope using-directive
// would clash when several .cu files share one translation unit, as in the tests).

// ------------------------------------------------------------------ launchers
index_t find_bad_target(TargetView target, index_t N, index_t S, index_t C, index_t ignore_index,
                        cudaStream_t stream) {
  using namespace loss_detail;
  const index_t R = N * S;
  if (R <= 0) return -1;
  Scratch<long long> first(1, stream);
  set_value(first.p, static_cast<double>(R), stream);  // R fits a double exactly for any real tensor
  NNFAST_LAUNCH(find_bad_target_kernel, grid_for(R, kThreads), kThreads, 0, stream)(first.p, target, N, S, C,
                                                                                   ignore_index);
  NNFAST_CUDA_CHECK_LAUNCH();
  long long host = 0;
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(&host, first.p, sizeof host, cudaMemcpyDeviceToHost, stream));
  NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host < static_cast<long long>(R) ? static_cast<index_t>(host) : -1;
}

template <typename T>
void cross_entropy_forward(T* loss, T* dx, View3<T> x, TargetView target, const T* weight, index_t N, index_t C,
                           index_t S, index_t ignore_index, double label_smoothing, Reduction red,
                           cudaStream_t stream) {
  using namespace loss_detail;
  const index_t R = N * S;
  if (empty_class_loss(loss, R, red, stream)) return;
  const ClassLossReduction<T> out(loss, red, target, weight, N, S, ignore_index, stream);
  if (C >= kBlockRowC)
    launch_rows<T, true>(ce_rows_kernel<T, true>, R, stream, out.rows_out, out.row_loss, dx, x, target, weight, N, C,
                         S, ignore_index, label_smoothing, out.denom);
  else
    launch_rows<T, false>(ce_rows_kernel<T, false>, R, stream, out.rows_out, out.row_loss, dx, x, target, weight, N,
                          C, S, ignore_index, label_smoothing, out.denom);
  out.finish(loss, kTimesInv, stream);
}

template <typename T>
void cross_entropy_prob_forward(T* loss, T* dx, T* dtarget, View3<T> x, View3<T> target, const T* weight, index_t N,
                                index_t C, index_t S, double label_smoothing, Reduction red, cudaStream_t stream) {
  using namespace loss_detail;
  const index_t R = N * S;
  const double k = red == Reduction::Mean ? 1.0 / static_cast<double>(R) : 1.0;
  if (R <= 0) {
    if (red != Reduction::None) set_value(loss, 0.0 * k, stream);
    return;
  }
  Scratch<double> buf(red == Reduction::None ? 0 : R + 1, stream);
  T* loss_rows = red == Reduction::None ? loss : nullptr;
  double* row_loss = red == Reduction::None ? nullptr : buf.p;
  if (C >= kBlockRowC) {
    auto* kf = ce_prob_rows_kernel<T, true>;
    NNFAST_LAUNCH(kf, grid_for(R, 1), kThreads, 0, stream)(loss_rows, row_loss, dx, dtarget, x, target, weight, N,
                                                            C, S, label_smoothing, k);
  } else {
    auto* kf = ce_prob_rows_kernel<T, false>;
    NNFAST_LAUNCH(kf, grid_for(R, kThreads / 32), kThreads, 0, stream)(loss_rows, row_loss, dx, dtarget, x, target,
                                                                        weight, N, C, S, label_smoothing, k);
  }
  NNFAST_CUDA_CHECK_LAUNCH();
  if (red != Reduction::None) {
    device_sum(buf.p + R, buf.p, R, stream);
    finish(loss, buf.p + R, static_cast<const double*>(nullptr), k, kScale, stream);
  }
}

template <typename T>
void loss_scale_grad(T* dx, const T* saved, const T* g_rows, T g_scalar, index_t N, index_t C, index_t S,
                     cudaStream_t stream) {
  using namespace loss_detail;
  const index_t n = N * C * S;
  if (n <= 0) return;
  NNFAST_LAUNCH(scale_grad_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream)(dx, saved, g_rows, g_scalar, N, C,
                                                                                  S);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void nll_loss_forward(T* loss, View3<T> x, TargetView target, const T* weight, index_t N, index_t C, index_t S,
                      index_t ignore_index, Reduction red, cudaStream_t stream) {
  using namespace loss_detail;
  (void)C;
  const index_t R = N * S;
  if (empty_class_loss(loss, R, red, stream)) return;
  const ClassLossReduction<T> out(loss, red, target, weight, N, S, ignore_index, stream);
  NNFAST_LAUNCH(nll_rows_kernel<T>, grid_for(R, kThreads), kThreads, 0, stream)(out.rows_out, out.row_loss, x, target,
                                                                                weight, N, S, ignore_index);
  NNFAST_CUDA_CHECK_LAUNCH();
  out.finish(loss, kDivide, stream);
}

template <typename T>
void nll_loss_backward(T* dx, const T* g_rows, T g_scalar, TargetView target, const T* weight, index_t N, index_t C,
                       index_t S, index_t ignore_index, Reduction red, cudaStream_t stream) {
  using namespace loss_detail;
  const index_t n = N * C * S;
  if (n <= 0) return;
  Scratch<double> denom(red == Reduction::Mean ? 1 : 0, stream);
  if (red == Reduction::Mean) target_weight_sum(denom.p, target, weight, N, S, ignore_index, stream);
  NNFAST_LAUNCH(nll_backward_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream)(
      dx, g_rows, g_scalar, target, weight, N, C, S, ignore_index, denom.p);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void pointwise_loss_forward(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pos_weight, index_t R, index_t K,
                            PointLoss kind, double param, Reduction red, double out_scale, cudaStream_t stream) {
  using namespace loss_detail;
  const index_t n = R * K;
  if (n <= 0) {
    if (red != Reduction::None) set_value(out, 0.0 * out_scale, stream);
    return;
  }
  with_point_loss(kind, param, [&](auto l) {
    point_forward<decltype(l), T>(out, x, y, w, pos_weight, R, K, static_cast<T>(param), red != Reduction::None,
                                  out_scale, kScale, stream);
  });
}

template <typename T>
void pointwise_loss_backward(T* dx, T* dy, const T* g_elems, T g_scale, View2<T> x, View2<T> y, View2<T> w,
                             View2<T> pos_weight, index_t R, index_t K, PointLoss kind, double param,
                             cudaStream_t stream) {
  using namespace loss_detail;
  const index_t n = R * K;
  if (n <= 0 || (!dx && !dy)) return;
  with_point_loss(kind, param, [&](auto l) {
    auto* kf = point_backward_kernel<decltype(l), T>;
    NNFAST_LAUNCH(kf, grid_for(n, kThreads), kThreads, 0, stream)(dx, dy, g_elems, g_scale, x, y, w, pos_weight, R,
                                                                  K, static_cast<T>(param));
    NNFAST_CUDA_CHECK_LAUNCH();
  });
}

template <typename T>
void rmse_loss_forward(T* out, View2<T> x, View2<T> y, index_t R, index_t K, cudaStream_t stream) {
  using namespace loss_detail;
  const index_t n = R * K;
  if (n <= 0) {
    set_value(out, kNaN, stream);  // sqrt(0 / 0), as the CPU
    return;
  }
  point_forward<PMse, T>(out, x, y, View2<T>{}, View2<T>{}, R, K, T(0), true, static_cast<double>(n), kRmse, stream);
}

#define NNFAST_CUDA_LOSS_INSTANTIATE(T)                                                                          \
  template void cross_entropy_forward<T>(T*, T*, View3<T>, TargetView, const T*, index_t, index_t, index_t,    \
                                         index_t, double, Reduction, cudaStream_t);                             \
  template void cross_entropy_prob_forward<T>(T*, T*, T*, View3<T>, View3<T>, const T*, index_t, index_t,      \
                                              index_t, double, Reduction, cudaStream_t);                        \
  template void loss_scale_grad<T>(T*, const T*, const T*, T, index_t, index_t, index_t, cudaStream_t);        \
  template void nll_loss_forward<T>(T*, View3<T>, TargetView, const T*, index_t, index_t, index_t, index_t,    \
                                    Reduction, cudaStream_t);                                                   \
  template void nll_loss_backward<T>(T*, const T*, T, TargetView, const T*, index_t, index_t, index_t,         \
                                     index_t, Reduction, cudaStream_t);                                         \
  template void pointwise_loss_forward<T>(T*, View2<T>, View2<T>, View2<T>, View2<T>, index_t, index_t,        \
                                          PointLoss, double, Reduction, double, cudaStream_t);                  \
  template void pointwise_loss_backward<T>(T*, T*, const T*, T, View2<T>, View2<T>, View2<T>, View2<T>,        \
                                           index_t, index_t, PointLoss, double, cudaStream_t);                  \
  template void rmse_loss_forward<T>(T*, View2<T>, View2<T>, index_t, index_t, cudaStream_t);
NNFAST_CUDA_LOSS_INSTANTIATE(float)
NNFAST_CUDA_LOSS_INSTANTIATE(double)
#undef NNFAST_CUDA_LOSS_INSTANTIATE

}  // namespace nnfast::cuda

// CUDA normalization kernels: layer / RMS norm, batch norm, group / instance norm,
// weight norm, spectral norm. Mirrors csrc/cpu/norm.cpp (nnfast/cuda/norm.h).
//
// Numerics: every statistic and every reduction accumulates in double; mean / var
// use shifted sums around the row's (channel's, group's) first element as on the
// CPU; outputs are computed in double and rounded to T once.
//
// Reductions, all deterministic (fixed element -> thread assignment, fixed tree,
// no atomics):
//   * warp per row (layer / RMS norm, D <= kWarpRowMax): lane k takes elements
//     k, k + 32, ...; __shfl_xor_sync butterfly (every lane gets the same bits);
//   * block per row / channel / group (layer norm with large D, batch norm,
//     group norm, weight norm): thread t takes t, t + blockDim, ...; butterfly per
//     warp, warp totals through shared memory, summed in warp order by every thread;
//   * layer / group norm dweight / dbias: a column kernel, one block per 32
//     features (or one per channel), the rows split over the block's row lanes and
//     the lane partials added in lane order, then added (+=) once, rounded to T;
//   * long reductions (spectral norm's <dy, W>): per-block double partials in a
//     workspace, summed in block order by one thread.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include "nnfast/cuda/norm.h"

namespace nnfast {
namespace cuda {
namespace norm_k {

constexpr index_t kWarpRowMax = 512;  // layer norm: warp per row up to this D, block per row above
constexpr int kRowsPerBlock = 4;      // warp-per-row kernels: 4 warps, one row each
constexpr int kRowThreads = 256;      // block-per-row kernels
constexpr int kColLanes = 8;          // column kernels: 32 columns x 8 row lanes

// Block-wide sums: reduce::block_sums_in_warp_order (sh: 32 doubles per value summed).
using reduce::block_sums_in_warp_order;
using reduce::warp_sum;

// Threads per block for a block-per-item reduction over n elements: a multiple of
// 32 in [32, cap].
inline int block_threads(index_t n, int cap = kRowThreads) {
  int t = 32;
  while (t < cap && t < n) t *= 2;
  return t;
}

inline unsigned grid_of(index_t n, index_t per_block) { return static_cast<unsigned>((n + per_block - 1) / per_block); }

// mean / biased var from shifted sums (norm_internal.h's finish_stats).
__device__ __forceinline__ void finish_stats(double K, double s1, double s2, index_t n, double* mean, double* var) {
  if (n <= 0) {
    *mean = 0;
    *var = 0;
    return;
  }
  const double m = s1 / static_cast<double>(n);
  const double v = s2 / static_cast<double>(n) - m * m;
  *mean = K + m;
  *var = v > 0 ? v : 0;
}

template <typename T>
__device__ __forceinline__ void ema(T* r, double s, double momentum) {
  *r = static_cast<T>((1.0 - momentum) * static_cast<double>(*r) + momentum * s);
}

// The row kernels run one row per group: a warp (WARP) or a block (reduce::RowGroup).
using reduce::RowGroup;

template <bool WARP>
__device__ __forceinline__ void row_sum2(double& a, double& b, double* sh) {
  if (WARP) {
    a = warp_sum(a);
    b = warp_sum(b);
  } else {
    block_sums_in_warp_order(sh, a, b);
  }
}

// ------------------------------------------------------------------ layer / RMS norm
template <typename T, bool WARP>
__global__ void layer_norm_fwd_kernel(T* __restrict__ y, double* __restrict__ mean, double* __restrict__ rstd,
                                      const T* __restrict__ x, const T* __restrict__ weight,
                                      const T* __restrict__ bias, index_t M, index_t D, double eps, bool rms) {
  __shared__ double sh[64];
  const RowGroup<!WARP> grp;
  const index_t row = grp.first;
  if (row >= M) return;  // uniform per warp (WARP) or per block
  const T* xr = x + row * D;
  T* yr = y + row * D;
  const double K = (!rms && D > 0) ? static_cast<double>(xr[0]) : 0.0;
  double s1 = 0, s2 = 0;
  for (index_t j = grp.lane; j < D; j += grp.size) {
    const double d = static_cast<double>(xr[j]) - K;
    s1 += d;
    s2 += d * d;
  }
  row_sum2<WARP>(s1, s2, sh);
  double m = 0, s;
  if (rms) {
    s = 1.0 / sqrt((D > 0 ? s2 / static_cast<double>(D) : 0.0) + eps);
  } else {
    double var;
    finish_stats(K, s1, s2, D, &m, &var);
    s = 1.0 / sqrt(var + eps);
  }
  if (grp.lane == 0) {
    if (!rms) mean[row] = m;
    rstd[row] = s;
  }
  for (index_t j = grp.lane; j < D; j += grp.size) {
    double v = (static_cast<double>(xr[j]) - m) * s;
    if (weight) v *= static_cast<double>(weight[j]);
    if (bias && !rms) v += static_cast<double>(bias[j]);
    yr[j] = static_cast<T>(v);
  }
}

// dx = s * (g - cg - xhat * cx), g = dy * w, cg = mean(g) (0 for rms), cx = mean(g * xhat).
template <typename T, bool WARP>
__global__ void layer_norm_dx_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                                     const double* __restrict__ mean, const double* __restrict__ rstd,
                                     const T* __restrict__ weight, index_t M, index_t D, bool rms) {
  __shared__ double sh[64];
  const RowGroup<!WARP> grp;
  const index_t row = grp.first;
  if (row >= M) return;
  const T* xr = x + row * D;
  const T* dyr = dy + row * D;
  const double m = rms ? 0.0 : mean[row], s = rstd[row];
  double sg = 0, sgx = 0;
  for (index_t j = grp.lane; j < D; j += grp.size) {
    const double g = static_cast<double>(dyr[j]) * (weight ? static_cast<double>(weight[j]) : 1.0);
    sg += g;
    sgx += g * ((static_cast<double>(xr[j]) - m) * s);
  }
  row_sum2<WARP>(sg, sgx, sh);
  const double inv_d = D > 0 ? 1.0 / static_cast<double>(D) : 0.0;
  const double cg = rms ? 0.0 : sg * inv_d, cx = sgx * inv_d;
  T* dxr = dx + row * D;
  for (index_t j = grp.lane; j < D; j += grp.size) {
    const double g = static_cast<double>(dyr[j]) * (weight ? static_cast<double>(weight[j]) : 1.0);
    const double xh = (static_cast<double>(xr[j]) - m) * s;
    dxr[j] = static_cast<T>(s * (g - cg - xh * cx));
  }
}

// dweight[j] += sum_r dy[r, j] xhat[r, j], dbias[j] += sum_r dy[r, j]. Block (32, kColLanes):
// threadIdx.x is the column within a 32-wide tile, threadIdx.y the row lane.
template <typename T>
__global__ void layer_norm_param_kernel(T* __restrict__ dweight, T* __restrict__ dbias, const T* __restrict__ dy,
                                        const T* __restrict__ x, const double* __restrict__ mean,
                                        const double* __restrict__ rstd, index_t M, index_t D, bool rms) {
  __shared__ double pw[kColLanes][32], pb[kColLanes][32];
  const index_t j = static_cast<index_t>(blockIdx.x) * 32 + threadIdx.x;
  double sw = 0, sb = 0;
  if (j < D) {
    for (index_t r = threadIdx.y; r < M; r += kColLanes) {
      const double d = static_cast<double>(dy[r * D + j]);
      const double m = rms ? 0.0 : mean[r];
      sw += d * ((static_cast<double>(x[r * D + j]) - m) * rstd[r]);
      sb += d;
    }
  }
  pw[threadIdx.y][threadIdx.x] = sw;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && j < D) {
    sw = 0;
    sb = 0;
    for (int k = 0; k < kColLanes; ++k) {
      sw += pw[k][threadIdx.x];
      sb += pb[k][threadIdx.x];
    }
    if (dweight) dweight[j] = static_cast<T>(dweight[j] + static_cast<T>(sw));
    if (dbias) dbias[j] = static_cast<T>(dbias[j] + static_cast<T>(sb));
  }
}

// ------------------------------------------------------------------ batch norm (block per channel)
// Element e of channel c over (N, L): x[(n C + c) L + l] with n = e / L, l = e % L.
__device__ __forceinline__ index_t chan_at(index_t e, index_t c, index_t C, index_t L) {
  const index_t n = e / L;
  return (n * C + c) * L + (e - n * L);
}

template <typename T>
__global__ void batch_norm_fwd_kernel(T* __restrict__ y, double* __restrict__ mean, double* __restrict__ rstd,
                                      T* __restrict__ running_mean, T* __restrict__ running_var,
                                      const T* __restrict__ x, const T* __restrict__ weight,
                                      const T* __restrict__ bias, index_t N, index_t C, index_t L, bool training,
                                      double momentum, double eps) {
  __shared__ double sh[64];
  __shared__ double stat[2];
  const index_t c = blockIdx.x, cnt = N * L;
  if (training) {
    const double K = cnt > 0 ? static_cast<double>(x[c * L]) : 0.0;
    double s1 = 0, s2 = 0;
    for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
      const double d = static_cast<double>(x[chan_at(e, c, C, L)]) - K;
      s1 += d;
      s2 += d * d;
    }
    block_sums_in_warp_order(sh, s1, s2);
    if (threadIdx.x == 0) {
      double m, var;
      finish_stats(K, s1, s2, cnt, &m, &var);
      if (running_mean) ema(running_mean + c, m, momentum);
      if (running_var) ema(running_var + c, cnt > 1 ? var * cnt / (cnt - 1) : var, momentum);
      stat[0] = m;
      stat[1] = 1.0 / sqrt(var + eps);
    }
  } else if (threadIdx.x == 0) {
    stat[0] = static_cast<double>(running_mean[c]);
    stat[1] = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
  }
  __syncthreads();
  const double m = stat[0], s = stat[1];
  if (threadIdx.x == 0) {
    mean[c] = m;
    rstd[c] = s;
  }
  const double sc = weight ? s * static_cast<double>(weight[c]) : s;
  const double sh_b = bias ? static_cast<double>(bias[c]) : 0.0;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t i = chan_at(e, c, C, L);
    y[i] = static_cast<T>((static_cast<double>(x[i]) - m) * sc + sh_b);
  }
}

template <typename T>
__global__ void batch_norm_bwd_kernel(T* __restrict__ dx, T* __restrict__ dweight, T* __restrict__ dbias,
                                      const T* __restrict__ dy, const T* __restrict__ x,
                                      const double* __restrict__ mean, const double* __restrict__ rstd,
                                      const T* __restrict__ weight, index_t N, index_t C, index_t L, bool training) {
  __shared__ double sh[64];
  const index_t c = blockIdx.x, cnt = N * L;
  const double m = mean[c], s = rstd[c];
  const double w = weight ? static_cast<double>(weight[c]) : 1.0;
  const double inv_n = cnt > 0 ? 1.0 / static_cast<double>(cnt) : 0.0;
  double be = 0, ga = 0;
  if (training || dweight || dbias) {  // uniform over the block
    double s_dy = 0, s_dx = 0;
    for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
      const index_t i = chan_at(e, c, C, L);
      const double d = static_cast<double>(dy[i]);
      s_dy += d;
      s_dx += d * (static_cast<double>(x[i]) - m);
    }
    block_sums_in_warp_order(sh, s_dy, s_dx);
    const double sxh = s_dx * s;
    if (threadIdx.x == 0) {
      if (dweight) dweight[c] = static_cast<T>(dweight[c] + static_cast<T>(sxh));
      if (dbias) dbias[c] = static_cast<T>(dbias[c] + static_cast<T>(s_dy));
    }
    if (training) {
      be = -w * s * s * sxh * inv_n;
      ga = -w * s * s_dy * inv_n;
    }
  }
  if (!dx) return;
  const double al = w * s;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t i = chan_at(e, c, C, L);
    dx[i] = static_cast<T>(al * static_cast<double>(dy[i]) + be * (static_cast<double>(x[i]) - m) + ga);
  }
}

// ------------------------------------------------------------------ group norm (block per (n, g))
template <typename T>
__global__ void group_norm_fwd_kernel(T* __restrict__ y, double* __restrict__ mean, double* __restrict__ rstd,
                                      const T* __restrict__ x, const T* __restrict__ weight,
                                      const T* __restrict__ bias, index_t C, index_t L, index_t G, double eps) {
  __shared__ double sh[64];
  const index_t r = blockIdx.x, n = r / G, g = r % G, Cg = C / G, D = Cg * L;
  const index_t off = (n * C + g * Cg) * L;
  const T* xr = x + off;
  const double K = D > 0 ? static_cast<double>(xr[0]) : 0.0;
  double s1 = 0, s2 = 0;
  for (index_t j = threadIdx.x; j < D; j += blockDim.x) {
    const double d = static_cast<double>(xr[j]) - K;
    s1 += d;
    s2 += d * d;
  }
  block_sums_in_warp_order(sh, s1, s2);
  double m, var;
  finish_stats(K, s1, s2, D, &m, &var);
  const double s = 1.0 / sqrt(var + eps);
  if (threadIdx.x == 0) {
    mean[r] = m;
    rstd[r] = s;
  }
  for (index_t j = threadIdx.x; j < D; j += blockDim.x) {
    const index_t c = g * Cg + j / L;
    const double sc = weight ? s * static_cast<double>(weight[c]) : s;
    const double b = bias ? static_cast<double>(bias[c]) : 0.0;
    y[off + j] = static_cast<T>((static_cast<double>(xr[j]) - m) * sc + b);
  }
}

// dx = s w dy - s^2 cx (x - m) - s cg, cg = mean(w dy), cx = mean(w dy xhat) over the group.
template <typename T>
__global__ void group_norm_dx_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                                     const double* __restrict__ mean, const double* __restrict__ rstd,
                                     const T* __restrict__ weight, index_t C, index_t L, index_t G) {
  __shared__ double sh[64];
  const index_t r = blockIdx.x, n = r / G, g = r % G, Cg = C / G, D = Cg * L;
  const index_t off = (n * C + g * Cg) * L;
  const double m = mean[r], s = rstd[r];
  double sg = 0, sgx = 0;
  for (index_t j = threadIdx.x; j < D; j += blockDim.x) {
    const double wc = weight ? static_cast<double>(weight[g * Cg + j / L]) : 1.0;
    const double d = wc * static_cast<double>(dy[off + j]);
    sg += d;
    sgx += d * (static_cast<double>(x[off + j]) - m);
  }
  block_sums_in_warp_order(sh, sg, sgx);
  const double inv_d = D > 0 ? 1.0 / static_cast<double>(D) : 0.0;
  const double cg = sg * inv_d, cx = sgx * s * inv_d;
  for (index_t j = threadIdx.x; j < D; j += blockDim.x) {
    const double wc = weight ? static_cast<double>(weight[g * Cg + j / L]) : 1.0;
    dx[off + j] = static_cast<T>(s * wc * static_cast<double>(dy[off + j]) +
                                 (-s * s * cx) * (static_cast<double>(x[off + j]) - m) - s * cg);
  }
}

// dweight[c] += sum_{n, l} dy xhat, dbias[c] += sum_{n, l} dy: block per channel.
template <typename T>
__global__ void group_norm_param_kernel(T* __restrict__ dweight, T* __restrict__ dbias, const T* __restrict__ dy,
                                        const T* __restrict__ x, const double* __restrict__ mean,
                                        const double* __restrict__ rstd, index_t N, index_t C, index_t L,
                                        index_t G) {
  __shared__ double sh[64];
  const index_t c = blockIdx.x, g = c / (C / G), cnt = N * L;
  double sw = 0, sb = 0;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t n = e / L, i = (n * C + c) * L + (e - n * L);
    const double d = static_cast<double>(dy[i]);
    sw += d * ((static_cast<double>(x[i]) - mean[n * G + g]) * rstd[n * G + g]);
    sb += d;
  }
  block_sums_in_warp_order(sh, sw, sb);
  if (threadIdx.x == 0) {
    if (dweight) dweight[c] = static_cast<T>(dweight[c] + static_cast<T>(sw));
    if (dbias) dbias[c] = static_cast<T>(dbias[c] + static_cast<T>(sb));
  }
}

template <typename T>
__global__ void instance_running_kernel(T* __restrict__ running_mean, T* __restrict__ running_var,
                                        const double* __restrict__ mean, const double* __restrict__ rstd, index_t N,
                                        index_t C, index_t L, double momentum, double eps) {
  const index_t c = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double unbias = L > 1 ? static_cast<double>(L) / static_cast<double>(L - 1) : 1.0;
  const double inv_n = N > 0 ? 1.0 / static_cast<double>(N) : 0.0;
  double sm = 0, sv = 0;
  for (index_t n = 0; n < N; ++n) {
    const double s = rstd[n * C + c];
    sm += mean[n * C + c];
    sv += 1.0 / (s * s) - eps;
  }
  if (running_mean) ema(running_mean + c, sm * inv_n, momentum);
  if (running_var) ema(running_var + c, sv * inv_n * unbias, momentum);
}

// ------------------------------------------------------------------ weight norm (block per channel)
template <typename T>
__global__ void weight_norm_fwd_kernel(T* __restrict__ w, double* __restrict__ norm, const T* __restrict__ v,
                                       const T* __restrict__ g, index_t N, index_t C, index_t L) {
  __shared__ double sh[64];
  const index_t c = blockIdx.x, cnt = N * L;
  double ss = 0;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const double t = static_cast<double>(v[chan_at(e, c, C, L)]);
    ss += t * t;
  }
  block_sums_in_warp_order(sh, ss);
  const double nrm = sqrt(ss);
  if (threadIdx.x == 0) norm[c] = nrm;
  const double scale = static_cast<double>(g[c]) / nrm;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t i = chan_at(e, c, C, L);
    w[i] = static_cast<T>(static_cast<double>(v[i]) * scale);
  }
}

template <typename T>
__global__ void weight_norm_bwd_kernel(T* __restrict__ dv, T* __restrict__ dg, const T* __restrict__ dw,
                                       const T* __restrict__ v, const T* __restrict__ g,
                                       const double* __restrict__ norm, index_t N, index_t C, index_t L) {
  __shared__ double sh[64];
  const index_t c = blockIdx.x, cnt = N * L;
  double sd = 0;
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t i = chan_at(e, c, C, L);
    sd += static_cast<double>(dw[i]) * static_cast<double>(v[i]);
  }
  block_sums_in_warp_order(sh, sd);
  const double nrm = norm[c], gc = static_cast<double>(g[c]);
  if (threadIdx.x == 0 && dg) dg[c] = static_cast<T>(dg[c] + static_cast<T>(sd / nrm));
  if (!dv) return;
  const double al = gc / nrm, be = -gc * sd / (nrm * nrm * nrm);
  for (index_t e = threadIdx.x; e < cnt; e += blockDim.x) {
    const index_t i = chan_at(e, c, C, L);
    dv[i] = static_cast<T>(al * static_cast<double>(dw[i]) + be * static_cast<double>(v[i]));
  }
}

// ------------------------------------------------------------------ spectral norm
// Power iteration in one block (the vectors are short; every step depends on the
// whole previous one): ud (M), vd (D) double workspace in global memory.
template <typename T>
__global__ void __launch_bounds__(1024)
    spectral_power_kernel(T* __restrict__ u, T* __restrict__ v, const T* __restrict__ W, double* __restrict__ ud,
                          double* __restrict__ vd, index_t M, index_t D, int n_iter, double eps) {
  __shared__ double sh[64];
  const int t = threadIdx.x, nt = blockDim.x, lane = t % 32, warp = t / 32, nw = nt / 32;
  for (index_t i = t; i < M; i += nt) ud[i] = static_cast<double>(u[i]);
  __syncthreads();
  for (int it = 0; it < n_iter; ++it) {
    // vd = W^T ud: thread per column (rows in order), then normalise.
    double ss = 0;
    for (index_t j = t; j < D; j += nt) {
      double a = 0;
      for (index_t i = 0; i < M; ++i) a += ud[i] * static_cast<double>(W[i * D + j]);
      vd[j] = a;
      ss += a * a;
    }
    block_sums_in_warp_order(sh, ss);
    double nrm = sqrt(ss);
    if (nrm < eps) nrm = eps;
    for (index_t j = t; j < D; j += nt) vd[j] /= nrm;
    __syncthreads();
    // ud = W vd: warp per row, then normalise.
    ss = 0;
    for (index_t i = warp; i < M; i += nw) {
      double a = 0;
      for (index_t j = lane; j < D; j += 32) a += static_cast<double>(W[i * D + j]) * vd[j];
      a = warp_sum(a);
      if (lane == 0) {
        ud[i] = a;
        ss += a * a;
      }
    }
    block_sums_in_warp_order(sh, ss);
    nrm = sqrt(ss);
    if (nrm < eps) nrm = eps;
    for (index_t i = t; i < M; i += nt) ud[i] /= nrm;
    __syncthreads();
  }
  for (index_t i = t; i < M; i += nt) u[i] = static_cast<T>(ud[i]);
  for (index_t j = t; j < D; j += nt) v[j] = static_cast<T>(vd[j]);
}

// sigma = u . (W v): one block, warp per row.
template <typename T>
__global__ void __launch_bounds__(1024)
    spectral_sigma_kernel(double* __restrict__ sigma, const T* __restrict__ W, const T* __restrict__ u,
                          const T* __restrict__ v, index_t M, index_t D) {
  __shared__ double sh[64];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
  double acc = 0;
  for (index_t i = warp; i < M; i += nw) {
    double a = 0;
    for (index_t j = lane; j < D; j += 32) a += static_cast<double>(W[i * D + j]) * static_cast<double>(v[j]);
    a = warp_sum(a);
    if (lane == 0) acc += static_cast<double>(u[i]) * a;
  }
  block_sums_in_warp_order(sh, acc);
  if (threadIdx.x == 0) *sigma = acc;
}

template <typename T>
__global__ void spectral_scale_kernel(T* __restrict__ y, const T* __restrict__ W, const double* __restrict__ sigma,
                                      index_t n) {
  const double inv = 1.0 / *sigma;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = static_cast<T>(inv * static_cast<double>(W[i]));
}

// part[b] = sum of a * b over block b's fixed chunk [n b / P, n (b + 1) / P).
template <typename T>
__global__ void dot_partial_kernel(double* __restrict__ part, const T* __restrict__ a, const T* __restrict__ b,
                                   index_t n) {
  __shared__ double sh[64];
  const index_t P = gridDim.x, p = blockIdx.x;
  const index_t lo = n * p / P, hi = n * (p + 1) / P;
  double s = 0;
  for (index_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  block_sums_in_warp_order(sh, s);
  if (threadIdx.x == 0) part[p] = s;
}

// dW = dy / sigma - (dot / sigma^2) u v^T, dot = sum of the P partials (in order, per thread).
template <typename T>
__global__ void spectral_bwd_kernel(T* __restrict__ dW, const T* __restrict__ dy, const T* __restrict__ u,
                                    const T* __restrict__ v, const double* __restrict__ part, int P, double sigma,
                                    index_t M, index_t D) {
  __shared__ double coef_sh;
  if (threadIdx.x == 0) {
    double dot = 0;
    for (int p = 0; p < P; ++p) dot += part[p];
    coef_sh = dot / (sigma * sigma);
  }
  __syncthreads();
  const double inv = 1.0 / sigma, coef = coef_sh;
  const index_t n = M * D;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / D, j = i - r * D;
    dW[i] = static_cast<T>(inv * static_cast<double>(dy[i]) +
                           (-coef * static_cast<double>(u[r])) * static_cast<double>(v[j]));
  }
}

inline unsigned elementwise_grid(index_t n, int threads) {
  const index_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

}  // namespace norm_k

using namespace norm_k;

// ------------------------------------------------------------------ launchers
template <typename T>
void layer_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t M,
                        index_t D, double eps, bool rms, cudaStream_t stream) {
  if (M <= 0) return;
  if (D <= kWarpRowMax) {
    auto* k = layer_norm_fwd_kernel<T, true>;
    NNFAST_LAUNCH(k, grid_of(M, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream)(y, mean, rstd, x, weight, bias, M, D,
                                                                              eps, rms);
  } else {
    auto* k = layer_norm_fwd_kernel<T, false>;
    NNFAST_LAUNCH(k, static_cast<unsigned>(M), block_threads(D), 0, stream)(y, mean, rstd, x, weight, bias, M, D, eps,
                                                                           rms);
  }
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t M, index_t D, bool rms, cudaStream_t stream) {
  if (M <= 0 || D <= 0) return;
  if (dx) {
    if (D <= kWarpRowMax) {
      auto* k = layer_norm_dx_kernel<T, true>;
      NNFAST_LAUNCH(k, grid_of(M, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream)(dx, dy, x, mean, rstd, weight, M, D,
                                                                                rms);
    } else {
      auto* k = layer_norm_dx_kernel<T, false>;
      NNFAST_LAUNCH(k, static_cast<unsigned>(M), block_threads(D), 0, stream)(dx, dy, x, mean, rstd, weight, M, D, rms);
    }
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (dweight || dbias) {
    auto* k = layer_norm_param_kernel<T>;
    NNFAST_LAUNCH(k, grid_of(D, 32), dim3(32, kColLanes), 0, stream)(dweight, dbias, dy, x, mean, rstd, M, D, rms);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void batch_norm_forward(T* y, double* mean, double* rstd, T* running_mean, T* running_var, const T* x,
                        const T* weight, const T* bias, index_t N, index_t C, index_t L, bool training,
                        double momentum, double eps, cudaStream_t stream) {
  if (C <= 0) return;
  auto* k = batch_norm_fwd_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(C), block_threads(N * L), 0, stream)(
      y, mean, rstd, running_mean, running_var, x, weight, bias, N, C, L, training, momentum, eps);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, bool training,
                         cudaStream_t stream) {
  if (C <= 0 || (!dx && !dweight && !dbias)) return;
  auto* k = batch_norm_bwd_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(C), block_threads(N * L), 0, stream)(dx, dweight, dbias, dy, x, mean, rstd,
                                                                             weight, N, C, L, training);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void group_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t N,
                        index_t C, index_t L, index_t G, double eps, cudaStream_t stream) {
  if (N <= 0 || G <= 0) return;
  auto* k = group_norm_fwd_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(N * G), block_threads(C / G * L), 0, stream)(y, mean, rstd, x, weight, bias,
                                                                                     C, L, G, eps);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void group_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, index_t G,
                         cudaStream_t stream) {
  if (G <= 0 || C <= 0) return;
  if (dx && N > 0) {
    auto* k = group_norm_dx_kernel<T>;
    NNFAST_LAUNCH(k, static_cast<unsigned>(N * G), block_threads(C / G * L), 0, stream)(dx, dy, x, mean, rstd, weight,
                                                                                       C, L, G);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (dweight || dbias) {
    auto* k = group_norm_param_kernel<T>;
    NNFAST_LAUNCH(k, static_cast<unsigned>(C), block_threads(N * L), 0, stream)(dweight, dbias, dy, x, mean, rstd, N,
                                                                                C, L, G);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void instance_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* rstd,
                                  index_t N, index_t C, index_t L, double momentum, double eps, cudaStream_t stream) {
  if (C <= 0 || (!running_mean && !running_var)) return;
  auto* k = instance_running_kernel<T>;
  NNFAST_LAUNCH(k, grid_of(C, 128), 128, 0, stream)(running_mean, running_var, mean, rstd, N, C, L, momentum, eps);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void weight_norm_forward(T* w, double* norm, const T* v, const T* g, index_t N, index_t C, index_t L,
                         cudaStream_t stream) {
  if (C <= 0) return;
  auto* k = weight_norm_fwd_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(C), block_threads(N * L), 0, stream)(w, norm, v, g, N, C, L);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void weight_norm_backward(T* dv, T* dg, const T* dw, const T* v, const T* g, const double* norm, index_t N,
                          index_t C, index_t L, cudaStream_t stream) {
  if (C <= 0 || (!dv && !dg)) return;
  auto* k = weight_norm_bwd_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(C), block_threads(N * L), 0, stream)(dv, dg, dw, v, g, norm, N, C, L);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void spectral_norm_power_iteration(T* u, T* v, const T* W, index_t M, index_t D, int n_iter, double eps,
                                   cudaStream_t stream) {
  if (n_iter <= 0) return;
  Scratch<double> ws(M + D, stream);
  auto* k = spectral_power_kernel<T>;
  NNFAST_LAUNCH(k, 1, block_threads(M > D ? M : D, 1024), 0, stream)(u, v, W, ws.p, ws.p + M, M, D, n_iter, eps);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
double spectral_norm_forward(T* y, const T* W, const T* u, const T* v, index_t M, index_t D, cudaStream_t stream) {
  Scratch<double> ws(1, stream);
  auto* ks = spectral_sigma_kernel<T>;
  NNFAST_LAUNCH(ks, 1, block_threads(M * 32, 1024), 0, stream)(ws.p, W, u, v, M, D);
  NNFAST_CUDA_CHECK_LAUNCH();
  if (M * D > 0) {
    auto* ky = spectral_scale_kernel<T>;
    NNFAST_LAUNCH(ky, elementwise_grid(M * D, 256), 256, 0, stream)(y, W, ws.p, M * D);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  double sigma = 0;
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(&sigma, ws.p, sizeof(double), cudaMemcpyDeviceToHost, stream));
  NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  return sigma;
}

template <typename T>
void spectral_norm_backward(T* dW, const T* dy, const T* W, const T* u, const T* v, double sigma, index_t M,
                            index_t D, cudaStream_t stream) {
  const index_t n = M * D;
  if (n <= 0) return;
  // Fixed chunk count (a function of n only): the summation order never changes.
  const index_t chunks = (n + 8191) / 8192;
  const int P = static_cast<int>(chunks < 256 ? chunks : 256);
  Scratch<double> ws(P, stream);
  auto* kp = dot_partial_kernel<T>;
  NNFAST_LAUNCH(kp, static_cast<unsigned>(P), 256, 0, stream)(ws.p, dy, W, n);
  NNFAST_CUDA_CHECK_LAUNCH();
  auto* kb = spectral_bwd_kernel<T>;
  NNFAST_LAUNCH(kb, elementwise_grid(n, 256), 256, 0, stream)(dW, dy, u, v, ws.p, P, sigma, M, D);
  NNFAST_CUDA_CHECK_LAUNCH();
}

#define NNFAST_CUDA_NORM_API(T)                                                                                  \
  template void layer_norm_forward<T>(T*, double*, double*, const T*, const T*, const T*, index_t, index_t,      \
                                      double, bool, cudaStream_t);                                               \
  template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,   \
                                       index_t, index_t, bool, cudaStream_t);                                    \
  template void batch_norm_forward<T>(T*, double*, double*, T*, T*, const T*, const T*, const T*, index_t,       \
                                      index_t, index_t, bool, double, double, cudaStream_t);                     \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,   \
                                       index_t, index_t, index_t, bool, cudaStream_t);                           \
  template void group_norm_forward<T>(T*, double*, double*, const T*, const T*, const T*, index_t, index_t,      \
                                      index_t, index_t, double, cudaStream_t);                                   \
  template void group_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,   \
                                       index_t, index_t, index_t, index_t, cudaStream_t);                        \
  template void instance_norm_update_running<T>(T*, T*, const double*, const double*, index_t, index_t,          \
                                                index_t, double, double, cudaStream_t);                          \
  template void weight_norm_forward<T>(T*, double*, const T*, const T*, index_t, index_t, index_t, cudaStream_t); \
  template void weight_norm_backward<T>(T*, T*, const T*, const T*, const T*, const double*, index_t, index_t,   \
                                        index_t, cudaStream_t);                                                  \
  template void spectral_norm_power_iteration<T>(T*, T*, const T*, index_t, index_t, int, double, cudaStream_t); \
  template double spectral_norm_forward<T>(T*, const T*, const T*, const T*, index_t, index_t, cudaStream_t);    \
  template void spectral_norm_backward<T>(T*, const T*, const T*, const T*, const T*, double, index_t, index_t,  \
                                          cudaStream_t);

NNFAST_CUDA_NORM_API(float)
NNFAST_CUDA_NORM_API(double)
#undef NNFAST_CUDA_NORM_API

}  // namespace cuda
}  // namespace nnfast

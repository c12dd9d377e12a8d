// CUDA linear + softmax cross-entropy without the (N, C) logits (nnfast/cuda/loss.h),
// the algorithm of csrc/cpu/loss_linear_ce.cpp on the device.
//
// The logits z = x W^T + b are made one (row block x class chunk) tile at a time by
// nnfast::cuda::gemm (bias fused in its epilogue). Forward: one warp per tile row folds
// the tile into the row's online log-sum-exp (m, s) and picks the target logit (and, for
// label smoothing, adds the row's logit sum), all in double; a last pass writes lse and
// the row losses, reduced in a fixed tree (cuda/reduce.cuh). Backward: each tile is made
// again and turned in place into dz = g k (softmax - smoothed one-hot), then three GEMMs:
// dx (+)= dz W over class chunks, dW += dz^T x, db += colsum(dz). dW / db accumulate
// (nnfast/common.h). Extra device memory: one tile (<= kLinearCETileElems values) plus O(N) doubles.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include "core/linear_ce_tiles.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nnfast/cuda/gemm.h"
#include "nnfast/cuda/loss.h"

namespace nnfast::cuda {
namespace linear_ce_detail {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;  // one warp per row
constexpr index_t kMaxGrid = 65535;

inline unsigned grid_for(index_t work, index_t per_block) {
  const index_t g = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<index_t>(1, std::min(g, kMaxGrid)));
}

// tile[i, j] = x[r0 + i, :] . W[c0 + j, :] + b[c0 + j]   (nr x nc, row stride nc)
template <typename T>
void logits_tile(T* tile, View2<T> x, View2<T> W, const T* b, index_t r0, index_t nr, index_t c0, index_t nc,
                 index_t H, cudaStream_t stream) {
  GemmEpilogue<T> ep;
  ep.bias = b ? b + c0 : nullptr;
  gemm<T>(nr, nc, H, T(1), x.p + r0 * x.rs, x.rs, x.cs, W.p + c0 * W.rs, W.cs, W.rs, T(0), tile, nc, 1, ep, stream);
}

// Row state of a row block: running max m, sum s of exp(z - m), target logit zt, logit sum zs.
struct RowState {
  double *m, *s, *zt, *zs;
};

__global__ void state_reset_kernel(RowState st, index_t nr) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < nr;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    st.m[i] = -HUGE_VAL;
    st.s[i] = 0.0;
    st.zt[i] = 0.0;
    st.zs[i] = 0.0;
  }
}

// Folds tile rows (nr x nc, classes c0..c0+nc) into the row state; target: the block's rows.
template <typename T>
__global__ void fold_tile_kernel(RowState st, const T* tile, const std::int64_t* target, index_t nr, index_t nc,
                                 index_t c0, bool smoothing) {
  const int lane = threadIdx.x & 31;
  const index_t warps = static_cast<index_t>(gridDim.x) * kRowsPerBlock;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5); i < nr; i += warps) {
    const T* z = tile + i * nc;
    T tm = static_cast<T>(-HUGE_VAL);
    for (index_t j = lane; j < nc; j += 32) tm = (z[j] > tm || z[j] != z[j]) ? z[j] : tm;
    tm = reduce::warp_max(tm);
    const double m_old = st.m[i], mn = m_old > double(tm) ? m_old : double(tm);
    double se = 0.0, zsum = 0.0;
    for (index_t j = lane; j < nc; j += 32) {
      se += static_cast<double>(scalar::exp(static_cast<T>(z[j] - static_cast<T>(mn))));
      if (smoothing) zsum += static_cast<double>(z[j]);
    }
    se = reduce::warp_sum(se);
    if (smoothing) zsum = reduce::warp_sum(zsum);
    if (lane == 0) {
      const double carry = st.s[i] == 0.0 ? 0.0 : st.s[i] * ::exp(m_old - mn);
      st.s[i] = carry + se;
      st.m[i] = mn;
      const std::int64_t t = target[i];
      if (t >= c0 && t < c0 + nc) st.zt[i] = static_cast<double>(z[t - c0]);
      if (smoothing) st.zs[i] += zsum;
    }
  }
}

// lse and the row losses of a finished row block (rows r0 + i of the whole input).
template <typename T>
__global__ void finish_rows_kernel(T* loss_rows, double* row_loss, double* row_count, T* lse, RowState st,
                                   const std::int64_t* target, index_t r0, index_t nr, index_t C,
                                   index_t ignore_index, double eps) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < nr;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = r0 + i;
    const double l_se = st.m[i] + ::log(st.s[i]);
    lse[r] = static_cast<T>(l_se);
    double l = 0.0, counted = 0.0;
    if (target[r] != ignore_index) {
      l = (1.0 - eps) * (l_se - st.zt[i]);
      if (eps > 0.0) l += eps / static_cast<double>(C) * (static_cast<double>(C) * l_se - st.zs[i]);
      counted = 1.0;
    }
    if (loss_rows) loss_rows[r] = static_cast<T>(l);
    if (row_loss) row_loss[r] = l;
    if (row_count) row_count[r] = counted;
  }
}

// out[r] = 1 for a counted row (target != ignore_index), else 0.
__global__ void counted_rows_kernel(double* out, const std::int64_t* target, index_t N, index_t ignore_index) {
  for (index_t r = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; r < N;
       r += static_cast<index_t>(gridDim.x) * blockDim.x)
    out[r] = target[r] != ignore_index ? 1.0 : 0.0;
}

// loss[0] = total (sum) or total / count (mean; 0 / 0 = NaN, as the CPU).
template <typename T>
__global__ void reduced_loss_kernel(T* loss, const double* total, const double* count) {
  loss[0] = static_cast<T>(count ? *total / *count : *total);
}

// The tile in place: z -> dz = g k (softmax(z) - eps / C - (1 - eps) onehot(t)); ignored rows 0.
template <typename T>
__global__ void tile_grad_kernel(T* z, const T* lse, const std::int64_t* target, const T* g_rows, T g_scalar,
                                 const double* count, index_t r0, index_t nr, index_t c0, index_t nc, index_t C,
                                 index_t ignore_index, double eps) {
  const double k = count ? 1.0 / *count : 1.0;
  const index_t n = nr * nc;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t i = e / nc, j = e - i * nc, r = r0 + i;
    const std::int64_t t = target[r];
    if (t == ignore_index) {
      z[e] = T(0);
      continue;
    }
    const double g = (g_rows ? static_cast<double>(g_rows[r]) : static_cast<double>(g_scalar)) * k;
    T d = scalar::exp(static_cast<T>(z[e] - lse[r])) * static_cast<T>(g) +
          static_cast<T>(-g * eps / static_cast<double>(C));
    if (t == c0 + j) d -= static_cast<T>(g * (1.0 - eps));
    z[e] = d;
  }
}

}  // namespace linear_ce_detail

template <typename T>
void linear_cross_entropy_forward(T* loss, T* lse, View2<T> x, View2<T> W, const T* b, const std::int64_t* target,
                                  index_t N, index_t H, index_t C, index_t ignore_index, double label_smoothing,
                                  Reduction red, index_t chunk, cudaStream_t stream) {
  using namespace linear_ce_detail;
  const bool reduced = red != Reduction::None;
  if (N <= 0) {
    if (reduced) {
      Scratch<double> zero(2, stream);
      NNFAST_CUDA_CHECK(cudaMemsetAsync(zero.p, 0, 2 * sizeof(double), stream));
      NNFAST_LAUNCH(reduced_loss_kernel<T>, 1, 1, 0, stream)(loss, zero.p, red == Reduction::Mean ? zero.p + 1
                                                                                                   : nullptr);
      NNFAST_CUDA_CHECK_LAUNCH();
    }
    return;
  }
  const LinearCETiles bk = linear_ce_tiles(N, C, chunk);
  Scratch<T> tile(std::min(N, bk.rows) * bk.classes, stream);
  Scratch<double> state(4 * bk.rows, stream);
  // reduced: [0, N) row losses, [N, 2N) counted flags, 2N total, 2N + 1 count
  Scratch<double> rows(reduced ? 2 * N + 2 : 0, stream);
  const RowState st{state.p, state.p + bk.rows, state.p + 2 * bk.rows, state.p + 3 * bk.rows};
  for (index_t r0 = 0; r0 < N; r0 += bk.rows) {
    const index_t nr = std::min(bk.rows, N - r0);
    NNFAST_LAUNCH(state_reset_kernel, grid_for(nr, kThreads), kThreads, 0, stream)(st, nr);
    NNFAST_CUDA_CHECK_LAUNCH();
    for (index_t c0 = 0; c0 < C; c0 += bk.classes) {
      const index_t nc = std::min(bk.classes, C - c0);
      logits_tile(tile.p, x, W, b, r0, nr, c0, nc, H, stream);
      NNFAST_LAUNCH(fold_tile_kernel<T>, grid_for(nr, kRowsPerBlock), kThreads, 0, stream)(
          st, tile.p, target + r0, nr, nc, c0, label_smoothing > 0.0);
      NNFAST_CUDA_CHECK_LAUNCH();
    }
    NNFAST_LAUNCH(finish_rows_kernel<T>, grid_for(nr, kThreads), kThreads, 0, stream)(
        reduced ? nullptr : loss, reduced ? rows.p : nullptr, reduced ? rows.p + N : nullptr, lse, st, target, r0,
        nr, C, ignore_index, label_smoothing);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (reduced) {
    reduce::device_sum(rows.p + 2 * N, rows.p, N, stream);
    double* count = nullptr;
    if (red == Reduction::Mean) {
      count = rows.p + 2 * N + 1;
      reduce::device_sum(count, rows.p + N, N, stream);
    }
    NNFAST_LAUNCH(reduced_loss_kernel<T>, 1, 1, 0, stream)(loss, rows.p + 2 * N, count);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void linear_cross_entropy_backward(T* dx, T* dW, T* db, const T* g_rows, T g_scalar, const T* lse, View2<T> x,
                                   View2<T> W, const T* b, const std::int64_t* target, index_t N, index_t H,
                                   index_t C, index_t ignore_index, double label_smoothing, Reduction red,
                                   index_t chunk, cudaStream_t stream) {
  using namespace linear_ce_detail;
  if (N <= 0) return;  // dx is empty; dW / db gain nothing (they accumulate)
  // mean: k = 1 / (number of counted rows), on the device
  Scratch<double> cnt(red == Reduction::Mean ? N + 1 : 0, stream);
  const double* count = nullptr;
  if (red == Reduction::Mean) {
    NNFAST_LAUNCH(counted_rows_kernel, grid_for(N, kThreads), kThreads, 0, stream)(cnt.p, target, N, ignore_index);
    NNFAST_CUDA_CHECK_LAUNCH();
    reduce::device_sum(cnt.p + N, cnt.p, N, stream);
    count = cnt.p + N;
  }
  const LinearCETiles bk = linear_ce_tiles(N, C, chunk);
  Scratch<T> tile(std::min(N, bk.rows) * bk.classes, stream);
  T* z = tile.p;
  for (index_t r0 = 0; r0 < N; r0 += bk.rows) {
    const index_t nr = std::min(bk.rows, N - r0);
    for (index_t c0 = 0; c0 < C; c0 += bk.classes) {
      const index_t nc = std::min(bk.classes, C - c0);
      logits_tile(z, x, W, b, r0, nr, c0, nc, H, stream);
      NNFAST_LAUNCH(tile_grad_kernel<T>, grid_for(nr * nc, kThreads), kThreads, 0, stream)(
          z, lse, target, g_rows, g_scalar, count, r0, nr, c0, nc, C, ignore_index, label_smoothing);
      NNFAST_CUDA_CHECK_LAUNCH();
      if (dx)  // dx[r0:r0+nr, :] (+)= dz (nr x nc) . W[c0:c0+nc, :] (nc x H)
        gemm<T>(nr, H, nc, T(1), z, nc, 1, W.p + c0 * W.rs, W.rs, W.cs, c0 == 0 ? T(0) : T(1), dx + r0 * H, H, 1,
                GemmEpilogue<T>(), stream);
      if (dW)  // dW[c0:c0+nc, :] += dz^T (nc x nr) . x[r0:r0+nr, :] (nr x H)
        gemm<T>(nc, H, nr, T(1), z, 1, nc, x.p + r0 * x.rs, x.rs, x.cs, T(1), dW + c0 * H, H, 1, GemmEpilogue<T>(),
                stream);
      if (db) bias_grad<T>(db + c0, z, nc, 1, nr, nc, /*accumulate=*/true, stream);
    }
  }
}

#define NNFAST_CUDA_LINEAR_CE_INSTANTIATE(T)                                                                      \
  template void linear_cross_entropy_forward<T>(T*, T*, View2<T>, View2<T>, const T*, const std::int64_t*,       \
                                                index_t, index_t, index_t, index_t, double, Reduction, index_t, \
                                                cudaStream_t);                                                   \
  template void linear_cross_entropy_backward<T>(T*, T*, T*, const T*, T, const T*, View2<T>, View2<T>,          \
                                                 const T*, const std::int64_t*, index_t, index_t, index_t,       \
                                                 index_t, double, Reduction, index_t, cudaStream_t);
NNFAST_CUDA_LINEAR_CE_INSTANTIATE(float)
NNFAST_CUDA_LINEAR_CE_INSTANTIATE(double)
#undef NNFAST_CUDA_LINEAR_CE_INSTANTIATE

}  // namespace nnfast::cuda

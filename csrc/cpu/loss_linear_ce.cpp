// Linear + softmax cross-entropy without the (N, C) logits.
//
// The logits z = x W^T + b are produced one (row block x class chunk) tile at
// a time by nnfast::gemm (bias fused in its epilogue); the forward folds each
// tile into a per-row online log-sum-exp (m, s) plus the target logit and,
// for label smoothing, the row's logit sum. The backward recomputes each tile,
// turns it into dz = g k (softmax - smoothed one-hot) in place, and feeds it to
// three GEMMs: dx (+)= dz W over class chunks, dW += dz^T x, db += colsum(dz)
// (dW / db accumulate into the caller's buffer, nnfast/common.h). Extra memory is one
// tile (<= kLinearCETileElems values, core/linear_ce_tiles.h) plus O(row block) row state.
// Small heads (a char-level vocabulary) may instead keep the whole (N, C) logits: the
// forward writes its tiles there and the backward reads them back instead of
// recomputing them (one GEMM fewer; the same values, the same bits).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/linear_ce_tiles.h"
#include "core/parallel_for.h"
#include "cpu/loss_rows.h"
#include "nnfast/gemm.h"
#include "nnfast/loss.h"

namespace nnfast::cpu {
namespace {

// tile[i, j] = x[r0 + i, :] . W[c0 + j, :] + b[c0 + j]   (nr x nc, row stride ld)
template <typename T>
void logits_tile(T* tile, index_t ld, View2<T> x, View2<T> W, const T* b, index_t r0, index_t nr, index_t c0,
                 index_t nc, index_t H) {
  GemmEpilogue<T> ep;
  ep.bias = b ? b + c0 : nullptr;
  gemm<T>(nr, nc, H, T(1), x.p + r0 * x.rs, x.rs, x.cs, W.p + c0 * W.rs, W.cs, W.rs, T(0), tile, ld, 1, ep);
}

template <typename T>
index_t row_grain(index_t nc) {
  return std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(1, nc));
}

}  // namespace

template <typename T>
void linear_cross_entropy_forward(T* loss, T* lse, View2<T> x, View2<T> W, const T* b, const std::int64_t* target,
                                  index_t N, index_t H, index_t C, index_t ignore_index, double label_smoothing,
                                  Reduction red, index_t chunk, T* logits) {
  const auto& ops = isa_ops<loss_detail::RowOps<T>>();
  const double eps = label_smoothing;
  const LinearCETiles bk = linear_ce_tiles(N, C, chunk);
  // With `logits` the tiles are made in place there (row stride C) for the backward to reuse.
  std::vector<T> tile(logits ? 0 : static_cast<size_t>(std::min(N, bk.rows) * bk.classes));
  std::vector<double> m(bk.rows), s(bk.rows), zt(bk.rows), zs(bk.rows);
  double total = 0.0, count = 0.0;
  for (index_t r0 = 0; r0 < N; r0 += bk.rows) {
    const index_t nr = std::min(bk.rows, N - r0);
    std::fill(m.begin(), m.end(), -std::numeric_limits<double>::infinity());
    std::fill(s.begin(), s.end(), 0.0);
    std::fill(zt.begin(), zt.end(), 0.0);
    std::fill(zs.begin(), zs.end(), 0.0);
    for (index_t c0 = 0; c0 < C; c0 += bk.classes) {
      const index_t nc = std::min(bk.classes, C - c0);
      const index_t ld = logits ? C : nc;
      T* z0 = logits ? logits + r0 * C + c0 : tile.data();
      logits_tile(z0, ld, x, W, b, r0, nr, c0, nc, H);
      parallel_for(nr, row_grain<T>(nc), [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) {
          const T* z = z0 + i * ld;
          const T tm = ops.max(z, nc);
          const double mn = std::max(m[i], static_cast<double>(tm));
          const double carry = s[i] == 0.0 ? 0.0 : s[i] * std::exp(m[i] - mn);
          s[i] = carry + static_cast<double>(ops.sumexp(z, nc, static_cast<T>(mn), nullptr, nullptr));
          m[i] = mn;
          const std::int64_t t = target[r0 + i];
          if (t >= c0 && t < c0 + nc) zt[i] = z[t - c0];
          if (eps > 0.0) zs[i] += static_cast<double>(ops.shift_dot(z, nullptr, nc, tm)) + nc * double(tm);
        }
      });
    }
    for (index_t i = 0; i < nr; ++i) {
      const double l_se = m[i] + std::log(s[i]);
      lse[r0 + i] = static_cast<T>(l_se);
      const std::int64_t t = target[r0 + i];
      double l = 0.0;
      if (t != ignore_index) {
        l = (1.0 - eps) * (l_se - zt[i]);
        if (eps > 0.0) l += eps / static_cast<double>(C) * (static_cast<double>(C) * l_se - zs[i]);
        count += 1.0;
      }
      if (red == Reduction::None) loss[r0 + i] = static_cast<T>(l);
      else total += l;
    }
  }
  if (red == Reduction::Mean) loss[0] = static_cast<T>(total / count);
  else if (red == Reduction::Sum) loss[0] = static_cast<T>(total);
}

template <typename T>
void linear_cross_entropy_backward(T* dx, T* dW, T* db, const T* g_rows, T g_scalar, const T* lse, View2<T> x,
                                   View2<T> W, const T* b, const std::int64_t* target, index_t N, index_t H,
                                   index_t C, index_t ignore_index, double label_smoothing, Reduction red,
                                   index_t chunk, const T* logits) {
  const auto& ops = isa_ops<loss_detail::RowOps<T>>();
  const double eps = label_smoothing;
  double k = 1.0;
  if (red == Reduction::Mean) {
    double count = 0.0;
    for (index_t r = 0; r < N; ++r) count += target[r] != ignore_index ? 1.0 : 0.0;
    k = 1.0 / count;
  }
  if (N == 0) return;  // dx is empty; dW / db gain nothing (they accumulate)
  const LinearCETiles bk = linear_ce_tiles(N, C, chunk);
  std::vector<T> tile(static_cast<size_t>(std::min(N, bk.rows) * bk.classes));
  for (index_t r0 = 0; r0 < N; r0 += bk.rows) {
    const index_t nr = std::min(bk.rows, N - r0);
    for (index_t c0 = 0; c0 < C; c0 += bk.classes) {
      const index_t nc = std::min(bk.classes, C - c0);
      T* z = tile.data();
      if (!logits) logits_tile(z, nc, x, W, b, r0, nr, c0, nc, H);  // else the forward's, read below
      parallel_for(nr, row_grain<T>(nc), [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) {
          T* zr = z + i * nc;
          const index_t r = r0 + i;
          const std::int64_t t = target[r];
          if (t == ignore_index) {
            std::fill(zr, zr + nc, T(0));
            continue;
          }
          const double g = (g_rows ? static_cast<double>(g_rows[r]) : static_cast<double>(g_scalar)) * k;
          ops.sumexp(logits ? logits + r * C + c0 : zr, nc, lse[r], zr, nullptr);  // zr = softmax probabilities
          ops.affine(zr, nc, static_cast<T>(g), static_cast<T>(-g * eps / static_cast<double>(C)), nullptr);
          if (t >= c0 && t < c0 + nc) zr[t - c0] -= static_cast<T>(g * (1.0 - eps));
        }
      });
      if (dx)  // dx[r0:r0+nr, :] (+)= dz (nr x nc) . W[c0:c0+nc, :] (nc x H)
        gemm<T>(nr, H, nc, T(1), z, nc, 1, W.p + c0 * W.rs, W.rs, W.cs, c0 == 0 ? T(0) : T(1), dx + r0 * H, H, 1);
      if (dW)  // dW[c0:c0+nc, :] += dz^T (nc x nr) . x[r0:r0+nr, :] (nr x H)
        gemm<T>(nc, H, nr, T(1), z, 1, nc, x.p + r0 * x.rs, x.rs, x.cs, T(1), dW + c0 * H, H, 1);
      if (db) bias_grad<T>(db + c0, z, nc, 1, nr, nc, /*accumulate=*/true);
    }
  }
}

template void linear_cross_entropy_forward<float>(float*, float*, View2<float>, View2<float>, const float*,
                                                  const std::int64_t*, index_t, index_t, index_t, index_t, double,
                                                  Reduction, index_t, float*);
template void linear_cross_entropy_forward<double>(double*, double*, View2<double>, View2<double>, const double*,
                                                   const std::int64_t*, index_t, index_t, index_t, index_t, double,
                                                   Reduction, index_t, double*);
template void linear_cross_entropy_backward<float>(float*, float*, float*, const float*, float, const float*,
                                                   View2<float>, View2<float>, const float*, const std::int64_t*,
                                                   index_t, index_t, index_t, index_t, double, Reduction, index_t,
                                                   const float*);
template void linear_cross_entropy_backward<double>(double*, double*, double*, const double*, double, const double*,
                                                    View2<double>, View2<double>, const double*, const std::int64_t*,
                                                    index_t, index_t, index_t, index_t, double, Reduction, index_t,
                                                    const double*);

}  // namespace nnfast::cpu

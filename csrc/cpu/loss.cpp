// Class-dim losses: fused softmax cross-entropy (class-index and probability
// targets), NLL, and the shared gradient scaling of their backward.
//
// Rows r = (n, s) run in parallel in fixed blocks of kRowBlock rows; each
// block's loss sum lands in its own slot and the slots are added in order, so
// a reduced loss is bit-identical for any thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu_features.h"
#include "core/env_switch.h"
#include "core/stream_store.h"
#include "core/parallel_for.h"
#include "cpu/loss_rows.h"
#include "nnfast/loss.h"

namespace nnfast::cpu {

namespace loss_detail {

constexpr index_t kRowBlock = 16;

// Sum over fixed row blocks of f(lo, hi) -> double, in block order.
// `work_per_row` sizes the parallel grain (about kElementwiseGrain per thread).
template <typename F>
double blocked_rows(index_t R, index_t work_per_row, F&& f) {
  if (R <= 0) return 0.0;
  const index_t nb = (R + kRowBlock - 1) / kRowBlock;
  std::vector<double> part(static_cast<size_t>(nb), 0.0);
  const index_t per_block = kRowBlock * std::max<index_t>(1, work_per_row);
  const index_t grain = std::max<index_t>(1, kElementwiseGrain / per_block);
  parallel_for(nb, grain, [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) part[b] = f(b * kRowBlock, std::min(R, (b + 1) * kRowBlock));
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

// NNFAST_CE_STREAM=0: cross_entropy writes a big dx with ordinary stores (A/B).
inline const bool kCeStream = env_switch_on("NNFAST_CE_STREAM");
// NNFAST_CE_PREFETCH=0: no prefetch of the next row of contiguous logits (A/B).
inline const bool kCePrefetch = env_switch_on("NNFAST_CE_PREFETCH");

// NNFAST_CE_FAST=0: cross_entropy's rows with RowOps max / sumexp instead of
// fast_max / fast_sumexp (A/B: fewer vector ops per element, exp within 1 ulp).
inline const bool kCeFast = env_switch_on("NNFAST_CE_FAST");

// NNFAST_CE_PIPE=0: with NNFAST_CE_FAST, each row's streamed gradient in a pass of
// its own instead of inside the next row's max loop (A/B; the same bits).
inline const bool kCePipe = env_switch_on("NNFAST_CE_PIPE");

inline std::int64_t target_at(const TargetView& t, index_t r, index_t S) {
  const index_t n = S == 1 ? r : r / S, s = r - n * S;
  return t.p[n * t.sn + s * t.ss];
}

// Sum of the class weights of the non-ignored rows (their count when unweighted).
template <typename T>
double target_weight_sum(TargetView tg, const T* w, index_t N, index_t S, index_t ignore_index) {
  double d = 0.0;
  const index_t R = N * S;
  for (index_t r = 0; r < R; ++r) {
    const std::int64_t t = target_at(tg, r, S);
    if (t == ignore_index) continue;
    d += w ? static_cast<double>(w[t]) : 1.0;
  }
  return d;
}

}  // namespace loss_detail

using namespace loss_detail;

index_t find_bad_target(TargetView target, index_t N, index_t S, index_t C, index_t ignore_index) {
  const index_t R = N * S;
  for (index_t r = 0; r < R; ++r) {
    const std::int64_t t = target_at(target, r, S);
    if (t != ignore_index && (t < 0 || t >= C)) return r;
  }
  return -1;
}

// ------------------------------------------------------------------ cross_entropy (class index)
template <typename T>
void cross_entropy_forward(T* loss, T* dx, View3<T> x, TargetView tg, const T* w, index_t N, index_t C, index_t S,
                           index_t ignore_index, double label_smoothing, Reduction red) {
  const index_t R = N * S;
  const RowOps<T>& ops = isa_ops<RowOps<T>>();
  const double eps = label_smoothing;
  const double denom = red == Reduction::Mean ? target_weight_sum(tg, w, N, S, ignore_index) : 1.0;
  const double k = 1.0 / denom;  // inf when every row is ignored; only scales non-ignored rows
  double Wsum = static_cast<double>(C);
  if (w) {
    Wsum = 0.0;
    for (index_t c = 0; c < C; ++c) Wsum += w[c];
  }
  const bool gather = x.sc != 1;     // strided class dim: copy the row to a buffer
  const bool scatter = dx && S != 1;  // dx row (n, :, s) has stride S
  // A dx past the cache: exp(x - m) goes to a cached scratch row, and dx is written
  // once from it with non-temporal stores (no read-for-ownership of dx).
  const bool stream = dx && !scatter && kCeStream &&
                      static_cast<size_t>(R) * static_cast<size_t>(C) * sizeof(T) > ::nnfast::NNFAST_VM_NS::stream_store::kStreamBytes;

  const bool prefetch = kCePrefetch && !gather && S == 1;  // row n + 1 at x.p + (n + 1) x.sn
  // Pipelined rows (NNFAST_CE_PIPE): row r's streamed gradient is written inside row
  // r + 1's max loop (fast_max_emit), two scratch rows alternating. Needs b = -0
  // (no label smoothing, k > 0), where affine_stream's a e + b is a e.
  const double b0 = -k * eps / static_cast<double>(C);
  const bool pipe = stream && kCeFast && kCePipe && eps == 0.0 && std::signbit(static_cast<T>(b0)) &&
                    !std::isnan(b0);

  double total = blocked_rows(R, C, [&](index_t r0, index_t r1) {
    std::vector<T> xbuf(gather ? C : 0), dbuf(scatter || stream ? C : 0), dbuf2(pipe ? C : 0);
    T* bufs[2] = {dbuf.data(), dbuf2.data()};
    int cur = 0;
    T* pend_d = nullptr;  // the previous row's pending gradient: d = pend_a pend_e (- pend_fix at pend_t)
    const T* pend_e = nullptr;
    T pend_a = 0, pend_fix = 0;
    index_t pend_t = 0;
    double acc = 0.0;
    for (index_t r = r0; r < r1; ++r) {
      const index_t n = S == 1 ? r : r / S, s = r - n * S;
      const std::int64_t t = tg.p[n * tg.sn + s * tg.ss];
      T* dxr = dx ? dx + n * C * S + s : nullptr;  // element c at dxr[c * S]
      if (t == ignore_index) {
        if (dx)
          for (index_t c = 0; c < C; ++c) dxr[c * S] = T(0);
        if (red == Reduction::None) loss[r] = T(0);
        continue;
      }
      const T* xr = x.p + n * x.sn + s * x.ss;
      if (gather) {
        for (index_t c = 0; c < C; ++c) xbuf[c] = xr[c * x.sc];
        xr = xbuf.data();
      }
      T* dr = dx ? (scatter || stream ? bufs[cur] : dxr) : nullptr;
      const double wt = w ? static_cast<double>(w[t]) : 1.0;
      const T* next = prefetch && r + 1 < R ? x.p + (n + 1) * x.sn : nullptr;
      T m, se;
      if (pipe) {
        m = ops.fast_max_emit(xr, C, pend_d, pend_e, pend_a, pend_t, pend_fix);
        pend_d = nullptr;
        se = ops.fast_sumexp(xr, C, m, dr, next);
      } else {
        m = kCeFast ? ops.fast_max(xr, C) : ops.max(xr, C);
        se = kCeFast ? ops.fast_sumexp(xr, C, m, dr, next) : ops.sumexp(xr, C, m, dr, next);
      }
      const double lse_m = static_cast<double>(std::log(se));  // lse - m (logf for float: se >= 1)
      double l = (1.0 - eps) * wt * (lse_m - (static_cast<double>(xr[t]) - m));
      if (eps > 0.0) {
        const double sd = ops.shift_dot(xr, w, C, m);  // sum_c w_c (x_c - m)
        l += eps / static_cast<double>(C) * (Wsum * lse_m - sd);
      }
      if (dr) {
        const double a = k * ((1.0 - eps) * wt + eps * Wsum / static_cast<double>(C)) / se;
        const double b = -k * eps / static_cast<double>(C);
        const T fix = static_cast<T>(k * (1.0 - eps) * wt);
        if (pipe) {
          pend_d = dxr, pend_e = dr, pend_a = static_cast<T>(a), pend_t = t, pend_fix = fix;
          cur ^= 1;
        } else if (stream) {
          ops.affine_stream(dxr, dr, C, static_cast<T>(a), static_cast<T>(b), eps > 0.0 ? w : nullptr, t, fix);
        } else {
          ops.affine(dr, C, static_cast<T>(a), static_cast<T>(b), eps > 0.0 ? w : nullptr);
          dr[t] -= fix;
        }
        if (scatter)
          for (index_t c = 0; c < C; ++c) dxr[c * S] = dr[c];
      }
      if (red == Reduction::None) loss[r] = static_cast<T>(l);
      else acc += l;
    }
    if (pend_d) ops.affine_stream(pend_d, pend_e, C, pend_a, static_cast<T>(b0), nullptr, pend_t, pend_fix);
    if (stream) ops.fence();
    return acc;
  });
  if (red != Reduction::None) loss[0] = static_cast<T>(total * k);
}

// ------------------------------------------------------------------ cross_entropy (probabilities)
template <typename T>
void cross_entropy_prob_forward(T* loss, T* dx, T* dtarget, View3<T> x, View3<T> tgt, const T* w, index_t N,
                                index_t C, index_t S, double label_smoothing, Reduction red) {
  const index_t R = N * S;
  const RowOps<T>& ops = isa_ops<RowOps<T>>();
  const double eps = label_smoothing;
  const double k = red == Reduction::Mean ? 1.0 / static_cast<double>(R) : 1.0;
  const bool gx = x.sc != 1, gt = tgt.sc != 1, scatter = S != 1;

  double total = blocked_rows(R, 2 * C, [&](index_t r0, index_t r1) {
    std::vector<T> xbuf(gx ? C : 0), tbuf(gt ? C : 0), dbuf(C);
    double acc = 0.0;
    for (index_t r = r0; r < r1; ++r) {
      const index_t n = S == 1 ? r : r / S, s = r - n * S;
      const T* xr = x.p + n * x.sn + s * x.ss;
      const T* tr = tgt.p + n * tgt.sn + s * tgt.ss;
      if (gx) {
        for (index_t c = 0; c < C; ++c) xbuf[c] = xr[c * x.sc];
        xr = xbuf.data();
      }
      if (gt) {
        for (index_t c = 0; c < C; ++c) tbuf[c] = tr[c * tgt.sc];
        tr = tbuf.data();
      }
      T* e = dbuf.data();
      const T m = ops.max(xr, C);
      const T se = ops.sumexp(xr, C, m, e, nullptr);
      const double lse_m = static_cast<double>(std::log(se));
      double Q = 0.0, qx = 0.0;
      const double off = eps / static_cast<double>(C);
      for (index_t c = 0; c < C; ++c) {
        const double q = (w ? static_cast<double>(w[c]) : 1.0) * ((1.0 - eps) * tr[c] + off);
        Q += q;
        qx += q * (static_cast<double>(xr[c]) - m);
      }
      const double l = Q * lse_m - qx;
      const index_t base = n * C * S + s;
      if (dtarget) {
        for (index_t c = 0; c < C; ++c) {
          const double wc = w ? static_cast<double>(w[c]) : 1.0;
          dtarget[base + c * S] =
              static_cast<T>(k * (1.0 - eps) * wc * (lse_m - (static_cast<double>(xr[c]) - m)));
        }
      }
      if (dx) {
        const T a = static_cast<T>(k * Q / se);
        const T kk = static_cast<T>(k);
        const T t1 = static_cast<T>(1.0 - eps), t0 = static_cast<T>(off);
        T* dr = scatter ? e : dx + base;
        for (index_t c = 0; c < C; ++c) {
          const T wc = w ? w[c] : T(1);
          dr[c] = a * e[c] - kk * wc * (t1 * tr[c] + t0);
        }
        if (scatter)
          for (index_t c = 0; c < C; ++c) dx[base + c * S] = dr[c];
      }
      if (red == Reduction::None) loss[r] = static_cast<T>(l);
      else acc += l;
    }
    return acc;
  });
  if (red != Reduction::None) loss[0] = static_cast<T>(total * k);
}

// ------------------------------------------------------------------ backward: scale the saved gradient
template <typename T>
void loss_scale_grad(T* dx, const T* saved, const T* g_rows, T g_scalar, index_t N, index_t C, index_t S) {
  const index_t CS = C * S;
  if (!g_rows) {
    const index_t n = N * CS;
    parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
      for (index_t i = lo; i < hi; ++i) dx[i] = saved[i] * g_scalar;
    });
    return;
  }
  parallel_for(N, std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(1, CS)), [&](index_t n0, index_t n1) {
    for (index_t n = n0; n < n1; ++n) {
      const T* g = g_rows + n * S;
      for (index_t c = 0; c < C; ++c) {
        const index_t o = n * CS + c * S;
        for (index_t s = 0; s < S; ++s) dx[o + s] = saved[o + s] * g[s];
      }
    }
  });
}

// ------------------------------------------------------------------ nll_loss
template <typename T>
void nll_loss_forward(T* loss, View3<T> x, TargetView tg, const T* w, index_t N, index_t C, index_t S,
                      index_t ignore_index, Reduction red) {
  (void)C;
  const index_t R = N * S;
  const double denom = red == Reduction::Mean ? target_weight_sum(tg, w, N, S, ignore_index) : 1.0;
  double total = blocked_rows(R, 1, [&](index_t r0, index_t r1) {
    double acc = 0.0;
    for (index_t r = r0; r < r1; ++r) {
      const index_t n = S == 1 ? r : r / S, s = r - n * S;
      const std::int64_t t = tg.p[n * tg.sn + s * tg.ss];
      double l = 0.0;
      if (t != ignore_index) {
        const double wt = w ? static_cast<double>(w[t]) : 1.0;
        l = -wt * static_cast<double>(x.p[n * x.sn + t * x.sc + s * x.ss]);
      }
      if (red == Reduction::None) loss[r] = static_cast<T>(l);
      else acc += l;
    }
    return acc;
  });
  if (red != Reduction::None) loss[0] = static_cast<T>(total / denom);
}

template <typename T>
void nll_loss_backward(T* dx, const T* g_rows, T g_scalar, TargetView tg, const T* w, index_t N, index_t C,
                       index_t S, index_t ignore_index, Reduction red) {
  const double denom = red == Reduction::Mean ? target_weight_sum(tg, w, N, S, ignore_index) : 1.0;
  const double k = 1.0 / denom;
  const index_t CS = C * S;
  parallel_for(N, std::max<index_t>(1, kElementwiseGrain / std::max<index_t>(1, CS)), [&](index_t n0, index_t n1) {
    std::fill(dx + n0 * CS, dx + n1 * CS, T(0));
    for (index_t n = n0; n < n1; ++n) {
      for (index_t s = 0; s < S; ++s) {
        const std::int64_t t = tg.p[n * tg.sn + s * tg.ss];
        if (t == ignore_index) continue;
        const double wt = w ? static_cast<double>(w[t]) : 1.0;
        const double g = g_rows ? static_cast<double>(g_rows[n * S + s]) : static_cast<double>(g_scalar);
        dx[n * CS + t * S + s] = static_cast<T>(-g * k * wt);
      }
    }
  });
}

#define NNFAST_LOSS_INSTANTIATE(T)                                                                             \
  template void cross_entropy_forward<T>(T*, T*, View3<T>, TargetView, const T*, index_t, index_t, index_t,  \
                                         index_t, double, Reduction);                                         \
  template void cross_entropy_prob_forward<T>(T*, T*, T*, View3<T>, View3<T>, const T*, index_t, index_t,    \
                                              index_t, double, Reduction);                                    \
  template void loss_scale_grad<T>(T*, const T*, const T*, T, index_t, index_t, index_t);                    \
  template void nll_loss_forward<T>(T*, View3<T>, TargetView, const T*, index_t, index_t, index_t, index_t,  \
                                    Reduction);                                                               \
  template void nll_loss_backward<T>(T*, const T*, T, TargetView, const T*, index_t, index_t, index_t,       \
                                     index_t, Reduction);
NNFAST_LOSS_INSTANTIATE(float)
NNFAST_LOSS_INSTANTIATE(double)
#undef NNFAST_LOSS_INSTANTIATE

}  // namespace nnfast::cpu

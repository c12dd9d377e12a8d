// Normalization driver: ISA dispatch, thread partition, workspace and the
// per-channel scalar math; the vectorised loops live in norm_isa.cpp.
//
// Threads are partitioned by output: rows (layer / RMS / group norm) or
// channels (batch norm, weight norm) per thread. Parameter gradients that are
// reductions over rows (layer norm's dweight / dbias, group norm's) go to
// double partial sums over fixed-size parts of rows, then a second parallel_for
// over features adds the parts in a fixed order: no atomics, and the result
// depends on the shape only, not on the thread count or the schedule.
#include "nnfast/norm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/cpu_features.h"
#include "core/parallel_for.h"
#include "cpu/norm_internal.h"
#include "nnfast/parallel.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

using norm_detail::finish_stats;
using norm_detail::GroupArgs;
using norm_detail::RowArgs;

// Elements per thread below which a norm kernel stays serial.
constexpr index_t kNormGrain = 16384;

using norm_detail::NormOps;

inline index_t max1(index_t v) { return v > 1 ? v : 1; }

// Items per thread so that a thread gets at least kNormGrain elements.
inline index_t grain_for(index_t elems_per_item) { return max1(kNormGrain / max1(elems_per_item)); }

// Partial sums go to fixed-size parts of about kPartElems elements (whole rows),
// added in part order: the partition, every partial sum and the total depend on
// the shape only, never on the thread count or the schedule.
constexpr index_t kPartElems = index_t(1) << 18;

// Rows per part for rows of row_elems elements, and the number of parts of n rows.
inline index_t part_rows(index_t row_elems) { return max1(kPartElems / max1(row_elems)); }
inline index_t num_parts(index_t n, index_t rows) { return max1((n + rows - 1) / rows); }

// out[j] = sum over p of parts[p * stride + j], for j in [0, n); with add, the
// sum (rounded to T once) is added to out[j] instead (parameter gradients).
template <typename T>
void sum_parts(T* out, const double* parts, index_t nparts, index_t stride, index_t n, bool add = false) {
  parallel_for(n, grain_for(nparts), [&](index_t lo, index_t hi) {
    for (index_t j = lo; j < hi; ++j) {
      double s = 0;
      for (index_t p = 0; p < nparts; ++p) s += parts[p * stride + j];
      out[j] = add ? static_cast<T>(out[j] + static_cast<T>(s)) : static_cast<T>(s);
    }
  });
}

// NNFAST_NORM_STREAM=0 turns the non-temporal stores off (A/B timing in one
// process); read only for outputs past kStreamBytes, so small calls never pay for it.
inline bool stream_enabled() { return env_switch_on("NNFAST_NORM_STREAM"); }

// Whether an output of n elements of T is written with non-temporal stores.
template <typename T>
bool large_output(index_t n) {
  return static_cast<size_t>(n) * sizeof(T) > norm_detail::kStreamBytes && stream_enabled();
}

inline double rstd_of(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// r = (1 - momentum) r + momentum s, in double, stored as T.
template <typename T>
inline void ema(T* r, double s, double momentum) {
  *r = static_cast<T>((1.0 - momentum) * static_cast<double>(*r) + momentum * s);
}

// Arguments of the row routines for x (M, D), and of the group routines for x
// (N, C, L) in G groups; set_*_tensors below add the tensors of the call.
template <typename T>
RowArgs<T> row_args(index_t M, index_t D, bool rms) {
  RowArgs<T> a;
  a.M = M;
  a.D = D;
  a.rms = rms;
  a.stream = large_output<T>(M * D);
  return a;
}
template <typename T>
GroupArgs<T> group_args(index_t N, index_t C, index_t L, index_t G) {
  GroupArgs<T> a;
  a.N = N;
  a.C = C;
  a.L = L;
  a.G = G;
  return a;
}

// The tensors of one forward / backward call, which RowArgs (layer / RMS norm)
// and GroupArgs (group / instance norm) both carry.
template <class Args, typename T>
void set_forward_tensors(Args& a, T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias,
                         double eps) {
  a.eps = eps;
  a.x = x;
  a.weight = weight;
  a.bias = bias;
  a.y = y;
  a.mean = mean;
  a.rstd = rstd;
}
template <class Args, typename T>
void set_backward_tensors(Args& a, T* dx, const T* dy, const T* x, const double* mean, const double* rstd,
                          const T* weight) {
  a.x = x;
  a.weight = weight;
  a.mean = const_cast<double*>(mean);  // read only in backward
  a.rstd = const_cast<double*>(rstd);
  a.dy = dy;
  a.dx = dx;
}

}  // namespace

// ------------------------------------------------------------------ layer / RMS norm
template <typename T>
void layer_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t M,
                        index_t D, double eps, bool rms) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  RowArgs<T> a = row_args<T>(M, D, rms);
  set_forward_tensors(a, y, mean, rstd, x, weight, rms ? nullptr : bias, eps);
  // NNFAST_NORM_ROWSTATS=1 (opt-in): the float32 row statistics in float lanes (values agree to
  // float rounding). Off by default: under load, 1-thread CPU time, (R, 1024) float32, it measured
  // 0.93x at 64 MB but 0.98-1.10x at 16 MB (within the noise); it awaits an idle A/B.
  const char* rs = std::getenv("NNFAST_NORM_ROWSTATS");
  a.f32sum = sizeof(T) == 4 && rs && rs[0] == '1';
  parallel_for(M, grain_for(D), [&](index_t lo, index_t hi) { k.row_forward(a, lo, hi); });
}

template <typename T>
void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t M, index_t D, bool rms) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  RowArgs<T> a = row_args<T>(M, D, rms);
  set_backward_tensors(a, dx, dy, x, mean, rstd, weight);
  a.fold = sizeof(T) == 4 && norm_detail::fold_enabled();
  a.f32sum = sizeof(T) == 4 && env_switch_on("NNFAST_NORM_F32SUM");
  a.prefetch = sizeof(T) == 4 && static_cast<size_t>(M * D) * sizeof(T) > norm_detail::kRowPrefetchBytes &&
               env_switch_on("NNFAST_NORM_ROWPF");
  const bool partials = dweight || dbias;
  if (!partials) {
    if (dx) parallel_for(M, grain_for(D), [&](index_t lo, index_t hi) { k.row_backward(a, lo, hi, nullptr, nullptr); });
    return;
  }
  // Part p owns rows [p R, (p + 1) R) and its own (D,) partial sums.
  const index_t R = part_rows(D), P = num_parts(M, R);
  // pb starts 16 doubles past pw's end: no 4 KB aliasing between pw[j] and pb[j].
  std::vector<double> ws(static_cast<size_t>(2 * P * D + 16), 0.0);
  double* pw = ws.data();
  double* pb = pw + P * D + 16;
  parallel_for(P, 1, [&](index_t lo, index_t hi) {
    for (index_t p = lo; p < hi; ++p)
      k.row_backward(a, p * R, std::min(M, (p + 1) * R), pw + p * D, dbias ? pb + p * D : nullptr);
  });
  if (dweight) sum_parts(dweight, pw, P, D, D, /*add=*/true);
  if (dbias) sum_parts(dbias, pb, P, D, D, /*add=*/true);
}

// ------------------------------------------------------------------ batch norm
// (N, C) inputs (L == 1): threads take chunks of whole rows.

// Column sums of (N, C) rows in fixed parts of rows: part(w1, w2, n0, n1) writes
// the (C,) sums of rows [n0, n1) to w1 / w2; s1 / s2 get the parts added in order.
template <class Part>
void row_part_sums(double* s1, double* s2, index_t N, index_t C, Part part) {
  const index_t R = part_rows(C), P = num_parts(N, R);
  std::vector<double> ws(static_cast<size_t>(2 * P * C));
  parallel_for(P, 1, [&](index_t lo, index_t hi) {
    for (index_t p = lo; p < hi; ++p) part(ws.data() + p * C, ws.data() + (P + p) * C, p * R, std::min(N, (p + 1) * R));
  });
  sum_parts(s1, ws.data(), P, C, C);
  sum_parts(s2, ws.data() + P * C, P, C, C);
}

// s_a[c] = sum_n a[n, c], s_ax[c] = sum_n a[n, c] (x[n, c] - shift[c]).
template <typename T>
void row_chunk_sums(const NormOps<T>& k, double* s_a, double* s_ax, const T* a, const T* x, const double* shift,
                    index_t N, index_t C) {
  // NNFAST_NORM_F32SUM=0: the sums in double lanes (A/B; values agree to float rounding).
  const bool f32 = sizeof(T) == 4 && env_switch_on("NNFAST_NORM_F32SUM");
  row_part_sums(s_a, s_ax, N, C, [&](double* w1, double* w2, index_t n0, index_t n1) {
    if (f32) k.chan_sums_f32(w1, w2, a + n0 * C, x + n0 * C, shift, n1 - n0, C, C);
    else k.chan_sums(w1, w2, a + n0 * C, x + n0 * C, shift, n1 - n0, C, 1, 0, C);
  });
}

// (N, C, L) batch norm in groups of channels (n outer, rows of a group read as one
// stretch) instead of one channel at a time (N strided runs of L): channels per group
// so that a thread's group (group_bytes, bytes_per_elem over all inputs) stays in
// cache for the second pass, and a group's row fits one coefficient chunk of
// chan_affine_rows (1024 values). group_bytes: measured best (1-thread CPU time, 16 and
// 64 MB): 4 MB forward, 8 MB backward (with the per-element sums, under load, (5350, 64,
// 49): 1 MB 26.7 ms, 4 MB 27.1, 8 MB 23.3, 16 MB 24.1; the stretch of a row, gc * L
// values, has to reach a few hundred bytes). Groups were as fast or faster from 256 KB
// (L2 resident) to 64 MB. 0: the per-channel path (short
// N, where expanding the coefficients per element would cost more than it saves; long
// runs, already contiguous; NNFAST_NORM_NCHW=0 for A/B timing). Values do not depend
// on the group.
constexpr size_t kGroupBytesFwd = size_t(4) << 20, kGroupBytesBwd = size_t(8) << 20;
inline index_t nchw_group(index_t N, index_t C, index_t L, size_t bytes_per_elem, size_t group_bytes) {
  if (L <= 1 || L > 512 || N < 8 || C < 2) return 0;
  const char* e = std::getenv("NNFAST_NORM_NCHW");
  if (e && e[0] == '0') return 0;
  const size_t chan = static_cast<size_t>(N) * static_cast<size_t>(L) * bytes_per_elem;
  const index_t by_bytes = static_cast<index_t>(std::max<size_t>(1, group_bytes / chan));
  return std::max<index_t>(1, std::min(by_bytes, 1024 / L));
}

// Inside a group, the sums over (n, l) go to one double accumulator per element of the
// group's stretch of a row (gc * L values, N rows at stride C * L, added in n order by
// the (N, C) column kernels), then each channel adds its L totals in l order: the rows
// stream through plain vector code with no per-run heads / tails and no per-channel
// register blocks (the kChanBlock accumulators spill). NNFAST_NORM_COLS=0: the
// per-channel accumulators of the channel kernels (the earlier grouped path, whose sums
// equal the per-channel path's bit for bit) for A/B timing; both are checked against
// float64 and their sums agree to rounding.
inline bool cols_enabled() { return env_switch_on("NNFAST_NORM_COLS"); }

// Sum of a channel's L per-element totals, in l order.
inline double run_total(const double* s, index_t L) {
  double t = 0;
  for (index_t l = 0; l < L; ++l) t += s[l];
  return t;
}

// NNFAST_NORM_NSPLIT=1 (opt-in, with the cols path): the threads work inside one group
// at a time, each on its own rows, instead of one group per thread over all N rows. The
// groups hold the threads' budgets joined (split_budget: the same cache in flight), so
// with 2 threads a row's stretch is twice as long for the prefetchers. The rows go to
// kNParts fixed parts (a shape-only partition): each part's per-element sums, then the
// parts added in order, so the values depend neither on the thread count nor on the
// group size (they equal the default path's to rounding). Off by default: under load it
// cost more (2 threads, process CPU time, (5350, 64, 49): fwd 1.30x, bwd 1.17x; 1 thread
// 1.03x / 0.93x) and it joins the threads twice per group; it awaits an idle A/B.
constexpr index_t kNParts = 16;
inline bool nsplit_enabled() {
  const char* e = std::getenv("NNFAST_NORM_NSPLIT");
  return e && e[0] == '1';
}

// The rows of one group's pass: P parts of N rows. P == 1: the calling thread takes all
// rows (the one-group-per-thread path, already inside a parallel_for).
struct GroupRows {
  index_t N, P;
  index_t lo(index_t p) const { return N * p / P; }
  // Threads when split: parts per thread so that each moves at least kNormGrain values.
  index_t grain(index_t row_elems) const { return grain_for(max1(N / P) * row_elems); }
  // f(p, n0, n1) for every part p (its rows [n0, n1)): the sums passes.
  template <class F>
  void parts(index_t row_elems, F f) const {
    if (P == 1) return f(index_t(0), index_t(0), N);
    parallel_for(P, grain(row_elems), [&](index_t p0, index_t p1) {
      for (index_t p = p0; p < p1; ++p) f(p, lo(p), lo(p + 1));
    });
  }
  // f(n0, n1) once per thread over the rows of the same parts as parts() gave it: the
  // output passes (their reverse row blocks then start on the rows the thread read last).
  template <class F>
  void rows(index_t row_elems, F f) const {
    if (P == 1) return f(index_t(0), N);
    parallel_for(P, grain(row_elems), [&](index_t p0, index_t p1) { f(lo(p0), lo(p1)); });
  }
};

// The group budget of the split path: the threads' per-thread budgets joined (the same
// cache in flight as one group per thread; values do not depend on the group size).
inline size_t split_budget(size_t per_thread) {
  return per_thread * static_cast<size_t>(std::max(1, get_num_threads()));
}

// out[j] = the P parts' sums ws[p * n + j] added in part order.
inline void add_parts(double* out, const double* ws, index_t P, index_t n) {
  for (index_t j = 0; j < n; ++j) {
    double t = 0;
    for (index_t p = 0; p < P; ++p) t += ws[p * n + j];
    out[j] = t;
  }
}

// Batch norm forward after the statistics, channels [c0, c1): in training,
// rstd[c] holds the biased batch variance over cnt values on entry; it becomes
// 1 / sqrt(var + eps) and the running stats (if any) take one EMA step with
// the unbiased variance. In eval, mean / rstd come from the running stats.
// Then the affine coefficients: scale = weight * rstd, shift = bias.
template <typename T>
void batch_norm_coefs(double* mean, double* rstd, T* running_mean, T* running_var, const T* weight, const T* bias,
                      index_t cnt, bool training, double momentum, double eps, double* scale, double* shift,
                      index_t c0, index_t c1) {
  if (training) {
    for (index_t c = c0; c < c1; ++c) {
      const double var = rstd[c];
      if (running_mean) ema(running_mean + c, mean[c], momentum);
      if (running_var) ema(running_var + c, cnt > 1 ? var * cnt / (cnt - 1) : var, momentum);
      rstd[c] = rstd_of(var, eps);
    }
  } else {
    for (index_t c = c0; c < c1; ++c) {
      mean[c] = static_cast<double>(running_mean[c]);
      rstd[c] = rstd_of(static_cast<double>(running_var[c]), eps);
    }
  }
  for (index_t c = c0; c < c1; ++c) {
    scale[c] = weight ? rstd[c] * static_cast<double>(weight[c]) : rstd[c];
    shift[c] = bias ? static_cast<double>(bias[c]) : 0.0;
  }
}

template <typename T>
void batch_norm_forward_rows(const NormOps<T>& k, T* y, double* mean, double* rstd, T* running_mean,
                             T* running_var, const T* x, const T* weight, const T* bias, index_t N, index_t C,
                             bool training, double momentum, double eps, double* scale, double* shift) {
  if (training) {
    // Shifted sums around the first row (as in the channel kernels), per part of rows.
    std::vector<double> ws(static_cast<size_t>(3 * C));
    double* K = ws.data();
    double* s1 = K + C;
    double* s2 = s1 + C;
    for (index_t c = 0; c < C; ++c) K[c] = N > 0 ? static_cast<double>(x[c]) : 0.0;
    // NNFAST_NORM_F32STATS=1 (opt-in): the shifted sums in float lanes (chan_shifted_sums_f32);
    // the mean and variance are then good to float rounding (~1e-7 relative), not to double's
    // ~1e-12 that test_norm's statistics checks ask of the default. 1-thread CPU time under
    // load, (4096, 1024) float32: forward 0.89x.
    const char* fs = std::getenv("NNFAST_NORM_F32STATS");
    const bool f32 = sizeof(T) == 4 && fs && fs[0] == '1';
    row_part_sums(s1, s2, N, C, [&](double* w1, double* w2, index_t n0, index_t n1) {
      if (f32) k.chan_shifted_sums_f32(w1, w2, K, x + n0 * C, n1 - n0, C, C);
      else k.chan_shifted_sums(w1, w2, K, x + n0 * C, n1 - n0, C, C);
    });
    for (index_t c = 0; c < C; ++c) finish_stats(K[c], s1[c], s2[c], N, mean + c, rstd + c);  // biased var
  }
  batch_norm_coefs(mean, rstd, running_mean, running_var, weight, bias, N, training, momentum, eps, scale, shift,
                   /*c0=*/0, /*c1=*/C);
  // Same halves of the rows per thread as the statistics pass, taken backwards.
  const bool stream = large_output<T>(N * C);
  parallel_for(N, grain_for(C), [&](index_t n0, index_t n1) {
    k.chan_affine_rows(y + n0 * C, nullptr, x + n0 * C, nullptr, scale, mean, shift, n1 - n0, C, C, stream);
  });
}

template <typename T>
void batch_norm_forward(T* y, double* mean, double* rstd, T* running_mean, T* running_var, const T* x,
                        const T* weight, const T* bias, index_t N, index_t C, index_t L, bool training,
                        double momentum, double eps) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  const index_t cnt = N * L;
  std::vector<double> coef(static_cast<size_t>(2 * C));
  double* scale = coef.data();  // weight * rstd
  double* shift = scale + C;    // bias
  if (L == 1) {
    batch_norm_forward_rows(k, y, mean, rstd, running_mean, running_var, x, weight, bias, N, C, training, momentum,
                            eps, scale, shift);
    return;
  }
  const index_t gc = nchw_group(N, C, L, sizeof(T), kGroupBytesFwd);
  if (gc > 0) {
    // Groups of gc channels, statistics then output, each pass reading the group's rows as
    // contiguous stretches of gc * L values; the output pass takes the (per-element
    // expanded) coefficients like the (N, C) rows, row blocks backwards, streamed if large.
    const index_t CL = C * L;
    std::vector<double> ex(static_cast<size_t>(3 * CL));
    const bool stream = large_output<T>(N * CL);
    const bool cols = cols_enabled();
    // Channels [cg, ce) over the rows of gr; sc: 3 + 2 P values per element of the stretch.
    auto group = [&](index_t cg, index_t ce, const GroupRows& gr, double* sc) {
      const index_t nc = (ce - cg) * L, o = cg * L;
      if (training && cols) {
        // Shifted sums around each channel's first value, as in chan_stats.
        double *Kx = sc, *s1 = Kx + nc, *s2 = s1 + nc, *w1 = s2 + nc, *w2 = w1 + gr.P * nc;
        for (index_t c = cg; c < ce; ++c) std::fill_n(Kx + (c - cg) * L, L, static_cast<double>(x[c * L]));
        gr.parts(nc, [&](index_t p, index_t n0, index_t n1) {
          k.chan_shifted_sums(w1 + p * nc, w2 + p * nc, Kx, x + n0 * CL + o, n1 - n0, CL, nc);
        });
        add_parts(s1, w1, gr.P, nc);
        add_parts(s2, w2, gr.P, nc);
        for (index_t c = cg; c < ce; ++c) {
          const index_t j = (c - cg) * L;
          finish_stats(Kx[j], run_total(s1 + j, L), run_total(s2 + j, L), cnt, mean + c, rstd + c);
        }
      } else if (training) {
        k.chan_stats(mean, rstd, x, N, C, L, cg, ce);  // rstd holds the biased var for now
      }
      batch_norm_coefs(mean, rstd, running_mean, running_var, weight, bias, cnt, training, momentum, eps, scale,
                       shift, cg, ce);
      for (index_t c = cg; c < ce; ++c)
        for (index_t l = 0; l < L; ++l) {
          ex[c * L + l] = mean[c];
          ex[CL + c * L + l] = scale[c];
          ex[2 * CL + c * L + l] = shift[c];
        }
      gr.rows(nc, [&](index_t n0, index_t n1) {
        k.chan_affine_rows(y + n0 * CL + o, nullptr, x + n0 * CL + o, nullptr, ex.data() + CL + o, ex.data() + o,
                           ex.data() + 2 * CL + o, n1 - n0, nc, CL, stream);
      });
    };
    if (cols && nsplit_enabled()) {
      const GroupRows gr{N, std::min(N, kNParts)};
      const index_t gs = nchw_group(N, C, L, sizeof(T), split_budget(kGroupBytesFwd));
      std::vector<double> sc(static_cast<size_t>((3 + 2 * gr.P) * gs * L));
      for (index_t cg = 0; cg < C; cg += gs) group(cg, std::min(C, cg + gs), gr, sc.data());
      return;
    }
    parallel_for(C, grain_for(cnt), [&](index_t c0, index_t c1) {
      std::vector<double> sc(cols && training ? static_cast<size_t>(5 * gc * L) : 0);
      for (index_t cg = c0; cg < c1; cg += gc) group(cg, std::min(c1, cg + gc), GroupRows{N, 1}, sc.data());
    });
    return;
  }
  // One channel at a time, statistics then output: the channel's N runs are still in
  // L2 / L3 for the second pass (all channels' statistics first re-read them from memory).
  parallel_for(C, grain_for(cnt), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      if (training) k.chan_stats(mean, rstd, x, N, C, L, c, c + 1);  // rstd holds the biased var for now
      batch_norm_coefs(mean, rstd, running_mean, running_var, weight, bias, cnt, training, momentum, eps, scale,
                       shift, c, c + 1);
      k.chan_affine(y, nullptr, x, nullptr, scale, mean, shift, N, C, L, c, c + 1);
    }
  });
}

template <typename T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, bool training) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  const index_t cnt = N * L;
  const double inv_n = cnt > 0 ? 1.0 / static_cast<double>(cnt) : 0.0;
  const bool sums = training || dweight || dbias;
  std::vector<double> buf(static_cast<size_t>(5 * C));
  double* s_dy = buf.data();  // sum dy
  double* s_dx = s_dy + C;    // sum dy * (x - mean)
  double* al = s_dx + C;
  double* be = al + C;
  double* ga = be + C;
  // (N, C): rows are split between threads (each streams whole rows), with
  // per-chunk partial sums added in a fixed order; splitting channels would
  // give each thread a strided half-row per row and defeat the prefetchers.
  const bool rows = L == 1;
  if (rows && sums) row_chunk_sums(k, s_dy, s_dx, dy, x, mean, N, C);
  // (N, C, L): one channel at a time, sums then dx, while the channel's runs are still
  // in L2 / L3 (sums of every channel first would re-read x and dy from memory).
  auto coefs = [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      const double s = rstd[c];
      const double w = weight ? static_cast<double>(weight[c]) : 1.0;
      if (sums) {
        const double sxh = s_dx[c] * s;  // sum dy * xhat
        if (dweight) dweight[c] += static_cast<T>(sxh);
        if (dbias) dbias[c] += static_cast<T>(s_dy[c]);
        // dx = w s (dy - mean(dy) - xhat mean(dy xhat))
        be[c] = training ? -w * s * s * sxh * inv_n : 0.0;
        ga[c] = training ? -w * s * s_dy[c] * inv_n : 0.0;
      } else {
        be[c] = 0.0;
        ga[c] = 0.0;
      }
      al[c] = w * s;
    }
  };
  const index_t gc = rows ? 0 : nchw_group(N, C, L, 2 * sizeof(T), kGroupBytesBwd);
  if (rows) {
    coefs(0, C);
  } else if (gc > 0) {
    // Groups of gc channels, sums then dx, as in batch_norm_forward.
    const index_t CL = C * L;
    std::vector<double> ex(static_cast<size_t>(4 * CL));
    const bool stream = large_output<T>(N * CL);
    const bool cols = cols_enabled();
    // Channels [cg, ce) over the rows of gr; sc: 2 + 2 P values per element of the stretch.
    auto group = [&](index_t cg, index_t ce, const GroupRows& gr, double* sc) {
      const index_t nc = (ce - cg) * L, o = cg * L;
      const double* exm = ex.data() + 2 * CL;
      for (index_t c = cg; c < ce; ++c) std::fill_n(ex.data() + 2 * CL + c * L, L, mean[c]);
      if (sums && cols) {
        double *p = sc, *q = p + nc, *w1 = q + nc, *w2 = w1 + gr.P * nc;
        // (N, CL) rows read as L == 1 channels [o, o + nc): per-element sums.
        gr.parts(2 * nc, [&](index_t pt, index_t n0, index_t n1) {
          k.chan_sums(w1 + pt * nc, w2 + pt * nc, dy + n0 * CL + o, x + n0 * CL + o, exm + o, n1 - n0, CL, 1, 0, nc);
        });
        add_parts(p, w1, gr.P, nc);
        add_parts(q, w2, gr.P, nc);
        for (index_t c = cg; c < ce; ++c) {
          s_dy[c] = run_total(p + (c - cg) * L, L);
          s_dx[c] = run_total(q + (c - cg) * L, L);
        }
      } else if (sums) {
        k.chan_sums(s_dy, s_dx, dy, x, mean, N, C, L, cg, ce);
      }
      coefs(cg, ce);
      if (!dx) return;
      for (index_t c = cg; c < ce; ++c) {
        std::fill_n(ex.data() + c * L, L, al[c]);
        std::fill_n(ex.data() + CL + c * L, L, be[c]);
        std::fill_n(ex.data() + 3 * CL + c * L, L, ga[c]);
      }
      gr.rows(2 * nc, [&](index_t n0, index_t n1) {
        const index_t r = n0 * CL + o;
        k.chan_affine_rows(dx + r, dy + r, x + r, ex.data() + o, ex.data() + CL + o, exm + o, ex.data() + 3 * CL + o,
                           n1 - n0, nc, CL, stream);
      });
    };
    if (cols && nsplit_enabled()) {
      const GroupRows gr{N, std::min(N, kNParts)};
      const index_t gs = nchw_group(N, C, L, 2 * sizeof(T), split_budget(kGroupBytesBwd));
      std::vector<double> sc(static_cast<size_t>((2 + 2 * gr.P) * gs * L));
      for (index_t cg = 0; cg < C; cg += gs) group(cg, std::min(C, cg + gs), gr, sc.data());
    } else {
      parallel_for(C, grain_for(cnt), [&](index_t c0, index_t c1) {
        std::vector<double> sc(cols && sums ? static_cast<size_t>(4 * gc * L) : 0);
        for (index_t cg = c0; cg < c1; cg += gc) group(cg, std::min(c1, cg + gc), GroupRows{N, 1}, sc.data());
      });
    }
  } else {
    parallel_for(C, grain_for(cnt), [&](index_t c0, index_t c1) {
      for (index_t c = c0; c < c1; ++c) {
        if (sums) k.chan_sums(s_dy, s_dx, dy, x, mean, N, C, L, c, c + 1);
        coefs(c, c + 1);
        if (dx) k.chan_affine(dx, dy, x, al, be, mean, ga, N, C, L, c, c + 1);
      }
    });
  }
  const bool stream = large_output<T>(N * C);
  if (dx && rows)
    parallel_for(N, grain_for(C), [&](index_t n0, index_t n1) {
      k.chan_affine_rows(dx + n0 * C, dy + n0 * C, x + n0 * C, al, be, mean, ga, n1 - n0, C, C, stream);
    });
}

// ------------------------------------------------------------------ group / instance norm
template <typename T>
void group_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t N,
                        index_t C, index_t L, index_t G, double eps) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  GroupArgs<T> a = group_args<T>(N, C, L, G);
  set_forward_tensors(a, y, mean, rstd, x, weight, bias, eps);
  parallel_for(N * G, grain_for(C / G * L), [&](index_t lo, index_t hi) { k.group_forward(a, lo, hi); });
}

template <typename T>
void group_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, index_t G) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  GroupArgs<T> a = group_args<T>(N, C, L, G);
  set_backward_tensors(a, dx, dy, x, mean, rstd, weight);
  std::vector<double> ws;
  if (dweight || dbias) {
    ws.assign(static_cast<size_t>(2 * N * C), 0.0);
    a.ws_w = ws.data();
    a.ws_b = ws.data() + N * C;
  }
  parallel_for(N * G, grain_for(C / G * L), [&](index_t lo, index_t hi) { k.group_backward(a, lo, hi); });
  // dweight[c] = sum_n ws_w[n, c]: the (N, C) table read as N "parts" of stride C.
  if (dweight) sum_parts(dweight, a.ws_w, N, C, C, /*add=*/true);
  if (dbias) sum_parts(dbias, a.ws_b, N, C, C, /*add=*/true);
}

template <typename T>
void instance_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* rstd,
                                  index_t N, index_t C, index_t L, double momentum, double eps) {
  const double unbias = L > 1 ? static_cast<double>(L) / static_cast<double>(L - 1) : 1.0;
  const double inv_n = N > 0 ? 1.0 / static_cast<double>(N) : 0.0;
  parallel_for(C, grain_for(N), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      double sm = 0, sv = 0;
      for (index_t n = 0; n < N; ++n) {
        const double s = rstd[n * C + c];
        sm += mean[n * C + c];
        sv += 1.0 / (s * s) - eps;  // the biased var that gave rstd
      }
      if (running_mean) ema(running_mean + c, sm * inv_n, momentum);
      if (running_var) ema(running_var + c, sv * inv_n * unbias, momentum);
    }
  });
}

// ------------------------------------------------------------------ weight norm
template <typename T>
void weight_norm_forward(T* w, double* norm, const T* v, const T* g, index_t N, index_t C, index_t L) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  std::vector<double> buf(static_cast<size_t>(3 * C));
  double* scratch = buf.data();
  double* scale = scratch + C;
  double* zero = scale + C;
  parallel_for(C, grain_for(N * L), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) zero[c] = 0.0;
    k.chan_sums(scratch, norm, v, v, zero, N, C, L, c0, c1);  // norm = sum v^2
    for (index_t c = c0; c < c1; ++c) {
      norm[c] = std::sqrt(norm[c]);
      scale[c] = static_cast<double>(g[c]) / norm[c];
    }
    k.chan_affine(w, nullptr, v, nullptr, scale, zero, zero, N, C, L, c0, c1);
  });
}

template <typename T>
void weight_norm_backward(T* dv, T* dg, const T* dw, const T* v, const T* g, const double* norm, index_t N,
                          index_t C, index_t L) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  std::vector<double> buf(static_cast<size_t>(5 * C));
  double* scratch = buf.data();
  double* s = scratch + C;  // sum dw * v
  double* al = s + C;
  double* be = al + C;
  double* zero = be + C;
  parallel_for(C, grain_for(N * L), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) zero[c] = 0.0;
    k.chan_sums(scratch, s, dw, v, zero, N, C, L, c0, c1);
    for (index_t c = c0; c < c1; ++c) {
      const double nrm = norm[c], gc = static_cast<double>(g[c]);
      if (dg) dg[c] += static_cast<T>(s[c] / nrm);
      al[c] = gc / nrm;
      be[c] = -gc * s[c] / (nrm * nrm * nrm);
    }
    if (dv) k.chan_affine(dv, dw, v, al, be, zero, zero, N, C, L, c0, c1);
  });
}

// ------------------------------------------------------------------ spectral norm
namespace {

// a /= max(||a||, eps), serial (a is one vector of the weight's side length).
void normalize(std::vector<double>& a, double eps) {
  double s = 0;
  for (double t : a) s += t * t;
  double n = std::sqrt(s);
  if (n < eps) n = eps;
  for (double& t : a) t /= n;
}

// out = W v (W is (M, D)), rows split across threads.
template <typename T>
void matvec(const NormOps<T>& k, double* out, const T* W, const double* v, index_t M, index_t D) {
  parallel_for(M, grain_for(D), [&](index_t lo, index_t hi) { k.mv_rows(out, W, v, D, lo, hi); });
}

// out = W^T u, columns split across threads (each thread owns its outputs).
template <typename T>
void matvec_t(const NormOps<T>& k, double* out, const T* W, const double* u, index_t M, index_t D) {
  parallel_for(D, grain_for(M), [&](index_t lo, index_t hi) {
    for (index_t j = lo; j < hi; ++j) out[j] = 0.0;
    k.mtv_acc(out, W, u, D, 0, M, lo, hi);
  });
}

}  // namespace

template <typename T>
void spectral_norm_power_iteration(T* u, T* v, const T* W, index_t M, index_t D, int n_iter, double eps) {
  if (n_iter <= 0) return;
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  std::vector<double> ud(static_cast<size_t>(M)), vd(static_cast<size_t>(D));
  for (index_t i = 0; i < M; ++i) ud[i] = static_cast<double>(u[i]);
  for (int it = 0; it < n_iter; ++it) {
    matvec_t(k, vd.data(), W, ud.data(), M, D);
    normalize(vd, eps);
    matvec(k, ud.data(), W, vd.data(), M, D);
    normalize(ud, eps);
  }
  for (index_t i = 0; i < M; ++i) u[i] = static_cast<T>(ud[i]);
  for (index_t j = 0; j < D; ++j) v[j] = static_cast<T>(vd[j]);
}

template <typename T>
double spectral_norm_forward(T* y, const T* W, const T* u, const T* v, index_t M, index_t D) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  std::vector<double> vd(static_cast<size_t>(D)), wv(static_cast<size_t>(M));
  for (index_t j = 0; j < D; ++j) vd[j] = static_cast<double>(v[j]);
  matvec(k, wv.data(), W, vd.data(), M, D);
  double sigma = 0;
  for (index_t i = 0; i < M; ++i) sigma += static_cast<double>(u[i]) * wv[i];
  const double inv = 1.0 / sigma;
  parallel_for(M * D, kNormGrain, [&](index_t lo, index_t hi) { k.axpby(y + lo, W + lo, inv, nullptr, 0.0, hi - lo); });
  return sigma;
}

template <typename T>
void spectral_norm_backward(T* dW, const T* dy, const T* W, const T* u, const T* v, double sigma, index_t M,
                            index_t D) {
  const NormOps<T>& k = isa_ops<NormOps<T>>();
  const index_t n = M * D;
  // <dy, W> over fixed-size parts, added in part order.
  const index_t P = num_parts(n, kPartElems);
  std::vector<double> part(static_cast<size_t>(P));
  parallel_for(P, 1, [&](index_t lo, index_t hi) {
    for (index_t p = lo; p < hi; ++p) {
      const index_t i0 = p * kPartElems, i1 = std::min(n, i0 + kPartElems);
      part[p] = k.dot(dy + i0, W + i0, i1 - i0);
    }
  });
  double dot = 0;
  for (double t : part) dot += t;
  const double inv = 1.0 / sigma, coef = dot / (sigma * sigma);
  std::vector<double> vd(static_cast<size_t>(D));
  for (index_t j = 0; j < D; ++j) vd[j] = static_cast<double>(v[j]);
  parallel_for(M, grain_for(D), [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i)
      k.axpby(dW + i * D, dy + i * D, inv, vd.data(), -coef * static_cast<double>(u[i]), D);
  });
}

// ------------------------------------------------------------------ instantiations
#define NNFAST_NORM_API(T)                                                                                     \
  template void layer_norm_forward<T>(T*, double*, double*, const T*, const T*, const T*, index_t, index_t,    \
                                      double, bool);                                                           \
  template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*, \
                                       index_t, index_t, bool);                                                \
  template void batch_norm_forward<T>(T*, double*, double*, T*, T*, const T*, const T*, const T*, index_t,     \
                                      index_t, index_t, bool, double, double);                                 \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*, \
                                       index_t, index_t, index_t, bool);                                       \
  template void group_norm_forward<T>(T*, double*, double*, const T*, const T*, const T*, index_t, index_t,    \
                                      index_t, index_t, double);                                               \
  template void group_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*, \
                                       index_t, index_t, index_t, index_t);                                    \
  template void instance_norm_update_running<T>(T*, T*, const double*, const double*, index_t, index_t,        \
                                                index_t, double, double);                                      \
  template void weight_norm_forward<T>(T*, double*, const T*, const T*, index_t, index_t, index_t);            \
  template void weight_norm_backward<T>(T*, T*, const T*, const T*, const T*, const double*, index_t, index_t, \
                                        index_t);                                                              \
  template void spectral_norm_power_iteration<T>(T*, T*, const T*, index_t, index_t, int, double);             \
  template double spectral_norm_forward<T>(T*, const T*, const T*, const T*, index_t, index_t);                \
  template void spectral_norm_backward<T>(T*, const T*, const T*, const T*, const T*, double, index_t, index_t);

NNFAST_NORM_API(float)
NNFAST_NORM_API(double)
#undef NNFAST_NORM_API

}  // namespace nnfast::cpu


// Normalization internals shared by the driver (norm.cpp: threads, workspace,
// per-channel scalar math) and the per-ISA loops (norm_isa.cpp, compiled once
// per instruction set). Every ISA routine is single-threaded over a range of
// rows / channels that the driver hands it; it never allocates.
//
// ODR note: norm_isa.cpp is compiled with different -m flags per ISA, so all of
// its code lives in namespace NNFAST_ISA_NS or is `static`, and it uses no
// std:: templates the linker could merge across ISA objects.
#pragma once
#include <cstdlib>

#include "core/isa_dispatch.h"
#include "nnfast/common.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace norm_detail {

// Outputs of more than this many bytes in all cannot stay in the (32 MB) L3: the
// write passes then use non-temporal stores (no read-for-ownership of each line,
// and the L3 keeps the inputs the second pass re-reads). Values are unchanged.
constexpr size_t kStreamBytes = size_t(32) << 20;

// Layer / RMS norm backward inputs past this many bytes (not L2-resident): each row's
// float32 dx pass prefetches the next rows' dy and x (norm_isa.cpp, Ahead).
// NNFAST_NORM_ROWPF=0 turns it off (A/B; same values).
constexpr size_t kRowPrefetchBytes = size_t(1) << 20;

// NNFAST_NORM_FOLD=0: the float32 output passes of batch norm (chan_affine_rows) and of
// the layer / RMS norm dx subtract the split mean in two steps, ((x - mh) - ml), and apply
// the coefficients one by one, as before. Default: ml is folded into the constant and
// the rest into multiply-adds on x - mh (fewer operations and coefficient streams). x - mh
// is exact for x within a factor 2 of mh (Sterbenz), so a large mean keeps its accuracy;
// the values agree with the unfolded ones to float rounding (both are checked against
// float64). Read per call (tests toggle it), like NNFAST_NORM_NCHW.
static inline bool fold_enabled() { return env_switch_on("NNFAST_NORM_FOLD"); }

// Layer / RMS norm over the rows of x (M, D).
template <typename T>
struct RowArgs {
  index_t M = 0, D = 0;
  bool rms = false;
  double eps = 0;
  const T* x = nullptr;
  const T* weight = nullptr;  // (D,) or null
  const T* bias = nullptr;    // (D,) or null
  T* y = nullptr;
  double* mean = nullptr;  // (M,), unused when rms
  double* rstd = nullptr;  // (M,)
  const T* dy = nullptr;
  T* dx = nullptr;  // backward; null: only the weight / bias partial sums
  bool stream = false;  // write y / dx with non-temporal stores (float32; see kStreamBytes)
  bool fold = true;     // float32 dx: fold_enabled()
  bool prefetch = false;  // float32 dx passes prefetch the next rows (see kRowPrefetchBytes)
  bool f32sum = false;    // float32 sums in float lanes: backward pass 1 (NNFAST_NORM_F32SUM),
                          // forward statistics (opt-in NNFAST_NORM_ROWSTATS=1); norm_isa.cpp
};

// Group (and instance) norm over x (N, C, L); row r = n * G + g covers the
// contiguous run x[n, g*C/G : (g+1)*C/G, :].
template <typename T>
struct GroupArgs {
  index_t N = 0, C = 0, L = 0, G = 1;
  double eps = 0;
  const T* x = nullptr;
  const T* weight = nullptr;  // (C,) or null
  const T* bias = nullptr;    // (C,) or null
  T* y = nullptr;
  double* mean = nullptr;  // (N, G)
  double* rstd = nullptr;  // (N, G)
  const T* dy = nullptr;
  T* dx = nullptr;
  double* ws_w = nullptr;  // backward: (N, C) sums of dy * xhat per (n, c), or null
  double* ws_b = nullptr;  // backward: (N, C) sums of dy per (n, c), or null
};

// mean / biased var from sums s1 = sum (x - K), s2 = sum (x - K)^2 over n elements.
// `static`: this header is compiled with different -m flags per ISA object.
static inline void finish_stats(double K, double s1, double s2, index_t n, double* mean, double* var) {
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

}  // namespace norm_detail

namespace norm_detail {

// The per-ISA routines (norm_isa.cpp fills one table per ISA and dtype; norm.cpp
// picks it with isa_ops<NormOps<T>>()). Channel routines see x as (N, C, L) and
// handle channels [c0, c1); their per-channel coefficient arrays are all required,
// except that chan_affine takes a = alpha = null for "no a term".
template <typename T>
struct NormOps {
  void (*row_forward)(const RowArgs<T>& a, index_t r0, index_t r1);
  // pw / pb (D,): += sum over rows of dy * xhat and dy (both null when not wanted;
  // pb alone null when only pw is: no bias gradient)
  void (*row_backward)(const RowArgs<T>& a, index_t r0, index_t r1, double* pw, double* pb);
  void (*group_forward)(const GroupArgs<T>& a, index_t r0, index_t r1);
  void (*group_backward)(const GroupArgs<T>& a, index_t r0, index_t r1);
  // mean[c], var[c] (biased) over (N, L)
  void (*chan_stats)(double* mean, double* var, const T* x, index_t N, index_t C, index_t L, index_t c0,
                     index_t c1);
  // rows of (N, C), row stride ldx: s1[c] = sum (x - K[c]), s2[c] = sum (x - K[c])^2, c < nc
  void (*chan_shifted_sums)(double* s1, double* s2, const double* K, const T* x, index_t N, index_t ldx,
                            index_t nc);
  // s_a[c] = sum a, s_ax[c] = sum a * (x - shift[c])
  void (*chan_sums)(double* s_a, double* s_ax, const T* a, const T* x, const double* shift, index_t N, index_t C,
                    index_t L, index_t c0, index_t c1);
  // rows of (N, C), row stride ld, c < nc: the same sums as chan_sums with L == 1; float32 in
  // float lanes over a few rows at a time (NNFAST_NORM_F32SUM; values agree to float rounding),
  // double T: chan_sums
  void (*chan_sums_f32)(double* s_a, double* s_ax, const T* a, const T* x, const double* shift, index_t N,
                        index_t ld, index_t nc);
  // chan_shifted_sums the same way (opt-in NNFAST_NORM_F32STATS=1)
  void (*chan_shifted_sums_f32)(double* s1, double* s2, const double* K, const T* x, index_t N, index_t ldx,
                                index_t nc);
  // y = alpha[c] * a + beta[c] * (x - shift[c]) + gamma[c]
  void (*chan_affine)(T* y, const T* a, const T* x, const double* alpha, const double* beta, const double* shift,
                      const double* gamma, index_t N, index_t C, index_t L, index_t c0, index_t c1);
  // y = alpha[j] * a + beta[j] * (x - shift[j]) + gamma[j] over rows [0, N) of C
  // columns j (row stride ld), the row blocks taken last to first: the rows a thread's
  // statistics pass read last are still in cache. alpha may be null when a is.
  void (*chan_affine_rows)(T* y, const T* a, const T* x, const double* alpha, const double* beta,
                           const double* shift, const double* gamma, index_t N, index_t C, index_t ld,
                           bool stream);
  double (*dot)(const T* a, const T* b, index_t n);
  // out[i] = W[i, :] . v for rows [r0, r1) of W (M, D)
  void (*mv_rows)(double* out, const T* W, const double* v, index_t D, index_t r0, index_t r1);
  // out[j] += sum_{i in [r0, r1)} u[i] W[i, j] for j in [j0, j1)
  void (*mtv_acc)(double* out, const T* W, const double* u, index_t D, index_t r0, index_t r1, index_t j0,
                  index_t j1);
  // y = alpha * a + beta * b (b may be null)
  void (*axpby)(T* y, const T* a, double alpha, const double* b, double beta, index_t n);
};

}  // namespace norm_detail

NNFAST_ISA_DECLARE_TABLE_T(norm_detail::NormOps)

}  // namespace nnfast::cpu

// Loss kernels, forward then backward, float and double.
//
// Shape letters: N batch, C classes, S spatial positions (d1*d2*...; 1 for
// (N, C) inputs), R = N*S "rows" of a class-dim loss. Pointwise losses see
// their operands as (R, K) matrices with arbitrary element strides, so a
// broadcast weight is a zero stride and never a copy.
//
// Reductions follow PyTorch: for the class-dim losses `mean` divides by the
// summed class weight of the non-ignored rows (the count when unweighted), so
// an all-ignored batch gives NaN with zero gradients. Pointwise losses take
// their reduction as `out_scale` (1 for sum, 1/n for mean, 1/N for batchmean).
//
// Every forward that can produce its gradient in the same pass takes a `dx`
// pointer (nullptr: loss only). Gradients follow nnfast/common.h: dx / dtarget
// overwrite, linear_cross_entropy's dW / db accumulate.
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

// PyTorch's reduction codes.
enum class Reduction : int { None = 0, Mean = 1, Sum = 2 };

// An (N, C, S) view in elements: element (n, c, s) at p[n*sn + c*sc + s*ss].
template <typename T>
struct View3 {
  const T* p = nullptr;
  index_t sn = 0, sc = 0, ss = 0;
};

// An (R, K) view in elements: element (r, k) at p[r*rs + k*cs]; p == nullptr
// means "absent" (an optional weight).
template <typename T>
struct View2 {
  const T* p = nullptr;
  index_t rs = 0, cs = 0;
};

// Class-index targets as an (N, S) view of int64.
struct TargetView {
  const std::int64_t* p = nullptr;
  index_t sn = 0, ss = 0;
};

namespace cpu {
// First (n*S + s) position whose target is neither in [0, C) nor ignore_index,
// or -1 when all are valid. Bindings call it before any loss kernel.
index_t find_bad_target(TargetView target, index_t N, index_t S, index_t C, index_t ignore_index);

// ---------------------------------------------------------------------------
// Fused softmax cross-entropy with class-index targets (+ weight, ignore_index,
// label smoothing). One pass per row while it is in cache: max, sum of
// exp(x - max) (stored in dx), then dx is rescaled into the gradient.
//   loss_r = (1-eps) w_t (lse - x_t) + eps/C * sum_c w_c (lse - x_c)
//   dx_rc  = k * [ (1-eps) w_t (p_c - [c==t]) + eps/C (W p_c - w_c) ]
// with k = 1/sum(w_t) for mean, 1 otherwise, W = sum_c w_c. Ignored rows: 0.
// loss: R values (contiguous, index n*S + s) for None, else one value.
// dx: (N, C, S) contiguous or nullptr. weight: C values or nullptr.
template <typename T>
void cross_entropy_forward(T* loss, T* dx, View3<T> x, TargetView target, const T* weight, index_t N,
                           index_t C, index_t S, index_t ignore_index, double label_smoothing, Reduction red);

// Cross-entropy with class-probability targets (same (N, C, S) shape as x):
//   q_c = w_c ((1-eps) t_c + eps/C),  loss_r = sum_c q_c (lse - x_c)
//   dx_c = k (Q p_c - q_c) with Q = sum_c q_c,  dtarget_c = k (1-eps) w_c (lse - x_c)
// k = 1/R for mean. dx, dtarget: (N, C, S) contiguous or nullptr.
template <typename T>
void cross_entropy_prob_forward(T* loss, T* dx, T* dtarget, View3<T> x, View3<T> target, const T* weight,
                                index_t N, index_t C, index_t S, double label_smoothing, Reduction red);

// dx[n, c, s] = saved[n, c, s] * g, with g = g_rows[n*S + s] when g_rows is
// set (reduction None) or g_scalar. saved and dx: (N, C, S) contiguous.
template <typename T>
void loss_scale_grad(T* dx, const T* saved, const T* g_rows, T g_scalar, index_t N, index_t C, index_t S);

// NLL on log-probabilities: loss_r = -w_t x[n, t, s] (0 when ignored).
template <typename T>
void nll_loss_forward(T* loss, View3<T> x, TargetView target, const T* weight, index_t N, index_t C, index_t S,
                      index_t ignore_index, Reduction red);

// dx[n, c, s] = -g_r k w_t [c == t] (dx fully written, (N, C, S) contiguous).
template <typename T>
void nll_loss_backward(T* dx, const T* g_rows, T g_scalar, TargetView target, const T* weight, index_t N,
                       index_t C, index_t S, index_t ignore_index, Reduction red);
}  // namespace cpu

// ---------------------------------------------------------------------------
// Pointwise losses l(x, y) on (R, K) operands. `param` is delta (Huber), beta
// (SmoothL1); unused otherwise. w (BCE, BCEWithLogits) and pos_weight
// (BCEWithLogits) are optional broadcast views.
enum class PointLoss : int {
  MSE = 0,            // (x - y)^2
  L1 = 1,             // |x - y|
  Huber = 2,          // 0.5 d^2 if |d| < delta else delta (|d| - delta/2)
  SmoothL1 = 3,       // 0.5 d^2 / beta if |d| < beta else |d| - beta/2 (beta 0: L1)
  BCE = 4,            // -w (y log x + (1 - y) log(1 - x)), logs clamped at -100
  BCEWithLogits = 5,  // -w (p y log s(x) + (1 - y) log(1 - s(x))), stable form
  KLDiv = 6,          // y (log y - x), 0 where y == 0
  KLDivLogTarget = 7, // exp(y) (y - x)
  Perceptron = 8,     // max(0, -y x)
};

namespace cpu {
// out: R*K values (contiguous) for None; else out[0] = out_scale * sum.
template <typename T>
void pointwise_loss_forward(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pos_weight, index_t R,
                            index_t K, PointLoss kind, double param, Reduction red, double out_scale);

// dx = g * dl/dx, dy = g * dl/dy with g = g_scale * (g_elems ? g_elems[i] : 1);
// dx, dy: (R, K) contiguous or nullptr; g_elems: R*K contiguous or nullptr.
template <typename T>
void pointwise_loss_backward(T* dx, T* dy, const T* g_elems, T g_scale, View2<T> x, View2<T> y, View2<T> w,
                             View2<T> pos_weight, index_t R, index_t K, PointLoss kind, double param);

// RMSE (nnfast addition): out[0] = sqrt(mean((x - y)^2)) over all R*K values.
// Its gradient is (x - y) / (n max(rmse, eps)): pointwise_loss_backward with
// kind MSE and g_scale = g / (2 n max(rmse, eps)), finite at rmse = 0.
template <typename T>
void rmse_loss_forward(T* out, View2<T> x, View2<T> y, index_t R, index_t K);

// ---------------------------------------------------------------------------
// Linear + cross-entropy without materializing the (N, C) logits:
//   z = x W^T + b (x: (N, H) rows, W: (C, H), b: (C,) or nullptr)
// computed in (row block x class chunk) tiles through nnfast::gemm with an
// online log-sum-exp. lse: N values saved for the backward (ignored rows too).
// The tile workspace is at most row_block * chunk elements (allocated here).
// logits (optional, (N, C) contiguous): the tiles are made there instead, for the backward.
template <typename T>
void linear_cross_entropy_forward(T* loss, T* lse, View2<T> x, View2<T> W, const T* b, const std::int64_t* target,
                                  index_t N, index_t H, index_t C, index_t ignore_index, double label_smoothing,
                                  Reduction red, index_t chunk, T* logits = nullptr);

// Backward by recomputing each logits tile: dz = g k (softmax - smoothed one-hot),
// dx = dz W, dW += dz^T x, db += colsum(dz). dx (N, H) is overwritten, dW (C, H)
// and db (C,) accumulate (nnfast/common.h); contiguous, each optional. logits: the
// forward's (N, C) logits when it kept them (read, not recomputed), else nullptr.
template <typename T>
void linear_cross_entropy_backward(T* dx, T* dW, T* db, const T* g_rows, T g_scalar, const T* lse, View2<T> x,
                                   View2<T> W, const T* b, const std::int64_t* target, index_t N, index_t H,
                                   index_t C, index_t ignore_index, double label_smoothing, Reduction red,
                                   index_t chunk, const T* logits = nullptr);
}  // namespace cpu

}  // namespace nnfast

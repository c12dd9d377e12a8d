// Normalization kernels, forward then backward: LayerNorm / RMSNorm, BatchNorm,
// GroupNorm / InstanceNorm, weight norm and spectral norm.
//
// Shape letters: M rows of D features (layer / RMS norm: one statistic per row);
// N batch, C channels, L elements per (n, c) (batch / group / instance norm: x is
// (N, C, L), C-contiguous); G groups of C / G consecutive channels.
//
// Every array is C-contiguous. Saved statistics (mean, rstd = 1 / sqrt(var + eps))
// are double for both dtypes: a float32 row with mean 1e4 and std 1e-2 would lose
// its centred values if the mean were rounded to float. Statistics use shifted
// sums (one pass, shift = first element), accumulated in double.
// Gradients follow the contract in nnfast/common.h: dx / dv overwrite, dweight /
// dbias / dg accumulate (+=) into the caller's buffer. A null gradient pointer
// means "not wanted" and is skipped.
#pragma once
#include "nnfast/common.h"

namespace nnfast {

namespace cpu {
// ---------------------------------------------------------------- layer / RMS norm
// y = (x - mean) * rstd * weight + bias per row of x (M, D); rms: mean = 0 and
// rstd = 1 / sqrt(mean(x^2) + eps), no bias. weight / bias (D,) may be null.
// mean, rstd: (M,) outputs (mean may be null when rms).
template <typename T>
void layer_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t M,
                        index_t D, double eps, bool rms);

// dx (M, D) =, dweight / dbias (D,) += from dy and the saved x, mean, rstd.
template <typename T>
void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t M, index_t D, bool rms);

// ---------------------------------------------------------------- batch norm
// Statistics per channel over (N, L). training: batch mean / biased var; when
// running_mean / running_var are non-null they are updated in place,
// r = (1 - momentum) r + momentum s, with the unbiased variance (N L / (N L - 1)).
// Not training: the running statistics are used (both must be non-null).
// mean, rstd (C,) receive the statistics used, for backward.
template <typename T>
void batch_norm_forward(T* y, double* mean, double* rstd, T* running_mean, T* running_var, const T* x,
                        const T* weight, const T* bias, index_t N, index_t C, index_t L, bool training,
                        double momentum, double eps);

// training: the statistics depend on x (full formula); else dx = dy * weight * rstd.
template <typename T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, bool training);

// ---------------------------------------------------------------- group / instance norm
// Statistics per (n, g) over the C / G channels of group g and their L elements;
// weight / bias (C,) per channel or null. mean, rstd: (N, G). Instance norm is G = C.
template <typename T>
void group_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t N,
                        index_t C, index_t L, index_t G, double eps);

template <typename T>
void group_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, index_t G);

// Instance norm's running statistics from group_norm_forward's (N, C) mean / rstd
// (G = C): r = (1 - momentum) r + momentum * average over n (unbiased var).
template <typename T>
void instance_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* rstd,
                                  index_t N, index_t C, index_t L, double momentum, double eps);

// ---------------------------------------------------------------- weight norm
// v viewed as (N, C, L) with the kept dimension as C: w = g[c] * v / ||v[:, c, :]||.
// norm (C,) is saved for backward.
template <typename T>
void weight_norm_forward(T* w, double* norm, const T* v, const T* g, index_t N, index_t C, index_t L);

// s[c] = sum(dw * v); dg += s / norm; dv = g / norm * (dw - v * s / norm^2).
template <typename T>
void weight_norm_backward(T* dv, T* dg, const T* dw, const T* v, const T* g, const double* norm, index_t N,
                          index_t C, index_t L);

// ---------------------------------------------------------------- spectral norm
// W is the (M, D) weight matrix, u (M,), v (D,) the power-iteration vectors
// (updated in place): n_iter times v = normalize(W^T u), u = normalize(W v),
// normalize(a) = a / max(||a||, eps).
template <typename T>
void spectral_norm_power_iteration(T* u, T* v, const T* W, index_t M, index_t D, int n_iter, double eps);

// y = W / sigma with sigma = u . (W v); returns sigma.
template <typename T>
double spectral_norm_forward(T* y, const T* W, const T* u, const T* v, index_t M, index_t D);

// dW = dy / sigma - (sum(dy * W) / sigma^2) u v^T  (u, v constants, as in PyTorch).
// dW is the gradient of the raw weight as an input of this op: overwritten (=).
template <typename T>
void spectral_norm_backward(T* dW, const T* dy, const T* W, const T* u, const T* v, double sigma, index_t M,
                            index_t D);
}  // namespace cpu

}  // namespace nnfast

// CUDA loss kernels: the launchers of nnfast/loss.h (same names, template
// parameters and arguments as nnfast::cpu) with a trailing stream.
//
// Device pointers: every tensor (x, target views, weight, loss, dx, dtarget,
// g_rows, lse, W, b, dW, db, target). Launchers enqueue on `stream` and return
// without synchronising, except find_bad_target, which returns a value and so
// waits for its own small reduction. Reductions (mean / sum) are deterministic:
// per-row values in double, summed in a fixed tree (no float atomics); the
// result equals the CPU's to rounding. Gradient contract as nnfast/common.h:
// dx / dtarget overwrite, linear_cross_entropy's dW / db accumulate.
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/loss.h"

namespace nnfast::cuda {

// First (n*S + s) position with a target outside [0, C) and != ignore_index, or -1.
// Synchronises `stream` (the answer is read back to the host).
index_t find_bad_target(TargetView target, index_t N, index_t S, index_t C, index_t ignore_index,
                        cudaStream_t stream = nullptr);

template <typename T>
void cross_entropy_forward(T* loss, T* dx, View3<T> x, TargetView target, const T* weight, index_t N, index_t C,
                           index_t S, index_t ignore_index, double label_smoothing, Reduction red,
                           cudaStream_t stream = nullptr);

template <typename T>
void cross_entropy_prob_forward(T* loss, T* dx, T* dtarget, View3<T> x, View3<T> target, const T* weight, index_t N,
                                index_t C, index_t S, double label_smoothing, Reduction red,
                                cudaStream_t stream = nullptr);

template <typename T>
void loss_scale_grad(T* dx, const T* saved, const T* g_rows, T g_scalar, index_t N, index_t C, index_t S,
                     cudaStream_t stream = nullptr);

template <typename T>
void nll_loss_forward(T* loss, View3<T> x, TargetView target, const T* weight, index_t N, index_t C, index_t S,
                      index_t ignore_index, Reduction red, cudaStream_t stream = nullptr);

template <typename T>
void nll_loss_backward(T* dx, const T* g_rows, T g_scalar, TargetView target, const T* weight, index_t N, index_t C,
                       index_t S, index_t ignore_index, Reduction red, cudaStream_t stream = nullptr);

template <typename T>
void pointwise_loss_forward(T* out, View2<T> x, View2<T> y, View2<T> w, View2<T> pos_weight, index_t R, index_t K,
                            PointLoss kind, double param, Reduction red, double out_scale,
                            cudaStream_t stream = nullptr);

template <typename T>
void pointwise_loss_backward(T* dx, T* dy, const T* g_elems, T g_scale, View2<T> x, View2<T> y, View2<T> w,
                             View2<T> pos_weight, index_t R, index_t K, PointLoss kind, double param,
                             cudaStream_t stream = nullptr);

template <typename T>
void rmse_loss_forward(T* out, View2<T> x, View2<T> y, index_t R, index_t K, cudaStream_t stream = nullptr);

// Linear + softmax cross-entropy without the (N, C) logits (csrc/cuda/loss_linear_ce.cu):
// as nnfast::cpu, tiles of logits from nnfast::cuda::gemm; dW / db accumulate.
template <typename T>
void linear_cross_entropy_forward(T* loss, T* lse, View2<T> x, View2<T> W, const T* b, const std::int64_t* target,
                                  index_t N, index_t H, index_t C, index_t ignore_index, double label_smoothing,
                                  Reduction red, index_t chunk, cudaStream_t stream = nullptr);
template <typename T>
void linear_cross_entropy_backward(T* dx, T* dW, T* db, const T* g_rows, T g_scalar, const T* lse, View2<T> x,
                                   View2<T> W, const T* b, const std::int64_t* target, index_t N, index_t H,
                                   index_t C, index_t ignore_index, double label_smoothing, Reduction red,
                                   index_t chunk, cudaStream_t stream = nullptr);

}  // namespace nnfast::cuda

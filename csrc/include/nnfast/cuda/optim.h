// CUDA optimizer steps and multi-tensor utilities: the launchers of
// nnfast/optim.h (same names, template parameters and arguments as nnfast::cpu)
// with a trailing stream.
//
// Pointer conventions (what the bindings hand over):
//   * the tensor lists (param, grad, exp_avg, ...) are HOST arrays of DEVICE
//     pointers; numel, step and init_buffer are HOST arrays;
//   * results returned to the caller -- multi_tensor_all_finite's bool,
//     multi_tensor_norm's `norms` and lamb_step's `trust_ratio` -- are HOST
//     memory: those calls copy back and synchronise `stream`. Every other call
//     enqueues and returns.
// Multi-tensor apply: the lists travel in the kernel's argument block (up to
// kMaxTensorsPerLaunch tensors per launch, so one launch per param group of
// ordinary size); each block takes fixed element chunks of one tensor. Norms
// and LAMB's trust ratios are deterministic: per-chunk double partials, then a
// fixed-order per-tensor reduce (no float atomics).
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/optim.h"

namespace nnfast::cuda {

template <typename T>
void sgd_step(T* const* param, T* const* momentum_buffer, const T* const* grad, const std::uint8_t* init_buffer,
              const index_t* numel, index_t count, const SGDOptions& opt, cudaStream_t stream = nullptr);

template <typename T>
void adam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
               const T* const* grad, const index_t* step, const index_t* numel, index_t count, const AdamOptions& opt,
               cudaStream_t stream = nullptr);

template <typename T>
void adagrad_step(T* const* param, T* const* state_sum, const T* const* grad, const index_t* step,
                  const index_t* numel, index_t count, const AdagradOptions& opt, cudaStream_t stream = nullptr);

template <typename T>
void rmsprop_step(T* const* param, T* const* square_avg, T* const* grad_avg, T* const* momentum_buffer,
                  const T* const* grad, const index_t* numel, index_t count, const RMSpropOptions& opt,
                  cudaStream_t stream = nullptr);

template <typename T>
void adabound_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
                   const T* const* grad, const index_t* step, const index_t* numel, index_t count,
                   const AdaBoundOptions& opt, cudaStream_t stream = nullptr);

template <typename T>
void lion_step(T* const* param, T* const* exp_avg, const T* const* grad, const index_t* numel, index_t count,
               const LionOptions& opt, cudaStream_t stream = nullptr);

template <typename T>
void adadelta_step(T* const* param, T* const* square_avg, T* const* acc_delta, const T* const* grad,
                   const index_t* numel, index_t count, const AdadeltaOptions& opt, cudaStream_t stream = nullptr);

template <typename T>
void adamax_step(T* const* param, T* const* exp_avg, T* const* exp_inf, const T* const* grad, const index_t* step,
                 const index_t* numel, index_t count, const AdamaxOptions& opt, cudaStream_t stream = nullptr);

// mu_product: host, in/out (advanced on the host before the launch).
template <typename T>
void nadam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, double* mu_product,
                const index_t* step, const index_t* numel, index_t count, const NAdamOptions& opt,
                cudaStream_t stream = nullptr);

template <typename T>
void radam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, const index_t* step,
                const index_t* numel, index_t count, const RAdamOptions& opt, cudaStream_t stream = nullptr);

// eta, mu: host, in/out (advanced on the host before the launch).
template <typename T>
void asgd_step(T* const* param, T* const* ax, const T* const* grad, double* eta, double* mu, const index_t* step,
               const index_t* numel, index_t count, const ASGDOptions& opt, cudaStream_t stream = nullptr);

// trust_ratio: host, `count` values (nullable). Synchronises when trust_ratio is set.
template <typename T>
void lamb_step(double* trust_ratio, T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
               const index_t* step, const index_t* numel, index_t count, const LambOptions& opt,
               cudaStream_t stream = nullptr);

// Synchronises (the answer is read back).
template <typename T>
bool multi_tensor_all_finite(const T* const* x, const index_t* numel, index_t count, cudaStream_t stream = nullptr);

// norms: host, `count` values. Synchronises.
template <typename T>
void multi_tensor_norm(double* norms, const T* const* x, const index_t* numel, index_t count, double norm_type,
                       cudaStream_t stream = nullptr);

// Host function on host values (the per-tensor norms multi_tensor_norm returned).
double combine_norms(const double* norms, index_t count, double norm_type);

template <typename T>
void multi_tensor_scale(T* const* x, const index_t* numel, index_t count, double scale,
                        cudaStream_t stream = nullptr);

template <typename T>
void multi_tensor_zero(T* const* x, const index_t* numel, index_t count, cudaStream_t stream = nullptr);

template <typename T>
void multi_tensor_clamp(T* const* x, const index_t* numel, index_t count, double lo, double hi,
                        cudaStream_t stream = nullptr);

}  // namespace nnfast::cuda

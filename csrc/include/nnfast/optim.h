// Optimizer steps, gradient norms and clipping as multi-tensor kernels.
//
// Every kernel takes a *tensor list*: `count` tensors, tensor i holding numel[i]
// contiguous elements, given as arrays of pointers indexed by tensor
// (param[i], grad[i], exp_avg[i], ...). The kernels treat the list as one
// concatenated element range and split that range across threads, so a whole
// model's update is one call and one parallel region however many tensors it has.
// Each element is read once and written once per step (LAMB, which needs the
// norms of the whole update before applying it, reads param/state twice).
//
// Steps update param and state in place. Arithmetic runs in T with the
// hyper-parameters rounded to T (as PyTorch does); `step` arrays hold each
// tensor's step number *after* this update (1 on the first step), as PyTorch's
// state['step'] does after its increment.
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

// ------------------------------------------------------------------ SGD
struct SGDOptions {
  double lr = 1e-3, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false, maximize = false;
};

namespace cpu {
// d = ±grad + wd*param; with momentum: buf = init ? d : momentum*buf + (1-dampening)*d,
// d = nesterov ? d + momentum*buf : buf; param -= lr*d.
// momentum_buffer may be null when momentum == 0; init_buffer[i] != 0 marks a fresh
// (uninitialised) buffer that is set to d, as PyTorch does on the first step.
template <typename T>
void sgd_step(T* const* param, T* const* momentum_buffer, const T* const* grad, const std::uint8_t* init_buffer,
              const index_t* numel, index_t count, const SGDOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ Adam / AdamW / AMSGrad
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool amsgrad = false, maximize = false;
  bool decoupled_weight_decay = false;  // AdamW: param *= 1 - lr*wd instead of grad += wd*param
};

namespace cpu {
// max_exp_avg_sq is used (and may be non-null) only when amsgrad.
template <typename T>
void adam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
               const T* const* grad, const index_t* step, const index_t* numel, index_t count,
               const AdamOptions& opt);
// float32 Adam / AdamW that also stores each updated param rounded to bf16 (RNE, as
// nnfast's convert) into copy[i] when copy[i] is non-null, in the same pass: the bf16
// weight an autocast forward reads, without a separate conversion pass over the params.
void adam_step_bf16_copy(float* const* param, float* const* exp_avg, float* const* exp_avg_sq,
                         float* const* max_exp_avg_sq, const float* const* grad, std::uint16_t* const* copy,
                         const index_t* step, const index_t* numel, index_t count, const AdamOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ Adagrad
struct AdagradOptions {
  double lr = 1e-2, lr_decay = 0.0, weight_decay = 0.0, eps = 1e-10;
  bool maximize = false;
};

namespace cpu {
template <typename T>
void adagrad_step(T* const* param, T* const* state_sum, const T* const* grad, const index_t* step,
                  const index_t* numel, index_t count, const AdagradOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ RMSprop
struct RMSpropOptions {
  double lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0.0, momentum = 0.0;
  bool centered = false, maximize = false;
};

namespace cpu {
// grad_avg is used only when centered, momentum_buffer only when momentum > 0
// (both start at zero, as in PyTorch).
template <typename T>
void rmsprop_step(T* const* param, T* const* square_avg, T* const* grad_avg, T* const* momentum_buffer,
                  const T* const* grad, const index_t* numel, index_t count, const RMSpropOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ AdaBound (Luo et al. 2019)
struct AdaBoundOptions {
  double lr = 1e-3, base_lr = 1e-3, beta1 = 0.9, beta2 = 0.999, final_lr = 0.1, gamma = 1e-3, eps = 1e-8,
         weight_decay = 0.0;
  bool amsbound = false, maximize = false;
};

namespace cpu {
// As the reference implementation: the Adam step size lr*sqrt(bc2)/bc1/denom is
// clipped elementwise to [final*(1 - 1/(gamma*t+1)), final*(1 + 1/(gamma*t))],
// final = final_lr * lr / base_lr.
template <typename T>
void adabound_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
                   const T* const* grad, const index_t* step, const index_t* numel, index_t count,
                   const AdaBoundOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ Lion (Chen et al. 2023)
struct LionOptions {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.0;
  bool maximize = false;
};

namespace cpu {
// param *= 1 - lr*wd; param -= lr*sign(beta1*m + (1-beta1)*g); m = beta2*m + (1-beta2)*g.
template <typename T>
void lion_step(T* const* param, T* const* exp_avg, const T* const* grad, const index_t* numel, index_t count,
               const LionOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ Adadelta (Zeiler 2012)
struct AdadeltaOptions {
  double lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0.0;
  bool maximize = false;
};

namespace cpu {
// g = ±grad + wd*p; sq = rho*sq + (1-rho)*g^2; d = sqrt(acc + eps) / sqrt(sq + eps) * g;
// acc = rho*acc + (1-rho)*d^2; p -= lr*d.
template <typename T>
void adadelta_step(T* const* param, T* const* square_avg, T* const* acc_delta, const T* const* grad,
                   const index_t* numel, index_t count, const AdadeltaOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ Adamax (Kingma & Ba 2015, sec. 7)
struct AdamaxOptions {
  double lr = 2e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool maximize = false;
};

namespace cpu {
// m = lerp(m, g, 1-beta1); u = max(beta2*u, |g| + eps) (NaN kept); p -= lr/(1-beta1^step) * m / u.
template <typename T>
void adamax_step(T* const* param, T* const* exp_avg, T* const* exp_inf, const T* const* grad, const index_t* step,
                 const index_t* numel, index_t count, const AdamaxOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ NAdam (Dozat 2016)
struct NAdamOptions {
  double lr = 2e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0, momentum_decay = 4e-3;
  bool decoupled_weight_decay = false, maximize = false;
};

namespace cpu {
// mu_t = beta1 (1 - 0.5 * 0.96^(t*momentum_decay)); mu_product (in/out, one double per
// tensor) is multiplied by mu_t and rounded to float32, as PyTorch keeps it in a float32
// scalar tensor; then m = lerp(m, g, 1-beta1), v = beta2 v + (1-beta2) g^2,
// d = sqrt(v / bc2) + eps and p += -lr (1-mu_t)/(1-mu_product) g/d
// - lr mu_{t+1}/(1 - mu_product mu_{t+1}) m/d.
template <typename T>
void nadam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
                double* mu_product, const index_t* step, const index_t* numel, index_t count,
                const NAdamOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ RAdam (Liu et al. 2020)
struct RAdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled_weight_decay = false, maximize = false;
};

namespace cpu {
// Adam's moments; with rho_t = rho_inf - 2 t beta2^t / bc2 > 5 the rectified step
// p -= (m/bc1) lr sqrt(bc2)/(sqrt(v) + eps) r_t, else the momentum step p -= (m/bc1) lr.
template <typename T>
void radam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, const index_t* step,
                const index_t* numel, index_t count, const RAdamOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ ASGD (Polyak & Juditsky 1992)
struct ASGDOptions {
  double lr = 1e-2, lambd = 1e-4, alpha = 0.75, t0 = 1e6, weight_decay = 0.0;
  bool maximize = false;
};

namespace cpu {
// eta, mu: per tensor, in/out (PyTorch's state 'eta' and 'mu', float32 scalars there).
// p = p (1 - lambd eta) - eta g; ax = mu == 1 ? p : ax + (p - ax) mu; then
// eta = lr / (1 + lambd lr t)^alpha and mu = 1 / max(1, t - t0), rounded to float32.
template <typename T>
void asgd_step(T* const* param, T* const* ax, const T* const* grad, double* eta, double* mu, const index_t* step,
               const index_t* numel, index_t count, const ASGDOptions& opt);
}  // namespace cpu

// ------------------------------------------------------------------ LAMB (You et al. 2020)
struct LambOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-6, weight_decay = 0.0;
  bool bias_correction = true, maximize = false;
};

namespace cpu {
// u = m_hat / (sqrt(v_hat) + eps) + wd*param; param -= lr * r * u per tensor, with
// r = ||param|| / ||u|| when both norms are > 0, else 1. trust_ratio (nullable)
// receives r per tensor. Norms are summed in double over fixed blocks, so the
// result does not depend on the thread count.
template <typename T>
void lamb_step(double* trust_ratio, T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
               const index_t* step, const index_t* numel, index_t count, const LambOptions& opt);

// ------------------------------------------------------------------ utilities
// True when every element of every tensor is finite.
template <typename T>
bool multi_tensor_all_finite(const T* const* x, const index_t* numel, index_t count);

// norms[i] = vector norm of order norm_type of tensor i (inf, -inf, 0, 1, 2 or any
// p > 0), accumulated in double over fixed blocks (thread-count independent).
template <typename T>
void multi_tensor_norm(double* norms, const T* const* x, const index_t* numel, index_t count, double norm_type);

// Combines per-tensor norms into the norm of the concatenation (PyTorch's
// vector_norm(stack(norms))).
double combine_norms(const double* norms, index_t count, double norm_type);

// x *= scale.
template <typename T>
void multi_tensor_scale(T* const* x, const index_t* numel, index_t count, double scale);

// x = 0 (every bit clear), the threads splitting the concatenation: zero_grad(set_to_none=False)
// in one call, off the calling thread's sole charge.
template <typename T>
void multi_tensor_zero(T* const* x, const index_t* numel, index_t count);

// x = min(max(x, lo), hi); NaN stays NaN.
template <typename T>
void multi_tensor_clamp(T* const* x, const index_t* numel, index_t count, double lo, double hi);
}  // namespace cpu

}  // namespace nnfast

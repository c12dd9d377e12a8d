// Optimizer coefficients that the CPU drivers (cpu/optim.cpp) and the CUDA launchers
// (cuda/optim.cu) both derive from the options, on the host: the gradient sign, the
// Adam family's bias corrections, and Adam's per-call constants.
// `static`: included (through cpu/optim_internal.h) by objects built with different
// -m flags, so no copy is ever shared between them.
#pragma once
#include <algorithm>
#include <cmath>

#include "nnfast/optim.h"

namespace nnfast {
namespace optim_coef {

// -1 when maximizing (the gradient is negated), else 1.
template <typename T>
static inline T sign_of(bool maximize) {
  return maximize ? T(-1) : T(1);
}

// The Adam family's bias corrections after `step` updates: 1 - beta^step.
struct BiasCorrections {
  double bc1, bc2;
};
static inline BiasCorrections bias_corrections(double beta1, double beta2, index_t step) {
  const double t = static_cast<double>(step);
  return {1.0 - std::pow(beta1, t), 1.0 - std::pow(beta2, t)};
}

// Adam / AdamW constants of one call, the same for every tensor (omb = one minus
// beta; decay = 1 - lr wd, AdamW's decoupled weight decay; l2 = wd folded into the
// gradient). The per-tensor step size and 1 / sqrt(bc2) come on top.
template <typename T>
struct AdamConsts {
  T sign, wd, decay, omb1, beta2, omb2, eps;
  bool l2, decoupled, amsgrad;
};
template <typename T>
static inline AdamConsts<T> adam_consts(const AdamOptions& o) {
  return {sign_of<T>(o.maximize),
          T(o.weight_decay),
          T(1.0 - o.lr * o.weight_decay),
          T(1.0 - o.beta1),
          T(o.beta2),
          T(1.0 - o.beta2),
          T(o.eps),
          o.weight_decay != 0 && !o.decoupled_weight_decay,
          o.weight_decay != 0 && o.decoupled_weight_decay,
          o.amsgrad};
}

// PyTorch keeps NAdam's mu_product and ASGD's eta / mu in float32 scalar tensors:
// every stored value is rounded to float32, and the next step computes with it.
static inline double as_f32_scalar(double x) { return static_cast<double>(static_cast<float>(x)); }

// Constants of the Adam-like steps below (Adadelta, Adamax, NAdam, RAdam, ASGD):
// sign, L2 weight decay folded into the gradient or decoupled (p *= decay).
template <typename T>
struct StepConsts {
  T sign, wd, decay, rho, omr, beta2, omb2, eps;  // rho / omr: beta1 and 1 - beta1 (Adadelta: rho, 1 - rho)
  bool l2, decoupled;
};
template <typename T>
static inline StepConsts<T> step_consts(bool maximize, double lr, double wd, bool decoupled, double beta1,
                                        double beta2, double eps) {
  return {sign_of<T>(maximize), T(wd),         T(1.0 - lr * wd), T(beta1),         T(1.0 - beta1),
          T(beta2),             T(1.0 - beta2), T(eps),          wd != 0 && !decoupled, wd != 0 && decoupled};
}

// Per-tensor coefficients of one step, as doubles (each backend rounds them to T).
// NAdam: multiplies mu_t into mu_product (in/out, float32-rounded, as PyTorch) and
// returns bc2, the gradient's and the momentum's coefficients (negative).
struct NAdamStepCoef {
  double bc2, cg, cm;
};
static inline NAdamStepCoef nadam_step_coef(const NAdamOptions& o, index_t step, double& mu_product) {
  const double t = static_cast<double>(step);
  const double mu = o.beta1 * (1.0 - 0.5 * std::pow(0.96, t * o.momentum_decay));
  const double mu_next = o.beta1 * (1.0 - 0.5 * std::pow(0.96, (t + 1.0) * o.momentum_decay));
  mu_product = as_f32_scalar(mu_product * as_f32_scalar(mu));  // a float32 tensor times a scalar
  return {1.0 - std::pow(o.beta2, t), -o.lr * (1.0 - mu) / (1.0 - mu_product),
          (-o.lr * mu_next) / (1.0 - mu_product * mu_next)};
}

// RAdam: bc1, sqrt(bc2) and the rectification r_t (rectified: rho_t > 5).
struct RAdamStepCoef {
  double bc1, sqrt_bc2, rect;
  bool rectified;
};
static inline RAdamStepCoef radam_step_coef(const RAdamOptions& o, index_t step) {
  const double t = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(o.beta1, t), bc2 = 1.0 - std::pow(o.beta2, t);
  const double rho_inf = 2.0 / (1.0 - o.beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * std::pow(o.beta2, t) / bc2;
  const bool rectified = rho_t > 5.0;
  const double rect =
      rectified ? std::pow((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t), 0.5)
                : 1.0;
  return {bc1, std::pow(bc2, 0.5), rect, rectified};
}

// ASGD: this step's decay 1 - lambd eta, -eta and mu (from the state's eta, mu), then
// eta and mu (in/out) advanced to their values after step `step`.
struct ASGDStepCoef {
  double decay, neg_eta, mu;
  bool mu_one;
};
static inline ASGDStepCoef asgd_step_coef(const ASGDOptions& o, index_t step, double& eta, double& mu) {
  const ASGDStepCoef c{1.0 - o.lambd * eta, -eta, mu, mu == 1.0};
  const double t = static_cast<double>(step);
  eta = as_f32_scalar(o.lr / std::pow(1.0 + o.lambd * o.lr * t, o.alpha));
  mu = as_f32_scalar(1.0 / std::max(1.0, t - o.t0));
  return c;
}

}  // namespace optim_coef
}  // namespace nnfast

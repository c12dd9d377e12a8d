// Optimizer coefficients that the CPU drivers (cpu/optim.cpp) and the CUDA launchers
// (cuda/optim.cu) both derive from the options, on the host: the gradient sign, the
// Adam family's bias corrections, and Adam's per-call constants.
// `static`: included (through cpu/optim_internal.h) by objects built with different
// -m flags, so no copy is ever shared between them.
#pragma once
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

}  // namespace optim_coef
}  // namespace nnfast

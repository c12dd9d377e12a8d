// Optimizer internals shared by the multi-tensor drivers (optim.cpp) and the
// per-ISA range kernels (optim_isa.cpp, compiled once per instruction set):
// per-tensor coefficient structs (hyper-parameters folded into T scalars) and
// the table of range kernels.
#pragma once
#include "core/isa_dispatch.h"
#include "core/optim_coef.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace optim_detail {

// ------------------------------------------------------------------ 1. coefficients
template <typename T>
struct SgdCoef {
  T sign, lr, wd, momentum, damp1;  // damp1 = 1 - dampening
  bool l2, has_momentum, nesterov;
};

// The per-call constants (core/optim_coef.h, shared with CUDA), then the tensor's
// 1 / sqrt(bc2) and lr / bc1.
template <typename T>
struct AdamCoef : optim_coef::AdamConsts<T> {
  T inv_bc2_sqrt, step_size;
};

template <typename T>
struct AdagradCoef {
  T sign, wd, clr, eps;
  bool l2;
};

template <typename T>
struct RmspropCoef {
  T sign, wd, alpha, oma, eps, lr, momentum;
  bool l2, centered, has_momentum;
};

template <typename T>
struct AdaBoundCoef {
  T sign, wd, beta1, omb1, beta2, omb2, eps, step_size, lower, upper;
  bool l2, amsbound;
};

template <typename T>
struct LionCoef {
  T sign, lr, decay, beta1, omb1, beta2, omb2;
  bool has_wd;
};

template <typename T>
struct LambCoef {
  T sign, omb1, beta2, omb2, ibc1, ibc2_sqrt, eps, wd;
  bool has_wd;
};

// Adadelta, Adamax, NAdam, RAdam, ASGD: the call's constants (core/optim_coef.h, shared
// with CUDA), then each tensor's step-dependent coefficients rounded to T.
template <typename T>
struct AdadeltaCoef : optim_coef::StepConsts<T> {
  T neg_lr;
};
template <typename T>
struct AdamaxCoef : optim_coef::StepConsts<T> {
  T neg_clr;  // -lr / (1 - beta1^step)
};
template <typename T>
struct NAdamCoef : optim_coef::StepConsts<T> {
  T bc2, cg, cm;
};
template <typename T>
struct RAdamCoef : optim_coef::StepConsts<T> {
  T bc1, lr, sqrt_bc2, rect;
  bool rectified;
};
template <typename T>
struct AsgdCoef : optim_coef::StepConsts<T> {
  T eta_decay, neg_eta, mu;  // eta_decay = 1 - lambd eta
  bool mu_one;
};

// Norm kinds computed by the range kernels.
enum NormKind : int { kNormL2 = 0, kNormL1 = 1, kNormL0 = 2, kNormInf = 3, kNormNegInf = 4, kNormP = 5 };

// One ISA's range kernels (optim_isa.cpp): each streams one contiguous slice.
template <typename T>
struct OptimOps {
  void (*sgd)(T*, T*, const T*, index_t, const SgdCoef<T>&, bool);
  void (*adam)(T*, T*, T*, T*, const T*, index_t, const AdamCoef<T>&);
  void (*adagrad)(T*, T*, const T*, index_t, const AdagradCoef<T>&);
  void (*rmsprop)(T*, T*, T*, T*, const T*, index_t, const RmspropCoef<T>&);
  void (*adabound)(T*, T*, T*, T*, const T*, index_t, const AdaBoundCoef<T>&);
  void (*lion)(T*, T*, const T*, index_t, const LionCoef<T>&);
  void (*adadelta)(T*, T*, T*, const T*, index_t, const AdadeltaCoef<T>&);  // param, square_avg, acc_delta, grad
  void (*adamax)(T*, T*, T*, const T*, index_t, const AdamaxCoef<T>&);      // param, exp_avg, exp_inf, grad
  void (*nadam)(T*, T*, T*, const T*, index_t, const NAdamCoef<T>&);        // param, exp_avg, exp_avg_sq, grad
  void (*radam)(T*, T*, T*, const T*, index_t, const RAdamCoef<T>&);        // param, exp_avg, exp_avg_sq, grad
  void (*asgd)(T*, T*, const T*, index_t, const AsgdCoef<T>&);              // param, ax, grad
  void (*lamb_pass1)(double*, double*, T*, T*, const T*, const T*, index_t, const LambCoef<T>&);
  void (*lamb_pass2)(T*, const T*, const T*, index_t, const LambCoef<T>&, T);
  bool (*all_finite)(const T*, index_t);
  double (*norm)(const T*, index_t, int, double);
  void (*scale)(T*, index_t, T);
  void (*clamp)(T*, index_t, T, T);
};

}  // namespace optim_detail

NNFAST_ISA_DECLARE_TABLE_T(optim_detail::OptimOps)

}  // namespace nnfast::cpu


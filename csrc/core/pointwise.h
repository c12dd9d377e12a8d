// Scalar definitions of the pointwise activations and their derivatives.
// Shared by the standalone activation kernels and the GEMM epilogues so both
// compute bit-identical results. Include from baseline-ISA files only (the
// templates below are not ISA-namespaced; core/vec_math.h is).
#pragma once
#include <cmath>
#include "core/vec_math.h"
#include "nnfast/common.h"

namespace nnfast {

template <typename T>
inline T sigmoid_scalar(T x) {
  // Split on sign so exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

// One element through the lane-generic definitions of core/vec_math.h (a
// one-lane vector), so the GEMM epilogue and the SIMD activation kernels give
// the same bits. Codes and formulas: see vm::act_fwd / vm::act_grad.
template <typename T>
inline T act_forward(Act act, T x, const ActParams& p) {
  namespace vm = NNFAST_VM_NS::vm;
  using V = vm::Vec<T, 1>;
  const V v = {x};
  const T a = T(p.a), b = T(p.b);
  switch (act) {
    case Act::Identity: return x;
    case Act::ReLU: return vm::act_fwd<Act::ReLU>(v, a, b)[0];
    case Act::LeakyReLU: return vm::act_fwd<Act::LeakyReLU>(v, a, b)[0];
    case Act::ELU: return vm::act_fwd<Act::ELU>(v, a, b)[0];
    case Act::Sigmoid: return vm::act_fwd<Act::Sigmoid>(v, a, b)[0];
    case Act::Tanh: return vm::act_fwd<Act::Tanh>(v, a, b)[0];
    case Act::GELU: return vm::act_fwd<Act::GELU>(v, a, b)[0];
    case Act::GELUTanh: return vm::act_fwd<Act::GELUTanh>(v, a, b)[0];
    case Act::SiLU: return vm::act_fwd<Act::SiLU>(v, a, b)[0];
    case Act::Softplus: return vm::act_fwd<Act::Softplus>(v, a, b)[0];
    case Act::Hardtanh: return vm::act_fwd<Act::Hardtanh>(v, a, b)[0];
  }
  return x;
}

// d act / d x, given the input x and the output y (only one of them is
// meaningful when act_grad_from_output(act) says so: then x is ignored).
template <typename T>
inline T act_derivative(Act act, T x, T y, const ActParams& p) {
  namespace vm = NNFAST_VM_NS::vm;
  using V = vm::Vec<T, 1>;
  const V vx = {x}, vy = {y};
  const T a = T(p.a), b = T(p.b);
  switch (act) {
    case Act::Identity: return T(1);
    case Act::ReLU: return vm::act_grad<Act::ReLU>(vy, a, b)[0];
    case Act::LeakyReLU: return vm::act_grad<Act::LeakyReLU>(vx, a, b)[0];
    case Act::ELU: return vm::act_grad<Act::ELU>(vx, a, b)[0];
    case Act::Sigmoid: return vm::act_grad<Act::Sigmoid>(vy, a, b)[0];
    case Act::Tanh: return vm::act_grad<Act::Tanh>(vy, a, b)[0];
    case Act::GELU: return vm::act_grad<Act::GELU>(vx, a, b)[0];
    case Act::GELUTanh: return vm::act_grad<Act::GELUTanh>(vx, a, b)[0];
    case Act::SiLU: return vm::act_grad<Act::SiLU>(vx, a, b)[0];
    case Act::Softplus: return vm::act_grad<Act::Softplus>(vx, a, b)[0];
    case Act::Hardtanh: return vm::act_grad<Act::Hardtanh>(vx, a, b)[0];
  }
  return T(1);
}

}  // namespace nnfast

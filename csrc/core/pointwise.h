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
// the same bits. Codes and formulas: vm::ActMath<A>.
template <typename T>
inline T act_forward(Act act, T x, const ActParams& p) {
  namespace vm = NNFAST_VM_NS::vm;
  const vm::Vec<T, 1> v = {x};
  return act_visit(act, [&](auto A) { return vm::act_fwd<decltype(A)::value>(v, T(p.a), T(p.b))[0]; });
}

// d act / d x, given the input x and the output y (only one of them is
// meaningful when act_grad_from_output(act) says so: then x is ignored).
template <typename T>
inline T act_derivative(Act act, T x, T y, const ActParams& p) {
  namespace vm = NNFAST_VM_NS::vm;
  return act_visit(act, [&](auto A) {
    const vm::Vec<T, 1> s = {act_grad_from_output(A) ? y : x};
    return vm::act_grad<decltype(A)::value>(s, T(p.a), T(p.b))[0];
  });
}

}  // namespace nnfast

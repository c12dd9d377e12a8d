// nnfast kernel library: shared types.
// Conventions for every kernel: outputs first, then inputs/saved tensors, then sizes.
//
// The gradient contract, for every backward kernel of nnfast::cpu (and nnfast::cuda):
//   * parameter gradients accumulate (+=): dweight, dbias, dW, db, dg, dbeta add the
//     step's gradient into the caller's buffer, so a caller zeroes them once per step
//     (or hands in the previous .grad) and never zero-fills around a call;
//   * activation (input) gradients overwrite (=): dx, dv, dtarget are fully written,
//     so their buffer may start uninitialised (even NaN).
// Each parameter gradient is reduced in a fixed order (double partial sums, rounded
// to T once) and then added, so two calls give exactly twice one call. A kernel that
// lets the caller choose (bias_grad's `accumulate`) says so. A null gradient pointer
// means "not wanted" and is skipped. The family headers refer to this rule.
#pragma once
#include <cstdint>
#include <type_traits>

namespace nnfast {

using index_t = std::int64_t;

// Pointwise activations that can run standalone or fused into a GEMM epilogue:
// THE list. Everything keyed by an activation is generated from it: the enum
// below, act_grad_from_output, act_visit (every switch: standalone kernels, GEMM
// epilogue forward / backward, the ISA tables), the Python export _C.Act /
// _C.ACT_COUNT / _C.ACT_INFO and nnfast.nn.functional._act_codes.resolve.
// A new activation is one line here plus its formulas, ActMath<Act::Name> in
// core/vec_math.h (see CONTRIBUTING.md).
//
// X(Name, code, grad_from_output, python_name, params)
//   code: stable, dense from 0 (the Python/C ABI); grad_from_output: its derivative
//   is a function of the output y alone (backward then saves y, not x); params: the
//   Python keyword names and defaults of ActParams a, b ("" = none), as PyTorch
//   spells them.
#define NNFAST_ACTIVATIONS(X)                                        \
  X(Identity, 0, true, "identity", "")                               \
  X(ReLU, 1, true, "relu", "")                                       \
  X(LeakyReLU, 2, false, "leaky_relu", "negative_slope=0.01")        \
  X(ELU, 3, false, "elu", "alpha=1.0")                               \
  X(Sigmoid, 4, true, "sigmoid", "")                                 \
  X(Tanh, 5, true, "tanh", "")                                       \
  X(GELU, 6, false, "gelu", "")           /* exact, erf form */      \
  X(GELUTanh, 7, false, "gelu_tanh", "")  /* tanh approximation */   \
  X(SiLU, 8, false, "silu", "")                                      \
  X(Softplus, 9, false, "softplus", "beta=1.0,threshold=20.0")       \
  X(Hardtanh, 10, false, "hardtanh", "min_val=-1.0,max_val=1.0")     \
  X(Mish, 11, false, "mish", "")                                     \
  X(Hardswish, 12, false, "hardswish", "")                           \
  X(SELU, 13, false, "selu", "")                                     \
  X(CELU, 14, false, "celu", "alpha=1.0")                            \
  X(Softsign, 15, false, "softsign", "")                             \
  X(LogSigmoid, 16, false, "logsigmoid", "")

enum class Act : int {
#define NNFAST_ACT_ENUM_(Name, code, ...) Name = code,
  NNFAST_ACTIVATIONS(NNFAST_ACT_ENUM_)
#undef NNFAST_ACT_ENUM_
  Count  // number of codes (not an activation): codes are [0, Count)
};

constexpr int kActCount = static_cast<int>(Act::Count);
#define NNFAST_ACT_ONE_(...) +1
static_assert(kActCount == 0 NNFAST_ACTIVATIONS(NNFAST_ACT_ONE_), "NNFAST_ACTIVATIONS codes must be 0, 1, 2, ...");
#undef NNFAST_ACT_ONE_

struct ActParams {
  double a = 0.0;
  double b = 0.0;
};

// True when the activation's derivative is a function of its output alone, so
// backward needs only y (saves memory; ReLU/Sigmoid/Tanh as in PyTorch).
constexpr bool act_grad_from_output(Act act) {
  switch (act) {
#define NNFAST_ACT_FROM_OUT_(Name, code, from_out, ...) \
  case Act::Name:                                       \
    return from_out;
    NNFAST_ACTIVATIONS(NNFAST_ACT_FROM_OUT_)
#undef NNFAST_ACT_FROM_OUT_
    case Act::Count: break;
  }
  return false;
}

// f(std::integral_constant<Act, A>{}) for the runtime code `act`: the one switch over
// Act that every kernel uses to reach its compile-time-specialised loop. An invalid
// code (callers validate, see the bindings) runs Identity.
template <class F>
inline decltype(auto) act_visit(Act act, F&& f) {
  switch (act) {
#define NNFAST_ACT_VISIT_(Name, ...) \
  case Act::Name:                    \
    return f(std::integral_constant<Act, Act::Name>{});
    NNFAST_ACTIVATIONS(NNFAST_ACT_VISIT_)
#undef NNFAST_ACT_VISIT_
    case Act::Count: break;
  }
  return f(std::integral_constant<Act, Act::Identity>{});
}

}  // namespace nnfast

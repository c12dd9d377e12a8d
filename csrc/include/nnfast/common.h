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

namespace nnfast {

using index_t = std::int64_t;

// Pointwise activations that can run standalone or fused into a GEMM epilogue.
enum class Act : int {
  Identity = 0,
  ReLU = 1,
  LeakyReLU = 2,  // a = negative_slope
  ELU = 3,        // a = alpha
  Sigmoid = 4,
  Tanh = 5,
  GELU = 6,       // exact, erf form
  GELUTanh = 7,   // tanh approximation
  SiLU = 8,
  Softplus = 9,   // a = beta, b = threshold
  Hardtanh = 10,  // a = min_val, b = max_val
  Count           // number of codes (not an activation): codes are [0, Count)
};

constexpr int kActCount = static_cast<int>(Act::Count);

struct ActParams {
  double a = 0.0;
  double b = 0.0;
};

// True when the activation's derivative is a function of its output alone, so
// backward needs only y (saves memory; ReLU/Sigmoid/Tanh as in PyTorch).
constexpr bool act_grad_from_output(Act act) {
  return act == Act::Identity || act == Act::ReLU || act == Act::Sigmoid || act == Act::Tanh;
}

}  // namespace nnfast

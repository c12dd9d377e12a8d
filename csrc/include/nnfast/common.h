// nnfast kernel library: shared types.
// Conventions for every kernel: outputs first, then inputs/saved tensors, then sizes.
// Parameter gradients accumulate (+=); activation gradients overwrite (=).
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
};

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

// Activation derivatives written once for one element and for SIMD vectors.
//
// E is the element type (float / double), V is E itself or a vector of E (the
// GCC vector types of core/vec_math.h), and sigmoid2(z, s, sc) sets s = sigmoid(z)
// and sc = 1 - sigmoid(z): scalar::Sigmoid2 (core/math_scalar.h, libm exp: the
// CUDA GEMM epilogue) or vm::Sigmoid2 (core/vec_math.h, the CPU kernels). The
// operations and their order are the same for both, so each caller keeps its own
// bits. Only arithmetic here (no calls but sigmoid2), so the header is safe in
// the ISA objects compiled under different -m flags: the templates are
// instantiated with ISA-local functor types there.
#pragma once
#include "core/host_device.h"

namespace nnfast {
namespace formula {

// d/dx x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) (tanh-approximated GELU).
template <typename E, typename V, typename Sigmoid2>
NNFAST_HD_INLINE V gelu_tanh_grad(V x, Sigmoid2 sigmoid2) {
  const E k = E(0.79788456080286535588);
  const V x2 = x * x;
  const V u = (x + x2 * x * E(0.044715)) * k;
  V sg, sc;
  sigmoid2(u + u, sg, sc);
  return sg + x * (sg * sc) * (E(2) * k) * (x2 * E(3 * 0.044715) + E(1));
}

// d/dx x sigmoid(x) = sigmoid(x) (1 + x (1 - sigmoid(x))) (SiLU).
template <typename E, typename V, typename Sigmoid2>
NNFAST_HD_INLINE V silu_grad(V x, Sigmoid2 sigmoid2) {
  V sg, sc;
  sigmoid2(x, sg, sc);
  return sg * (x * sc + E(1));
}

}  // namespace formula
}  // namespace nnfast

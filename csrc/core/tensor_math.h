// The per-element math of the tape's tensor kernels (nnfast/tensor.h), shared by the
// CPU (csrc/cpu/tensor.cpp) and CUDA (csrc/cuda/tensor.cu) kernels: one definition of
// each binary op, of the max / min selection rule, and of the broadcast layout.
// `static`: the per-ISA objects (csrc/cpu/tensor_isa.cpp) compile these with different
// -m flags, so each object keeps its own copy (no cross-ISA merge by the linker).
#pragma once
#include "core/host_device.h"
#include "nnfast/tensor.h"

namespace nnfast {
namespace tensor_math {

template <BinaryOp kOp, typename T>
NNFAST_HD static inline T binary(T a, T b) {
  if constexpr (kOp == BinaryOp::Add) return a + b;
  if constexpr (kOp == BinaryOp::Sub) return a - b;
  if constexpr (kOp == BinaryOp::Mul) return a * b;
  if constexpr (kOp == BinaryOp::Div) return a / b;
}

// Whether (v at index iv) is the better extreme than (m at index im) for Max / Min:
// NaN beats any number, and between equals (or two NaNs) the smaller index wins --
// numpy.argmax's answer, for a left-to-right scan and for a tree of partial results.
template <ReduceOp kOp, typename T>
NNFAST_HD static inline bool better(T v, index_t iv, T m, index_t im) {
  const bool v_nan = v != v, m_nan = m != m;
  if (v_nan || m_nan) return v_nan && (!m_nan || iv < im);
  if (v == m) return iv < im;
  return kOp == ReduceOp::Max ? v > m : v < m;
}

// The same broadcast with size-1 dims dropped and neighbouring dims merged where both
// inputs step through them as one (out is C-contiguous, so it always does): a
// same-shape contiguous op becomes 1-D, a bias add 2-D.
inline BroadcastArgs collapse(const BroadcastArgs& in) {
  BroadcastArgs out;
  for (int d = 0; d < in.ndim; ++d) {
    if (in.shape[d] == 1) continue;
    const int k = out.ndim - 1;
    if (k >= 0 && out.a_stride[k] == in.a_stride[d] * in.shape[d] && out.b_stride[k] == in.b_stride[d] * in.shape[d]) {
      out.shape[k] *= in.shape[d];
      out.a_stride[k] = in.a_stride[d];
      out.b_stride[k] = in.b_stride[d];
      continue;
    }
    out.shape[out.ndim] = in.shape[d];
    out.a_stride[out.ndim] = in.a_stride[d];
    out.b_stride[out.ndim] = in.b_stride[d];
    ++out.ndim;
  }
  return out;
}

// Number of elements of the broadcast's out.
NNFAST_HD inline index_t numel(const BroadcastArgs& s) {
  index_t n = 1;
  for (int d = 0; d < s.ndim; ++d) n *= s.shape[d];
  return n;
}

}  // namespace tensor_math
}  // namespace nnfast

// The operands of one strided GEMM call, C = alpha A B + beta C with element (i, j)
// of X at X[i * rs_x + j * cs_x]: the part of a call that the CPU driver
// (cpu/gemm_internal.h, GemmArgs) and the CUDA kernels (cuda/gemm.cu, Params) both
// carry. Dim is the type of M, N, K: index_t on the CPU, int in the CUDA kernels.
// Plain data (an aggregate, passed by value to CUDA kernels).
#pragma once
#include "nnfast/common.h"

namespace nnfast {

template <typename T, typename Dim>
struct GemmOperands {
  Dim M, N, K;
  T alpha, beta;
  const T* A;
  index_t rs_a, cs_a;
  const T* B;
  index_t rs_b, cs_b;
  T* C;
  index_t rs_c, cs_c;
};

}  // namespace nnfast

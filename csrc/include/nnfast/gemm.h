// GEMM with fused epilogues.
//
//   C[M,N] = epilogue( alpha * op(A)[M,K] . op(B)[K,N] + beta * C )
//
// Every matrix is (pointer, row stride, column stride) in elements, so a
// transpose is a swap of strides and never a copy: A(i,k) = A[i*rs_a + k*cs_a].
// Packing makes any stride pattern correct; unit column (or row) stride is fast.
// C must not alias A or B. When beta == 0, C is write-only (may hold NaN).
#pragma once
#include "nnfast/common.h"

namespace nnfast {

template <typename T>
struct GemmEpilogue {
  // Forward: out = act(acc + bias[j]); if `aux` is set the pre-activation
  // value z is stored there too (row stride rs_aux, unit column stride).
  const T* bias = nullptr;  // length N, broadcast over rows
  Act act = Act::Identity;
  ActParams act_params{};
  T* aux = nullptr;
  index_t rs_aux = 0;
  // Backward mode: when `dact_src` is set, out = acc * act'(src) where src is
  // the saved pre-activation (or output when act_grad_from_output(act)); bias
  // and aux are then ignored. This fuses the activation backward into the
  // GEMM that produces the incoming gradient.
  const T* dact_src = nullptr;
  index_t rs_dact = 0;
};

namespace cpu {
template <typename T>
void gemm(index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t rs_a, index_t cs_a,
          const T* B, index_t rs_b, index_t cs_b,
          T beta, T* C, index_t rs_c, index_t cs_c,
          const GemmEpilogue<T>& ep = GemmEpilogue<T>());

// Strided batched GEMM: C[b] = alpha * A[b] . B[b] + beta * C[b] for b in [0, batch),
// where X[b] is the matrix at X + b * bs_x with the row/column strides of gemm (a
// transpose is a stride swap). bs_a or bs_b == 0 broadcasts that operand over the
// batch; the C matrices must not overlap. Threads split the batch when each
// product is small and work inside each GEMM when products are big; every
// product is reduced in the same order whatever the thread count (deterministic).
template <typename T>
void gemm_batched(index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t bs_a, index_t rs_a, index_t cs_a,
                  const T* B, index_t bs_b, index_t rs_b, index_t cs_b,
                  T beta, T* C, index_t bs_c, index_t rs_c, index_t cs_c);

// dbias[j] (+)= sum_i G[i, j]  (G is M x N with strides rs_g, cs_g).
// accumulate=true adds into dbias (the contract of nnfast/common.h); false
// overwrites, for a caller that asks for a fresh buffer. A weight gradient is
// gemm(..., beta = 1, dW, ...) by the same rule.
template <typename T>
void bias_grad(T* dbias, const T* G, index_t rs_g, index_t cs_g, index_t M, index_t N, bool accumulate);

// gemm (no epilogue) and, from the same pass over A, row_sum[i] (+)= sum_k A(i, k) for
// i < M (accumulate as in bias_grad; the sums are of A itself, alpha not applied). A Linear's
// backward: dW = dz^T . x with db = bias_grad(dz) in one call, the same bits as the two
// calls (each row is summed in ascending k, bias_grad's order). row_sum must not alias C.
template <typename T>
void gemm_row_sums(index_t M, index_t N, index_t K, T alpha,
                   const T* A, index_t rs_a, index_t cs_a,
                   const T* B, index_t rs_b, index_t cs_b,
                   T beta, T* C, index_t rs_c, index_t cs_c, T* row_sum, bool accumulate);
}  // namespace cpu

// ------------------------------------------------------------------ bf16 GEMM
// Mixed precision: every operand is float32 or bfloat16 (raw bits, uint16_t,
// see core/bf16.h), each chosen independently. A and B are rounded to bf16
// (round to nearest even) while they are packed, so a float32 weight needs no
// bf16 copy; products accumulate in float32; the epilogue (alpha, beta, bias,
// activation, aux, dact) runs in float32 exactly as in gemm<float>; each store
// to a bf16 destination (C, aux) is rounded to nearest even once, at the end.
enum class ElemType : int { F32 = 0, BF16 = 1 };

// A read-only matrix: element (i, j) at data[i * rs + j * cs] of type `type`.
struct GemmMat {
  const void* data = nullptr;
  ElemType type = ElemType::F32;
  index_t rs = 0, cs = 0;
};

// The epilogue of gemm_bf16: GemmEpilogue<float> with a type per array.
struct GemmBf16Epilogue {
  const void* bias = nullptr;  // length N
  ElemType bias_type = ElemType::F32;
  Act act = Act::Identity;
  ActParams act_params{};
  void* aux = nullptr;  // M x N, row stride rs_aux, unit column stride
  ElemType aux_type = ElemType::F32;
  index_t rs_aux = 0;
  const void* dact_src = nullptr;  // M x N, row stride rs_dact, unit column stride
  ElemType dact_type = ElemType::F32;
  index_t rs_dact = 0;
};

namespace cpu {
// C[M,N] = epilogue(alpha * bf16(A) . bf16(B) + beta * C), C of type c_type with
// strides rs_c, cs_c. Runs the AMX kernel (tdpbf16ps tiles) where the CPU has
// AMX-BF16 and Linux grants the tile state, else the AVX512-BF16 kernel
// (vdpbf16ps) where the CPU has it (core/cpu_features.h: bf16_kernel_level), else
// the portable path. Results of the paths differ only by float32 summation order
// and by the instructions flushing subnormal inputs / products to zero.
void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const GemmMat& A, const GemmMat& B, float beta,
               void* C, ElemType c_type, index_t rs_c, index_t cs_c,
               const GemmBf16Epilogue& ep = GemmBf16Epilogue());

// Strided batched form (gemm_batched's batch strides; 0 broadcasts A or B).
void gemm_bf16_batched(index_t batch, index_t M, index_t N, index_t K, float alpha, const GemmMat& A, index_t bs_a,
                       const GemmMat& B, index_t bs_b, float beta, void* C, ElemType c_type, index_t bs_c,
                       index_t rs_c, index_t cs_c);

// Measured single-core peak of the bf16 kernel in use (GFLOP/s, 2 flops per bf16
// product): tdpbf16ps on AMX, else vdpbf16ps; 0 when this CPU or build has no AVX512-BF16.
double bf16_peak_gflops(double seconds = 0.2);
}  // namespace cpu

}  // namespace nnfast

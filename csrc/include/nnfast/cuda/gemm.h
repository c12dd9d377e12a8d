// CUDA GEMM with fused epilogues: the nnfast::cpu::gemm / bias_grad API of
// nnfast/gemm.h on device pointers, plus a trailing (defaulted) stream.
//
//   C[M,N] = epilogue( alpha * op(A)[M,K] . op(B)[K,N] + beta * C )
//
// Semantics are those of the CPU kernels (nnfast/gemm.h): arbitrary element
// strides (a transpose is a stride swap), beta == 0 never reads C (it may hold
// NaN), alpha == 0 or K == 0 gives beta * C (then the epilogue), the epilogue
// (bias, activation with aux pre-activation store, or the backward mode
// out = acc * act'(dact_src)) is applied per element in the same order as on
// the CPU. Results are deterministic: each element of C is reduced by one
// thread in a fixed K order (no split-K, no atomics); bias_grad reduces
// columns with a fixed-order tree in double precision.
//
// Kernels: a tiled SIMT kernel (shared-memory tiles, double buffering,
// register micro-tiles, 16-byte vector loads where strides and alignment
// allow) is the default for float and double. An optional TF32 tensor-core
// path for float (mma.sync m16n8k8, sm_80+) is OFF by default and
// UNVERIFIED (it has not run on a GPU yet): enable it with the environment
// variable NNFAST_CUDA_TF32=1 (read once) or gemm_set_tf32(true). TF32
// rounds the inputs to a 10-bit mantissa, so results differ from float32 by
// ~1e-3 relative.
#pragma once
#include "nnfast/cuda/common.h"
#include "nnfast/gemm.h"

namespace nnfast::cuda {

template <typename T>
void gemm(index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t rs_a, index_t cs_a,
          const T* B, index_t rs_b, index_t cs_b,
          T beta, T* C, index_t rs_c, index_t cs_c,
          const GemmEpilogue<T>& ep = GemmEpilogue<T>(), cudaStream_t stream = nullptr);

// Strided batched GEMM (nnfast::cpu::gemm_batched): one launch of the GEMM kernel per
// product, in batch order on `stream`. Deterministic as gemm.
template <typename T>
void gemm_batched(index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t bs_a, index_t rs_a, index_t cs_a,
                  const T* B, index_t bs_b, index_t rs_b, index_t cs_b,
                  T beta, T* C, index_t bs_c, index_t rs_c, index_t cs_c, cudaStream_t stream = nullptr);

// dbias[j] (+)= sum_i G[i, j]  (G is M x N with strides rs_g, cs_g), as nnfast::cpu::bias_grad.
template <typename T>
void bias_grad(T* dbias, const T* G, index_t rs_g, index_t cs_g, index_t M, index_t N, bool accumulate,
               cudaStream_t stream = nullptr);

// bf16 GEMM (nnfast::cpu::gemm_bf16's contract): the portable path on the GPU, A
// and B rounded to bf16 into float32 device copies, the float32 GEMM with the same
// epilogue, RNE stores to bf16 outputs. Allocates its temporaries per call.
void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const GemmMat& A, const GemmMat& B, float beta,
               void* C, ElemType c_type, index_t rs_c, index_t cs_c,
               const GemmBf16Epilogue& ep = GemmBf16Epilogue(), cudaStream_t stream = nullptr);
void gemm_bf16_batched(index_t batch, index_t M, index_t N, index_t K, float alpha, const GemmMat& A, index_t bs_a,
                       const GemmMat& B, index_t bs_b, float beta, void* C, ElemType c_type, index_t bs_c,
                       index_t rs_c, index_t cs_c, cudaStream_t stream = nullptr);

// TF32 tensor-core path for float GEMMs (UNVERIFIED, off by default). The
// setter overrides NNFAST_CUDA_TF32; it takes effect only on sm_80+ devices
// and never in the emulation build. The flag is a process-wide atomic; calls already
// enqueued keep the path they were launched with.
void gemm_set_tf32(bool enable);
bool gemm_tf32_enabled();

}  // namespace nnfast::cuda

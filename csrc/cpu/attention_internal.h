// Attention internals shared by the driver (attention.cpp: tiles, threads, masks,
// dropout) and the per-ISA row loops (attention_isa.cpp, compiled once per
// instruction set). Every routine works on a tile of `rows` rows of `n` columns
// with row stride `ld`, single-threaded, and never allocates.
#pragma once
#include <cstdint>

#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace attn_detail {

template <typename T>
struct AttnOps {
  // Online-softmax step over a score tile s: per row r, m_new = max(m[r], max_j s),
  // s := exp(s - m_new) (0 where s = -inf; a row still all -inf stays all 0),
  // alpha[r] = exp(m[r] - m_new) (the factor rescaling what was accumulated),
  // l[r] = l[r] * alpha[r] + sum_j s, m[r] = m_new.
  void (*softmax_update)(T* s, index_t rows, index_t n, index_t ld, T* m, T* l, T* alpha) = nullptr;
  // s := exp(s - shift[r]) (backward: probabilities from the saved lse; shift = +inf gives 0).
  void (*exp_shift)(T* s, index_t rows, index_t n, index_t ld, const T* shift) = nullptr;
  // dp := p * (dp - d[r])  (dS of softmax from dP and d = rowsum(dO * O)).
  void (*softmax_grad)(T* dp, const T* p, index_t rows, index_t n, index_t ld, const T* d) = nullptr;
  // d[r] = sum_j a[r, j] * b[r, j] over contiguous rows of n (row stride n).
  void (*row_dot)(T* d, const T* a, const T* b, index_t rows, index_t n) = nullptr;
  // c[i, 0:n] = alpha * sum_k a[i * ars + k * acs] * b[k * ldb + 0:n] (+ c[i, 0:n] when accumulate),
  // for i < m, k < kk ascending (a fixed order per element; each step one FMA where the ISA has it), n <= kSmallGemmMaxN. The tile products of
  // small heads: no packing, so it beats the blocked GEMM when a product is ~64 x 64 x 16.
  void (*small_gemm)(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb, index_t m,
                     index_t n, index_t kk, T alpha, bool accumulate) = nullptr;
  // small_gemm with the shorter register blocks it had before AVX-512 got taller ones (same bits):
  // chosen per call by NNFAST_ATTN_TALL_R=0, for same-process A/B timing.
  void (*small_gemm_short)(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb,
                           index_t m, index_t n, index_t kk, T alpha, bool accumulate) = nullptr;
  // small_gemm with 8-vector column blocks kept whole (2 rows x 8 vectors) where it takes 4-vector
  // slices at AVX-512 (same bits): chosen per call by NNFAST_ATTN_SLICES=0, for A/B timing.
  void (*small_gemm_whole)(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb,
                           index_t m, index_t n, index_t kk, T alpha, bool accumulate) = nullptr;
  // small_gemm with a separate multiply and add (two roundings), the path before the FMA one:
  // chosen per call by NNFAST_ATTN_OLD=1, for same-process A/B timing only.
  void (*small_gemm_unfused)(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb,
                             index_t m, index_t n, index_t kk, T alpha, bool accumulate) = nullptr;
  // bt[k * ldb + j] = b[j * rs + k] for j < n, k < kk (a key / value tile's rows as small_gemm's
  // B columns); NNFAST_ATTN_BLOCKED_T=0 or NNFAST_ATTN_OLD=1 swap in the element-by-element copy (the driver's).
  void (*transpose)(T* bt, index_t ldb, const T* b, index_t rs, index_t n, index_t kk) = nullptr;
  // The bf16 route's operand staging (float only; null for double): dst (rows x cols, row stride ldd)
  // = src (row stride lds) rounded to bf16, as float values (round_bf16: the portable level; dst may
  // be src) or as bf16 bits with subnormals flushed (narrow_bf16: the AVX512-BF16 GEMM's rule).
  void (*round_bf16)(float* dst, index_t ldd, const float* src, index_t lds, index_t rows, index_t cols) = nullptr;
  void (*narrow_bf16)(std::uint16_t* dst, index_t ldd, const float* src, index_t lds, index_t rows,
                      index_t cols) = nullptr;
  // Set by the driver (NNFAST_ATTN_OLD=1) only: causal diagonal tiles take the exp over whole rows.
  bool full_rows = false;
};

constexpr index_t kSmallGemmMaxN = 128;

}  // namespace attn_detail

NNFAST_ISA_DECLARE_TABLE_T(attn_detail::AttnOps)

}  // namespace nnfast::cpu

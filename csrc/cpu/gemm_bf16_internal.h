// Between the bf16 GEMM driver (gemm_bf16.cpp) and its kernels (gemm_bf16_avx512.cpp,
// compiled with -mavx512bf16; gemm_bf16_amx.cpp, with AMX flags too). Plain data
// and declarations only: nothing here may be emitted by those objects.
#pragma once
#include <cstdint>

#include "cpu/gemm_internal.h"

namespace nnfast::cpu::gemm_detail {

// One bf16 GEMM with its C already float32 (the driver widens / narrows a bf16
// C around the call): C = alpha * A.B + beta * C, then epi on finished blocks.
struct Bf16Args {
  index_t M, N, K;
  float alpha, beta;
  GemmMat A, B;
  float* C;
  index_t rs_c, cs_c;
  TileFn<float> epi;              // null: no epilogue
  const GemmArgs<float>* epi_args;  // C, its strides and the float32 epilogue, for epi
};

struct Bf16Kernel {
  GemmBlocking blocking;  // kc counts bf16 values along K (even)
  size_t (*workspace_bytes)(index_t m, index_t n, index_t K);
  // C block [i0, i1) x [j0, j1), all of K, on one thread; ws 64-byte aligned.
  void (*block)(const Bf16Args& g, void* ws, index_t i0, index_t i1, index_t j0, index_t j1);
  double (*peak_gflops)(double seconds);
  // Pieces for a B panel packed once and shared by the threads (each thread owns
  // rows of C): a thread's A workspace, one B panel buffer, packing columns
  // [jc + a, jc + b) of the panel at K rows [pc, pc + kc), and rows [i0, i1)
  // times a packed panel (epilogue included after the last K block).
  size_t (*a_workspace_bytes)(index_t m, index_t K);
  size_t (*b_panel_bytes)(index_t N, index_t K);
  void (*pack_b)(const Bf16Args& g, index_t pc, index_t kc, index_t jc, index_t a, index_t b, void* bp);
  void (*rows)(const Bf16Args& g, const void* bp, void* ws, index_t i0, index_t i1, index_t pc, index_t kc,
               index_t jc, index_t nc);
  // bf16 staging of one block (exact RNE as float_to_bf16 / exact widening):
  // m x n dense float32 (row stride ld) -> bf16 (strides rs, cs), and bf16 (row
  // stride rs, unit column stride) -> dense float32.
  void (*narrow)(const float* src, index_t ld, std::uint16_t* dst, index_t rs, index_t cs, index_t m, index_t n);
  void (*widen)(const std::uint16_t* src, index_t rs, float* dst, index_t ld, index_t m, index_t n);
  // K blocks are balanced to multiples of kq bf16 values (AMX: 32, one tile's depth,
  // so no block but the last pads K).
  index_t kq = 8;
};

// The AVX512-BF16 kernel (null when the build has none).
const Bf16Kernel* bf16_kernel_avx512();
// The AMX-BF16 kernel (gemm_bf16_amx.cpp; null when the build has none). Its caller must
// have the tile state granted (cpu_features: bf16_kernel_level() == AMX_BF16). N, K: the
// product's (a wide B gets bigger MC / KC blocks; 0, 0: the default blocking).
const Bf16Kernel* bf16_kernel_amx(index_t N = 0, index_t K = 0);
// Its loop nest and packing with the tile products emulated in plain C++ (no tile
// instructions: runs on any AVX512-BF16 CPU; null when the build has no AMX kernel).
const Bf16Kernel* bf16_kernel_amx_emulated(index_t N = 0, index_t K = 0);

}  // namespace nnfast::cpu::gemm_detail

// Tensor arithmetic internals shared by the driver (tensor.cpp: collapse, threads,
// workspace) and the per-ISA loops (tensor_isa.cpp, compiled once per instruction
// set). Every ISA routine is single-threaded over the range the driver hands it and
// never allocates. The loops are the same source for every ISA and no fast-math is
// used, so all ISAs (and thread counts) give the same bits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/isa_dispatch.h"
#include "nnfast/tensor.h"

namespace nnfast::cpu {
namespace tensor_detail {

constexpr int kNumBinaryOps = 4;      // entries of NNFAST_BINARY_OPS
constexpr index_t kInnerTile = 1024;  // columns reduced together when inner > 1 (4 KB of float row)

template <typename T>
struct TensorOps {
  // out[lo, hi) of a collapsed broadcast (ndim >= 1), indexed by BinaryOp; `stream`: write
  // the unit-stride rows with non-temporal stores (the same bits; fenced before return)
  void (*binary[kNumBinaryOps])(const BroadcastArgs& s, const T* a, const T* b, T* out, index_t lo, index_t hi,
                                bool stream);
  // out[o] = scale * sum of the contiguous row x[o * n, (o + 1) * n), o in [o0, o1)
  void (*row_sums)(const T* x, index_t n, index_t o0, index_t o1, T* out, double scale);
  // out[o] / index[o] (nullable) = max (min) of row o and the first index of it
  void (*row_max)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  void (*row_min)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  // acc[0, cols) = sum over j in [j0, j1) of xo[j * inner + c], in double, j in order
  void (*block_sum)(double* acc, const T* xo, index_t j0, index_t j1, index_t inner, index_t cols);
  // max (min) over j in [0, n) of xo[j * inner + c] for c < cols <= kInnerTile
  void (*col_max)(const T* xo, index_t n, index_t inner, index_t cols, T* out, std::int64_t* index);
  void (*col_min)(const T* xo, index_t n, index_t inner, index_t cols, T* out, std::int64_t* index);
};

// out[0, n) = x[0, n) converted; `stream` as for binary (fenced before return)
struct CastOps {
  void (*f32_to_f64)(double* out, const float* x, index_t n, bool stream);
  void (*f64_to_f32)(float* out, const double* x, index_t n, bool stream);
};

// NNFAST_TENSOR_STREAM=0: no streaming stores in the tensor ops (the old path, for A/B).
bool stream_enabled();
// An op whose output and inputs together touch at least this many bytes (the 32 MB L3)
// writes its output with streaming stores: nothing of it would stay cached, and a store
// that skips the line fill saves one memory transfer in three (add) or in two (a cast).
// Below it a repeated op finds its output in L3 (bf16 -> f32 of 8 MB: 24 MB touched,
// streaming measured slower there), so ordinary stores.
constexpr std::size_t kTensorStreamBytes = std::size_t(32) << 20;
inline bool stream_touching(std::size_t bytes) { return stream_enabled() && bytes >= kTensorStreamBytes; }

}  // namespace tensor_detail

NNFAST_ISA_DECLARE_TABLE_T(tensor_detail::TensorOps)
NNFAST_ISA_DECLARE_TABLE(tensor_detail::CastOps)

}  // namespace nnfast::cpu

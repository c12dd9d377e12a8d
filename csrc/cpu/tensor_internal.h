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
constexpr index_t kSumBlock = 4096;   // a row sum's blocks (fixed: they set the order), added in order

// How a binary op or cast writes its output (the same bits each way):
// - Plain: the compiler's loop (the old path, NNFAST_TENSOR_FAST=0);
// - Aligned: a peel to the output's vector alignment, then native vectors two a step (NumPy's
//   big buffers sit 16 bytes past a line: every unaligned 64-byte store touches two lines;
//   a C++ loop of 4 MB, one thread: 107 -> 90 us); binary ops take it for rows of 4096+ only;
// - Stream: Aligned with non-temporal stores (fenced before return); StreamByRow: the same
//   row by row where Stream runs a matrix against a row as one flat stream (the old path).
enum class Stores : int { Plain, Aligned, Stream, StreamByRow };
inline bool streams(Stores s) { return s == Stores::Stream || s == Stores::StreamByRow; }

template <typename T>
struct TensorOps {
  // out[lo, hi) of a collapsed broadcast (ndim >= 1), indexed by BinaryOp; rows with unit or
  // zero strides are written as `stores` says
  void (*binary[kNumBinaryOps])(const BroadcastArgs& s, const T* a, const T* b, T* out, index_t lo, index_t hi,
                                Stores stores);
  // out[o] = scale * sum of the contiguous row x[o * n, (o + 1) * n), o in [o0, o1): the row's
  // blocks of kSumBlock, each summed in double, added in order
  void (*row_sums)(const T* x, index_t n, index_t o0, index_t o1, T* out, double scale);
  // the same bits with each block's tail added element by element (the old loop, NNFAST_TENSOR_FAST=0)
  void (*row_sums_scalar_tail)(const T* x, index_t n, index_t o0, index_t o1, T* out, double scale);
  // part[b - b0] = the double sum of block b in [b0, b1) of the row x[0, n) (row_sums' blocks: a long
  // row split across threads, the blocks then added in order by the caller, gives row_sums' bits)
  void (*row_block_sums)(const T* x, index_t n, index_t b0, index_t b1, double* part);
  // out[o] / index[o] (nullable) = max (min) of row o and the first index of it
  void (*row_max)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  void (*row_min)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  // the same results, on AVX-512 float rows of 64+ by row_extreme_avx512 (NNFAST_TENSOR_ARGMAX)
  void (*row_max_fast)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  void (*row_min_fast)(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index);
  // acc[0, cols) = sum over j in [j0, j1) of xo[j * inner + c], in double, j in order
  void (*block_sum)(double* acc, const T* xo, index_t j0, index_t j1, index_t inner, index_t cols);
  // the same over quads of rows summed in T first (tensor_isa.cpp: block_sum_quads; other bits)
  void (*block_sum_quads)(double* acc, const T* xo, index_t j0, index_t j1, index_t inner, index_t cols);
  // max (min) over j in [0, n) of xo[j * inner + c] for c < cols <= kInnerTile
  void (*col_max)(const T* xo, index_t n, index_t inner, index_t cols, T* out, std::int64_t* index);
  void (*col_min)(const T* xo, index_t n, index_t inner, index_t cols, T* out, std::int64_t* index);
};

// out[0, n) = x[0, n) converted, written as `stores` says
struct CastOps {
  void (*f32_to_f64)(double* out, const float* x, index_t n, Stores stores);
  void (*f64_to_f32)(float* out, const double* x, index_t n, Stores stores);
};

// NNFAST_TENSOR_STREAM=0: no streaming stores in the tensor ops (the old path, for A/B).
bool stream_enabled();
// NNFAST_TENSOR_FAST=0: this round's changes off, for A/B (same bits either way): the old
// streaming rule (stream whenever >= one L3 is touched) and the row sums' element-wise tails,
// one thread per row.
bool fast_enabled();
// NNFAST_TENSOR_COLSUM=0: column sums widen every element and use 64-row blocks (the old path;
// other bits: the new one sums quads of rows in T first, blocks sized by the row count).
bool colsum_enabled();
// NNFAST_TENSOR_ARGMAX=0: max / min over a contiguous row by the generic-vector loop (the same results).
bool argmax_enabled();
// The last-level cache the rules below scale with (they were measured with a 32 MB L3): the
// CPU's own figure (sysfs cache/index*/ of level 3, else sysconf), 32 MB when neither says;
// NNFAST_TENSOR_L3_MB=<MB> overrides it (for A/B of the rule), and NNFAST_TENSOR_L3=0 takes 32 MB.
std::size_t llc_bytes();
// Whether an op that writes out_bytes and reads in_bytes streams its output (non-temporal
// stores: no line fill, one memory transfer saved in three for add, in two for a cast).
// - Up to one L3 touched: no. A repeated op (or the next layer) finds its data in the L3
//   (bf16 -> f32 of 8 MB, 24 MB touched: streaming measured slower).
// - Two L3s or more: yes, nothing would stay cached.
// - In between, part of the data is still in the L3 at the next call: stream only an output
//   smaller than the L3, whose streaming stores then leave the inputs cached. A bigger output
//   is written faster with ordinary stores, some of its lines still being in the L3 (idle,
//   2 threads: f32 -> f64 of 16 MB, 32 MB written, took 1.23-1.29 ms streamed against
//   0.98-1.08 ms for PyTorch's ordinary stores; (R, 1024) * row of 16 MB, 32 MB touched,
//   0.60 ms streamed against 0.43-0.46 ms; add of 16 MB, 48 MB touched, 16 MB written, was
//   1.03-1.17x PyTorch's speed streamed).
inline bool stream_output(std::size_t out_bytes, std::size_t in_bytes) {
  if (!stream_enabled()) return false;
  const std::size_t touched = out_bytes + in_bytes, l3 = llc_bytes();
  if (!fast_enabled()) return touched >= l3;  // the old rule
  return touched >= 2 * l3 || (touched > l3 && out_bytes < l3);
}
inline Stores stores_for(std::size_t out_bytes, std::size_t in_bytes) {
  if (stream_output(out_bytes, in_bytes)) return fast_enabled() ? Stores::Stream : Stores::StreamByRow;
  return fast_enabled() ? Stores::Aligned : Stores::Plain;
}

}  // namespace tensor_detail

NNFAST_ISA_DECLARE_TABLE_T(tensor_detail::TensorOps)
NNFAST_ISA_DECLARE_TABLE(tensor_detail::CastOps)

}  // namespace nnfast::cpu

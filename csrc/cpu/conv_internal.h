// Convolution internals shared by the driver (conv.cpp) and the per-ISA patch packer
// (conv_isa.cpp, compiled once per instruction set).
//
// Implicit GEMM: the convolution's patch matrix B (row r = (c, ky, kx), column q = (oh, ow)
// of one image) is never materialised. The GEMM asks for each kc x nc block of it in its
// packed layout (gemm_internal.h, GemmBPack) and pack_patches gathers the values straight
// from the image. ODR: everything with code in it lives in NNFAST_ISA_NS (see gemm_internal.h).
#pragma once
#include "core/isa_dispatch.h"
#include "nnfast/conv.h"
#ifndef NNFAST_ISA_NS
#include <algorithm>
#include <vector>

#include "core/parallel_for.h"
#endif

namespace nnfast::cpu {
namespace conv_pack {

// The patch matrix of one image and one group: the GemmBPack context.
template <typename T>
struct PatchSource {
  const T* x;      // the image's first channel of the group, (Cg, H, W) contiguous
  Conv2dShape s;   // the convolution (C, OC are the full counts; only the geometry is used)
  index_t kk;      // kh * kw
  // Several images per GEMM (pack_patches only): columns q >= OH OW continue in the next image,
  // `image` elements further on (0: one image).
  index_t image = 0;
};

template <typename T>
struct ConvOps {
  // GemmBPack::pack over a PatchSource<T>: B[k0 : k0 + kc, j0 : j0 + nc] as nr-column
  // panels (nr <= 64), zeros in the padding and past nc.
  void (*pack_patches)(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* dst, int nr);
  // The same for the transposed patch matrix (row q, column r: the weight gradient's B),
  // kernels up to 16 x 16; null where the ISA has no fast version (the driver then
  // materialises the patches).
  void (*pack_patches_t)(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* dst, int nr);
  // The bias gradient's sums: out[r] += the double sum of row r of `reps` blocks (row r of block
  // i at a + i * rep_stride + r * len, len values), element j of a row into one of 8 interleaved
  // partial sums (j % 8, blocks in order), then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)).
  // The same order on every ISA (AVX-512: 8 lanes of one double vector per row, rows 4 at a
  // time; elsewhere the scalar loop), so the same bits.
  void (*sum_rows)(const T* a, index_t rows, index_t len, index_t reps, index_t rep_stride, double* out);
  // One image and group of a stride-1, OW == W weight gradient without packing (fp32 AVX-512; null
  // elsewhere): out (ocg, cg kh kw) (+)= dy (ocg, OH OW) . patches(x)^T, each element a 16-lane
  // dot product along q (masked loads of x shifted by the tap), its lanes summed at the end.
  void (*weight_grad_same)(const T* dy, const T* x, const Conv2dShape& s, index_t ocg, index_t cg, T* out,
                           bool accumulate);
};

}  // namespace conv_pack

NNFAST_ISA_DECLARE_TABLE_T(conv_pack::ConvOps)

#ifndef NNFAST_ISA_NS
// Driver helpers of conv.cpp and conv_bf16.cpp (compiled once, with the baseline flags: kept out
// of the per-ISA objects, see the ODR note in gemm_internal.h).
namespace conv_driver {

// Per-thread scratch slots. The float32 driver and the bf16 one have their own, so neither can
// hand out a buffer the other still holds.
enum ScratchSlot : int { kConvCol = 0, kConvOut = 1, kBf16Col = 2, kBf16Acc = 3, kScratchSlots = 4 };

// Grow-only per-thread scratch (a fresh multi-MB allocation per call would page-fault every time).
template <typename T>
T* scratch(ScratchSlot slot, index_t elems) {
  thread_local std::vector<T> bufs[kScratchSlots];
  auto& b = bufs[slot];
  if (static_cast<index_t>(b.size()) < elems) b.resize(static_cast<size_t>(elems));
  return b.data();
}

// The output columns ow of one row for which the input column iw = ow * sw + off is inside [0, W).
inline void valid_cols(index_t off, index_t sw, index_t W, index_t OW, index_t* lo, index_t* hi) {
  *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  *hi = (W - 1 - off) < 0 ? 0 : std::min(OW, (W - 1 - off) / sw + 1);
  if (*lo > *hi) *lo = *hi;
}

// dw[i] += part[0][i] + part[1][i] + ... (parts of `size` elements, added in order): the weight
// gradients' fixed partial sums, so the bits do not depend on the thread count.
template <typename T>
void add_parts(T* dw, const T* part, index_t parts, index_t size, index_t grain) {
  parallel_for(size, grain, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      T t = part[i];
      for (index_t p = 1; p < parts; ++p) t += part[p * size + i];
      dw[i] += t;
    }
  });
}

}  // namespace conv_driver
#endif

}  // namespace nnfast::cpu

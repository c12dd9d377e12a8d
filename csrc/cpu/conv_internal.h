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
};

}  // namespace conv_pack

NNFAST_ISA_DECLARE_TABLE_T(conv_pack::ConvOps)

}  // namespace nnfast::cpu

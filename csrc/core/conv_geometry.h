// The chunking of a convolution's column space, shared by csrc/cpu/conv.cpp and csrc/cuda/conv.cu
// (host code): q = (n, oh, ow), Q = N * OH * OW, processed in chunks of `chunk` columns whose
// patch matrix (C kh kw, chunk) stays under kColBudget elements. When one image fits, chunks hold
// whole images (images_per_chunk > 0), so no two chunks write one input-gradient image.
#pragma once
#include <algorithm>

#include "nnfast/conv.h"

namespace nnfast {
namespace conv_detail {

// 1 Mi elements (4 MB float): large enough for efficient GEMMs, small enough to stay in cache
// and bounded for any batch or image size.
constexpr index_t kColBudget = index_t(1) << 20;

inline index_t max1(index_t v) { return v > 1 ? v : 1; }

struct Geometry {
  Conv2dShape s;
  index_t P, Q, kk, Kc, Kg, Cg, OCg, G, chunk, images_per_chunk, chunks;
  explicit Geometry(const Conv2dShape& sh) : s(sh) {
    P = s.OH * s.OW;
    Q = s.N * P;
    kk = s.kh * s.kw;
    Kc = s.C * kk;
    G = s.groups;
    Kg = Kc / G;
    Cg = s.C / G;
    OCg = s.OC / G;
    const index_t per_image = max1(std::max(Kc, s.OC) * P);
    if (per_image <= kColBudget) {
      images_per_chunk = std::min(max1(s.N), kColBudget / per_image);
      // Even chunks (64 images: 8 x 8 rather than 7 x 9 + 1), so threads taking whole chunks balance.
      const index_t n_chunks = (max1(s.N) + images_per_chunk - 1) / images_per_chunk;
      images_per_chunk = (max1(s.N) + n_chunks - 1) / n_chunks;
      chunk = images_per_chunk * P;
    } else {
      images_per_chunk = 0;
      chunk = std::min(max1(Q), max1(kColBudget / max1(std::max(Kc, s.OC))));
    }
    chunks = Q > 0 ? (Q + chunk - 1) / chunk : 0;
  }
  // 1x1, stride 1, no padding: the input image is the patch matrix.
  bool pointwise() const { return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0; }
};

}  // namespace conv_detail
}  // namespace nnfast

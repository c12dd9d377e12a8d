// Convolution kernels (2-D, NCHW; 1-D is 2-D with H = 1), forward then backward,
// and the transposed convolution, which is the same three products read the other
// way round (its forward is conv2d's input gradient, its input gradient is
// conv2d's forward).
//
// Shape letters (of the *convolution*, also for the transposed one): N batch,
// C input channels of H x W, OC output channels of OH x OW, a kh x kw kernel,
// G groups. weight is (OC, C / G, kh, kw); output channel o sees the C / G input
// channels of group o / (OC / G). Every array is C-contiguous.
//   OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1   (and OW likewise)
//
// Implementation: implicit GEMM over "column space" q = (n, oh, ow) in chunks of
// bounded size: a chunk's patches are gathered (im2col of that chunk only, so
// memory stays bounded whatever N, H, W), and each group is one product of
// nnfast's packed GEMM (cpu::gemm_batched over the groups). 1x1 / stride 1 /
// no padding needs no gather: the input images are the GEMM's B operand as is.
//
// Gradients follow the contract of nnfast/common.h: dx overwrites, dweight and
// dbias accumulate (+=), null means "not wanted". Results do not depend on the
// thread count (chunking depends on the shape only; every sum has a fixed order).
#pragma once
#include "nnfast/common.h"

namespace nnfast {

struct Conv2dShape {
  index_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  index_t OC = 0, OH = 0, OW = 0;      // output (N, OC, OH, OW)
  index_t kh = 1, kw = 1;              // kernel
  index_t sh = 1, sw = 1;              // stride (>= 1)
  index_t ph = 0, pw = 0;              // zero padding (>= 0)
  index_t dh = 1, dw = 1;              // dilation (>= 1)
  index_t groups = 1;                  // divides C and OC
};

namespace cpu {
// y (N, OC, OH, OW) = conv(x (N, C, H, W), weight) + bias (OC,) (bias may be null).
template <typename T>
void conv2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s);

// dx (N, C, H, W) =, dweight (OC, C/G, kh, kw) +=, dbias (OC,) += from dy (N, OC, OH, OW).
// x is needed only for dweight, weight only for dx (either may then be null).
template <typename T>
void conv2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight, const Conv2dShape& s);

// Transposed convolution described by the convolution `s` it transposes: its input
// x is (N, OC, OH, OW), its output y is (N, C, H, W) (H includes output_padding),
// weight (OC, C/G, kh, kw) as PyTorch's ConvTranspose2d (in_channels, out/G, kh, kw);
// bias (C,) may be null.
template <typename T>
void conv_transpose2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s);

// dx (N, OC, OH, OW) =, dweight +=, dbias (C,) += from dy (N, C, H, W).
template <typename T>
void conv_transpose2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight,
                               const Conv2dShape& s);
}  // namespace cpu

}  // namespace nnfast

// Convolutions on the bf16 GEMM (autocast's conv1d / conv2d / conv_transpose2d, issue 17).
//
// The same three products as nnfast/conv.h, with bf16 operands and float32 accumulation:
// every operand (input, weight, output gradient) may be float32 or bfloat16 (ElemType), and is
// rounded to bf16 where it enters a GEMM (the patches are gathered straight into bf16); each
// GEMM accumulates in float32 (vdpbf16ps where the CPU has AVX512-BF16, else the portable
// path of gemm_bf16). The bias is added in float32 and every output (y, dx) is stored once,
// float32 or rounded to bf16 by RNE. dweight and dbias are float32 and accumulate (+=), dx
// overwrites, null means "not wanted" (the contract of nnfast/common.h). Memory stays bounded:
// one image's patch matrix at a time, split into column chunks when it is large. Results do
// not depend on the thread count (each element is one fixed-order sum; dweight sums images in
// fixed parts as conv.cpp does).
#pragma once
#include "nnfast/conv.h"
#include "nnfast/gemm.h"

namespace nnfast::cpu {

// A read-only operand: C-contiguous array of float32 or bf16 values.
struct ConvOperand {
  const void* data = nullptr;
  ElemType type = ElemType::F32;
};

// y (N, OC, OH, OW), of type y_type, = conv(x, weight) + bias (OC,) (float32, may be null).
void conv2d_forward_bf16(void* y, ElemType y_type, ConvOperand x, ConvOperand weight, const float* bias,
                         const Conv2dShape& s);

// dx (N, C, H, W) of type dx_type =, dweight (OC, C/G, kh, kw) +=, dbias (OC,) += from dy.
void conv2d_backward_bf16(void* dx, ElemType dx_type, float* dweight, float* dbias, ConvOperand dy, ConvOperand x,
                          ConvOperand weight, const Conv2dShape& s);

// The transposed convolution described by the convolution `s` it transposes (as nnfast/conv.h):
// x (N, OC, OH, OW) -> y (N, C, H, W) + bias (C,).
void conv_transpose2d_forward_bf16(void* y, ElemType y_type, ConvOperand x, ConvOperand weight, const float* bias,
                                   const Conv2dShape& s);

// dx (N, OC, OH, OW) =, dweight +=, dbias (C,) += from dy (N, C, H, W).
void conv_transpose2d_backward_bf16(void* dx, ElemType dx_type, float* dweight, float* dbias, ConvOperand dy,
                                    ConvOperand x, ConvOperand weight, const Conv2dShape& s);

}  // namespace nnfast::cpu

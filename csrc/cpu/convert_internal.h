// bfloat16 conversion internals: the per-ISA range kernels (convert_isa.cpp, compiled
// once per instruction set) that the threaded drivers of convert.cpp call on slices.
#pragma once
#include <cstdint>

#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace convert_detail {

// out[0, n) = convert(x[0, n)); the rules of nnfast/convert.h (optim.cpp narrows with
// f32_to_bf16 too). The *_stream variants write an output too big to cache with
// non-temporal stores after a peel to vector alignment (the same bits), fenced before return.
struct ConvertOps {
  void (*f32_to_bf16)(std::uint16_t* out, const float* x, index_t n);
  void (*f64_to_bf16)(std::uint16_t* out, const double* x, index_t n);
  void (*bf16_to_f32)(float* out, const std::uint16_t* x, index_t n);
  void (*bf16_to_f64)(double* out, const std::uint16_t* x, index_t n);
  void (*f32_to_bf16_stream)(std::uint16_t* out, const float* x, index_t n);
  void (*bf16_to_f32_stream)(float* out, const std::uint16_t* x, index_t n);
};

}  // namespace convert_detail

NNFAST_ISA_DECLARE_TABLE(convert_detail::ConvertOps)

}  // namespace nnfast::cpu

// bfloat16 conversions on the CPU (nnfast/convert.h). Memory-bound: OpenMP over fixed
// chunks, each chunk converted by the range kernel of the ISA in use (convert_isa.cpp).
#include "nnfast/convert.h"

#include "core/parallel_for.h"
#include "cpu/convert_internal.h"
#include "cpu/tensor_internal.h"

namespace nnfast::cpu {
namespace {

using convert_detail::ConvertOps;

template <typename O, typename I>
void run(void (*kernel)(O*, const I*, index_t), O* out, const I* x, index_t n) {
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) { kernel(out + lo, x + lo, hi - lo); });
}

// The streaming kernel by the tensor casts' rule (tensor_internal.h: stream_output; one switch,
// NNFAST_TENSOR_STREAM=0, turns both off).
template <typename O, typename I>
bool streamed(index_t n) {
  return tensor_detail::stream_output(static_cast<std::size_t>(n) * sizeof(O), static_cast<std::size_t>(n) * sizeof(I));
}

}  // namespace

void convert_to_bf16(std::uint16_t* out, const float* x, index_t n) {
  const ConvertOps& K = isa_ops<ConvertOps>();
  run(streamed<std::uint16_t, float>(n) ? K.f32_to_bf16_stream : K.f32_to_bf16, out, x, n);
}
void convert_to_bf16(std::uint16_t* out, const double* x, index_t n) {
  run(isa_ops<ConvertOps>().f64_to_bf16, out, x, n);
}
void convert_from_bf16(float* out, const std::uint16_t* x, index_t n) {
  const ConvertOps& K = isa_ops<ConvertOps>();
  run(streamed<float, std::uint16_t>(n) ? K.bf16_to_f32_stream : K.bf16_to_f32, out, x, n);
}
void convert_from_bf16(double* out, const std::uint16_t* x, index_t n) {
  run(isa_ops<ConvertOps>().bf16_to_f64, out, x, n);
}

}  // namespace nnfast::cpu

// bfloat16 <-> float32 / float64 conversions. bf16 values travel as their 16 raw bits
// (std::uint16_t: the top half of a float32), so the header needs no bf16 type.
// To bf16: round to nearest, ties to even, from the source's exact value (a float64 is
// rounded once, not via float32); overflow goes to +-inf; subnormals are kept (no
// flush to zero); NaN stays NaN with its sign and top payload bits, made quiet.
// From bf16: exact.
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast::cpu {

void convert_to_bf16(std::uint16_t* out, const float* x, index_t n);
void convert_to_bf16(std::uint16_t* out, const double* x, index_t n);
void convert_from_bf16(float* out, const std::uint16_t* x, index_t n);
void convert_from_bf16(double* out, const std::uint16_t* x, index_t n);

}  // namespace nnfast::cpu

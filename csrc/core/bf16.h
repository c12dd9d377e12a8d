// bfloat16 <-> float32 scalar conversions shared by CPU and CUDA code (NNFAST_HD).
//
// A bfloat16 is the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7
// mantissa bits), stored as uint16_t (ml_dtypes' bfloat16 on the Python side has
// the same bits). Narrowing rounds to nearest, ties to even (RNE), like
// vcvtneps2bf16 and torch's .bfloat16(); NaN stays NaN (quietened, sign kept),
// infinities stay infinite, values past the largest bf16 round to infinity.
// Subnormals are rounded like any other value (vcvtneps2bf16 flushes them to
// zero instead: the AVX512-BF16 GEMM differs from these helpers only there).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace nnfast {

// Storage type of one bfloat16 value (raw bits).
using bf16_t = std::uint16_t;

NNFAST_HD inline std::uint32_t bf16_float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

// float32 -> bfloat16 bits, round to nearest even.
NNFAST_HD inline bf16_t float_to_bf16(float x) {
  const std::uint32_t u = bf16_float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x0040u);  // NaN: keep it NaN
  // Adding 0x7fff plus the kept LSB carries into bit 16 exactly when the dropped
  // half is above one half, or equal to it with an odd kept part (ties to even).
  const std::uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16_t>(rounded >> 16);
}

// bfloat16 bits -> float32 (exact).
NNFAST_HD inline float bf16_to_float(bf16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// float32 rounded to the nearest bfloat16 and widened back (the value a bf16
// store then load gives).
NNFAST_HD inline float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

}  // namespace nnfast

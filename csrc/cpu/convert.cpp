// bfloat16 conversions on the CPU (nnfast/convert.h). Memory-bound: OpenMP over fixed
// chunks, branch-free integer loops the compiler vectorises for the ISA it targets.
// Not the AVX512-BF16 vcvtne2ps2bf16 instruction: it flushes subnormal inputs and
// outputs to zero, while PyTorch and ml_dtypes keep them.
#include "nnfast/convert.h"

#include <cmath>
#include <cstring>

#include "core/parallel_for.h"

namespace nnfast::cpu {
namespace {

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// RNE of a float32 to its top 16 bits: adding 0x7FFF plus the kept lsb carries into the
// kept half exactly when the dropped half is above one half, or equal with an odd lsb
// (a carry out of the mantissa bumps the exponent, up to inf). NaN: quiet bit set.
inline std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<std::uint16_t>(nan ? ((u >> 16) | 0x0040u) : rounded);
}

// float64 -> float32 rounded to odd (inexact results get an odd lsb), so that the
// float32 -> bf16 RNE after it equals one RNE of the float64 (float32 keeps more than
// the 8 + 2 bits that needs). NaN and inf pass through the plain conversion.
inline float f64_to_f32_odd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  std::uint32_t u = bits_of(f);
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) --u;  // rounded away from zero: step back (inf -> max)
  return float_of(u | 1u);
}

template <typename F>
void to_bf16(std::uint16_t* out, const F* x, index_t n) {
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      if constexpr (sizeof(F) == 4)
        out[i] = f32_to_bf16(x[i]);
      else
        out[i] = f32_to_bf16(f64_to_f32_odd(x[i]));
    }
  });
}

template <typename T>
void from_bf16(T* out, const std::uint16_t* x, index_t n) {
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) out[i] = static_cast<T>(float_of(static_cast<std::uint32_t>(x[i]) << 16));
  });
}

}  // namespace

void convert_to_bf16(std::uint16_t* out, const float* x, index_t n) { to_bf16(out, x, n); }
void convert_to_bf16(std::uint16_t* out, const double* x, index_t n) { to_bf16(out, x, n); }
void convert_from_bf16(float* out, const std::uint16_t* x, index_t n) { from_bf16(out, x, n); }
void convert_from_bf16(double* out, const std::uint16_t* x, index_t n) { from_bf16(out, x, n); }

}  // namespace nnfast::cpu

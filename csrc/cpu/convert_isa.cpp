// Per-ISA bfloat16 conversion range kernels: compiled three times (NNFAST_ISA_NS =
// isa_generic, isa_avx2, isa_avx512) and picked at run time by convert.cpp. The
// loops are branch-free integer code, so each copy is vectorised at its ISA's width
// (the baseline build alone is 4 lanes wide). Not the AVX512-BF16 vcvtne2ps2bf16
// instruction: it flushes subnormal inputs and outputs to zero, while PyTorch and
// ml_dtypes keep them.
#include <cmath>
#include <cstring>

#include "core/simd.h"
#include "core/stream_store.h"
#include "cpu/convert_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

namespace simd = ::nnfast::NNFAST_ISA_NS::simd;
namespace ss = ::nnfast::NNFAST_ISA_NS::stream_store;

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

void f32_to_bf16_plain(std::uint16_t* out, const float* x, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

void f64_to_bf16_range(std::uint16_t* out, const double* x, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = f32_to_bf16(f64_to_f32_odd(x[i]));
}

template <typename T>
void from_bf16_plain(T* out, const std::uint16_t* x, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = static_cast<T>(float_of(static_cast<std::uint32_t>(x[i]) << 16));
}

// float32 <-> bfloat16 with streaming stores (the driver found the output too big to cache):
// a peel to the output vector's alignment, then one native register of 32-bit lanes a step,
// the integer rules of f32_to_bf16 / from_bf16_plain lane by lane (the same bits).
constexpr int kW = simd::kNativeBytes / 4;
using VU32 = simd::Vec<std::uint32_t, kW>;
using VU16 = simd::Vec<std::uint16_t, kW>;
using VF = simd::Vec<float, kW>;

template <class VO, typename O, typename I, class Body, class Plain>
void stream_range(O* out, const I* x, index_t n, Body body, Plain plain) {
  const index_t p = ss::peel_count<static_cast<int>(sizeof(VO))>(out, n);
  if (!ss::use_stream<static_cast<int>(sizeof(VO))>(out, n, p, 0)) return plain(out, x, n);
  plain(out, x, p);
  index_t i = p;
  for (; i + kW <= n; i += kW) ss::store_out<true>(out + i, body(x + i));
  ss::stream_fence<true>();
  plain(out + i, x + i, n - i);
}

void f32_to_bf16_stream(std::uint16_t* out, const float* x, index_t n) {
  stream_range<VU16>(out, x, n, [](const float* p) {
    const VU32 u = simd::load<VU32>(reinterpret_cast<const std::uint32_t*>(p));
    const VU32 rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const VU32 nan_bits = (u >> 16) | 0x0040u;
    return simd::convert<VU16>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan_bits : rounded);
  }, f32_to_bf16_plain);
}

void bf16_to_f32_stream(float* out, const std::uint16_t* x, index_t n) {
  stream_range<VF>(out, x, n, [](const std::uint16_t* p) {
    return reinterpret_cast<VF>(simd::convert<VU32>(simd::load<VU16>(p)) << 16);
  }, from_bf16_plain<float>);
}

convert_detail::ConvertOps make_convert_ops() {
  convert_detail::ConvertOps o;
  o.f32_to_bf16 = &f32_to_bf16_plain;
  o.f64_to_bf16 = &f64_to_bf16_range;
  o.bf16_to_f32 = &from_bf16_plain<float>;
  o.bf16_to_f64 = &from_bf16_plain<double>;
  o.f32_to_bf16_stream = &f32_to_bf16_stream;
  o.bf16_to_f32_stream = &bf16_to_f32_stream;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE(convert_detail::ConvertOps, make_convert_ops())

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

// 16-bit float types of the CUDA emulation build: __half (IEEE binary16) and
// __nv_bfloat16, with CUDA's conversion functions. Float -> 16-bit conversions
// round to nearest, ties to even (the _rn behaviour, CUDA's default); NaN stays
// NaN (quiet), overflow goes to infinity, subnormals are kept.
// Arithmetic on the types goes through float, as a CUDA kernel computing in
// float and storing 16-bit would; it is there for convenience, not bit-exactness
// of native half arithmetic.
#pragma once
#include <cstdint>
#include <cstring>

namespace nnfast_emu {

inline std::uint32_t f32_bits(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// float -> binary16, round to nearest even.
inline std::uint16_t float_to_half_bits(float f) {
  std::uint32_t x = f32_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u)                         // inf or NaN (NaN stays quiet NaN)
    return static_cast<std::uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u | ((x >> 13) & 0x3ffu) : 0x7c00u));
  const std::uint32_t e = x >> 23;              // biased float exponent
  if (e >= 143) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 2^16: inf
  if (e < 102) return static_cast<std::uint16_t>(sign);            // < 2^-25: +-0
  std::uint32_t h, rem, halfway;
  if (e < 113) {                                // half subnormal: m * 2^-24
    const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t s = 126 - e;            // 14..24
    h = m >> s;
    rem = m & ((1u << s) - 1);
    halfway = 1u << (s - 1);
  } else {                                      // normal
    h = ((e - 112) << 10) | ((x & 0x7fffffu) >> 13);
    rem = x & 0x1fffu;
    halfway = 0x1000u;
  }
  if (rem > halfway || (rem == halfway && (h & 1u))) ++h;  // carries into the exponent (up to inf)
  return static_cast<std::uint16_t>(sign | h);
}

inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return bits_f32(sign);
    e = 113;                                    // normalise the subnormal
    while (!(m & 0x400u)) { m <<= 1; --e; }
    return bits_f32(sign | (e << 23) | ((m & 0x3ffu) << 13));
  }
  return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

// float -> bfloat16, round to nearest even.
inline std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float bf16_bits_to_float(std::uint16_t b) { return bits_f32(static_cast<std::uint32_t>(b) << 16); }

// The storage of both types: the bits in __x (as CUDA's own structs), every conversion
// through float with the format's encoder / decoder.
template <std::uint16_t (*Encode)(float), float (*Decode)(std::uint16_t)>
struct Float16Bits {
  unsigned short __x;
  Float16Bits() = default;
  Float16Bits(float f) : __x(Encode(f)) {}
  Float16Bits(double f) : __x(Encode(static_cast<float>(f))) {}
  Float16Bits(int i) : __x(Encode(static_cast<float>(i))) {}
  operator float() const { return Decode(__x); }
};

}  // namespace nnfast_emu

struct __half : nnfast_emu::Float16Bits<nnfast_emu::float_to_half_bits, nnfast_emu::half_bits_to_float> {
  using Float16Bits::Float16Bits;
};
struct __nv_bfloat16 : nnfast_emu::Float16Bits<nnfast_emu::float_to_bf16_bits, nnfast_emu::bf16_bits_to_float> {
  using Float16Bits::Float16Bits;
};
using half = __half;
using nv_bfloat16 = __nv_bfloat16;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return nnfast_emu::half_bits_to_float(h.__x); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return nnfast_emu::bf16_bits_to_float(b.__x); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { __half h; h.__x = u; return h; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { __nv_bfloat16 h; h.__x = u; return h; }

#define NNFAST_EMU_16BIT_OPS(T)                                                            \
  inline T operator+(T a, T b) { return T(float(a) + float(b)); }                          \
  inline T operator-(T a, T b) { return T(float(a) - float(b)); }                          \
  inline T operator*(T a, T b) { return T(float(a) * float(b)); }                          \
  inline T operator/(T a, T b) { return T(float(a) / float(b)); }                          \
  inline T operator-(T a) { T r = a; r.__x ^= 0x8000u; return r; }                         \
  inline T& operator+=(T& a, T b) { return a = a + b; }                                    \
  inline T& operator-=(T& a, T b) { return a = a - b; }                                    \
  inline T& operator*=(T& a, T b) { return a = a * b; }                                    \
  inline T& operator/=(T& a, T b) { return a = a / b; }                                    \
  inline bool operator==(T a, T b) { return float(a) == float(b); }                        \
  inline bool operator!=(T a, T b) { return float(a) != float(b); }                        \
  inline bool operator<(T a, T b) { return float(a) < float(b); }                          \
  inline bool operator>(T a, T b) { return float(a) > float(b); }                          \
  inline bool operator<=(T a, T b) { return float(a) <= float(b); }                        \
  inline bool operator>=(T a, T b) { return float(a) >= float(b); }
NNFAST_EMU_16BIT_OPS(__half)
NNFAST_EMU_16BIT_OPS(__nv_bfloat16)
#undef NNFAST_EMU_16BIT_OPS

inline __half __hadd(__half a, __half b) { return a + b; }
inline __half __hsub(__half a, __half b) { return a - b; }
inline __half __hmul(__half a, __half b) { return a * b; }
inline __half __hdiv(__half a, __half b) { return a / b; }
inline __half __hfma(__half a, __half b, __half c) { return __half(float(a) * float(b) + float(c)); }

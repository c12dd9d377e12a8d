// Counter-based random bits for dropout, shared by the CPU (cpu/dropout.cpp) and
// CUDA (cuda/dropout.cu) kernels so that both draw the same mask, bit for bit,
// for the same (seed, offset): element i's 32 bits depend only on (key, i).
//
//   key  = dropout_stream_key(seed, offset)
//   bits = dropout_bits(key, i)    splitmix64 over element pairs: pair j = i / 2
//                                  gives one 64-bit output, element 2j the low half
//   kept = bits < keep_threshold(p)          (P(kept) = keep / 2^32)
//
// Integer arithmetic only (plus one exact power-of-two scaling in the threshold),
// so host and device agree exactly. NNFAST_HD: __host__ __device__ under nvcc.
// `static`: CPU objects built with different -m flags include headers like this
// one; internal linkage keeps the linker from merging their copies.
//
// The CPU's vectorised loops (cpu/activation_isa.cpp, cpu/dropout_isa.cpp; act_detail::dropout_bits in
// cpu/activation_internal.h) computes the same function lane-wise;
// tests/cpp/test_cuda_norm.cpp checks the two against each other.
#pragma once
#include <stdint.h>

#include "core/host_device.h"  // NNFAST_HD

namespace nnfast {
namespace counter_rng {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// splitmix64's output function.
NNFAST_HD static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One independent stream per (seed, offset).
NNFAST_HD static inline uint64_t dropout_stream_key(uint64_t seed, uint64_t offset) {
  return mix64(mix64(seed + kGolden) ^ (offset * 0xd1b54a32d192ed03ULL + 0x632be59bd9b4e019ULL));
}

// Element i's 32 random bits.
NNFAST_HD static inline uint32_t dropout_bits(uint64_t key, uint64_t i) {
  const uint64_t h = mix64(key + (i >> 1) * kGolden);
  return static_cast<uint32_t>(h >> (32 * (i & 1)));
}

// Keep element i when its bits are < keep_threshold(p), for 0 < p < 1.
// (1 - p) * 2^32 is exact (a power-of-two scaling, as ldexp).
NNFAST_HD static inline uint32_t keep_threshold(double p) {
  const double k = (1.0 - p) * 4294967296.0;
  if (k >= 4294967295.0) return 0xffffffffu;
  return k <= 0.0 ? 0u : static_cast<uint32_t>(k);
}

}  // namespace counter_rng
}  // namespace nnfast

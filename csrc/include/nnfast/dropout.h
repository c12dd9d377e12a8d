// Regularization: dropout with a counter-based mask, and L1 / L2 penalties.
// Shape letters: n elements. Float32 and float64 instantiations exist.
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

namespace cpu {
// Inverted dropout: y = keep(i) ? x / (1 - p) : 0, with element i kept with
// probability 1 - p. keep(i) depends only on (seed, offset, i): 32 bits of
// splitmix64 per element, so the mask is the same for any thread count, any
// SIMD width and either dtype. p <= 0 copies, p >= 1 zeroes. y may equal x.
// first: the stream index of element 0 (element i draws keep(first + i)), so a
// shard of a larger tensor (data-parallel ranks) draws exactly its slice of the
// whole tensor's mask.
template <typename T>
void dropout_forward(T* y, const T* x, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                     std::uint64_t first = 0);

// dx = keep(first + i) ? dy / (1 - p) : 0, the mask regenerated from (seed, offset).
template <typename T>
void dropout_backward(T* dx, const T* dy, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                      std::uint64_t first = 0);

// Whether element i is kept (the mask the two kernels above use).
bool dropout_keep(index_t i, double p, std::uint64_t seed, std::uint64_t offset);
}  // namespace cpu

enum class Penalty : int { L1 = 1, L2 = 2 };

namespace cpu {
// sum |x| (L1) or sum x^2 (L2), accumulated in double over fixed blocks
// (independent of the thread count).
template <typename T>
double penalty_sum(const T* x, index_t n, Penalty kind);

// dx = scale * sign(x) (L1, sign(0) = 0) or scale * 2 x (L2); dx is the
// gradient of this op's input, so it is overwritten (nnfast/common.h).
template <typename T>
void penalty_backward(T* dx, const T* x, index_t n, Penalty kind, T scale);
}  // namespace cpu

}  // namespace nnfast

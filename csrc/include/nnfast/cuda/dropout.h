// CUDA dropout and penalty launchers (csrc/cuda/dropout.cu): the same names,
// template parameters, arguments and semantics as nnfast::cpu in nnfast/dropout.h,
// plus a trailing stream (nnfast/cuda/common.h). Pointers are device pointers.
// The dropout mask is the CPU's, bit for bit, for the same (seed, offset): both use
// core/counter_rng.h. penalty_sum returns a host double: it synchronises `stream`
// and uses a small cudaMalloc'd workspace.
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/dropout.h"

namespace nnfast {
namespace cuda {

// first: the stream index of element 0, as in the CPU's (after the stream, so
// existing (…, offset, stream) calls keep their meaning).
template <typename T>
void dropout_forward(T* y, const T* x, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                     cudaStream_t stream = nullptr, std::uint64_t first = 0);

template <typename T>
void dropout_backward(T* dx, const T* dy, index_t n, double p, std::uint64_t seed, std::uint64_t offset,
                      cudaStream_t stream = nullptr, std::uint64_t first = 0);

// Host query, no launch: the same answer as nnfast::cpu::dropout_keep.
bool dropout_keep(index_t i, double p, std::uint64_t seed, std::uint64_t offset);

// Synchronises `stream` to return the sum.
template <typename T>
double penalty_sum(const T* x, index_t n, Penalty kind, cudaStream_t stream = nullptr);

template <typename T>
void penalty_backward(T* dx, const T* x, index_t n, Penalty kind, T scale, cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

// Dropout's own per-ISA kernel (dropout_isa.cpp, compiled once per ISA): the AVX-512
// mask loop with the counter stepped by an add and streaming stores for an output too
// big to cache. Null in ISAs without it; dropout.cpp then runs ActOps' loop (the same bits).
#pragma once
#include <cstdint>

#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace dropout_detail {

template <typename T>
struct DropoutOps {
  // y[k] = dropout_bits(key, i0 + k) < keep ? x[k] * scale : 0 for k < n (y may be x);
  // stream: non-temporal stores after a peel to 64-byte alignment (fenced before return)
  void (*apply)(T* y, const T* x, index_t i0, index_t n, std::uint64_t key, std::uint32_t keep, T scale,
                bool stream) = nullptr;
};

}  // namespace dropout_detail

NNFAST_ISA_DECLARE_TABLE_T(dropout_detail::DropoutOps)

}  // namespace nnfast::cpu

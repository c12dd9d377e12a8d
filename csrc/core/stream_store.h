// Non-temporal (streaming) stores for the memory-bound elementwise loops
// (activations, tensor arithmetic, casts). An output too big for the last-level
// cache is written around it: a streaming store skips the read-for-ownership of
// every line, one memory transfer in place of two. The decision is per call (each
// thread of a parallel_for gets its own slice), the peel brings the output to
// vector alignment first, and stream_fence() publishes the stores before the join.
//
// ODR: compiled under different -m flags, so everything lives in NNFAST_VM_NS
// (the ISA namespace inside an ISA object), as in core/simd.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/simd.h"
#include "nnfast/common.h"

namespace nnfast {
namespace NNFAST_VM_NS {
namespace stream_store {

// Outputs of more than this many bytes per call are streamed: they cannot stay in
// the last-level cache anyway (half a typical 32 MB L3).
constexpr std::size_t kStreamBytes = std::size_t(16) << 20;

// Elements before y reaches kVecBytes alignment (NumPy's large buffers sit 16 bytes
// past a 64-byte line, so every unaligned 64-byte store would touch two lines).
// Callers run the peeled elements through their one-lane code (same bits as the tails).
template <int kVecBytes, typename T>
inline index_t peel_count(const T* y, index_t n) {
  const auto a = reinterpret_cast<std::uintptr_t>(y);
  if (a % sizeof(T) != 0) return 0;
  const auto gap = static_cast<index_t>((kVecBytes - a % kVecBytes) % kVecBytes / sizeof(T));
  return n < gap ? n : gap;
}

// Streaming stores need a vector-aligned address: a buffer that is not even
// element-aligned (a byte view) gets ordinary stores. `bytes_out` lets a caller that
// sees only a slice decide by the whole output (the tensor ops pass the slice's size).
template <int kVecBytes, typename T>
inline bool use_stream(const T* y, index_t n, index_t peeled, std::size_t threshold = kStreamBytes) {
  return static_cast<std::size_t>(n) * sizeof(T) > threshold &&
         reinterpret_cast<std::uintptr_t>(y + peeled) % kVecBytes == 0;
}

// *p = v, non-temporal when kStream (p vector-aligned then); a width / type without a
// streaming instruction in this ISA gets an ordinary store.
template <bool kStream, class V>
inline void store_out(simd::elem_t<V>* p, V v) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (kStream) {
    using E = simd::elem_t<V>;
    if constexpr (sizeof(V) == 64 && std::is_same_v<E, float>) {
#if defined(__AVX512F__)
      return _mm512_stream_ps(p, (__m512)v);
#endif
    } else if constexpr (sizeof(V) == 64 && std::is_same_v<E, double>) {
#if defined(__AVX512F__)
      return _mm512_stream_pd(p, (__m512d)v);
#endif
    } else if constexpr (sizeof(V) == 32 && std::is_same_v<E, float>) {
#if defined(__AVX__)
      return _mm256_stream_ps(p, (__m256)v);
#endif
    } else if constexpr (sizeof(V) == 32 && std::is_same_v<E, double>) {
#if defined(__AVX__)
      return _mm256_stream_pd(p, (__m256d)v);
#endif
    } else if constexpr (sizeof(V) == 16 && std::is_same_v<E, float>) {
      return _mm_stream_ps(p, (__m128)v);
    } else if constexpr (sizeof(V) == 16 && std::is_same_v<E, double>) {
      return _mm_stream_pd(p, (__m128d)v);
    } else if constexpr (std::is_integral_v<E> && sizeof(V) == 64) {  // bfloat16 bits and the like
#if defined(__AVX512F__)
      return _mm512_stream_si512(reinterpret_cast<void*>(p), (__m512i)v);
#endif
    } else if constexpr (std::is_integral_v<E> && sizeof(V) == 32) {
#if defined(__AVX__)
      return _mm256_stream_si256(reinterpret_cast<__m256i*>(p), (__m256i)v);
#endif
    } else if constexpr (std::is_integral_v<E> && sizeof(V) == 16) {
      return _mm_stream_si128(reinterpret_cast<__m128i*>(p), (__m128i)v);
    }
  }
#endif
  simd::store(p, v);
}

template <bool kStream>
inline void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish them before the join
#endif
}

}  // namespace stream_store
}  // namespace NNFAST_VM_NS
}  // namespace nnfast

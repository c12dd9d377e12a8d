// The AVX-512 dropout loop (dropout_internal.h). Why a second loop beside ActOps': at
// one thread the old one ran at ~13 GB/s, bound by vpmullq (3 uops each on Intel): it
// formed every pair counter as (j0 + lane) * golden, a third 64-bit multiply per 8
// pairs. Here the counter is key + j * golden carried in a register and stepped by
// 8 * golden (the same wrapped sums, so the same bits), and an output too big to cache
// is written with streaming stores. Other ISAs: no table entry (dropout.cpp falls back).
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu/activation_internal.h"
#include "cpu/dropout_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

#if defined(__AVX512F__) && defined(__AVX512DQ__)
constexpr std::uint64_t kGolden = act_detail::kGolden;

inline __m512i mix64(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64(0xbf58476d1ce4e5b9ULL));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64(0x94d049bb133111ebULL));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

// 16 elements (8 pairs) of x scaled under mask m, stored at y.
template <bool kStream>
inline void put(float* y, const float* x, __mmask16 m, __m512 s) {
  const __m512 r = _mm512_maskz_mul_ps(m, _mm512_loadu_ps(x), s);
  if constexpr (kStream) _mm512_stream_ps(y, r);
  else _mm512_storeu_ps(y, r);
}
template <bool kStream>
inline void put(double* y, const double* x, __mmask16 m, __m512d s) {
  const __m512d r0 = _mm512_maskz_mul_pd(static_cast<__mmask8>(m), _mm512_loadu_pd(x), s);
  const __m512d r1 = _mm512_maskz_mul_pd(static_cast<__mmask8>(m >> 8), _mm512_loadu_pd(x + 8), s);
  if constexpr (kStream) {
    _mm512_stream_pd(y, r0);
    _mm512_stream_pd(y + 8, r1);
  } else {
    _mm512_storeu_pd(y, r0);
    _mm512_storeu_pd(y + 8, r1);
  }
}

template <bool kStream, typename T>
void body(T* y, const T* x, std::uint64_t g0, index_t m, std::uint64_t key, std::uint32_t keep, T scale) {
  // pairs j = g0/2 + 8 step + lane; u32 lane k of mix64's output is element g0 + 16 step + k
  const std::uint64_t j0 = g0 >> 1;
  __m512i z = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(key + j0 * kGolden)),
                               _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                                                  _mm512_set1_epi64(static_cast<long long>(kGolden))));
  const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * kGolden));
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(keep));
  using VS = std::conditional_t<std::is_same_v<T, float>, __m512, __m512d>;
  VS s;
  if constexpr (std::is_same_v<T, float>) s = _mm512_set1_ps(scale);
  else s = _mm512_set1_pd(scale);
  for (index_t i = 0; i + 16 <= m; i += 16) {
    const __mmask16 k = _mm512_cmplt_epu32_mask(mix64(z), thr);
    z = _mm512_add_epi64(z, step);
    put<kStream>(y + i, x + i, k, s);
  }
  if constexpr (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish before the join
}

template <typename T>
void apply(T* y, const T* x, index_t i0, index_t n, std::uint64_t key, std::uint32_t keep, T scale, bool stream) {
  auto one = [&](index_t k) {
    const std::uint32_t bits = act_detail::dropout_bits(key, static_cast<std::uint64_t>(i0 + k));
    y[k] = bits < keep ? x[k] * scale : T(0);
  };
  index_t i = 0;
  if (stream) {  // peel to y's 64-byte line (element-aligned y only), then to an even element
    const auto a = reinterpret_cast<std::uintptr_t>(y);
    if (a % sizeof(T) == 0) {
      const index_t p = static_cast<index_t>((64 - a % 64) % 64 / sizeof(T));
      if (((i0 + p) & 1) == 0) {
        for (; i < p && i < n; ++i) one(i);
      } else {
        stream = false;  // an odd element on the line: the vector body cannot start there
      }
    } else {
      stream = false;
    }
  }
  if ((i0 + i) & 1 && i < n) one(i++);
  const index_t m = (n - i) / 16 * 16;
  if (stream) body<true>(y + i, x + i, static_cast<std::uint64_t>(i0 + i), m, key, keep, scale);
  else body<false>(y + i, x + i, static_cast<std::uint64_t>(i0 + i), m, key, keep, scale);
  for (i += m; i < n; ++i) one(i);
}
#endif

template <typename T>
dropout_detail::DropoutOps<T> make_dropout_ops() {
  dropout_detail::DropoutOps<T> o;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  o.apply = &apply<T>;
#endif
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(dropout_detail::DropoutOps, make_dropout_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

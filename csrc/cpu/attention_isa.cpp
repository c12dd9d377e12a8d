// Per-ISA row loops of the fused attention kernel (see cpu/attention_internal.h):
// the online-softmax update of a score tile, probabilities from the saved
// log-sum-exp, the softmax gradient and row dot products. Compiled once per
// instruction set (NNFAST_ISA_NS); never include it elsewhere. Tails use one-lane
// vectors, so every width gives the same bits lane by lane (sums are taken in
// a fixed order per width only: the kernels' determinism is per ISA).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/vec_math.h"
#include "cpu/attention_internal.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
#include "cpu/transpose_isa.h"
namespace {

template <typename T>
using VW = vm::Vec<T, simd::kNativeBytes / static_cast<int>(sizeof(T))>;
template <typename T>
using V1 = vm::Vec<T, 1>;
template <typename T>
constexpr index_t width() { return simd::kNativeBytes / static_cast<index_t>(sizeof(T)); }

// exp(x) for x <= 0 (x = -inf gives 0); x is clamped at 0 so a recomputed
// score a rounding above its row's max never leaves exp_nonpos's domain.
template <class V>
inline V exp_le0(V x) {
  return vm::exp_nonpos(x > V{} ? V{} : x);
}

template <typename T>
T row_max(const T* s, index_t n) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  const T ninf = -std::numeric_limits<T>::infinity();
  index_t j = 0;
  T mx = ninf;
  if (n >= W) {
    V acc = vm::load<V>(s);
    for (j = W; j + W <= n; j += W) {
      const V x = vm::load<V>(s + j);
      acc = x > acc ? x : acc;
    }
    for (int k = 0; k < static_cast<int>(W); ++k) mx = acc[k] > mx ? acc[k] : mx;
  }
  for (; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
  return mx;
}

// s := exp(s - shift) over n values; returns their sum (lane partials, then left to right).
template <typename T>
T exp_row(T* s, index_t n, T shift) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  const V sh = vm::splat<V>(shift);
  V acc{};
  index_t j = 0;
  for (; j + W <= n; j += W) {
    const V e = exp_le0(vm::load<V>(s + j) - sh);
    vm::store(s + j, e);
    acc += e;
  }
  T sum = simd::hsum(acc);
  for (; j < n; ++j) {
    const V1<T> e = exp_le0(V1<T>{s[j] - shift});
    s[j] = e[0];
    sum += e[0];
  }
  return sum;
}

template <typename T>
void attn_softmax_update(T* s, index_t rows, index_t n, index_t ld, T* m, T* l, T* alpha) {
  const T ninf = -std::numeric_limits<T>::infinity();
  for (index_t r = 0; r < rows; ++r) {
    T* row = s + r * ld;
    const T mx = row_max(row, n);
    const T m_new = mx > m[r] ? mx : m[r];
    // A row with no key taking part yet keeps m = -inf: shift by 0 so exp(-inf) = 0, not NaN.
    const T shift = m_new == ninf ? T(0) : m_new;
    const T sum = exp_row(row, n, shift);
    const T a = m[r] == ninf ? T(0) : exp_le0(V1<T>{m[r] - shift})[0];
    alpha[r] = a;
    l[r] = l[r] * a + sum;
    m[r] = m_new;
  }
}

template <typename T>
void attn_exp_shift(T* s, index_t rows, index_t n, index_t ld, const T* shift) {
  for (index_t r = 0; r < rows; ++r) (void)exp_row(s + r * ld, n, shift[r]);
}

template <typename T>
void attn_softmax_grad(T* dp, const T* p, index_t rows, index_t n, index_t ld, const T* d) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    T* g = dp + r * ld;
    const T* pr = p + r * ld;
    const V dv = vm::splat<V>(d[r]);
    index_t j = 0;
    for (; j + W <= n; j += W) vm::store(g + j, vm::load<V>(pr + j) * (vm::load<V>(g + j) - dv));
    for (; j < n; ++j) g[j] = pr[j] * (g[j] - d[r]);
  }
}

template <typename T>
void attn_row_dot(T* d, const T* a, const T* b, index_t rows, index_t n) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  for (index_t r = 0; r < rows; ++r) {
    const T* x = a + r * n;
    const T* y = b + r * n;
    V acc{};
    index_t j = 0;
    for (; j + W <= n; j += W) acc += vm::load<V>(x + j) * vm::load<V>(y + j);
    T s = simd::hsum(acc);
    for (; j < n; ++j) s += x[j] * y[j];
    d[r] = s;
  }
}

// acc + x * y: one FMA (one rounding) where the ISA object has the instruction. With
// contraction off, x * y + acc is a multiply and an add, and the broadcast of x cannot fold
// into the FMA's memory operand: the N = 16 products (one vector per row) were bound on those
// three FP-pipe ops per lane-vector. Baseline x86-64 (no FMA: std::fma is a libm call) keeps
// the two roundings. Every lane, tail lanes included, rounds the same way at a given ISA.
template <bool kFused, class V>
inline V mul_add(V x, V y, V acc) {
  if constexpr (kFused && vm::kFmaBytes > 0) return vm::fmadd(x, y, acc);
  else return acc + x * y;
}

// R rows x NV vectors of the small product at once: with NV a compile-time count the R * NV
// accumulators stay in registers (R independent chains per loaded vector of b). Columns past
// the last full vector (n % W of them) are summed in one-lane vectors, same order.
// kFused = false is the old multiply-then-add path (NNFAST_ATTN_OLD=1, for A/B timing).
template <typename T, int R, int NV, bool kFused, bool kTail>
void small_gemm_rows(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb, index_t n,
                     index_t kk, T alpha, bool accumulate) {
  using V = VW<T>;
  constexpr index_t W = width<T>();
  V acc[R][NV > 0 ? NV : 1] = {};
  T tail[kTail ? R : 1][W] = {};  // kTail = false: no 256-byte zero fill per call
  const index_t nt = kTail ? n - NV * W : 0;  // kTail = false: n = NV * W, no scalars kept live
  for (index_t k = 0; k < kk; ++k) {
    const T* brow = b + k * ldb;
    // Broadcast straight from memory (a load-port op), not a scalar load then a register
    // broadcast (a shuffle on the FP pipes the FMAs need).
    V as[R];
    for (int r = 0; r < R; ++r) as[r] = vm::splat<V>(a[r * ars + k * acs]);
    for (int v = 0; v < NV; ++v) {
      const V bv = vm::load<V>(brow + v * W);
      for (int r = 0; r < R; ++r) acc[r][v] = mul_add<kFused>(as[r], bv, acc[r][v]);
    }
    for (index_t j = 0; j < nt; ++j)
      for (int r = 0; r < R; ++r)
        tail[r][j] = mul_add<kFused>(V1<T>{as[r][0]}, V1<T>{brow[NV * W + j]}, V1<T>{tail[r][j]})[0];
  }
  const V al = vm::splat<V>(alpha);
  for (int r = 0; r < R; ++r) {
    T* crow = c + r * ldc;
    for (int v = 0; v < NV; ++v) {
      V x = acc[r][v] * al;
      if (accumulate) x = vm::load<V>(crow + v * W) + x;
      vm::store(crow + v * W, x);
    }
    for (index_t j = 0; j < nt; ++j) {
      const T x = tail[r][j] * alpha;
      crow[NV * W + j] = accumulate ? crow[NV * W + j] + x : x;
    }
  }
}

// Rows per register block: about 8 accumulators (16 registers: SSE / AVX2), or with kTall and
// AVX-512's 32 registers 16 where they fit beside the broadcasts (NV = 1, 2, 4: the PV / dV / dK /
// dQ products of 16 / 32 / 64-wide heads, whose 8 accumulator chains of 4-cycle FMAs left the two
// FMA pipes half idle). Always a divisor of kCausalChunk. Each element's sum keeps its order: same bits.
template <typename T, int NV, bool kTall>
constexpr int rows_per_block() {
  constexpr int base = NV <= 1 ? 8 : NV <= 3 ? 4 : 2;
  if constexpr (kTall && simd::kNativeBytes == 64) return NV == 1 ? 16 : NV == 2 ? 8 : NV == 4 ? 4 : base;
  return base;
}

// All m rows for a fixed NV: blocks of R rows, then single rows.
template <typename T, int NV, bool kFused, bool kTall = false>
void small_gemm_nv(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb, index_t m,
                   index_t n, index_t kk, T alpha, bool accumulate) {
  constexpr index_t W = width<T>();
  constexpr int R = rows_per_block<T, NV, kTall>();
  index_t i = 0;
  if (n == NV * W) {  // whole vectors (head dims 16 / 32 / 64, key tiles of 16k)
    for (; i + R <= m; i += R)
      small_gemm_rows<T, R, NV, kFused, false>(c + i * ldc, ldc, a + i * ars, ars, acs, b, ldb, n, kk, alpha,
                                               accumulate);
    for (; i < m; ++i)
      small_gemm_rows<T, 1, NV, kFused, false>(c + i * ldc, ldc, a + i * ars, ars, acs, b, ldb, n, kk, alpha,
                                               accumulate);
    return;
  }
  for (; i + R <= m; i += R)
    small_gemm_rows<T, R, NV, kFused, true>(c + i * ldc, ldc, a + i * ars, ars, acs, b, ldb, n, kk, alpha, accumulate);
  for (; i < m; ++i)
    small_gemm_rows<T, 1, NV, kFused, true>(c + i * ldc, ldc, a + i * ars, ars, acs, b, ldb, n, kk, alpha, accumulate);
}

template <typename T, bool kFused, bool kTall = false, bool kSlices = false>
void attn_small_gemm(T* c, index_t ldc, const T* a, index_t ars, index_t acs, const T* b, index_t ldb, index_t m,
                     index_t n, index_t kk, T alpha, bool accumulate) {
  // n <= kSmallGemmMaxN = 128: at most 8 full vectors of 16 floats; narrower ISAs (or double)
  // with more than 8 vectors run 8 at a time over column slices.
  constexpr index_t W = width<T>();
  index_t nv = n / W;
  if constexpr (kTall && simd::kNativeBytes == 64) {
    // AVX-512, 8 or more vectors (the 128-key score tiles): column slices of 4 vectors in 4-row
    // blocks, 8 loads per 16 FMAs instead of 2 rows x 8 vectors' 10 (each element's sum unchanged).
    if (kSlices && nv >= 8) {
      small_gemm_nv<T, 4, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, 4 * W, kk, alpha, accumulate);
      attn_small_gemm<T, kFused, kTall, kSlices>(c + 4 * W, ldc, a, ars, acs, b + 4 * W, ldb, m, n - 4 * W, kk, alpha,
                                        accumulate);
      return;
    }
  }
  if (nv > 8) {
    small_gemm_nv<T, 8, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, 8 * W, kk, alpha, accumulate);
    attn_small_gemm<T, kFused, kTall, kSlices>(c + 8 * W, ldc, a, ars, acs, b + 8 * W, ldb, m, n - 8 * W, kk, alpha, accumulate);
    return;
  }
  switch (nv) {
    case 0: small_gemm_nv<T, 0, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 1: small_gemm_nv<T, 1, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 2: small_gemm_nv<T, 2, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 3: small_gemm_nv<T, 3, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 4: small_gemm_nv<T, 4, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 5: small_gemm_nv<T, 5, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 6: small_gemm_nv<T, 6, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    case 7: small_gemm_nv<T, 7, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
    default: small_gemm_nv<T, 8, kFused, kTall>(c, ldc, a, ars, acs, b, ldb, m, n, kk, alpha, accumulate); break;
  }
}

// bt[k * ldb + j] = b[j * rs + k] for j < n, k < kk: a key tile (n rows of a head, row stride rs)
// as kk rows of n columns for small_gemm's B. Float takes 8 x 8 register blocks where the ISA has
// them (the tile was copied element by element before; a pure copy: same bits either way).
template <typename T>
void attn_transpose(T* bt, index_t ldb, const T* b, index_t rs, index_t n, index_t kk) {
  index_t j = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    for (; j + 8 <= n; j += 8) {
      const float* r = b + j * rs;
      index_t k = 0;
      for (; k + 8 <= kk; k += 8)
        transpose8x8_store(_mm256_loadu_ps(r + k), _mm256_loadu_ps(r + rs + k), _mm256_loadu_ps(r + 2 * rs + k),
                           _mm256_loadu_ps(r + 3 * rs + k), _mm256_loadu_ps(r + 4 * rs + k),
                           _mm256_loadu_ps(r + 5 * rs + k), _mm256_loadu_ps(r + 6 * rs + k),
                           _mm256_loadu_ps(r + 7 * rs + k), bt + k * ldb + j, ldb);
      for (; k < kk; ++k)
        for (index_t i = 0; i < 8; ++i) bt[k * ldb + j + i] = r[i * rs + k];
    }
  }
#endif
  for (; j < n; ++j)
    for (index_t k = 0; k < kk; ++k) bt[k * ldb + j] = b[j * rs + k];
}

// bf16 staging of the bf16 route's operands (float only): core/bf16.h's float_to_bf16 bits (round to
// nearest even, NaN kept NaN), with kFlush also vcvtneps2bf16's flush of subnormals to a signed zero
// (the AVX512-BF16 GEMM's packing rule, so its pre-converted operands pack to the same bits).
template <bool kFlush>
inline std::uint32_t bf16_bits(std::uint32_t u) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  if (kFlush && (u & 0x7f800000u) == 0) return (u >> 16) & 0x8000u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

#if defined(__AVX512F__)
template <bool kFlush>
inline __m512i bf16_bits(__m512 x) {  // 16 lanes: the bits in each lane's low half
  const __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
  if (kFlush)
    r = _mm512_mask_mov_epi32(r, _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)),
                              _mm512_and_si512(hi, _mm512_set1_epi32(0x8000)));
  return r;
}
#elif defined(__AVX2__)
template <bool kFlush>
inline __m256i bf16_bits(__m256 x) {  // 8 lanes, as above
  const __m256i u = _mm256_castps_si256(x), hi = _mm256_srli_epi32(u, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)),
                         _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
  if (kFlush)
    r = _mm256_blendv_epi8(r, _mm256_and_si256(hi, _mm256_set1_epi32(0x8000)),
                           _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256()));
  return r;
}
#endif

// dst row r = src row r, `cols` values, as bf16: float values (Out = float, no flush: the portable
// level's rounding, as its GEMM's) or bf16 bits (Out = uint16_t, flushed: the AVX512-BF16 level's).
// dst may be src (float).
template <typename Out>
void bf16_rows(Out* dst, index_t ldd, const float* src, index_t lds, index_t rows, index_t cols) {
  constexpr bool kFlush = std::is_same_v<Out, std::uint16_t>;
  for (index_t r = 0; r < rows; ++r) {
    const float* x = src + r * lds;
    Out* y = dst + r * ldd;
    index_t j = 0;
#if defined(__AVX512F__)
    for (; j < cols; j += 16) {
      const __mmask16 m = cols - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - j)) - 1u);
      const __m512i b = bf16_bits<kFlush>(_mm512_maskz_loadu_ps(m, x + j));
      if constexpr (kFlush) _mm256_mask_storeu_epi16(y + j, m, _mm512_cvtepi32_epi16(b));
      else _mm512_mask_storeu_ps(y + j, m, _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)));
    }
#elif defined(__AVX2__)
    for (; j + 8 <= cols; j += 8) {
      const __m256i b = bf16_bits<kFlush>(_mm256_loadu_ps(x + j));
      if constexpr (kFlush)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + j),
                         _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(b, b), 0x08)));
      else _mm256_storeu_ps(y + j, _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    }
#endif
    for (; j < cols; ++j) {
      std::uint32_t u;
      std::memcpy(&u, x + j, 4);
      const std::uint32_t b = bf16_bits<kFlush>(u);
      if constexpr (kFlush) {
        y[j] = static_cast<std::uint16_t>(b);
      } else {
        const std::uint32_t w = b << 16;
        std::memcpy(y + j, &w, 4);
      }
    }
  }
}

template <typename T>
attn_detail::AttnOps<T> make_attn_ops() {
  attn_detail::AttnOps<T> o;
  o.softmax_update = &attn_softmax_update<T>;
  o.exp_shift = &attn_exp_shift<T>;
  o.softmax_grad = &attn_softmax_grad<T>;
  o.row_dot = &attn_row_dot<T>;
  o.small_gemm = &attn_small_gemm<T, true, true, true>;
  o.small_gemm_whole = &attn_small_gemm<T, true, true, false>;
  o.small_gemm_short = &attn_small_gemm<T, true, false>;
  o.small_gemm_unfused = &attn_small_gemm<T, false>;
  o.transpose = &attn_transpose<T>;
  if constexpr (std::is_same_v<T, float>) {
    o.round_bf16 = &bf16_rows<float>;
    o.narrow_bf16 = &bf16_rows<std::uint16_t>;
  }
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(attn_detail::AttnOps, make_attn_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

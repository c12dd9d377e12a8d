// Per-ISA tensor arithmetic loops: compiled three times (NNFAST_ISA_NS = isa_generic,
// isa_avx2, isa_avx512) and picked at run time by tensor.cpp. Plain unit-stride loops
// that the compiler vectorises for the ISA at hand (the baseline build would give
// SSE2 only: half or a quarter of the vector width, no cvtps2pd to 512 bits).
//
// ODR: everything here is in NNFAST_ISA_NS or an anonymous namespace, and no
// std:: template is instantiated (the linker could merge one ISA's copy into another).
#include "cpu/tensor_internal.h"
#include "core/simd.h"
#include "core/stream_store.h"
#include "core/tensor_math.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

using namespace ::nnfast::cpu::tensor_detail;
namespace simd = ::nnfast::NNFAST_ISA_NS::simd;
namespace ss = ::nnfast::NNFAST_ISA_NS::stream_store;

inline index_t imin(index_t a, index_t b) { return a < b ? a : b; }

// out[0, len) = a[j * sa] (op) b[j * sb]; the unit / zero stride cases are separate
// loops so that each vectorises.
template <BinaryOp kOp, typename T>
void binary_row(T* out, const T* a, index_t sa, const T* b, index_t sb, index_t len) {
  auto f = [](T x, T y) { return tensor_math::binary<kOp>(x, y); };
  if (sa == 1 && sb == 1) {
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j], y);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (index_t j = 0; j < len; ++j) out[j] = f(x, b[j]);
  } else {
    for (index_t j = 0; j < len; ++j) out[j] = f(a[j * sa], b[j * sb]);
  }
}

// binary_row from out's vector alignment on (Stores::Aligned / Stream, tensor.cpp decides):
// the peel to that alignment and the tail run binary_row, the body the same op on native
// vectors, with streaming stores when kStream -- add / sub / mul / div are exact per lane,
// so the same bits. kA1 / kB1: unit stride (else stride 0, a broadcast scalar). The caller
// fences streaming stores.
template <BinaryOp kOp, bool kA1, bool kB1, bool kStream, typename T>
void binary_row_body(T* out, const T* a, const T* b, index_t len) {
  using V = simd::Native<T>;
  constexpr index_t W = simd::kLanes<T>;
  const V a0 = simd::splat<V>(a[0]), b0 = simd::splat<V>(b[0]);
  index_t j = 0;
  for (; j + 2 * W <= len; j += 2 * W) {  // both loads before the stores: out may be a or b
    const V x0 = kA1 ? simd::load<V>(a + j) : a0, x1 = kA1 ? simd::load<V>(a + j + W) : a0;
    const V y0 = kB1 ? simd::load<V>(b + j) : b0, y1 = kB1 ? simd::load<V>(b + j + W) : b0;
    ss::store_out<kStream>(out + j, tensor_math::binary<kOp>(x0, y0));
    ss::store_out<kStream>(out + j + W, tensor_math::binary<kOp>(x1, y1));
  }
  binary_row<kOp>(out + j, a + (kA1 ? j : 0), kA1 ? 1 : 0, b + (kB1 ? j : 0), kB1 ? 1 : 0, len - j);
}

template <BinaryOp kOp, bool kStream, typename T>
void binary_row_aligned(T* out, const T* a, index_t sa, const T* b, index_t sb, index_t len) {
  const index_t p = ss::peel_count<simd::kNativeBytes>(out, len);
  if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1) || (sa == 0 && sb == 0) ||
      !ss::use_stream<simd::kNativeBytes>(out, len, p, 0)) {
    binary_row<kOp>(out, a, sa, b, sb, len);
    return;
  }
  binary_row<kOp>(out, a, sa, b, sb, p);
  out += p;
  a += sa * p;
  b += sb * p;
  len -= p;
  if (sa == 1 && sb == 1) binary_row_body<kOp, true, true, kStream>(out, a, b, len);
  else if (sa == 1) binary_row_body<kOp, true, false, kStream>(out, a, b, len);
  else binary_row_body<kOp, false, true, kStream>(out, a, b, len);
}

// Stores::Aligned only for rows this long: its scalar peel and tail cost more than the
// aligned stores gained on a 1024-wide row ((R, 1024) * row of 4 MB, one thread, under load:
// 0.105 ms against 0.097 ms for the plain loop).
constexpr index_t kAlignedRow = 4096;

// (R, C) (op) (C,) or (C,) (op) (R, C), the matrix contiguous (out always is): out[i] =
// m[i] (op) row[i % C] over the flat range [lo, hi), as one stream -- one peel to out's vector
// alignment and one tail per call, not per row (a 1024-wide row paid both, plus the row
// loop's call and stride tests, every 4 KB). The row is first copied to ext, repeated so that
// two vectors from any column c < C read ext[c, c + 2W) without wrapping; ext lives in L1.
// The same IEEE op per element: the bits of binary_row. kRowFirst: the row is the left operand.
constexpr index_t kFlatRowMax = 4096;  // longest row taken (ext on the stack: 16 KB of float)

template <BinaryOp kOp, bool kRowFirst, bool kStream, typename T>
void binary_flat_row(const T* m, const T* row, index_t C, T* out, index_t lo, index_t hi) {
  using V = simd::Native<T>;
  constexpr index_t W = simd::kLanes<T>;
  alignas(64) T ext[kFlatRowMax + 2 * W];
  for (index_t k = 0; k < C + 2 * W; ++k) ext[k] = row[k % C];
  auto one = [](T x, T r) { return kRowFirst ? tensor_math::binary<kOp>(r, x) : tensor_math::binary<kOp>(x, r); };
  auto vec = [](V x, V r) { return kRowFirst ? tensor_math::binary<kOp>(r, x) : tensor_math::binary<kOp>(x, r); };
  index_t i = lo, col = lo % C;
  const auto scalar_to = [&](index_t end) {
    for (; i < end; ++i) {
      out[i] = one(m[i], ext[col]);
      if (++col == C) col = 0;
    }
  };
  scalar_to(imin(hi, lo + ss::peel_count<simd::kNativeBytes>(out + lo, hi - lo)));
  if (reinterpret_cast<std::uintptr_t>(out + i) % simd::kNativeBytes == 0) {
    for (; i + 2 * W <= hi; i += 2 * W) {  // both loads before the stores: out may be m
      const V x0 = simd::load<V>(m + i), x1 = simd::load<V>(m + i + W);
      const V r0 = simd::load<V>(ext + col), r1 = simd::load<V>(ext + col + W);
      ss::store_out<kStream>(out + i, vec(x0, r0));
      ss::store_out<kStream>(out + i + W, vec(x1, r1));
      col += 2 * W;
      while (col >= C) col -= C;
    }
  }
  scalar_to(hi);
}

// Elements [lo, hi) of out: rows of the last dim, the coordinates of the rest carried
// along (no division per element).
template <BinaryOp kOp, typename T>
void binary_range(const BroadcastArgs& s, const T* a, const T* b, T* out, index_t lo, index_t hi, Stores stores) {
  const int last = s.ndim - 1;
  const index_t cols = s.shape[last];
  if ((stores == Stores::Aligned || stores == Stores::Stream) && s.ndim == 2 && cols <= kFlatRowMax) {  // a contiguous matrix against a row
    const bool a_mat = s.a_stride[0] == cols && s.a_stride[1] == 1, b_mat = s.b_stride[0] == cols && s.b_stride[1] == 1;
    const bool a_row = s.a_stride[0] == 0 && s.a_stride[1] == 1, b_row = s.b_stride[0] == 0 && s.b_stride[1] == 1;
    if (a_mat && b_row) {
      if (stores == Stores::Stream) binary_flat_row<kOp, false, true>(a, b, cols, out, lo, hi);
      else binary_flat_row<kOp, false, false>(a, b, cols, out, lo, hi);
    } else if (a_row && b_mat) {
      if (stores == Stores::Stream) binary_flat_row<kOp, true, true>(b, a, cols, out, lo, hi);
      else binary_flat_row<kOp, true, false>(b, a, cols, out, lo, hi);
    }
    if ((a_mat && b_row) || (a_row && b_mat)) {
      if (stores == Stores::Stream) ss::stream_fence<true>();
      return;
    }
  }
  index_t coord[kMaxDims] = {};
  index_t rest = lo / cols, oa = 0, ob = 0;
  for (int d = last - 1; d >= 0; --d) {
    coord[d] = rest % s.shape[d];
    rest /= s.shape[d];
    oa += coord[d] * s.a_stride[d];
    ob += coord[d] * s.b_stride[d];
  }
  index_t i = lo, col = lo % cols;
  while (i < hi) {
    const index_t len = imin(cols - col, hi - i);
    const T *pa = a + oa + col * s.a_stride[last], *pb = b + ob + col * s.b_stride[last];
    if (streams(stores)) binary_row_aligned<kOp, true>(out + i, pa, s.a_stride[last], pb, s.b_stride[last], len);
    else if (stores == Stores::Aligned && len >= kAlignedRow)
      binary_row_aligned<kOp, false>(out + i, pa, s.a_stride[last], pb, s.b_stride[last], len);
    else binary_row<kOp>(out + i, pa, s.a_stride[last], pb, s.b_stride[last], len);
    i += len;
    col = 0;
    for (int d = last - 1; d >= 0; --d) {  // next row
      oa += s.a_stride[d];
      ob += s.b_stride[d];
      if (++coord[d] < s.shape[d]) break;
      oa -= coord[d] * s.a_stride[d];
      ob -= coord[d] * s.b_stride[d];
      coord[d] = 0;
    }
  }
  if (streams(stores)) ss::stream_fence<true>();
}

constexpr int kSumLanes = 32;  // logical lanes of a block's double accumulators

// W floats (a GCC vector) as W doubles (other same-lane conversions: simd::convert). GCC 12
// lowers the 8-float -> 8-double vector conversion as two 128-bit halves and an insert; one
// vcvtps2pd zmm, ymm does it.
template <class VD, class VT>
inline VD widen(VT v) {
#if defined(__AVX512F__)
  if constexpr (sizeof(VT) == 32 && sizeof(VD) == 64) return reinterpret_cast<VD>(_mm512_cvtps_pd(reinterpret_cast<__m256>(v)));
#endif
  return simd::convert<VD>(v);
}

// Sum of one block x[0, len), len <= kSumBlock, of a contiguous row: logical lane i of
// kSumLanes doubles gets, for each run of 4 kSumLanes elements, the quad
// (x[i] + x[i + 32]) + (x[i + 64] + x[i + 96]) formed in T. For float32 that is two
// roundings, an error of at most 2^-23 (1 + 2^-24) of the quad's absolute sum, far
// below the float32 result's own rounding unless the row cancels; the lanes, blocks and
// total are double. The float -> double conversion was the bottleneck (a zmm vcvtps2pd
// takes two cycles on Zen 4): one per 32 elements now. The lanes are kSumLanes / W
// native registers (independent add chains); the block's tail (< 4 kSumLanes elements)
// then goes to the lanes in double, element j + k to lane k % kSumLanes in order; the
// lanes are added pairwise (whole registers first: a scalar tree per row cost as much as
// the row's loads). The order depends on len only, not on the ISA's width or the thread count.
// kVectorTail: the tail kSumLanes elements a step (the last, partial step padded with +0,
// which leaves a lane's bits alone: a lane starts at +0 and an IEEE sum is -0 only when
// both terms are), else element by element through memory (the old loop: the same bits,
// but a 1000-wide row took twice as long as a 1024-wide one).
template <bool kVectorTail, typename T>
double block_sum_row(const T* x, index_t len) {
  using VD = simd::Native<double>;
  constexpr int W = simd::kLanes<double>, A = kSumLanes / W;
  using VT = simd::Vec<T, W>;
  VD acc[A] = {};
  index_t j = 0;
  for (; j + 4 * kSumLanes <= len; j += 4 * kSumLanes)
    for (int a = 0; a < A; ++a) {
      const T* p = x + j + a * W;
      acc[a] += widen<VD>((simd::load<VT>(p) + simd::load<VT>(p + kSumLanes)) +
                          (simd::load<VT>(p + 2 * kSumLanes) + simd::load<VT>(p + 3 * kSumLanes)));
    }
  if constexpr (kVectorTail) {
    for (; j < len; j += kSumLanes)
      for (int a = 0; a < A; ++a) {
        const index_t m = len - j - a * W;  // elements left for this register's lanes
        if (m >= W) acc[a] += widen<VD>(simd::load<VT>(x + j + a * W));
        else if (m > 0) acc[a] += widen<VD>(simd::load_n<VT>(x + j + a * W, m));
      }
  } else if (j < len) {
    double lane[kSumLanes];
    for (int a = 0; a < A; ++a) simd::store(lane + a * W, acc[a]);
    for (int k = 0; j < len; ++j, k = (k + 1) % kSumLanes) lane[k] += static_cast<double>(x[j]);
    for (int a = 0; a < A; ++a) acc[a] = simd::load<VD>(lane + a * W);
  }
  // Pairwise over the lanes, lane k += lane k + w for w = kSumLanes / 2 ... 1: whole
  // registers while w >= W, then within the first.
  for (int w = A / 2; w >= 1; w /= 2)
    for (int a = 0; a < w; ++a) acc[a] += acc[a + w];
  double lane[W];
  simd::store(lane, acc[0]);
  for (int w = W / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) lane[k] += lane[k + w];
  return lane[0];
}

// A row's blocks of kSumBlock added in order (tensor.cpp's split of a long row adds the
// same block sums in the same order).
template <bool kVectorTail, typename T>
void row_sums(const T* x, index_t n, index_t o0, index_t o1, T* out, double scale) {
  for (index_t o = o0; o < o1; ++o) {
    const T* r = x + o * n;
    double total = 0;
    for (index_t j = 0; j < n; j += kSumBlock) total += block_sum_row<kVectorTail>(r + j, imin(kSumBlock, n - j));
    out[o] = static_cast<T>(total * scale);
  }
}

template <typename T>
void row_block_sums(const T* x, index_t n, index_t b0, index_t b1, double* part) {
  for (index_t b = b0; b < b1; ++b) part[b - b0] = block_sum_row<true>(x + b * kSumBlock, imin(kSumBlock, n - b * kSumBlock));
}

// Max / min of one contiguous row and the index of its first occurrence, in one pass.
// The common case runs on native vectors: each lane keeps its extreme and the
// step where it first reached it (strict improvement only, so the first of equals);
// a lane-wise v * 0 sum probes for NaN (and infinities). The row's first occurrence is
// then the smallest step + lane among the lanes holding the extreme (elements equal to
// it compare equal: -0 and +0 tie, and the first one's bits are returned). A row the
// probe flags takes the exact scalar rule (NaN first, then the smaller index).
template <ReduceOp kOp, typename T>
void row_extreme(const T* x, index_t n, T* value, std::int64_t* index) {
  // Native-width vectors (a wider vector type is split through memory: ~10x slower),
  // two of them per step so the compare / blend chains overlap.
  using V = simd::Native<T>;
  using M = simd::mask_t<V>;  // int32 lanes for float, int64 for double
  using I = simd::elem_t<M>;
  constexpr int W = simd::kLanes<T>, kStep = 2 * W;
  auto wins = [](T v, T m) { return kOp == ReduceOp::Max ? v > m : v < m; };
  if (n >= kStep && (sizeof(I) >= 8 || n < (index_t(1) << 30))) {
    V best0 = simd::load<V>(x), best1 = simd::load<V>(x + W);
    V probe = best0 * T(0) + best1 * T(0);
    M first0 = M{}, first1 = M{};  // per lane: the step start where `best` was reached
    index_t j = kStep;
    for (; j + kStep <= n; j += kStep) {
      const V v0 = simd::load<V>(x + j), v1 = simd::load<V>(x + j + W);
      const M w0 = kOp == ReduceOp::Max ? v0 > best0 : v0 < best0;
      const M w1 = kOp == ReduceOp::Max ? v1 > best1 : v1 < best1;
      const M jv = M{} + static_cast<I>(j);
      best0 = w0 ? v0 : best0;
      best1 = w1 ? v1 : best1;
      first0 = w0 ? jv : first0;
      first1 = w1 ? jv : first1;
      probe += v0 * T(0) + v1 * T(0);
    }
    T best[kStep];
    index_t first[kStep];
    for (int k = 0; k < W; ++k) {
      best[k] = best0[k];
      best[W + k] = best1[k];
      first[k] = static_cast<index_t>(first0[k]) + k;
      first[W + k] = static_cast<index_t>(first1[k]) + W + k;
    }
    T p = 0, m = best[0];
    for (int k = 0; k < W; ++k) p += probe[k];
    for (int k = 0; k < kStep; ++k)
      if (wins(best[k], m)) m = best[k];
    if (p == p) {  // no NaN or infinity in the vector part
      index_t at = n;
      for (int k = 0; k < kStep; ++k)
        if (best[k] == m && first[k] < at) at = first[k];
      for (; j < n; ++j) {  // the tail; a NaN here sends the row to the exact rule
        const T v = x[j];
        if (v != v) break;
        if (wins(v, m)) {
          m = v;
          at = j;
        }
      }
      if (j == n) {
        *value = x[at];
        if (index) *index = at;
        return;
      }
    }
  } else if (n < kStep) {
    index_t at = 0;  // short row: a plain scan unless there is a NaN
    index_t j = 1;
    for (; j < n && x[j] == x[j] && x[0] == x[0]; ++j)
      if (wins(x[j], x[at])) at = j;
    if (j == n) {
      *value = x[at];
      if (index) *index = at;
      return;
    }
  }
  index_t at = 0;
  for (index_t i = 1; i < n; ++i)
    if (tensor_math::better<kOp>(x[i], i, x[at], at)) at = i;
  *value = x[at];
  if (index) *index = at;
}

#if defined(__AVX512F__)
// The AVX-512 float row max / min (NNFAST_TENSOR_ARGMAX): the same answer as row_extreme (the
// extreme and its first index) from 4 zmm a step in place of 2 -- compare to a k-mask, masked
// moves of value and step, and a NaN probe of one unordered compare per pair of vectors
// (row_extreme's v * 0 sum took a multiply and an add per vector) -- and a vector epilogue
// (a masked tail, reduce max, a masked reduce min of the indices) where row_extreme went
// through 32 scalar lanes and a scalar tail: rows of 1024 spent a third of their time there.
// False (nothing written) when the row holds a NaN: the caller's exact rule then decides.
template <ReduceOp kOp>
bool row_extreme_avx512(const float* x, index_t n, float* value, std::int64_t* index) {
  constexpr int kCmp = kOp == ReduceOp::Max ? _CMP_GT_OQ : _CMP_LT_OQ;
  __m512 b0 = _mm512_loadu_ps(x), b1 = _mm512_loadu_ps(x + 16), b2 = _mm512_loadu_ps(x + 32),
         b3 = _mm512_loadu_ps(x + 48);
  __m512i f0 = _mm512_setzero_si512(), f1 = f0, f2 = f0, f3 = f0;  // per lane: the step start of its extreme
  __mmask16 nan = _mm512_cmp_ps_mask(b0, b1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(b2, b3, _CMP_UNORD_Q);
  index_t j = 64;
  for (; j + 64 <= n; j += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + j), v1 = _mm512_loadu_ps(x + j + 16), v2 = _mm512_loadu_ps(x + j + 32),
                 v3 = _mm512_loadu_ps(x + j + 48);
    const __m512i jv = _mm512_set1_epi32(static_cast<int>(j));
    const __mmask16 w0 = _mm512_cmp_ps_mask(v0, b0, kCmp), w1 = _mm512_cmp_ps_mask(v1, b1, kCmp),
                    w2 = _mm512_cmp_ps_mask(v2, b2, kCmp), w3 = _mm512_cmp_ps_mask(v3, b3, kCmp);
    b0 = _mm512_mask_mov_ps(b0, w0, v0);
    b1 = _mm512_mask_mov_ps(b1, w1, v1);
    b2 = _mm512_mask_mov_ps(b2, w2, v2);
    b3 = _mm512_mask_mov_ps(b3, w3, v3);
    f0 = _mm512_mask_mov_epi32(f0, w0, jv);
    f1 = _mm512_mask_mov_epi32(f1, w1, jv);
    f2 = _mm512_mask_mov_epi32(f2, w2, jv);
    f3 = _mm512_mask_mov_epi32(f3, w3, jv);
    nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v2, v3, _CMP_UNORD_Q);
  }
  // The tail (< 64 elements), 16 a step into the accumulator its lanes belong to, masked: a lane
  // past the row never wins. Every element is still compared with a later step's index only.
  __m512* b[4] = {&b0, &b1, &b2, &b3};
  __m512i* f[4] = {&f0, &f1, &f2, &f3};
  for (int k = 0; j + 16 * k < n; ++k) {
    const index_t m = n - j - 16 * k;
    const __mmask16 valid = m >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << m) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(valid, x + j + 16 * k);
    const __mmask16 w = _mm512_mask_cmp_ps_mask(valid, v, *b[k], kCmp);
    *b[k] = _mm512_mask_mov_ps(*b[k], w, v);
    *f[k] = _mm512_mask_mov_epi32(*f[k], w, _mm512_set1_epi32(static_cast<int>(j)));
    nan |= _mm512_mask_cmp_ps_mask(valid, v, v, _CMP_UNORD_Q);
  }
  if (nan) return false;
  const __m512 e = kOp == ReduceOp::Max ? _mm512_max_ps(_mm512_max_ps(b0, b1), _mm512_max_ps(b2, b3))
                                        : _mm512_min_ps(_mm512_min_ps(b0, b1), _mm512_min_ps(b2, b3));
  const float m = kOp == ReduceOp::Max ? _mm512_reduce_max_ps(e) : _mm512_reduce_min_ps(e);
  const __m512 mv = _mm512_set1_ps(m);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512i at = _mm512_set1_epi32(0x7FFFFFFF);  // per lane: the smallest index holding the extreme
  for (int k = 0; k < 4; ++k) {
    const __mmask16 eq = _mm512_cmp_ps_mask(*b[k], mv, _CMP_EQ_OQ);
    const __m512i id = _mm512_add_epi32(*f[k], _mm512_add_epi32(lane, _mm512_set1_epi32(16 * k)));
    at = _mm512_mask_min_epi32(at, eq, at, id);
  }
  const index_t i = _mm512_reduce_min_epi32(at);
  *value = x[i];
  if (index) *index = i;
  return true;
}
#endif

template <ReduceOp kOp, bool kFast, typename T>
void row_extremes(const T* x, index_t n, index_t o0, index_t o1, T* out, std::int64_t* index) {
#if defined(__AVX512F__)
  if constexpr (kFast && std::is_same_v<T, float>) {
    if (n >= 64 && n < (index_t(1) << 30)) {
      for (index_t o = o0; o < o1; ++o) {
        const T* r = x + o * n;
        std::int64_t* id = index ? index + o : nullptr;
        if (row_extreme_avx512<kOp>(r, n, out + o, id)) continue;
        index_t at = 0;  // a NaN: the exact rule
        for (index_t i = 1; i < n; ++i)
          if (tensor_math::better<kOp>(r[i], i, r[at], at)) at = i;
        out[o] = r[at];
        if (id) *id = at;
      }
      return;
    }
  }
#endif
  for (index_t o = o0; o < o1; ++o) row_extreme<kOp>(x + o * n, n, out + o, index ? index + o : nullptr);
}

template <typename T>
void block_sum(double* acc, const T* xo, index_t j0, index_t j1, index_t inner, index_t cols) {
  for (index_t c = 0; c < cols; ++c) acc[c] = 0;
  for (index_t j = j0; j < j1; ++j) {
    const T* r = xo + j * inner;
    for (index_t c = 0; c < cols; ++c) acc[c] += static_cast<double>(r[c]);
  }
}

// The column sums' fast path (NNFAST_TENSOR_COLSUM): acc[c] = the double sum, over the
// quads of rows j0 + 4q, of (x[j][c] + x[j + 1][c]) + (x[j + 2][c] + x[j + 3][c]) formed in T,
// then the last j1 - j0 mod 4 rows one by one. As in block_sum_row, a quad costs float32 two
// roundings (at most 2^-23 (1 + 2^-24) of the quad's absolute sum) and one widening where the
// old loop widened every element (vcvtps2pd zmm: two cycles on Zen 4) and loaded / stored the
// double accumulator per row. Two quads per accumulator update (the same bits as one by one).
// The bits depend on j0, j1 only (tensor.cpp fixes the row blocks by the shape).
template <typename T>
void block_sum_quads(double* acc, const T* xo, index_t j0, index_t j1, index_t inner, index_t cols) {
  using VD = simd::Native<double>;
  constexpr int W = simd::kLanes<double>;
  using VT = simd::Vec<T, W>;
  for (index_t c = 0; c < cols; ++c) acc[c] = 0;
  auto quad = [inner](const T* r, index_t c) {
    return (simd::load<VT>(r + c) + simd::load<VT>(r + inner + c)) +
           (simd::load<VT>(r + 2 * inner + c) + simd::load<VT>(r + 3 * inner + c));
  };
  auto quad1 = [inner](const T* r, index_t c) {
    return static_cast<double>((r[c] + r[inner + c]) + (r[2 * inner + c] + r[3 * inner + c]));
  };
  index_t j = j0;
  for (; j + 8 <= j1; j += 8) {
    const T* r = xo + j * inner;
    index_t c = 0;
    for (; c + W <= cols; c += W) {
      VD a = simd::load<VD>(acc + c);
      a += widen<VD>(quad(r, c));
      a += widen<VD>(quad(r + 4 * inner, c));
      simd::store(acc + c, a);
    }
    for (; c < cols; ++c) {
      acc[c] += quad1(r, c);
      acc[c] += quad1(r + 4 * inner, c);
    }
  }
  for (; j + 4 <= j1; j += 4) {
    const T* r = xo + j * inner;
    index_t c = 0;
    for (; c + W <= cols; c += W) simd::store(acc + c, simd::load<VD>(acc + c) + widen<VD>(quad(r, c)));
    for (; c < cols; ++c) acc[c] += quad1(r, c);
  }
  for (; j < j1; ++j) {
    const T* r = xo + j * inner;
    index_t c = 0;
    for (; c + W <= cols; c += W) simd::store(acc + c, simd::load<VD>(acc + c) + widen<VD>(simd::load<VT>(r + c)));
    for (; c < cols; ++c) acc[c] += static_cast<double>(r[c]);
  }
}

// One tile of a max / min over the middle dim: rows in order, the exact rule per column.
template <ReduceOp kOp, typename T>
void col_extreme(const T* xo, index_t n, index_t inner, index_t cols, T* out, std::int64_t* index) {
  T best[kInnerTile];
  index_t at[kInnerTile];
  for (index_t c = 0; c < cols; ++c) {
    best[c] = xo[c];
    at[c] = 0;
  }
  for (index_t j = 1; j < n; ++j) {
    const T* r = xo + j * inner;
    for (index_t c = 0; c < cols; ++c)
      if (tensor_math::better<kOp>(r[c], j, best[c], at[c])) {
        best[c] = r[c];
        at[c] = j;
      }
  }
  for (index_t c = 0; c < cols; ++c) {
    out[c] = best[c];
    if (index) index[c] = at[c];
  }
}

template <typename From, typename To>
void cast_plain(To* out, const From* x, index_t n) {
  for (index_t i = 0; i < n; ++i) out[i] = static_cast<To>(x[i]);
}

// float32 <-> float64, W lanes a step (W doubles: one native register on the double
// side), from the output vector's alignment on (Stores::Aligned / Stream: tensor.cpp decides
// by the sizes); the rest, and Stores::Plain, cast_plain. The conversion rounds as
// static_cast does.
template <bool kStream, typename From, typename To>
void cast_aligned(To* out, const From* x, index_t n) {
  constexpr int W = simd::kLanes<double>;
  using VI = simd::Vec<From, W>;
  using VO = simd::Vec<To, W>;
  const index_t p = ss::peel_count<static_cast<int>(sizeof(VO))>(out, n);
  if (!ss::use_stream<static_cast<int>(sizeof(VO))>(out, n, p, 0)) {
    cast_plain(out, x, n);
    return;
  }
  cast_plain(out, x, p);
  index_t i = p;
  for (; i + 2 * W <= n; i += 2 * W) {
    const VO y0 = widen<VO>(simd::load<VI>(x + i)), y1 = widen<VO>(simd::load<VI>(x + i + W));
    ss::store_out<kStream>(out + i, y0);
    ss::store_out<kStream>(out + i + W, y1);
  }
  ss::stream_fence<kStream>();
  cast_plain(out + i, x + i, n - i);
}

template <typename From, typename To>
void cast_range(To* out, const From* x, index_t n, Stores stores) {
  if (streams(stores)) cast_aligned<true>(out, x, n);
  else if (stores == Stores::Aligned) cast_aligned<false>(out, x, n);
  else cast_plain(out, x, n);
}

template <typename T>
TensorOps<T> make_tensor_ops() {
  TensorOps<T> o;
#define NNFAST_X(E, name) o.binary[static_cast<int>(BinaryOp::E)] = &binary_range<BinaryOp::E, T>;
  NNFAST_BINARY_OPS(NNFAST_X)
#undef NNFAST_X
  o.row_sums = &row_sums<true, T>;
  o.row_sums_scalar_tail = &row_sums<false, T>;
  o.row_block_sums = &row_block_sums<T>;
  o.row_max = &row_extremes<ReduceOp::Max, false, T>;
  o.row_min = &row_extremes<ReduceOp::Min, false, T>;
  o.row_max_fast = &row_extremes<ReduceOp::Max, true, T>;
  o.row_min_fast = &row_extremes<ReduceOp::Min, true, T>;
  o.block_sum = &block_sum<T>;
  o.block_sum_quads = &block_sum_quads<T>;
  o.col_max = &col_extreme<ReduceOp::Max, T>;
  o.col_min = &col_extreme<ReduceOp::Min, T>;
  return o;
}

CastOps make_cast_ops() {
  CastOps o;
  o.f32_to_f64 = &cast_range<float, double>;
  o.f64_to_f32 = &cast_range<double, float>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(tensor_detail::TensorOps, make_tensor_ops)
NNFAST_ISA_TABLE(tensor_detail::CastOps, make_cast_ops())

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

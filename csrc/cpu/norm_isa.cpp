// Per-ISA normalization loops: compiled three times (NNFAST_ISA_NS = isa_generic,
// isa_avx2, isa_avx512) and picked at run time by norm.cpp.
//
// Written on the vector layer of core/simd.h: V is one native register of doubles
// (8 with AVX-512, 4 with AVX2, 2 with SSE2). Every loop runs one body over
// blocks of V, unrolled kS times with kS independent accumulators for the
// reductions (so the add latency is hidden; multiply-adds are explicit simd::fma), and once more for the tail
// (padded loads, partial stores); the summation order is fixed by the code, so
// no fast-math is needed. float32 data is widened to double as it is loaded: the
// statistics accumulate in double and the centring (x - mean) is done in
// double, since a float subtraction against a rounded mean of 1e4 would be off
// by ~5% of a 1e-2 std.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/simd.h"
#include "cpu/norm_internal.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace {

using norm_detail::GroupArgs;
using norm_detail::RowArgs;

constexpr int kW = simd::kLanes<double>;  // doubles per V
constexpr int kS = 4;          // unroll / independent accumulators per reduction

// Everything below is forced inline so vectors stay in registers.
#define NORM_INLINE inline __attribute__((always_inline))
#define NORM_FLAT __attribute__((flatten))

using V = simd::Native<double>;
using VF = simd::Vec<float, kW>;

NORM_INLINE V splat(double a) { return V{} + a; }
NORM_INLINE double hsum(V v) {
  double t = 0;
  for (int k = 0; k < kW; ++k) t += v[k];
  return t;
}
// Sum of kS accumulators, lane by lane, in a fixed order.
NORM_INLINE double hsum(const V* a) {
  V t = a[0];
  for (int k = 1; k < kS; ++k) t += a[k];
  return hsum(t);
}
NORM_INLINE index_t imin(index_t a, index_t b) { return a < b ? a : b; }

NORM_INLINE V load(const double* p) { return simd::load<V>(p); }
NORM_INLINE V load(const float* p) {
#if defined(__AVX512F__)
  // GCC 12 lowers the 8-float -> 8-double vector conversion as two 128-bit halves and
  // an insert (four instructions); one vcvtps2pd zmm, m256 does it. Same values.
  return reinterpret_cast<V>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#else
  return simd::convert<V>(simd::load<VF>(p));
#endif
}
NORM_INLINE void store(double* p, V v) { simd::store(p, v); }
NORM_INLINE void store(float* p, V v) { simd::store(p, simd::convert<VF>(v)); }

// Full block of kW / tail of n < kW (lanes past n read as `pad`, never written).
struct Full {
  template <typename T>
  NORM_INLINE V ld(const T* p, double = 0.0) const { return load(p); }
  template <typename T>
  NORM_INLINE void st(T* p, V v) const { store(p, v); }
};
struct Tail {
  index_t n;
  template <typename T>
  NORM_INLINE V ld(const T* p, double pad = 0.0) const {
#if defined(__AVX512F__)
    // One masked load: lane-by-lane inserts go through the stack, and the vector
    // read back stalls on store forwarding (once per run of L in the channel loops).
    const __mmask8 m = static_cast<__mmask8>((1u << n) - 1);
    if constexpr (sizeof(T) == 4)
      return reinterpret_cast<V>(_mm512_mask_cvtps_pd(reinterpret_cast<__m512d>(splat(pad)), m,
                                                      _mm256_maskz_loadu_ps(m, p)));
    else
      return reinterpret_cast<V>(_mm512_mask_loadu_pd(reinterpret_cast<__m512d>(splat(pad)), m, p));
#else
    V v = splat(pad);
    for (index_t k = 0; k < n; ++k) v[k] = static_cast<double>(p[k]);
    return v;
#endif
  }
  template <typename T>
  NORM_INLINE void st(T* p, V v) const {
#if defined(__AVX512F__)
    const __mmask8 m = static_cast<__mmask8>((1u << n) - 1);
    if constexpr (sizeof(T) == 4)
      _mm256_mask_storeu_ps(p, m, _mm512_cvtpd_ps(reinterpret_cast<__m512d>(v)));
    else
      _mm512_mask_storeu_pd(p, m, reinterpret_cast<__m512d>(v));
#else
    for (index_t k = 0; k < n; ++k) p[k] = static_cast<T>(v[k]);
#endif
  }
};

// Accumulator slot of an unrolled body (a compile-time index).
template <int S>
struct Slot {
  static constexpr int v = S;
};

template <class F, int... S>
NORM_INLINE void unrolled(index_t i, F& body, std::integer_sequence<int, S...>) {
  (body(i + S * kW, Full{}, Slot<S>{}), ...);
}

// body(i, io, slot) over [0, n) in blocks of kW: kS blocks per iteration (slot
// 0..kS-1), then single blocks and the tail in slot 0. io loads / stores kW
// lanes or the tail.
template <class F>
NORM_INLINE void blocks(index_t n, F&& body) {
  index_t i = 0;
  for (; i + kS * kW <= n; i += kS * kW) unrolled(i, body, std::make_integer_sequence<int, kS>{});
  for (; i + kW <= n; i += kW) body(i, Full{}, Slot<0>{});
  if (i < n) body(i, Tail{n - i}, Slot<0>{});
}

// s1 += sum(x - K), s2 += sum((x - K)^2): one pass, stable while K is near the data.
template <typename T>
NORM_INLINE void shifted_sums(const T* x, index_t n, double K, double* s1, double* s2) {
  V a1[kS] = {}, a2[kS] = {};
  const V k = splat(K);
  blocks(n, [&](index_t i, auto io, auto sl) {
    const V d = io.ld(x + i, K) - k;  // padded lanes give d = 0
    a1[sl.v] += d;
    a2[sl.v] = simd::fma(d, d, a2[sl.v]);
  });
  *s1 += hsum(a1);
  *s2 += hsum(a2);
}

using norm_detail::finish_stats;

template <typename T>
NORM_INLINE double sum_squares(const T* x, index_t n) {
  V a[kS] = {};
  blocks(n, [&](index_t i, auto io, auto sl) {
    const V d = io.ld(x + i);
    a[sl.v] = simd::fma(d, d, a[sl.v]);
  });
  return hsum(a);
}

// p += a, q += a * (x - m) over a contiguous run, into the caller's kS accumulators
// (a channel's N runs share them: one horizontal sum per channel, not per run of L).
template <typename T>
NORM_INLINE void run_sums_acc(V* p, V* q, const T* a, const T* x, double m, index_t n) {
  const V mv = splat(m);
  blocks(n, [&](index_t i, auto io, auto sl) {
    const V ai = io.ld(a + i);
    p[sl.v] += ai;
    q[sl.v] = simd::fma(ai, (io.ld(x + i) - mv), q[sl.v]);
  });
}

// sa += sum(a), sax += sum(a * (x - m)) over a contiguous run.
template <typename T>
NORM_INLINE void run_sums(const T* a, const T* x, double m, index_t n, double* sa, double* sax) {
  V p[kS] = {}, q[kS] = {};
  run_sums_acc(p, q, a, x, m, n);
  *sa += hsum(p);
  *sax += hsum(q);
}

// The same for shifted_sums: d = x - K summed and squared into the caller's accumulators.
template <typename T>
NORM_INLINE void shifted_sums_acc(V* a1, V* a2, const T* x, index_t n, double K) {
  const V k = splat(K);
  blocks(n, [&](index_t i, auto io, auto sl) {
    const V d = io.ld(x + i, K) - k;  // padded lanes give d = 0
    a1[sl.v] += d;
    a2[sl.v] = simd::fma(d, d, a2[sl.v]);
  });
}

// ---- float32 write passes run in float (twice the lanes of double). The mean
// is split m = mh + ml into two floats, so (x - mh) - ml is the centred value
// to within float rounding of the result itself, even for mean 1e4, std 1e-2.
constexpr int kF = 2 * kW;
using VN = simd::Vec<float, kF>;

NORM_INLINE VN fsplat(float a) { return VN{} + a; }
NORM_INLINE VN fload(const float* p) { return simd::load<VN>(p); }
NORM_INLINE void fstore(float* p, VN v) { simd::store(p, v); }

// Non-temporal store of one VN to a sizeof(VN)-aligned p: for outputs too large
// to stay in the L3, it skips the read-for-ownership of every line (one memory
// transfer per output line instead of two) and leaves the L3 to the inputs.
NORM_INLINE void fstream(float* p, VN v) {
#if defined(__AVX512F__)
  static_assert(sizeof(VN) == 64);
  _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
#elif defined(__AVX__)
  static_assert(sizeof(VN) == 32);
  _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
#elif defined(__SSE2__)
  static_assert(sizeof(VN) == 16);
  _mm_stream_ps(p, reinterpret_cast<__m128>(v));
#else
  fstore(p, v);
#endif
}

// Streaming stores are weakly ordered: publish them before the threads join.
NORM_INLINE void stream_fence(bool stream) {
#if defined(__SSE2__)
  if (stream) _mm_sfence();
#endif
}

// y[i] = one(i) for i in [0, n), kF at a time through vec(i) (the same value in
// vector lanes). With stream, the elements before y's first VN-aligned address
// go through one() and the rest are streamed.
// vec(i, ld) reads its operands through ld: whole VNs (FullF) or, with AVX-512, the
// first lanes of a head / tail (MaskF; the other lanes read as 0 and are not stored).
struct FullF {
  NORM_INLINE VN operator()(const float* p) const { return fload(p); }
};
#if defined(__AVX512F__)
struct MaskF {
  __mmask16 m;
  NORM_INLINE VN operator()(const float* p) const { return reinterpret_cast<VN>(_mm512_maskz_loadu_ps(m, p)); }
};
#endif

#if defined(__AVX512F__)
// NNFAST_NORM_MASKED=0: write_f32's scalar head / tail on AVX-512 too (A/B; read once
// per process, as the per-row branch must stay cheap).
static const bool g_masked_tails = env_switch_on("NNFAST_NORM_MASKED");
#endif

// The body of write_f32: y[i] = vec(i) over whole VNs (streamed past the scalar head
// when stream); returns where the tail starts.
template <class Vec, class One>
NORM_INLINE index_t write_f32_body(float* y, index_t n, bool stream, Vec& vec, One& one) {
  index_t i = 0;
  const auto addr = reinterpret_cast<uintptr_t>(y);
  if (stream && addr % sizeof(float) == 0) {
    // The head stays scalar even with AVX-512: a masked 64-byte store that spans the
    // first streamed line cost 35 % more time at 64 MB (fwd 12.3 -> 16.9 ms, 1-thread CPU time).
    const index_t peel = imin(n, static_cast<index_t>((sizeof(VN) - addr % sizeof(VN)) % sizeof(VN) / sizeof(float)));
    for (; i < peel; ++i) y[i] = one(i);
    for (; i + kF <= n; i += kF) fstream(y + i, vec(i, FullF{}));
  } else {
    for (; i + kF <= n; i += kF) fstore(y + i, vec(i, FullF{}));
  }
  return i;
}

template <class Vec, class One>
NORM_INLINE void write_f32(float* y, index_t n, bool stream, Vec vec, One one) {
  index_t i = write_f32_body(y, n, stream, vec, one);
#if defined(__AVX512F__)
  // The tail as one masked vector (the lanes of the body's arithmetic): scalar heads /
  // tails of up to 2 x 15 values per row were ~15 % of the output pass on (N, C, L)
  // stretches of a few hundred values.
  static_assert(sizeof(VN) == 64);
  if (g_masked_tails) {
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
      _mm512_mask_storeu_ps(y + i, m, reinterpret_cast<__m512>(vec(i, MaskF{m})));
    }
    return;
  }
#endif
  for (; i < n; ++i) y[i] = one(i);
}

struct SplitMean {
  float hi, lo;
  explicit SplitMean(double m) : hi(static_cast<float>(m)), lo(static_cast<float>(m - static_cast<double>(hi))) {}
};

// Scalar a * b + c rounded as simd::fma rounds the vector lanes (heads / tails).
NORM_INLINE float fmaf_lane(float a, float b, float c) {
#if defined(__FMA__) || defined(__AVX512F__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}
using norm_detail::fold_enabled;

// The next rows' operands, prefetched while a row's dx pass runs from L1 (the hardware
// prefetchers see no misses then, and the next group's 2 G row streams would each start
// cold): one touch per 64-byte line of each, as the pass writes one line. Null: none.
// Not in the forward: its next row continues the stream the prefetchers already follow
// (measured neutral, 0.93-1.06 at 16 / 64 MB).
struct Ahead {
  const float* p = nullptr;
  const float* q = nullptr;
  NORM_INLINE void at(index_t i) const {
    if (p) __builtin_prefetch(p + i);
    if (q) __builtin_prefetch(q + i);
  }
};

// y = ((x - m) * s) [* w] + (b or bc).
template <bool HW, bool HB>
NORM_INLINE void normalize_f32(float* y, const float* x, const float* w, const float* b, double m, double s,
                               double bc, index_t n, bool stream = false) {
  const SplitMean ms(m);
  const float sf = static_cast<float>(s), bf = static_cast<float>(bc);
  const VN mh = fsplat(ms.hi), ml = fsplat(ms.lo), sv = fsplat(sf), bv = fsplat(bf);
  write_f32(
      y, n, stream,
      [&](index_t i, auto ld) {
        VN v = ((ld(x + i) - mh) - ml) * sv;
        if (HW) v *= ld(w + i);
        return v + (HB ? ld(b + i) : bv);
      },
      [&](index_t i) {
        float v = ((x[i] - ms.hi) - ms.lo) * sf;
        if (HW) v *= w[i];
        return v + (HB ? b[i] : bf);
      });
}

// dx = s * (g - cg) - (s * cx) * xhat, g = dy [* w], xhat = ((x - m) * s). Fold (see
// fold_enabled): the same as fma(s, g, fma(-s^2 cx, x - mh, s^2 cx ml - s cg)), three
// operations instead of six (x - mh exact near the mean, as in affine_rows_f32).
template <bool HW, bool Fold>
NORM_INLINE void row_dx_f32(float* dx, const float* dy, const float* x, const float* w, double m, double s, double cg,
                            double cx, index_t n, bool stream = false, Ahead ah = {}) {
  const SplitMean ms(m);
  if constexpr (Fold) {
    const double k2 = s * s * cx;
    const float sf = static_cast<float>(s), nk = static_cast<float>(-k2),
                c0 = static_cast<float>(k2 * static_cast<double>(ms.lo) - s * cg);
    const VN mh = fsplat(ms.hi), sv = fsplat(sf), nkv = fsplat(nk), c0v = fsplat(c0);
    write_f32(
        dx, n, stream,
        [&](index_t i, auto ld) {
          ah.at(i);
          const VN g = HW ? ld(dy + i) * ld(w + i) : ld(dy + i);
          return simd::fma(sv, g, simd::fma(nkv, ld(x + i) - mh, c0v));
        },
        [&](index_t i) {
          const float g = HW ? dy[i] * w[i] : dy[i];
          return fmaf_lane(sf, g, fmaf_lane(nk, x[i] - ms.hi, c0));
        });
    return;
  }
  const float sf = static_cast<float>(s), cgf = static_cast<float>(cg), kf = static_cast<float>(s * cx);
  const VN mh = fsplat(ms.hi), ml = fsplat(ms.lo), sv = fsplat(sf), cgv = fsplat(cgf), kv = fsplat(kf);
  write_f32(
      dx, n, stream,
      [&](index_t i, auto ld) {
        ah.at(i);
        const VN g = HW ? ld(dy + i) * ld(w + i) : ld(dy + i);
        const VN xh = ((ld(x + i) - mh) - ml) * sv;
        return sv * (g - cgv) - kv * xh;
      },
      [&](index_t i) {
        const float g = HW ? dy[i] * w[i] : dy[i];
        const float xh = ((x[i] - ms.hi) - ms.lo) * sf;
        return sf * (g - cgf) - kf * xh;
      });
}

// y = (x - m) * s + b over a contiguous run.
template <typename T>
NORM_INLINE void run_affine(T* y, const T* x, double m, double s, double b, index_t n) {
  if constexpr (sizeof(T) == 4) {
    normalize_f32<false, false>(y, x, nullptr, nullptr, m, s, b, n);
    return;
  }
  const V mv = splat(m), sv = splat(s), bv = splat(b);
  blocks(n, [&](index_t i, auto io, auto sl) { io.st(y + i, simd::fma(io.ld(x + i) - mv, sv, bv)); });
}

// y = al * a + be * (x - m) + ga in float, the mean split as in normalize_f32.
NORM_INLINE void affine2_f32(float* y, const float* a, const float* x, double al, double be, double m, double ga,
                             index_t n) {
  const SplitMean ms(m);
  const float alf = static_cast<float>(al), bef = static_cast<float>(be), gaf = static_cast<float>(ga);
  const VN mh = fsplat(ms.hi), ml = fsplat(ms.lo), alv = fsplat(alf), bev = fsplat(bef), gav = fsplat(gaf);
  index_t i = 0;
  for (; i + kF <= n; i += kF) fstore(y + i, alv * fload(a + i) + (((fload(x + i) - mh) - ml) * bev + gav));
  for (; i < n; ++i) y[i] = alf * a[i] + (((x[i] - ms.hi) - ms.lo) * bef + gaf);
}

// y = al * a + be * (x - m) + ga over a contiguous run.
template <typename T>
NORM_INLINE void run_affine2(T* y, const T* a, const T* x, double al, double be, double m, double ga, index_t n) {
  if constexpr (sizeof(T) == 4) {
    affine2_f32(y, a, x, al, be, m, ga, n);
    return;
  }
  const V alv = splat(al), bev = splat(be), mv = splat(m), gav = splat(ga);
  blocks(n, [&](index_t i, auto io, auto sl) { io.st(y + i, simd::fma(alv, io.ld(a + i), simd::fma(bev, io.ld(x + i) - mv, gav))); });
}

// The same with per-element coefficients (channels along the run, L == 1).
template <typename T>
NORM_INLINE void run_affine_vec(T* y, const T* x, const double* m, const double* s, const double* b, index_t n) {
  blocks(n, [&](index_t i, auto io, auto sl) { io.st(y + i, simd::fma(io.ld(x + i) - io.ld(m + i), io.ld(s + i), io.ld(b + i))); });
}

template <typename T>
NORM_INLINE void run_affine2_vec(T* y, const T* a, const T* x, const double* al, const double* be, const double* m,
                            const double* ga, index_t n) {
  blocks(n, [&](index_t i, auto io, auto sl) {
    io.st(y + i, simd::fma(io.ld(al + i), io.ld(a + i), simd::fma(io.ld(be + i), io.ld(x + i) - io.ld(m + i), io.ld(ga + i))));
  });
}

// ------------------------------------------------------------------ layer / RMS norm rows
template <typename T, bool HW, bool HB>
NORM_INLINE void row_normalize(T* y, const T* x, const T* w, const T* b, double m, double s, index_t D,
                               bool stream) {
  if constexpr (sizeof(T) == 4) {
    normalize_f32<HW, HB>(y, x, w, b, m, s, 0.0, D, stream);
    return;
  }
  const V mv = splat(m), sv = splat(s);
  blocks(D, [&](index_t j, auto io, auto sl) {
    V v = (io.ld(x + j) - mv) * sv;
    if (HW) v *= io.ld(w + j);
    if (HB) v += io.ld(b + j);
    io.st(y + j, v);
  });
}

// Pass 1 of the row backward: sg = sum(g), sgx = sum(g * xhat) with g = dy * w;
// with HP also pw += dy * xhat, pb += dy (the weight / bias partial sums).
template <typename T, bool HW, bool HP>
NORM_INLINE void row_reduce(const T* dy, const T* x, const T* w, double m, double s, index_t D, double* pw, double* pb,
                double* sg, double* sgx) {
  V ag[kS] = {}, ax[kS] = {};
  const V mv = splat(m), sv = splat(s);
  blocks(D, [&](index_t j, auto io, auto sl) {
    const V d = io.ld(dy + j);  // padded lanes: d = 0 adds nothing
    const V xh = (io.ld(x + j) - mv) * sv;
    const V g = HW ? d * io.ld(w + j) : d;
    ag[sl.v] += g;
    ax[sl.v] = simd::fma(g, xh, ax[sl.v]);
    if (HP) {
      io.st(pw + j, io.ld(pw + j) + d * xh);
      io.st(pb + j, io.ld(pb + j) + d);
    }
  });
  *sg = hsum(ag);
  *sgx = hsum(ax);
}

// dx = s * (g - cg - xhat * cx), g = dy * w, xhat = (x - m) * s.
template <typename T, bool HW>
NORM_INLINE void row_dx(T* dx, const T* dy, const T* x, const T* w, double m, double s, double cg, double cx, index_t D,
                        bool stream, bool fold, const T* next_dy, const T* next_x) {
  if constexpr (sizeof(T) == 4) {
    if (fold) row_dx_f32<HW, true>(dx, dy, x, w, m, s, cg, cx, D, stream, Ahead{next_dy, next_x});
    else row_dx_f32<HW, false>(dx, dy, x, w, m, s, cg, cx, D, stream, Ahead{next_dy, next_x});
    return;
  }
  const V mv = splat(m), sv = splat(s), cgv = splat(cg), cxv = splat(cx);
  blocks(D, [&](index_t j, auto io, auto sl) {
    const V d = io.ld(dy + j);
    const V g = HW ? d * io.ld(w + j) : d;
    const V xh = (io.ld(x + j) - mv) * sv;
    io.st(dx + j, sv * (g - cgv - xh * cxv));
  });
}

// With the weight / bias partial sums, rows go in groups of G: one column pass
// reads the group's dy and x once, forms each row's sg / sgx and adds the
// group's dy * xhat and dy to pw / pb, which are loaded and stored once per
// group instead of once per row (that read-modify-write cost as much as the
// whole dx pass). The rows are added to pw / pb in order within the group.
constexpr int kRowGroup = 4;

template <typename T, bool HW, bool HB, int G>
NORM_INLINE void rows_reduce_group(const T* dy, const T* x, const T* w, const double* m, const double* s, index_t D,
                                   double* pw, double* pb, double* sg, double* sgx) {
  V ag[G], ax[G], mv[G], sv[G];
  for (int g = 0; g < G; ++g) ag[g] = V{}, ax[g] = V{}, mv[g] = splat(m[g]), sv[g] = splat(s[g]);
  blocks(D, [&](index_t j, auto io, auto) {
    V p = io.ld(pw + j), q = HB ? io.ld(pb + j) : V{};
    const V wv = HW ? io.ld(w + j) : V{};
    for (int g = 0; g < G; ++g) {
      const V d = io.ld(dy + g * D + j);  // padded lanes: d = 0 adds nothing
      const V xh = (io.ld(x + g * D + j) - mv[g]) * sv[g];
      const V gg = HW ? d * wv : d;
      ag[g] += gg;
      ax[g] = simd::fma(gg, xh, ax[g]);
      p = simd::fma(d, xh, p);
      if (HB) q += d;
    }
    io.st(pw + j, p);
    if (HB) io.st(pb + j, q);
  });
  for (int g = 0; g < G; ++g) sg[g] = hsum(ag[g]), sgx[g] = hsum(ax[g]);
}

// float32 pass 1 in float lanes (RowArgs::f32sum, NNFAST_NORM_F32SUM): the double pass
// widens dy and x (two conversions per 8 values on the two 512-bit FP ports) and works at
// half the lanes; here 16 lanes per op and no conversion. Accuracy: x - mh is exact near
// the mean (Sterbenz) and the low part of the mean goes into the constant of one
// multiply-add, so xhat is good to float rounding even for mean 1e4; each float lane
// sums at most kSumChunk / kF values before the lanes are added into double (row sums)
// and the group's products (<= kRowGroup per column) go to the double pw / pb. Values
// agree with the double pass to float rounding (tests: against the float64 kernels).
constexpr index_t kSumChunk = 256;

// The two halves of a float vector widened to double (lanes in order).
// Intrinsics: a memcpy of the halves took v's address and kept the accumulators on the stack.
NORM_INLINE void widen(VN v, V& lo, V& hi) {
#if defined(__AVX512F__)
  const __m512 f = reinterpret_cast<__m512>(v);
  lo = reinterpret_cast<V>(_mm512_cvtps_pd(_mm512_castps512_ps256(f)));
  hi = reinterpret_cast<V>(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
#elif defined(__AVX__)
  const __m256 f = reinterpret_cast<__m256>(v);
  lo = reinterpret_cast<V>(_mm256_cvtps_pd(_mm256_castps256_ps128(f)));
  hi = reinterpret_cast<V>(_mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
#elif defined(__SSE2__)
  const __m128 f = reinterpret_cast<__m128>(v);
  lo = reinterpret_cast<V>(_mm_cvtps_pd(f));
  hi = reinterpret_cast<V>(_mm_cvtps_pd(_mm_movehl_ps(f, f)));
#else
  for (int k = 0; k < kW; ++k) lo[k] = v[k], hi[k] = v[kW + k];
#endif
}
NORM_INLINE void add_widened(double* p, VN v) {
  V lo, hi;
  widen(v, lo, hi);
  store(p, load(p) + lo);
  store(p + kW, load(p + kW) + hi);
}
// Lanes of a float accumulator added in double, in a fixed order.
NORM_INLINE double hsum_f(VN v) {
  V lo, hi;
  widen(v, lo, hi);
  return hsum(lo + hi);
}

// G rows of D: sg[g] = sum g, sgx[g] = sum g * xhat (g = dy [* w]); with HP also
// pw += sum over the G rows of dy * xhat, and with HB pb += sum of dy.
template <bool HW, bool HP, bool HB, int G>
NORM_INLINE void rows_reduce_f32(const float* dy, const float* x, const float* w, const double* m, const double* s,
                                 index_t D, double* pw, double* pb, double* sg, double* sgx) {
  VN mh[G], sv[G], cv[G];
  double ag[G], ax[G];
  for (int g = 0; g < G; ++g) {
    const SplitMean ms(m[g]);
    // xhat = (x - mh) s - ml s = fma(x - mh, s, -ml s)
    mh[g] = fsplat(ms.hi);
    sv[g] = fsplat(static_cast<float>(s[g]));
    cv[g] = fsplat(static_cast<float>(-static_cast<double>(ms.lo) * s[g]));
    ag[g] = 0.0, ax[g] = 0.0;
  }
  const index_t Dv = D - D % kF;
  index_t j = 0;
  while (j < Dv) {
    const index_t je = imin(Dv, j + kSumChunk);
    VN fg[G], fx[G];
    for (int g = 0; g < G; ++g) fg[g] = VN{}, fx[g] = VN{};
    for (; j < je; j += kF) {
      VN p{}, q{};
      const VN wv = HW ? fload(w + j) : VN{};
      for (int g = 0; g < G; ++g) {
        const VN d = fload(dy + g * D + j);
        const VN xh = simd::fma(fload(x + g * D + j) - mh[g], sv[g], cv[g]);
        const VN gg = HW ? d * wv : d;
        fg[g] += gg;
        fx[g] = simd::fma(gg, xh, fx[g]);
        if (HP) p = simd::fma(d, xh, p);
        if (HB) q += d;
      }
      if (HP) add_widened(pw + j, p);
      if (HB) add_widened(pb + j, q);
    }
    for (int g = 0; g < G; ++g) ag[g] += hsum_f(fg[g]), ax[g] += hsum_f(fx[g]);
  }
  // Column tail (< kF) in double.
  for (; j < D; ++j) {
    const double wj = HW ? static_cast<double>(w[j]) : 1.0;
    double pj = 0, qj = 0;
    for (int g = 0; g < G; ++g) {
      const double d = dy[g * D + j], xh = (static_cast<double>(x[g * D + j]) - m[g]) * s[g], gg = d * wj;
      ag[g] += gg;
      ax[g] += gg * xh;
      pj += d * xh;
      qj += d;
    }
    if (HP) pw[j] += pj;
    if (HB) pb[j] += qj;
  }
  for (int g = 0; g < G; ++g) sg[g] = ag[g], sgx[g] = ax[g];
}

// Row n of p (rows of D) when the write passes prefetch (RowArgs::prefetch) and n < r1, else null.
template <typename T>
NORM_INLINE const T* ahead_row(const RowArgs<T>& a, const T* p, index_t n, index_t r1) {
  return a.prefetch && n < r1 ? p + n * a.D : nullptr;
}

// F32: pass 1 in float lanes (rows_reduce_f32; float32 with RowArgs::f32sum); pw null
// (F32 only): no weight / bias partial sums.
template <typename T, bool HW, int G, bool F32 = false>
NORM_INLINE void row_backward_group(const RowArgs<T>& a, index_t r, index_t r1, double* pw, double* pb) {
  const index_t D = a.D;
  const double inv_d = D > 0 ? 1.0 / static_cast<double>(D) : 0.0;
  double m[G], s[G], sg[G], sgx[G];
  for (int g = 0; g < G; ++g) m[g] = a.rms ? 0.0 : a.mean[r + g], s[g] = a.rstd[r + g];
  const T* dy = a.dy + r * D;
  const T* x = a.x + r * D;
  // pb null: no bias gradient wanted (RMS norm), so no dy column sums.
  if constexpr (F32) {
    if (!pw) rows_reduce_f32<HW, false, false, G>(dy, x, a.weight, m, s, D, pw, pb, sg, sgx);
    else if (pb) rows_reduce_f32<HW, true, true, G>(dy, x, a.weight, m, s, D, pw, pb, sg, sgx);
    else rows_reduce_f32<HW, true, false, G>(dy, x, a.weight, m, s, D, pw, pb, sg, sgx);
  } else if (pb) {
    rows_reduce_group<T, HW, true, G>(dy, x, a.weight, m, s, D, pw, pb, sg, sgx);
  } else {
    rows_reduce_group<T, HW, false, G>(dy, x, a.weight, m, s, D, pw, pb, sg, sgx);
  }
  if (!a.dx) return;
  // Row g's dx pass prefetches row g of the next group.
  for (int g = 0; g < G; ++g)
    row_dx<T, HW>(a.dx + (r + g) * D, dy + g * D, x + g * D, a.weight, m[g], s[g], a.rms ? 0.0 : sg[g] * inv_d,
                  sgx[g] * inv_d, D, a.stream, a.fold, ahead_row(a, a.dy, r + G + g, r1),
                  ahead_row(a, a.x, r + G + g, r1));
}

template <typename T, bool HW, bool HP>
NORM_INLINE void row_backward_impl(const RowArgs<T>& a, index_t r0, index_t r1, double* pw, double* pb) {
  const index_t D = a.D;
  const double inv_d = D > 0 ? 1.0 / static_cast<double>(D) : 0.0;
  if constexpr (sizeof(T) == 4) {
    if (a.f32sum) {
      // Groups of rows with or without the partial sums (HP false: pw, pb null).
      index_t r = r0;
      for (; r + kRowGroup <= r1; r += kRowGroup) row_backward_group<T, HW, kRowGroup, true>(a, r, r1, pw, pb);
      for (; r < r1; ++r) row_backward_group<T, HW, 1, true>(a, r, r1, pw, pb);
      return;
    }
  }
  if constexpr (HP) {
    index_t r = r0;
    for (; r + kRowGroup <= r1; r += kRowGroup) row_backward_group<T, HW, kRowGroup>(a, r, r1, pw, pb);
    for (; r < r1; ++r) row_backward_group<T, HW, 1>(a, r, r1, pw, pb);
    return;
  }
  for (index_t r = r0; r < r1; ++r) {
    const T* dy = a.dy + r * D;
    const T* x = a.x + r * D;
    const double m = a.rms ? 0.0 : a.mean[r];
    const double s = a.rstd[r];
    double sg, sgx;
    row_reduce<T, HW, HP>(dy, x, a.weight, m, s, D, pw, pb, &sg, &sgx);
    if (a.dx)
      row_dx<T, HW>(a.dx + r * D, dy, x, a.weight, m, s, a.rms ? 0.0 : sg * inv_d, sgx * inv_d, D, a.stream, a.fold,
                    ahead_row(a, a.dy, r + 1, r1), ahead_row(a, a.x, r + 1, r1));
  }
}

// float32 row statistics in float lanes (RowArgs::f32sum in the forward, NNFAST_NORM_ROWSTATS):
// 4 float accumulators per sum over chunks of kRowChunk columns (16 values per lane), each chunk
// added into double; the tail (< kF columns) in double. With Sq: s1 = sum (x - K), s2 = sum
// (x - K)^2; without: s1 = sum x, s2 = sum x^2.
constexpr index_t kRowChunk = 1024;

template <bool Sq>
NORM_INLINE void row_sums_f32(const float* x, index_t n, float K, double* s1, double* s2) {
  const VN kv = fsplat(K);
  V d1{}, d2{};
  const index_t nv = n - n % kF;
  index_t i = 0;
  while (i < nv) {
    const index_t ie = imin(nv, i + kRowChunk);
    VN p[4] = {}, q[4] = {};
    auto one = [&](index_t j, int k) {
      const VN d = Sq ? fload(x + j) - kv : fload(x + j);
      p[k] += d;
      q[k] = simd::fma(d, d, q[k]);
    };
    for (; i + 4 * kF <= ie; i += 4 * kF) one(i, 0), one(i + kF, 1), one(i + 2 * kF, 2), one(i + 3 * kF, 3);
    for (; i < ie; i += kF) one(i, 0);
    const VN pp = (p[0] + p[1]) + (p[2] + p[3]), qq = (q[0] + q[1]) + (q[2] + q[3]);
    V lo, hi;
    widen(pp, lo, hi);
    d1 += lo + hi;
    widen(qq, lo, hi);
    d2 += lo + hi;
  }
  double t1 = hsum(d1), t2 = hsum(d2);
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - (Sq ? static_cast<double>(K) : 0.0);
    t1 += d;
    t2 += d * d;
  }
  *s1 = t1, *s2 = t2;
}

// Mean (not rms) and var / mean square of a float32 row: the mean from plain sums first, then
// the shifted sums around it (K = the rounded mean: no cancellation in the variance), the row
// re-read from L1.
NORM_INLINE void row_stats_f32(const float* x, index_t D, bool rms, double* m, double* v) {
  double s1, s2;
  if (rms) {
    row_sums_f32<false>(x, D, 0.0f, &s1, &s2);
    *m = 0.0;
    *v = D > 0 ? s2 / static_cast<double>(D) : 0.0;
    return;
  }
  row_sums_f32<false>(x, D, 0.0f, &s1, &s2);
  const float K = D > 0 ? static_cast<float>(s1 / static_cast<double>(D)) : 0.0f;
  row_sums_f32<true>(x, D, K, &s1, &s2);
  finish_stats(static_cast<double>(K), s1, s2, D, m, v);
}

template <typename T>
NORM_FLAT void norm_row_forward(const RowArgs<T>& a, index_t r0, index_t r1) {
  const index_t D = a.D;
  for (index_t r = r0; r < r1; ++r) {
    const T* x = a.x + r * D;
    double m = 0, s;
    bool f32_stats = false;
    if constexpr (sizeof(T) == 4) {
      if (a.f32sum) {
        double v;
        row_stats_f32(x, D, a.rms, &m, &v);
        s = 1.0 / std::sqrt(v + a.eps);
        if (!a.rms) a.mean[r] = m;
        f32_stats = true;
      }
    }
    if (!f32_stats && a.rms) {
      const double ms = D > 0 ? sum_squares(x, D) / static_cast<double>(D) : 0.0;
      s = 1.0 / std::sqrt(ms + a.eps);
    } else if (!f32_stats) {
      double s1 = 0, s2 = 0, var;
      const double K = D > 0 ? static_cast<double>(x[0]) : 0.0;
      shifted_sums(x, D, K, &s1, &s2);
      finish_stats(K, s1, s2, D, &m, &var);
      s = 1.0 / std::sqrt(var + a.eps);
      a.mean[r] = m;
    }
    a.rstd[r] = s;
    T* y = a.y + r * D;
    if (a.weight && a.bias) row_normalize<T, true, true>(y, x, a.weight, a.bias, m, s, D, a.stream);
    else if (a.weight) row_normalize<T, true, false>(y, x, a.weight, a.bias, m, s, D, a.stream);
    else if (a.bias) row_normalize<T, false, true>(y, x, a.weight, a.bias, m, s, D, a.stream);
    else row_normalize<T, false, false>(y, x, a.weight, a.bias, m, s, D, a.stream);
  }
  stream_fence(a.stream);
}

template <typename T>
NORM_FLAT void norm_row_backward(const RowArgs<T>& a, index_t r0, index_t r1, double* pw, double* pb) {
  const bool hp = pw != nullptr;
  if (a.weight) {
    if (hp) row_backward_impl<T, true, true>(a, r0, r1, pw, pb);
    else row_backward_impl<T, true, false>(a, r0, r1, pw, pb);
  } else {
    if (hp) row_backward_impl<T, false, true>(a, r0, r1, pw, pb);
    else row_backward_impl<T, false, false>(a, r0, r1, pw, pb);
  }
  stream_fence(a.stream);
}

// ------------------------------------------------------------------ group norm rows
template <typename T>
NORM_FLAT void norm_group_forward(const GroupArgs<T>& a, index_t r0, index_t r1) {
  const index_t Cg = a.C / a.G, L = a.L, D = Cg * L;
  for (index_t r = r0; r < r1; ++r) {
    const index_t n = r / a.G, g = r % a.G;
    const index_t off = (n * a.C + g * Cg) * L;
    const T* x = a.x + off;
    double s1 = 0, s2 = 0, m, var;
    const double K = D > 0 ? static_cast<double>(x[0]) : 0.0;
    shifted_sums(x, D, K, &s1, &s2);
    finish_stats(K, s1, s2, D, &m, &var);
    const double s = 1.0 / std::sqrt(var + a.eps);
    a.mean[r] = m;
    a.rstd[r] = s;
    for (index_t ci = 0; ci < Cg; ++ci) {
      const index_t c = g * Cg + ci;
      const double sc = a.weight ? s * static_cast<double>(a.weight[c]) : s;
      const double b = a.bias ? static_cast<double>(a.bias[c]) : 0.0;
      run_affine(a.y + off + ci * L, x + ci * L, m, sc, b, L);
    }
  }
}

template <typename T>
NORM_FLAT void norm_group_backward(const GroupArgs<T>& a, index_t r0, index_t r1) {
  const index_t Cg = a.C / a.G, L = a.L, D = Cg * L;
  const double inv_d = D > 0 ? 1.0 / static_cast<double>(D) : 0.0;
  for (index_t r = r0; r < r1; ++r) {
    const index_t n = r / a.G, g = r % a.G;
    const index_t off = (n * a.C + g * Cg) * L;
    const double m = a.mean[r], s = a.rstd[r];
    // Per channel: db = sum dy, ds = sum dy * (x - m); the group sums weight them by w[c].
    double sg = 0, sgx = 0;
    for (index_t ci = 0; ci < Cg; ++ci) {
      const index_t c = g * Cg + ci;
      double db = 0, ds = 0;
      run_sums(a.dy + off + ci * L, a.x + off + ci * L, m, L, &db, &ds);
      const double wc = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
      sg += wc * db;
      sgx += wc * ds * s;
      if (a.ws_w) {
        a.ws_w[n * a.C + c] = ds * s;
        a.ws_b[n * a.C + c] = db;
      }
    }
    if (!a.dx) continue;
    // dx = s * (w dy - mean(w dy) - xhat * mean(w dy xhat)) = al dy + be (x - m) + ga
    const double cg = sg * inv_d, cx = sgx * inv_d;
    for (index_t ci = 0; ci < Cg; ++ci) {
      const index_t c = g * Cg + ci;
      const double wc = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
      run_affine2(a.dx + off + ci * L, a.dy + off + ci * L, a.x + off + ci * L, s * wc, -s * s * cx, m, -s * cg, L);
    }
  }
}

// ------------------------------------------------------------------ channels of (N, C, L)
// Column sums over the rows of an (N, nc) block (row stride ld): the rows are
// streamed in order, kRowsPerPass at a time, so every row is read front to back
// (the prefetchers see kRowsPerPass plain streams); the running sums s1 / s2
// (nc doubles each, L1 / L2 resident) are loaded and stored once per pass.
// step(p, q, n, i, io) adds row n, columns [i, i + kW), to the sums p and q.
// Per column the rows are added in order 0..N-1: the result does not depend on
// kRowsPerPass, the ISA's width or the thread count.
constexpr index_t kRowsPerPass = 4;
// NNFAST_NORM_ROWS8 (default on): 8 rows per pass instead of kRowsPerPass (the running sums
// loaded / stored half as often per row; same order of additions, so the same bits).
// Read per call (a chunk of rows; tests toggle it).
NORM_INLINE bool rows8_enabled() { return env_switch_on("NNFAST_NORM_ROWS8"); }

template <int R, class Step>
NORM_INLINE void col_pass(double* s1, double* s2, index_t nc, index_t n, Step& step) {
  blocks(nc, [&](index_t i, auto io, auto) {
    V p = io.ld(s1 + i), q = io.ld(s2 + i);
    for (int r = 0; r < R; ++r) step(p, q, n + r, i, io);
    io.st(s1 + i, p);
    io.st(s2 + i, q);
  });
}

// Rows ahead whose stretches col_stream prefetches when the rows are strided: a short
// stretch per row (a group of (N, C, L) channels, a few hundred bytes every C * L
// values) ends before the hardware prefetchers ramp up.
// Only for spans of rows past kStreamBytes (one operand, N rows at its stride), which
// cannot be L3-resident: on L3-resident data the touches are pure overhead.
// Measured (1-thread process CPU time under load, grouped (N, 64, 49) float32, prefetch
// on / off): 64 MB fwd 0.961, bwd 0.964; 16 MB fwd 1.048, bwd 1.037 (so not below
// 32 MB); (N, C) rows are not strided and unaffected. NNFAST_NORM_PREFETCH=0 turns it
// off (A/B; values unchanged).
constexpr index_t kPrefetchRows = 8;
template <typename T>
inline bool prefetch_wanted(index_t N, index_t ld, index_t nc) {
  if (ld <= nc || static_cast<size_t>(N) * static_cast<size_t>(ld) * sizeof(T) <= norm_detail::kStreamBytes)
    return false;
  return env_switch_on("NNFAST_NORM_PREFETCH");
}

// Prefetch the nc values of T from p (one touch per 64-byte line).
template <typename T>
NORM_INLINE void prefetch_run(const T* p, index_t nc) {
  const char* b = reinterpret_cast<const char*>(p);
  const index_t bytes = nc * static_cast<index_t>(sizeof(T));
  for (index_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o);
  __builtin_prefetch(b + bytes - 1);
}

// pf(n) prefetches row n's stretch (or does nothing); called for rows kPrefetchRows ahead.
template <class Step, class Prefetch>
NORM_INLINE void col_stream(double* s1, double* s2, index_t N, index_t nc, Step step, Prefetch pf) {
  for (index_t c = 0; c < nc; ++c) s1[c] = 0.0, s2[c] = 0.0;
  index_t n = 0;
  for (index_t r = 0; r < imin(N, kPrefetchRows); ++r) pf(r);
  if (rows8_enabled()) {
    for (; n + 8 <= N; n += 8) {
      for (index_t r = n + kPrefetchRows; r < imin(N, n + kPrefetchRows + 8); ++r) pf(r);
      col_pass<8>(s1, s2, nc, n, step);
    }
  }
  for (; n + kRowsPerPass <= N; n += kRowsPerPass) {
    for (index_t r = n + kPrefetchRows; r < imin(N, n + kPrefetchRows + kRowsPerPass); ++r) pf(r);
    col_pass<kRowsPerPass>(s1, s2, nc, n, step);
  }
  for (; n < N; ++n) col_pass<1>(s1, s2, nc, n, step);
}

// (N, C) rows with row stride ldx: s1[c] = sum_n (x[n, c] - K[c]), s2[c] = sum_n (x[n, c] - K[c])^2
// for c in [0, nc).
template <typename T>
NORM_FLAT void norm_chan_shifted_sums(double* s1, double* s2, const double* Kc, const T* x, index_t N, index_t ldx,
                                      index_t nc) {
  const bool strided = prefetch_wanted<T>(N, ldx, nc);
  col_stream(
      s1, s2, N, nc,
      [&](V& p, V& q, index_t n, index_t i, auto io) {
        const V d = io.ld(x + n * ldx + i) - io.ld(Kc + i);  // padded lanes: 0 - 0
        p += d;
        q = simd::fma(d, d, q);
      },
      [&](index_t n) {
        if (strided) prefetch_run(x + n * ldx, nc);
      });
}

// Channels per block in the (N, C, L) reductions (L > 1): per-channel accumulators
// on the stack (kChanBlock * 2 * kS vectors).
constexpr index_t kChanBlock = 8;

template <typename T>
NORM_FLAT void norm_chan_stats(double* mean, double* var, const T* x, index_t N, index_t C, index_t L, index_t c0,
                     index_t c1) {
  const index_t cnt = N * L;
  if (L == 1) {
    // Shifts in a fixed-size stack buffer, the sums in mean / var until finish_stats.
    constexpr index_t kChunk = 256;
    double K[kChunk];
    for (index_t cb = c0; cb < c1; cb += kChunk) {
      const index_t nb = imin(kChunk, c1 - cb);
      for (index_t c = 0; c < nb; ++c) K[c] = N > 0 ? static_cast<double>(x[cb + c]) : 0.0;
      norm_chan_shifted_sums<T>(mean + cb, var + cb, K, x + cb, N, C, nb);
      for (index_t c = 0; c < nb; ++c) finish_stats(K[c], mean[cb + c], var[cb + c], cnt, mean + cb + c, var + cb + c);
    }
    return;
  }
  // Up to kChanBlock channels at a time, n outer: each row of x is read as one
  // contiguous stretch of nb runs (not nb separate strided streams). Every channel
  // has its own accumulators, fed its runs in order n = 0..N-1 as with one channel
  // at a time: the sums do not depend on the block size or the caller's range.
  for (index_t cb = c0; cb < c1; cb += kChanBlock) {
    const index_t nb = imin(kChanBlock, c1 - cb);
    double K[kChanBlock];
    V a1[kChanBlock][kS] = {}, a2[kChanBlock][kS] = {};
    for (index_t j = 0; j < nb; ++j) K[j] = cnt > 0 ? static_cast<double>(x[(cb + j) * L]) : 0.0;
    for (index_t n = 0; n < N; ++n) {
      const T* xr = x + (n * C + cb) * L;
      for (index_t j = 0; j < nb; ++j) shifted_sums_acc(a1[j], a2[j], xr + j * L, L, K[j]);
    }
    for (index_t j = 0; j < nb; ++j) finish_stats(K[j], hsum(a1[j]), hsum(a2[j]), cnt, mean + cb + j, var + cb + j);
  }
}

template <typename T>
NORM_FLAT void norm_chan_sums(double* s_a, double* s_ax, const T* a, const T* x, const double* shift, index_t N, index_t C,
                    index_t L, index_t c0, index_t c1) {
  if (L == 1) {
    const T* ar = a + c0;
    const T* xr = x + c0;
    const double* m = shift + c0;
    const bool strided = prefetch_wanted<T>(N, C, c1 - c0);
    col_stream(
        s_a + c0, s_ax + c0, N, c1 - c0,
        [&](V& p, V& q, index_t n, index_t i, auto io) {
          const V ai = io.ld(ar + n * C + i);
          p += ai;
          q = simd::fma(ai, io.ld(xr + n * C + i) - io.ld(m + i), q);
        },
        [&](index_t n) {
          if (strided) prefetch_run(ar + n * C, c1 - c0), prefetch_run(xr + n * C, c1 - c0);
        });
    return;
  }
  // Blocks of channels, n outer, per-channel accumulators (as in norm_chan_stats).
  for (index_t cb = c0; cb < c1; cb += kChanBlock) {
    const index_t nb = imin(kChanBlock, c1 - cb);
    V p[kChanBlock][kS] = {}, q[kChanBlock][kS] = {};
    for (index_t n = 0; n < N; ++n) {
      const index_t o = (n * C + cb) * L;
      for (index_t j = 0; j < nb; ++j) run_sums_acc(p[j], q[j], a + o + j * L, x + o + j * L, shift[cb + j], L);
    }
    for (index_t j = 0; j < nb; ++j) {
      s_a[cb + j] = hsum(p[j]);
      s_ax[cb + j] = hsum(q[j]);
    }
  }
}

template <typename T>
NORM_FLAT void norm_chan_affine(T* y, const T* a, const T* x, const double* alpha, const double* beta, const double* shift,
                      const double* gamma, index_t N, index_t C, index_t L, index_t c0, index_t c1) {
  if (L == 1) {
    const index_t nb = c1 - c0;
    for (index_t n = 0; n < N; ++n) {
      const index_t o = n * C + c0;
      if (a) run_affine2_vec(y + o, a + o, x + o, alpha + c0, beta + c0, shift + c0, gamma + c0, nb);
      else run_affine_vec(y + o, x + o, shift + c0, beta + c0, gamma + c0, nb);
    }
    return;
  }
  for (index_t c = c0; c < c1; ++c) {
    for (index_t n = 0; n < N; ++n) {
      const index_t o = (n * C + c) * L;
      if (a) run_affine2(y + o, a + o, x + o, alpha[c], beta[c], shift[c], gamma[c], L);
      else run_affine(y + o, x + o, shift[c], beta[c], gamma[c], L);
    }
  }
}

// (N, C) rows, row blocks of about kBlockElems taken from the last to the first
// (each block front to back, so the prefetchers still see forward streams).
// float32 runs in float with the coefficients rounded to float once per chunk of
// channels and the shift split in two (as in normalize_f32): twice the lanes of
// the double loop, no conversions in the inner loop.
constexpr index_t kBlockElems = index_t(1) << 15;
constexpr index_t kCoefChunk = 1024;

// Float coefficients of one chunk of nc channels from c0. Folded (fold_enabled): ga holds
// gamma - ml * be and ml is unused, so the pass reads four arrays with the a term, not five,
// and fma(x - mh, be, ga) replaces ((x - mh) - ml) * be + ga.
struct CoefF32 {
  alignas(64) float al[kCoefChunk], be[kCoefChunk], mh[kCoefChunk], ml[kCoefChunk], ga[kCoefChunk];
  void fill(const double* alpha, const double* beta, const double* shift, const double* gamma, index_t c0,
            index_t nc, bool fold) {
    for (index_t c = 0; c < nc; ++c) {
      const SplitMean ms(shift[c0 + c]);
      mh[c] = ms.hi;
      ml[c] = ms.lo;
      be[c] = static_cast<float>(beta[c0 + c]);
      ga[c] = static_cast<float>(fold ? gamma[c0 + c] - static_cast<double>(ms.lo) * static_cast<double>(be[c])
                                      : gamma[c0 + c]);
      al[c] = alpha ? static_cast<float>(alpha[c0 + c]) : 0.0f;
    }
  }
};

// Rows [lo, hi) of one chunk (the chunk's columns start at x, y, a): y = al * a + (x - shift) * be + ga.
template <bool Fold>
NORM_INLINE void affine_rows_f32(float* y, const float* a, const float* x, const CoefF32& k, index_t lo, index_t hi,
                                 index_t nc, index_t ld, bool stream) {
  const float *al = k.al, *be = k.be, *mh = k.mh, *ml = k.ml, *ga = k.ga;
  for (index_t n = lo; n < hi; ++n) {
    const float* xr = x + n * ld;
    const float* ar = a ? a + n * ld : nullptr;
    // (x - shift) * be + ga, vector and scalar
    auto lin = [&](index_t i, auto ld) {
      if constexpr (Fold) return simd::fma(ld(xr + i) - ld(mh + i), ld(be + i), ld(ga + i));
      else return ((ld(xr + i) - ld(mh + i)) - ld(ml + i)) * ld(be + i) + ld(ga + i);
    };
    auto lin1 = [&](index_t i) {
      if constexpr (Fold) return fmaf_lane(xr[i] - mh[i], be[i], ga[i]);
      else return ((xr[i] - mh[i]) - ml[i]) * be[i] + ga[i];
    };
    if (ar)
      write_f32(
          y + n * ld, nc, stream, [&](index_t i, auto ld) { return ld(al + i) * ld(ar + i) + lin(i, ld); },
          [&](index_t i) { return al[i] * ar[i] + lin1(i); });
    else
      write_f32(y + n * ld, nc, stream, lin, lin1);
  }
}

template <typename T>
NORM_FLAT void norm_chan_affine_rows(T* y, const T* a, const T* x, const double* alpha, const double* beta,
                                     const double* shift, const double* gamma, index_t N, index_t C, index_t ld,
                                     bool stream) {
  if (N <= 0 || C <= 0) return;
  const index_t blk = imin(N, kBlockElems / C > 16 ? kBlockElems / C : 16);
  if constexpr (sizeof(T) == 4) {
    const bool fold = fold_enabled();
    // NNFAST_NORM_REVERSE=0: the rows front to back (A/B for the cache reuse; same values).
    // Read per call, like the fold switch. Under load (1-thread CPU time, (N, 1024) 64 MB)
    // the two orders were within noise (forward / reverse 0.97-1.02); it awaits an idle A/B.
    const bool reverse = env_switch_on("NNFAST_NORM_REVERSE");
    CoefF32 k;
    for (index_t c0 = 0; c0 < C; c0 += kCoefChunk) {
      const index_t nc = imin(kCoefChunk, C - c0);
      k.fill(a ? alpha : nullptr, beta, shift, gamma, c0, nc, fold);
      for (index_t hi = N; hi > 0; hi -= blk) {
        index_t lo = hi > blk ? hi - blk : 0;
        if (!reverse) lo = 0, hi = N;  // one forward sweep
        if (fold) affine_rows_f32<true>(y + c0, a ? a + c0 : nullptr, x + c0, k, lo, hi, nc, ld, stream);
        else affine_rows_f32<false>(y + c0, a ? a + c0 : nullptr, x + c0, k, lo, hi, nc, ld, stream);
        if (lo == 0) break;
      }
    }
    stream_fence(stream);
  } else {
    for (index_t hi = N; hi > 0; hi -= blk) {
      const index_t lo = hi > blk ? hi - blk : 0;
      for (index_t n = lo; n < hi; ++n) {
        const index_t o = n * ld;
        if (a) run_affine2_vec(y + o, a + o, x + o, alpha, beta, shift, gamma, C);
        else run_affine_vec(y + o, x + o, shift, beta, gamma, C);
      }
      if (lo == 0) break;
    }
  }
}

// (N, C) rows with row stride ld, columns [0, nc), float32 in float lanes (NNFAST_NORM_F32SUM;
// see rows_reduce_f32). Sums (Sq false): s1[c] = sum_n a, s2[c] = sum_n a (x - shift[c]); shifted
// sums (Sq true, a unused): s1[c] = sum_n (x - shift[c]), s2[c] = sum_n (x - shift[c])^2. The rows
// go kF32Rows at a time, each read front to back over a chunk of columns; per 16 columns the
// kF32Rows values are summed in float, with x - mh (exact near the mean) and added into the
// double sums (L1 / L2 resident); the low part ml of the shift comes off once per column at the
// end, in double. Per column the order is fixed by the rows alone (not the ISA's width or the
// thread count). Column tail (< kF) and double T: the double kernels.
constexpr index_t kF32Rows = 8;

template <bool Sq>
NORM_INLINE void col_sums_f32(double* s1, double* s2, const float* a, const float* x, const double* shift, index_t N,
                              index_t ld, index_t nc) {
  alignas(64) float mhs[kCoefChunk];
  for (index_t c0 = 0; c0 < nc; c0 += kCoefChunk) {
    const index_t cn = imin(kCoefChunk, nc - c0);
    for (index_t c = 0; c < cn; ++c) {
      mhs[c] = SplitMean(shift[c0 + c]).hi;
      s1[c0 + c] = 0.0, s2[c0 + c] = 0.0;
    }
    for (index_t n0 = 0; n0 < N; n0 += kF32Rows) {
      const index_t n1 = imin(N, n0 + kF32Rows);
      const float* ar = Sq ? nullptr : a + n0 * ld + c0;
      const float* xr = x + n0 * ld + c0;
      for (index_t i = 0; i < cn; i += kF) {
        const VN mh = fload(mhs + i);
        VN p{}, q{};
        auto row = [&](index_t n) {
          const VN d = fload(xr + n * ld + i) - mh;
          if constexpr (Sq) {
            p += d;
            q = simd::fma(d, d, q);
          } else {
            const VN av = fload(ar + n * ld + i);
            p += av;
            q = simd::fma(av, d, q);
          }
        };
        if (n1 - n0 == kF32Rows) {
          for (index_t n = 0; n < kF32Rows; ++n) row(n);  // constant trip count: unrolled
        } else {
          for (index_t n = 0; n < n1 - n0; ++n) row(n);
        }
        add_widened(s1 + c0 + i, p);
        add_widened(s2 + c0 + i, q);
      }
    }
    for (index_t c = c0; c < c0 + cn; ++c) {
      const double ml = SplitMean(shift[c]).lo;
      if constexpr (Sq) {
        // sum (d - ml) = S1 - N ml, sum (d - ml)^2 = S2 - 2 ml S1 + N ml^2 (ml = 0 for a float shift)
        const double S1 = s1[c];
        s1[c] = S1 - static_cast<double>(N) * ml;
        s2[c] = s2[c] - 2.0 * ml * S1 + static_cast<double>(N) * ml * ml;
      } else {
        s2[c] -= ml * s1[c];
      }
    }
  }
}

template <typename T>
NORM_FLAT void norm_chan_sums_f32(double* s_a, double* s_ax, const T* a, const T* x, const double* shift, index_t N,
                                  index_t ld, index_t nc) {
  index_t done = 0;
  if constexpr (sizeof(T) == 4) {
    done = nc - nc % kF;
    col_sums_f32<false>(s_a, s_ax, a, x, shift, N, ld, done);
  }
  if (done < nc) norm_chan_sums<T>(s_a + done, s_ax + done, a + done, x + done, shift + done, N, ld, 1, 0, nc - done);
}

template <typename T>
NORM_FLAT void norm_chan_shifted_sums_f32(double* s1, double* s2, const double* Kc, const T* x, index_t N, index_t ld,
                                          index_t nc) {
  index_t done = 0;
  if constexpr (sizeof(T) == 4) {
    done = nc - nc % kF;
    col_sums_f32<true>(s1, s2, nullptr, x, Kc, N, ld, done);
  }
  if (done < nc) norm_chan_shifted_sums<T>(s1 + done, s2 + done, Kc + done, x + done, N, ld, nc - done);
}

// ------------------------------------------------------------------ vectors (weight / spectral norm)
template <typename T>
NORM_FLAT double norm_dot(const T* a, const T* b, index_t n) {
  V p[kS] = {};
  blocks(n, [&](index_t i, auto io, auto sl) { p[sl.v] = simd::fma(io.ld(a + i), io.ld(b + i), p[sl.v]); });
  return hsum(p);
}

template <typename T>
NORM_FLAT void norm_mv_rows(double* out, const T* W, const double* v, index_t D, index_t r0, index_t r1) {
  for (index_t i = r0; i < r1; ++i) {
    const T* w = W + i * D;
    V p[kS] = {};
    blocks(D, [&](index_t j, auto io, auto sl) { p[sl.v] = simd::fma(io.ld(w + j), io.ld(v + j), p[sl.v]); });
    out[i] = hsum(p);
  }
}

template <typename T>
NORM_FLAT void norm_mtv_acc(double* out, const T* W, const double* u, index_t D, index_t r0, index_t r1, index_t j0,
                  index_t j1) {
  for (index_t i = r0; i < r1; ++i) {
    const T* w = W + i * D + j0;
    const V ui = splat(u[i]);
    double* o = out + j0;
    blocks(j1 - j0, [&](index_t j, auto io, auto sl) { io.st(o + j, io.ld(o + j) + ui * io.ld(w + j)); });
  }
}

template <typename T>
NORM_FLAT void norm_axpby(T* y, const T* a, double alpha, const double* b, double beta, index_t n) {
  const V al = splat(alpha), be = splat(beta);
  if (b) blocks(n, [&](index_t i, auto io, auto sl) { io.st(y + i, al * io.ld(a + i) + be * io.ld(b + i)); });
  else blocks(n, [&](index_t i, auto io, auto sl) { io.st(y + i, al * io.ld(a + i)); });
}

template <typename T>
norm_detail::NormOps<T> make_norm_ops() {
  norm_detail::NormOps<T> o;
  o.row_forward = &norm_row_forward<T>;
  o.row_backward = &norm_row_backward<T>;
  o.group_forward = &norm_group_forward<T>;
  o.group_backward = &norm_group_backward<T>;
  o.chan_stats = &norm_chan_stats<T>;
  o.chan_shifted_sums = &norm_chan_shifted_sums<T>;
  o.chan_sums = &norm_chan_sums<T>;
  o.chan_sums_f32 = &norm_chan_sums_f32<T>;
  o.chan_shifted_sums_f32 = &norm_chan_shifted_sums_f32<T>;
  o.chan_affine = &norm_chan_affine<T>;
  o.chan_affine_rows = &norm_chan_affine_rows<T>;
  o.dot = &norm_dot<T>;
  o.mv_rows = &norm_mv_rows<T>;
  o.mtv_acc = &norm_mtv_acc<T>;
  o.axpby = &norm_axpby<T>;
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(norm_detail::NormOps, make_norm_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

// Per-ISA patch packer of the implicit-GEMM convolution (see conv_internal.h): compiled
// three times (NNFAST_ISA_NS = isa_generic, isa_avx2, isa_avx512) and picked at run time.
//
// A panel's nr columns are nr consecutive output positions q; row r = (c, ky, kx) takes
// x[c, oh sh - ph + ky dh, ow sw - pw + kx dw] for each. Per panel, base[j] (the offset of
// column j's window origin) and two bit masks per kernel row / column (which columns see
// an in-bounds input row ih / column iw) are computed once; a row is then
// value = mask bit ? x_c[base[j] + ky dh W + kx dw] : 0. With stride 1 and OW == W (the
// usual "same" convolution) base[j] = base[0] + j, so a row is one masked contiguous load
// (AVX-512: the masked-off lanes, e.g. the padding rows above the image, are never read);
// otherwise it is a masked gather.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cpu/conv_internal.h"
#include "core/env_switch.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
#include "cpu/transpose_isa.h"
namespace {

using conv_pack::PatchSource;

// NNFAST_CONV_PACK_FAST=0: the generic packers only (for A/B timing; same values).
inline bool fast_same() {
  static const bool on = env_switch_on("NNFAST_CONV_PACK_FAST");
  return on;
}

// Kernel extents above this take the per-element path (masks are kept per kernel row / column).
constexpr index_t kMaxTaps = 16;
constexpr int kMaxNr = 64;

// The address p + off without forming an out-of-range pointer expression the compiler could
// reason about (off may point outside x where the mask excludes it).
template <typename T>
inline const T* at(const T* p, index_t off) {
  return reinterpret_cast<const T*>(reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(off) * sizeof(T));
}

// row[j] = bit j of m ? src[j] : 0, j < nr (src + j contiguous).
template <typename T>
inline void masked_row(T* __restrict row, const T* src, std::uint64_t m, int nr) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    if (nr % 16 == 0) {
      for (int v = 0; v < nr; v += 16)
        _mm512_storeu_ps(row + v, _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> v), at(src, v)));
      return;
    }
  } else {
    if (nr % 8 == 0) {
      for (int v = 0; v < nr; v += 8)
        _mm512_storeu_pd(row + v, _mm512_maskz_loadu_pd(static_cast<__mmask8>(m >> v), at(src, v)));
      return;
    }
  }
#endif
  for (int j = 0; j < nr; ++j) row[j] = (m >> j) & 1 ? *at(src, j) : T(0);
}

// row[j] = bit j of m ? src[base[j]] : 0, j < nr.
template <typename T>
inline void masked_gather(T* __restrict row, const T* src, const std::int32_t* base, std::uint64_t m, int nr) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    if (nr % 16 == 0) {
      for (int v = 0; v < nr; v += 16) {
        const __m512i idx = _mm512_loadu_si512(base + v);
        _mm512_storeu_ps(row + v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), static_cast<__mmask16>(m >> v), idx,
                                                           src, 4));
      }
      return;
    }
  } else {
    if (nr % 8 == 0) {
      for (int v = 0; v < nr; v += 8) {
        const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + v));
        _mm512_storeu_pd(row + v, _mm512_mask_i32gather_pd(_mm512_setzero_pd(), static_cast<__mmask8>(m >> v), idx,
                                                           src, 8));
      }
      return;
    }
  }
#endif
  for (int j = 0; j < nr; ++j) row[j] = (m >> j) & 1 ? *at(src, base[j]) : T(0);
}

// For the panel's np output columns from q0: each column's input origin (row-major offset of its
// top-left tap, possibly outside the image) and, per kernel row / column, a bit per column that is
// set where that tap lands inside the image.
template <typename Offset>
inline void panel_origins(const Conv2dShape& s, index_t q0, int np, Offset* base, std::uint64_t* rows,
                          std::uint64_t* cols) {
  index_t oh = q0 / s.OW, ow = q0 % s.OW;
  for (int j = 0; j < np; ++j) {
    const index_t ih0 = oh * s.sh - s.ph, iw0 = ow * s.sw - s.pw;
    base[j] = static_cast<Offset>(ih0 * s.W + iw0);
    for (index_t ky = 0; ky < s.kh; ++ky) {
      const index_t ih = ih0 + ky * s.dh;
      if (ih >= 0 && ih < s.H) rows[ky] |= std::uint64_t(1) << j;
    }
    for (index_t kx = 0; kx < s.kw; ++kx) {
      const index_t iw = iw0 + kx * s.dw;
      if (iw >= 0 && iw < s.W) cols[kx] |= std::uint64_t(1) << j;
    }
    if (++ow == s.OW) {
      ow = 0;
      ++oh;
    }
  }
}

#if defined(__AVX512F__)
// Taps (ky, kx) at or below which the "same" fp32 path keeps a per-tap offset / mask table.
constexpr index_t kMaxTable = 64;
static const bool kPrefetch = env_switch_on("NNFAST_CONV_PACK_PF");

// Rows [k0, k0 + kc) of one NR-column panel of a stride-1, OW == W fp32 convolution: row
// k = (c, tap) is NR / 16 masked loads at x + c HW + off[tap] with mask msk[tap]. The table is
// built once per panel and the row loop is unrolled for the panel width: the generic loop
// spent more instructions recomputing (c, ky, kx), their offset and mask per row than on the
// copies themselves (the pack was 11-17 % of the micro-kernel's time).
template <int NR>
void pack_rows_same(const float* x, index_t HW, const std::int64_t* off, const std::uint64_t* msk, index_t kk,
                    index_t k0, index_t kc, float* __restrict d) {
  index_t tap = k0 % kk;
  const float* xc = at(x, (k0 / kk) * HW);
  for (index_t k = 0; k < kc; ++k, d += NR) {
    const float* src = at(xc, off[tap]);
    const std::uint64_t m = msk[tap];
#pragma GCC unroll 4
    for (int v = 0; v < NR; v += 16) {
      // The same row of the panel after next: its first touch would otherwise stall the
      // masked load (each image is read from L3 the first time it is packed).
      if (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(at(src, 2 * NR + v)), _MM_HINT_T0);
      _mm512_storeu_ps(d + v, _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> v), at(src, v)));
    }
    if (++tap == kk) {
      tap = 0;
      xc = at(xc, HW);
    }
  }
}

// The table for one panel starting at output position q0 with np valid columns; false where
// this path does not apply (the caller then runs the generic one).
bool pack_panel_same(const PatchSource<float>& p, index_t k0, index_t kc, index_t q0, int np, float* d, int nr) {
  const Conv2dShape& s = p.s;
  if (p.kk > kMaxTable || (nr != 32 && nr != 48 && nr != 16 && nr != 64)) return false;
  std::uint64_t rows[kMaxTaps] = {}, cols[kMaxTaps] = {};
  index_t oh = q0 / s.OW, ow = q0 % s.OW;
  for (int j = 0; j < np; ++j) {
    for (index_t ky = 0; ky < s.kh; ++ky) {
      const index_t ih = oh - s.ph + ky * s.dh;
      if (ih >= 0 && ih < s.H) rows[ky] |= std::uint64_t(1) << j;
    }
    for (index_t kx = 0; kx < s.kw; ++kx) {
      const index_t iw = ow - s.pw + kx * s.dw;
      if (iw >= 0 && iw < s.W) cols[kx] |= std::uint64_t(1) << j;
    }
    if (++ow == s.OW) {
      ow = 0;
      ++oh;
    }
  }
  // Column j's window origin is base + j (stride 1, OW == W: q0 + j is one flat index).
  const index_t base = (q0 / s.OW - s.ph) * s.W + q0 % s.OW - s.pw;
  std::int64_t off[kMaxTable];
  std::uint64_t msk[kMaxTable];
  for (index_t ky = 0, t = 0; ky < s.kh; ++ky)
    for (index_t kx = 0; kx < s.kw; ++kx, ++t) {
      off[t] = base + ky * s.dh * s.W + kx * s.dw;
      msk[t] = rows[ky] & cols[kx];
    }
  const index_t HW = s.H * s.W;
  switch (nr) {
    case 16: pack_rows_same<16>(p.x, HW, off, msk, p.kk, k0, kc, d); break;
    case 32: pack_rows_same<32>(p.x, HW, off, msk, p.kk, k0, kc, d); break;
    case 48: pack_rows_same<48>(p.x, HW, off, msk, p.kk, k0, kc, d); break;
    default: pack_rows_same<64>(p.x, HW, off, msk, p.kk, k0, kc, d); break;
  }
  return true;
}

// NNFAST_CONV_PACK_STRIDED=0: strided / OW != W fp32 panels take the masked gathers (A/B timing;
// same values).
static const bool kPackStrided = env_switch_on("NNFAST_CONV_PACK_STRIDED");

// Segments per panel / widest column stride the strided packer takes (else: gathers).
constexpr int kMaxSegs = 16;

// Rows [k0, k0 + kc) of one NR-column panel of any fp32 convolution whose window origins
// rise slowly (stride, OW != W): the 16 columns of each vector split into segments whose
// window origins lie within 32 floats of the segment's first; per segment and tap the row is
// two masked 16-wide loads (only the elements some valid column reads: never outside x) and a
// two-source permute, merged into the vector under the columns' validity mask. Segments and
// permute indices depend on the panel only, the offsets and masks on the tap too: both are
// built once per panel and reused for every channel. The 16-wide masked gathers they replace
// cost ~60 % on top of the micro-kernel in the stride-2 forward.
struct SegTap {
  std::int64_t off;   // x_c offset of the segment's 32-float window for this tap
  std::uint32_t ld;   // which of the window's 32 floats are read (bits 0-15: first load)
  std::uint32_t lane; // which of the vector's 16 columns this segment writes (valid ones only)
};

template <int NR>
void pack_rows_strided(const float* x, index_t HW, const SegTap* tab, int nseg, const int* seg_end,
                       const __m512i* pidx, index_t kk, index_t k0, index_t kc, float* __restrict d) {
  index_t tap = k0 % kk;
  const float* xc = at(x, (k0 / kk) * HW);
  for (index_t k = 0; k < kc; ++k, d += NR) {
    const SegTap* e = tab + tap * nseg;
    int sg = 0;
#pragma GCC unroll 4
    for (int v = 0; v < NR / 16; ++v) {
      __m512 acc = _mm512_setzero_ps();
      for (; sg < seg_end[v]; ++sg) {
        const float* src = at(xc, e[sg].off);
        const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(e[sg].ld), src);
        const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(e[sg].ld >> 16), at(src, 16));
        acc = _mm512_mask_mov_ps(acc, static_cast<__mmask16>(e[sg].lane), _mm512_permutex2var_ps(lo, pidx[sg], hi));
      }
      _mm512_storeu_ps(d + 16 * v, acc);
    }
    if (++tap == kk) {
      tap = 0;
      xc = at(xc, HW);
    }
  }
}

// The segment / tap tables for one panel (q0, np valid columns); false where this path does not
// apply (too many segments, large kernels or panel widths it is not unrolled for).
bool pack_panel_strided(const PatchSource<float>& p, index_t k0, index_t kc, index_t q0, int np, float* d, int nr) {
  const Conv2dShape& s = p.s;
  if (!kPackStrided || p.kk > kMaxTable || (nr != 32 && nr != 48 && nr != 16 && nr != 64) || s.sw > 4 || s.sw < 1 ||
      s.H * s.W >= (index_t(1) << 30))
    return false;
  std::int64_t base[kMaxNr];
  std::uint64_t rows[kMaxTaps] = {}, cols[kMaxTaps] = {};
  panel_origins(s, q0, np, base, rows, cols);
  // Segments: consecutive columns of one vector whose origins lie in [b, b + 32) (origins rise
  // with q). Columns past np belong to no segment and stay 0.
  std::int64_t seg_b[kMaxSegs];
  std::uint32_t seg_lanes[kMaxSegs];
  int seg_first[kMaxSegs], seg_end[4] = {0, 0, 0, 0};
  alignas(64) std::int32_t idx[kMaxSegs][16];
  int nseg = 0;
  for (int v = 0; v < nr / 16; ++v) {
    for (int l = 0; l < 16; ++l) {
      const int j = 16 * v + l;
      if (j >= np) break;
      if (nseg == 0 || seg_first[nseg - 1] < 16 * v || base[j] - seg_b[nseg - 1] >= 32 || base[j] < seg_b[nseg - 1]) {
        if (nseg == kMaxSegs) return false;
        seg_b[nseg] = base[j];
        seg_first[nseg] = j;
        seg_lanes[nseg] = 0;
        for (int t = 0; t < 16; ++t) idx[nseg][t] = 0;
        ++nseg;
      }
      seg_lanes[nseg - 1] |= 1u << l;
      idx[nseg - 1][l] = static_cast<std::int32_t>(base[j] - seg_b[nseg - 1]);
    }
    seg_end[v] = nseg;
  }
  __m512i pidx[kMaxSegs];
  for (int g = 0; g < nseg; ++g) pidx[g] = _mm512_load_si512(idx[g]);
  SegTap tab[kMaxTable * kMaxSegs];
  for (index_t ky = 0, t = 0; ky < s.kh; ++ky)
    for (index_t kx = 0; kx < s.kw; ++kx, ++t) {
      const std::uint64_t m = rows[ky] & cols[kx];
      const index_t toff = ky * s.dh * s.W + kx * s.dw;
      for (int g = 0; g < nseg; ++g) {
        const int v = seg_first[g] / 16;
        const std::uint32_t lane = seg_lanes[g] & static_cast<std::uint32_t>((m >> (16 * v)) & 0xffff);
        std::uint32_t ld = 0;
        for (std::uint32_t b = lane; b; b &= b - 1) ld |= 1u << idx[g][__builtin_ctz(b)];
        tab[t * nseg + g] = SegTap{seg_b[g] + toff, ld, lane};
      }
    }
  const index_t HW = s.H * s.W;
  switch (nr) {
    case 16: pack_rows_strided<16>(p.x, HW, tab, nseg, seg_end, pidx, p.kk, k0, kc, d); break;
    case 32: pack_rows_strided<32>(p.x, HW, tab, nseg, seg_end, pidx, p.kk, k0, kc, d); break;
    case 48: pack_rows_strided<48>(p.x, HW, tab, nseg, seg_end, pidx, p.kk, k0, kc, d); break;
    default: pack_rows_strided<64>(p.x, HW, tab, nseg, seg_end, pidx, p.kk, k0, kc, d); break;
  }
  return true;
}
#endif

// Rows [k0, k0 + kc) of the panel of np columns from q0 (inside one image), zeros past np.
template <typename T>
void pack_panel(const PatchSource<T>& p, index_t k0, index_t kc, index_t q0, int np, T* d, int nr) {
  const Conv2dShape& s = p.s;
  const index_t HW = s.H * s.W;
  const bool small = s.kh <= kMaxTaps && s.kw <= kMaxTaps && nr <= kMaxNr && HW < (index_t(1) << 30);
  const bool contiguous = s.sh == 1 && s.sw == 1 && s.OW == s.W;
  {
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 4)
      if (small && contiguous && fast_same() && pack_panel_same(p, k0, kc, q0, np, d, nr)) return;
    if constexpr (sizeof(T) == 4)
      if (small && !contiguous && pack_panel_strided(p, k0, kc, q0, np, d, nr)) return;
#endif
    if (!small) {  // per element (huge kernels only)
      for (index_t k = 0; k < kc; ++k) {
        const index_t r = k0 + k, c = r / p.kk, ky = (r % p.kk) / s.kw, kx = r % s.kw;
        for (int j = 0; j < nr; ++j) {
          T v = T(0);
          if (j < np) {
            const index_t q = q0 + j;
            const index_t ih = (q / s.OW) * s.sh - s.ph + ky * s.dh, iw = (q % s.OW) * s.sw - s.pw + kx * s.dw;
            if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) v = p.x[c * HW + ih * s.W + iw];
          }
          d[k * nr + j] = v;
        }
      }
      return;
    }
    std::int32_t base[kMaxNr];
    std::uint64_t rows[kMaxTaps] = {}, cols[kMaxTaps] = {};
    panel_origins(s, q0, np, base, rows, cols);
    for (int j = np; j < nr; ++j) base[j] = 0;
    index_t c = k0 / p.kk, ky = (k0 % p.kk) / s.kw, kx = k0 % s.kw;
    for (index_t k = 0; k < kc; ++k) {
      const std::uint64_t m = rows[ky] & cols[kx];
      const T* xc = at(p.x, c * HW + ky * s.dh * s.W + kx * s.dw);
      if (contiguous)
        masked_row(d + k * nr, at(xc, base[0]), m, nr);
      else
        masked_gather(d + k * nr, xc, base, m, nr);
      if (++kx == s.kw) {
        kx = 0;
        if (++ky == s.kh) {
          ky = 0;
          ++c;
        }
      }
    }
  }
}

template <typename T>
void pack_patches(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* dst, int nr) {
  const PatchSource<T>& p = *static_cast<const PatchSource<T>*>(ctx);
  const index_t P = p.s.OH * p.s.OW;
  for (index_t jp = 0; jp < nc; jp += nr) {
    const int np = static_cast<int>(nc - jp < nr ? nc - jp : nr);
    T* d = dst + jp * kc;
    const index_t q0 = j0 + jp;
    if (p.image == 0) {
      pack_panel(p, k0, kc, q0, np, d, nr);
      continue;
    }
    // Several images: a panel inside one image is that image's panel; one across an image's end
    // is packed as the two images' parts (each from column 0 of its own panel) and spliced.
    const index_t n = q0 / P, ql = q0 % P;
    PatchSource<T> one = p;
    one.x = p.x + n * p.image;
    if (ql + np <= P) {
      pack_panel(one, k0, kc, ql, np, d, nr);
      continue;
    }
    const int na = static_cast<int>(P - ql), nb = np - na;
    thread_local std::vector<T> tmp;
    if (tmp.size() < static_cast<size_t>(kc * nr)) tmp.resize(static_cast<size_t>(kc * nr));
    pack_panel(one, k0, kc, ql, na, d, nr);
    one.x = p.x + (n + 1) * p.image;
    pack_panel(one, k0, kc, index_t(0), nb, tmp.data(), nr);
    for (index_t k = 0; k < kc; ++k)
      for (int j = 0; j < nb; ++j) d[k * nr + na + j] = tmp[static_cast<size_t>(k * nr + j)];
  }
}

#if defined(__AVX512F__)
// NNFAST_CONV_PACK_STRIDED_T=0: strided / OW != W transposed panels (the weight gradient's) take
// 8-wide masked gathers only (A/B timing; same values).
static const bool kPackStridedT = env_switch_on("NNFAST_CONV_PACK_STRIDED_T");

// Segments per 8-position block / kernel taps the transposed strided packer takes (else: gathers).
constexpr int kMaxSegT = 4;
constexpr index_t kMaxSegTaps = 16;

// One block of 8 output positions of a strided / OW != W convolution, split into segments of
// consecutive positions whose window origins lie within 16 floats of the segment's first. Per
// column r, a segment is one masked 16-wide load at x + off_r + base (only the floats a valid
// position reads: never outside x) and a permute into its lanes, so the 8 values of (r, block)
// cost nseg load + permute pairs instead of an 8-wide gather (the gathers were ~15 % of the
// stride-2 weight gradient). The load / lane masks depend on the tap only: built once per block.
struct SegBlockT {
  alignas(64) std::int32_t perm[kMaxSegT][16];  // lane i of segment s takes float perm[s][i] of its window
  std::int32_t base[kMaxSegT];                  // window origin, relative like the gather indices
  std::uint16_t ld[kMaxSegTaps][kMaxSegT];      // per tap: the window floats that valid lanes read
  std::uint8_t lane[kMaxSegTaps][kMaxSegT];     // per tap: the segment's valid lanes
  int n;                                        // segments; 0: this block takes the gathers
};

// The segments of the block whose 8 window origins are idx (rows / cols: the per-tap validity bits).
inline void seg_block_t(const Conv2dShape& s, index_t kk, const unsigned* rows, const unsigned* cols,
                        const std::int32_t* idx, SegBlockT& sg) {
  sg.n = 0;
  if (!kPackStridedT || kk > kMaxSegTaps) return;
  unsigned lanes[kMaxSegT];
  int n = 0;
  for (int i = 0; i < 8; ++i) {
    if (n == 0 || idx[i] < sg.base[n - 1] || idx[i] - sg.base[n - 1] >= 16) {
      if (n == kMaxSegT) return;
      sg.base[n] = idx[i];
      lanes[n] = 0;
      for (int t = 0; t < 16; ++t) sg.perm[n][t] = 0;
      ++n;
    }
    lanes[n - 1] |= 1u << i;
    sg.perm[n - 1][i] = idx[i] - sg.base[n - 1];
  }
  for (index_t ky = 0, t = 0; ky < s.kh; ++ky)
    for (index_t kx = 0; kx < s.kw; ++kx, ++t)
      for (int g = 0; g < n; ++g) {
        const unsigned lane = lanes[g] & rows[ky] & cols[kx];
        unsigned ld = 0;
        for (unsigned b = lane; b; b &= b - 1) ld |= 1u << sg.perm[g][__builtin_ctz(b)];
        sg.ld[t][g] = static_cast<std::uint16_t>(ld);
        sg.lane[t][g] = static_cast<std::uint8_t>(lane);
      }
  sg.n = n;
}

// NNFAST_CONV_PACK_T_COLS=0: the "same" transposed pack walks blocks of 8 positions outermost
// (the per-column offsets and masks looked up again for every block; A/B timing, same values).
static const bool kPackTCols = env_switch_on("NNFAST_CONV_PACK_T_COLS");

// Transposed patches B(q, r) = x_c[q + (ky dh - ph) W + kx dw - pw] (stride 1, OW == W): for a
// fixed r the q run is contiguous, so 8 columns r x 8 rows q are 8 masked 8-wide loads and an
// 8 x 8 register transpose; the mask of (r, q) is rows[ky_r](q) & cols[kx_r](q). Other strides
// (or OW != W): the same with 8-wide masked gathers at the 8 positions' window origins.
void pack_patches_t(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, float* dst, int nr) {
  const PatchSource<float>& p = *static_cast<const PatchSource<float>*>(ctx);
  const Conv2dShape& s = p.s;
  const index_t HW = s.H * s.W;
  std::int32_t off[kMaxNr];
  int kyj[kMaxNr], kxj[kMaxNr];
  // Row / column validity of each group of 8 output positions for each kernel tap, computed
  // once for up to kGroup blocks and shared by every panel (per panel it cost ~30 % of the pack).
  constexpr int kGroup = 32;
  unsigned rows_g[kGroup][kMaxTaps], cols_g[kGroup][kMaxTaps];
  // Any stride, or OW != W: the 8 positions of a block are not one contiguous run of x; each
  // run is then a masked gather at idx (the positions' window origins, shared by every column).
  const bool same = s.sh == 1 && s.sw == 1 && s.OW == s.W;
  alignas(32) std::int32_t idx_g[kGroup][8];
  SegBlockT seg_g[kGroup];
  // Per block and tap (ky kw + kx, up to kMaxSegTaps): the 8 positions' validity, rows & cols.
  std::uint8_t tapm_g[kGroup][kMaxSegTaps];
  const bool hoist = fast_same();
  // "Same", full blocks: 8 columns at a time over all blocks of the group (see below).
  const bool by_cols = same && hoist && kPackTCols && p.kk <= kMaxSegTaps;
  for (index_t g0 = 0; g0 < kc; g0 += 8 * kGroup) {
    const index_t g1 = kc - g0 < 8 * kGroup ? kc : g0 + 8 * kGroup;
    auto masks = [&](index_t kb, unsigned* rows, unsigned* cols, std::int32_t* idx, SegBlockT* seg) {
      const int kn = static_cast<int>(kc - kb < 8 ? kc - kb : 8);
      for (index_t t = 0; t < s.kh; ++t) rows[t] = 0;
      for (index_t t = 0; t < s.kw; ++t) cols[t] = 0;
      const index_t q0 = k0 + kb;
      index_t oh = q0 / s.OW, ow = q0 % s.OW;
      for (int i = 0; i < 8; ++i) idx[i] = 0;
      for (int i = 0; i < kn; ++i) {
        // Relative to x + off[j] (whose origin term is -ph W - pw), as q0 + i is for "same".
        idx[i] = static_cast<std::int32_t>(oh * s.sh * s.W + ow * s.sw);
        for (index_t ky = 0; ky < s.kh; ++ky) {
          const index_t ih = oh * s.sh - s.ph + ky * s.dh;
          if (ih >= 0 && ih < s.H) rows[ky] |= 1u << i;
        }
        for (index_t kx = 0; kx < s.kw; ++kx) {
          const index_t iw = ow * s.sw - s.pw + kx * s.dw;
          if (iw >= 0 && iw < s.W) cols[kx] |= 1u << i;
        }
        if (++ow == s.OW) {
          ow = 0;
          ++oh;
        }
      }
      seg->n = 0;
      if (kn == 8 && !same) seg_block_t(s, p.kk, rows, cols, idx, *seg);
    };
    if (hoist)
      for (index_t kb = g0; kb < g1; kb += 8) {
        const index_t b = (kb - g0) / 8;
        masks(kb, rows_g[b], cols_g[b], idx_g[b], &seg_g[b]);
        if (by_cols)
          for (index_t ky = 0, t = 0; ky < s.kh; ++ky)
            for (index_t kx = 0; kx < s.kw; ++kx, ++t)
              tapm_g[b][t] = static_cast<std::uint8_t>(rows_g[b][ky] & cols_g[b][kx]);
      }
    // The full blocks of the group: blocks of 8 positions outside at a fixed group of 8 columns
    // (their 8 sources and taps stay in registers; each block is then 8 masked loads from a
    // per-tap table and the transpose), instead of looking up every column's offset and masks
    // again per block. The per-block loop below then only does the tails.
    const index_t g1_full = by_cols ? g0 + (g1 - g0) / 8 * 8 : g0;
    for (index_t jp = 0; jp < nc; jp += nr) {
      const int np = static_cast<int>(nc - jp < nr ? nc - jp : nr);
      float* d = dst + jp * kc;
      // Column r = (c, ky, kx) walked incrementally from the panel's first (divisions were
      // ~7 % of this pack's time).
      const index_t r0 = j0 + jp;
      index_t c = r0 / p.kk, ky = (r0 % p.kk) / s.kw, kx = r0 % s.kw;
      for (int j = 0; j < np; ++j) {
        kyj[j] = static_cast<int>(ky);
        kxj[j] = static_cast<int>(kx);
        off[j] = static_cast<std::int32_t>(c * HW + (ky * s.dh - s.ph) * s.W + kx * s.dw - s.pw);
        if (++kx == s.kw) {
          kx = 0;
          if (++ky == s.kh) {
            ky = 0;
            ++c;
          }
        }
      }
      const int nfull = np / 8 * 8;
      for (int j = 0; j < nfull && g1_full > g0; j += 8) {
        const float* src[8];
        int tap[8];
        for (int t = 0; t < 8; ++t) {
          src[t] = at(p.x, k0 + off[j + t]);
          tap[t] = kyj[j + t] * static_cast<int>(s.kw) + kxj[j + t];
        }
        for (index_t kb = g0; kb < g1_full; kb += 8) {
          const std::uint8_t* m = tapm_g[(kb - g0) / 8];
          __m256 v[8];
          for (int t = 0; t < 8; ++t) v[t] = _mm256_maskz_loadu_ps(static_cast<__mmask8>(m[tap[t]]), at(src[t], kb));
          transpose8x8_store(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], d + kb * nr + j, nr);
        }
      }
      for (index_t kb = g0; kb < g1; kb += 8) {
        const int kn = static_cast<int>(kc - kb < 8 ? kc - kb : 8);
        unsigned rows_l[kMaxTaps], cols_l[kMaxTaps];
        alignas(32) std::int32_t idx_l[8];
        SegBlockT seg_l;
        const unsigned* rows = rows_g[(kb - g0) / 8];
        const unsigned* cols = cols_g[(kb - g0) / 8];
        const std::int32_t* idx = idx_g[(kb - g0) / 8];
        const SegBlockT* seg = &seg_g[(kb - g0) / 8];
        if (!hoist) {
          masks(kb, rows_l, cols_l, idx_l, &seg_l);
          rows = rows_l;
          cols = cols_l;
          idx = idx_l;
          seg = &seg_l;
        }
        const index_t q0 = k0 + kb;
        float* dk = d + kb * nr;
        if (kn == 8 && seg->n > 0) {
          __m512i pv[kMaxSegT];
          for (int g = 0; g < seg->n; ++g) pv[g] = _mm512_load_si512(seg->perm[g]);
          for (int j = 0; j < nfull; j += 8) {
            __m256 v[8];
            for (int t = 0; t < 8; ++t) {
              const int tap = kyj[j + t] * static_cast<int>(s.kw) + kxj[j + t];
              const float* src = at(p.x, off[j + t]);
              __m512 acc = _mm512_setzero_ps();
              for (int g = 0; g < seg->n; ++g)
                acc = _mm512_mask_permutexvar_ps(acc, seg->lane[tap][g], pv[g],
                                                 _mm512_maskz_loadu_ps(seg->ld[tap][g], at(src, seg->base[g])));
              v[t] = _mm512_castps512_ps256(acc);
            }
            transpose8x8_store(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], dk + j, nr);
          }
        } else if (kn == 8 && !same) {
          const __m256i vi = _mm256_load_si256(reinterpret_cast<const __m256i*>(idx));
          for (int j = 0; j < nfull; j += 8) {
            __m256 v[8];
            for (int t = 0; t < 8; ++t)
              v[t] = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(),
                                               static_cast<__mmask8>(rows[kyj[j + t]] & cols[kxj[j + t]]), vi,
                                               at(p.x, off[j + t]), 4);
            transpose8x8_store(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], dk + j, nr);
          }
        } else if (kn == 8 && kb >= g1_full) {
          for (int j = 0; j < nfull; j += 8) {
            // Two cache lines ahead on each of the 8 runs, every other block (one line = 2 blocks).
            if (kPrefetch && (kb & 8) == 0)
              for (int t = 0; t < 8; ++t)
                _mm_prefetch(reinterpret_cast<const char*>(at(p.x, q0 + 32 + off[j + t])), _MM_HINT_T0);
            __m256 v[8];
            for (int t = 0; t < 8; ++t)
              v[t] = _mm256_maskz_loadu_ps(static_cast<__mmask8>(rows[kyj[j + t]] & cols[kxj[j + t]]),
                                           at(p.x, q0 + off[j + t]));
            transpose8x8_store(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], dk + j, nr);
          }
        }
        for (int i = 0; i < kn; ++i) {
          for (int j = kn == 8 ? nfull : 0; j < np; ++j)
            dk[i * nr + j] = (rows[kyj[j]] & cols[kxj[j]]) >> i & 1 ? *at(p.x, idx[i] + off[j]) : 0.f;
          for (int j = np; j < nr; ++j) dk[i * nr + j] = 0.f;
        }
      }
    }
  }
}

// Direct weight gradient of a stride-1, OW == W convolution (ConvOps::weight_grad_same): both
// operands run along q in memory (dy row o, x row c shifted by the tap), so instead of packing them
// into GEMM panels (the transposed patch pack and dy's A pack were ~45 % on top of the micro-kernel)
// a tile of MO channels o x NT patch rows r keeps MO NT 16-lane accumulators over q and sums the
// lanes once at the end. Row r = (c, tap) reads x_c + off[tap] + q under the tap's validity mask
// for that block of 16 positions (padding rows / columns and the tail past P): never outside x.
// r[i] = the sum of the 16 lanes of v[i], by a tree of in-register shuffles (15 adds for all 16,
// where 16 separate horizontal sums take 64). Each level halves the partial sums per vector.
__attribute__((always_inline)) inline __m512 lane_sums16(const __m512 (&v)[16]) {
  __m512 w[8], u[4], z[2];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k)  // 128-bit lanes 0-1: v[2k]'s 8 partial sums, 2-3: v[2k+1]'s
    w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)  // lane L: v[4k + L]'s 4 partial sums
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], 0xDD));
#pragma GCC unroll 2
  for (int k = 0; k < 2; ++k)  // lane L: 2 partial sums each of v[8k + L], v[8k + 4 + L]
    z[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE));
  // Element 4 L + e: the sum of v[4 e + L]; permuted into element order.
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(idx, r);
}

template <int MO, int NT>
void dw_tile(const float* dy, index_t P, const float* const* src, const std::uint16_t* const* msk, index_t nfull,
             __mmask16 tail, float* out, index_t ldo, bool accumulate) {
  // Every loop over acc fully unrolled: one runtime index and GCC keeps acc in memory.
  __m512 acc[MO][NT];
#pragma GCC unroll 8
  for (int o = 0; o < MO; ++o)
#pragma GCC unroll 3
    for (int t = 0; t < NT; ++t) acc[o][t] = _mm512_setzero_ps();
  // One loop for the full blocks and the tail.
  const index_t nblocks = nfull + (tail ? 1 : 0);
  for (index_t j = 0; j < nblocks; ++j) {
    const index_t q = 16 * j;
    const __mmask16 amask = j < nfull ? static_cast<__mmask16>(0xffff) : tail;
    __m512 b[NT];
#pragma GCC unroll 3
    for (int t = 0; t < NT; ++t) b[t] = _mm512_maskz_loadu_ps(static_cast<__mmask16>(msk[t][j]), at(src[t], q));
#pragma GCC unroll 8
    for (int o = 0; o < MO; ++o) {
      __m512 a = _mm512_maskz_loadu_ps(amask, dy + o * P + q);
      // One load per row: without this GCC folds it into each of the NT FMAs (NT loads).
      asm("" : "+v"(a));
#pragma GCC unroll 3
      for (int t = 0; t < NT; ++t) acc[o][t] = _mm512_fmadd_ps(a, b[t], acc[o][t]);
    }
  }
  // The lane sums, 16 accumulators at a time (zeros past MO NT).
  constexpr int kAcc = MO * NT, kGroups = (kAcc + 15) / 16;
  alignas(64) float sums[kGroups * 16];
#pragma GCC unroll 2
  for (int gi = 0; gi < kGroups; ++gi) {
    __m512 v[16];
#pragma GCC unroll 16
    for (int f = 0; f < 16; ++f) v[f] = 16 * gi + f < kAcc ? acc[(16 * gi + f) / NT][(16 * gi + f) % NT] : _mm512_setzero_ps();
    _mm512_store_ps(sums + 16 * gi, lane_sums16(v));
  }
#pragma GCC unroll 8
  for (int o = 0; o < MO; ++o)
#pragma GCC unroll 3
    for (int t = 0; t < NT; ++t) {
      const float v = sums[o * NT + t];
      out[o * ldo + t] = accumulate ? out[o * ldo + t] + v : v;
    }
}

// Rows [o0, o0 + MO) against every patch row, NT = 3 rows at a time, then the 2 / 1 left.
template <int MO>
void dw_rows(const float* dy, const float* x, index_t P, index_t HW, index_t kk, index_t Kg, const std::int64_t* off,
             const std::uint16_t* masks, index_t nchunks, index_t nfull, __mmask16 tail, float* out,
             bool accumulate) {
  const float* src[3];
  const std::uint16_t* msk[3];
  // Row r = (c, tap) walked incrementally (three divisions per tile were ~10 % at 14 x 14).
  index_t c = 0, tap = 0;
  auto setup = [&](int nt) {
    for (int t = 0; t < nt; ++t) {
      src[t] = at(x, c * HW + off[tap]);
      msk[t] = masks + tap * nchunks;
      if (++tap == kk) {
        tap = 0;
        ++c;
      }
    }
  };
  index_t r = 0;
  for (; r + 3 <= Kg; r += 3) {
    setup(3);
    dw_tile<MO, 3>(dy, P, src, msk, nfull, tail, out + r, Kg, accumulate);
  }
  if (Kg - r == 2) {
    setup(2);
    dw_tile<MO, 2>(dy, P, src, msk, nfull, tail, out + r, Kg, accumulate);
  } else if (Kg - r == 1) {
    setup(1);
    dw_tile<MO, 1>(dy, P, src, msk, nfull, tail, out + r, Kg, accumulate);
  }
}

void weight_grad_same(const float* dy, const float* x, const Conv2dShape& s, index_t ocg, index_t cg, float* out,
                      bool accumulate) {
  const index_t P = s.OH * s.OW, HW = s.H * s.W, kk = s.kh * s.kw, Kg = cg * kk;
  const index_t nchunks = (P + 15) / 16, nfull = P / 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (P % 16)) - 1);
  // Per tap: x offset of position q's tap (q + off) and, per block of 16 positions, the validity bits.
  // They depend on the geometry only, and the driver calls this once per image and group: the
  // tables are kept per thread and rebuilt only when the geometry changes (rebuilding them per call,
  // a division pair per position and tap, was ~5 % of the 28 x 28 weight gradient;
  // NNFAST_CONV_DW_MASK_CACHE=0: rebuilt every call, for A/B timing; same tables, same bits).
  static const bool cache = env_switch_on("NNFAST_CONV_DW_MASK_CACHE");
  thread_local std::vector<std::int64_t> off;
  thread_local std::vector<std::uint16_t> masks;
  thread_local index_t key[11] = {-1};
  const index_t now[11] = {s.OH, s.OW, s.H, s.W, s.kh, s.kw, s.ph, s.pw, s.dh, s.dw, P};
  bool same = cache;
  for (int i = 0; i < 11 && same; ++i) same = key[i] == now[i];
  if (!same) {
    off.resize(static_cast<size_t>(kk));
    masks.assign(static_cast<size_t>(kk * nchunks), 0);
    for (index_t ky = 0, t = 0; ky < s.kh; ++ky)
      for (index_t kx = 0; kx < s.kw; ++kx, ++t) {
        off[static_cast<size_t>(t)] = (ky * s.dh - s.ph) * s.W + kx * s.dw - s.pw;
        std::uint16_t* m = masks.data() + t * nchunks;
        for (index_t q = 0; q < P; ++q) {
          const index_t ih = q / s.OW - s.ph + ky * s.dh, iw = q % s.OW - s.pw + kx * s.dw;
          if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) m[q / 16] |= static_cast<std::uint16_t>(1u << (q % 16));
        }
      }
    for (int i = 0; i < 11; ++i) key[i] = cache ? now[i] : -1;
  }
  index_t o = 0;
  for (; o + 8 <= ocg; o += 8)
    dw_rows<8>(dy + o * P, x, P, HW, kk, Kg, off.data(), masks.data(), nchunks, nfull, tail, out + o * Kg, accumulate);
  if (ocg - o >= 4) {
    dw_rows<4>(dy + o * P, x, P, HW, kk, Kg, off.data(), masks.data(), nchunks, nfull, tail, out + o * Kg, accumulate);
    o += 4;
  }
  if (ocg - o >= 2) {
    dw_rows<2>(dy + o * P, x, P, HW, kk, Kg, off.data(), masks.data(), nchunks, nfull, tail, out + o * Kg, accumulate);
    o += 2;
  }
  if (ocg - o >= 1)
    dw_rows<1>(dy + o * P, x, P, HW, kk, Kg, off.data(), masks.data(), nchunks, nfull, tail, out + o * Kg, accumulate);
}
#endif

inline double sum8(const double* s) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }

// ConvOps::sum_rows, scalar (8 independent chains: no dependency through one register).
template <typename T>
void sum_rows(const T* a, index_t rows, index_t len, index_t reps, index_t rep_stride, double* out) {
  for (index_t r = 0; r < rows; ++r) {
    double acc[8] = {};
    for (index_t i = 0; i < reps; ++i) {
      const T* p = a + i * rep_stride + r * len;
      index_t j = 0;
      for (; j + 8 <= len; j += 8)
        for (int u = 0; u < 8; ++u) acc[u] += static_cast<double>(p[j + u]);
      for (; j < len; ++j) acc[j % 8] += static_cast<double>(p[j]);
    }
    out[r] += sum8(acc);
  }
}

#if defined(__AVX512F__)
// R rows at once, one 8-lane accumulator each (lane u = partial sum u): R independent add
// chains. The tail's masked-off lanes add +0.0, which leaves a sum unchanged (a sum that
// starts at +0.0 is never -0.0): the scalar loop's bits.
template <int R>
inline void sum_rows_f32_block(const float* a, index_t len, index_t reps, index_t rep_stride, double* out) {
  __m512d acc[R];
  for (int t = 0; t < R; ++t) acc[t] = _mm512_setzero_pd();
  const index_t full = len / 8 * 8;
  const __mmask8 tail = static_cast<__mmask8>((1u << (len % 8)) - 1);
  for (index_t i = 0; i < reps; ++i) {
    const float* p = a + i * rep_stride;
    for (index_t j = 0; j < full; j += 8)
      for (int t = 0; t < R; ++t) acc[t] = _mm512_add_pd(acc[t], _mm512_cvtps_pd(_mm256_loadu_ps(p + t * len + j)));
    if (tail)
      for (int t = 0; t < R; ++t)
        acc[t] = _mm512_add_pd(acc[t], _mm512_cvtps_pd(_mm256_maskz_loadu_ps(tail, p + t * len + full)));
  }
  for (int t = 0; t < R; ++t) {
    alignas(64) double s[8];
    _mm512_store_pd(s, acc[t]);
    out[t] += sum8(s);
  }
}

void sum_rows_f32(const float* a, index_t rows, index_t len, index_t reps, index_t rep_stride, double* out) {
  index_t r = 0;
  for (; r + 4 <= rows; r += 4) sum_rows_f32_block<4>(a + r * len, len, reps, rep_stride, out + r);
  for (; r < rows; ++r) sum_rows_f32_block<1>(a + r * len, len, reps, rep_stride, out + r);
}
#endif

template <typename T>
conv_pack::ConvOps<T> make_conv_ops() {
  conv_pack::ConvOps<T> o;
  o.pack_patches = &pack_patches<T>;
  o.pack_patches_t = nullptr;
  o.sum_rows = &sum_rows<T>;
  o.weight_grad_same = nullptr;
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    o.weight_grad_same = &weight_grad_same;
    o.pack_patches_t = &pack_patches_t;
    o.sum_rows = &sum_rows_f32;
  }
#endif
  return o;
}

}  // namespace

NNFAST_ISA_TABLE_T(conv_pack::ConvOps, make_conv_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

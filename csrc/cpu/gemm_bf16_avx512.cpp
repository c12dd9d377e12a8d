// AVX512-BF16 GEMM kernel (vdpbf16ps), compiled alone with -mavx512bf16 and run
// only where the CPU has it (gemm_bf16.cpp asks cpu_features first).
//
// Same BLIS loop nest as gemm_internal.h's gemm_block. The packed panels hold
// bf16 pairs along K: one 32-bit word = (k even, k odd) of one row of A or one
// column of B, which is what vdpbf16ps multiplies (16 lanes x 2 products into
// float32 accumulators). Packing reads float32 or bf16 operands with any
// strides and rounds float32 to bf16 on the way (vcvtneps2bf16, round to
// nearest even; it flushes subnormal inputs to zero), so no bf16 copy of an
// operand is ever made. K is padded to even with zeros.
//
// ODR: everything with code is in an anonymous namespace and only plain
// declarations come from headers, so no AVX-512 instruction can leak into a
// function that another object shares.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu/gemm_bf16_internal.h"

namespace nnfast::cpu::gemm_detail {
namespace {

using u32 = std::uint32_t;
using u16 = std::uint16_t;

// 12 x 32 register tile: 24 accumulators + 2 B vectors + broadcasts (32 zmm).
constexpr int MR = 12, NV = 2, NR = NV * 16;

inline u32 pair_bits(u16 lo, u16 hi) { return u32(lo) | (u32(hi) << 16); }

// Scalar RNE (same as core/bf16.h, with vcvtneps2bf16's flush of subnormals so
// every packing route gives the same bits).
inline u16 to_bf16(float x) {
  u32 u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return u16((u >> 16) | 0x40u);
  if ((u & 0x7f800000u) == 0) return u16((u >> 16) & 0x8000u);
  return u16((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline u16 elem_bits(const float* p) { return to_bf16(*p); }
inline u16 elem_bits(const u16* p) { return *p; }

// Up to 16 consecutive values (mask picks them, the rest read as 0) as 16 bf16.
inline __m256i load16(const float* p, __mmask16 m) {
  return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, p));
}
inline __m256i load16(const u16* p, __mmask16 m) { return _mm256_maskz_loadu_epi16(m, p); }

inline __mmask16 first_n(index_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// In-register transpose of a 16 x 16 matrix of 32-bit words (r[i] = row i).
inline void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4i + j], 128-bit lane L: column 4L + j of rows 4i .. 4i + 3.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i x0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xee);
    const __m512i y0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xee);
    t[j] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
    t[8 + j] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Packs n x kc values of one operand into P-wide panels of bf16 pairs:
// dst[panel][p][q] = (v(q, 2p), v(q, 2p + 1)), v(q, k) = src[q * qs + k * ks],
// q past n and k past kc read as 0. For A: q = row, for B: q = column.
// NNFAST_BF16_PACK_GROUP (read once): unset or 1 = pack_pairs takes the full panels of an
// operand whose P values of one k are contiguous several at a time (~128 values of each
// row of k per visit); 0 = one panel at a time (the earlier order), for A/B timing. Same
// bits: only the order of the loads and stores changes.
index_t pack_group_values() {
  static const index_t v = [] {
    const char* e = std::getenv("NNFAST_BF16_PACK_GROUP");
    return e && e[0] == '0' ? index_t(0) : index_t(128);
  }();
  return v;
}

// kstride (0: kp) is the pair rows of one panel in dst; the AMX kernel pads K to whole
// tiles (rows kp .. kstride are left to the caller).
template <typename S, int P>
void pack_pairs(index_t n, index_t kc, const S* src, index_t qs, index_t ks, u32* dst, index_t kstride = 0) {
  const index_t kp = (kc + 1) / 2, kps = kstride > 0 ? kstride : kp;
  for (index_t i = 0, adv = 1; i < n; i += adv * P, dst += adv * P * kps) {
    const index_t np = n - i < P ? n - i : P;
    const S* s = src + i * qs;
    adv = 1;
    if (np == P && qs == 1) {
      // The P values of one k are contiguous (row-major B, column-major A):
      // two rows of k become the low and high halves of P words. One panel
      // alone reads P values of each row (at most two cache lines) a whole row
      // stride apart, and rows 2 or 4 KB apart all land in the same few L1 sets
      // (the dx GEMM's W, the dW GEMM's dz^T): visit each row once for up to
      // ~128 values, i.e. for `adv` full panels side by side.
      const index_t full = (n - i) / P, want = pack_group_values() / P;
      adv = want < 1 ? 1 : full < want ? full : want;
      for (index_t p = 0; p < kp; ++p) {
        const S* r0 = s + 2 * p * ks;
        const bool has1 = 2 * p + 1 < kc;
        for (index_t t = 0; t < adv; ++t)
          for (int c = 0; c < P; c += 16) {
            const __mmask16 m = first_n(P - c);
            const __m512i lo = _mm512_cvtepu16_epi32(load16(r0 + t * P + c, m));
            const __m512i hi =
                has1 ? _mm512_cvtepu16_epi32(load16(r0 + ks + t * P + c, m)) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(dst + t * P * kps + p * P + c, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
          }
      }
    } else if (np == P && ks == 1) {
      // Each q's values run contiguously along k (row-major A, B = W^T): 32 of
      // them make one vector of 16 pairs, and a 16 x 16 transpose of such
      // vectors from 16 q gives 16 rows (one per pair) of the panel. A gather
      // or scatter of one element per lane costs several times more here.
      // Rows a multiple of 4 KB apart (float32 K = 1024) all map to the same L1
      // sets, and 16 such streams overflow its 8 ways (the packing runs at half
      // speed): take them 8 at a time (the transpose's other rows are zero).
      const int gq = (qs * index_t(sizeof(S))) % 4096 == 0 ? 8 : 16;
      for (int g0 = 0; g0 < P; g0 += gq) {
        const int nq = P - g0 < gq ? P - g0 : gq;
        const __mmask16 qm = first_n(nq);
        for (index_t p0 = 0; p0 < kp; p0 += 16) {
          const index_t k0 = 2 * p0, left = kc - k0;
          const __mmask16 m0 = first_n(left), m1 = left > 16 ? first_n(left - 16) : __mmask16(0);
          __m512i r[16];
          for (int q = 0; q < 16; ++q) {
            if (q < nq) {
              const S* run = s + (g0 + q) * qs + k0;
              r[q] = _mm512_inserti64x4(_mm512_castsi256_si512(load16(run, m0)), load16(run + 16, m1), 1);
            } else {
              r[q] = _mm512_setzero_si512();
            }
          }
          transpose16(r);
          const index_t np0 = kp - p0 < 16 ? kp - p0 : 16;
          for (index_t j = 0; j < np0; ++j) _mm512_mask_storeu_epi32(dst + (p0 + j) * P + g0, qm, r[j]);
        }
      }
    } else {
      for (index_t p = 0; p < kp; ++p)
        for (int q = 0; q < P; ++q) {
          u16 lo = 0, hi = 0;
          if (q < np) {
            lo = elem_bits(s + q * qs + 2 * p * ks);
            if (2 * p + 1 < kc) hi = elem_bits(s + q * qs + (2 * p + 1) * ks);
          }
          dst[p * P + q] = pair_bits(lo, hi);
        }
    }
  }
}

template <int P>
void pack_operand(const GemmMat& m, index_t row0, index_t col0, index_t n, index_t kc, bool panels_are_rows, u32* dst,
                  index_t kstride = 0) {
  // panels_are_rows: A (q = row, k = column); else B (q = column, k = row).
  const index_t qs = panels_are_rows ? m.rs : m.cs, ks = panels_are_rows ? m.cs : m.rs;
  const index_t off = row0 * m.rs + col0 * m.cs;
  if (m.type == ElemType::BF16)
    pack_pairs<u16, P>(n, kc, static_cast<const u16*>(m.data) + off, qs, ks, dst, kstride);
  else
    pack_pairs<float, P>(n, kc, static_cast<const float*>(m.data) + off, qs, ks, dst, kstride);
}

// The sums over kp pairs of a . b for the first R rows and V vectors of an MR x NR
// tile (panels keep their MR / NR strides; R < MR, V < NV serve edge tiles without
// computing the padding). kDirect: out = the C tile (row stride rs_out, unit columns)
// <- alpha * sum + beta * C as store_tile's vector path; else out[r * NR + j] = sum
// (alpha, beta unused). Each sum runs over p in order whatever R, V: same bits.
template <int R, int V, bool kDirect>
__attribute__((noinline)) void micro_kernel(index_t kp, const u32* __restrict a, const u32* __restrict b,
                                            float* __restrict out, index_t rs_out, float alpha, float beta) {
  __m512 acc[R][V];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (index_t p = 0; p < kp; ++p) {
    __m512bh bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * 16);
    __builtin_prefetch(a + 8 * MR);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[r]));
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bv[v]);
    }
    a += MR;
    b += NR;
  }
  if (!kDirect) {
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + r * NR + v * 16, acc[r][v]);
    return;
  }
  // Straight into a full, unit-stride C tile: the formulas of store_tile's vector path (same bits).
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      float* p = out + r * rs_out + v * 16;
      if (beta == 0.0f) _mm512_storeu_ps(p, _mm512_mul_ps(va, acc[r][v]));
      else if (beta == 1.0f) _mm512_storeu_ps(p, _mm512_fmadd_ps(va, acc[r][v], _mm512_loadu_ps(p)));
      else _mm512_storeu_ps(p, _mm512_fmadd_ps(va, acc[r][v], _mm512_mul_ps(vb, _mm512_loadu_ps(p))));
    }
}

// Sums of an mr x nr edge tile into the float tile, by the smallest kernel that covers it.
using TileSums = void (*)(index_t, const u32*, const u32*, float*, index_t, float, float);
inline TileSums edge_kernel(index_t mr, index_t nr) {
  static constexpr TileSums k[3][2] = {{&micro_kernel<4, 1, false>, &micro_kernel<4, 2, false>},
                                       {&micro_kernel<8, 1, false>, &micro_kernel<8, 2, false>},
                                       {&micro_kernel<12, 1, false>, &micro_kernel<12, 2, false>}};
  static_assert(MR == 12 && NV == 2, "edge_kernel's table covers a 12 x 32 tile");
  return k[(mr - 1) / 4][(nr - 1) / 16];
}

// c = alpha * t + beta * c over an m x n corner (beta == 0 never reads c), as gemm<float>'s tile store.
void store_tile(const float* t, index_t m, index_t n, float alpha, float beta, float* c, index_t rs_c, index_t cs_c) {
  if (m == MR && n == NR && cs_c == 1) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) {
        float* p = c + r * rs_c + v * 16;
        const __m512 x = _mm512_loadu_ps(t + r * NR + v * 16);
        if (beta == 0.0f) _mm512_storeu_ps(p, _mm512_mul_ps(va, x));
        else if (beta == 1.0f) _mm512_storeu_ps(p, _mm512_fmadd_ps(va, x, _mm512_loadu_ps(p)));
        else _mm512_storeu_ps(p, _mm512_fmadd_ps(va, x, _mm512_mul_ps(vb, _mm512_loadu_ps(p))));
      }
    return;
  }
  for (index_t r = 0; r < m; ++r)
    for (index_t j = 0; j < n; ++j) {
      float* p = c + r * rs_c + j * cs_c;
      *p = beta == 0.0f ? alpha * t[r * NR + j] : alpha * t[r * NR + j] + beta * *p;
    }
}

inline index_t round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }

// The jc / pc loops of one thread's C block [i0, i1) x [j0, j1) with its B packed privately
// into Bp (NC-wide, KC-deep blocks kcb x ncb): the `block` of both bf16 kernels (this file's
// and the AMX one, which includes it), given their pack_b and rows.
using PackBFn = void (*)(const Bf16Args&, index_t, index_t, index_t, index_t, index_t, void*);
using RowsFn = void (*)(const Bf16Args&, const void*, void*, index_t, index_t, index_t, index_t, index_t, index_t);
inline void block_nest(const Bf16Args& g, void* ws, void* Bp, index_t kcb, index_t ncb, index_t i0, index_t i1,
                       index_t j0, index_t j1, PackBFn pack, RowsFn rows) {
  for (index_t jc = j0; jc < j1; jc += ncb) {
    const index_t nc = j1 - jc < ncb ? j1 - jc : ncb;
    for (index_t pc = 0; pc < g.K; pc += kcb) {
      const index_t kc = g.K - pc < kcb ? g.K - pc : kcb;
      pack(g, pc, kc, jc, 0, nc, Bp);
      rows(g, Bp, ws, i0, i1, pc, kc, jc, nc);
    }
  }
}

// Columns [jc + a, jc + b) of the B panel at rows [pc, pc + kc): NR-wide panels
// a / NR .. of Bp (a is a multiple of NR), so threads can pack disjoint shares.
void pack_b(const Bf16Args& g, index_t pc, index_t kc, index_t jc, index_t a, index_t b, void* bp) {
  if (b <= a) return;
  pack_operand<NR>(g.B, pc, jc + a, b - a, kc, false, static_cast<u32*>(bp) + a * ((kc + 1) / 2));
}

// One blocking of the loop nest (MC rows of A, KC bf16 values of K, NC columns of
// B) and the micro-kernel's C store (kDirect: accumulators straight into full C
// tiles; else through the float tile and store_tile).
template <int MC, int KC, int NC, bool kDirect>
struct Nest {
  // Workspace of one thread: packed A (mc x kc), the float tile, then (for
  // `block` only) packed B (kc x nc); words of 4 bytes, each part 64-byte aligned.
  static size_t a_words(index_t m, index_t K) {
    const index_t kcb = gemm_balanced_block(K, KC, 8), mcb = gemm_balanced_block(m, MC, MR);
    return size_t(round_up(mcb * kcb / 2, 16) + MR * NR);
  }
  static size_t a_workspace_bytes(index_t m, index_t K) { return a_words(m, K) * 4; }

  static size_t workspace_bytes(index_t m, index_t n, index_t K) {
    const index_t kcb = gemm_balanced_block(K, KC, 8), ncb = gemm_balanced_block(n, NC, NR);
    return (a_words(m, K) + size_t(round_up(ncb * kcb / 2, 16))) * 4;
  }

  // Words of one packed B panel (kc x nc), for a buffer shared by the threads.
  static size_t b_panel_bytes(index_t N, index_t K) {
    const index_t kcb = gemm_balanced_block(K, KC, 8), ncb = gemm_balanced_block(N, NC, NR);
    return size_t(round_up(ncb * kcb / 2, 16)) * 4;
  }

  // Rows [i0, i1) of C times the packed B panel (rows pc.., columns jc..jc + nc):
  // packs A per mc block into ws, runs the micro-kernels, and the epilogue after
  // the last K block.
  static void rows(const Bf16Args& g, const void* bp, void* ws, index_t i0, index_t i1, index_t pc, index_t kc,
                   index_t jc, index_t nc) {
    const index_t m = i1 - i0, kp = (kc + 1) / 2;
    const index_t kcb = gemm_balanced_block(g.K, KC, 8), mcb = gemm_balanced_block(m, MC, MR);
    const u32* Bp = static_cast<const u32*>(bp);
    u32* Ap = static_cast<u32*>(ws);
    float* tile = reinterpret_cast<float*>(Ap + round_up(mcb * kcb / 2, 16));
    const bool last = pc + kc >= g.K;
    const float beta = pc == 0 ? g.beta : 1.0f;
    for (index_t ic = i0; ic < i1; ic += mcb) {
      const index_t mc = i1 - ic < mcb ? i1 - ic : mcb;
      pack_operand<MR>(g.A, ic, pc, mc, kc, true, Ap);
      for (index_t jr = 0; jr < nc; jr += NR) {
        const index_t nr = nc - jr < NR ? nc - jr : NR;
        for (index_t ir = 0; ir < mc; ir += MR) {
          const index_t mr = mc - ir < MR ? mc - ir : MR;
          float* c = g.C + (ic + ir) * g.rs_c + (jc + jr) * g.cs_c;
          for (index_t r = 0; r < mr; ++r) __builtin_prefetch(c + r * g.rs_c, 1);
          if (kDirect && mr == MR && nr == NR && g.cs_c == 1) {
            micro_kernel<MR, NV, true>(kp, Ap + ir * kp, Bp + jr * kp, c, g.rs_c, g.alpha, beta);
          } else {
            // The old nest (!kDirect) runs the full kernel on edges too.
            const TileSums sums = kDirect ? edge_kernel(mr, nr) : &micro_kernel<MR, NV, false>;
            sums(kp, Ap + ir * kp, Bp + jr * kp, tile, NR, 1.0f, 0.0f);
            store_tile(tile, mr, nr, g.alpha, beta, c, g.rs_c, g.cs_c);
          }
        }
      }
      if (last && g.epi) g.epi(*g.epi_args, ic, mc, jc, nc);
    }
  }

  // C block [i0, i1) x [j0, j1) on one thread, B packed privately.
  static void block(const Bf16Args& g, void* ws, index_t i0, index_t i1, index_t j0, index_t j1) {
    const index_t m = i1 - i0, n = j1 - j0;
    const index_t kcb = gemm_balanced_block(g.K, KC, 8), ncb = gemm_balanced_block(n, NC, NR);
    block_nest(g, ws, static_cast<u32*>(ws) + a_words(m, g.K), kcb, ncb, i0, i1, j0, j1, &pack_b, &rows);
  }
};

// bf16 stores of the driver's staged blocks (an m x n block of a dense float32
// buffer, row stride ld -> bf16 with strides rs, cs): exact RNE as core/bf16.h's
// float_to_bf16 (subnormals rounded, not flushed as vcvtneps2bf16 does; NaN
// kept NaN), 16 lanes at a time in integer arithmetic. The scalar copy below is
// local: the header's inline would be emitted with this file's AVX-512 flags.
inline u16 to_bf16_exact(float x) {
  u32 u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return u16((u >> 16) | 0x40u);
  return u16((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void narrow_block(const float* src, index_t ld, u16* dst, index_t rs, index_t cs, index_t m, index_t n) {
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  for (index_t i = 0; i < m; ++i) {
    const float* s = src + i * ld;
    u16* d = dst + i * rs;
    if (cs != 1) {
      for (index_t j = 0; j < n; ++j) d[j * cs] = to_bf16_exact(s[j]);
      continue;
    }
    for (index_t j = 0; j < n; j += 16) {
      const __mmask16 k = first_n(n - j);
      const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(k, s + j));
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
      __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
      const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
      r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), quiet);
      _mm256_mask_storeu_epi16(d + j, k, _mm512_cvtepi32_epi16(r));
    }
  }
}

// bf16 (row stride rs, unit column stride) m x n -> dense float32 (row stride ld), exact.
void widen_block(const u16* src, index_t rs, float* dst, index_t ld, index_t m, index_t n) {
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; j += 16) {
      const __mmask16 k = first_n(n - j);
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, src + i * rs + j));
      _mm512_mask_storeu_epi32(dst + i * ld + j, k, _mm512_slli_epi32(w, 16));
    }
}

// 12 independent vdpbf16ps chains (as peak_isa.cpp's FMA probe): 64 flops each.
__attribute__((noinline)) float dp_chains(long iters, float x) {
  const __m512bh va = (__m512bh)_mm512_set1_epi32(0x3f803f80), vb = (__m512bh)_mm512_set1_epi32(0x3a003a00);
  __m512 c0 = _mm512_set1_ps(x), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (long it = 0; it < iters; ++it) {
    c0 = _mm512_dpbf16_ps(c0, va, vb), c1 = _mm512_dpbf16_ps(c1, va, vb), c2 = _mm512_dpbf16_ps(c2, va, vb);
    c3 = _mm512_dpbf16_ps(c3, va, vb), c4 = _mm512_dpbf16_ps(c4, va, vb), c5 = _mm512_dpbf16_ps(c5, va, vb);
    c6 = _mm512_dpbf16_ps(c6, va, vb), c7 = _mm512_dpbf16_ps(c7, va, vb), c8 = _mm512_dpbf16_ps(c8, va, vb);
    c9 = _mm512_dpbf16_ps(c9, va, vb), c10 = _mm512_dpbf16_ps(c10, va, vb), c11 = _mm512_dpbf16_ps(c11, va, vb);
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7),
                     "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)),
                                               _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11))));
  return _mm512_reduce_add_ps(s);
}

double peak_gflops(double seconds) {
  constexpr double flops_per_iter = 12.0 * 64.0;
  long iters = 1 << 16;
  double best = 0;
  volatile float sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + dp_chains(iters, 1e-3f);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0 && flops_per_iter * iters / dt > best) best = flops_per_iter * iters / dt;
    if (dt < 2e-3) iters *= 2;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) break;
  }
  return best * 1e-9;
}

template <int MC, int KC, int NC, bool kDirect>
constexpr Bf16Kernel make_kernel() {
  using X = Nest<MC, KC, NC, kDirect>;
  return Bf16Kernel{{MR, NR, MC, KC, NC}, &X::workspace_bytes, &X::block, &peak_gflops, &X::a_workspace_bytes,
                    &X::b_panel_bytes, &pack_b, &X::rows, &narrow_block, &widen_block};
}

// KC = 1024 bf16 values (two float32 K blocks' worth): the C tile is read and
// written once per K block, and at KC = 512 that update was ~5 % of a square
// product's time (1-thread CPU time, 2048: 86 -> 90 % of the vdpbf16ps peak);
// the 64 KB B micro-panel then streams from L2, which the kernel's 24 vdpbf16ps
// per 128 B of B hide. MC = 96 keeps the packed A block (192 KB) well inside L2.
// The accumulators go straight into full C tiles (no float tile round trip).
const Bf16Kernel kKernel = make_kernel<96, 1024, 4096, true>();
// NNFAST_BF16_NEST=0: the previous nest (KC = 512, MC = 144, C through the float
// tile), for A/B timing; same bits where K <= 512, else the float32 partial sums
// split at other K points (both within the same bound).
const Bf16Kernel kKernelOld = make_kernel<144, 512, 4096, false>();

}  // namespace

// gemm_bf16_amx.cpp includes this file for its packing and staging (all of it
// internal linkage, so each object has its own copy): only the export is skipped.
#ifndef NNFAST_BF16_AVX512_INCLUDED
const Bf16Kernel* bf16_kernel_avx512() {
  static const bool old = [] {
    const char* e = std::getenv("NNFAST_BF16_NEST");
    return e && e[0] == '0';
  }();
  return old ? &kKernelOld : &kKernel;
}
#endif

}  // namespace nnfast::cpu::gemm_detail

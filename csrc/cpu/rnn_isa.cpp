// Per-ISA fused gate kernels of the recurrent layers: compiled three times
// (NNFAST_ISA_NS = isa_generic / isa_avx2 / isa_avx512) and picked at run time by
// rnn.cpp. Each routine is one row of one step, or of a slice of its hidden units
// (a thread's share): every loop runs one body over full vectors and once more over the
// tail in a partial vector (lanes never mix), so an element's bits do not depend on H,
// the slice or the vector width.
#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>

#include "core/env_switch.h"
#include "core/vec_math.h"
#include "cpu/rnn_internal.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
#include "cpu/transpose_isa.h"
namespace {

using rnn_detail::kStepCols;
using vm::load;
using vm::splat;
using vm::store;

template <typename T>
using VW = vm::Vec<T, simd::kNativeBytes / static_cast<int>(sizeof(T))>;

// A run of lanes a row kernel covers: a full vector, or the row's tail (n < lanes) in one vector with
// its other lanes zero and unwritten. Lanes never mix, so an element's bits are the same either way
// (and the same as one lane at a time): the tail costs one vector, not n single-lane passes (at
// H = 200 on AVX-512 those were 8 of 20 passes a row).
template <class Vec, bool Tail>
struct Run {
  using V = Vec;
  long n;
};
template <class V, bool Tail>
inline V ld(Run<V, Tail> r, const simd::elem_t<V>* p) {
  if constexpr (Tail) {
#if defined(__AVX512F__)  // one masked load, not n scalar ones (masked-off lanes read as 0, never touched)
    if constexpr (sizeof(V) == 64 && sizeof(simd::elem_t<V>) == 4)
      return (V)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << r.n) - 1), p);
    if constexpr (sizeof(V) == 64 && sizeof(simd::elem_t<V>) == 8)
      return (V)_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << r.n) - 1), p);
#endif
    return simd::load_n<V>(p, r.n);
  } else {
    return load<V>(p);
  }
}
template <class V, bool Tail>
inline V ld0(Run<V, Tail> r, const simd::elem_t<V>* p, index_t j) {
  return p ? ld(r, p + j) : V{};
}
template <class V, bool Tail>
inline void st(Run<V, Tail> r, simd::elem_t<V>* p, V v) {
  if constexpr (Tail) {
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64 && sizeof(simd::elem_t<V>) == 4) {
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << r.n) - 1), (__m512)v);
      return;
    }
    if constexpr (sizeof(V) == 64 && sizeof(simd::elem_t<V>) == 8) {
      _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << r.n) - 1), (__m512d)v);
      return;
    }
#endif
    simd::store_n(p, v, r.n);
  } else {
    store(p, v);
  }
}

// body(run, j) for j over [0, H) in steps of a vector's lanes, the tail as one partial run.
template <typename T, class F>
inline void over_row(index_t H, F body) {
  using V = VW<T>;
  constexpr index_t W = simd::lanes<V>();
  index_t j = 0;
  for (; j + W <= H; j += W) body(Run<V, false>{W}, j);
  if (j < H) body(Run<V, true>{static_cast<long>(H - j)}, j);
}

template <typename T>
void lstm_forward_row(T* g, T* c, T* c_save, T* h, T* h2, const T* b_hh, index_t n, index_t H, bool save_tanh) {
  over_row<T>(n, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V i = vm::sigmoid(ld(run, g + j) + ld0(run, b_hh, j));
    const V f = vm::sigmoid(ld(run, g + H + j) + ld0(run, b_hh, H + j));
    const V gg = vm::tanh(ld(run, g + 2 * H + j) + ld0(run, b_hh, 2 * H + j));
    const V o = vm::sigmoid(ld(run, g + 3 * H + j) + ld0(run, b_hh, 3 * H + j));
    const V c1 = f * ld(run, c + j) + i * gg;
    const V tc = vm::tanh(c1);
    const V h1 = o * tc;
    st(run, g + j, i);
    st(run, g + H + j, f);
    st(run, g + 2 * H + j, gg);
    st(run, g + 3 * H + j, o);
    st(run, c + j, c1);
    st(run, c_save + j, save_tanh ? tc : c1);
    st(run, h + j, h1);
    if (h2) st(run, h2 + j, h1);
  });
}

// The body of lstm_backward_row, with forward's tanh(c') saved (Saved) or taken here.
template <typename T, bool Saved>
void lstm_backward_body(T* dg, T* dc, const T* dh, const T* dy, const T* g, const T* c, const T* c_prev, index_t n,
                        index_t H) {
  over_row<T>(n, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V one = splat<V>(T(1));
    const V i = ld(run, g + j), f = ld(run, g + H + j), gg = ld(run, g + 2 * H + j), o = ld(run, g + 3 * H + j);
    const V d = ld(run, dh + j) + ld0(run, dy, j);
    V tc = ld(run, c + j);
    if constexpr (!Saved) tc = vm::tanh(tc);
    const V dcell = ld(run, dc + j) + d * o * (one - tc * tc);
    st(run, dg + j, dcell * gg * i * (one - i));
    st(run, dg + H + j, dcell * ld(run, c_prev + j) * f * (one - f));
    st(run, dg + 2 * H + j, dcell * i * (one - gg * gg));
    st(run, dg + 3 * H + j, d * tc * o * (one - o));
    st(run, dc + j, dcell * f);
  });
}

template <typename T>
void lstm_backward_row(T* dg, T* dc, const T* dh, const T* dy, const T* g, const T* c, const T* c_prev, index_t n,
                       index_t H, bool tanh_saved) {
  if (tanh_saved) lstm_backward_body<T, true>(dg, dc, dh, dy, g, c, c_prev, n, H);
  else lstm_backward_body<T, false>(dg, dc, dh, dy, g, c, c_prev, n, H);
}

template <typename T>
void gru_forward_row(T* g, T* hn, T* h, T* h2, const T* h_prev, const T* b_hh, index_t n, index_t H) {
  over_row<T>(n, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V r = vm::sigmoid(ld(run, g + j) + ld0(run, b_hh, j));
    const V z = vm::sigmoid(ld(run, g + H + j) + ld0(run, b_hh, H + j));
    const V hnj = ld(run, hn + j) + ld0(run, b_hh, 2 * H + j);
    const V n = vm::tanh(ld(run, g + 2 * H + j) + r * hnj);
    const V h1 = n + z * (ld(run, h_prev + j) - n);
    st(run, g + j, r);
    st(run, g + H + j, z);
    st(run, g + 2 * H + j, n);
    st(run, hn + j, hnj);
    st(run, h + j, h1);
    if (h2) st(run, h2 + j, h1);
  });
}

template <typename T>
void gru_backward_row(T* dgh, T* dgx, T* dh, const T* dy, const T* g, const T* hn, const T* h_prev, index_t n,
                      index_t H) {
  over_row<T>(n, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V one = splat<V>(T(1));
    const V r = ld(run, g + j), z = ld(run, g + H + j), n = ld(run, g + 2 * H + j);
    const V d = ld(run, dh + j) + ld0(run, dy, j);
    const V dn = d * (one - z) * (one - n * n);  // gradient of n's pre-activation
    const V dr = dn * ld(run, hn + j) * r * (one - r);
    const V dz = d * (ld(run, h_prev + j) - n) * z * (one - z);
    st(run, dgh + j, dr);
    st(run, dgh + H + j, dz);
    st(run, dgh + 2 * H + j, dn * r);
    st(run, dgx + j, dr);
    st(run, dgx + H + j, dz);
    st(run, dgx + 2 * H + j, dn);
    st(run, dh + j, d * z);
  });
}

template <typename T>
void rnn_forward_row(T* g, T* h, T* h2, const T* b_hh, index_t H, bool relu) {
  over_row<T>(H, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V pre = ld(run, g + j) + ld0(run, b_hh, j);
    const V h1 = relu ? (pre > T(0) ? pre : V{}) : vm::tanh(pre);
    st(run, g + j, h1);
    st(run, h + j, h1);
    if (h2) st(run, h2 + j, h1);
  });
}

template <typename T>
void rnn_backward_row(T* dg, const T* dh, const T* dy, const T* g, index_t H, bool relu) {
  over_row<T>(H, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    const V h1 = ld(run, g + j);
    const V d = ld(run, dh + j) + ld0(run, dy, j);
    st(run, dg + j, relu ? (h1 > T(0) ? d : V{}) : d * (splat<V>(T(1)) - h1 * h1));
  });
}

template <typename T>
void add_row(T* out, const T* a, const T* b, index_t n) {
  over_row<T>(n, [&](auto run, index_t j) {
    using V = typename decltype(run)::V;
    st(run, out + j, ld(run, a + j) + ld0(run, b, j));
  });
}

// ---- The per-step recurrent product (RnnOps::step_gemm) ----
// A register tile of MR rows x NV vectors (one block: runs x kStepCols columns) over all of K: B is
// packed, so each k is NV contiguous loads, and A is read in place (one broadcast per row and k;
// at M = 20 rows packing A would cost as much as its reuse saves). The general GEMM's 12-row tile
// wastes 4 of 24 rows at M = 20 and packs A again for every gate; this one splits M evenly.
constexpr int kVecRegs = simd::kNativeBytes == 64 ? 32 : 16;
constexpr int kMaxTileRows = 12;

// Rows per tile for NV vectors a row: the accumulators, NV B vectors and one broadcast fit the registers.
constexpr int tile_rows(int nv) {
  const int r = (kVecRegs - nv - 1) / nv;
  return r < 1 ? 1 : (r > kMaxTileRows ? kMaxTileRows : r);
}

// Split: the NV vectors span NV / VB adjacent blocks of one-run panels (pstride apart, kStepCols
// values a k each; VB vectors a block) and form one run of NV * W columns.
template <typename T, int NV, int MR, bool Split>
void step_tile(T* c, index_t ldc, const index_t* coff, const T* a, index_t lda, const T* bp, index_t K, index_t ncols,
               bool accumulate, index_t pstride) {
  using V = VW<T>;
  constexpr int W = simd::lanes<V>();
  constexpr int VB = static_cast<int>(kStepCols) / W;  // vectors per block's run
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  const T* ar[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) ar[r] = a + r * lda;
  // C's lines arrive while the K loop runs (forward: the gate rows of the input projection, long
  // out of cache; their miss would otherwise stall the final add).
  if (accumulate)
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) __builtin_prefetch(c + r * ldc + coff[v], 1);
  const T* bq[NV];
  for (int v = 0; v < NV; ++v) bq[v] = Split ? bp + (v / VB) * pstride + (v % VB) * W : bp + v * W;
  constexpr index_t kstep = Split ? kStepCols : NV * W;
  for (index_t k = 0; k < K; ++k) {
    V b[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) b[v] = load<V>(bq[v] + k * kstep);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V s = splat<V>(ar[r][k]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = vm::fmadd(s, b[v], acc[r][v]);
    }
  }
  constexpr int VR = Split ? NV : VB;  // vectors per run
  for (int r = 0; r < MR; ++r) {
    T* cr = c + r * ldc;
    for (int v = 0; v < NV; ++v) {
      const index_t j = (v % VR) * W;  // first column of this vector within its run
      if (j >= ncols) continue;
      T* p = cr + coff[v];
      const index_t n = ncols - j;
      if (n >= W) store(p, accumulate ? load<V>(p) + acc[r][v] : acc[r][v]);
      else simd::store_n(p, accumulate ? simd::load_n<V>(p, static_cast<long>(n)) + acc[r][v] : acc[r][v],
                       static_cast<long>(n));
    }
  }
}

template <typename T, int NV, bool Split, int... R>
constexpr auto step_tiles(std::integer_sequence<int, R...>) {
  using Fn = void (*)(T*, index_t, const index_t*, const T*, index_t, const T*, index_t, index_t, bool, index_t);
  return std::array<Fn, sizeof...(R)>{&step_tile<T, NV, R + 1, Split>...};
}

// One column block (or pair) j: its tiles over the M rows, split evenly into the fewest tiles of at
// most MRmax rows (M = 20 at 6: 5 5 5 5, not 6 6 6 2).
template <typename T, int NV, bool Split>
inline void step_block(T* C, index_t ldc, const index_t* coff, const T* A, index_t lda, const T* bp, index_t M,
                       index_t K, index_t nc, bool accumulate, index_t pstride) {
  constexpr int MRmax = tile_rows(NV);
  static constexpr auto tiles = step_tiles<T, NV, Split>(std::make_integer_sequence<int, MRmax>{});
  const index_t ntiles = (M + MRmax - 1) / MRmax;
  index_t r0 = 0;
  for (index_t t = 0; t < ntiles; ++t) {
    const index_t mr = M / ntiles + (t < M % ntiles ? 1 : 0);
    tiles[static_cast<size_t>(mr - 1)](C + r0 * ldc, ldc, coff, A + r0 * lda, lda, bp, K, nc, accumulate, pstride);
    r0 += mr;
  }
}

// NNFAST_RNN_STEP_PAIRS=0: one-run products (backward's dh_prev) one 16-column block at a time.
bool step_pairs() {
  static const bool v = env_switch_on("NNFAST_RNN_STEP_PAIRS");
  return v;
}

template <typename T, int Runs>
void step_gemm_runs(T* C, index_t ldc, const T* A, index_t lda, const T* Bp, index_t M, index_t K, index_t b0,
                    index_t b1, index_t run_stride, index_t ncols, bool accumulate) {
  constexpr int W = simd::lanes<VW<T>>();
  constexpr int VB = static_cast<int>(kStepCols) / W;  // vectors per block's run
  constexpr int NV = Runs * VB;
  constexpr index_t BW = Runs * kStepCols;
  index_t coff[NV];
  for (int v = 0; v < NV; ++v) coff[v] = (v / VB) * run_stride + (v % VB) * W;
  // One run (backward): two adjacent blocks per tile where that holds more accumulators (AVX-512
  // float: 2 x 10 rows, not 1 x 10; a B vector then feeds 10 FMAs, a broadcast 2): the same sums.
  constexpr bool kPairs = Runs == 1 && 2 * VB * tile_rows(2 * VB) > VB * tile_rows(VB);
  index_t j = b0;
  if constexpr (kPairs) {
    if (step_pairs()) {
      index_t poff[2 * VB];
      for (int v = 0; v < 2 * VB; ++v) poff[v] = v * W;
      for (; j + 1 < b1; j += 2)
        step_block<T, 2 * VB, true>(C + j * kStepCols, ldc, poff, A, lda, Bp + j * K * BW, M, K,
                                    std::min<index_t>(2 * kStepCols, ncols - j * kStepCols), accumulate, K * BW);
    }
  }
  for (; j < b1; ++j)
    step_block<T, NV, false>(C + j * kStepCols, ldc, coff, A, lda, Bp + j * K * BW, M, K,
                             std::min<index_t>(kStepCols, ncols - j * kStepCols), accumulate, 0);
}

template <typename T>
void step_gemm(T* C, index_t ldc, const T* A, index_t lda, const T* Bp, index_t M, index_t K, index_t b0, index_t b1,
               int runs, index_t run_stride, index_t ncols, bool accumulate) {
  if (M <= 0 || b1 <= b0) return;
  if (runs == 4) step_gemm_runs<T, 4>(C, ldc, A, lda, Bp, M, K, b0, b1, run_stride, ncols, accumulate);
  else if (runs == 2) step_gemm_runs<T, 2>(C, ldc, A, lda, Bp, M, K, b0, b1, run_stride, ncols, accumulate);
  else step_gemm_runs<T, 1>(C, ldc, A, lda, Bp, M, K, b0, b1, run_stride, ncols, accumulate);
}

// One block of a step panel from its source rows: d[k][q] = rows[q][k] for the runs * kStepCols
// columns q (column r * kStepCols + l is rows[r * kStepCols + l], zero where l >= n). simd: 8 x 8
// register transposes where the ISA has them (float, AVX2 and up), else one element at a time.
template <typename T>
void pack_block(T* d, const T* const* rows, index_t n, int runs, index_t K, bool simd) {
  const index_t BW = runs * kStepCols;
  index_t k0 = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    if (simd) {
      for (; k0 + 8 <= K; k0 += 8)
        for (index_t q = 0; q < BW; q += 8) {
          __m256 v[8];
          for (index_t i = 0; i < 8; ++i)
            v[i] = q % kStepCols + i < n ? _mm256_loadu_ps(rows[q + i] + k0) : _mm256_setzero_ps();
          transpose8x8_store(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], d + k0 * BW + q, BW);
        }
    }
  }
#else
  (void)simd;
#endif
  for (index_t k = k0; k < K; ++k)
    for (index_t q = 0; q < BW; ++q) d[k * BW + q] = q % kStepCols < n ? rows[q][k] : T(0);
}

}  // namespace

template <typename T>
rnn_detail::RnnOps<T> make_rnn_ops() {
  rnn_detail::RnnOps<T> o;
  o.lstm_forward = &lstm_forward_row<T>;
  o.lstm_backward = &lstm_backward_row<T>;
  o.gru_forward = &gru_forward_row<T>;
  o.gru_backward = &gru_backward_row<T>;
  o.rnn_forward = &rnn_forward_row<T>;
  o.rnn_backward = &rnn_backward_row<T>;
  o.add = &add_row<T>;
  o.step_gemm = &step_gemm<T>;
  o.pack_block = &pack_block<T>;
  return o;
}

NNFAST_ISA_TABLE_T(rnn_detail::RnnOps, make_rnn_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

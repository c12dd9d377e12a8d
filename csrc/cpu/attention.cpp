// Fused scaled dot-product attention on the CPU (see nnfast/attention.h).
//
// Forward, one task per (bh, block of kBq query rows), key blocks of kBk in order:
//   S = scale Q_i K_j^T (+ mask, causal -inf)      cpu::gemm on the tile
//   online softmax: m, l per row, P = exp(S - m), O_i = alpha O_i + dropout(P) V_j
// then O_i /= l and lse = m + log l. Only O and lse leave the task.
// Backward recomputes P = exp(S - lse) per tile, with D = rowsum(dO * O):
//   dV_j += Pd^T dO_i, dP = (dO_i V_j^T) * keep / (1 - p), dS = P (dP - D),
//   dK_j += scale dS^T Q_i, dQ_i += scale dS K_j.
// Under autocast (AttnParams::bf16, float only) each of those products has its operands rounded to
// bf16 (Q, K, V, dO, the P / dS tiles) and accumulates in float32; the online softmax, lse, D, dS
// and the O / dQ / dK / dV accumulators stay float32. Q, K, V and dO are converted once per call
// to bf16 copies for cpu::gemm_bf16 at the AVX512-BF16 level; at the portable level they are
// rounded to bf16 values as their tiles are staged (copies for big heads) and the float32
// products run on them (see Bf16Mode).
// Threads never share an output block: either one task per bh does everything
// (key blocks outer, query blocks inner), or, when there are too few bh to keep
// the threads busy, a pass over (bh, key block) for dK / dV and a second pass over
// (bh, query block) for dQ. Both visit the tiles of each output block in the same
// order with the same GEMM calls, so the bits do not depend on the thread count.
#include "nnfast/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/bf16.h"
#include "core/counter_rng.h"
#include "core/cpu_features.h"
#include "core/parallel_for.h"
#include "cpu/attention_internal.h"
#include "nnfast/gemm.h"
#include "nnfast/parallel.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

using attn_detail::AttnOps;

constexpr index_t kBq = 128;  // query rows per tile
constexpr index_t kBk = 128;  // key rows per tile (and the score tile's row stride)

// Runs f(task) for task in [0, n) on the library's threads, tasks handed out
// one at a time (causal tiles differ in cost). Each task writes its own outputs.
template <typename F>
void for_tasks(index_t n, F&& f) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::min<index_t>(get_num_threads(), n));
#ifdef NNFAST_HAVE_OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      auto scratch = f.make_scratch();
#pragma omp for schedule(dynamic, 1)
      for (index_t t = 0; t < n; ++t) f(t, scratch);
    }
    return;
  }
#endif
  auto scratch = f.make_scratch();
  for (index_t t = 0; t < n; ++t) f(t, scratch);
}

// Heads up to this wide run their tile products through AttnOps::small_gemm (no packing:
// at E = 16, packing a 64 x 64 x 16 product for the blocked GEMM costs as much as the product).
constexpr index_t kSmallHead = 64;

template <typename T>
struct Scratch {
  std::vector<T> s, pd, dp, m, l, alpha, bt, qa, da;  // qa / da: the portable bf16 level's rounded Q / dO block
  Scratch()
      : s(kBq * kBk), pd(kBq * kBk), dp(kBq * kBk), m(kBq), l(kBq), alpha(kBq), bt(kSmallHead * kBk),
        qa(kBq * kSmallHead), da(kBq * kSmallHead) {}
};

// Where a tile product meets the causal triangle (direct path, tiles crossing the diagonal): the
// entries of P / dS with key j > query i are exactly 0 (scores: -inf, rewritten by mask_tile), so
// chunks of output rows skip the keys / queries no row of theirs can see.
enum class Causal { None, KeyCols, KeySum, QuerySum };  // keys are the columns / the sum / queries are the sum
struct TileAt {
  Causal kind;
  index_t i0, j0;  // the tile's first query and key
};
constexpr index_t kCausalChunk = 16;  // output rows per chunk (a multiple of small_gemm's row blocks)

// How the bf16 route (AttnParams::bf16) runs its products; Off for float32 (and double).
//   Native:   Q / K / V / dO converted to bf16 once per call (the AVX512-BF16 GEMM's rounding, so the
//             bits are Gemm's), every product on cpu::gemm_bf16, which packs a bf16 operand by copying.
//   Portable: Q / K / V / dO rounded to bf16 values (vectorised, in cache as tile_product stages a
//             tile -- TileMat::raw -- or, for heads over kSmallHead, in per-call copies) and the
//             P / dS tiles rounded in place: the float32 products (small_gemm / gemm) then have bf16
//             operands and float32 accumulation, as the portable gemm_bf16, without its per-tile
//             widened copies and blocked GEMM (that route was 1.26x slower than the float32 one).
//   Gemm:     every product on cpu::gemm_bf16 from the float32 operands (rounded as it packs each
//             tile): the route before the per-call copies, NNFAST_ATTN_BF16_COPY=0 (read once).
enum class Bf16Mode { Off, Gemm, Portable, Native };

inline bool bf16_copies_on() {
  static const bool on = env_switch_on("NNFAST_ATTN_BF16_COPY");
  return on;
}

template <typename T>
Bf16Mode bf16_mode(const AttnParams& p) {
  if (!std::is_same_v<T, float> || !p.bf16) return Bf16Mode::Off;
  if (!bf16_copies_on()) return Bf16Mode::Gemm;
  return bf16_kernel_level() == Bf16Level::Portable ? Bf16Mode::Portable : Bf16Mode::Native;
}

// One operand of a tile product: element (i, k) at p[i * rs + k * cs], of type T or (Native's
// copies) bf16 bits.
template <typename T>
struct TileMat {
  const void* p;
  index_t rs, cs;
  bool bf16 = false;
  bool raw = false;  // portable level: float32 values that tile_product rounds as it stages them in bt
  TileMat plus(index_t elems) const {
    if (bf16) return {static_cast<const bf16_t*>(p) + elems, rs, cs, true, raw};
    return {static_cast<const T*>(p) + elems, rs, cs, false, raw};
  }
  TileMat at(index_t i, index_t k) const { return plus(i * rs + k * cs); }
  const T* f() const { return static_cast<const T*>(p); }
};

// c (row stride ldc, unit columns) = alpha * A B (+ c when accumulate): the bf16 GEMM (Gemm / Native),
// else the blocked GEMM, or for small heads the direct loop (a B with strided columns is first
// transposed into bt, K rows of at most kBk).
// Tiles crossing the causal diagonal run in chunks of rows (see TileAt) on the bf16 GEMM and the
// direct loop; the bf16 chunks are taller (each call packs its own A and B): 48 rows (4 micro-tile
// rows of the AVX512-BF16 kernel) took 4-5 % less CPU time than whole tiles at B=8 H=8 T=512 D=64
// fwd+bwd, 1 thread, under load (64: the same; 16: slower than whole tiles).
constexpr index_t kCausalChunkBf16 = 48;

template <typename T>
void tile_product(const AttnParams& p, Bf16Mode mode, const AttnOps<T>& ops, Scratch<T>& w, index_t M, index_t N,
                  index_t K, T alpha, TileMat<T> a, TileMat<T> b, bool accumulate, T* c, index_t ldc,
                  TileAt at = {Causal::None, 0, 0}) {
  const bool bf16 = mode == Bf16Mode::Gemm || mode == Bf16Mode::Native;
  if (!bf16 && (p.E > kSmallHead || p.Ev > kSmallHead)) {
    gemm<T>(M, N, K, alpha, a.f(), a.rs, a.cs, b.f(), b.rs, b.cs, accumulate ? T(1) : T(0), c, ldc, 1);
    return;
  }
  T* bt = w.bt.data();  // (raw a-operands, Q / dO blocks, were staged by the caller: see query_block)
  if (!bf16 && b.cs != 1) {  // here K <= kSmallHead (a head dim), N <= kBk (a key tile) and rs == 1 (K^T, V^T)
    ops.transpose(bt, kBk, b.f(), b.cs, N, K);
    if constexpr (std::is_same_v<T, float>)
      if (b.raw) ops.round_bf16(bt, kBk, bt, kBk, K, N);  // in cache: cheaper than a per-call copy's traffic
    b = {bt, kBk, 1};
  } else if (b.raw) {  // a value tile (K <= kBk rows of N <= kSmallHead) rounded into bt
    if constexpr (std::is_same_v<T, float>) ops.round_bf16(bt, N, b.f(), b.rs, K, N);
    b = {bt, N, 1};
  }
  // Rows [r0, r0 + m) of c, n columns, terms [k0, k0 + kk).
  auto run = [&](index_t r0, index_t m, index_t n, index_t k0, index_t kk) {
    T* cc = c + r0 * ldc;
    const TileMat<T> aa = a.at(r0, k0), bb = b.at(k0, 0);
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {  // the GEMM picks its bf16 level (and threads, for big heads)
        auto mat = [](const TileMat<T>& x) {
          return GemmMat{x.p, x.bf16 ? ElemType::BF16 : ElemType::F32, x.rs, x.cs};
        };
        gemm_bf16(m, n, kk, alpha, mat(aa), mat(bb), accumulate ? 1.0f : 0.0f, cc, ElemType::F32, ldc, 1);
        return;
      }
    }
    ops.small_gemm(cc, ldc, aa.f(), aa.rs, aa.cs, bb.f(), bb.rs, m, n, kk, alpha, accumulate);
  };
  const index_t keys = at.kind == Causal::KeyCols ? N : at.kind == Causal::KeySum ? K : M;
  if (!p.causal || at.kind == Causal::None || at.j0 + keys - 1 <= at.i0) {
    run(0, M, N, 0, K);
    return;
  }
  const index_t chunk = bf16 ? kCausalChunkBf16 : kCausalChunk;
  for (index_t r0 = 0; r0 < M; r0 += chunk) {
    const index_t r1 = std::min(M, r0 + chunk);
    // keys the chunk's last query row sees (queries rows), or queries before the chunk's first key (keys rows)
    const index_t live = std::clamp<index_t>(at.i0 + r1 - at.j0, 0, keys);
    if (at.kind == Causal::KeyCols) {
      run(r0, r1 - r0, live, 0, K);
      if (!accumulate)  // columns no row of the chunk sees: 0, as P and dS are there
        for (index_t r = r0; r < r1; ++r) std::fill(c + r * ldc + live, c + r * ldc + N, T(0));
    } else if (at.kind == Causal::KeySum) {
      run(r0, r1 - r0, N, 0, live);
    } else {
      const index_t ks = std::clamp<index_t>(at.j0 + r0 - at.i0, 0, K);
      run(r0, r1 - r0, N, ks, K - ks);
    }
  }
}

// One operand of every batch-head: matrix bh at base + off[bh] (or bh * bh_stride when off is null),
// element (i, k) at i * rs + k * cs, of type T or bf16 bits.
template <typename T>
struct Src {
  TileMat<T> m{nullptr, 0, 1};
  const int64_t* off = nullptr;
  index_t bh_stride = 0;
  TileMat<T> at(index_t bh, index_t i, index_t k) const {
    return m.plus(off ? static_cast<index_t>(off[bh]) : bh * bh_stride).at(i, k);
  }
};

// What the tile loops read: q (L x E), k (S x E), kt = K^T (E x S), v (S x Ev), vt = V^T (Ev x S),
// dout (L x Ev), the mask, and how the products run. kt / vt are views of k / v (rs 1) except at
// the portable bf16 level, whose copies are transposed once per call.
template <typename T>
struct Operands {
  Src<T> q, k, kt, v, vt, dout;
  AttnMask mask;
  Bf16Mode mode = Bf16Mode::Off;
};

// Mask and causal rule on the score tile s (rows i0.., columns j0..).
template <typename T>
void mask_tile(T* s, index_t nq, index_t nk, index_t bh, index_t i0, index_t j0, const AttnMask& mk,
               const AttnParams& p) {
  const T ninf = -std::numeric_limits<T>::infinity();
  if (mk.base) {
    const index_t base = mk.off[bh] + i0 * mk.rs + j0 * mk.cs;
    if (mk.is_bool) {
      const uint8_t* mb = static_cast<const uint8_t*>(mk.base) + base;
      for (index_t r = 0; r < nq; ++r)
        for (index_t c = 0; c < nk; ++c)
          if (!mb[r * mk.rs + c * mk.cs]) s[r * kBk + c] = ninf;
    } else {
      const T* mf = static_cast<const T*>(mk.base) + base;
      for (index_t r = 0; r < nq; ++r)
        for (index_t c = 0; c < nk; ++c) s[r * kBk + c] += mf[r * mk.rs + c * mk.cs];
    }
  }
  if (p.causal && j0 + nk - 1 > i0) {  // the tile crosses the diagonal: j > i is masked
    for (index_t r = 0; r < nq; ++r)
      for (index_t c = std::max<index_t>(0, i0 + r + 1 - j0); c < nk; ++c) s[r * kBk + c] = ninf;
  }
}

// x := x * keep / (1 - p) with the counter-based mask of elements (bh, i0 + r, j0 + c).
template <typename T>
void dropout_tile(T* x, index_t nq, index_t nk, index_t bh, index_t i0, index_t j0, const AttnParams& p) {
  const uint64_t key = counter_rng::dropout_stream_key(p.seed, p.offset);
  const uint32_t thr = counter_rng::keep_threshold(p.dropout_p);
  const T inv = T(1) / T(1.0 - p.dropout_p);
  for (index_t r = 0; r < nq; ++r) {
    const uint64_t row = (static_cast<uint64_t>(bh) * p.L + (i0 + r)) * p.S + j0;
    for (index_t c = 0; c < nk; ++c)
      x[r * kBk + c] = counter_rng::dropout_bits(key, row + c) < thr ? x[r * kBk + c] * inv : T(0);
  }
}

// A causal tile crossing the diagonal: row r's keys past i0 + r are -inf (mask_tile), so its exp
// runs over its first causal_cols columns only and the rest is set to 0 (= exp(-inf)). The count is
// rounded up to 16 columns, whole vectors at every SIMD width from the tile's start, so the row's
// max, its lane sums and so every bit are those of the full row; about a third of the exps go.
inline bool crosses_diagonal(const AttnParams& p, index_t i0, index_t j0, index_t nk) {
  return p.causal && j0 + nk - 1 > i0;
}
inline index_t causal_cols(index_t i0, index_t j0, index_t r, index_t nk) {
  const index_t seen = std::max<index_t>(0, i0 + r + 1 - j0);
  return std::min(nk, (seen + 15) / 16 * 16);
}

// Whether tile (query rows from i0, nq of them; keys from j0) has any key taking part under the causal rule.
inline bool tile_live(const AttnParams& p, index_t i0, index_t nq, index_t j0) {
  return !p.causal || j0 <= i0 + nq - 1;
}

// The portable bf16 level rounds a P / dS tile (nq x nk, row stride kBk) in place before its products
// (Native / Gemm: the bf16 GEMM rounds it as it packs).
template <typename T>
void round_tile(Bf16Mode mode, const AttnOps<T>& ops, T* x, index_t nq, index_t nk) {
  if constexpr (std::is_same_v<T, float>)
    if (mode == Bf16Mode::Portable) ops.round_bf16(x, kBk, x, kBk, nq, nk);
}

// Rows [i0, i0 + nq) of Q or dO (cols wide) for the products. At the portable level (raw) the block
// is rounded into buf once (stage) and read there by every product that takes it.
template <typename T>
TileMat<T> query_block(const Src<T>& src, index_t bh, index_t i0, index_t nq, index_t cols, std::vector<T>& buf,
                       const AttnOps<T>& ops, bool stage) {
  const TileMat<T> x = src.at(bh, i0, 0);
  if constexpr (std::is_same_v<T, float>)
    if (x.raw) {
      if (stage) ops.round_bf16(buf.data(), cols, x.f(), x.rs, nq, cols);
      return {buf.data(), cols, 1};
    }
  return x;
}

template <typename T>
void forward_block(const AttnMat<T>& out, T* lse, const Operands<T>& in, const AttnParams& p, index_t bh,
                   index_t i0, Scratch<T>& w, const AttnOps<T>& ops) {
  const index_t nq = std::min(kBq, p.L - i0);
  const T ninf = -std::numeric_limits<T>::infinity();
  const TileMat<T> q = query_block(in.q, bh, i0, nq, p.E, w.qa, ops, true);
  const index_t ldo = out.rs;
  T* o = out.at(bh, p.L) + i0 * ldo;
  for (index_t r = 0; r < nq; ++r) std::fill(o + r * ldo, o + r * ldo + p.Ev, T(0));
  std::fill(w.m.begin(), w.m.begin() + nq, ninf);
  std::fill(w.l.begin(), w.l.begin() + nq, T(0));
  for (index_t j0 = 0; j0 < p.S && tile_live(p, i0, nq, j0); j0 += kBk) {
    const index_t nk = std::min(kBk, p.S - j0);
    tile_product(p, in.mode, ops, w, nq, nk, p.E, T(p.scale), q, in.kt.at(bh, 0, j0), false, w.s.data(),
                 kBk, {Causal::KeyCols, i0, j0});
    mask_tile(w.s.data(), nq, nk, bh, i0, j0, in.mask, p);
    if (!ops.full_rows && crosses_diagonal(p, i0, j0, nk)) {
      for (index_t r = 0; r < nq; ++r) {
        const index_t n = causal_cols(i0, j0, r, nk);
        ops.softmax_update(w.s.data() + r * kBk, 1, n, kBk, w.m.data() + r, w.l.data() + r, w.alpha.data() + r);
        std::fill(w.s.data() + r * kBk + n, w.s.data() + r * kBk + nk, T(0));
      }
    } else {
      ops.softmax_update(w.s.data(), nq, nk, kBk, w.m.data(), w.l.data(), w.alpha.data());
    }
    if (j0 > 0)
      for (index_t r = 0; r < nq; ++r)
        if (w.alpha[r] != T(1))
          for (index_t e = 0; e < p.Ev; ++e) o[r * ldo + e] *= w.alpha[r];
    if (p.dropout_p > 0) dropout_tile(w.s.data(), nq, nk, bh, i0, j0, p);
    round_tile(in.mode, ops, w.s.data(), nq, nk);  // l summed the float32 P; the product takes bf16(P)
    tile_product(p, in.mode, ops, w, nq, p.Ev, nk, T(1), {w.s.data(), kBk, 1}, in.v.at(bh, j0, 0), true,
                 o, ldo, {Causal::KeySum, i0, j0});
  }
  for (index_t r = 0; r < nq; ++r) {
    const T l = w.l[r];
    T* orow = o + r * ldo;
    if (l > T(0)) {
      const T inv = T(1) / l;
      for (index_t e = 0; e < p.Ev; ++e) orow[e] *= inv;
      lse[bh * p.L + i0 + r] = w.m[r] + std::log(l);
    } else {  // no key takes part: output 0, and +inf makes every recomputed probability 0
      for (index_t e = 0; e < p.Ev; ++e) orow[e] = T(0);
      lse[bh * p.L + i0 + r] = std::numeric_limits<T>::infinity();
    }
  }
}

// Everything backward needs from one tile: w.s = P, w.pd = dropout(P) (when dv is wanted),
// w.dp = dS. Writes dS into dmask when given.
template <typename T>
struct BackwardArgs {
  AttnMat<T> dq, dk, dv;
  T* dmask;
  const T *lse, *D;
};

template <typename T>
void backward_tile(const BackwardArgs<T>& b, const Operands<T>& in, const AttnParams& p, index_t bh, index_t i0,
                   index_t j0, bool want_pd, Scratch<T>& w, const AttnOps<T>& ops) {
  const index_t nq = std::min(kBq, p.L - i0), nk = std::min(kBk, p.S - j0);
  const TileMat<T> q = query_block(in.q, bh, i0, nq, p.E, w.qa, ops, true);  // staged for accumulate_kv too
  const TileMat<T> dout = query_block(in.dout, bh, i0, nq, p.Ev, w.da, ops, true);
  tile_product(p, in.mode, ops, w, nq, nk, p.E, T(p.scale), q, in.kt.at(bh, 0, j0), false, w.s.data(), kBk,
               {Causal::KeyCols, i0, j0});
  mask_tile(w.s.data(), nq, nk, bh, i0, j0, in.mask, p);
  if (!ops.full_rows && crosses_diagonal(p, i0, j0, nk)) {
    for (index_t r = 0; r < nq; ++r) {
      const index_t n = causal_cols(i0, j0, r, nk);
      ops.exp_shift(w.s.data() + r * kBk, 1, n, kBk, b.lse + bh * p.L + i0 + r);
      std::fill(w.s.data() + r * kBk + n, w.s.data() + r * kBk + nk, T(0));
    }
  } else {
    ops.exp_shift(w.s.data(), nq, nk, kBk, b.lse + bh * p.L + i0);
  }
  if (want_pd) {
    for (index_t r = 0; r < nq; ++r) std::memcpy(&w.pd[r * kBk], &w.s[r * kBk], nk * sizeof(T));
    if (p.dropout_p > 0) dropout_tile(w.pd.data(), nq, nk, bh, i0, j0, p);
    round_tile(in.mode, ops, w.pd.data(), nq, nk);
  }
  tile_product(p, in.mode, ops, w, nq, nk, p.Ev, T(1), dout, in.vt.at(bh, 0, j0), false, w.dp.data(), kBk,
               {Causal::KeyCols, i0, j0});
  if (p.dropout_p > 0) dropout_tile(w.dp.data(), nq, nk, bh, i0, j0, p);
  ops.softmax_grad(w.dp.data(), w.s.data(), nq, nk, kBk, b.D + bh * p.L + i0);
  if (b.dmask)
    for (index_t r = 0; r < nq; ++r)
      std::memcpy(b.dmask + (bh * p.L + i0 + r) * p.S + j0, &w.dp[r * kBk], nk * sizeof(T));
  round_tile(in.mode, ops, w.dp.data(), nq, nk);  // dmask is the float32 dS; the products take bf16(dS)
}

// dK_j / dV_j += the tile's contributions (w from backward_tile with want_pd).
template <typename T>
void accumulate_kv(const BackwardArgs<T>& b, const Operands<T>& in, const AttnParams& p, index_t bh, index_t i0,
                   index_t j0, Scratch<T>& w, const AttnOps<T>& ops) {
  const index_t nq = std::min(kBq, p.L - i0), nk = std::min(kBk, p.S - j0);
  const TileMat<T> q = query_block(in.q, bh, i0, nq, p.E, w.qa, ops, false);  // as backward_tile staged them
  const TileMat<T> dout = query_block(in.dout, bh, i0, nq, p.Ev, w.da, ops, false);
  tile_product(p, in.mode, ops, w, nk, p.Ev, nq, T(1), {w.pd.data(), 1, kBk}, dout, true,
               b.dv.at(bh, p.S) + j0 * b.dv.rs, b.dv.rs, {Causal::QuerySum, i0, j0});
  tile_product(p, in.mode, ops, w, nk, p.E, nq, T(p.scale), {w.dp.data(), 1, kBk}, q, true,
               b.dk.at(bh, p.S) + j0 * b.dk.rs, b.dk.rs, {Causal::QuerySum, i0, j0});
}

template <typename T>
void accumulate_q(const BackwardArgs<T>& b, const Operands<T>& in, const AttnParams& p, index_t bh, index_t i0,
                  index_t j0, Scratch<T>& w, const AttnOps<T>& ops) {
  const index_t nq = std::min(kBq, p.L - i0), nk = std::min(kBk, p.S - j0);
  tile_product(p, in.mode, ops, w, nq, p.E, nk, T(p.scale), {w.dp.data(), kBk, 1}, in.k.at(bh, j0, 0),
               true, b.dq.at(bh, p.L) + i0 * b.dq.rs, b.dq.rs, {Causal::KeySum, i0, j0});
}

// The element-by-element K / V tile transpose the ISA's blocked one replaced (NNFAST_ATTN_BLOCKED_T=0
// or NNFAST_ATTN_OLD=1). Its own copy here, not an inline template shared with the per-ISA files,
// whose AVX-512 instance the linker could otherwise pick for every caller.
template <typename T>
void copy_transpose(T* bt, index_t ldb, const T* b, index_t rs, index_t n, index_t kk) {
  for (index_t j = 0; j < n; ++j)
    for (index_t k = 0; k < kk; ++k) bt[k * ldb + j] = b[j * rs + k];
}

// The ISA's row loops; NNFAST_ATTN_OLD=1 (read per call) swaps in the earlier paths (the
// multiply-then-add small_gemm, exps over whole diagonal-tile rows, the copied K / V transposes), so
// benches can alternate old and new in one process; NNFAST_ATTN_BLOCKED_T=0 (per call too) only the
// copied transposes (same bits: a test compares the two in one process).
template <typename T>
AttnOps<T> attn_ops() {
  AttnOps<T> o = isa_ops<AttnOps<T>>();
  // Per call (same bits either way): the AVX-512 register blocking's two steps, for A/B timing.
  if (!env_switch_on("NNFAST_ATTN_TALL_R")) o.small_gemm = o.small_gemm_short;
  else if (!env_switch_on("NNFAST_ATTN_SLICES")) o.small_gemm = o.small_gemm_whole;
  const char* env = std::getenv("NNFAST_ATTN_OLD");
  if (env && env[0] == '1') o.small_gemm = o.small_gemm_unfused, o.full_rows = true;
  const char* bt = std::getenv("NNFAST_ATTN_BLOCKED_T");
  if ((env && env[0] == '1') || (bt && bt[0] == '0')) o.transpose = &copy_transpose<T>;
  return o;
}

template <typename T>
struct ScratchMaker {
  Scratch<T> make_scratch() const { return Scratch<T>(); }
};

// A per-call copy of an operand's distinct matrices (heads sharing an offset -- GQA, broadcast batch
// dims -- once), each converted to bf16-rounded float values or bf16 bits.
template <typename E>
struct OperandCopy {
  std::vector<E> data;
  std::vector<int64_t> off;       // (BH,) element offsets of the copy's matrices
  std::vector<const float*> src;  // the distinct source matrices
  // Numbers the distinct matrices of s; matrix u of the copy is mat elements from u * mat.
  void distinct(const Src<float>& s, index_t BH, index_t mat) {
    std::unordered_map<const float*, int64_t> slot;
    src.clear();
    off.resize(static_cast<size_t>(BH));
    for (index_t bh = 0; bh < BH; ++bh) {
      const float* m = s.at(bh, 0, 0).f();
      const auto it = slot.emplace(m, static_cast<int64_t>(src.size())).first;
      if (it->second == static_cast<int64_t>(src.size())) src.push_back(m);
      off[bh] = it->second * mat;
    }
    data.resize(src.size() * static_cast<size_t>(mat));
  }
};

// Row-major copies (rows x cols, contiguous) of s's matrices, converted row by row by conv.
template <typename E>
Src<float> copy_operand(OperandCopy<E>& c, const Src<float>& s, index_t BH, index_t rows, index_t cols,
                        void (*conv)(E*, index_t, const float*, index_t, index_t, index_t)) {
  c.distinct(s, BH, rows * cols);
  const index_t rs = s.m.rs;
  parallel_for(static_cast<index_t>(c.src.size()) * rows, 64, [&](index_t lo, index_t hi) {
    for (index_t t = lo; t < hi;) {  // runs of rows within one matrix
      const index_t u = t / rows, r = t % rows, n = std::min(hi - t, rows - r);
      conv(c.data.data() + t * cols, cols, c.src[u] + r * rs, rs, n, cols);
      t += n;
    }
  });
  Src<float> out;
  out.m = {c.data.data(), cols, 1, std::is_same_v<E, bf16_t>};
  out.off = c.off.data();
  return out;
}

// Storage of the bf16 levels' per-call copies (Operands points into it), one per calling thread and
// kept from call to call: fresh buffers cost a page fault and a zero fill per 4 KB on every call, about
// as much as the conversion (B=8 H=8 T=512 D=64: 40 MB a backward call). It holds the largest call's
// copies until the thread ends.
struct Bf16Copies {
  OperandCopy<float> f[4];   // portable, big heads: q, k, v, dout rounded
  OperandCopy<bf16_t> h[4];  // AVX512-BF16: q, k, v, dout in bf16
};

inline Bf16Copies& bf16_copies() {
  thread_local Bf16Copies st;
  return st;
}

template <typename T>
Src<T> view(const AttnOperand<T>& a) {
  Src<T> s;
  s.m = {a.base, a.rs, 1};
  s.off = a.off;
  return s;
}

// The operands of one call: views of the inputs (dout null: forward), marked raw (to be rounded
// in tile_product) or replaced by the bf16 copies in st at the bf16 levels.
template <typename T>
Operands<T> make_operands(const AttnInputs<T>& in, const AttnMat<const T>* dout, const AttnParams& p,
                          const AttnOps<T>& ops, Bf16Copies& st) {
  Operands<T> o;
  o.mask = in.mask;
  o.mode = bf16_mode<T>(p);
  o.q = view(in.q), o.k = view(in.k), o.v = view(in.v);
  if (dout) {
    o.dout.m = {dout->base, dout->rs, 1};
    o.dout.off = dout->off;
    o.dout.bh_stride = p.L * dout->rs;
  }
  const bool bw = dout != nullptr;
  if constexpr (std::is_same_v<T, float>) {
    const index_t BH = p.BH, L = p.L, S = p.S, E = p.E, Ev = p.Ev;
    if (o.mode == Bf16Mode::Portable && E <= kSmallHead && Ev <= kSmallHead) {
      // Small heads: Q / dO blocks (query_block, into qa / da) and K / V tiles (tile_product, into
      // bt, where the float32 route transposes K / V anyway) are rounded as they are staged, in cache; per-call copies cost
      // more in memory traffic (B=8 H=8 T=512 D=64 fwd+bwd, 1 thread, under load: copies 1.19x the
      // float32 route's CPU time, in-tile rounding 1.02x).
      o.q.m.raw = o.k.m.raw = o.v.m.raw = o.dout.m.raw = true;
    } else if (o.mode == Bf16Mode::Portable) {  // big heads: rounded copies for the blocked GEMM
      const auto r = ops.round_bf16;
      o.q = copy_operand(st.f[0], o.q, BH, L, E, r);
      o.k = copy_operand(st.f[1], o.k, BH, S, E, r);
      o.v = copy_operand(st.f[2], o.v, BH, S, Ev, r);
      if (bw) o.dout = copy_operand(st.f[3], o.dout, BH, L, Ev, r);
    } else if (o.mode == Bf16Mode::Native) {
      const auto r = ops.narrow_bf16;
      o.q = copy_operand(st.h[0], o.q, BH, L, E, r);
      o.k = copy_operand(st.h[1], o.k, BH, S, E, r);
      o.v = copy_operand(st.h[2], o.v, BH, S, Ev, r);
      if (bw) o.dout = copy_operand(st.h[3], o.dout, BH, L, Ev, r);
    }
  }
  auto transposed = [](Src<T> s) {  // K^T / V^T read in place: element (e, j) = row j's e
    std::swap(s.m.rs, s.m.cs);
    return s;
  };
  if (!o.kt.m.p) o.kt = transposed(o.k);
  if (!o.vt.m.p) o.vt = transposed(o.v);
  return o;
}

}  // namespace

template <typename T>
void sdpa_forward(T* out, T* lse, const AttnInputs<T>& in, const AttnParams& p) {
  sdpa_forward(AttnMat<T>{out, nullptr, p.Ev}, lse, in, p);
}

template <typename T>
void sdpa_forward(const AttnMat<T>& out, T* lse, const AttnInputs<T>& in, const AttnParams& p) {
  if (p.BH <= 0 || p.L <= 0) return;
  const AttnOps<T> ops = attn_ops<T>();
  Bf16Copies& st = bf16_copies();
  const Operands<T> op = make_operands<T>(in, nullptr, p, ops, st);
  const index_t nqb = (p.L + kBq - 1) / kBq;
  struct Task : ScratchMaker<T> {
    const AttnMat<T>* out;
    T* lse;
    const Operands<T>* in;
    const AttnParams* p;
    const AttnOps<T>* ops;
    index_t nqb;
    void operator()(index_t t, Scratch<T>& w) const {
      forward_block(*out, lse, *in, *p, t / nqb, (t % nqb) * kBq, w, *ops);
    }
  } task;
  task.out = &out, task.lse = lse, task.in = &op, task.p = &p, task.ops = &ops, task.nqb = nqb;
  for_tasks(p.BH * nqb, task);
}

template <typename T>
void sdpa_backward(T* dq, T* dk, T* dv, T* dmask, const T* dout, const T* out, const T* lse,
                   const AttnInputs<T>& in, const AttnParams& p) {
  sdpa_backward(AttnMat<T>{dq, nullptr, p.E}, AttnMat<T>{dk, nullptr, p.E}, AttnMat<T>{dv, nullptr, p.Ev}, dmask,
                AttnMat<const T>{dout, nullptr, p.Ev}, AttnMat<const T>{out, nullptr, p.Ev}, lse, in, p);
}

// Zeros the BH matrices (rows x cols) of m: one fill when contiguous, else row by row.
template <typename T>
void zero_mats(const AttnMat<T>& m, index_t BH, index_t rows, index_t cols) {
  if (!m.off && m.rs == cols) {
    std::fill(m.base, m.base + BH * rows * cols, T(0));
    return;
  }
  for (index_t bh = 0; bh < BH; ++bh)
    for (index_t r = 0; r < rows; ++r) std::fill(m.at(bh, rows) + r * m.rs, m.at(bh, rows) + r * m.rs + cols, T(0));
}

template <typename T>
void sdpa_backward(const AttnMat<T>& dq, const AttnMat<T>& dk, const AttnMat<T>& dv, T* dmask,
                   const AttnMat<const T>& dout, const AttnMat<const T>& out, const T* lse, const AttnInputs<T>& in,
                   const AttnParams& p) {
  if (p.BH <= 0) return;
  const index_t BH = p.BH, L = p.L, S = p.S;
  // Every output block is written by its task; blocks no live tile reaches stay 0.
  zero_mats(dq, BH, L, p.E);
  zero_mats(dk, BH, S, p.E);
  zero_mats(dv, BH, S, p.Ev);
  if (dmask) std::fill(dmask, dmask + BH * L * S, T(0));
  if (L <= 0 || S <= 0) return;
  const AttnOps<T> ops = attn_ops<T>();
  std::vector<T> D(static_cast<size_t>(BH * L));
  if (!dout.off && !out.off && dout.rs == p.Ev && out.rs == p.Ev) {
    parallel_for(BH * L, 4096, [&](index_t lo, index_t hi) {
      ops.row_dot(D.data() + lo, dout.base + lo * p.Ev, out.base + lo * p.Ev, hi - lo, p.Ev);
    });
  } else {  // strided rows: one row_dot per row (a row is the unit both layouts share)
    parallel_for(BH * L, 4096, [&](index_t lo, index_t hi) {
      for (index_t t = lo; t < hi; ++t) {
        const index_t bh = t / L, r = t % L;
        ops.row_dot(D.data() + t, dout.at(bh, L) + r * dout.rs, out.at(bh, L) + r * out.rs, 1, p.Ev);
      }
    });
  }
  Bf16Copies& st = bf16_copies();
  const Operands<T> op = make_operands<T>(in, &dout, p, ops, st);
  const BackwardArgs<T> b{dq, dk, dv, dmask, lse, D.data()};
  const index_t nqb = (L + kBq - 1) / kBq, nkb = (S + kBk - 1) / kBk;
  const int nt = get_num_threads();

  // Enough batch-heads: one task per bh, key blocks outer, query blocks inner (5 GEMMs per tile).
  struct Fused : ScratchMaker<T> {
    const BackwardArgs<T>* b;
    const Operands<T>* in;
    const AttnParams* p;
    const AttnOps<T>* ops;
    index_t nqb, nkb;
    void operator()(index_t bh, Scratch<T>& w) const {
      for (index_t kb = 0; kb < nkb; ++kb)
        for (index_t qb = 0; qb < nqb; ++qb) {
          const index_t i0 = qb * kBq, j0 = kb * kBk;
          if (!tile_live(*p, i0, std::min(kBq, p->L - i0), j0)) continue;
          backward_tile(*b, *in, *p, bh, i0, j0, true, w, *ops);
          accumulate_kv(*b, *in, *p, bh, i0, j0, w, *ops);
          accumulate_q(*b, *in, *p, bh, i0, j0, w, *ops);
        }
    }
  };
  // Few batch-heads: (bh, key block) tasks for dK / dV, then (bh, query block) tasks for dQ.
  struct KV : Fused {
    void operator()(index_t t, Scratch<T>& w) const {
      const index_t bh = t / this->nkb, j0 = (t % this->nkb) * kBk;
      for (index_t qb = 0; qb < this->nqb; ++qb) {
        const index_t i0 = qb * kBq;
        if (!tile_live(*this->p, i0, std::min(kBq, this->p->L - i0), j0)) continue;
        backward_tile(*this->b, *this->in, *this->p, bh, i0, j0, true, w, *this->ops);
        accumulate_kv(*this->b, *this->in, *this->p, bh, i0, j0, w, *this->ops);
      }
    }
  };
  struct Q : Fused {
    void operator()(index_t t, Scratch<T>& w) const {
      const index_t bh = t / this->nqb, i0 = (t % this->nqb) * kBq;
      const index_t nq = std::min(kBq, this->p->L - i0);
      const BackwardArgs<T> bq{this->b->dq, this->b->dk, this->b->dv, nullptr, this->b->lse, this->b->D};
      for (index_t kb = 0; kb < this->nkb; ++kb) {
        const index_t j0 = kb * kBk;
        if (!tile_live(*this->p, i0, nq, j0)) break;
        backward_tile(bq, *this->in, *this->p, bh, i0, j0, false, w, *this->ops);
        accumulate_q(bq, *this->in, *this->p, bh, i0, j0, w, *this->ops);
      }
    }
  };
  Fused f;
  f.b = &b, f.in = &op, f.p = &p, f.ops = &ops, f.nqb = nqb, f.nkb = nkb;
  if (nt <= 1 || BH >= 4 * nt) {
    for_tasks(BH, f);
  } else {
    KV kv;
    static_cast<Fused&>(kv) = f;
    for_tasks(BH * nkb, kv);
    Q qt;
    static_cast<Fused&>(qt) = f;
    for_tasks(BH * nqb, qt);
  }
}

template void sdpa_forward<float>(float*, float*, const AttnInputs<float>&, const AttnParams&);
template void sdpa_forward<double>(double*, double*, const AttnInputs<double>&, const AttnParams&);
template void sdpa_backward<float>(float*, float*, float*, float*, const float*, const float*, const float*,
                                   const AttnInputs<float>&, const AttnParams&);
template void sdpa_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                    const double*, const AttnInputs<double>&, const AttnParams&);
template void sdpa_forward<float>(const AttnMat<float>&, float*, const AttnInputs<float>&, const AttnParams&);
template void sdpa_forward<double>(const AttnMat<double>&, double*, const AttnInputs<double>&, const AttnParams&);
template void sdpa_backward<float>(const AttnMat<float>&, const AttnMat<float>&, const AttnMat<float>&, float*,
                                   const AttnMat<const float>&, const AttnMat<const float>&, const float*,
                                   const AttnInputs<float>&, const AttnParams&);
template void sdpa_backward<double>(const AttnMat<double>&, const AttnMat<double>&, const AttnMat<double>&,
                                    double*, const AttnMat<const double>&, const AttnMat<const double>&,
                                    const double*, const AttnInputs<double>&, const AttnParams&);

}  // namespace nnfast::cpu

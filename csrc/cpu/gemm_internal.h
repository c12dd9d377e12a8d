// GEMM internals shared by the driver (gemm.cpp) and the per-ISA kernels
// (gemm_isa.cpp, compiled once per instruction set).
//
// Layout of the work (BLIS / GotoBLAS):
//   for jc in N step NC            (thread-owned column range)
//     for pc in K step KC          pack B[pc:pc+kc, jc:jc+nc] -> Bp  (NR-column panels)
//       for ic in M step MC        pack A[ic:ic+mc, pc:pc+kc] -> Ap  (MR-row panels, in L2)
//         for jr in nc step NR     Bp micro-panel (kc x NR) stays in L1
//           for ir in mc step MR   micro-kernel: MR x NR tile of C in registers
// Panels are zero-padded to MR / NR, so the micro-kernel always computes a full
// tile; edge tiles (and C with non-unit column stride) go through a small
// temporary tile that scalar code merges into C. The width-specific code is
// therefore only: load / store / broadcast / fma of full vectors.
//
// ODR note: this header is compiled with different -m flags in each ISA object.
// Everything with code in it is either a template over an ISA-local type, or
// `static`, or lives in namespace NNFAST_ISA_NS, so the linker can never merge
// an AVX-512 copy of a function into the AVX2 or generic path.
#pragma once
#include <cstddef>

#include "core/gemm_operands.h"
#include "core/isa_dispatch.h"
#include "nnfast/gemm.h"

namespace nnfast::cpu {
namespace gemm_detail {

// A B operand produced on demand instead of read from memory (implicit GEMM: the
// convolution's patch matrix is gathered from the image straight into the packed
// layout, so the full matrix is never written and re-read). pack(ctx, k0, kc, j0, nc,
// dst, nr) writes B[k0 : k0 + kc, j0 : j0 + nc] as nr-column panels, dst[panel][k][j]
// (panel p at dst + p * nr * kc), columns past nc zero. Called from the GEMM's threads.
template <typename T>
struct GemmBPack {
  void (*pack)(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* dst, int nr);
  const void* ctx;
};

// Everything the per-ISA block routine needs about one gemm call: the operands
// (core/gemm_operands.h), then the epilogue and the B-packing threshold.
template <typename T>
struct GemmArgs : GemmOperands<T, index_t> {
  // Applied to each finished block of C (rows [i0, i0+m), cols [j0, j0+n))
  // after the last K block, while it is still in L2. Null: no epilogue.
  void (*tile_epilogue)(const GemmArgs<T>& g, index_t i0, index_t m, index_t j0, index_t n);
  const GemmEpilogue<T>* ep;
  // Threads whose block has at most this many rows read B in place instead of
  // packing it (set by the driver; see gemm.cpp).
  index_t direct_m;
  // Non-null: B comes from this packer (g.B, rs_b, cs_b are unused).
  const GemmBPack<T>* b_pack = nullptr;
  // Non-null: bias[j] is added to column j of C as the last K block is stored
  // (after alpha * acc + beta * C, so the same bits as adding it afterwards); the
  // epilogue then skips it. Saves a second pass over C (~15 % at K = 48).
  const T* store_bias = nullptr;
  // Non-null: A already packed by gemm_prepack_a for this M, N, K (its panels are
  // read in place; A, rs_a, cs_a are unused).
  const T* a_packed = nullptr;
  // Non-null: bias[i] is added to row i of C as the last K block is stored, like store_bias
  // (a convolution's per-channel bias: saves its own pass over the output).
  const T* store_bias_rows = nullptr;
  // Non-null (A with unit row stride, not prepacked): row_sum[i] (+= when row_sum_acc, else =)
  // sum_k A(i, k), k ascending, summed by pack_a as it copies A, by the threads whose C block
  // starts at column 0 (gemm_row_sums: a Linear's bias gradient out of its dW GEMM, the bits
  // of bias_grad on A^T).
  T* row_sum = nullptr;
  bool row_sum_acc = false;
  // Non-null: B already packed (all K blocks, all N columns, by pack_b_all; read in place, as
  // a_packed): the threads of a row split share one packing of B (gemm.cpp, run_shared_b).
  const T* b_packed = nullptr;
  // Threads whose block has at most this many rows read A in place (no packing of A: its
  // values are broadcast straight from A's rows; gemm_block). 0: always pack A. Set by gemm().
  index_t direct_a_m = 0;
};

// Register tile and cache blocking of one ISA / dtype.
struct GemmBlocking {
  int mr, nr;  // micro-tile
  int mc, kc, nc;  // L2 block of A rows, K block, L3 block of B columns
  // Vector width in columns where a last, narrower B panel is computed in whole vectors
  // only (gemm_block's compute_part); 0: the last panel costs a full nr.
  int nw = 0;
};

static inline index_t gemm_round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }
static inline index_t gemm_min(index_t a, index_t b) { return a < b ? a : b; }

// Split `total` into ceil(total / blk) near-equal parts, each a multiple of `q`
// (so K = 784 gives 4 blocks of 200, not 3 x 256 + 16).
static inline index_t gemm_balanced_block(index_t total, index_t blk, index_t q) {
  index_t parts = (total + blk - 1) / blk;
  if (parts < 1) parts = 1;
  return gemm_round_up((total + parts - 1) / parts, q);
}

// Workspace (in elements) for one thread working on an m x n block of C:
// packed A (mc x kc), packed B (kc x nc), one MR x NR temporary tile, and with row_sums
// the block's row sums (m rounded up to MR); each part starts on a 64-byte boundary.
// Must match the carving in gemm_impl::gemm_block.
template <typename T>
static inline index_t gemm_workspace_elems(const GemmBlocking& bk, index_t m, index_t n, index_t K,
                                           bool row_sums = false) {
  const index_t line = 64 / sizeof(T);
  const index_t kc = gemm_balanced_block(K, bk.kc, 8);
  const index_t mc = gemm_balanced_block(m, bk.mc, bk.mr);
  const index_t nc = gemm_balanced_block(n, bk.nc, bk.nr);
  return gemm_round_up(mc * kc, line) + gemm_round_up(kc * nc, line) + gemm_round_up(bk.mr * bk.nr, line) +
         (row_sums ? gemm_round_up(gemm_round_up(m, bk.mr), line) : 0);
}

}  // namespace gemm_detail

// Tuning hook for benchmarks: rows at or below which a thread skips packing
// (negative: restore the default). Not part of the public API.
void gemm_set_direct_m(index_t rows);

namespace gemm_detail {
// The per-ISA routines (gemm_isa.cpp fills one table per ISA and dtype).
template <typename T>
struct GemmOps {
  GemmBlocking blocking;
  // C block [i0, i1) x [j0, j1) (all of K) with one thread; ws is 64-byte aligned and
  // holds gemm_workspace_elems(blocking, i1 - i0, j1 - j0, K) elements.
  void (*block)(const GemmArgs<T>& g, T* ws, index_t i0, index_t i1, index_t j0, index_t j1);
  // A second register tile for shapes the first pads badly (AVX-512: 8 x 48 for M = 32, 64,
  // 128 ... where 12 x 32 computes 12 % extra rows); null where the ISA has none. The driver
  // takes whichever pads C less. Same K blocking and order: the bits do not depend on the tile.
  GemmBlocking alt_blocking;
  void (*alt_block)(const GemmArgs<T>& g, T* ws, index_t i0, index_t i1, index_t j0, index_t j1);
  // All of A (M x K) packed for block / alt_block: per K block (offset pc * round_up(M, mr)),
  // the M rows in mr-row panels, exactly as the block routine would pack them itself.
  void (*pack_a_all)(index_t M, index_t K, const T* A, index_t rs, index_t cs, T* dst);
  void (*alt_pack_a_all)(index_t M, index_t K, const T* A, index_t rs, index_t cs, T* dst);
  // All of B (K x N) packed for block / alt_block (GemmArgs::b_packed): per K block (offset
  // pc * round_up(N, nr)) the N columns in nr-column panels; here columns [j0, j1) (j0 a
  // multiple of nr).
  void (*pack_b_all)(index_t N, index_t K, index_t j0, index_t j1, const T* B, index_t rs, index_t cs, T* dst);
  void (*alt_pack_b_all)(index_t N, index_t K, index_t j0, index_t j1, const T* B, index_t rs, index_t cs,
                         T* dst);
  // Rows [i0, i1) of C for a narrow C (N of a few columns) whose A rows and B columns are both
  // contiguous along K (cs_a == 1, rs_b == 1: a Linear's forward x . W^T into 10 classes): each
  // C element a dot product vectorised along K (no padding of N to the register tile), then
  // alpha / beta / store_bias and the tile epilogue. Its own summation order (lanes, then the
  // K tail): not the bits of block.
  void (*dot_rows)(const GemmArgs<T>& g, index_t i0, index_t i1);
};
}  // namespace gemm_detail

NNFAST_ISA_DECLARE_TABLE_T(gemm_detail::GemmOps)

// Driver pieces that gemm.cpp shares with the bf16 GEMM (gemm_bf16.cpp).
namespace gemm_detail {
template <typename T>
using TileFn = void (*)(const GemmArgs<T>&, index_t, index_t, index_t, index_t);
// The fused epilogue routine for ep (null when there is nothing to do).
TileFn<float> gemm_epilogue_fn(const GemmEpilogue<float>& ep);
// This thread's packing buffer (64-byte aligned, grown on demand and kept).
void* gemm_thread_workspace(std::size_t bytes);
// Splits C (M x N) into up to nt rectangles on the micro-tile grid of bk and runs
// work(ctx, i0, i1, j0, j1) for each, one per thread.
void gemm_run_grid(index_t M, index_t N, int nt, const GemmBlocking& bk,
                   void (*work)(void* ctx, index_t i0, index_t i1, index_t j0, index_t j1), void* ctx);
// NNFAST_GEMM_PACK_A_T (read once): row-major A packed by register transposes also where
// MR is not a whole number of transpose blocks (see pack_a).
bool gemm_pack_a_transpose_enabled();
// NNFAST_GEMM_PACK_RUNS (read once): the transposing pack walks TW source runs at a time
// along all of kc, and transposes the 4 runs past the last block of a 12-run panel too
// (0: all P runs at each k step, those 4 gathered value by value, as before; same bits).
bool gemm_pack_runs_by_block_enabled();
// Threads worth using for a product of this many flops (nt at most).
int gemm_threads_for(double flops, int nt);
// C = alpha * A . B + beta * C with B from a packer (float, double); at most nt threads
// (1 inside a caller's parallel region). Same bits as gemm() on the materialised B.
// a_packed: non-null, A as packed by gemm_prepack_a(M, N, K, ...) (A, rs_a, cs_a unused).
// row_bias: non-null, row_bias[i] is added to row i of C after the product (while storing it).
template <typename T>
void gemm_packed_b(index_t M, index_t N, index_t K, T alpha, const T* A, index_t rs_a, index_t cs_a,
                   const GemmBPack<T>& b, T beta, T* C, index_t rs_c, index_t cs_c, int nt,
                   const T* a_packed = nullptr, const T* row_bias = nullptr);
// A operand packed once for several gemm_packed_b calls with the same A and M, N, K (a
// convolution's weight, one GEMM per image): elements of the buffer, then the packing.
template <typename T>
index_t gemm_prepack_a_elems(index_t M, index_t N, index_t K);
template <typename T>
void gemm_prepack_a(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, T* dst);
}  // namespace gemm_detail

}  // namespace nnfast::cpu

// ------------------------------------------------------------------------------------------
// Implementation templates: only compiled inside an ISA object (or a test that
// defines NNFAST_ISA_NS itself), parameterised by a vector-traits type V:
//   V::T (scalar), V::R (register type), V::W (lanes), zero(), load(p), store(p, r),
//   set1(x), mul(a, b), add(a, b), fma(a, b, c) = a * b + c.
#if defined(NNFAST_ISA_NS) && defined(NNFAST_GEMM_IMPL)
#include <array>
#include <cstring>
#include <utility>

#include "core/simd.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
namespace gemm_impl {

using gemm_detail::GemmArgs;
using gemm_detail::GemmBlocking;
using gemm_detail::gemm_min;
using gemm_detail::gemm_round_up;
using gemm_detail::gemm_balanced_block;


// Portable traits on the vector layer of core/simd.h (SSE2 / NEON / the
// compiler's lowering of wider vectors). Also used by the C++ tests to run the
// AVX-512 tile shapes on a machine without AVX-512. fma is explicit (fused where
// the target has FMA): the build never contracts a * b + c by itself.
template <typename T_, int W_>
struct VecExt {
  using T = T_;
  using R = simd::Vec<T_, W_>;
  static constexpr int W = W_;
  static inline R zero() { return R{}; }
  static inline R load(const T* p) { return simd::load<R>(p); }
  static inline void store(T* p, R v) { simd::store(p, v); }
  static inline R set1(T x) { return R{} + x; }
  static inline R mul(R a, R b) { return a * b; }
  static inline R add(R a, R b) { return a + b; }
  static inline R fma(R a, R b, R c) { return simd::fma(a, b, c); }
};

// MR x (NV * W) register tile. a: packed A micro-panel (kc x MR, k-major),
// b: packed B micro-panel (kc x NR, k-major). compute() stores the raw tile
// acc[r * NR + j] = sum_k a[k][r] * b[k][j] (kc >= 1) to an aligned buffer; it is
// kept out of line with nothing else live so the compiler holds all MR x NV
// accumulators in registers without spills. store() merges a full tile into C.
template <class V, int MR, int NV>
struct MicroKernel {
  using T = typename V::T;
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int NR = NV * W;

  // DA: A read in place, A(r, k) = a[r * ars] for this k (the step's a), not a packed panel.
  template <bool DA = false>
  static inline __attribute__((always_inline)) void step(R (&acc)[MR][NV], const T* __restrict a,
                                                          const T* __restrict b, index_t ars = 0) {
    R bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * W);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      R ar = V::set1(DA ? a[r * ars] : a[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(ar, bv[v], acc[r][v]);
    }
  }

  // DA: A read in place (A(r, k) = a[r * ars + k * acs]); the same FMAs in the same order as
  // on the packed panel, so the same bits.
  template <bool DA = false>
  __attribute__((noinline)) static void compute(index_t kc, const T* __restrict a, const T* __restrict b,
                                                T* __restrict out, index_t ars = 0, index_t acs = 0) {
    R acc[MR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
    // Unroll 4 (2 for the 24-accumulator AVX-512 tile, where 4 makes GCC spill).
    constexpr int U = MR * NV > 16 ? 2 : 4;
    const index_t as = DA ? acs : MR;  // a's step per k
    index_t k = 0;
    for (; k + U <= kc; k += U) {
      if constexpr (!DA) __builtin_prefetch(a + 16 * MR);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) step<DA>(acc, a + u * as, b + u * NR, ars);
      a += U * as;
      b += U * NR;
    }
    for (; k < kc; ++k) {
      step<DA>(acc, a, b, ars);
      a += as;
      b += NR;
    }
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(out + r * NR + v * W, acc[r][v]);
  }

  // The tile's first NVN vectors of columns only, B rows still NR apart: the last panel of a
  // C whose width is not a multiple of NR (e.g. N = 196 = 6 x 32 + 4) then costs NVN / NV of a
  // full tile instead of all of it. Same per-element FMA order as compute().
  template <int NVN, bool DA = false>
  __attribute__((noinline)) static void compute_part(index_t kc, const T* __restrict a, const T* __restrict b,
                                                     T* __restrict out, index_t ars = 0, index_t acs = 0) {
    const index_t as = DA ? acs : MR;
    R acc[MR][NVN];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NVN; ++v) acc[r][v] = V::zero();
    for (index_t k = 0; k < kc; ++k) {
      R bv[NVN];
#pragma GCC unroll 8
      for (int v = 0; v < NVN; ++v) bv[v] = V::load(b + v * W);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        R ar = V::set1(DA ? a[r * ars] : a[r]);
#pragma GCC unroll 8
        for (int v = 0; v < NVN; ++v) acc[r][v] = V::fma(ar, bv[v], acc[r][v]);
      }
      a += as;
      b += NR;
    }
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NVN; ++v) V::store(out + r * NR + v * W, acc[r][v]);
  }

  // Same tile with B read in place: B(k, j) = b[k * brs + j] (unit column
  // stride). Used when this thread has few rows of C, so packing B would cost
  // as much as the arithmetic it feeds. A is still packed (it is small then).
  __attribute__((noinline)) static void compute_direct_b(index_t kc, const T* __restrict a, const T* __restrict b,
                                                         index_t brs, T* __restrict out) {
    R acc[MR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
    index_t k = 0;
    for (; k + 2 <= kc; k += 2) {
      step(acc, a, b);
      step(acc, a + MR, b + brs);
      a += 2 * MR;
      b += 2 * brs;
    }
    if (k < kc) step(acc, a, b);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(out + r * NR + v * W, acc[r][v]);
  }

  // c = alpha * t + beta * c (+ bias[j] when bias is non-null) for a full MR x NR tile
  // (unit column stride); beta == 0 never reads c.
  // rbias (non-null): rbias[r] is added to row r instead (both null: no bias).
  static inline void store(const T* __restrict t, T alpha, T beta, T* __restrict c, index_t rs_c,
                           const T* __restrict bias, const T* __restrict rbias = nullptr) {
    if (bias)
      store_tile<1>(t, alpha, beta, c, rs_c, bias);
    else if (rbias)
      store_tile<2>(t, alpha, beta, c, rs_c, rbias);
    else
      store_tile<0>(t, alpha, beta, c, rs_c, bias);
  }

  // BIAS: 0 none, 1 bias[j] per column, 2 bias[r] per row.
  template <int BIAS>
  static inline void store_tile(const T* __restrict t, T alpha, T beta, T* __restrict c, index_t rs_c,
                                const T* __restrict bias) {
    const R va = V::set1(alpha);
    R bv[NV];
    if constexpr (BIAS == 1) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = V::load(bias + v * W);
    }
    auto put = [&](T* p, R x, int r, int v) {
      if constexpr (BIAS == 1) x = V::add(x, bv[v]);
      if constexpr (BIAS == 2) x = V::add(x, V::set1(bias[r]));
      V::store(p, x);
    };
    if (beta == T(0)) {
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) put(c + r * rs_c + v * W, V::mul(va, V::load(t + r * NR + v * W)), r, v);
    } else if (beta == T(1)) {
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          T* p = c + r * rs_c + v * W;
          put(p, V::fma(va, V::load(t + r * NR + v * W), V::load(p)), r, v);
        }
    } else {
      const R vb = V::set1(beta);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          T* p = c + r * rs_c + v * W;
          put(p, V::fma(va, V::load(t + r * NR + v * W), V::mul(vb, V::load(p))), r, v);
        }
    }
  }
};

// Hand-scheduled full-tile kernel an ISA object may supply for one (V, MR, NV) (a
// specialisation in gemm_isa.cpp, declared before gemm_block is instantiated). on() says
// whether to use it (its A/B switch); it computes exactly what MicroKernel::compute() does on
// packed panels, with the same FMAs in the same order (same bits).
// kPacked: run() (packed A) exists; kDirectA: run_da() (A read in place, like compute<true>).
template <class V, int MR, int NV>
struct FastTile {
  static constexpr bool kPacked = false, kDirectA = false;
  static bool on() { return false; }
  // c (row stride rs_c, unit column stride) = tile, or c + tile when add.
  static void run(index_t, const typename V::T*, const typename V::T*, typename V::T*, index_t, bool) {}
  static void run_da(index_t, const typename V::T*, const typename V::T*, typename V::T*, index_t, bool, index_t,
                     index_t) {}
};

// Square in-register transpose used by the transposing packs. The default has
// no block (W == 0: scalar packing); an ISA object specialises it before use:
// run() reads W rows of W contiguous values (row stride lds) and writes them
// transposed (row stride ldd).
// kQuad: run_quad(s, lds, d, ldd) transposes 4 runs of W values into W rows of 4 (the 4 runs
// past the last whole block of a 12-row panel).
template <typename T>
struct TransposeBlock {
  static constexpr int W = 0;
  static inline void run(const T*, index_t, T*, index_t) {}
  static constexpr bool kQuad = false;
  static inline void run_quad(const T*, index_t, T*, index_t) {}
};

// Packing A into MR-row panels and B into NR-column panels is one operation
// (B's panels are those of B^T): pack_panels below, over n "panel" values times
// kc, value p of step k at src[p * ps + k * ks]. The two differ only for a full
// panel whose P source runs are contiguous along k (row-major A, B^T stored
// row-major); each passes its own copy of such a panel.

// Full panel, run p at src + p * ps contiguous in k: gathered k by k (A's rows).
template <typename T, int P>
static inline void pack_k_runs_gather(index_t kc, const T* __restrict src, index_t ps, T* __restrict dst) {
  const T* runs[P];
  for (int p = 0; p < P; ++p) runs[p] = src + p * ps;
  for (index_t k = 0; k < kc; ++k)
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) dst[k * P + p] = runs[p][k];
}

// The same panel transposed in TW x TW register blocks where the ISA has them
// (B^T stored row-major: Linear's forward; row-major A), scalar for the rest: the k
// tail, and the runs past the last whole block (P = 12 rows: 8 by blocks, 4 gathered).
template <typename T, int P>
static inline void pack_k_runs_transpose(index_t kc, const T* __restrict src, index_t ps, T* __restrict dst) {
  constexpr int TW = TransposeBlock<T>::W;
  constexpr int PB = TW > 0 ? P / TW * TW : 0;  // runs packed by blocks
  index_t k = 0;
  if constexpr (PB > 0) {
    // k in steps of two blocks, so each source cache line is used up by two
    // back-to-back transposes (the P runs are often 4 KB apart and would
    // otherwise evict each other from one L1 set between uses).
    const index_t k2 = kc / (2 * TW) * (2 * TW);
    auto pair = [&](int c, index_t kk) {
      TransposeBlock<T>::run(src + c * ps + kk, ps, dst + kk * P + c, P);
      TransposeBlock<T>::run(src + c * ps + kk + TW, ps, dst + (kk + TW) * P + c, P);
    };
    if (gemm_detail::gemm_pack_runs_by_block_enabled()) {
      // TW runs at a time along all of kc, then the next TW: TW live streams instead of P.
      // Runs 4 KB apart (W of a Linear, K = 1024) all fall in one L1 set; P = 32 of them
      // per step made the pack ~2.6x slower than at K = 1040 (0.35 vs 0.13 ns per value).
      for (int c = 0; c < PB; c += TW)
        for (index_t kk = 0; kk < k2; kk += 2 * TW) pair(c, kk);
    } else {
      // The earlier order (NNFAST_GEMM_PACK_RUNS=0): all P runs at each k step.
      for (index_t kk = 0; kk < k2; kk += 2 * TW)
        for (int c = 0; c < PB; c += TW) pair(c, kk);
    }
    k = k2;
    for (; k + TW <= kc; k += TW)
      for (int c = 0; c < PB; c += TW) TransposeBlock<T>::run(src + c * ps + k, ps, dst + k * P + c, P);
  }
  if constexpr (PB < P) {
    index_t kq = 0;  // k values of the last P - PB runs done by run_quad
    if constexpr (P - PB == 4) {
      // (k is a multiple of TW here.) NNFAST_GEMM_PACK_RUNS=0: gathered value by value.
      if constexpr (TransposeBlock<T>::kQuad)
        if (gemm_detail::gemm_pack_runs_by_block_enabled())
          for (; kq < k; kq += TW) TransposeBlock<T>::run_quad(src + PB * ps + kq, ps, dst + kq * P + PB, P);
    }
    const T* runs[P - PB];
    for (int c = PB; c < P; ++c) runs[c - PB] = src + c * ps;
    for (index_t kk = kq; kk < k; ++kk)
#pragma GCC unroll 8
      for (int c = PB; c < P; ++c) dst[kk * P + c] = runs[c - PB][kk];
  }
  for (int c = 0; c < P; ++c) {
    const T* run = src + c * ps;
    for (index_t kk = k; kk < kc; ++kk) dst[kk * P + c] = run[kk];
  }
}

// kb rows of P contiguous values (row k at s + k * ks) into d[k * P + c]; SUM: also
// sums[c] += the values, k ascending, the P running sums in registers for the kb rows.
template <typename T, int P, bool SUM>
static inline void copy_k_rows(index_t kb, const T* __restrict s, index_t ks, T* __restrict d, T* __restrict sums) {
  T acc[P];
  if constexpr (SUM) {
#pragma GCC unroll 64
    for (int c = 0; c < P; ++c) acc[c] = sums[c];
  }
  for (index_t k = 0; k < kb; ++k)
#pragma GCC unroll 64
    for (int c = 0; c < P; ++c) {
      const T v = s[k * ks + c];
      d[k * P + c] = v;
      if constexpr (SUM) acc[c] += v;
    }
  if constexpr (SUM) {
#pragma GCC unroll 64
    for (int c = 0; c < P; ++c) sums[c] = acc[c];
  }
}

// Packs n x kc values into P-wide panels, dst[panel][k][p], the last panel
// zero-padded to P. PackKRuns(kc, src, ps, dst) copies a full panel whose source
// is contiguous along k (ks == 1).
// sums (only with ps == 1): sums[p] += the panel values p over k ascending (first: from 0),
// in registers 8 k at a time: each value is summed as it is copied (row_sum, gemm_row_sums).
template <typename T, int P, void (*PackKRuns)(index_t, const T*, index_t, T*)>
static void pack_panels(index_t n, index_t kc, const T* __restrict src, index_t ps, index_t ks, T* __restrict dst,
                        T* __restrict sums = nullptr, bool first = false) {
  index_t i = 0;
  if (sums && first)
    for (index_t p = 0; p < n; ++p) sums[p] = T(0);
  if (ps == 1) {
    // The P values of each k are contiguous (column-major A: the TN case;
    // row-major B): all full panels together, 8 k at a time, so the 8 source
    // runs stay in L1 (row-major B: kc rows often 4 KB apart, one L1 set, would
    // be refetched per panel) while every panel takes its 8 x P values, each
    // panel written in one contiguous stretch.
    const index_t npan = n / P;
    for (index_t k0 = 0; k0 < kc; k0 += 8) {
      const index_t kb = gemm_min(8, kc - k0);
      for (index_t p = 0; p < npan; ++p) {
        const T* s = src + k0 * ks + p * P;
        T* d = dst + p * P * kc + k0 * P;
        if (sums)
          copy_k_rows<T, P, true>(kb, s, ks, d, sums + p * P);
        else
          copy_k_rows<T, P, false>(kb, s, ks, d, nullptr);
      }
    }
    i = npan * P;
    dst += npan * P * kc;
  }
  for (; i < n; i += P) {
    const index_t np = gemm_min(P, n - i);
    const T* s = src + i * ps;
    if (np == P && ks == 1) {
      PackKRuns(kc, s, ps, dst);
    } else {
      for (index_t k = 0; k < kc; ++k) {
        for (index_t p = 0; p < np; ++p) dst[k * P + p] = s[p * ps + k * ks];
        for (index_t p = np; p < P; ++p) dst[k * P + p] = T(0);
      }
      if (sums)  // (the partial last panel; full ones with ps != 1 take no sums)
        for (index_t k = 0; k < kc; ++k)
          for (index_t p = 0; p < np; ++p) sums[i + p] += s[p * ps + k * ks];
    }
    dst += P * kc;
  }
}

// Pack rows [0, mc) x cols [0, kc) of A (any strides) into MR-row panels:
// dst[panel][k][r], zero rows past mc.
// Row-major A goes through the register transposes where MR holds at least one transpose
// block (12 rows: 8 by blocks, 4 gathered; NNFAST_GEMM_PACK_A_T=0: only where MR is a whole
// number of blocks, the rest gathered k by k as before, for A/B timing; same bits).
// sums (A with unit row stride only): sums[r] += row r's values, as pack_panels.
template <typename T, int MR>
static void pack_a(index_t mc, index_t kc, const T* __restrict A, index_t rs, index_t cs, T* __restrict dst,
                   T* __restrict sums = nullptr, bool first = false) {
  constexpr int TW = TransposeBlock<T>::W;
  if constexpr (TW > 0 && MR > TW && MR % TW != 0) {
    if (gemm_detail::gemm_pack_a_transpose_enabled()) {
      pack_panels<T, MR, pack_k_runs_transpose<T, MR>>(mc, kc, A, rs, cs, dst, sums, first);
      return;
    }
  }
  if constexpr (TW > 0 && MR % TW == 0)
    pack_panels<T, MR, pack_k_runs_transpose<T, MR>>(mc, kc, A, rs, cs, dst, sums, first);
  else
    pack_panels<T, MR, pack_k_runs_gather<T, MR>>(mc, kc, A, rs, cs, dst, sums, first);
}

// Pack rows [0, kc) x cols [0, nc) of B (any strides) into NR-column panels:
// dst[panel][k][j], zero columns past nc.
template <typename T, int NR>
static void pack_b(index_t kc, index_t nc, const T* __restrict B, index_t rs, index_t cs, T* __restrict dst) {
  pack_panels<T, NR, pack_k_runs_transpose<T, NR>>(nc, kc, B, cs, rs, dst);
}

// All of A for gemm_block<.., MR, .., KC, ..> with a_packed (see GemmOps::pack_a_all).
template <typename T, int MR, int KC>
static void pack_a_all(index_t M, index_t K, const T* A, index_t rs, index_t cs, T* dst) {
  const index_t kcb = gemm_balanced_block(K, KC, 8), mpad = gemm_round_up(M, MR);
  for (index_t pc = 0; pc < K; pc += kcb)
    pack_a<T, MR>(M, gemm_min(kcb, K - pc), A + pc * cs, rs, cs, dst + pc * mpad);
}

// Columns [j0, j1) of all of B for gemm_block<.., NR, KC, ..> with b_packed (GemmOps::pack_b_all).
template <typename T, int NR, int KC>
static void pack_b_all(index_t N, index_t K, index_t j0, index_t j1, const T* B, index_t rs, index_t cs, T* dst) {
  const index_t kcb = gemm_balanced_block(K, KC, 8), npad = gemm_round_up(N, NR);
  for (index_t pc = 0; pc < K; pc += kcb) {
    const index_t kc = gemm_min(kcb, K - pc);
    pack_b<T, NR>(kc, j1 - j0, B + pc * rs + j0 * cs, rs, cs, dst + pc * npad + j0 * kc);
  }
}

// Merge a temporary MR x NR tile (row stride NR) into an m x n corner of C, adding
// bias[j] (non-null) after the alpha / beta combination.
template <typename T>
static void merge_tile(const T* __restrict t, index_t ldt, index_t m, index_t n, T alpha, T beta, T* __restrict c,
                       index_t rs_c, index_t cs_c, const T* __restrict bias, const T* __restrict rbias = nullptr) {
  for (index_t r = 0; r < m; ++r) {
    T* cr = c + r * rs_c;
    const T* tr = t + r * ldt;
    if (beta == T(0)) {
      for (index_t j = 0; j < n; ++j) cr[j * cs_c] = alpha * tr[j];
    } else {
      for (index_t j = 0; j < n; ++j) cr[j * cs_c] = alpha * tr[j] + beta * cr[j * cs_c];
    }
    if (bias)
      for (index_t j = 0; j < n; ++j) cr[j * cs_c] = cr[j * cs_c] + bias[j];
    if (rbias)
      for (index_t j = 0; j < n; ++j) cr[j * cs_c] = cr[j * cs_c] + rbias[r];
  }
}

// Dot-product kernel (GemmOps::dot_rows): RM rows of A x NJ columns of C, each accumulator
// W lanes of partial sums along K; out[r * NJ + j] = sum over lanes (ascending), then the K
// tail (k ascending) added. a: A(r, k) = a[r * lda + k]; b: B(k, j) = b[j * ldb + k].
template <class V, int RM, int NJ>
__attribute__((noinline)) static void dot_tile(index_t K, const typename V::T* __restrict a, index_t lda,
                                               const typename V::T* __restrict b, index_t ldb,
                                               typename V::T* __restrict out) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W;
  R acc[RM][NJ];
#pragma GCC unroll 8
  for (int r = 0; r < RM; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) acc[r][j] = V::zero();
  const index_t kv = K / W * W;
  for (index_t k = 0; k < kv; k += W) {
    R av[RM];
#pragma GCC unroll 8
    for (int r = 0; r < RM; ++r) av[r] = V::load(a + r * lda + k);
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) {
      const R bv = V::load(b + j * ldb + k);
#pragma GCC unroll 8
      for (int r = 0; r < RM; ++r) acc[r][j] = V::fma(av[r], bv, acc[r][j]);
    }
  }
  alignas(64) T lanes[W];
  for (int r = 0; r < RM; ++r)
    for (int j = 0; j < NJ; ++j) {
      V::store(lanes, acc[r][j]);
      T sum = lanes[0];
      for (int l = 1; l < W; ++l) sum += lanes[l];
      for (index_t k = kv; k < K; ++k) sum += a[r * lda + k] * b[j * ldb + k];
      out[r * NJ + j] = sum;
    }
}

// Rows [i0, i1) of C by dot_tile (see GemmOps::dot_rows): blocks of 64 rows; in each, NJ columns
// at a time over all its rows (those NJ rows of B^T stay in L1 while A streams from L2), RM
// rows per tile; edges by the smaller instantiations; the epilogue once the block is done.
template <class V, int RM, int NJ, int... J>
static constexpr auto dot_fn_row(std::integer_sequence<int, J...>) {
  using T = typename V::T;
  using Fn = void (*)(index_t, const T*, index_t, const T*, index_t, T*);
  return std::array<Fn, sizeof...(J)>{dot_tile<V, RM, J + 1>...};
}
template <class V, int RM, int NJ>
static void dot_rows(const GemmArgs<typename V::T>& g, index_t i0, index_t i1) {
  using T = typename V::T;
  static_assert(RM <= 4 && NJ <= 8, "dot_rows: tiles up to 4 x 8");
  using Seq = std::make_integer_sequence<int, NJ>;
  // [rows - 1][cols - 1]
  static const decltype(dot_fn_row<V, 1, NJ>(Seq{})) fns[4] = {
      dot_fn_row<V, 1, NJ>(Seq{}), dot_fn_row<V, (RM > 1 ? 2 : 1), NJ>(Seq{}),
      dot_fn_row<V, (RM > 2 ? 3 : 1), NJ>(Seq{}), dot_fn_row<V, (RM > 3 ? 4 : 1), NJ>(Seq{})};
  T out[RM * NJ];
  constexpr index_t kRowBlock = 64;
  for (index_t ib = i0; ib < i1; ib += kRowBlock) {
    const index_t ie = gemm_min(i1, ib + kRowBlock);
    for (index_t j = 0; j < g.N; j += NJ) {
      const index_t n = gemm_min(NJ, g.N - j);
      for (index_t i = ib; i < ie; i += RM) {
        const index_t m = gemm_min(RM, ie - i);
        fns[m - 1][n - 1](g.K, g.A + i * g.rs_a, g.rs_a, g.B + j * g.cs_b, g.cs_b, out);
        for (index_t r = 0; r < m; ++r) {
          T* c = g.C + (i + r) * g.rs_c + j * g.cs_c;
          for (index_t jj = 0; jj < n; ++jj) {
            T v = g.beta == T(0) ? g.alpha * out[r * n + jj] : g.alpha * out[r * n + jj] + g.beta * c[jj * g.cs_c];
            if (g.store_bias) v = v + g.store_bias[j + jj];
            c[jj * g.cs_c] = v;
          }
        }
      }
    }
    if (g.tile_epilogue) g.tile_epilogue(g, ib, ie - ib, 0, g.N);
  }
}

// One thread, C block [i0, i1) x [j0, j1), all of K. When B has unit column
// stride and this thread has at most g.direct_m rows, each B element feeds so
// few FMAs that packing it costs more than it saves: full NR-column panels are
// then read in place and only the partial edge panel is packed (zero padded),
// so in-place reads never run past the matrix.
template <class V, int MR, int NV, int MC, int KC, int NC>
static void gemm_block(const GemmArgs<typename V::T>& g, typename V::T* ws, index_t i0, index_t i1, index_t j0,
                       index_t j1) {
  using T = typename V::T;
  using K_ = MicroKernel<V, MR, NV>;
  constexpr int NR = K_::NR;
  const index_t m = i1 - i0, n = j1 - j0;
  if (m <= 0 || n <= 0) return;
  const index_t line = 64 / sizeof(T);
  const index_t kcb = gemm_balanced_block(g.K, KC, 8);
  const index_t mcb = gemm_balanced_block(m, MC, MR);
  const index_t ncb = gemm_balanced_block(n, NC, NR);
  T* Ap = ws;
  T* Bp = Ap + gemm_round_up(mcb * kcb, line);
  T* tile = Bp + gemm_round_up(kcb * ncb, line);
  // Row sums of A (g.row_sum): by the threads whose block starts at column 0, once.
  const bool sum_rows = g.row_sum && j0 == 0;
  T* sums = tile + gemm_round_up(MR * NR, line);

  const bool direct_b = !g.b_pack && !g.b_packed && g.cs_b == 1 && m <= g.direct_m;
  // A read in place (few rows: its packing would be a large share of the work): whole MR-row
  // panels are read from A, only a partial last panel is packed (zero rows, so nothing is read
  // past A). Not with row sums (pack_a makes them) nor with B in place (that kernel reads a
  // packed A).
  const bool direct_a = !g.a_packed && !sum_rows && !direct_b && m <= g.direct_a_m;
  const bool fast_tile = FastTile<V, MR, NV>::on();

  for (index_t jc = j0; jc < j1; jc += ncb) {
    const index_t nc = gemm_min(ncb, j1 - jc);
    const index_t nc_full = direct_b ? nc / NR * NR : 0;  // columns read in place
    for (index_t pc = 0; pc < g.K; pc += kcb) {
      const index_t kc = gemm_min(kcb, g.K - pc);
      const bool first = pc == 0, last = pc + kc >= g.K;
      const T beta = first ? g.beta : T(1);
      const T* bias = last ? g.store_bias : nullptr;
      const T* rbias = last ? g.store_bias_rows : nullptr;
      const T* Bsrc = g.b_pack ? nullptr : g.B + pc * g.rs_b + jc * g.cs_b;
      // Block [jc, jc + nc) of a prepacked B is where pack_b would have put it (jc: a multiple of NR).
      const T* Bb = g.b_packed ? g.b_packed + pc * gemm_round_up(g.N, NR) + jc * kc : Bp;
      if (g.b_pack)
        g.b_pack->pack(g.b_pack->ctx, pc, kc, jc, nc, Bp, NR);
      else if (!g.b_packed && nc_full < nc)
        pack_b<T, NR>(kc, nc - nc_full, Bsrc + nc_full * g.cs_b, g.rs_b, g.cs_b, Bp + nc_full * kc);
      for (index_t ic = i0; ic < i1; ic += mcb) {
        const index_t mc = gemm_min(mcb, i1 - ic);
        // Block [ic, ic + mc) of the prepacked A is where pack_a would have put it (ic is a
        // multiple of MR, and every earlier K block is kcb wide).
        const T* Ab = Ap;
        const index_t mc_da = direct_a ? mc / MR * MR : 0;  // rows read in place
        const T* Asrc = g.A + ic * g.rs_a + pc * g.cs_a;
        if (g.a_packed)
          Ab = g.a_packed + pc * gemm_round_up(g.M, MR) + ic * kc;
        else if (mc_da < mc)
          pack_a<T, MR>(mc - mc_da, kc, Asrc + mc_da * g.rs_a, g.rs_a, g.cs_a, Ap + mc_da * kc,
                        sum_rows && jc == j0 ? sums + (ic - i0) : nullptr, first);
        for (index_t jr = 0; jr < nc; jr += NR) {
          const index_t nr = gemm_min(NR, nc - jr);
          for (index_t ir = 0; ir < mc; ir += MR) {
            const index_t mr = gemm_min(MR, mc - ir);
            T* c = g.C + (ic + ir) * g.rs_c + (jc + jr) * g.cs_c;
            // C rows arrive while the micro-kernel runs (its ~6 kc cycles hide the miss).
            for (index_t r = 0; r < mr; ++r) {
              __builtin_prefetch(c + r * g.rs_c, 1);
              __builtin_prefetch(c + r * g.rs_c + (nr - 1) * g.cs_c, 1);
            }
            using FT = FastTile<V, MR, NV>;
            const bool ft_da = ir < mc_da;
            if (fast_tile && jr >= nc_full && nr == NR && (ft_da ? FT::kDirectA : FT::kPacked)) {
              // Plain c = t or c += t on a full tile: the fast tile writes C itself.
              const bool to_c = mr == MR && g.cs_c == 1 && g.alpha == T(1) && (beta == T(0) || beta == T(1)) &&
                                !bias && !rbias;
              T* d = to_c ? c : tile;
              const index_t ldd = to_c ? g.rs_c : NR;
              const bool add = to_c && beta == T(1);
              if (ft_da)
                FT::run_da(kc, Asrc + ir * g.rs_a, Bb + jr * kc, d, ldd, add, g.rs_a, g.cs_a);
              else
                FT::run(kc, Ab + ir * kc, Bb + jr * kc, d, ldd, add);
              if (to_c) continue;
            } else if (ir < mc_da) {
              const T* at = Asrc + ir * g.rs_a;
              if (NV > 1 && nr <= V::W)
                K_::template compute_part<1, true>(kc, at, Bb + jr * kc, tile, g.rs_a, g.cs_a);
              else if (NV > 2 && nr <= 2 * V::W)
                K_::template compute_part<(NV > 2 ? 2 : 1), true>(kc, at, Bb + jr * kc, tile, g.rs_a, g.cs_a);
              else
                K_::template compute<true>(kc, at, Bb + jr * kc, tile, g.rs_a, g.cs_a);
            } else if (jr < nc_full)
              K_::compute_direct_b(kc, Ab + ir * kc, Bsrc + jr, g.rs_b, tile);
            else if (NV > 1 && nr <= V::W)
              K_::template compute_part<1>(kc, Ab + ir * kc, Bb + jr * kc, tile);
            else if (NV > 2 && nr <= 2 * V::W)
              K_::template compute_part<(NV > 2 ? 2 : 1)>(kc, Ab + ir * kc, Bb + jr * kc, tile);
            else
              K_::compute(kc, Ab + ir * kc, Bb + jr * kc, tile);
            const T* bj = bias ? bias + jc + jr : nullptr;
            const T* bi = rbias ? rbias + ic + ir : nullptr;
            if (mr == MR && nr == NR && g.cs_c == 1)
              K_::store(tile, g.alpha, beta, c, g.rs_c, bj, bi);
            else
              merge_tile(tile, NR, mr, nr, g.alpha, beta, c, g.rs_c, g.cs_c, bj, bi);
          }
        }
        // Epilogue on the finished mc x nc block (still in L2), one call per
        // row of nc values: per-tile calls (6 x 16) cost more in call overhead
        // than the bias + activation arithmetic itself.
        if (last && g.tile_epilogue) g.tile_epilogue(g, ic, mc, jc, nc);
      }
    }
  }
  if (sum_rows)
    for (index_t i = 0; i < m; ++i) g.row_sum[i0 + i] = g.row_sum_acc ? g.row_sum[i0 + i] + sums[i] : sums[i];
}

}  // namespace gemm_impl
}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu
#endif  // NNFAST_ISA_NS && NNFAST_GEMM_IMPL

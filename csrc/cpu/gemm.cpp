// GEMM driver: ISA dispatch, thread partition, fused epilogues, bias_grad.
// The packed BLIS-style kernels live in gemm_isa.cpp / gemm_internal.h.
//
// Shape letters: C[M,N] = A[M,K] . B[K,N]. Threads each own a rectangle of C
// (rows split in MR units, columns in NR units) and run the whole serial
// algorithm on it with their own packing buffers: no atomics, no barriers; the
// only cost is packing the shared operand once per thread, which is O(1/N) or
// O(1/M) of the arithmetic.
#include "nnfast/gemm.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/cpu_features.h"
#include "core/pointwise.h"
#include "cpu/activation_internal.h"
#include "cpu/gemm_internal.h"
#include "nnfast/parallel.h"

#include "core/env_switch.h"

#ifdef NNFAST_HAVE_OPENMP
#include <omp.h>
#endif

namespace nnfast::cpu {
namespace {

using gemm_detail::GemmArgs;
using gemm_detail::GemmBlocking;

using gemm_detail::GemmOps;
using gemm_detail::gemm_round_up;

// ------------------------------------------------------------------ workspace
// Per-thread packing buffer, grown on demand and kept: a fresh multi-MB malloc
// per call would page-fault on every GEMM.
struct Workspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Workspace() { std::free(ptr); }
  void* get(size_t need) {
    if (need > bytes) {
      std::free(ptr);
      bytes = (need + 4095) / 4096 * 4096;
      ptr = std::aligned_alloc(64, bytes);
      if (!ptr) {
        // Inside an OpenMP region an exception cannot reach the caller.
        std::fprintf(stderr, "[gemm] out of memory allocating a %zu-byte packing buffer\n", bytes);
        std::abort();
      }
    }
    return ptr;
  }
};
thread_local Workspace tl_workspace;
// The calling thread's buffer for a B all the GEMM's threads share (run_shared_b).
thread_local Workspace tl_shared;

// ------------------------------------------------------------------ epilogue
// Scalar activation code stays in this (baseline-ISA) file so the fused
// epilogue is bit-identical to the standalone activation kernels.
template <typename T, Act A>
void forward_rows(const GemmArgs<T>& g, index_t i0, index_t m, index_t j0, index_t n) {
  const GemmEpilogue<T>& ep = *g.ep;
  const ActParams& p = ep.act_params;
  for (index_t i = i0; i < i0 + m; ++i) {
    T* c = g.C + i * g.rs_c + j0 * g.cs_c;
    // A bias the kernel already added while storing C (g.store_bias) is not added again.
    const T* bias = ep.bias && !g.store_bias ? ep.bias + j0 : nullptr;
    T* aux = ep.aux ? ep.aux + i * ep.rs_aux + j0 : nullptr;
    if (g.cs_c == 1) {
      // SIMD activation kernel on the row (bit-identical to act_forward, ~4x faster).
      if (bias) for (index_t j = 0; j < n; ++j) c[j] = c[j] + bias[j];
      if (aux) for (index_t j = 0; j < n; ++j) aux[j] = c[j];
      isa_ops<act_detail::ActOps<T>>().fwd(c, c, n, A, T(p.a), T(p.b));
    } else {
      for (index_t j = 0; j < n; ++j) {
        T z = bias ? c[j * g.cs_c] + bias[j] : c[j * g.cs_c];
        if (aux) aux[j] = z;
        c[j * g.cs_c] = act_forward(A, z, p);
      }
    }
  }
}

template <typename T, Act A>
void backward_rows(const GemmArgs<T>& g, index_t i0, index_t m, index_t j0, index_t n) {
  const GemmEpilogue<T>& ep = *g.ep;
  const ActParams& p = ep.act_params;
  constexpr bool from_out = act_grad_from_output(A);
  for (index_t i = i0; i < i0 + m; ++i) {
    T* c = g.C + i * g.rs_c + j0 * g.cs_c;
    const T* s = ep.dact_src + i * ep.rs_dact + j0;
    if (g.cs_c == 1) {
      isa_ops<act_detail::ActOps<T>>().bwd(c, c, s, n, A, T(p.a), T(p.b));
      continue;
    }
    for (index_t j = 0; j < n; ++j)
      c[j * g.cs_c] *= act_derivative(A, from_out ? T(0) : s[j], from_out ? s[j] : T(0), p);
  }
}

using gemm_detail::TileFn;

// bias_in_store: the kernel adds ep.bias as it stores C (GemmArgs::store_bias).
template <typename T>
TileFn<T> epilogue_fn(const GemmEpilogue<T>& ep, bool bias_in_store = false) {
  if (ep.dact_src) {
    if (ep.act == Act::Identity) return nullptr;  // derivative 1
    return act_visit(ep.act, [](auto A) -> TileFn<T> { return backward_rows<T, decltype(A)::value>; });
  }
  if (ep.act == Act::Identity && (!ep.bias || bias_in_store) && !ep.aux) return nullptr;
  return act_visit(ep.act, [](auto A) -> TileFn<T> { return forward_rows<T, decltype(A)::value>; });
}

// ------------------------------------------------------------------ threads
// How C is split over the threads: tm x tn rectangles, rows on the micro-tile grid (mr),
// columns on a grid of `cq` columns (nr, or the vector width where the ISA computes a
// narrow last panel in whole vectors: N = 128 on two threads is then 64 + 64 columns
// with the 48-column tile, not 96 + 32).
struct Grid {
  int tm = 1, tn = 1;
  index_t cq = 1;
};

// Thread t's share of [0, n) split in `parts` near-even runs of whole q units.
inline index_t split_at(index_t n, index_t q, int t, int parts) {
  return gemm_detail::gemm_min(n, ((n + q - 1) / q * t / parts) * q);
}

// Columns a thread computes for n columns of C: whole nr panels, the last one padded to
// whole vectors where the ISA has the narrow kernels (bk.nw), to a full panel otherwise.
inline double padded_cols(index_t n, const GemmBlocking& bk) {
  const index_t rem = n % bk.nr;
  return double(n - rem + (rem == 0 ? 0 : bk.nw > 0 ? gemm_detail::gemm_round_up(rem, bk.nw) : bk.nr));
}

// Estimated time of the slowest thread for this grid and tile: its padded tile area (x
// `slow`, the tile's relative speed) plus the packing of its A and B parts. A share of at
// most direct_m rows reads B in place (gemm_block): not packed, but read strided, about half
// the cost (measured on 20..64 x 1024 x 256 shares).
double grid_cost(index_t M, index_t N, const GemmBlocking& bk, const Grid& gr, double slow, index_t direct_m) {
  double worst = 0;
  for (int ti = 0; ti < gr.tm; ++ti)
    for (int tj = 0; tj < gr.tn; ++tj) {
      const index_t m = split_at(M, bk.mr, ti + 1, gr.tm) - split_at(M, bk.mr, ti, gr.tm);
      const index_t n = split_at(N, gr.cq, tj + 1, gr.tn) - split_at(N, gr.cq, tj, gr.tn);
      if (m <= 0 || n <= 0) continue;
      const double rows = double(gemm_detail::gemm_round_up(m, bk.mr)), cols = padded_cols(n, bk);
      // ~16 flops/cycle/element-pair of arithmetic vs ~1 cycle per packed element.
      const double cost = slow * rows * cols / 16.0 + rows + (m <= direct_m ? 0.5 : 1.0) * cols;
      worst = cost > worst ? cost : worst;
    }
  return worst;
}

// The cheapest grid of nt threads for this tile, columns split in whole panels or on bk.nw;
// its cost in *cost.
Grid choose_grid(index_t M, index_t N, int nt, const GemmBlocking& bk, double slow, index_t direct_m,
                 double* cost) {
  Grid best;
  best.cq = bk.nr;
  double best_cost = -1;
  const index_t mb = (M + bk.mr - 1) / bk.mr;
  for (int tm = 1; tm <= nt; ++tm) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    if (tm > mb) continue;
    for (const index_t cq : {index_t(bk.nr), index_t(bk.nw)}) {
      if (cq <= 0 || tn > (N + cq - 1) / cq) continue;
      const Grid g{tm, tn, cq};
      const double c = grid_cost(M, N, bk, g, slow, direct_m);
      if (best_cost < 0 || c < best_cost) {
        best_cost = c;
        best = g;
      }
    }
  }
  if (cost) *cost = best_cost;
  return best;
}

// The earlier split (NNFAST_GEMM_GRID=0, and the bf16 GEMM's gemm_run_grid): whole panels,
// each thread's share estimated as the largest one.
Grid choose_grid_panels(index_t M, index_t N, int nt, const GemmBlocking& bk) {
  const index_t mb = (M + bk.mr - 1) / bk.mr, nb = (N + bk.nr - 1) / bk.nr;
  Grid best;
  best.cq = bk.nr;
  double best_cost = -1;
  for (int tm = 1; tm <= nt; ++tm) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    if (tm > mb || tn > nb) continue;
    const double rows = double((mb + tm - 1) / tm) * bk.mr;
    const double cols = double((nb + tn - 1) / tn) * bk.nr;
    const double cost = rows * cols / 16.0 + rows + cols;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = {tm, tn, bk.nr};
    }
  }
  return best;
}

void run_on_grid(index_t M, index_t N, const Grid& grid, const GemmBlocking& bk,
                 void (*fn)(void*, index_t, index_t, index_t, index_t), void* ctx) {
  const int used = grid.tm * grid.tn;
  auto work = [&](int tid) {
    const int ti = tid / grid.tn, tj = tid % grid.tn;
    // Contiguous ranges of micro-tile rows / column units, as even as possible.
    const index_t i0 = split_at(M, bk.mr, ti, grid.tm), i1 = split_at(M, bk.mr, ti + 1, grid.tm);
    const index_t j0 = split_at(N, grid.cq, tj, grid.tn), j1 = split_at(N, grid.cq, tj + 1, grid.tn);
    if (i1 <= i0 || j1 <= j0) return;
    fn(ctx, i0, i1, j0, j1);
  };
  if (used <= 1) {
    work(0);
    return;
  }
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel num_threads(used)
  {
    const int tid = omp_get_thread_num();
    const int team = omp_get_num_threads();
    // A smaller team than asked (nested region, thread limit) still covers C.
    for (int t = tid; t < used; t += team) work(t);
  }
#else
  for (int t = 0; t < used; ++t) work(t);
#endif
}

void run_grid(index_t M, index_t N, int nt, const GemmBlocking& bk,
              void (*fn)(void*, index_t, index_t, index_t, index_t), void* ctx) {
  run_on_grid(M, N, choose_grid_panels(M, N, nt, bk), bk, fn, ctx);
}

// C's area as computed: rows padded to whole micro-tiles, columns as padded_cols.
inline double padded_area(index_t M, index_t N, const GemmBlocking& bk) {
  return double(gemm_detail::gemm_round_up(M, bk.mr)) * padded_cols(N, bk);
}

// NNFAST_GEMM_ALT_TILE=0 keeps the main tile everywhere (for A/B timing).
bool alt_tile_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_ALT_TILE");
  return on;
}

// NNFAST_GEMM_GRID=0: the earlier thread split (tile chosen on the whole of C, then the grid,
// columns split in whole nr panels only), for A/B timing. Same bits either way.
bool grid_plan_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_GRID");
  return on;
}

// The second tile where it pads C at least 5 % less (the main tile is the faster kernel).
// gemm_prepack_a packs A for the same choice.
template <typename T>
bool use_alt_tile(index_t M, index_t N, const GemmOps<T>& kr) {
  return kr.alt_block && alt_tile_enabled() &&
         padded_area(M, N, kr.alt_blocking) < 0.95 * padded_area(M, N, kr.blocking);
}

// A prepacked A (gemm_prepack_a: only the convolution's weight, packed once per call): the
// second tile wherever it pads C less at all. Conv forward M = 128, N = 784 (14 x 14 and the
// stride-2 28 x 28 layers), 1 thread: 8 x 48 was 3-5 % faster than 12 x 32, not the 5 % slower
// the general rule assumes. NNFAST_GEMM_PREPACK_ALT=0: the general rule (A/B timing; the tile
// never changes the bits). Owned by the conv branch (minimal hook, see reports/conv.md).
bool prepack_alt_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_PREPACK_ALT");
  return on;
}

template <typename T>
bool use_alt_tile_prepacked(index_t M, index_t N, const GemmOps<T>& kr) {
  if (!prepack_alt_enabled()) return use_alt_tile(M, N, kr);
  return kr.alt_block && alt_tile_enabled() && padded_area(M, N, kr.alt_blocking) < padded_area(M, N, kr.blocking);
}

// Relative time per padded element of the alternative tile (8 x 48 on AVX-512: 3 B loads and
// 8 broadcasts per 24 FMAs against 2 and 12): ~5 % slower than the main tile, measured.
constexpr double kAltTileSlow = 1.05;

// The same measured exception for a packer-fed B (gemm_packed_b: the convolution's weight
// gradient, M = OC = 128, N = C k k): the tiles cost alike per padded element there, so the one
// that pads less wins (NNFAST_GEMM_PREPACK_ALT=0: kAltTileSlow, as before). Conv branch hook.
template <typename T>
double alt_tile_slow(const GemmArgs<T>& g) {
  return g.b_pack && prepack_alt_enabled() ? 1.0 : kAltTileSlow;
}

// NNFAST_GEMM_SHARED_PACK=0: the threads of a row split each pack all of B, as before. Same bits.
bool shared_pack_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_SHARED_PACK");
  return on;
}

// Whether the threads of this grid pack B once for all: a row split (2 or 3 threads here) whose
// shares all pack B (none reads it in place), B read from memory (no packer) and big enough that
// the packing saved outweighs a barrier (the step's 256 x 1024 x 10 dx: +6 % CPU time shared).
// A column split shares A the same way, but measured no gain (256 x 1024 x 784 forward -1.7 %,
// x 1024: +1.8 %, dx: +-0.5 %; the packed A comes half from the other core's cache): not done.
template <typename T>
bool share_b(const GemmArgs<T>& g, const Grid& grid, const GemmBlocking& bk) {
  if (grid.tm <= 1 || grid.tn != 1 || g.b_pack || !shared_pack_enabled() || double(g.N) * double(g.K) < 16384)
    return false;
  for (int ti = 0; ti < grid.tm; ++ti) {
    const index_t m = split_at(g.M, bk.mr, ti + 1, grid.tm) - split_at(g.M, bk.mr, ti, grid.tm);
    if (m > 0 && g.cs_b == 1 && m <= g.direct_m) return false;
  }
  return true;
}

// A row split's threads first pack B together (each a run of whole nr panels, all K blocks, into
// one buffer of the calling thread), then, after one barrier, each runs its rows of C reading those
// panels in place: the bits of packing B per thread (packing only copies). The step's dW GEMM
// 1024 x 1024 x 256 (B = the layer input) took 3-6 % less CPU time on 2 threads (1024 x 784: -2 to
// +1 %, noise). The grid cost (choose_grid) still counts B's packing on every thread.
template <typename T>
void run_shared_b(const GemmArgs<T>& g0, const GemmOps<T>& kr, bool alt, const Grid& grid) {
  const GemmBlocking& bk = alt ? kr.alt_blocking : kr.blocking;
  const auto block = alt ? kr.alt_block : kr.block;
  const index_t units = (g0.N + bk.nr - 1) / bk.nr;
  T* buf = static_cast<T*>(tl_shared.get(static_cast<size_t>(units * bk.nr * g0.K) * sizeof(T)));
  GemmArgs<T> g = g0;
  g.b_packed = buf;
  const int used = grid.tm;
  auto pack = [&](int part, int parts) {
    const index_t c0 = units * part / parts * bk.nr, c1 = gemm_detail::gemm_min(g.N, units * (part + 1) / parts * bk.nr);
    if (c1 > c0) (alt ? kr.alt_pack_b_all : kr.pack_b_all)(g.N, g.K, c0, c1, g.B, g.rs_b, g.cs_b, buf);
  };
  auto work = [&](int t) {
    const index_t i0 = split_at(g.M, bk.mr, t, used), i1 = split_at(g.M, bk.mr, t + 1, used);
    if (i1 <= i0) return;
    const index_t elems = gemm_detail::gemm_workspace_elems<T>(bk, i1 - i0, g.N, g.K, g.row_sum);
    block(g, static_cast<T*>(tl_workspace.get(static_cast<size_t>(elems) * sizeof(T))), i0, i1, 0, g.N);
  };
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel num_threads(used)
  {
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
    pack(tid, team);
#pragma omp barrier
    for (int t = tid; t < used; t += team) work(t);
  }
#else
  pack(0, 1);
  for (int t = 0; t < used; ++t) work(t);
#endif
}

template <typename T>
void run_blocks(const GemmArgs<T>& g, const GemmOps<T>& kr, int nt) {
  struct Ctx {
    const GemmArgs<T>* g;
    const GemmBlocking* bk;
    void (*block)(const GemmArgs<T>&, T*, index_t, index_t, index_t, index_t);
  } ctx{&g, &kr.blocking, kr.block};
  Grid grid;
  if (g.a_packed || !grid_plan_enabled()) {
    // A prepacked A fixes the tile (gemm_prepack_a chose it on the whole of C).
    if (g.a_packed ? use_alt_tile_prepacked(g.M, g.N, kr) : use_alt_tile(g.M, g.N, kr)) {
      ctx.bk = &kr.alt_blocking;
      ctx.block = kr.alt_block;
    }
    grid = choose_grid_panels(g.M, g.N, nt, *ctx.bk);
  } else {
    // Tile and grid together: the tile that pads C least depends on each thread's share
    // (M = 128 on two threads: 2 x 64 rows fit the 8-row tile exactly, the 12-row one pads).
    // Every tile and split gives the same bits (same K blocks, one thread per C element).
    double cost_main = 0, cost_alt = 0;
    const index_t direct_m = !g.b_pack && g.cs_b == 1 ? g.direct_m : 0;
    grid = choose_grid(g.M, g.N, nt, kr.blocking, 1.0, direct_m, &cost_main);
    if (kr.alt_block && alt_tile_enabled()) {
      const Grid alt = choose_grid(g.M, g.N, nt, kr.alt_blocking, alt_tile_slow(g), direct_m, &cost_alt);
      if (cost_alt < cost_main) {
        grid = alt;
        ctx.bk = &kr.alt_blocking;
        ctx.block = kr.alt_block;
      }
    }
  }
  if (share_b(g, grid, *ctx.bk)) {
    run_shared_b(g, kr, ctx.block != kr.block, grid);
    return;
  }
  run_on_grid(g.M, g.N, grid, *ctx.bk, [](void* p, index_t i0, index_t i1, index_t j0, index_t j1) {
    const Ctx& c = *static_cast<Ctx*>(p);
    const index_t elems = gemm_detail::gemm_workspace_elems<T>(*c.bk, i1 - i0, j1 - j0, c.g->K, c.g->row_sum);
    T* ws = static_cast<T*>(tl_workspace.get(static_cast<size_t>(elems) * sizeof(T)));
    c.block(*c.g, ws, i0, i1, j0, j1);
  }, &ctx);
}

// C = beta * C (beta == 0: C write-only), then the epilogue, for K == 0 or alpha == 0.
template <typename T>
void scale_only(const GemmArgs<T>& g, int nt) {
  const index_t M = g.M, N = g.N;
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (M * N > 65536)
#endif
  for (index_t i = 0; i < M; ++i) {
    T* c = g.C + i * g.rs_c;
    if (g.beta == T(0)) {
      for (index_t j = 0; j < N; ++j) c[j * g.cs_c] = T(0);
    } else {
      for (index_t j = 0; j < N; ++j) c[j * g.cs_c] *= g.beta;
    }
    if (g.tile_epilogue) g.tile_epilogue(g, i, 1, 0, N);
  }
  (void)nt;
}

// NNFAST_GEMM_STORE_BIAS=0 adds the bias in the epilogue pass instead of in the
// kernel's store (for A/B timing; same bits either way).
bool store_bias_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_STORE_BIAS");
  return on;
}

// NNFAST_GEMM_ROW_SUMS=0: gemm_row_sums runs gemm and then bias_grad over A^T (a second pass
// over A, on one thread when M <= 512), for A/B timing. Same bits either way.
bool row_sums_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_ROW_SUMS");
  return on;
}

// Rows per thread at or below which packing is skipped (see gemm_block).
constexpr index_t kDirectM = 24;
std::atomic<index_t> g_direct_m{kDirectM};
index_t direct_m_setting() { return g_direct_m.load(std::memory_order_relaxed); }

// NNFAST_GEMM_DIRECT_A=0: A always packed (for A/B timing; same bits: the kernel does the same
// FMAs on A's values in the same order). On: a thread with at most kDirectAM rows of C reads
// A's whole MR-row panels in place (the MLP step's batch-64 GEMMs: 64 x 128 x 784 forward,
// 64 x 128 x 10 dx). NNFAST_GEMM_DIRECT_A_ROWS=n overrides the row limit (tuning only).
constexpr index_t kDirectAM = 96;
index_t direct_a_rows() {
  static const index_t rows = [] {
    if (!env_switch_on("NNFAST_GEMM_DIRECT_A")) return index_t(0);
    const char* v = std::getenv("NNFAST_GEMM_DIRECT_A_ROWS");
    return v && *v ? index_t(std::atol(v)) : kDirectAM;
  }();
  return rows;
}

// NNFAST_GEMM_DOT=0: a narrow C (N <= kDotMaxN) goes through the packed kernels like any other
// (for A/B timing). On: when A's rows and B's columns are contiguous along K (a Linear's forward
// into N = 10 classes), each C element is a dot product vectorised along K (GemmOps::dot_rows):
// the packed kernels pad N = 10 to 16 columns and run a load-bound 12 x 16 tile there. Not the
// same bits (another summation order): tested against float64 with the GEMM bound.
constexpr index_t kDotMaxN = 12, kDotMinK = 32;
bool dot_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_DOT");
  return on;
}

template <typename T>
bool use_dot(const GemmArgs<T>& g) {
  return g.N <= kDotMaxN && g.K >= kDotMinK && g.cs_a == 1 && g.rs_b == 1 && dot_enabled();
}

// Rows split over nt threads in runs of 4 (the dot tile's rows).
template <typename T>
void run_dot(const GemmArgs<T>& g, const GemmOps<T>& kr, int nt) {
  const index_t units = (g.M + 3) / 4;
  if (nt > units) nt = int(units);
  if (nt <= 1) {
    kr.dot_rows(g, 0, g.M);
    return;
  }
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const index_t i0 = gemm_detail::gemm_min(g.M, units * t / team * 4);
    const index_t i1 = gemm_detail::gemm_min(g.M, units * (t + 1) / team * 4);
    if (i1 > i0) kr.dot_rows(g, i0, i1);
  }
#else
  kr.dot_rows(g, 0, g.M);
#endif
}

}  // namespace

void gemm_set_direct_m(index_t rows) { g_direct_m.store(rows < 0 ? kDirectM : rows); }

namespace gemm_detail {
TileFn<float> gemm_epilogue_fn(const GemmEpilogue<float>& ep) { return epilogue_fn(ep); }
void* gemm_thread_workspace(size_t bytes) { return tl_workspace.get(bytes); }
void gemm_run_grid(index_t M, index_t N, int nt, const GemmBlocking& bk,
                   void (*work)(void*, index_t, index_t, index_t, index_t), void* ctx) {
  run_grid(M, N, nt, bk, work, ctx);
}
bool gemm_pack_a_transpose_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_PACK_A_T");
  return on;
}
bool gemm_pack_runs_by_block_enabled() {
  static const bool on = env_switch_on("NNFAST_GEMM_PACK_RUNS");
  return on;
}
int gemm_threads_for(double flops, int nt) {
  // Below ~2 MFLOP a parallel region costs more than it saves.
  if (flops < 2e6) return 1;
  if (flops < 2e6 * nt) return int(flops / 2e6) > 1 ? int(flops / 2e6) : 1;
  return nt;
}

template <typename T>
index_t gemm_prepack_a_elems(index_t M, index_t N, index_t K) {
  const GemmOps<T>& kr = isa_ops<GemmOps<T>>();
  const GemmBlocking& bk = use_alt_tile_prepacked(M, N, kr) ? kr.alt_blocking : kr.blocking;
  return M <= 0 || K <= 0 ? 0 : gemm_round_up(M, bk.mr) * K;
}

template <typename T>
void gemm_prepack_a(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, T* dst) {
  if (M <= 0 || K <= 0) return;
  const GemmOps<T>& kr = isa_ops<GemmOps<T>>();
  (use_alt_tile_prepacked(M, N, kr) ? kr.alt_pack_a_all : kr.pack_a_all)(M, K, A, rs_a, cs_a, dst);
}

template <typename T>
void gemm_packed_b(index_t M, index_t N, index_t K, T alpha, const T* A, index_t rs_a, index_t cs_a,
                   const GemmBPack<T>& b, T beta, T* C, index_t rs_c, index_t cs_c, int nt, const T* a_packed,
                   const T* row_bias) {
  if (M <= 0 || N <= 0) return;
  static const GemmEpilogue<T> ep;
  GemmArgs<T> g{{M, N, K, alpha, beta, A, rs_a, cs_a, nullptr, 0, 0, C, rs_c, cs_c}, nullptr, &ep, 0, &b};
  g.a_packed = a_packed;
  g.store_bias_rows = row_bias;
  if (K <= 0 || alpha == T(0)) {
    scale_only(g, 1);
    for (index_t i = 0; row_bias && i < M; ++i)
      for (index_t j = 0; j < N; ++j) C[i * rs_c + j * cs_c] += row_bias[i];
    return;
  }
  run_blocks(g, isa_ops<GemmOps<T>>(), gemm_threads_for(2.0 * double(M) * double(N) * double(K), nt));
}
#define NNFAST_INSTANTIATE_PACKED(T)                                                                       \
  template void gemm_packed_b<T>(index_t, index_t, index_t, T, const T*, index_t, index_t, const GemmBPack<T>&, T, \
                                 T*, index_t, index_t, int, const T*, const T*);                             \
  template index_t gemm_prepack_a_elems<T>(index_t, index_t, index_t);                                      \
  template void gemm_prepack_a<T>(index_t, index_t, index_t, const T*, index_t, index_t, T*);
NNFAST_INSTANTIATE_PACKED(float)
NNFAST_INSTANTIATE_PACKED(double)
#undef NNFAST_INSTANTIATE_PACKED
}  // namespace gemm_detail

template <typename T>
void gemm(index_t M, index_t N, index_t K, T alpha, const T* A, index_t rs_a, index_t cs_a, const T* B,
          index_t rs_b, index_t cs_b, T beta, T* C, index_t rs_c, index_t cs_c, const GemmEpilogue<T>& ep) {
  if (M <= 0 || N <= 0) return;
  GemmArgs<T> g{{M, N, K, alpha, beta, A, rs_a, cs_a, B, rs_b, cs_b, C, rs_c, cs_c}, epilogue_fn(ep), &ep,
                direct_m_setting()};
  g.direct_a_m = direct_a_rows();
  int nt = get_num_threads();
  if (K <= 0 || alpha == T(0)) {
    scale_only(g, nt);
    return;
  }
  if (ep.bias && !ep.dact_src && store_bias_enabled()) {
    g.store_bias = ep.bias;
    g.tile_epilogue = epilogue_fn(ep, true);
  }
  nt = gemm_detail::gemm_threads_for(2.0 * double(M) * double(N) * double(K), nt);
  if (use_dot(g)) {
    run_dot(g, isa_ops<GemmOps<T>>(), nt);
    return;
  }
  run_blocks(g, isa_ops<GemmOps<T>>(), nt);
}

template <typename T>
void gemm_row_sums(index_t M, index_t N, index_t K, T alpha, const T* A, index_t rs_a, index_t cs_a, const T* B,
                   index_t rs_b, index_t cs_b, T beta, T* C, index_t rs_c, index_t cs_c, T* row_sum, bool accumulate) {
  if (M <= 0) return;
  if (N <= 0 || K <= 0 || alpha == T(0) || rs_a != 1 || !row_sums_enabled()) {
    // Nothing packs A here, or A's rows are not contiguous across i (the sums would be serial
    // chains along k), or the switch is off: the sums as their own pass, same bits.
    gemm<T>(M, N, K, alpha, A, rs_a, cs_a, B, rs_b, cs_b, beta, C, rs_c, cs_c);
    bias_grad<T>(row_sum, A, cs_a, rs_a, K, M, accumulate);
    return;
  }
  static const GemmEpilogue<T> ep;
  GemmArgs<T> g{{M, N, K, alpha, beta, A, rs_a, cs_a, B, rs_b, cs_b, C, rs_c, cs_c}, nullptr, &ep,
                direct_m_setting()};
  g.row_sum = row_sum;
  g.row_sum_acc = accumulate;
  run_blocks(g, isa_ops<GemmOps<T>>(),
             gemm_detail::gemm_threads_for(2.0 * double(M) * double(N) * double(K), get_num_threads()));
}

template <typename T>
void gemm_batched(index_t batch, index_t M, index_t N, index_t K, T alpha, const T* A, index_t bs_a, index_t rs_a,
                  index_t cs_a, const T* B, index_t bs_b, index_t rs_b, index_t cs_b, T beta, T* C, index_t bs_c,
                  index_t rs_c, index_t cs_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int nt = get_num_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  // Products big enough to keep every thread busy on their own: threads inside each GEMM.
  if (batch == 1 || nt <= 1 || flops >= 2e6 * nt) {
    for (index_t b = 0; b < batch; ++b)
      gemm<T>(M, N, K, alpha, A + b * bs_a, rs_a, cs_a, B + b * bs_b, rs_b, cs_b, beta, C + b * bs_c, rs_c, cs_c);
    return;
  }
  // Small products: threads over the batch, each product on one thread (no nested regions).
  static const GemmEpilogue<T> ep;
  const GemmOps<T>& kr = isa_ops<GemmOps<T>>();
  const index_t direct_m = direct_m_setting();
  const bool scale = K <= 0 || alpha == T(0);
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
  for (index_t b = 0; b < batch; ++b) {
    GemmArgs<T> g{{M, N, scale ? 0 : K, alpha, beta, A + b * bs_a, rs_a, cs_a, B + b * bs_b, rs_b, cs_b,
                   C + b * bs_c, rs_c, cs_c},
                  nullptr, &ep, direct_m};
    g.direct_a_m = direct_a_rows();
    // The same kernel choice as gemm() makes for one product: the bits must not depend on
    // whether the batch ran threaded (the dot path sums in another order).
    if (scale) scale_only(g, 1);
    else if (use_dot(g)) kr.dot_rows(g, 0, M);
    else run_blocks(g, kr, 1);
  }
}

template <typename T>
void bias_grad(T* dbias, const T* G, index_t rs_g, index_t cs_g, index_t M, index_t N, bool accumulate) {
  // Each thread owns a column range and walks the rows, so row-major G is read
  // contiguously and no two threads touch the same dbias entry.
  constexpr index_t CB = 512;
  const index_t nblk = (N + CB - 1) / CB;
  const int nt = get_num_threads();
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (M * N > 65536 && nblk > 1)
#endif
  for (index_t b = 0; b < nblk; ++b) {
    const index_t j0 = b * CB, n = gemm_detail::gemm_min(CB, N - j0);
    T acc[CB];
    for (index_t j = 0; j < n; ++j) acc[j] = T(0);
    for (index_t i = 0; i < M; ++i) {
      const T* g = G + i * rs_g + j0 * cs_g;
      if (cs_g == 1) {
        for (index_t j = 0; j < n; ++j) acc[j] += g[j];
      } else {
        for (index_t j = 0; j < n; ++j) acc[j] += g[j * cs_g];
      }
    }
    for (index_t j = 0; j < n; ++j) dbias[j0 + j] = accumulate ? dbias[j0 + j] + acc[j] : acc[j];
  }
  (void)nt;
}

#define NNFAST_INSTANTIATE(T)                                                                          \
  template void gemm<T>(index_t, index_t, index_t, T, const T*, index_t, index_t, const T*, index_t,   \
                        index_t, T, T*, index_t, index_t, const GemmEpilogue<T>&);                     \
  template void bias_grad<T>(T*, const T*, index_t, index_t, index_t, index_t, bool);                  \
  template void gemm_row_sums<T>(index_t, index_t, index_t, T, const T*, index_t, index_t, const T*, index_t, \
                                 index_t, T, T*, index_t, index_t, T*, bool);                            \
  template void gemm_batched<T>(index_t, index_t, index_t, index_t, T, const T*, index_t, index_t, index_t, \
                                const T*, index_t, index_t, index_t, T, T*, index_t, index_t, index_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)

}  // namespace nnfast::cpu

// bf16 GEMM driver: operand types, the float32 view of C and of the epilogue
// arrays, and the choice between the AMX-BF16 / AVX512-BF16 kernels and the portable path.
//
// Shape letters as gemm.cpp: C[M,N] = A[M,K] . B[K,N]. Whatever the path, the
// arithmetic is float32 on bf16-rounded A and B, and the epilogue is the
// float32 one of gemm<float> (same routine), so a bf16 layer and its float32
// twin differ only by the rounding of the inputs and of the stores.
#include <cstdlib>
#include <new>
#include <vector>

#ifdef NNFAST_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/bf16.h"
#include "core/cpu_features.h"
#include "cpu/gemm_bf16_internal.h"
#include "nnfast/gemm.h"
#include "nnfast/parallel.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

using gemm_detail::Bf16Args;
using gemm_detail::Bf16Kernel;
using gemm_detail::GemmArgs;

// Grow-only float32 buffers of the calling thread, one per role, kept between
// calls: a layer's GEMM would otherwise allocate and zero-fill them every step.
enum Slot { kSlotC, kSlotBias, kSlotAux, kSlotDact, kSlotA, kSlotB, kSlots };
struct Scratch {
  float* ptr = nullptr;
  size_t n = 0;
  ~Scratch() { std::free(ptr); }
  float* get(size_t need) {
    if (need > n) {
      std::free(ptr);
      n = need;
      ptr = static_cast<float*>(std::malloc(need * sizeof(float)));
      if (!ptr) throw std::bad_alloc();
    }
    return ptr;
  }
};
thread_local Scratch tl_scratch[kSlots];

// Element (i, j) of m as float32, rounded to bf16 when `round` (bf16 sources are exact).
inline float load_elem(const GemmMat& m, index_t i, index_t j, bool round) {
  const index_t off = i * m.rs + j * m.cs;
  if (m.type == ElemType::BF16) return bf16_to_float(static_cast<const bf16_t*>(m.data)[off]);
  const float x = static_cast<const float*>(m.data)[off];
  return round ? round_to_bf16(x) : x;
}

// rows x cols of m into the dense row-major float32 buffer of `slot` (rounded to bf16 when `round`).
float* widen(const GemmMat& m, index_t rows, index_t cols, bool round, Slot slot) {
  float* o = tl_scratch[slot].get(static_cast<size_t>(rows * cols));
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (rows * cols > 65536)
#endif
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) o[i * cols + j] = load_elem(m, i, j, round);
  return o;
}

// Dense row-major float32 rows x cols -> bf16 destination (row stride rs, column stride cs), RNE.
void narrow(const float* src, index_t rows, index_t cols, bf16_t* dst, index_t rs, index_t cs) {
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (rows * cols > 65536)
#endif
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) dst[i * rs + j * cs] = float_to_bf16(src[i * cols + j]);
}

// The float32 epilogue of the kernel path wrapped with the bf16 staging of one
// finished block: widen its part of a bf16 dact_src first, narrow its part of a
// bf16 C / aux after. Each block is converted by the thread that computed it,
// while it is still in cache, instead of in separate passes over all of M x N.
struct StagedEpilogue : GemmArgs<float> {
  const Bf16Kernel* kr;              // its narrow / widen
  gemm_detail::TileFn<float> inner;  // the float32 epilogue (null: none)
  const bf16_t* dact16 = nullptr;    // bf16 dact_src (row stride rs_dact16) -> dact_f (row stride N)
  index_t rs_dact16 = 0;
  float* dact_f = nullptr;
  bf16_t* c16 = nullptr;  // bf16 C (strides rs_c16, cs_c16) <- the float32 C (row stride N)
  index_t rs_c16 = 0, cs_c16 = 0;
  bf16_t* aux16 = nullptr;  // bf16 aux (row stride rs_aux16) <- aux_f (row stride N)
  index_t rs_aux16 = 0;
  float* aux_f = nullptr;
};

void staged_epilogue(const GemmArgs<float>& base, index_t i0, index_t m, index_t j0, index_t n) {
  const StagedEpilogue& s = static_cast<const StagedEpilogue&>(base);
  const index_t N = s.N;
  if (s.dact16) s.kr->widen(s.dact16 + i0 * s.rs_dact16 + j0, s.rs_dact16, s.dact_f + i0 * N + j0, N, m, n);
  if (s.inner) s.inner(base, i0, m, j0, n);
  if (s.c16) s.kr->narrow(s.C + i0 * N + j0, N, s.c16 + i0 * s.rs_c16 + j0 * s.cs_c16, s.rs_c16, s.cs_c16, m, n);
  if (s.aux16) s.kr->narrow(s.aux_f + i0 * N + j0, N, s.aux16 + i0 * s.rs_aux16 + j0, s.rs_aux16, 1, m, n);
}

// Portable path: round A and B to bf16 in float32 copies and run the float32 GEMM
// (products of two bf16 values are exact in float32, so only the summation differs).
void core_portable(const Bf16Args& g, const GemmEpilogue<float>& ep) {
  const float* a = widen(g.A, g.M, g.K, true, kSlotA);
  const float* b = widen(g.B, g.K, g.N, true, kSlotB);
  gemm<float>(g.M, g.N, g.K, g.alpha, a, g.K, 1, b, g.N, 1, g.beta, g.C, g.rs_c, g.cs_c, ep);
}

// 64-byte aligned grow-only buffer of the calling thread (the shared B panels).
struct AlignedScratch {
  void* ptr = nullptr;
  size_t n = 0;
  ~AlignedScratch() { std::free(ptr); }
  void* get(size_t need) {
    if (need > n) {
      std::free(ptr);
      n = (need + 63) / 64 * 64;
      ptr = std::aligned_alloc(64, n);
      if (!ptr) throw std::bad_alloc();
    }
    return ptr;
  }
};
thread_local AlignedScratch tl_shared_b;

// NNFAST_BF16_SHARED_B: unset or 1 = shared B, 0 = the per-thread grid, auto = the size
// rule below (same-process A/B timing; read per call, which costs far less than the
// >= 4 MFLOP GEMMs that ask).
int shared_b_setting() {
  const char* e = std::getenv("NNFAST_BF16_SHARED_B");
  return e && e[0] == '0' ? 0 : e && e[0] == 'a' ? -1 : 1;
}

// Shared B or the per-thread grid. The grid has each thread pack its own slab of B
// (one K block x N/nt bf16), which then stays in that core's L2; shared B reads the
// other threads' panels from their caches but packs nothing twice. The candidate rule
// (NNFAST_BF16_SHARED_B=auto, 2 threads only): the grid while its slab fits in half a
// 1 MiB L2 (N <= 1024 at KC = 512, N <= 512 at today's KC = 1024), else shared B.
// Measured at KC = 512, it matched the idle bench (the grid
// 1-7 % faster on square 1024 and the MLP shapes hot, shared B 1-5 % faster on square
// 2048 / 4096), but on a loaded machine the MLP training step took 1-3.5 % more CPU
// time with it than with shared B everywhere, so it is not the default until an idle
// A/B of the step (bench/bench_bf16_step.py) says it wins there too.
bool use_shared_b(const Bf16Args& g, const Bf16Kernel& kr, int nt) {
  const int set = shared_b_setting();
  if (set >= 0) return set == 1;
  if (nt != 2) return true;
  const gemm_detail::GemmBlocking& bk = kr.blocking;
  const double kcb = double(gemm_detail::gemm_balanced_block(g.K, bk.kc, kr.kq));
  const double slab = kcb * double((g.N + nt - 1) / nt) * 2.0;
  return slab > 512.0 * 1024.0;
}

// NNFAST_BF16_DYNAMIC (read once): unset or 1 = core_shared_b hands out its packing and
// its rows in chunks that threads claim as they come free; 0 = each thread packs and
// computes a fixed equal share (the earlier schedule), for A/B timing. Same bits either
// way: every C tile is summed over the same K blocks in the same order by whichever thread.
bool dynamic_schedule() {
  static const bool on = env_switch_on("NNFAST_BF16_DYNAMIC");
  return on;
}

// Row chunks (in micro-tile rows) for the dynamic schedule: first one chunk of 3/4 of an
// equal share per thread (it keeps the B panel's reuse of a static split), then chunks
// halving the rest per thread down to one micro-tile row (guided), so a thread that
// arrives late or runs slower (descheduled on a loaded machine; the caller's thread
// often starts with Python's data in its caches) leaves its tail to the others
// instead of making them wait at the end of the parallel region. starts[c] is chunk c's
// first tile row, starts.back() == mb.
void row_chunks(index_t mb, int team, std::vector<index_t>& starts) {
  starts.clear();
  index_t at = 0;
  const index_t big = mb / team * 3 / 4;
  if (big > 0)
    for (int t = 0; t < team; ++t, at += big) starts.push_back(at);
  while (at < mb) {
    starts.push_back(at);
    const index_t left = mb - at, c = left / (2 * team);
    at += c > 1 ? c : 1;
  }
  starts.push_back(mb);
}
thread_local std::vector<index_t> tl_row_chunks;

// Each thread owns a contiguous range of rows of C; every B panel (all of K x
// one N block) is packed ONCE, its NR-wide panels shared out among the threads,
// and read by all of them. A per-thread grid would make each thread that shares
// columns pack its own copy of the same panel: at 2 threads and K = N = 1024
// that duplicate packing (4 bytes read and converted per float32 element) costs
// a sizeable fraction of the thread's arithmetic. All K blocks of the N block are
// packed before the single barrier (the buffer is K x N-block bf16, half a float32
// K x 4096 matrix at most), so a call with N <= NC has one barrier more than the
// grid, not one per K block: a barrier is where a loaded machine's descheduled
// thread makes the others wait. Each C element still sums its K blocks in order
// and each block in the micro-kernel's order, so the result does not depend on
// the thread count.
// One N block of core_shared_b under the dynamic schedule, called by every thread of its
// team (orphaned worksharing loops): the panel's K blocks x groups of 4 NR-wide panels
// are packed by whichever thread is free (the loop's closing barrier is the one before
// the panel is read), then the row chunks are claimed likewise; no barrier after them
// (the next N block's, or the parallel region's end, waits).
void shared_b_dynamic(const Bf16Args& g, const Bf16Kernel& kr, char* bufs, size_t panel, index_t kcb, index_t nkb,
                      index_t jc, index_t nc, index_t np, const std::vector<index_t>& starts, void* ws) {
  const gemm_detail::GemmBlocking& bk = kr.blocking;
  constexpr index_t kGroup = 4;  // NR-wide panels per packing chunk (128 columns at NR = 32)
  const index_t groups = (np + kGroup - 1) / kGroup, nchunks = index_t(starts.size()) - 1;
#ifdef NNFAST_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
  for (index_t t = 0; t < nkb * groups; ++t) {
    const index_t s = t / groups, q = t % groups, pc = s * kcb;
    kr.pack_b(g, pc, g.K - pc < kcb ? g.K - pc : kcb, jc, gemm_detail::gemm_min(nc, q * kGroup * bk.nr),
              gemm_detail::gemm_min(nc, (q + 1) * kGroup * bk.nr), bufs + s * panel);
  }
#ifdef NNFAST_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1) nowait
#endif
  for (index_t c = 0; c < nchunks; ++c) {
    const index_t i0 = gemm_detail::gemm_min(g.M, starts[c] * bk.mr), i1 = gemm_detail::gemm_min(g.M, starts[c + 1] * bk.mr);
    for (index_t pc = 0, s = 0; pc < g.K; pc += kcb, ++s)
      kr.rows(g, bufs + s * panel, ws, i0, i1, pc, g.K - pc < kcb ? g.K - pc : kcb, jc, nc);
  }
}

void core_shared_b(const Bf16Args& g, const Bf16Kernel& kr, int nt) {
  const gemm_detail::GemmBlocking& bk = kr.blocking;
  const index_t mb = (g.M + bk.mr - 1) / bk.mr;
  const index_t kcb = gemm_detail::gemm_balanced_block(g.K, bk.kc, kr.kq);
  const index_t ncb = gemm_detail::gemm_balanced_block(g.N, bk.nc, bk.nr);
  const index_t nkb = (g.K + kcb - 1) / kcb;
  const size_t panel = kr.b_panel_bytes(g.N, g.K);
  char* bufs = static_cast<char*>(tl_shared_b.get(static_cast<size_t>(nkb) * panel));
  const bool dyn = dynamic_schedule();
  std::vector<index_t>& starts = tl_row_chunks;
  if (dyn) row_chunks(mb, nt, starts);
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
#ifdef NNFAST_HAVE_OPENMP
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int tid = 0, team = 1;
#endif
    const index_t i0 = gemm_detail::gemm_min(g.M, (mb * tid / team) * bk.mr);
    const index_t i1 = gemm_detail::gemm_min(g.M, (mb * (tid + 1) / team) * bk.mr);
    // Dynamic: any chunk may come to this thread; no row block of A is larger than
    // min(M, MC) rows' (see Nest::a_words).
    const index_t wm = dyn ? gemm_detail::gemm_min(g.M, index_t(bk.mc)) : (i1 - i0 > 0 ? i1 - i0 : 1);
    void* ws = gemm_detail::gemm_thread_workspace(kr.a_workspace_bytes(wm, g.K));
    for (index_t jc = 0; jc < g.N; jc += ncb) {
      const index_t nc = g.N - jc < ncb ? g.N - jc : ncb, np = (nc + bk.nr - 1) / bk.nr;
#ifdef NNFAST_HAVE_OPENMP
      // The previous N block's panels are being read until every thread is done with them.
      if (jc > 0) {
#pragma omp barrier
      }
#endif
      if (dyn && team > 1) {
        shared_b_dynamic(g, kr, bufs, panel, kcb, nkb, jc, nc, np, starts, ws);
        continue;
      }
      for (index_t pc = 0, s = 0; pc < g.K; pc += kcb, ++s) {
        const index_t kc = g.K - pc < kcb ? g.K - pc : kcb;
        kr.pack_b(g, pc, kc, jc, gemm_detail::gemm_min(nc, np * tid / team * bk.nr),
                  gemm_detail::gemm_min(nc, np * (tid + 1) / team * bk.nr), bufs + s * panel);
      }
#ifdef NNFAST_HAVE_OPENMP
#pragma omp barrier
#endif
      if (i1 > i0)
        for (index_t pc = 0, s = 0; pc < g.K; pc += kcb, ++s)
          kr.rows(g, bufs + s * panel, ws, i0, i1, pc, g.K - pc < kcb ? g.K - pc : kcb, jc, nc);
    }
  }
}

void core_kernel(const Bf16Args& g, const Bf16Kernel& kr) {
  const int nt = gemm_detail::gemm_threads_for(2.0 * double(g.M) * double(g.N) * double(g.K), get_num_threads());
  const index_t mb = (g.M + kr.blocking.mr - 1) / kr.blocking.mr;
  // Enough rows for every thread (two micro-tile rows each) and a B too big for the
  // grid's per-core slabs: share B. Otherwise the thread grid, each thread packing its own.
  if (nt > 1 && mb >= 2 * nt && use_shared_b(g, kr, nt)) {
    core_shared_b(g, kr, nt);
    return;
  }
  struct Ctx {
    const Bf16Args* g;
    const Bf16Kernel* kr;
  } ctx{&g, &kr};
  gemm_detail::gemm_run_grid(g.M, g.N, nt, kr.blocking, [](void* p, index_t i0, index_t i1, index_t j0, index_t j1) {
    const Ctx& c = *static_cast<Ctx*>(p);
    void* ws = gemm_detail::gemm_thread_workspace(c.kr->workspace_bytes(i1 - i0, j1 - j0, c.g->K));
    c.kr->block(*c.g, ws, i0, i1, j0, j1);
  }, &ctx);
}

// AMX computes whole 32 x 32 blocks of 32-deep K steps. On this Xeon vdpbf16ps runs at
// a 30th of tdpbf16ps, so the tiles win even at M = 1 or N = 1 (1.2-1.5x, 1-thread CPU
// time), and lose (0.73-0.87x) only where K < 16 or the whole product is tiny (8^3,
// 4 x 64 x 64): those run the vdpbf16ps kernel. NNFAST_BF16_AMX_SMALL=0 runs AMX on
// every shape (read per call, unlike other switches, so the AMX edge tests can force
// tiny shapes through the tiles in process).
bool amx_wins(index_t M, index_t N, index_t K) {
  if (!env_switch_on("NNFAST_BF16_AMX_SMALL")) return true;
  return K >= 16 && double(M) * double(N) * double(K) > 16384.0;
}

const Bf16Kernel* active_kernel(index_t M, index_t N, index_t K) {
  const Bf16Level lv = bf16_kernel_level();
  if (lv == Bf16Level::AMX_BF16) {
    const Bf16Kernel* amx = gemm_detail::bf16_kernel_amx(N, K);
    if (amx && amx_wins(M, N, K)) return amx;
    return gemm_detail::bf16_kernel_avx512();
  }
  if (lv == Bf16Level::AVX512_BF16) {
    // Hidden NNFAST_BF16_AMX_EMULATE=1 (read per call): the AMX kernel's nest with
    // emulated tiles, so CPUs without AMX test its packing and edges.
    const char* e = std::getenv("NNFAST_BF16_AMX_EMULATE");
    if (e && e[0] == '1' && gemm_detail::bf16_kernel_amx_emulated() && amx_wins(M, N, K))
      return gemm_detail::bf16_kernel_amx_emulated(N, K);
    return gemm_detail::bf16_kernel_avx512();
  }
  return nullptr;
}

}  // namespace

void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const GemmMat& A, const GemmMat& B, float beta,
               void* C, ElemType c_type, index_t rs_c, index_t cs_c, const GemmBf16Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const Bf16Kernel* kr = active_kernel(M, N, K);
  // The kernel path converts bf16 C / aux / dact_src block by block in its
  // epilogue (staged_epilogue); the other paths run gemm<float> on whole buffers.
  const bool per_block = kr && K > 0 && alpha != 0.0f;
  // The float32 view of C: C itself, or a dense buffer that is rounded into a bf16 C.
  const bool c_bf16 = c_type == ElemType::BF16;
  float* Cf = static_cast<float*>(C);
  index_t rs_cf = rs_c, cs_cf = cs_c;
  if (c_bf16) {
    // beta == 0: C is write-only, so the buffer needs no initial values.
    Cf = beta != 0.0f ? widen(GemmMat{C, ElemType::BF16, rs_c, cs_c}, M, N, false, kSlotC)
                      : tl_scratch[kSlotC].get(static_cast<size_t>(M * N));
    rs_cf = N;
    cs_cf = 1;
  }
  // The float32 epilogue, with bf16 arrays widened (bias, dact_src) or staged (aux).
  GemmEpilogue<float> ef;
  float* aux_tmp = nullptr;
  bool dact_bf16 = false;
  ef.act = ep.act;
  ef.act_params = ep.act_params;
  if (ep.bias) {
    if (ep.bias_type == ElemType::BF16) {
      ef.bias = widen(GemmMat{ep.bias, ElemType::BF16, 0, 1}, 1, N, false, kSlotBias);
    } else {
      ef.bias = static_cast<const float*>(ep.bias);
    }
  }
  if (ep.aux) {
    if (ep.aux_type == ElemType::BF16) {
      aux_tmp = tl_scratch[kSlotAux].get(static_cast<size_t>(M * N));
      ef.aux = aux_tmp;
      ef.rs_aux = N;
    } else {
      ef.aux = static_cast<float*>(ep.aux);
      ef.rs_aux = ep.rs_aux;
    }
  }
  if (ep.dact_src) {
    if (ep.dact_type == ElemType::BF16) {
      dact_bf16 = true;
      ef.dact_src = per_block ? tl_scratch[kSlotDact].get(static_cast<size_t>(M * N))
                              : widen(GemmMat{ep.dact_src, ElemType::BF16, ep.rs_dact, 1}, M, N, false, kSlotDact);
      ef.rs_dact = N;
    } else {
      ef.dact_src = static_cast<const float*>(ep.dact_src);
      ef.rs_dact = ep.rs_dact;
    }
  }

  if (!per_block) {
    // K == 0 / alpha == 0 never read A or B: the float32 driver scales C and runs the epilogue.
    Bf16Args g{M, N, K, alpha, beta, A, B, Cf, rs_cf, cs_cf, nullptr, nullptr};
    if (K <= 0 || alpha == 0.0f)
      gemm<float>(M, N, K, alpha, nullptr, 0, 0, nullptr, 0, 0, beta, Cf, rs_cf, cs_cf, ef);
    else
      core_portable(g, ef);
    if (c_bf16) narrow(Cf, M, N, static_cast<bf16_t*>(C), rs_c, cs_c);
    if (aux_tmp) narrow(aux_tmp, M, N, static_cast<bf16_t*>(ep.aux), ep.rs_aux, 1);
    return;
  }
  StagedEpilogue ea;
  static_cast<GemmArgs<float>&>(ea) = GemmArgs<float>{
      {M, N, K, alpha, beta, nullptr, 0, 0, nullptr, 0, 0, Cf, rs_cf, cs_cf}, nullptr, &ef, 0};
  ea.kr = kr;
  ea.inner = gemm_detail::gemm_epilogue_fn(ef);
  if (dact_bf16) {
    ea.dact16 = static_cast<const bf16_t*>(ep.dact_src);
    ea.rs_dact16 = ep.rs_dact;
    ea.dact_f = const_cast<float*>(ef.dact_src);
  }
  if (c_bf16) {
    ea.c16 = static_cast<bf16_t*>(C);
    ea.rs_c16 = rs_c;
    ea.cs_c16 = cs_c;
  }
  if (aux_tmp) {
    ea.aux16 = static_cast<bf16_t*>(ep.aux);
    ea.rs_aux16 = ep.rs_aux;
    ea.aux_f = aux_tmp;
  }
  const bool staged = ea.dact16 || ea.c16 || ea.aux16;
  ea.tile_epilogue = staged ? &staged_epilogue : ea.inner;
  Bf16Args g{M, N, K, alpha, beta, A, B, Cf, rs_cf, cs_cf, ea.tile_epilogue, &ea};
  core_kernel(g, *kr);
}

void gemm_bf16_batched(index_t batch, index_t M, index_t N, index_t K, float alpha, const GemmMat& A, index_t bs_a,
                       const GemmMat& B, index_t bs_b, float beta, void* C, ElemType c_type, index_t bs_c,
                       index_t rs_c, index_t cs_c) {
  const size_t sa = A.type == ElemType::BF16 ? 2 : 4, sb = B.type == ElemType::BF16 ? 2 : 4;
  const size_t sc = c_type == ElemType::BF16 ? 2 : 4;
  auto one = [&](index_t b) {
    GemmMat Ab = A, Bb = B;
    Ab.data = static_cast<const char*>(A.data) + static_cast<std::ptrdiff_t>(b * bs_a) * static_cast<std::ptrdiff_t>(sa);
    Bb.data = static_cast<const char*>(B.data) + static_cast<std::ptrdiff_t>(b * bs_b) * static_cast<std::ptrdiff_t>(sb);
    void* Cb = static_cast<char*>(C) + static_cast<std::ptrdiff_t>(b * bs_c) * static_cast<std::ptrdiff_t>(sc);
    gemm_bf16(M, N, K, alpha, Ab, Bb, beta, Cb, c_type, rs_c, cs_c);
  };
  const int nt = get_num_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (batch <= 1 || nt <= 1 || flops >= 2e6 * nt) {
    // Big products: threads inside each one.
    for (index_t b = 0; b < batch; ++b) one(b);
    return;
  }
  // Small products: threads over the batch; each product runs on one thread (the
  // nested parallel regions inside gemm_bf16 are inactive), in the same K order as
  // a single call, so the result does not depend on the thread count.
#ifdef NNFAST_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
  for (index_t b = 0; b < batch; ++b) one(b);
}

double bf16_peak_gflops(double seconds) {
  // The probe of the kernel bf16_kernel_level() runs (tdpbf16ps on AMX, else vdpbf16ps).
  const Bf16Kernel* kr = nullptr;
  if (bf16_kernel_level() == Bf16Level::AMX_BF16) kr = gemm_detail::bf16_kernel_amx();
  if (!kr && bf16_level_supported(Bf16Level::AVX512_BF16)) kr = gemm_detail::bf16_kernel_avx512();
  return kr ? kr->peak_gflops(seconds) : 0.0;
}

namespace gemm_detail {
#if !defined(NNFAST_HAVE_AVX512BF16)
const Bf16Kernel* bf16_kernel_avx512() { return nullptr; }
#endif
#if !defined(NNFAST_HAVE_AMX_BF16)
const Bf16Kernel* bf16_kernel_amx(index_t, index_t) { return nullptr; }
const Bf16Kernel* bf16_kernel_amx_emulated(index_t, index_t) { return nullptr; }
#endif
}  // namespace gemm_detail

}  // namespace nnfast::cpu

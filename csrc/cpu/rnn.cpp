// Recurrent sequence driver (nnfast/rnn.h): one layer, one direction, the time loop in
// C++. Per step: copy the live states into the saved h_prev / c_prev rows, one GEMM
// (h_prev W_hh^T onto the precomputed input projection), one fused gate kernel over
// the live rows (rnn_isa.cpp). Backward mirrors it; weight gradients are GEMMs over all
// rows at the end. The whole time loop runs in ONE OpenMP team (a region per step cost
// more in fork/join and spin-wait than the step's work at word-LM sizes). With enough
// sequences each thread owns a share of the batch rows and runs every step of them without
// ever waiting (rows never meet in a step); otherwise each thread owns a slice of the hidden
// units, runs the GEMM columns of its units' gates and their gate kernel, and meets the
// others at one barrier per step. The per-step product runs on W_hh packed once per pass
// (RnnOps::step_gemm). Everything is deterministic
// whatever the thread count: every GEMM element reduces over K in the same order
// whichever columns a call covers, and the gate kernels are elementwise.
// Two stacked LSTM layers (the word-LM case) have their own driver at the end of this file,
// lstm2_forward / lstm2_backward: a wavefront where each of two threads owns a whole layer
// (NNFAST_RNN_WAVEFRONT=0 in nnfast/nn/functional/_rnn.py runs them layer by layer instead).
#include <algorithm>
#include <atomic>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/env_switch.h"
#include "core/parallel_for.h"
#include "nnfast/parallel.h"
#include "cpu/rnn_internal.h"
#include "nnfast/gemm.h"
#include "nnfast/rnn.h"

namespace nnfast::cpu {

namespace {

// Row offsets of the steps in the packed layout, and the order a pass visits them.
struct Steps {
  std::vector<index_t> off;
  index_t rows = 0;
  Steps(const index_t* batch_sizes, index_t steps) : off(static_cast<size_t>(steps)) {
    for (index_t t = 0; t < steps; ++t) {
      off[static_cast<size_t>(t)] = rows;
      rows += batch_sizes[t];
    }
  }
};

// The time index of the k-th step a pass processes: forward in time unless reversed.
inline index_t step_at(index_t k, index_t steps, bool backwards_in_time) {
  return backwards_in_time ? steps - 1 - k : k;
}

// A contiguous share of n columns, cut at multiples of 16 (one 64-byte line of floats) so
// neighbouring threads never write the same cache line of a row.
struct Slice {
  index_t lo, hi;
  index_t n() const { return hi - lo; }
};
inline Slice slice(index_t n, int tid, int nt) {
  const index_t blocks = (n + 15) / 16;
  return {std::min(n, blocks * tid / nt * 16), std::min(n, blocks * (tid + 1) / nt * 16)};
}

// Threads for a layer's time loop: one per 16 hidden units at most, and one in all when a
// step's recurrent GEMM (2 N GH K flops) is too small to repay a barrier per step.
inline int step_team(index_t N, index_t GH, index_t K, index_t H) {
  int nt = get_num_threads();
  const index_t blocks = (H + 15) / 16;
  if (nt > blocks) nt = static_cast<int>(blocks);
  if (2.0 * double(N) * double(GH) * double(K) < 2e5) nt = 1;
  return nt > 1 ? nt : 1;
}

// body(tid, nt) on a team of nt threads (or inline on this one); body may call barrier().
// The split uses the team actually granted (a nested call gets one thread).
template <class F>
void team(int nt, F&& body) {
#ifdef NNFAST_HAVE_OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    body(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#endif
  body(0, 1);
}

// A team splits a step by sequences (batch rows) when each thread gets at least this many: the
// rows of a batch never meet in a step, so such a team needs no barrier inside the time loop, and
// its shares are even (by hidden units, H = 200 splits 96 / 104 at 16-unit cuts). Below it, it
// splits the hidden units (a small batch still has several threads' worth of units).
// NNFAST_RNN_ROWS_PER_THREAD overrides it (benchmarks: a huge value always splits the units).
index_t rows_per_thread() {
  static const index_t v = [] {
    const char* e = std::getenv("NNFAST_RNN_ROWS_PER_THREAD");
    const long long n = e && *e ? std::atoll(e) : 0;
    return n > 0 ? static_cast<index_t>(n) : index_t{8};
  }();
  return v;
}
inline bool split_rows(index_t N, int nt) { return nt > 1 && N >= rows_per_thread() * nt; }

// LSTM forward saves tanh(c') rather than c' (c_all), so backward's gate kernel reads the tanh
// it needs instead of taking it again: the same bits, one transcendental fewer per unit.
// NNFAST_RNN_SAVE_TANH=0 saves c' and takes the tanh in backward (the old path, for A/B).
bool save_tanh() {
  static const bool v = env_switch_on("NNFAST_RNN_SAVE_TANH");
  return v;
}

// NNFAST_RNN_SKIP_ZERO_STATE=0: run the first step's product on a zero initial state anyway (A/B).
bool skip_zero_state() {
  static const bool v = env_switch_on("NNFAST_RNN_SKIP_ZERO_STATE");
  return v;
}

// NNFAST_RNN_FUSED_DB=0: the bias gradients as passes of their own (bias_grad), not summed by the
// weight-gradient GEMMs (gemm_row_sums).
bool fused_bias_grad() {
  static const bool v = env_switch_on("NNFAST_RNN_FUSED_DB");
  return v;
}

// Every thread of the team (a no-op outside one) waits here for the others.
inline void barrier() {
#ifdef NNFAST_HAVE_OPENMP
#pragma omp barrier
#endif
}

template <typename T>
void copy_rows(T* dst, const T* src, index_t n) {
  if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
}

// out (cols, rows) = in (rows, cols)^T, in cache-sized tiles.
template <typename T>
void transpose(T* out, const T* in, index_t rows, index_t cols) {
  constexpr index_t kTile = 32;
  parallel_for((rows + kTile - 1) / kTile, 4, [&](index_t lo, index_t hi) {
    for (index_t i0 = lo * kTile; i0 < std::min(rows, hi * kTile); i0 += kTile)
      for (index_t j0 = 0; j0 < cols; j0 += kTile)
        for (index_t i = i0; i < std::min(rows, i0 + kTile); ++i)
          for (index_t j = j0; j < std::min(cols, j0 + kTile); ++j) out[j * rows + i] = in[i * cols + j];
  });
}

// The packed B operand of the per-step product (RnnOps::step_gemm): W_hh is packed once per pass
// instead of once per step and gate. Up to 16 MB it is kept per calling thread and reused by every
// later pass (no allocation, no page faults per call); a larger one lives in `big`, the caller's,
// so a huge layer does not pin its panels for the life of the thread.
template <typename T>
T* step_panels(index_t n, std::vector<T>& big) {
  constexpr size_t kKeep = (size_t{16} << 20) / sizeof(T);
  const size_t want = static_cast<size_t>(n);
  if (want > kKeep) {
    big.resize(want);
    return big.data();
  }
  thread_local std::vector<T> buf;
  if (buf.size() < want) buf.resize(want);
  return buf.data();
}

// Blocks of kStepCols columns (units / state columns) covering a thread's slice.
struct Blocks {
  index_t lo, hi;
};
inline Blocks blocks_of(Slice s) {
  constexpr index_t C = rnn_detail::kStepCols;
  return {s.lo / C, (s.hi + C - 1) / C};
}

// Forward panels (LSTM, B = W_hh^T), in groups of R = fwd_runs() gates: group s, block j holds units
// [16 j, 16 j + 16) of gates s R .. s R + R - 1 side by side, panel[k][r * 16 + l] =
// W_hh[(s R + r) H + 16 j + l][k], zero past unit H; group s starts at dst + s * nblk * P * R * 16.
// R = 2 (default): two calls a step, AVX-512 float tiles of 10 rows x 2 vectors whose block panel
// (K x 32 values, 25.6 KB at K = 200) stays in L1 for the second tile; R = 4 (NNFAST_RNN_FWD_RUNS2=0,
// the old path): one call, 5 x 4 tiles on a K x 64 panel (51 KB at K = 200, over the 48 KB L1, so
// each of M = 20's four tiles streams it from L2). The same sums in the same order either way.
int fwd_runs() {
  static const int v = env_switch_on("NNFAST_RNN_FWD_RUNS2") ? 2 : 4;
  return v;
}
// NNFAST_RNN_SIMD_PACK=0: the forward panels packed one element at a time (RnnOps::pack_block).
bool simd_pack() {
  static const bool v = env_switch_on("NNFAST_RNN_SIMD_PACK");
  return v;
}

template <typename T>
void pack_step_forward(T* dst, const T* w_hh, index_t H, index_t P, Blocks b) {
  constexpr index_t C = rnn_detail::kStepCols;
  const int R = fwd_runs();
  const index_t nblk = (H + C - 1) / C, BW = R * C;
  const auto& k = isa_ops<rnn_detail::RnnOps<T>>();
  for (index_t s = 0; s < 4 / R; ++s)
    for (index_t j = b.lo; j < b.hi; ++j) {
      const index_t n = std::min(C, H - j * C);
      const T* rows[4 * C] = {};
      for (index_t r = 0; r < R; ++r)
        for (index_t l = 0; l < n; ++l) rows[r * C + l] = w_hh + ((s * R + r) * H + j * C + l) * P;
      k.pack_block(dst + (s * nblk + j) * P * BW, rows, n, R, P, simd_pack());
    }
}

// The forward step product on pack_step_forward's panels (K rows), unit blocks [b0, b1) of every
// gate group: C (M x 4 H gate rows, stride ldc) (+)= A Bp.
template <typename T>
void fwd_step_gemm(const rnn_detail::RnnOps<T>& k, T* C, index_t ldc, const T* A, index_t lda, const T* panels,
                   index_t M, index_t K, index_t b0, index_t b1, index_t H, bool accumulate) {
  constexpr index_t SC = rnn_detail::kStepCols;
  const int R = fwd_runs();
  const index_t group = (H + SC - 1) / SC * K * R * SC;
  for (index_t gs = 0; gs < 4 / R; ++gs)
    k.step_gemm(C + gs * R * H, ldc, A, lda, panels + gs * group, M, K, b0, b1, R, H, H, accumulate);
}

// Backward panels (B = W_hh, K = G H): block j holds state columns [16 j, 16 j + 16), zero past P.
// NNFAST_RNN_BACK_PACK=0: the backward panels copied by one memcpy call per 16-value run (the old
// path: 10 400 calls of 64 bytes per pass at H = 200, about 2 % of a word-LM training step). On: full
// blocks are copied by a fixed-size loop the compiler turns into one vector move; the same values.
bool back_pack_inline() {
  static const bool v = env_switch_on("NNFAST_RNN_BACK_PACK");
  return v;
}

template <typename T>
void pack_step_backward(T* dst, const T* w_hh, index_t GH, index_t P, Blocks b) {
  constexpr index_t C = rnn_detail::kStepCols;
  const index_t full = std::min(b.hi, P / C);  // blocks [b.lo, full) have all C columns
  index_t j0 = b.lo;
  if (back_pack_inline())
    for (; j0 < full; ++j0) {
      T* d = dst + j0 * GH * C;
      const T* src = w_hh + j0 * C;
      for (index_t k = 0; k < GH; ++k)
#pragma GCC unroll 16
        for (index_t l = 0; l < C; ++l) d[k * C + l] = src[k * P + l];
    }
  for (index_t j = j0; j < b.hi; ++j) {
    T* d = dst + j * GH * C;
    const index_t n = std::min(C, P - j * C);
    for (index_t k = 0; k < GH; ++k) {
      copy_rows(d + k * C, w_hh + k * P + j * C, n);
      for (index_t l = n; l < C; ++l) d[k * C + l] = T(0);
    }
  }
}

template <typename T>
void init_state(T* state, const T* init, index_t n) {
  if (init) copy_rows(state, init, n);
  else if (n > 0) std::memset(state, 0, static_cast<size_t>(n) * sizeof(T));
}

// Weight gradients over all R rows at once (accumulated, beta = 1), and dx = dgx W_ih.
template <typename T>
void weight_grads(T* dx, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, const T* dgx, const T* dgates, const T* x,
                  const T* w_ih, const T* h_prev, index_t R, index_t I, index_t GH, index_t P, bool accumulate_dx,
                  std::vector<T>& big) {
  if (R == 0) return;
  if (dx) gemm<T>(R, I, GH, T(1), dgx, GH, 1, w_ih, I, 1, accumulate_dx ? T(1) : T(0), dx, I, 1);
  // A bias gradient is summed by the weight GEMM that reads its gate gradients anyway (the same
  // bits as bias_grad); both biases take dgates' sums when dgx is dgates (LSTM, RNN).
  const bool both = db_ih && db_hh && dgx == dgates, fused = fused_bias_grad();
  T* sum = both ? step_panels<T>(GH, big) : nullptr;
  T* rs_ih = fused && dw_ih ? (both ? sum : db_ih) : nullptr;
  T* rs_hh = fused && dw_hh && !(both && rs_ih) ? (both ? sum : db_hh) : nullptr;
  const auto weight = [&](T* dw, const T* g, const T* in, index_t n, T* row_sum) {
    if (!dw) return;
    if (row_sum) gemm_row_sums<T>(GH, n, R, T(1), g, 1, GH, in, n, 1, T(1), dw, n, 1, row_sum, !both);
    else gemm<T>(GH, n, R, T(1), g, 1, GH, in, n, 1, T(1), dw, n, 1);
  };
  weight(dw_ih, dgx, x, I, rs_ih);
  weight(dw_hh, dgates, h_prev, P, rs_hh);
  if (both) {  // one pass over dgates for both biases
    if (!rs_ih && !rs_hh) bias_grad<T>(sum, dgates, GH, 1, R, GH, false);
    for (index_t j = 0; j < GH; ++j) {
      db_ih[j] += sum[j];
      db_hh[j] += sum[j];
    }
  } else {
    if (db_ih && !rs_ih) bias_grad<T>(db_ih, dgx, GH, 1, R, GH, true);
    if (db_hh && !rs_hh) bias_grad<T>(db_hh, dgates, GH, 1, R, GH, true);
  }
}

}  // namespace

template <typename T>
void rnn_forward(T* y, index_t rs_y, T* h_n, T* c_n, T* gates, T* c_all, T* h_raw, T* h_prev, T* c_prev, T* hn,
                 T* w_hh_t, const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh, const T* w_hr,
                 const T* h0, const T* c0, const index_t* batch_sizes, index_t steps, index_t N, index_t I,
                 index_t H, index_t P, RnnMode mode, bool reverse) {
  const auto& k = isa_ops<rnn_detail::RnnOps<T>>();
  const index_t G = rnn_gate_count(mode), GH = G * H;
  const bool lstm = mode == RnnMode::Lstm, gru = mode == RnnMode::Gru, proj = w_hr != nullptr;
  const bool tanh_saved = save_tanh();
  // LSTM without an initial state: the first step's h_prev is all zeros, so its recurrent product
  // (1 / T of them) is skipped: the gates get the same values (only a -0 pre-activation may become
  // +0, and a non-finite W_hh no longer turns that one step's output into NaN).
  const bool zero_start = h0 == nullptr && skip_zero_state();
  const Steps s(batch_sizes, steps);
  init_state(h_n, h0, N * P);
  if (lstm) init_state(c_n, c0, N * H);

  // The recurrent GEMM's B operand, W_hh^T (P, G*H): transposed once into w_hh_t when given, so
  // the small-M per-step GEMMs read it in place (unit column stride) rather than packing it.
  const T* wt = w_hh;
  index_t rs_wt = 1, cs_wt = P;
  // LSTM: W_hh^T packed once per pass into blocks of 16 units x fwd_runs() gates, step_gemm per thread
  // and step (the other modes keep the general GEMM: GRU's n gate goes apart).
  constexpr index_t SC = rnn_detail::kStepCols;
  std::vector<T> big;
  T* panels = lstm ? step_panels<T>((H + SC - 1) / SC * 4 * SC * P, big) : nullptr;
  if (w_hh_t && !lstm) {
    transpose(w_hh_t, w_hh, GH, P);
    wt = w_hh_t;
    rs_wt = GH;
    cs_wt = 1;
  }

  // Input projection of every step at once, b_ih fused: gates = x W_ih^T + b_ih.
  GemmEpilogue<T> ep;
  ep.bias = b_ih;
  if (s.rows > 0) gemm<T>(s.rows, GH, I, T(1), x, I, 1, w_ih, 1, I, T(0), gates, GH, 1, ep);

  // The time loop, in one team. Split by rows (split_rows): a thread owns the sequences
  // [n_lo, n_hi) and every unit, and never waits. Split by units: a thread owns the rows' hidden
  // units [h.lo, h.hi) (all G gate columns of them, so its gate kernel needs nobody else's GEMM
  // output) and the outputs [p.lo, p.hi); the only barrier per step waits until the step's h_prev
  // row is whole.
  team(step_team(N, GH, P + (proj ? H : 0), H), [&](int tid, int nt) {
    const bool by_rows = split_rows(N, nt), sync = nt > 1 && !by_rows;
    const Slice h = by_rows ? Slice{0, H} : slice(H, tid, nt), p = by_rows ? Slice{0, P} : slice(P, tid, nt);
    const index_t n_lo = by_rows ? N * tid / nt : 0, n_hi = by_rows ? N * (tid + 1) / nt : N;
    const Blocks hb = blocks_of(h);
    if (panels) {  // each thread packs its unit share; split by rows, everyone reads every block
      pack_step_forward(panels, w_hh, H, P, blocks_of(slice(H, tid, nt)));
      if (by_rows) barrier();
    }
    for (index_t kk = 0; kk < steps; ++kk) {
      const index_t t = step_at(kk, steps, reverse);
      const index_t r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
      if (B == 0) continue;
      const index_t b0 = n_lo, b1 = std::min(n_hi, B), nb = b1 - b0;  // this thread's rows (nb may be <= 0)
      T* g = gates + r0 * GH;
      T* hp = h_prev + r0 * P;
      T* yr = y + r0 * rs_y;
      for (index_t b = b0; b < b1; ++b) {  // this thread's part of the state, saved for backward
        copy_rows(hp + b * P + p.lo, h_n + b * P + p.lo, p.n());
        if (lstm) copy_rows(c_prev + (r0 + b) * H + h.lo, c_n + b * H + h.lo, h.n());
      }
      if (sync) barrier();
      if (h.n() > 0 && nb > 0) {
        T* ga = g + b0 * GH;
        const T* ha = hp + b0 * P;
        // Gate q's columns of this thread's units; GRU's n gate (q = 2) goes to hn, apart. A thread
        // that owns every unit runs the gates onto g as one GEMM (A packed once, one call).
        const index_t onto = gru ? 2 : G;
        if (panels && !(kk == 0 && zero_start)) {
          fwd_step_gemm(k, ga, GH, ha, P, panels, nb, P, hb.lo, hb.hi, H, true);
        } else if (!panels && h.n() == H) {
          gemm<T>(nb, onto * H, P, T(1), ha, P, 1, wt, rs_wt, cs_wt, T(1), ga, GH, 1);
        }
        for (index_t q = panels ? G : h.n() == H ? onto : 0; q < G; ++q) {
          const bool apart = gru && q == 2;
          gemm<T>(nb, h.n(), P, T(1), ha, P, 1, wt + (q * H + h.lo) * cs_wt, rs_wt, cs_wt, apart ? T(0) : T(1),
                  apart ? hn + (r0 + b0) * H + h.lo : ga + q * H + h.lo, apart ? H : GH, 1);
        }
        for (index_t b = b0; b < b1; ++b) {
          T* gb = g + b * GH + h.lo;
          const T* bh = b_hh ? b_hh + h.lo : nullptr;
          if (lstm) {
            T* hout = proj ? h_raw + (r0 + b) * H : yr + b * rs_y;
            k.lstm_forward(gb, c_n + b * H + h.lo, c_all + (r0 + b) * H + h.lo, hout + h.lo,
                           proj ? nullptr : h_n + b * P + h.lo, bh, h.n(), H, tanh_saved);
          } else if (gru) {
            k.gru_forward(gb, hn + (r0 + b) * H + h.lo, yr + b * rs_y + h.lo, h_n + b * P + h.lo,
                          hp + b * P + h.lo, bh, h.n(), H);
          } else {
            k.rnn_forward(gb, yr + b * rs_y + h.lo, h_n + b * P + h.lo, bh, h.n(), mode == RnnMode::RnnRelu);
          }
        }
      }
      if (proj) {  // h = (o tanh c) W_hr^T over every unit's o tanh c, then it is the state too
        if (sync) barrier();
        if (p.n() > 0 && nb > 0) {
          gemm<T>(nb, p.n(), H, T(1), h_raw + (r0 + b0) * H, H, 1, w_hr + p.lo * H, 1, H, T(0),
                  yr + b0 * rs_y + p.lo, rs_y, 1);
          for (index_t b = b0; b < b1; ++b) copy_rows(h_n + b * P + p.lo, yr + b * rs_y + p.lo, p.n());
        }
      }
    }
  });
}

template <typename T>
void rnn_backward(T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dw_hr, T* dgates,
                  T* dgates_x, T* dh_all, T* dh_raw, const T* dy, index_t rs_dy, const T* dh_n, const T* dc_n,
                  const T* x, const T* w_ih, const T* w_hh, const T* w_hr, const T* gates, const T* c_all,
                  const T* h_raw, const T* h_prev, const T* c_prev, const T* hn, const index_t* batch_sizes,
                  index_t steps, index_t N, index_t I, index_t H, index_t P, RnnMode mode, bool reverse,
                  bool accumulate_dx) {
  const auto& k = isa_ops<rnn_detail::RnnOps<T>>();
  const index_t G = rnn_gate_count(mode), GH = G * H;
  const bool lstm = mode == RnnMode::Lstm, gru = mode == RnnMode::Gru, proj = w_hr != nullptr;
  const bool tanh_saved = save_tanh();
  const Steps s(batch_sizes, steps);
  T* dgx = gru ? dgates_x : dgates;  // the input-side gate gradients
  // dh0 / dc0 carry the running state gradients: row b is sequence b's.
  init_state(dh0, dh_n, N * P);
  if (lstm) init_state(dc0, dc_n, N * H);

  // W_hh packed once per pass for the dh_prev products (blocks of 16 state columns).
  constexpr index_t SC = rnn_detail::kStepCols;
  std::vector<T> big;
  T* panels = step_panels<T>((P + SC - 1) / SC * SC * GH, big);

  // The time loop in one team, split as in forward: a thread's gate kernel covers its units
  // [h.lo, h.hi), its dh_prev GEMM the state columns [p.lo, p.hi). The barrier per step waits
  // until every unit's gate gradients of the step are written (the GEMM reads all of them).
  // Split by rows (split_rows), a thread owns sequences [n_lo, n_hi) and every unit and column.
  team(step_team(N, GH, P + (proj ? H : 0), H), [&](int tid, int nt) {
    const bool by_rows = split_rows(N, nt), sync = nt > 1 && !by_rows;
    const Slice h = by_rows ? Slice{0, H} : slice(H, tid, nt), p = by_rows ? Slice{0, P} : slice(P, tid, nt);
    const index_t n_lo = by_rows ? N * tid / nt : 0, n_hi = by_rows ? N * (tid + 1) / nt : N;
    const Blocks pb = blocks_of(p);
    pack_step_backward(panels, w_hh, GH, P, blocks_of(slice(P, tid, nt)));  // this thread's share
    if (by_rows) barrier();  // split by rows, everyone reads every block
    for (index_t kk = 0; kk < steps; ++kk) {
      const index_t t = step_at(kk, steps, !reverse);  // the forward pass's steps, last first
      const index_t r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
      if (B == 0) continue;
      const index_t b0 = n_lo, b1 = std::min(n_hi, B), nb = b1 - b0;  // this thread's rows (nb may be <= 0)
      const T* dyr = dy ? dy + r0 * rs_dy : nullptr;
      if (proj) {  // dh of the projected output, then back through W_hr to o tanh(c)
        T* dha = dh_all + r0 * P;
        for (index_t b = b0; b < b1; ++b)
          k.add(dha + b * P + p.lo, dh0 + b * P + p.lo, dyr ? dyr + b * rs_dy + p.lo : nullptr, p.n());
        if (sync) barrier();
        if (h.n() > 0 && nb > 0)
          gemm<T>(nb, h.n(), P, T(1), dha + b0 * P, P, 1, w_hr + h.lo, H, 1, T(0), dh_raw + b0 * H + h.lo, H, 1);
      }
      if (h.n() > 0) {
        for (index_t b = b0; b < b1; ++b) {
          const index_t r = r0 + b;
          const T* dyb = proj || !dyr ? nullptr : dyr + b * rs_dy + h.lo;
          if (lstm) {
            const T* dh = proj ? dh_raw + b * H : dh0 + b * P;
            k.lstm_backward(dgates + r * GH + h.lo, dc0 + b * H + h.lo, dh + h.lo, dyb, gates + r * GH + h.lo,
                            c_all + r * H + h.lo, c_prev + r * H + h.lo, h.n(), H, tanh_saved);
          } else if (gru) {
            k.gru_backward(dgates + r * GH + h.lo, dgx + r * GH + h.lo, dh0 + b * P + h.lo, dyb,
                           gates + r * GH + h.lo, hn + r * H + h.lo, h_prev + r * P + h.lo, h.n(), H);
          } else {
            k.rnn_backward(dgates + r * GH + h.lo, dh0 + b * P + h.lo, dyb, gates + r * GH + h.lo, h.n(),
                           mode == RnnMode::RnnRelu);
          }
        }
      }
      if (sync) barrier();
      // dh_prev = dgates W_hh (GRU: added to the direct part z dh' the gate kernel wrote).
      k.step_gemm(dh0 + b0 * P, P, dgates + (r0 + b0) * GH, GH, panels, nb, GH, pb.lo, pb.hi, 1, 0, P, gru);
    }
  });

  weight_grads<T>(dx, dw_ih, dw_hh, db_ih, db_hh, dgx, dgates, x, w_ih, h_prev, s.rows, I, GH, P, accumulate_dx, big);
  if (proj && dw_hr && s.rows > 0) gemm<T>(P, H, s.rows, T(1), dh_all, 1, P, h_raw, H, 1, T(1), dw_hr, H, 1);
}

// ---- Two stacked LSTM layers as a wavefront (lstm2_forward / lstm2_backward) ----

namespace {

// A step counter one thread publishes (release) and the other waits on (acquire): spins with pause,
// then yields the core (8 processes may share 2 cores; a descheduled producer must get to run).
struct StepFlag {
  std::atomic<index_t> done{0};
  void publish(index_t n) { done.store(n, std::memory_order_release); }
  void wait(index_t n) const {
    for (int spins = 0; done.load(std::memory_order_acquire) < n; ++spins) {
      if (spins < (1 << 14)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }
};

// One LSTM step of a whole layer (every row and unit, on this thread): save the live state for
// backward, add h_prev W_hh^T onto the step's gate rows (skipped on a zero initial state, as
// rnn_forward does), run the gate kernel. panels: W_hh packed by pack_step_forward (all blocks).
template <typename T>
void lstm_layer_step(const rnn_detail::RnnOps<T>& k, const LstmLayer<T>& L, const T* panels, index_t r0, index_t B,
                     bool skip_product, bool tanh_saved) {
  const index_t H = L.H, GH = 4 * H, nblk = (H + rnn_detail::kStepCols - 1) / rnn_detail::kStepCols;
  T* hp = L.h_prev + r0 * H;
  copy_rows(hp, L.h_n, B * H);
  copy_rows(L.c_prev + r0 * H, L.c_n, B * H);
  T* g = L.gates + r0 * GH;
  if (!skip_product) fwd_step_gemm(k, g, GH, hp, H, panels, B, H, 0, nblk, H, true);
  for (index_t b = 0; b < B; ++b)
    k.lstm_forward(g + b * GH, L.c_n + b * H, L.c_all + (r0 + b) * H, L.y + (r0 + b) * H, L.h_n + b * H, L.b_hh, H,
                   H, tanh_saved);
}

// Layer 1's input projection of one step over the unit blocks [j0, j1): gates = y0 W_ih^T + b_ih, as
// rnn_forward's GEMM over all steps gives it (its bias is added to the finished sum: here the sum is
// added to the bias).
template <typename T>
void lstm_project_step(const rnn_detail::RnnOps<T>& k, const LstmLayer<T>& L, const T* x, const T* panels, index_t r0,
                       index_t B, index_t j0, index_t j1) {
  constexpr index_t C = rnn_detail::kStepCols;
  const index_t H = L.H, GH = 4 * H, u0 = std::min(H, j0 * C), u1 = std::min(H, j1 * C);
  T* g = L.gates + r0 * GH;
  if (L.b_ih)
    for (index_t b = 0; b < B; ++b)
      for (index_t q = 0; q < 4; ++q) copy_rows(g + b * GH + q * H + u0, L.b_ih + q * H + u0, u1 - u0);
  fwd_step_gemm(k, g, GH, x + r0 * L.I, L.I, panels, B, L.I, j0, j1, H, L.b_ih != nullptr);
}

// One LSTM backward step of a whole layer: the gate-backward kernel over the rows (dy: the step's
// output gradient rows or null), then dh_prev = dgates W_hh (panels: pack_step_backward, all blocks).
template <typename T>
void lstm_layer_step_back(const rnn_detail::RnnOps<T>& k, const LstmLayer<T>& L, const LstmLayerGrad<T>& D,
                          const T* dy, const T* panels, index_t r0, index_t B, bool tanh_saved) {
  const index_t H = L.H, GH = 4 * H, nblk = (H + rnn_detail::kStepCols - 1) / rnn_detail::kStepCols;
  for (index_t b = 0; b < B; ++b) {
    const index_t r = r0 + b;
    k.lstm_backward(D.dgates + r * GH, D.dc0 + b * H, D.dh0 + b * H, dy ? dy + b * H : nullptr, L.gates + r * GH,
                    L.c_all + r * H, L.c_prev + r * H, H, H, tanh_saved);
  }
  k.step_gemm(D.dh0, H, D.dgates + r0 * GH, GH, panels, B, GH, 0, nblk, 1, 0, H, false);
}

// Threads for the wavefront: two, unless the step is too small to repay a flag per step (step_team).
template <typename T>
int wavefront_team(const LstmLayer<T>* Ls, index_t N) {
  const index_t H = std::max(Ls[0].H, Ls[1].H);
  return std::min(2, step_team(N, 4 * H, H, H));
}

// Runs role 0 (tid 0) and role 1 (tid 1) over every step kk, role 1's step kk after role 0's (the flag);
// on a single thread it interleaves them: role0(kk), role1(kk).
template <class F0, class F1>
void wavefront(int nt, index_t steps, F0&& role0, F1&& role1) {
  StepFlag flag;
  team(nt, [&](int tid, int n) {
    if (n == 1) {
      for (index_t kk = 0; kk < steps; ++kk) {
        role0(kk);
        role1(kk);
      }
    } else if (tid == 0) {
      for (index_t kk = 0; kk < steps; ++kk) {
        role0(kk);
        flag.publish(kk + 1);
      }
    } else if (tid == 1) {
      for (index_t kk = 0; kk < steps; ++kk) {
        flag.wait(kk + 1);
        role1(kk);
      }
    }
  });
}

}  // namespace

template <typename T>
void lstm2_forward(const LstmLayer<T>* Ls, const T* x, const index_t* batch_sizes, index_t steps, index_t N) {
  const auto& k = isa_ops<rnn_detail::RnnOps<T>>();
  constexpr index_t C = rnn_detail::kStepCols;
  const bool tanh_saved = save_tanh();
  const LstmLayer<T>&L0 = Ls[0], &L1 = Ls[1];
  const Steps s(batch_sizes, steps);
  for (const LstmLayer<T>& L : {L0, L1}) {
    init_state(L.h_n, L.h0, N * L.H);
    init_state(L.c_n, L.c0, N * L.H);
  }
  // Layer 0's input projection for every step at once (the general GEMM, all threads), as rnn_forward.
  GemmEpilogue<T> ep;
  ep.bias = L0.b_ih;
  if (s.rows > 0) gemm<T>(s.rows, 4 * L0.H, L0.I, T(1), x, L0.I, 1, L0.w_ih, 1, L0.I, T(0), L0.gates, 4 * L0.H, 1, ep);
  // Panels: W_hh of each layer, then layer 1's W_ih (its unit blocks split: role 0 runs [0, half)).
  const index_t nb0 = (L0.H + C - 1) / C, nb1 = (L1.H + C - 1) / C, half = nb1 / 2;
  const index_t sz0 = nb0 * 4 * C * L0.H, sz1 = nb1 * 4 * C * L1.H, szi = nb1 * 4 * C * L1.I;
  std::vector<T> big;
  T* const p0 = step_panels<T>(sz0 + sz1 + szi, big);
  T* const p1 = p0 + sz0;
  T* const pi = p1 + sz1;
  const bool skip0 = L0.h0 == nullptr && skip_zero_state(), skip1 = L1.h0 == nullptr && skip_zero_state();
  // Each role packs the panels it reads, at its first step (no barrier between the threads).
  wavefront(
      wavefront_team(Ls, N), steps,
      [&](index_t kk) {  // layer 0's step, then its part of layer 1's input projection
        if (kk == 0) {
          pack_step_forward(p0, L0.w_hh, L0.H, L0.H, Blocks{0, nb0});
          pack_step_forward(pi, L1.w_ih, L1.H, L1.I, Blocks{0, half});
        }
        const index_t r0 = s.off[static_cast<size_t>(kk)], B = batch_sizes[kk];
        if (B == 0) return;
        lstm_layer_step(k, L0, p0, r0, B, kk == 0 && skip0, tanh_saved);
        lstm_project_step(k, L1, L0.y, pi, r0, B, 0, half);
      },
      [&](index_t kk) {  // the rest of layer 1's input projection, then its step
        if (kk == 0) {
          pack_step_forward(p1, L1.w_hh, L1.H, L1.H, Blocks{0, nb1});
          pack_step_forward(pi, L1.w_ih, L1.H, L1.I, Blocks{half, nb1});
        }
        const index_t r0 = s.off[static_cast<size_t>(kk)], B = batch_sizes[kk];
        if (B == 0) return;
        lstm_project_step(k, L1, L0.y, pi, r0, B, half, nb1);
        lstm_layer_step(k, L1, p1, r0, B, kk == 0 && skip1, tanh_saved);
      });
}

template <typename T>
void lstm2_backward(T* dx, T* dy0, const T* dy, const LstmLayer<T>* Ls, const LstmLayerGrad<T>* Ds, const T* x,
                    const index_t* batch_sizes, index_t steps, index_t N) {
  const auto& k = isa_ops<rnn_detail::RnnOps<T>>();
  constexpr index_t C = rnn_detail::kStepCols;
  const bool tanh_saved = save_tanh();
  const LstmLayer<T>&L0 = Ls[0], &L1 = Ls[1];
  const LstmLayerGrad<T>&D0 = Ds[0], &D1 = Ds[1];
  const Steps s(batch_sizes, steps);
  for (int l = 0; l < 2; ++l) {
    init_state(Ds[l].dh0, Ds[l].dh_n, N * Ls[l].H);
    init_state(Ds[l].dc0, Ds[l].dc_n, N * Ls[l].H);
  }
  // Panels: W_hh of each layer (B = W_hh, K = 4 H), then layer 1's W_ih for dy0 = dgates1 W_ih (its
  // column blocks split: role 0, layer 1's, runs [0, half)).
  const index_t G1 = 4 * L1.H, nb0 = (L0.H + C - 1) / C, nb1 = (L1.H + C - 1) / C, nbi = (L1.I + C - 1) / C;
  const index_t half = nbi / 2;
  const index_t sz1 = nb1 * C * G1, sz0 = nb0 * C * 4 * L0.H, szi = nbi * C * G1;
  std::vector<T> big;
  T* const p1 = step_panels<T>(sz0 + sz1 + szi, big);
  T* const p0 = p1 + sz1;
  T* const pi = p0 + sz0;
  const auto at = [&](index_t kk) { return step_at(kk, steps, true); };  // the forward's steps, last first
  wavefront(
      wavefront_team(Ls, N), steps,
      [&](index_t kk) {  // layer 1's step, then its part of layer 0's output gradient dy0 = dgates1 W_ih
        if (kk == 0) {
          pack_step_backward(p1, L1.w_hh, G1, L1.H, Blocks{0, nb1});
          pack_step_backward(pi, L1.w_ih, G1, L1.I, Blocks{0, half});
        }
        const index_t t = at(kk), r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
        if (B == 0) return;
        lstm_layer_step_back(k, L1, D1, dy ? dy + r0 * L1.H : nullptr, p1, r0, B, tanh_saved);
        k.step_gemm(dy0 + r0 * L1.I, L1.I, D1.dgates + r0 * G1, G1, pi, B, G1, 0, half, 1, 0, L1.I, false);
      },
      [&](index_t kk) {  // the rest of dy0's step, then layer 0's step
        if (kk == 0) {
          pack_step_backward(p0, L0.w_hh, 4 * L0.H, L0.H, Blocks{0, nb0});
          pack_step_backward(pi, L1.w_ih, G1, L1.I, Blocks{half, nbi});
        }
        const index_t t = at(kk), r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
        if (B == 0) return;
        k.step_gemm(dy0 + r0 * L1.I, L1.I, D1.dgates + r0 * G1, G1, pi, B, G1, half, nbi, 1, 0, L1.I, false);
        lstm_layer_step_back(k, L0, D0, dy0 + r0 * L0.H, p0, r0, B, tanh_saved);
      });
  // Weight gradients of both layers over all rows (all threads), and dx.
  std::vector<T> big2;
  weight_grads<T>(nullptr, D1.dw_ih, D1.dw_hh, D1.db_ih, D1.db_hh, D1.dgates, D1.dgates, L0.y, L1.w_ih, L1.h_prev,
                  s.rows, L1.I, G1, L1.H, false, big2);
  weight_grads<T>(dx, D0.dw_ih, D0.dw_hh, D0.db_ih, D0.db_hh, D0.dgates, D0.dgates, x, L0.w_ih, L0.h_prev, s.rows,
                  L0.I, 4 * L0.H, L0.H, false, big2);
}

#define NNFAST_RNN_INSTANTIATE_(T)                                                                              \
  template void rnn_forward<T>(T*, index_t, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,      \
                               const T*, const T*, const T*, const T*, const T*, const index_t*, index_t,       \
                               index_t, index_t, index_t, index_t, RnnMode, bool);                             \
  template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, index_t, const T*,    \
                                const T*, const T*, const T*, const T*, const T*, const T*, const T*,          \
                                const T*, const T*, const T*, const T*, const index_t*, index_t, index_t,      \
                                index_t, index_t, index_t, RnnMode, bool, bool);                         \
  template void lstm2_forward<T>(const LstmLayer<T>*, const T*, const index_t*, index_t, index_t);              \
  template void lstm2_backward<T>(T*, T*, const T*, const LstmLayer<T>*, const LstmLayerGrad<T>*, const T*,     \
                                  const index_t*, index_t, index_t);
NNFAST_RNN_INSTANTIATE_(float)
NNFAST_RNN_INSTANTIATE_(double)
#undef NNFAST_RNN_INSTANTIATE_

}  // namespace nnfast::cpu

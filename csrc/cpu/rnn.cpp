// Recurrent sequence driver (nnfast/rnn.h): one layer, one direction, the time loop in
// C++. Per step: copy the live states into the saved h_prev / c_prev rows, one GEMM
// (h_prev W_hh^T onto the precomputed input projection), one fused gate kernel over
// the live rows (rnn_isa.cpp). Backward mirrors it; weight gradients are GEMMs over all
// rows at the end. Everything is deterministic: the GEMMs reduce in a fixed order and
// the gate kernels are elementwise.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel_for.h"
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

// Rows per gate-kernel task: a step's gate work is tiny next to its GEMM, so it stays serial below
// kElementwiseGrain gate values per thread (a fork/join per step costs more than it saves there).
inline index_t row_grain(index_t width) {
  const index_t g = kElementwiseGrain / (width > 0 ? width : 1);
  return g > 1 ? g : 1;
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

template <typename T>
void init_state(T* state, const T* init, index_t n) {
  if (init) copy_rows(state, init, n);
  else if (n > 0) std::memset(state, 0, static_cast<size_t>(n) * sizeof(T));
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
  const Steps s(batch_sizes, steps);
  init_state(h_n, h0, N * P);
  if (lstm) init_state(c_n, c0, N * H);

  // The recurrent GEMM's B operand, W_hh^T (P, G*H): transposed once into w_hh_t when given, so
  // the small-M per-step GEMMs read it in place (unit column stride) rather than packing it.
  const T* wt = w_hh;
  index_t rs_wt = 1, cs_wt = P;
  if (w_hh_t) {
    transpose(w_hh_t, w_hh, GH, P);
    wt = w_hh_t;
    rs_wt = GH;
    cs_wt = 1;
  }

  // Input projection of every step at once, b_ih fused: gates = x W_ih^T + b_ih.
  GemmEpilogue<T> ep;
  ep.bias = b_ih;
  if (s.rows > 0) gemm<T>(s.rows, GH, I, T(1), x, I, 1, w_ih, 1, I, T(0), gates, GH, 1, ep);

  for (index_t kk = 0; kk < steps; ++kk) {
    const index_t t = step_at(kk, steps, reverse);
    const index_t r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
    if (B == 0) continue;
    T* g = gates + r0 * GH;
    T* hp = h_prev + r0 * P;
    copy_rows(hp, h_n, B * P);
    if (lstm) copy_rows(c_prev + r0 * H, c_n, B * H);
    if (gru) {  // r, z accumulate onto the input projection; n's hidden part stays apart
      gemm<T>(B, 2 * H, P, T(1), hp, P, 1, wt, rs_wt, cs_wt, T(1), g, GH, 1);
      gemm<T>(B, H, P, T(1), hp, P, 1, wt + 2 * H * cs_wt, rs_wt, cs_wt, T(0), hn + r0 * H, H, 1);
    } else {
      gemm<T>(B, GH, P, T(1), hp, P, 1, wt, rs_wt, cs_wt, T(1), g, GH, 1);
    }
    T* yr = y + r0 * rs_y;
    parallel_for(B, row_grain(GH), [&](index_t lo, index_t hi) {
      for (index_t b = lo; b < hi; ++b) {
        T* gb = g + b * GH;
        if (lstm) {
          T* hout = proj ? h_raw + (r0 + b) * H : yr + b * rs_y;
          k.lstm_forward(gb, c_n + b * H, c_all + (r0 + b) * H, hout, proj ? nullptr : h_n + b * P, b_hh, H);
        } else if (gru) {
          k.gru_forward(gb, hn + (r0 + b) * H, yr + b * rs_y, h_n + b * P, hp + b * P, b_hh, H);
        } else {
          k.rnn_forward(gb, yr + b * rs_y, h_n + b * P, b_hh, H, mode == RnnMode::RnnRelu);
        }
      }
    });
    if (proj) {  // h = (o tanh c) W_hr^T, then it is the state too
      gemm<T>(B, P, H, T(1), h_raw + r0 * H, H, 1, w_hr, 1, H, T(0), yr, rs_y, 1);
      for (index_t b = 0; b < B; ++b) copy_rows(h_n + b * P, yr + b * rs_y, P);
    }
  }
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
  const Steps s(batch_sizes, steps);
  T* dgx = gru ? dgates_x : dgates;  // the input-side gate gradients
  // dh0 / dc0 carry the running state gradients: row b is sequence b's.
  init_state(dh0, dh_n, N * P);
  if (lstm) init_state(dc0, dc_n, N * H);

  for (index_t kk = 0; kk < steps; ++kk) {
    const index_t t = step_at(kk, steps, !reverse);  // the forward pass's steps, last first
    const index_t r0 = s.off[static_cast<size_t>(t)], B = batch_sizes[t];
    if (B == 0) continue;
    const T* dyr = dy ? dy + r0 * rs_dy : nullptr;
    if (proj) {  // dh of the projected output, then back through W_hr to o tanh(c)
      T* dha = dh_all + r0 * P;
      for (index_t b = 0; b < B; ++b) k.add(dha + b * P, dh0 + b * P, dyr ? dyr + b * rs_dy : nullptr, P);
      gemm<T>(B, H, P, T(1), dha, P, 1, w_hr, H, 1, T(0), dh_raw, H, 1);
    }
    parallel_for(B, row_grain(GH), [&](index_t lo, index_t hi) {
      for (index_t b = lo; b < hi; ++b) {
        const index_t r = r0 + b;
        const T* dyb = proj || !dyr ? nullptr : dyr + b * rs_dy;
        if (lstm) {
          const T* dh = proj ? dh_raw + b * H : dh0 + b * P;
          k.lstm_backward(dgates + r * GH, dc0 + b * H, dh, dyb, gates + r * GH, c_all + r * H, c_prev + r * H, H);
        } else if (gru) {
          k.gru_backward(dgates + r * GH, dgx + r * GH, dh0 + b * P, dyb, gates + r * GH, hn + r * H,
                         h_prev + r * P, H);
        } else {
          k.rnn_backward(dgates + r * GH, dh0 + b * P, dyb, gates + r * GH, H, mode == RnnMode::RnnRelu);
        }
      }
    });
    // dh_prev = dgates W_hh (GRU: added to the direct part z dh' the gate kernel wrote).
    gemm<T>(B, P, GH, T(1), dgates + r0 * GH, GH, 1, w_hh, P, 1, gru ? T(1) : T(0), dh0, P, 1);
  }

  // Weight gradients over all rows at once (accumulated, beta = 1).
  const index_t R = s.rows;
  if (R == 0) return;
  if (dx) gemm<T>(R, I, GH, T(1), dgx, GH, 1, w_ih, I, 1, accumulate_dx ? T(1) : T(0), dx, I, 1);
  if (dw_ih) gemm<T>(GH, I, R, T(1), dgx, 1, GH, x, I, 1, T(1), dw_ih, I, 1);
  if (db_ih) bias_grad<T>(db_ih, dgx, GH, 1, R, GH, true);
  if (dw_hh) gemm<T>(GH, P, R, T(1), dgates, 1, GH, h_prev, P, 1, T(1), dw_hh, P, 1);
  if (db_hh) bias_grad<T>(db_hh, dgates, GH, 1, R, GH, true);
  if (proj && dw_hr) gemm<T>(P, H, R, T(1), dh_all, 1, P, h_raw, H, 1, T(1), dw_hr, H, 1);
}

#define NNFAST_RNN_INSTANTIATE_(T)                                                                              \
  template void rnn_forward<T>(T*, index_t, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,      \
                               const T*, const T*, const T*, const T*, const T*, const index_t*, index_t,       \
                               index_t, index_t, index_t, index_t, RnnMode, bool);                             \
  template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, index_t, const T*,    \
                                const T*, const T*, const T*, const T*, const T*, const T*, const T*,          \
                                const T*, const T*, const T*, const T*, const index_t*, index_t, index_t,      \
                                index_t, index_t, index_t, RnnMode, bool, bool);
NNFAST_RNN_INSTANTIATE_(float)
NNFAST_RNN_INSTANTIATE_(double)
#undef NNFAST_RNN_INSTANTIATE_

}  // namespace nnfast::cpu

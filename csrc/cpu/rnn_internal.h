// Recurrent-layer internals: the fused gate kernels of one step, per row, as a
// per-ISA table (rnn_isa.cpp fills one per instruction set; rnn.cpp, the sequence
// driver, runs them over a step's rows with isa_ops<RnnOps<T>>()).
//
// Row layouts: g / dg / dgx hold G blocks of H (PyTorch's gate order); every other
// row is H wide. b_hh (G*H) may be null; dy may be null (no output gradient).
// A call covers n hidden units of the row: every pointer is already offset to the
// first of them (gate q of unit j at g[q * H + j]), so a thread can own a slice.
#pragma once
#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace rnn_detail {

template <typename T>
struct RnnOps {
  // LSTM. g in: x W_ih^T + b_ih + h W_hh^T; out: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
  // (b_hh added first). c: in c_prev, out c' = f c + i g; c_save =: tanh(c') when save_tanh
  // (backward then needs no tanh of its own), else c'; h = o tanh(c'), stored to h and, when h2
  // is set, to h2.
  void (*lstm_forward)(T* g, T* c, T* c_save, T* h, T* h2, const T* b_hh, index_t n, index_t H, bool save_tanh);
  // dc: in the gradient of c' (from the later step), out that of c_prev; dh (+ dy) is the
  // gradient of h; dg =: the pre-activation gradients. c is forward's c_save: tanh(c') when
  // tanh_saved (the same bits as taking it here), else c'.
  void (*lstm_backward)(T* dg, T* dc, const T* dh, const T* dy, const T* g, const T* c, const T* c_prev,
                        index_t n, index_t H, bool tanh_saved);
  // GRU. g in: x W_ih^T + b_ih with h W_h{r,z}^T added to r, z; hn in: h W_hn^T, out: + b_hn.
  // r, z = sigmoid, n = tanh(g_n + r hn); h' = n + z (h_prev - n) to h (and h2).
  void (*gru_forward)(T* g, T* hn, T* h, T* h2, const T* h_prev, const T* b_hh, index_t n, index_t H);
  // dh: in the gradient of h' (plus dy), out its direct part z dh' (the GEMM adds the rest);
  // dgh =: hidden-side gate gradients (n: dn_pre * r), dgx =: input-side ones (n: dn_pre).
  void (*gru_backward)(T* dgh, T* dgx, T* dh, const T* dy, const T* g, const T* hn, const T* h_prev, index_t n,
                       index_t H);
  // Elman RNN: g in the pre-activation (b_hh added here), out h' = tanh or relu; h (and h2) = h'.
  void (*rnn_forward)(T* g, T* h, T* h2, const T* b_hh, index_t H, bool relu);
  void (*rnn_backward)(T* dg, const T* dh, const T* dy, const T* g, index_t H, bool relu);
  // out = a + b (b may be null: a copy); the projected LSTM's output gradient.
  void (*add)(T* out, const T* a, const T* b, index_t n);
  // The per-step recurrent product on a B operand packed once per pass (rnn.cpp's pack_step_*):
  // C (M rows, row stride ldc) = (accumulate ? C : 0) + A (M x K, row stride lda) Bp, over the
  // column blocks [b0, b1). Block j is `runs` runs of kStepCols columns, run q starting at column
  // q * run_stride + j * kStepCols (LSTM forward: the 4 gates of 16 units; backward: 16 state
  // columns); its panel is Bp + j * K * runs * kStepCols, K rows of the runs' values side by side.
  // A run has ncols columns in all (H or P): the last block may be partial, its panel zero-padded.
  // runs is 1, 2 or 4. Every element is
  // sum_k in order (one fma each) then added to C: the bits do not depend on the blocks a call
  // covers, so a thread's share gives the same C as one call over everything.
  void (*step_gemm)(T* C, index_t ldc, const T* A, index_t lda, const T* Bp, index_t M, index_t K, index_t b0,
                    index_t b1, int runs, index_t run_stride, index_t ncols, bool accumulate);
  // One block of a step panel: d (K rows of runs * kStepCols) [k][q] = rows[q][k], zero for the
  // columns l >= n of each run (rows[q] is then unused). simd = false: one element at a time.
  void (*pack_block)(T* d, const T* const* rows, index_t n, int runs, index_t K, bool simd);
};

// Columns of one run of a packed step block (and the units a thread's slice is cut at).
inline constexpr index_t kStepCols = 16;

}  // namespace rnn_detail

NNFAST_ISA_DECLARE_TABLE_T(rnn_detail::RnnOps)

}  // namespace nnfast::cpu

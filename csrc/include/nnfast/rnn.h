// Recurrent layers (RNN tanh / relu, LSTM with optional projection, GRU): the whole
// sequence of one layer in one direction, forward then backward.
//
// Shape letters: T time steps, N sequences (batch), I input features, H hidden
// units, P output features (P = proj_size for a projected LSTM, else P = H),
// G gates (1 RNN, 4 LSTM in PyTorch's order i, f, g, o, 3 GRU r, z, n),
// R = sum(batch_sizes) rows of a packed sequence.
//
// The sequence is packed (PyTorch's PackedSequence layout): step t owns the
// batch_sizes[t] consecutive rows starting at sum(batch_sizes[:t]), batch_sizes is
// non-increasing, and row b of a step is sequence b. A padded (T, N, I) input is the
// same thing with batch_sizes = [N] * T. Each step touches only its live prefix of
// the batch; the state of sequence b lives in row b of h_n / c_n throughout, so
// h_n holds each sequence's last state at the end (reverse: the state after t = 0).
//
// Work per layer and direction: one GEMM projects every step's input (bias b_ih
// fused), then each step is one GEMM (h_prev W_hh^T, accumulated onto that step's
// slice; GRU: two, since its n gate keeps W_hn h + b_hn apart) plus one fused gate
// kernel. Backward is one gate-backward kernel and one GEMM (dh_prev) per step; the
// weight gradients are GEMMs over all R rows at the end, never per step.
//
// Saved arrays (written by forward, read by backward; all C-contiguous):
//   gates  (R, G*H) activated gates (RNN: the new h);
//   c_all  (R, H)   LSTM: tanh of the cell state after each step (the CPU kernels; the cell
//                   state itself with NNFAST_RNN_SAVE_TANH=0 and on CUDA), else null;
//   h_raw  (R, H)   projected LSTM: o * tanh(c) before W_hr, else null;
//   h_prev (R, P)   each row's state before its step;
//   c_prev (R, H)   LSTM cell state before each step, else null;
//   hn     (R, H)   GRU: W_hn h_prev + b_hn, else null.
// Gradient contract (nnfast/common.h): dx, dh0, dc0 overwrite; dw_ih, dw_hh, db_ih,
// db_hh, dw_hr accumulate (+=); a null gradient pointer is "not wanted".
#pragma once
#include "nnfast/common.h"

namespace nnfast {

enum class RnnMode : int { RnnTanh = 0, RnnRelu = 1, Lstm = 2, Gru = 3 };

inline constexpr index_t rnn_gate_count(RnnMode m) {
  return m == RnnMode::Lstm ? 4 : (m == RnnMode::Gru ? 3 : 1);
}

namespace cpu {
// y (R, P) with row stride rs_y (>= P: the two directions of a bidirectional layer
// write the halves of one (R, 2P) array); h_n (N, P), c_n (N, H) (LSTM, else null):
// the final states, which start as h0 / c0 (null: zeros).
// x (R, I); w_ih (G*H, I); w_hh (G*H, P); b_ih, b_hh (G*H) or null; w_hr (P, H) or null.
// w_hh_t (P, G*H): an optional workspace; when given, W_hh^T is copied there once so the per-step GEMM
// reads its B operand with unit column stride, in place, instead of packing W_hh at every step.
template <typename T>
void rnn_forward(T* y, index_t rs_y, T* h_n, T* c_n, T* gates, T* c_all, T* h_raw, T* h_prev, T* c_prev, T* hn,
                 T* w_hh_t, const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh, const T* w_hr,
                 const T* h0, const T* c0, const index_t* batch_sizes, index_t steps, index_t N, index_t I,
                 index_t H, index_t P, RnnMode mode, bool reverse);

// dh0 (N, P), dc0 (N, H; LSTM) =: the gradients of the initial states (they also
// serve as the running state gradients, so they are required). dy (R, P) with row
// stride rs_dy, dh_n (N, P), dc_n (N, H): incoming gradients, each may be null (zero).
// Workspaces: dgates (R, G*H) always; dgates_x (R, G*H) GRU only (the input-side
// gradient differs from the hidden-side one in the n gate), else null; dh_all (R, P)
// and dh_raw (N, H) projected LSTM only, else null. accumulate_dx: dx += instead of =
// (the second direction of a bidirectional layer adds its share of the input gradient).
template <typename T>
void rnn_backward(T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dw_hr, T* dgates,
                  T* dgates_x, T* dh_all, T* dh_raw, const T* dy, index_t rs_dy, const T* dh_n, const T* dc_n,
                  const T* x, const T* w_ih, const T* w_hh, const T* w_hr, const T* gates, const T* c_all,
                  const T* h_raw, const T* h_prev, const T* c_prev, const T* hn, const index_t* batch_sizes,
                  index_t steps, index_t N, index_t I, index_t H, index_t P, RnnMode mode, bool reverse,
                  bool accumulate_dx);

// A stack of two LSTM layers (one direction, no projection) run as a wavefront: with two threads, one
// runs layer 0's step t while the other runs layer 1's step t - 1 (backward: layer 1's step t, then layer
// 0's), meeting at a per-step flag instead of a team barrier; each thread owns every row of its layer, so
// its W_hh panels stay in its core's cache. Layer 1's input projection (forward) and input gradient
// (backward) run per step, their columns split between the two threads. The same values as two
// rnn_forward / rnn_backward calls (layer 1's input is layer 0's y); one thread interleaves the roles.
template <typename T>
struct LstmLayer {  // one layer's arrays; P = H, every array C-contiguous
  T* y;  // (R, H): layer 0's output (layer 1's input, kept for backward), layer 1's the stack's
  T* h_n;
  T* c_n;
  T* gates;
  T* c_all;
  T* h_prev;
  T* c_prev;
  const T* w_ih;
  const T* w_hh;
  const T* b_ih;  // b_ih, b_hh both given or both null
  const T* b_hh;
  const T* h0;  // (N, H) or null (zeros), like c0
  const T* c0;
  index_t I, H;
};
template <typename T>
struct LstmLayerGrad {  // one layer's gradients, as rnn_backward's (weights accumulate, null: not wanted)
  T* dh0;
  T* dc0;
  T* dw_ih;
  T* dw_hh;
  T* db_ih;
  T* db_hh;
  T* dgates;  // (R, 4 H) workspace
  const T* dh_n;  // (N, H) or null, like dc_n
  const T* dc_n;
};
template <typename T>
void lstm2_forward(const LstmLayer<T>* layers, const T* x, const index_t* batch_sizes, index_t steps, index_t N);
// dx (R, I0) or null; dy0 (R, H0) a workspace (layer 0's output gradient); dy (R, H1) or null.
template <typename T>
void lstm2_backward(T* dx, T* dy0, const T* dy, const LstmLayer<T>* layers, const LstmLayerGrad<T>* grads,
                    const T* x, const index_t* batch_sizes, index_t steps, index_t N);
}  // namespace cpu

}  // namespace nnfast

// CUDA recurrent sequence launchers (csrc/cuda/rnn.cu): the names, arguments and semantics of
// nnfast::cpu::rnn_forward / rnn_backward (nnfast/rnn.h) plus a trailing stream. Tensors are device
// pointers; batch_sizes is a HOST array (the time loop runs on the host, enqueueing per step one GEMM
// of nnfast/cuda/gemm.h and one gate kernel on `stream`). Deterministic: the GEMMs reduce in a fixed
// order and the gate kernels are elementwise. The launchers enqueue and return. The w_hh_t workspace
// is not used here (the CUDA GEMM reads a transposed operand in place).
#pragma once
#include "nnfast/cuda/common.h"
#include "nnfast/rnn.h"

namespace nnfast::cuda {

template <typename T>
void rnn_forward(T* y, index_t rs_y, T* h_n, T* c_n, T* gates, T* c_all, T* h_raw, T* h_prev, T* c_prev, T* hn,
                 T* w_hh_t, const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh, const T* w_hr,
                 const T* h0, const T* c0, const index_t* batch_sizes, index_t steps, index_t N, index_t I,
                 index_t H, index_t P, RnnMode mode, bool reverse, cudaStream_t stream = nullptr);

template <typename T>
void rnn_backward(T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dw_hr, T* dgates,
                  T* dgates_x, T* dh_all, T* dh_raw, const T* dy, index_t rs_dy, const T* dh_n, const T* dc_n,
                  const T* x, const T* w_ih, const T* w_hh, const T* w_hr, const T* gates, const T* c_all,
                  const T* h_raw, const T* h_prev, const T* c_prev, const T* hn, const index_t* batch_sizes,
                  index_t steps, index_t N, index_t I, index_t H, index_t P, RnnMode mode, bool reverse,
                  bool accumulate_dx, cudaStream_t stream = nullptr);

}  // namespace nnfast::cuda

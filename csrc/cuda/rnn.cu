// CUDA recurrent sequence driver and fused gate kernels: the twin of csrc/cpu/rnn.cpp +
// rnn_isa.cpp (nnfast/cuda/rnn.h). The host loop mirrors the CPU driver step for step: per step
// one GEMM (nnfast::cuda::gemm, accumulated onto the input projection) and one gate kernel over
// the live rows; backward one gate-backward kernel and one GEMM per step, weight gradients as
// GEMMs over all rows at the end. Gate kernels: one thread per (row, hidden unit), grid-stride,
// the scalar math of core/math_scalar.h.
#include "cuda/common.cuh"

#include <vector>

#include "nnfast/cuda/gemm.h"
#include "nnfast/cuda/rnn.h"

namespace nnfast {
namespace cuda {
namespace rnn_k {

constexpr int kThreads = 256;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads, 4096); }


template <typename T>
NNFAST_HD inline T bias_at(const T* b, index_t j) {
  return b ? b[j] : T(0);
}

// LSTM step: g rows (stride 4H) in the summed pre-activations (without b_hh), out the gates;
// c (stride H) in c_prev, out c'; c_save (stride H) = c'; h (stride rs_h) = o tanh(c'), h2 too.
template <typename T>
__global__ void lstm_forward_kernel(T* g, T* c, T* c_save, T* h, index_t rs_h, T* h2, index_t rs_h2, const T* b_hh,
                                    index_t B, index_t H) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    T* gb = g + b * 4 * H;
    const T ig = scalar::sigmoid(gb[j] + bias_at(b_hh, j));
    const T fg = scalar::sigmoid(gb[H + j] + bias_at(b_hh, H + j));
    const T gg = scalar::tanh(gb[2 * H + j] + bias_at(b_hh, 2 * H + j));
    const T og = scalar::sigmoid(gb[3 * H + j] + bias_at(b_hh, 3 * H + j));
    const T c1 = fg * c[b * H + j] + ig * gg;
    const T h1 = og * scalar::tanh(c1);
    gb[j] = ig;
    gb[H + j] = fg;
    gb[2 * H + j] = gg;
    gb[3 * H + j] = og;
    c[b * H + j] = c1;
    c_save[b * H + j] = c1;
    h[b * rs_h + j] = h1;
    if (h2) h2[b * rs_h2 + j] = h1;
  }
}

template <typename T>
__global__ void lstm_backward_kernel(T* dg, T* dc, const T* dh, index_t rs_dh, const T* dy, index_t rs_dy, const T* g,
                                     const T* c, const T* c_prev, index_t B, index_t H) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    const T* gb = g + b * 4 * H;
    const T ig = gb[j], fg = gb[H + j], gg = gb[2 * H + j], og = gb[3 * H + j];
    const T d = dh[b * rs_dh + j] + (dy ? dy[b * rs_dy + j] : T(0));
    const T tc = scalar::tanh(c[b * H + j]);
    const T dcell = dc[b * H + j] + d * og * (T(1) - tc * tc);
    T* db = dg + b * 4 * H;
    db[j] = dcell * gg * ig * (T(1) - ig);
    db[H + j] = dcell * c_prev[b * H + j] * fg * (T(1) - fg);
    db[2 * H + j] = dcell * ig * (T(1) - gg * gg);
    db[3 * H + j] = d * tc * og * (T(1) - og);
    dc[b * H + j] = dcell * fg;
  }
}

template <typename T>
__global__ void gru_forward_kernel(T* g, T* hn, T* h, index_t rs_h, T* h2, index_t rs_h2, const T* h_prev,
                                   index_t rs_hp, const T* b_hh, index_t B, index_t H) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    T* gb = g + b * 3 * H;
    const T r = scalar::sigmoid(gb[j] + bias_at(b_hh, j));
    const T z = scalar::sigmoid(gb[H + j] + bias_at(b_hh, H + j));
    const T hnj = hn[b * H + j] + bias_at(b_hh, 2 * H + j);
    const T n = scalar::tanh(gb[2 * H + j] + r * hnj);
    const T h1 = n + z * (h_prev[b * rs_hp + j] - n);
    gb[j] = r;
    gb[H + j] = z;
    gb[2 * H + j] = n;
    hn[b * H + j] = hnj;
    h[b * rs_h + j] = h1;
    if (h2) h2[b * rs_h2 + j] = h1;
  }
}

template <typename T>
__global__ void gru_backward_kernel(T* dgh, T* dgx, T* dh, index_t rs_dh, const T* dy, index_t rs_dy, const T* g,
                                    const T* hn, const T* h_prev, index_t rs_hp, index_t B, index_t H) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    const T* gb = g + b * 3 * H;
    const T r = gb[j], z = gb[H + j], n = gb[2 * H + j];
    const T d = dh[b * rs_dh + j] + (dy ? dy[b * rs_dy + j] : T(0));
    const T dn = d * (T(1) - z) * (T(1) - n * n);
    const T dr = dn * hn[b * H + j] * r * (T(1) - r);
    const T dz = d * (h_prev[b * rs_hp + j] - n) * z * (T(1) - z);
    dgh[b * 3 * H + j] = dr;
    dgh[b * 3 * H + H + j] = dz;
    dgh[b * 3 * H + 2 * H + j] = dn * r;
    dgx[b * 3 * H + j] = dr;
    dgx[b * 3 * H + H + j] = dz;
    dgx[b * 3 * H + 2 * H + j] = dn;
    dh[b * rs_dh + j] = d * z;
  }
}

template <typename T>
__global__ void rnn_forward_kernel(T* g, T* h, index_t rs_h, T* h2, index_t rs_h2, const T* b_hh, index_t B,
                                   index_t H, bool relu) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    const T pre = g[b * H + j] + bias_at(b_hh, j);
    const T h1 = relu ? (pre > T(0) ? pre : T(0)) : scalar::tanh(pre);
    g[b * H + j] = h1;
    h[b * rs_h + j] = h1;
    if (h2) h2[b * rs_h2 + j] = h1;
  }
}

template <typename T>
__global__ void rnn_backward_kernel(T* dg, const T* dh, index_t rs_dh, const T* dy, index_t rs_dy, const T* g,
                                    index_t B, index_t H, bool relu) {
  NNFAST_GRID_STRIDE(i, B * H) {
    const index_t b = i / H, j = i % H;
    const T h1 = g[b * H + j];
    const T d = dh[b * rs_dh + j] + (dy ? dy[b * rs_dy + j] : T(0));
    dg[b * H + j] = relu ? (h1 > T(0) ? d : T(0)) : d * (T(1) - h1 * h1);
  }
}

// out[b, j] = a[b, j] (+ c[b, j]) over B rows of W, each with its own row stride.
template <typename T>
__global__ void add_rows_kernel(T* out, index_t rs_o, const T* a, index_t rs_a, const T* c, index_t rs_c, index_t B,
                                index_t W) {
  NNFAST_GRID_STRIDE(i, B * W) {
    const index_t b = i / W, j = i % W;
    out[b * rs_o + j] = a[b * rs_a + j] + (c ? c[b * rs_c + j] : T(0));
  }
}


template <typename T>
void copy_rows(T* dst, index_t rs_dst, const T* src, index_t rs_src, index_t B, index_t W, cudaStream_t stream) {
  if (B * W <= 0) return;
  if (rs_dst == W && rs_src == W) {
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(B * W) * sizeof(T), cudaMemcpyDeviceToDevice,
                                      stream));
    return;
  }
  auto* k = add_rows_kernel<T>;
  NNFAST_LAUNCH(k, grid_for(B * W), kThreads, 0, stream)(dst, rs_dst, src, rs_src, nullptr, 0, B, W);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void init_state(T* state, const T* init, index_t n, cudaStream_t stream) {
  if (n <= 0) return;
  if (init)
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(state, init, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice,
                                      stream));
  else
    NNFAST_CUDA_CHECK(cudaMemsetAsync(state, 0, static_cast<size_t>(n) * sizeof(T), stream));
}

std::vector<index_t> offsets(const index_t* batch_sizes, index_t steps, index_t* rows) {
  std::vector<index_t> off(static_cast<size_t>(steps));
  index_t r = 0;
  for (index_t t = 0; t < steps; ++t) {
    off[static_cast<size_t>(t)] = r;
    r += batch_sizes[t];
  }
  *rows = r;
  return off;
}

}  // namespace rnn_k

template <typename T>
void rnn_forward(T* y, index_t rs_y, T* h_n, T* c_n, T* gates, T* c_all, T* h_raw, T* h_prev, T* c_prev, T* hn,
                 T* w_hh_t, const T* x, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh, const T* w_hr,
                 const T* h0, const T* c0, const index_t* batch_sizes, index_t steps, index_t N, index_t I,
                 index_t H, index_t P, RnnMode mode, bool reverse, cudaStream_t stream) {
  using namespace rnn_k;
  (void)w_hh_t;  // the CUDA GEMM reads W_hh^T in place
  const index_t G = rnn_gate_count(mode), GH = G * H;
  const bool lstm = mode == RnnMode::Lstm, gru = mode == RnnMode::Gru, proj = w_hr != nullptr;
  index_t R = 0;
  const std::vector<index_t> off = offsets(batch_sizes, steps, &R);
  init_state(h_n, h0, N * P, stream);
  if (lstm) init_state(c_n, c0, N * H, stream);
  GemmEpilogue<T> ep;
  ep.bias = b_ih;
  if (R > 0) gemm<T>(R, GH, I, T(1), x, I, 1, w_ih, 1, I, T(0), gates, GH, 1, ep, stream);
  for (index_t kk = 0; kk < steps; ++kk) {
    const index_t t = reverse ? steps - 1 - kk : kk;
    const index_t r0 = off[static_cast<size_t>(t)], B = batch_sizes[t];
    if (B == 0) continue;
    T* g = gates + r0 * GH;
    T* hp = h_prev + r0 * P;
    copy_rows(hp, P, h_n, P, B, P, stream);
    if (lstm) copy_rows(c_prev + r0 * H, H, c_n, H, B, H, stream);
    if (gru) {
      gemm<T>(B, 2 * H, P, T(1), hp, P, 1, w_hh, 1, P, T(1), g, GH, 1, GemmEpilogue<T>(), stream);
      gemm<T>(B, H, P, T(1), hp, P, 1, w_hh + 2 * H * P, 1, P, T(0), hn + r0 * H, H, 1, GemmEpilogue<T>(), stream);
    } else {
      gemm<T>(B, GH, P, T(1), hp, P, 1, w_hh, 1, P, T(1), g, GH, 1, GemmEpilogue<T>(), stream);
    }
    T* yr = y + r0 * rs_y;
    const unsigned grid = grid_for(B * H);
    if (lstm) {
      auto* k = lstm_forward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(g, c_n, c_all + r0 * H, proj ? h_raw + r0 * H : yr,
                                                  proj ? H : rs_y, proj ? nullptr : h_n, P, b_hh, B, H);
    } else if (gru) {
      auto* k = gru_forward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(g, hn + r0 * H, yr, rs_y, h_n, P, hp, P, b_hh, B, H);
    } else {
      auto* k = rnn_forward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(g, yr, rs_y, h_n, P, b_hh, B, H, mode == RnnMode::RnnRelu);
    }
    NNFAST_CUDA_CHECK_LAUNCH();
    if (proj) {
      gemm<T>(B, P, H, T(1), h_raw + r0 * H, H, 1, w_hr, 1, H, T(0), yr, rs_y, 1, GemmEpilogue<T>(), stream);
      copy_rows(h_n, P, yr, rs_y, B, P, stream);
    }
  }
}

template <typename T>
void rnn_backward(T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dw_hr, T* dgates,
                  T* dgates_x, T* dh_all, T* dh_raw, const T* dy, index_t rs_dy, const T* dh_n, const T* dc_n,
                  const T* x, const T* w_ih, const T* w_hh, const T* w_hr, const T* gates, const T* c_all,
                  const T* h_raw, const T* h_prev, const T* c_prev, const T* hn, const index_t* batch_sizes,
                  index_t steps, index_t N, index_t I, index_t H, index_t P, RnnMode mode, bool reverse,
                  bool accumulate_dx, cudaStream_t stream) {
  using namespace rnn_k;
  const index_t G = rnn_gate_count(mode), GH = G * H;
  const bool lstm = mode == RnnMode::Lstm, gru = mode == RnnMode::Gru, proj = w_hr != nullptr;
  index_t R = 0;
  const std::vector<index_t> off = offsets(batch_sizes, steps, &R);
  T* dgx = gru ? dgates_x : dgates;
  init_state(dh0, dh_n, N * P, stream);
  if (lstm) init_state(dc0, dc_n, N * H, stream);
  for (index_t kk = 0; kk < steps; ++kk) {
    const index_t t = reverse ? kk : steps - 1 - kk;
    const index_t r0 = off[static_cast<size_t>(t)], B = batch_sizes[t];
    if (B == 0) continue;
    const T* dyr = dy ? dy + r0 * rs_dy : nullptr;
    if (proj) {
      auto* k = add_rows_kernel<T>;
      NNFAST_LAUNCH(k, grid_for(B * P), kThreads, 0, stream)(dh_all + r0 * P, P, dh0, P, dyr, rs_dy, B, P);
      NNFAST_CUDA_CHECK_LAUNCH();
      gemm<T>(B, H, P, T(1), dh_all + r0 * P, P, 1, w_hr, H, 1, T(0), dh_raw, H, 1, GemmEpilogue<T>(), stream);
    }
    const T* dyb = proj ? nullptr : dyr;
    const unsigned grid = grid_for(B * H);
    if (lstm) {
      auto* k = lstm_backward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(dgates + r0 * GH, dc0, proj ? dh_raw : dh0, proj ? H : P, dyb,
                                                  rs_dy, gates + r0 * GH, c_all + r0 * H, c_prev + r0 * H, B, H);
    } else if (gru) {
      auto* k = gru_backward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(dgates + r0 * GH, dgx + r0 * GH, dh0, P, dyb, rs_dy,
                                                  gates + r0 * GH, hn + r0 * H, h_prev + r0 * P, P, B, H);
    } else {
      auto* k = rnn_backward_kernel<T>;
      NNFAST_LAUNCH(k, grid, kThreads, 0, stream)(dgates + r0 * GH, dh0, P, dyb, rs_dy, gates + r0 * GH, B, H,
                                                  mode == RnnMode::RnnRelu);
    }
    NNFAST_CUDA_CHECK_LAUNCH();
    gemm<T>(B, P, GH, T(1), dgates + r0 * GH, GH, 1, w_hh, P, 1, gru ? T(1) : T(0), dh0, P, 1, GemmEpilogue<T>(),
            stream);
  }
  if (R == 0) return;
  const GemmEpilogue<T> none;
  if (dx) gemm<T>(R, I, GH, T(1), dgx, GH, 1, w_ih, I, 1, accumulate_dx ? T(1) : T(0), dx, I, 1, none, stream);
  if (dw_ih) gemm<T>(GH, I, R, T(1), dgx, 1, GH, x, I, 1, T(1), dw_ih, I, 1, none, stream);
  if (db_ih) bias_grad<T>(db_ih, dgx, GH, 1, R, GH, true, stream);
  if (dw_hh) gemm<T>(GH, P, R, T(1), dgates, 1, GH, h_prev, P, 1, T(1), dw_hh, P, 1, none, stream);
  if (db_hh) bias_grad<T>(db_hh, dgates, GH, 1, R, GH, true, stream);
  if (proj && dw_hr) gemm<T>(P, H, R, T(1), dh_all, 1, P, h_raw, H, 1, T(1), dw_hr, H, 1, none, stream);
}

#define NNFAST_RNN_INSTANTIATE_(T)                                                                              \
  template void rnn_forward<T>(T*, index_t, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,      \
                               const T*, const T*, const T*, const T*, const T*, const index_t*, index_t,       \
                               index_t, index_t, index_t, index_t, RnnMode, bool, cudaStream_t);               \
  template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, T*, const T*, index_t, const T*,    \
                                const T*, const T*, const T*, const T*, const T*, const T*, const T*,          \
                                const T*, const T*, const T*, const T*, const index_t*, index_t, index_t,      \
                                index_t, index_t, index_t, RnnMode, bool, bool, cudaStream_t);
NNFAST_RNN_INSTANTIATE_(float)
NNFAST_RNN_INSTANTIATE_(double)
#undef NNFAST_RNN_INSTANTIATE_

}  // namespace cuda
}  // namespace nnfast

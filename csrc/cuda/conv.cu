// CUDA convolution: the chunked implicit GEMM of csrc/cpu/conv.cpp on the device.
//
// Column space q = (n, oh, ow), processed in chunks [q0, q0 + qn) of the same size as on
// the CPU (core/conv_geometry.h: about 1 Mi patch elements):
//   im2col_kernel     col (C kh kw, qn) = the chunk's input patches (one thread per element)
//   gather / scatter  out (OC, qn) <-> y (N, OC, OH, OW) (+ bias on scatter)
//   col2im_kernel     dx += patches: one thread per dx element *gathers* its (ky, kx) taps
//                     from col in a fixed order (no atomics, deterministic)
//   channel_sum       dbias: one block per channel, double sums in warp order
// and the products through nnfast::cuda::gemm_batched over the groups, as on the CPU.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include "core/conv_geometry.h"

#include "nnfast/cuda/conv.h"
#include "nnfast/cuda/gemm.h"

namespace nnfast {
namespace cuda {
namespace conv_k {

constexpr int kThreads = 256;
using conv_detail::Geometry;

inline unsigned grid_for(index_t work) { return grid_stride_blocks(work, kThreads); }


template <typename T>
__global__ void im2col_kernel(T* col, const T* x, Conv2dShape s, index_t q0, index_t qn) {
  const index_t P = s.OH * s.OW, kk = s.kh * s.kw, total = s.C * kk * qn;
  NNFAST_GRID_STRIDE(i, total) {
    const index_t r = i / qn, q = q0 + i % qn;
    const index_t c = r / kk, ky = (r % kk) / s.kw, kx = r % s.kw;
    const index_t n = q / P, p = q % P, oh = p / s.OW, ow = p % s.OW;
    const index_t ih = oh * s.sh - s.ph + ky * s.dh, iw = ow * s.sw - s.pw + kx * s.dw;
    col[i] = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) ? x[((n * s.C + c) * s.H + ih) * s.W + iw] : T(0);
  }
}

// dx[n, c, ih, iw] += sum over taps (ky, kx) whose output position lies in the chunk.
template <typename T>
__global__ void col2im_kernel(T* dx, const T* col, Conv2dShape s, index_t q0, index_t qn) {
  const index_t P = s.OH * s.OW, total = s.N * s.C * s.H * s.W;
  NNFAST_GRID_STRIDE(i, total) {
    const index_t iw = i % s.W, ih = (i / s.W) % s.H, c = (i / (s.W * s.H)) % s.C, n = i / (s.W * s.H * s.C);
    T acc = T(0);
    for (index_t ky = 0; ky < s.kh; ++ky) {
      const index_t th = ih + s.ph - ky * s.dh;
      if (th < 0 || th % s.sh) continue;
      const index_t oh = th / s.sh;
      if (oh >= s.OH) continue;
      for (index_t kx = 0; kx < s.kw; ++kx) {
        const index_t tw = iw + s.pw - kx * s.dw;
        if (tw < 0 || tw % s.sw) continue;
        const index_t ow = tw / s.sw;
        if (ow >= s.OW) continue;
        const index_t q = n * P + oh * s.OW + ow;
        if (q < q0 || q >= q0 + qn) continue;
        acc += col[((c * s.kh + ky) * s.kw + kx) * qn + (q - q0)];
      }
    }
    dx[i] += acc;
  }
}

// buf (OC, qn) = y at the chunk's positions (y is (N, OC, P)).
template <typename T>
__global__ void gather_kernel(T* buf, const T* y, index_t OC, index_t P, index_t q0, index_t qn) {
  NNFAST_GRID_STRIDE(i, OC * qn) {
    const index_t o = i / qn, q = q0 + i % qn;
    buf[i] = y[((q / P) * OC + o) * P + q % P];
  }
}

template <typename T>
__global__ void scatter_kernel(T* y, const T* buf, const T* bias, index_t OC, index_t P, index_t q0, index_t qn) {
  NNFAST_GRID_STRIDE(i, OC * qn) {
    const index_t o = i / qn, q = q0 + i % qn;
    y[((q / P) * OC + o) * P + q % P] = buf[i] + (bias ? bias[o] : T(0));
  }
}

template <typename T>
__global__ void add_channel_bias_kernel(T* a, const T* bias, index_t total, index_t channels, index_t len) {
  NNFAST_GRID_STRIDE(i, total) { a[i] += bias[(i / len) % channels]; }
}

template <typename T>
__global__ void add_kernel(T* dst, const T* src, index_t n) {
  NNFAST_GRID_STRIDE(i, n) { dst[i] += src[i]; }
}

template <typename T>
__global__ void zero_kernel(T* dst, index_t n) {
  NNFAST_GRID_STRIDE(i, n) { dst[i] = T(0); }
}

// db[c] += sum over n and len of a (N, channels, len): one block per channel.
template <typename T>
__global__ void channel_sum_kernel(T* db, const T* a, index_t N, index_t channels, index_t len) {
  __shared__ double sh[32];
  const index_t c = blockIdx.x;
  double s = 0;
  for (index_t i = threadIdx.x; i < N * len; i += blockDim.x)
    s += static_cast<double>(a[((i / len) * channels + c) * len + i % len]);
  reduce::block_sums_in_warp_order(sh, s);
  if (threadIdx.x == 0) db[c] += static_cast<T>(s);
}

template <typename T>
struct Workspace {
  T* p = nullptr;
  explicit Workspace(index_t elems) {
    if (elems > 0) NNFAST_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(elems) * sizeof(T)));
  }
  ~Workspace() {
    if (p) cudaFree(p);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

template <typename T>
void channel_sum_add(T* db, const T* a, index_t N, index_t channels, index_t len, cudaStream_t st) {
  if (channels <= 0) return;
  auto* k = channel_sum_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(channels), kThreads, 0, st)(db, a, N, channels, len);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void forward_product(T* y, const T* x, const T* w, const T* bias, const Geometry& g, cudaStream_t st) {
  const Conv2dShape& s = g.s;
  if (g.Q == 0) return;
  Workspace<T> col(g.Kc * g.chunk), out(s.OC * g.chunk);
  for (index_t q0 = 0; q0 < g.Q; q0 += g.chunk) {
    const index_t qn = std::min(g.chunk, g.Q - q0);
    auto* k1 = im2col_kernel<T>;
    NNFAST_LAUNCH(k1, grid_for(g.Kc * qn), kThreads, 0, st)(col.p, x, s, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
    gemm_batched<T>(g.G, g.OCg, qn, g.Kg, T(1), w, g.OCg * g.Kg, g.Kg, 1, col.p, g.Kg * qn, qn, 1, T(0), out.p,
                    g.OCg * qn, qn, 1, st);
    auto* k2 = scatter_kernel<T>;
    NNFAST_LAUNCH(k2, grid_for(s.OC * qn), kThreads, 0, st)(y, out.p, bias, s.OC, g.P, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void input_grad_product(T* dx, const T* dy, const T* w, const Geometry& g, cudaStream_t st) {
  const Conv2dShape& s = g.s;
  const index_t nx = s.N * s.C * s.H * s.W;
  auto* kz = zero_kernel<T>;
  if (nx > 0) {
    NNFAST_LAUNCH(kz, grid_for(nx), kThreads, 0, st)(dx, nx);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (g.Q == 0) return;
  Workspace<T> col(g.Kc * g.chunk), out(s.OC * g.chunk);
  for (index_t q0 = 0; q0 < g.Q; q0 += g.chunk) {
    const index_t qn = std::min(g.chunk, g.Q - q0);
    auto* k1 = gather_kernel<T>;
    NNFAST_LAUNCH(k1, grid_for(s.OC * qn), kThreads, 0, st)(out.p, dy, s.OC, g.P, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
    gemm_batched<T>(g.G, g.Kg, qn, g.OCg, T(1), w, g.OCg * g.Kg, 1, g.Kg, out.p, g.OCg * qn, qn, 1, T(0), col.p,
                    g.Kg * qn, qn, 1, st);
    auto* k2 = col2im_kernel<T>;
    NNFAST_LAUNCH(k2, grid_for(nx), kThreads, 0, st)(dx, col.p, s, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void weight_grad_product(T* dw, const T* dy, const T* x, const Geometry& g, cudaStream_t st) {
  const Conv2dShape& s = g.s;
  if (g.Q == 0) return;
  Workspace<T> col(g.Kc * g.chunk), out(s.OC * g.chunk), sum(s.OC * g.Kg);
  for (index_t q0 = 0; q0 < g.Q; q0 += g.chunk) {
    const index_t qn = std::min(g.chunk, g.Q - q0);
    auto* k1 = im2col_kernel<T>;
    NNFAST_LAUNCH(k1, grid_for(g.Kc * qn), kThreads, 0, st)(col.p, x, s, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
    auto* k2 = gather_kernel<T>;
    NNFAST_LAUNCH(k2, grid_for(s.OC * qn), kThreads, 0, st)(out.p, dy, s.OC, g.P, q0, qn);
    NNFAST_CUDA_CHECK_LAUNCH();
    gemm_batched<T>(g.G, g.OCg, g.Kg, qn, T(1), out.p, g.OCg * qn, qn, 1, col.p, g.Kg * qn, 1, qn,
                    q0 == 0 ? T(0) : T(1), sum.p, g.OCg * g.Kg, g.Kg, 1, st);
  }
  auto* k3 = add_kernel<T>;
  NNFAST_LAUNCH(k3, grid_for(s.OC * g.Kg), kThreads, 0, st)(dw, sum.p, s.OC * g.Kg);
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace conv_k

template <typename T>
void conv2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s, cudaStream_t stream) {
  conv_k::forward_product(y, x, weight, bias, conv_k::Geometry(s), stream);
}

template <typename T>
void conv2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight, const Conv2dShape& s,
                     cudaStream_t stream) {
  const conv_k::Geometry g(s);
  if (dx) conv_k::input_grad_product(dx, dy, weight, g, stream);
  if (dweight) conv_k::weight_grad_product(dweight, dy, x, g, stream);
  if (dbias) conv_k::channel_sum_add(dbias, dy, s.N, s.OC, g.P, stream);
}

template <typename T>
void conv_transpose2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s,
                              cudaStream_t stream) {
  conv_k::input_grad_product(y, x, weight, conv_k::Geometry(s), stream);
  const index_t total = s.N * s.C * s.H * s.W;
  if (bias && total > 0) {
    auto* k = conv_k::add_channel_bias_kernel<T>;
    NNFAST_LAUNCH(k, conv_k::grid_for(total), conv_k::kThreads, 0, stream)(y, bias, total, s.C, s.H * s.W);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void conv_transpose2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight,
                               const Conv2dShape& s, cudaStream_t stream) {
  const conv_k::Geometry g(s);
  if (dx) conv_k::forward_product<T>(dx, dy, weight, nullptr, g, stream);
  if (dweight) conv_k::weight_grad_product(dweight, x, dy, g, stream);
  if (dbias) conv_k::channel_sum_add(dbias, dy, s.N, s.C, s.H * s.W, stream);
}

#define NNFAST_CONV_INSTANTIATE(T)                                                                             \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&, cudaStream_t);        \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dShape&, cudaStream_t); \
  template void conv_transpose2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&, cudaStream_t); \
  template void conv_transpose2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dShape&,    \
                                             cudaStream_t);
NNFAST_CONV_INSTANTIATE(float)
NNFAST_CONV_INSTANTIATE(double)
#undef NNFAST_CONV_INSTANTIATE

}  // namespace cuda
}  // namespace nnfast

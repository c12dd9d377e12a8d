// CUDA activation family (nnfast::cuda, declared in nnfast/cuda/activation.h).
// Compiled by nvcc for the GPU and, in an NNFAST_CUDA=EMULATE build, by the host
// compiler against nnfast's SIMT emulator (csrc/cuda/emu): the same source either way.
//
// * Pointwise kernels are grid-stride loops over packs of 16 bytes (4 floats /
//   2 doubles) when every pointer is 16-byte aligned, one element otherwise; the
//   tail is done one element at a time. Element i gets the same bits either way.
// * The per-Act formulas use the scalar HD forms of core/math_scalar.h; every code of
//   NNFAST_ACTIVATIONS (nnfast/common.h) has one (an invalid code throws
//   std::invalid_argument("[cuda activation] ... code N ...") at launch).
// * Reductions (PReLU dweight, Swish dbeta, softmax rows) accumulate in a fixed
//   order (per-thread strided partial sums, then a fixed shuffle / shared-memory
//   tree), so a result does not depend on scheduling. Parameter gradients are
//   added (+=) to the caller's buffer by one thread; input gradients overwrite.
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"
#include "nnfast/cuda/activation.h"

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace nnfast {
namespace cuda {
namespace {

// ------------------------------------------------------------------ Act codes
// Every code of NNFAST_ACTIVATIONS has a kernel: a new code needs its formula in
// act_fwd_s / act_grad_s below (the static_asserts there fail until it has one).

[[noreturn]] void unsupported_act(const char* what, Act act) {
  throw std::invalid_argument(std::string("[cuda ") + what + "] expected an activation code in [0, " + std::to_string(kActCount) +
                              "), got " + std::to_string(static_cast<int>(act)));
}

// Phi(-|x|) = erfc(|x| / sqrt 2) / 2. In float the argument's rounding (relative 2^-24)
// is amplified by ~2 z^2 in erfc's result, so its error term dz is carried to first order:
// erfc(z + dz) = erfc(z) - dz 2/sqrt(pi) exp(-z^2). Double uses the scalar form as is.
__device__ __forceinline__ float normal_tail_c(float x) {
  const float ax = ::fabsf(x);
  const float c = 0.70710678118654752440f, c_lo = 1.2101617485e-08f;  // c + c_lo = sqrt(1/2)
  const float z = ax * c;
  const float dz = z < 16.0f ? ::fmaf(ax, c, -z) + ax * c_lo : 0.0f;  // erfc(16) underflows; inf stays inf
  return 0.5f * (::erfcf(z) - dz * 1.12837916709551257390f * ::expf(-z * z));
}
__device__ __forceinline__ double normal_tail_c(double x) { return scalar::normal_tail(x); }

constexpr int kThreads = 256;
constexpr index_t kMaxBlocks = 1024;  // grid-stride: enough blocks to fill a GPU, few for the emulator

inline unsigned grid_for(index_t work, int threads = kThreads) {
  index_t b = (work + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > kMaxBlocks) b = kMaxBlocks;
  return static_cast<unsigned>(b);
}

// Mish as in core/vec_math.h: n = e (e + 2), e = exp(min(x, 20)); t = tanh(softplus(x))
// = n / (n + 2), tc = 1 - t = 2 / (n + 2); above 20, t = 1 and tc = 0.
template <typename T>
__device__ __forceinline__ void mish_parts(T x, T& e, T& t, T& tc) {
  const bool big = x > T(20);
  e = scalar::exp(big ? T(20) : x);
  const T n = e * (e + T(2));
  const T r = T(1) / (n + T(2));
  t = big ? T(1) : n * r;
  tc = big ? T(0) : r + r;
}
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlphaScale = 1.6732632423543772848170429916717 * 1.0507009873554804934193349852946;

// Per-element formulas: A(x), and A'(s) where s is y when act_grad_from_output(A), else x.
template <Act A, typename T>
__device__ __forceinline__ T act_fwd_s(T x, T a, T b) {
  if constexpr (A == Act::Identity) {
    return x;
  } else if constexpr (A == Act::ReLU) {
    return x < T(0) ? T(0) : x;  // NaN propagates
  } else if constexpr (A == Act::LeakyReLU) {
    return x > T(0) ? x : x * a;
  } else if constexpr (A == Act::ELU) {
    return x > T(0) ? x : scalar::expm1(x) * a;
  } else if constexpr (A == Act::Sigmoid) {
    return scalar::sigmoid(x);
  } else if constexpr (A == Act::Tanh) {
    return scalar::tanh(x);
  } else if constexpr (A == Act::GELU) {
    return scalar::gelu_from_tail(x, normal_tail_c(x));
  } else if constexpr (A == Act::GELUTanh) {
    return scalar::gelu_tanh(x);
  } else if constexpr (A == Act::SiLU) {
    return scalar::silu(x);
  } else if constexpr (A == Act::Softplus) {
    return scalar::softplus(x, a, b);
  } else if constexpr (A == Act::Hardtanh) {
    return x < a ? a : (x > b ? b : x);
  } else if constexpr (A == Act::Mish) {
    T e, t, tc;
    mish_parts(x, e, t, tc);
    return x * t;
  } else if constexpr (A == Act::Hardswish) {
    T r = x + T(3);
    r = r < T(0) ? T(0) : r;  // NaN propagates
    r = r > T(6) ? T(6) : r;
    return (x * r) / T(6);
  } else if constexpr (A == Act::SELU) {
    return x <= T(0) ? scalar::expm1(x) * T(kSeluAlphaScale) : x * T(kSeluScale);
  } else if constexpr (A == Act::CELU) {
    return x <= T(0) ? scalar::expm1(x * (T(1) / a)) * a : x;
  } else if constexpr (A == Act::Softsign) {
    return x / (scalar::fabs(x) + T(1));
  } else {
    static_assert(A == Act::LogSigmoid, "an Act code without a formula in act_fwd_s");
    return (x < T(0) ? x : T(0)) - scalar::log1p(scalar::exp(-scalar::fabs(x)));
  }
}

template <Act A, typename T>
__device__ __forceinline__ T act_grad_s(T s, T a, T b) {
  if constexpr (A == Act::Identity) {
    return T(1);
  } else if constexpr (A == Act::ReLU) {
    return s > T(0) ? T(1) : T(0);
  } else if constexpr (A == Act::LeakyReLU) {
    return s > T(0) ? T(1) : a;
  } else if constexpr (A == Act::ELU) {
    return s > T(0) ? T(1) : scalar::exp(s) * a;
  } else if constexpr (A == Act::Sigmoid) {
    return s * (T(1) - s);
  } else if constexpr (A == Act::Tanh) {
    return T(1) - s * s;
  } else if constexpr (A == Act::GELU) {
    return scalar::gelu_grad_from_tail(s, normal_tail_c(s));
  } else if constexpr (A == Act::GELUTanh) {
    const T k = T(0.79788456080286535588);
    const T x2 = s * s;
    const T u = (s + x2 * s * T(0.044715)) * k;
    const T sg = scalar::sigmoid(u + u);
    return sg + s * (sg * (T(1) - sg)) * (T(2) * k) * (x2 * T(3 * 0.044715) + T(1));
  } else if constexpr (A == Act::SiLU) {
    const T sg = scalar::sigmoid(s);
    return sg * (s * (T(1) - sg) + T(1));
  } else if constexpr (A == Act::Softplus) {
    const T bx = s * a;
    return bx > b ? T(1) : scalar::sigmoid(bx);
  } else if constexpr (A == Act::Hardtanh) {
    return (s > a && s < b) ? T(1) : T(0);
  } else if constexpr (A == Act::Mish) {
    T e, t, tc;
    mish_parts(s, e, t, tc);
    return t + s * (e / (e + T(1))) * (tc * (t + T(1)));
  } else if constexpr (A == Act::Hardswish) {
    return s < T(-3) ? T(0) : (s <= T(3) ? s / T(3) + T(0.5) : T(1));
  } else if constexpr (A == Act::SELU) {
    return s <= T(0) ? scalar::exp(s) * T(kSeluAlphaScale) : T(kSeluScale);
  } else if constexpr (A == Act::CELU) {
    return s <= T(0) ? scalar::exp(s * (T(1) / a)) : T(1);
  } else if constexpr (A == Act::Softsign) {
    const T d = scalar::fabs(s) + T(1);
    return T(1) / (d * d);
  } else {
    static_assert(A == Act::LogSigmoid, "an Act code without a formula in act_grad_s");
    return scalar::sigmoid(-s);  // 1 - sigmoid(s) without cancellation
  }
}

// ------------------------------------------------------------------ the pointwise driver
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int N, typename T>
__device__ __forceinline__ Pack<T, N> load(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}
template <int N, typename T>
__device__ __forceinline__ void store(T* p, const Pack<T, N>& v) {
  *reinterpret_cast<Pack<T, N>*>(p) = v;
}

// op.template run<N>(i) handles elements [i, i + N). Threads take packs of N in a
// grid-stride loop, then the tail one element at a time.
template <int N, class Op>
__global__ void __launch_bounds__(kThreads) map_kernel(index_t n, Op op) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  const index_t tid = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const index_t packs = n / N;
  for (index_t p = tid; p < packs; p += stride) op.template run<N>(p * N);
  for (index_t i = packs * N + tid; i < n; i += stride) op.template run<1>(i);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

// Launch op over n elements; packs of 16 bytes when every pointer in `ptrs` is 16-byte aligned.
template <typename T, class Op>
void launch_map(index_t n, const Op& op, std::initializer_list<const void*> ptrs, cudaStream_t stream) {
  if (n <= 0) return;
  constexpr int N = 16 / static_cast<int>(sizeof(T));
  bool vec = true;
  for (const void* p : ptrs)
    if (p && !aligned16(p)) vec = false;
  if (vec) {
    auto* k = map_kernel<N, Op>;
    NNFAST_LAUNCH(k, grid_for(n / N + 1), kThreads, 0, stream)(n, op);
  } else {
    auto* k = map_kernel<1, Op>;
    NNFAST_LAUNCH(k, grid_for(n), kThreads, 0, stream)(n, op);
  }
  NNFAST_CUDA_CHECK_LAUNCH();
}

// ------------------------------------------------------------------ pointwise ops
// The two shapes of every pointwise op: y[i] = f(x[i], i), and out[i] = f(a[i], b[i], i)
// (a = dy for the gradients). f is a formula functor; i (the flat element index) serves
// the per-channel weights. Both walk packs of N elements (see launch_map).
template <typename T, class F>
struct Unary {
  T* y;
  const T* x;
  F f;
  template <int N>
  __device__ __forceinline__ void run(index_t i) const {
    Pack<T, N> v = load<N>(x + i);
#pragma unroll
    for (int j = 0; j < N; ++j) v.v[j] = f(v.v[j], i + j);
    store<N>(y + i, v);
  }
};

template <typename T, class F>
struct Binary {
  T* out;
  const T* a;
  const T* b;
  F f;
  template <int N>
  __device__ __forceinline__ void run(index_t i) const {
    Pack<T, N> u = load<N>(a + i);
    const Pack<T, N> v = load<N>(b + i);
#pragma unroll
    for (int j = 0; j < N; ++j) u.v[j] = f(u.v[j], v.v[j], i + j);
    store<N>(out + i, u);
  }
};

template <typename T, class F>
void map_unary(T* y, const T* x, index_t n, F f, cudaStream_t stream) {
  launch_map<T>(n, Unary<T, F>{y, x, f}, {y, x}, stream);
}
template <typename T, class F>
void map_binary(T* out, const T* a, const T* b, index_t n, F f, cudaStream_t stream) {
  launch_map<T>(n, Binary<T, F>{out, a, b, f}, {out, a, b}, stream);
}

template <typename T, Act A>
struct ActFwd {  // A(x)
  T a, b;
  __device__ __forceinline__ T operator()(T x, index_t) const { return act_fwd_s<A>(x, a, b); }
};

template <typename T, Act A>
struct ActBwd {  // dy A'(s)
  T a, b;
  __device__ __forceinline__ T operator()(T g, T s, index_t) const { return g * act_grad_s<A>(s, a, b); }
};

// PReLU on (N, C, S): element i is in channel (i / S) % C.
template <typename T>
struct PreluFwd {
  const T* w;
  index_t C, S;
  __device__ __forceinline__ T operator()(T x, index_t i) const { return x > T(0) ? x : x * w[(i / S) % C]; }
};

template <typename T>
struct PreluBwdX {
  const T* w;
  index_t C, S;
  __device__ __forceinline__ T operator()(T g, T x, index_t i) const { return x > T(0) ? g : g * w[(i / S) % C]; }
};

template <typename T>
struct SwishFwd {  // x sigmoid(beta x)
  T beta;
  __device__ __forceinline__ T operator()(T x, index_t) const { return x * scalar::sigmoid(x * beta); }
};

template <typename T>
struct SwishBwdX {
  T beta;
  __device__ __forceinline__ T operator()(T g, T x, index_t) const {
    const T s = scalar::sigmoid(x * beta);
    return g * (s + x * (s * (T(1) - s)) * beta);
  }
};

template <typename T>
struct StepFwd {
  T thr;
  bool sign;
  __device__ __forceinline__ T operator()(T t, index_t) const {
    if (sign) return t > T(0) ? T(1) : (t < T(0) ? T(-1) : t * T(0));  // 0 -> 0, NaN -> NaN
    return t > thr ? T(1) : (t <= thr ? T(0) : t);                       // NaN -> NaN
  }
};

// Gated units over the flattened (outer, L) output: value / gate halves of each row of x.
// Forward: out = y. Backward: out = dx, from dy.
template <typename T, Act A, bool Bwd>
__global__ void __launch_bounds__(kThreads) glu_kernel(T* out, const T* dy, const T* x, index_t outer, index_t L,
                                                        index_t vofs, index_t gofs) {
  const index_t n = outer * L, stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const index_t o = i / L, k = i - o * L;
    const T* xo = x + o * 2 * L + k;
    if constexpr (!Bwd) {
      out[i] = xo[vofs] * act_fwd_s<A>(xo[gofs], T(0), T(0));
    } else {
      T* dxo = out + o * 2 * L + k;
      const T z = xo[gofs], g = dy[i];
      const T a = act_fwd_s<A>(z, T(0), T(0));
      constexpr bool kFromOutput = act_grad_from_output(A);
      const T d = kFromOutput ? act_grad_s<A>(a, T(0), T(0)) : act_grad_s<A>(z, T(0), T(0));
      dxo[vofs] = g * a;
      dxo[gofs] = g * xo[vofs] * d;
    }
  }
}

// ------------------------------------------------------------------ reductions (cuda/reduce.cuh)
using reduce::block_sum;
using reduce::RowGroup;

// dweight[c] += sum over x <= 0 of dy x, channel c of (N, C, S): one block per channel.
template <typename T>
__global__ void __launch_bounds__(kThreads) prelu_dweight_kernel(T* dw, const T* dy, const T* x, index_t N, index_t C,
                                                                  index_t S) {
  __shared__ double sh[32];
  for (index_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0;
    const index_t m = N * S;
    for (index_t j = threadIdx.x; j < m; j += blockDim.x) {
      const index_t nn = j / S, s = j - nn * S;
      const index_t i = (nn * C + c) * S + s;
      const T v = x[i];
      if (!(v > T(0))) acc += static_cast<double>(dy[i] * v);
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) dw[c] += static_cast<T>(acc);
  }
}

// *dbeta += sum dy x^2 s (1 - s), s = sigmoid(beta x): one block.
template <typename T>
__global__ void __launch_bounds__(kThreads) swish_dbeta_kernel(T* dbeta, const T* dy, const T* x, index_t n, T beta) {
  __shared__ double sh[32];
  double acc = 0;
  for (index_t i = threadIdx.x; i < n; i += blockDim.x) {
    const T v = x[i], s = scalar::sigmoid(v * beta);
    acc += static_cast<double>(dy[i] * (v * v) * (s * (T(1) - s)));
  }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *dbeta += static_cast<T>(acc);
}

template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

// Softmax over rows (inner == 1): a warp per row for short rows, the whole block per
// row for long ones (kBlk); the group takes rows in a grid-stride loop (uniform over
// the group, so all its threads reach the reductions).
template <typename T, bool Bwd, bool kBlk>
__global__ void __launch_bounds__(kThreads) softmax_rows_kernel(T* out, const T* a, const T* b, index_t rows,
                                                                 index_t D, bool log) {
  using A = typename Acc<T>::type;
  __shared__ A sh[32];
  const RowGroup<kBlk> g;
  for (index_t r = g.first; r < rows; r += g.stride) {
    T* o = out + r * D;
    const T* pa = a + r * D;
    const T* pb = b ? b + r * D : nullptr;
    if (!Bwd) {  // a = x
      A m = -INFINITY;
      for (index_t j = g.lane; j < D; j += g.size) m = static_cast<A>(pa[j]) > m ? static_cast<A>(pa[j]) : m;
      m = g.max(m, sh);  // m is never NaN: the comparison above skips NaN elements
      A s = 0;
      for (index_t j = g.lane; j < D; j += g.size) s += scalar::exp(static_cast<A>(pa[j]) - m);
      s = g.sum(s, sh);
      if (log) {
        const A ls = m + scalar::log(s);
        for (index_t j = g.lane; j < D; j += g.size) o[j] = static_cast<T>(static_cast<A>(pa[j]) - ls);
      } else {
        const A inv = A(1) / s;
        for (index_t j = g.lane; j < D; j += g.size)
          o[j] = static_cast<T>(scalar::exp(static_cast<A>(pa[j]) - m) * inv);
      }
    } else {  // a = dy, b = y
      A s = 0;
      for (index_t j = g.lane; j < D; j += g.size)
        s += log ? static_cast<A>(pa[j]) : static_cast<A>(pa[j]) * pb[j];
      s = g.sum(s, sh);
      for (index_t j = g.lane; j < D; j += g.size)
        o[j] = log ? static_cast<T>(pa[j] - scalar::exp(static_cast<A>(pb[j])) * s)
                   : static_cast<T>(pb[j] * (pa[j] - s));
    }
  }
}

// Softmax over the middle dim of (outer, D, inner), inner > 1: one thread per
// (outer, inner) column, walking D (neighbouring threads read neighbouring columns).
template <typename T, bool Bwd>
__global__ void __launch_bounds__(kThreads) softmax_cols_kernel(T* out, const T* a, const T* b, index_t outer,
                                                                 index_t D, index_t inner, bool log) {
  using A = typename Acc<T>::type;
  const index_t n = outer * inner, stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t t = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += stride) {
    const index_t oi = t / inner, k = t - oi * inner;
    const index_t base = oi * D * inner + k;
    if (!Bwd) {
      A m = -INFINITY;
      for (index_t j = 0; j < D; ++j) m = static_cast<A>(a[base + j * inner]) > m ? static_cast<A>(a[base + j * inner]) : m;
      A s = 0;
      for (index_t j = 0; j < D; ++j) s += scalar::exp(static_cast<A>(a[base + j * inner]) - m);
      if (log) {
        const A ls = m + scalar::log(s);
        for (index_t j = 0; j < D; ++j) out[base + j * inner] = static_cast<T>(static_cast<A>(a[base + j * inner]) - ls);
      } else {
        const A inv = A(1) / s;
        for (index_t j = 0; j < D; ++j)
          out[base + j * inner] = static_cast<T>(scalar::exp(static_cast<A>(a[base + j * inner]) - m) * inv);
      }
    } else {
      A s = 0;
      for (index_t j = 0; j < D; ++j) {
        const index_t i = base + j * inner;
        s += log ? static_cast<A>(a[i]) : static_cast<A>(a[i]) * b[i];
      }
      for (index_t j = 0; j < D; ++j) {
        const index_t i = base + j * inner;
        out[i] = log ? static_cast<T>(a[i] - scalar::exp(static_cast<A>(b[i])) * s) : static_cast<T>(b[i] * (a[i] - s));
      }
    }
  }
}

template <typename T, bool Bwd>
void launch_softmax(T* out, const T* a, const T* b, index_t outer, index_t D, index_t inner, bool log,
                    cudaStream_t stream) {
  if (outer <= 0 || D <= 0 || inner <= 0) return;
  if (inner > 1) {
    auto* k = softmax_cols_kernel<T, Bwd>;
    NNFAST_LAUNCH(k, grid_for(outer * inner), kThreads, 0, stream)(out, a, b, outer, D, inner, log);
  } else if (D <= 1024) {
    auto* k = softmax_rows_kernel<T, Bwd, false>;
    NNFAST_LAUNCH(k, grid_for(outer * 32), kThreads, 0, stream)(out, a, b, outer, D, log);
  } else {
    auto* k = softmax_rows_kernel<T, Bwd, true>;
    NNFAST_LAUNCH(k, grid_for(outer * kThreads), kThreads, 0, stream)(out, a, b, outer, D, log);
  }
  NNFAST_CUDA_CHECK_LAUNCH();
}

// Gate activations of the gated units (the binding checks the code is one of these).
constexpr bool is_gate_act(Act a) {
  return a == Act::Sigmoid || a == Act::SiLU || a == Act::GELU || a == Act::GELUTanh || a == Act::ReLU ||
         a == Act::Identity;
}

template <typename T, bool Bwd>
void launch_glu(const char* what, T* out, const T* dy, const T* x, index_t outer, index_t L, Act act, bool gate_first,
                cudaStream_t stream) {
  if (outer <= 0 || L <= 0) return;
  if (!is_gate_act(act)) unsupported_act(what, act);
  const index_t gofs = gate_first ? 0 : L, vofs = gate_first ? L : 0;
  act_visit(act, [&](auto A) {
    if constexpr (is_gate_act(decltype(A)::value)) {
      auto* k = glu_kernel<T, decltype(A)::value, Bwd>;
      NNFAST_LAUNCH(k, grid_for(outer * L), kThreads, 0, stream)(out, dy, x, outer, L, vofs, gofs);
    }
  });
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool act_supported(Act act) {
  switch (act) {
#define NNFAST_CASE(A, ...) case Act::A:
    NNFAST_ACTIVATIONS(NNFAST_CASE)
#undef NNFAST_CASE
    return true;
    default:
      return false;
  }
}

// ------------------------------------------------------------------ launchers
// The launchers reach their compile-time Act through act_visit (nnfast/common.h), after
// rejecting the codes they have no kernel for.
template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p, cudaStream_t stream) {
  if (!act_supported(act)) unsupported_act("act_forward", act);
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  act_visit(act, [&](auto A) { map_unary(y, x, n, ActFwd<T, decltype(A)::value>{a, b}, stream); });
}

template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p, cudaStream_t stream) {
  if (!act_supported(act)) unsupported_act("act_backward", act);
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  act_visit(act, [&](auto A) { map_binary(dx, dy, saved, n, ActBwd<T, decltype(A)::value>{a, b}, stream); });
}

template <typename T>
void prelu_forward(T* y, const T* x, const T* weight, index_t N, index_t C, index_t S, cudaStream_t stream) {
  if (N <= 0 || C <= 0 || S <= 0) return;
  map_unary(y, x, N * C * S, PreluFwd<T>{weight, C, S}, stream);
}

template <typename T>
void prelu_backward(T* dx, T* dweight, const T* dy, const T* x, const T* weight, index_t N, index_t C, index_t S,
                    cudaStream_t stream) {
  if (N <= 0 || C <= 0 || S <= 0) return;
  if (dweight) {  // before dx: dx may not alias, but keep the reads of dy first anyway
    auto* k = prelu_dweight_kernel<T>;
    NNFAST_LAUNCH(k, static_cast<unsigned>(C < kMaxBlocks ? C : kMaxBlocks), kThreads, 0, stream)(dweight, dy, x, N, C,
                                                                                                   S);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (dx) map_binary(dx, dy, x, N * C * S, PreluBwdX<T>{weight, C, S}, stream);
}

template <typename T>
void swish_forward(T* y, const T* x, index_t n, T beta, cudaStream_t stream) {
  map_unary(y, x, n, SwishFwd<T>{beta}, stream);
}

template <typename T>
void swish_backward(T* dx, T* dbeta, const T* dy, const T* x, index_t n, T beta, cudaStream_t stream) {
  if (n <= 0) return;
  if (dbeta) {
    auto* k = swish_dbeta_kernel<T>;
    NNFAST_LAUNCH(k, 1, kThreads, 0, stream)(dbeta, dy, x, n, beta);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
  if (dx) map_binary(dx, dy, x, n, SwishBwdX<T>{beta}, stream);
}

template <typename T>
void glu_forward(T* y, const T* x, index_t outer, index_t L, Act act, bool gate_first, cudaStream_t stream) {
  launch_glu<T, false>("glu_forward", y, static_cast<const T*>(nullptr), x, outer, L, act, gate_first, stream);
}

template <typename T>
void glu_backward(T* dx, const T* dy, const T* x, index_t outer, index_t L, Act act, bool gate_first,
                  cudaStream_t stream) {
  launch_glu<T, true>("glu_backward", dx, dy, x, outer, L, act, gate_first, stream);
}

template <typename T>
void softmax_forward(T* y, const T* x, index_t outer, index_t D, index_t inner, bool log, cudaStream_t stream) {
  launch_softmax<T, false>(y, x, static_cast<const T*>(nullptr), outer, D, inner, log, stream);
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, index_t outer, index_t D, index_t inner, bool log,
                      cudaStream_t stream) {
  launch_softmax<T, true>(dx, dy, y, outer, D, inner, log, stream);
}

template <typename T>
void step_forward(T* y, const T* x, index_t n, bool sign, T threshold, cudaStream_t stream) {
  map_unary(y, x, n, StepFwd<T>{threshold, sign}, stream);
}

#define NNFAST_CUDA_ACT_INSTANTIATE(T)                                                                        \
  template void act_forward<T>(T*, const T*, index_t, Act, const ActParams&, cudaStream_t);                   \
  template void act_backward<T>(T*, const T*, const T*, index_t, Act, const ActParams&, cudaStream_t);        \
  template void prelu_forward<T>(T*, const T*, const T*, index_t, index_t, index_t, cudaStream_t);            \
  template void prelu_backward<T>(T*, T*, const T*, const T*, const T*, index_t, index_t, index_t, cudaStream_t); \
  template void swish_forward<T>(T*, const T*, index_t, T, cudaStream_t);                                     \
  template void swish_backward<T>(T*, T*, const T*, const T*, index_t, T, cudaStream_t);                      \
  template void glu_forward<T>(T*, const T*, index_t, index_t, Act, bool, cudaStream_t);                      \
  template void glu_backward<T>(T*, const T*, const T*, index_t, index_t, Act, bool, cudaStream_t);           \
  template void softmax_forward<T>(T*, const T*, index_t, index_t, index_t, bool, cudaStream_t);              \
  template void softmax_backward<T>(T*, const T*, const T*, index_t, index_t, index_t, bool, cudaStream_t);   \
  template void step_forward<T>(T*, const T*, index_t, bool, T, cudaStream_t);

NNFAST_CUDA_ACT_INSTANTIATE(float)
NNFAST_CUDA_ACT_INSTANTIATE(double)

}  // namespace cuda
}  // namespace nnfast

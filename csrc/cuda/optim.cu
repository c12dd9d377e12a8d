// CUDA optimizer steps and multi-tensor utilities (nnfast/cuda/optim.h).
//
// Multi-tensor apply: the host lists (device pointers per role, numel, per-tensor
// coefficients that depend on the step) are packed into a kernel argument block
// of up to kMaxT tensors, so a param group is one launch (one more per kMaxT
// further tensors) and no device allocation or copy precedes it. Each tensor is
// cut into fixed chunks of kChunk elements; block b takes chunks b, b + grid, ...
// (the tensor of a chunk is found in the argument's chunk prefix) and its
// threads stride through the chunk, so loads and stores are coalesced.
//
// Reductions (norms, LAMB's trust ratio) write one double partial per chunk,
// reduced in a fixed tree inside the block; a second kernel combines each
// tensor's chunk partials in chunk order. Results are bitwise reproducible and
// independent of the device (the chunking depends on the sizes only).
#include "core/optim_coef.h"
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include <algorithm>
#include <cmath>
#include <vector>

#include "nnfast/cuda/optim.h"

namespace nnfast::cuda {
namespace optim_cuda_detail {

constexpr int kThreads = 256;
constexpr index_t kChunk = 4096;   // elements per chunk
constexpr int kMaxT = 32;          // tensors per launch (argument block <= 4 KB)
constexpr index_t kMaxGrid = 65535;

// ------------------------------------------------------------------ tensor lists in kernel arguments
template <typename T, int NP>
struct ListArg {
  T* p[NP][kMaxT];           // role k, tensor slot j (nullptr: role absent)
  index_t numel[kMaxT];
  int cstart[kMaxT + 1];     // chunk prefix of this launch
  T c0[kMaxT], c1[kMaxT], c2[kMaxT];  // per-tensor coefficients (step dependent)
  unsigned char flag[kMaxT];
  int tensor[kMaxT];         // index in the caller's lists
  int count;
  index_t part_base;         // global chunk index of this launch's chunk 0 (reductions)
};

template <typename T, int NP>
struct Groups {
  std::vector<ListArg<T, NP>> g;
  index_t chunks = 0;                // all chunks of all groups
  std::vector<index_t> first_chunk;  // per caller tensor: global index of its first chunk
  std::vector<index_t> nchunks;      // per caller tensor
};

// Packs the lists. roles[k]: host array of device pointers (nullptr: absent).
// coef(i, arg, slot) fills the slot's per-tensor coefficients.
template <typename T, int NP, typename Coef>
Groups<T, NP> make_groups(T* const* const (&roles)[NP], const index_t* numel, index_t count, Coef&& coef) {
  Groups<T, NP> G;
  G.first_chunk.assign(static_cast<size_t>(std::max<index_t>(count, 0)), 0);
  G.nchunks.assign(static_cast<size_t>(std::max<index_t>(count, 0)), 0);
  ListArg<T, NP> a;
  auto reset = [&] {
    a = ListArg<T, NP>{};
    a.count = 0;
    a.cstart[0] = 0;
    a.part_base = G.chunks;
  };
  reset();
  for (index_t i = 0; i < count; ++i) {
    G.first_chunk[i] = G.chunks;
    if (numel[i] <= 0) continue;
    if (a.count == kMaxT) {
      G.g.push_back(a);
      reset();
    }
    const int j = a.count++;
    for (int k = 0; k < NP; ++k) a.p[k][j] = roles[k] ? roles[k][i] : nullptr;
    a.numel[j] = numel[i];
    a.tensor[j] = static_cast<int>(i);
    const index_t nc = (numel[i] + kChunk - 1) / kChunk;
    a.cstart[j + 1] = a.cstart[j] + static_cast<int>(nc);
    coef(i, a, j);
    G.nchunks[i] = nc;
    G.chunks += nc;
  }
  if (a.count > 0) G.g.push_back(a);
  return G;
}

template <typename T, int NP>
inline unsigned grid_of(const ListArg<T, NP>& a) {
  return static_cast<unsigned>(std::min<index_t>(a.cstart[a.count], kMaxGrid));
}

// Chunk c of a launch: its tensor slot t and element range [lo, hi).
struct Chunk {
  int t;
  index_t lo, hi;
};
template <typename T, int NP>
__device__ __forceinline__ Chunk chunk_at(const ListArg<T, NP>& a, int c) {
  int t = 0;
  while (c >= a.cstart[t + 1]) ++t;
  const index_t lo = static_cast<index_t>(c - a.cstart[t]) * kChunk;
  return {t, lo, lo + kChunk < a.numel[t] ? lo + kChunk : a.numel[t]};
}

// The chunk loop: op(a, slot, element) for every element of every tensor.
template <typename T, int NP, typename Op>
__global__ void apply_kernel(ListArg<T, NP> a, Op op) {
  const int total = a.cstart[a.count];
  for (int c = blockIdx.x; c < total; c += gridDim.x) {
    const Chunk k = chunk_at(a, c);
    for (index_t j = k.lo + threadIdx.x; j < k.hi; j += blockDim.x) op(a, k.t, j);
  }
}

template <typename T, int NP, typename Op>
void apply(const Groups<T, NP>& G, const Op& op, cudaStream_t stream) {
  auto* kf = apply_kernel<T, NP, Op>;
  for (const auto& a : G.g) {
    NNFAST_LAUNCH(kf, grid_of(a), kThreads, 0, stream)(a, op);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

// ------------------------------------------------------------------ reductions
// max / min where a NaN wins (torch.maximum / minimum; the CPU's max_nan / min_nan).
template <typename T>
__device__ __forceinline__ T max_nan(T a, T b) {
  return (a > b || a != a) ? a : b;
}
template <typename T>
__device__ __forceinline__ T min_nan(T a, T b) {
  return (a < b || a != a) ? a : b;
}

struct SumOp {
  __device__ double operator()(double a, double b) const { return a + b; }
};
struct MaxNanOp {
  __device__ double operator()(double a, double b) const { return max_nan(a, b); }
};
struct MinNanOp {
  __device__ double operator()(double a, double b) const { return min_nan(a, b); }
};

// Block reduction in a fixed tree; the result is valid in thread 0. sh: 32 slots.
template <typename M>
__device__ double block_reduce(double v, double* sh, M merge, double identity) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = merge(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < nw ? sh[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) v = merge(v, __shfl_down_sync(0xffffffffu, v, o));
  }
  return v;
}

// op.acc(a, slot, element, acc[NV]) accumulates per thread (acc starts at op.identity());
// part[v * stride + global chunk] receives each chunk's reduction of value v.
template <typename T, int NP, int NV, typename Op>
__global__ void reduce_kernel(ListArg<T, NP> a, Op op, double* part, index_t stride) {
  __shared__ double sh[32];
  const int total = a.cstart[a.count];
  for (int c = blockIdx.x; c < total; c += gridDim.x) {
    const Chunk k = chunk_at(a, c);
    double acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = op.identity();
    for (index_t j = k.lo + threadIdx.x; j < k.hi; j += blockDim.x) op.acc(a, k.t, j, acc);
    for (int v = 0; v < NV; ++v) {
      const double r = op.reduce(acc[v], sh);
      if (threadIdx.x == 0) part[v * stride + a.part_base + c] = r;
    }
  }
}

template <int NV, typename T, int NP, typename Op>
void reduce_chunks(const Groups<T, NP>& G, const Op& op, double* part, cudaStream_t stream) {
  auto* kf = reduce_kernel<T, NP, NV, Op>;
  for (const auto& a : G.g) {
    NNFAST_LAUNCH(kf, grid_of(a), kThreads, 0, stream)(a, op, part, G.chunks);
    NNFAST_CUDA_CHECK_LAUNCH();
  }
}

// Per-tensor (first chunk, chunk count) of up to kMaxT tensors, for the final reduce.
struct TensorChunks {
  index_t first[kMaxT];
  index_t n[kMaxT];
  int count;
  int base;  // caller index of entry 0
};

template <typename F>
void for_tensor_chunks(const std::vector<index_t>& first, const std::vector<index_t>& n, F&& f) {
  const index_t count = static_cast<index_t>(first.size());
  for (index_t b = 0; b < count; b += kMaxT) {
    TensorChunks tc{};
    tc.base = static_cast<int>(b);
    tc.count = static_cast<int>(std::min<index_t>(kMaxT, count - b));
    for (int j = 0; j < tc.count; ++j) {
      tc.first[j] = first[b + j];
      tc.n[j] = n[b + j];
    }
    f(tc);
  }
}

// ------------------------------------------------------------------ coefficients
using optim_coef::bias_corrections;
using optim_coef::BiasCorrections;
using optim_coef::sign_of;

// Adam's moments (LAMB's too): exp_avg (role 1) moves toward g by (1 - beta1), as torch's
// lerp_; exp_avg_sq (role 2) = beta2 v + (1 - beta2) g^2. Both stored; returned in m, v.
template <typename T, int NP>
__device__ __forceinline__ void adam_moments(const ListArg<T, NP>& a, int t, index_t j, T g, T omb1, T beta2, T omb2,
                                             T& m, T& v) {
  m = a.p[1][t][j];
  m = m + omb1 * (g - m);
  v = beta2 * a.p[2][t][j] + omb2 * (g * g);
  a.p[1][t][j] = m;
  a.p[2][t][j] = v;
}

// AMSGrad / AMSBound: the running max of v (role 3, max_exp_avg_sq; NaN kept), stored and returned.
template <typename T>
__device__ __forceinline__ T running_max_v(const ListArg<T, 5>& a, int t, index_t j, T v) {
  const T vmax = max_nan(a.p[3][t][j], v);
  a.p[3][t][j] = vmax;
  return vmax;
}

// ------------------------------------------------------------------ SGD
template <typename T>
struct SgdOp {
  T sign, lr, wd, momentum, damp1;
  bool l2, has_momentum, nesterov;
  __device__ void operator()(const ListArg<T, 3>& a, int t, index_t j) const {
    T* param = a.p[0][t];
    const T p = param[j];
    T d = a.p[2][t][j] * sign;
    if (l2) d = d + wd * p;
    if (has_momentum) {
      T* buf = a.p[1][t];
      const T b = a.flag[t] ? d : momentum * buf[j] + damp1 * d;
      buf[j] = b;
      d = nesterov ? d + momentum * b : b;
    }
    param[j] = p - lr * d;
  }
};

// ------------------------------------------------------------------ Adam
template <typename T>
struct AdamOp : optim_coef::AdamConsts<T> {  // roles: param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad;
                                             // c0 step_size, c1 1/sqrt(bc2)
  __device__ void operator()(const ListArg<T, 5>& a, int t, index_t j) const {
    const optim_coef::AdamConsts<T>& c = *this;
    T p = a.p[0][t][j];
    T g = a.p[4][t][j] * c.sign;
    if (c.decoupled) p = p * c.decay;
    if (c.l2) g = g + c.wd * p;
    T m, v;
    adam_moments(a, t, j, g, c.omb1, c.beta2, c.omb2, m, v);
    const T vv = c.amsgrad ? running_max_v(a, t, j, v) : v;
    const T denom = scalar::sqrt(vv) * a.c1[t] + c.eps;
    a.p[0][t][j] = p - a.c0[t] * (m / denom);
  }
};

// ------------------------------------------------------------------ Adagrad
template <typename T>
struct AdagradOp {  // roles: param, state_sum, grad; c0 clr
  T sign, wd, eps;
  bool l2;
  __device__ void operator()(const ListArg<T, 3>& a, int t, index_t j) const {
    const T p = a.p[0][t][j];
    T g = a.p[2][t][j] * sign;
    if (l2) g = g + wd * p;
    const T s = a.p[1][t][j] + g * g;
    a.p[1][t][j] = s;
    a.p[0][t][j] = p - a.c0[t] * (g / (scalar::sqrt(s) + eps));
  }
};

// ------------------------------------------------------------------ RMSprop
template <typename T>
struct RmspropOp {  // roles: param, square_avg, grad_avg, momentum_buffer, grad
  T sign, wd, alpha, oma, eps, lr, momentum;
  bool l2, centered, has_momentum;
  __device__ void operator()(const ListArg<T, 5>& a, int t, index_t j) const {
    const T p = a.p[0][t][j];
    T g = a.p[4][t][j] * sign;
    if (l2) g = g + wd * p;
    const T sq = alpha * a.p[1][t][j] + oma * (g * g);
    a.p[1][t][j] = sq;
    T avg;
    if (centered) {
      T ga = a.p[2][t][j];
      ga = ga + oma * (g - ga);
      a.p[2][t][j] = ga;
      avg = scalar::sqrt(sq - ga * ga) + eps;
    } else {
      avg = scalar::sqrt(sq) + eps;
    }
    if (has_momentum) {
      const T b = momentum * a.p[3][t][j] + g / avg;
      a.p[3][t][j] = b;
      a.p[0][t][j] = p - lr * b;
    } else {
      a.p[0][t][j] = p - lr * (g / avg);
    }
  }
};

// ------------------------------------------------------------------ AdaBound
template <typename T>
struct AdaBoundOp {  // roles as Adam; c0 step_size, c1 lower, c2 upper
  T sign, wd, beta1, omb1, beta2, omb2, eps;
  bool l2, amsbound;
  __device__ void operator()(const ListArg<T, 5>& a, int t, index_t j) const {
    const T p = a.p[0][t][j];
    T g = a.p[4][t][j] * sign;
    if (l2) g = g + wd * p;
    const T m = beta1 * a.p[1][t][j] + omb1 * g;
    const T v = beta2 * a.p[2][t][j] + omb2 * (g * g);
    a.p[1][t][j] = m;
    a.p[2][t][j] = v;
    const T vv = amsbound ? running_max_v(a, t, j, v) : v;
    T s = a.c0[t] / (scalar::sqrt(vv) + eps);
    const T lo = a.c1[t], hi = a.c2[t];
    s = min_nan(max_nan(s, lo), hi);  // clamp_(lower, upper), NaN kept
    a.p[0][t][j] = p - s * m;
  }
};

// ------------------------------------------------------------------ Lion
template <typename T>
struct LionOp {  // roles: param, exp_avg, grad
  T sign, lr, decay, beta1, omb1, beta2, omb2;
  bool has_wd;
  __device__ void operator()(const ListArg<T, 3>& a, int t, index_t j) const {
    T p = a.p[0][t][j];
    const T g = a.p[2][t][j] * sign;
    const T m = a.p[1][t][j];
    if (has_wd) p = p * decay;
    const T u = beta1 * m + omb1 * g;
    const T s = u > T(0) ? T(1) : (u < T(0) ? T(-1) : (u != u ? u : T(0)));
    a.p[0][t][j] = p - lr * s;
    a.p[1][t][j] = beta2 * m + omb2 * g;
  }
};

// ------------------------------------------------------------------ Adadelta, Adamax, NAdam, RAdam, ASGD
// PyTorch's single-tensor operation order, as the CPU's range kernels (cpu/optim_isa.cpp).
template <typename T>
__device__ __forceinline__ T decayed_grad(T g, T& p, const optim_coef::StepConsts<T>& c) {
  g = g * c.sign;
  if (c.decoupled) p = p * c.decay;
  if (c.l2) g = g + c.wd * p;
  return g;
}

// s = s * beta + ((1 - beta) * g) * g
template <typename T>
__device__ __forceinline__ T ema_square(T s, T g, T beta, T omb) {
  return s * beta + (omb * g) * g;
}

template <typename T>
struct AdadeltaOp : optim_coef::StepConsts<T> {  // roles: param, square_avg, acc_delta, grad
  T neg_lr;
  __device__ void operator()(const ListArg<T, 4>& a, int t, index_t j) const {
    const optim_coef::StepConsts<T>& c = *this;
    T p = a.p[0][t][j];
    const T g = decayed_grad(a.p[3][t][j], p, c);
    const T sq = ema_square(a.p[1][t][j], g, c.rho, c.omr);
    a.p[1][t][j] = sq;
    const T acc = a.p[2][t][j];
    const T d = (scalar::sqrt(acc + c.eps) / scalar::sqrt(sq + c.eps)) * g;
    a.p[2][t][j] = ema_square(acc, d, c.rho, c.omr);
    a.p[0][t][j] = p + neg_lr * d;
  }
};

template <typename T>
struct AdamaxOp : optim_coef::StepConsts<T> {  // roles: param, exp_avg, exp_inf, grad; c0 -lr/bc1
  __device__ void operator()(const ListArg<T, 4>& a, int t, index_t j) const {
    const optim_coef::StepConsts<T>& c = *this;
    T p = a.p[0][t][j];
    const T g = decayed_grad(a.p[3][t][j], p, c);
    T m = a.p[1][t][j];
    m = m + c.omr * (g - m);
    a.p[1][t][j] = m;
    const T u = max_nan(a.p[2][t][j] * c.beta2, scalar::fabs(g) + c.eps);
    a.p[2][t][j] = u;
    a.p[0][t][j] = p + (a.c0[t] * m) / u;
  }
};

// NAdam's and RAdam's start (roles param, exp_avg, exp_avg_sq, grad): p (decoupled decay
// applied), the decayed gradient g and Adam's moments m (lerp) and v, stored.
template <typename T>
struct AdamLike {
  T p, g, m, v;
};
template <typename T>
__device__ __forceinline__ AdamLike<T> adam_like(const ListArg<T, 4>& a, int t, index_t j,
                                                 const optim_coef::StepConsts<T>& c) {
  AdamLike<T> r;
  r.p = a.p[0][t][j];
  r.g = decayed_grad(a.p[3][t][j], r.p, c);
  const T m = a.p[1][t][j];
  r.m = m + c.omr * (r.g - m);
  r.v = ema_square(a.p[2][t][j], r.g, c.beta2, c.omb2);
  a.p[1][t][j] = r.m;
  a.p[2][t][j] = r.v;
  return r;
}

template <typename T>
struct NAdamOp : optim_coef::StepConsts<T> {  // c0 bc2, c1 cg, c2 cm
  __device__ void operator()(const ListArg<T, 4>& a, int t, index_t j) const {
    const optim_coef::StepConsts<T>& c = *this;
    const AdamLike<T> r = adam_like(a, t, j, c);
    const T d = scalar::sqrt(r.v / a.c0[t]) + c.eps;
    const T p = r.p + (a.c1[t] * r.g) / d;
    a.p[0][t][j] = p + (a.c2[t] * r.m) / d;
  }
};

template <typename T>
struct RAdamOp : optim_coef::StepConsts<T> {  // c0 bc1, c1 sqrt(bc2), c2 rect; flag: rectified
  T lr;
  __device__ void operator()(const ListArg<T, 4>& a, int t, index_t j) const {
    const optim_coef::StepConsts<T>& c = *this;
    const AdamLike<T> r = adam_like(a, t, j, c);
    T u = (r.m / a.c0[t]) * lr;
    if (a.flag[t]) u = (u * ((T(1) / (scalar::sqrt(r.v) + c.eps)) * a.c1[t])) * a.c2[t];
    a.p[0][t][j] = r.p - u;
  }
};

template <typename T>
struct AsgdOp : optim_coef::StepConsts<T> {  // roles: param, ax, grad; c0 1 - lambd eta, c1 -eta, c2 mu; flag mu == 1
  __device__ void operator()(const ListArg<T, 3>& a, int t, index_t j) const {
    const optim_coef::StepConsts<T>& c = *this;
    T p = a.p[0][t][j];
    const T g = decayed_grad(a.p[2][t][j], p, c);
    p = p * a.c0[t] + a.c1[t] * g;
    a.p[0][t][j] = p;
    const T x = a.p[1][t][j];
    a.p[1][t][j] = a.flag[t] ? p : x + (p - x) * a.c2[t];
  }
};

// ------------------------------------------------------------------ LAMB
template <typename T>
struct LambCoefD {
  T sign, omb1, beta2, omb2, eps, wd;
  bool has_wd;
  // u = m_hat / (sqrt(v_hat) + eps) + wd p; c0 = 1/bc1, c1 = 1/sqrt(bc2)
  __device__ T update(T m, T v, T p, T ibc1, T ibc2_sqrt) const {
    T u = (m * ibc1) / (scalar::sqrt(v) * ibc2_sqrt + eps);
    if (has_wd) u = u + wd * p;
    return u;
  }
};

template <typename T>
struct LambPass1 {  // roles: param, exp_avg, exp_avg_sq, grad; sums param^2 and update^2
  LambCoefD<T> c;
  __device__ double identity() const { return 0.0; }
  __device__ double reduce(double v, double* sh) const { return block_reduce(v, sh, SumOp{}, 0.0); }
  __device__ void acc(const ListArg<T, 4>& a, int t, index_t j, double* s) const {
    const T p = a.p[0][t][j];
    const T g = a.p[3][t][j] * c.sign;
    T m, v;
    adam_moments(a, t, j, g, c.omb1, c.beta2, c.omb2, m, v);
    const double pd = static_cast<double>(p);
    const double ud = static_cast<double>(c.update(m, v, p, a.c0[t], a.c1[t]));
    s[0] += pd * pd;
    s[1] += ud * ud;
  }
};

template <typename T>
struct LambPass2 {  // param -= lr * ratio * update, ratio from the device
  LambCoefD<T> c;
  double lr;
  const double* ratio;  // per caller tensor
  __device__ void operator()(const ListArg<T, 4>& a, int t, index_t j) const {
    const T p = a.p[0][t][j];
    const T u = c.update(a.p[1][t][j], a.p[2][t][j], p, a.c0[t], a.c1[t]);
    a.p[0][t][j] = p - static_cast<T>(lr * ratio[a.tensor[t]]) * u;
  }
};

__global__ void lamb_ratio_kernel(double* ratio, const double* part, index_t stride, TensorChunks tc) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= tc.count) return;
  double pn = 0.0, un = 0.0;
  for (index_t c = tc.first[j]; c < tc.first[j] + tc.n[j]; ++c) {
    pn += part[c];
    un += part[stride + c];
  }
  const double w = ::sqrt(pn), u = ::sqrt(un);
  ratio[tc.base + j] = (w > 0.0 && u > 0.0) ? w / u : 1.0;
}

// ------------------------------------------------------------------ utilities
enum NormKind : int { kNormL2 = 0, kNormL1 = 1, kNormL0 = 2, kNormInf = 3, kNormNegInf = 4, kNormP = 5 };

inline int norm_kind(double p) {
  if (std::isinf(p)) return p > 0 ? kNormInf : kNormNegInf;
  if (p == 2.0) return kNormL2;
  if (p == 1.0) return kNormL1;
  if (p == 0.0) return kNormL0;
  return kNormP;
}

template <typename T>
struct NormPart {
  int kind;
  double p;
  __device__ double identity() const {
    return kind == kNormNegInf ? static_cast<double>(HUGE_VAL) : 0.0;
  }
  __device__ double reduce(double v, double* sh) const {
    if (kind == kNormInf) return block_reduce(v, sh, MaxNanOp{}, 0.0);
    if (kind == kNormNegInf) return block_reduce(v, sh, MinNanOp{}, static_cast<double>(HUGE_VAL));
    return block_reduce(v, sh, SumOp{}, 0.0);
  }
  __device__ void acc(const ListArg<T, 1>& a, int t, index_t j, double* s) const {
    const double v = static_cast<double>(a.p[0][t][j]);
    const double av = ::fabs(v);
    switch (kind) {
      case kNormL2: s[0] += v * v; break;
      case kNormL1: s[0] += av; break;
      case kNormL0: s[0] += v != 0.0 ? 1.0 : 0.0; break;
      case kNormInf: s[0] = max_nan(av, s[0]); break;
      case kNormNegInf: s[0] = min_nan(av, s[0]); break;
      default: s[0] += ::pow(av, p); break;
    }
  }
};

__global__ void norm_final_kernel(double* norms, const double* part, TensorChunks tc, int kind, double p) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= tc.count) return;
  double n = kind == kNormNegInf ? static_cast<double>(HUGE_VAL) : 0.0;  // an empty tensor's value
  for (index_t c = tc.first[j]; c < tc.first[j] + tc.n[j]; ++c) {
    if (kind == kNormInf) n = max_nan(part[c], n);
    else if (kind == kNormNegInf) n = min_nan(part[c], n);
    else n += part[c];
  }
  if (kind == kNormL2) n = ::sqrt(n);
  else if (kind == kNormP) n = ::pow(n, 1.0 / p);
  norms[tc.base + j] = n;
}

template <typename T>
struct FiniteOp {
  int* bad;
  __device__ void operator()(const ListArg<T, 1>& a, int t, index_t j) const {
    const T v = a.p[0][t][j];
    if (!(v * T(0) == T(0))) atomicOr(bad, 1);  // inf*0 and NaN*0 are NaN; integer flag
  }
};

template <typename T>
struct ScaleOp {
  T scale;
  __device__ void operator()(const ListArg<T, 1>& a, int t, index_t j) const { a.p[0][t][j] *= scale; }
};

template <typename T>
struct ZeroOp {
  __device__ void operator()(const ListArg<T, 1>& a, int t, index_t j) const { a.p[0][t][j] = T(0); }
};

template <typename T>
struct ClampOp {
  T lo, hi;
  __device__ void operator()(const ListArg<T, 1>& a, int t, index_t j) const {
    const T v = a.p[0][t][j];
    a.p[0][t][j] = v < lo ? lo : (v > hi ? hi : v);
  }
};

// A host array of const device pointers viewed as the mutable role type (read only in the kernels).
template <typename T>
inline T* const* role(const T* const* p) {
  return static_cast<T* const*>(const_cast<void*>(static_cast<const void*>(p)));
}

struct NoCoef {
  template <typename A>
  void operator()(index_t, A&, int) const {}
};

}  // namespace optim_cuda_detail

// Each launcher opens its own detail namespace (a namespace-scope using-directive
// would clash when several .cu files share one translation unit, as in the tests).

// ------------------------------------------------------------------ steps
template <typename T>
void sgd_step(T* const* param, T* const* momentum_buffer, const T* const* grad, const std::uint8_t* init_buffer,
              const index_t* numel, index_t count, const SGDOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  const bool has_m = o.momentum != 0.0;
  T* const* const roles[3] = {param, has_m ? momentum_buffer : nullptr, role(grad)};
  const auto G = make_groups<T, 3>(roles, numel, count, [&](index_t i, ListArg<T, 3>& a, int j) {
    a.flag[j] = has_m && init_buffer != nullptr && init_buffer[i] != 0;
  });
  SgdOp<T> op{sign_of<T>(o.maximize), T(o.lr), T(o.weight_decay), T(o.momentum), T(1.0 - o.dampening),
              o.weight_decay != 0,    has_m,   o.nesterov};
  apply(G, op, stream);
}

template <typename T>
void adam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
               const T* const* grad, const index_t* step, const index_t* numel, index_t count, const AdamOptions& o,
               cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[5] = {param, exp_avg, exp_avg_sq, o.amsgrad ? max_exp_avg_sq : nullptr, role(grad)};
  const auto G = make_groups<T, 5>(roles, numel, count, [&](index_t i, ListArg<T, 5>& a, int j) {
    const BiasCorrections bc = bias_corrections(o.beta1, o.beta2, step[i]);
    a.c0[j] = T(o.lr / bc.bc1);
    a.c1[j] = T(1.0 / std::sqrt(bc.bc2));
  });
  const AdamOp<T> op{optim_coef::adam_consts<T>(o)};
  apply(G, op, stream);
}

template <typename T>
void adagrad_step(T* const* param, T* const* state_sum, const T* const* grad, const index_t* step,
                  const index_t* numel, index_t count, const AdagradOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[3] = {param, state_sum, role(grad)};
  const auto G = make_groups<T, 3>(roles, numel, count, [&](index_t i, ListArg<T, 3>& a, int j) {
    a.c0[j] = T(o.lr / (1.0 + static_cast<double>(step[i] - 1) * o.lr_decay));
  });
  AdagradOp<T> op{sign_of<T>(o.maximize), T(o.weight_decay), T(o.eps), o.weight_decay != 0};
  apply(G, op, stream);
}

template <typename T>
void rmsprop_step(T* const* param, T* const* square_avg, T* const* grad_avg, T* const* momentum_buffer,
                  const T* const* grad, const index_t* numel, index_t count, const RMSpropOptions& o,
                  cudaStream_t stream) {
  using namespace optim_cuda_detail;
  const bool has_m = o.momentum > 0;
  T* const* const roles[5] = {param, square_avg, o.centered ? grad_avg : nullptr, has_m ? momentum_buffer : nullptr,
                              role(grad)};
  const auto G = make_groups<T, 5>(roles, numel, count, NoCoef{});
  RmspropOp<T> op{sign_of<T>(o.maximize), T(o.weight_decay), T(o.alpha), T(1.0 - o.alpha), T(o.eps),
                  T(o.lr),                T(o.momentum),     o.weight_decay != 0, o.centered, has_m};
  apply(G, op, stream);
}

template <typename T>
void adabound_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
                   const T* const* grad, const index_t* step, const index_t* numel, index_t count,
                   const AdaBoundOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  const double final_lr = o.final_lr * o.lr / o.base_lr;
  T* const* const roles[5] = {param, exp_avg, exp_avg_sq, o.amsbound ? max_exp_avg_sq : nullptr, role(grad)};
  const auto G = make_groups<T, 5>(roles, numel, count, [&](index_t i, ListArg<T, 5>& a, int j) {
    const double t = static_cast<double>(step[i]);
    const BiasCorrections bc = bias_corrections(o.beta1, o.beta2, step[i]);
    a.c0[j] = T(o.lr * std::sqrt(bc.bc2) / bc.bc1);
    a.c1[j] = T(final_lr * (1.0 - 1.0 / (o.gamma * t + 1.0)));
    a.c2[j] = T(final_lr * (1.0 + 1.0 / (o.gamma * t)));
  });
  AdaBoundOp<T> op{sign_of<T>(o.maximize), T(o.weight_decay), T(o.beta1), T(1.0 - o.beta1),   T(o.beta2),
                   T(1.0 - o.beta2),       T(o.eps),          o.weight_decay != 0, o.amsbound};
  apply(G, op, stream);
}

template <typename T>
void lion_step(T* const* param, T* const* exp_avg, const T* const* grad, const index_t* numel, index_t count,
               const LionOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[3] = {param, exp_avg, role(grad)};
  const auto G = make_groups<T, 3>(roles, numel, count, NoCoef{});
  LionOp<T> op{sign_of<T>(o.maximize), T(o.lr),          T(1.0 - o.lr * o.weight_decay), T(o.beta1),
               T(1.0 - o.beta1),       T(o.beta2),       T(1.0 - o.beta2),               o.weight_decay != 0};
  apply(G, op, stream);
}

template <typename T>
void adadelta_step(T* const* param, T* const* square_avg, T* const* acc_delta, const T* const* grad,
                   const index_t* numel, index_t count, const AdadeltaOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[4] = {param, square_avg, acc_delta, role(grad)};
  const AdadeltaOp<T> op{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, o.rho, 0.0, o.eps),
                         T(-o.lr)};
  apply(make_groups<T, 4>(roles, numel, count, NoCoef{}), op, stream);
}

template <typename T>
void adamax_step(T* const* param, T* const* exp_avg, T* const* exp_inf, const T* const* grad, const index_t* step,
                 const index_t* numel, index_t count, const AdamaxOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[4] = {param, exp_avg, exp_inf, role(grad)};
  const auto G = make_groups<T, 4>(roles, numel, count, [&](index_t i, ListArg<T, 4>& a, int j) {
    a.c0[j] = T(-(o.lr / (1.0 - std::pow(o.beta1, static_cast<double>(step[i])))));
  });
  const AdamaxOp<T> op{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, o.beta1, o.beta2, o.eps)};
  apply(G, op, stream);
}

template <typename T>
void nadam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, double* mu_product,
                const index_t* step, const index_t* numel, index_t count, const NAdamOptions& o,
                cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[4] = {param, exp_avg, exp_avg_sq, role(grad)};
  // every tensor's mu_product advances, an empty one's too (make_groups skips those)
  std::vector<optim_coef::NAdamStepCoef> s;
  for (index_t i = 0; i < count; ++i) s.push_back(optim_coef::nadam_step_coef(o, step[i], mu_product[i]));
  const auto G = make_groups<T, 4>(roles, numel, count, [&](index_t i, ListArg<T, 4>& a, int j) {
    a.c0[j] = T(s[i].bc2);
    a.c1[j] = T(s[i].cg);
    a.c2[j] = T(s[i].cm);
  });
  const NAdamOp<T> op{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, o.decoupled_weight_decay, o.beta1,
                                                 o.beta2, o.eps)};
  apply(G, op, stream);
}

template <typename T>
void radam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, const index_t* step,
                const index_t* numel, index_t count, const RAdamOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[4] = {param, exp_avg, exp_avg_sq, role(grad)};
  const auto G = make_groups<T, 4>(roles, numel, count, [&](index_t i, ListArg<T, 4>& a, int j) {
    const auto s = optim_coef::radam_step_coef(o, step[i]);
    a.c0[j] = T(s.bc1);
    a.c1[j] = T(s.sqrt_bc2);
    a.c2[j] = T(s.rect);
    a.flag[j] = s.rectified;
  });
  const RAdamOp<T> op{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, o.decoupled_weight_decay, o.beta1,
                                                 o.beta2, o.eps),
                      T(o.lr)};
  apply(G, op, stream);
}

template <typename T>
void asgd_step(T* const* param, T* const* ax, const T* const* grad, double* eta, double* mu, const index_t* step,
               const index_t* numel, index_t count, const ASGDOptions& o, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[3] = {param, ax, role(grad)};
  std::vector<optim_coef::ASGDStepCoef> s;
  for (index_t i = 0; i < count; ++i) s.push_back(optim_coef::asgd_step_coef(o, step[i], eta[i], mu[i]));
  const auto G = make_groups<T, 3>(roles, numel, count, [&](index_t i, ListArg<T, 3>& a, int j) {
    a.c0[j] = T(s[i].decay);
    a.c1[j] = T(s[i].neg_eta);
    a.c2[j] = T(s[i].mu);
    a.flag[j] = s[i].mu_one;
  });
  const AsgdOp<T> op{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, 0.0, 0.0, 0.0)};
  apply(G, op, stream);
}

template <typename T>
void lamb_step(double* trust_ratio, T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
               const index_t* step, const index_t* numel, index_t count, const LambOptions& o,
               cudaStream_t stream) {
  using namespace optim_cuda_detail;
  if (count <= 0) return;
  T* const* const roles[4] = {param, exp_avg, exp_avg_sq, role(grad)};
  const auto G = make_groups<T, 4>(roles, numel, count, [&](index_t i, ListArg<T, 4>& a, int j) {
    const BiasCorrections bc =
        o.bias_correction ? bias_corrections(o.beta1, o.beta2, step[i]) : BiasCorrections{1.0, 1.0};
    a.c0[j] = T(1.0 / bc.bc1);
    a.c1[j] = T(1.0 / std::sqrt(bc.bc2));
  });
  const LambCoefD<T> c{sign_of<T>(o.maximize), T(1.0 - o.beta1), T(o.beta2),         T(1.0 - o.beta2),
                       T(o.eps),               T(o.weight_decay), o.weight_decay != 0};
  // scratch: [0, 2*chunks) partials (param^2, update^2), then `count` ratios
  Scratch<double> buf(2 * G.chunks + count, stream);
  double* ratio = buf.p + 2 * G.chunks;
  reduce_chunks<2>(G, LambPass1<T>{c}, buf.p, stream);
  for_tensor_chunks(G.first_chunk, G.nchunks, [&](const TensorChunks& tc) {
    NNFAST_LAUNCH(lamb_ratio_kernel, 1, kMaxT, 0, stream)(ratio, buf.p, G.chunks, tc);
    NNFAST_CUDA_CHECK_LAUNCH();
  });
  apply(G, LambPass2<T>{c, o.lr, ratio}, stream);
  if (trust_ratio) {
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(trust_ratio, ratio, static_cast<size_t>(count) * sizeof(double),
                                      cudaMemcpyDeviceToHost, stream));
    NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

// ------------------------------------------------------------------ utilities
template <typename T>
bool multi_tensor_all_finite(const T* const* x, const index_t* numel, index_t count, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[1] = {role(x)};
  const auto G = make_groups<T, 1>(roles, numel, count, NoCoef{});
  if (G.g.empty()) return true;
  Scratch<int> bad(1, stream);
  NNFAST_CUDA_CHECK(cudaMemsetAsync(bad.p, 0, sizeof(int), stream));
  apply(G, FiniteOp<T>{bad.p}, stream);
  int host = 0;
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(&host, bad.p, sizeof host, cudaMemcpyDeviceToHost, stream));
  NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host == 0;
}

template <typename T>
void multi_tensor_norm(double* norms, const T* const* x, const index_t* numel, index_t count, double norm_type,
                       cudaStream_t stream) {
  using namespace optim_cuda_detail;
  if (count <= 0) return;
  const int kind = norm_kind(norm_type);
  T* const* const roles[1] = {role(x)};
  const auto G = make_groups<T, 1>(roles, numel, count, NoCoef{});
  Scratch<double> buf(G.chunks + count, stream);
  double* dnorms = buf.p + G.chunks;
  reduce_chunks<1>(G, NormPart<T>{kind, norm_type}, buf.p, stream);
  for_tensor_chunks(G.first_chunk, G.nchunks, [&](const TensorChunks& tc) {
    NNFAST_LAUNCH(norm_final_kernel, 1, kMaxT, 0, stream)(dnorms, buf.p, tc, kind, norm_type);
    NNFAST_CUDA_CHECK_LAUNCH();
  });
  NNFAST_CUDA_CHECK(cudaMemcpyAsync(norms, dnorms, static_cast<size_t>(count) * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream));
  NNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// Host arithmetic on the host copies of the norms: the CPU's own.
double combine_norms(const double* norms, index_t count, double norm_type) {
  return cpu::combine_norms(norms, count, norm_type);
}

template <typename T>
void multi_tensor_scale(T* const* x, const index_t* numel, index_t count, double scale, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[1] = {x};
  apply(make_groups<T, 1>(roles, numel, count, NoCoef{}), ScaleOp<T>{T(scale)}, stream);
}

template <typename T>
void multi_tensor_zero(T* const* x, const index_t* numel, index_t count, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[1] = {x};
  apply(make_groups<T, 1>(roles, numel, count, NoCoef{}), ZeroOp<T>{}, stream);
}

template <typename T>
void multi_tensor_clamp(T* const* x, const index_t* numel, index_t count, double lo, double hi, cudaStream_t stream) {
  using namespace optim_cuda_detail;
  T* const* const roles[1] = {x};
  apply(make_groups<T, 1>(roles, numel, count, NoCoef{}), ClampOp<T>{T(lo), T(hi)}, stream);
}

#define NNFAST_CUDA_OPTIM_INSTANTIATE(T)                                                                         \
  template void sgd_step<T>(T* const*, T* const*, const T* const*, const std::uint8_t*, const index_t*, index_t,  \
                            const SGDOptions&, cudaStream_t);                                                    \
  template void adam_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,        \
                             const index_t*, index_t, const AdamOptions&, cudaStream_t);                         \
  template void adagrad_step<T>(T* const*, T* const*, const T* const*, const index_t*, const index_t*, index_t,  \
                                const AdagradOptions&, cudaStream_t);                                            \
  template void rmsprop_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,     \
                                index_t, const RMSpropOptions&, cudaStream_t);                                   \
  template void adabound_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,    \
                                 const index_t*, index_t, const AdaBoundOptions&, cudaStream_t);                 \
  template void lion_step<T>(T* const*, T* const*, const T* const*, const index_t*, index_t, const LionOptions&, \
                             cudaStream_t);                                                                      \
  template void lamb_step<T>(double*, T* const*, T* const*, T* const*, const T* const*, const index_t*,          \
                             const index_t*, index_t, const LambOptions&, cudaStream_t);                         \
  template void adadelta_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, index_t,      \
                                 const AdadeltaOptions&, cudaStream_t);                                         \
  template void adamax_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, const index_t*, \
                               index_t, const AdamaxOptions&, cudaStream_t);                                    \
  template void nadam_step<T>(T* const*, T* const*, T* const*, const T* const*, double*, const index_t*,        \
                              const index_t*, index_t, const NAdamOptions&, cudaStream_t);                      \
  template void radam_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, const index_t*,  \
                              index_t, const RAdamOptions&, cudaStream_t);                                      \
  template void asgd_step<T>(T* const*, T* const*, const T* const*, double*, double*, const index_t*,           \
                             const index_t*, index_t, const ASGDOptions&, cudaStream_t);                        \
  template bool multi_tensor_all_finite<T>(const T* const*, const index_t*, index_t, cudaStream_t);              \
  template void multi_tensor_norm<T>(double*, const T* const*, const index_t*, index_t, double, cudaStream_t);   \
  template void multi_tensor_scale<T>(T* const*, const index_t*, index_t, double, cudaStream_t);                 \
  template void multi_tensor_zero<T>(T* const*, const index_t*, index_t, cudaStream_t);                          \
  template void multi_tensor_clamp<T>(T* const*, const index_t*, index_t, double, double, cudaStream_t);

NNFAST_CUDA_OPTIM_INSTANTIATE(float)
NNFAST_CUDA_OPTIM_INSTANTIATE(double)
#undef NNFAST_CUDA_OPTIM_INSTANTIATE

}  // namespace nnfast::cuda

// Optimizer steps and gradient-norm utilities: multi-tensor CPU kernels.
//
// Three parts:
//  1. per-tensor coefficient structs (hyper-parameters folded into T scalars);
//  2. range kernels over one contiguous slice, written once over GCC vector
//     types and compiled per instruction set: this file re-includes itself inside
//     `#pragma GCC target` regions (the pattern of Highway's foreach_target.h).
//     Hand-written vectors because GCC only auto-vectorises sqrt under
//     -fno-math-errno, which the build does not (and should not globally) set;
//  3. multi-tensor drivers: split the concatenated element range of all tensors
//     across threads and call the range kernel of the ISA picked at run time.
//
// Shape letters: n = elements in a slice, count = tensors in a list.
#ifndef NNFAST_OPTIM_RANGE_KERNELS

#include "nnfast/optim.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cpu_features.h"
#include "core/parallel_for.h"

// The range kernels pass GCC vector types between inline helpers only; the
// warning about their ABI across ISAs does not concern any exported symbol.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define NNFAST_OPTIM_X86 1
#endif

namespace nnfast::cpu {
namespace optim_detail {

// ------------------------------------------------------------------ 1. coefficients
template <typename T>
struct SgdCoef {
  T sign, lr, wd, momentum, damp1;  // damp1 = 1 - dampening
  bool l2, has_momentum, nesterov;
};

template <typename T>
struct AdamCoef {
  T sign, wd, decay, omb1, beta2, omb2, inv_bc2_sqrt, eps, step_size;  // omb = one minus beta
  bool l2, decoupled, amsgrad;
};

template <typename T>
struct AdagradCoef {
  T sign, wd, clr, eps;
  bool l2;
};

template <typename T>
struct RmspropCoef {
  T sign, wd, alpha, oma, eps, lr, momentum;
  bool l2, centered, has_momentum;
};

template <typename T>
struct AdaBoundCoef {
  T sign, wd, beta1, omb1, beta2, omb2, eps, step_size, lower, upper;
  bool l2, amsbound;
};

template <typename T>
struct LionCoef {
  T sign, lr, decay, beta1, omb1, beta2, omb2;
  bool has_wd;
};

template <typename T>
struct LambCoef {
  T sign, omb1, beta2, omb2, ibc1, ibc2_sqrt, eps, wd;
  bool has_wd;
};

// Norm kinds computed by the range kernels.
enum NormKind : int { kNormL2 = 0, kNormL1 = 1, kNormL0 = 2, kNormInf = 3, kNormNegInf = 4, kNormP = 5 };

// Pointers to one ISA's range kernels.
template <typename T>
struct RangeKernels {
  void (*sgd)(T*, T*, const T*, index_t, const SgdCoef<T>&, bool);
  void (*adam)(T*, T*, T*, T*, const T*, index_t, const AdamCoef<T>&);
  void (*adagrad)(T*, T*, const T*, index_t, const AdagradCoef<T>&);
  void (*rmsprop)(T*, T*, T*, T*, const T*, index_t, const RmspropCoef<T>&);
  void (*adabound)(T*, T*, T*, T*, const T*, index_t, const AdaBoundCoef<T>&);
  void (*lion)(T*, T*, const T*, index_t, const LionCoef<T>&);
  void (*lamb_pass1)(double*, double*, T*, T*, const T*, const T*, index_t, const LambCoef<T>&);
  void (*lamb_pass2)(T*, const T*, const T*, index_t, const LambCoef<T>&, T);
  bool (*all_finite)(const T*, index_t);
  double (*norm)(const T*, index_t, int, double);
  void (*scale)(T*, index_t, T);
  void (*clamp)(T*, index_t, T, T);
};

}  // namespace optim_detail
}  // namespace nnfast::cpu

// ------------------------------------------------------------------ 2. range kernels per ISA
#define NNFAST_OPTIM_RANGE_KERNELS 1

#if defined(__GNUC__)
#define NNFAST_VEC_BYTES 16
#else
#define NNFAST_VEC_BYTES 0  // no vector extensions: scalar code
#endif
#define NNFAST_VEC_X86 1
namespace nnfast::cpu {
namespace optim_isa_generic {
#include "cpu/optim.cpp"
}  // namespace optim_isa_generic
}  // namespace nnfast::cpu
#undef NNFAST_VEC_BYTES
#undef NNFAST_VEC_X86

#ifdef NNFAST_OPTIM_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define NNFAST_VEC_BYTES 32
#define NNFAST_VEC_X86 2
namespace nnfast::cpu {
namespace optim_isa_avx2 {
#include "cpu/optim.cpp"
}  // namespace optim_isa_avx2
}  // namespace nnfast::cpu
#undef NNFAST_VEC_BYTES
#undef NNFAST_VEC_X86
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#define NNFAST_VEC_BYTES 64
#define NNFAST_VEC_X86 3
namespace nnfast::cpu {
namespace optim_isa_avx512 {
#include "cpu/optim.cpp"
}  // namespace optim_isa_avx512
}  // namespace nnfast::cpu
#undef NNFAST_VEC_BYTES
#undef NNFAST_VEC_X86
#pragma GCC pop_options
#endif

// ------------------------------------------------------------------ 3. multi-tensor drivers
namespace nnfast::cpu {
namespace {

using namespace optim_detail;

// Each table is built on first use of its ISA only: the builder itself is
// compiled for that ISA and may not run on a CPU without it.
template <typename T>
const RangeKernels<T>& range_kernels() {
#ifdef NNFAST_OPTIM_X86
  switch (active_isa()) {
    case Isa::AVX512: {
      static const RangeKernels<T> avx512 = optim_isa_avx512::make_range_kernels<T>();
      return avx512;
    }
    case Isa::AVX2: {
      static const RangeKernels<T> avx2 = optim_isa_avx2::make_range_kernels<T>();
      return avx2;
    }
    default: break;
  }
#endif
  static const RangeKernels<T> generic = optim_isa_generic::make_range_kernels<T>();
  return generic;
}

// Calls f(i, lo, hi) for every non-empty slice [lo, hi) of tensor i, splitting the
// concatenation of all tensors evenly across threads (serial when small).
template <typename F>
void for_each_slice(const index_t* numel, index_t count, F&& f) {
  if (count <= 0) return;
  std::vector<index_t> off(static_cast<size_t>(count) + 1, 0);
  for (index_t i = 0; i < count; ++i) off[i + 1] = off[i] + numel[i];
  parallel_for(off[count], kElementwiseGrain, [&](index_t lo, index_t hi) {
    index_t t = static_cast<index_t>(std::upper_bound(off.begin(), off.end(), lo) - off.begin()) - 1;
    while (lo < hi) {
      const index_t end = std::min(hi, off[t + 1]);
      if (end > lo) f(t, lo - off[t], end - off[t]);
      lo = end;
      ++t;
    }
  });
}

// Reductions run over fixed blocks inside each tensor and combine the block
// partials in order, so results do not depend on the number of threads.
constexpr index_t kReduceBlock = 16384;

struct Block {
  index_t tensor, lo, hi;
};

std::vector<Block> make_blocks(const index_t* numel, index_t count) {
  std::vector<Block> blocks;
  for (index_t i = 0; i < count; ++i)
    for (index_t lo = 0; lo < numel[i]; lo += kReduceBlock) blocks.push_back({i, lo, std::min(numel[i], lo + kReduceBlock)});
  return blocks;
}

template <typename F>
void for_each_block(const std::vector<Block>& blocks, F&& f) {
  const index_t grain = std::max<index_t>(1, kElementwiseGrain / kReduceBlock);
  parallel_for(static_cast<index_t>(blocks.size()), grain, [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) f(b, blocks[b]);
  });
}

template <typename T>
T sign_of(bool maximize) {
  return maximize ? T(-1) : T(1);
}

}  // namespace

// ------------------------------------------------------------------ SGD
template <typename T>
void sgd_step(T* const* param, T* const* momentum_buffer, const T* const* grad, const std::uint8_t* init_buffer,
              const index_t* numel, index_t count, const SGDOptions& o) {
  const auto& K = range_kernels<T>();
  SgdCoef<T> c{sign_of<T>(o.maximize), T(o.lr),           T(o.weight_decay),   T(o.momentum),
               T(1.0 - o.dampening),  o.weight_decay != 0, o.momentum != 0.0, o.nesterov};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.sgd(param[i] + lo, c.has_momentum ? momentum_buffer[i] + lo : nullptr, grad[i] + lo, hi - lo, c,
          c.has_momentum && init_buffer != nullptr && init_buffer[i] != 0);
  });
}

// ------------------------------------------------------------------ Adam / AdamW
template <typename T>
void adam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
               const T* const* grad, const index_t* step, const index_t* numel, index_t count,
               const AdamOptions& o) {
  const auto& K = range_kernels<T>();
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const double t = static_cast<double>(step[i]);
    const double bc1 = 1.0 - std::pow(o.beta1, t);
    const double bc2 = 1.0 - std::pow(o.beta2, t);
    AdamCoef<T> c{sign_of<T>(o.maximize),
                  T(o.weight_decay),
                  T(1.0 - o.lr * o.weight_decay),
                  T(1.0 - o.beta1),
                  T(o.beta2),
                  T(1.0 - o.beta2),
                  T(1.0 / std::sqrt(bc2)),
                  T(o.eps),
                  T(o.lr / bc1),
                  o.weight_decay != 0 && !o.decoupled_weight_decay,
                  o.weight_decay != 0 && o.decoupled_weight_decay,
                  o.amsgrad};
    K.adam(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, o.amsgrad ? max_exp_avg_sq[i] + lo : nullptr,
           grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ Adagrad
template <typename T>
void adagrad_step(T* const* param, T* const* state_sum, const T* const* grad, const index_t* step,
                  const index_t* numel, index_t count, const AdagradOptions& o) {
  const auto& K = range_kernels<T>();
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const double clr = o.lr / (1.0 + static_cast<double>(step[i] - 1) * o.lr_decay);
    AdagradCoef<T> c{sign_of<T>(o.maximize), T(o.weight_decay), T(clr), T(o.eps), o.weight_decay != 0};
    K.adagrad(param[i] + lo, state_sum[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ RMSprop
template <typename T>
void rmsprop_step(T* const* param, T* const* square_avg, T* const* grad_avg, T* const* momentum_buffer,
                  const T* const* grad, const index_t* numel, index_t count, const RMSpropOptions& o) {
  const auto& K = range_kernels<T>();
  RmspropCoef<T> c{sign_of<T>(o.maximize), T(o.weight_decay), T(o.alpha),        T(1.0 - o.alpha), T(o.eps),
                   T(o.lr),                T(o.momentum),     o.weight_decay != 0, o.centered,      o.momentum > 0};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.rmsprop(param[i] + lo, square_avg[i] + lo, c.centered ? grad_avg[i] + lo : nullptr,
              c.has_momentum ? momentum_buffer[i] + lo : nullptr, grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ AdaBound
template <typename T>
void adabound_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, T* const* max_exp_avg_sq,
                   const T* const* grad, const index_t* step, const index_t* numel, index_t count,
                   const AdaBoundOptions& o) {
  const auto& K = range_kernels<T>();
  const double final_lr = o.final_lr * o.lr / o.base_lr;
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const double t = static_cast<double>(step[i]);
    const double bc1 = 1.0 - std::pow(o.beta1, t);
    const double bc2 = 1.0 - std::pow(o.beta2, t);
    AdaBoundCoef<T> c{sign_of<T>(o.maximize),
                      T(o.weight_decay),
                      T(o.beta1),
                      T(1.0 - o.beta1),
                      T(o.beta2),
                      T(1.0 - o.beta2),
                      T(o.eps),
                      T(o.lr * std::sqrt(bc2) / bc1),
                      T(final_lr * (1.0 - 1.0 / (o.gamma * t + 1.0))),
                      T(final_lr * (1.0 + 1.0 / (o.gamma * t))),
                      o.weight_decay != 0,
                      o.amsbound};
    K.adabound(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, o.amsbound ? max_exp_avg_sq[i] + lo : nullptr,
               grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ Lion
template <typename T>
void lion_step(T* const* param, T* const* exp_avg, const T* const* grad, const index_t* numel, index_t count,
               const LionOptions& o) {
  const auto& K = range_kernels<T>();
  LionCoef<T> c{sign_of<T>(o.maximize), T(o.lr),          T(1.0 - o.lr * o.weight_decay), T(o.beta1),
                T(1.0 - o.beta1),       T(o.beta2),       T(1.0 - o.beta2),               o.weight_decay != 0};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.lion(param[i] + lo, exp_avg[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ LAMB
template <typename T>
void lamb_step(double* trust_ratio, T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
               const index_t* step, const index_t* numel, index_t count, const LambOptions& o) {
  if (count <= 0) return;
  const auto& K = range_kernels<T>();
  auto coef = [&](index_t i) {
    const double t = static_cast<double>(step[i]);
    const double bc1 = o.bias_correction ? 1.0 - std::pow(o.beta1, t) : 1.0;
    const double bc2 = o.bias_correction ? 1.0 - std::pow(o.beta2, t) : 1.0;
    return LambCoef<T>{sign_of<T>(o.maximize), T(1.0 - o.beta1),           T(o.beta2),
                       T(1.0 - o.beta2),       T(1.0 / bc1),               T(1.0 / std::sqrt(bc2)),
                       T(o.eps),               T(o.weight_decay),          o.weight_decay != 0};
  };
  // Pass 1: moments, and per-block sums of param^2 and update^2.
  const std::vector<Block> blocks = make_blocks(numel, count);
  std::vector<double> psq(blocks.size(), 0.0), usq(blocks.size(), 0.0);
  for_each_block(blocks, [&](index_t b, const Block& bl) {
    const index_t i = bl.tensor;
    K.lamb_pass1(&psq[b], &usq[b], exp_avg[i] + bl.lo, exp_avg_sq[i] + bl.lo, param[i] + bl.lo, grad[i] + bl.lo,
                 bl.hi - bl.lo, coef(i));
  });
  std::vector<double> ratio(static_cast<size_t>(count), 1.0), pn(static_cast<size_t>(count), 0.0),
      un(static_cast<size_t>(count), 0.0);
  for (size_t b = 0; b < blocks.size(); ++b) {
    pn[blocks[b].tensor] += psq[b];
    un[blocks[b].tensor] += usq[b];
  }
  for (index_t i = 0; i < count; ++i) {
    const double w = std::sqrt(pn[i]), u = std::sqrt(un[i]);
    ratio[i] = (w > 0.0 && u > 0.0) ? w / u : 1.0;  // the usual guards: a zero norm means no adaptation
    if (trust_ratio) trust_ratio[i] = ratio[i];
  }
  // Pass 2: param -= lr * ratio * update (the update recomputed from the new moments).
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.lamb_pass2(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, hi - lo, coef(i), T(o.lr * ratio[i]));
  });
}

// ------------------------------------------------------------------ utilities
template <typename T>
bool multi_tensor_all_finite(const T* const* x, const index_t* numel, index_t count) {
  const auto& K = range_kernels<T>();
  std::atomic<bool> ok{true};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    if (!ok.load(std::memory_order_relaxed)) return;
    if (!K.all_finite(x[i] + lo, hi - lo)) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

namespace {

int norm_kind(double p) {
  if (std::isinf(p)) return p > 0 ? kNormInf : kNormNegInf;
  if (p == 2.0) return kNormL2;
  if (p == 1.0) return kNormL1;
  if (p == 0.0) return kNormL0;
  return kNormP;
}

double max_nan(double a, double b) { return (a > b || a != a) ? a : b; }
double min_nan(double a, double b) { return (a < b || a != a) ? a : b; }

}  // namespace

template <typename T>
void multi_tensor_norm(double* norms, const T* const* x, const index_t* numel, index_t count, double norm_type) {
  if (count <= 0) return;
  const auto& K = range_kernels<T>();
  const int kind = norm_kind(norm_type);
  const std::vector<Block> blocks = make_blocks(numel, count);
  std::vector<double> part(blocks.size(), 0.0);
  for_each_block(blocks, [&](index_t b, const Block& bl) {
    part[b] = K.norm(x[bl.tensor] + bl.lo, bl.hi - bl.lo, kind, norm_type);
  });
  // An empty tensor gets the identity of its reduction (+inf for the min of -inf).
  const double init = kind == kNormNegInf ? std::numeric_limits<double>::infinity() : 0.0;
  for (index_t i = 0; i < count; ++i) norms[i] = init;
  for (size_t b = 0; b < blocks.size(); ++b) {
    double& n = norms[blocks[b].tensor];
    if (kind == kNormInf) n = max_nan(part[b], n);
    else if (kind == kNormNegInf) n = min_nan(part[b], n);
    else n += part[b];
  }
  for (index_t i = 0; i < count; ++i) {
    if (kind == kNormL2) norms[i] = std::sqrt(norms[i]);
    else if (kind == kNormP) norms[i] = std::pow(norms[i], 1.0 / norm_type);
  }
}

double combine_norms(const double* norms, index_t count, double norm_type) {
  const int kind = norm_kind(norm_type);
  if (count <= 0) return 0.0;
  double acc = kind == kNormNegInf ? std::numeric_limits<double>::infinity() : 0.0;
  for (index_t i = 0; i < count; ++i) {
    const double n = norms[i];
    switch (kind) {
      case kNormInf: acc = max_nan(std::fabs(n), acc); break;
      case kNormNegInf: acc = min_nan(std::fabs(n), acc); break;
      case kNormL2: acc += n * n; break;
      case kNormL1: acc += std::fabs(n); break;
      case kNormL0: acc += (n != 0.0) ? 1.0 : 0.0; break;
      default: acc += std::pow(std::fabs(n), norm_type); break;
    }
  }
  if (kind == kNormL2) return std::sqrt(acc);
  if (kind == kNormP) return std::pow(acc, 1.0 / norm_type);
  return acc;
}

template <typename T>
void multi_tensor_scale(T* const* x, const index_t* numel, index_t count, double scale) {
  const auto& K = range_kernels<T>();
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) { K.scale(x[i] + lo, hi - lo, T(scale)); });
}

template <typename T>
void multi_tensor_clamp(T* const* x, const index_t* numel, index_t count, double lo_v, double hi_v) {
  const auto& K = range_kernels<T>();
  for_each_slice(numel, count,
                 [&](index_t i, index_t lo, index_t hi) { K.clamp(x[i] + lo, hi - lo, T(lo_v), T(hi_v)); });
}

#define NNFAST_OPTIM_INSTANTIATE(T)                                                                             \
  template void sgd_step<T>(T* const*, T* const*, const T* const*, const std::uint8_t*, const index_t*, index_t, \
                            const SGDOptions&);                                                                 \
  template void adam_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,       \
                             const index_t*, index_t, const AdamOptions&);                                      \
  template void adagrad_step<T>(T* const*, T* const*, const T* const*, const index_t*, const index_t*, index_t, \
                                const AdagradOptions&);                                                         \
  template void rmsprop_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,    \
                                index_t, const RMSpropOptions&);                                                \
  template void adabound_step<T>(T* const*, T* const*, T* const*, T* const*, const T* const*, const index_t*,   \
                                 const index_t*, index_t, const AdaBoundOptions&);                              \
  template void lion_step<T>(T* const*, T* const*, const T* const*, const index_t*, index_t, const LionOptions&); \
  template void lamb_step<T>(double*, T* const*, T* const*, T* const*, const T* const*, const index_t*,         \
                             const index_t*, index_t, const LambOptions&);                                      \
  template bool multi_tensor_all_finite<T>(const T* const*, const index_t*, index_t);                           \
  template void multi_tensor_norm<T>(double*, const T* const*, const index_t*, index_t, double);                \
  template void multi_tensor_scale<T>(T* const*, const index_t*, index_t, double);                              \
  template void multi_tensor_clamp<T>(T* const*, const index_t*, index_t, double, double);

NNFAST_OPTIM_INSTANTIATE(float)
NNFAST_OPTIM_INSTANTIATE(double)
#undef NNFAST_OPTIM_INSTANTIATE

}  // namespace nnfast::cpu

#else  // ================================================================ range kernels (per ISA)
// Included once per ISA inside namespace nnfast::cpu::optim_isa_<isa>, with
// NNFAST_VEC_BYTES (vector width; 0 = scalar) and NNFAST_VEC_X86 (1 SSE2,
// 2 AVX2, 3 AVX-512) defined. Every kernel streams its slice once: load,
// update in registers, store; partial vectors at the tail are zero-padded.

using namespace ::nnfast::cpu::optim_detail;

template <typename T>
struct VecOf {
#if NNFAST_VEC_BYTES
  typedef T type __attribute__((vector_size(NNFAST_VEC_BYTES)));
#else
  typedef T type;
#endif
};
template <typename T>
using vec = typename VecOf<T>::type;

template <typename T>
constexpr index_t kLanes = static_cast<index_t>(sizeof(vec<T>) / sizeof(T));

// Sums are accumulated in double vectors of the native width; a float vector
// widens into kParts<float> = 2 of them (a wider-than-native accumulator would
// be split by the compiler through memory and run ~10x slower).
#if NNFAST_VEC_BYTES
typedef double dvec __attribute__((vector_size(NNFAST_VEC_BYTES)));
typedef float hvec __attribute__((vector_size(NNFAST_VEC_BYTES / 2)));
#else
typedef double dvec;
#endif
template <typename T>
constexpr int kParts = (NNFAST_VEC_BYTES != 0 && sizeof(T) == 4) ? 2 : 1;

inline void widen(const vec<double>& x, dvec* out) { out[0] = x; }
inline void widen(const vec<float>& x, dvec* out) {
#if NNFAST_VEC_BYTES
  hvec lo, hi;
  std::memcpy(&lo, &x, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&x) + sizeof lo, sizeof hi);
  out[0] = __builtin_convertvector(lo, dvec);
  out[1] = __builtin_convertvector(hi, dvec);
#else
  out[0] = static_cast<double>(x);
#endif
}

// acc[j] += x_j * x_j over the double parts of x.
template <typename T>
inline void add_squares(dvec* acc, const vec<T>& x) {
  dvec w[kParts<T>];
  widen(x, w);
  for (int j = 0; j < kParts<T>; ++j) acc[j] = acc[j] + w[j] * w[j];
}
template <typename T>
inline void add_values(dvec* acc, const vec<T>& x) {
  dvec w[kParts<T>];
  widen(x, w);
  for (int j = 0; j < kParts<T>; ++j) acc[j] = acc[j] + w[j];
}

// The lanes of acc[0..parts) summed in a fixed order.
inline double lane_sum(const dvec* acc, int parts) {
  double s = 0.0;
  for (int j = 0; j < parts; ++j) {
#if NNFAST_VEC_BYTES
    for (size_t l = 0; l < sizeof(dvec) / sizeof(double); ++l) s += acc[j][l];
#else
    s += acc[j];
#endif
  }
  return s;
}

template <typename T>
inline vec<T> splat(T x) {
  return vec<T>{} + x;
}

inline vec<float> vsqrt(vec<float> x) {
#if NNFAST_VEC_BYTES && NNFAST_VEC_X86 == 3
  return _mm512_sqrt_ps(x);
#elif NNFAST_VEC_BYTES && NNFAST_VEC_X86 == 2
  return _mm256_sqrt_ps(x);
#elif NNFAST_VEC_BYTES && defined(NNFAST_OPTIM_X86)
  return _mm_sqrt_ps(x);
#elif NNFAST_VEC_BYTES
  for (index_t j = 0; j < kLanes<float>; ++j) x[j] = std::sqrt(x[j]);
  return x;
#else
  return std::sqrt(x);
#endif
}

inline vec<double> vsqrt(vec<double> x) {
#if NNFAST_VEC_BYTES && NNFAST_VEC_X86 == 3
  return _mm512_sqrt_pd(x);
#elif NNFAST_VEC_BYTES && NNFAST_VEC_X86 == 2
  return _mm256_sqrt_pd(x);
#elif NNFAST_VEC_BYTES && defined(NNFAST_OPTIM_X86)
  return _mm_sqrt_pd(x);
#elif NNFAST_VEC_BYTES
  for (index_t j = 0; j < kLanes<double>; ++j) x[j] = std::sqrt(x[j]);
  return x;
#else
  return std::sqrt(x);
#endif
}

// max/min that propagate NaN from either side (as torch.maximum/minimum do).
template <typename V>
inline V vmax_nan(V a, V b) {
  return ((a > b) | (a != a)) ? a : b;
}
template <typename V>
inline V vmin_nan(V a, V b) {
  return ((a < b) | (a != a)) ? a : b;
}
template <typename V>
inline V vabs(V x) {
  return (x < V{}) ? -x : x;
}

// Full and partial (tail) vector access; the tail is zero-padded on load and
// only its first k lanes are stored.
template <typename T>
struct FullIO {
  vec<T> load(const T* p) const {
    vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  void store(T* p, const vec<T>& v) const { std::memcpy(p, &v, sizeof v); }
  vec<T> keep(vec<T> v) const { return v; }  // lanes that hold data
};

template <typename T>
struct TailIO {
  index_t k;
  vec<T> load(const T* p) const {
    vec<T> v = vec<T>{};
    std::memcpy(&v, p, static_cast<size_t>(k) * sizeof(T));
    return v;
  }
  void store(T* p, const vec<T>& v) const { std::memcpy(p, &v, static_cast<size_t>(k) * sizeof(T)); }
  vec<T> keep(vec<T> v) const {
#if NNFAST_VEC_BYTES
    for (index_t j = k; j < kLanes<T>; ++j) v[j] = T(0);
#endif
    return v;
  }
};

template <typename T, typename Body>
inline void vec_loop(index_t n, Body&& body) {
  constexpr index_t W = kLanes<T>;
  index_t i = 0;
  for (; i + W <= n; i += W) body(FullIO<T>{}, i);
  if (i < n) body(TailIO<T>{n - i}, i);
}

// ------------------------------------------------------------------ steps
template <typename T>
void sgd_range(T* param, T* buf, const T* grad, index_t n, const SgdCoef<T>& coef, bool init) {
  const SgdCoef<T> c = coef;  // a local copy the stores cannot alias
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    vec<T> d = io.load(grad + i) * c.sign;
    if (c.l2) d = d + c.wd * p;
    if (c.has_momentum) {
      const vec<T> b = init ? d : c.momentum * io.load(buf + i) + c.damp1 * d;
      io.store(buf + i, b);
      d = c.nesterov ? d + c.momentum * b : b;
    }
    io.store(param + i, p - c.lr * d);
  });
}

template <typename T>
void adam_range(T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad, index_t n,
                const AdamCoef<T>& coef) {
  const AdamCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.decoupled) p = p * c.decay;
    if (c.l2) g = g + c.wd * p;
    vec<T> m = io.load(exp_avg + i);
    m = m + c.omb1 * (g - m);  // lerp(m, g, 1 - beta1)
    const vec<T> v = c.beta2 * io.load(exp_avg_sq + i) + c.omb2 * (g * g);
    io.store(exp_avg + i, m);
    io.store(exp_avg_sq + i, v);
    vec<T> vv = v;
    if (c.amsgrad) {
      vv = vmax_nan(io.load(max_exp_avg_sq + i), v);
      io.store(max_exp_avg_sq + i, vv);
    }
    const vec<T> denom = vsqrt(vv) * c.inv_bc2_sqrt + c.eps;
    io.store(param + i, p - c.step_size * (m / denom));
  });
}

template <typename T>
void adagrad_range(T* param, T* state_sum, const T* grad, index_t n, const AdagradCoef<T>& coef) {
  const AdagradCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> s = io.load(state_sum + i) + g * g;
    io.store(state_sum + i, s);
    io.store(param + i, p - c.clr * (g / (vsqrt(s) + c.eps)));
  });
}

template <typename T>
void rmsprop_range(T* param, T* square_avg, T* grad_avg, T* momentum_buffer, const T* grad, index_t n,
                   const RmspropCoef<T>& coef) {
  const RmspropCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> sq = c.alpha * io.load(square_avg + i) + c.oma * (g * g);
    io.store(square_avg + i, sq);
    vec<T> avg;
    if (c.centered) {
      vec<T> ga = io.load(grad_avg + i);
      ga = ga + c.oma * (g - ga);
      io.store(grad_avg + i, ga);
      avg = vsqrt(sq - ga * ga) + c.eps;
    } else {
      avg = vsqrt(sq) + c.eps;
    }
    if (c.has_momentum) {
      const vec<T> b = c.momentum * io.load(momentum_buffer + i) + g / avg;
      io.store(momentum_buffer + i, b);
      io.store(param + i, p - c.lr * b);
    } else {
      io.store(param + i, p - c.lr * (g / avg));
    }
  });
}

template <typename T>
void adabound_range(T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* grad, index_t n,
                    const AdaBoundCoef<T>& coef) {
  const AdaBoundCoef<T> c = coef;
  const vec<T> lower = splat(c.lower), upper = splat(c.upper);
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    vec<T> g = io.load(grad + i) * c.sign;
    if (c.l2) g = g + c.wd * p;
    const vec<T> m = c.beta1 * io.load(exp_avg + i) + c.omb1 * g;
    const vec<T> v = c.beta2 * io.load(exp_avg_sq + i) + c.omb2 * (g * g);
    io.store(exp_avg + i, m);
    io.store(exp_avg_sq + i, v);
    vec<T> vv = v;
    if (c.amsbound) {
      vv = vmax_nan(io.load(max_exp_avg_sq + i), v);
      io.store(max_exp_avg_sq + i, vv);
    }
    vec<T> s = c.step_size / (vsqrt(vv) + c.eps);
    s = vmin_nan(vmax_nan(s, lower), upper);  // clamp_(lower, upper)
    io.store(param + i, p - s * m);
  });
}

template <typename T>
void lion_range(T* param, T* exp_avg, const T* grad, index_t n, const LionCoef<T>& coef) {
  const LionCoef<T> c = coef;
  const vec<T> zero = splat(T(0)), one = splat(T(1)), mone = splat(T(-1));
  vec_loop<T>(n, [&](auto io, index_t i) {
    vec<T> p = io.load(param + i);
    const vec<T> g = io.load(grad + i) * c.sign;
    const vec<T> m = io.load(exp_avg + i);
    if (c.has_wd) p = p * c.decay;
    const vec<T> u = c.beta1 * m + c.omb1 * g;
    const vec<T> s = (u > zero) ? one : ((u < zero) ? mone : ((u != u) ? u : zero));  // sign, NaN kept
    io.store(param + i, p - c.lr * s);
    io.store(exp_avg + i, c.beta2 * m + c.omb2 * g);
  });
}

template <typename T, typename IO>
inline vec<T> lamb_update(const IO& io, const vec<T>& m, const vec<T>& v, const vec<T>& p, const LambCoef<T>& c) {
  vec<T> u = (m * c.ibc1) / (vsqrt(v) * c.ibc2_sqrt + c.eps);
  if (c.has_wd) u = u + c.wd * p;
  return io.keep(u);
}

template <typename T>
void lamb_pass1(double* param_sq, double* update_sq, T* exp_avg, T* exp_avg_sq, const T* param, const T* grad,
                index_t n, const LambCoef<T>& coef) {
  const LambCoef<T> c = coef;
  dvec ps[kParts<T>] = {}, us[kParts<T>] = {};
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    const vec<T> g = io.load(grad + i) * c.sign;
    vec<T> m = io.load(exp_avg + i);
    m = m + c.omb1 * (g - m);
    const vec<T> v = c.beta2 * io.load(exp_avg_sq + i) + c.omb2 * (g * g);
    io.store(exp_avg + i, m);
    io.store(exp_avg_sq + i, v);
    add_squares<T>(ps, p);
    add_squares<T>(us, lamb_update<T>(io, m, v, p, c));
  });
  *param_sq = lane_sum(ps, kParts<T>);
  *update_sq = lane_sum(us, kParts<T>);
}

template <typename T>
void lamb_pass2(T* param, const T* exp_avg, const T* exp_avg_sq, index_t n, const LambCoef<T>& coef, T scale) {
  const LambCoef<T> c = coef;
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> p = io.load(param + i);
    const vec<T> u = lamb_update<T>(io, io.load(exp_avg + i), io.load(exp_avg_sq + i), p, c);
    io.store(param + i, p - scale * u);
  });
}

// ------------------------------------------------------------------ utilities
template <typename T>
bool all_finite_range(const T* x, index_t n) {
  vec<T> acc = vec<T>{};
  vec_loop<T>(n, [&](auto io, index_t i) { acc = acc + io.load(x + i) * T(0); });  // inf*0 and NaN*0 are NaN
#if NNFAST_VEC_BYTES
  bool ok = true;
  for (index_t j = 0; j < kLanes<T>; ++j) ok = ok && acc[j] == T(0);
  return ok;
#else
  return acc == T(0);
#endif
}

template <typename T>
double norm_range(const T* x, index_t n, int kind, double p) {
  constexpr index_t W = kLanes<T>;
  const index_t nv = n / W * W;
  double s = 0.0;
  if (kind == kNormInf || kind == kNormNegInf) {
    const bool mx = kind == kNormInf;
    vec<T> m = splat(mx ? T(0) : std::numeric_limits<T>::infinity());
    for (index_t i = 0; i < nv; i += W) {
      const vec<T> a = vabs(FullIO<T>{}.load(x + i));
      m = mx ? vmax_nan(a, m) : vmin_nan(a, m);
    }
    double r = mx ? 0.0 : std::numeric_limits<double>::infinity();
#if NNFAST_VEC_BYTES
    for (index_t j = 0; j < W; ++j) r = mx ? (((m[j] > r) | (m[j] != m[j])) ? m[j] : r) : (((m[j] < r) | (m[j] != m[j])) ? m[j] : r);
#else
    r = m;
#endif
    for (index_t i = nv; i < n; ++i) {
      const double a = std::fabs(static_cast<double>(x[i]));
      r = mx ? (((a > r) | (a != a)) ? a : r) : (((a < r) | (a != a)) ? a : r);
    }
    return r;
  }
  if (kind == kNormP) {
    for (index_t i = 0; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(x[i])), p);
    return s;
  }
  // Two accumulator sets, so consecutive vectors do not wait on one add chain.
  dvec acc0[kParts<T>] = {}, acc1[kParts<T>] = {};
  const vec<T> zero = splat(T(0)), one = splat(T(1));
  index_t i = 0;
  for (; i + 2 * W <= nv; i += 2 * W) {
    const vec<T> v0 = FullIO<T>{}.load(x + i), v1 = FullIO<T>{}.load(x + i + W);
    if (kind == kNormL2) {
      add_squares<T>(acc0, v0);
      add_squares<T>(acc1, v1);
    } else if (kind == kNormL1) {
      add_values<T>(acc0, vabs(v0));
      add_values<T>(acc1, vabs(v1));
    } else {
      add_values<T>(acc0, (v0 != zero) ? one : zero);
      add_values<T>(acc1, (v1 != zero) ? one : zero);
    }
  }
  for (; i < nv; i += W) {
    const vec<T> v0 = FullIO<T>{}.load(x + i);
    if (kind == kNormL2) add_squares<T>(acc0, v0);
    else if (kind == kNormL1) add_values<T>(acc0, vabs(v0));
    else add_values<T>(acc0, (v0 != zero) ? one : zero);
  }
  s = lane_sum(acc0, kParts<T>) + lane_sum(acc1, kParts<T>);
  for (index_t i = nv; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    s += kind == kNormL2 ? v * v : (kind == kNormL1 ? std::fabs(v) : (v != 0.0 ? 1.0 : 0.0));
  }
  return s;
}

template <typename T>
void scale_range(T* x, index_t n, T scale) {
  vec_loop<T>(n, [&](auto io, index_t i) { io.store(x + i, io.load(x + i) * scale); });
}

template <typename T>
void clamp_range(T* x, index_t n, T lo, T hi) {
  const vec<T> vlo = splat(lo), vhi = splat(hi);
  vec_loop<T>(n, [&](auto io, index_t i) {
    const vec<T> v = io.load(x + i);
    io.store(x + i, (v < vlo) ? vlo : ((v > vhi) ? vhi : v));
  });
}

template <typename T>
RangeKernels<T> make_range_kernels() {
  RangeKernels<T> k;
  k.sgd = &sgd_range<T>;
  k.adam = &adam_range<T>;
  k.adagrad = &adagrad_range<T>;
  k.rmsprop = &rmsprop_range<T>;
  k.adabound = &adabound_range<T>;
  k.lion = &lion_range<T>;
  k.lamb_pass1 = &lamb_pass1<T>;
  k.lamb_pass2 = &lamb_pass2<T>;
  k.all_finite = &all_finite_range<T>;
  k.norm = &norm_range<T>;
  k.scale = &scale_range<T>;
  k.clamp = &clamp_range<T>;
  return k;
}

#endif  // NNFAST_OPTIM_RANGE_KERNELS

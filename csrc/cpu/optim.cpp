// Optimizer steps and gradient-norm utilities: multi-tensor CPU drivers.
//
// The drivers split the concatenated element range of all tensors across
// threads and call the range kernel (optim_isa.cpp, one copy per instruction
// set) of the ISA picked at run time.
//
// Shape letters: n = elements in a slice, count = tensors in a list.
#include "nnfast/optim.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel_for.h"
#include "cpu/convert_internal.h"
#include "cpu/optim_internal.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

using namespace optim_detail;

// Calls f(i, lo, hi) for every non-empty slice [lo, hi) of tensor i, splitting the
// concatenation of all tensors evenly across threads (serial when small).
template <typename F>
void for_each_slice(const index_t* numel, index_t count, F&& f, index_t grain = kElementwiseGrain) {
  if (count <= 0) return;
  std::vector<index_t> off(static_cast<size_t>(count) + 1, 0);
  for (index_t i = 0; i < count; ++i) off[i + 1] = off[i] + numel[i];
  parallel_for(off[count], grain, [&](index_t lo, index_t hi) {
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

using optim_coef::bias_corrections;
using optim_coef::BiasCorrections;
using optim_coef::sign_of;

}  // namespace

// ------------------------------------------------------------------ SGD
template <typename T>
void sgd_step(T* const* param, T* const* momentum_buffer, const T* const* grad, const std::uint8_t* init_buffer,
              const index_t* numel, index_t count, const SGDOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
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
  const auto& K = isa_ops<OptimOps<T>>();
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const BiasCorrections bc = bias_corrections(o.beta1, o.beta2, step[i]);
    const AdamCoef<T> c{optim_coef::adam_consts<T>(o), T(1.0 / std::sqrt(bc.bc2)), T(o.lr / bc.bc1)};
    K.adam(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, o.amsgrad ? max_exp_avg_sq[i] + lo : nullptr,
           grad[i] + lo, hi - lo, c);
  });
}

// NNFAST_BF16_ADAM_DYNAMIC (read once): unset or 1 = adam_step_bf16_copy hands out chunks
// that threads claim as they come free; 0 = each thread steps an equal static share
// (the earlier schedule), for A/B timing. Same bits either way: the update is elementwise.
static bool adam_copy_dynamic() {
  static const bool on = env_switch_on("NNFAST_BF16_ADAM_DYNAMIC");
  return on;
}

// The same update; each slice is stepped in L1-sized chunks and every chunk of a param
// with a copy is rounded to bf16 right after (the updated values are still in L1),
// by the per-ISA convert kernel, so the copy is bit for bit nnfast's convert of it.
// Scheduled dynamically (see adam_copy_dynamic): this step runs right after Python on
// the calling thread, which starts it late and cold, and on a loaded machine either
// thread may be descheduled; with equal static shares the other waits out the gap.
void adam_step_bf16_copy(float* const* param, float* const* exp_avg, float* const* exp_avg_sq,
                         float* const* max_exp_avg_sq, const float* const* grad, std::uint16_t* const* copy,
                         const index_t* step, const index_t* numel, index_t count, const AdamOptions& o) {
  const auto& K = isa_ops<OptimOps<float>>();
  const auto narrow = isa_ops<convert_detail::ConvertOps>().f32_to_bf16;
  // 2 KB of each of param, grad, m, v: the param chunk is still in L1 when it is narrowed (at
  // 8 KB each, the four streams fill a 32 KB L1; same-run A/B, 784-1024-1024-10 MLP params,
  // CPU time: 512 took 0.15-0.19 ms less than 2048 at 1 and 2 threads, 256 more than 512).
  constexpr index_t kChunk = 512;
  auto coef = [&](index_t i) {
    const BiasCorrections bc = bias_corrections(o.beta1, o.beta2, step[i]);
    return AdamCoef<float>{optim_coef::adam_consts<float>(o), float(1.0 / std::sqrt(bc.bc2)), float(o.lr / bc.bc1)};
  };
  auto run = [&](index_t i, index_t lo, index_t hi, const AdamCoef<float>& c) {
    for (index_t a = lo; a < hi; a += kChunk) {
      const index_t n = std::min(kChunk, hi - a);
      K.adam(param[i] + a, exp_avg[i] + a, exp_avg_sq[i] + a, o.amsgrad ? max_exp_avg_sq[i] + a : nullptr,
             grad[i] + a, n, c);
      if (copy[i]) narrow(copy[i] + a, param[i] + a, n);
    }
  };
  std::vector<index_t> off(static_cast<size_t>(count) + 1, 0);
  for (index_t i = 0; i < count; ++i) off[i + 1] = off[i] + numel[i];
  const index_t total = off[count];
  const int nt = static_cast<int>(std::min<index_t>(get_num_threads(), total / kElementwiseGrain));
#ifdef NNFAST_HAVE_OPENMP
  if (nt > 1 && adam_copy_dynamic()) {
    // Chunks of the concatenated range, claimed in order: first one of 3/4 of an equal share per
    // thread (long runs, as the static split), then 64K-element blocks (256 KB of each array), so
    // a late thread leaves at most one block (~0.03 ms at the MLP's size) to the others.
    constexpr index_t kBlock = 65536;
    std::vector<index_t> starts;
    const index_t big = total / nt * 3 / 4;
    index_t at = 0;
    if (big > kBlock)
      for (int t = 0; t < nt; ++t, at += big) starts.push_back(at);
    for (; at < total; at += kBlock) starts.push_back(at);
    starts.push_back(total);
    std::vector<AdamCoef<float>> cs;
    cs.reserve(static_cast<size_t>(count));
    for (index_t i = 0; i < count; ++i) cs.push_back(coef(i));
    const index_t nchunks = static_cast<index_t>(starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (index_t c = 0; c < nchunks; ++c) {
      index_t lo = starts[c];
      const index_t hi = starts[c + 1];
      index_t t = static_cast<index_t>(std::upper_bound(off.begin(), off.end(), lo) - off.begin()) - 1;
      for (; lo < hi; ++t) {  // the chunk's slice of each tensor it spans
        const index_t end = std::min(hi, off[t + 1]);
        if (end > lo) run(t, lo - off[t], end - off[t], cs[t]);
        lo = end;
      }
    }
    return;
  }
#endif
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) { run(i, lo, hi, coef(i)); });
}

// ------------------------------------------------------------------ Adagrad
template <typename T>
void adagrad_step(T* const* param, T* const* state_sum, const T* const* grad, const index_t* step,
                  const index_t* numel, index_t count, const AdagradOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
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
  const auto& K = isa_ops<OptimOps<T>>();
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
  const auto& K = isa_ops<OptimOps<T>>();
  const double final_lr = o.final_lr * o.lr / o.base_lr;
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const double t = static_cast<double>(step[i]);
    const BiasCorrections bc = bias_corrections(o.beta1, o.beta2, step[i]);
    AdaBoundCoef<T> c{sign_of<T>(o.maximize),
                      T(o.weight_decay),
                      T(o.beta1),
                      T(1.0 - o.beta1),
                      T(o.beta2),
                      T(1.0 - o.beta2),
                      T(o.eps),
                      T(o.lr * std::sqrt(bc.bc2) / bc.bc1),
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
  const auto& K = isa_ops<OptimOps<T>>();
  LionCoef<T> c{sign_of<T>(o.maximize), T(o.lr),          T(1.0 - o.lr * o.weight_decay), T(o.beta1),
                T(1.0 - o.beta1),       T(o.beta2),       T(1.0 - o.beta2),               o.weight_decay != 0};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.lion(param[i] + lo, exp_avg[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

// ------------------------------------------------------------------ Adadelta, Adamax, NAdam, RAdam, ASGD
template <typename T>
void adadelta_step(T* const* param, T* const* square_avg, T* const* acc_delta, const T* const* grad,
                   const index_t* numel, index_t count, const AdadeltaOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
  const AdadeltaCoef<T> c{optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, o.rho, 0.0, o.eps),
                          T(-o.lr)};
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.adadelta(param[i] + lo, square_avg[i] + lo, acc_delta[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

template <typename T>
void adamax_step(T* const* param, T* const* exp_avg, T* const* exp_inf, const T* const* grad, const index_t* step,
                 const index_t* numel, index_t count, const AdamaxOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
  const auto k = optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, o.beta1, o.beta2, o.eps);
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const AdamaxCoef<T> c{k, T(-(o.lr / (1.0 - std::pow(o.beta1, static_cast<double>(step[i])))))};
    K.adamax(param[i] + lo, exp_avg[i] + lo, exp_inf[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

// Per-tensor coefficients that also advance a state (NAdam's mu_product, ASGD's eta
// and mu) are computed once per tensor, before the threads split the elements.
template <typename T>
void nadam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, double* mu_product,
                const index_t* step, const index_t* numel, index_t count, const NAdamOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
  const auto k = optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, o.decoupled_weight_decay, o.beta1,
                                            o.beta2, o.eps);
  std::vector<NAdamCoef<T>> c(static_cast<size_t>(std::max<index_t>(count, 0)));
  for (index_t i = 0; i < count; ++i) {
    const auto s = optim_coef::nadam_step_coef(o, step[i], mu_product[i]);
    c[i] = NAdamCoef<T>{k, T(s.bc2), T(s.cg), T(s.cm)};
  }
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.nadam(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, grad[i] + lo, hi - lo, c[i]);
  });
}

template <typename T>
void radam_step(T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad, const index_t* step,
                const index_t* numel, index_t count, const RAdamOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
  const auto k = optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, o.decoupled_weight_decay, o.beta1,
                                            o.beta2, o.eps);
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    const auto s = optim_coef::radam_step_coef(o, step[i]);
    const RAdamCoef<T> c{k, T(s.bc1), T(o.lr), T(s.sqrt_bc2), T(s.rect), s.rectified};
    K.radam(param[i] + lo, exp_avg[i] + lo, exp_avg_sq[i] + lo, grad[i] + lo, hi - lo, c);
  });
}

template <typename T>
void asgd_step(T* const* param, T* const* ax, const T* const* grad, double* eta, double* mu, const index_t* step,
               const index_t* numel, index_t count, const ASGDOptions& o) {
  const auto& K = isa_ops<OptimOps<T>>();
  const auto k = optim_coef::step_consts<T>(o.maximize, o.lr, o.weight_decay, false, 0.0, 0.0, 0.0);
  std::vector<AsgdCoef<T>> c(static_cast<size_t>(std::max<index_t>(count, 0)));
  for (index_t i = 0; i < count; ++i) {
    const auto s = optim_coef::asgd_step_coef(o, step[i], eta[i], mu[i]);
    c[i] = AsgdCoef<T>{k, T(s.decay), T(s.neg_eta), T(s.mu), s.mu_one};
  }
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) {
    K.asgd(param[i] + lo, ax[i] + lo, grad[i] + lo, hi - lo, c[i]);
  });
}

// ------------------------------------------------------------------ LAMB
template <typename T>
void lamb_step(double* trust_ratio, T* const* param, T* const* exp_avg, T* const* exp_avg_sq, const T* const* grad,
               const index_t* step, const index_t* numel, index_t count, const LambOptions& o) {
  if (count <= 0) return;
  const auto& K = isa_ops<OptimOps<T>>();
  auto coef = [&](index_t i) {
    const BiasCorrections bc =
        o.bias_correction ? bias_corrections(o.beta1, o.beta2, step[i]) : BiasCorrections{1.0, 1.0};
    return LambCoef<T>{sign_of<T>(o.maximize), T(1.0 - o.beta1),           T(o.beta2),
                       T(1.0 - o.beta2),       T(1.0 / bc.bc1),            T(1.0 / std::sqrt(bc.bc2)),
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
  const auto& K = isa_ops<OptimOps<T>>();
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
  const auto& K = isa_ops<OptimOps<T>>();
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
  const auto& K = isa_ops<OptimOps<T>>();
  for_each_slice(numel, count, [&](index_t i, index_t lo, index_t hi) { K.scale(x[i] + lo, hi - lo, T(scale)); });
}

// A memset outruns the other elementwise kernels: threads join in only from 1 MiB each (a small
// model's grads are cleared faster than a parallel region starts, above all with passive waits).
template <typename T>
void multi_tensor_zero(T* const* x, const index_t* numel, index_t count) {
  for_each_slice(
      numel, count,
      [&](index_t i, index_t lo, index_t hi) {
        std::memset(static_cast<void*>(x[i] + lo), 0, static_cast<size_t>(hi - lo) * sizeof(T));
      },
      index_t(1 << 20) / index_t(sizeof(T)));
}

template <typename T>
void multi_tensor_clamp(T* const* x, const index_t* numel, index_t count, double lo_v, double hi_v) {
  const auto& K = isa_ops<OptimOps<T>>();
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
  template void adadelta_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, index_t,      \
                                 const AdadeltaOptions&);                                                       \
  template void adamax_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, const index_t*, \
                               index_t, const AdamaxOptions&);                                                  \
  template void nadam_step<T>(T* const*, T* const*, T* const*, const T* const*, double*, const index_t*,        \
                              const index_t*, index_t, const NAdamOptions&);                                    \
  template void radam_step<T>(T* const*, T* const*, T* const*, const T* const*, const index_t*, const index_t*,  \
                              index_t, const RAdamOptions&);                                                    \
  template void asgd_step<T>(T* const*, T* const*, const T* const*, double*, double*, const index_t*,           \
                             const index_t*, index_t, const ASGDOptions&);                                      \
  template bool multi_tensor_all_finite<T>(const T* const*, const index_t*, index_t);                           \
  template void multi_tensor_norm<T>(double*, const T* const*, const index_t*, index_t, double);                \
  template void multi_tensor_scale<T>(T* const*, const index_t*, index_t, double);                              \
  template void multi_tensor_zero<T>(T* const*, const index_t*, index_t);                                       \
  template void multi_tensor_clamp<T>(T* const*, const index_t*, index_t, double, double);

NNFAST_OPTIM_INSTANTIATE(float)
NNFAST_OPTIM_INSTANTIATE(double)
#undef NNFAST_OPTIM_INSTANTIATE

}  // namespace nnfast::cpu


// Row primitives of the class-dim losses (softmax cross-entropy, linear
// cross-entropy): contiguous rows of C values. Compiled once per ISA in
// loss_isa.cpp and picked at run time by isa_ops<RowOps<T>>().
#pragma once
#include "core/isa_dispatch.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace loss_detail {

template <typename T>
struct RowOps {
  // max_c x[c]; NaN when any x[c] is NaN. C >= 1.
  T (*max)(const T* x, index_t C);
  // sum_c exp(x[c] - m), storing exp(x[c] - m) in e[c] when e != nullptr (e may be x);
  // prefetches next[0, C) when next != nullptr (the next row, read while the exps run).
  T (*sumexp)(const T* x, index_t C, T m, T* e, const T* next);
  // max and sumexp with fewer vector ops (NNFAST_CE_FAST): fast_max may return a
  // non-NaN m for a row with a NaN (fast_sumexp's sum is NaN then all the same);
  // fast_sumexp's exp differs from sumexp's by <= 1 ulp.
  T (*fast_max)(const T* x, index_t C);
  T (*fast_sumexp)(const T* x, index_t C, T m, T* e, const T* next);
  // fast_max with the previous row's affine_stream(d, ep, C, a, -0, nullptr, t, fix) in its loop.
  T (*fast_max_emit)(const T* x, index_t C, T* d, const T* ep, T a, index_t t, T fix);
  // sum_c w[c] (x[c] - m), or sum_c (x[c] - m) when w == nullptr.
  T (*shift_dot)(const T* x, const T* w, index_t C, T m);
  // d[c] = a d[c] + b w[c] (b when w == nullptr).
  void (*affine)(T* d, index_t C, T a, T b, const T* w);
  // d[c] = a e[c] + b w[c] (b when w == nullptr), then d[t] -= fix: the same bits as
  // affine on a copy of e, written with non-temporal stores (d, a row of an output too
  // big to cache, skips its read-for-ownership; e is a cached scratch row).
  void (*affine_stream)(T* d, const T* e, index_t C, T a, T b, const T* w, index_t t, T fix);
  // Publishes this thread's non-temporal stores (before the parallel join).
  void (*fence)();
};

}  // namespace loss_detail

NNFAST_ISA_DECLARE_TABLE_T(loss_detail::RowOps)

}  // namespace nnfast::cpu

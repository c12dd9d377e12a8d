// Per-ISA routine tables (BLIS cntx-style) and the one dispatcher that picks them.
//
// Each kernel family declares its per-ISA routines once, as a struct of function
// pointers (NormOps<T>, ActOps<T>, GemmOps<T>, RowOps<T>, OptimOps<T>, PeakOps).
// Each *_isa.cpp file (compiled once per ISA by CMake, NNFAST_ISA_NS = isa_generic,
// isa_avx2, isa_avx512) fills the table once:
//
//   template <typename T> NormOps<T> make_norm_ops() { NormOps<T> o; o.dot = &dot<T>; ...; return o; }
//   NNFAST_ISA_TABLE_T(NormOps, make_norm_ops)          // float and double tables
//
// and the driver calls isa_ops<NormOps<T>>() (the table of the ISA in use, see
// cpu_features.h). Adding a routine: a field in the struct, its implementation,
// one line in the make_*_ops function. Adding an ISA: one line in
// NNFAST_FOR_EACH_ISA_NS, a case in ops_for, a CMake nnfast_add_isa call.
//
// A table is built on first use of its ISA only (function-local static): the
// builder is compiled for that ISA and may not run on a CPU without it.
#pragma once
#include "core/cpu_features.h"

namespace nnfast::cpu {

#define NNFAST_FOR_EACH_ISA_NS(X) X(isa_generic) X(isa_avx2) X(isa_avx512)

#define NNFAST_ISA_DECLARE_OPS_TEMPLATE_(ns) \
  namespace ns {                             \
  template <class Ops>                       \
  const Ops& isa_table();                    \
  }
NNFAST_FOR_EACH_ISA_NS(NNFAST_ISA_DECLARE_OPS_TEMPLATE_)
#undef NNFAST_ISA_DECLARE_OPS_TEMPLATE_

// Declares the specialisations that the ISA objects define (one line per table type,
// in the family's internal header, so every use sees them).
#define NNFAST_ISA_DECLARE_TABLE_IN_(ns, Ops) \
  namespace ns {                             \
  template <>                                \
  const Ops& isa_table<Ops>();               \
  }
#define NNFAST_ISA_DECLARE_TABLE(Ops)                \
  NNFAST_ISA_DECLARE_TABLE_IN_(isa_generic, Ops)     \
  NNFAST_ISA_DECLARE_TABLE_IN_(isa_avx2, Ops)        \
  NNFAST_ISA_DECLARE_TABLE_IN_(isa_avx512, Ops)
#define NNFAST_ISA_DECLARE_TABLE_T(Ops) NNFAST_ISA_DECLARE_TABLE(Ops<float>) NNFAST_ISA_DECLARE_TABLE(Ops<double>)

// In an *_isa.cpp, inside namespace nnfast::cpu::NNFAST_ISA_NS: the table of Ops
// for this ISA, built from `init` on first use.
#define NNFAST_ISA_TABLE(Ops, init)    \
  template <>                          \
  const Ops& isa_table<Ops>() {        \
    static const Ops table = init;     \
    return table;                      \
  }
#define NNFAST_ISA_TABLE_T(Ops, make) \
  NNFAST_ISA_TABLE(Ops<float>, make<float>()) NNFAST_ISA_TABLE(Ops<double>, make<double>())

// The table of `isa` (generic where the build has no x86 ISA objects).
template <class Ops>
const Ops& ops_for(Isa isa) {
#ifdef NNFAST_HAVE_X86_ISA
  switch (isa) {
    case Isa::AVX512: return isa_avx512::isa_table<Ops>();
    case Isa::AVX2: return isa_avx2::isa_table<Ops>();
    default: break;
  }
#else
  (void)isa;
#endif
  return isa_generic::isa_table<Ops>();
}

// The table of the ISA in use.
template <class Ops>
const Ops& isa_ops() {
  return ops_for<Ops>(active_isa());
}

}  // namespace nnfast::cpu

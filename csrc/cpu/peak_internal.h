// The per-ISA FMA peak probe (peak_isa.cpp), picked by peak.cpp.
#pragma once
#include "core/isa_dispatch.h"

namespace nnfast::cpu {
struct PeakOps {
  double (*fma_peak_gflops)(bool f64, double seconds);
};
NNFAST_ISA_DECLARE_TABLE(PeakOps)
}  // namespace nnfast::cpu

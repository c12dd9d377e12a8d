// Dispatch of the per-ISA FMA peak probe (cpu/peak_isa.cpp).
#include "cpu/peak_internal.h"
#include "nnfast/parallel.h"

namespace nnfast {

double fma_peak_gflops(bool f64, double seconds) {
  return cpu::isa_ops<cpu::PeakOps>().fma_peak_gflops(f64, seconds);
}

}  // namespace nnfast

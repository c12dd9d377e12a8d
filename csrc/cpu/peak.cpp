// Dispatch of the per-ISA FMA peak probe (cpu/peak_isa.cpp).
#include "nnfast/parallel.h"

#include "core/cpu_features.h"

namespace nnfast {
namespace isa_generic { double fma_peak_gflops(bool f64, double seconds); }
#ifdef NNFAST_HAVE_X86_ISA
namespace isa_avx2 { double fma_peak_gflops(bool f64, double seconds); }
namespace isa_avx512 { double fma_peak_gflops(bool f64, double seconds); }
#endif

double fma_peak_gflops(bool f64, double seconds) {
#ifdef NNFAST_HAVE_X86_ISA
  switch (active_isa()) {
    case Isa::AVX512: return isa_avx512::fma_peak_gflops(f64, seconds);
    case Isa::AVX2: return isa_avx2::fma_peak_gflops(f64, seconds);
    default: break;
  }
#endif
  return isa_generic::fma_peak_gflops(f64, seconds);
}

}  // namespace nnfast

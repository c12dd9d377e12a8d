// Measured FMA peak of one core for the benchmarks' "% of peak" columns:
// 12 independent multiply-add chains of full vectors (more than FMA latency x
// FMA pipes on current x86 cores), so the loop is bound by FMA throughput.
// Compiled once per ISA; cpu/peak.cpp picks the one in use.
#include <chrono>

#include "core/simd.h"
#include "cpu/peak_internal.h"
#include "nnfast/common.h"

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {

namespace {
// The widest register of this ISA (zmm / ymm / xmm). simd::fma is the ISA's
// fused multiply-add instruction where it has one (a * b + c otherwise).
using VF = simd::Native<float>;
using VD = simd::Native<double>;

// Runs `iters` x 12 vector FMAs; returns a value that depends on all of them so
// nothing is optimised away.
template <class R, class T>
__attribute__((noinline)) T fma_chains(long iters, T a, T b) {
  using simd::fma;
  const R va = simd::splat<R>(a), vb = simd::splat<R>(b);
  R c0 = R{}, c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  R c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (long it = 0; it < iters; ++it) {
    c0 = fma(va, vb, c0), c1 = fma(va, vb, c1), c2 = fma(va, vb, c2), c3 = fma(va, vb, c3);
    c4 = fma(va, vb, c4), c5 = fma(va, vb, c5), c6 = fma(va, vb, c6), c7 = fma(va, vb, c7);
    c8 = fma(va, vb, c8), c9 = fma(va, vb, c9), c10 = fma(va, vb, c10), c11 = fma(va, vb, c11);
    // Named registers, and an empty asm so the chains are neither merged nor spilled.
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), "+x"(c6), "+x"(c7),
                     "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  R s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
  T out[sizeof(R) / sizeof(T)];
  __builtin_memcpy(out, &s, sizeof(R));
  return out[0];
}

template <class R, class T>
double measure(double seconds) {
  constexpr double flops_per_iter = 12.0 * 2.0 * (sizeof(R) / sizeof(T));
  long iters = 1 << 16;
  double best = 0;
  volatile T sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + fma_chains<R, T>(iters, T(0.999999), T(1e-7));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0) best = best > flops_per_iter * iters / dt ? best : flops_per_iter * iters / dt;
    if (dt < 2e-3) iters *= 2;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) break;
  }
  return best * 1e-9;
}
double fma_peak_gflops(bool f64, double seconds) {
  return f64 ? measure<VD, double>(seconds) : measure<VF, float>(seconds);
}

}  // namespace

NNFAST_ISA_TABLE(PeakOps, PeakOps{&fma_peak_gflops})

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

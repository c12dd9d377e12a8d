#pragma once
namespace nnfast {
// Threads used by CPU kernels. Honours NNFAST_NUM_THREADS, then OMP_NUM_THREADS.
int get_num_threads();
void set_num_threads(int n);
bool openmp_enabled();
// Name of the SIMD level picked at run time ("avx512", "avx2", "generic").
const char* cpu_isa();
// Force a level (for tests); returns false if the CPU or the build lacks it.
bool set_cpu_isa(const char* name);
// Measured single-core FMA throughput in GFLOP/s with the SIMD level in use
// (best of repeated runs for about `seconds`), for "% of peak" figures.
double fma_peak_gflops(bool f64 = false, double seconds = 0.2);
}  // namespace nnfast

// Timing helper for C++-level iteration on the GEMM kernels.
//   bench_gemm_cpp M N K [layout=NN|NT|TN|TT] [threads] [reps] [f32|f64]
// Prints the best and median GFLOP/s over reps after one warm-up call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "nnfast/gemm.h"
#include "nnfast/parallel.h"

template <typename T>
static void bench(long M, long N, long K, const std::string& lay, int reps) {
  std::vector<T> A(M * K), B(K * N), C(M * N);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& x : A) x = d(rng);
  for (auto& x : B) x = d(rng);
  bool ta = lay[0] == 'T', tb = lay[1] == 'T';
  long rs_a = ta ? 1 : K, cs_a = ta ? M : 1, rs_b = tb ? 1 : N, cs_b = tb ? K : 1;
  std::vector<double> t;
  for (int r = 0; r <= reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    nnfast::gemm<T>(M, N, K, T(1), A.data(), rs_a, cs_a, B.data(), rs_b, cs_b, T(0), C.data(), N, 1);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r) t.push_back(s);
  }
  std::sort(t.begin(), t.end());
  double f = 2.0 * M * N * K * 1e-9;
  std::printf("%s %ldx%ldx%ld %s threads=%d isa=%s: best %.1f median %.1f GFLOP/s\n", sizeof(T) == 4 ? "f32" : "f64",
              M, N, K, lay.c_str(), nnfast::get_num_threads(), nnfast::cpu_isa(), f / t.front(), f / t[t.size() / 2]);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s M N K [NN|NT|TN|TT] [threads] [reps] [f32|f64]\n", argv[0]);
    return 2;
  }
  long M = atol(argv[1]), N = atol(argv[2]), K = atol(argv[3]);
  std::string lay = argc > 4 ? argv[4] : "NN";
  if (argc > 5) nnfast::set_num_threads(atoi(argv[5]));
  int reps = argc > 6 ? atoi(argv[6]) : 10;
  std::string dt = argc > 7 ? argv[7] : "f32";
  if (dt == "f64") bench<double>(M, N, K, lay, reps);
  else bench<float>(M, N, K, lay, reps);
}

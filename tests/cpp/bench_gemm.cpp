// Timing helper for C++-level iteration on the GEMM kernels.
//   bench_gemm_cpp M N K [layout=NN|NT|TN|TT] [threads] [reps] [f32|f64]
// Prints the best and median GFLOP/s over reps after one warm-up call, from wall
// time and from process CPU time / threads ("cpu"): the latter stays meaningful
// on a loaded machine, where wall time includes time spent descheduled.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <time.h>

#include "nnfast/gemm.h"
#include "nnfast/parallel.h"
#include "cpu/gemm_internal.h"

template <typename T>
static void bench(long M, long N, long K, const std::string& lay, int reps) {
  std::vector<T> A(M * K), B(K * N), C(M * N);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& x : A) x = d(rng);
  for (auto& x : B) x = d(rng);
  bool ta = lay[0] == 'T', tb = lay[1] == 'T';
  long rs_a = ta ? 1 : K, cs_a = ta ? M : 1, rs_b = tb ? 1 : N, cs_b = tb ? K : 1;
  // BENCH_DIRECT_M=a,b,... alternates settings call by call (A/B under the same noise).
  std::vector<long> settings{-1};
  if (const char* dm = std::getenv("BENCH_DIRECT_M")) {
    settings.clear();
    for (std::string v = dm; !v.empty();) {
      size_t p = v.find(',');
      settings.push_back(atol(v.substr(0, p).c_str()));
      v = p == std::string::npos ? "" : v.substr(p + 1);
    }
  }
  std::vector<std::vector<double>> t(settings.size()), tc(settings.size());
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  };
  for (int r = 0; r <= reps; ++r)
    for (size_t s_ = 0; s_ < settings.size(); ++s_) {
      nnfast::cpu::gemm_set_direct_m(settings[s_]);
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_now();
      nnfast::cpu::gemm<T>(M, N, K, T(1), A.data(), rs_a, cs_a, B.data(), rs_b, cs_b, T(0), C.data(), N, 1);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double c = (cpu_now() - c0) / nnfast::get_num_threads();
      if (r) {
        t[s_].push_back(s);
        tc[s_].push_back(c);
      }
    }
  double f = 2.0 * M * N * K * 1e-9;
  for (size_t s_ = 0; s_ < settings.size(); ++s_) {
    auto& ts = t[s_];
    auto& tcs = tc[s_];
    std::sort(ts.begin(), ts.end());
    std::sort(tcs.begin(), tcs.end());
    std::printf("%s %ldx%ldx%ld %s threads=%d isa=%s direct_m=%ld: best %.1f median %.1f GFLOP/s (cpu: best %.1f median %.1f)\n",
                sizeof(T) == 4 ? "f32" : "f64", M, N, K, lay.c_str(), nnfast::get_num_threads(), nnfast::cpu_isa(),
                settings[s_], f / ts.front(), f / ts[ts.size() / 2], f / tcs.front(), f / tcs[tcs.size() / 2]);
  }
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

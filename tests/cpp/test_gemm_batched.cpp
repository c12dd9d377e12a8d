// Strided batched GEMM (nnfast::cpu::gemm_batched) against a float64 reference and
// against one nnfast::cpu::gemm per product: shapes with 1 and odd sizes, the four
// transpose layouts, broadcast operands (batch stride 0), alpha / beta (beta = 0 over
// NaN), K = 0, float and double, and 1 / 2 / 3 threads. Results must be bit-identical
// for every thread count (the determinism promise of nnfast/gemm.h), small batches of
// big products (threads inside each GEMM) and big batches of small ones alike.
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "nnfast/gemm.h"
#include "nnfast/parallel.h"

using nnfast::index_t;

static int g_fail = 0, g_checks = 0;

struct Case {
  index_t batch, M, N, K;
  bool ta, tb, bcast_a, bcast_b;
  double alpha, beta;
};

template <typename T>
static std::vector<T> run(const Case& c, const std::vector<T>& A, const std::vector<T>& B, const std::vector<T>& C0,
                          int threads) {
  nnfast::set_num_threads(threads);
  std::vector<T> C = C0;
  // op(A)[i, k]: row-major M x K, or the transpose of a row-major K x M.
  const index_t rs_a = c.ta ? 1 : c.K, cs_a = c.ta ? c.M : 1;
  const index_t rs_b = c.tb ? 1 : c.N, cs_b = c.tb ? c.K : 1;
  nnfast::cpu::gemm_batched<T>(c.batch, c.M, c.N, c.K, T(c.alpha), A.data(), c.bcast_a ? 0 : c.M * c.K, rs_a,
                               cs_a, B.data(), c.bcast_b ? 0 : c.K * c.N, rs_b, cs_b, T(c.beta), C.data(),
                               c.M * c.N + 1, c.N, 1);
  return C;
}

template <typename T>
static void check_case(const Case& c, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  auto filled = [&](index_t n) {
    std::vector<T> v(static_cast<size_t>(n));
    for (auto& x : v) x = T(d(rng));
    return v;
  };
  const std::vector<T> A = filled((c.bcast_a ? 1 : c.batch) * c.M * c.K);
  const std::vector<T> B = filled((c.bcast_b ? 1 : c.batch) * c.K * c.N);
  std::vector<T> C0 = filled(c.batch * (c.M * c.N + 1));
  if (c.beta == 0)
    for (auto& x : C0) x = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> C1 = run(c, A, B, C0, 1);
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-11;
  for (index_t b = 0; b < c.batch; ++b) {
    const T* a = A.data() + (c.bcast_a ? 0 : b * c.M * c.K);
    const T* bb = B.data() + (c.bcast_b ? 0 : b * c.K * c.N);
    for (index_t i = 0; i < c.M; ++i)
      for (index_t j = 0; j < c.N; ++j) {
        double acc = 0;
        for (index_t k = 0; k < c.K; ++k)
          acc += double(c.ta ? a[k * c.M + i] : a[i * c.K + k]) * double(c.tb ? bb[j * c.K + k] : bb[k * c.N + j]);
        const size_t at = static_cast<size_t>(b * (c.M * c.N + 1) + i * c.N + j);
        double want = c.alpha * acc + (c.beta != 0 ? c.beta * double(C0[at]) : 0.0);
        ++g_checks;
        if (!(std::abs(double(C1[at]) - want) <= tol * (1 + std::abs(want)))) {
          if (g_fail++ < 10)
            std::fprintf(stderr, "FAIL batch=%ld M=%ld N=%ld K=%ld ta=%d tb=%d at (%ld,%ld,%ld): %g vs %g\n",
                         long(c.batch), long(c.M), long(c.N), long(c.K), c.ta, c.tb, long(b), long(i), long(j),
                         double(C1[at]), want);
        }
      }
    // The gap element between products is never written.
    const size_t gap = static_cast<size_t>(b * (c.M * c.N + 1) + c.M * c.N);
    ++g_checks;
    if (!(C1[gap] == C0[gap] || (std::isnan(double(C1[gap])) && std::isnan(double(C0[gap]))))) {
      ++g_fail;
      std::fprintf(stderr, "FAIL: gap element of product %ld written\n", long(b));
    }
  }
  for (int threads : {2, 3}) {
    const std::vector<T> Ct = run(c, A, B, C0, threads);
    ++g_checks;
    bool same = true;
    for (size_t i = 0; i < Ct.size(); ++i)
      same = same && (Ct[i] == C1[i] || (std::isnan(double(Ct[i])) && std::isnan(double(C1[i]))));
    if (!same) {
      ++g_fail;
      std::fprintf(stderr, "FAIL batch=%ld M=%ld N=%ld K=%ld: %d threads differ bitwise from 1\n", long(c.batch),
                   long(c.M), long(c.N), long(c.K), threads);
    }
  }
}

int main() {
  std::mt19937 rng(7);
  const Case cases[] = {
      {1, 1, 1, 1, false, false, false, false, 1.0, 0.0},
      {7, 5, 3, 9, false, false, false, false, 1.0, 0.0},
      {7, 5, 3, 9, true, false, false, false, 1.0, 0.0},
      {7, 5, 3, 9, false, true, false, false, 0.5, 1.0},
      {7, 5, 3, 9, true, true, false, true, 1.0, 0.0},
      {13, 17, 11, 1, false, false, true, false, 2.0, -1.0},
      {3, 4, 6, 0, false, false, false, false, 1.0, 0.5},
      {5, 4, 6, 3, false, false, false, false, 0.0, 0.0},
      {64, 33, 31, 29, false, true, false, false, 1.0, 0.0},
      {2, 150, 130, 140, false, false, false, false, 1.0, 0.0},  // big: threads inside each GEMM
      {3, 131, 129, 67, true, true, true, false, 1.0, 1.0},
  };
  for (const Case& c : cases) {
    check_case<float>(c, rng);
    check_case<double>(c, rng);
  }
  std::printf("gemm_batched: %d checks, %d failures\n", g_checks, g_fail);
  return g_fail ? 1 : 0;
}

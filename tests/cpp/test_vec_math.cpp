// Accuracy of the loss exp / log / log1p in core/vec_math.h (vm::exp_full,
// vm::log_full, vm::log1p_full), float32 and float64, against long double libm:
// strided scans of every float32 bit pattern in range, a dense random sample of
// float64, and the special values. Prints the max error in ulp of the result's
// type and fails above the documented bounds.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "core/vec_math.h"

namespace vm = nnfast::isa_baseline::vm;
using VF = nnfast::isa_baseline::simd::Vec<float, 4>;
using VD = nnfast::isa_baseline::simd::Vec<double, 2>;

template <typename T>
long double ulp_err(T got, long double ref) {
  if (std::isnan(ref)) return std::isnan(got) ? 0 : 1e9;
  if (std::isinf(ref) || std::fabs(ref) > std::numeric_limits<T>::max()) {
    if (std::isinf(got) && (got > 0) == (ref > 0)) return 0;
    // ref just past max: compare against max
    ref = ref > 0 ? std::numeric_limits<T>::max() : -std::numeric_limits<T>::max();
  }
  if (std::isnan(got) || std::isinf(got)) return 1e9;
  int e;
  std::frexp(ref == 0 ? static_cast<long double>(std::numeric_limits<T>::min()) : ref, &e);
  const int dig = std::numeric_limits<T>::digits;
  const int emin = std::numeric_limits<T>::min_exponent;
  if (e < emin) e = emin;  // subnormal results: ulp is the subnormal spacing
  const long double ulp = std::ldexp(1.0L, e - dig);
  return std::fabs(static_cast<long double>(got) - ref) / ulp;
}

struct Worst {
  long double err = 0;
  double at = 0;
  void add(long double e, double x) {
    if (e > err) err = e, at = x;
  }
};

template <typename T, typename V, typename F, typename R>
void check(Worst& w, const T* xs, int n, F f, R ref) {
  constexpr int W = sizeof(V) / sizeof(T);
  for (int i = 0; i + W <= n; i += W) {
    V v;
    std::memcpy(&v, xs + i, sizeof(V));
    const V r = f(v);
    for (int k = 0; k < W; ++k) w.add(ulp_err<T>(r[k], ref(static_cast<long double>(xs[i + k]))), xs[i + k]);
  }
}

int main() {
  int fails = 0;
  auto report = [&](const char* name, const Worst& w, double bound) {
    const bool ok = w.err <= bound;
    std::printf("%-14s max %.3f ulp (at %.17g)  bound %.1f  %s\n", name, static_cast<double>(w.err), w.at, bound,
                ok ? "ok" : "FAIL");
    fails += !ok;
  };
  auto ex = [](long double x) { return std::exp(x); };
  auto lg = [](long double x) { return std::log(x); };
  auto l1p = [](long double x) { return std::log1p(x); };
  auto fexp = [](auto v) { return vm::exp_full(v); };
  auto flog = [](auto v) { return vm::log_full(v); };
  auto fl1p = [](auto v) { return vm::log1p_full(v); };

  // float32: every 127th bit pattern, both signs, plus specials.
  {
    std::vector<float> xs;
    for (std::uint64_t b = 0; b < 0x100000000ull; b += 127) {
      const std::uint32_t u = static_cast<std::uint32_t>(b);
      float x;
      std::memcpy(&x, &u, 4);
      xs.push_back(x);
    }
    const float sp[] = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                        std::numeric_limits<float>::max(), 88.72f, 88.73f, -103.9f, -87.3f, 1e-30f, -0.999999f};
    for (float s : sp) xs.push_back(s);
    while (xs.size() % 4) xs.push_back(1.0f);
    const int n = static_cast<int>(xs.size());
    Worst we, wl, w1;
    check<float, VF>(we, xs.data(), n, fexp, ex);
    check<float, VF>(wl, xs.data(), n, flog, lg);
    check<float, VF>(w1, xs.data(), n, fl1p, l1p);
    report("f32 exp", we, 1.0);
    report("f32 log", wl, 1.0);
    report("f32 log1p", w1, 1.5);
  }
  // float64: random bit patterns (all exponents) and random values in the busy ranges.
  {
    std::mt19937_64 rng(12345);
    std::vector<double> xs;
    for (int i = 0; i < 1000000; ++i) {
      const std::uint64_t u = rng();
      double x;
      std::memcpy(&x, &u, 8);
      xs.push_back(x);
    }
    std::uniform_real_distribution<double> ue(-750.0, 712.0), us(-2.0, 2.0), ul(0.0, 4.0);
    for (int i = 0; i < 1000000; ++i) xs.push_back(ue(rng)), xs.push_back(us(rng)), xs.push_back(ul(rng));
    const double sp[] = {0.0, -0.0, 1.0, -1.0, std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(),
                         std::numeric_limits<double>::max(), 709.78, 709.79, -745.1, -708.4, 1e-300, -0.9999999};
    for (double s : sp) xs.push_back(s);
    while (xs.size() % 2) xs.push_back(1.0);
    const int n = static_cast<int>(xs.size());
    Worst we, wl, w1;
    check<double, VD>(we, xs.data(), n, fexp, ex);
    check<double, VD>(wl, xs.data(), n, flog, lg);
    check<double, VD>(w1, xs.data(), n, fl1p, l1p);
    report("f64 exp", we, 1.0);
    report("f64 log", wl, 1.0);
    report("f64 log1p", w1, 1.5);
  }
  return fails ? 1 : 0;
}

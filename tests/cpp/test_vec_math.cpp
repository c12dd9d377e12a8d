// Accuracy of the loss exp / log / log1p in core/vec_math.h (vm::exp_full,
// vm::log_full, vm::log1p_full), float32 and float64, against long double libm:
// strided scans of every float32 bit pattern in range, a dense random sample of
// float64, and the special values. Prints the max error in ulp of the result's
// type and fails above the documented bounds. vm::exp_nonpos (x <= 0): equal to
// exp_full bit for bit where the result is normal, +0 below, never subnormal.
// vm::tanh (float32): every float in [0.5, 10] (both of its branches, the edge at
// 0.625 and the clamp) and every 61st pattern elsewhere, <= 2 ulp; the bound holds
// with NNFAST_TANH_FAST=0 (the old big branch) too, which ctest runs as well.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

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

// exp_nonpos on xs (all <= 0 or NaN) against exp_full: bit-equal for x >= lo,
// +0 (bit pattern 0) below lo, never a subnormal; returns the mismatches.
template <typename T, typename V>
long check_nonpos(const std::vector<T>& xs, T lo, const char* name) {
  constexpr int W = sizeof(V) / sizeof(T);
  long bad = 0, n_zero = 0, n_eq = 0;
  for (std::size_t i = 0; i + W <= xs.size(); i += W) {
    V v;
    std::memcpy(&v, xs.data() + i, sizeof(V));
    const V a = vm::exp_nonpos(v), b = vm::exp_full(v);
    for (int k = 0; k < W; ++k) {
      const T x = xs[i + k], got = a[k], full = b[k];
      bool ok;
      if (std::isnan(x)) {
        ok = std::isnan(got);
      } else if (x < lo) {
        ok = got == T(0) && !std::signbit(got), n_zero += ok;
      } else {
        ok = std::memcmp(&got, &full, sizeof(T)) == 0 && got >= std::numeric_limits<T>::min(), n_eq += ok;
      }
      if (!ok && bad++ < 5)
        std::printf("  %s(%.17g) = %.17g (exp_full %.17g)\n", name, static_cast<double>(x), static_cast<double>(got),
                    static_cast<double>(full));
    }
  }
  std::printf("%-14s %ld equal to exp_full, %ld flushed to +0  %s\n", name, n_eq, n_zero, bad ? "FAIL" : "ok");
  return bad;
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

    // exp_nonpos: the patterns <= 0 above, every float in 2^17 ulps either side
    // of lo (ln FLT_MIN) and of -126.5 ln2 (where n becomes -127), specials.
    const float lo = -87.3365402f;  // the float just above ln(FLT_MIN)
    std::vector<float> neg;
    for (float x : xs)
      if (!(x > 0.0f)) neg.push_back(x);
    for (float c : {lo, -87.68f}) {
      std::uint32_t u;
      std::memcpy(&u, &c, 4);
      for (std::uint32_t k = u - (1u << 17); k <= u + (1u << 17); ++k) {
        float x;
        std::memcpy(&x, &k, 4);
        neg.push_back(x);
      }
    }
    for (float x : {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::denorm_min(), std::nextafter(lo, -1.0f), lo, -88.0f, -104.0f})
      neg.push_back(x);
    while (neg.size() % 4) neg.push_back(-1.0f);
    fails += check_nonpos<float, VF>(neg, lo, "f32 exp_nonpos") != 0;
    const VF z = vm::exp_nonpos(VF{0.0f, -0.0f, -std::numeric_limits<float>::infinity(), lo});
    const bool ok = z[0] == 1.0f && z[1] == 1.0f && z[2] == 0.0f && z[3] >= std::numeric_limits<float>::min();
    std::printf("f32 exp_nonpos 0 -> %g, -0 -> %g, -inf -> %g, lo -> %g  %s\n", z[0], z[1], z[2], z[3], ok ? "ok" : "FAIL");
    fails += !ok;
  }
  // float32 tanh: exhaustive on [0.5, 10], strided elsewhere, specials.
  {
    std::vector<float> xs;
    std::uint32_t lo, hi;
    const float a = 0.5f, b = 10.0f;
    std::memcpy(&lo, &a, 4), std::memcpy(&hi, &b, 4);
    for (std::uint32_t u = lo; u <= hi; ++u) {
      float x;
      std::memcpy(&x, &u, 4);
      xs.push_back(x), xs.push_back(-x);
    }
    for (std::uint64_t u = 0; u < 0x100000000ull; u += 61) {
      const std::uint32_t v = static_cast<std::uint32_t>(u);
      float x;
      std::memcpy(&x, &v, 4);
      if (std::isfinite(x) && std::fabs(x) > 1e-30f) xs.push_back(x);
    }
    while (xs.size() % 4) xs.push_back(1.0f);
    Worst wt;
    check<float, VF>(wt, xs.data(), static_cast<int>(xs.size()), [](auto v) { return vm::tanh(v); },
                     [](long double x) { return std::tanh(x); });
    report(vm::kTanhFast ? "f32 tanh" : "f32 tanh (old)", wt, 2.0);
    const float inf = std::numeric_limits<float>::infinity();
    const VF s = vm::tanh(VF{inf, -inf, std::numeric_limits<float>::quiet_NaN(), -0.0f});
    const bool ok = s[0] == 1.0f && s[1] == -1.0f && std::isnan(s[2]) && s[3] == 0.0f && std::signbit(s[3]);
    std::printf("f32 tanh inf -> %g, -inf -> %g, NaN -> %g, -0 -> %g  %s\n", s[0], s[1], s[2], s[3], ok ? "ok" : "FAIL");
    fails += !ok;
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

    // exp_nonpos: the samples <= 0 above, 2M more on [-750, 0], every double in
    // 4096 ulps either side of lo and of -709 (where n = -1023), specials.
    const double lo = -708.3964185322641;  // the double just above ln(DBL_MIN)
    std::vector<double> neg;
    for (double x : xs)
      if (!(x > 0.0)) neg.push_back(x);
    std::uniform_real_distribution<double> un(-750.0, 0.0);
    for (int i = 0; i < 2000000; ++i) neg.push_back(un(rng));
    for (double c : {lo, -709.0}) {
      double x = c;
      for (int i = 0; i < 4096; ++i) x = std::nextafter(x, 0.0);
      for (int i = 0; i < 8192; ++i, x = std::nextafter(x, -1e300)) neg.push_back(x);
    }
    for (double x : {-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                     -std::numeric_limits<double>::denorm_min(), std::nextafter(lo, -1.0), lo, -745.2, -746.0})
      neg.push_back(x);
    while (neg.size() % 2) neg.push_back(-1.0);
    fails += check_nonpos<double, VD>(neg, lo, "f64 exp_nonpos") != 0;
    const VD z = vm::exp_nonpos(VD{-0.0, -std::numeric_limits<double>::infinity()});
    const VD zl = vm::exp_nonpos(VD{0.0, lo});
    const bool ok = z[0] == 1.0 && z[1] == 0.0 && zl[0] == 1.0 && zl[1] >= std::numeric_limits<double>::min();
    std::printf("f64 exp_nonpos 0 -> %g, -0 -> %g, -inf -> %g, lo -> %g  %s\n", zl[0], z[0], z[1], zl[1], ok ? "ok" : "FAIL");
    fails += !ok;
  }
  return fails ? 1 : 0;
}

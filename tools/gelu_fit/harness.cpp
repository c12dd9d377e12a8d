// Exhaustive float32 error scan of nnfast's GELU (erf) forward, vm::ActMath<GELU>, against a
// double-precision erfc reference, over |x| in [2^-10, 15], both signs. Usage: ./harness [stride]
// (stride 1 = every float). Build line: README.md.
#include "core/vec_math.h"
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
using namespace nnfast::NNFAST_VM_NS;
using V = vm::Vec<float, 16>;

static double reference(float xf) {
  const double x = xf, t = 0.5 * std::erfc(std::fabs(x) * 0.70710678118654752440);
  return x * (x < 0 ? t : 1 - t);
}

int main(int argc, char** argv) {
  const uint32_t stride = argc > 1 ? static_cast<uint32_t>(atoi(argv[1])) : 1u;
  double worst = 0, worst_x = 0, sum = 0;
  long count = 0;
  const uint32_t lo = 0x3a800000u, hi = 0x41700000u;  // 2^-10, 15
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t b = lo; b < hi; b += 16u * stride) {
      V x;
      for (uint32_t i = 0; i < 16; ++i) {
        const uint32_t bits = (b + i * stride) | (sign << 31);
        std::memcpy(&x[i], &bits, 4);
      }
      const V y = vm::ActMath<nnfast::Act::GELU>::fwd(x, 0.f, 0.f);
      for (int i = 0; i < 16; ++i) {
        const double r = reference(x[i]);
        if (!(std::fabs(r) > 1e-30)) continue;
        const float ar = static_cast<float>(std::fabs(r));
        const double ulp = std::nextafter(ar, INFINITY) - ar;
        const double e = std::fabs(static_cast<double>(y[i]) - r) / ulp;
        sum += e;
        ++count;
        if (e > worst) worst = e, worst_x = x[i];
      }
    }
  }
  std::printf("GELU (erf) float32: max %.3f ulp at x = %.9g, mean %.4f ulp over %ld values\n", worst, worst_x,
              sum / count, count);
}

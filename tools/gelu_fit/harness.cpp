#include "core/vec_math.h"
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include "tab.h"
using namespace nnfast::NNFAST_VM_NS;
using V = vm::Vec<float,16>;
using I = vm::mask_t<V>;
using vm::splat; using vm::fmadd;
static inline V lut(const float* t, I idx) { return (V)_mm512_permutexvar_ps((__m512i)idx, _mm512_loadu_ps(t)); }
static inline void tail_new(V x, V& t) {
  V u = vm::vabs(x);
  u = u > 14.5f ? splat<V>(14.5f) : u;
  // -u^2/2 = hi + lo exactly (u/2 exact, FMA error-free product)
  const V h = u * -0.5f;
  const V hi = h * u;
  const V lo2 = fmadd(h, u, -hi);
  const auto p = vm::exp_parts_f32<true, false, false>(hi, lo2);
  const I b = (I)(u + 1.0f);
  const I idx = b >> 21;
  const V lo = (V)(b & (int)0xffe00000) - 1.0f;
  const V w = u - lo;
  constexpr int D = sizeof(kNormTailM) / sizeof(kNormTailM[0]) - 1;
  V m = lut(kNormTailM[D], idx);
  for (int k = D - 1; k >= 0; --k) m = fmadd(m, w, lut(kNormTailM[k], idx));
  t = vm::scale2n(fmadd(p.q, m, m), p);
}
static inline V gelu_new(V x) { V t; tail_new(x, t); return x * (x < 0.0f ? t : 1.0f - t); }
static inline V gelu_old(V x) { return vm::ActMath<nnfast::Act::GELU>::fwd(x, 0.f, 0.f); }
static double ref(float xf) { double x = xf; double t = 0.5*std::erfc(std::fabs(x)*0.70710678118654752440); return x*(x<0?t:1-t); }
int main(int argc, char** argv) {
  int stride = argc > 1 ? atoi(argv[1]) : 1;
  int which = argc > 2 ? atoi(argv[2]) : 1;
  double worst = 0, wx = 0; double sum=0; long cnt=0;
  uint32_t lo = 0x3a800000u, hi = 0x41700000u;  // [2^-10, 15]
  for (int sign = 0; sign < 2; ++sign) {
    for (uint32_t b = lo; b < hi; b += 16u * stride) {
      V x; for (int i = 0; i < 16; ++i) { uint32_t bb = (b + i * stride) | (sign ? 0x80000000u : 0); std::memcpy(&x[i], &bb, 4); }
      V y = which ? gelu_new(x) : gelu_old(x);
      for (int i = 0; i < 16; ++i) {
        double r = ref(x[i]);
        if (!(std::fabs(r) > 1e-30)) continue;
        float ar = (float)std::fabs(r);
        double sp = std::nextafter(ar, INFINITY) - ar;
        double e = std::fabs((double)y[i] - r) / sp;
        sum += e; ++cnt;
        if (e > worst) { worst = e; wx = x[i]; }
      }
    }
  }
  printf("%s max %.3f ulp at x=%.9g mean %.4f n=%ld\n", which ? "new" : "old", worst, wx, sum / cnt, cnt);
}

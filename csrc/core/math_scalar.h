// Scalar reference forms of the pointwise math (exp, log, expm1, log1p, tanh, sqrt, the
// normal tail / erf, sigmoid and the activations built on them), for one
// element. Compiles as plain C++ and, under nvcc, as __host__ __device__
// (NNFAST_HD), so CUDA kernels and host reference code share one definition.
// Only the C math functions (expf, erfcf, ...: available in device code) and
// arithmetic are used: no std:: calls.
//
// The CPU SIMD kernels use the vectorised set in core/vec_math.h (float32
// polynomials, <= 1.5 ulp for exp / expm1 / tanh / log1p); these forms are the
// libm-accurate reference they are tested against.
#pragma once
#include <math.h>

#include "core/act_formulas.h"
#include "core/host_device.h"

namespace nnfast {
namespace scalar {

NNFAST_HD inline float exp(float x) { return ::expf(x); }
NNFAST_HD inline double exp(double x) { return ::exp(x); }
NNFAST_HD inline float log(float x) { return ::logf(x); }
NNFAST_HD inline double log(double x) { return ::log(x); }
NNFAST_HD inline float expm1(float x) { return ::expm1f(x); }
NNFAST_HD inline double expm1(double x) { return ::expm1(x); }
NNFAST_HD inline float log1p(float x) { return ::log1pf(x); }
NNFAST_HD inline double log1p(double x) { return ::log1p(x); }
NNFAST_HD inline float tanh(float x) { return ::tanhf(x); }
NNFAST_HD inline double tanh(double x) { return ::tanh(x); }
NNFAST_HD inline float erfc(float x) { return ::erfcf(x); }
NNFAST_HD inline double erfc(double x) { return ::erfc(x); }
NNFAST_HD inline float erf(float x) { return ::erff(x); }
NNFAST_HD inline double erf(double x) { return ::erf(x); }
NNFAST_HD inline float fabs(float x) { return ::fabsf(x); }
NNFAST_HD inline double fabs(double x) { return ::fabs(x); }
NNFAST_HD inline float sqrt(float x) { return ::sqrtf(x); }
NNFAST_HD inline double sqrt(double x) { return ::sqrt(x); }

// sigmoid(x) without overflow: exp of -|x| only.
template <typename T>
NNFAST_HD inline T sigmoid(T x) {
  const T e = scalar::exp(-scalar::fabs(x));
  const T r = T(1) / (e + T(1));
  return x >= T(0) ? r : e * r;
}

// sigmoid(x) and 1 - sigmoid(x) without cancellation (vm::sigmoid2); Sigmoid2 is
// it as a function object for the formulas of core/act_formulas.h.
template <typename T>
NNFAST_HD inline void sigmoid2(T x, T& s, T& sc) {
  const T e = scalar::exp(-scalar::fabs(x));
  const T r = T(1) / (e + T(1));
  const T er = e * r;
  s = x >= T(0) ? r : er;
  sc = x >= T(0) ? er : r;
}
struct Sigmoid2 {
  template <typename T>
  NNFAST_HD_INLINE void operator()(T x, T& s, T& sc) const {
    sigmoid2(x, s, sc);
  }
};

// Standard normal tail Phi(-|x|) = erfc(|x| / sqrt 2) / 2.
template <typename T>
NNFAST_HD inline T normal_tail(T x) {
  return T(0.5) * scalar::erfc(scalar::fabs(x) * T(0.70710678118654752440));
}

// Exact GELU x Phi(x), and its derivative Phi(x) + x phi(x), from the tail t = Phi(-|x|)
// (a caller with a more accurate tail than normal_tail passes its own).
template <typename T>
NNFAST_HD inline T gelu_from_tail(T x, T t) {
  return x * (x < T(0) ? t : T(1) - t);
}
template <typename T>
NNFAST_HD inline T gelu_grad_from_tail(T x, T t) {
  return (x < T(0) ? t : T(1) - t) + x * scalar::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
}
template <typename T>
NNFAST_HD inline T gelu(T x) {
  return gelu_from_tail(x, normal_tail(x));
}
template <typename T>
NNFAST_HD inline T gelu_grad(T x) {
  return gelu_grad_from_tail(x, normal_tail(x));
}

// tanh-approximated GELU as x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
template <typename T>
NNFAST_HD inline T gelu_tanh(T x) {
  const T u = (x + x * x * x * T(0.044715)) * T(0.79788456080286535588);
  return x * sigmoid(u + u);
}

template <typename T>
NNFAST_HD inline T gelu_tanh_grad(T x) {
  return formula::gelu_tanh_grad<T>(x, Sigmoid2{});
}

template <typename T>
NNFAST_HD inline T silu(T x) {
  return x * sigmoid(x);
}
template <typename T>
NNFAST_HD inline T silu_grad(T x) {
  return formula::silu_grad<T>(x, Sigmoid2{});
}

// softplus with beta and threshold (PyTorch semantics).
template <typename T>
NNFAST_HD inline T softplus(T x, T beta, T threshold) {
  const T bx = x * beta;
  if (bx > threshold) return x;
  return scalar::log1p(scalar::exp(-scalar::fabs(bx))) / beta + (bx > T(0) ? x : T(0));
}

template <typename T>
NNFAST_HD inline T elu(T x, T alpha) {
  return x > T(0) ? x : alpha * scalar::expm1(x);
}

}  // namespace scalar
}  // namespace nnfast

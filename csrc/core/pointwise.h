// Scalar definitions of the pointwise activations and their derivatives.
// Shared by the standalone activation kernels and the GEMM epilogues so both
// compute bit-identical results.
#pragma once
#include <cmath>
#include "nnfast/common.h"

namespace nnfast {

template <typename T>
inline T sigmoid_scalar(T x) {
  // Split on sign so exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <typename T>
inline T act_forward(Act act, T x, const ActParams& p) {
  switch (act) {
    case Act::Identity: return x;
    case Act::ReLU: return x > T(0) ? x : T(0);
    case Act::LeakyReLU: return x > T(0) ? x : x * T(p.a);
    case Act::ELU: return x > T(0) ? x : T(p.a) * std::expm1(x);
    case Act::Sigmoid: return sigmoid_scalar(x);
    case Act::Tanh: return std::tanh(x);
    case Act::GELU: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case Act::GELUTanh: {
      const T k = T(0.79788456080286535588);  // sqrt(2/pi)
      T u = k * (x + T(0.044715) * x * x * x);
      return T(0.5) * x * (T(1) + std::tanh(u));
    }
    case Act::SiLU: return x * sigmoid_scalar(x);
    case Act::Softplus: {
      T bx = T(p.a) * x;
      if (bx > T(p.b)) return x;
      return std::log1p(std::exp(-std::fabs(bx))) / T(p.a) + (bx > T(0) ? x : T(0));
    }
    case Act::Hardtanh: return x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x);
  }
  return x;
}

// d act / d x, given the input x and the output y (only one of them is
// meaningful when act_grad_from_output(act) says so: then x is ignored).
template <typename T>
inline T act_derivative(Act act, T x, T y, const ActParams& p) {
  switch (act) {
    case Act::Identity: return T(1);
    case Act::ReLU: return y > T(0) ? T(1) : T(0);
    case Act::LeakyReLU: return x > T(0) ? T(1) : T(p.a);
    case Act::ELU: return x > T(0) ? T(1) : T(p.a) * std::exp(x);
    case Act::Sigmoid: return y * (T(1) - y);
    case Act::Tanh: return T(1) - y * y;
    case Act::GELU: {
      const T inv_sqrt2pi = T(0.39894228040143267794);
      T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
      return cdf + x * inv_sqrt2pi * std::exp(T(-0.5) * x * x);
    }
    case Act::GELUTanh: {
      const T k = T(0.79788456080286535588);
      T x2 = x * x;
      T t = std::tanh(k * (x + T(0.044715) * x2 * x));
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3 * 0.044715) * x2);
    }
    case Act::SiLU: {
      T s = sigmoid_scalar(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Act::Softplus: {
      T bx = T(p.a) * x;
      if (bx > T(p.b)) return T(1);
      return sigmoid_scalar(bx);
    }
    case Act::Hardtanh: return (x > T(p.a) && x < T(p.b)) ? T(1) : T(0);
  }
  return T(1);
}

}  // namespace nnfast

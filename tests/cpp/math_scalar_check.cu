// Compile check: core/math_scalar.h builds as __host__ __device__ under nvcc
// (no GPU needed: `nvcc -c` only).
#include "core/math_scalar.h"

template <typename T>
__global__ void math_scalar_kernel(T* y, const T* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T v = x[i];
  namespace s = nnfast::scalar;
  y[i] = s::exp(v) + s::expm1(v) + s::log1p(s::fabs(v)) + s::tanh(v) + s::erf(v) + s::sigmoid(v) + s::gelu(v) +
         s::gelu_grad(v) + s::gelu_tanh(v) + s::silu(v) + s::softplus(v, T(1), T(20)) + s::elu(v, T(1));
}

template __global__ void math_scalar_kernel<float>(float*, const float*, int);
template __global__ void math_scalar_kernel<double>(double*, const double*, int);

// The same header on the host side of the same translation unit.
float math_scalar_host(float x) { return nnfast::scalar::gelu(x); }

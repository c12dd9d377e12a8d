// CUDA activations (nnfast::cuda): the same names, template parameters and argument
// order as nnfast::cpu in nnfast/activation.h, plus a trailing `cudaStream_t stream`
// (nnfast/cuda/common.h). Pointers are device pointers; launchers enqueue on `stream`
// and return without synchronising. Gradients: dx overwrites (=), dweight / dbeta
// accumulate (+=), reduced in a fixed order (deterministic for a given input).
// An Act code without a CUDA kernel throws std::invalid_argument naming it.
#pragma once
#include "nnfast/activation.h"
#include "nnfast/cuda/common.h"

namespace nnfast {
namespace cuda {
template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p, cudaStream_t stream = nullptr);
template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p,
                  cudaStream_t stream = nullptr);
// True when act_forward / act_backward have a kernel for `act` (every code of nnfast::Act today).
bool act_supported(Act act);

template <typename T>
void prelu_forward(T* y, const T* x, const T* weight, index_t N, index_t C, index_t S, cudaStream_t stream = nullptr);
template <typename T>
void prelu_backward(T* dx, T* dweight, const T* dy, const T* x, const T* weight, index_t N, index_t C, index_t S,
                    cudaStream_t stream = nullptr);

template <typename T>
void swish_forward(T* y, const T* x, index_t n, T beta, cudaStream_t stream = nullptr);
template <typename T>
void swish_backward(T* dx, T* dbeta, const T* dy, const T* x, index_t n, T beta, cudaStream_t stream = nullptr);

template <typename T>
void glu_forward(T* y, const T* x, index_t outer, index_t L, Act act, bool gate_first, cudaStream_t stream = nullptr);
template <typename T>
void glu_backward(T* dx, const T* dy, const T* x, index_t outer, index_t L, Act act, bool gate_first,
                  cudaStream_t stream = nullptr);

template <typename T>
void softmax_forward(T* y, const T* x, index_t outer, index_t D, index_t inner, bool log,
                     cudaStream_t stream = nullptr);
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, index_t outer, index_t D, index_t inner, bool log,
                      cudaStream_t stream = nullptr);

template <typename T>
void step_forward(T* y, const T* x, index_t n, bool sign, T threshold, cudaStream_t stream = nullptr);
}  // namespace cuda
}  // namespace nnfast

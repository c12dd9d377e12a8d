// CUDA convolution launchers (csrc/cuda/conv.cu): the same names, template parameters,
// arguments and semantics as nnfast::cpu in nnfast/conv.h, plus a trailing stream.
// Pointers are device pointers; dweight / dbias accumulate (+=), dx overwrites (=), null
// means "not wanted". The same chunked implicit GEMM as the CPU (im2col of a bounded chunk
// of column space, the CUDA GEMM per group), with gather-style col2im and per-channel
// block reductions: no atomics, deterministic. The launchers allocate a device workspace
// (cudaMalloc / cudaFree: cudaFree waits for the device).
#pragma once
#include "nnfast/conv.h"
#include "nnfast/cuda/common.h"

namespace nnfast {
namespace cuda {

template <typename T>
void conv2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s,
                    cudaStream_t stream = nullptr);

template <typename T>
void conv2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight, const Conv2dShape& s,
                     cudaStream_t stream = nullptr);

template <typename T>
void conv_transpose2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s,
                              cudaStream_t stream = nullptr);

template <typename T>
void conv_transpose2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight,
                               const Conv2dShape& s, cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

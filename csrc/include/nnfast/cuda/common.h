// Convention for the CUDA backend (nnfast::cuda), ahead of its kernels.
//
// Every CUDA launcher mirrors its CPU kernel: the same name, template parameters and
// argument order as in nnfast::cpu (the family headers, e.g. nnfast/norm.h), plus a
// `cudaStream_t stream = nullptr` as the LAST argument (defaulted, so one call site
// compiles against either namespace); pointers are device pointers. Declarations live
// in nnfast/cuda/<family>.h, kernels in csrc/cuda/<family>.cu (the CPU basenames). The
// launcher enqueues work on `stream` and returns without synchronising; every CUDA
// call and launch is checked (file and line). The gradient contract of
// nnfast/common.h holds unchanged: parameter gradients accumulate (+=), activation
// gradients overwrite (=). For example:
//
//   namespace nnfast::cuda {
//   template <typename T>
//   void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
//                            const double* rstd, const T* weight, index_t M, index_t D, bool rms,
//                            cudaStream_t stream = nullptr);
//   }
//
// This header needs no CUDA toolkit: cudaStream_t is forward-declared exactly as
// cuda_runtime.h declares it (an alias of the same type, so including both, in
// either order, is fine).
#pragma once
#include "nnfast/common.h"

#if !defined(__DRIVER_TYPES_H__)  // driver_types.h (via cuda_runtime.h) already declares it
struct CUstream_st;
using cudaStream_t = CUstream_st*;
#endif

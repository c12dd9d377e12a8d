// CUDA normalization launchers (csrc/cuda/norm.cu): the same names, template
// parameters, arguments and semantics as nnfast::cpu in nnfast/norm.h, plus a
// trailing stream (nnfast/cuda/common.h). Pointers are device pointers; saved
// statistics are double; parameter gradients accumulate (+=), input gradients
// overwrite (=); null means "not wanted". Results are deterministic: every
// reduction has a fixed assignment of elements to threads and a fixed tree (no
// float atomics), so the same input gives the same bits on every run.
//
// Synchronisation: the launchers enqueue and return, except
//   * spectral_norm_forward, which returns sigma as a host double: it reads it
//     back with cudaStreamSynchronize(stream) before returning;
//   * the spectral-norm functions allocate a small device workspace
//     (cudaMalloc / cudaFree: cudaFree waits for the device).
#pragma once
#include "nnfast/cuda/common.h"
#include "nnfast/norm.h"

namespace nnfast {
namespace cuda {

template <typename T>
void layer_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t M,
                        index_t D, double eps, bool rms, cudaStream_t stream = nullptr);

template <typename T>
void layer_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t M, index_t D, bool rms,
                         cudaStream_t stream = nullptr);

template <typename T>
void batch_norm_forward(T* y, double* mean, double* rstd, T* running_mean, T* running_var, const T* x,
                        const T* weight, const T* bias, index_t N, index_t C, index_t L, bool training,
                        double momentum, double eps, cudaStream_t stream = nullptr);

template <typename T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, bool training,
                         cudaStream_t stream = nullptr);

template <typename T>
void group_norm_forward(T* y, double* mean, double* rstd, const T* x, const T* weight, const T* bias, index_t N,
                        index_t C, index_t L, index_t G, double eps, cudaStream_t stream = nullptr);

template <typename T>
void group_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                         const double* rstd, const T* weight, index_t N, index_t C, index_t L, index_t G,
                         cudaStream_t stream = nullptr);

template <typename T>
void instance_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* rstd,
                                  index_t N, index_t C, index_t L, double momentum, double eps,
                                  cudaStream_t stream = nullptr);

template <typename T>
void weight_norm_forward(T* w, double* norm, const T* v, const T* g, index_t N, index_t C, index_t L,
                         cudaStream_t stream = nullptr);

template <typename T>
void weight_norm_backward(T* dv, T* dg, const T* dw, const T* v, const T* g, const double* norm, index_t N,
                          index_t C, index_t L, cudaStream_t stream = nullptr);

template <typename T>
void spectral_norm_power_iteration(T* u, T* v, const T* W, index_t M, index_t D, int n_iter, double eps,
                                   cudaStream_t stream = nullptr);

// Synchronises `stream` to return sigma (see above).
template <typename T>
double spectral_norm_forward(T* y, const T* W, const T* u, const T* v, index_t M, index_t D,
                             cudaStream_t stream = nullptr);

template <typename T>
void spectral_norm_backward(T* dW, const T* dy, const T* W, const T* u, const T* v, double sigma, index_t M,
                            index_t D, cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

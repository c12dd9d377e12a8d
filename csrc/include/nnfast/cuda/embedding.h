// CUDA embedding launchers (csrc/cuda/embedding.cu): the same names, template
// parameters, arguments and semantics as nnfast::cpu in nnfast/embedding.h, plus a
// trailing stream (nnfast/cuda/common.h). Pointers are device pointers.
// embedding_index_range writes HOST *lo / *hi: it synchronises `stream`.
// The backward kernels keep the CPU's determinism rule (rows split among threads,
// each row summed in position order): the same bits run to run, and the CPU's bits
// when dweight starts at zero (csrc/cuda/embedding.cu says why only then).
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/embedding.h"

namespace nnfast {
namespace cuda {

template <typename I>
void embedding_index_range(const I* idx, index_t N, index_t* lo, index_t* hi, cudaStream_t stream = nullptr);

template <typename T, typename I>
void embedding_forward(T* out, const T* weight, const I* idx, index_t N, index_t D, cudaStream_t stream = nullptr);

template <typename T, typename I>
void embedding_backward(T* dweight, const T* dy, const I* idx, index_t N, index_t D, index_t R,
                        index_t padding_idx, bool scale_grad_by_freq, cudaStream_t stream = nullptr);

template <typename T, typename I>
void embedding_renorm(T* weight, const I* idx, index_t N, index_t D, index_t R, double max_norm,
                      double norm_type, cudaStream_t stream = nullptr);

template <typename T, typename I>
void embedding_bag_forward(T* out, index_t* max_indices, const T* weight, const I* idx, const index_t* offsets,
                           const T* per_sample_weights, index_t B, index_t D, index_t padding_idx, BagMode mode,
                           cudaStream_t stream = nullptr);

template <typename T, typename I>
void embedding_bag_backward(T* dweight, T* dpsw, const T* dy, const T* weight, const I* idx, const index_t* offsets,
                            const T* per_sample_weights, const index_t* max_indices, index_t N, index_t B, index_t D,
                            index_t R, index_t padding_idx, BagMode mode, bool scale_grad_by_freq,
                            cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

// CUDA tape arithmetic (csrc/cuda/tensor.cu): the same names, template parameters,
// arguments and semantics as nnfast::cpu in nnfast/tensor.h, plus a trailing stream
// (nnfast/cuda/common.h). Pointers are device pointers; BroadcastArgs is passed by value
// to the kernel.
#pragma once
#include <cstdint>

#include "nnfast/cuda/common.h"
#include "nnfast/tensor.h"

namespace nnfast {
namespace cuda {

template <typename T>
void binary_broadcast(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out,
                      cudaStream_t stream = nullptr);

template <typename T>
void reduce_dim(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index,
                cudaStream_t stream = nullptr);

template <typename T>
void scatter_dim(T* out, const T* grad, const std::int64_t* index, index_t outer, index_t n, index_t inner,
                 cudaStream_t stream = nullptr);

template <typename From, typename To>
void cast(To* out, const From* x, index_t n, cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

// CUDA fused attention launchers (csrc/cuda/attention.cu): the names, arguments and
// semantics of nnfast::cpu in nnfast/attention.h plus a trailing stream. Data pointers
// (q / k / v / mask bases, outputs, saved arrays) are device pointers; the per-bh
// offset arrays of AttnInputs are HOST arrays (the launcher copies them to a device
// workspace, stream-ordered). Results are deterministic: every output element is owned
// by one thread and summed in a fixed order (no atomics).
#pragma once
#include "nnfast/attention.h"
#include "nnfast/cuda/common.h"

namespace nnfast {
namespace cuda {

template <typename T>
void sdpa_forward(T* out, T* lse, const AttnInputs<T>& in, const AttnParams& p, cudaStream_t stream = nullptr);

template <typename T>
void sdpa_backward(T* dq, T* dk, T* dv, T* dmask, const T* dout, const T* out, const T* lse,
                   const AttnInputs<T>& in, const AttnParams& p, cudaStream_t stream = nullptr);

}  // namespace cuda
}  // namespace nnfast

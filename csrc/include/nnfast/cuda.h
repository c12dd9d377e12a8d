#pragma once
#include <cstddef>

namespace nnfast {
bool cuda_compiled();
// True in an NNFAST_CUDA=EMULATE build: the cuda device is nnfast's SIMT emulator on the CPU.
bool cuda_emulated();
// Number of usable CUDA devices (0 when there is no driver or no GPU).
int cuda_device_count();
const char* cuda_device_name(int device);
// Copies `bytes` from device memory to the host (synchronous), e.g. one bad value for
// an error message. Throws std::runtime_error without CUDA.
void cuda_copy_to_host(void* dst, const void* src, std::size_t bytes);
}  // namespace nnfast

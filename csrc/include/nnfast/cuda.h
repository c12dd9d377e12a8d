#pragma once
namespace nnfast {
bool cuda_compiled();
// True in an NNFAST_CUDA=EMULATE build: the cuda device is nnfast's SIMT emulator on the CPU.
bool cuda_emulated();
// Number of usable CUDA devices (0 when there is no driver or no GPU).
int cuda_device_count();
const char* cuda_device_name(int device);
}  // namespace nnfast

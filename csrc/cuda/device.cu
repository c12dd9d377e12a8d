// Device discovery; proves the CUDA build path compiles. The CUDA kernels
// themselves live beside it with the same basenames as csrc/cpu/.
#include "cuda/common.cuh"
#include "nnfast/cuda.h"

namespace nnfast {

bool cuda_compiled() { return true; }

// EMULATE builds: one device, named by the emulator, living in host memory.
bool cuda_emulated() { return NNFAST_EMULATED != 0; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

const char* cuda_device_name(int device) {
  static thread_local cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return prop.name;
}

void cuda_copy_to_host(void* dst, const void* src, std::size_t bytes) {
  NNFAST_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace nnfast

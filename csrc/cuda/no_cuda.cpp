// Built when nnfast is compiled without CUDA: the probe reports "not compiled".
#include <stdexcept>

#include "nnfast/cuda.h"
namespace nnfast {
bool cuda_compiled() { return false; }
bool cuda_emulated() { return false; }
int cuda_device_count() { return 0; }
const char* cuda_device_name(int) { return ""; }
void cuda_copy_to_host(void*, const void*, std::size_t) {
  throw std::runtime_error("[cuda] nnfast was built without CUDA");
}
}  // namespace nnfast

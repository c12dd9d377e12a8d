// Built when nnfast is compiled without CUDA: the probe reports "not compiled".
#include "nnfast/cuda.h"
namespace nnfast {
bool cuda_compiled() { return false; }
bool cuda_emulated() { return false; }
int cuda_device_count() { return 0; }
const char* cuda_device_name(int) { return ""; }
}  // namespace nnfast

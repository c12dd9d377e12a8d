// Bindings of the attention kernels (filled in by the attention family).
#include "bindings/common.h"

void init_attention(py::module_& m) { (void)m; }

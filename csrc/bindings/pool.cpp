// Bindings of the pool kernels (filled in by the pool family).
#include "bindings/common.h"

void init_pool(py::module_& m) { (void)m; }

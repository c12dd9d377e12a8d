// Bindings of the conv kernels (filled in by the conv family).
#include "bindings/common.h"

void init_conv(py::module_& m) { (void)m; }

// Bindings of the embedding kernels (filled in by the embedding family).
#include "bindings/common.h"

void init_embedding(py::module_& m) { (void)m; }

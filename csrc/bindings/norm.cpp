#include "bindings/common.h"

void init_norm(pybind11::module_& m) { (void)m; }

#include "bindings/common.h"

void init_optim(pybind11::module_& m) { (void)m; }

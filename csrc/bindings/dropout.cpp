#include "bindings/common.h"

void init_dropout(pybind11::module_& m) { (void)m; }

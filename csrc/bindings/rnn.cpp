// Bindings of the rnn kernels (filled in by the rnn family).
#include "bindings/common.h"

void init_rnn(py::module_& m) { (void)m; }

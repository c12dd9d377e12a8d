// nnfast._C: the pybind11 client of the kernel library. One init_<family>
// per file; each binding checks its arguments and releases the GIL.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void init_info(py::module_& m);
void init_gemm(py::module_& m);
void init_activation(py::module_& m);
void init_norm(py::module_& m);
void init_loss(py::module_& m);
void init_optim(py::module_& m);
void init_dropout(py::module_& m);
void init_tensor(py::module_& m);
void init_conv(py::module_& m);
void init_pool(py::module_& m);
void init_embedding(py::module_& m);
void init_rnn(py::module_& m);
void init_attention(py::module_& m);
void init_convert(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "nnfast native kernels (CPU; CUDA when compiled)";
  init_info(m);
  init_gemm(m);
  init_activation(m);
  init_norm(m);
  init_loss(m);
  init_optim(m);
  init_dropout(m);
  init_tensor(m);
  init_conv(m);
  init_pool(m);
  init_embedding(m);
  init_rnn(m);
  init_attention(m);
  init_convert(m);
}

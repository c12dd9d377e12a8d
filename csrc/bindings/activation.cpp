#include "bindings/common.h"
#include "nnfast/activation.h"

using namespace nnfast;
using namespace nnfast::bind;

namespace {

Act act_code(const char* op, int act) {
  if (act < 0 || act > static_cast<int>(Act::Hardtanh)) value_error(op, "a valid activation code, got " + std::to_string(act));
  return static_cast<Act>(act);
}

// y = act(x); arrays C-contiguous, same shape and dtype (y may be x).
void act_forward_binding(py::array y, py::array x, int act, double a, double b) {
  const char* op = "activation";
  DType dt = float_dtype(op, x, "input");
  same_dtype(op, x, y, "out");
  check_contiguous(op, x, "input");
  check_contiguous(op, y, "out");
  check_writeable(op, y, "out");
  if (y.size() != x.size()) value_error(op, "out with as many elements as input");
  if (y.data() != x.data()) check_no_alias(op, y, "out", x, "input");
  Act code = act_code(op, act);
  const index_t n = x.size();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    ActParams p{a, b};
    py::gil_scoped_release release;
    act_forward<T>(py_, px, n, code, p);
  });
}

// dx = dy * act'(saved).
void act_backward_binding(py::array dx, py::array dy, py::array saved, int act, double a, double b) {
  const char* op = "activation_backward";
  DType dt = float_dtype(op, dy, "grad");
  same_dtype(op, dy, dx, "grad_input");
  same_dtype(op, dy, saved, "saved");
  for (auto* pa : {&dx, &dy, &saved}) check_contiguous(op, *pa, "arrays");
  check_writeable(op, dx, "grad_input");
  if (dx.size() != dy.size() || saved.size() != dy.size()) value_error(op, "grad, saved and grad_input of one size");
  if (dx.data() != dy.data()) check_no_alias(op, dx, "grad_input", dy, "grad");
  check_no_alias(op, dx, "grad_input", saved, "saved");
  Act code = act_code(op, act);
  const index_t n = dy.size();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* pdx = mut_ptr<T>(dx);
    const T* pdy = ptr<T>(dy);
    const T* ps = ptr<T>(saved);
    ActParams p{a, b};
    py::gil_scoped_release release;
    act_backward<T>(pdx, pdy, ps, n, code, p);
  });
}

}  // namespace

void init_activation(py::module_& m) {
  m.def("act_forward", &act_forward_binding, py::arg("out"), py::arg("input"), py::arg("act"), py::arg("a") = 0.0,
        py::arg("b") = 0.0);
  m.def("act_backward", &act_backward_binding, py::arg("grad_input"), py::arg("grad"), py::arg("saved"),
        py::arg("act"), py::arg("a") = 0.0, py::arg("b") = 0.0);
}

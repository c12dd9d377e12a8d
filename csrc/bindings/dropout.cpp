// Bindings of the regularization kernels (nnfast/dropout.h): dropout with a
// counter-based mask and the L1 / L2 parameter penalties.
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "nnfast/dropout.h"

namespace {

void check_p(const char* op, double p) {
  if (!(p >= 0.0 && p <= 1.0)) value_error(op, "a dropout probability p in [0, 1], got " + std::to_string(p));
}

// out = dropout(input) for (seed, offset); out may be input (in place). The
// backward is the same call on the gradient with the same (p, seed, offset).
// first: the mask-stream index of element 0 (a data-parallel shard's slice).
void dropout_binding(const char* op, py::array y, py::array x, double p, std::uint64_t seed, std::uint64_t offset,
                     bool backward, std::uint64_t first) {
  check_p(op, p);
  DType dt = check_unary(op, y, x, backward ? "grad_input" : "out", backward ? "grad" : "input");
  const index_t n = x.size();
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(y), px = ptr<T>(x)] {
#if NNFAST_BIND_CUDA
      if (backward)
        dropout_backward<T>(py_, px, n, p, seed, offset, nullptr, first);
      else
        dropout_forward<T>(py_, px, n, p, seed, offset, nullptr, first);
#else
      if (backward)
        dropout_backward<T>(py_, px, n, p, seed, offset, first);
      else
        dropout_forward<T>(py_, px, n, p, seed, offset, first);
#endif
    };
  });
}

Penalty penalty_kind(const char* op, int kind) {
  if (kind != 1 && kind != 2) value_error(op, "penalty kind 1 (L1) or 2 (L2), got " + std::to_string(kind));
  return static_cast<Penalty>(kind);
}

// sum over the arrays of sum |x| (kind 1) or sum x^2 (kind 2), in double.
// A Python list / tuple of arrays.
std::vector<py::array> array_list(const char* op, const py::sequence& seq, const char* name) {
  std::vector<py::array> out;
  for (py::handle h : seq) {
    if (!py::isinstance<py::array>(h)) type_error(op, std::string(name) + " to hold numpy arrays");
    out.push_back(py::reinterpret_borrow<py::array>(h));
  }
  return out;
}

double penalty_sum_binding(py::sequence seq, int kind) {
  const char* op = kind == 2 ? "l2_penalty" : "l1_penalty";
  std::vector<py::array> xs = array_list(op, seq, "params");
  Penalty k = penalty_kind(op, kind);
  std::vector<DType> dts;
  for (const auto& x : xs) {
    dts.push_back(float_dtype(op, x, "parameters"));
    check_contiguous(op, x, "parameters");
  }
  double total = 0.0;
  py::gil_scoped_release release;
  for (size_t i = 0; i < xs.size(); ++i) {
    const py::array& x = xs[i];
    dispatch_float(dts[i], [&](auto tag) {
      using T = decltype(tag);
      total += penalty_sum<T>(ptr<T>(x), x.size(), k);
    });
  }
  return total;
}

// grads[i] = scale * sign(x[i]) (kind 1) or scale * 2 x[i] (kind 2).
void penalty_backward_binding(py::sequence gseq, py::sequence xseq, int kind, double scale) {
  const char* op = kind == 2 ? "l2_penalty_backward" : "l1_penalty_backward";
  std::vector<py::array> grads = array_list(op, gseq, "grads"), xs = array_list(op, xseq, "params");
  Penalty k = penalty_kind(op, kind);
  if (grads.size() != xs.size())
    value_error(op, "as many gradients as parameters, got " + std::to_string(grads.size()) + " and " +
                        std::to_string(xs.size()));
  std::vector<DType> dts;
  for (size_t i = 0; i < xs.size(); ++i) {
    dts.push_back(float_dtype(op, xs[i], "parameters"));
    same_dtype(op, xs[i], grads[i], "grads");
    check_contiguous(op, xs[i], "parameters");
    check_contiguous(op, grads[i], "grads");
    check_writeable(op, grads[i], "grads");
    if (grads[i].size() != xs[i].size()) value_error(op, "each gradient of its parameter's shape " + shape_str(xs[i]));
    check_no_alias(op, grads[i], "grads", xs[i], "parameters");
  }
  py::gil_scoped_release release;
  for (size_t i = 0; i < xs.size(); ++i) {
    dispatch_float(dts[i], [&](auto tag) {
      using T = decltype(tag);
      penalty_backward<T>(mut_ptr<T>(grads[i]), ptr<T>(xs[i]), xs[i].size(), k, static_cast<T>(scale));
    });
  }
}

}  // namespace

void init_dropout(py::module_& m) {
  m.def(
      "dropout_forward",
      [](py::array out, py::array input, double p, std::uint64_t seed, std::uint64_t offset, std::uint64_t first) {
        dropout_binding("dropout", out, input, p, seed, offset, false, first);
      },
      py::arg("out"), py::arg("input"), py::arg("p"), py::arg("seed"), py::arg("offset"), py::arg("first") = 0);
  m.def(
      "dropout_backward",
      [](py::array grad_input, py::array grad, double p, std::uint64_t seed, std::uint64_t offset,
         std::uint64_t first) { dropout_binding("dropout_backward", grad_input, grad, p, seed, offset, true, first); },
      py::arg("grad_input"), py::arg("grad"), py::arg("p"), py::arg("seed"), py::arg("offset"),
      py::arg("first") = 0);
  m.def("penalty_sum", &penalty_sum_binding, py::arg("params"), py::arg("kind"));
  m.def("penalty_backward", &penalty_backward_binding, py::arg("grads"), py::arg("params"), py::arg("kind"),
        py::arg("scale"));
}

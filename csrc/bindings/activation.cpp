// Bindings of the activation kernels (nnfast/activation.h). Each checks its
// arrays once (dtype, shape, contiguity, aliasing), releases the GIL and calls
// one kernel. Outputs are caller-allocated; parameter gradients accumulate.
#include <string>

#include "bindings/common.h"
#include "nnfast/activation.h"

using namespace nnfast;
using namespace nnfast::bind;

namespace {

Act act_code(const char* op, int act) {
  if (act < 0 || act > static_cast<int>(Act::Hardtanh))
    value_error(op, "a valid activation code, got " + std::to_string(act));
  return static_cast<Act>(act);
}

// out and input: same dtype, same number of elements, C-contiguous; out
// writeable and either input itself (in place) or not overlapping it.
DType check_unary(const char* op, const py::array& out, const py::array& in, const char* out_name = "out",
                  const char* in_name = "input") {
  DType dt = float_dtype(op, in, in_name);
  same_dtype(op, in, out, out_name);
  check_contiguous(op, in, in_name);
  check_contiguous(op, out, out_name);
  check_writeable(op, out, out_name);
  if (out.size() != in.size())
    value_error(op, std::string(out_name) + " with as many elements as " + in_name + " (" + std::to_string(in.size()) +
                        "), got " + std::to_string(out.size()));
  if (out.data() != in.data()) check_no_alias(op, out, out_name, in, in_name);
  return dt;
}

// A read-only input of the reference dtype and size, contiguous, not overlapping out.
void check_input(const char* op, const py::array& ref, const py::array& a, const char* name, const py::array& out,
                 const char* out_name) {
  same_dtype(op, ref, a, name);
  check_contiguous(op, a, name);
  if (a.size() != ref.size())
    value_error(op, std::string(name) + " with " + std::to_string(ref.size()) + " elements, got " +
                        std::to_string(a.size()));
  check_no_alias(op, out, out_name, a, name);
}

int norm_dim(const char* op, const py::array& a, int dim) {
  const int nd = static_cast<int>(a.ndim());
  const int lim = nd == 0 ? 1 : nd;
  if (dim < -lim || dim >= lim)
    value_error(op, "dim in [" + std::to_string(-lim) + ", " + std::to_string(lim - 1) + "], got " +
                        std::to_string(dim));
  return dim < 0 ? dim + lim : dim;
}

// (outer, D, inner) around dimension d of a's shape.
void split_dim(const py::array& a, int d, index_t* outer, index_t* D, index_t* inner) {
  *outer = 1;
  *inner = 1;
  *D = a.ndim() == 0 ? 1 : static_cast<index_t>(a.shape(d));
  for (int i = 0; i < d; ++i) *outer *= static_cast<index_t>(a.shape(i));
  for (int i = d + 1; i < static_cast<int>(a.ndim()); ++i) *inner *= static_cast<index_t>(a.shape(i));
}

// ------------------------------------------------------------------ pointwise
// y = act(x); arrays C-contiguous, same shape and dtype (y may be x).
void act_forward_binding(py::array y, py::array x, int act, double a, double b) {
  const char* op = "activation";
  DType dt = check_unary(op, y, x);
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

// dx = dy * act'(saved); dx may be dy.
void act_backward_binding(py::array dx, py::array dy, py::array saved, int act, double a, double b) {
  const char* op = "activation_backward";
  DType dt = check_unary(op, dx, dy, "grad_input", "grad");
  check_input(op, dy, saved, "saved", dx, "grad_input");
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

// ------------------------------------------------------------------ PReLU
// (N, C, S) of x for a weight of `nw` entries: channels are dim 1; a single
// weight is shared by every element.
void prelu_layout(const char* op, const py::array& x, index_t nw, index_t* N, index_t* C, index_t* S) {
  if (nw == 1) {
    *N = 1;
    *C = 1;
    *S = x.size();
    return;
  }
  if (x.ndim() < 2)
    value_error(op, "input with a channel dim (dim 1) for " + std::to_string(nw) + " weights, got shape " +
                        shape_str(x));
  if (x.shape(1) != nw)
    value_error(op, "input with " + std::to_string(nw) + " channels (dim 1) to match weight, got shape " +
                        shape_str(x));
  *N = x.shape(0);
  *C = nw;
  *S = 1;
  for (int i = 2; i < static_cast<int>(x.ndim()); ++i) *S *= x.shape(i);
}

void check_prelu_weight(const char* op, const py::array& x, const py::array& w) {
  same_dtype(op, x, w, "weight");
  check_contiguous(op, w, "weight");
  if (w.ndim() != 1 || w.size() < 1) value_error(op, "weight of shape (num_parameters,), got " + shape_str(w));
}

void prelu_forward_binding(py::array y, py::array x, py::array w) {
  const char* op = "prelu";
  DType dt = check_unary(op, y, x);
  check_prelu_weight(op, x, w);
  check_no_alias(op, y, "out", w, "weight");
  index_t N, C, S;
  prelu_layout(op, x, w.size(), &N, &C, &S);
  if (x.size() == 0) return;  // nothing to write (the kernel's grain divides by S)
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    const T* pw = ptr<T>(w);
    py::gil_scoped_release release;
    prelu_forward<T>(py_, px, pw, N, C, S);
  });
}

// grad_input (or None) = dy * (x > 0 ? 1 : w); grad_weight (or None) += sum over x <= 0 of dy x.
void prelu_backward_binding(py::object dx_o, py::object dw_o, py::array dy, py::array x, py::array w) {
  const char* op = "prelu_backward";
  DType dt = float_dtype(op, dy, "grad");
  check_contiguous(op, dy, "grad");
  same_dtype(op, dy, x, "input");
  check_contiguous(op, x, "input");
  if (x.size() != dy.size()) value_error(op, "input of grad's shape " + shape_str(dy) + ", got " + shape_str(x));
  check_prelu_weight(op, x, w);
  py::array dx, dw;
  if (has(dx_o)) {
    dx = as_array(op, dx_o, "grad_input");
    check_unary(op, dx, dy, "grad_input", "grad");
    check_no_alias(op, dx, "grad_input", x, "input");
    check_no_alias(op, dx, "grad_input", w, "weight");
  }
  if (has(dw_o)) {
    dw = as_array(op, dw_o, "grad_weight");
    same_dtype(op, w, dw, "grad_weight");
    check_contiguous(op, dw, "grad_weight");
    check_writeable(op, dw, "grad_weight");
    if (dw.size() != w.size()) value_error(op, "grad_weight of shape " + shape_str(w) + ", got " + shape_str(dw));
    for (const py::array* a : {&dy, &x, &w}) check_no_alias(op, dw, "grad_weight", *a, "an input");
    if (has(dx_o)) check_no_alias(op, dw, "grad_weight", dx, "grad_input");
  }
  index_t N, C, S;
  prelu_layout(op, x, w.size(), &N, &C, &S);
  if (x.size() == 0) return;  // grad_input is empty and grad_weight gains nothing
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* pdx = has(dx_o) ? mut_ptr<T>(dx) : nullptr;
    T* pdw = has(dw_o) ? mut_ptr<T>(dw) : nullptr;
    const T* pdy = ptr<T>(dy);
    const T* px = ptr<T>(x);
    const T* pw = ptr<T>(w);
    py::gil_scoped_release release;
    prelu_backward<T>(pdx, pdw, pdy, px, pw, N, C, S);
  });
}

// ------------------------------------------------------------------ Swish
void swish_forward_binding(py::array y, py::array x, double beta) {
  const char* op = "swish";
  DType dt = check_unary(op, y, x);
  const index_t n = x.size();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    swish_forward<T>(py_, px, n, static_cast<T>(beta));
  });
}

// grad_input (or None) = dy dswish/dx; grad_beta (None or one element) += sum dy dswish/dbeta.
void swish_backward_binding(py::object dx_o, py::object dbeta_o, py::array dy, py::array x, double beta) {
  const char* op = "swish_backward";
  DType dt = float_dtype(op, dy, "grad");
  check_contiguous(op, dy, "grad");
  same_dtype(op, dy, x, "input");
  check_contiguous(op, x, "input");
  if (x.size() != dy.size()) value_error(op, "input of grad's shape " + shape_str(dy) + ", got " + shape_str(x));
  py::array dx, db;
  if (has(dx_o)) {
    dx = as_array(op, dx_o, "grad_input");
    check_unary(op, dx, dy, "grad_input", "grad");
    check_no_alias(op, dx, "grad_input", x, "input");
  }
  if (has(dbeta_o)) {
    db = as_array(op, dbeta_o, "grad_beta");
    same_dtype(op, dy, db, "grad_beta");
    check_writeable(op, db, "grad_beta");
    if (db.size() != 1) value_error(op, "grad_beta with one element, got shape " + shape_str(db));
    check_no_alias(op, db, "grad_beta", dy, "grad");
    check_no_alias(op, db, "grad_beta", x, "input");
  }
  const index_t n = dy.size();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* pdx = has(dx_o) ? mut_ptr<T>(dx) : nullptr;
    T* pdb = has(dbeta_o) ? mut_ptr<T>(db) : nullptr;
    const T* pdy = ptr<T>(dy);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    swish_backward<T>(pdx, pdb, pdy, px, n, static_cast<T>(beta));
  });
}

// ------------------------------------------------------------------ gated units
Act gate_code(const char* op, int act) {
  Act a = act_code(op, act);
  if (a != Act::Sigmoid && a != Act::SiLU && a != Act::GELU && a != Act::GELUTanh && a != Act::ReLU &&
      a != Act::Identity)
    value_error(op, "a gate activation among identity, relu, sigmoid, gelu, gelu_tanh, silu; got code " +
                        std::to_string(act));
  return a;
}

// (outer, L) of a gated input split in halves along `dim`; out must have the halved shape.
void glu_layout(const char* op, const py::array& x, int dim, index_t* outer, index_t* L) {
  if (x.ndim() == 0) value_error(op, "an input with at least one dimension, got a 0-d array");
  const int d = norm_dim(op, x, dim);
  index_t o, D, inner;
  split_dim(x, d, &o, &D, &inner);
  if (D % 2 != 0) value_error(op, "an even size along dim " + std::to_string(dim) + ", got shape " + shape_str(x));
  *outer = o;
  *L = D / 2 * inner;
}

void glu_forward_binding(py::array y, py::array x, int dim, int act, bool gate_first) {
  const char* op = gate_first ? "swiglu" : "glu";
  DType dt = float_dtype(op, x, "input");
  same_dtype(op, x, y, "out");
  check_contiguous(op, x, "input");
  check_contiguous(op, y, "out");
  check_writeable(op, y, "out");
  index_t outer, L;
  glu_layout(op, x, dim, &outer, &L);
  if (y.size() * 2 != x.size()) value_error(op, "out with half the elements of input, got shape " + shape_str(y));
  check_no_alias(op, y, "out", x, "input");
  Act a = gate_code(op, act);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    glu_forward<T>(py_, px, outer, L, a, gate_first);
  });
}

void glu_backward_binding(py::array dx, py::array dy, py::array x, int dim, int act, bool gate_first) {
  const char* op = gate_first ? "swiglu_backward" : "glu_backward";
  DType dt = check_unary(op, dx, x, "grad_input", "input");
  same_dtype(op, x, dy, "grad");
  check_contiguous(op, dy, "grad");
  if (dy.size() * 2 != x.size()) value_error(op, "grad with half the elements of input, got shape " + shape_str(dy));
  check_no_alias(op, dx, "grad_input", dy, "grad");
  index_t outer, L;
  glu_layout(op, x, dim, &outer, &L);
  Act a = gate_code(op, act);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* pdx = mut_ptr<T>(dx);
    const T* pdy = ptr<T>(dy);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    glu_backward<T>(pdx, pdy, px, outer, L, a, gate_first);
  });
}

// ------------------------------------------------------------------ softmax
void softmax_forward_binding(py::array y, py::array x, int dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  DType dt = check_unary(op, y, x);
  if (y.data() == x.data() && x.size() > 0) value_error(op, "out not to share memory with input");
  const int d = norm_dim(op, x, dim);
  index_t outer, D, inner;
  split_dim(x, d, &outer, &D, &inner);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    softmax_forward<T>(py_, px, outer, D, inner, log);
  });
}

// dx from dy and the saved output y; dx may be dy.
void softmax_backward_binding(py::array dx, py::array dy, py::array y, int dim, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  DType dt = check_unary(op, dx, dy, "grad_input", "grad");
  check_input(op, dy, y, "output", dx, "grad_input");
  if (dx.data() == dy.data() && dy.size() > 0) value_error(op, "grad_input not to share memory with grad");
  const int d = norm_dim(op, y, dim);
  index_t outer, D, inner;
  split_dim(y, d, &outer, &D, &inner);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* pdx = mut_ptr<T>(dx);
    const T* pdy = ptr<T>(dy);
    const T* py_ = ptr<T>(y);
    py::gil_scoped_release release;
    softmax_backward<T>(pdx, pdy, py_, outer, D, inner, log);
  });
}

// ------------------------------------------------------------------ step / sign
void step_forward_binding(py::array y, py::array x, bool sign, double threshold) {
  const char* op = sign ? "sign" : "step";
  DType dt = check_unary(op, y, x);
  const index_t n = x.size();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* py_ = mut_ptr<T>(y);
    const T* px = ptr<T>(x);
    py::gil_scoped_release release;
    step_forward<T>(py_, px, n, sign, static_cast<T>(threshold));
  });
}

}  // namespace

void init_activation(py::module_& m) {
  m.def("act_forward", &act_forward_binding, py::arg("out"), py::arg("input"), py::arg("act"), py::arg("a") = 0.0,
        py::arg("b") = 0.0);
  m.def("act_backward", &act_backward_binding, py::arg("grad_input"), py::arg("grad"), py::arg("saved"),
        py::arg("act"), py::arg("a") = 0.0, py::arg("b") = 0.0);
  m.def("prelu_forward", &prelu_forward_binding, py::arg("out"), py::arg("input"), py::arg("weight"));
  m.def("prelu_backward", &prelu_backward_binding, py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad"),
        py::arg("input"), py::arg("weight"));
  m.def("swish_forward", &swish_forward_binding, py::arg("out"), py::arg("input"), py::arg("beta"));
  m.def("swish_backward", &swish_backward_binding, py::arg("grad_input"), py::arg("grad_beta"), py::arg("grad"),
        py::arg("input"), py::arg("beta"));
  m.def("glu_forward", &glu_forward_binding, py::arg("out"), py::arg("input"), py::arg("dim"), py::arg("act"),
        py::arg("gate_first"));
  m.def("glu_backward", &glu_backward_binding, py::arg("grad_input"), py::arg("grad"), py::arg("input"),
        py::arg("dim"), py::arg("act"), py::arg("gate_first"));
  m.def("softmax_forward", &softmax_forward_binding, py::arg("out"), py::arg("input"), py::arg("dim"),
        py::arg("log") = false);
  m.def("softmax_backward", &softmax_backward_binding, py::arg("grad_input"), py::arg("grad"), py::arg("output"),
        py::arg("dim"), py::arg("log") = false);
  m.def("step_forward", &step_forward_binding, py::arg("out"), py::arg("input"), py::arg("sign") = false,
        py::arg("threshold") = 0.0);
}

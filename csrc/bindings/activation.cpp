// Bindings of the activation kernels (nnfast/activation.h). Each checks its
// arrays once (dtype, shape, contiguity, aliasing), releases the GIL and calls
// one kernel. Outputs are caller-allocated; parameter gradients accumulate.
#include <string>

#include "bindings/common.h"
#include "nnfast/activation.h"

namespace {

Act act_code(const char* op, int act) {
  if (act < 0 || act >= kActCount) value_error(op, "a valid activation code, got " + std::to_string(act));
  return static_cast<Act>(act);
}

// A read-only input of the reference dtype and size, contiguous, not overlapping out.
void check_like(const char* op, const py::array& ref, const py::array& a, const char* name, const py::array& out,
                const char* out_name) {
  same_dtype(op, ref, a, name);
  check_contiguous(op, a, name);
  if (a.size() != ref.size())
    value_error(op, std::string(name) + " with " + std::to_string(ref.size()) + " elements, got " +
                        std::to_string(a.size()));
  check_no_alias(op, out, out_name, a, name);
}

// A backward's grad (the reference) and the saved input: one dtype, contiguous, as many elements.
DType check_grad_and_input(const char* op, const py::array& dy, const py::array& x) {
  DType dt = check_input(op, dy, "grad");
  same_dtype(op, dy, x, "input");
  check_contiguous(op, x, "input");
  if (x.size() != dy.size()) value_error(op, "input of grad's shape " + shape_str(dy) + ", got " + shape_str(x));
  return dt;
}

// grad_input of a backward: None, or an array like grad that does not overlap the input.
void check_opt_grad_input(const char* op, const py::object& dx_o, const py::array& dy, const py::array& x) {
  if (!has(dx_o)) return;
  py::array dx = as_array(op, dx_o, "grad_input");
  check_unary(op, dx, dy, "grad_input", "grad");
  check_no_alias(op, dx, "grad_input", x, "input");
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
  run_sized(dt, n, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), n, code, p = ActParams{a, b}] { act_forward<T>(py_, px, n, code, p); };
  });
}

// dx = dy * act'(saved); dx may be dy.
void act_backward_binding(py::array dx, py::array dy, py::array saved, int act, double a, double b) {
  const char* op = "activation_backward";
  DType dt = check_unary(op, dx, dy, "grad_input", "grad");
  check_like(op, dy, saved, "saved", dx, "grad_input");
  Act code = act_code(op, act);
  const index_t n = dy.size();
  run_sized(dt, n, [&](auto tag) {
    using T = decltype(tag);
    return [pdx = mut_ptr<T>(dx), pdy = ptr<T>(dy), ps = ptr<T>(saved), n, code, p = ActParams{a, b}] {
      act_backward<T>(pdx, pdy, ps, n, code, p);
    };
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
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), pw = ptr<T>(w), N, C, S] { prelu_forward<T>(py_, px, pw, N, C, S); };
  });
}

// grad_input (or None) = dy * (x > 0 ? 1 : w); grad_weight (or None) += sum over x <= 0 of dy x.
void prelu_backward_binding(py::object dx_o, py::object dw_o, py::array dy, py::array x, py::array w) {
  const char* op = "prelu_backward";
  DType dt = check_grad_and_input(op, dy, x);
  check_prelu_weight(op, x, w);
  check_opt_grad_input(op, dx_o, dy, x);
  if (has(dx_o)) check_no_alias(op, dx_o.cast<py::array>(), "grad_input", w, "weight");
  if (has(dw_o)) {
    py::array dw = as_array(op, dw_o, "grad_weight");
    check_output(op, w, dw, "grad_weight");
    if (dw.size() != w.size()) value_error(op, "grad_weight of shape " + shape_str(w) + ", got " + shape_str(dw));
    for (const py::array* a : {&dy, &x, &w}) check_no_alias(op, dw, "grad_weight", *a, "an input");
    if (has(dx_o)) check_no_alias(op, dw, "grad_weight", dx_o.cast<py::array>(), "grad_input");
  }
  index_t N, C, S;
  prelu_layout(op, x, w.size(), &N, &C, &S);
  if (x.size() == 0) return;  // grad_input is empty and grad_weight gains nothing
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [pdx = opt_mut_ptr<T>(dx_o), pdw = opt_mut_ptr<T>(dw_o), pdy = ptr<T>(dy), px = ptr<T>(x), pw = ptr<T>(w),
            N, C, S] { prelu_backward<T>(pdx, pdw, pdy, px, pw, N, C, S); };
  });
}

// ------------------------------------------------------------------ Swish
void swish_forward_binding(py::array y, py::array x, double beta) {
  const char* op = "swish";
  DType dt = check_unary(op, y, x);
  const index_t n = x.size();
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), n, b = static_cast<T>(beta)] { swish_forward<T>(py_, px, n, b); };
  });
}

// grad_input (or None) = dy dswish/dx; grad_beta (None or one element) += sum dy dswish/dbeta.
void swish_backward_binding(py::object dx_o, py::object dbeta_o, py::array dy, py::array x, double beta) {
  const char* op = "swish_backward";
  DType dt = check_grad_and_input(op, dy, x);
  check_opt_grad_input(op, dx_o, dy, x);
  if (has(dbeta_o)) {
    py::array db = as_array(op, dbeta_o, "grad_beta");
    same_dtype(op, dy, db, "grad_beta");
    check_writeable(op, db, "grad_beta");
    if (db.size() != 1) value_error(op, "grad_beta with one element, got shape " + shape_str(db));
    check_no_alias(op, db, "grad_beta", dy, "grad");
    check_no_alias(op, db, "grad_beta", x, "input");
  }
  const index_t n = dy.size();
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [pdx = opt_mut_ptr<T>(dx_o), pdb = opt_mut_ptr<T>(dbeta_o), pdy = ptr<T>(dy), px = ptr<T>(x), n,
            b = static_cast<T>(beta)] { swish_backward<T>(pdx, pdb, pdy, px, n, b); };
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
  DType dt = check_input(op, x, "input");
  check_output(op, x, y, "out");
  index_t outer, L;
  glu_layout(op, x, dim, &outer, &L);
  if (y.size() * 2 != x.size()) value_error(op, "out with half the elements of input, got shape " + shape_str(y));
  check_no_alias(op, y, "out", x, "input");
  Act a = gate_code(op, act);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), outer, L, a, gate_first] {
      glu_forward<T>(py_, px, outer, L, a, gate_first);
    };
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
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [pdx = mut_ptr<T>(dx), pdy = ptr<T>(dy), px = ptr<T>(x), outer, L, a, gate_first] {
      glu_backward<T>(pdx, pdy, px, outer, L, a, gate_first);
    };
  });
}

// ------------------------------------------------------------------ softmax
void softmax_forward_binding(py::array y, py::array x, int dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  DType dt = check_unary(op, y, x, "out", "input", /*in_place_ok=*/false);
  index_t outer, D, inner;
  split_dim(x, norm_dim(op, x, dim), &outer, &D, &inner);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), outer, D, inner, log] {
      softmax_forward<T>(py_, px, outer, D, inner, log);
    };
  });
}

// dx from dy and the saved output y.
void softmax_backward_binding(py::array dx, py::array dy, py::array y, int dim, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  DType dt = check_unary(op, dx, dy, "grad_input", "grad", /*in_place_ok=*/false);
  check_like(op, dy, y, "output", dx, "grad_input");
  index_t outer, D, inner;
  split_dim(y, norm_dim(op, y, dim), &outer, &D, &inner);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [pdx = mut_ptr<T>(dx), pdy = ptr<T>(dy), py_ = ptr<T>(y), outer, D, inner, log] {
      softmax_backward<T>(pdx, pdy, py_, outer, D, inner, log);
    };
  });
}

// ------------------------------------------------------------------ step / sign
void step_forward_binding(py::array y, py::array x, bool sign, double threshold) {
  const char* op = sign ? "sign" : "step";
  DType dt = check_unary(op, y, x);
  const index_t n = x.size();
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [py_ = mut_ptr<T>(y), px = ptr<T>(x), n, sign, t = static_cast<T>(threshold)] {
      step_forward<T>(py_, px, n, sign, t);
    };
  });
}

// nnfast::Act as _C.Act (Python reads its codes from here, never a copied range),
// _C.ACT_COUNT (codes are [0, ACT_COUNT)), _C.ACT_GRAD_FROM_OUTPUT and _C.ACT_INFO:
// one (python_name, code, grad_from_output, params) per activation, all generated
// from NNFAST_ACTIVATIONS (nnfast/common.h); params is "name=default,..." for a, b.
void export_act(py::module_& m) {
  py::enum_<Act> e(m, "Act", "nnfast::Act activation codes (csrc/include/nnfast/common.h).");
  py::list info, from_output;
#define NNFAST_ACT_EXPORT_(Name, code, from_out, py_name, params)             \
  e.value(#Name, Act::Name);                                                   \
  info.append(py::make_tuple(py_name, code, from_out, std::string(params)));   \
  if (from_out) from_output.append(code);
  NNFAST_ACTIVATIONS(NNFAST_ACT_EXPORT_)
#undef NNFAST_ACT_EXPORT_
  m.attr("ACT_COUNT") = kActCount;
  m.attr("ACT_GRAD_FROM_OUTPUT") = py::tuple(from_output);
  m.attr("ACT_INFO") = py::tuple(info);
}

}  // namespace
void init_activation(py::module_& m) {
#if !NNFAST_BIND_CUDA
  export_act(m);  // the Act enum lives in nnfast._C only
#endif
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

// Loss bindings. Class-dim losses take the input as an (N, C, S) array (the
// Python layer reshapes (N, C, d1, ...) and (C,) to it) and int64 targets as
// (N, S); any element strides are accepted, outputs are C-contiguous.
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

#include "bindings/common.h"
#include "nnfast/cuda.h"
#include "nnfast/loss.h"

namespace {

Reduction reduction_code(const char* op, int red) {
  if (red < 0 || red > 2) value_error(op, "reduction code 0 (none), 1 (mean) or 2 (sum), got " + std::to_string(red));
  return static_cast<Reduction>(red);
}

template <typename T>
View3<T> view3(const char* op, const py::array& a, const char* name) {
  if (a.ndim() == 2)  // (N, C) is (N, C, 1): the common classifier case, passed without a reshape
    return View3<T>{ptr<T>(a), elem_stride(op, a, name, 0), elem_stride(op, a, name, 1), 1};
  check_ndim(op, a, name, 3);
  return View3<T>{ptr<T>(a), elem_stride(op, a, name, 0), elem_stride(op, a, name, 1), elem_stride(op, a, name, 2)};
}

template <typename T>
View2<T> view2(const char* op, const py::array& a, const char* name) {
  check_ndim(op, a, name, 2);
  return View2<T>{ptr<T>(a), elem_stride(op, a, name, 0), elem_stride(op, a, name, 1)};
}

TargetView target_view(const char* op, const py::array& t, index_t N, index_t S) {
  if (t.dtype().kind() != 'i' || t.itemsize() != 8)
    type_error(op, "target to be int64 class indices, got " + dtype_str(t));
  const char order = t.dtype().byteorder();
  if (order == '>' || order == '!') type_error(op, "target in native byte order");
  check_aligned(op, t, "target");
  if (S == 1 && t.ndim() == 1) {  // (N,) targets of (N, C) logits
    check_shape(op, t, "target", {N});
    return TargetView{static_cast<const std::int64_t*>(t.data()), elem_stride(op, t, "target", 0), 1};
  }
  check_shape(op, t, "target", {N, S});
  return TargetView{static_cast<const std::int64_t*>(t.data()), elem_stride(op, t, "target", 0),
                    elem_stride(op, t, "target", 1)};
}

void check_targets(const char* op, TargetView tv, index_t N, index_t S, index_t C, index_t ignore_index) {
  index_t bad;
  if (N * S < kHoldGilBelow) {  // a short scan: not worth releasing the GIL for
    bad = find_bad_target(tv, N, S, C, ignore_index);
  } else {
    py::gil_scoped_release release;
    bad = find_bad_target(tv, N, S, C, ignore_index);
  }
  if (bad >= 0) {
    const index_t n = bad / S, s = bad - n * S;
    const std::int64_t* at = tv.p + n * tv.sn + s * tv.ss;
    std::int64_t v;
#if NNFAST_BIND_CUDA
    cuda_copy_to_host(&v, at, sizeof v);  // the targets are in device memory
#else
    v = *at;
#endif
    value_error(op, "target values in [0, " + std::to_string(C) + ") or ignore_index (" +
                        std::to_string(ignore_index) + "), got " + std::to_string(v) + " at position " +
                        std::to_string(bad));
  }
}

// An output array: same dtype as ref, C-contiguous, writeable, `size` elements, no overlap with inputs.
void check_out(const char* op, const py::array& ref, const py::array& out, const char* name, index_t size,
               std::initializer_list<const py::array*> inputs) {
  check_output(op, ref, out, name);
  if (static_cast<index_t>(out.size()) != size)
    value_error(op, std::string(name) + " with " + std::to_string(size) + " elements, got " +
                        std::to_string(out.size()));
  for (const py::array* in : inputs) check_no_alias(op, out, name, *in, "an input");
}

// An optional output (None or an array) checked as by check_out, and not overlapping the optional `others`.
void check_opt_out(const char* op, const py::array& ref, const py::object& out, const char* name, index_t size,
                   std::initializer_list<const py::array*> inputs,
                   std::initializer_list<std::pair<const py::object*, const char*>> others) {
  if (out.is_none()) return;
  check_out(op, ref, as_array(op, out, name), name, size, inputs);
  for (const auto& o : others)
    if (!o.first->is_none()) check_no_alias(op, out.cast<py::array>(), name, o.first->cast<py::array>(), o.second);
}

// Optional per-class weight: None or a contiguous (C,) array of the input's dtype.
py::object class_weight(const char* op, const py::array& x, const py::object& weight, index_t C) {
  if (weight.is_none()) return py::none();
  return check_array(op, x, weight, "weight", {C}, false);
}

void check_smoothing(const char* op, double eps) {
  if (!(eps >= 0.0 && eps <= 1.0)) value_error(op, "label_smoothing in [0, 1], got " + std::to_string(eps));
}

// The (N, C, S) input of a class-dim loss with at least one class, and the reduction.
struct ClassInput {
  DType dt;
  index_t N, C, S;
  Reduction red;
};
ClassInput class_input(const char* op, const py::array& x, int reduction) {
  DType dt = float_dtype(op, x, "input");
  if (x.ndim() != 2) check_ndim(op, x, "input", 3);  // (N, C) counts as (N, C, 1)
  const index_t N = x.shape(0), C = x.shape(1), S = x.ndim() == 2 ? 1 : x.shape(2);
  if (C < 1) value_error(op, "input with at least one class, got C = 0");
  return {dt, N, C, S, reduction_code(op, reduction)};
}

// ------------------------------------------------------------------ cross_entropy
void cross_entropy_binding(py::array loss, py::object dx, py::array x, py::array target, py::object weight,
                           index_t ignore_index, double label_smoothing, int reduction) {
  const char* op = "cross_entropy";
  const ClassInput c = class_input(op, x, reduction);
  check_smoothing(op, label_smoothing);
  TargetView tv = target_view(op, target, c.N, c.S);
  py::object w = class_weight(op, x, weight, c.C);
  check_out(op, x, loss, "loss", c.red == Reduction::None ? c.N * c.S : 1, {&x, &target});
  check_opt_out(op, x, dx, "grad_input", c.N * c.C * c.S, {&x, &target, &loss}, {{&w, "weight"}});
  if (!dx.is_none()) {
    if (x.ndim() == 2) check_shape(op, dx.cast<py::array>(), "grad_input", {c.N, c.C});
    else check_shape(op, dx.cast<py::array>(), "grad_input", {c.N, c.C, c.S});
  }
  if (!w.is_none()) check_no_alias(op, loss, "loss", w.cast<py::array>(), "weight");
  check_targets(op, tv, c.N, c.S, c.C, ignore_index);
  run_sized(c.dt, c.N * c.C * c.S, [&](auto tag) {
    using T = decltype(tag);
    return [=, pl = mut_ptr<T>(loss), pdx = opt_mut_ptr<T>(dx), xv = view3<T>(op, x, "input"), pw = opt_ptr<T>(w)] {
      cross_entropy_forward<T>(pl, pdx, xv, tv, pw, c.N, c.C, c.S, ignore_index, label_smoothing, c.red);
    };
  });
}

void cross_entropy_prob_binding(py::array loss, py::object dx, py::object dt_obj, py::array x, py::array target,
                                py::object weight, double label_smoothing, int reduction) {
  const char* op = "cross_entropy";
  const ClassInput c = class_input(op, x, reduction);
  check_smoothing(op, label_smoothing);
  same_dtype(op, x, target, "target");
  check_shape(op, target, "target", {c.N, c.C, c.S});
  py::object w = class_weight(op, x, weight, c.C);
  const index_t n = c.N * c.C * c.S;
  check_out(op, x, loss, "loss", c.red == Reduction::None ? c.N * c.S : 1, {&x, &target});
  check_opt_out(op, x, dx, "grad_input", n, {&x, &target, &loss}, {{&w, "weight"}});
  check_opt_out(op, x, dt_obj, "grad_target", n, {&x, &target, &loss}, {{&w, "weight"}, {&dx, "grad_input"}});
  if (!w.is_none()) check_no_alias(op, loss, "loss", w.cast<py::array>(), "weight");
  run_released(c.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pl = mut_ptr<T>(loss), pdx = opt_mut_ptr<T>(dx), pdt = opt_mut_ptr<T>(dt_obj),
            xv = view3<T>(op, x, "input"), tv = view3<T>(op, target, "target"), pw = opt_ptr<T>(w)] {
      cross_entropy_prob_forward<T>(pl, pdx, pdt, xv, tv, pw, c.N, c.C, c.S, label_smoothing, c.red);
    };
  });
}

// grad_input = saved * grad (grad: a scalar, or an (N, S) contiguous array for reduction none).
void loss_scale_grad_binding(py::array dx, py::array saved, py::object grad) {
  const char* op = "loss_backward";
  DType dt = check_input(op, saved, "saved", 3);
  const index_t N = saved.shape(0), C = saved.shape(1), S = saved.shape(2);
  check_out(op, saved, dx, "grad_input", N * C * S, {&saved});
  const GradArg g = grad_arg(op, saved, grad, N * S);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(dx), ps = ptr<T>(saved), pg = opt_ptr<T>(g.array), gs = static_cast<T>(g.scalar)] {
      loss_scale_grad<T>(pdx, ps, pg, gs, N, C, S);
    };
  });
}

// ------------------------------------------------------------------ nll_loss
void nll_loss_binding(py::array loss, py::array x, py::array target, py::object weight, index_t ignore_index,
                      int reduction) {
  const char* op = "nll_loss";
  const ClassInput c = class_input(op, x, reduction);
  TargetView tv = target_view(op, target, c.N, c.S);
  py::object w = class_weight(op, x, weight, c.C);
  check_out(op, x, loss, "loss", c.red == Reduction::None ? c.N * c.S : 1, {&x, &target});
  if (!w.is_none()) check_no_alias(op, loss, "loss", w.cast<py::array>(), "weight");
  check_targets(op, tv, c.N, c.S, c.C, ignore_index);
  run_released(c.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pl = mut_ptr<T>(loss), xv = view3<T>(op, x, "input"), pw = opt_ptr<T>(w)] {
      nll_loss_forward<T>(pl, xv, tv, pw, c.N, c.C, c.S, ignore_index, c.red);
    };
  });
}

void nll_loss_backward_binding(py::array dx, py::object grad, py::array target, py::object weight,
                               index_t ignore_index, int reduction) {
  const char* op = "nll_loss_backward";
  DType dt = check_input(op, dx, "grad_input", 3);
  check_writeable(op, dx, "grad_input");
  const index_t N = dx.shape(0), C = dx.shape(1), S = dx.shape(2);
  Reduction red = reduction_code(op, reduction);
  TargetView tv = target_view(op, target, N, S);
  check_no_alias(op, dx, "grad_input", target, "target");
  py::object w = class_weight(op, dx, weight, C);
  if (!w.is_none()) check_no_alias(op, dx, "grad_input", w.cast<py::array>(), "weight");
  const GradArg g = grad_arg(op, dx, grad, N * S);
  check_targets(op, tv, N, S, C, ignore_index);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(dx), pg = opt_ptr<T>(g.array), gs = static_cast<T>(g.scalar), pw = opt_ptr<T>(w)] {
      nll_loss_backward<T>(pdx, pg, gs, tv, pw, N, C, S, ignore_index, red);
    };
  });
}

// ------------------------------------------------------------------ pointwise losses
PointLoss point_kind(const char* op, int kind) {
  if (kind < 0 || kind > static_cast<int>(PointLoss::Perceptron))
    value_error(op, "a valid pointwise loss code, got " + std::to_string(kind));
  return static_cast<PointLoss>(kind);
}

// x, y: (R, K); w, pw: None or (R, K) views (zero strides for broadcasting) of x's dtype.
void check_point_operands(const char* op, const py::array& x, const py::array& y, const py::object& w,
                          const py::object& pw) {
  check_ndim(op, x, "input", 2);
  same_dtype(op, x, y, "target");
  check_shape(op, y, "target", {static_cast<index_t>(x.shape(0)), static_cast<index_t>(x.shape(1))});
  for (auto pr : {std::make_pair(&w, "weight"), std::make_pair(&pw, "pos_weight")}) {
    if (pr.first->is_none()) continue;
    py::array a = as_array(op, *pr.first, pr.second);
    same_dtype(op, x, a, pr.second);
    check_shape(op, a, pr.second, {static_cast<index_t>(x.shape(0)), static_cast<index_t>(x.shape(1))});
  }
}

template <typename T>
View2<T> opt_view2(const char* op, const py::object& o, const char* name) {
  if (o.is_none()) return View2<T>{};
  return view2<T>(op, o.cast<py::array>(), name);
}

void pointwise_loss_binding(py::array out, py::array x, py::array y, py::object w, py::object pw, int kind,
                            double param, int reduction, double out_scale, const std::string& op_name) {
  const char* op = op_name.c_str();
  DType dt = float_dtype(op, x, "input");
  check_point_operands(op, x, y, w, pw);
  PointLoss k = point_kind(op, kind);
  Reduction red = reduction_code(op, reduction);
  const index_t R = x.shape(0), K = x.shape(1);
  check_out(op, x, out, "out", red == Reduction::None ? R * K : 1, {&x, &y});
  for (auto pr : {std::make_pair(&w, "weight"), std::make_pair(&pw, "pos_weight")})
    if (!pr.first->is_none()) check_no_alias(op, out, "out", pr.first->cast<py::array>(), pr.second);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, po = mut_ptr<T>(out), xv = view2<T>(op, x, "input"), yv = view2<T>(op, y, "target"),
            wv = opt_view2<T>(op, w, "weight"), pv = opt_view2<T>(op, pw, "pos_weight")] {
      pointwise_loss_forward<T>(po, xv, yv, wv, pv, R, K, k, param, red, out_scale);
    };
  });
}

void pointwise_loss_backward_binding(py::object dx, py::object dy, py::object grad, double g_scale, py::array x,
                                     py::array y, py::object w, py::object pw, int kind, double param,
                                     const std::string& op_name) {
  const std::string opb = op_name + "_backward";
  const char* op = opb.c_str();
  DType dt = float_dtype(op, x, "input");
  check_point_operands(op, x, y, w, pw);
  PointLoss k = point_kind(op, kind);
  const index_t R = x.shape(0), K = x.shape(1);
  check_opt_out(op, x, dx, "grad_input", R * K, {&x, &y}, {{&w, "weight"}, {&pw, "pos_weight"}});
  check_opt_out(op, x, dy, "grad_target", R * K, {&x, &y}, {{&w, "weight"}, {&pw, "pos_weight"}, {&dx, "grad_input"}});
  const GradArg g = grad_arg(op, x, grad, R * K, /*none_ok=*/true);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = opt_mut_ptr<T>(dx), pdy = opt_mut_ptr<T>(dy), pg = opt_ptr<T>(g.array),
            xv = view2<T>(op, x, "input"), yv = view2<T>(op, y, "target"), wv = opt_view2<T>(op, w, "weight"),
            pv = opt_view2<T>(op, pw, "pos_weight")] {
      pointwise_loss_backward<T>(pdx, pdy, pg, static_cast<T>(g_scale), xv, yv, wv, pv, R, K, k, param);
    };
  });
}

void rmse_loss_binding(py::array out, py::array x, py::array y) {
  const char* op = "rmse_loss";
  DType dt = float_dtype(op, x, "input");
  check_point_operands(op, x, y, py::none(), py::none());
  const index_t R = x.shape(0), K = x.shape(1);
  check_out(op, x, out, "out", 1, {&x, &y});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, po = mut_ptr<T>(out), xv = view2<T>(op, x, "input"), yv = view2<T>(op, y, "target")] {
      rmse_loss_forward<T>(po, xv, yv, R, K);
    };
  });
}

// ------------------------------------------------------------------ linear_cross_entropy
struct LinearCEArgs {
  index_t N, H, C;
  const std::int64_t* t;
};

LinearCEArgs check_linear_ce(const char* op, const py::array& x, const py::array& W, const py::object& b,
                             const py::array& target, index_t ignore_index, double eps, index_t chunk) {
  float_dtype(op, x, "input");
  check_ndim(op, x, "input", 2);
  same_dtype(op, x, W, "weight");
  check_ndim(op, W, "weight", 2);
  const index_t N = x.shape(0), H = x.shape(1), C = W.shape(0);
  if (W.shape(1) != H) value_error(op, "weight of shape (C, " + std::to_string(H) + "), got " + shape_str(W));
  if (C < 1) value_error(op, "at least one class, got weight of shape " + shape_str(W));
  if (!b.is_none()) check_array(op, x, b, "bias", {C}, false);
  if (target.dtype().kind() != 'i' || target.itemsize() != 8)
    type_error(op, "target to be int64 class indices, got " + dtype_str(target));
  check_aligned(op, target, "target");
  check_shape(op, target, "target", {N});
  check_contiguous(op, target, "target");
  check_smoothing(op, eps);
  if (chunk < 1) value_error(op, "chunk_size >= 1, got " + std::to_string(chunk));
  TargetView tv{static_cast<const std::int64_t*>(target.data()), 1, 0};
  check_targets(op, tv, N, 1, C, ignore_index);
  return LinearCEArgs{N, H, C, tv.p};
}

// The optional kept logits (forward's output, backward's input): None, or on the CPU an (N, C)
// C-contiguous array of the input's dtype, apart from the other operands (the CUDA kernels
// always recompute the logits).
void check_logits(const char* op, const py::array& x, const py::object& logits, LinearCEArgs a, bool written,
                  std::initializer_list<const py::object*> others) {
  if (logits.is_none()) return;
#if NNFAST_BIND_CUDA
  (void)x, (void)a, (void)written, (void)others;
  value_error(op, "logits=None on cuda (its kernels recompute the logits tiles)");
#else
  const py::array l = check_array(op, x, logits, "logits", {a.N, a.C}, written);
  for (const py::object* o : others)
    if (!o->is_none()) check_no_alias(op, l, "logits", o->cast<py::array>(), "another operand");
#endif
}

void linear_cross_entropy_binding(py::array loss, py::array lse, py::array x, py::array W, py::object b,
                                  py::array target, index_t ignore_index, double label_smoothing, int reduction,
                                  index_t chunk, py::object logits) {
  const char* op = "linear_cross_entropy";
  DType dt = float_dtype(op, x, "input");
  Reduction red = reduction_code(op, reduction);
  LinearCEArgs a = check_linear_ce(op, x, W, b, target, ignore_index, label_smoothing, chunk);
  check_out(op, x, loss, "loss", red == Reduction::None ? a.N : 1, {&x, &W, &target});
  check_out(op, x, lse, "lse", a.N, {&x, &W, &target, &loss});
  if (!b.is_none())
    for (auto o : {std::make_pair(&loss, "loss"), std::make_pair(&lse, "lse")})
      check_no_alias(op, *o.first, o.second, b.cast<py::array>(), "bias");
  const py::object ox = x, ow = W, ot = target, ol = loss, oe = lse;
  check_logits(op, x, logits, a, true, {&ox, &ow, &ot, &ol, &oe, &b});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pl = mut_ptr<T>(loss), pe = mut_ptr<T>(lse), xv = view2<T>(op, x, "input"),
            wv = view2<T>(op, W, "weight"), pb = opt_ptr<T>(b), pz = opt_mut_ptr<T>(logits)] {
#if NNFAST_BIND_CUDA
      (void)pz;
      linear_cross_entropy_forward<T>(pl, pe, xv, wv, pb, a.t, a.N, a.H, a.C, ignore_index, label_smoothing, red,
                                      chunk);
#else
      linear_cross_entropy_forward<T>(pl, pe, xv, wv, pb, a.t, a.N, a.H, a.C, ignore_index, label_smoothing, red,
                                      chunk, pz);
#endif
    };
  });
}

void linear_cross_entropy_backward_binding(py::object dx, py::object dW, py::object db, py::object grad,
                                           py::array lse, py::array x, py::array W, py::object b, py::array target,
                                           index_t ignore_index, double label_smoothing, int reduction,
                                           index_t chunk, py::object logits) {
  const char* op = "linear_cross_entropy_backward";
  DType dt = float_dtype(op, x, "input");
  Reduction red = reduction_code(op, reduction);
  LinearCEArgs a = check_linear_ce(op, x, W, b, target, ignore_index, label_smoothing, chunk);
  same_dtype(op, x, lse, "lse");
  check_contiguous(op, lse, "lse");
  check_shape(op, lse, "lse", {a.N});
  const std::initializer_list<const py::array*> ins = {&x, &W, &target, &lse};
  check_opt_out(op, x, dx, "grad_input", a.N * a.H, ins, {{&b, "bias"}});
  check_opt_out(op, x, dW, "grad_weight", a.C * a.H, ins, {{&b, "bias"}, {&dx, "grad_input"}});
  check_opt_out(op, x, db, "grad_bias", a.C, ins, {{&b, "bias"}, {&dx, "grad_input"}, {&dW, "grad_weight"}});
  if (!db.is_none() && b.is_none()) value_error(op, "no grad_bias without a bias");
  check_logits(op, x, logits, a, false, {&dx, &dW, &db});  // written outputs must not meet it
  const GradArg g = grad_arg(op, x, grad, a.N);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = opt_mut_ptr<T>(dx), pdw = opt_mut_ptr<T>(dW), pdb = opt_mut_ptr<T>(db),
            pg = opt_ptr<T>(g.array), gs = static_cast<T>(g.scalar), pe = ptr<T>(lse),
            xv = view2<T>(op, x, "input"), wv = view2<T>(op, W, "weight"), pb = opt_ptr<T>(b),
            pz = opt_ptr<T>(logits)] {
#if NNFAST_BIND_CUDA
      (void)pz;
      linear_cross_entropy_backward<T>(pdx, pdw, pdb, pg, gs, pe, xv, wv, pb, a.t, a.N, a.H, a.C, ignore_index,
                                       label_smoothing, red, chunk);
#else
      linear_cross_entropy_backward<T>(pdx, pdw, pdb, pg, gs, pe, xv, wv, pb, a.t, a.N, a.H, a.C, ignore_index,
                                       label_smoothing, red, chunk, pz);
#endif
    };
  });
}

}  // namespace

void init_loss(py::module_& m) {
  m.def("cross_entropy", &cross_entropy_binding, py::arg("loss"), py::arg("grad_input"), py::arg("input"),
        py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
        py::arg("reduction"),
        "Fused softmax cross-entropy, class-index targets: input (N, C, S), target int64 (N, S). "
        "Writes the loss and, when grad_input is given, d(loss)/d(input).");
  m.def("cross_entropy_prob", &cross_entropy_prob_binding, py::arg("loss"), py::arg("grad_input"),
        py::arg("grad_target"), py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("label_smoothing"),
        py::arg("reduction"), "Softmax cross-entropy with probability targets of the input's (N, C, S) shape.");
  m.def("loss_scale_grad", &loss_scale_grad_binding, py::arg("grad_input"), py::arg("saved"), py::arg("grad"),
        "grad_input = saved * grad (grad: a float, or per-row values for reduction none).");
  m.def("nll_loss", &nll_loss_binding, py::arg("loss"), py::arg("input"), py::arg("target"), py::arg("weight"),
        py::arg("ignore_index"), py::arg("reduction"));
  m.def("nll_loss_backward", &nll_loss_backward_binding, py::arg("grad_input"), py::arg("grad"), py::arg("target"),
        py::arg("weight"), py::arg("ignore_index"), py::arg("reduction"));
  m.def("pointwise_loss", &pointwise_loss_binding, py::arg("out"), py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("pos_weight"), py::arg("kind"), py::arg("param"), py::arg("reduction"),
        py::arg("out_scale"), py::arg("op") = "pointwise_loss",
        "Pointwise loss on (R, K) operands; reduced value = out_scale * sum.");
  m.def("pointwise_loss_backward", &pointwise_loss_backward_binding, py::arg("grad_input"), py::arg("grad_target"),
        py::arg("grad"), py::arg("grad_scale"), py::arg("input"), py::arg("target"), py::arg("weight"),
        py::arg("pos_weight"), py::arg("kind"), py::arg("param"), py::arg("op") = "pointwise_loss");
  m.def("rmse_loss", &rmse_loss_binding, py::arg("out"), py::arg("input"), py::arg("target"));
  m.def("linear_cross_entropy", &linear_cross_entropy_binding, py::arg("loss"), py::arg("lse"), py::arg("input"),
        py::arg("weight"), py::arg("bias"), py::arg("target"), py::arg("ignore_index"), py::arg("label_smoothing"),
        py::arg("reduction"), py::arg("chunk_size"), py::arg("logits") = py::none(),
        "cross_entropy(input @ weight.T + bias, target) in (row block x chunk_size) logits tiles; "
        "writes the loss and the per-row log-sum-exp for the backward (and, given an (N, C) logits "
        "array on the CPU, the logits, for the backward to reuse).");
  m.def("linear_cross_entropy_backward", &linear_cross_entropy_backward_binding, py::arg("grad_input"),
        py::arg("grad_weight"), py::arg("grad_bias"), py::arg("grad"), py::arg("lse"), py::arg("input"),
        py::arg("weight"), py::arg("bias"), py::arg("target"), py::arg("ignore_index"), py::arg("label_smoothing"),
        py::arg("reduction"), py::arg("chunk_size"), py::arg("logits") = py::none());
}

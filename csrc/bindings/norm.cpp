// Bindings of the normalization kernels (nnfast/norm.h). Every array must be
// C-contiguous; data arrays share one float dtype, saved statistics are
// float64. Optional arrays (weight, bias, gradients not wanted) are None.
#include <string>
#include <vector>

#include "bindings/common.h"
#include "nnfast/norm.h"

namespace {

using Shape = std::vector<index_t>;

// An array argument that may be absent (None).
struct Arr {
  py::array a = no_array();
  bool on = false;
};
inline Arr in(const py::array& a) { return {a, true}; }

// A data array: the reference dtype, the given shape, C-contiguous.
Arr data_arr(const char* op, const py::array& ref, const py::object& o, const char* name, const Shape& shape,
             bool out) {
  return {check_array(op, ref, o, name, shape, out), true};
}

// A saved-statistics array: float64, the given shape, C-contiguous.
Arr stat_arr(const char* op, const py::object& o, const char* name, const Shape& shape, bool out) {
  py::array a = as_array(op, o, name);
  if (a.dtype().kind() != 'f' || a.itemsize() != 8)
    type_error(op, std::string(name) + " to be float64, got " + dtype_str(a));
  float_dtype(op, a, name);  // native byte order, aligned
  check_shape(op, a, name, shape);
  check_contiguous(op, a, name);
  if (out) check_writeable(op, a, name);
  return {a, true};
}

Arr opt_data(const char* op, const py::array& ref, const py::object& o, const char* name, const Shape& shape,
             bool out) {
  return has(o) ? data_arr(op, ref, o, name, shape, out) : Arr();
}

template <typename T>
T* mp(Arr& a) {
  return a.on ? mut_ptr<T>(a.a) : nullptr;
}
template <typename T>
const T* cp(const Arr& a) {
  return a.on ? ptr<T>(a.a) : nullptr;
}

// Outputs must not overlap any input (or each other).
void no_alias(const char* op, const std::vector<std::pair<const Arr*, const char*>>& outs,
              const std::vector<std::pair<const Arr*, const char*>>& ins) {
  for (size_t i = 0; i < outs.size(); ++i) {
    const Arr& o = *outs[i].first;
    if (!o.on) continue;
    for (const auto& p : ins)
      if (p.first->on) check_no_alias(op, o.a, outs[i].second, p.first->a, p.second);
    for (size_t j = i + 1; j < outs.size(); ++j)
      if (outs[j].first->on) check_no_alias(op, o.a, outs[i].second, outs[j].first->a, outs[j].second);
  }
}

index_t dim_of(const py::array& a, int d) { return static_cast<index_t>(a.shape(d)); }

// Layer, batch and group norm share one argument layout: x and out / grad of the
// data shape, float64 mean / rstd of the statistics shape (mean may be None for
// RMS norm), optional weight / bias / their gradients of the parameter shape.
struct NormShapes {
  Shape data, stat, param;
  bool mean_required;
  const char* mean_missing;  // the message when a required mean is None
};

// What forward and backward both take: input (the dtype reference), the statistics mean /
// rstd (written by forward, read by backward; mean may be None for RMS norm) and weight.
struct NormArgs {
  Arr x, mean, rstd, weight;

  // The checks both directions open with, in this order: input, the tensor of its
  // shape (forward: out, written; backward: grad, read), returned, then the
  // statistics and weight.
  Arr check_shared(const char* op, const py::array& x_a, const py::object& data_o, const py::object& mean_o,
                   const py::object& rstd_o, const py::object& weight_o, const NormShapes& s, bool forward) {
    x = in(x_a);
    Arr data = data_arr(op, x_a, data_o, forward ? "out" : "grad", s.data, forward);
    mean = has(mean_o) ? stat_arr(op, mean_o, "mean", s.stat, forward) : Arr();
    if (s.mean_required && !mean.on) value_error(op, s.mean_missing);
    rstd = stat_arr(op, rstd_o, "rstd", s.stat, forward);
    weight = opt_data(op, x.a, weight_o, "weight", s.param, false);
    return data;
  }
};

// Forward: out, mean, rstd written; input, weight, bias read.
struct NormForward : NormArgs {
  Arr y, bias;
};
NormForward check_norm_forward(const char* op, const py::array& x, const py::object& y, const py::object& mean,
                               const py::object& rstd, const py::object& weight, const py::object& bias,
                               const NormShapes& s) {
  NormForward f;
  f.y = f.check_shared(op, x, y, mean, rstd, weight, s, true);
  f.bias = opt_data(op, x, bias, "bias", s.param, false);
  return f;
}
void no_alias_forward(const char* op, const NormForward& f, std::vector<std::pair<const Arr*, const char*>> ins) {
  ins.insert(ins.begin(), {{&f.x, "input"}, {&f.weight, "weight"}, {&f.bias, "bias"}});
  no_alias(op, {{&f.y, "out"}, {&f.mean, "mean"}, {&f.rstd, "rstd"}}, ins);
}

// Backward: grad_input / grad_weight / grad_bias (each optional) written; grad,
// input, mean, rstd, weight read. run() calls kernel(dx, dweight, dbias, dy, x,
// mean, rstd, weight) with the GIL released.
struct NormBackward : NormArgs {
  Arr dy, dx, dweight, dbias;

  template <typename K>
  void run(DType dt, K&& kernel) {
    run_released(dt, [&](auto tag) {
      using T = decltype(tag);
      return [&kernel, pdx = mp<T>(dx), pdw = mp<T>(dweight), pdb = mp<T>(dbias), pdy = cp<T>(dy), px = cp<T>(x),
              pm = cp<double>(mean), pr = cp<double>(rstd), pw = cp<T>(weight)] {
        kernel(pdx, pdw, pdb, pdy, px, pm, pr, pw);
      };
    });
  }
};
NormBackward check_norm_backward(const char* op, const py::object& dx, const py::object& dweight,
                                 const py::object& dbias, const py::array& x, const py::object& dy,
                                 const py::object& mean, const py::object& rstd, const py::object& weight,
                                 const NormShapes& s) {
  NormBackward b;
  b.dy = b.check_shared(op, x, dy, mean, rstd, weight, s, false);
  b.dx = opt_data(op, x, dx, "grad_input", s.data, true);
  b.dweight = opt_data(op, x, dweight, "grad_weight", s.param, true);
  b.dbias = opt_data(op, x, dbias, "grad_bias", s.param, true);
  no_alias(op, {{&b.dx, "grad_input"}, {&b.dweight, "grad_weight"}, {&b.dbias, "grad_bias"}},
           {{&b.dy, "grad"}, {&b.x, "input"}, {&b.mean, "mean"}, {&b.rstd, "rstd"}, {&b.weight, "weight"}});
  return b;
}

// ------------------------------------------------------------------ layer / RMS norm
// x, y: (M, D); weight, bias: (D,) or None; mean, rstd: (M,) float64 (mean None for rms).
NormShapes row_shapes(const py::array& x, bool rms) {
  const index_t M = dim_of(x, 0), D = dim_of(x, 1);
  return {{M, D}, {M}, {D}, !rms, "a mean array for layer_norm"};
}

void layer_norm_forward_binding(py::array y, py::object mean, py::array rstd, py::array x, py::object weight,
                                py::object bias, double eps, bool rms) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  DType dt = check_input(op, x, "input", 2);
  const index_t M = dim_of(x, 0), D = dim_of(x, 1);
  NormForward f = check_norm_forward(op, x, y, mean, rstd, weight, bias, row_shapes(x, rms));
  no_alias_forward(op, f, {});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mp<T>(f.y), pm = mp<double>(f.mean), pr = mp<double>(f.rstd), px = cp<T>(f.x),
            pw = cp<T>(f.weight), pb = cp<T>(f.bias)] { layer_norm_forward<T>(py_, pm, pr, px, pw, pb, M, D, eps, rms); };
  });
}

void layer_norm_backward_binding(py::object dx, py::object dweight, py::object dbias, py::array dy, py::array x,
                                 py::object mean, py::array rstd, py::object weight, bool rms) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  DType dt = check_input(op, x, "input", 2);
  const index_t M = dim_of(x, 0), D = dim_of(x, 1);
  NormBackward b = check_norm_backward(op, dx, dweight, dbias, x, dy, mean, rstd, weight, row_shapes(x, rms));
  b.run(dt, [&](auto... p) { layer_norm_backward(p..., M, D, rms); });
}

// ------------------------------------------------------------------ batch norm
// x, y: (N, C, L); mean, rstd: (C,) float64; running_*: (C,) or None (required when not training).
void batch_norm_forward_binding(py::array y, py::array mean, py::array rstd, py::object running_mean,
                                py::object running_var, py::array x, py::object weight, py::object bias,
                                bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  DType dt = check_input(op, x, "input", 3);
  const index_t N = dim_of(x, 0), C = dim_of(x, 1), L = dim_of(x, 2);
  NormForward f = check_norm_forward(op, x, y, mean, rstd, weight, bias, {{N, C, L}, {C}, {C}, true, ""});
  Arr rma = opt_data(op, x, running_mean, "running_mean", {C}, training);
  Arr rva = opt_data(op, x, running_var, "running_var", {C}, training);
  if (!training && (!rma.on || !rva.on))
    value_error(op, "running_mean and running_var when not training");
  no_alias_forward(op, f, {{&rma, "running_mean"}, {&rva, "running_var"}});
  if (training && rma.on) no_alias(op, {{&rma, "running_mean"}}, {{&f.x, "input"}, {&rva, "running_var"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mp<T>(f.y), pm = mp<double>(f.mean), pr = mp<double>(f.rstd), prm = mp<T>(rma),
            prv = mp<T>(rva), px = cp<T>(f.x), pw = cp<T>(f.weight), pb = cp<T>(f.bias)] {
      batch_norm_forward<T>(py_, pm, pr, prm, prv, px, pw, pb, N, C, L, training, momentum, eps);
    };
  });
}

void batch_norm_backward_binding(py::object dx, py::object dweight, py::object dbias, py::array dy, py::array x,
                                 py::array mean, py::array rstd, py::object weight, bool training) {
  const char* op = "batch_norm_backward";
  DType dt = check_input(op, x, "input", 3);
  const index_t N = dim_of(x, 0), C = dim_of(x, 1), L = dim_of(x, 2);
  NormBackward b = check_norm_backward(op, dx, dweight, dbias, x, dy, mean, rstd, weight,
                                       {{N, C, L}, {C}, {C}, true, ""});
  b.run(dt, [&](auto... p) { batch_norm_backward(p..., N, C, L, training); });
}

// ------------------------------------------------------------------ group / instance norm
index_t check_groups(const char* op, index_t C, index_t G) {
  if (G <= 0 || C % G != 0)
    value_error(op, "num_groups > 0 dividing the channel count " + std::to_string(C) + ", got " + std::to_string(G));
  return G;
}

// x, y: (N, C, L); weight, bias: (C,) or None; mean, rstd: (N, G) float64.
void group_norm_forward_binding(py::array y, py::array mean, py::array rstd, py::array x, py::object weight,
                                py::object bias, index_t groups, double eps) {
  const char* op = "group_norm";
  DType dt = check_input(op, x, "input", 3);
  const index_t N = dim_of(x, 0), C = dim_of(x, 1), L = dim_of(x, 2);
  const index_t G = check_groups(op, C, groups);
  NormForward f = check_norm_forward(op, x, y, mean, rstd, weight, bias, {{N, C, L}, {N, G}, {C}, true, ""});
  no_alias_forward(op, f, {});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mp<T>(f.y), pm = mp<double>(f.mean), pr = mp<double>(f.rstd), px = cp<T>(f.x),
            pw = cp<T>(f.weight), pb = cp<T>(f.bias)] { group_norm_forward<T>(py_, pm, pr, px, pw, pb, N, C, L, G, eps); };
  });
}

void group_norm_backward_binding(py::object dx, py::object dweight, py::object dbias, py::array dy, py::array x,
                                 py::array mean, py::array rstd, py::object weight, index_t groups) {
  const char* op = "group_norm_backward";
  DType dt = check_input(op, x, "input", 3);
  const index_t N = dim_of(x, 0), C = dim_of(x, 1), L = dim_of(x, 2);
  const index_t G = check_groups(op, C, groups);
  NormBackward b = check_norm_backward(op, dx, dweight, dbias, x, dy, mean, rstd, weight,
                                       {{N, C, L}, {N, G}, {C}, true, ""});
  b.run(dt, [&](auto... p) { group_norm_backward(p..., N, C, L, G); });
}

// running_*: (C,) or None; mean, rstd: (N, C) float64 from group_norm_forward with groups = C.
void instance_norm_update_running_binding(py::object running_mean, py::object running_var, py::array mean,
                                          py::array rstd, index_t L, double momentum, double eps) {
  const char* op = "instance_norm";
  check_ndim(op, mean, "mean", 2);
  const index_t N = dim_of(mean, 0), C = dim_of(mean, 1);
  Arr ma = stat_arr(op, mean, "mean", {N, C}, false);
  Arr ra = stat_arr(op, rstd, "rstd", {N, C}, false);
  if (!has(running_mean) && !has(running_var)) return;
  py::array ref =
      has(running_mean) ? as_array(op, running_mean, "running_mean") : as_array(op, running_var, "running_var");
  DType dt = float_dtype(op, ref, "running_mean");
  Arr rma = opt_data(op, ref, running_mean, "running_mean", {C}, true);
  Arr rva = opt_data(op, ref, running_var, "running_var", {C}, true);
  no_alias(op, {{&rma, "running_mean"}, {&rva, "running_var"}}, {{&ma, "mean"}, {&ra, "rstd"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, prm = mp<T>(rma), prv = mp<T>(rva), pm = cp<double>(ma), pr = cp<double>(ra)] {
      instance_norm_update_running<T>(prm, prv, pm, pr, N, C, L, momentum, eps);
    };
  });
}

// ------------------------------------------------------------------ weight norm
// v, w: (N, C, L) with the kept dimension as C; g: (C,); norm: (C,) float64.
void weight_norm_forward_binding(py::array w, py::array norm, py::array v, py::array g) {
  const char* op = "weight_norm";
  DType dt = check_input(op, v, "weight_v", 3);
  const Arr V = in(v);
  const index_t N = dim_of(v, 0), C = dim_of(v, 1), L = dim_of(v, 2);
  Arr wa = data_arr(op, v, w, "out", {N, C, L}, true);
  Arr na = stat_arr(op, norm, "norm", {C}, true);
  Arr ga = data_arr(op, v, g, "weight_g", {C}, false);
  no_alias(op, {{&wa, "out"}, {&na, "norm"}}, {{&V, "weight_v"}, {&ga, "weight_g"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pw = mp<T>(wa), pn = mp<double>(na), pv = cp<T>(V), pg = cp<T>(ga)] {
      weight_norm_forward<T>(pw, pn, pv, pg, N, C, L);
    };
  });
}

void weight_norm_backward_binding(py::object dv, py::object dg, py::array dw, py::array v, py::array g,
                                  py::array norm) {
  const char* op = "weight_norm_backward";
  DType dt = check_input(op, v, "weight_v", 3);
  const Arr V = in(v);
  const index_t N = dim_of(v, 0), C = dim_of(v, 1), L = dim_of(v, 2);
  Arr dwa = data_arr(op, v, dw, "grad", {N, C, L}, false);
  Arr ga = data_arr(op, v, g, "weight_g", {C}, false);
  Arr na = stat_arr(op, norm, "norm", {C}, false);
  Arr dva = opt_data(op, v, dv, "grad_v", {N, C, L}, true);
  Arr dga = opt_data(op, v, dg, "grad_g", {C}, true);
  no_alias(op, {{&dva, "grad_v"}, {&dga, "grad_g"}}, {{&dwa, "grad"}, {&V, "weight_v"}, {&ga, "weight_g"},
                                                     {&na, "norm"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdv = mp<T>(dva), pdg = mp<T>(dga), pdw = cp<T>(dwa), pv = cp<T>(V), pg = cp<T>(ga),
            pn = cp<double>(na)] { weight_norm_backward<T>(pdv, pdg, pdw, pv, pg, pn, N, C, L); };
  });
}

// ------------------------------------------------------------------ spectral norm
// W: (M, D); u: (M,), v: (D,) updated in place.
void spectral_power_iteration_binding(py::array u, py::array v, py::array W, int n_iter, double eps) {
  const char* op = "spectral_norm";
  DType dt = check_input(op, W, "weight", 2);
  const Arr WM = in(W);
  const index_t M = dim_of(W, 0), D = dim_of(W, 1);
  Arr ua = data_arr(op, W, u, "u", {M}, true);
  Arr va = data_arr(op, W, v, "v", {D}, true);
  if (n_iter < 0) value_error(op, "n_power_iterations >= 0, got " + std::to_string(n_iter));
  no_alias(op, {{&ua, "u"}, {&va, "v"}}, {{&WM, "weight"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pu = mp<T>(ua), pv = mp<T>(va), pW = cp<T>(WM)] {
      spectral_norm_power_iteration<T>(pu, pv, pW, M, D, n_iter, eps);
    };
  });
}

double spectral_forward_binding(py::array y, py::array W, py::array u, py::array v) {
  const char* op = "spectral_norm";
  DType dt = check_input(op, W, "weight", 2);
  const Arr WM = in(W);
  const index_t M = dim_of(W, 0), D = dim_of(W, 1);
  Arr ya = data_arr(op, W, y, "out", {M, D}, true);
  Arr ua = data_arr(op, W, u, "u", {M}, false);
  Arr va = data_arr(op, W, v, "v", {D}, false);
  no_alias(op, {{&ya, "out"}}, {{&WM, "weight"}, {&ua, "u"}, {&va, "v"}});
  double sigma = 0;
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, &sigma, py_ = mp<T>(ya), pW = cp<T>(WM), pu = cp<T>(ua), pv = cp<T>(va)] {
      sigma = spectral_norm_forward<T>(py_, pW, pu, pv, M, D);
    };
  });
  return sigma;
}

void spectral_backward_binding(py::array dW, py::array dy, py::array W, py::array u, py::array v, double sigma) {
  const char* op = "spectral_norm_backward";
  DType dt = check_input(op, W, "weight", 2);
  const Arr WM = in(W);
  const index_t M = dim_of(W, 0), D = dim_of(W, 1);
  Arr dWa = data_arr(op, W, dW, "grad_weight", {M, D}, true);
  Arr dya = data_arr(op, W, dy, "grad", {M, D}, false);
  Arr ua = data_arr(op, W, u, "u", {M}, false);
  Arr va = data_arr(op, W, v, "v", {D}, false);
  no_alias(op, {{&dWa, "grad_weight"}}, {{&WM, "weight"}, {&dya, "grad"}, {&ua, "u"}, {&va, "v"}});
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdW = mp<T>(dWa), pdy = cp<T>(dya), pW = cp<T>(WM), pu = cp<T>(ua), pv = cp<T>(va)] {
      spectral_norm_backward<T>(pdW, pdy, pW, pu, pv, sigma, M, D);
    };
  });
}

}  // namespace

void init_norm(py::module_& m) {
  m.def("layer_norm_forward", &layer_norm_forward_binding, py::arg("out"), py::arg("mean"), py::arg("rstd"),
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("rms") = false);
  m.def("layer_norm_backward", &layer_norm_backward_binding, py::arg("grad_input"), py::arg("grad_weight"),
        py::arg("grad_bias"), py::arg("grad"), py::arg("input"), py::arg("mean"), py::arg("rstd"),
        py::arg("weight"), py::arg("rms") = false);
  m.def("batch_norm_forward", &batch_norm_forward_binding, py::arg("out"), py::arg("mean"), py::arg("rstd"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("training"), py::arg("momentum"), py::arg("eps"));
  m.def("batch_norm_backward", &batch_norm_backward_binding, py::arg("grad_input"), py::arg("grad_weight"),
        py::arg("grad_bias"), py::arg("grad"), py::arg("input"), py::arg("mean"), py::arg("rstd"),
        py::arg("weight"), py::arg("training"));
  m.def("group_norm_forward", &group_norm_forward_binding, py::arg("out"), py::arg("mean"), py::arg("rstd"),
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("num_groups"), py::arg("eps"));
  m.def("group_norm_backward", &group_norm_backward_binding, py::arg("grad_input"), py::arg("grad_weight"),
        py::arg("grad_bias"), py::arg("grad"), py::arg("input"), py::arg("mean"), py::arg("rstd"),
        py::arg("weight"), py::arg("num_groups"));
  m.def("instance_norm_update_running", &instance_norm_update_running_binding, py::arg("running_mean"),
        py::arg("running_var"), py::arg("mean"), py::arg("rstd"), py::arg("L"), py::arg("momentum"),
        py::arg("eps"));
  m.def("weight_norm_forward", &weight_norm_forward_binding, py::arg("out"), py::arg("norm"), py::arg("v"),
        py::arg("g"));
  m.def("weight_norm_backward", &weight_norm_backward_binding, py::arg("grad_v"), py::arg("grad_g"),
        py::arg("grad"), py::arg("v"), py::arg("g"), py::arg("norm"));
  m.def("spectral_norm_power_iteration", &spectral_power_iteration_binding, py::arg("u"), py::arg("v"),
        py::arg("weight"), py::arg("n_power_iterations"), py::arg("eps"));
  m.def("spectral_norm_forward", &spectral_forward_binding, py::arg("out"), py::arg("weight"), py::arg("u"),
        py::arg("v"));
  m.def("spectral_norm_backward", &spectral_backward_binding, py::arg("grad_weight"), py::arg("grad"),
        py::arg("weight"), py::arg("u"), py::arg("v"), py::arg("sigma"));
}

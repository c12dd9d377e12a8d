// Bindings of the convolution kernels (nnfast/conv.h). input / weight / bias / out
// and the gradients share one float dtype and are C-contiguous. stride, padding and
// dilation are (height, width) pairs; the geometry is checked here (channels,
// groups, kernel vs padded input, output shape) before any kernel runs.
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/common.h"
#include "nnfast/conv.h"
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/conv.h"
#else
#include "cpu/conv_bf16.h"
#endif

namespace {

using Pair = std::pair<index_t, index_t>;
using Shape = std::vector<index_t>;

index_t dim(const py::array& a, int d) { return static_cast<index_t>(a.shape(d)); }

std::string pair_str(const Pair& p) { return "(" + std::to_string(p.first) + ", " + std::to_string(p.second) + ")"; }

// The convolution geometry of `x` (N, C, H, W) and `weight` (OC, C / groups, kh, kw): checks the
// channels, groups, stride / padding / dilation and that the dilated kernel fits the padded input.
Conv2dShape conv_geometry(const char* op, const py::array& x, const py::array& weight, Pair stride, Pair padding,
                          Pair dilation, index_t groups) {
  check_ndim(op, weight, "weight", 4);
  if (groups < 1) value_error(op, "groups >= 1, got " + std::to_string(groups));
  if (stride.first < 1 || stride.second < 1) value_error(op, "stride >= 1, got " + pair_str(stride));
  if (dilation.first < 1 || dilation.second < 1) value_error(op, "dilation >= 1, got " + pair_str(dilation));
  if (padding.first < 0 || padding.second < 0) value_error(op, "padding >= 0, got " + pair_str(padding));
  Conv2dShape s;
  s.N = dim(x, 0), s.C = dim(x, 1), s.H = dim(x, 2), s.W = dim(x, 3);
  s.OC = dim(weight, 0), s.kh = dim(weight, 2), s.kw = dim(weight, 3);
  s.sh = stride.first, s.sw = stride.second, s.ph = padding.first, s.pw = padding.second;
  s.dh = dilation.first, s.dw = dilation.second, s.groups = groups;
  if (s.C % groups != 0 || s.OC % groups != 0)
    value_error(op, "channels divisible by groups = " + std::to_string(groups) + ", got " + std::to_string(s.C) +
                        " input and " + std::to_string(s.OC) + " output channels");
  if (dim(weight, 1) * groups != s.C)
    value_error(op, "weight of shape (out, " + std::to_string(s.C / groups) + ", kh, kw) for " +
                        std::to_string(s.C) + " input channels and groups = " + std::to_string(groups) + ", got " +
                        shape_str(weight));
  if (s.kh < 1 || s.kw < 1) value_error(op, "a non-empty kernel, got weight of shape " + shape_str(weight));
  const index_t ekh = s.dh * (s.kh - 1) + 1, ekw = s.dw * (s.kw - 1) + 1;
  if (ekh > s.H + 2 * s.ph || ekw > s.W + 2 * s.pw)
    value_error(op, "a (dilated) kernel " + pair_str({ekh, ekw}) + " no larger than the padded input " +
                        pair_str({s.H + 2 * s.ph, s.W + 2 * s.pw}));
  s.OH = (s.H + 2 * s.ph - ekh) / s.sh + 1;
  s.OW = (s.W + 2 * s.pw - ekw) / s.sw + 1;
  return s;
}

struct Opt {
  py::array a = no_array();
  bool on = false;
};
Opt opt(const char* op, const py::array& ref, const py::object& o, const char* name, const Shape& shape, bool out) {
  if (!has(o)) return {};
  return {check_array(op, ref, o, name, shape, out), true};
}
template <typename T>
T* mp(Opt& o) {
  return o.on ? mut_ptr<T>(o.a) : nullptr;
}
template <typename T>
const T* cp(const Opt& o) {
  return o.on ? ptr<T>(o.a) : nullptr;
}

void no_alias(const char* op, const std::vector<std::pair<const Opt*, const char*>>& outs,
              const std::vector<std::pair<const Opt*, const char*>>& ins) {
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i].first->on) continue;
    for (const auto& p : ins)
      if (p.first->on) check_no_alias(op, outs[i].first->a, outs[i].second, p.first->a, p.second);
    for (size_t j = i + 1; j < outs.size(); ++j)
      if (outs[j].first->on) check_no_alias(op, outs[i].first->a, outs[i].second, outs[j].first->a, outs[j].second);
  }
}

Shape conv_in_shape(const Conv2dShape& s) { return {s.N, s.C, s.H, s.W}; }
Shape conv_out_shape(const Conv2dShape& s) { return {s.N, s.OC, s.OH, s.OW}; }
Shape weight_shape(const Conv2dShape& s) { return {s.OC, s.C / s.groups, s.kh, s.kw}; }

// The shapes of one call's arrays. conv2d: x is the convolution's input, y its output.
// conv_transpose2d: x (N, C_in, H, W) is the convolution's output and y (its output) the
// convolution's input; bias has one entry per channel of y.
struct IoShapes {
  Shape x, y, weight, bias;
};
IoShapes io_shapes(const Conv2dShape& s, bool transposed) {
  if (transposed) return {conv_out_shape(s), conv_in_shape(s), weight_shape(s), {s.C}};
  return {conv_in_shape(s), conv_out_shape(s), weight_shape(s), {s.OC}};
}

// The geometry of a call (float32 / float64 and bf16 alike): conv2d reads it from x; the
// transposed op from `big` (out or grad, the convolution's input), and x must then be that
// convolution's output. Dtypes are the caller's to check.
Conv2dShape call_geometry(const char* op, bool transposed, const py::array& x, const py::array& big,
                          const py::array& weight, Pair stride, Pair padding, Pair dilation, index_t groups) {
  check_ndim(op, x, "input", 4);
  if (!transposed) return conv_geometry(op, x, weight, stride, padding, dilation, groups);
  check_ndim(op, big, "out", 4);
  Conv2dShape s = conv_geometry(op, big, weight, stride, padding, dilation, groups);
  // In a transposed convolution weight (C_in, C_out / groups, kh, kw): C_in must be the input's channels.
  if (dim(x, 1) != s.OC || dim(x, 0) != s.N || dim(x, 2) != s.OH || dim(x, 3) != s.OW)
    value_error(op, "input of shape (" + std::to_string(s.N) + ", " + std::to_string(s.OC) + ", " +
                        std::to_string(s.OH) + ", " + std::to_string(s.OW) + ") for this output, got " +
                        shape_str(x));
  return s;
}

// float32 / float64: one dtype for all, weight C-contiguous.
Conv2dShape geometry(const char* op, bool transposed, const py::array& x, const py::array& big,
                     const py::array& weight, Pair stride, Pair padding, Pair dilation, index_t groups) {
  check_input(op, x, "input", 4);
  same_dtype(op, x, weight, "weight");
  check_contiguous(op, weight, "weight");
  return call_geometry(op, transposed, x, big, weight, stride, padding, dilation, groups);
}

// No output may share memory with an input or another output (both dtype families).
void forward_no_alias(const char* op, const Opt& out, const py::array& x, const py::array& weight, const Opt& bias) {
  const Opt xi{x, true}, w{weight, true};
  no_alias(op, {{&out, "out"}}, {{&xi, "input"}, {&w, "weight"}, {&bias, "bias"}});
}
void backward_no_alias(const char* op, const Opt& dx, const Opt& dw, const Opt& db, const py::array& grad,
                       const py::array& x, const py::array& weight) {
  const Opt dy{grad, true}, xi{x, true}, w{weight, true};
  no_alias(op, {{&dx, "grad_input"}, {&dw, "grad_weight"}, {&db, "grad_bias"}},
           {{&dy, "grad"}, {&xi, "input"}, {&w, "weight"}});
}

void forward_binding(const char* op, bool transposed, py::array out, py::array x, py::array weight, py::object bias,
                     Pair stride, Pair padding, Pair dilation, index_t groups) {
  const DType dt = check_input(op, x, "input", 4);
  if (transposed) check_output(op, x, out, "out");
  const Conv2dShape s = geometry(op, transposed, x, out, weight, stride, padding, dilation, groups);
  const IoShapes sh = io_shapes(s, transposed);
  Opt o{check_array(op, x, out, "out", sh.y, true), true};
  Opt b = opt(op, x, bias, "bias", sh.bias, false);
  forward_no_alias(op, o, x, weight, b);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, &o, &b] {
      if (transposed) conv_transpose2d_forward<T>(mut_ptr<T>(o.a), ptr<T>(x), ptr<T>(weight), cp<T>(b), s);
      else conv2d_forward<T>(mut_ptr<T>(o.a), ptr<T>(x), ptr<T>(weight), cp<T>(b), s);
    };
  });
}

void backward_binding(const char* op, bool transposed, py::object grad_input, py::object grad_weight,
                      py::object grad_bias, py::array grad, py::array x, py::array weight, Pair stride, Pair padding,
                      Pair dilation, index_t groups) {
  const DType dt = check_input(op, x, "input", 4);
  if (transposed) {
    same_dtype(op, x, grad, "grad");
    check_contiguous(op, grad, "grad");
  }
  const Conv2dShape s = geometry(op, transposed, x, grad, weight, stride, padding, dilation, groups);
  const IoShapes sh = io_shapes(s, transposed);
  check_array(op, x, grad, "grad", sh.y, false);
  Opt dx = opt(op, x, grad_input, "grad_input", sh.x, true);
  Opt dw = opt(op, x, grad_weight, "grad_weight", sh.weight, true);
  Opt db = opt(op, x, grad_bias, "grad_bias", sh.bias, true);
  backward_no_alias(op, dx, dw, db, grad, x, weight);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, &dx, &dw, &db] {
      if (transposed)
        conv_transpose2d_backward<T>(mp<T>(dx), mp<T>(dw), mp<T>(db), ptr<T>(grad), ptr<T>(x), ptr<T>(weight), s);
      else
        conv2d_backward<T>(mp<T>(dx), mp<T>(dw), mp<T>(db), ptr<T>(grad), ptr<T>(x), ptr<T>(weight), s);
    };
  });
}

#if !NNFAST_BIND_CUDA
// ------------------------------------------------------------------ bf16 (autocast, CPU only)
// The *_bf16 entries (cpu/conv_bf16.h): input, weight, grad and the data outputs each float32
// or bfloat16 (ml_dtypes: kind 'V', 2 bytes, char 'E'), C-contiguous; bias, grad_weight and
// grad_bias float32 (the master parameters and their gradients).
ElemType bf16_elem(const char* op, const py::array& a, const char* name) {
  if (a.itemsize() == 2 && a.dtype().kind() == 'V' && a.dtype().char_() == 'E') {
    check_aligned(op, a, name);
    return ElemType::BF16;
  }
  if (a.dtype().kind() == 'f' && a.itemsize() == 4) {
    float_dtype(op, a, name);  // byte order, alignment
    return ElemType::F32;
  }
  type_error(op, std::string(name) + " to be float32 or bfloat16, got " + dtype_str(a));
}

// A float32-or-bf16 array of the given shape, C-contiguous (writeable when `out`).
ConvOperand bf16_array(const char* op, const py::array& a, const char* name, const Shape& shape, bool out) {
  const ElemType t = bf16_elem(op, a, name);
  check_shape(op, a, name, shape);
  check_contiguous(op, a, name);
  if (out) check_writeable(op, a, name);
  return {a.data(), t};
}

// An optional float32 array of the given shape (bias, grad_weight, grad_bias).
Opt f32_array(const char* op, const py::object& o, const char* name, const Shape& shape, bool out) {
  if (!has(o)) return {};
  py::array a = as_array(op, o, name);
  if (float_dtype(op, a, name) != DType::F32) type_error(op, std::string(name) + " to be float32, got " + dtype_str(a));
  check_shape(op, a, name, shape);
  check_contiguous(op, a, name);
  if (out) check_writeable(op, a, name);
  return {a, true};
}

void forward_bf16_binding(const char* op, bool transposed, py::array out, py::array x, py::array weight,
                          py::object bias, Pair stride, Pair padding, Pair dilation, index_t groups) {
  const Conv2dShape s = call_geometry(op, transposed, x, out, weight, stride, padding, dilation, groups);
  const IoShapes sh = io_shapes(s, transposed);
  const ConvOperand xi = bf16_array(op, x, "input", sh.x, false);
  const ConvOperand wi = bf16_array(op, weight, "weight", sh.weight, false);
  const ConvOperand yo = bf16_array(op, out, "out", sh.y, true);
  Opt b = f32_array(op, bias, "bias", sh.bias, false);
  forward_no_alias(op, Opt{out, true}, x, weight, b);
  void* y = out.mutable_data();
  const float* bp = cp<float>(b);
  py::gil_scoped_release release;
  if (transposed) conv_transpose2d_forward_bf16(y, yo.type, xi, wi, bp, s);
  else conv2d_forward_bf16(y, yo.type, xi, wi, bp, s);
}

void backward_bf16_binding(const char* op, bool transposed, py::object grad_input, py::object grad_weight,
                           py::object grad_bias, py::array grad, py::array x, py::array weight, Pair stride,
                           Pair padding, Pair dilation, index_t groups) {
  const Conv2dShape s = call_geometry(op, transposed, x, grad, weight, stride, padding, dilation, groups);
  const IoShapes sh = io_shapes(s, transposed);
  const ConvOperand dyi = bf16_array(op, grad, "grad", sh.y, false);
  const ConvOperand xi = bf16_array(op, x, "input", sh.x, false);
  const ConvOperand wi = bf16_array(op, weight, "weight", sh.weight, false);
  Opt dx;
  ElemType dxt = ElemType::F32;
  if (has(grad_input)) {
    dx = {as_array(op, grad_input, "grad_input"), true};
    dxt = bf16_array(op, dx.a, "grad_input", sh.x, true).type;
  }
  Opt dw = f32_array(op, grad_weight, "grad_weight", sh.weight, true);
  Opt db = f32_array(op, grad_bias, "grad_bias", sh.bias, true);
  backward_no_alias(op, dx, dw, db, grad, x, weight);
  void* dxp = dx.on ? dx.a.mutable_data() : nullptr;
  float* dwp = mp<float>(dw);
  float* dbp = mp<float>(db);
  py::gil_scoped_release release;
  if (transposed) conv_transpose2d_backward_bf16(dxp, dxt, dwp, dbp, dyi, xi, wi, s);
  else conv2d_backward_bf16(dxp, dxt, dwp, dbp, dyi, xi, wi, s);
}
#endif  // !NNFAST_BIND_CUDA

using ForwardFn = void (*)(const char*, bool, py::array, py::array, py::array, py::object, Pair, Pair, Pair, index_t);
using BackwardFn = void (*)(const char*, bool, py::object, py::object, py::object, py::array, py::array, py::array,
                            Pair, Pair, Pair, index_t);

// One forward entry (the float32 / float64 and the bf16 ones share the signature): `op` names
// it in error messages.
void def_forward(py::module_& m, const char* name, const char* op, bool transposed, ForwardFn fn, const char* doc) {
  m.def(
      name,
      [op, transposed, fn](py::array out, py::array input, py::array weight, py::object bias, Pair stride,
                           Pair padding, Pair dilation, index_t groups) {
        fn(op, transposed, out, input, weight, bias, stride, padding, dilation, groups);
      },
      py::arg("out"), py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), doc);
}

void def_backward(py::module_& m, const char* name, const char* op, bool transposed, BackwardFn fn,
                  const char* doc) {
  m.def(
      name,
      [op, transposed, fn](py::object grad_input, py::object grad_weight, py::object grad_bias, py::array grad,
                           py::array input, py::array weight, Pair stride, Pair padding, Pair dilation,
                           index_t groups) {
        fn(op, transposed, grad_input, grad_weight, grad_bias, grad, input, weight, stride, padding, dilation, groups);
      },
      py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("grad"), py::arg("input"),
      py::arg("weight"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), doc);
}

}  // namespace

void init_conv(py::module_& m) {
  def_forward(m, "conv2d_forward", "conv2d", false, forward_binding,
              "out (N, OC, OH, OW) = conv2d(input (N, C, H, W), weight (OC, C/groups, kh, kw)) + bias (OC,) or None.");
  def_backward(m, "conv2d_backward", "conv2d_backward", false, backward_binding,
               "grad_input = (overwrite), grad_weight += , grad_bias += (each None when not wanted) from grad "
               "(N, OC, OH, OW).");
  def_forward(m, "conv_transpose2d_forward", "conv_transpose2d", true, forward_binding,
              "out (N, C_out, H_out, W_out; its shape fixes output_padding) = conv_transpose2d(input (N, C_in, H, W), "
              "weight (C_in, C_out/groups, kh, kw)) + bias (C_out,) or None.");
  def_backward(m, "conv_transpose2d_backward", "conv_transpose2d_backward", true, backward_binding,
               "grad_input = , grad_weight += , grad_bias += from grad (N, C_out, H_out, W_out).");
#if !NNFAST_BIND_CUDA
  def_forward(m, "conv2d_forward_bf16", "conv2d", false, forward_bf16_binding,
              "conv2d_forward on the bf16 GEMM: input, weight, out float32 or bfloat16 (rounded to bf16 into the "
              "GEMM, float32 accumulation, out stored once); bias float32 or None, added in float32.");
  def_backward(m, "conv2d_backward_bf16", "conv2d_backward", false, backward_bf16_binding,
               "conv2d_backward on the bf16 GEMM: grad, input, weight, grad_input float32 or bfloat16; grad_weight "
               "and grad_bias float32, accumulated (+=).");
  def_forward(m, "conv_transpose2d_forward_bf16", "conv_transpose2d", true, forward_bf16_binding,
              "conv_transpose2d_forward on the bf16 GEMM (dtypes as conv2d_forward_bf16).");
  def_backward(m, "conv_transpose2d_backward_bf16", "conv_transpose2d_backward", true, backward_bf16_binding,
               "conv_transpose2d_backward on the bf16 GEMM (dtypes as conv2d_backward_bf16).");
#endif
}

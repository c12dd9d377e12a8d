// Bindings of the pooling and resampling kernels (nnfast/pool.h). Data arrays are
// C-contiguous (planes, H, W) of one float dtype (pixel shuffle: (N, C, H, W));
// indices are int64 arrays of the output's shape. Python (nn/functional/_pool.py)
// computes output sizes and checks PyTorch's argument rules; the bindings check the
// arrays and that the geometry is usable before releasing the GIL. The kernels
// bounds-check every window, so no shape a caller passes can read out of range.
#include <string>
#include <utility>
#include <vector>

#include "bindings/common.h"
#include "nnfast/pool.h"
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/pool.h"
#endif

namespace {

using Shape = std::vector<index_t>;
using Pair = std::pair<index_t, index_t>;

index_t dim(const py::array& a, int d) { return static_cast<index_t>(a.shape(d)); }

// The (planes, H, W) input of a pooling op.
DType plane_input(const char* op, const py::array& x) { return check_input(op, x, "input", 3); }

// An array of x's dtype, (planes, h, w), C-contiguous (written when `out`), not sharing memory with x.
py::array plane_array(const char* op, const py::array& x, const py::object& o, const char* name, index_t h, index_t w,
                      bool out) {
  py::array a = check_array(op, x, o, name, {dim(x, 0), h, w}, out);
  if (out) check_no_alias(op, a, name, x, "input");
  return a;
}

// An int64 (planes, OH, OW) indices array, C-contiguous.
py::array index_array(const char* op, const py::object& o, const Shape& shape, bool out) {
  py::array a = as_array(op, o, "indices");
  if (a.dtype().kind() != 'i' || a.itemsize() != 8) type_error(op, "indices to be int64, got " + dtype_str(a));
  check_aligned(op, a, "indices");
  check_shape(op, a, "indices", shape);
  check_contiguous(op, a, "indices");
  if (out) check_writeable(op, a, "indices");
  return a;
}

void check_pair(const char* op, const Pair& p, const char* name, index_t min) {
  if (p.first < min || p.second < min)
    value_error(op, std::string(name) + " >= " + std::to_string(min) + ", got (" + std::to_string(p.first) + ", " +
                        std::to_string(p.second) + ")");
}

PoolGeom window_geom(const char* op, index_t H, index_t W, index_t OH, index_t OW, Pair k, Pair s, Pair p, Pair d) {
  check_pair(op, k, "kernel_size", 1);
  check_pair(op, s, "stride", 1);
  check_pair(op, p, "padding", 0);
  check_pair(op, d, "dilation", 1);
  return {H, W, OH, OW, k.first, k.second, s.first, s.second, p.first, p.second, d.first, d.second};
}

PoolGeom plane_geom(index_t H, index_t W, index_t OH, index_t OW) { return {H, W, OH, OW, 1, 1, 1, 1, 0, 0, 1, 1}; }

// The (planes, H, W) geometry of x and y.
PoolGeom sizes_of(const py::array& x, const py::array& y, Pair k = {1, 1}, Pair s = {1, 1}, Pair p = {0, 0},
                  Pair d = {1, 1}) {
  return {dim(x, 1), dim(x, 2), dim(y, 1), dim(y, 2), k.first, k.second, s.first, s.second,
          p.first,   p.second,  d.first,   d.second};
}

// A non-empty output needs a non-empty input plane to read from.
void check_nonempty_source(const char* op, index_t in_plane, index_t out_elems) {
  if (in_plane <= 0 && out_elems > 0) value_error(op, "a non-empty input plane for a non-empty output");
}

// ------------------------------------------------------------------ max pooling
void max_pool2d_forward_binding(const py::object& out_o, const py::object& idx_o, const py::array& x, Pair k, Pair s,
                                Pair p, Pair d) {
  const char* op = "max_pool2d";
  DType dt = plane_input(op, x);
  py::array y = as_array(op, out_o, "out");
  check_ndim(op, y, "out", 3);
  y = plane_array(op, x, out_o, "out", dim(y, 1), dim(y, 2), true);
  py::array idx = index_array(op, idx_o, {dim(y, 0), dim(y, 1), dim(y, 2)}, true);
  PoolGeom g = window_geom(op, dim(x, 1), dim(x, 2), dim(y, 1), dim(y, 2), k, s, p, d);
  const index_t planes = dim(x, 0);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(y), pi = mut_ptr<std::int64_t>(idx), px = ptr<T>(x)] {
      max_pool2d_forward<T>(py_, pi, px, planes, g);
    };
  });
}

// Max pooling and adaptive max pooling share it: dx = scatter-sum of grad through indices.
void max_pool2d_backward_binding(const py::object& dx_o, const py::array& dy, const py::object& idx_o) {
  const char* op = "max_pool2d_backward";
  DType dt = check_input(op, dy, "grad", 3);
  py::array dx = as_array(op, dx_o, "grad_input");
  check_ndim(op, dx, "grad_input", 3);
  dx = check_array(op, dy, dx_o, "grad_input", {dim(dy, 0), dim(dx, 1), dim(dx, 2)}, true);
  check_no_alias(op, dx, "grad_input", dy, "grad");
  py::array idx = index_array(op, idx_o, {dim(dy, 0), dim(dy, 1), dim(dy, 2)}, false);
  check_no_alias(op, dx, "grad_input", idx, "indices");
  const index_t planes = dim(dy, 0), in_plane = dim(dx, 1) * dim(dx, 2), out_plane = dim(dy, 1) * dim(dy, 2);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(dx), pdy = ptr<T>(dy), pi = ptr<std::int64_t>(idx)] {
      max_pool2d_backward<T>(pdx, pdy, pi, planes, in_plane, out_plane);
    };
  });
}

// ------------------------------------------------------------------ max unpooling
// forward: out (planes, OH, OW) written from input and int64 indices (planes, h, w);
// backward: grad_input (planes, h, w) gathered from grad (planes, OH, OW).
void max_unpool_common(const char* op, const py::object& w_o, const py::array& r, const py::object& idx_o,
                       bool forward) {
  DType dt = check_input(op, r, forward ? "input" : "grad", 3);
  const char* w_name = forward ? "out" : "grad_input";
  py::array w = as_array(op, w_o, w_name);
  check_ndim(op, w, w_name, 3);
  w = check_array(op, r, w_o, w_name, {dim(r, 0), dim(w, 1), dim(w, 2)}, true);
  check_no_alias(op, w, w_name, r, forward ? "input" : "grad");
  const py::array& small = forward ? r : w;  // the pooled (planes, h, w) side
  py::array idx = index_array(op, idx_o, {dim(small, 0), dim(small, 1), dim(small, 2)}, false);
  check_no_alias(op, w, w_name, idx, "indices");
  const index_t planes = dim(r, 0), in_plane = dim(small, 1) * dim(small, 2);
  const index_t out_plane = forward ? dim(w, 1) * dim(w, 2) : dim(r, 1) * dim(r, 2);
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pw = mut_ptr<T>(w), pr = ptr<T>(r), pi = ptr<std::int64_t>(idx)] {
      if (forward)
        max_unpool2d_forward<T>(pw, pr, pi, planes, in_plane, out_plane);
      else
        max_unpool2d_backward<T>(pw, pr, pi, planes, in_plane, out_plane);
    };
  });
}

void max_unpool2d_forward_binding(const py::object& out_o, const py::array& x, const py::object& idx_o) {
  max_unpool_common("max_unpool2d", out_o, x, idx_o, true);
}

void max_unpool2d_backward_binding(const py::object& dx_o, const py::array& dy, const py::object& idx_o) {
  max_unpool_common("max_unpool2d_backward", dx_o, dy, idx_o, false);
}

// ------------------------------------------------------------------ average pooling
// forward: (out, input); backward: (grad_input, grad): `a` is written, `b` read.
struct Planes {
  py::array written, read;
  DType dt;
  index_t planes;
};
Planes written_read(const char* op, const py::object& w_o, const py::array& r, const char* w_name,
                    const char* r_name) {
  DType dt = check_input(op, r, r_name, 3);
  py::array w = as_array(op, w_o, w_name);
  check_ndim(op, w, w_name, 3);
  w = check_array(op, r, w_o, w_name, {dim(r, 0), dim(w, 1), dim(w, 2)}, true);
  check_no_alias(op, w, w_name, r, r_name);
  return {w, r, dt, dim(r, 0)};
}

void avg_pool2d_forward_binding(const py::object& out_o, const py::array& x, Pair k, Pair s, Pair p,
                                bool count_include_pad, index_t divisor_override) {
  const char* op = "avg_pool2d";
  Planes a = written_read(op, out_o, x, "out", "input");
  PoolGeom g = window_geom(op, dim(x, 1), dim(x, 2), dim(a.written, 1), dim(a.written, 2), k, s, p, {1, 1});
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(a.written), px = ptr<T>(x), planes = a.planes] {
      avg_pool2d_forward<T>(py_, px, planes, g, count_include_pad, divisor_override);
    };
  });
}

void avg_pool2d_backward_binding(const py::object& dx_o, const py::array& dy, Pair k, Pair s, Pair p,
                                 bool count_include_pad, index_t divisor_override) {
  const char* op = "avg_pool2d_backward";
  Planes a = written_read(op, dx_o, dy, "grad_input", "grad");
  PoolGeom g = window_geom(op, dim(a.written, 1), dim(a.written, 2), dim(dy, 1), dim(dy, 2), k, s, p, {1, 1});
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(a.written), pdy = ptr<T>(dy), planes = a.planes] {
      avg_pool2d_backward<T>(pdx, pdy, planes, g, count_include_pad, divisor_override);
    };
  });
}

// ------------------------------------------------------------------ adaptive pooling
void adaptive_avg_pool2d_forward_binding(const py::object& out_o, const py::array& x) {
  const char* op = "adaptive_avg_pool2d";
  Planes a = written_read(op, out_o, x, "out", "input");
  PoolGeom g = plane_geom(dim(x, 1), dim(x, 2), dim(a.written, 1), dim(a.written, 2));
  check_nonempty_source(op, g.H * g.W, g.OH * g.OW);
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(a.written), px = ptr<T>(x), planes = a.planes] {
      adaptive_avg_pool2d_forward<T>(py_, px, planes, g);
    };
  });
}

void adaptive_avg_pool2d_backward_binding(const py::object& dx_o, const py::array& dy) {
  const char* op = "adaptive_avg_pool2d_backward";
  Planes a = written_read(op, dx_o, dy, "grad_input", "grad");
  PoolGeom g = plane_geom(dim(a.written, 1), dim(a.written, 2), dim(dy, 1), dim(dy, 2));
  check_nonempty_source(op, g.H * g.W, g.OH * g.OW);
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(a.written), pdy = ptr<T>(dy), planes = a.planes] {
      adaptive_avg_pool2d_backward<T>(pdx, pdy, planes, g);
    };
  });
}

void adaptive_max_pool2d_forward_binding(const py::object& out_o, const py::object& idx_o, const py::array& x) {
  const char* op = "adaptive_max_pool2d";
  Planes a = written_read(op, out_o, x, "out", "input");
  py::array idx = index_array(op, idx_o, {a.planes, dim(a.written, 1), dim(a.written, 2)}, true);
  PoolGeom g = plane_geom(dim(x, 1), dim(x, 2), dim(a.written, 1), dim(a.written, 2));
  check_nonempty_source(op, g.H * g.W, g.OH * g.OW);
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(a.written), pi = mut_ptr<std::int64_t>(idx), px = ptr<T>(x), planes = a.planes] {
      adaptive_max_pool2d_forward<T>(py_, pi, px, planes, g);
    };
  });
}

// ------------------------------------------------------------------ interpolation
Resample resample_mode(const char* op, const std::string& mode, bool align_corners) {
  if (mode == "nearest") return Resample::Nearest;
  if (mode == "nearest-exact") return Resample::NearestExact;
  if (mode == "bilinear" || mode == "linear")
    return align_corners ? Resample::BilinearAlignCorners : Resample::Bilinear;
  value_error(op, "mode to be one of 'nearest', 'nearest-exact', 'linear', 'bilinear', got '" + mode + "'");
}

void interpolate_forward_binding(const py::object& out_o, const py::array& x, const std::string& mode,
                                 bool align_corners, double scale_h, double scale_w) {
  const char* op = "interpolate";
  Planes a = written_read(op, out_o, x, "out", "input");
  const Resample m = resample_mode(op, mode, align_corners);
  ResampleGeom g{dim(x, 1), dim(x, 2), dim(a.written, 1), dim(a.written, 2), scale_h, scale_w};
  check_nonempty_source(op, g.H * g.W, g.OH * g.OW);
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(a.written), px = ptr<T>(x), planes = a.planes] {
      interpolate_forward<T>(py_, px, planes, g, m);
    };
  });
}

void interpolate_backward_binding(const py::object& dx_o, const py::array& dy, const std::string& mode,
                                  bool align_corners, double scale_h, double scale_w) {
  const char* op = "interpolate_backward";
  Planes a = written_read(op, dx_o, dy, "grad_input", "grad");
  const Resample m = resample_mode(op, mode, align_corners);
  ResampleGeom g{dim(a.written, 1), dim(a.written, 2), dim(dy, 1), dim(dy, 2), scale_h, scale_w};
  check_nonempty_source(op, g.H * g.W, g.OH * g.OW);
  run_released(a.dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pdx = mut_ptr<T>(a.written), pdy = ptr<T>(dy), planes = a.planes] {
      interpolate_backward<T>(pdx, pdy, planes, g, m);
    };
  });
}

// ------------------------------------------------------------------ pixel shuffle
void pixel_shuffle_binding(const py::object& out_o, const py::array& x, index_t r, bool unshuffle) {
  const char* op = unshuffle ? "pixel_unshuffle" : "pixel_shuffle";
  DType dt = check_input(op, x, "input", 4);
  if (r < 1) value_error(op, "upscale_factor >= 1, got " + std::to_string(r));
  const index_t N = dim(x, 0), r2 = r * r;
  index_t C, H, W;  // the small sizes: (N, C r^2, H, W) <-> (N, C, H r, W r)
  Shape out_shape;
  if (!unshuffle) {
    if (dim(x, 1) % r2 != 0)
      value_error(op, "input channels divisible by upscale_factor^2 = " + std::to_string(r2) + ", got " +
                          std::to_string(dim(x, 1)));
    C = dim(x, 1) / r2, H = dim(x, 2), W = dim(x, 3);
    out_shape = {N, C, H * r, W * r};
  } else {
    if (dim(x, 2) % r != 0 || dim(x, 3) % r != 0)
      value_error(op, "height and width divisible by downscale_factor = " + std::to_string(r) + ", got " +
                          shape_str(x));
    C = dim(x, 1), H = dim(x, 2) / r, W = dim(x, 3) / r;
    out_shape = {N, C * r2, H, W};
  }
  py::array y = check_array(op, x, out_o, "out", out_shape, true);
  check_no_alias(op, y, "out", x, "input");
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, py_ = mut_ptr<T>(y), px = ptr<T>(x)] { pixel_shuffle<T>(py_, px, N, C, H, W, r, unshuffle); };
  });
}

}  // namespace

void init_pool(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward_binding, py::arg("out"), py::arg("indices"), py::arg("input"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "Max pooling of input (planes, H, W) into out / int64 indices (planes, OH, OW).");
  m.def("max_pool2d_backward", &max_pool2d_backward_binding, py::arg("grad_input"), py::arg("grad"),
        py::arg("indices"), "grad_input (planes, H, W) = scatter-sum of grad through the saved indices.");
  m.def("max_unpool2d_forward", &max_unpool2d_forward_binding, py::arg("out"), py::arg("input"), py::arg("indices"),
        "out (planes, OH, OW) = 0, then out[p, indices[p, i]] = input[p, i] (input, indices (planes, h, w)).");
  m.def("max_unpool2d_backward", &max_unpool2d_backward_binding, py::arg("grad_input"), py::arg("grad"),
        py::arg("indices"), "grad_input[p, i] = grad[p, indices[p, i]].");
  m.def("avg_pool2d_forward", &avg_pool2d_forward_binding, py::arg("out"), py::arg("input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"), py::arg("divisor_override"),
        "Average pooling of input (planes, H, W) into out (planes, OH, OW); divisor_override 0: none.");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_binding, py::arg("grad_input"), py::arg("grad"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"),
        py::arg("divisor_override"));
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward_binding, py::arg("out"), py::arg("input"));
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_binding, py::arg("grad_input"),
        py::arg("grad"));
  m.def("adaptive_max_pool2d_forward", &adaptive_max_pool2d_forward_binding, py::arg("out"), py::arg("indices"),
        py::arg("input"));
  m.def("interpolate_forward", &interpolate_forward_binding, py::arg("out"), py::arg("input"), py::arg("mode"),
        py::arg("align_corners"), py::arg("scale_h"), py::arg("scale_w"),
        "Resample input (planes, H, W) to out (planes, OH, OW); scale_h / scale_w: the user's scale "
        "factors, 0 when not given.");
  m.def("interpolate_backward", &interpolate_backward_binding, py::arg("grad_input"), py::arg("grad"),
        py::arg("mode"), py::arg("align_corners"), py::arg("scale_h"), py::arg("scale_w"));
  m.def("pixel_shuffle", &pixel_shuffle_binding, py::arg("out"), py::arg("input"), py::arg("upscale_factor"),
        py::arg("unshuffle"),
        "(N, C r^2, H, W) -> (N, C, H r, W r), or the inverse permutation when unshuffle.");
}

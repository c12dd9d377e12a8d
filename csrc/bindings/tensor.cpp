// Bindings of the tape's tensor arithmetic (nnfast/tensor.h): broadcasting binary ops,
// reductions over one dim, the max / min backward scatter, float casts. The Python
// layer (autograd/basic_ops.py) calls them for float32 / float64 operands of one dtype.
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "nnfast/tensor.h"

namespace {

#define NNFAST_NAME(E, name) #name,
const std::vector<const char*> kBinaryNames = {NNFAST_BINARY_OPS(NNFAST_NAME)};
const std::vector<const char*> kReduceNames = {NNFAST_REDUCE_OPS(NNFAST_NAME)};
#undef NNFAST_NAME

// "op 0 (add), 1 (sub), ... or 3 (div)": what an unknown op code is told.
std::string codes_str(const std::vector<const char*>& names) {
  std::string s = "op";
  for (std::size_t i = 0; i < names.size(); ++i)
    s += std::string(i == 0 ? " " : i + 1 == names.size() ? " or " : ", ") + std::to_string(i) + " (" + names[i] + ")";
  return s;
}

const char* op_name(const char* kernel, const std::vector<const char*>& names, int code) {
  if (code < 0 || code >= static_cast<int>(names.size()))
    value_error(kernel, codes_str(names) + ", got " + std::to_string(code));
  return names[code];
}

// The element strides of `a` read over out's shape, NumPy-broadcast (shapes aligned
// on the right; a missing or size-1 dim reads stride 0).
void broadcast_strides(const char* op, const py::array& a, const char* name, const py::array& out, index_t* stride) {
  const int nd = static_cast<int>(out.ndim()), ad = static_cast<int>(a.ndim());
  bool ok = ad <= nd;
  for (int d = 0; ok && d < nd; ++d) {
    const int k = d - (nd - ad);
    if (k < 0 || a.shape(k) == 1) {
      stride[d] = 0;
    } else if (a.shape(k) == out.shape(d)) {
      stride[d] = elem_stride(op, a, name, k);
    } else {
      ok = false;
    }
  }
  if (!ok) value_error(op, std::string(name) + " broadcastable to out's shape " + shape_str(out) + ", got " + shape_str(a));
}

// out may be an input itself (an in-place update), else it must not overlap it.
void check_not_overlapping(const char* op, const py::array& out, const py::array& in, const char* name) {
  const bool same = out.data() == in.data() && is_c_contiguous(in) && in.ndim() == out.ndim() &&
                    in.size() == out.size();
  if (!same) check_no_alias(op, out, "out", in, name);
}

// out (op) = a (op) b, b and a broadcast to out's shape; out is C-contiguous, writeable and
// shares no memory with a or b unless it is one of them (the callers check or know it).
void run_binary(const char* op, DType dt, py::array& out, const py::array& a, const py::array& b, int code) {
  BroadcastArgs args;
  args.ndim = static_cast<int>(out.ndim());
  for (int d = 0; d < args.ndim; ++d) args.shape[d] = out.shape(d);
  broadcast_strides(op, a, "a", out, args.a_stride);
  broadcast_strides(op, b, "b", out, args.b_stride);
  const auto bop = static_cast<BinaryOp>(code);
  run_sized(dt, static_cast<std::int64_t>(out.size()), [&](auto tag) {
    using T = decltype(tag);
    return [=, po = mut_ptr<T>(out), pa = ptr<T>(a), pb = ptr<T>(b)] { binary_broadcast<T>(bop, args, pa, pb, po); };
  });
}

void check_dims(const char* op, const py::array& a) {
  if (a.ndim() > kMaxDims)
    value_error(op, "at most " + std::to_string(kMaxDims) + " dims, got " + std::to_string(a.ndim()));
}

void binary_op_binding(py::array out, py::array a, py::array b, int code) {
  const char* op = op_name("binary_op", kBinaryNames, code);
  DType dt = float_dtype(op, out, "out");
  same_dtype(op, out, a, "a");
  same_dtype(op, out, b, "b");
  check_contiguous(op, out, "out");
  check_writeable(op, out, "out");
  check_dims(op, out);
  check_not_overlapping(op, out, a, "a");
  check_not_overlapping(op, out, b, "b");
  run_binary(op, dt, out, a, b, code);
}

// binary_op into a fresh C-contiguous array of a's shape (b broadcast to it): the tape's hot
// `x + y`, where allocating here saves the Python-side np.empty call. The array is made by
// NumPy's C API with a's dtype and shape (no shape vector, no stride computation), and a
// fresh array needs none of binary_op's checks on out: this call is the operators' dispatch
// cost on small tensors.
#if !NNFAST_BIND_CUDA
py::array binary_new_binding(py::array a, py::array b, int code) {
  const char* op = op_name("binary_op", kBinaryNames, code);
  DType dt = float_dtype(op, a, "a");
  same_dtype(op, a, b, "b");
  check_dims(op, a);
  auto& api = py::detail::npy_api::get();
  PyObject* descr = a.dtype().release().ptr();  // NewFromDescr steals this reference
  py::array out = py::reinterpret_steal<py::array>(api.PyArray_NewFromDescr_(
      api.PyArray_Type_, descr, static_cast<int>(a.ndim()), a.shape(), nullptr, nullptr, 0, nullptr));
  if (!out) throw py::error_already_set();
  run_binary(op, dt, out, a, b, code);
  return out;
}
#endif

// [outer, n, inner] of a C-contiguous array reduced (or scattered) over `dim`.
struct DimView {
  index_t outer = 1, n = 1, inner = 1;
};
DimView dim_view(const char* op, const py::array& x, const char* name, int dim) {
  if (x.ndim() < 1) value_error(op, std::string(name) + " with at least 1 dim, got a 0-d array");
  if (dim < 0 || dim >= x.ndim())
    value_error(op, "dim in [0, " + std::to_string(x.ndim() - 1) + "], got " + std::to_string(dim));
  DimView v;
  for (int d = 0; d < x.ndim(); ++d) (d < dim ? v.outer : d == dim ? v.n : v.inner) *= x.shape(d);
  return v;
}

void check_index(const char* op, const py::array& index, index_t size, bool out) {
  if (index.dtype().kind() != 'i' || index.itemsize() != 8)
    type_error(op, "index to be int64, got " + dtype_str(index));
  check_aligned(op, index, "index");
  check_contiguous(op, index, "index");
  if (out) check_writeable(op, index, "index");
  if (static_cast<index_t>(index.size()) != size)
    value_error(op, "index with " + std::to_string(size) + " elements, got " + std::to_string(index.size()));
}

void reduce_dim_binding(py::array out, py::object index, py::array x, int dim, int code) {
  const char* op = op_name("reduce_dim", kReduceNames, code);
  DType dt = check_input(op, x, "input");
  const DimView v = dim_view(op, x, "input", dim);
  check_output(op, x, out, "out");
  if (static_cast<index_t>(out.size()) != v.outer * v.inner)
    value_error(op, "out with " + std::to_string(v.outer * v.inner) + " elements, got " + std::to_string(out.size()));
  check_no_alias(op, out, "out", x, "input");
  const auto rop = static_cast<ReduceOp>(code);
  const bool extreme = rop == ReduceOp::Max || rop == ReduceOp::Min;
  if (extreme && v.n == 0 && v.outer * v.inner > 0)
    value_error(op, "a non-empty dim " + std::to_string(dim) + " to reduce, got size 0");
  py::object idx = py::none();
  if (has(index)) {
    if (!extreme) value_error(op, "index None (only max and min return one)");
    py::array ia = as_array(op, index, "index");
    check_index(op, ia, v.outer * v.inner, true);
    check_no_alias(op, ia, "index", x, "input");
    check_no_alias(op, ia, "index", out, "out");
    idx = ia;
  }
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, po = mut_ptr<T>(out), px = ptr<T>(x), pi = opt_mut_ptr<std::int64_t>(idx)] {
      reduce_dim<T>(rop, px, v.outer, v.n, v.inner, po, pi);
    };
  });
}

void scatter_dim_binding(py::array out, py::array grad, py::array index, int dim) {
  const char* op = "max_backward";
  DType dt = float_dtype(op, out, "out");
  check_contiguous(op, out, "out");
  check_writeable(op, out, "out");
  const DimView v = dim_view(op, out, "out", dim);
  same_dtype(op, out, grad, "grad");
  check_contiguous(op, grad, "grad");
  if (static_cast<index_t>(grad.size()) != v.outer * v.inner)
    value_error(op, "grad with " + std::to_string(v.outer * v.inner) + " elements, got " + std::to_string(grad.size()));
  check_index(op, index, v.outer * v.inner, false);
  check_no_alias(op, out, "out", grad, "grad");
  check_no_alias(op, out, "out", index, "index");
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, po = mut_ptr<T>(out), pg = ptr<T>(grad), pi = ptr<std::int64_t>(index)] {
      scatter_dim<T>(po, pg, pi, v.outer, v.n, v.inner);
    };
  });
}

void cast_binding(py::array out, py::array x) {
  const char* op = "cast";
  DType from = check_input(op, x, "input");
  DType to = float_dtype(op, out, "out");
  check_contiguous(op, out, "out");
  check_writeable(op, out, "out");
  if (out.size() != x.size())
    value_error(op, "out with as many elements as input (" + std::to_string(x.size()) + "), got " +
                        std::to_string(out.size()));
  check_no_alias(op, out, "out", x, "input");
  const index_t n = x.size();
  dispatch_float(from, [&](auto from_tag) {
    using F = decltype(from_tag);
    dispatch_float(to, [&](auto to_tag) {
      using T = decltype(to_tag);
      T* po = mut_ptr<T>(out);
      const F* px = ptr<F>(x);
      py::gil_scoped_release release;
      nnfast::NNFAST_KERNELS::cast<F, T>(po, px, n);  // qualified: not pybind11::cast
    });
  });
}

}  // namespace

void init_tensor(py::module_& m) {
  m.def("binary_op", &binary_op_binding, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("op"));
#if !NNFAST_BIND_CUDA
  m.def("binary_new", &binary_new_binding, py::arg("a"), py::arg("b"), py::arg("op"));
#endif
  m.def("reduce_dim", &reduce_dim_binding, py::arg("out"), py::arg("index"), py::arg("input"), py::arg("dim"),
        py::arg("op"));
  m.def("scatter_dim", &scatter_dim_binding, py::arg("out"), py::arg("grad"), py::arg("index"), py::arg("dim"));
  m.def("cast", &cast_binding, py::arg("out"), py::arg("input"));
  py::tuple binary(kBinaryNames.size()), reduce(kReduceNames.size());
  for (std::size_t i = 0; i < kBinaryNames.size(); ++i) binary[i] = kBinaryNames[i];
  for (std::size_t i = 0; i < kReduceNames.size(); ++i) reduce[i] = kReduceNames[i];
  m.attr("TENSOR_BINARY_OPS") = binary;  // the op codes: positions in these tuples
  m.attr("TENSOR_REDUCE_OPS") = reduce;
}

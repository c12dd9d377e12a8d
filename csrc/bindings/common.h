// Boundary checks shared by every binding. Bindings check once (dtype, rank,
// shape, strides, writeability, byte order, aliasing), release the GIL, and
// call kernels that trust their inputs. Messages start with "[op] expected".
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "nnfast/common.h"

// The kernel namespace the binding files call: nnfast::cpu for nnfast._C; the build
// compiles the same files again with NNFAST_BIND_CUDA=1 NNFAST_KERNELS=cuda into
// nnfast._C_cuda (nnfast::cuda launchers keep the CPU names and arguments).
#ifndef NNFAST_BIND_CUDA
#define NNFAST_BIND_CUDA 0
#endif
#ifndef NNFAST_KERNELS
#define NNFAST_KERNELS cpu
#endif
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/kernels.h"
#endif

namespace nnfast {
namespace bind {

namespace py = pybind11;

enum class DType { F32, F64 };

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

[[noreturn]] inline void type_error(const char* op, const std::string& what) {
  throw py::type_error(std::string("[") + op + "] expected " + what);
}
[[noreturn]] inline void value_error(const char* op, const std::string& what) {
  throw py::value_error(std::string("[") + op + "] expected " + what);
}

// Kernels load elements as T: the data must be aligned to the itemsize (every
// array NumPy allocates is; a view made with np.frombuffer at an odd offset is not).
inline void check_aligned(const char* op, const py::array& a, const char* name) {
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string("[") + op + "] expected " + name + " aligned to its itemsize (" +
                          std::to_string(a.itemsize()) + " bytes), got a misaligned array");
}

// The dtype of a float32/float64 array in native byte order, aligned; else a TypeError (ValueError if misaligned).
inline DType float_dtype(const char* op, const py::array& a, const char* name) {
  const char kind = a.dtype().kind();
  const auto size = a.itemsize();
  if (kind != 'f' || (size != 4 && size != 8))
    type_error(op, std::string(name) + " to be float32 or float64, got " + dtype_str(a));
  const char order = a.dtype().byteorder();
  if (order == '>' || (order == '!'))
    type_error(op, std::string(name) + " in native byte order, got a byte-swapped array");
  check_aligned(op, a, name);
  return size == 4 ? DType::F32 : DType::F64;
}

inline void same_dtype(const char* op, const py::array& ref, const py::array& a, const char* name) {
  if (!a.dtype().is(ref.dtype()) && !(a.dtype().kind() == ref.dtype().kind() && a.itemsize() == ref.itemsize()))
    type_error(op, std::string(name) + " to have dtype " + dtype_str(ref) + ", got " + dtype_str(a));
  float_dtype(op, a, name);
}

inline void check_ndim(const char* op, const py::array& a, const char* name, int ndim) {
  if (a.ndim() != ndim)
    value_error(op, std::string(name) + " to be " + std::to_string(ndim) + "-D, got " +
                        std::to_string(a.ndim()) + "-D");
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// A null py::array for an absent optional argument. py::array's default constructor builds a new
// 0-size NumPy array on every call (about 0.3 us); a struct member defaulted with this does not.
inline py::array no_array() { return py::reinterpret_steal<py::array>(py::handle()); }

inline void check_shape(const char* op, const py::array& a, const char* name, const index_t* shape, size_t n) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(n);
  for (size_t i = 0; ok && i < n; ++i) ok = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < n; ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    if (n == 1) want += ",";
    value_error(op, std::string(name) + " of shape " + want + "), got " + shape_str(a));
  }
}
inline void check_shape(const char* op, const py::array& a, const char* name, const std::vector<index_t>& shape) {
  check_shape(op, a, name, shape.data(), shape.size());
}
// A braced shape ({M, N}) binds here: no std::vector, so no heap allocation per call.
inline void check_shape(const char* op, const py::array& a, const char* name, std::initializer_list<index_t> shape) {
  check_shape(op, a, name, shape.begin(), shape.size());
}

// Stride of dimension `dim` in elements (NumPy strides are in bytes).
inline index_t elem_stride(const char* op, const py::array& a, const char* name, int dim) {
  const auto s = a.strides(dim);
  if (s % static_cast<py::ssize_t>(a.itemsize()) != 0)
    value_error(op, std::string(name) + " with strides that are a multiple of its itemsize");
  return static_cast<index_t>(s / static_cast<py::ssize_t>(a.itemsize()));
}

inline bool is_c_contiguous(const py::array& a) {
  return (a.flags() & py::array::c_style) != 0;
}

inline void check_contiguous(const char* op, const py::array& a, const char* name) {
  if (!is_c_contiguous(a)) value_error(op, std::string(name) + " to be C-contiguous");
}

inline void check_writeable(const char* op, const py::array& a, const char* name) {
  if (!a.writeable()) value_error(op, std::string(name) + " to be writeable, got a read-only array");
}

// Byte range [lo, hi) an array may touch.
inline void byte_range(const py::array& a, std::uintptr_t* lo, std::uintptr_t* hi) {
  auto base = reinterpret_cast<std::uintptr_t>(a.data());
  std::intptr_t min_off = 0, max_off = 0;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) == 0) { *lo = *hi = base; return; }
    std::intptr_t ext = static_cast<std::intptr_t>(a.strides(d)) * (a.shape(d) - 1);
    if (ext < 0) min_off += ext; else max_off += ext;
  }
  *lo = base + min_off;
  *hi = base + max_off + a.itemsize();
}

inline bool may_overlap(const py::array& a, const py::array& b) {
  std::uintptr_t alo, ahi, blo, bhi;
  byte_range(a, &alo, &ahi);
  byte_range(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

inline void check_no_alias(const char* op, const py::array& out, const char* out_name, const py::array& in,
                           const char* in_name) {
  if (may_overlap(out, in))
    value_error(op, std::string(out_name) + " not to share memory with " + in_name);
}

// An optional array argument: None or an array of the reference dtype.
inline bool has(const py::object& o) { return !o.is_none(); }
inline py::array as_array(const char* op, const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) type_error(op, std::string(name) + " to be a numpy array, got " +
                                                        py::str(py::type::of(o).attr("__name__")).cast<std::string>());
  return o.cast<py::array>();
}

// ------------------------------------------------------------------ composite checks
// The reference array of a binding (the one that fixes the dtype): float32 or
// float64 in native byte order, C-contiguous, and of rank `ndim` when ndim >= 0.
inline DType check_input(const char* op, const py::array& a, const char* name, int ndim = -1) {
  DType dt = float_dtype(op, a, name);
  if (ndim >= 0) check_ndim(op, a, name, ndim);
  check_contiguous(op, a, name);
  return dt;
}

// An array of ref's dtype and the given shape, C-contiguous; writeable when `out`.
template <typename Shape>
inline py::array check_array(const char* op, const py::array& ref, const py::object& o, const char* name,
                             const Shape& shape, bool out) {
  py::array a = as_array(op, o, name);
  same_dtype(op, ref, a, name);
  check_shape(op, a, name, shape);
  check_contiguous(op, a, name);
  if (out) check_writeable(op, a, name);
  return a;
}
inline py::array check_array(const char* op, const py::array& ref, const py::object& o, const char* name,
                             std::initializer_list<index_t> shape, bool out) {
  return check_array<std::initializer_list<index_t>>(op, ref, o, name, shape, out);
}

// An output array: ref's dtype, C-contiguous, writeable.
inline void check_output(const char* op, const py::array& ref, const py::array& out, const char* name) {
  same_dtype(op, ref, out, name);
  check_contiguous(op, out, name);
  check_writeable(op, out, name);
}

// out and in: one dtype, as many elements, C-contiguous; out writeable and
// either in itself (in place, when allowed) or not overlapping it.
inline DType check_unary(const char* op, const py::array& out, const py::array& in, const char* out_name = "out",
                         const char* in_name = "input", bool in_place_ok = true) {
  DType dt = float_dtype(op, in, in_name);
  same_dtype(op, in, out, out_name);
  check_contiguous(op, in, in_name);
  check_contiguous(op, out, out_name);
  check_writeable(op, out, out_name);
  if (out.size() != in.size())
    value_error(op, std::string(out_name) + " with as many elements as " + in_name + " (" + std::to_string(in.size()) +
                        "), got " + std::to_string(out.size()));
  if (!in_place_ok && out.data() == in.data() && in.size() > 0)
    value_error(op, std::string(out_name) + " not to share memory with " + in_name);
  if (out.data() != in.data()) check_no_alias(op, out, out_name, in, in_name);
  return dt;
}

// The incoming gradient of a reduced-or-not loss: an array of `n` elements of
// ref's dtype (C-contiguous), or a Python float (or None when `none_ok`; then
// `array` is None and `scalar` 0).
struct GradArg {
  py::object array = py::none();
  double scalar = 0.0;
};
inline GradArg grad_arg(const char* op, const py::array& ref, const py::object& grad, index_t n,
                        bool none_ok = false) {
  GradArg g;
  if (py::isinstance<py::array>(grad)) {
    py::array ga = grad.cast<py::array>();
    same_dtype(op, ref, ga, "grad");
    check_contiguous(op, ga, "grad");
    if (static_cast<index_t>(ga.size()) != n)
      value_error(op, "grad with " + std::to_string(n) + " elements, got " + std::to_string(ga.size()));
    g.array = grad;
  } else if (none_ok) {
    if (!grad.is_none()) type_error(op, "grad to be an array or None");
  } else {
    g.scalar = grad.cast<double>();
  }
  return g;
}

// ------------------------------------------------------------------ typed pointers and the kernel call
template <typename T>
inline T* mut_ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <typename T>
inline const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
// nullptr for None.
template <typename T>
inline const T* opt_ptr(const py::object& o) {
  return o.is_none() ? nullptr : static_cast<const T*>(o.cast<py::array>().data());
}
template <typename T>
inline T* opt_mut_ptr(const py::object& o) {
  return o.is_none() ? nullptr : static_cast<T*>(o.cast<py::array>().mutable_data());
}

// Run f<float>() or f<double>() for the dtype.
template <typename F>
inline void dispatch_float(DType dt, F&& f) {
  if (dt == DType::F32) f(float{}); else f(double{});
}

// The kernel call of a binding: make(T{}) runs with the GIL held, takes the
// typed pointers and returns the call as a closure, which then runs with the
// GIL released.
template <typename F>
inline void run_released(DType dt, F&& make) {
  dispatch_float(dt, [&](auto tag) {
    auto call = make(tag);
    py::gil_scoped_release release;
    call();
  });
}

// As run_released, for a kernel over `work` elements: below kHoldGilBelow the call
// runs with the GIL held, since releasing and re-taking it costs about as much as a
// tiny kernel (the per-op overhead of small tensors, issue 18). Such a call is short
// (microseconds), so other Python threads are not held up noticeably.
constexpr std::int64_t kHoldGilBelow = 16384;
template <typename F>
inline void run_sized(DType dt, std::int64_t work, F&& make) {
  if (work >= kHoldGilBelow) return run_released(dt, std::forward<F>(make));
  dispatch_float(dt, [&](auto tag) { make(tag)(); });
}

// ------------------------------------------------------------------ device arrays (nnfast._C_cuda)
// On a GPU, cuda arrays are CuPy arrays (or anything with __cuda_array_interface__:
// PyTorch cuda tensors, nnfast cuda Tensors). _C_cuda's functions take them by turning
// each such argument into a NumPy array *header* over the device pointer (shape, strides,
// typestr, readonly from the interface; the original object as its base, no copy): the
// checks above read only metadata and addresses, never the data, and the kernels get the
// device pointer. Under emulation cuda arrays are NumPy arrays and pass straight through.
inline py::object cuda_array_view(py::handle o) {
  py::dict cai = o.attr("__cuda_array_interface__");
  py::tuple data = cai["data"];
  const auto addr = data[0].cast<std::uintptr_t>();
  const bool readonly = data[1].cast<bool>();
  py::dtype dt(cai["typestr"].cast<std::string>());
  std::vector<py::ssize_t> shape;
  for (auto d : py::tuple(cai["shape"])) shape.push_back(d.cast<py::ssize_t>());
  std::vector<py::ssize_t> strides(shape.size());
  py::object st = cai.contains("strides") ? py::object(cai["strides"]) : py::object(py::none());
  if (!st.is_none()) {
    py::tuple t(st);
    for (size_t i = 0; i < shape.size(); ++i) strides[i] = t[i].cast<py::ssize_t>();
  } else {
    py::ssize_t s = dt.itemsize();
    for (size_t i = shape.size(); i-- > 0;) {
      strides[i] = s;
      s *= shape[i];
    }
  }
  py::ssize_t count = 1;
  for (auto d : shape) count *= d;
  if (addr == 0 || count == 0) return py::array(dt, shape, strides);  // empty: nothing is ever read
  py::array a(dt, shape, strides, reinterpret_cast<const void*>(addr), o);
  if (readonly) py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(a);
}

inline py::object device_arg(py::handle h) {
  if (py::isinstance<py::array>(h) || !py::hasattr(h, "__cuda_array_interface__"))
    return py::reinterpret_borrow<py::object>(h);
  return cuda_array_view(h);
}

// Wraps every function of `m` so that it accepts __cuda_array_interface__ arguments.
inline void accept_cuda_arrays(py::module_& m) {
  py::list names;
  for (auto item : py::dict(m.attr("__dict__")))
    if (PyCFunction_Check(item.second.ptr())) names.append(item.first);
  for (auto nm : names) {
    const std::string name = nm.cast<std::string>();
    py::object f = m.attr(nm);
    m.attr(nm) = py::cpp_function(
        [f](py::args args, py::kwargs kwargs) {
          py::tuple a(args.size());
          for (size_t i = 0; i < args.size(); ++i) a[i] = device_arg(args[i]);
          py::dict k;
          for (auto kv : kwargs) k[kv.first] = device_arg(kv.second);
          return f(*a, **k);
        },
        py::name(name.c_str()));
  }
}

}  // namespace bind
}  // namespace nnfast

// Binding files (one per family, the header of its kernels included after this one)
// call the kernels unqualified: nnfast::cpu in _C, nnfast::cuda in _C_cuda.
namespace nnfast::NNFAST_KERNELS {}
using namespace nnfast;
using namespace nnfast::NNFAST_KERNELS;
using namespace nnfast::bind;

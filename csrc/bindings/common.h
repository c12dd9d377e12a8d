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

// The dtype of a float32/float64 array in native byte order; anything else is a TypeError.
inline DType float_dtype(const char* op, const py::array& a, const char* name) {
  const char kind = a.dtype().kind();
  const auto size = a.itemsize();
  if (kind != 'f' || (size != 4 && size != 8))
    type_error(op, std::string(name) + " to be float32 or float64, got " + dtype_str(a));
  const char order = a.dtype().byteorder();
  if (order == '>' || (order == '!'))
    type_error(op, std::string(name) + " in native byte order, got a byte-swapped array");
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

inline void check_shape(const char* op, const py::array& a, const char* name, std::initializer_list<index_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  if (ok) {
    int i = 0;
    for (index_t d : shape) ok = ok && a.shape(i++) == d;
  }
  if (!ok) {
    std::string want = "(";
    int i = 0;
    for (index_t d : shape) want += (i++ ? ", " : "") + std::to_string(d);
    if (shape.size() == 1) want += ",";
    value_error(op, std::string(name) + " of shape " + want + "), got " + shape_str(a));
  }
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

template <typename T>
inline T* mut_ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <typename T>
inline const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
inline const T* opt_ptr(const py::object& o) {
  if (o.is_none()) return nullptr;
  return static_cast<const T*>(o.cast<py::array>().data());
}

// An optional array argument: None or an array of the reference dtype.
inline bool has(const py::object& o) { return !o.is_none(); }
inline py::array as_array(const char* op, const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) type_error(op, std::string(name) + " to be a numpy array, got " +
                                                        py::str(py::type::of(o).attr("__name__")).cast<std::string>());
  return o.cast<py::array>();
}

// Run f<float>() or f<double>() for the dtype.
template <typename F>
inline void dispatch_float(DType dt, F&& f) {
  if (dt == DType::F32) f(float{}); else f(double{});
}

}  // namespace bind
}  // namespace nnfast

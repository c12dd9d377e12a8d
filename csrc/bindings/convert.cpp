// Binding of the bfloat16 conversions (nnfast/convert.h): _C.convert(out, src) with one
// side bfloat16 (ml_dtypes' dtype: NumPy kind 'V', 2 bytes, type char 'E'; read here
// as its raw 16 bits) and the other float32 or float64. Python's Tensor casts
// (autograd/basic_ops.cast) call it for every conversion to or from bfloat16.
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "nnfast/convert.h"

namespace {

using namespace nnfast;
using namespace nnfast::bind;

// ml_dtypes registers bfloat16 with type char 'E': read without calling into Python.
bool is_bf16(const py::array& a) {
  const py::dtype d = a.dtype();
  return a.itemsize() == 2 && d.kind() == 'V' && d.char_() == 'E';
}

// float32 / float64 (true for float64), or a TypeError naming both accepted kinds.
bool wide_is_f64(const char* op, const py::array& a, const char* name) {
  const char kind = a.dtype().kind();
  if (kind != 'f' || (a.itemsize() != 4 && a.itemsize() != 8))
    type_error(op, std::string(name) + " to be float32, float64 or bfloat16 (the other side bfloat16 / float), got " +
                       dtype_str(a));
  return float_dtype(op, a, name) == DType::F64;
}

void convert_binding(py::array out, py::array src) {
  const char* op = "convert";
  const bool out_bf16 = is_bf16(out), src_bf16 = is_bf16(src);
  if (out_bf16 == src_bf16)
    type_error(op, "exactly one of out and src to be bfloat16 (the other float32 or float64), got " + dtype_str(out) +
                       " and " + dtype_str(src));
  const bool f64 = out_bf16 ? wide_is_f64(op, src, "src") : wide_is_f64(op, out, "out");
  check_contiguous(op, out, "out");
  check_contiguous(op, src, "src");
  check_aligned(op, out, "out");
  check_aligned(op, src, "src");
  check_writeable(op, out, "out");
  if (out.size() != src.size())
    value_error(op, "out with as many elements as src (" + std::to_string(src.size()) + "), got " +
                        std::to_string(out.size()));
  check_no_alias(op, out, "out", src, "src");
  const index_t n = src.size();
  void* po = out.mutable_data();
  const void* ps = src.data();
  py::gil_scoped_release release;
  if (out_bf16) {
    if (f64) cpu::convert_to_bf16(static_cast<std::uint16_t*>(po), static_cast<const double*>(ps), n);
    else cpu::convert_to_bf16(static_cast<std::uint16_t*>(po), static_cast<const float*>(ps), n);
  } else {
    if (f64) cpu::convert_from_bf16(static_cast<double*>(po), static_cast<const std::uint16_t*>(ps), n);
    else cpu::convert_from_bf16(static_cast<float*>(po), static_cast<const std::uint16_t*>(ps), n);
  }
}

}  // namespace

void init_convert(py::module_& m) {
  m.def("convert", &convert_binding, py::arg("out"), py::arg("src"),
        "out = src converted between bfloat16 and float32 / float64 (round to nearest even; exact from bf16)");
}

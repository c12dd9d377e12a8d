// Bindings of the embedding kernels (nnfast/embedding.h): lookup, scatter-add backward,
// max_norm renorm and bags. Indices are int32 or int64; their range is checked here
// (on cuda by a device reduction) before any gather runs.
#include <cstdint>
#include <functional>
#include <string>

#include "bindings/common.h"
#include "nnfast/embedding.h"
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/embedding.h"  // not in nnfast/cuda/kernels.h: that list belongs to the merge
#endif

namespace {

enum class IType { I32, I64 };

// A C-contiguous int32 / int64 array in native byte order.
IType index_dtype(const char* op, const py::array& a, const char* name) {
  const char kind = a.dtype().kind();
  const auto size = a.itemsize();
  if (kind != 'i' || (size != 4 && size != 8))
    type_error(op, std::string(name) + " to be int32 or int64, got " + dtype_str(a));
  const char order = a.dtype().byteorder();
  if (order == '>' || order == '!') type_error(op, std::string(name) + " in native byte order");
  check_aligned(op, a, name);
  check_contiguous(op, a, name);
  return size == 4 ? IType::I32 : IType::I64;
}

// f(T{}, I{}) for the (float, index) dtype pair, the call made with the GIL released.
template <typename F>
void run_typed(DType dt, IType it, F&& make) {
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    if (it == IType::I32) return std::function<void()>(make(T{}, std::int32_t{}));
    return std::function<void()>(make(T{}, std::int64_t{}));
  });
}

// weight: a 2-D float table (R, D), C-contiguous.
DType check_weight(const char* op, const py::array& weight) { return check_input(op, weight, "weight", 2); }

// Every index in [0, R): else IndexError("[op] expected indices in [0, R), got values in [lo, hi]").
void check_index_range(const char* op, const py::array& idx, IType it, index_t R) {
  const index_t N = idx.size();
  if (N == 0) return;
  index_t lo = 0, hi = -1;
  {
    py::gil_scoped_release release;
    if (it == IType::I32)
      embedding_index_range<std::int32_t>(ptr<std::int32_t>(idx), N, &lo, &hi);
    else
      embedding_index_range<std::int64_t>(ptr<std::int64_t>(idx), N, &lo, &hi);
  }
  if (lo < 0 || hi >= R)
    throw py::index_error(std::string("[") + op + "] expected indices in [0, " + std::to_string(R) +
                          "), got values in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

index_t check_padding(const char* op, index_t padding_idx, index_t R) {
  if (padding_idx >= R) value_error(op, "padding_idx < num_embeddings (" + std::to_string(R) + "), got " +
                                            std::to_string(padding_idx));
  return padding_idx < 0 ? -1 : padding_idx;
}

BagMode bag_mode(const char* op, int mode) {
  if (mode < 0 || mode > 2) value_error(op, "mode 0 (sum), 1 (mean) or 2 (max), got " + std::to_string(mode));
  return static_cast<BagMode>(mode);
}

void embedding_forward_binding(py::array out, py::array weight, py::array indices) {
  const char* op = "embedding";
  DType dt = check_weight(op, weight);
  IType it = index_dtype(op, indices, "indices");
  const index_t N = indices.size(), R = weight.shape(0), D = weight.shape(1);
  check_output(op, weight, out, "out");
  if (static_cast<index_t>(out.size()) != N * D)
    value_error(op, "out with N * D = " + std::to_string(N * D) + " elements, got " + std::to_string(out.size()));
  check_no_alias(op, out, "out", weight, "weight");
  check_index_range(op, indices, it, R);
  run_typed(dt, it, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    return [=, po = mut_ptr<T>(out), pw = ptr<T>(weight), pi = ptr<I>(indices)] {
      embedding_forward<T, I>(po, pw, pi, N, D);
    };
  });
}

void embedding_backward_binding(py::array grad_weight, py::array grad, py::array indices, index_t padding_idx,
                                bool scale_grad_by_freq) {
  const char* op = "embedding_backward";
  DType dt = check_input(op, grad_weight, "grad_weight", 2);
  check_writeable(op, grad_weight, "grad_weight");
  same_dtype(op, grad_weight, grad, "grad");
  check_contiguous(op, grad, "grad");
  IType it = index_dtype(op, indices, "indices");
  const index_t N = indices.size(), R = grad_weight.shape(0), D = grad_weight.shape(1);
  if (static_cast<index_t>(grad.size()) != N * D)
    value_error(op, "grad with N * D = " + std::to_string(N * D) + " elements, got " + std::to_string(grad.size()));
  check_no_alias(op, grad_weight, "grad_weight", grad, "grad");
  const index_t pad = check_padding(op, padding_idx, R);
  run_typed(dt, it, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    return [=, pdw = mut_ptr<T>(grad_weight), pg = ptr<T>(grad), pi = ptr<I>(indices)] {
      embedding_backward<T, I>(pdw, pg, pi, N, D, R, pad, scale_grad_by_freq);
    };
  });
}

void embedding_renorm_binding(py::array weight, py::array indices, double max_norm, double norm_type) {
  const char* op = "embedding_renorm";
  DType dt = check_weight(op, weight);
  check_writeable(op, weight, "weight");
  IType it = index_dtype(op, indices, "indices");
  if (!(max_norm >= 0.0)) value_error(op, "max_norm >= 0, got " + std::to_string(max_norm));
  if (!(norm_type > 0.0)) value_error(op, "norm_type > 0, got " + std::to_string(norm_type));
  const index_t N = indices.size(), R = weight.shape(0), D = weight.shape(1);
  check_index_range(op, indices, it, R);
  run_typed(dt, it, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    return [=, pw = mut_ptr<T>(weight), pi = ptr<I>(indices)] {
      embedding_renorm<T, I>(pw, pi, N, D, R, max_norm, norm_type);
    };
  });
}

// offsets: B + 1 int64 entries; on the CPU also checked to be ascending from 0 and
// within N (the Python layer checks them on cuda, where the binding cannot read them).
index_t check_offsets(const char* op, const py::array& offsets, index_t N) {
  if (offsets.dtype().kind() != 'i' || offsets.itemsize() != 8)
    type_error(op, "offsets to be int64, got " + dtype_str(offsets));
  check_ndim(op, offsets, "offsets", 1);
  check_contiguous(op, offsets, "offsets");
  if (offsets.size() < 1) value_error(op, "offsets with at least one entry");
#if !NNFAST_BIND_CUDA
  const auto* o = ptr<std::int64_t>(offsets);
  const index_t n = offsets.size();
  if (o[0] != 0) value_error(op, "offsets to start at 0, got " + std::to_string(o[0]));
  for (index_t b = 1; b < n; ++b)
    if (o[b] < o[b - 1]) value_error(op, "offsets to be non-decreasing");
  if (o[n - 1] > N)
    value_error(op, "offsets within the " + std::to_string(N) + " indices, got " + std::to_string(o[n - 1]));
#else
  (void)N;
#endif
  return static_cast<index_t>(offsets.size()) - 1;
}

void embedding_bag_forward_binding(py::array out, py::object max_indices, py::array weight, py::array indices,
                                   py::array offsets, py::object per_sample_weights, index_t padding_idx, int mode) {
  const char* op = "embedding_bag";
  DType dt = check_weight(op, weight);
  IType it = index_dtype(op, indices, "indices");
  const BagMode m = bag_mode(op, mode);
  const index_t N = indices.size(), R = weight.shape(0), D = weight.shape(1);
  const index_t B = check_offsets(op, offsets, N);
  check_array(op, weight, out, "out", {B, D}, true);
  check_no_alias(op, out, "out", weight, "weight");
  const index_t pad = check_padding(op, padding_idx, R);
  if (m == BagMode::Max) {
    if (!has(max_indices)) value_error(op, "max_indices for mode max");
    py::array mi = as_array(op, max_indices, "max_indices");
    if (mi.dtype().kind() != 'i' || mi.itemsize() != 8) type_error(op, "max_indices to be int64");
    check_shape(op, mi, "max_indices", {B, D});
    check_contiguous(op, mi, "max_indices");
    check_writeable(op, mi, "max_indices");
  }
  if (has(per_sample_weights)) {
    if (m != BagMode::Sum) value_error(op, "per_sample_weights only with mode 'sum'");
    check_array(op, weight, per_sample_weights, "per_sample_weights", {N}, false);
  }
  check_index_range(op, indices, it, R);
  run_typed(dt, it, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    return [=, po = mut_ptr<T>(out), pmi = m == BagMode::Max ? opt_mut_ptr<index_t>(max_indices) : nullptr,
            pw = ptr<T>(weight), pi = ptr<I>(indices), poff = ptr<index_t>(offsets),
            ppsw = opt_ptr<T>(per_sample_weights)] {
      embedding_bag_forward<T, I>(po, pmi, pw, pi, poff, ppsw, B, D, pad, m);
    };
  });
}

void embedding_bag_backward_binding(py::object grad_weight, py::object grad_per_sample_weights, py::array grad,
                                    py::array weight, py::array indices, py::array offsets,
                                    py::object per_sample_weights, py::object max_indices, index_t padding_idx,
                                    int mode, bool scale_grad_by_freq) {
  const char* op = "embedding_bag_backward";
  DType dt = check_weight(op, weight);
  IType it = index_dtype(op, indices, "indices");
  const BagMode m = bag_mode(op, mode);
  const index_t N = indices.size(), R = weight.shape(0), D = weight.shape(1);
  const index_t B = check_offsets(op, offsets, N);
  check_array(op, weight, grad, "grad", {B, D}, false);
  if (has(grad_weight)) {
    py::array gw = check_array(op, weight, grad_weight, "grad_weight", {R, D}, true);
    check_no_alias(op, gw, "grad_weight", grad, "grad");
    check_no_alias(op, gw, "grad_weight", weight, "weight");
  }
  if (has(grad_per_sample_weights)) {
    if (m != BagMode::Sum || !has(per_sample_weights))
      value_error(op, "grad_per_sample_weights only with per_sample_weights in mode 'sum'");
    check_array(op, weight, grad_per_sample_weights, "grad_per_sample_weights", {N}, true);
  }
  if (has(per_sample_weights)) check_array(op, weight, per_sample_weights, "per_sample_weights", {N}, false);
  if (m == BagMode::Max) {
    if (!has(max_indices)) value_error(op, "max_indices for mode max");
    py::array mi = as_array(op, max_indices, "max_indices");
    if (mi.dtype().kind() != 'i' || mi.itemsize() != 8) type_error(op, "max_indices to be int64");
    check_shape(op, mi, "max_indices", {B, D});
    check_contiguous(op, mi, "max_indices");
  }
  const index_t pad = check_padding(op, padding_idx, R);
  run_typed(dt, it, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    return [=, pdw = opt_mut_ptr<T>(grad_weight), pdpsw = opt_mut_ptr<T>(grad_per_sample_weights),
            pg = ptr<T>(grad), pw = ptr<T>(weight), pi = ptr<I>(indices), poff = ptr<index_t>(offsets),
            ppsw = opt_ptr<T>(per_sample_weights), pmi = opt_ptr<index_t>(max_indices)] {
      embedding_bag_backward<T, I>(pdw, pdpsw, pg, pw, pi, poff, ppsw, pmi, N, B, D, R, pad, m, scale_grad_by_freq);
    };
  });
}

}  // namespace

void init_embedding(py::module_& m) {
  m.def("embedding_forward", &embedding_forward_binding, py::arg("out"), py::arg("weight"), py::arg("indices"));
  m.def("embedding_backward", &embedding_backward_binding, py::arg("grad_weight"), py::arg("grad"),
        py::arg("indices"), py::arg("padding_idx"), py::arg("scale_grad_by_freq"));
  m.def("embedding_renorm", &embedding_renorm_binding, py::arg("weight"), py::arg("indices"), py::arg("max_norm"),
        py::arg("norm_type"));
  m.def("embedding_bag_forward", &embedding_bag_forward_binding, py::arg("out"), py::arg("max_indices"),
        py::arg("weight"), py::arg("indices"), py::arg("offsets"), py::arg("per_sample_weights"),
        py::arg("padding_idx"), py::arg("mode"));
  m.def("embedding_bag_backward", &embedding_bag_backward_binding, py::arg("grad_weight"),
        py::arg("grad_per_sample_weights"), py::arg("grad"), py::arg("weight"), py::arg("indices"),
        py::arg("offsets"), py::arg("per_sample_weights"), py::arg("max_indices"), py::arg("padding_idx"),
        py::arg("mode"), py::arg("scale_grad_by_freq"));
}

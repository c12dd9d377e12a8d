#include "bindings/common.h"
#include "nnfast/gemm.h"

namespace {

// ------------------------------------------------------------------ precision="bf16"
// Under precision="bf16" each array may be float32 or bfloat16 (ml_dtypes'
// bfloat16: NumPy kind 'V', 2 bytes, type char 'E'), each independently. Read from the
// descriptor without calling into Python (str(dtype) cost microseconds per array per call).
bool is_bf16(const py::array& a) {
  if (a.itemsize() != 2) return false;
  const py::dtype d = a.dtype();
  return d.kind() == 'V' && d.char_() == 'E';
}

ElemType bf16_operand(const char* op, const py::array& a, const char* name) {
  if (is_bf16(a)) {
    check_aligned(op, a, name);
    return ElemType::BF16;
  }
  if (a.dtype().kind() == 'f' && a.itemsize() == 4) {
    float_dtype(op, a, name);  // byte order, alignment
    return ElemType::F32;
  }
  type_error(op, std::string(name) + " to be float32 or bfloat16 with precision='bf16', got " + dtype_str(a));
}

// An optional epilogue array of gemm under precision="bf16": float32 or bfloat16, C-contiguous.
py::array bf16_epilogue_array(const char* op, const py::object& o, const char* name,
                              std::initializer_list<index_t> shape, bool out, ElemType* type) {
  py::array a = as_array(op, o, name);
  *type = bf16_operand(op, a, name);
  check_shape(op, a, name, shape);
  check_contiguous(op, a, name);
  if (out) check_writeable(op, a, name);
  return a;
}

// "fp32" (every array one float dtype) or "bf16"; anything else is an error.
bool wants_bf16(const char* op, const std::string& precision) {
  if (precision == "bf16") return true;
  if (precision != "fp32") value_error(op, "precision 'fp32' or 'bf16', got '" + precision + "'");
  return false;
}

// The element types of out, A and B: with precision "bf16" each may be float32 or bfloat16;
// with "fp32" all three share one float dtype (dt).
struct GemmTypes {
  bool bf16;
  DType dt;
  ElemType ta, tb, tc;
};

GemmTypes gemm_types(const char* op, const std::string& precision, const py::array& C, const py::array& A,
                     const py::array& B) {
  GemmTypes t{wants_bf16(op, precision), DType::F32, ElemType::F32, ElemType::F32, ElemType::F32};
  if (t.bf16) {
    t.tc = bf16_operand(op, C, "out");
    t.ta = bf16_operand(op, A, "A");
    t.tb = bf16_operand(op, B, "B");
  } else {
    t.dt = float_dtype(op, C, "out");
    same_dtype(op, C, A, "A");
    same_dtype(op, C, B, "B");
  }
  return t;
}

// C = epilogue(alpha * A @ B + beta * C). A and B may have any strides
// (transposed views are free); C needs a unit column stride.
// row_sums (fp32, no epilogue): also row_sums[i] (+)= sum_k A[i, k] (a Linear's bias gradient
// from its dW GEMM: gemm_row_sums, the bits of bias_grad(row_sums, A.T)).
void gemm_binding(py::array C, py::array A, py::array B, double alpha, double beta, py::object bias, int act,
                  double act_a, double act_b, py::object aux, py::object dact_src, const std::string& precision,
                  py::object row_sums, bool row_sums_accumulate) {
  const char* op = "gemm";
  const GemmTypes ty = gemm_types(op, precision, C, A, B);
  const bool bf16 = ty.bf16;
  const DType dt = ty.dt;
  const ElemType ta = ty.ta, tb = ty.tb, tc = ty.tc;
  check_ndim(op, A, "A", 2);
  check_ndim(op, B, "B", 2);
  check_ndim(op, C, "out", 2);
  const index_t M = A.shape(0), K = A.shape(1), N = B.shape(1);
  if (B.shape(0) != K)
    value_error(op, "A @ B with matching inner dimensions, got A " + shape_str(A) + " and B " + shape_str(B));
  check_shape(op, C, "out", {M, N});
  check_writeable(op, C, "out");
  // An empty out has nothing to write (and NumPy gives empty arrays zero strides).
  if (M > 0 && N > 1 && C.strides(1) != static_cast<py::ssize_t>(C.itemsize()))
    value_error(op, "out to have unit column stride");
  if (M > 1 && N > 0 && std::abs(elem_stride(op, C, "out", 0)) < N)
    value_error(op, "out rows not to overlap");
  check_no_alias(op, C, "out", A, "A");
  check_no_alias(op, C, "out", B, "B");
  if (act < 0 || act >= kActCount) value_error(op, "a valid activation code");
  if (has(row_sums) && (bf16 || has(bias) || act != 0 || has(aux) || has(dact_src)))
    value_error(op, "row_sums only with precision 'fp32' and no bias, activation, aux or dact_src");

  if (bf16) {
    GemmBf16Epilogue ep;
    // (The checked arrays are the caller's objects, alive for the call: only their pointers are kept.)
    if (has(bias)) ep.bias = bf16_epilogue_array(op, bias, "bias", {N}, false, &ep.bias_type).data();
    if (has(aux)) {
      py::array aux_a = bf16_epilogue_array(op, aux, "aux", {M, N}, true, &ep.aux_type);
      check_no_alias(op, aux_a, "aux", C, "out");
      ep.aux = aux_a.mutable_data();
      ep.rs_aux = N;
    }
    if (has(dact_src)) {
      ep.dact_src = bf16_epilogue_array(op, dact_src, "dact_src", {M, N}, false, &ep.dact_type).data();
      ep.rs_dact = N;
    }
    ep.act = static_cast<Act>(act);
    ep.act_params.a = act_a;
    ep.act_params.b = act_b;
    const GemmMat ma{A.data(), ta, elem_stride(op, A, "A", 0), elem_stride(op, A, "A", 1)};
    const GemmMat mb{B.data(), tb, elem_stride(op, B, "B", 0), elem_stride(op, B, "B", 1)};
    const index_t rs_c = M > 0 ? elem_stride(op, C, "out", 0) : N;
    void* pc = C.mutable_data();
    py::gil_scoped_release release;
    gemm_bf16(M, N, K, static_cast<float>(alpha), ma, mb, static_cast<float>(beta), pc, tc, rs_c, 1, ep);
    return;
  }

  // Pointers only, no py::array holders: a default-constructed py::array is a new NumPy array
  // (three of them cost more than the rest of a small call's checks). The checked arrays are the
  // caller's objects, alive for the call.
  const void* bias_p = nullptr;
  void* aux_p = nullptr;
  const void* dact_p = nullptr;
  if (has(bias)) bias_p = check_array(op, C, bias, "bias", {N}, false).data();
  if (has(aux)) {
    py::array aux_a = check_array(op, C, aux, "aux", {M, N}, true);
    check_no_alias(op, aux_a, "aux", C, "out");
    aux_p = aux_a.mutable_data();
  }
  if (has(dact_src)) dact_p = check_array(op, C, dact_src, "dact_src", {M, N}, false).data();
  void* rsum_p = nullptr;
  if (has(row_sums)) {
    py::array rs_arr = check_array(op, C, row_sums, "row_sums", {M}, true);
    check_no_alias(op, rs_arr, "row_sums", C, "out");
    check_no_alias(op, rs_arr, "row_sums", A, "A");
    check_no_alias(op, rs_arr, "row_sums", B, "B");
    rsum_p = rs_arr.mutable_data();
  }
  const index_t rs_a = elem_stride(op, A, "A", 0), cs_a = elem_stride(op, A, "A", 1);
  const index_t rs_b = elem_stride(op, B, "B", 0), cs_b = elem_stride(op, B, "B", 1);
  const index_t rs_c = M > 0 ? elem_stride(op, C, "out", 0) : N;

  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    GemmEpilogue<T> ep;
    ep.bias = static_cast<const T*>(bias_p);
    ep.act = static_cast<Act>(act);
    ep.act_params.a = act_a;
    ep.act_params.b = act_b;
    if (aux_p) { ep.aux = static_cast<T*>(aux_p); ep.rs_aux = N; }
    if (dact_p) { ep.dact_src = static_cast<const T*>(dact_p); ep.rs_dact = N; }
    const T* pa = ptr<T>(A);
    const T* pb = ptr<T>(B);
    T* pc = mut_ptr<T>(C);
    if (rsum_p) {
      T* pr = static_cast<T*>(rsum_p);
      py::gil_scoped_release release;
#if NNFAST_BIND_CUDA
      // (No fused form on cuda: the GEMM, then the sums as bias_grad of A^T.)
      gemm<T>(M, N, K, static_cast<T>(alpha), pa, rs_a, cs_a, pb, rs_b, cs_b, static_cast<T>(beta), pc, rs_c, 1, ep);
      bias_grad<T>(pr, pa, cs_a, rs_a, K, M, row_sums_accumulate);
#else
      gemm_row_sums<T>(M, N, K, static_cast<T>(alpha), pa, rs_a, cs_a, pb, rs_b, cs_b, static_cast<T>(beta), pc, rs_c,
                       1, pr, row_sums_accumulate);
#endif
      return;
    }
    // A tiny product (M*N*K below kHoldGilBelow multiply-adds: a few hundred ns of work) keeps
    // the GIL: releasing and re-taking it would cost as much as the GEMM (F.linear's dispatch).
    if (M * N * K < kHoldGilBelow) {
      gemm<T>(M, N, K, static_cast<T>(alpha), pa, rs_a, cs_a, pb, rs_b, cs_b, static_cast<T>(beta), pc, rs_c, 1, ep);
      return;
    }
    py::gil_scoped_release release;
    gemm<T>(M, N, K, static_cast<T>(alpha), pa, rs_a, cs_a, pb, rs_b, cs_b, static_cast<T>(beta), pc, rs_c, 1, ep);
  });
}

// dbias (+)= column sums of G (M x N, any strides).
void bias_grad_binding(py::array dbias, py::array G, bool accumulate) {
  const char* op = "bias_grad";
  DType dt = float_dtype(op, dbias, "dbias");
  same_dtype(op, dbias, G, "grad");
  check_ndim(op, G, "grad", 2);
  check_shape(op, dbias, "dbias", {static_cast<index_t>(G.shape(1))});
  check_contiguous(op, dbias, "dbias");
  check_writeable(op, dbias, "dbias");
  check_no_alias(op, dbias, "dbias", G, "grad");
  const index_t M = G.shape(0), N = G.shape(1);
  const index_t rs = elem_stride(op, G, "grad", 0), cs = elem_stride(op, G, "grad", 1);
  run_sized(dt, M * N, [&](auto tag) {
    using T = decltype(tag);
    return [=, pd = mut_ptr<T>(dbias), pg = ptr<T>(G)] { bias_grad<T>(pd, pg, rs, cs, M, N, accumulate); };
  });
}

// out[b] = alpha * A[b] @ B[b] + beta * out[b] over 3-D arrays. A and B may have any
// strides (a batch stride of 0, as np.broadcast_to gives, broadcasts one matrix);
// out needs unit column stride and matrices that do not overlap.
void bmm_binding(py::array C, py::array A, py::array B, double alpha, double beta, const std::string& precision) {
  const char* op = "bmm";
  const GemmTypes ty = gemm_types(op, precision, C, A, B);
  const bool bf16 = ty.bf16;
  const DType dt = ty.dt;
  const ElemType ta = ty.ta, tb = ty.tb, tc = ty.tc;
  check_ndim(op, A, "A", 3);
  check_ndim(op, B, "B", 3);
  check_ndim(op, C, "out", 3);
  const index_t batch = A.shape(0), M = A.shape(1), K = A.shape(2), N = B.shape(2);
  if (B.shape(0) != batch || B.shape(1) != K)
    value_error(op, "A @ B with equal batch sizes and matching inner dimensions, got A " + shape_str(A) +
                        " and B " + shape_str(B));
  check_shape(op, C, "out", {batch, M, N});
  check_writeable(op, C, "out");
  const bool nonempty = batch > 0 && M > 0 && N > 0;
  if (nonempty && N > 1 && C.strides(2) != static_cast<py::ssize_t>(C.itemsize()))
    value_error(op, "out to have unit column stride");
  const index_t rs_c = nonempty ? elem_stride(op, C, "out", 1) : N;
  const index_t bs_c = nonempty ? elem_stride(op, C, "out", 0) : M * N;
  if (nonempty && ((M > 1 && std::abs(rs_c) < N) || (batch > 1 && std::abs(bs_c) < M * std::abs(rs_c))))
    value_error(op, "out matrices and rows not to overlap");
  check_no_alias(op, C, "out", A, "A");
  check_no_alias(op, C, "out", B, "B");
  const index_t bs_a = elem_stride(op, A, "A", 0), rs_a = elem_stride(op, A, "A", 1), cs_a = elem_stride(op, A, "A", 2);
  const index_t bs_b = elem_stride(op, B, "B", 0), rs_b = elem_stride(op, B, "B", 1), cs_b = elem_stride(op, B, "B", 2);
  if (bf16) {
    const GemmMat ma{A.data(), ta, rs_a, cs_a}, mb{B.data(), tb, rs_b, cs_b};
    void* pc = C.mutable_data();
    py::gil_scoped_release release;
    gemm_bf16_batched(batch, M, N, K, static_cast<float>(alpha), ma, bs_a, mb, bs_b, static_cast<float>(beta), pc, tc,
                      bs_c, rs_c, 1);
    return;
  }
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, pa = ptr<T>(A), pb = ptr<T>(B), pc = mut_ptr<T>(C)] {
      gemm_batched<T>(batch, M, N, K, static_cast<T>(alpha), pa, bs_a, rs_a, cs_a, pb, bs_b, rs_b, cs_b,
                      static_cast<T>(beta), pc, bs_c, rs_c, 1);
    };
  });
}

}  // namespace

void init_gemm(py::module_& m) {
  m.def("gemm", &gemm_binding, py::arg("out"), py::arg("A"), py::arg("B"), py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("act") = 0, py::arg("act_a") = 0.0,
        py::arg("act_b") = 0.0, py::arg("aux") = py::none(), py::arg("dact_src") = py::none(),
        py::arg("precision") = "fp32", py::arg("row_sums") = py::none(), py::arg("row_sums_accumulate") = true,
        "out = epilogue(alpha * A @ B + beta * out); epilogue adds bias, applies act (storing the "
        "pre-activation in aux), or multiplies by act'(dact_src). precision='bf16': A, B, out, bias, aux, "
        "dact_src each float32 or bfloat16; A and B rounded to bf16, float32 accumulation and epilogue. "
        "row_sums (fp32, no epilogue): also row_sums[i] (+)= sum_k A[i, k], as bias_grad(row_sums, A.T).");
  m.def("bmm", &bmm_binding, py::arg("out"), py::arg("A"), py::arg("B"), py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("precision") = "fp32", "out[b] = alpha * A[b] @ B[b] + beta * out[b] for 3-D arrays (strided batched GEMM).");
  m.def("bias_grad", &bias_grad_binding, py::arg("dbias"), py::arg("grad"), py::arg("accumulate") = true);
}

// Bindings of the fused attention kernels (nnfast/attention.h).
//
// query (.., L, E), key (.., S, E), value (.., S, Ev) and the optional attn_mask
// (.., L, S) are any arrays whose last two dims are the matrices; `offsets`
// (4, BH) int64 gives, per batch-head, the element offset of its q, k, v and
// mask matrix from each array's data pointer (row 3 unused without a mask). The
// Python layer computes them from the broadcast batch shape (0 steps for a
// broadcast dim, repeated key / value heads for grouped-query attention), so no
// view is copied. q / k / v need a unit stride along their last dim; every
// offset is checked to stay inside its array. Outputs are C-contiguous (BH, ...),
// unless `out_offsets` is given (CPU only): then out (forward) or grad_query,
// grad_key, grad_value, grad and out (backward, rows 0-4) are strided views read
// and written like q / k / v at those offsets (packed_self_attention's merged
// heads and packed dq / dk / dv, no copies); written matrices must not overlap.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "nnfast/attention.h"
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/attention.h"  // nnfast._C_cuda: the same calls reach the CUDA launchers
#endif

namespace {

using Shape = std::vector<index_t>;
constexpr const char* kOp = "scaled_dot_product_attention";

// The matrices of one operand: an array's last two dims at BH offsets.
struct View {
  py::array a = no_array();
  const int64_t* off = nullptr;
  index_t rows = 0, cols = 0, rs = 0, cs = 0;
};

View view_of(const py::array& a, const char* name, const int64_t* off, index_t BH, bool unit_cols) {
  if (a.ndim() < 2) value_error(kOp, std::string(name) + " of rank >= 2, got rank " + std::to_string(a.ndim()));
  View v;
  v.a = a;
  v.off = off;
  const int nd = static_cast<int>(a.ndim());
  v.rows = static_cast<index_t>(a.shape(nd - 2));
  v.cols = static_cast<index_t>(a.shape(nd - 1));
  v.rs = elem_stride(kOp, a, name, nd - 2);
  v.cs = elem_stride(kOp, a, name, nd - 1);
  if (unit_cols && v.cols > 1 && v.cs != 1 && a.size() > 0) value_error(kOp, std::string(name) + " with a unit stride along its last dim");
  if (unit_cols) v.cs = 1;
  if (v.rows == 0 || v.cols == 0) return v;
  // Every matrix must lie inside the array's own byte range.
  std::uintptr_t lo, hi;
  byte_range(a, &lo, &hi);
  const auto item = static_cast<std::intptr_t>(a.itemsize());
  const std::intptr_t er = (v.rows - 1) * v.rs * item, ec = (v.cols - 1) * v.cs * item;
  const std::intptr_t emin = std::min<std::intptr_t>(er, 0) + std::min<std::intptr_t>(ec, 0);
  const std::intptr_t emax = std::max<std::intptr_t>(er, 0) + std::max<std::intptr_t>(ec, 0);
  const auto base = reinterpret_cast<std::intptr_t>(a.data());
  for (index_t b = 0; b < BH; ++b) {
    const std::intptr_t start = base + static_cast<std::intptr_t>(off[b]) * item;
    if (start + emin < static_cast<std::intptr_t>(lo) || start + emax + item > static_cast<std::intptr_t>(hi))
      value_error(kOp, std::string("offsets of ") + name + " inside the array, got " + std::to_string(off[b]) +
                           " at batch-head " + std::to_string(b));
  }
  return v;
}

// out_offsets: None, or a C-contiguous int64 (n, BH) table (the strided outputs' matrix offsets).
const int64_t* out_table(const py::object& o, index_t n, index_t BH) {
  if (!has(o)) return nullptr;
#if NNFAST_BIND_CUDA
  value_error(kOp, "out_offsets only on the CPU (C-contiguous outputs on cuda)");
#endif
  py::array t = as_array(kOp, o, "out_offsets");
  if (t.dtype().kind() != 'i' || t.itemsize() != 8 || t.ndim() != 2 || t.shape(0) != n || t.shape(1) != BH ||
      !is_c_contiguous(t))
    value_error(kOp, "out_offsets as a C-contiguous int64 array of shape (" + std::to_string(n) + ", " +
                         std::to_string(BH) + "), got " + dtype_str(t) + " " + shape_str(t));
  return static_cast<const int64_t*>(t.data());
}

struct Inputs {
  DType dt;
  index_t BH = 0;
  View q, k, v, mask;
  bool has_mask = false, mask_bool = false;
};

Inputs check_inputs(const py::array& query, const py::array& key, const py::array& value,
                    const py::object& attn_mask, const py::array& offsets) {
  Inputs in;
  in.dt = float_dtype(kOp, query, "query");
  same_dtype(kOp, query, key, "key");
  same_dtype(kOp, query, value, "value");
  if (offsets.dtype().kind() != 'i' || offsets.itemsize() != 8 || offsets.ndim() != 2 || offsets.shape(0) != 4 ||
      !is_c_contiguous(offsets))
    value_error(kOp, "offsets as a C-contiguous int64 array of shape (4, BH), got " + dtype_str(offsets) + " " +
                         shape_str(offsets));
  in.BH = static_cast<index_t>(offsets.shape(1));
  const int64_t* off = static_cast<const int64_t*>(offsets.data());
  in.q = view_of(query, "query", off, in.BH, true);
  in.k = view_of(key, "key", off + in.BH, in.BH, true);
  in.v = view_of(value, "value", off + 2 * in.BH, in.BH, true);
  if (in.k.cols != in.q.cols)
    value_error(kOp, "key with the feature size of query (" + std::to_string(in.q.cols) + "), got " +
                         std::to_string(in.k.cols));
  if (in.v.rows != in.k.rows)
    value_error(kOp, "value with as many rows as key (" + std::to_string(in.k.rows) + "), got " +
                         std::to_string(in.v.rows));
  if (has(attn_mask)) {
    py::array m = as_array(kOp, attn_mask, "attn_mask");
    in.has_mask = true;
    in.mask_bool = m.dtype().kind() == 'b';
    if (!in.mask_bool) same_dtype(kOp, query, m, "attn_mask");
    in.mask = view_of(m, "attn_mask", off + 3 * in.BH, in.BH, false);
    if (in.mask.rows != in.q.rows || in.mask.cols != in.k.rows)
      value_error(kOp, "attn_mask with matrix shape (" + std::to_string(in.q.rows) + ", " +
                           std::to_string(in.k.rows) + "), got " + shape_str(m));
  }
  return in;
}

Shape with(index_t BH, std::initializer_list<index_t> tail) {
  Shape s{BH};
  s.insert(s.end(), tail);
  return s;
}

AttnParams params_of(const Inputs& in, double scale, bool is_causal, double dropout_p, uint64_t seed,
                     uint64_t offset) {
  if (!std::isfinite(scale)) value_error(kOp, "a finite scale, got " + std::to_string(scale));
  if (!(dropout_p >= 0.0 && dropout_p < 1.0))
    value_error(kOp, "dropout_p in [0, 1), got " + std::to_string(dropout_p));
  if (is_causal && in.has_mask) value_error(kOp, "attn_mask and is_causal not both set");
  AttnParams p;
  p.BH = in.BH, p.L = in.q.rows, p.S = in.k.rows, p.E = in.q.cols, p.Ev = in.v.cols;
  p.scale = scale, p.causal = is_causal, p.dropout_p = dropout_p, p.seed = seed, p.offset = offset;
  return p;
}

template <typename T>
AttnInputs<T> operands(const Inputs& in) {
  AttnInputs<T> a;
  a.q = {ptr<T>(in.q.a), in.q.off, in.q.rs};
  a.k = {ptr<T>(in.k.a), in.k.off, in.k.rs};
  a.v = {ptr<T>(in.v.a), in.v.off, in.v.rs};
  if (in.has_mask) {
    a.mask.base = in.mask.a.data();
    a.mask.is_bool = in.mask_bool;
    a.mask.off = in.mask.off;
    a.mask.rs = in.mask.rs;
    a.mask.cs = in.mask.cs;
  }
  return a;
}

#if !NNFAST_BIND_CUDA
// A strided output / dout operand: ref's dtype, (rows, cols) matrices, writeable when written.
View mat_of(const py::array& ref, const py::object& o, const char* name, const int64_t* off, index_t BH, index_t rows,
            index_t cols, bool out) {
  py::array a = as_array(kOp, o, name);
  same_dtype(kOp, ref, a, name);
  if (out) check_writeable(kOp, a, name);
  View v = view_of(a, name, off, BH, true);
  if (v.rows != rows || v.cols != cols)
    value_error(kOp, std::string(name) + " with matrices of shape (" + std::to_string(rows) + ", " +
                         std::to_string(cols) + "), got " + shape_str(a));
  return v;
}

// Written strided matrices must not overlap one another (threads write them concurrently). Views whose arrays'
// byte ranges meet must share a row stride rs; with element addresses e taken from the lowest array, a matrix
// covers columns [e % rs, e % rs + cols) of rows [e / rs, e / rs + rows). Matrices with the same column range
// must have disjoint row ranges, and different column ranges must not meet (conservative, exact for the
// head layouts nnfast passes): sorting makes it O(n log n).
void check_disjoint(const std::vector<const View*>& vs, index_t BH) {
  std::vector<const View*> live;
  for (const View* v : vs)
    if (v->rows > 0 && v->cols > 0 && v->a.size() > 0) live.push_back(v);
  if (live.empty() || BH <= 0) return;
  const char* msg = "strided gradient matrices that do not overlap one another";
  const auto item = static_cast<std::intptr_t>(live[0]->a.itemsize());
  std::uintptr_t lo0 = ~std::uintptr_t(0), lo, hi;
  for (const View* v : live) {
    byte_range(v->a, &lo, &hi);
    lo0 = std::min(lo0, lo);
  }
  bool shared = false;
  for (size_t i = 0; i < live.size(); ++i)
    for (size_t j = 0; j < i; ++j) shared = shared || may_overlap(live[i]->a, live[j]->a);
  const index_t rs = live[0]->rs;
  if (rs <= 0) value_error(kOp, msg);
  for (const View* v : live)
    if (v->rs <= 0 || (shared && v->rs != rs) || (v->rows > 1 && v->rs < v->cols)) value_error(kOp, msg);
  // (c0, c1, r0, r1) per matrix; separate arrays that do not share memory are checked apart
  std::vector<std::array<std::intptr_t, 4>> rects;
  auto check = [&]() {
    std::sort(rects.begin(), rects.end());
    for (size_t i = 1; i < rects.size(); ++i) {
      const auto &p = rects[i - 1], &q = rects[i];
      if (q[0] == p[0] && q[1] == p[1]) {
        if (q[2] < p[3]) value_error(kOp, msg);
      } else if (q[0] < p[1]) {
        value_error(kOp, msg);
      }
    }
    rects.clear();
  };
  for (const View* v : live) {
    const std::intptr_t base = (reinterpret_cast<std::intptr_t>(v->a.data()) - static_cast<std::intptr_t>(lo0)) / item;
    for (index_t b = 0; b < BH; ++b) {
      const std::intptr_t e = base + v->off[b], c0 = e % v->rs, r0 = e / v->rs;
      if (v->rows > 1 && c0 + v->cols > v->rs) value_error(kOp, msg);
      rects.push_back({c0, c0 + v->cols, r0, r0 + v->rows});
    }
    if (!shared) check();
  }
  if (shared) check();
}

#endif  // !NNFAST_BIND_CUDA

void no_alias_out(const py::array& out, const char* name, const Inputs& in) {
  check_no_alias(kOp, out, name, in.q.a, "query");
  check_no_alias(kOp, out, name, in.k.a, "key");
  check_no_alias(kOp, out, name, in.v.a, "value");
  if (in.has_mask) check_no_alias(kOp, out, name, in.mask.a, "attn_mask");
}

// bf16: the *_bf16 entries (CPU only): float32 arrays, every tile product on the bf16 GEMM.
void check_bf16_route(bool bf16, const Inputs& in, const py::object& out_offsets) {
  if (!bf16) return;
  if (in.dt != DType::F32) type_error(kOp, "float32 arrays for the bf16 kernel, got " + dtype_str(in.q.a));
  if (has(out_offsets)) value_error(kOp, "no out_offsets with the bf16 kernel");
}

void sdpa_forward_impl(bool bf16, py::array out, py::array lse, py::array query, py::array key, py::array value,
                       py::object attn_mask, py::array offsets, double scale, bool is_causal, double dropout_p,
                       uint64_t seed, uint64_t offset, py::object out_offsets) {
  const Inputs in = check_inputs(query, key, value, attn_mask, offsets);
  check_bf16_route(bf16, in, out_offsets);
  AttnParams p = params_of(in, scale, is_causal, dropout_p, seed, offset);
  p.bf16 = bf16;
  if (const int64_t* oo = out_table(out_offsets, 1, in.BH)) {
#if !NNFAST_BIND_CUDA
    View ov = mat_of(query, out, "out", oo, in.BH, p.L, p.Ev, true);
    py::array ls = check_array(kOp, query, lse, "lse", with(in.BH, {p.L}), true);
    no_alias_out(ov.a, "out", in);
    no_alias_out(ls, "lse", in);
    check_no_alias(kOp, ov.a, "out", ls, "lse");
    check_disjoint({&ov}, in.BH);
    run_released(in.dt, [&](auto tag) {
      using T = decltype(tag);
      return [&, po = AttnMat<T>{mut_ptr<T>(ov.a), oo, ov.rs}, pl = mut_ptr<T>(ls), args = operands<T>(in)] {
        cpu::sdpa_forward<T>(po, pl, args, p);
      };
    });
#endif
    return;
  }
  py::array o = check_array(kOp, query, out, "out", with(in.BH, {p.L, p.Ev}), true);
  py::array ls = check_array(kOp, query, lse, "lse", with(in.BH, {p.L}), true);
  no_alias_out(o, "out", in);
  no_alias_out(ls, "lse", in);
  check_no_alias(kOp, o, "out", ls, "lse");
  run_released(in.dt, [&](auto tag) {
    using T = decltype(tag);
    return [&, po = mut_ptr<T>(o), pl = mut_ptr<T>(ls), args = operands<T>(in)] {
      sdpa_forward<T>(po, pl, args, p);
    };
  });
}

void sdpa_backward_impl(bool bf16, py::array grad_query, py::array grad_key, py::array grad_value,
                        py::object grad_mask, py::array grad, py::array out, py::array lse, py::array query,
                        py::array key, py::array value, py::object attn_mask, py::array offsets, double scale,
                        bool is_causal, double dropout_p, uint64_t seed, uint64_t offset, py::object out_offsets) {
  const Inputs in = check_inputs(query, key, value, attn_mask, offsets);
  check_bf16_route(bf16, in, out_offsets);
  AttnParams p = params_of(in, scale, is_causal, dropout_p, seed, offset);
  p.bf16 = bf16;
  if (const int64_t* oo = out_table(out_offsets, 5, in.BH)) {
#if !NNFAST_BIND_CUDA
    if (has(grad_mask) || in.has_mask) value_error(kOp, "no attn_mask / grad_mask with out_offsets");
    const index_t BH = in.BH;
    View vq = mat_of(query, grad_query, "grad_query", oo, BH, p.L, p.E, true);
    View vk = mat_of(query, grad_key, "grad_key", oo + BH, BH, p.S, p.E, true);
    View vv = mat_of(query, grad_value, "grad_value", oo + 2 * BH, BH, p.S, p.Ev, true);
    const View vy = mat_of(query, grad, "grad", oo + 3 * BH, BH, p.L, p.Ev, false);
    const View vo = mat_of(query, out, "out", oo + 4 * BH, BH, p.L, p.Ev, false);
    py::array ls = check_array(kOp, query, lse, "lse", with(BH, {p.L}), false);
    for (const auto& [w, name] : {std::make_pair(&vq, "grad_query"), std::make_pair(&vk, "grad_key"),
                                  std::make_pair(&vv, "grad_value")}) {
      no_alias_out(w->a, name, in);
      check_no_alias(kOp, w->a, name, vy.a, "grad");
      check_no_alias(kOp, w->a, name, vo.a, "out");
      check_no_alias(kOp, w->a, name, ls, "lse");
    }
    check_disjoint({&vq, &vk, &vv}, BH);
    run_released(in.dt, [&](auto tag) {
      using T = decltype(tag);
      return [&, dq = AttnMat<T>{mut_ptr<T>(vq.a), oo, vq.rs}, dk = AttnMat<T>{mut_ptr<T>(vk.a), oo + BH, vk.rs},
              dv = AttnMat<T>{mut_ptr<T>(vv.a), oo + 2 * BH, vv.rs},
              dy = AttnMat<const T>{ptr<T>(vy.a), oo + 3 * BH, vy.rs},
              o = AttnMat<const T>{ptr<T>(vo.a), oo + 4 * BH, vo.rs}, pl = ptr<T>(ls), args = operands<T>(in)] {
        cpu::sdpa_backward<T>(dq, dk, dv, static_cast<T*>(nullptr), dy, o, pl, args, p);
      };
    });
#endif
    return;
  }
  py::array dq = check_array(kOp, query, grad_query, "grad_query", with(in.BH, {p.L, p.E}), true);
  py::array dk = check_array(kOp, query, grad_key, "grad_key", with(in.BH, {p.S, p.E}), true);
  py::array dv = check_array(kOp, query, grad_value, "grad_value", with(in.BH, {p.S, p.Ev}), true);
  py::array dy = check_array(kOp, query, grad, "grad", with(in.BH, {p.L, p.Ev}), false);
  py::array o = check_array(kOp, query, out, "out", with(in.BH, {p.L, p.Ev}), false);
  py::array ls = check_array(kOp, query, lse, "lse", with(in.BH, {p.L}), false);
  py::array dm = no_array();
  const bool want_dm = has(grad_mask);
  if (want_dm) {
    if (!in.has_mask || in.mask_bool) value_error(kOp, "grad_mask only with a float attn_mask");
    dm = check_array(kOp, query, grad_mask, "grad_mask", with(in.BH, {p.L, p.S}), true);
  }
  const std::vector<std::pair<py::array, const char*>> outs = {
      {dq, "grad_query"}, {dk, "grad_key"}, {dv, "grad_value"}};
  for (size_t i = 0; i < outs.size(); ++i) {
    no_alias_out(outs[i].first, outs[i].second, in);
    for (const auto& r : {std::make_pair(dy, "grad"), std::make_pair(o, "out"), std::make_pair(ls, "lse")})
      check_no_alias(kOp, outs[i].first, outs[i].second, r.first, r.second);
    for (size_t j = i + 1; j < outs.size(); ++j)
      check_no_alias(kOp, outs[i].first, outs[i].second, outs[j].first, outs[j].second);
    if (want_dm) check_no_alias(kOp, outs[i].first, outs[i].second, dm, "grad_mask");
  }
  if (want_dm) {
    no_alias_out(dm, "grad_mask", in);
    check_no_alias(kOp, dm, "grad_mask", dy, "grad");
  }
  run_released(in.dt, [&](auto tag) {
    using T = decltype(tag);
    return [&, pdq = mut_ptr<T>(dq), pdk = mut_ptr<T>(dk), pdv = mut_ptr<T>(dv),
            pdm = want_dm ? mut_ptr<T>(dm) : static_cast<T*>(nullptr), pdy = ptr<T>(dy), po = ptr<T>(o),
            pl = ptr<T>(ls), args = operands<T>(in)] { sdpa_backward<T>(pdq, pdk, pdv, pdm, pdy, po, pl, args, p); };
  });
}

template <bool kBf16>
void sdpa_forward_binding(py::array out, py::array lse, py::array query, py::array key, py::array value,
                          py::object attn_mask, py::array offsets, double scale, bool is_causal, double dropout_p,
                          uint64_t seed, uint64_t offset, py::object out_offsets) {
  sdpa_forward_impl(kBf16, out, lse, query, key, value, attn_mask, offsets, scale, is_causal, dropout_p, seed, offset,
                    out_offsets);
}

template <bool kBf16>
void sdpa_backward_binding(py::array grad_query, py::array grad_key, py::array grad_value, py::object grad_mask,
                           py::array grad, py::array out, py::array lse, py::array query, py::array key,
                           py::array value, py::object attn_mask, py::array offsets, double scale, bool is_causal,
                           double dropout_p, uint64_t seed, uint64_t offset, py::object out_offsets) {
  sdpa_backward_impl(kBf16, grad_query, grad_key, grad_value, grad_mask, grad, out, lse, query, key, value, attn_mask,
                     offsets, scale, is_causal, dropout_p, seed, offset, out_offsets);
}

}  // namespace

void init_attention(py::module_& m) {
  m.def("sdpa_forward", &sdpa_forward_binding<false>, py::arg("out"), py::arg("lse"), py::arg("query"), py::arg("key"),
        py::arg("value"), py::arg("attn_mask"), py::arg("offsets"), py::arg("scale"), py::arg("is_causal"), py::arg("dropout_p"),
        py::arg("seed"), py::arg("offset"), py::arg("out_offsets") = py::none());
  m.def("sdpa_backward", &sdpa_backward_binding<false>, py::arg("grad_query"), py::arg("grad_key"), py::arg("grad_value"),
        py::arg("grad_mask"), py::arg("grad"), py::arg("out"), py::arg("lse"), py::arg("query"), py::arg("key"),
        py::arg("value"), py::arg("attn_mask"), py::arg("offsets"), py::arg("scale"), py::arg("is_causal"), py::arg("dropout_p"),
        py::arg("seed"), py::arg("offset"), py::arg("out_offsets") = py::none());
#if !NNFAST_BIND_CUDA
  // autocast's attention (amp/_attention_bf16.py): the same arguments, float32 arrays, bf16 tile products
  m.def("sdpa_forward_bf16", &sdpa_forward_binding<true>, py::arg("out"), py::arg("lse"), py::arg("query"),
        py::arg("key"), py::arg("value"), py::arg("attn_mask"), py::arg("offsets"), py::arg("scale"),
        py::arg("is_causal"), py::arg("dropout_p"), py::arg("seed"), py::arg("offset"),
        py::arg("out_offsets") = py::none());
  m.def("sdpa_backward_bf16", &sdpa_backward_binding<true>, py::arg("grad_query"), py::arg("grad_key"),
        py::arg("grad_value"), py::arg("grad_mask"), py::arg("grad"), py::arg("out"), py::arg("lse"),
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask"), py::arg("offsets"),
        py::arg("scale"), py::arg("is_causal"), py::arg("dropout_p"), py::arg("seed"), py::arg("offset"),
        py::arg("out_offsets") = py::none());
#endif
}

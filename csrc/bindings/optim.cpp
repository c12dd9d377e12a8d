// Bindings of the multi-tensor optimizer kernels: each call takes Python lists
// of arrays (one list per role: params, grads, each state) for a whole param
// group, checks every array once, splits the lists by dtype (float32 and float64
// may share a group) and runs one kernel call per dtype with the GIL released.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/common.h"
#include "nnfast/optim.h"

namespace {

// One role in a call: its name in messages, whether the kernel writes it, and
// whether the whole list may be None (an unused state).
struct Role {
  const char* name;
  bool written;
};

// Checked tensor lists. lists[k][i] is tensor i of role k; role 0 is the
// reference (params, or the tensors being reduced/modified): every other role
// must match its dtype and shape tensor by tensor.
struct TensorLists {
  index_t count = 0;
  std::vector<DType> dtype;
  std::vector<index_t> numel;
  std::vector<std::vector<void*>> ptr;  // [role][tensor]; an absent role is empty
};

std::string item(const Role& r, index_t i) { return std::string(r.name) + "[" + std::to_string(i) + "]"; }

TensorLists check_lists(const char* op, const std::vector<Role>& roles, const std::vector<py::object>& lists) {
  TensorLists L;
  const py::list ref = lists[0].cast<py::list>();
  L.count = static_cast<index_t>(ref.size());
  L.ptr.resize(roles.size());
  std::vector<std::vector<py::array>> arrays(roles.size());
  for (size_t k = 0; k < roles.size(); ++k) {
    if (lists[k].is_none()) continue;
    if (!py::isinstance<py::list>(lists[k]) && !py::isinstance<py::tuple>(lists[k]))
      type_error(op, std::string(roles[k].name) + " to be a list of arrays");
    const py::sequence seq = lists[k].cast<py::sequence>();
    if (static_cast<index_t>(seq.size()) != L.count)
      value_error(op, std::string(roles[k].name) + " to hold " + std::to_string(L.count) + " arrays (one per " +
                          roles[0].name + "), got " + std::to_string(seq.size()));
    for (index_t i = 0; i < L.count; ++i) {
      py::object o = seq[static_cast<size_t>(i)];
      arrays[k].push_back(as_array(op, o, item(roles[k], i).c_str()));
    }
  }
  // Byte ranges of every array, to reject any overlap between two of them.
  struct Range {
    std::uintptr_t lo, hi;
    size_t role;
    index_t i;
  };
  std::vector<Range> ranges;
  for (index_t i = 0; i < L.count; ++i) {
    const py::array& r0 = arrays[0][i];
    const std::string n0 = item(roles[0], i);
    L.dtype.push_back(float_dtype(op, r0, n0.c_str()));
    L.numel.push_back(static_cast<index_t>(r0.size()));
    for (size_t k = 0; k < roles.size(); ++k) {
      if (arrays[k].empty()) continue;
      py::array& a = arrays[k][i];
      const std::string nk = item(roles[k], i);
      if (k > 0) {
        same_dtype(op, r0, a, nk.c_str());
        bool same_shape = a.ndim() == r0.ndim();
        for (py::ssize_t d = 0; same_shape && d < a.ndim(); ++d) same_shape = a.shape(d) == r0.shape(d);
        if (!same_shape) value_error(op, nk + " of shape " + shape_str(r0) + " (as " + n0 + "), got " + shape_str(a));
      }
      check_contiguous(op, a, nk.c_str());
      if (roles[k].written) check_writeable(op, a, nk.c_str());
      L.ptr[k].push_back(roles[k].written ? a.mutable_data() : const_cast<void*>(a.data()));
      if (a.size() > 0) {
        Range rg{0, 0, k, i};
        byte_range(a, &rg.lo, &rg.hi);
        ranges.push_back(rg);
      }
    }
  }
  if (roles.size() > 1 || roles[0].written) {
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
    // Sorted by start, a range overlaps an earlier one exactly when it starts
    // before the furthest end seen so far.
    size_t far = 0;
    for (size_t j = 1; j < ranges.size(); ++j) {
      if (ranges[j].lo < ranges[far].hi)
        value_error(op, "arrays not to share memory: " + item(roles[ranges[far].role], ranges[far].i) + " overlaps " +
                            item(roles[ranges[j].role], ranges[j].i));
      if (ranges[j].hi > ranges[far].hi) far = j;
    }
  }
  return L;
}

// A dtype's share of checked lists: pointer arrays the kernel takes.
template <typename T>
struct Part {
  std::vector<index_t> idx;  // positions in the full lists
  std::vector<index_t> numel;
  std::vector<std::vector<T*>> ptr;  // [role][j]; empty when the role is absent
  T* const* list(size_t k) const { return ptr[k].empty() ? nullptr : ptr[k].data(); }
  const T* const* clist(size_t k) const { return reinterpret_cast<const T* const*>(list(k)); }
  index_t count() const { return static_cast<index_t>(idx.size()); }
};

template <typename T>
Part<T> part_of(const TensorLists& L, DType dt) {
  Part<T> P;
  P.ptr.resize(L.ptr.size());
  for (index_t i = 0; i < L.count; ++i) {
    if (L.dtype[i] != dt) continue;
    P.idx.push_back(i);
    P.numel.push_back(L.numel[i]);
    for (size_t k = 0; k < L.ptr.size(); ++k)
      if (!L.ptr[k].empty()) P.ptr[k].push_back(static_cast<T*>(L.ptr[k][i]));
  }
  return P;
}

// Runs f(Part<T>) for float32 then float64, skipping a dtype with no tensors.
template <typename F>
void for_each_dtype(const TensorLists& L, F&& f) {
  for (DType dt : {DType::F32, DType::F64}) {
    if (std::find(L.dtype.begin(), L.dtype.end(), dt) == L.dtype.end()) continue;
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      Part<T> P = part_of<T>(L, dt);
      f(P);
    });
  }
}

std::vector<index_t> steps_of(const char* op, const TensorLists& L, const std::vector<index_t>& step) {
  if (static_cast<index_t>(step.size()) != L.count)
    value_error(op, "one step count per param (" + std::to_string(L.count) + "), got " + std::to_string(step.size()));
  for (index_t s : step)
    if (s < 1) value_error(op, "step counts >= 1 (after this step's increment), got " + std::to_string(s));
  return step;
}

template <typename T>
std::vector<index_t> pick(const std::vector<index_t>& v, const Part<T>& P) {
  std::vector<index_t> out;
  for (index_t i : P.idx) out.push_back(v[i]);
  return out;
}

void require(const char* op, bool cond, const char* what) {
  if (!cond) value_error(op, what);
}

// ------------------------------------------------------------------ steps
void sgd_binding(py::object params, py::object grads, py::object momentum_buffers, std::vector<bool> init_buffer,
                 double lr, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize) {
  const char* op = "sgd";
  const bool has_m = momentum != 0.0;
  require(op, !has_m || !momentum_buffers.is_none(), "momentum_buffers when momentum != 0");
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"momentum_buffers", true}},
                              {params, grads, has_m ? momentum_buffers : py::none()});
  if (has_m && static_cast<index_t>(init_buffer.size()) != L.count)
    value_error(op, "one init_buffer flag per param");
  SGDOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<std::uint8_t> init;
    if (has_m)
      for (index_t i : P.idx) init.push_back(init_buffer[i] ? 1 : 0);
    py::gil_scoped_release release;
    sgd_step(P.list(0), P.list(2), P.clist(1), has_m ? init.data() : nullptr, P.numel.data(), P.count(), o);
  });
}

// bf16_copies (nnfast, for autocast): None, or one entry per param, None or a C-contiguous
// writeable bfloat16 array of a float32 param's size that receives the updated param
// rounded to bf16 in the same pass (cpu::adam_step_bf16_copy).
std::vector<std::uint16_t*> bf16_copies_of(const char* op, const TensorLists& L, const py::object& params,
                                           const py::object& copies) {
  std::vector<std::uint16_t*> out(static_cast<size_t>(L.count), nullptr);
  if (copies.is_none()) return out;
  if (!py::isinstance<py::list>(copies) && !py::isinstance<py::tuple>(copies))
    type_error(op, "bf16_copies to be None or a list of arrays");
  const py::sequence seq = copies.cast<py::sequence>();
  if (static_cast<index_t>(seq.size()) != L.count)
    value_error(op, "bf16_copies to hold " + std::to_string(L.count) + " entries (one per params), got " +
                        std::to_string(seq.size()));
  const py::sequence ps = params.cast<py::sequence>();
  for (index_t i = 0; i < L.count; ++i) {
    py::object o = seq[static_cast<size_t>(i)];
    if (o.is_none()) continue;
    const std::string name = "bf16_copies[" + std::to_string(i) + "]";
    py::array a = as_array(op, o, name.c_str());
    const py::dtype d = a.dtype();
    if (!(d.kind() == 'V' && d.char_() == 'E' && a.itemsize() == 2))
      type_error(op, name + " to be bfloat16, got " + dtype_str(a));
    if (L.dtype[i] != DType::F32) type_error(op, name + " only for a float32 param");
    if (static_cast<index_t>(a.size()) != L.numel[i])
      value_error(op, name + " to hold " + std::to_string(L.numel[i]) + " values (as params[" + std::to_string(i) +
                          "]), got " + std::to_string(a.size()));
    check_contiguous(op, a, name.c_str());
    check_writeable(op, a, name.c_str());
    if (may_overlap(a, ps[static_cast<size_t>(i)].cast<py::array>()))
      value_error(op, name + " not to share memory with params[" + std::to_string(i) + "]");
    out[static_cast<size_t>(i)] = static_cast<std::uint16_t*>(a.mutable_data());
  }
  return out;
}

void adam_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
                  py::object max_exp_avg_sqs, std::vector<index_t> steps, double lr, double beta1, double beta2,
                  double eps, double weight_decay, bool amsgrad, bool maximize, bool decoupled_weight_decay,
                  py::object bf16_copies) {
  const char* op = "adam";
  require(op, !amsgrad || !max_exp_avg_sqs.is_none(), "max_exp_avg_sqs when amsgrad");
  TensorLists L = check_lists(
      op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_avg_sqs", true}, {"max_exp_avg_sqs", true}},
      {params, grads, exp_avgs, exp_avg_sqs, amsgrad ? max_exp_avg_sqs : py::none()});
  steps_of(op, L, steps);
  const std::vector<std::uint16_t*> copies = bf16_copies_of(op, L, params, bf16_copies);
  AdamOptions o{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    std::vector<std::uint16_t*> cp;
    bool any = false;
    for (index_t i : P.idx) {
      cp.push_back(copies[static_cast<size_t>(i)]);
      any = any || cp.back() != nullptr;
    }
#if NNFAST_BIND_CUDA
    // autocast registers copies for NumPy weights only; the cuda kernels have no bf16-copy variant
    if (any) value_error(op, "bf16_copies only for cpu params");
    py::gil_scoped_release release;
#else
    py::gil_scoped_release release;
    if constexpr (std::is_same_v<decltype(P.list(0)), float* const*>) {
      if (any) {
        adam_step_bf16_copy(P.list(0), P.list(2), P.list(3), P.list(4), P.clist(1), cp.data(), st.data(),
                            P.numel.data(), P.count(), o);
        return;
      }
    }
#endif
    adam_step(P.list(0), P.list(2), P.list(3), P.list(4), P.clist(1), st.data(), P.numel.data(), P.count(), o);
  });
}

void adagrad_binding(py::object params, py::object grads, py::object state_sums, std::vector<index_t> steps,
                     double lr, double lr_decay, double weight_decay, double eps, bool maximize) {
  const char* op = "adagrad";
  TensorLists L =
      check_lists(op, {{"params", true}, {"grads", false}, {"state_sums", true}}, {params, grads, state_sums});
  steps_of(op, L, steps);
  AdagradOptions o{lr, lr_decay, weight_decay, eps, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    py::gil_scoped_release release;
    adagrad_step(P.list(0), P.list(2), P.clist(1), st.data(), P.numel.data(), P.count(), o);
  });
}

void rmsprop_binding(py::object params, py::object grads, py::object square_avgs, py::object grad_avgs,
                     py::object momentum_buffers, double lr, double alpha, double eps, double weight_decay,
                     double momentum, bool centered, bool maximize) {
  const char* op = "rmsprop";
  require(op, !centered || !grad_avgs.is_none(), "grad_avgs when centered");
  require(op, momentum <= 0 || !momentum_buffers.is_none(), "momentum_buffers when momentum > 0");
  TensorLists L = check_lists(op,
                              {{"params", true},
                               {"grads", false},
                               {"square_avgs", true},
                               {"grad_avgs", true},
                               {"momentum_buffers", true}},
                              {params, grads, square_avgs, centered ? grad_avgs : py::none(),
                               momentum > 0 ? momentum_buffers : py::none()});
  RMSpropOptions o{lr, alpha, eps, weight_decay, momentum, centered, maximize};
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    rmsprop_step(P.list(0), P.list(2), P.list(3), P.list(4), P.clist(1), P.numel.data(), P.count(), o);
  });
}

void adabound_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
                      py::object max_exp_avg_sqs, std::vector<index_t> steps, double lr, double base_lr,
                      double beta1, double beta2, double final_lr, double gamma, double eps, double weight_decay,
                      bool amsbound, bool maximize) {
  const char* op = "adabound";
  require(op, !amsbound || !max_exp_avg_sqs.is_none(), "max_exp_avg_sqs when amsbound");
  require(op, base_lr > 0, "base_lr > 0");
  TensorLists L = check_lists(
      op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_avg_sqs", true}, {"max_exp_avg_sqs", true}},
      {params, grads, exp_avgs, exp_avg_sqs, amsbound ? max_exp_avg_sqs : py::none()});
  steps_of(op, L, steps);
  AdaBoundOptions o{lr, base_lr, beta1, beta2, final_lr, gamma, eps, weight_decay, amsbound, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    py::gil_scoped_release release;
    adabound_step(P.list(0), P.list(2), P.list(3), P.list(4), P.clist(1), st.data(), P.numel.data(), P.count(), o);
  });
}

void lion_binding(py::object params, py::object grads, py::object exp_avgs, double lr, double beta1, double beta2,
                  double weight_decay, bool maximize) {
  const char* op = "lion";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"exp_avgs", true}}, {params, grads, exp_avgs});
  LionOptions o{lr, beta1, beta2, weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    lion_step(P.list(0), P.list(2), P.clist(1), P.numel.data(), P.count(), o);
  });
}

py::array_t<double> lamb_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
                                 std::vector<index_t> steps, double lr, double beta1, double beta2, double eps,
                                 double weight_decay, bool bias_correction, bool maximize) {
  const char* op = "lamb";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_avg_sqs", true}},
                              {params, grads, exp_avgs, exp_avg_sqs});
  steps_of(op, L, steps);
  LambOptions o{lr, beta1, beta2, eps, weight_decay, bias_correction, maximize};
  py::array_t<double> ratios(static_cast<py::ssize_t>(L.count));
  double* out = ratios.mutable_data();
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    std::vector<double> r(P.idx.size(), 1.0);
    {
      py::gil_scoped_release release;
      lamb_step(r.data(), P.list(0), P.list(2), P.list(3), P.clist(1), st.data(), P.numel.data(), P.count(), o);
    }
    for (size_t j = 0; j < r.size(); ++j) out[P.idx[j]] = r[j];
  });
  return ratios;
}

void adadelta_binding(py::object params, py::object grads, py::object square_avgs, py::object acc_deltas, double lr,
                      double rho, double eps, double weight_decay, bool maximize) {
  const char* op = "adadelta";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"square_avgs", true}, {"acc_deltas", true}},
                              {params, grads, square_avgs, acc_deltas});
  AdadeltaOptions o{lr, rho, eps, weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    adadelta_step(P.list(0), P.list(2), P.list(3), P.clist(1), P.numel.data(), P.count(), o);
  });
}

void adamax_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_infs,
                    std::vector<index_t> steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                    bool maximize) {
  const char* op = "adamax";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_infs", true}},
                              {params, grads, exp_avgs, exp_infs});
  steps_of(op, L, steps);
  AdamaxOptions o{lr, beta1, beta2, eps, weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    py::gil_scoped_release release;
    adamax_step(P.list(0), P.list(2), P.list(3), P.clist(1), st.data(), P.numel.data(), P.count(), o);
  });
}

// Per-tensor double states a kernel advances (NAdam's mu_product, ASGD's eta / mu): one
// value per param in, the advanced values returned in the same order.
std::vector<double> scalars_of(const char* op, const char* name, const TensorLists& L, std::vector<double> v) {
  if (static_cast<index_t>(v.size()) != L.count)
    value_error(op, std::string("one ") + name + " per param (" + std::to_string(L.count) + "), got " +
                        std::to_string(v.size()));
  return v;
}

template <typename T>
std::vector<double> pick_d(const std::vector<double>& v, const Part<T>& P) {
  std::vector<double> out;
  for (index_t i : P.idx) out.push_back(v[i]);
  return out;
}

template <typename T>
void put_back(std::vector<double>& v, const std::vector<double>& part, const Part<T>& P) {
  for (size_t j = 0; j < part.size(); ++j) v[P.idx[j]] = part[j];
}

std::vector<double> nadam_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
                                  std::vector<double> mu_products, std::vector<index_t> steps, double lr, double beta1,
                                  double beta2, double eps, double weight_decay, double momentum_decay,
                                  bool decoupled_weight_decay, bool maximize) {
  const char* op = "nadam";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_avg_sqs", true}},
                              {params, grads, exp_avgs, exp_avg_sqs});
  steps_of(op, L, steps);
  std::vector<double> mp = scalars_of(op, "mu_product", L, std::move(mu_products));
  NAdamOptions o{lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    std::vector<double> m = pick_d(mp, P);
    {
      py::gil_scoped_release release;
      nadam_step(P.list(0), P.list(2), P.list(3), P.clist(1), m.data(), st.data(), P.numel.data(), P.count(), o);
    }
    put_back(mp, m, P);
  });
  return mp;
}

void radam_binding(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
                   std::vector<index_t> steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                   bool decoupled_weight_decay, bool maximize) {
  const char* op = "radam";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"exp_avgs", true}, {"exp_avg_sqs", true}},
                              {params, grads, exp_avgs, exp_avg_sqs});
  steps_of(op, L, steps);
  RAdamOptions o{lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    py::gil_scoped_release release;
    radam_step(P.list(0), P.list(2), P.list(3), P.clist(1), st.data(), P.numel.data(), P.count(), o);
  });
}

py::tuple asgd_binding(py::object params, py::object grads, py::object axs, std::vector<double> etas,
                       std::vector<double> mus, std::vector<index_t> steps, double lr, double lambd, double alpha,
                       double t0, double weight_decay, bool maximize) {
  const char* op = "asgd";
  TensorLists L = check_lists(op, {{"params", true}, {"grads", false}, {"axs", true}}, {params, grads, axs});
  steps_of(op, L, steps);
  std::vector<double> eta = scalars_of(op, "eta", L, std::move(etas)), mu = scalars_of(op, "mu", L, std::move(mus));
  ASGDOptions o{lr, lambd, alpha, t0, weight_decay, maximize};
  for_each_dtype(L, [&](auto& P) {
    std::vector<index_t> st = pick(steps, P);
    std::vector<double> e = pick_d(eta, P), m = pick_d(mu, P);
    {
      py::gil_scoped_release release;
      asgd_step(P.list(0), P.list(2), P.clist(1), e.data(), m.data(), st.data(), P.numel.data(), P.count(), o);
    }
    put_back(eta, e, P);
    put_back(mu, m, P);
  });
  return py::make_tuple(eta, mu);
}

// ------------------------------------------------------------------ utilities
bool all_finite_binding(py::object tensors) {
  const char* op = "multi_tensor_all_finite";
  TensorLists L = check_lists(op, {{"tensors", false}}, {tensors});
  bool ok = true;
  for_each_dtype(L, [&](auto& P) {
    if (!ok) return;
    py::gil_scoped_release release;
    ok = multi_tensor_all_finite(P.clist(0), P.numel.data(), P.count());
  });
  return ok;
}

py::object norm_binding(py::object tensors, double norm_type, bool per_tensor) {
  const char* op = "multi_tensor_norm";
  if (!(norm_type >= 0.0 || std::isinf(norm_type))) value_error(op, "norm_type >= 0 or +-inf, got " + std::to_string(norm_type));
  TensorLists L = check_lists(op, {{"tensors", false}}, {tensors});
  py::array_t<double> norms(static_cast<py::ssize_t>(L.count));
  double* out = norms.mutable_data();
  for_each_dtype(L, [&](auto& P) {
    std::vector<double> n(P.idx.size(), 0.0);
    {
      py::gil_scoped_release release;
      multi_tensor_norm(n.data(), P.clist(0), P.numel.data(), P.count(), norm_type);
    }
    for (size_t j = 0; j < n.size(); ++j) out[P.idx[j]] = n[j];
  });
  const double total = combine_norms(out, L.count, norm_type);
  if (per_tensor) return py::make_tuple(total, norms);
  return py::float_(total);
}

void scale_binding(py::object tensors, double scale) {
  TensorLists L = check_lists("multi_tensor_scale", {{"tensors", true}}, {tensors});
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    multi_tensor_scale(P.list(0), P.numel.data(), P.count(), scale);
  });
}

void zero_binding(py::object tensors) {
  TensorLists L = check_lists("multi_tensor_zero", {{"tensors", true}}, {tensors});
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    multi_tensor_zero(P.list(0), P.numel.data(), P.count());
  });
}

void clamp_binding(py::object tensors, double lo, double hi) {
  const char* op = "multi_tensor_clamp";
  if (lo > hi) value_error(op, "min <= max");
  TensorLists L = check_lists(op, {{"tensors", true}}, {tensors});
  for_each_dtype(L, [&](auto& P) {
    py::gil_scoped_release release;
    multi_tensor_clamp(P.list(0), P.numel.data(), P.count(), lo, hi);
  });
}

}  // namespace

void init_optim(pybind11::module_& m) {
  using py::arg;
  m.def("sgd_step", &sgd_binding, arg("params"), arg("grads"), arg("momentum_buffers"), arg("init_buffer"),
        arg("lr"), arg("momentum"), arg("dampening"), arg("weight_decay"), arg("nesterov"), arg("maximize"),
        "Fused SGD step over lists of arrays (in place).");
  m.def("adam_step", &adam_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"),
        arg("max_exp_avg_sqs"), arg("steps"), arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"),
        arg("amsgrad"), arg("maximize"), arg("decoupled_weight_decay"), arg("bf16_copies") = py::none(),
        "Fused Adam/AdamW/AMSGrad step over lists of arrays (in place); bf16_copies: None or per param "
        "None or a bfloat16 array that receives the updated float32 param rounded to bf16.");
  m.def("adagrad_step", &adagrad_binding, arg("params"), arg("grads"), arg("state_sums"), arg("steps"), arg("lr"),
        arg("lr_decay"), arg("weight_decay"), arg("eps"), arg("maximize"));
  m.def("rmsprop_step", &rmsprop_binding, arg("params"), arg("grads"), arg("square_avgs"), arg("grad_avgs"),
        arg("momentum_buffers"), arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"),
        arg("centered"), arg("maximize"));
  m.def("adabound_step", &adabound_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"),
        arg("max_exp_avg_sqs"), arg("steps"), arg("lr"), arg("base_lr"), arg("beta1"), arg("beta2"),
        arg("final_lr"), arg("gamma"), arg("eps"), arg("weight_decay"), arg("amsbound"), arg("maximize"));
  m.def("lion_step", &lion_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("lr"), arg("beta1"),
        arg("beta2"), arg("weight_decay"), arg("maximize"));
  m.def("lamb_step", &lamb_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"), arg("steps"),
        arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("bias_correction"),
        arg("maximize"), "Fused LAMB step; returns the per-tensor trust ratios.");
  m.def("adadelta_step", &adadelta_binding, arg("params"), arg("grads"), arg("square_avgs"), arg("acc_deltas"),
        arg("lr"), arg("rho"), arg("eps"), arg("weight_decay"), arg("maximize"));
  m.def("adamax_step", &adamax_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_infs"), arg("steps"),
        arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("maximize"));
  m.def("nadam_step", &nadam_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"),
        arg("mu_products"), arg("steps"), arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"),
        arg("momentum_decay"), arg("decoupled_weight_decay"), arg("maximize"),
        "Fused NAdam step; returns the advanced mu_products.");
  m.def("radam_step", &radam_binding, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"), arg("steps"),
        arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("decoupled_weight_decay"),
        arg("maximize"));
  m.def("asgd_step", &asgd_binding, arg("params"), arg("grads"), arg("axs"), arg("etas"), arg("mus"), arg("steps"),
        arg("lr"), arg("lambd"), arg("alpha"), arg("t0"), arg("weight_decay"), arg("maximize"),
        "Fused ASGD step; returns the advanced (etas, mus).");
  m.def("multi_tensor_all_finite", &all_finite_binding, arg("tensors"));
  m.def("multi_tensor_norm", &norm_binding, arg("tensors"), arg("norm_type") = 2.0, arg("per_tensor") = false,
        "Norm of the concatenation of the arrays; with per_tensor, (total, per-tensor norms).");
  m.def("multi_tensor_scale", &scale_binding, arg("tensors"), arg("scale"));
  m.def("multi_tensor_zero", &zero_binding, arg("tensors"), "Fills every array with zeros (one parallel pass).");
  m.def("multi_tensor_clamp", &clamp_binding, arg("tensors"), arg("min"), arg("max"));
}

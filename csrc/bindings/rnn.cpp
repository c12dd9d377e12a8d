// Bindings of the recurrent sequence kernels (nnfast/rnn.h): one call runs a whole
// layer-direction's forward or backward. Checks every shape and dtype once (the op name
// in messages is the mode, "LSTM", "GRU", "RNN_TANH", "RNN_RELU"), then releases the GIL.
// batch_sizes is a host int64 array (the time loop runs on the host on every device).
#include <array>
#include <string>
#include <vector>

#include "bindings/common.h"
#if NNFAST_BIND_CUDA
#include "nnfast/cuda/rnn.h"
#else
#include "nnfast/rnn.h"
#endif

namespace {

using Shape = std::vector<index_t>;

RnnMode parse_mode(const std::string& mode) {
  if (mode == "RNN_TANH") return RnnMode::RnnTanh;
  if (mode == "RNN_RELU") return RnnMode::RnnRelu;
  if (mode == "LSTM") return RnnMode::Lstm;
  if (mode == "GRU") return RnnMode::Gru;
  throw py::value_error("[rnn] expected mode 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU', got '" + mode + "'");
}

// An optional C-contiguous array of ref's dtype: required when `want`, else must be None.
py::object opt(const char* op, const py::array& ref, const py::object& o, const char* name, const Shape& shape,
               bool out, bool want) {
  if (!want) {
    if (has(o)) value_error(op, std::string(name) + " to be None for this mode, got an array");
    return py::none();
  }
  if (!has(o)) value_error(op, std::string(name) + " to be an array, got None");
  return check_array(op, ref, o, name, shape, out);
}
py::object maybe(const char* op, const py::array& ref, const py::object& o, const char* name, const Shape& shape,
                 bool out) {
  return has(o) ? py::object(check_array(op, ref, o, name, shape, out)) : py::object(py::none());
}

// A (R, P) array whose rows may be strided (a half of a bidirectional layer's output):
// unit column stride, row stride >= P. Returns the row stride in elements.
index_t row_view(const char* op, const py::array& ref, const py::array& a, const char* name, index_t R, index_t P,
                 bool out) {
  same_dtype(op, ref, a, name);
  check_ndim(op, a, name, 2);
  if (a.shape(0) != R || a.shape(1) != P)
    value_error(op, std::string(name) + " of shape (" + std::to_string(R) + ", " + std::to_string(P) + "), got " +
                        shape_str(a));
  const index_t cs = elem_stride(op, a, name, 1), rs = elem_stride(op, a, name, 0);
  if ((P > 1 && cs != 1) || (R > 1 && rs < P))
    value_error(op, std::string(name) + " with unit column stride and row stride >= " + std::to_string(P));
  if (out) check_writeable(op, a, name);
  return R > 1 ? rs : P;
}

// The sizes of a layer-direction, read from input (R, I), w_ih (G*H, I), w_hh (G*H, P),
// the state h (N, P) and batch_sizes (T,), which must be non-increasing, >= 0, sum to R
// and start at most at N.
struct Sizes {
  RnnMode mode;
  const char* op;
  index_t R, I, G, H, P, N, T;
  std::vector<index_t> batch;
};

Sizes read_sizes(const std::string& mode_name, const py::array& x, const py::array& w_ih, const py::array& w_hh,
                 const py::object& w_hr, const py::array& h_state, const py::array& batch_sizes,
                 const char*& op_out) {
  Sizes s;
  s.mode = parse_mode(mode_name);
  const char* op = mode_name == "LSTM" ? "LSTM" : mode_name == "GRU" ? "GRU" : "RNN";
  op_out = op;
  s.op = op;
  check_input(op, x, "input", 2);
  s.R = x.shape(0);
  s.I = x.shape(1);
  s.G = rnn_gate_count(s.mode);
  check_array(op, x, w_ih, "weight_ih", {w_ih.ndim() == 2 ? static_cast<index_t>(w_ih.shape(0)) : -1, s.I}, false);
  if (w_ih.shape(0) % s.G != 0 || w_ih.shape(0) == 0)
    value_error(op, "weight_ih with a positive multiple of " + std::to_string(s.G) + " rows, got " + shape_str(w_ih));
  s.H = w_ih.shape(0) / s.G;
  if (w_hh.ndim() != 2) value_error(op, "weight_hh to be 2-D, got " + shape_str(w_hh));
  s.P = has(w_hr) ? as_array(op, w_hr, "weight_hr").shape(0) : s.H;
  check_array(op, x, w_hh, "weight_hh", {s.G * s.H, s.P}, false);
  if (has(w_hr)) {
    if (s.mode != RnnMode::Lstm) value_error(op, "weight_hr only for LSTM");
    check_array(op, x, w_hr, "weight_hr", {s.P, s.H}, false);
  }
  if (h_state.ndim() != 2) value_error(op, "h_n to be 2-D, got " + shape_str(h_state));
  s.N = h_state.shape(0);
  if (batch_sizes.dtype().kind() != 'i' || batch_sizes.itemsize() != 8 || batch_sizes.ndim() != 1)
    type_error(op, "batch_sizes to be a 1-D int64 array, got " + dtype_str(batch_sizes) + " " +
                       shape_str(batch_sizes));
  s.T = batch_sizes.shape(0);
  s.batch.resize(static_cast<size_t>(s.T));
  index_t sum = 0;
  const index_t stride = elem_stride(op, batch_sizes, "batch_sizes", 0);
  const auto* bp = static_cast<const std::int64_t*>(batch_sizes.data());
  for (index_t t = 0; t < s.T; ++t) {
    const index_t b = bp[t * stride];
    if (b < 0 || b > s.N || (t > 0 && b > s.batch[static_cast<size_t>(t - 1)]))
      value_error(op, "batch_sizes non-increasing in [0, " + std::to_string(s.N) + "], got " + std::to_string(b) +
                          " at step " + std::to_string(t));
    s.batch[static_cast<size_t>(t)] = b;
    sum += b;
  }
  if (sum != s.R)
    value_error(op, "batch_sizes summing to the input's " + std::to_string(s.R) + " rows, got " + std::to_string(sum));
  return s;
}

void rnn_forward_binding(py::array y, py::array h_n, py::object c_n, py::array gates, py::object c_all,
                         py::object h_raw, py::array h_prev, py::object c_prev, py::object hn, py::object w_hh_t,
                         py::array x,
                         py::array w_ih, py::array w_hh, py::object b_ih, py::object b_hh, py::object w_hr,
                         py::object h0, py::object c0, py::array batch_sizes, const std::string& mode, bool reverse) {
  const char* op = "rnn";
  Sizes s = read_sizes(mode, x, w_ih, w_hh, w_hr, h_n, batch_sizes, op);
  const DType dt = float_dtype(op, x, "input");
  const bool lstm = s.mode == RnnMode::Lstm, gru = s.mode == RnnMode::Gru, proj = has(w_hr);
  const index_t GH = s.G * s.H;
  const index_t rs_y = row_view(op, x, y, "output", s.R, s.P, true);
  check_array(op, x, h_n, "h_n", {s.N, s.P}, true);
  c_n = opt(op, x, c_n, "c_n", {s.N, s.H}, true, lstm);
  check_array(op, x, gates, "gates", {s.R, GH}, true);
  c_all = opt(op, x, c_all, "c_all", {s.R, s.H}, true, lstm);
  h_raw = opt(op, x, h_raw, "h_raw", {s.R, s.H}, true, proj);
  check_array(op, x, h_prev, "h_prev", {s.R, s.P}, true);
  c_prev = opt(op, x, c_prev, "c_prev", {s.R, s.H}, true, lstm);
  hn = opt(op, x, hn, "hn", {s.R, s.H}, true, gru);
  w_hh_t = maybe(op, x, w_hh_t, "weight_hh_t", {s.P, GH}, true);
  if (has(w_hh_t)) check_no_alias(op, w_hh_t.cast<py::array>(), "weight_hh_t", w_hh, "weight_hh");
  b_ih = maybe(op, x, b_ih, "bias_ih", {GH}, false);
  b_hh = maybe(op, x, b_hh, "bias_hh", {GH}, false);
  if (has(b_ih) != has(b_hh)) value_error(op, "bias_ih and bias_hh both given or both None");
  h0 = maybe(op, x, h0, "h0", {s.N, s.P}, false);
  c0 = lstm ? maybe(op, x, c0, "c0", {s.N, s.H}, false) : opt(op, x, c0, "c0", {}, false, false);
  for (const py::array& in : {x, w_ih, w_hh}) {
    check_no_alias(op, y, "output", in, "an input");
    check_no_alias(op, gates, "gates", in, "an input");
    check_no_alias(op, h_n, "h_n", in, "an input");
  }
  check_no_alias(op, y, "output", gates, "gates");
  check_no_alias(op, y, "output", h_n, "h_n");
  if (has(h0)) check_no_alias(op, h_n, "h_n", h0.cast<py::array>(), "h0");
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, &s, py_ = mut_ptr<T>(y), phn = mut_ptr<T>(h_n), pcn = opt_mut_ptr<T>(c_n), pg = mut_ptr<T>(gates),
            pca = opt_mut_ptr<T>(c_all), phr = opt_mut_ptr<T>(h_raw), php = mut_ptr<T>(h_prev),
            pcp = opt_mut_ptr<T>(c_prev), phn2 = opt_mut_ptr<T>(hn), pwt = opt_mut_ptr<T>(w_hh_t),
            px = ptr<T>(x), pwi = ptr<T>(w_ih),
            pwh = ptr<T>(w_hh), pbi = opt_ptr<T>(b_ih), pbh = opt_ptr<T>(b_hh), pwr = opt_ptr<T>(w_hr),
            ph0 = opt_ptr<T>(h0), pc0 = opt_ptr<T>(c0)]() mutable {
      rnn_forward<T>(py_, rs_y, phn, pcn, pg, pca, phr, php, pcp, phn2, pwt, px, pwi, pwh, pbi, pbh, pwr, ph0, pc0,
                     s.batch.data(), s.T, s.N, s.I, s.H, s.P, s.mode, reverse);
    };
  });
}

void rnn_backward_binding(py::object dx, py::array dh0, py::object dc0, py::object dw_ih, py::object dw_hh,
                          py::object db_ih, py::object db_hh, py::object dw_hr, py::array dgates,
                          py::object dgates_x, py::object dh_all, py::object dh_raw, py::object dy,
                          py::object dh_n, py::object dc_n, py::array x, py::array w_ih, py::array w_hh,
                          py::object w_hr, py::array gates, py::object c_all, py::object h_raw, py::array h_prev,
                          py::object c_prev, py::object hn, py::array batch_sizes, const std::string& mode,
                          bool reverse, bool accumulate_dx) {
  const char* op = "rnn";
  Sizes s = read_sizes(mode, x, w_ih, w_hh, w_hr, dh0, batch_sizes, op);
  const DType dt = float_dtype(op, x, "input");
  const bool lstm = s.mode == RnnMode::Lstm, gru = s.mode == RnnMode::Gru, proj = has(w_hr);
  const index_t GH = s.G * s.H;
  dx = maybe(op, x, dx, "grad_input", {s.R, s.I}, true);
  check_array(op, x, dh0, "grad_h0", {s.N, s.P}, true);
  dc0 = opt(op, x, dc0, "grad_c0", {s.N, s.H}, true, lstm);
  dw_ih = maybe(op, x, dw_ih, "grad_weight_ih", {GH, s.I}, true);
  dw_hh = maybe(op, x, dw_hh, "grad_weight_hh", {GH, s.P}, true);
  db_ih = maybe(op, x, db_ih, "grad_bias_ih", {GH}, true);
  db_hh = maybe(op, x, db_hh, "grad_bias_hh", {GH}, true);
  dw_hr = proj ? maybe(op, x, dw_hr, "grad_weight_hr", {s.P, s.H}, true)
               : opt(op, x, dw_hr, "grad_weight_hr", {}, true, false);
  check_array(op, x, dgates, "grad_gates", {s.R, GH}, true);
  dgates_x = opt(op, x, dgates_x, "grad_gates_x", {s.R, GH}, true, gru);
  dh_all = opt(op, x, dh_all, "grad_h_all", {s.R, s.P}, true, proj);
  dh_raw = opt(op, x, dh_raw, "grad_h_raw", {s.N, s.H}, true, proj);
  index_t rs_dy = s.P;
  if (has(dy)) rs_dy = row_view(op, x, as_array(op, dy, "grad"), "grad", s.R, s.P, false);
  dh_n = maybe(op, x, dh_n, "grad_h_n", {s.N, s.P}, false);
  dc_n = lstm ? maybe(op, x, dc_n, "grad_c_n", {s.N, s.H}, false) : opt(op, x, dc_n, "grad_c_n", {}, false, false);
  check_array(op, x, gates, "gates", {s.R, GH}, false);
  c_all = opt(op, x, c_all, "c_all", {s.R, s.H}, false, lstm);
  h_raw = opt(op, x, h_raw, "h_raw", {s.R, s.H}, false, proj);
  check_array(op, x, h_prev, "h_prev", {s.R, s.P}, false);
  c_prev = opt(op, x, c_prev, "c_prev", {s.R, s.H}, false, lstm);
  hn = opt(op, x, hn, "hn", {s.R, s.H}, false, gru);
  for (const py::array& in : {x, w_ih, w_hh, gates, h_prev}) {
    check_no_alias(op, dh0, "grad_h0", in, "an input");
    check_no_alias(op, dgates, "grad_gates", in, "an input");
    if (has(dx)) check_no_alias(op, dx.cast<py::array>(), "grad_input", in, "an input");
  }
  if (has(dh_n)) check_no_alias(op, dh0, "grad_h0", dh_n.cast<py::array>(), "grad_h_n");
  run_released(dt, [&](auto tag) {
    using T = decltype(tag);
    return [=, &s, pdx = opt_mut_ptr<T>(dx), pdh0 = mut_ptr<T>(dh0), pdc0 = opt_mut_ptr<T>(dc0),
            pdwi = opt_mut_ptr<T>(dw_ih), pdwh = opt_mut_ptr<T>(dw_hh), pdbi = opt_mut_ptr<T>(db_ih),
            pdbh = opt_mut_ptr<T>(db_hh), pdwr = opt_mut_ptr<T>(dw_hr), pdg = mut_ptr<T>(dgates),
            pdgx = opt_mut_ptr<T>(dgates_x), pdha = opt_mut_ptr<T>(dh_all), pdhr = opt_mut_ptr<T>(dh_raw),
            pdy = opt_ptr<T>(dy), pdhn = opt_ptr<T>(dh_n), pdcn = opt_ptr<T>(dc_n), px = ptr<T>(x),
            pwi = ptr<T>(w_ih), pwh = ptr<T>(w_hh), pwr = opt_ptr<T>(w_hr), pg = ptr<T>(gates),
            pca = opt_ptr<T>(c_all), phr = opt_ptr<T>(h_raw), php = ptr<T>(h_prev), pcp = opt_ptr<T>(c_prev),
            phn = opt_ptr<T>(hn)]() mutable {
      rnn_backward<T>(pdx, pdh0, pdc0, pdwi, pdwh, pdbi, pdbh, pdwr, pdg, pdgx, pdha, pdhr, pdy, rs_dy, pdhn, pdcn,
                      px, pwi, pwh, pwr, pg, pca, phr, php, pcp, phn, s.batch.data(), s.T, s.N, s.I, s.H, s.P,
                      s.mode, reverse, accumulate_dx);
    };
  });
}

#if !NNFAST_BIND_CUDA
// ---- lstm2_forward / lstm2_backward: two stacked LSTM layers in one call (nnfast/rnn.h) ----
// A layer is a 13-tuple (output, h_n, c_n, gates, c_all, h_prev, c_prev, weight_ih, weight_hh,
// bias_ih, bias_hh, h0, c0), checked against its input (R, I) as rnn_forward checks its arguments.
constexpr int kLayer2Items = 13;
struct Layer2 {
  py::object a[kLayer2Items];
  Sizes s;
};

Layer2 check_layer2(const py::array& x, const py::handle& item, const py::array& batch_sizes, bool out) {
  const char* op = "LSTM";
  if (!py::isinstance<py::tuple>(item) || py::len(item) != kLayer2Items)
    value_error(op, "a layer as a tuple of " + std::to_string(kLayer2Items) + " arrays / None");
  Layer2 L;
  const py::tuple t = py::reinterpret_borrow<py::tuple>(item);
  for (int i = 0; i < kLayer2Items; ++i) L.a[i] = t[static_cast<size_t>(i)];
  const char* unused = op;
  L.s = read_sizes("LSTM", x, as_array(op, L.a[7], "weight_ih"), as_array(op, L.a[8], "weight_hh"), py::none(),
                   as_array(op, L.a[1], "h_n"), batch_sizes, unused);
  const index_t R = L.s.R, N = L.s.N, H = L.s.H;
  static const char* const names[7] = {"output", "h_n", "c_n", "gates", "c_all", "h_prev", "c_prev"};
  const Shape shapes[7] = {{R, H}, {N, H}, {N, H}, {R, 4 * H}, {R, H}, {R, H}, {R, H}};
  for (int i = 0; i < 7; ++i) L.a[i] = check_array(op, x, L.a[i], names[i], shapes[i], out);
  L.a[9] = maybe(op, x, L.a[9], "bias_ih", {4 * H}, false);
  L.a[10] = maybe(op, x, L.a[10], "bias_hh", {4 * H}, false);
  if (has(L.a[9]) != has(L.a[10])) value_error(op, "bias_ih and bias_hh both given or both None");
  L.a[11] = maybe(op, x, L.a[11], "h0", {N, H}, false);
  L.a[12] = maybe(op, x, L.a[12], "c0", {N, H}, false);
  if (out)
    for (int i = 0; i < 7; ++i)
      for (const py::array& in : {x, L.a[7].cast<py::array>(), L.a[8].cast<py::array>()})
        check_no_alias(op, L.a[i].cast<py::array>(), names[i], in, "an input");
  return L;
}

// Both layers, layer 1's input being layer 0's output.
std::vector<Layer2> check_layers2(const py::array& x, const py::sequence& layers, const py::array& batch_sizes,
                                  bool out) {
  const char* op = "LSTM";
  check_input(op, x, "input", 2);
  if (py::len(layers) != 2) value_error(op, "2 layers, got " + std::to_string(py::len(layers)));
  std::vector<Layer2> Ls;
  Ls.push_back(check_layer2(x, layers[0], batch_sizes, out));
  Ls.push_back(check_layer2(Ls[0].a[0].cast<py::array>(), layers[1], batch_sizes, out));
  if (Ls[1].s.N != Ls[0].s.N)
    value_error(op, "both layers' h_n with " + std::to_string(Ls[0].s.N) + " rows, got " + std::to_string(Ls[1].s.N));
  return Ls;
}

template <typename T>
LstmLayer<T> layer_ptrs(const Layer2& L) {
  const py::object* a = L.a;
  return {opt_mut_ptr<T>(a[0]), opt_mut_ptr<T>(a[1]), opt_mut_ptr<T>(a[2]),  opt_mut_ptr<T>(a[3]),
          opt_mut_ptr<T>(a[4]), opt_mut_ptr<T>(a[5]), opt_mut_ptr<T>(a[6]),  opt_ptr<T>(a[7]),
          opt_ptr<T>(a[8]),     opt_ptr<T>(a[9]),     opt_ptr<T>(a[10]),     opt_ptr<T>(a[11]),
          opt_ptr<T>(a[12]),    L.s.I,                L.s.H};
}

void lstm2_forward_binding(const py::sequence& layers, py::array x, py::array batch_sizes) {
  const std::vector<Layer2> Ls = check_layers2(x, layers, batch_sizes, true);
  run_released(float_dtype("LSTM", x, "input"), [&](auto tag) {
    using T = decltype(tag);
    return [=, L = std::array<LstmLayer<T>, 2>{layer_ptrs<T>(Ls[0]), layer_ptrs<T>(Ls[1])}, &Ls, px = ptr<T>(x)]() {
      lstm2_forward<T>(L.data(), px, Ls[0].s.batch.data(), Ls[0].s.T, Ls[0].s.N);
    };
  });
}

// grads: per layer (grad_h0, grad_c0, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh,
// grad_gates, grad_h_n, grad_c_n); grad_out0 (R, H0) a workspace; grad (R, H1) and grad_input or None.
void lstm2_backward_binding(py::object dx, py::array dy0, py::object dy, const py::sequence& grads,
                            const py::sequence& layers, py::array x, py::array batch_sizes) {
  const char* op = "LSTM";
  const std::vector<Layer2> Ls = check_layers2(x, layers, batch_sizes, false);
  const index_t R = Ls[0].s.R, N = Ls[0].s.N;
  dx = maybe(op, x, dx, "grad_input", {R, Ls[0].s.I}, true);
  check_array(op, x, dy0, "grad_out0", {R, Ls[0].s.H}, true);
  dy = maybe(op, x, dy, "grad", {R, Ls[1].s.H}, false);
  if (py::len(grads) != 2) value_error(op, "2 layers' gradients, got " + std::to_string(py::len(grads)));
  std::vector<std::array<py::object, 9>> G(2);
  for (size_t l = 0; l < 2; ++l) {
    if (!py::isinstance<py::tuple>(grads[l]) || py::len(grads[l]) != 9)
      value_error(op, "a layer's gradients as a tuple of 9 arrays / None");
    const py::tuple t = grads[l].cast<py::tuple>();
    const index_t H = Ls[l].s.H, I = Ls[l].s.I;
    const bool bias = has(Ls[l].a[9]);
    G[l][0] = check_array(op, x, t[0], "grad_h0", {N, H}, true);
    G[l][1] = check_array(op, x, t[1], "grad_c0", {N, H}, true);
    G[l][2] = maybe(op, x, t[2], "grad_weight_ih", {4 * H, I}, true);
    G[l][3] = maybe(op, x, t[3], "grad_weight_hh", {4 * H, H}, true);
    G[l][4] = bias ? maybe(op, x, t[4], "grad_bias_ih", {4 * H}, true) : opt(op, x, t[4], "grad_bias_ih", {}, true, false);
    G[l][5] = bias ? maybe(op, x, t[5], "grad_bias_hh", {4 * H}, true) : opt(op, x, t[5], "grad_bias_hh", {}, true, false);
    G[l][6] = check_array(op, x, t[6], "grad_gates", {R, 4 * H}, true);
    G[l][7] = maybe(op, x, t[7], "grad_h_n", {N, H}, false);
    G[l][8] = maybe(op, x, t[8], "grad_c_n", {N, H}, false);
    for (int i : {0, 1, 6})
      for (int j = 0; j < 7; ++j) check_no_alias(op, G[l][i].cast<py::array>(), "a gradient", Ls[l].a[j].cast<py::array>(), "a saved array");
  }
  run_released(float_dtype(op, x, "input"), [&](auto tag) {
    using T = decltype(tag);
    std::array<LstmLayerGrad<T>, 2> D;
    for (size_t l = 0; l < 2; ++l) {
      const auto& g = G[l];
      D[l] = {opt_mut_ptr<T>(g[0]), opt_mut_ptr<T>(g[1]), opt_mut_ptr<T>(g[2]), opt_mut_ptr<T>(g[3]),
              opt_mut_ptr<T>(g[4]), opt_mut_ptr<T>(g[5]), opt_mut_ptr<T>(g[6]), opt_ptr<T>(g[7]), opt_ptr<T>(g[8])};
    }
    return [=, L = std::array<LstmLayer<T>, 2>{layer_ptrs<T>(Ls[0]), layer_ptrs<T>(Ls[1])}, &Ls,
            pdx = opt_mut_ptr<T>(dx), pdy0 = mut_ptr<T>(dy0), pdy = opt_ptr<T>(dy), px = ptr<T>(x)]() {
      lstm2_backward<T>(pdx, pdy0, pdy, L.data(), D.data(), px, Ls[0].s.batch.data(), Ls[0].s.T, Ls[0].s.N);
    };
  });
}
#endif

}  // namespace

void init_rnn(py::module_& m) {
  m.def("rnn_forward", &rnn_forward_binding, py::arg("out"), py::arg("h_n"), py::arg("c_n"), py::arg("gates"),
        py::arg("c_all"), py::arg("h_raw"), py::arg("h_prev"), py::arg("c_prev"), py::arg("hn"),
        py::arg("weight_hh_t"), py::arg("input"), py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"), py::arg("weight_hr"),
        py::arg("h0"), py::arg("c0"), py::arg("batch_sizes"), py::arg("mode"), py::arg("reverse"));
  m.def("rnn_backward", &rnn_backward_binding, py::arg("grad_input"), py::arg("grad_h0"), py::arg("grad_c0"),
        py::arg("grad_weight_ih"), py::arg("grad_weight_hh"), py::arg("grad_bias_ih"), py::arg("grad_bias_hh"),
        py::arg("grad_weight_hr"), py::arg("grad_gates"), py::arg("grad_gates_x"), py::arg("grad_h_all"),
        py::arg("grad_h_raw"), py::arg("grad"), py::arg("grad_h_n"), py::arg("grad_c_n"), py::arg("input"),
        py::arg("weight_ih"), py::arg("weight_hh"), py::arg("weight_hr"), py::arg("gates"), py::arg("c_all"),
        py::arg("h_raw"), py::arg("h_prev"), py::arg("c_prev"), py::arg("hn"), py::arg("batch_sizes"),
        py::arg("mode"), py::arg("reverse"), py::arg("accumulate_grad_input") = false);
#if !NNFAST_BIND_CUDA
  m.def("lstm2_forward", &lstm2_forward_binding, py::arg("layers"), py::arg("input"), py::arg("batch_sizes"));
  m.def("lstm2_backward", &lstm2_backward_binding, py::arg("grad_input"), py::arg("grad_out0"), py::arg("grad"),
        py::arg("grads"), py::arg("layers"), py::arg("input"), py::arg("batch_sizes"));
#endif
}

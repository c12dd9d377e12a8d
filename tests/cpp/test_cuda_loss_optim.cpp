// CUDA loss and optimizer kernels (csrc/cuda/loss.cu, optim.cu) run through
// nnfast's SIMT emulator and compared with the CPU kernels (nnfast::cpu, the
// reference) on random inputs, float and double. Outputs start as NaN, so a
// launcher that leaves an overwritten gradient partly unwritten fails.
// Reduced losses are also checked to be bitwise repeatable.
//
//   test_cuda_loss_optim            every test (NNFAST_EMU_SEED picks the thread order)
#include "../../csrc/cuda/loss.cu"
#include "../../csrc/cuda/optim.cu"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <string>
#include <vector>

#include "nnfast/loss.h"
#include "nnfast/optim.h"

namespace {

using nnfast::index_t;
using nnfast::PointLoss;
using nnfast::Reduction;
using nnfast::TargetView;
using nnfast::View2;
using nnfast::View3;

int g_failures = 0;
int g_checks = 0;

// ------------------------------------------------------------------ device buffers
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : n(count) {
    if (n) NNFAST_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { upload(h); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  Dev(Dev&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  ~Dev() {
    if (p) cudaFree(p);
  }
  void upload(const std::vector<T>& h) {
    if (n) NNFAST_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void fill_nan() {
    if (n) NNFAST_CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(T)));
  }
  std::vector<T> host() const {
    std::vector<T> h(n);
    if (n) NNFAST_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

template <typename T>
constexpr double tol() {
  return sizeof(T) == 4 ? 2e-5 : 1e-11;
}

template <typename T>
bool close(T a, T b, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(static_cast<double>(a) - static_cast<double>(b)) <=
         atol + rtol * std::fabs(static_cast<double>(b));
}

template <typename T>
void check(const std::string& what, const std::vector<T>& got, const std::vector<T>& want, double rtol,
           double atol) {
  ++g_checks;
  if (got.size() != want.size()) {
    std::printf("FAIL %s: size %zu vs %zu\n", what.c_str(), got.size(), want.size());
    ++g_failures;
    return;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!close(got[i], want[i], rtol, atol)) {
      std::printf("FAIL %s: [%zu] cuda %.9g cpu %.9g (of %zu)\n", what.c_str(), i, static_cast<double>(got[i]),
                  static_cast<double>(want[i]), got.size());
      ++g_failures;
      return;
    }
  }
}

void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    std::printf("FAIL %s\n", what.c_str());
    ++g_failures;
  }
}

template <typename T>
const char* tname() {
  return sizeof(T) == 4 ? "f32" : "f64";
}

std::mt19937_64 g_rng(12345);

template <typename T>
std::vector<T> randn(size_t n, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(g_rng));
  return v;
}
template <typename T>
std::vector<T> randu(size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(g_rng));
  return v;
}

const char* red_name(Reduction r) { return r == Reduction::None ? "none" : (r == Reduction::Mean ? "mean" : "sum"); }

// ================================================================== class-dim losses
// x is stored with a layout: 0 = contiguous (N, C, S); 1 = class stride 2 (padded).
template <typename T>
struct ClassInput {
  std::vector<T> buf;
  index_t sn, sc, ss;
  View3<T> view(const T* p) const { return View3<T>{p, sn, sc, ss}; }
};

template <typename T>
ClassInput<T> make_input(index_t N, index_t C, index_t S, int layout, double scale) {
  ClassInput<T> in;
  if (layout == 0) {
    in.buf = randn<T>(static_cast<size_t>(N * C * S), scale);
    in.sn = C * S, in.sc = S, in.ss = 1;
  } else {  // (N, S, 2C) storage, class stride 2
    in.buf = randn<T>(static_cast<size_t>(N * S * 2 * C), scale);
    in.sn = S * 2 * C, in.sc = 2, in.ss = 2 * C;
  }
  return in;
}

std::vector<std::int64_t> make_targets(index_t R, index_t C, index_t ignore_index, double ignore_frac) {
  std::uniform_int_distribution<std::int64_t> d(0, C - 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::int64_t> t(static_cast<size_t>(R));
  for (auto& v : t) v = u(g_rng) < ignore_frac ? ignore_index : d(g_rng);
  return t;
}

template <typename T>
void test_cross_entropy(index_t N, index_t C, index_t S, int layout, bool weighted, double eps, Reduction red,
                        bool want_dx, index_t ignore_index) {
  const index_t R = N * S;
  const std::string name = std::string("cross_entropy ") + tname<T>() + " N=" + std::to_string(N) +
                           " C=" + std::to_string(C) + " S=" + std::to_string(S) + " layout=" +
                           std::to_string(layout) + (weighted ? " w" : "") + " eps=" + std::to_string(eps) + " " +
                           red_name(red) + (want_dx ? " dx" : "") + " ign=" + std::to_string(ignore_index);
  ClassInput<T> in = make_input<T>(N, C, S, layout, 3.0);
  std::vector<std::int64_t> tg = make_targets(R, C, ignore_index, ignore_index == 1000 ? 1.0 : 0.2);
  std::vector<T> w = randu<T>(static_cast<size_t>(C), 0.2, 2.0);
  const index_t nl = red == Reduction::None ? R : 1;
  std::vector<T> loss_ref(static_cast<size_t>(nl)), dx_ref(static_cast<size_t>(N * C * S));
  TargetView tv_h{tg.data(), S, 1};
  nnfast::cpu::cross_entropy_forward<T>(loss_ref.data(), want_dx ? dx_ref.data() : nullptr, in.view(in.buf.data()),
                                        tv_h, weighted ? w.data() : nullptr, N, C, S, ignore_index, eps, red);
  Dev<T> dxb(in.buf), dw(w), dloss(static_cast<size_t>(nl)), ddx(static_cast<size_t>(N * C * S));
  Dev<std::int64_t> dt(tg);
  dloss.fill_nan();
  ddx.fill_nan();
  TargetView tv_d{dt.p, S, 1};
  nnfast::cuda::cross_entropy_forward<T>(dloss.p, want_dx ? ddx.p : nullptr, in.view(dxb.p), tv_d,
                                         weighted ? dw.p : nullptr, N, C, S, ignore_index, eps, red);
  const double rt = sizeof(T) == 4 ? 1e-4 : 1e-10;
  check(name + " loss", dloss.host(), loss_ref, rt, rt);
  if (want_dx) check(name + " dx", ddx.host(), dx_ref, rt, sizeof(T) == 4 ? 1e-6 : 1e-13);
  if (red != Reduction::None) {  // bitwise repeatable
    std::vector<T> first = dloss.host();
    nnfast::cuda::cross_entropy_forward<T>(dloss.p, nullptr, in.view(dxb.p), tv_d, weighted ? dw.p : nullptr, N, C, S,
                                           ignore_index, eps, red);
    expect(std::memcmp(first.data(), dloss.host().data(), sizeof(T)) == 0, name + " repeatable");
  }
}

template <typename T>
void test_cross_entropy_prob(index_t N, index_t C, index_t S, int layout, bool weighted, double eps, Reduction red) {
  const index_t R = N * S, n = N * C * S;
  const std::string name = std::string("cross_entropy_prob ") + tname<T>() + " N=" + std::to_string(N) +
                           " C=" + std::to_string(C) + " S=" + std::to_string(S) + " layout=" +
                           std::to_string(layout) + (weighted ? " w" : "") + " eps=" + std::to_string(eps) + " " +
                           red_name(red);
  ClassInput<T> in = make_input<T>(N, C, S, layout, 2.0);
  ClassInput<T> tp = make_input<T>(N, C, S, layout, 1.0);
  for (auto& v : tp.buf) v = std::fabs(v);
  std::vector<T> w = randu<T>(static_cast<size_t>(C), 0.2, 2.0);
  const index_t nl = red == Reduction::None ? R : 1;
  std::vector<T> loss_ref(static_cast<size_t>(nl)), dx_ref(static_cast<size_t>(n)), dt_ref(static_cast<size_t>(n));
  nnfast::cpu::cross_entropy_prob_forward<T>(loss_ref.data(), dx_ref.data(), dt_ref.data(), in.view(in.buf.data()),
                                             tp.view(tp.buf.data()), weighted ? w.data() : nullptr, N, C, S, eps, red);
  Dev<T> dxin(in.buf), dtp(tp.buf), dw(w), dloss(static_cast<size_t>(nl)), ddx(static_cast<size_t>(n)),
      ddt(static_cast<size_t>(n));
  dloss.fill_nan();
  ddx.fill_nan();
  ddt.fill_nan();
  nnfast::cuda::cross_entropy_prob_forward<T>(dloss.p, ddx.p, ddt.p, in.view(dxin.p), tp.view(dtp.p),
                                              weighted ? dw.p : nullptr, N, C, S, eps, red);
  const double rt = sizeof(T) == 4 ? 1e-4 : 1e-10;
  check(name + " loss", dloss.host(), loss_ref, rt, rt);
  check(name + " dx", ddx.host(), dx_ref, rt, sizeof(T) == 4 ? 1e-6 : 1e-13);
  check(name + " dtarget", ddt.host(), dt_ref, rt, sizeof(T) == 4 ? 1e-6 : 1e-13);
  // loss only: the same loss
  Dev<T> dloss2(static_cast<size_t>(nl));
  nnfast::cuda::cross_entropy_prob_forward<T>(dloss2.p, nullptr, nullptr, in.view(dxin.p), tp.view(dtp.p),
                                              weighted ? dw.p : nullptr, N, C, S, eps, red);
  check(name + " loss-only", dloss2.host(), dloss.host(), 0.0, 0.0);
}

template <typename T>
void test_scale_grad(index_t N, index_t C, index_t S, bool rows) {
  const std::string name = std::string("loss_scale_grad ") + tname<T>() + " " + std::to_string(N) + "x" +
                           std::to_string(C) + "x" + std::to_string(S) + (rows ? " rows" : " scalar");
  std::vector<T> saved = randn<T>(static_cast<size_t>(N * C * S)), g = randn<T>(static_cast<size_t>(N * S));
  std::vector<T> ref(saved.size());
  nnfast::cpu::loss_scale_grad<T>(ref.data(), saved.data(), rows ? g.data() : nullptr, T(0.75), N, C, S);
  Dev<T> ds(saved), dg(g), ddx(saved.size());
  ddx.fill_nan();
  nnfast::cuda::loss_scale_grad<T>(ddx.p, ds.p, rows ? dg.p : nullptr, T(0.75), N, C, S);
  check(name, ddx.host(), ref, 0.0, 0.0);
}

template <typename T>
void test_nll(index_t N, index_t C, index_t S, int layout, bool weighted, Reduction red, bool rows_grad,
              index_t ignore_index) {
  const index_t R = N * S, n = N * C * S;
  const std::string name = std::string("nll ") + tname<T>() + " N=" + std::to_string(N) + " C=" + std::to_string(C) +
                           " S=" + std::to_string(S) + " layout=" + std::to_string(layout) + (weighted ? " w" : "") +
                           " " + red_name(red) + " ign=" + std::to_string(ignore_index);
  ClassInput<T> in = make_input<T>(N, C, S, layout, 2.0);
  std::vector<std::int64_t> tg = make_targets(R, C, ignore_index, 0.2);
  std::vector<T> w = randu<T>(static_cast<size_t>(C), 0.2, 2.0), g = randn<T>(static_cast<size_t>(R));
  const index_t nl = red == Reduction::None ? R : 1;
  std::vector<T> loss_ref(static_cast<size_t>(nl)), dx_ref(static_cast<size_t>(n));
  TargetView tv_h{tg.data(), S, 1};
  const T* wp = weighted ? w.data() : nullptr;
  nnfast::cpu::nll_loss_forward<T>(loss_ref.data(), in.view(in.buf.data()), tv_h, wp, N, C, S, ignore_index, red);
  nnfast::cpu::nll_loss_backward<T>(dx_ref.data(), rows_grad ? g.data() : nullptr, T(1.5), tv_h, wp, N, C, S,
                                    ignore_index, red);
  Dev<T> dxin(in.buf), dw(w), dg(g), dloss(static_cast<size_t>(nl)), ddx(static_cast<size_t>(n));
  Dev<std::int64_t> dt(tg);
  dloss.fill_nan();
  ddx.fill_nan();
  TargetView tv_d{dt.p, S, 1};
  const T* dwp = weighted ? dw.p : nullptr;
  nnfast::cuda::nll_loss_forward<T>(dloss.p, in.view(dxin.p), tv_d, dwp, N, C, S, ignore_index, red);
  nnfast::cuda::nll_loss_backward<T>(ddx.p, rows_grad ? dg.p : nullptr, T(1.5), tv_d, dwp, N, C, S, ignore_index,
                                     red);
  const double rt = sizeof(T) == 4 ? 1e-5 : 1e-12;
  check(name + " loss", dloss.host(), loss_ref, rt, rt);
  check(name + " dx", ddx.host(), dx_ref, rt, 0.0);
}

void test_find_bad_target() {
  const index_t N = 33, S = 3, C = 7;
  std::vector<std::int64_t> tg = make_targets(N * S, C, -100, 0.2);
  Dev<std::int64_t> dt(tg);
  TargetView tv{dt.p, S, 1};
  expect(nnfast::cuda::find_bad_target(tv, N, S, C, -100) == -1, "find_bad_target: all valid");
  for (index_t bad : {index_t(0), index_t(5), index_t(98)}) {
    std::vector<std::int64_t> t2 = tg;
    t2[static_cast<size_t>(bad)] = bad % 2 ? C : -1;
    if (bad + 40 < N * S) t2[static_cast<size_t>(bad + 40)] = 1000;  // a later bad one does not win
    Dev<std::int64_t> d2(t2);
    TargetView tv2{d2.p, S, 1};
    const index_t got = nnfast::cuda::find_bad_target(tv2, N, S, C, -100);
    const index_t want = nnfast::cpu::find_bad_target(TargetView{t2.data(), S, 1}, N, S, C, -100);
    expect(got == want && got == bad, "find_bad_target: first bad at " + std::to_string(bad) + ", got " +
                                          std::to_string(got));
  }
  // a strided (N, S) view: the transpose of an (S, N) buffer
  std::vector<std::int64_t> t3(static_cast<size_t>(N * S), 2);
  t3[static_cast<size_t>(1 * N + 4)] = 9;  // (n=4, s=1) -> position 4*S + 1 = 13
  Dev<std::int64_t> d3(t3);
  const index_t got = nnfast::cuda::find_bad_target(TargetView{d3.p, 1, N}, N, S, C, -100);
  expect(got == 13, "find_bad_target: strided view, got " + std::to_string(got));
  expect(nnfast::cuda::find_bad_target(TargetView{d3.p, 1, N}, 0, S, C, -100) == -1, "find_bad_target: empty");
}

// ================================================================== pointwise losses
template <typename T>
void point_inputs(PointLoss kind, size_t n, std::vector<T>& x, std::vector<T>& y) {
  switch (kind) {
    case PointLoss::BCE:
      x = randu<T>(n, 0.001, 0.999);
      y = randu<T>(n, 0.0, 1.0);
      x[0] = T(0);  // log clamp at -100
      if (n > 1) x[1] = T(1);
      break;
    case PointLoss::BCEWithLogits:
      x = randn<T>(n, 4.0);
      y = randu<T>(n, 0.0, 1.0);
      break;
    case PointLoss::KLDiv:
      x = randn<T>(n);
      y = randu<T>(n, 0.0, 1.0);
      for (size_t i = 0; i < n; i += 3) y[i] = T(0);
      break;
    case PointLoss::KLDivLogTarget:
      x = randn<T>(n);
      y = randn<T>(n);
      break;
    default:
      x = randn<T>(n, 2.0);
      y = randn<T>(n, 2.0);
  }
}

template <typename T>
void test_pointwise(PointLoss kind, double param, index_t R, index_t K, bool transposed, bool weighted,
                    bool pos_weighted) {
  const index_t n = R * K;
  const std::string base = std::string("pointwise ") + tname<T>() + " kind=" + std::to_string(static_cast<int>(kind)) +
                           " param=" + std::to_string(param) + " " + std::to_string(R) + "x" + std::to_string(K) +
                           (transposed ? " T" : "") + (weighted ? " w" : "") + (pos_weighted ? " pw" : "");
  std::vector<T> x, y;
  point_inputs<T>(kind, static_cast<size_t>(n), x, y);
  // transposed: element (r, k) at k*R + r
  const index_t rs = transposed ? 1 : K, cs = transposed ? R : 1;
  std::vector<T> w = randu<T>(static_cast<size_t>(K), 0.1, 2.0), pw = randu<T>(static_cast<size_t>(R), 0.5, 3.0);
  std::vector<T> g = randn<T>(static_cast<size_t>(n));
  Dev<T> dx_in(x), dy_in(y), dwv(w), dpw(pw), dg(g);
  // w broadcast over rows (row stride 0), pos_weight broadcast over columns (column stride 0)
  auto views = [&](const T* px, const T* py, const T* pwp, const T* ppw) {
    return std::make_tuple(View2<T>{px, rs, cs}, View2<T>{py, rs, cs},
                           weighted ? View2<T>{pwp, 0, 1} : View2<T>{}, pos_weighted ? View2<T>{ppw, 1, 0} : View2<T>{});
  };
  auto [hx, hy, hw, hp] = views(x.data(), y.data(), w.data(), pw.data());
  auto [vx, vy, vw, vp] = views(dx_in.p, dy_in.p, dwv.p, dpw.p);
  const double rt = sizeof(T) == 4 ? 2e-5 : 1e-12;
  for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    const double scale = red == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
    const index_t no = red == Reduction::None ? n : 1;
    std::vector<T> ref(static_cast<size_t>(no));
    nnfast::cpu::pointwise_loss_forward<T>(ref.data(), hx, hy, hw, hp, R, K, kind, param, red, scale);
    Dev<T> out(static_cast<size_t>(no));
    out.fill_nan();
    nnfast::cuda::pointwise_loss_forward<T>(out.p, vx, vy, vw, vp, R, K, kind, param, red, scale);
    check(base + " fwd " + red_name(red), out.host(), ref, rt, sizeof(T) == 4 ? 1e-5 : 1e-12);
  }
  for (int mode = 0; mode < 3; ++mode) {  // 0: dx+dy, g_elems; 1: dx only, scalar g; 2: dy only
    std::vector<T> rdx(static_cast<size_t>(n)), rdy(static_cast<size_t>(n));
    const bool want_x = mode != 2, want_y = mode != 1;
    nnfast::cpu::pointwise_loss_backward<T>(want_x ? rdx.data() : nullptr, want_y ? rdy.data() : nullptr,
                                            mode == 0 ? g.data() : nullptr, T(0.5), hx, hy, hw, hp, R, K, kind,
                                            param);
    Dev<T> ddx(static_cast<size_t>(n)), ddy(static_cast<size_t>(n));
    ddx.fill_nan();
    ddy.fill_nan();
    nnfast::cuda::pointwise_loss_backward<T>(want_x ? ddx.p : nullptr, want_y ? ddy.p : nullptr,
                                             mode == 0 ? dg.p : nullptr, T(0.5), vx, vy, vw, vp, R, K, kind, param);
    if (want_x) check(base + " dx mode" + std::to_string(mode), ddx.host(), rdx, rt, sizeof(T) == 4 ? 1e-5 : 1e-12);
    if (want_y) check(base + " dy mode" + std::to_string(mode), ddy.host(), rdy, rt, sizeof(T) == 4 ? 1e-5 : 1e-12);
  }
}

template <typename T>
void test_rmse(index_t R, index_t K) {
  std::vector<T> x = randn<T>(static_cast<size_t>(R * K)), y = randn<T>(static_cast<size_t>(R * K));
  std::vector<T> ref(1);
  nnfast::cpu::rmse_loss_forward<T>(ref.data(), View2<T>{x.data(), K, 1}, View2<T>{y.data(), K, 1}, R, K);
  Dev<T> dx(x), dy(y), out(1);
  out.fill_nan();
  nnfast::cuda::rmse_loss_forward<T>(out.p, View2<T>{dx.p, K, 1}, View2<T>{dy.p, K, 1}, R, K);
  check(std::string("rmse ") + tname<T>() + " " + std::to_string(R) + "x" + std::to_string(K), out.host(), ref,
        sizeof(T) == 4 ? 2e-6 : 1e-13, 0.0);
}

// ================================================================== optimizers
// A tensor list on host (reference) and device; roles hold one vector per tensor.
template <typename T>
struct Lists {
  std::vector<index_t> numel;
  std::vector<std::vector<std::vector<T>>> host;  // [role][tensor]
  std::vector<std::vector<Dev<T>>> dev;           // [role][tensor]
  Lists(const std::vector<index_t>& sizes, int roles) : numel(sizes), host(roles), dev(roles) {
    for (int k = 0; k < roles; ++k)
      for (index_t n : sizes) {
        host[k].push_back(randn<T>(static_cast<size_t>(n)));
        dev[k].emplace_back(host[k].back());
      }
  }
  void set_role(int k, double lo, double hi) {  // e.g. non-negative second moments
    for (size_t i = 0; i < numel.size(); ++i) {
      host[k][i] = randu<T>(static_cast<size_t>(numel[i]), lo, hi);
      dev[k][i].upload(host[k][i]);
    }
  }
  std::vector<T*> hp(int k) {
    std::vector<T*> v;
    for (auto& t : host[k]) v.push_back(t.data());
    return v;
  }
  std::vector<T*> dp(int k) {
    std::vector<T*> v;
    for (auto& t : dev[k]) v.push_back(t.p);
    return v;
  }
  index_t count() const { return static_cast<index_t>(numel.size()); }
  void compare(const std::string& what, double rtol, double atol) {
    for (size_t k = 0; k < host.size(); ++k)
      for (size_t i = 0; i < numel.size(); ++i)
        check(what + " role" + std::to_string(k) + " tensor" + std::to_string(i), dev[k][i].host(), host[k][i], rtol,
              atol);
  }
  void new_grads(int k) {
    for (size_t i = 0; i < numel.size(); ++i) {
      host[k][i] = randn<T>(static_cast<size_t>(numel[i]));
      dev[k][i].upload(host[k][i]);
    }
  }
};

const std::vector<index_t> kSizes = {1, 7, 1023, 0, 4099, 33};

std::vector<index_t> many_sizes() {  // more tensors than one launch holds
  std::vector<index_t> s;
  for (int i = 0; i < 37; ++i) s.push_back(1 + (i * 7) % 13);
  return s;
}

template <typename T>
double otol() {
  return sizeof(T) == 4 ? 1e-4 : 1e-10;
}

template <typename T, typename Step>
void run_steps(const std::string& name, Lists<T>& L, int grad_role, int steps, Step&& step) {
  for (int s = 1; s <= steps; ++s) {
    L.new_grads(grad_role);
    step(s);
    L.compare(name + " step" + std::to_string(s), otol<T>(), otol<T>() * 0.1);
  }
}

template <typename T>
void test_sgd(const std::vector<index_t>& sizes) {
  for (double mom : {0.0, 0.9})
    for (double damp : {0.0, 0.3})
      for (bool nest : {false, true})
        for (double wd : {0.0, 0.01})
          for (bool maxi : {false, true}) {
            if (nest && (mom == 0.0 || damp != 0.0)) continue;
            nnfast::SGDOptions o{0.05, mom, damp, wd, nest, maxi};
            Lists<T> L(sizes, 3);  // param, buf, grad
            const std::string name = std::string("sgd ") + tname<T>() + " mom=" + std::to_string(mom) +
                                     " damp=" + std::to_string(damp) + (nest ? " nesterov" : "") +
                                     " wd=" + std::to_string(wd) + (maxi ? " max" : "") + " n=" +
                                     std::to_string(sizes.size());
            run_steps(name, L, 2, 3, [&](int s) {
              std::vector<std::uint8_t> init(sizes.size(), s == 1 ? 1 : 0);
              auto hp0 = L.hp(0), hp1 = L.hp(1), hp2 = L.hp(2);
              auto dp0 = L.dp(0), dp1 = L.dp(1), dp2 = L.dp(2);
              std::vector<const T*> hg(hp2.begin(), hp2.end()), dg(dp2.begin(), dp2.end());
              nnfast::cpu::sgd_step<T>(hp0.data(), mom != 0 ? hp1.data() : nullptr, hg.data(),
                                       mom != 0 ? init.data() : nullptr, L.numel.data(), L.count(), o);
              nnfast::cuda::sgd_step<T>(dp0.data(), mom != 0 ? dp1.data() : nullptr, dg.data(),
                                        mom != 0 ? init.data() : nullptr, L.numel.data(), L.count(), o);
            });
          }
}

template <typename T>
void test_adam(const std::vector<index_t>& sizes) {
  for (bool ams : {false, true})
    for (bool decoupled : {false, true})
      for (double wd : {0.0, 0.05})
        for (bool maxi : {false, true}) {
          if (decoupled && wd == 0.0) continue;
          nnfast::AdamOptions o{0.01, 0.9, 0.99, 1e-8, wd, ams, maxi, decoupled};
          Lists<T> L(sizes, 5);  // param, m, v, vmax, grad
          L.set_role(1, 0.0, 0.0);
          L.set_role(2, 0.0, 0.0);
          L.set_role(3, 0.0, 0.0);
          const std::string name = std::string("adam ") + tname<T>() + (ams ? " amsgrad" : "") +
                                   (decoupled ? " adamw" : "") + " wd=" + std::to_string(wd) + (maxi ? " max" : "") +
                                   " n=" + std::to_string(sizes.size());
          run_steps(name, L, 4, 3, [&](int s) {
            std::vector<index_t> st(sizes.size());
            for (size_t i = 0; i < st.size(); ++i) st[i] = s + static_cast<index_t>(i % 3);  // per-tensor steps
            auto h = [&](int k) { return L.hp(k); };
            auto d = [&](int k) { return L.dp(k); };
            auto h0 = h(0), h1 = h(1), h2 = h(2), h3 = h(3), h4 = h(4);
            auto d0 = d(0), d1 = d(1), d2 = d(2), d3 = d(3), d4 = d(4);
            std::vector<const T*> hg(h4.begin(), h4.end()), dg(d4.begin(), d4.end());
            nnfast::cpu::adam_step<T>(h0.data(), h1.data(), h2.data(), ams ? h3.data() : nullptr, hg.data(), st.data(),
                                      L.numel.data(), L.count(), o);
            nnfast::cuda::adam_step<T>(d0.data(), d1.data(), d2.data(), ams ? d3.data() : nullptr, dg.data(),
                                       st.data(), L.numel.data(), L.count(), o);
          });
        }
}

template <typename T>
void test_adagrad(const std::vector<index_t>& sizes) {
  for (double lr_decay : {0.0, 0.1})
    for (double wd : {0.0, 0.05})
      for (bool maxi : {false, true}) {
        nnfast::AdagradOptions o{0.05, lr_decay, wd, 1e-10, maxi};
        Lists<T> L(sizes, 3);
        L.set_role(1, 0.0, 0.5);
        const std::string name = std::string("adagrad ") + tname<T>() + " lr_decay=" + std::to_string(lr_decay) +
                                 " wd=" + std::to_string(wd) + (maxi ? " max" : "");
        run_steps(name, L, 2, 3, [&](int s) {
          std::vector<index_t> st(sizes.size(), s);
          auto h0 = L.hp(0), h1 = L.hp(1), h2 = L.hp(2);
          auto d0 = L.dp(0), d1 = L.dp(1), d2 = L.dp(2);
          std::vector<const T*> hg(h2.begin(), h2.end()), dg(d2.begin(), d2.end());
          nnfast::cpu::adagrad_step<T>(h0.data(), h1.data(), hg.data(), st.data(), L.numel.data(), L.count(), o);
          nnfast::cuda::adagrad_step<T>(d0.data(), d1.data(), dg.data(), st.data(), L.numel.data(), L.count(), o);
        });
      }
}

template <typename T>
void test_rmsprop(const std::vector<index_t>& sizes) {
  for (bool centered : {false, true})
    for (double mom : {0.0, 0.9})
      for (double wd : {0.0, 0.05})
        for (bool maxi : {false, true}) {
          nnfast::RMSpropOptions o{0.01, 0.9, 1e-8, wd, mom, centered, maxi};
          Lists<T> L(sizes, 5);  // param, square_avg, grad_avg, momentum, grad
          L.set_role(1, 0.0, 0.0);
          L.set_role(2, 0.0, 0.0);
          L.set_role(3, 0.0, 0.0);
          const std::string name = std::string("rmsprop ") + tname<T>() + (centered ? " centered" : "") +
                                   " mom=" + std::to_string(mom) + " wd=" + std::to_string(wd) + (maxi ? " max" : "");
          run_steps(name, L, 4, 3, [&](int) {
            auto h0 = L.hp(0), h1 = L.hp(1), h2 = L.hp(2), h3 = L.hp(3), h4 = L.hp(4);
            auto d0 = L.dp(0), d1 = L.dp(1), d2 = L.dp(2), d3 = L.dp(3), d4 = L.dp(4);
            std::vector<const T*> hg(h4.begin(), h4.end()), dg(d4.begin(), d4.end());
            nnfast::cpu::rmsprop_step<T>(h0.data(), h1.data(), centered ? h2.data() : nullptr,
                                         mom > 0 ? h3.data() : nullptr, hg.data(), L.numel.data(), L.count(), o);
            nnfast::cuda::rmsprop_step<T>(d0.data(), d1.data(), centered ? d2.data() : nullptr,
                                          mom > 0 ? d3.data() : nullptr, dg.data(), L.numel.data(), L.count(), o);
          });
        }
}

template <typename T>
void test_adabound(const std::vector<index_t>& sizes) {
  for (bool ams : {false, true})
    for (double wd : {0.0, 0.05})
      for (bool maxi : {false, true}) {
        nnfast::AdaBoundOptions o{0.01, 0.005, 0.9, 0.99, 0.1, 1e-3, 1e-8, wd, ams, maxi};
        Lists<T> L(sizes, 5);
        L.set_role(1, 0.0, 0.0);
        L.set_role(2, 0.0, 0.0);
        L.set_role(3, 0.0, 0.0);
        const std::string name = std::string("adabound ") + tname<T>() + (ams ? " amsbound" : "") +
                                 " wd=" + std::to_string(wd) + (maxi ? " max" : "");
        run_steps(name, L, 4, 3, [&](int s) {
          std::vector<index_t> st(sizes.size(), s);
          auto h0 = L.hp(0), h1 = L.hp(1), h2 = L.hp(2), h3 = L.hp(3), h4 = L.hp(4);
          auto d0 = L.dp(0), d1 = L.dp(1), d2 = L.dp(2), d3 = L.dp(3), d4 = L.dp(4);
          std::vector<const T*> hg(h4.begin(), h4.end()), dg(d4.begin(), d4.end());
          nnfast::cpu::adabound_step<T>(h0.data(), h1.data(), h2.data(), ams ? h3.data() : nullptr, hg.data(),
                                        st.data(), L.numel.data(), L.count(), o);
          nnfast::cuda::adabound_step<T>(d0.data(), d1.data(), d2.data(), ams ? d3.data() : nullptr, dg.data(),
                                         st.data(), L.numel.data(), L.count(), o);
        });
      }
}

template <typename T>
void test_lion(const std::vector<index_t>& sizes) {
  for (double wd : {0.0, 0.1})
    for (bool maxi : {false, true}) {
      nnfast::LionOptions o{0.01, 0.9, 0.99, wd, maxi};
      Lists<T> L(sizes, 3);
      const std::string name = std::string("lion ") + tname<T>() + " wd=" + std::to_string(wd) + (maxi ? " max" : "");
      run_steps(name, L, 2, 3, [&](int) {
        auto h0 = L.hp(0), h1 = L.hp(1), h2 = L.hp(2);
        auto d0 = L.dp(0), d1 = L.dp(1), d2 = L.dp(2);
        std::vector<const T*> hg(h2.begin(), h2.end()), dg(d2.begin(), d2.end());
        nnfast::cpu::lion_step<T>(h0.data(), h1.data(), hg.data(), L.numel.data(), L.count(), o);
        nnfast::cuda::lion_step<T>(d0.data(), d1.data(), dg.data(), L.numel.data(), L.count(), o);
      });
    }
}

template <typename T>
void test_lamb(const std::vector<index_t>& sizes) {
  for (bool bc : {true, false})
    for (double wd : {0.0, 0.01})
      for (bool maxi : {false, true}) {
        nnfast::LambOptions o{0.01, 0.9, 0.999, 1e-6, wd, bc, maxi};
        Lists<T> L(sizes, 4);  // param, m, v, grad
        L.set_role(1, 0.0, 0.0);
        L.set_role(2, 0.0, 0.0);
        const std::string name = std::string("lamb ") + tname<T>() + (bc ? " bc" : "") + " wd=" + std::to_string(wd) +
                                 (maxi ? " max" : "");
        run_steps(name, L, 3, 3, [&](int s) {
          std::vector<index_t> st(sizes.size(), s);
          auto h0 = L.hp(0), h1 = L.hp(1), h2 = L.hp(2), h3 = L.hp(3);
          auto d0 = L.dp(0), d1 = L.dp(1), d2 = L.dp(2), d3 = L.dp(3);
          std::vector<const T*> hg(h3.begin(), h3.end()), dg(d3.begin(), d3.end());
          std::vector<double> rh(sizes.size(), -1), rd(sizes.size(), -2);
          nnfast::cpu::lamb_step<T>(rh.data(), h0.data(), h1.data(), h2.data(), hg.data(), st.data(), L.numel.data(),
                                    L.count(), o);
          nnfast::cuda::lamb_step<T>(rd.data(), d0.data(), d1.data(), d2.data(), dg.data(), st.data(),
                                     L.numel.data(), L.count(), o);
          check(name + " trust_ratio step" + std::to_string(s), rd, rh, sizeof(T) == 4 ? 1e-5 : 1e-12, 0.0);
        });
      }
}

// Adadelta, Adamax, NAdam, RAdam, ASGD: every option combination, per-tensor step counts;
// NAdam's mu_product and ASGD's eta / mu (host in/out) must advance identically too.
std::vector<index_t> tensor_steps(size_t n, int s) {
  std::vector<index_t> st(n);
  for (size_t i = 0; i < n; ++i) st[i] = s + static_cast<index_t>(i % 3);
  return st;
}

// Runs `steps` steps of a kernel with `roles` roles (grad last), state roles starting at zero.
// call(s, host_ptrs, dev_ptrs, host_grads, dev_grads) runs the cpu and the cuda kernel.
template <typename T, typename Call>
void run_new(const std::string& name, const std::vector<index_t>& sizes, int roles, Call&& call) {
  Lists<T> L(sizes, roles);
  for (int k = 1; k < roles - 1; ++k) L.set_role(k, 0.0, 0.0);
  run_steps(name + " " + tname<T>() + " n=" + std::to_string(sizes.size()), L, roles - 1, 4, [&](int s) {
    std::vector<std::vector<T*>> h, d;
    for (int k = 0; k < roles - 1; ++k) {
      h.push_back(L.hp(k));
      d.push_back(L.dp(k));
    }
    auto hg0 = L.hp(roles - 1), dg0 = L.dp(roles - 1);
    std::vector<const T*> hg(hg0.begin(), hg0.end()), dg(dg0.begin(), dg0.end());
    call(s, L, h, d, hg, dg);
  });
}

void check_scalars(const std::string& what, const std::vector<double>& a, const std::vector<double>& b) {
  ++g_checks;
  if (a != b) {
    ++g_failures;
    std::printf("FAIL %s: host scalars differ between cpu and cuda\n", what.c_str());
  }
}

template <typename T>
void test_new_optimizers(const std::vector<index_t>& sizes) {
  const size_t n = sizes.size();
  for (double wd : {0.0, 0.05})
    for (bool maxi : {false, true}) {
      const std::string opts = " wd=" + std::to_string(wd) + (maxi ? " max" : "");
      const nnfast::AdadeltaOptions ad{0.5, 0.9, 1e-6, wd, maxi};
      run_new<T>("adadelta" + opts, sizes, 4, [&](int, auto& L, auto& h, auto& d, auto& hg, auto& dg) {
        nnfast::cpu::adadelta_step<T>(h[0].data(), h[1].data(), h[2].data(), hg.data(), L.numel.data(), L.count(), ad);
        nnfast::cuda::adadelta_step<T>(d[0].data(), d[1].data(), d[2].data(), dg.data(), L.numel.data(), L.count(), ad);
      });
      const nnfast::AdamaxOptions am{0.01, 0.9, 0.99, 1e-8, wd, maxi};
      run_new<T>("adamax" + opts, sizes, 4, [&](int s, auto& L, auto& h, auto& d, auto& hg, auto& dg) {
        const auto st = tensor_steps(n, s);
        nnfast::cpu::adamax_step<T>(h[0].data(), h[1].data(), h[2].data(), hg.data(), st.data(), L.numel.data(),
                                    L.count(), am);
        nnfast::cuda::adamax_step<T>(d[0].data(), d[1].data(), d[2].data(), dg.data(), st.data(), L.numel.data(),
                                     L.count(), am);
      });
      for (bool decoupled : {false, true}) {
        const std::string o2 = opts + (decoupled ? " decoupled" : "");
        const nnfast::NAdamOptions na{0.01, 0.9, 0.99, 1e-8, wd, 4e-3, decoupled, maxi};
        std::vector<double> mp_h(n, 1.0), mp_d(n, 1.0);
        run_new<T>("nadam" + o2, sizes, 4, [&](int s, auto& L, auto& h, auto& d, auto& hg, auto& dg) {
          const auto st = tensor_steps(n, s);
          nnfast::cpu::nadam_step<T>(h[0].data(), h[1].data(), h[2].data(), hg.data(), mp_h.data(), st.data(),
                                     L.numel.data(), L.count(), na);
          nnfast::cuda::nadam_step<T>(d[0].data(), d[1].data(), d[2].data(), dg.data(), mp_d.data(), st.data(),
                                      L.numel.data(), L.count(), na);
          check_scalars("nadam mu_product" + o2, mp_h, mp_d);
        });
        // beta2 = 0.9: rho_t > 5 from step 4 on, so both branches run (steps differ per tensor)
        const nnfast::RAdamOptions ra{0.01, 0.9, 0.9, 1e-8, wd, decoupled, maxi};
        run_new<T>("radam" + o2, sizes, 4, [&](int s, auto& L, auto& h, auto& d, auto& hg, auto& dg) {
          const auto st = tensor_steps(n, s);
          nnfast::cpu::radam_step<T>(h[0].data(), h[1].data(), h[2].data(), hg.data(), st.data(), L.numel.data(),
                                     L.count(), ra);
          nnfast::cuda::radam_step<T>(d[0].data(), d[1].data(), d[2].data(), dg.data(), st.data(), L.numel.data(),
                                      L.count(), ra);
        });
      }
      const nnfast::ASGDOptions as{0.05, 0.01, 0.75, 2.0, wd, maxi};  // t0 = 2: averaging from step 3
      std::vector<double> eta_h(n, 0.05), eta_d(n, 0.05), mu_h(n, 1.0), mu_d(n, 1.0);
      run_new<T>("asgd" + opts, sizes, 3, [&](int s, auto& L, auto& h, auto& d, auto& hg, auto& dg) {
        const auto st = tensor_steps(n, s);
        nnfast::cpu::asgd_step<T>(h[0].data(), h[1].data(), hg.data(), eta_h.data(), mu_h.data(), st.data(),
                                  L.numel.data(), L.count(), as);
        nnfast::cuda::asgd_step<T>(d[0].data(), d[1].data(), dg.data(), eta_d.data(), mu_d.data(), st.data(),
                                   L.numel.data(), L.count(), as);
        check_scalars("asgd eta" + opts, eta_h, eta_d);
        check_scalars("asgd mu" + opts, mu_h, mu_d);
      });
    }
}

template <typename T>
void test_utilities(const std::vector<index_t>& sizes) {
  Lists<T> L(sizes, 1);
  auto dp = L.dp(0);
  auto hp = L.hp(0);
  std::vector<const T*> dc(dp.begin(), dp.end()), hc(hp.begin(), hp.end());
  const std::string tn = tname<T>();
  for (double p : {2.0, 1.0, 0.0, 3.5, 0.5, static_cast<double>(INFINITY), -static_cast<double>(INFINITY)}) {
    std::vector<double> nh(sizes.size(), -1), nd(sizes.size(), -2);
    nnfast::cpu::multi_tensor_norm<T>(nh.data(), hc.data(), L.numel.data(), L.count(), p);
    nnfast::cuda::multi_tensor_norm<T>(nd.data(), dc.data(), L.numel.data(), L.count(), p);
    check("multi_tensor_norm " + tn + " p=" + std::to_string(p), nd, nh, 1e-12, 0.0);
    std::vector<double> nd2(sizes.size(), -3);
    nnfast::cuda::multi_tensor_norm<T>(nd2.data(), dc.data(), L.numel.data(), L.count(), p);
    expect(std::memcmp(nd.data(), nd2.data(), nd.size() * sizeof(double)) == 0,
           "multi_tensor_norm repeatable p=" + std::to_string(p));
    const double ch = nnfast::cpu::combine_norms(nh.data(), L.count(), p);
    const double cd = nnfast::cuda::combine_norms(nd.data(), L.count(), p);
    check("combine_norms " + tn + " p=" + std::to_string(p), std::vector<double>{cd}, std::vector<double>{ch}, 1e-12,
          0.0);
  }
  expect(nnfast::cuda::multi_tensor_all_finite<T>(dc.data(), L.numel.data(), L.count()), "all_finite: finite");
  size_t big = 0;  // a tensor with more than 5 elements
  while (L.numel[big] <= 5) ++big;
  // scale, clamp (NaN stays NaN)
  L.host[0][big][5] = std::numeric_limits<T>::quiet_NaN();
  L.dev[0][big].upload(L.host[0][big]);
  expect(!nnfast::cuda::multi_tensor_all_finite<T>(dc.data(), L.numel.data(), L.count()), "all_finite: NaN");
  nnfast::cpu::multi_tensor_scale<T>(hp.data(), L.numel.data(), L.count(), -0.7);
  nnfast::cuda::multi_tensor_scale<T>(dp.data(), L.numel.data(), L.count(), -0.7);
  L.compare("multi_tensor_scale " + tn, 0.0, 0.0);
  nnfast::cpu::multi_tensor_clamp<T>(hp.data(), L.numel.data(), L.count(), -0.5, 0.25);
  nnfast::cuda::multi_tensor_clamp<T>(dp.data(), L.numel.data(), L.count(), -0.5, 0.25);
  L.compare("multi_tensor_clamp " + tn, 0.0, 0.0);
  L.host[0][big][5] = std::numeric_limits<T>::infinity();
  L.dev[0][big].upload(L.host[0][big]);
  expect(!nnfast::cuda::multi_tensor_all_finite<T>(dc.data(), L.numel.data(), L.count()), "all_finite: inf");
  expect(nnfast::cuda::multi_tensor_all_finite<T>(dc.data(), L.numel.data(), 0), "all_finite: empty list");
}

// ================================================================== drivers
template <typename T>
void loss_suite() {
  const Reduction reds[] = {Reduction::None, Reduction::Mean, Reduction::Sum};
  int combo = 0;
  for (index_t N : {1, 7, 33})
    for (index_t C : {1, 7, 1023})
      for (Reduction red : reds)
        for (bool weighted : {false, true})
          for (double eps : {0.0, 0.1}) {
            ++combo;
            const index_t S = combo % 4 == 0 ? 3 : 1;
            const int layout = combo % 3 == 0 ? 1 : 0;
            const bool want_dx = combo % 5 != 0;
            const index_t ign = combo % 7 == 0 ? 0 : -100;  // a valid class as ignore_index too
            test_cross_entropy<T>(N, C, S, layout, weighted, eps, red, want_dx, ign);
          }
  combo = 0;
  for (index_t N : {1, 7, 33})
    for (index_t C : {1, 7, 1023})
      for (Reduction red : reds) {
        ++combo;
        test_cross_entropy_prob<T>(N, C, combo % 4 == 0 ? 3 : 1, combo % 3 == 0 ? 1 : 0, combo % 2 == 0,
                                   combo % 5 == 0 ? 0.0 : 0.2, red);
      }
  // one block per row (C >= kBlockRowC)
  for (Reduction red : reds) {
    test_cross_entropy<T>(7, 2500, 1, 0, true, 0.1, red, true, -100);
    test_cross_entropy<T>(3, 1500, 2, 1, false, 0.0, red, true, -100);
    test_cross_entropy<T>(2, 1100, 1, 1, true, 0.0, red, red != Reduction::Sum, 0);
    test_cross_entropy_prob<T>(5, 2000, 1, 0, true, 0.1, red);
    test_cross_entropy_prob<T>(2, 1100, 3, 1, false, 0.0, red);
  }
  // every row ignored: mean is NaN, gradients zero
  test_cross_entropy<T>(3, 7, 1, 0, true, 0.1, Reduction::Mean, true, 1000);
  for (index_t N : {1, 7, 33})
    for (index_t C : {1, 7, 1023}) {
      test_scale_grad<T>(N, C, 1, true);
      test_scale_grad<T>(N, C, 3, N != 7);
    }
  combo = 0;
  for (index_t N : {1, 7, 33})
    for (index_t C : {1, 7, 1023})
      for (Reduction red : reds)
        for (bool weighted : {false, true}) {
          ++combo;
          test_nll<T>(N, C, combo % 4 == 0 ? 3 : 1, combo % 3 == 0 ? 1 : 0, weighted, red, red == Reduction::None,
                      combo % 7 == 0 ? 0 : -100);
        }
  const PointLoss kinds[] = {PointLoss::MSE,           PointLoss::L1,    PointLoss::Huber,
                             PointLoss::SmoothL1,      PointLoss::BCE,   PointLoss::BCEWithLogits,
                             PointLoss::KLDiv,         PointLoss::KLDivLogTarget, PointLoss::Perceptron};
  combo = 0;
  for (PointLoss k : kinds) {
    const bool wk = k == PointLoss::BCE || k == PointLoss::BCEWithLogits;
    for (double param : {0.0, 1.0}) {
      if (param == 0.0 && (k == PointLoss::Huber)) continue;
      if (param == 1.0 && k != PointLoss::Huber && k != PointLoss::SmoothL1) continue;
      ++combo;
      test_pointwise<T>(k, param, 1, 1, false, wk, k == PointLoss::BCEWithLogits);
      test_pointwise<T>(k, param, 7, 33, combo % 2 == 0, wk, k == PointLoss::BCEWithLogits);
      test_pointwise<T>(k, param == 0.0 ? 0.0 : 0.5, 33, 1023, combo % 2 == 1, wk && combo % 3 != 0,
                        k == PointLoss::BCEWithLogits);
    }
  }
  test_rmse<T>(1, 1);
  test_rmse<T>(7, 33);
  test_rmse<T>(33, 1023);
}

template <typename T>
void optim_suite() {
  test_sgd<T>(kSizes);
  test_adam<T>(kSizes);
  test_adagrad<T>(kSizes);
  test_rmsprop<T>(kSizes);
  test_adabound<T>(kSizes);
  test_lion<T>(kSizes);
  test_lamb<T>(kSizes);
  test_new_optimizers<T>(kSizes);
  test_utilities<T>(kSizes);
  // more tensors than one launch holds (two launches per call)
  const std::vector<index_t> many = many_sizes();
  test_adam<T>(many);
  test_lamb<T>(many);
  test_new_optimizers<T>(many);
  test_utilities<T>(many);
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    auto lap = [t = std::chrono::steady_clock::now()](const char* what) mutable {
      const auto now = std::chrono::steady_clock::now();
      std::printf("  %-14s %.2f s\n", what, std::chrono::duration<double>(now - t).count());
      t = now;
    };
    test_find_bad_target();
    loss_suite<float>();
    lap("loss f32");
    loss_suite<double>();
    lap("loss f64");
    optim_suite<float>();
    lap("optim f32");
    optim_suite<double>();
    lap("optim f64");
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d checks, %d failures, %.2f s (NNFAST_EMU_SEED=%llu)\n", g_checks, g_failures, s,
              static_cast<unsigned long long>(nnfast_emu::seed()));
  return g_failures == 0 ? 0 : 1;
}

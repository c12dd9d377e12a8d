// CUDA norm and dropout kernels (csrc/cuda/norm.cu, dropout.cu), compiled with the
// host compiler and run on nnfast's SIMT emulator, against nnfast::cpu as the
// reference (linked from nnfast_kernels).
//
// Checks: every launcher vs the CPU kernel on random inputs (float32 / float64,
// sizes 1, 7, 33, 1023, null weight / bias, training / eval, mean 1e4 std 1e-2);
// the gradient contract (parameter gradients: two calls give exactly twice one
// call; input gradients overwrite a NaN-filled buffer); determinism (the same bits
// under two emulator seeds, set in-process); the dropout mask bit for bit equal to
// the CPU's. ctest runs the program under NNFAST_EMU_SEED=1 and 2 as well.
#include "cuda/norm.cu"
#include "cuda/dropout.cu"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "nnfast/dropout.h"
#include "nnfast/norm.h"

namespace cpu = nnfast::cpu;
namespace cu = nnfast::cuda;
using nnfast::index_t;

static int g_fail = 0, g_checks = 0;

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#define CHECK(cond, ...)                                    \
  do {                                                      \
    ++g_checks;                                             \
    if (!(cond)) {                                          \
      ++g_fail;                                             \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);      \
      std::printf(__VA_ARGS__);                             \
      std::printf("\n");                                    \
    }                                                       \
  } while (0)

// ------------------------------------------------------------------ device buffers
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    NNFAST_CUDA_CHECK(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));
    if (n) NNFAST_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() {
    if (p) cudaFree(p);
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    if (n) NNFAST_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

// Device copy of an optional host vector (empty -> null pointer).
template <typename T>
T* dptr(Dev<T>& d) {
  return d.n ? d.p : nullptr;
}

static std::mt19937_64 g_rng(12345);

template <typename T>
std::vector<T> randn(size_t n, double mean = 0.0, double std = 1.0) {
  std::normal_distribution<double> d(mean, std);
  std::vector<T> v(n);
  for (auto& t : v) t = static_cast<T>(d(g_rng));
  return v;
}

template <typename T>
std::vector<T> nan_vec(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
constexpr double tol() {
  return std::is_same<T, float>::value ? 3e-5 : 1e-10;
}
template <typename T>
const char* tname() {
  return std::is_same<T, float>::value ? "f32" : "f64";
}

// |got - ref| <= t (|ref| + max(mean |ref|, floor)) elementwise (NaN fails). floor: the
// natural size of the result where it may cancel to ~0 (e.g. |dy| * rstd for dx).
template <typename A, typename B>
void close(const std::string& what, const std::vector<A>& got, const std::vector<B>& ref, double t,
           double floor = 0.0) {
  ++g_checks;
  if (got.size() != ref.size()) {
    ++g_fail;
    std::printf("FAIL %s: size %zu vs %zu\n", what.c_str(), got.size(), ref.size());
    return;
  }
  double scale = 0;
  for (auto r : ref) scale += std::fabs(static_cast<double>(r));
  scale = ref.empty() ? 0 : scale / ref.size();
  if (scale < floor) scale = floor;
  double worst = 0;
  size_t wi = 0;
  bool bad = false;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    const double e = std::fabs(g - r);
    if (!(e <= t * (std::fabs(r) + scale))) {
      if (!bad || e > worst || std::isnan(e)) worst = e, wi = i;
      bad = true;
    }
  }
  if (bad) {
    ++g_fail;
    std::printf("FAIL %s: [%zu] got %.17g ref %.17g (tol %.3g, scale %.3g)\n", what.c_str(), wi,
                static_cast<double>(got[wi]), static_cast<double>(ref[wi]), t, scale);
  }
}

template <typename T>
double mean_abs(const std::vector<T>& v) {
  double s = 0;
  for (auto t : v) s += std::fabs(static_cast<double>(t));
  return v.empty() ? 0.0 : s / v.size();
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <typename T>
std::vector<T> twice(const std::vector<T>& a) {
  std::vector<T> r(a);
  for (auto& t : r) t = static_cast<T>(t + t);
  return r;
}

// Runs f() (returning a vector of outputs) under two emulator seeds: the bits must match.
template <class F>
auto seed_stable(const std::string& what, F&& f) {
  const std::uint64_t s0 = nnfast_emu::seed();
  nnfast_emu::set_seed(s0 ^ 0x5eed5eedULL);
  auto a = f();
  nnfast_emu::set_seed(s0);
  auto b = f();
  CHECK(same_bits(a, b), "%s: results differ between emulator seeds", what.c_str());
  return b;
}

// ------------------------------------------------------------------ layer / RMS norm
template <typename T>
void test_layer_norm(index_t M, index_t D, bool rms, bool affine, double mu = 0.0, double sd = 1.0) {
  const std::string tag = std::string("layer_norm ") + tname<T>() + (rms ? " rms" : "") + (affine ? " affine" : "") +
                          " M=" + std::to_string(M) + " D=" + std::to_string(D) + (mu != 0 ? " mean1e4" : "");
  const double eps = 1e-5, t0 = now_s();
  auto x = randn<T>(M * D, mu, sd);
  auto w = affine ? randn<T>(D, 1.0, 0.5) : std::vector<T>();
  auto b = affine && !rms ? randn<T>(D) : std::vector<T>();
  auto dy = randn<T>(M * D);
  // CPU reference.
  std::vector<T> y_r(M * D), dx_r(M * D), dw_r(D, T(0)), db_r(D, T(0));
  std::vector<double> m_r(M), r_r(M);
  cpu::layer_norm_forward<T>(y_r.data(), rms ? nullptr : m_r.data(), r_r.data(), x.data(),
                             affine ? w.data() : nullptr, b.empty() ? nullptr : b.data(), M, D, eps, rms);
  cpu::layer_norm_backward<T>(dx_r.data(), dw_r.data(), db_r.data(), dy.data(), x.data(), m_r.data(), r_r.data(),
                              affine ? w.data() : nullptr, M, D, rms);
  // CUDA.
  Dev<T> dx_(x), dw_(w), db_(b), ddy(dy);
  Dev<T> dy_out(nan_vec<T>(M * D));
  Dev<double> dm(std::vector<double>(M, 0.0)), dr(nan_vec<double>(M));
  auto fwd = seed_stable(tag + " fwd", [&] {
    cu::layer_norm_forward<T>(dy_out.p, rms ? nullptr : dm.p, dr.p, dx_.p, dptr(dw_), dptr(db_), M, D, eps, rms);
    return dy_out.get();
  });
  close(tag + " y", fwd, y_r, tol<T>());
  if (!rms) close(tag + " mean", dm.get(), m_r, 1e-12);
  close(tag + " rstd", dr.get(), r_r, 1e-9);
  // Backward: dx overwrites a NaN buffer; dweight / dbias accumulate.
  Dev<T> ddxo(nan_vec<T>(M * D));
  Dev<T> ddw(std::vector<T>(D, T(0))), ddb(std::vector<T>(D, T(0)));
  auto dxv = seed_stable(tag + " dx", [&] {
    cu::layer_norm_backward<T>(ddxo.p, nullptr, nullptr, ddy.p, dx_.p, dm.p, dr.p, dptr(dw_), M, D, rms);
    return ddxo.get();
  });
  close(tag + " dx", dxv, dx_r, tol<T>() * 4, mean_abs(dy) * mean_abs(r_r) * (affine ? mean_abs(w) : 1.0));
  auto params = seed_stable(tag + " dparams", [&] {
    NNFAST_CUDA_CHECK(cudaMemset(ddw.p, 0, D * sizeof(T)));
    NNFAST_CUDA_CHECK(cudaMemset(ddb.p, 0, D * sizeof(T)));
    cu::layer_norm_backward<T>(nullptr, ddw.p, rms ? nullptr : ddb.p, ddy.p, dx_.p, dm.p, dr.p, dptr(dw_), M, D, rms);
    auto a = ddw.get(), c = ddb.get();
    a.insert(a.end(), c.begin(), c.end());
    return a;
  });
  std::vector<T> g1(params.begin(), params.begin() + D), b1(params.begin() + D, params.end());
  close(tag + " dweight", g1, dw_r, tol<T>());
  if (!rms) close(tag + " dbias", b1, db_r, tol<T>());
  // Second call, with dx too: exactly doubled parameter gradients, same dx.
  cu::layer_norm_backward<T>(ddxo.p, ddw.p, rms ? nullptr : ddb.p, ddy.p, dx_.p, dm.p, dr.p, dptr(dw_), M, D, rms);
  CHECK(same_bits(ddw.get(), twice(g1)), "%s: dweight not exactly doubled", tag.c_str());
  CHECK(same_bits(ddb.get(), twice(b1)), "%s: dbias not exactly doubled", tag.c_str());
  CHECK(same_bits(ddxo.get(), dxv), "%s: dx changed with param grads on", tag.c_str());
  if (std::getenv("NNFAST_TEST_TIMES")) std::printf("    %s %.3f s\n", tag.c_str(), now_s() - t0);
}

// ------------------------------------------------------------------ batch norm
template <typename T>
void test_batch_norm(index_t N, index_t C, index_t L, bool training, bool affine, bool running, double mu = 0.0,
                     double sd = 1.0) {
  const std::string tag = std::string("batch_norm ") + tname<T>() + (training ? " train" : " eval") +
                          (affine ? " affine" : "") + (running ? " running" : "") + " N=" + std::to_string(N) +
                          " C=" + std::to_string(C) + " L=" + std::to_string(L) + (mu != 0 ? " mean1e4" : "");
  const double eps = 1e-5, mom = 0.1;
  const index_t n = N * C * L;
  auto x = randn<T>(n, mu, sd);
  auto w = affine ? randn<T>(C, 1.0, 0.5) : std::vector<T>();
  auto b = affine ? randn<T>(C) : std::vector<T>();
  auto rm0 = running || !training ? randn<T>(C, mu, sd) : std::vector<T>();
  std::vector<T> rv0;
  if (running || !training)
    for (index_t c = 0; c < C; ++c) rv0.push_back(static_cast<T>(sd * sd * (0.5 + 0.1 * c)));
  auto dy = randn<T>(n);
  std::vector<T> y_r(n), dx_r(n), dw_r(C, T(0)), db_r(C, T(0)), rm_r(rm0), rv_r(rv0);
  std::vector<double> m_r(C), r_r(C);
  cpu::batch_norm_forward<T>(y_r.data(), m_r.data(), r_r.data(), rm_r.empty() ? nullptr : rm_r.data(),
                             rv_r.empty() ? nullptr : rv_r.data(), x.data(), affine ? w.data() : nullptr,
                             affine ? b.data() : nullptr, N, C, L, training, mom, eps);
  cpu::batch_norm_backward<T>(dx_r.data(), dw_r.data(), db_r.data(), dy.data(), x.data(), m_r.data(), r_r.data(),
                              affine ? w.data() : nullptr, N, C, L, training);
  Dev<T> dxx(x), dw_(w), db_(b), ddy(dy), drm(rm0), drv(rv0), dyo(nan_vec<T>(n));
  Dev<double> dm(nan_vec<double>(C)), dr(nan_vec<double>(C));
  auto fwd = seed_stable(tag + " fwd", [&] {
    if (drm.n) NNFAST_CUDA_CHECK(cudaMemcpy(drm.p, rm0.data(), C * sizeof(T), cudaMemcpyHostToDevice));
    if (drv.n) NNFAST_CUDA_CHECK(cudaMemcpy(drv.p, rv0.data(), C * sizeof(T), cudaMemcpyHostToDevice));
    cu::batch_norm_forward<T>(dyo.p, dm.p, dr.p, dptr(drm), dptr(drv), dxx.p, dptr(dw_), dptr(db_), N, C, L, training,
                              mom, eps);
    return dyo.get();
  });
  close(tag + " y", fwd, y_r, tol<T>());
  close(tag + " mean", dm.get(), m_r, 1e-12);
  close(tag + " rstd", dr.get(), r_r, 1e-9);
  if (drm.n) close(tag + " running_mean", drm.get(), rm_r, tol<T>());
  if (drv.n) close(tag + " running_var", drv.get(), rv_r, tol<T>());
  Dev<T> ddxo(nan_vec<T>(n)), ddw(std::vector<T>(C, T(0))), ddb(std::vector<T>(C, T(0)));
  auto dxv = seed_stable(tag + " dx", [&] {
    cu::batch_norm_backward<T>(ddxo.p, nullptr, nullptr, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, training);
    return ddxo.get();
  });
  close(tag + " dx", dxv, dx_r, tol<T>() * 4, mean_abs(dy) * mean_abs(r_r) * (affine ? mean_abs(w) : 1.0));
  cu::batch_norm_backward<T>(nullptr, ddw.p, ddb.p, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, training);
  auto g1 = ddw.get(), b1 = ddb.get();
  close(tag + " dweight", g1, dw_r, tol<T>());
  close(tag + " dbias", b1, db_r, tol<T>());
  cu::batch_norm_backward<T>(ddxo.p, ddw.p, ddb.p, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, training);
  CHECK(same_bits(ddw.get(), twice(g1)), "%s: dweight not exactly doubled", tag.c_str());
  CHECK(same_bits(ddb.get(), twice(b1)), "%s: dbias not exactly doubled", tag.c_str());
  CHECK(same_bits(ddxo.get(), dxv), "%s: dx changed with param grads on", tag.c_str());
}

// ------------------------------------------------------------------ group / instance norm
template <typename T>
void test_group_norm(index_t N, index_t C, index_t L, index_t G, bool affine, double mu = 0.0, double sd = 1.0) {
  const std::string tag = std::string("group_norm ") + tname<T>() + (affine ? " affine" : "") + " N=" +
                          std::to_string(N) + " C=" + std::to_string(C) + " L=" + std::to_string(L) +
                          " G=" + std::to_string(G) + (mu != 0 ? " mean1e4" : "");
  const double eps = 1e-5;
  const index_t n = N * C * L;
  auto x = randn<T>(n, mu, sd);
  auto w = affine ? randn<T>(C, 1.0, 0.5) : std::vector<T>();
  auto b = affine ? randn<T>(C) : std::vector<T>();
  auto dy = randn<T>(n);
  std::vector<T> y_r(n), dx_r(n), dw_r(C, T(0)), db_r(C, T(0));
  std::vector<double> m_r(N * G), r_r(N * G);
  cpu::group_norm_forward<T>(y_r.data(), m_r.data(), r_r.data(), x.data(), affine ? w.data() : nullptr,
                             affine ? b.data() : nullptr, N, C, L, G, eps);
  cpu::group_norm_backward<T>(dx_r.data(), dw_r.data(), db_r.data(), dy.data(), x.data(), m_r.data(), r_r.data(),
                              affine ? w.data() : nullptr, N, C, L, G);
  Dev<T> dxx(x), dw_(w), db_(b), ddy(dy), dyo(nan_vec<T>(n));
  Dev<double> dm(nan_vec<double>(N * G)), dr(nan_vec<double>(N * G));
  auto fwd = seed_stable(tag + " fwd", [&] {
    cu::group_norm_forward<T>(dyo.p, dm.p, dr.p, dxx.p, dptr(dw_), dptr(db_), N, C, L, G, eps);
    return dyo.get();
  });
  close(tag + " y", fwd, y_r, tol<T>());
  close(tag + " mean", dm.get(), m_r, 1e-12);
  close(tag + " rstd", dr.get(), r_r, 1e-9);
  Dev<T> ddxo(nan_vec<T>(n)), ddw(std::vector<T>(C, T(0))), ddb(std::vector<T>(C, T(0)));
  auto dxv = seed_stable(tag + " dx", [&] {
    cu::group_norm_backward<T>(ddxo.p, nullptr, nullptr, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, G);
    return ddxo.get();
  });
  close(tag + " dx", dxv, dx_r, tol<T>() * 4, mean_abs(dy) * mean_abs(r_r) * (affine ? mean_abs(w) : 1.0));
  cu::group_norm_backward<T>(nullptr, ddw.p, ddb.p, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, G);
  auto g1 = ddw.get(), b1 = ddb.get();
  close(tag + " dweight", g1, dw_r, tol<T>());
  close(tag + " dbias", b1, db_r, tol<T>());
  cu::group_norm_backward<T>(ddxo.p, ddw.p, ddb.p, ddy.p, dxx.p, dm.p, dr.p, dptr(dw_), N, C, L, G);
  CHECK(same_bits(ddw.get(), twice(g1)), "%s: dweight not exactly doubled", tag.c_str());
  CHECK(same_bits(ddb.get(), twice(b1)), "%s: dbias not exactly doubled", tag.c_str());
  CHECK(same_bits(ddxo.get(), dxv), "%s: dx changed with param grads on", tag.c_str());
  if (G == C) {  // instance norm's running statistics
    auto rm0 = randn<T>(C), rv0 = randn<T>(C, 2.0, 0.1);
    std::vector<T> rm_r(rm0), rv_r(rv0);
    cpu::instance_norm_update_running<T>(rm_r.data(), rv_r.data(), m_r.data(), r_r.data(), N, C, L, 0.1, eps);
    Dev<T> drm(rm0), drv(rv0);
    cu::instance_norm_update_running<T>(drm.p, drv.p, dm.p, dr.p, N, C, L, 0.1, eps);
    close(tag + " instance running_mean", drm.get(), rm_r, tol<T>());
    close(tag + " instance running_var", drv.get(), rv_r, mu != 0 ? 1e-4 : tol<T>());
  }
}

// ------------------------------------------------------------------ weight norm
template <typename T>
void test_weight_norm(index_t N, index_t C, index_t L) {
  const std::string tag = std::string("weight_norm ") + tname<T>() + " N=" + std::to_string(N) +
                          " C=" + std::to_string(C) + " L=" + std::to_string(L);
  const index_t n = N * C * L;
  auto v = randn<T>(n), g = randn<T>(C, 1.0, 0.5), dw = randn<T>(n);
  std::vector<T> w_r(n), dv_r(n), dg_r(C, T(0));
  std::vector<double> nrm_r(C);
  cpu::weight_norm_forward<T>(w_r.data(), nrm_r.data(), v.data(), g.data(), N, C, L);
  cpu::weight_norm_backward<T>(dv_r.data(), dg_r.data(), dw.data(), v.data(), g.data(), nrm_r.data(), N, C, L);
  Dev<T> dv_(v), dg_(g), ddw(dw), dwo(nan_vec<T>(n)), ddvo(nan_vec<T>(n)), ddg(std::vector<T>(C, T(0)));
  Dev<double> dn(nan_vec<double>(C));
  auto fwd = seed_stable(tag + " fwd", [&] {
    cu::weight_norm_forward<T>(dwo.p, dn.p, dv_.p, dg_.p, N, C, L);
    return dwo.get();
  });
  close(tag + " w", fwd, w_r, tol<T>());
  close(tag + " norm", dn.get(), nrm_r, 1e-12);
  auto dvv = seed_stable(tag + " dv", [&] {
    cu::weight_norm_backward<T>(ddvo.p, nullptr, ddw.p, dv_.p, dg_.p, dn.p, N, C, L);
    return ddvo.get();
  });
  double fl = 0;  // |g| |dw| / norm
  for (index_t c = 0; c < C; ++c) fl += std::fabs(static_cast<double>(g[c])) / nrm_r[c];
  close(tag + " dv", dvv, dv_r, tol<T>() * 4, mean_abs(dw) * fl / C);
  cu::weight_norm_backward<T>(nullptr, ddg.p, ddw.p, dv_.p, dg_.p, dn.p, N, C, L);
  auto g1 = ddg.get();
  close(tag + " dg", g1, dg_r, tol<T>());
  cu::weight_norm_backward<T>(ddvo.p, ddg.p, ddw.p, dv_.p, dg_.p, dn.p, N, C, L);
  CHECK(same_bits(ddg.get(), twice(g1)), "%s: dg not exactly doubled", tag.c_str());
  CHECK(same_bits(ddvo.get(), dvv), "%s: dv changed with dg on", tag.c_str());
}

// ------------------------------------------------------------------ spectral norm
template <typename T>
void test_spectral_norm(index_t M, index_t D) {
  const std::string tag = std::string("spectral_norm ") + tname<T>() + " M=" + std::to_string(M) +
                          " D=" + std::to_string(D);
  auto W = randn<T>(M * D), u0 = randn<T>(M), v0 = randn<T>(D), dy = randn<T>(M * D);
  std::vector<T> u_r(u0), v_r(v0), y_r(M * D), dW_r(M * D);
  cpu::spectral_norm_power_iteration<T>(u_r.data(), v_r.data(), W.data(), M, D, 3, 1e-12);
  const double sigma_r = cpu::spectral_norm_forward<T>(y_r.data(), W.data(), u_r.data(), v_r.data(), M, D);
  cpu::spectral_norm_backward<T>(dW_r.data(), dy.data(), W.data(), u_r.data(), v_r.data(), sigma_r, M, D);
  Dev<T> dW(W), du(u0), dv(v0), ddy(dy), dyo(nan_vec<T>(M * D)), ddWo(nan_vec<T>(M * D));
  auto uv = seed_stable(tag + " power", [&] {
    NNFAST_CUDA_CHECK(cudaMemcpy(du.p, u0.data(), M * sizeof(T), cudaMemcpyHostToDevice));
    NNFAST_CUDA_CHECK(cudaMemcpy(dv.p, v0.data(), D * sizeof(T), cudaMemcpyHostToDevice));
    cu::spectral_norm_power_iteration<T>(du.p, dv.p, dW.p, M, D, 3, 1e-12);
    auto a = du.get(), b = dv.get();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  });
  close(tag + " u", std::vector<T>(uv.begin(), uv.begin() + M), u_r, tol<T>() * 10);
  close(tag + " v", std::vector<T>(uv.begin() + M, uv.end()), v_r, tol<T>() * 10);
  // forward / backward from the CPU's u, v (isolates each kernel).
  Dev<T> dur(u_r), dvr(v_r);
  double sigma = 0;
  auto y = seed_stable(tag + " fwd", [&] {
    sigma = cu::spectral_norm_forward<T>(dyo.p, dW.p, dur.p, dvr.p, M, D);
    return dyo.get();
  });
  CHECK(std::fabs(sigma - sigma_r) <= 1e-10 * std::fabs(sigma_r), "%s: sigma %.17g vs %.17g", tag.c_str(), sigma,
        sigma_r);
  close(tag + " y", y, y_r, tol<T>());
  auto dWv = seed_stable(tag + " bwd", [&] {
    cu::spectral_norm_backward<T>(ddWo.p, ddy.p, dW.p, dur.p, dvr.p, sigma_r, M, D);
    return ddWo.get();
  });
  close(tag + " dW", dWv, dW_r, tol<T>() * 4);
}

// ------------------------------------------------------------------ dropout / penalties
template <typename T>
void test_dropout(index_t n, double p, std::uint64_t seed, std::uint64_t offset) {
  const std::string tag = std::string("dropout ") + tname<T>() + " n=" + std::to_string(n) + " p=" +
                          std::to_string(p) + " seed=" + std::to_string(seed) + " off=" + std::to_string(offset);
  auto x = randn<T>(n);
  std::vector<T> y_r(n), dx_r(n);
  cpu::dropout_forward<T>(y_r.data(), x.data(), n, p, seed, offset);
  cpu::dropout_backward<T>(dx_r.data(), x.data(), n, p, seed, offset);
  Dev<T> dx_(x), dyo(nan_vec<T>(n)), ddxo(nan_vec<T>(n));
  auto y = seed_stable(tag, [&] {
    cu::dropout_forward<T>(dyo.p, dx_.p, n, p, seed, offset);
    return dyo.get();
  });
  CHECK(same_bits(y, y_r), "%s: output differs from the CPU's", tag.c_str());
  cu::dropout_backward<T>(ddxo.p, dx_.p, n, p, seed, offset);
  CHECK(same_bits(ddxo.get(), dx_r), "%s: backward differs from the CPU's", tag.c_str());
  // The mask itself, element by element, against both host queries.
  index_t bad = -1;
  for (index_t i = 0; i < n && bad < 0; ++i) {
    const bool k = cpu::dropout_keep(i, p, seed, offset);
    if (k != cu::dropout_keep(i, p, seed, offset)) bad = i;
    if (x[i] != T(0) && ((y[i] != T(0)) != k)) bad = i;
  }
  CHECK(bad < 0, "%s: mask differs at %lld", tag.c_str(), static_cast<long long>(bad));
  // In place (y == x).
  cu::dropout_forward<T>(dx_.p, dx_.p, n, p, seed, offset);
  CHECK(same_bits(dx_.get(), y_r), "%s: in-place output differs", tag.c_str());
}

template <typename T>
void test_penalty(index_t n) {
  const std::string tag = std::string("penalty ") + tname<T>() + " n=" + std::to_string(n);
  auto x = randn<T>(n);
  if (n > 3) x[1] = T(0);
  Dev<T> dx_(x), dgo(nan_vec<T>(n));
  for (auto kind : {nnfast::Penalty::L1, nnfast::Penalty::L2}) {
    const double r = cpu::penalty_sum<T>(x.data(), n, kind);
    double s = 0;
    seed_stable(tag + " sum", [&] {
      s = cu::penalty_sum<T>(dx_.p, n, kind);
      return std::vector<double>{s};
    });
    // The CPU sums float32 in float SIMD lanes (then double); the GPU sums in double.
    CHECK(std::fabs(s - r) <= (std::is_same<T, float>::value ? 1e-6 : 1e-12) * std::fabs(r), "%s: sum %.17g vs %.17g", tag.c_str(), s, r);
    std::vector<T> g_r(n);
    cpu::penalty_backward<T>(g_r.data(), x.data(), n, kind, T(0.37));
    cu::penalty_backward<T>(dgo.p, dx_.p, n, kind, T(0.37));
    CHECK(same_bits(dgo.get(), g_r), "%s: backward differs", tag.c_str());
  }
}

static double g_t0 = 0;
static void lap(const char* what) {
  const double t = now_s();
  std::printf("  %-14s %6.2f s\n", what, t - g_t0);
  g_t0 = t;
}

template <typename T>
void run_all() {
  g_t0 = now_s();
  // layer / RMS norm: warp per row (D <= 512) and block per row (D > 512).
  const index_t shapes[][2] = {{1, 1}, {7, 7}, {33, 33}, {1023, 33}, {7, 1023}, {33, 1023}, {3, 2500}};
  for (auto& s : shapes) {
    test_layer_norm<T>(s[0], s[1], false, true);
    test_layer_norm<T>(s[0], s[1], false, false);
    test_layer_norm<T>(s[0], s[1], true, true);
  }
  test_layer_norm<T>(1, 1023, true, false);
  test_layer_norm<T>(1023, 7, true, false);
  test_layer_norm<T>(7, 33, false, true, 1e4, 1e-2);
  test_layer_norm<T>(3, 1023, false, true, 1e4, 1e-2);
  test_layer_norm<T>(7, 1023, true, true, 1e4, 1e-2);
  lap("layer_norm");
  // batch norm: (N, C) rows and (N, C, L).
  const index_t bshapes[][3] = {{1, 1, 1}, {7, 33, 1}, {33, 7, 1}, {1023, 7, 1}, {7, 3, 33}, {1, 7, 1023}, {2, 1, 7}};
  for (auto& s : bshapes)
    for (int tr = 0; tr < 2; ++tr)
      for (int aff = 0; aff < 2; ++aff) test_batch_norm<T>(s[0], s[1], s[2], tr, aff, true);
  test_batch_norm<T>(33, 7, 1, true, true, false);
  test_batch_norm<T>(7, 3, 33, true, false, false, 1e4, 1e-2);
  test_batch_norm<T>(33, 7, 1, true, true, true, 1e4, 1e-2);
  lap("batch_norm");
  // group / instance norm.
  const index_t gshapes[][4] = {{1, 1, 1, 1}, {2, 6, 5, 3}, {3, 4, 7, 4}, {7, 33, 3, 3}, {2, 8, 1023, 2}, {1, 7, 33, 7}, {7, 33, 1, 1}};
  for (auto& s : gshapes)
    for (int aff = 0; aff < 2; ++aff) test_group_norm<T>(s[0], s[1], s[2], s[3], aff);
  test_group_norm<T>(2, 6, 33, 3, true, 1e4, 1e-2);
  test_group_norm<T>(3, 4, 33, 4, false, 1e4, 1e-2);
  lap("group_norm");
  // weight norm.
  const index_t wshapes[][3] = {{1, 1, 1}, {7, 33, 1}, {33, 7, 3}, {1, 1023, 1}, {1023, 7, 1}, {1, 7, 33}};
  for (auto& s : wshapes) test_weight_norm<T>(s[0], s[1], s[2]);
  lap("weight_norm");
  // spectral norm.
  const index_t sshapes[][2] = {{1, 1}, {7, 33}, {33, 7}, {64, 1023}, {1023, 7}};
  for (auto& s : sshapes) test_spectral_norm<T>(s[0], s[1]);
  lap("spectral_norm");
  // dropout: odd / even n, several (seed, offset), p edges.
  for (index_t n : {1, 2, 7, 33, 1023, 40001})
    for (double p : {0.1, 0.5, 0.9}) test_dropout<T>(n, p, 42 + n, static_cast<std::uint64_t>(n) * 7);
  test_dropout<T>(1023, 0.3, 0, 0);
  test_dropout<T>(1023, 0.3, ~0ULL, 123456789);
  test_dropout<T>(33, 0.0, 5, 1);
  test_dropout<T>(33, 1.0, 5, 1);
  test_dropout<T>(33, 1e-12, 5, 1);
  for (index_t n : {1, 7, 1023, 40001}) test_penalty<T>(n);
  lap("dropout/penalty");
}

int main() {
  // One OS thread for the blocks unless NNFAST_EMU_THREADS says otherwise: the
  // launches here are small, and forking OpenMP per launch dominates on a busy
  // machine.
  if (!std::getenv("NNFAST_EMU_THREADS")) nnfast_emu::set_threads(1);
  std::printf("test_cuda_norm: emulator seed %llu\n", static_cast<unsigned long long>(nnfast_emu::seed()));
  std::printf("float32\n");
  run_all<float>();
  std::printf("float64\n");
  run_all<double>();
  std::printf("%d checks, %d failures\n", g_checks, g_fail);
  return g_fail ? 1 : 0;
}

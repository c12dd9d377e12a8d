// Leak check over 1,000 training steps through the C++ API (no Python).
//
// A 20-32-10 MLP: linear with a fused GELU epilogue (pre-activation kept in
// aux), LayerNorm, dropout, then the loss -- on even steps the chunked
// linear+cross-entropy (it allocates its tile workspace per call), on odd steps
// an explicit GEMM + fused softmax cross-entropy. Backward through every kernel,
// gradient clipping (multi-tensor norm + scale) and one fused Adam step over the
// six parameters (float32), plus a LAMB step on a float64 copy of the weights.
//
// Two checks:
//  * no growth: the heap in use after step 1,000 is what it was after step 200
//    (warm-up: thread pools and per-thread buffers exist by then). Measured with
//    ASan's allocator statistics in the sanitizer build, else glibc's mallinfo2.
//  * no leak: in the sanitizer build (.ci/sanitize.sh) LeakSanitizer runs at exit
//    (detect_leaks=1) and fails the test on any unreachable block. `--leak`
//    leaks on purpose; ctest expects that run to fail, which proves LSan is on.
#include <nnfast/activation.h>
#include <nnfast/dropout.h>
#include <nnfast/gemm.h>
#include <nnfast/loss.h>
#include <nnfast/norm.h>
#include <nnfast/optim.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
// From the ASan runtime (declared here: the sanitizer headers are not always installed).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes(void);
static std::size_t heap_in_use() { return __sanitizer_get_current_allocated_bytes(); }
static const char* kHeapCounter = "ASan allocated bytes";
#elif defined(__GLIBC__)
#include <malloc.h>
static std::size_t heap_in_use() { return mallinfo2().uordblks; }
static const char* kHeapCounter = "mallinfo2 uordblks";
#else
static std::size_t heap_in_use() { return 0; }
static const char* kHeapCounter = "none";
#endif

using nnfast::index_t;

namespace {

template <typename T>
std::vector<T> randn(std::mt19937& gen, index_t n, double scale) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(gen));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--leak") == 0) {
    // Deliberate leak: the pointer is dropped, so LeakSanitizer must report it.
    volatile char* p = static_cast<char*>(std::malloc(4096));
    p[0] = 1;
    p = nullptr;
    std::printf("leaked 4096 bytes on purpose\n");
    return 0;
  }
  const index_t N = 64, IN = 20, H = 32, C = 10, STEPS = 1000, WARM = 200;
  std::mt19937 gen(0);
  std::vector<float> X = randn<float>(gen, N * IN, 1.0);
  std::vector<std::int64_t> y(N);
  for (index_t i = 0; i < N; ++i) y[i] = (i * 7) % C;

  // Parameters (PyTorch layouts) and their gradients.
  std::vector<float> W1 = randn<float>(gen, H * IN, 0.2), b1(H, 0.f), gamma(H, 1.f), beta(H, 0.f);
  std::vector<float> W2 = randn<float>(gen, C * H, 0.2), b2(C, 0.f);
  std::vector<float> dW1(W1.size()), db1(H), dgamma(H), dbeta(H), dW2(W2.size()), db2(C);
  // Activations and their gradients.
  std::vector<float> z1(N * H), h1(N * H), hn(N * H), hd(N * H), logits(N * C), dlogits(N * C);
  std::vector<float> dhd(N * H), dhn(N * H), dh1(N * H), dz1(N * H), lse(N);
  std::vector<double> mean(N), rstd(N);

  float* params[6] = {W1.data(), b1.data(), gamma.data(), beta.data(), W2.data(), b2.data()};
  float* grads_w[6] = {dW1.data(), db1.data(), dgamma.data(), dbeta.data(), dW2.data(), db2.data()};
  const float* grads[6] = {dW1.data(), db1.data(), dgamma.data(), dbeta.data(), dW2.data(), db2.data()};
  index_t numel[6] = {H * IN, H, H, H, C * H, C};
  std::vector<std::vector<float>> m(6), v(6);
  float *mp[6], *vp[6];
  for (int t = 0; t < 6; ++t) {
    m[t].assign(static_cast<size_t>(numel[t]), 0.f);
    v[t].assign(static_cast<size_t>(numel[t]), 0.f);
    mp[t] = m[t].data();
    vp[t] = v[t].data();
  }
  nnfast::AdamOptions adam;
  adam.lr = 0.01;
  adam.amsgrad = false;

  // float64 shadow of W2 stepped by LAMB (exercises the double instantiations).
  std::vector<double> W2d(W2.begin(), W2.end()), dW2d(W2.size()), m2(W2.size()), v2(W2.size());
  double* pd[1] = {W2d.data()};
  double* md[1] = {m2.data()};
  double* vd[1] = {v2.data()};
  const double* gd[1] = {dW2d.data()};
  index_t nd[1] = {C * H};
  nnfast::LambOptions lamb;
  lamb.lr = 1e-3;

  const double p_drop = 0.1;
  nnfast::TargetView target{y.data(), 1, 0};
  double first_loss = 0, last_loss = 0;
  std::size_t heap_warm = 0, heap_end = 0;

  for (index_t step = 1; step <= STEPS; ++step) {
    // ---- forward
    nnfast::GemmEpilogue<float> ep1;
    ep1.bias = b1.data();
    ep1.act = nnfast::Act::GELU;
    ep1.aux = z1.data();
    ep1.rs_aux = H;
    nnfast::cpu::gemm<float>(N, H, IN, 1.f, X.data(), IN, 1, W1.data(), 1, IN, 0.f, h1.data(), H, 1, ep1);
    nnfast::cpu::layer_norm_forward<float>(hn.data(), mean.data(), rstd.data(), h1.data(), gamma.data(), beta.data(), N,
                                      H, 1e-5, false);
    const std::uint64_t seed = 1234, offset = static_cast<std::uint64_t>(step) * N * H;
    nnfast::cpu::dropout_forward<float>(hd.data(), hn.data(), N * H, p_drop, seed, offset);

    float loss = 0.f;
    nnfast::View2<float> hv{hd.data(), H, 1}, w2v{W2.data(), H, 1};
    if (step % 2 == 0) {
      nnfast::cpu::linear_cross_entropy_forward<float>(&loss, lse.data(), hv, w2v, b2.data(), y.data(), N, H, C, -100,
                                                  0.0, nnfast::Reduction::Mean, 4);
      std::fill(dW2.begin(), dW2.end(), 0.f);  // dW2 / db2 accumulate (nnfast/common.h): zero once per step
      std::fill(db2.begin(), db2.end(), 0.f);
      nnfast::cpu::linear_cross_entropy_backward<float>(dhd.data(), dW2.data(), db2.data(), nullptr, 1.f, lse.data(), hv,
                                                   w2v, b2.data(), y.data(), N, H, C, -100, 0.0,
                                                   nnfast::Reduction::Mean, 4);
    } else {
      nnfast::GemmEpilogue<float> ep2;
      ep2.bias = b2.data();
      nnfast::cpu::gemm<float>(N, C, H, 1.f, hd.data(), H, 1, W2.data(), 1, H, 0.f, logits.data(), C, 1, ep2);
      nnfast::View3<float> xv{logits.data(), C, 1, 0};
      nnfast::cpu::cross_entropy_forward<float>(&loss, dlogits.data(), xv, target, nullptr, N, C, 1, -100, 0.1,
                                           nnfast::Reduction::Mean);
      // beta = 0 / accumulate = false: this caller asks for overwritten dW2 / db2 (no zeroing needed).
      nnfast::cpu::gemm<float>(C, H, N, 1.f, dlogits.data(), 1, C, hd.data(), H, 1, 0.f, dW2.data(), H, 1);
      nnfast::cpu::bias_grad<float>(db2.data(), dlogits.data(), C, 1, N, C, false);
      nnfast::cpu::gemm<float>(N, H, C, 1.f, dlogits.data(), C, 1, W2.data(), H, 1, 0.f, dhd.data(), H, 1);
    }
    if (!std::isfinite(loss)) {
      std::fprintf(stderr, "FAIL: non-finite loss at step %lld\n", static_cast<long long>(step));
      return 1;
    }
    if (step == 1) first_loss = loss;
    last_loss = loss;

    // ---- backward
    nnfast::cpu::dropout_backward<float>(dhn.data(), dhd.data(), N * H, p_drop, seed, offset);
    std::fill(dgamma.begin(), dgamma.end(), 0.f);  // parameter gradients accumulate
    std::fill(dbeta.begin(), dbeta.end(), 0.f);
    nnfast::cpu::layer_norm_backward<float>(dh1.data(), dgamma.data(), dbeta.data(), dhn.data(), h1.data(), mean.data(),
                                       rstd.data(), gamma.data(), N, H, false);
    nnfast::cpu::act_backward<float>(dz1.data(), dh1.data(), z1.data(), N * H, nnfast::Act::GELU, nnfast::ActParams{});
    nnfast::cpu::gemm<float>(H, IN, N, 1.f, dz1.data(), 1, H, X.data(), IN, 1, 0.f, dW1.data(), IN, 1);
    nnfast::cpu::bias_grad<float>(db1.data(), dz1.data(), H, 1, N, H, false);

    // ---- clip the global gradient norm to 1, then one fused Adam step
    double norms[6];
    nnfast::cpu::multi_tensor_norm<float>(norms, grads, numel, 6, 2.0);
    const double total = nnfast::cpu::combine_norms(norms, 6, 2.0);
    if (total > 1.0) nnfast::cpu::multi_tensor_scale<float>(grads_w, numel, 6, 1.0 / (total + 1e-6));
    index_t steps[6] = {step, step, step, step, step, step};
    nnfast::cpu::adam_step<float>(params, mp, vp, nullptr, grads, steps, numel, 6, adam);

    for (size_t i = 0; i < dW2.size(); ++i) dW2d[i] = dW2[i];
    double ratio = 0;
    index_t st[1] = {step};
    nnfast::cpu::lamb_step<double>(&ratio, pd, md, vd, gd, st, nd, 1, lamb);

    if (step == WARM) heap_warm = heap_in_use();
    if (step == STEPS) heap_end = heap_in_use();
  }

  const long long growth = static_cast<long long>(heap_end) - static_cast<long long>(heap_warm);
  std::printf("loss %.4f -> %.4f over %lld steps; heap in use (%s): %zu bytes at step %lld, %zu at step %lld "
              "(growth %lld bytes)\n",
              first_loss, last_loss, static_cast<long long>(STEPS), kHeapCounter, heap_warm,
              static_cast<long long>(WARM), heap_end, static_cast<long long>(STEPS), growth);
  int fail = 0;
  if (!(last_loss < 0.5 * first_loss)) {
    std::fprintf(stderr, "FAIL: the model did not train (loss %.4f -> %.4f)\n", first_loss, last_loss);
    fail = 1;
  }
  // A leak of even one small block per step would add > 16 KB over 800 steps.
  if (growth > 16 * 1024) {
    std::fprintf(stderr, "FAIL: the heap grew by %lld bytes between step %lld and step %lld\n", growth,
                 static_cast<long long>(WARM), static_cast<long long>(STEPS));
    fail = 1;
  }
  if (!fail) std::printf("OK\n");
  return fail;
}

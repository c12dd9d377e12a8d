// Trains a 2-16-3 ReLU MLP on three Gaussian blobs with nnfast's C++ kernels:
// forward GEMM with fused bias+ReLU, fused softmax cross-entropy (loss and
// logits-gradient in one pass), backward GEMMs with transposes as strides,
// and a fused Adam step over all four parameter tensors in one call.
#include <nnfast/activation.h>
#include <nnfast/gemm.h>
#include <nnfast/loss.h>
#include <nnfast/optim.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

using nnfast::index_t;

int main() {
  const index_t N = 300, IN = 2, H = 16, C = 3;
  std::mt19937 gen(0);
  std::normal_distribution<float> noise(0.f, 0.6f);
  std::uniform_real_distribution<float> unif(-0.5f, 0.5f);

  // Data: three blobs around the corners of a triangle.
  const float cx[3] = {0.f, 2.f, -2.f}, cy[3] = {2.f, -1.f, -1.f};
  std::vector<float> X(N * IN);
  std::vector<std::int64_t> y(N);
  for (index_t i = 0; i < N; ++i) {
    y[i] = i % C;
    X[i * IN] = cx[y[i]] + noise(gen);
    X[i * IN + 1] = cy[y[i]] + noise(gen);
  }

  // Parameters in PyTorch's layout: W1 (H, IN), b1 (H), W2 (C, H), b2 (C).
  std::vector<float> W1(H * IN), b1(H, 0.f), W2(C * H), b2(C, 0.f);
  for (auto& w : W1) w = unif(gen) * 2.f / std::sqrt(float(IN));
  for (auto& w : W2) w = unif(gen) * 2.f / std::sqrt(float(H));
  std::vector<float> dW1(W1.size()), db1(H), dW2(W2.size()), db2(C);
  std::vector<float> h(N * H), logits(N * C), dlogits(N * C), dh(N * H);
  // Adam state, one entry per parameter tensor.
  float* params[4] = {W1.data(), b1.data(), W2.data(), b2.data()};
  const float* grads[4] = {dW1.data(), db1.data(), dW2.data(), db2.data()};
  index_t numel[4] = {H * IN, H, C * H, C};
  std::vector<std::vector<float>> m(4), v(4);
  float* mp[4];
  float* vp[4];
  for (int t = 0; t < 4; ++t) {
    m[t].assign(numel[t], 0.f);
    v[t].assign(numel[t], 0.f);
    mp[t] = m[t].data();
    vp[t] = v[t].data();
  }
  nnfast::AdamOptions adam;
  adam.lr = 0.05;

  nnfast::TargetView target{y.data(), 1, 0};
  for (index_t step = 1; step <= 100; ++step) {
    // Forward: h = relu(X W1^T + b1); logits = h W2^T + b2.
    nnfast::GemmEpilogue<float> ep1;
    ep1.bias = b1.data();
    ep1.act = nnfast::Act::ReLU;
    nnfast::cpu::gemm<float>(N, H, IN, 1.f, X.data(), IN, 1, W1.data(), 1, IN, 0.f, h.data(), H, 1, ep1);
    nnfast::GemmEpilogue<float> ep2;
    ep2.bias = b2.data();
    nnfast::cpu::gemm<float>(N, C, H, 1.f, h.data(), H, 1, W2.data(), 1, H, 0.f, logits.data(), C, 1, ep2);

    // Loss and d loss / d logits in one pass (mean reduction).
    float loss = 0.f;
    nnfast::View3<float> xv{logits.data(), C, 1, 0};
    nnfast::cpu::cross_entropy_forward<float>(&loss, dlogits.data(), xv, target, nullptr, N, C, 1, -100, 0.0,
                                         nnfast::Reduction::Mean);

    // Backward: dW2 = dlogits^T h, db2 = colsum(dlogits),
    // dh = (dlogits W2) * relu'(h) fused in the GEMM epilogue, dW1 = dh^T X, db1 = colsum(dh).
    // Parameter gradients accumulate by default (nnfast/common.h); here each is written once per
    // step, so the GEMM's beta = 0 and bias_grad's accumulate = false ask for overwrite instead
    // of zeroing dW / db first (norm and linear_cross_entropy kernels always accumulate).
    nnfast::cpu::gemm<float>(C, H, N, 1.f, dlogits.data(), 1, C, h.data(), H, 1, 0.f, dW2.data(), H, 1);
    nnfast::cpu::bias_grad<float>(db2.data(), dlogits.data(), C, 1, N, C, false);
    nnfast::GemmEpilogue<float> epb;
    epb.act = nnfast::Act::ReLU;
    epb.dact_src = h.data();
    epb.rs_dact = H;
    nnfast::cpu::gemm<float>(N, H, C, 1.f, dlogits.data(), C, 1, W2.data(), H, 1, 0.f, dh.data(), H, 1, epb);
    nnfast::cpu::gemm<float>(H, IN, N, 1.f, dh.data(), 1, H, X.data(), IN, 1, 0.f, dW1.data(), IN, 1);
    nnfast::cpu::bias_grad<float>(db1.data(), dh.data(), H, 1, N, H, false);

    // One fused Adam step over all parameters.
    index_t steps[4] = {step, step, step, step};
    nnfast::cpu::adam_step<float>(params, mp, vp, nullptr, grads, steps, numel, 4, adam);

    if (step == 1 || step % 20 == 0) {
      index_t correct = 0;
      for (index_t i = 0; i < N; ++i) {
        index_t best = 0;
        for (index_t c = 1; c < C; ++c)
          if (logits[i * C + c] > logits[i * C + best]) best = c;
        correct += best == y[i];
      }
      std::printf("step %3lld  loss %.4f  accuracy %.3f\n", static_cast<long long>(step), loss,
                  double(correct) / double(N));
    }
  }
  return 0;
}

// bf16 GEMM and conversions through the C++ API (the Python tests cover the binding).
//  1. core/bf16.h: every bf16 value round-trips; float32 -> bf16 equals a float64
//     round-to-nearest-even reference on 2^24 spread float32 values and on ties;
//     NaN stays NaN.
//  2. cpu::gemm_bf16 on every bf16 level this CPU has: float32 / bf16 operands with
//     row-major, column-major and strided layouts, a column-major C (cs_c != 1, which
//     the binding never passes), bf16 C, alpha / beta, bias + ReLU + aux, against a
//     float64 product of the bf16-rounded operands (bound: gamma_K of float32 sums).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/cpu_features.h"
#include "nnfast/gemm.h"

using namespace nnfast;
using index_t = nnfast::index_t;

static int g_fail = 0, g_checks = 0;
#define EXPECT(cond, ...)              \
  do {                                 \
    ++g_checks;                        \
    if (!(cond)) {                     \
      ++g_fail;                        \
      if (g_fail < 20) {               \
        std::printf("FAIL: " __VA_ARGS__); \
        std::printf("\n");             \
      }                                \
    }                                  \
  } while (0)

static float from_bits(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Nearest bf16 of a finite float by float64 comparison of the two neighbours; ties to even.
static std::uint16_t rne_ref(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  const std::uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
  const double dx = x, dlo = from_bits(lo);
  // The upper neighbour of the largest finite bf16 magnitude is infinity (exponent all ones).
  const double dhi = ((hi & 0x7f800000u) == 0x7f800000u) ? std::ldexp(std::copysign(1.0, dx), 128)
                                                          : double(from_bits(hi));
  const double elo = std::fabs(dx - dlo), ehi = std::fabs(dhi - dx);
  if (elo < ehi) return std::uint16_t(lo >> 16);
  if (ehi < elo) return std::uint16_t(hi >> 16);
  return (lo >> 16) & 1u ? std::uint16_t(hi >> 16) : std::uint16_t(lo >> 16);
}

static void check_conversions() {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float x = bf16_to_float(std::uint16_t(h));
    if (std::isnan(x)) EXPECT(std::isnan(bf16_to_float(float_to_bf16(x))), "NaN %04x not kept", h);
    else EXPECT(float_to_bf16(x) == h, "bf16 %04x does not round-trip", h);
  }
  for (std::uint64_t i = 0; i < (1u << 24); ++i) {
    const std::uint32_t u = std::uint32_t(i * 0x9E3779B1ull);  // spread over all 2^32 patterns
    const float x = from_bits(u);
    if (std::isnan(x)) {
      EXPECT(std::isnan(bf16_to_float(float_to_bf16(x))), "NaN %08x became a number", u);
      continue;
    }
    if (std::isinf(x)) continue;
    EXPECT(float_to_bf16(x) == rne_ref(x), "RNE of %08x: got %04x want %04x", u, float_to_bf16(x), rne_ref(x));
  }
  // Exact ties: 1 + 2^-8 -> 1 (even), 1 + 3 * 2^-8 -> 1 + 2^-6.
  EXPECT(float_to_bf16(1.0f + 0.00390625f) == 0x3f80, "tie to even (down)");
  EXPECT(float_to_bf16(1.0f + 3 * 0.00390625f) == 0x3f82, "tie to even (up)");
  EXPECT(float_to_bf16(3.4e38f) == 0x7f80, "overflow to +inf");
}

struct Operand {
  std::vector<float> f;
  std::vector<bf16_t> h;
  std::vector<double> rounded;  // dense row-major, bf16-rounded values
  GemmMat mat;
};

// rows x cols with layout 0 row-major, 1 column-major, 2 strided; bf16 or float32 storage.
static Operand make(index_t rows, index_t cols, int layout, bool bf16, std::mt19937& rng) {
  Operand o;
  index_t rs = cols, cs = 1, size = rows * cols;
  if (layout == 1) { rs = 1; cs = rows; }
  if (layout == 2) { rs = 3 * cols + 1; cs = 3; size = rows * rs; }
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  o.f.assign(size_t(size), 0.0f);
  o.h.assign(size_t(size), 0);
  o.rounded.assign(size_t(rows * cols), 0.0);
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      const float x = d(rng);
      o.f[size_t(i * rs + j * cs)] = x;
      o.h[size_t(i * rs + j * cs)] = float_to_bf16(x);
      o.rounded[size_t(i * cols + j)] = round_to_bf16(x);
    }
  o.mat = bf16 ? GemmMat{o.h.data(), ElemType::BF16, rs, cs} : GemmMat{o.f.data(), ElemType::F32, rs, cs};
  return o;
}

static void check_gemm(index_t M, index_t N, index_t K, int la, int lb, bool a16, bool b16, bool c16, bool c_col,
                       float alpha, float beta, bool epi, std::mt19937& rng) {
  Operand A = make(M, K, la, a16, rng), B = make(K, N, lb, b16, rng);
  const index_t rs_c = c_col ? 1 : N, cs_c = c_col ? M : 1;
  std::vector<float> Cf(size_t(M * N));
  std::vector<bf16_t> Ch(size_t(M * N));
  std::vector<double> C0(size_t(M * N));
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (index_t i = 0; i < M * N; ++i) {
    const float x = d(rng);
    Cf[size_t(i)] = round_to_bf16(x);
    Ch[size_t(i)] = float_to_bf16(x);
    C0[size_t(i)] = round_to_bf16(x);  // C0 at storage position i
  }
  std::vector<float> bias(static_cast<size_t>(N));
  std::vector<float> aux(static_cast<size_t>(M * N), -7.0f);
  for (auto& b : bias) b = d(rng);
  GemmBf16Epilogue ep;
  if (epi) {
    ep.bias = bias.data();
    ep.act = Act::ReLU;
    ep.aux = aux.data();
    ep.rs_aux = N;
  }
  void* C = c16 ? static_cast<void*>(Ch.data()) : static_cast<void*>(Cf.data());
  cpu::gemm_bf16(M, N, K, alpha, A.mat, B.mat, beta, C, c16 ? ElemType::BF16 : ElemType::F32, rs_c, cs_c, ep);
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double z = 0, mag = 0;
      for (index_t k = 0; k < K; ++k) {
        const double p = A.rounded[size_t(i * K + k)] * B.rounded[size_t(k * N + j)];
        z += p;
        mag += std::fabs(p);
      }
      const size_t at = size_t(i * rs_c + j * cs_c);
      z = alpha * z + (beta != 0.0f ? beta * C0[at] : 0.0);
      mag = std::fabs(alpha) * mag + std::fabs(beta) * std::fabs(C0[at]);
      double tol = (K + 4) * std::ldexp(1.0, -24) * mag + 1e-30;
      if (epi) {
        z += bias[size_t(j)];
        tol += std::ldexp(1.0, -23) * std::fabs(z);
        EXPECT(std::fabs(aux[size_t(i * N + j)] - z) <= tol, "aux M=%ld N=%ld K=%ld (%ld,%ld)", long(M), long(N),
               long(K), long(i), long(j));
        z = z > 0 ? z : 0;
      }
      if (c16) tol += std::ldexp(1.0, -8) * std::fabs(z);
      const double got = c16 ? bf16_to_float(Ch[at]) : Cf[at];
      EXPECT(std::fabs(got - z) <= tol, "gemm_bf16 M=%ld N=%ld K=%ld la=%d lb=%d a16=%d b16=%d c16=%d ccol=%d (%ld,%ld): "
             "got %.9g want %.9g", long(M), long(N), long(K), la, lb, a16, b16, c16, c_col, long(i), long(j), got, z);
    }
}

int main() {
  check_conversions();
  std::mt19937 rng(1234);
  const Bf16Level levels[] = {Bf16Level::Portable, Bf16Level::AVX512_BF16};
  const Bf16Level saved = active_bf16_level();
  const index_t shapes[][3] = {{1, 1, 1}, {7, 9, 5}, {13, 33, 17}, {40, 70, 1023}, {150, 37, 600}};
  for (Bf16Level lv : levels) {
    if (!bf16_level_supported(lv)) continue;
    force_bf16_level(lv);
    int n = 0;
    for (const auto& s : shapes)
      for (int la = 0; la < 3; ++la)
        for (int lb = 0; lb < 3; ++lb, ++n)
          check_gemm(s[0], s[1], s[2], la, lb, n % 2, (n / 2) % 2, (n / 3) % 2 == 1, n % 5 == 0,
                     n % 4 ? 1.0f : -1.5f, float(n % 3) * 0.5f, n % 7 == 0, rng);
    std::printf("level %s: done\n", bf16_level_name(lv));
  }
  force_bf16_level(saved);
  std::printf("%d checks, %d failures\n", g_checks, g_fail);
  return g_fail ? 1 : 0;
}

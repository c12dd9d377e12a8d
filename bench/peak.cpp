// Single-core FMA peak: 12 independent FMA chains (more than latency x pipes),
// written in inline asm so the loop is bound by FMA throughput only; and, where
// the CPU has AVX512-BF16, the same with vdpbf16ps on zmm (16 lanes x 2 bf16
// products = 64 flops per instruction), the bf16 GEMM's ceiling.
//   g++ -O2 bench/peak.cpp -o /tmp/peak && /tmp/peak          (x86-64, AVX2+FMA)
#include <chrono>
#include <cstdio>

static double run(long iters, bool f64) {
  auto t0 = std::chrono::steady_clock::now();
  if (!f64) {
    __asm__ volatile(
        "vxorps %%ymm0,%%ymm0,%%ymm0\n vxorps %%ymm1,%%ymm1,%%ymm1\n vxorps %%ymm2,%%ymm2,%%ymm2\n"
        "vxorps %%ymm3,%%ymm3,%%ymm3\n vxorps %%ymm4,%%ymm4,%%ymm4\n vxorps %%ymm5,%%ymm5,%%ymm5\n"
        "vxorps %%ymm6,%%ymm6,%%ymm6\n vxorps %%ymm7,%%ymm7,%%ymm7\n vxorps %%ymm8,%%ymm8,%%ymm8\n"
        "vxorps %%ymm9,%%ymm9,%%ymm9\n vxorps %%ymm10,%%ymm10,%%ymm10\n vxorps %%ymm11,%%ymm11,%%ymm11\n"
        "vxorps %%ymm12,%%ymm12,%%ymm12\n vxorps %%ymm13,%%ymm13,%%ymm13\n"
        "1:\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm0\n vfmadd231ps %%ymm12,%%ymm13,%%ymm1\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm2\n vfmadd231ps %%ymm12,%%ymm13,%%ymm3\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm4\n vfmadd231ps %%ymm12,%%ymm13,%%ymm5\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm6\n vfmadd231ps %%ymm12,%%ymm13,%%ymm7\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm8\n vfmadd231ps %%ymm12,%%ymm13,%%ymm9\n"
        "vfmadd231ps %%ymm12,%%ymm13,%%ymm10\n vfmadd231ps %%ymm12,%%ymm13,%%ymm11\n"
        "dec %0\n jnz 1b\n vzeroupper\n"
        : "+r"(iters)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc");
  } else {
    __asm__ volatile(
        "vxorpd %%ymm0,%%ymm0,%%ymm0\n vxorpd %%ymm1,%%ymm1,%%ymm1\n vxorpd %%ymm2,%%ymm2,%%ymm2\n"
        "vxorpd %%ymm3,%%ymm3,%%ymm3\n vxorpd %%ymm4,%%ymm4,%%ymm4\n vxorpd %%ymm5,%%ymm5,%%ymm5\n"
        "vxorpd %%ymm6,%%ymm6,%%ymm6\n vxorpd %%ymm7,%%ymm7,%%ymm7\n vxorpd %%ymm8,%%ymm8,%%ymm8\n"
        "vxorpd %%ymm9,%%ymm9,%%ymm9\n vxorpd %%ymm10,%%ymm10,%%ymm10\n vxorpd %%ymm11,%%ymm11,%%ymm11\n"
        "vxorpd %%ymm12,%%ymm12,%%ymm12\n vxorpd %%ymm13,%%ymm13,%%ymm13\n"
        "1:\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm0\n vfmadd231pd %%ymm12,%%ymm13,%%ymm1\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm2\n vfmadd231pd %%ymm12,%%ymm13,%%ymm3\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm4\n vfmadd231pd %%ymm12,%%ymm13,%%ymm5\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm6\n vfmadd231pd %%ymm12,%%ymm13,%%ymm7\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm8\n vfmadd231pd %%ymm12,%%ymm13,%%ymm9\n"
        "vfmadd231pd %%ymm12,%%ymm13,%%ymm10\n vfmadd231pd %%ymm12,%%ymm13,%%ymm11\n"
        "dec %0\n jnz 1b\n vzeroupper\n"
        : "+r"(iters)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "cc");
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 12 vdpbf16ps chains on zmm (the assembler takes the instruction whatever -m flags).
static double run_bf16(long iters) {
  auto t0 = std::chrono::steady_clock::now();
  __asm__ volatile(
      "vpxord %%zmm0,%%zmm0,%%zmm0\n vpxord %%zmm1,%%zmm1,%%zmm1\n vpxord %%zmm2,%%zmm2,%%zmm2\n"
      "vpxord %%zmm3,%%zmm3,%%zmm3\n vpxord %%zmm4,%%zmm4,%%zmm4\n vpxord %%zmm5,%%zmm5,%%zmm5\n"
      "vpxord %%zmm6,%%zmm6,%%zmm6\n vpxord %%zmm7,%%zmm7,%%zmm7\n vpxord %%zmm8,%%zmm8,%%zmm8\n"
      "vpxord %%zmm9,%%zmm9,%%zmm9\n vpxord %%zmm10,%%zmm10,%%zmm10\n vpxord %%zmm11,%%zmm11,%%zmm11\n"
      "vpxord %%zmm12,%%zmm12,%%zmm12\n vpxord %%zmm13,%%zmm13,%%zmm13\n"
      "1:\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm0\n vdpbf16ps %%zmm12,%%zmm13,%%zmm1\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm2\n vdpbf16ps %%zmm12,%%zmm13,%%zmm3\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm4\n vdpbf16ps %%zmm12,%%zmm13,%%zmm5\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm6\n vdpbf16ps %%zmm12,%%zmm13,%%zmm7\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm8\n vdpbf16ps %%zmm12,%%zmm13,%%zmm9\n"
      "vdpbf16ps %%zmm12,%%zmm13,%%zmm10\n vdpbf16ps %%zmm12,%%zmm13,%%zmm11\n"
      "dec %0\n jnz 1b\n vzeroupper\n"
      : "+r"(iters)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "cc");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main() {
  const long iters = 100000000;
  for (int f64 = 0; f64 < 2; ++f64) {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      double g = 2.0 * (f64 ? 4 : 8) * 12 * iters / run(iters, f64) * 1e-9;
      if (g > best) best = g;
    }
    std::printf("%s FMA peak (1 core, 256-bit): %.1f GFLOP/s\n", f64 ? "fp64" : "fp32", best);
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bf16")) {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      double g = 64.0 * 12 * iters / run_bf16(iters) * 1e-9;
      if (g > best) best = g;
    }
    std::printf("bf16 vdpbf16ps peak (1 core, 512-bit): %.1f GFLOP/s\n", best);
  } else {
    std::printf("bf16 vdpbf16ps peak: CPU has no AVX512-BF16\n");
  }
}

// Per-ISA GEMM kernels: compiled three times (NNFAST_ISA_NS = isa_generic,
// isa_avx2, isa_avx512) and picked at run time by gemm.cpp.
//
// The packing, blocking and micro-kernel logic is one template
// (cpu/gemm_internal.h); this file only supplies the vector traits and the
// tile / block sizes of each ISA. The AVX2 and AVX-512 traits are one macro
// over the intrinsic names, and the tests run the AVX-512 tile shapes (12 x 32
// fp32, 12 x 16 fp64) through the portable traits on machines without AVX-512.
#define NNFAST_GEMM_IMPL 1
#include "cpu/gemm_internal.h"
#include "core/env_switch.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nnfast::cpu {
namespace NNFAST_ISA_NS {
#include "cpu/transpose_isa.h"
namespace gemm_impl {

#if defined(__AVX2__)
// 8 x 8 fp32 and 4 x 4 fp64 transposes for the transposing B pack (AVX-512
// objects use them too: they are exact, and the pack is not the bottleneck).
template <>
struct TransposeBlock<float> {
  static constexpr int W = 8;
  static inline void run(const float* s, index_t lds, float* d, index_t ldd) {
    __m256 r0 = _mm256_loadu_ps(s + 0 * lds), r1 = _mm256_loadu_ps(s + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
    transpose8x8_store(r0, r1, r2, r3, r4, r5, r6, r7, d, ldd);
  }
  // 4 runs x 8 values -> 8 rows of 4: the runs a 12-row A panel has past its 8 x 8 block.
  static constexpr bool kQuad = true;
  static inline void run_quad(const float* s, index_t lds, float* d, index_t ldd) {
    __m128 a0 = _mm_loadu_ps(s), a1 = _mm_loadu_ps(s + lds), a2 = _mm_loadu_ps(s + 2 * lds);
    __m128 a3 = _mm_loadu_ps(s + 3 * lds), b0 = _mm_loadu_ps(s + 4), b1 = _mm_loadu_ps(s + lds + 4);
    __m128 b2 = _mm_loadu_ps(s + 2 * lds + 4), b3 = _mm_loadu_ps(s + 3 * lds + 4);
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
    _MM_TRANSPOSE4_PS(b0, b1, b2, b3);
    _mm_storeu_ps(d + 0 * ldd, a0);
    _mm_storeu_ps(d + 1 * ldd, a1);
    _mm_storeu_ps(d + 2 * ldd, a2);
    _mm_storeu_ps(d + 3 * ldd, a3);
    _mm_storeu_ps(d + 4 * ldd, b0);
    _mm_storeu_ps(d + 5 * ldd, b1);
    _mm_storeu_ps(d + 6 * ldd, b2);
    _mm_storeu_ps(d + 7 * ldd, b3);
  }
};
template <>
struct TransposeBlock<double> {
  static constexpr int W = 4;
  static inline void run(const double* s, index_t lds, double* d, index_t ldd) {
    __m256d r0 = _mm256_loadu_pd(s + 0 * lds), r1 = _mm256_loadu_pd(s + 1 * lds);
    __m256d r2 = _mm256_loadu_pd(s + 2 * lds), r3 = _mm256_loadu_pd(s + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(d + 0 * ldd, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(d + 1 * ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(d + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(d + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
  }
};
#endif

// Vector traits (see gemm_internal.h) on x86 intrinsics. Every width and type
// spells the same seven operations as <prefix>_<op>_<suffix> (_mm512_fmadd_ps,
// _mm256_loadu_pd, ...), so one definition serves all four; a template cannot
// name an intrinsic by parts, hence the macro.
#define NNFAST_GEMM_X86_TRAITS(Name, Scalar, Reg, Lanes, PFX, SFX)                \
  struct Name {                                                                   \
    using T = Scalar;                                                             \
    using R = Reg;                                                                \
    static constexpr int W = Lanes;                                               \
    static inline R zero() { return PFX##_setzero_##SFX(); }                      \
    static inline R load(const T* p) { return PFX##_loadu_##SFX(p); }             \
    static inline void store(T* p, R v) { PFX##_storeu_##SFX(p, v); }             \
    static inline R set1(T x) { return PFX##_set1_##SFX(x); }                     \
    static inline R mul(R a, R b) { return PFX##_mul_##SFX(a, b); }               \
    static inline R add(R a, R b) { return PFX##_add_##SFX(a, b); }               \
    static inline R fma(R a, R b, R c) { return PFX##_fmadd_##SFX(a, b, c); }     \
  };

#if defined(__AVX512F__)
// 32 zmm registers: 24 accumulators + 2 B vectors + broadcasts.
NNFAST_GEMM_X86_TRAITS(VF, float, __m512, 16, _mm512, ps)
NNFAST_GEMM_X86_TRAITS(VD, double, __m512d, 8, _mm512, pd)
constexpr int MR_F = 12, NV_F = 2, MC_F = 144, KC_F = 256, NC_F = 4096;
constexpr int MR_D = 12, NV_D = 2, MC_D = 96, KC_D = 192, NC_D = 4096;
// The alternative tile: 8 rows x 3 vectors (24 accumulators, 3 B loads + 8 broadcasts per k).
#define NNFAST_GEMM_ALT_TILE 1
constexpr int MR_F2 = 8, NV_F2 = 3, MR_D2 = 8, NV_D2 = 3;

#elif defined(__AVX2__) && defined(__FMA__)
// 16 ymm registers: 12 accumulators + 2 B vectors + 1 broadcast.
NNFAST_GEMM_X86_TRAITS(VF, float, __m256, 8, _mm256, ps)
NNFAST_GEMM_X86_TRAITS(VD, double, __m256d, 4, _mm256, pd)
constexpr int MR_F = 6, NV_F = 2, MC_F = 144, KC_F = 256, NC_F = 4096;
constexpr int MR_D = 6, NV_D = 2, MC_D = 72, KC_D = 256, NC_D = 4096;

#else
// Portable: 128-bit vectors (SSE2 on x86-64, NEON on ARM).
using VF = VecExt<float, 4>;
using VD = VecExt<double, 2>;
constexpr int MR_F = 6, NV_F = 2, MC_F = 120, KC_F = 256, NC_F = 4096;
constexpr int MR_D = 6, NV_D = 2, MC_D = 96, KC_D = 192, NC_D = 4096;
#endif
#undef NNFAST_GEMM_X86_TRAITS

#if defined(__AVX512F__) && defined(__x86_64__)
// The 12 x 32 fp32 tile in inline asm (NNFAST_GEMM_ASM_TILE=0: the intrinsics template).
// GCC's code for the template keeps some accumulators moving between registers (extra
// moves per k step); here zmm0-23 hold the tile for the whole loop, zmm24/25 the B row and
// zmm26/27 the A broadcasts, so a k step is exactly 2 loads + 12 broadcasts + 24 FMAs.
// acc += b * a, k in order: the same FMAs as MicroKernel::compute (same bits).
#define NNF_ROW(U, R, C0, C1, Z)                                   \
  "vbroadcastss " #U "*48+" #R "*4(%[a]), %%zmm" #Z "\n\t"           \
  "vfmadd231ps %%zmm" #Z ", %%zmm24, %%zmm" #C0 "\n\t"               \
  "vfmadd231ps %%zmm" #Z ", %%zmm25, %%zmm" #C1 "\n\t"
#define NNF_STEP(U)                                                                       \
  "vmovups " #U "*128(%[b]), %%zmm24\n\t"                                                 \
  "vmovups " #U "*128+64(%[b]), %%zmm25\n\t"                                              \
  NNF_ROW(U, 0, 0, 1, 26) NNF_ROW(U, 1, 2, 3, 27) NNF_ROW(U, 2, 4, 5, 26)                 \
  NNF_ROW(U, 3, 6, 7, 27) NNF_ROW(U, 4, 8, 9, 26) NNF_ROW(U, 5, 10, 11, 27)               \
  NNF_ROW(U, 6, 12, 13, 26) NNF_ROW(U, 7, 14, 15, 27) NNF_ROW(U, 8, 16, 17, 26)           \
  NNF_ROW(U, 9, 18, 19, 27) NNF_ROW(U, 10, 20, 21, 26) NNF_ROW(U, 11, 22, 23, 27)
#define NNF_Z2(X, Y) "vpxord %%zmm" #X ", %%zmm" #X ", %%zmm" #X "\n\tvpxord %%zmm" #Y ", %%zmm" #Y ", %%zmm" #Y "\n\t"
#define NNF_S2(X, Y) "vmovups %%zmm" #X ", (%[c])\n\tvmovups %%zmm" #Y ", 64(%[c])\n\tadd %[rs], %[c]\n\t"
// zmm0-23: the accumulators of both asm tiles, zeroed before the k loop.
#define NNF_ZERO_ACC24 NNF_Z2(0, 1) NNF_Z2(2, 3) NNF_Z2(4, 5) NNF_Z2(6, 7) NNF_Z2(8, 9) NNF_Z2(10, 11) \
  NNF_Z2(12, 13) NNF_Z2(14, 15) NNF_Z2(16, 17) NNF_Z2(18, 19) NNF_Z2(20, 21) NNF_Z2(22, 23)
#define NNF_A2(X, Y)                                                                     \
  "vaddps (%[c]), %%zmm" #X ", %%zmm" #X "\n\tvaddps 64(%[c]), %%zmm" #Y ", %%zmm" #Y "\n\t" \
  NNF_S2(X, Y)
template <>
struct FastTile<VF, 12, 2> {
  static constexpr bool kPacked = true, kDirectA = false;
  static void run_da(index_t, const float*, const float*, float*, index_t, bool, index_t, index_t) {}
  static bool on() {
    static const bool v = env_switch_on("NNFAST_GEMM_ASM_TILE");
    return v;
  }
  // c (row stride rs_c) = tile, or c + tile when add: MicroKernel::store's alpha = 1, beta = 0 / 1
  // without the tile's round trip through memory (1 * t and fma(1, t, c) = t + c: same bits).
  __attribute__((noinline)) static void run(index_t kc, const float* a, const float* b, float* c, index_t rs_c,
                                            bool add) {
    index_t n4 = kc / 4, rem = kc % 4, rs = rs_c * index_t(sizeof(float)), addf = add;
    asm volatile(
        NNF_ZERO_ACC24
        "test %[n4], %[n4]\n\t"
        "jz 2f\n\t"
        ".p2align 5\n"
        "1:\n\t"
        // One B line 4 k steps ahead per iteration. Three A-panel prefetches (A streams from L2)
        // measured no better on the loaded test machine (the L2 streamer follows packed panels).
        "prefetcht0 512(%[b])\n\t"
        NNF_STEP(0) NNF_STEP(1) NNF_STEP(2) NNF_STEP(3)
        "add $192, %[a]\n\t"
        "add $512, %[b]\n\t"
        "dec %[n4]\n\t"
        "jnz 1b\n"
        "2:\n\t"
        "test %[rem], %[rem]\n\t"
        "jz 4f\n"
        "3:\n\t"
        NNF_STEP(0)
        "add $48, %[a]\n\t"
        "add $128, %[b]\n\t"
        "dec %[rem]\n\t"
        "jnz 3b\n"
        "4:\n\t"
        "test %[add], %[add]\n\t"
        "jz 5f\n\t"
        NNF_A2(0, 1) NNF_A2(2, 3) NNF_A2(4, 5) NNF_A2(6, 7) NNF_A2(8, 9) NNF_A2(10, 11)
        NNF_A2(12, 13) NNF_A2(14, 15) NNF_A2(16, 17) NNF_A2(18, 19) NNF_A2(20, 21) NNF_A2(22, 23)
        "jmp 6f\n"
        "5:\n\t"
        NNF_S2(0, 1) NNF_S2(2, 3) NNF_S2(4, 5) NNF_S2(6, 7) NNF_S2(8, 9) NNF_S2(10, 11)
        NNF_S2(12, 13) NNF_S2(14, 15) NNF_S2(16, 17) NNF_S2(18, 19) NNF_S2(20, 21) NNF_S2(22, 23)
        "6:\n\t"
        : [a] "+r"(a), [b] "+r"(b), [n4] "+r"(n4), [rem] "+r"(rem), [c] "+r"(c)
        : [rs] "r"(rs), [add] "r"(addf)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
          "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27");
  }
};
// The 8 x 48 tile (the alternative tile) with A read in place (A(r, k) = a[r * ars + k * acs]):
// GCC's code for it reloads row offsets from the stack and moves accumulators; here rows
// 0-7 are (a0, a3, a6) + {0, 1, 2} * ars, so the step needs no spilled index.
#define NNF_DROW(ADDR, C0, C1, C2, Z)                    \
  "vbroadcastss " ADDR ", %%zmm" #Z "\n\t"               \
  "vfmadd231ps %%zmm" #Z ", %%zmm24, %%zmm" #C0 "\n\t"   \
  "vfmadd231ps %%zmm" #Z ", %%zmm25, %%zmm" #C1 "\n\t"   \
  "vfmadd231ps %%zmm" #Z ", %%zmm26, %%zmm" #C2 "\n\t"
#define NNF_DSTEP                                                                                  \
  "vmovups (%[b]), %%zmm24\n\tvmovups 64(%[b]), %%zmm25\n\tvmovups 128(%[b]), %%zmm26\n\t"          \
  NNF_DROW("(%[a0])", 0, 1, 2, 27) NNF_DROW("(%[a0],%[s],1)", 3, 4, 5, 28)                          \
  NNF_DROW("(%[a0],%[s],2)", 6, 7, 8, 27) NNF_DROW("(%[a3])", 9, 10, 11, 28)                        \
  NNF_DROW("(%[a3],%[s],1)", 12, 13, 14, 27) NNF_DROW("(%[a3],%[s],2)", 15, 16, 17, 28)             \
  NNF_DROW("(%[a6])", 18, 19, 20, 27) NNF_DROW("(%[a6],%[s],1)", 21, 22, 23, 28)                    \
  "add %[cs], %[a0]\n\tadd %[cs], %[a3]\n\tadd %[cs], %[a6]\n\tadd $192, %[b]\n\t"
#define NNF_S3(X, Y, Z) \
  "vmovups %%zmm" #X ", (%[c])\n\tvmovups %%zmm" #Y ", 64(%[c])\n\tvmovups %%zmm" #Z ", 128(%[c])\n\tadd %[rs], %[c]\n\t"
#define NNF_A3(X, Y, Z)                                                                     \
  "vaddps (%[c]), %%zmm" #X ", %%zmm" #X "\n\tvaddps 64(%[c]), %%zmm" #Y ", %%zmm" #Y "\n\t" \
  "vaddps 128(%[c]), %%zmm" #Z ", %%zmm" #Z "\n\t" NNF_S3(X, Y, Z)
template <>
struct FastTile<VF, 8, 3> {
  static constexpr bool kPacked = false, kDirectA = true;
  static bool on() { return FastTile<VF, 12, 2>::on(); }
  static void run(index_t, const float*, const float*, float*, index_t, bool) {}
  __attribute__((noinline)) static void run_da(index_t kc, const float* a, const float* b, float* c, index_t rs_c,
                                               bool add, index_t ars, index_t acs) {
    const float* a3 = a + 3 * ars;
    const float* a6 = a + 6 * ars;
    index_t n2 = kc / 2, rem = kc % 2, rs = rs_c * index_t(sizeof(float)), addf = add;
    const index_t s = ars * index_t(sizeof(float)), cs = acs * index_t(sizeof(float));
    asm volatile(
        NNF_ZERO_ACC24
        "test %[n2], %[n2]\n\t"
        "jz 2f\n\t"
        ".p2align 5\n"
        "1:\n\t"
        NNF_DSTEP NNF_DSTEP
        "dec %[n2]\n\t"
        "jnz 1b\n"
        "2:\n\t"
        "test %[rem], %[rem]\n\t"
        "jz 4f\n\t"
        NNF_DSTEP
        "4:\n\t"
        "test %[add], %[add]\n\t"
        "jz 5f\n\t"
        NNF_A3(0, 1, 2) NNF_A3(3, 4, 5) NNF_A3(6, 7, 8) NNF_A3(9, 10, 11) NNF_A3(12, 13, 14)
        NNF_A3(15, 16, 17) NNF_A3(18, 19, 20) NNF_A3(21, 22, 23)
        "jmp 6f\n"
        "5:\n\t"
        NNF_S3(0, 1, 2) NNF_S3(3, 4, 5) NNF_S3(6, 7, 8) NNF_S3(9, 10, 11) NNF_S3(12, 13, 14)
        NNF_S3(15, 16, 17) NNF_S3(18, 19, 20) NNF_S3(21, 22, 23)
        "6:\n\t"
        : [a0] "+r"(a), [a3] "+r"(a3), [a6] "+r"(a6), [b] "+r"(b), [n2] "+r"(n2), [c] "+r"(c)
        : [rs] "r"(rs), [add] "r"(addf), [rem] "r"(rem), [s] "r"(s), [cs] "r"(cs)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
          "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28");
  }
};
#undef NNF_DROW
#undef NNF_DSTEP
#undef NNF_S3
#undef NNF_A3
#undef NNF_ROW
#undef NNF_STEP
#undef NNF_ZERO_ACC24
#undef NNF_Z2
#undef NNF_S2
#undef NNF_A2
#endif
// Dot tiles (dot_rows): 4 x 5 (20 accumulators + 4 A vectors + 1 B; N = 10 in two column
// blocks) where there are 32 registers, 2 x 4 with 16.
#if defined(__AVX512F__)
constexpr int kDotRM = 4, kDotNJ = 5;
#else
constexpr int kDotRM = 2, kDotNJ = 4;
#endif

}  // namespace gemm_impl

namespace {
template <typename T>
gemm_detail::GemmOps<T> make_gemm_ops() {
  using namespace gemm_impl;
  gemm_detail::GemmOps<T> o;
  if constexpr (sizeof(T) == 4) {
    o.blocking = {MR_F, NV_F * VF::W, MC_F, KC_F, NC_F};
    o.block = &gemm_impl::gemm_block<VF, MR_F, NV_F, MC_F, KC_F, NC_F>;
    o.pack_a_all = &gemm_impl::pack_a_all<T, MR_F, KC_F>;
    o.pack_b_all = &gemm_impl::pack_b_all<T, NV_F * VF::W, KC_F>;
  } else {
    o.blocking = {MR_D, NV_D * VD::W, MC_D, KC_D, NC_D};
    o.block = &gemm_impl::gemm_block<VD, MR_D, NV_D, MC_D, KC_D, NC_D>;
    o.pack_a_all = &gemm_impl::pack_a_all<T, MR_D, KC_D>;
    o.pack_b_all = &gemm_impl::pack_b_all<T, NV_D * VD::W, KC_D>;
  }
  if constexpr (sizeof(T) == 4)
    o.dot_rows = &gemm_impl::dot_rows<VF, kDotRM, kDotNJ>;
  else
    o.dot_rows = &gemm_impl::dot_rows<VD, kDotRM, kDotNJ>;
  o.blocking.nw = sizeof(T) == 4 ? VF::W : VD::W;
  o.alt_blocking = o.blocking;
  o.alt_block = nullptr;
  o.alt_pack_a_all = o.pack_a_all;
  o.alt_pack_b_all = o.pack_b_all;
#ifdef NNFAST_GEMM_ALT_TILE
  // Same KC as the main tile (so the same K blocks: same bits), MC a multiple of both MRs.
  if constexpr (sizeof(T) == 4) {
    o.alt_blocking = {MR_F2, NV_F2 * VF::W, MC_F, KC_F, NC_F, VF::W};
    o.alt_block = &gemm_impl::gemm_block<VF, MR_F2, NV_F2, MC_F, KC_F, NC_F>;
    o.alt_pack_a_all = &gemm_impl::pack_a_all<T, MR_F2, KC_F>;
    o.alt_pack_b_all = &gemm_impl::pack_b_all<T, NV_F2 * VF::W, KC_F>;
  } else {
    o.alt_blocking = {MR_D2, NV_D2 * VD::W, MC_D, KC_D, NC_D, VD::W};
    o.alt_block = &gemm_impl::gemm_block<VD, MR_D2, NV_D2, MC_D, KC_D, NC_D>;
    o.alt_pack_a_all = &gemm_impl::pack_a_all<T, MR_D2, KC_D>;
    o.alt_pack_b_all = &gemm_impl::pack_b_all<T, NV_D2 * VD::W, KC_D>;
  }
#endif
  return o;
}
}  // namespace

NNFAST_ISA_TABLE_T(gemm_detail::GemmOps, make_gemm_ops)

}  // namespace NNFAST_ISA_NS
}  // namespace nnfast::cpu

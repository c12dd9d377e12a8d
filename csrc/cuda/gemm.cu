// CUDA GEMM with the CPU's fused epilogues (nnfast/cuda/gemm.h), and bias_grad.
//
// SIMT kernel (the default, and what the emulation tests run): each block computes a
// BM x BN tile of C with NT = (BM/TM) * (BN/TN) threads; each thread owns a TM x TN
// register micro-tile (contiguous rows / columns). K is walked in BK slices through
// double-buffered shared-memory tiles stored k-major (As[k][m], Bs[k][n]), so the inner
// product reads TM + TN values per k and does TM * TN FMAs. One barrier per K slice:
// the next slice is fetched from global memory into registers before the FMAs on the
// current one and written to the other buffer after them.
//
// Global loads (TileLoader): each thread fetches BM * BK / NT elements per operand in
// 16-byte chunks (4 floats / 2 doubles) along whichever dimension has unit stride. A
// chunk is a single vector load when that stride is 1, the other stride is a multiple
// of the chunk, the base pointer is 16-byte aligned and the chunk lies inside the
// matrix; otherwise (ragged edges, arbitrary strides) it is read element by element
// with bounds checks, zero-filling outside the matrix.
//
// Configurations: float 128x128x8 with 8x8 micro-tiles (256 threads) for large
// problems, 64x64x16 with 4x4 (256 threads) for small ones and for double.
//
// Epilogue (per element, same order as csrc/cpu/gemm.cpp):
//   v = alpha * acc + beta * C   (beta == 0: C is never read; alpha == 0: no K loop)
//   forward:  z = v + bias[j]; aux[i, j] = z; C = act(z)
//   backward: C = v * act'(dact_src[i, j])   (bias and aux ignored)
// The activation formulas are those of core/vec_math.h (vm::act_fwd / act_grad) written
// with the scalar math of core/math_scalar.h; see ActDev below.
//
// Tensor-core path (float only, UNVERIFIED: it has not run on a GPU): TF32
// mma.sync.m16n8k8 with the same loader and epilogue; the PTX is compiled by nvcc for
// sm_80+ only, and the emulation build substitutes a software model of the instruction
// (so its indexing is tested). Used only when enabled (NNFAST_CUDA_TF32=1 or
// gemm_set_tf32(true)) on an sm_80+ device.
#include "core/bf16.h"
#include "core/gemm_operands.h"
#include "cuda/common.cuh"
#include "nnfast/cuda/gemm.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nnfast::cuda {
namespace cugemm {

// ------------------------------------------------------------------ activations
// One specialisation per activation code: fwd(x) and grad(s), where s is the output y
// when act_grad_from_output(A) and the pre-activation x otherwise (nnfast/common.h).
// To add a code: specialise ActDev and add it to NNFAST_CUDA_GEMM_ACTS.
template <Act A, typename T>
struct ActDev;

template <typename T>
struct ActDev<Act::Identity, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return x; }
  static __device__ __forceinline__ T grad(T, T, T) { return T(1); }
};
template <typename T>
struct ActDev<Act::ReLU, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return x < T(0) ? T(0) : x; }  // NaN propagates
  static __device__ __forceinline__ T grad(T y, T, T) { return y > T(0) ? T(1) : T(0); }
};
template <typename T>
struct ActDev<Act::LeakyReLU, T> {
  static __device__ __forceinline__ T fwd(T x, T a, T) { return x > T(0) ? x : x * a; }
  static __device__ __forceinline__ T grad(T x, T a, T) { return x > T(0) ? T(1) : a; }
};
template <typename T>
struct ActDev<Act::ELU, T> {
  static __device__ __forceinline__ T fwd(T x, T a, T) { return x > T(0) ? x : scalar::expm1(x) * a; }
  static __device__ __forceinline__ T grad(T x, T a, T) { return x > T(0) ? T(1) : scalar::exp(x) * a; }
};
template <typename T>
struct ActDev<Act::Sigmoid, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return scalar::sigmoid(x); }
  static __device__ __forceinline__ T grad(T y, T, T) { return y * (T(1) - y); }
};
template <typename T>
struct ActDev<Act::Tanh, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return scalar::tanh(x); }
  static __device__ __forceinline__ T grad(T y, T, T) { return T(1) - y * y; }
};
template <typename T>
struct ActDev<Act::GELU, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return scalar::gelu(x); }
  static __device__ __forceinline__ T grad(T x, T, T) { return scalar::gelu_grad(x); }
};
template <typename T>
struct ActDev<Act::GELUTanh, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return scalar::gelu_tanh(x); }
  static __device__ __forceinline__ T grad(T x, T, T) { return scalar::gelu_tanh_grad(x); }
};
template <typename T>
struct ActDev<Act::SiLU, T> {
  static __device__ __forceinline__ T fwd(T x, T, T) { return scalar::silu(x); }
  static __device__ __forceinline__ T grad(T x, T, T) { return scalar::silu_grad(x); }
};
template <typename T>
struct ActDev<Act::Softplus, T> {  // a = beta, b = threshold
  static __device__ __forceinline__ T fwd(T x, T a, T b) { return scalar::softplus(x, a, b); }
  static __device__ __forceinline__ T grad(T x, T a, T b) {
    const T bx = x * a;
    return bx > b ? T(1) : scalar::sigmoid(bx);
  }
};
template <typename T>
struct ActDev<Act::Hardtanh, T> {  // a = min_val, b = max_val
  static __device__ __forceinline__ T fwd(T x, T a, T b) { return x < a ? a : (x > b ? b : x); }
  static __device__ __forceinline__ T grad(T x, T a, T b) { return (x > a && x < b) ? T(1) : T(0); }
};

// Every code the CUDA epilogue implements. The launcher rejects any other code with
// an error naming it, before anything is enqueued.
#define NNFAST_CUDA_GEMM_ACTS(X) \
  X(Identity) X(ReLU) X(LeakyReLU) X(ELU) X(Sigmoid) X(Tanh) X(GELU) X(GELUTanh) X(SiLU) X(Softplus) X(Hardtanh)

inline bool act_supported(Act act) {
  switch (act) {
#define NNFAST_X(name) case Act::name: return true;
    NNFAST_CUDA_GEMM_ACTS(NNFAST_X)
#undef NNFAST_X
    default: return false;
  }
}

// ActDev<code>::fwd(v), or with Grad ActDev<code>::grad(v), for the run-time code act.
template <bool Grad, typename T>
__device__ __noinline__ T act_apply(int act, T v, T a, T b) {
  switch (static_cast<Act>(act)) {
#define NNFAST_X(name)                                              \
  case Act::name:                                                   \
    if constexpr (Grad) return ActDev<Act::name, T>::grad(v, a, b); \
    else return ActDev<Act::name, T>::fwd(v, a, b);
    NNFAST_CUDA_GEMM_ACTS(NNFAST_X)
#undef NNFAST_X
    default: return Grad ? T(1) : v;  // unreachable: rejected by the launcher
  }
}

// ------------------------------------------------------------------ parameters
enum : int { kEpiNone = 0, kEpiForward = 1, kEpiBackward = 2 };
// Loader mode bits: kContigO = chunks run along the M (A) / N (B) dimension, else along K;
// kVec = whole in-bounds chunks may be read with one 16-byte load.
enum : int { kContigO = 1, kVec = 2 };

// The operands (core/gemm_operands.h, as the CPU's GemmArgs) with int sizes, then the epilogue.
template <typename T>
struct Params : GemmOperands<T, int> {
  const T* bias;
  T* aux;
  index_t rs_aux;
  const T* dact;
  index_t rs_dact;
  int act;
  T act_a, act_b;
  int epi;
  int mode_a, mode_b;
};

// Kernel parameters whose address is taken (the out-of-line epilogue gets a reference)
// stay in the constant bank instead of being copied to local memory.
#if NNFAST_EMULATED
#define NNFAST_GRID_CONSTANT
#else
#define NNFAST_GRID_CONSTANT __grid_constant__
#endif

// 16 bytes as one load.
#if NNFAST_EMULATED
template <typename T>
struct alignas(16) Vec16 {
  T v[16 / sizeof(T)];
};
template <typename T>
__device__ __forceinline__ void load16(T* dst, const T* src) {
  const Vec16<T> x = *reinterpret_cast<const Vec16<T>*>(src);
  for (int i = 0; i < int(16 / sizeof(T)); ++i) dst[i] = x.v[i];
}
#else
__device__ __forceinline__ void load16(float* dst, const float* src) {
  const float4 x = __ldg(reinterpret_cast<const float4*>(src));
  dst[0] = x.x; dst[1] = x.y; dst[2] = x.z; dst[3] = x.w;
}
__device__ __forceinline__ void load16(double* dst, const double* src) {
  const double2 x = __ldg(reinterpret_cast<const double2*>(src));
  dst[0] = x.x; dst[1] = x.y;
}
#endif

// ------------------------------------------------------------------ global -> shared tiles
// An O x BK tile of an operand whose element (o, k) is P[o * s_o + k * s_k] (A: o = row
// of C, B: o = column of C), staged in registers and stored k-major as S[k * PITCH + o].
template <typename T, int O, int BK, int NT, int PITCH>
struct TileLoader {
  static constexpr int VW = 16 / int(sizeof(T));
  static constexpr int L = O * BK / NT;  // elements per thread
  static constexpr int NC = L / VW;      // 16-byte chunks per thread
  static_assert(L % VW == 0 && NC >= 1, "tile too small for 16-byte chunks");
  static_assert(O % VW == 0 && BK % VW == 0, "tile dimensions must be multiples of the chunk");
  T r[L];

  __device__ __forceinline__ static void chunk(int mode, int c, int& kk, int& oo) {
    if (mode & kContigO) {
      kk = c / (O / VW);
      oo = (c % (O / VW)) * VW;
    } else {
      oo = c / (BK / VW);
      kk = (c % (BK / VW)) * VW;
    }
  }

  __device__ __forceinline__ void load(const T* P, index_t s_o, index_t s_k, int o0, int olim, int k0, int K,
                                       int mode, int tid) {
#pragma unroll
    for (int q = 0; q < NC; ++q) {
      int kk, oo;
      chunk(mode, tid + q * NT, kk, oo);
      const int go = o0 + oo, gk = k0 + kk;
      const bool along_o = (mode & kContigO) != 0;
      const bool full = along_o ? (go + VW <= olim && gk < K) : (go < olim && gk + VW <= K);
      if ((mode & kVec) && full) {
        load16(&r[q * VW], P + index_t(go) * s_o + index_t(gk) * s_k);
      } else {
#pragma unroll
        for (int v = 0; v < VW; ++v) {
          const int o = along_o ? go + v : go, k = along_o ? gk : gk + v;
          r[q * VW + v] = (o < olim && k < K) ? P[index_t(o) * s_o + index_t(k) * s_k] : T(0);
        }
      }
    }
  }

  __device__ __forceinline__ void store(T* S, int mode, int tid) const {
#pragma unroll
    for (int q = 0; q < NC; ++q) {
      int kk, oo;
      chunk(mode, tid + q * NT, kk, oo);
#pragma unroll
      for (int v = 0; v < VW; ++v) {
        if (mode & kContigO)
          S[kk * PITCH + oo + v] = r[q * VW + v];
        else
          S[(kk + v) * PITCH + oo] = r[q * VW + v];
      }
    }
  }
};

// ------------------------------------------------------------------ epilogue
template <typename T>
__device__ __forceinline__ T combine(const Params<T>& p, T acc, const T* c) {
  T v = p.alpha * acc;
  if (p.beta != T(0)) v += p.beta * *c;  // beta == 0: C is write-only
  return v;
}

// The fused part of the epilogue (bias / activation / aux, or the backward product),
// out of line so the unrolled micro-tile store stays small.
template <typename T>
__device__ __noinline__ T epilogue_fused(const Params<T>& p, int i, int j, T v) {
  if (p.epi == kEpiBackward) {
    const T s = p.dact[index_t(i) * p.rs_dact + j];
    return v * act_apply<true, T>(p.act, s, p.act_a, p.act_b);
  }
  if (p.bias) v += p.bias[j];
  if (p.aux) p.aux[index_t(i) * p.rs_aux + j] = v;
  return act_apply<false, T>(p.act, v, p.act_a, p.act_b);
}

template <typename T>
__device__ __forceinline__ void store_elem(const Params<T>& p, int i, int j, T acc) {
  if (i >= p.M || j >= p.N) return;
  T* c = p.C + index_t(i) * p.rs_c + index_t(j) * p.cs_c;
  T v = combine(p, acc, c);
  if (p.epi != kEpiNone) v = epilogue_fused(p, i, j, v);
  *c = v;
}

// ------------------------------------------------------------------ the K walk
// Both kernels walk K in BK slices through double-buffered k-major shared tiles (A: BM x
// BK, pitch PA; B: BN x BK, pitch PB). Slice t + 1 is fetched into registers before
// mma(as, bs) runs on slice t and written to the other buffer after it, so there is one
// barrier per slice. alpha == 0: no slice at all (C = beta C).
template <typename T, int BM, int BN, int BK, int NT, int PA, int PB, class Mma>
__device__ __forceinline__ void walk_k(const Params<T>& p, int m0, int n0, int tid, Mma&& mma) {
  __shared__ __align__(16) T As[2][BK * PA];
  __shared__ __align__(16) T Bs[2][BK * PB];
  TileLoader<T, BM, BK, NT, PA> la;
  TileLoader<T, BN, BK, NT, PB> lb;
  auto fetch = [&](int k0) {
    la.load(p.A, p.rs_a, p.cs_a, m0, p.M, k0, p.K, p.mode_a, tid);
    lb.load(p.B, p.cs_b, p.rs_b, n0, p.N, k0, p.K, p.mode_b, tid);
  };
  auto put = [&](int buf) {
    la.store(As[buf], p.mode_a, tid);
    lb.store(Bs[buf], p.mode_b, tid);
  };
  const int nk = p.alpha == T(0) ? 0 : (p.K + BK - 1) / BK;
  if (nk > 0) {
    fetch(0);
    put(0);
    __syncthreads();
  }
  for (int t = 0; t < nk; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < nk;
    if (more) fetch((t + 1) * BK);
    mma(static_cast<const T*>(As[cur]), static_cast<const T*>(Bs[cur]));
    if (more) put(cur ^ 1);
    __syncthreads();
  }
}

// ------------------------------------------------------------------ SIMT kernel
constexpr int kPadSimt = 4;  // keeps 16-byte row alignment, spreads k-major stores over banks

template <typename T, int BM, int BN, int BK, int TM, int TN>
struct SimtCfg {
  static constexpr int NTX = BN / TN, NTY = BM / TM, NT = NTX * NTY;
  static constexpr int PA = BM + kPadSimt, PB = BN + kPadSimt;
};

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2) gemm_simt_kernel(const NNFAST_GRID_CONSTANT Params<T> p) {
  using Cfg = SimtCfg<T, BM, BN, BK, TM, TN>;
  constexpr int NT = Cfg::NT, PA = Cfg::PA, PB = Cfg::PB;

  const int tid = threadIdx.x;
  const int tx = tid % Cfg::NTX, ty = tid / Cfg::NTX;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  T acc[TM][TN];
#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int c = 0; c < TN; ++c) acc[r][c] = T(0);

  walk_k<T, BM, BN, BK, NT, PA, PB>(p, m0, n0, tid, [&](const T* as, const T* bs) {
    as += ty * TM;
    bs += tx * TN;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T a[TM], b[TN];
#pragma unroll
      for (int r = 0; r < TM; ++r) a[r] = as[k * PA + r];
#pragma unroll
      for (int c = 0; c < TN; ++c) b[c] = bs[k * PB + c];
#pragma unroll
      for (int r = 0; r < TM; ++r)
#pragma unroll
        for (int c = 0; c < TN; ++c) acc[r][c] = fma(a[r], b[c], acc[r][c]);
    }
  });

#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int c = 0; c < TN; ++c) store_elem(p, m0 + ty * TM + r, n0 + tx * TN + c, acc[r][c]);
}

// ------------------------------------------------------------------ TF32 tensor-core kernel
// UNVERIFIED on hardware (never run on a GPU). 128x128x16 block tile, 8 warps as 2 (M) x 4
// (N), each a 64x32 warp tile of 4 x 4 mma.m16n8k8 (TF32 in, float accumulate). Same
// loader (k-major tiles, padded by 8 so fragment reads hit 32 distinct banks) and epilogue.
// nvcc compiles the PTX (sm_80+); the emulation build compiles the same kernel with a
// software model of cvt.rna.tf32 and of the m16n8k8 fragment layouts (warp shuffles), so
// the tiling, fragment indexing and epilogue mapping are tested without a GPU (the model
// encodes our reading of the PTX fragment tables; only a GPU run confirms it).
constexpr int kTcBM = 128, kTcBN = 128, kTcBK = 16, kTcNT = 256, kTcPad = 8;
#if NNFAST_EMULATED || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
#define NNFAST_GEMM_HAVE_TC 1
#else
#define NNFAST_GEMM_HAVE_TC 0
#endif

__device__ __forceinline__ unsigned to_tf32(float x) {
#if NNFAST_EMULATED
  // Round to nearest, ties away from zero, to a 10-bit mantissa (low 13 bits cleared).
  unsigned u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return u;
#else
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

// c += A(16x8, row) . B(8x8, col) for one warp; fragments as in the PTX ISA for
// mma.m16n8k8 .tf32: g = lane / 4, t = lane % 4;
//   a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4];
//   b0 = B[t][g], b1 = B[t+4][g];   c0,c1 = C[g][2t, 2t+1], c2,c3 = C[g+8][2t, 2t+1].
__device__ __forceinline__ void mma_tf32(float* c, const unsigned* a, const unsigned* b) {
#if NNFAST_EMULATED
  auto f = [](unsigned u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
  };
  // The warp's fragments meet in shared scratch (two __syncwarp per mma instead of
  // 32 shuffles per lane: the model is the slow part of the emulated kernel).
  __shared__ unsigned frag[kTcNT / 32][32][6];
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  unsigned(*w)[6] = frag[threadIdx.x >> 5];
  for (int i = 0; i < 4; ++i) w[lane][i] = a[i];
  w[lane][4] = b[0];
  w[lane][5] = b[1];
  __syncwarp();
  for (int kk = 0; kk < 4; ++kk) {
    const int sa = g * 4 + kk, sb0 = (2 * t) * 4 + kk, sb1 = (2 * t + 1) * 4 + kk;
    const float a_g_k = f(w[sa][0]), a_g8_k = f(w[sa][1]), a_g_k4 = f(w[sa][2]), a_g8_k4 = f(w[sa][3]);
    const float b_k_c0 = f(w[sb0][4]), b_k4_c0 = f(w[sb0][5]);
    const float b_k_c1 = f(w[sb1][4]), b_k4_c1 = f(w[sb1][5]);
    c[0] += a_g_k * b_k_c0 + a_g_k4 * b_k4_c0;
    c[1] += a_g_k * b_k_c1 + a_g_k4 * b_k4_c1;
    c[2] += a_g8_k * b_k_c0 + a_g8_k4 * b_k4_c0;
    c[3] += a_g8_k * b_k_c1 + a_g8_k4 * b_k4_c1;
  }
  __syncwarp();
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

__global__ void __launch_bounds__(kTcNT) gemm_tf32_kernel(const NNFAST_GRID_CONSTANT Params<float> p) {
#if NNFAST_GEMM_HAVE_TC
  constexpr int BM = kTcBM, BN = kTcBN, BK = kTcBK, NT = kTcNT;
  constexpr int PA = BM + kTcPad, PB = BN + kTcPad;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  float acc[4][4][4];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[a][b][e] = 0.f;

  walk_k<float, BM, BN, BK, NT, PA, PB>(p, m0, n0, tid, [&](const float* as, const float* bs) {
#pragma unroll
    for (int k8 = 0; k8 < BK; k8 += 8) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const int row = wm + mi * 16 + g;
        af[mi][0] = to_tf32(as[(k8 + tig) * PA + row]);
        af[mi][1] = to_tf32(as[(k8 + tig) * PA + row + 8]);
        af[mi][2] = to_tf32(as[(k8 + tig + 4) * PA + row]);
        af[mi][3] = to_tf32(as[(k8 + tig + 4) * PA + row + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int col = wn + ni * 8 + g;
        bf[ni][0] = to_tf32(bs[(k8 + tig) * PB + col]);
        bf[ni][1] = to_tf32(bs[(k8 + tig + 4) * PB + col]);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_tf32(acc[mi][ni], af[mi], bf[ni]);
    }
  });
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        store_elem(p, m0 + wm + mi * 16 + g + (e >> 1) * 8, n0 + wn + ni * 8 + tig * 2 + (e & 1), acc[mi][ni][e]);
#else
  __trap();  // compiled for sm_80+ only; the launcher never selects it below sm_80
#endif
}

// ------------------------------------------------------------------ host side
// Internal linkage: tests/cpp/test_cuda_gemm.cpp includes this file and also links the
// library, and two external definitions would be an ODR violation (ASan aborts on it).
namespace {
std::atomic<int> g_tf32{-1};       // -1: read NNFAST_CUDA_TF32 on first use
// Test hook: 0 = small SIMT, 1 = large SIMT, 2 = TF32 tensor cores (float; the emulator
// runs its software mma model), -1 = normal selection.
std::atomic<int> g_force_cfg{-1};
}  // namespace

inline int loader_mode(const void* P, index_t s_o, index_t s_k, int vw) {
  const bool aligned = (reinterpret_cast<std::uintptr_t>(P) % 16) == 0;
  if (s_o == 1 && s_k != 1) return kContigO | ((aligned && s_k % vw == 0) ? kVec : 0);
  if (s_k == 1) return (aligned && s_o % vw == 0) ? kVec : 0;
  // No unit stride: element loads, chunked along the smaller stride.
  return (s_o < 0 ? -s_o : s_o) < (s_k < 0 ? -s_k : s_k) ? kContigO : 0;
}

// Compute capability major of the current device (cached per device; 0 if unknown).
inline int device_cc_major() {
  static std::atomic<int> cached[64];  // zero-initialised: 0 = not queried, else major + 1
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return 0;
  }
  int v = cached[dev].load();
  if (v == 0) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    v = prop.major + 1;
    cached[dev].store(v);
  }
  return v - 1;
}

template <typename T, int BM, int BN, int BK, int TM, int TN>
void launch_simt(const Params<T>& p, cudaStream_t stream) {
  using Cfg = SimtCfg<T, BM, BN, BK, TM, TN>;
  const dim3 grid((p.M + BM - 1) / BM, (p.N + BN - 1) / BN);
  if (grid.y > 65535u) throw std::invalid_argument("nnfast::cuda::gemm: N too large for the grid");
  auto* kf = gemm_simt_kernel<T, BM, BN, BK, TM, TN>;
  NNFAST_LAUNCH(kf, grid, dim3(Cfg::NT), 0, stream)(p);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
bool try_tensor_cores(const Params<T>&, cudaStream_t) {
  return false;
}
template <>
bool try_tensor_cores<float>(const Params<float>& p, cudaStream_t stream) {
  if (g_force_cfg.load() != 2) {
    if (NNFAST_EMULATED || !gemm_tf32_enabled() || device_cc_major() < 8) return false;
  }
  const dim3 grid((p.M + kTcBM - 1) / kTcBM, (p.N + kTcBN - 1) / kTcBN);
  if (grid.y > 65535u) return false;
  NNFAST_LAUNCH(gemm_tf32_kernel, grid, dim3(kTcNT), 0, stream)(p);
  NNFAST_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace cugemm

void gemm_set_tf32(bool enable) { cugemm::g_tf32.store(enable ? 1 : 0); }

bool gemm_tf32_enabled() {
  int v = cugemm::g_tf32.load();
  if (v < 0) {
    const char* e = std::getenv("NNFAST_CUDA_TF32");
    v = (e && e[0] && std::strcmp(e, "0") != 0) ? 1 : 0;
    int expected = -1;
    if (!cugemm::g_tf32.compare_exchange_strong(expected, v)) v = expected;
  }
  return v == 1;
}

template <typename T>
void gemm(index_t M, index_t N, index_t K, T alpha, const T* A, index_t rs_a, index_t cs_a, const T* B,
          index_t rs_b, index_t cs_b, T beta, T* C, index_t rs_c, index_t cs_c, const GemmEpilogue<T>& ep,
          cudaStream_t stream) {
  using namespace cugemm;
  if (M <= 0 || N <= 0) return;
  if (!act_supported(ep.act))
    throw std::invalid_argument("nnfast::cuda::gemm: activation code " + std::to_string(static_cast<int>(ep.act)) +
                                " is not supported by the CUDA GEMM epilogue (csrc/cuda/gemm.cu, "
                                "NNFAST_CUDA_GEMM_ACTS)");
  constexpr index_t kMaxDim = 0x7fffffff;
  if (M > kMaxDim || N > kMaxDim || K > kMaxDim)
    throw std::invalid_argument("nnfast::cuda::gemm: dimensions above 2^31 - 1 are not supported");
  if (K < 0) K = 0;

  Params<T> p;
  static_cast<GemmOperands<T, int>&>(p) = {int(M), int(N), int(K), alpha, beta, A, rs_a, cs_a, B, rs_b, cs_b,
                                           C, rs_c, cs_c};
  p.bias = ep.bias;
  p.aux = ep.aux;
  p.rs_aux = ep.rs_aux;
  p.dact = ep.dact_src;
  p.rs_dact = ep.rs_dact;
  p.act = static_cast<int>(ep.act);
  p.act_a = T(ep.act_params.a);
  p.act_b = T(ep.act_params.b);
  if (ep.dact_src)
    p.epi = ep.act == Act::Identity ? kEpiNone : kEpiBackward;
  else
    p.epi = (ep.act == Act::Identity && !ep.bias && !ep.aux) ? kEpiNone : kEpiForward;
  constexpr int vw = 16 / int(sizeof(T));
  p.mode_a = loader_mode(A, rs_a, cs_a, vw);
  p.mode_b = loader_mode(B, cs_b, rs_b, vw);

  if (try_tensor_cores<T>(p, stream)) return;

  int cfg = g_force_cfg.load();
  if (cfg < 0) {
    // 128x128 tiles once there are enough of them to fill a large GPU (~132 SMs).
    const index_t tiles = ((M + 127) / 128) * ((N + 127) / 128);
    cfg = tiles >= 132 ? 1 : 0;
  }
  if constexpr (sizeof(T) == 4) {
    if (cfg == 1) {
      launch_simt<T, 128, 128, 8, 8, 8>(p, stream);
      return;
    }
  }
  launch_simt<T, 64, 64, 16, 4, 4>(p, stream);
}

// One launch of the GEMM per product, in batch order on one stream: the kernels take
// no batch offset, and a product's tiles already fill the GPU at the sizes batching
// is used for (attention heads). Deterministic as gemm.
template <typename T>
void gemm_batched(index_t batch, index_t M, index_t N, index_t K, T alpha, const T* A, index_t bs_a, index_t rs_a,
                  index_t cs_a, const T* B, index_t bs_b, index_t rs_b, index_t cs_b, T beta, T* C, index_t bs_c,
                  index_t rs_c, index_t cs_c, cudaStream_t stream) {
  for (index_t b = 0; b < batch; ++b)
    gemm<T>(M, N, K, alpha, A + b * bs_a, rs_a, cs_a, B + b * bs_b, rs_b, cs_b, beta, C + b * bs_c, rs_c, cs_c,
            GemmEpilogue<T>(), stream);
}

// ------------------------------------------------------------------ bias_grad
namespace cugemm {
constexpr int kBgCols = 32, kBgRows = 8;

// Block: 32 columns x 8 row-threads. Thread (x, y) sums rows y, y + 8, ... of its column
// in double, then the 8 partials are added in a fixed tree order: deterministic.
template <typename T>
__global__ void __launch_bounds__(kBgCols * kBgRows)
    bias_grad_kernel(T* dbias, const T* G, index_t rs, index_t cs, int M, int N, bool accumulate) {
  __shared__ double part[kBgRows][kBgCols + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int j = blockIdx.x * kBgCols + tx;
  double s = 0.0;
  if (j < N)
    for (int i = ty; i < M; i += kBgRows) s += double(G[index_t(i) * rs + index_t(j) * cs]);
  part[ty][tx] = s;
  __syncthreads();
#pragma unroll
  for (int st = kBgRows / 2; st > 0; st >>= 1) {
    if (ty < st) part[ty][tx] += part[ty + st][tx];
    __syncthreads();
  }
  if (ty == 0 && j < N) {
    const T sum = T(part[0][tx]);
    dbias[j] = accumulate ? dbias[j] + sum : sum;
  }
}
}  // namespace cugemm

template <typename T>
void bias_grad(T* dbias, const T* G, index_t rs_g, index_t cs_g, index_t M, index_t N, bool accumulate,
               cudaStream_t stream) {
  using namespace cugemm;
  if (N <= 0) return;
  if (M < 0) M = 0;
  if (M > 0x7fffffff || N > 0x7fffffff)
    throw std::invalid_argument("nnfast::cuda::bias_grad: dimensions above 2^31 - 1 are not supported");
  const dim3 grid(unsigned((N + kBgCols - 1) / kBgCols));
  auto* kf = bias_grad_kernel<T>;
  NNFAST_LAUNCH(kf, grid, dim3(kBgCols, kBgRows), 0, stream)(dbias, G, rs_g, cs_g, int(M), int(N), accumulate);
  NNFAST_CUDA_CHECK_LAUNCH();
}

#define NNFAST_INSTANTIATE(T)                                                                              \
  template void gemm<T>(index_t, index_t, index_t, T, const T*, index_t, index_t, const T*, index_t,       \
                        index_t, T, T*, index_t, index_t, const GemmEpilogue<T>&, cudaStream_t);           \
  template void bias_grad<T>(T*, const T*, index_t, index_t, index_t, index_t, bool, cudaStream_t);      \
  template void gemm_batched<T>(index_t, index_t, index_t, index_t, T, const T*, index_t, index_t, index_t, \
                                const T*, index_t, index_t, index_t, T, T*, index_t, index_t, index_t,    \
                                cudaStream_t);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

// ------------------------------------------------------------------ bf16 (portable path)
// precision="bf16" on the GPU: A and B rounded to bf16 into float32 device copies,
// the float32 GEMM above (same epilogue), then RNE stores to a bf16 C / aux. No
// bf16 tensor-core kernel yet: this is the reference path, as the CPU's portable one.
namespace cugemm {

// dst[i * cols + j] = element (i, j) of m as float32, rounded to bf16 when `round`.
__global__ void bf16_widen_kernel(float* dst, GemmMat m, index_t rows, index_t cols, int round) {
  const index_t n = rows * cols;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += index_t(gridDim.x) * blockDim.x) {
    const index_t i = t / cols, j = t % cols, off = i * m.rs + j * m.cs;
    const float x = m.type == ElemType::BF16 ? bf16_to_float(static_cast<const bf16_t*>(m.data)[off])
                                             : static_cast<const float*>(m.data)[off];
    dst[t] = round ? round_to_bf16(x) : x;
  }
}

// Dense row-major float32 rows x cols -> bf16 matrix (strides rs, cs), RNE.
__global__ void bf16_narrow_kernel(bf16_t* dst, index_t rs, index_t cs, const float* src, index_t rows,
                                   index_t cols) {
  const index_t n = rows * cols;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += index_t(gridDim.x) * blockDim.x)
    dst[(t / cols) * rs + (t % cols) * cs] = float_to_bf16(src[t]);
}

// A float32 device buffer for one call (cudaFree waits for the stream's work).
struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(index_t n) {
    if (n > 0) NNFAST_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(float)));
  }
  ~DeviceFloats() {
    if (p) cudaFree(p);
  }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
};

constexpr int kConvThreads = 256;

void widen(float* dst, const GemmMat& m, index_t rows, index_t cols, bool round, cudaStream_t stream) {
  if (rows * cols <= 0) return;
  NNFAST_LAUNCH(bf16_widen_kernel, grid_stride_blocks(rows * cols, kConvThreads), kConvThreads, 0, stream)(
      dst, m, rows, cols, round ? 1 : 0);
  NNFAST_CUDA_CHECK_LAUNCH();
}

void narrow(bf16_t* dst, index_t rs, index_t cs, const float* src, index_t rows, index_t cols, cudaStream_t stream) {
  if (rows * cols <= 0) return;
  NNFAST_LAUNCH(bf16_narrow_kernel, grid_stride_blocks(rows * cols, kConvThreads), kConvThreads, 0, stream)(
      dst, rs, cs, src, rows, cols);
  NNFAST_CUDA_CHECK_LAUNCH();
}

}  // namespace cugemm

void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const GemmMat& A, const GemmMat& B, float beta,
               void* C, ElemType c_type, index_t rs_c, index_t cs_c, const GemmBf16Epilogue& ep,
               cudaStream_t stream) {
  using namespace cugemm;
  if (M <= 0 || N <= 0) return;
  const index_t Kp = K > 0 ? K : 0;
  DeviceFloats a(M * Kp), b(Kp * N);
  widen(a.p, A, M, Kp, true, stream);
  widen(b.p, B, Kp, N, true, stream);
  const bool c_bf16 = c_type == ElemType::BF16;
  DeviceFloats c(c_bf16 ? M * N : 0);
  float* Cf = c_bf16 ? c.p : static_cast<float*>(C);
  const index_t rs_cf = c_bf16 ? N : rs_c, cs_cf = c_bf16 ? 1 : cs_c;
  if (c_bf16 && beta != 0.0f) widen(c.p, GemmMat{C, ElemType::BF16, rs_c, cs_c}, M, N, false, stream);
  GemmEpilogue<float> ef;
  ef.act = ep.act;
  ef.act_params = ep.act_params;
  const bool bias16 = ep.bias && ep.bias_type == ElemType::BF16;
  const bool aux16 = ep.aux && ep.aux_type == ElemType::BF16;
  const bool dact16 = ep.dact_src && ep.dact_type == ElemType::BF16;
  DeviceFloats bias(bias16 ? N : 0), aux(aux16 ? M * N : 0), dact(dact16 ? M * N : 0);
  if (ep.bias) {
    if (bias16) widen(bias.p, GemmMat{ep.bias, ElemType::BF16, 0, 1}, 1, N, false, stream);
    ef.bias = bias16 ? bias.p : static_cast<const float*>(ep.bias);
  }
  if (ep.aux) {
    ef.aux = aux16 ? aux.p : static_cast<float*>(ep.aux);
    ef.rs_aux = aux16 ? N : ep.rs_aux;
  }
  if (ep.dact_src) {
    if (dact16) widen(dact.p, GemmMat{ep.dact_src, ElemType::BF16, ep.rs_dact, 1}, M, N, false, stream);
    ef.dact_src = dact16 ? dact.p : static_cast<const float*>(ep.dact_src);
    ef.rs_dact = dact16 ? N : ep.rs_dact;
  }
  gemm<float>(M, N, K, alpha, a.p, Kp, 1, b.p, N, 1, beta, Cf, rs_cf, cs_cf, ef, stream);
  if (c_bf16) narrow(static_cast<bf16_t*>(C), rs_c, cs_c, c.p, M, N, stream);
  if (aux16) narrow(static_cast<bf16_t*>(ep.aux), ep.rs_aux, 1, aux.p, M, N, stream);
}

void gemm_bf16_batched(index_t batch, index_t M, index_t N, index_t K, float alpha, const GemmMat& A, index_t bs_a,
                       const GemmMat& B, index_t bs_b, float beta, void* C, ElemType c_type, index_t bs_c,
                       index_t rs_c, index_t cs_c, cudaStream_t stream) {
  const index_t sa = A.type == ElemType::BF16 ? 2 : 4, sb = B.type == ElemType::BF16 ? 2 : 4;
  const index_t sc = c_type == ElemType::BF16 ? 2 : 4;
  for (index_t i = 0; i < batch; ++i) {
    GemmMat Ai = A, Bi = B;
    Ai.data = static_cast<const char*>(A.data) + i * bs_a * sa;
    Bi.data = static_cast<const char*>(B.data) + i * bs_b * sb;
    gemm_bf16(M, N, K, alpha, Ai, Bi, beta, static_cast<char*>(C) + i * bs_c * sc, c_type, rs_c, cs_c,
              GemmBf16Epilogue(), stream);
  }
}

}  // namespace nnfast::cuda

// Real CUDA kernels run through nnfast's SIMT emulator (csrc/cuda/emu). The same
// source compiles with nvcc (ctest cuda_emu_nvcc_compile) and with the host
// compiler against the emulator (test_cuda_emu.cpp includes this file).
//
//   test_cuda_emu                      every positive test
//   test_cuda_emu --case NAME          one deliberately broken kernel (must fail)
//   test_cuda_emu --expect NAME abort|exit|fail TEXT...
//                                      runs `--case NAME` in a child process and
//                                      passes when it failed that way with TEXT in its output
//   test_cuda_emu --bench              emulator timings
#include "cuda_compat.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

// ============================================================== kernels
__global__ void saxpy(int n, float a, const float* __restrict__ x, float* __restrict__ y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

__device__ __forceinline__ float warp_sum_xor(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_sum_down(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// One block per row; blockDim.x a multiple of 32. Warp 0 alone finishes the
// reduction with a full mask (legal: all 32 lanes of warp 0 take part).
__global__ void __launch_bounds__(1024) row_sum(const float* __restrict__ x, float* __restrict__ out, int cols) {
  __shared__ float warp_sums[32];
  const float* row = x + static_cast<size_t>(blockIdx.x) * cols;
  float v = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) v += __ldg(row + c);
  v = warp_sum_xor(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    v = warp_sum_down(v);
    if (lane == 0) out[blockIdx.x] = v;
  }
}

// Reverses each block's slice through dynamic shared memory (float part, then an int part).
__global__ void reverse_dynamic(const float* in, float* out, unsigned* poison) {
  NNFAST_DYNAMIC_SHARED(float, buf);
  int* tags = reinterpret_cast<int*>(buf + blockDim.x);
  const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
  poison[i] = __float_as_uint(buf[2 * blockDim.x + t]);  // never written: the emulator's poison
  buf[t] = in[i];
  tags[t] = t;
  __syncthreads();
  const int j = blockDim.x - 1 - t;
  out[i] = buf[j] + static_cast<float>(tags[j] - j);
}

struct AtomicOut {
  int i32[2];
  unsigned u32;
  unsigned long long u64;
  float f32;
  double f64;
  int imax, imin;
  unsigned umax, umin;
  unsigned long long u64max, u64min;
  float fmax_cas;
  double dsum_cas;
  int exch_slot;
};
__host__ __device__ inline int atomic_key(int i) { return (i * 7919) % 100003 - 50000; }
__host__ __device__ inline float atomic_fval(int i) { return static_cast<float>((i * 37) % 1009) - 500.f; }

__global__ void atomics(AtomicOut* o, int* exch_old, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicAdd(&o->i32[0], 1);
  atomicAdd(&o->i32[1], i % 7 - 3);
  atomicAdd(&o->u32, 3u);
  atomicAdd(&o->u64, static_cast<unsigned long long>(i) * 1000003ull);
  atomicAdd(&o->f32, 0.5f);
  atomicAdd(&o->f64, i * 0.25);
  atomicMax(&o->imax, atomic_key(i));
  atomicMin(&o->imin, atomic_key(i));
  atomicMax(&o->umax, static_cast<unsigned>(i) * 2654435761u);
  atomicMin(&o->umin, static_cast<unsigned>(i) * 2654435761u + 7u);
  atomicMax(&o->u64max, static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ull);
  atomicMin(&o->u64min, static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ull + 1ull);
  // float max through atomicCAS (int), double add through atomicCAS (unsigned long long)
  const float fv = atomic_fval(i);
  int* fa = reinterpret_cast<int*>(&o->fmax_cas);
  int old = *fa, assumed;
  do {
    assumed = old;
    if (__int_as_float(assumed) >= fv) break;
    old = atomicCAS(fa, assumed, __float_as_int(fv));
  } while (old != assumed);
  unsigned long long* da = reinterpret_cast<unsigned long long*>(&o->dsum_cas);
  unsigned long long dold = *da, dassumed;
  do {
    dassumed = dold;
    dold = atomicCAS(da, dassumed,
                     static_cast<unsigned long long>(__double_as_longlong(__longlong_as_double(dassumed) + 1.5)));
  } while (dold != dassumed);
  exch_old[i] = atomicExch(&o->exch_slot, i);
}

__global__ void votes(const int* pred, unsigned* ballot, int* any, int* all, unsigned* half_ballot) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
  const int p = pred[i];
  ballot[i] = __ballot_sync(0xffffffffu, p);
  any[i] = __any_sync(0xffffffffu, p);
  all[i] = __all_sync(0xffffffffu, p);
  if (lane < 16) half_ballot[i] = __ballot_sync(0x0000ffffu, p);  // divergent halves, each with its own mask
  else half_ballot[i] = __ballot_sync(0xffff0000u, p);
}

__global__ void shuffles(const int* in, int* up, int* down, int* xr, int* idx, double* dbl, int width, int delta) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
  const int v = in[i];
  up[i] = __shfl_up_sync(0xffffffffu, v, delta, width);
  down[i] = __shfl_down_sync(0xffffffffu, v, delta, width);
  xr[i] = __shfl_xor_sync(0xffffffffu, v, delta, width);
  idx[i] = __shfl_sync(0xffffffffu, v, lane * 3 + 1, width);
  dbl[i] = __shfl_sync(0xffffffffu, v * 0.5, 31 - lane);
}

template <int T>
__global__ void sgemm_tiled(int M, int N, int K, const float* __restrict__ A, const float* __restrict__ B,
                            float* __restrict__ C) {
  __shared__ float As[T][T + 1];
  __shared__ float Bs[T][T + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * T + ty, col = blockIdx.x * T + tx;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += T) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.f;
    Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < T; ++k) acc = fmaf(As[ty][k], Bs[k][tx], acc);
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}

constexpr int kLocalInts = 12288;  // 48 KB per thread
__host__ __device__ inline int big_local_ref(const int* in, int n, int t, int* local) {
  for (int i = 0; i < kLocalInts; ++i) local[i] = in[(i + t) % n];
  int s = 0;
  for (int i = 0; i < kLocalInts; i += 1 + (local[i] & 3)) s += local[(i * 7 + t) % kLocalInts];
  return s;
}
__global__ void big_local(const int* in, int* out, int n) {
  int local[kLocalInts];
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  out[t] = big_local_ref(in, n, t, local);
}

__global__ void convert16(const float* in, unsigned short* h, unsigned short* b, float* hback, float* bback, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const __half x = __float2half(in[i]);
  const __nv_bfloat16 y = __float2bfloat16(in[i]);
  h[i] = __half_as_ushort(x);
  b[i] = __bfloat16_as_ushort(y);
  hback[i] = __half2float(x);
  bback[i] = __bfloat162float(y);
}

// Threads t >= active return before the barrier; PTX's barrier does not wait for exited threads.
__global__ void early_exit_reverse(const float* in, float* out, int active, int used_blocks) {
  __shared__ float s[256];
  if (static_cast<int>(blockIdx.x) >= used_blocks) return;  // whole surplus blocks leave
  const int t = threadIdx.x;
  if (t >= active) return;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[active - 1 - t];
}

__global__ void sync_reductions(const int* pred, int* out) {
  const int p = pred[blockIdx.x * blockDim.x + threadIdx.x];
  const int c = __syncthreads_count(p);
  const int a = __syncthreads_and(p);
  const int o = __syncthreads_or(p);
  if (threadIdx.x == 0) {
    out[3 * blockIdx.x] = c;
    out[3 * blockIdx.x + 1] = a;
    out[3 * blockIdx.x + 2] = o;
  }
}

// Lanes 20-31 exit; __syncwarp() with the full mask does not wait for exited lanes.
__global__ void syncwarp_after_exit(int* out) {
  __shared__ int s[32];
  const int lane = threadIdx.x & 31;
  if (lane >= 20) return;
  s[lane] = lane * 10;
  __syncwarp();
  out[lane] = s[19 - lane];
}
__global__ void syncwarp_subsets(int* out) {
  __shared__ int s[32];
  const int lane = threadIdx.x & 31;
  s[lane] = lane;
  if (lane < 10) __syncwarp(0x000003ffu);  // two disjoint subsets synchronise separately
  else __syncwarp(0xfffffc00u);
  out[lane] = lane < 10 ? s[9 - lane] : s[41 - lane];
}

// Each thread reads its neighbour's shared value: correct only with the barrier.
__global__ void neighbor_shift(const float* in, float* out, int with_sync) {
  __shared__ float s[256];
  const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
  s[t] = in[i];
  if (with_sync) __syncthreads();  // uniform condition: legal either way
  out[i] = s[(t + 1) % blockDim.x];
}

__global__ void barrier_loop(float* out, int iters) {
  __shared__ float s[1024];
  float v = threadIdx.x;
  for (int k = 0; k < iters; ++k) {
    s[threadIdx.x] = v;
    __syncthreads();
    v += s[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// ---------- deliberately broken
__global__ void divergent_barrier(float* out) {
  __shared__ float s[128];
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (threadIdx.x < 64) __syncthreads();  // BUG: only half the block
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[127 - threadIdx.x];
}
__global__ void half_warp_shfl(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if ((threadIdx.x & 31) < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);  // BUG: full mask, half a warp
  out[threadIdx.x] = v;
}
__global__ void mask_excludes_lane(float* out) {
  float v = static_cast<float>(threadIdx.x);
  v = __shfl_sync(0xfffffffeu, v, 1);  // BUG: lane 0 calls with a mask without lane 0
  out[threadIdx.x] = v;
}
__global__ void partial_warp_full_mask(float* out) {
  out[threadIdx.x] = warp_sum_xor(1.f);  // BUG with a 48-thread block: lanes 16-31 of warp 1 do not exist
}

// BUG: writes one element past the end (AddressSanitizer must name this kernel).
__global__ void oob_write(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.f;
}

// BUG in the emulation build: 400 KB of locals exceed the default 256 KB fiber stack.
__global__ void stack_hog(const int* in, int* out) {
  volatile int big[100 * 1024];
  for (int i = 0; i < 100 * 1024; i += 1024) big[i] = in[i % 7];
  out[threadIdx.x] = big[(threadIdx.x * 1024) % (100 * 1024)];
}

// ============================================================== host side
static int g_fail = 0;
#define EXPECT(cond, ...)                                                  \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fputc('\n', stderr);                                            \
      ++g_fail;                                                            \
    }                                                                      \
  } while (0)
#define CK(expr)                                                                                    \
  do {                                                                                              \
    cudaError_t e__ = (expr);                                                                       \
    if (e__ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e__), __FILE__, __LINE__, #expr); \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)

template <class T> struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { CK(cudaMalloc(&p, count * sizeof(T) + (count == 0))); }
  DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { up(h); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void up(const std::vector<T>& h) { CK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> down() const {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

static uint64_t g_lcg = 12345;
static float frand() {  // [-1, 1)
  g_lcg = g_lcg * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>(static_cast<int32_t>(g_lcg >> 32)) / 2147483648.f;
}
static std::vector<float> rand_vec(size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = frand();
  return v;
}

static void test_saxpy() {
  for (int n : {1, 7, 1023, 100000}) {
    auto x = rand_vec(n), y = rand_vec(n);
    DevBuf<float> dx(x), dy(y);
    NNFAST_LAUNCH(saxpy, 13, 128, 0, 0)(n, 2.5f, dx.p, dy.p);
    CK(cudaGetLastError());
    auto r = dy.down();
    int bad = 0;
    for (int i = 0; i < n; ++i) bad += r[i] != 2.5f * x[i] + y[i];
    EXPECT(bad == 0, "saxpy n=%d: %d wrong", n, bad);
  }
}

static void test_row_sum() {
  for (int block = 32; block <= 1024; block *= 2) {
    for (int cols : {1, 7, 1023, 4096}) {
      const int rows = 5;
      auto x = rand_vec(static_cast<size_t>(rows) * cols);
      DevBuf<float> dx(x), dout(rows);
      NNFAST_LAUNCH(row_sum, rows, block, 0, 0)(dx.p, dout.p, cols);
      CK(cudaGetLastError());
      auto r = dout.down();
      for (int i = 0; i < rows; ++i) {
        double ref = 0, mag = 0;
        for (int c = 0; c < cols; ++c) ref += x[static_cast<size_t>(i) * cols + c], mag += std::fabs(x[static_cast<size_t>(i) * cols + c]);
        EXPECT(std::fabs(r[i] - ref) <= 1e-5 * mag + 1e-6, "row_sum block=%d cols=%d row=%d: %g vs %g", block, cols, i,
               r[i], ref);
      }
    }
  }
}

static void test_dynamic_shared() {
  const int block = 96, blocks = 7, n = block * blocks;
  auto x = rand_vec(n);
  DevBuf<float> dx(x), dout(n);
  DevBuf<unsigned> dpoison(n);
  NNFAST_LAUNCH(reverse_dynamic, blocks, block, 3 * block * sizeof(float), 0)(dx.p, dout.p, dpoison.p);
  CK(cudaGetLastError());
  auto r = dout.down();
  auto poison = dpoison.down();
  int bad = 0, unpoisoned = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < block; ++t) {
      bad += r[b * block + t] != x[b * block + block - 1 - t];
      unpoisoned += poison[b * block + t] != 0xffffffffu;
    }
  EXPECT(bad == 0, "dynamic shared: %d wrong", bad);
#if NNFAST_EMULATED
  EXPECT(unpoisoned == 0, "dynamic shared memory not poisoned before a block: %d words", unpoisoned);
#endif
}

static void test_atomics() {
  const int n = 100003;
  AtomicOut init{};
  init.imax = INT32_MIN;
  init.imin = INT32_MAX;
  init.umin = 0xffffffffu;
  init.u64min = ~0ull;
  init.fmax_cas = -1e30f;
  init.exch_slot = -1;
  AtomicOut* d;
  CK(cudaMalloc(&d, sizeof(AtomicOut)));
  CK(cudaMemcpy(d, &init, sizeof init, cudaMemcpyHostToDevice));
  DevBuf<int> exch(n);
  NNFAST_LAUNCH(atomics, (n + 255) / 256, 256, 0, 0)(d, exch.p, n);
  CK(cudaGetLastError());
  AtomicOut o;
  CK(cudaMemcpy(&o, d, sizeof o, cudaMemcpyDeviceToHost));
  CK(cudaFree(d));
  long long s1 = 0;
  unsigned long long u64 = 0, u64max = 0, u64min = ~0ull;
  int imax = INT32_MIN, imin = INT32_MAX;
  unsigned umax = 0, umin = 0xffffffffu;
  float fmax = -1e30f;
  double f64 = 0;
  for (int i = 0; i < n; ++i) {
    s1 += i % 7 - 3;
    u64 += static_cast<unsigned long long>(i) * 1000003ull;
    f64 += i * 0.25;
    imax = std::max(imax, atomic_key(i));
    imin = std::min(imin, atomic_key(i));
    umax = std::max(umax, static_cast<unsigned>(i) * 2654435761u);
    umin = std::min(umin, static_cast<unsigned>(i) * 2654435761u + 7u);
    u64max = std::max(u64max, static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ull);
    u64min = std::min(u64min, static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ull + 1ull);
    fmax = std::max(fmax, atomic_fval(i));
  }
  EXPECT(o.i32[0] == n && o.i32[1] == s1, "int atomicAdd %d %d", o.i32[0], o.i32[1]);
  EXPECT(o.u32 == 3u * n, "unsigned atomicAdd %u", o.u32);
  EXPECT(o.u64 == u64, "ull atomicAdd %llu vs %llu", o.u64, u64);
  EXPECT(std::fabs(o.f32 - 0.5f * n) <= 1e-6f * n, "float atomicAdd %g", o.f32);
  EXPECT(std::fabs(o.f64 - f64) <= 1e-12 * f64, "double atomicAdd %.17g vs %.17g", o.f64, f64);
  EXPECT(o.imax == imax && o.imin == imin, "int max/min %d %d", o.imax, o.imin);
  EXPECT(o.umax == umax && o.umin == umin, "unsigned max/min %u %u", o.umax, o.umin);
  EXPECT(o.u64max == u64max && o.u64min == u64min, "ull max/min");
  EXPECT(o.fmax_cas == fmax, "float max via atomicCAS %g vs %g", o.fmax_cas, fmax);
  EXPECT(o.dsum_cas == 1.5 * n, "double add via atomicCAS %.17g", o.dsum_cas);
  // atomicExch: the old values plus the final one are exactly {-1, 0..n-1}.
  auto old = exch.down();
  std::vector<int> seen(n + 1, 0);
  for (int v : old) seen[v + 1]++;
  seen[o.exch_slot + 1]++;
  int bad = 0;
  for (int c : seen) bad += c != 1;
  EXPECT(bad == 0, "atomicExch chain broken at %d values", bad);
}

static void test_votes() {
  const int n = 256;
  std::vector<int> pred(n);
  for (int i = 0; i < n; ++i) {
    const int w = i / 32;
    pred[i] = w == 0 ? 1 : (w == 1 ? 0 : (i * 13 % 5 < 2));  // warp 0 all, warp 1 none, then mixed
  }
  DevBuf<int> dp(pred), dany(n), dall(n);
  DevBuf<unsigned> dballot(n), dhalf(n);
  NNFAST_LAUNCH(votes, 2, 128, 0, 0)(dp.p, dballot.p, dany.p, dall.p, dhalf.p);
  CK(cudaGetLastError());
  auto ballot = dballot.down(), half = dhalf.down();
  auto any = dany.down(), all = dall.down();
  int bad = 0;
  for (int w = 0; w < n / 32; ++w) {
    unsigned b = 0;
    for (int l = 0; l < 32; ++l) b |= static_cast<unsigned>(pred[w * 32 + l] != 0) << l;
    for (int l = 0; l < 32; ++l) {
      const int i = w * 32 + l;
      bad += ballot[i] != b || any[i] != (b != 0) || all[i] != (b == 0xffffffffu);
      bad += half[i] != (l < 16 ? (b & 0xffffu) : (b & 0xffff0000u));
    }
  }
  EXPECT(bad == 0, "votes: %d wrong", bad);
}

static void test_shuffles() {
  const int n = 128;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = 1000 + i * 7;
  DevBuf<int> din(in), up(n), down(n), xr(n), idx(n);
  DevBuf<double> dbl(n);
  for (int width : {32, 16, 8, 4, 2}) {
    for (int delta : {1, 3}) {
      NNFAST_LAUNCH(shuffles, 1, n, 0, 0)(din.p, up.p, down.p, xr.p, idx.p, dbl.p, width, delta);
      CK(cudaGetLastError());
      auto u = up.down(), d = down.down(), x = xr.down(), s = idx.down();
      auto db = dbl.down();
      int bad = 0;
      for (int i = 0; i < n; ++i) {
        const int lane = i & 31, base = i - lane, seg = lane & ~(width - 1), pos = lane & (width - 1);
        const int eu = pos >= delta ? in[i - delta] : in[i];
        const int ed = pos + delta < width ? in[i + delta] : in[i];
        const int xl = lane ^ delta;
        const int ex = xl < seg + width ? in[base + xl] : in[i];
        const int es = in[base + seg + ((lane * 3 + 1) % width)];
        bad += u[i] != eu || d[i] != ed || x[i] != ex || s[i] != es || db[i] != in[base + 31 - lane] * 0.5;
      }
      EXPECT(bad == 0, "shuffles width=%d delta=%d: %d wrong", width, delta, bad);
    }
  }
}

static void test_sgemm() {
  for (auto mnk : {std::vector<int>{37, 53, 29}, {64, 64, 64}, {1, 17, 3}, {100, 1, 70}}) {
    const int M = mnk[0], N = mnk[1], K = mnk[2];
    auto A = rand_vec(static_cast<size_t>(M) * K), B = rand_vec(static_cast<size_t>(K) * N);
    DevBuf<float> dA(A), dB(B), dC(static_cast<size_t>(M) * N);
    constexpr int T = 16;
    NNFAST_LAUNCH(sgemm_tiled<T>, dim3((N + T - 1) / T, (M + T - 1) / T), dim3(T, T), 0, 0)(M, N, K, dA.p, dB.p, dC.p);
    CK(cudaGetLastError());
    auto C = dC.down();
    int bad = 0;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double ref = 0;
        for (int k = 0; k < K; ++k) ref += static_cast<double>(A[i * K + k]) * B[k * N + j];
        bad += std::fabs(C[i * N + j] - ref) > 1e-5 * K;
      }
    EXPECT(bad == 0, "sgemm %dx%dx%d: %d wrong", M, N, K, bad);
  }
}

static void test_streams_events() {
  const int n = 50000;
  auto x = rand_vec(n), y = rand_vec(n);
  float *hx, *hy;
  CK(cudaMallocHost(&hx, n * sizeof(float)));
  CK(cudaMallocHost(&hy, n * sizeof(float)));
  std::memcpy(hx, x.data(), n * sizeof(float));
  std::memcpy(hy, y.data(), n * sizeof(float));
  cudaStream_t s1, s2;
  CK(cudaStreamCreate(&s1));
  CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  float *dx, *dy, *dz;
  CK(cudaMalloc(&dx, n * sizeof(float)));
  CK(cudaMalloc(&dy, n * sizeof(float)));
  CK(cudaMalloc(&dz, n * sizeof(float)));
  CK(cudaEventRecord(e0, s1));
  CK(cudaMemcpyAsync(dx, hx, n * sizeof(float), cudaMemcpyHostToDevice, s1));
  CK(cudaMemcpyAsync(dy, hy, n * sizeof(float), cudaMemcpyHostToDevice, s1));
  CK(cudaMemsetAsync(dz, 0, n * sizeof(float), s2));
  NNFAST_LAUNCH(saxpy, 64, 256, 0, s1)(n, -1.5f, dx, dy);
  NNFAST_LAUNCH(saxpy, 64, 256, 0, s2)(n, 1.0f, dx, dz);
  CK(cudaGetLastError());
  CK(cudaStreamWaitEvent(s2, e0, 0));
  CK(cudaMemcpyAsync(hy, dy, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
  CK(cudaEventRecord(e1, s1));
  CK(cudaEventSynchronize(e1));
  CK(cudaStreamSynchronize(s2));
  CK(cudaDeviceSynchronize());
  float ms = -1;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  EXPECT(ms >= 0, "elapsed %g ms", ms);
  std::vector<float> z(n);
  CK(cudaMemcpy(z.data(), dz, n * sizeof(float), cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < n; ++i) bad += hy[i] != -1.5f * x[i] + y[i] || z[i] != x[i];
  EXPECT(bad == 0, "streams: %d wrong", bad);
  CK(cudaFree(dx));
  CK(cudaFree(dy));
  CK(cudaFree(dz));
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaStreamDestroy(s1));
  CK(cudaStreamDestroy(s2));
  CK(cudaFreeHost(hx));
  CK(cudaFreeHost(hy));
}

static void test_big_local() {
  const int n = 1000, blocks = 2, block = 64;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = (i * 2654435761u) >> 20;
  DevBuf<int> din(in), dout(blocks * block);
  NNFAST_LAUNCH(big_local, blocks, block, 0, 0)(din.p, dout.p, n);
  CK(cudaGetLastError());
  auto r = dout.down();
  std::vector<int> local(kLocalInts);
  int bad = 0;
  for (int t = 0; t < blocks * block; ++t) bad += r[t] != big_local_ref(in.data(), n, t, local.data());
  EXPECT(bad == 0, "48 KB local array: %d wrong", bad);
}

// Reference decoders, independent of the converters under test.
static double half_value(unsigned p) {
  const int e = (p >> 10) & 31, m = p & 1023;
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (p & 0x8000u) ? -v : v;
}
static float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static void test_fp16() {
  // inputs with the expected half / bf16 bits (-1: not checked for that format)
  std::vector<float> in;
  std::vector<int> eh, eb;
  auto add = [&](float f, int h, int b) { in.push_back(f), eh.push_back(h), eb.push_back(b); };
  for (unsigned p = 0; p <= 0x7bff; ++p) {  // every finite half, both signs
    for (unsigned s : {0u, 0x8000u}) {
      const double v = half_value(p | s);
      add(static_cast<float>(v), p | s, -1);
      const double mid = (half_value(p | s) + half_value((p + 1) | s)) / 2;  // exact in float
      const unsigned even = (p & 1u) ? p + 1 : p;
      const float fm = static_cast<float>(mid);
      if (p + 1 <= 0x7c00) {
        add(fm, even | s, -1);
        add(std::nextafter(fm, s ? -INFINITY : INFINITY), (p + 1) | s, -1);
        add(std::nextafter(fm, 0.f), p | s, -1);
      }
    }
  }
  for (unsigned p = 0; p < 0x7f80; ++p) {  // every finite bf16, both signs
    for (unsigned s : {0u, 0x8000u}) {
      const uint32_t u = (p | s) << 16;
      add(bits_to_float(u), -1, p | s);
      add(bits_to_float(u | 0x8000u), -1, (p & 1u ? p + 1 : p) | s);  // tie: to even
      add(bits_to_float(u | 0x8001u), -1, (p + 1) | s);
      add(bits_to_float(u | 0x7fffu), -1, p | s);
    }
  }
  add(65520.f, 0x7c00, -1);  // rounds to inf
  add(65519.99f, 0x7bff, -1);
  add(INFINITY, 0x7c00, 0x7f80);
  add(-INFINITY, 0xfc00, 0xff80);
  add(NAN, -2, -2);  // NaN stays NaN
  const int n = static_cast<int>(in.size());
  DevBuf<float> din(in), hb(n), bb(n);
  DevBuf<unsigned short> dh(n), db(n);
  NNFAST_LAUNCH(convert16, (n + 255) / 256, 256, 0, 0)(din.p, dh.p, db.p, hb.p, bb.p, n);
  CK(cudaGetLastError());
  auto h = dh.down(), b = db.down();
  auto hback = hb.down(), bback = bb.down();
  int bad = 0;
  for (int i = 0; i < n; ++i) {
    if (eh[i] == -2) {
      bad += (h[i] & 0x7c00) != 0x7c00 || (h[i] & 0x3ff) == 0 || !std::isnan(hback[i]);
      bad += (b[i] & 0x7f80) != 0x7f80 || (b[i] & 0x7f) == 0 || !std::isnan(bback[i]);
      continue;
    }
    if (eh[i] >= 0) {
      const bool ok = h[i] == eh[i] && (std::isinf(hback[i]) ? (eh[i] & 0x7fff) == 0x7c00 : hback[i] == half_value(eh[i]));
      if (!ok && bad < 5) std::fprintf(stderr, "  half(%.9g) = 0x%04x, want 0x%04x\n", in[i], h[i], eh[i]);
      bad += !ok;
    }
    if (eb[i] >= 0) {
      const bool ok = b[i] == eb[i] && bback[i] == bits_to_float(static_cast<uint32_t>(eb[i]) << 16);
      if (!ok && bad < 5) std::fprintf(stderr, "  bf16(%.9g) = 0x%04x, want 0x%04x\n", in[i], b[i], eb[i]);
      bad += !ok;
    }
  }
  EXPECT(bad == 0, "16-bit conversions: %d wrong of %d", bad, n);
}

static void test_early_exit() {
  const int block = 256, used = 3, blocks = 5;
  for (int active : {1, 100, 255, 256}) {
    auto x = rand_vec(block * blocks);
    DevBuf<float> dx(x), dout(std::vector<float>(block * blocks, 7.f));
    NNFAST_LAUNCH(early_exit_reverse, blocks, block, 0, 0)(dx.p, dout.p, active, used);
    CK(cudaGetLastError());
    auto r = dout.down();
    int bad = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < block; ++t) {
        const float want = (b < used && t < active) ? x[b * block + active - 1 - t] : 7.f;
        bad += r[b * block + t] != want;
      }
    EXPECT(bad == 0, "early exit active=%d: %d wrong", active, bad);
  }
}

static void test_sync_reductions() {
  const int block = 96, blocks = 4;
  std::vector<int> pred(block * blocks);
  for (int i = 0; i < block * blocks; ++i) pred[i] = (i / block == 0) ? 1 : (i / block == 1 ? 0 : i % 3 == 0);
  DevBuf<int> dp(pred), dout(3 * blocks);
  NNFAST_LAUNCH(sync_reductions, blocks, block, 0, 0)(dp.p, dout.p);
  CK(cudaGetLastError());
  auto r = dout.down();
  int bad = 0;
  for (int b = 0; b < blocks; ++b) {
    int c = 0;
    for (int t = 0; t < block; ++t) c += pred[b * block + t];
    bad += r[3 * b] != c || r[3 * b + 1] != (c == block) || r[3 * b + 2] != (c > 0);
  }
  EXPECT(bad == 0, "__syncthreads_count/and/or: %d wrong", bad);
}

// Returns the number of wrong outputs of neighbor_shift.
static int run_neighbor_shift(int with_sync) {
  const int block = 256, blocks = 8, n = block * blocks;
  auto x = rand_vec(n);
  DevBuf<float> dx(x), dout(n);
  NNFAST_LAUNCH(neighbor_shift, blocks, block, 0, 0)(dx.p, dout.p, with_sync);
  CK(cudaGetLastError());
  auto r = dout.down();
  int bad = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < block; ++t) bad += r[b * block + t] != x[b * block + (t + 1) % block];
  return bad;
}

static void test_syncwarp() {
  DevBuf<int> dout(std::vector<int>(32, -7));
  NNFAST_LAUNCH(syncwarp_after_exit, 1, 32, 0, 0)(dout.p);
  CK(cudaGetLastError());
  auto r = dout.down();
  int bad = 0;
  for (int l = 0; l < 32; ++l) bad += r[l] != (l < 20 ? (19 - l) * 10 : -7);
  NNFAST_LAUNCH(syncwarp_subsets, 1, 32, 0, 0)(dout.p);
  CK(cudaGetLastError());
  r = dout.down();
  for (int l = 0; l < 32; ++l) bad += r[l] != (l < 10 ? 9 - l : 41 - l);
  EXPECT(bad == 0, "__syncwarp: %d wrong", bad);
}

static void test_launch_errors() {
  float* d = nullptr;
  NNFAST_LAUNCH(saxpy, 1, 2048, 0, 0)(0, 1.f, d, d);  // too many threads per block
  EXPECT(cudaPeekAtLastError() == cudaErrorInvalidConfiguration, "peek");
  EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "get");
  EXPECT(cudaGetLastError() == cudaSuccess, "cleared");
  EXPECT(std::strlen(cudaGetErrorString(cudaErrorInvalidConfiguration)) > 0, "error string");
}

static void test_seeds_expose_missing_barrier() {
#if NNFAST_EMULATED
  const uint64_t saved = nnfast_emu::seed();
  int exposed = 0;
  for (uint64_t s = 1; s <= 10; ++s) {
    nnfast_emu::set_seed(s);
    exposed += run_neighbor_shift(0) > 0;
    EXPECT(run_neighbor_shift(1) == 0, "neighbor_shift with the barrier, seed %llu", static_cast<unsigned long long>(s));
  }
  nnfast_emu::set_seed(saved);
  EXPECT(exposed == 10, "a missing __syncthreads was exposed by %d of 10 seeds", exposed);
#endif
}

// ---------------------------------------------------------------- broken cases (child process)
static int run_case(const char* name) {
  DevBuf<float> out(4096);
  if (!std::strcmp(name, "missing_sync")) {
    const int bad = run_neighbor_shift(0);
    std::printf("missing_sync: %d wrong results\n", bad);
    if (bad) std::printf("wrong result detected\n");
    return bad ? 1 : 0;
  }
  if (!std::strcmp(name, "divergent_barrier")) NNFAST_LAUNCH(divergent_barrier, 2, 128, 0, 0)(out.p);
  else if (!std::strcmp(name, "half_warp_shfl")) NNFAST_LAUNCH(half_warp_shfl, 1, 64, 0, 0)(out.p);
  else if (!std::strcmp(name, "mask_excludes_lane")) NNFAST_LAUNCH(mask_excludes_lane, 1, 32, 0, 0)(out.p);
  else if (!std::strcmp(name, "partial_warp_full_mask")) NNFAST_LAUNCH(partial_warp_full_mask, 1, 48, 0, 0)(out.p);
  else if (!std::strcmp(name, "oob_write")) {
    DevBuf<float> small(100);
    NNFAST_LAUNCH(oob_write, 1, 128, 0, 0)(small.p, 100);
  } else if (!std::strcmp(name, "stack_hog")) {
    DevBuf<int> in(std::vector<int>(8, 3)), o(32);
    NNFAST_LAUNCH(stack_hog, 1, 32, 0, 0)(in.p, o.p);
  } else if (!std::strcmp(name, "strict_exit")) {
    DevBuf<float> in(4096);
    NNFAST_LAUNCH(early_exit_reverse, 1, 256, 0, 0)(in.p, out.p, 100, 1);
  } else {
    std::fprintf(stderr, "unknown case %s\n", name);
    return 3;
  }
  CK(cudaDeviceSynchronize());
  std::printf("case %s finished without an error\n", name);
  return 0;
}

// Runs `self --case name` and checks it failed as expected with every text in its output.
static int expect_failure(const char* self, const char* name, const char* how, int ntexts, char** texts) {
  int fds[2];
  if (pipe(fds) != 0) return 2;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execl("/proc/self/exe", self, "--case", name, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t k;
  while ((k = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("---- child output (%s)\n%s----\n", name, out.c_str());
  bool ok = !std::strcmp(how, "abort")  ? (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
            : !std::strcmp(how, "exit") ? (WIFEXITED(status) && WEXITSTATUS(status) == 1)
                                        : !(WIFEXITED(status) && WEXITSTATUS(status) == 0);  // "fail": any failure
  if (!ok) std::printf("FAIL: case %s did not fail by %s (status 0x%x)\n", name, how, status);
  for (int i = 0; i < ntexts; ++i)
    if (out.find(texts[i]) == std::string::npos) {
      std::printf("FAIL: output of case %s lacks \"%s\"\n", name, texts[i]);
      ok = false;
    }
  if (ok) std::printf("ok: case %s failed as expected\n", name);
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------- timings
static double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
// Wall time per call; *cpu gets the process CPU time per call (all threads), which
// stays meaningful when other jobs share the machine.
static double time_ms(void (*f)(void*), void* arg, int reps, double* cpu) {
  f(arg);  // warm-up
  const double c0 = cpu_ms();
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) f(arg);
  *cpu = (cpu_ms() - c0) / reps;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}
static int nnfast_emu_threads() {
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  return p.multiProcessorCount;
}
struct BenchData {
  float *a, *b, *c;
  int n, m, k, iters;
};
static int bench() {
  BenchData d{};
  const size_t big = 16u << 20;
  CK(cudaMalloc(&d.a, big * sizeof(float)));
  CK(cudaMalloc(&d.b, big * sizeof(float)));
  CK(cudaMalloc(&d.c, big * sizeof(float)));
  CK(cudaMemset(d.a, 0, big * sizeof(float)));
  CK(cudaMemset(d.b, 0, big * sizeof(float)));
  d.iters = 200;
  double c = 0;
  std::printf("emulator: %d OS threads\n", nnfast_emu_threads());
  const double tb = time_ms([](void* p) {
    auto* q = static_cast<BenchData*>(p);
    NNFAST_LAUNCH(barrier_loop, 64, 256, 0, 0)(q->c, q->iters);
  }, &d, 3, &c);
  std::printf("barrier: %.1f ns wall, %.1f ns CPU per thread per barrier (64 blocks x 256 threads x %d barriers)\n",
              tb * 1e6 / (64.0 * 256 * 2 * d.iters), c * 1e6 / (64.0 * 256 * 2 * d.iters), 2 * d.iters);
  const double ts = time_ms([](void* p) {
    auto* q = static_cast<BenchData*>(p);
    NNFAST_LAUNCH(saxpy, 4096, 256, 0, 0)(16 << 20, 2.f, q->a, q->b);
  }, &d, 3, &c);
  std::printf("saxpy 16M (grid 4096 x 256, grid-stride): %.1f ms wall, %.1f ms CPU\n", ts, c);
  const double tr = time_ms([](void* p) {
    auto* q = static_cast<BenchData*>(p);
    NNFAST_LAUNCH(row_sum, 4096, 256, 0, 0)(q->a, q->b, 1024);
  }, &d, 3, &c);
  std::printf("row_sum 4096x1024 (256 threads per row): %.1f ms wall, %.1f ms CPU\n", tr, c);
  const double tg = time_ms([](void* p) {
    auto* q = static_cast<BenchData*>(p);
    NNFAST_LAUNCH(sgemm_tiled<16>, dim3(32, 32), dim3(16, 16), 0, 0)(512, 512, 512, q->a, q->b, q->c);
  }, &d, 2, &c);
  std::printf("sgemm 512^3 (16x16 tiles): %.1f ms wall, %.1f ms CPU\n", tg, c);
  CK(cudaFree(d.a));
  CK(cudaFree(d.b));
  CK(cudaFree(d.c));
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && !std::strcmp(argv[1], "--case")) return run_case(argv[2]);
  if (argc >= 4 && !std::strcmp(argv[1], "--expect")) return expect_failure(argv[0], argv[2], argv[3], argc - 4, argv + 4);
  if (argc >= 2 && !std::strcmp(argv[1], "--bench")) return bench();
  const auto t0 = std::chrono::steady_clock::now();
  test_saxpy();
  test_row_sum();
  test_dynamic_shared();
  test_atomics();
  test_votes();
  test_shuffles();
  test_sgemm();
  test_streams_events();
  test_big_local();
  test_fp16();
  test_early_exit();
  test_sync_reductions();
  test_syncwarp();
  test_launch_errors();
  test_seeds_expose_missing_barrier();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %d failures (%.0f ms)\n", g_fail ? "FAILED" : "passed", g_fail, ms);
  return g_fail ? 1 : 0;
}

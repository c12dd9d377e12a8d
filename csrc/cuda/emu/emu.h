// nnfast's SIMT emulation layer: CUDA kernel source compiled by the host
// compiler and run on the CPU with CUDA's semantics (see README.md here).
// Do not include this directly: include "cuda_compat.h", which picks the real
// CUDA headers under nvcc and this file otherwise.
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "emu_fp16.h"

#define NNFAST_EMULATED 1

// ------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// One block runs on one OS thread at a time, so a static thread_local is the
// block's shared memory. (Not cleared between blocks; see README.md.)
#define __shared__ static thread_local

// ------------------------------------------------------------------ vector types, built-ins
struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// Set by the scheduler before it switches to a fiber (a block never leaves its OS thread).
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

// ------------------------------------------------------------------ runtime API types
// The error codes the emulator returns: X(name, CUDA's value, cudaGetErrorString's
// text). The enum and cudaGetErrorName / cudaGetErrorString (emu.cpp) come from it.
#define NNFAST_EMU_CUDA_ERRORS(X)                                                     \
  X(cudaSuccess, 0, "no error")                                                       \
  X(cudaErrorInvalidValue, 1, "invalid argument")                                     \
  X(cudaErrorMemoryAllocation, 2, "out of memory")                                    \
  X(cudaErrorInitializationError, 3, "initialization error")                          \
  X(cudaErrorInvalidConfiguration, 9, "invalid configuration argument")               \
  X(cudaErrorInvalidDevicePointer, 17, "invalid device pointer")                      \
  X(cudaErrorInvalidMemcpyDirection, 21, "invalid copy direction for memcpy")         \
  X(cudaErrorNoDevice, 100, "no CUDA-capable device is detected")                     \
  X(cudaErrorInvalidDevice, 101, "invalid device ordinal")                            \
  X(cudaErrorInvalidResourceHandle, 400, "invalid resource handle")                   \
  X(cudaErrorNotReady, 600, "device not ready")                                       \
  X(cudaErrorLaunchFailure, 719, "unspecified launch failure")
enum cudaError_t {
#define NNFAST_EMU_X(name, value, text) name = value,
  NNFAST_EMU_CUDA_ERRORS(NNFAST_EMU_X)
#undef NNFAST_EMU_X
};
using cudaError = cudaError_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventDisableTiming 0x2

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  std::size_t sharedMemPerBlockOptin;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int multiProcessorCount;
  int major;
  int minor;
};

cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
template <class T> inline cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes);
template <class T> inline cudaError_t cudaMallocHost(T** ptr, std::size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t stream = nullptr);
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, std::size_t bytes, std::size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  return cudaMemcpy(reinterpret_cast<char*>(&symbol) + offset, src, bytes, kind);
}
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);

// ------------------------------------------------------------------ emulator internals
namespace nnfast_emu {

// Seed of the randomised thread order (NNFAST_EMU_SEED in the environment, else a
// fixed default). Each block derives its own stream from (seed, block index).
void set_seed(std::uint64_t seed);
std::uint64_t seed();
// OS threads that run blocks (default: OpenMP's maximum, NNFAST_EMU_THREADS overrides).
void set_threads(int n);

namespace detail {
enum WarpOp : int { kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kSyncWarp };
enum BarrierOp : int { kBarPlain, kBarCount, kBarAnd, kBarOr };
std::uint64_t warp_op(int op, unsigned mask, int width, std::uint64_t value, int param, const char* file,
                      int line);
int barrier(int op, int pred, const char* file, int line);
void* dynamic_shared();

struct LaunchSite { const char* kernel; const char* file; int line; };
using InvokeFn = void (*)(const void* closure);
void launch(const LaunchSite& site, dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
            InvokeFn invoke, const void* closure);

template <class T> inline std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp shuffle of a type wider than 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T> inline T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

template <class... P> struct Launcher {
  void (*kernel)(P...);
  LaunchSite site;
  dim3 grid, block;
  std::size_t smem;
  cudaStream_t stream;
  struct Closure {
    void (*kernel)(P...);
    std::tuple<P...>* args;
  };
  static void invoke(const void* c) {
    const Closure* cl = static_cast<const Closure*>(c);
    std::apply(cl->kernel, *cl->args);  // each thread gets its own copy of the by-value parameters
  }
  template <class... A> void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    std::tuple<P...> args(std::forward<A>(a)...);
    Closure cl{kernel, &args};
    launch(site, grid, block, smem, stream, &invoke, &cl);
  }
};
template <class... P>
inline Launcher<P...> make_launcher(void (*kernel)(P...), const char* name, const char* file, int line, dim3 grid,
                                    dim3 block, std::size_t smem, cudaStream_t stream) {
  return Launcher<P...>{kernel, LaunchSite{name, file, line}, grid, block, smem, stream};
}
inline cudaStream_t as_stream(cudaStream_t s) { return s; }
inline cudaStream_t as_stream(int) { return nullptr; }  // a literal 0: the default stream
}  // namespace detail
}  // namespace nnfast_emu

// NNFAST_LAUNCH(kernel, grid, block, smem, stream)(args...) == kernel<<<grid, block, smem, stream>>>(args...)
#define NNFAST_LAUNCH(kernel, grid, block, smem, stream)                                              \
  ::nnfast_emu::detail::make_launcher(kernel, #kernel, __FILE__, __LINE__, dim3(grid), dim3(block), \
                                      static_cast<std::size_t>(smem), ::nnfast_emu::detail::as_stream(stream))
// Declares `T* name` pointing at the block's dynamic shared memory.
#define NNFAST_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::nnfast_emu::detail::dynamic_shared())

// ------------------------------------------------------------------ synchronisation (call sites recorded)
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  nnfast_emu::detail::barrier(nnfast_emu::detail::kBarPlain, 0, file, line);
}
inline int __syncthreads_count(int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return nnfast_emu::detail::barrier(nnfast_emu::detail::kBarCount, pred != 0, file, line);
}
inline int __syncthreads_and(int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return nnfast_emu::detail::barrier(nnfast_emu::detail::kBarAnd, pred != 0, file, line);
}
inline int __syncthreads_or(int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return nnfast_emu::detail::barrier(nnfast_emu::detail::kBarOr, pred != 0, file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  nnfast_emu::detail::warp_op(nnfast_emu::detail::kSyncWarp, mask, 32, 0, 0, file, line);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return from_bits<T>(warp_op(kShflIdx, mask, width, to_bits(var), srcLane, file, line));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return from_bits<T>(warp_op(kShflUp, mask, width, to_bits(var), static_cast<int>(delta), file, line));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return from_bits<T>(warp_op(kShflDown, mask, width, to_bits(var), static_cast<int>(delta), file, line));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return from_bits<T>(warp_op(kShflXor, mask, width, to_bits(var), laneMask, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return static_cast<unsigned>(warp_op(kBallot, mask, 32, pred != 0, 0, file, line));
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return static_cast<int>(warp_op(kAny, mask, 32, pred != 0, 0, file, line));
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using namespace nnfast_emu::detail;
  return static_cast<int>(warp_op(kAll, mask, 32, pred != 0, 0, file, line));
}

// ------------------------------------------------------------------ atomics (real atomics: blocks run in parallel)
#define NNFAST_EMU_ATOMIC_INT(T)                                                                         \
  inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }                  \
  inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }                  \
  inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }                  \
  inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }                    \
  inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }                  \
  inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }                \
  inline T atomicCAS(T* p, T cmp, T v) {                                                                \
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);                 \
    return cmp;                                                                                         \
  }                                                                                                     \
  inline T atomicMax(T* p, T v) {                                                                       \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                                       \
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) \
      ;                                                                                                 \
    return old;                                                                                         \
  }                                                                                                     \
  inline T atomicMin(T* p, T v) {                                                                       \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                                       \
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) \
      ;                                                                                                 \
    return old;                                                                                         \
  }
NNFAST_EMU_ATOMIC_INT(int)
NNFAST_EMU_ATOMIC_INT(unsigned int)
NNFAST_EMU_ATOMIC_INT(unsigned long long)
NNFAST_EMU_ATOMIC_INT(long long)
#undef NNFAST_EMU_ATOMIC_INT
inline unsigned short atomicCAS(unsigned short* p, unsigned short cmp, unsigned short v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
#define NNFAST_EMU_ATOMIC_FP(T)                                                                          \
  inline T atomicAdd(T* p, T v) {                                                                       \
    T old, next;                                                                                        \
    __atomic_load(p, &old, __ATOMIC_RELAXED);                                                           \
    do { next = old + v; } while (!__atomic_compare_exchange(p, &old, &next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)); \
    return old;                                                                                         \
  }                                                                                                     \
  inline T atomicExch(T* p, T v) { T old; __atomic_exchange(p, &v, &old, __ATOMIC_RELAXED); return old; }
NNFAST_EMU_ATOMIC_FP(float)
NNFAST_EMU_ATOMIC_FP(double)
#undef NNFAST_EMU_ATOMIC_FP

// ------------------------------------------------------------------ intrinsics
template <class T> inline T __ldg(const T* p) { return *p; }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline double __drcp_rn(double x) { return 1.0 / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline int __mul24(int a, int b) { return a * b; }
inline int __umulhi(unsigned a, unsigned b) { return static_cast<int>((static_cast<unsigned long long>(a) * b) >> 32); }
// CUDA's global min/max overloads.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__linux__) && defined(NNFAST_HAVE_AMX_BF16)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace nnfast {
namespace {

bool cpu_has(Isa isa) {
#if defined(NNFAST_HAVE_X86_ISA) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Generic: return true;
    case Isa::AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == Isa::Generic;
#endif
}

Isa detect() {
  Isa best = Isa::Generic;
  if (cpu_has(Isa::AVX2)) best = Isa::AVX2;
  if (cpu_has(Isa::AVX512)) best = Isa::AVX512;
  const char* env = std::getenv("NNFAST_ISA");
  Isa want;
  if (env && *env && parse_isa(env, &want) && static_cast<int>(want) < static_cast<int>(best))
    best = want;
  return best;
}

std::atomic<int>& current() {
  static std::atomic<int> isa{static_cast<int>(detect())};
  return isa;
}

bool cpu_has_bf16(Bf16Level level) {
#if defined(NNFAST_HAVE_X86_ISA) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  switch (level) {
    case Bf16Level::Portable: return true;
    case Bf16Level::AVX512_BF16: return cpu_has(Isa::AVX512) && __builtin_cpu_supports("avx512bf16");
    case Bf16Level::AMX_BF16:
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
      return __builtin_cpu_supports("amx-bf16");
#else
      return false;
#endif
  }
  return false;
#else
  return level == Bf16Level::Portable;
#endif
}

Bf16Level detect_bf16() {
  Bf16Level best = Bf16Level::Portable;
  if (cpu_has_bf16(Bf16Level::AVX512_BF16)) best = Bf16Level::AVX512_BF16;
  if (cpu_has_bf16(Bf16Level::AMX_BF16)) best = Bf16Level::AMX_BF16;
  const char* env = std::getenv("NNFAST_BF16");
  Bf16Level want;
  if (env && *env && parse_bf16_level(env, &want) && static_cast<int>(want) < static_cast<int>(best)) best = want;
  return best;
}

std::atomic<int>& current_bf16() {
  static std::atomic<int> level{static_cast<int>(detect_bf16())};
  return level;
}

}  // namespace

Bf16Level active_bf16_level() { return static_cast<Bf16Level>(current_bf16().load(std::memory_order_relaxed)); }
bool bf16_level_supported(Bf16Level level) { return cpu_has_bf16(level); }
void force_bf16_level(Bf16Level level) { current_bf16().store(static_cast<int>(level)); }

// Linux hands out the AMX tile data state only on request (ARCH_REQ_XCOMP_PERM for
// XTILEDATA), once per process; a tile instruction before it faults. Refused (old
// kernel, seccomp): the bf16 GEMM runs the AVX512-BF16 kernel.
bool amx_permitted() {
#if defined(__linux__) && defined(NNFAST_HAVE_AMX_BF16) && defined(SYS_arch_prctl)
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

Bf16Level bf16_kernel_level() {
#if defined(NNFAST_HAVE_AVX512BF16)
  const Bf16Level want = active_bf16_level();
  if (want == Bf16Level::Portable || active_isa() != Isa::AVX512) return Bf16Level::Portable;
  if (want == Bf16Level::AMX_BF16 && cpu_has_bf16(Bf16Level::AMX_BF16) && amx_permitted())
    return Bf16Level::AMX_BF16;
  // Every AMX CPU has AVX512-BF16: its kernel is the fallback.
  if (cpu_has_bf16(Bf16Level::AVX512_BF16)) return Bf16Level::AVX512_BF16;
#endif
  return Bf16Level::Portable;
}

const char* bf16_level_name(Bf16Level level) {
  switch (level) {
    case Bf16Level::AMX_BF16: return "amx_bf16";
    case Bf16Level::AVX512_BF16: return "avx512_bf16";
    default: return "portable";
  }
}

bool parse_bf16_level(const char* name, Bf16Level* out) {
  if (!name) return false;
  if (!std::strcmp(name, "portable")) { *out = Bf16Level::Portable; return true; }
  if (!std::strcmp(name, "avx512_bf16")) { *out = Bf16Level::AVX512_BF16; return true; }
  if (!std::strcmp(name, "amx_bf16")) { *out = Bf16Level::AMX_BF16; return true; }
  return false;
}

Isa active_isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }
bool isa_supported(Isa isa) { return cpu_has(isa); }
void force_isa(Isa isa) { current().store(static_cast<int>(isa)); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::AVX512: return "avx512";
    case Isa::AVX2: return "avx2";
    default: return "generic";
  }
}

bool parse_isa(const char* name, Isa* out) {
  if (!name) return false;
  if (!std::strcmp(name, "generic")) { *out = Isa::Generic; return true; }
  if (!std::strcmp(name, "avx2")) { *out = Isa::AVX2; return true; }
  if (!std::strcmp(name, "avx512")) { *out = Isa::AVX512; return true; }
  return false;
}

}  // namespace nnfast

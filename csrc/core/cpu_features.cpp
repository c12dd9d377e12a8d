#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

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

}  // namespace

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

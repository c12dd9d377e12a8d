// Runtime CPU-feature detection and the ISA choice for *_isa.cpp kernels.
#pragma once

namespace nnfast {

enum class Isa : int { Generic = 0, AVX2 = 1, AVX512 = 2 };

// Best ISA that both the CPU and this build support; NNFAST_ISA=generic|avx2|avx512
// in the environment lowers (never raises) the choice.
Isa active_isa();
bool isa_supported(Isa isa);
void force_isa(Isa isa);
const char* isa_name(Isa isa);
bool parse_isa(const char* name, Isa* out);

// bf16 GEMM level, a separate axis from Isa: Portable (round to bf16, widen, run
// the fp32 kernels), AVX512_BF16 (vdpbf16ps micro-kernel; also needs the AVX512
// Isa to be in use), AMX_BF16 (tdpbf16ps tile kernel; also needs the AVX512 Isa, a
// build with the AMX kernel and Linux's tile-state permission, else AVX512_BF16 runs).
// NNFAST_BF16=portable|avx512_bf16 in the environment lowers (never raises) it.
enum class Bf16Level : int { Portable = 0, AVX512_BF16 = 1, AMX_BF16 = 2 };
Bf16Level active_bf16_level();  // what the CPU has, lowered by NNFAST_BF16 / force_bf16_level
Bf16Level bf16_kernel_level();  // what the bf16 GEMM runs: the above, capped by the Isa in use and the build
bool bf16_level_supported(Bf16Level level);
void force_bf16_level(Bf16Level level);
const char* bf16_level_name(Bf16Level level);
bool parse_bf16_level(const char* name, Bf16Level* out);
bool amx_permitted();  // the AMX tile state granted to this process (asked once)

}  // namespace nnfast

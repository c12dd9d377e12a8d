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

}  // namespace nnfast

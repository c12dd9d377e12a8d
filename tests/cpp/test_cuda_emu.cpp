// The emulation build of test_cuda_emu.cu: the same kernel source, compiled by
// the host compiler against nnfast's SIMT emulator (csrc/cuda/emu).
#include "test_cuda_emu.cu"

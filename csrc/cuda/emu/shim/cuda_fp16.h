// Emulation build: the CUDA header is nnfast's emulator (csrc/cuda/emu).
#pragma once
#include "../cuda_compat.h"

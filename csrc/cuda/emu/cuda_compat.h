// The one header a nnfast .cu file includes first. Under nvcc it is the CUDA
// runtime; in an emulation build (the host compiler, no __CUDACC__) it is
// nnfast's SIMT emulator (emu.h), which runs the same kernel source on the CPU.
//
//   NNFAST_LAUNCH(kernel, grid, block, smem, stream)(args...);
//       == kernel<<<grid, block, smem, stream>>>(args...)
//   NNFAST_DYNAMIC_SHARED(float, buf);   // float* buf -> dynamic shared memory
//   NNFAST_EMULATED                      // 1 in the emulation build, 0 under nvcc
#pragma once

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define NNFAST_EMULATED 0
#define NNFAST_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define NNFAST_DYNAMIC_SHARED(T, name)                                      \
  extern __shared__ __align__(16) unsigned char nnfast_dynamic_smem_##name[]; \
  T* name = reinterpret_cast<T*>(nnfast_dynamic_smem_##name)
#else
#include "emu.h"
#endif

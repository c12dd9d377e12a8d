#pragma once
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>

// Every CUDA call and launch is checked, reporting file and line.
#define NNFAST_CUDA_CHECK(expr)                                                        \
  do {                                                                                 \
    cudaError_t err__ = (expr);                                                        \
    if (err__ != cudaSuccess)                                                          \
      throw std::runtime_error(std::string("[cuda] ") + cudaGetErrorString(err__) +    \
                               " at " + __FILE__ + ":" + std::to_string(__LINE__));    \
  } while (0)

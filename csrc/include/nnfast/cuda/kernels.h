// Every nnfast::cuda kernel family: one include for code that calls the CUDA launchers
// (device pointers; each family header also brings in its CPU twin, nnfast/<family>.h).
#pragma once
#include "nnfast/cuda/activation.h"
#include "nnfast/cuda/attention.h"
#include "nnfast/cuda/conv.h"
#include "nnfast/cuda/dropout.h"
#include "nnfast/cuda/embedding.h"
#include "nnfast/cuda/gemm.h"
#include "nnfast/cuda/loss.h"
#include "nnfast/cuda/norm.h"
#include "nnfast/cuda/optim.h"
#include "nnfast/cuda/pool.h"
#include "nnfast/cuda/rnn.h"
#include "nnfast/cuda/tensor.h"

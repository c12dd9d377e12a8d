// Pointwise activations. Shape letters: n = number of elements.
#pragma once
#include "nnfast/common.h"

namespace nnfast {

// y[i] = act(x[i]); y may equal x (in place).
template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p);

// dx[i] = dy[i] * act'(saved[i]); `saved` is the output y when
// act_grad_from_output(act), otherwise the input x. dx may equal dy.
template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p);

}  // namespace nnfast

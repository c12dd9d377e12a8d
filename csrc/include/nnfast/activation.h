// Activations: pointwise, PReLU, Swish, gated units (GLU / SwiGLU), softmax,
// step / sign. Forward then backward; every array is C-contiguous.
// Shape letters: n elements; N batch, C channels, S positions per channel;
// outer x D x inner around a softmax dim; outer x (2 L) for a gated input.
// Gradients follow nnfast/common.h: dx overwrites (=), dweight / dbeta accumulate (+=).
// Float32 and float64 instantiations exist for every kernel.
#pragma once
#include "nnfast/common.h"

namespace nnfast {

namespace cpu {
// y[i] = act(x[i]); y may equal x (in place).
template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p);

// dx[i] = dy[i] * act'(saved[i]); `saved` is the output y when
// act_grad_from_output(act), otherwise the input x. dx may equal dy.
template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p);

// PReLU: x (N, C, S), weight (C,): y = x > 0 ? x : weight[c] x. A shared
// weight is C = 1 (fold the channels into S).
template <typename T>
void prelu_forward(T* y, const T* x, const T* weight, index_t N, index_t C, index_t S);
// dx = dy * (x > 0 ? 1 : w[c]) (skipped when dx is null);
// dweight[c] += sum over x <= 0 of dy * x (skipped when dweight is null).
// The reduction uses fixed blocks, so it does not depend on the thread count.
template <typename T>
void prelu_backward(T* dx, T* dweight, const T* dy, const T* x, const T* weight, index_t N, index_t C, index_t S);

// Swish (nnfast): y = x sigmoid(beta x); beta = 1 is SiLU.
template <typename T>
void swish_forward(T* y, const T* x, index_t n, T beta);
// dx = dy (s + beta x s (1 - s)) (skipped when dx is null);
// *dbeta += sum dy x^2 s (1 - s) (skipped when dbeta is null).
template <typename T>
void swish_backward(T* dx, T* dbeta, const T* dy, const T* x, index_t n, T beta);

// Gated units on x viewed as (outer, 2, L): y (outer, L) = value * act(gate).
// GLU: value = first half, gate = second, act = Sigmoid (gate_first = false).
// SwiGLU: gate = first half, value = second, act = SiLU (gate_first = true).
// act may be Sigmoid, SiLU, GELU, GELUTanh, ReLU or Identity.
template <typename T>
void glu_forward(T* y, const T* x, index_t outer, index_t L, Act act, bool gate_first);
// dx (outer, 2, L) from dy (outer, L).
template <typename T>
void glu_backward(T* dx, const T* dy, const T* x, index_t outer, index_t L, Act act, bool gate_first);

// Softmax (log = false) or log-softmax (log = true) over D of x (outer, D, inner).
// Max-subtracted, so any finite input is safe.
template <typename T>
void softmax_forward(T* y, const T* x, index_t outer, index_t D, index_t inner, bool log);
// From the saved output y: softmax dx = y (dy - sum dy y); log-softmax
// dx = dy - exp(y) sum dy.
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, index_t outer, index_t D, index_t inner, bool log);

// Perceptron step y = x > threshold ? 1 : 0 (sign = false) or sign(x) in
// {-1, 0, 1} (sign = true). Forward only: the derivative is zero wherever it
// exists. NaN stays NaN.
template <typename T>
void step_forward(T* y, const T* x, index_t n, bool sign, T threshold);
}  // namespace cpu

}  // namespace nnfast

// Pointwise activations, forward then backward.
#include "nnfast/activation.h"

#include "core/parallel_for.h"
#include "core/pointwise.h"

namespace nnfast {

template <typename T>
void act_forward(T* y, const T* x, index_t n, Act act, const ActParams& p) {
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) y[i] = act_forward(act, x[i], p);
  });
}

template <typename T>
void act_backward(T* dx, const T* dy, const T* saved, index_t n, Act act, const ActParams& p) {
  const bool from_out = act_grad_from_output(act);
  parallel_for(n, kElementwiseGrain, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      T s = saved[i];
      dx[i] = dy[i] * act_derivative(act, from_out ? T(0) : s, from_out ? s : T(0), p);
    }
  });
}

template void act_forward<float>(float*, const float*, index_t, Act, const ActParams&);
template void act_forward<double>(double*, const double*, index_t, Act, const ActParams&);
template void act_backward<float>(float*, const float*, const float*, index_t, Act, const ActParams&);
template void act_backward<double>(double*, const double*, const double*, index_t, Act, const ActParams&);

}  // namespace nnfast

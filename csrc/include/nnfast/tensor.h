// Tensor arithmetic of the autograd tape: broadcasting binary ops, reductions over one
// dim (with the index of the extreme for max / min), the scatter that is their
// backward, and dtype casts. Float32 and float64 instantiations exist.
//
// Layouts. A binary op writes a C-contiguous `out` of `shape` (ndim <= kMaxDims);
// each input is read through its own element strides over that shape (stride 0 on a
// broadcast dim; any sign), so broadcast and non-contiguous inputs need no copy.
// A reduction views its C-contiguous input as [outer, n, inner] and reduces the middle
// dim into a C-contiguous [outer, inner].
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

// The ops, X(Enum, python name); an op's code is its position in the list (the bindings
// export the names, nnfast._C.TENSOR_BINARY_OPS / TENSOR_REDUCE_OPS, in this order).
#define NNFAST_BINARY_OPS(X) X(Add, add) X(Sub, sub) X(Mul, mul) X(Div, div)
#define NNFAST_REDUCE_OPS(X) X(Sum, sum) X(Mean, mean) X(Max, max) X(Min, min)

#define NNFAST_ENUM_ENTRY(E, name) E,
enum class BinaryOp : int { NNFAST_BINARY_OPS(NNFAST_ENUM_ENTRY) };
enum class ReduceOp : int { NNFAST_REDUCE_OPS(NNFAST_ENUM_ENTRY) };
#undef NNFAST_ENUM_ENTRY

constexpr int kMaxDims = 8;

// Shape of `out` and the element strides of the two inputs over it.
struct BroadcastArgs {
  int ndim = 0;
  index_t shape[kMaxDims] = {};
  index_t a_stride[kMaxDims] = {};
  index_t b_stride[kMaxDims] = {};
};

namespace cpu {
// out = a (op) b elementwise over args.shape. out must not overlap a or b unless it is
// that input itself, C-contiguous and of out's shape (an in-place update).
template <typename T>
void binary_broadcast(BinaryOp op, const BroadcastArgs& args, const T* a, const T* b, T* out);

// out[o, i] = reduce_j x[o, j, i]. Sum and Mean accumulate in double (the order is fixed:
// the result does not depend on the thread count); Mean of n = 0 is NaN. Max / Min need
// n >= 1 and propagate NaN; `index` (nullable) receives the first j of the extreme (of the
// first NaN when there is one), as numpy.argmax / argmin.
template <typename T>
void reduce_dim(ReduceOp op, const T* x, index_t outer, index_t n, index_t inner, T* out, std::int64_t* index);

// The backward of a max / min over a dim: out[o, j, i] = j == index[o, i] ? grad[o, i] : 0
// (out is overwritten: it is the gradient of the reduction's input).
template <typename T>
void scatter_dim(T* out, const T* grad, const std::int64_t* index, index_t outer, index_t n, index_t inner);

// out[i] = To(x[i]) (round to nearest even for double -> float).
template <typename From, typename To>
void cast(To* out, const From* x, index_t n);
}  // namespace cpu

}  // namespace nnfast

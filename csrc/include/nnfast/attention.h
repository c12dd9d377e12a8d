// Fused scaled dot-product attention (flash-style), forward then backward.
//
//   out = dropout(softmax(scale * q k^T + mask)) v          per batch-head bh
//
// Shape letters: BH batch-heads (every broadcast batch dim flattened, C order),
// L query rows, S key rows, E query/key features, Ev value features.
//
// Operands are strided views: matrix bh of q is the L x E block at
// q.base + q.off[bh] with row stride q.rs and unit column stride, so broadcast
// batch dims (offset repeated) and grouped-query heads (several bh sharing one
// key/value offset) cost no copy. The mask (optional) is read tile by tile at
// mask.off[bh] + i * rs + j * cs (rs / cs may be 0 for a broadcast dim):
// bool (uint8, nonzero = take part) or additive float of the data dtype.
//
// Nothing of size L x S is ever allocated: forward keeps a running max / sum per
// query row (online softmax) and saves only out and the row log-sum-exp lse
// (+inf for a row with no key taking part: its output is 0 and its gradients 0,
// as torch's CPU kernel). Backward recomputes each probability tile from lse.
// Causal (is_causal): key j takes part in row i iff j <= i (torch.tril of the
// L x S matrix); tiles wholly above the diagonal are skipped.
// Dropout: element (bh, i, j) is kept iff counter_rng::dropout_bits(key, (bh*L+i)*S+j)
// < keep_threshold(p) (the mask F.dropout would draw on the L x S probabilities
// with the same seed / offset), regenerated in backward, never stored.
//
// Gradients (contract of nnfast/common.h): dq, dk, dv, dmask are input gradients
// and are overwritten. dk / dv are per bh (BH, S, E) / (BH, S, Ev): the caller sums
// over heads that share a key/value (GQA) or a broadcast batch dim. dmask (BH, L, S),
// C-contiguous, may be null (not wanted). Results do not depend on the thread count.
#pragma once
#include <stdint.h>

#include "nnfast/common.h"

namespace nnfast {

// One strided operand (see above).
template <typename T>
struct AttnOperand {
  const T* base = nullptr;
  const int64_t* off = nullptr;  // (BH,) element offsets
  index_t rs = 0;                // row stride in elements (unit column stride)
};

// One matrix per batch-head of an output (or of dout / out in backward): matrix bh at
// base + off[bh] with row stride rs, unit columns; off null means C-contiguous (BH, rows, rs).
// packed_self_attention writes the merged heads / the packed dq, dk, dv through it in place.
template <typename T>
struct AttnMat {
  T* base = nullptr;
  const int64_t* off = nullptr;
  index_t rs = 0;
  T* at(index_t bh, index_t rows) const { return base + (off ? off[bh] : bh * rows * rs); }
};

struct AttnMask {
  const void* base = nullptr;  // null: no mask
  bool is_bool = false;        // uint8 keep flags, else additive values of the data dtype
  const int64_t* off = nullptr;
  index_t rs = 0, cs = 0;
};

struct AttnParams {
  index_t BH = 0, L = 0, S = 0, E = 0, Ev = 0;
  double scale = 1.0;
  bool causal = false;
  double dropout_p = 0.0;  // in [0, 1)
  uint64_t seed = 0, offset = 0;
  // float only (autocast): every tile product on the bf16 GEMM (cpu::gemm_bf16: operands rounded
  // to bf16 as packed -- Q, K, V, dO and the P / dS tiles -- products accumulated in float32);
  // softmax, its statistics, D and dS stay float32.
  bool bf16 = false;
};

template <typename T>
struct AttnInputs {
  AttnOperand<T> q, k, v;
  AttnMask mask;
};

namespace cpu {
// out (BH, L, Ev) and lse (BH, L), C-contiguous, written.
template <typename T>
void sdpa_forward(T* out, T* lse, const AttnInputs<T>& in, const AttnParams& p);
// The same with out's matrices strided (AttnMat; lse stays (BH, L)).
template <typename T>
void sdpa_forward(const AttnMat<T>& out, T* lse, const AttnInputs<T>& in, const AttnParams& p);

// dq (BH, L, E), dk (BH, S, E), dv (BH, S, Ev), dmask (BH, L, S) or null, written,
// from dout (BH, L, Ev) and forward's out / lse (all C-contiguous).
template <typename T>
void sdpa_backward(T* dq, T* dk, T* dv, T* dmask, const T* dout, const T* out, const T* lse,
                   const AttnInputs<T>& in, const AttnParams& p);
// The same with dq / dk / dv / dout / out strided (AttnMat; their matrices must not overlap).
template <typename T>
void sdpa_backward(const AttnMat<T>& dq, const AttnMat<T>& dk, const AttnMat<T>& dv, T* dmask,
                   const AttnMat<const T>& dout, const AttnMat<const T>& out, const T* lse, const AttnInputs<T>& in,
                   const AttnParams& p);
}  // namespace cpu

}  // namespace nnfast

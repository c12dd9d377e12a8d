// Embedding lookups: a row gather (forward) and a deterministic scatter-add
// (backward), plain and in bags (sum / mean / max), plus max_norm renorm.
// Shape letters: R rows of the table (num_embeddings), D embedding dim,
// N looked-up indices, B bags. weight is (R, D) C-contiguous; indices are
// int32 or int64 (I), already checked to lie in [0, R) (embedding_index_range).
// padding_idx < 0 means none. Float32 and float64 instantiations exist.
//
// Determinism: backward kernels split the ROWS of dweight among workers (row r
// belongs to partition r % P), every worker scans the indices in position order
// and adds only its rows' contributions. Each row's sum is therefore formed in
// position order whatever the thread count: the same bits with 1 or 64 threads.
#pragma once
#include <cstdint>

#include "nnfast/common.h"

namespace nnfast {

// Bag reduction modes (PyTorch's order: sum 0, mean 1, max 2).
enum class BagMode : int { Sum = 0, Mean = 1, Max = 2 };

namespace cpu {

// min and max of idx[0..N) into *lo / *hi (N == 0: lo = 0, hi = -1).
template <typename I>
void embedding_index_range(const I* idx, index_t N, index_t* lo, index_t* hi);

// out[n, :] = weight[idx[n], :]; out is (N, D).
template <typename T, typename I>
void embedding_forward(T* out, const T* weight, const I* idx, index_t N, index_t D);

// dweight[idx[n]] += dy[n] * (scale_grad_by_freq ? 1 / count(idx[n]) : 1) for every n
// with idx[n] != padding_idx (a parameter gradient: accumulated). dy is (N, D).
template <typename T, typename I>
void embedding_backward(T* dweight, const T* dy, const I* idx, index_t N, index_t D, index_t R,
                        index_t padding_idx, bool scale_grad_by_freq);

// In place, as PyTorch: each distinct row r of idx whose norm_type-norm exceeds
// max_norm is scaled by max_norm / (norm + 1e-7). weight is (R, D).
template <typename T, typename I>
void embedding_renorm(T* weight, const I* idx, index_t N, index_t D, index_t R, double max_norm,
                      double norm_type);

// Bags: bag b holds positions [offsets[b], offsets[b + 1]) of idx (offsets has B + 1
// ascending int64 entries, offsets[B] <= N). Entries equal to padding_idx are left out
// (and not counted by mean). out is (B, D):
//   sum:  out[b] = sum_n w_n weight[idx[n]]     (w_n = per_sample_weights[n], or 1 when null)
//   mean: out[b] = sum_n weight[idx[n]] / count (zeros for an empty bag)
//   max:  out[b, d] = max_n weight[idx[n], d], argmax (the row index, first on ties) in
//         max_indices (B, D) (an empty bag: 0 and index -1); max_indices is null otherwise.
template <typename T, typename I>
void embedding_bag_forward(T* out, index_t* max_indices, const T* weight, const I* idx, const index_t* offsets,
                           const T* per_sample_weights, index_t B, index_t D, index_t padding_idx, BagMode mode);

// Backward of embedding_bag_forward; dy is (B, D).
//   sum / mean: dweight[idx[n]] += c_n dy[bag(n)], c_n = w_n (sum) or 1 / count (mean), times
//               1 / count(idx[n]) in the batch when scale_grad_by_freq;
//   max:        dweight[max_indices[b, d], d] += dy[b, d].
// dweight is accumulated. dpsw (nullable, sum mode with weights; overwritten):
// dpsw[n] = dot(weight[idx[n]], dy[bag(n)]) (0 for padding and positions in no bag).
template <typename T, typename I>
void embedding_bag_backward(T* dweight, T* dpsw, const T* dy, const T* weight, const I* idx, const index_t* offsets,
                            const T* per_sample_weights, const index_t* max_indices, index_t N, index_t B, index_t D,
                            index_t R, index_t padding_idx, BagMode mode, bool scale_grad_by_freq);

}  // namespace cpu
}  // namespace nnfast

// Fused scaled dot-product attention on CUDA: the twin of cpu/attention.cpp
// (semantics in nnfast/attention.h). One thread per output row, kRows rows per block:
//   forward   block = (bh, query tile): key / value tiles staged in shared memory,
//             per-row online softmax (running max m, sum l, rescaled output row);
//             saves out and the row lse;
//   backward  D = rowsum(dout * out); a dK / dV kernel over (bh, key tile), each
//             thread owning one key row and walking the query tiles in order; a dQ
//             kernel over (bh, query tile), each thread owning one query row and
//             walking the key tiles in order. Probabilities are recomputed from lse;
//             nothing is accumulated by two threads, so no atomics and fixed bits.
// Dropout draws the CPU kernel's counter-based mask (element (bh*L + i)*S + j).
#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

#include <stdexcept>
#include <string>

#include "core/counter_rng.h"
#include "nnfast/cuda/attention.h"

namespace nnfast {
namespace cuda {
namespace {

constexpr int kRows = 64;                   // threads (= owned rows) per block
constexpr size_t kSharedBytes = 40 * 1024;  // shared tiles per block (under the 48 KiB static limit)

// Everything a kernel reads, by value. off: device (4, BH) offsets of q, k, v, mask.
template <typename T>
struct Args {
  const T *q, *k, *v;
  const void* mask;
  bool mask_bool;
  const int64_t* off;
  index_t rs_q, rs_k, rs_v, rs_m, cs_m;
  index_t BH, L, S, E, Ev;
  T scale;
  bool causal;
  bool dropout;
  uint64_t key;
  uint32_t keep;
  T inv_keep;  // 1 / (1 - p)
};

// The score of (i, j) after the causal rule and the mask.
template <typename T>
__device__ __forceinline__ T masked(const Args<T>& a, index_t bh, index_t i, index_t j, T s) {
  const T ninf = -static_cast<T>(INFINITY);
  if (a.causal && j > i) return ninf;
  if (a.mask) {
    const index_t idx = a.off[3 * a.BH + bh] + i * a.rs_m + j * a.cs_m;
    if (a.mask_bool) return static_cast<const uint8_t*>(a.mask)[idx] ? s : ninf;
    return s + static_cast<const T*>(a.mask)[idx];
  }
  return s;
}

// keep / (1 - p) for element (bh, i, j), 1 without dropout.
template <typename T>
__device__ __forceinline__ T drop(const Args<T>& a, index_t bh, index_t i, index_t j) {
  if (!a.dropout) return T(1);
  const uint64_t e = (static_cast<uint64_t>(bh) * a.L + i) * a.S + j;
  return counter_rng::dropout_bits(a.key, e) < a.keep ? a.inv_keep : T(0);
}

// Stage rows [r0, r0 + n) of a strided operand (row stride rs, cols contiguous) into sh (n x cols).
template <typename T>
__device__ __forceinline__ void stage(T* sh, const T* base, index_t rs, index_t r0, index_t n, index_t cols) {
  for (index_t t = threadIdx.x; t < n * cols; t += blockDim.x) sh[t] = base[(r0 + t / cols) * rs + t % cols];
}

template <typename T>
__global__ void sdpa_forward_kernel(T* out, T* lse, Args<T> a, int Bk) {
  NNFAST_DYNAMIC_SHARED(double, smem_raw);
  T* sk = reinterpret_cast<T*>(smem_raw);
  T* sv = sk + Bk * a.E;
  T* ss = sv + Bk * a.Ev + threadIdx.x * Bk;  // this thread's scores of the tile
  const index_t nqb = (a.L + kRows - 1) / kRows;
  const index_t bh = blockIdx.x / nqb, i0 = (blockIdx.x % nqb) * kRows, i = i0 + threadIdx.x;
  const bool row = i < a.L;
  const T ninf = -static_cast<T>(INFINITY);
  const T* q = a.q + a.off[bh] + i * a.rs_q;
  const T* kb = a.k + a.off[a.BH + bh];
  const T* vb = a.v + a.off[2 * a.BH + bh];
  T* o = out + (bh * a.L + i) * a.Ev;
  if (row)
    for (index_t e = 0; e < a.Ev; ++e) o[e] = T(0);
  T m = ninf, l = T(0);
  const index_t last = i0 + kRows < a.L ? i0 + kRows : a.L;  // the block's rows end here
  const index_t jend = a.causal ? (a.S < last ? a.S : last) : a.S;
  for (index_t j0 = 0; j0 < jend; j0 += Bk) {
    const index_t nk = jend - j0 < Bk ? jend - j0 : Bk;
    __syncthreads();  // the previous tile is no longer read
    stage(sk, kb, a.rs_k, j0, nk, a.E);
    stage(sv, vb, a.rs_v, j0, nk, a.Ev);
    __syncthreads();
    if (!row) continue;
    T mx = ninf;
    for (index_t c = 0; c < nk; ++c) {
      T s = T(0);
      for (index_t e = 0; e < a.E; ++e) s += q[e] * sk[c * a.E + e];
      s = masked(a, bh, i, j0 + c, s * a.scale);
      ss[c] = s;
      mx = s > mx ? s : mx;
    }
    const T m_new = mx > m ? mx : m;
    const T shift = m_new == ninf ? T(0) : m_new;  // no key yet: exp(-inf) = 0, not NaN
    const T alpha = m == ninf ? T(0) : scalar::exp(m - shift);
    T sum = T(0);
    for (index_t c = 0; c < nk; ++c) {
      const T pr = scalar::exp(ss[c] - shift);
      sum += pr;
      ss[c] = pr * drop(a, bh, i, j0 + c);
    }
    l = l * alpha + sum;
    m = m_new;
    for (index_t e = 0; e < a.Ev; ++e) {
      T acc = o[e] * alpha;
      for (index_t c = 0; c < nk; ++c) acc += ss[c] * sv[c * a.Ev + e];
      o[e] = acc;
    }
  }
  if (!row) return;
  if (l > T(0)) {
    const T inv = T(1) / l;
    for (index_t e = 0; e < a.Ev; ++e) o[e] *= inv;
    lse[bh * a.L + i] = m + scalar::log(l);
  } else {  // no key takes part: output 0, and +inf makes every recomputed probability 0
    for (index_t e = 0; e < a.Ev; ++e) o[e] = T(0);
    lse[bh * a.L + i] = static_cast<T>(INFINITY);
  }
}

template <typename T>
__global__ void sdpa_rowdot_kernel(T* d, const T* dout, const T* out, index_t rows, index_t Ev) {
  const index_t r = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  T s = T(0);
  for (index_t e = 0; e < Ev; ++e) s += dout[r * Ev + e] * out[r * Ev + e];
  d[r] = s;
}

// dK / dV: thread = key row j of the block's key tile; query tiles of Bq rows staged in shared memory.
template <typename T>
__global__ void sdpa_dkv_kernel(T* dk, T* dv, T* dmask, const T* dout, const T* lse, const T* D, Args<T> a, int Bq) {
  NNFAST_DYNAMIC_SHARED(double, smem_raw);
  T* sq = reinterpret_cast<T*>(smem_raw);
  T* sdo = sq + Bq * a.E;
  T* sl = sdo + Bq * a.Ev;
  T* sd = sl + Bq;
  const index_t nkb = (a.S + kRows - 1) / kRows;
  const index_t bh = blockIdx.x / nkb, j0 = (blockIdx.x % nkb) * kRows, j = j0 + threadIdx.x;
  const bool row = j < a.S;
  const T* k = a.k + a.off[a.BH + bh] + j * a.rs_k;
  const T* v = a.v + a.off[2 * a.BH + bh] + j * a.rs_v;
  T* dkj = dk + (bh * a.S + j) * a.E;
  T* dvj = dv + (bh * a.S + j) * a.Ev;
  if (row) {
    for (index_t e = 0; e < a.E; ++e) dkj[e] = T(0);
    for (index_t e = 0; e < a.Ev; ++e) dvj[e] = T(0);
  }
  const T* qb = a.q + a.off[bh];
  const index_t istart = a.causal ? (j0 < a.L ? j0 : a.L) : 0;  // rows i < j0 see none of these keys
  for (index_t i0 = istart; i0 < a.L; i0 += Bq) {
    const index_t nq = a.L - i0 < Bq ? a.L - i0 : Bq;
    __syncthreads();
    stage(sq, qb, a.rs_q, i0, nq, a.E);
    stage(sdo, dout + bh * a.L * a.Ev, a.Ev, i0, nq, a.Ev);
    for (index_t t = threadIdx.x; t < nq; t += blockDim.x) {
      sl[t] = lse[bh * a.L + i0 + t];
      sd[t] = D[bh * a.L + i0 + t];
    }
    __syncthreads();
    if (!row) continue;
    for (index_t r = 0; r < nq; ++r) {
      const index_t i = i0 + r;
      T s = T(0);
      for (index_t e = 0; e < a.E; ++e) s += sq[r * a.E + e] * k[e];
      s = masked(a, bh, i, j, s * a.scale);
      const T pr = scalar::exp(s - sl[r]);
      const T kp = drop(a, bh, i, j);
      const T pd = pr * kp;
      T dp = T(0);
      for (index_t e = 0; e < a.Ev; ++e) {
        dvj[e] += pd * sdo[r * a.Ev + e];
        dp += sdo[r * a.Ev + e] * v[e];
      }
      const T ds = pr * (dp * kp - sd[r]);
      for (index_t e = 0; e < a.E; ++e) dkj[e] += a.scale * ds * sq[r * a.E + e];
      if (dmask) dmask[(bh * a.L + i) * a.S + j] = ds;
    }
  }
}

// dQ: thread = query row i of the block's query tile; key / value tiles staged in shared memory.
template <typename T>
__global__ void sdpa_dq_kernel(T* dq, const T* dout, const T* lse, const T* D, Args<T> a, int Bk) {
  NNFAST_DYNAMIC_SHARED(double, smem_raw);
  T* sk = reinterpret_cast<T*>(smem_raw);
  T* sv = sk + Bk * a.E;
  const index_t nqb = (a.L + kRows - 1) / kRows;
  const index_t bh = blockIdx.x / nqb, i0 = (blockIdx.x % nqb) * kRows, i = i0 + threadIdx.x;
  const bool row = i < a.L;
  const T* do_i = dout + (bh * a.L + i) * a.Ev;
  T* dqi = dq + (bh * a.L + i) * a.E;
  if (row)
    for (index_t e = 0; e < a.E; ++e) dqi[e] = T(0);
  const T li = row ? lse[bh * a.L + i] : T(0);
  const T di = row ? D[bh * a.L + i] : T(0);
  const T* kb = a.k + a.off[a.BH + bh];
  const T* vb = a.v + a.off[2 * a.BH + bh];
  const T* q = a.q + a.off[bh] + i * a.rs_q;
  const index_t last = i0 + kRows < a.L ? i0 + kRows : a.L;
  const index_t jend = a.causal ? (a.S < last ? a.S : last) : a.S;
  for (index_t j0 = 0; j0 < jend; j0 += Bk) {
    const index_t nk = jend - j0 < Bk ? jend - j0 : Bk;
    __syncthreads();
    stage(sk, kb, a.rs_k, j0, nk, a.E);
    stage(sv, vb, a.rs_v, j0, nk, a.Ev);
    __syncthreads();
    if (!row) continue;
    for (index_t c = 0; c < nk; ++c) {
      T s = T(0);
      for (index_t e = 0; e < a.E; ++e) s += q[e] * sk[c * a.E + e];
      s = masked(a, bh, i, j0 + c, s * a.scale);
      const T pr = scalar::exp(s - li);
      T dp = T(0);
      for (index_t e = 0; e < a.Ev; ++e) dp += do_i[e] * sv[c * a.Ev + e];
      const T ds = pr * (dp * drop(a, bh, i, j0 + c) - di);
      for (index_t e = 0; e < a.E; ++e) dqi[e] += a.scale * ds * sk[c * a.E + e];
    }
  }
}

// Rows of a tile so that `rows * per_row + fixed` elements of T fit kSharedBytes (at least 1, at most 32).
template <typename T>
int tile_rows(index_t per_row, index_t fixed_per_row = 0) {
  const index_t budget = static_cast<index_t>(kSharedBytes / sizeof(T));
  index_t r = budget / (per_row + fixed_per_row > 0 ? per_row + fixed_per_row : 1);
  return static_cast<int>(r < 1 ? 1 : (r > 32 ? 32 : r));
}

// One row of every staged tile must fit the 48 KiB a block may use without opting in.
template <typename T>
void check_tile_fits(index_t E, index_t Ev) {
  const index_t per_row = E + Ev + kRows + 2;
  if (static_cast<size_t>(per_row) * sizeof(T) > 48 * 1024)
    throw std::invalid_argument("[scaled_dot_product_attention] expected E + Ev <= " +
                                std::to_string(48 * 1024 / sizeof(T) - kRows - 2) + " on cuda, got " +
                                std::to_string(E + Ev));
}

// The kernels' arguments, with the offsets copied to the device workspace `off`.
template <typename T>
Args<T> make_args(const AttnInputs<T>& in, const AttnParams& p, Scratch<int64_t>& off, cudaStream_t stream) {
  const size_t n = static_cast<size_t>(p.BH);
  if (n) {
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(off.p, in.q.off, n * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(off.p + n, in.k.off, n * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    NNFAST_CUDA_CHECK(cudaMemcpyAsync(off.p + 2 * n, in.v.off, n * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    if (in.mask.base)
      NNFAST_CUDA_CHECK(
          cudaMemcpyAsync(off.p + 3 * n, in.mask.off, n * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
  }
  Args<T> a;
  a.q = in.q.base, a.k = in.k.base, a.v = in.v.base;
  a.mask = in.mask.base, a.mask_bool = in.mask.is_bool;
  a.off = off.p;
  a.rs_q = in.q.rs, a.rs_k = in.k.rs, a.rs_v = in.v.rs, a.rs_m = in.mask.rs, a.cs_m = in.mask.cs;
  a.BH = p.BH, a.L = p.L, a.S = p.S, a.E = p.E, a.Ev = p.Ev;
  a.scale = static_cast<T>(p.scale);
  a.causal = p.causal;
  a.dropout = p.dropout_p > 0;
  a.key = counter_rng::dropout_stream_key(p.seed, p.offset);
  a.keep = counter_rng::keep_threshold(p.dropout_p);
  a.inv_keep = T(1) / T(1.0 - p.dropout_p);
  return a;
}

}  // namespace

template <typename T>
void sdpa_forward(T* out, T* lse, const AttnInputs<T>& in, const AttnParams& p, cudaStream_t stream) {
  if (p.BH <= 0 || p.L <= 0) return;
  check_tile_fits<T>(p.E, p.Ev);
  Scratch<int64_t> off(4 * p.BH, stream);
  const Args<T> a = make_args(in, p, off, stream);
  const int Bk = tile_rows<T>(p.E + p.Ev, kRows);
  const size_t smem = static_cast<size_t>(Bk) * (p.E + p.Ev + kRows) * sizeof(T);
  const index_t blocks = p.BH * ((p.L + kRows - 1) / kRows);
  auto* k = sdpa_forward_kernel<T>;
  NNFAST_LAUNCH(k, static_cast<unsigned>(blocks), kRows, smem, stream)(out, lse, a, Bk);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template <typename T>
void sdpa_backward(T* dq, T* dk, T* dv, T* dmask, const T* dout, const T* out, const T* lse,
                   const AttnInputs<T>& in, const AttnParams& p, cudaStream_t stream) {
  if (p.BH <= 0) return;
  const index_t BH = p.BH, L = p.L, S = p.S;
  if (dmask && L * S > 0) NNFAST_CUDA_CHECK(cudaMemsetAsync(dmask, 0, BH * L * S * sizeof(T), stream));
  if (L <= 0 || S <= 0) {  // nothing attends: every gradient is 0
    if (L * p.E > 0) NNFAST_CUDA_CHECK(cudaMemsetAsync(dq, 0, BH * L * p.E * sizeof(T), stream));
    if (S * p.E > 0) NNFAST_CUDA_CHECK(cudaMemsetAsync(dk, 0, BH * S * p.E * sizeof(T), stream));
    if (S * p.Ev > 0) NNFAST_CUDA_CHECK(cudaMemsetAsync(dv, 0, BH * S * p.Ev * sizeof(T), stream));
    return;
  }
  check_tile_fits<T>(p.E, p.Ev);
  Scratch<int64_t> off(4 * BH, stream);
  Scratch<T> D(BH * L, stream);
  const Args<T> a = make_args(in, p, off, stream);
  auto* kd = sdpa_rowdot_kernel<T>;
  NNFAST_LAUNCH(kd, static_cast<unsigned>((BH * L + 255) / 256), 256, 0, stream)(D.p, dout, out, BH * L, p.Ev);
  NNFAST_CUDA_CHECK_LAUNCH();
  const int Bq = tile_rows<T>(p.E + p.Ev + 2);
  auto* kkv = sdpa_dkv_kernel<T>;
  NNFAST_LAUNCH(kkv, static_cast<unsigned>(BH * ((S + kRows - 1) / kRows)), kRows,
                static_cast<size_t>(Bq) * (p.E + p.Ev + 2) * sizeof(T), stream)(dk, dv, dmask, dout, lse, D.p, a, Bq);
  NNFAST_CUDA_CHECK_LAUNCH();
  const int Bk = tile_rows<T>(p.E + p.Ev);
  auto* kq = sdpa_dq_kernel<T>;
  NNFAST_LAUNCH(kq, static_cast<unsigned>(BH * ((L + kRows - 1) / kRows)), kRows,
                static_cast<size_t>(Bk) * (p.E + p.Ev) * sizeof(T), stream)(dq, dout, lse, D.p, a, Bk);
  NNFAST_CUDA_CHECK_LAUNCH();
}

template void sdpa_forward<float>(float*, float*, const AttnInputs<float>&, const AttnParams&, cudaStream_t);
template void sdpa_forward<double>(double*, double*, const AttnInputs<double>&, const AttnParams&, cudaStream_t);
template void sdpa_backward<float>(float*, float*, float*, float*, const float*, const float*, const float*,
                                   const AttnInputs<float>&, const AttnParams&, cudaStream_t);
template void sdpa_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                    const double*, const AttnInputs<double>&, const AttnParams&, cudaStream_t);

}  // namespace cuda
}  // namespace nnfast

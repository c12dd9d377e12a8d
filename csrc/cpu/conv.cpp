// Convolution driver.
//
// Default: implicit GEMM (conv_internal.h). Per image and group, the GEMM's B operand is the
// image's patch matrix (row r = (c, ky, kx), column q = (oh, ow)), packed straight from x into
// the GEMM's panels by conv_isa.cpp; nothing the size of the patch matrix is written.
// Forward:       y_n[g] = W[g] . patches(x_n)[g]          (+ bias while the block is in cache)
// Input grad:    stride 1: dx = the forward convolution of dy with the flipped, transposed
//                kernel and padding d (k - 1) - p (no col2im pass)
// Weight grad:   fp32 on AVX-512: dW[g] (+)= dy_n[g] . patches(x_n)[g]^T
// Threads take whole images (1-thread GEMMs) or, for small batches, run inside each GEMM;
// every element is the same K-ordered sum either way. Where OH OW is not a multiple of 16, a
// forward GEMM takes several images side by side (full column panels; see forward_implicit).
//
// Otherwise (and with NNFAST_CONV_IMPLICIT=0, kept for A/B timing): explicit im2col over
// bounded chunks of column space q = (n, oh, ow), Q = N * OH * OW. A chunk [q0, q0 + qn)
// of it is processed at a time (qn depends on the shape only, so results do not
// depend on the thread count):
//   col (C kh kw, qn)  the chunk's input patches, row r = (c, ky, kx); rows of group g
//                      are the contiguous block [g Kg, (g + 1) Kg), Kg = C / G * kh * kw
//   out (OC, qn)       the chunk's outputs (or output gradients), gathered per channel
// Forward:       out[g] = W[g] . col[g]                (then scattered to y, + bias)
// Input grad:    col[g] = W[g]^T . out[g]              (then col2im-added into dx)
// (When a chunk holds whole images, forward writes each image's product straight into y
// and input grad reads each image's dy in place: out is then only the weight grad's.)
// Weight grad:   dW[g] (+)= out[g] . col[g]^T          (summed over chunks in order)
// Each is one cpu::gemm_batched over the groups. When a chunk holds whole images (the
// usual case) threads take whole chunks; for images larger than a chunk, chunks run in
// order with threads inside each GEMM and inside the gathers / scatters (split by patch
// row / channel). Either way no two threads write one element.
#include "nnfast/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/conv_geometry.h"
#include "core/parallel_for.h"
#include "cpu/conv_internal.h"
#include "cpu/gemm_internal.h"
#include "nnfast/gemm.h"
#include "nnfast/parallel.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

// Elements per thread below which a gather / scatter stays serial.
constexpr index_t kCopyGrain = 16384;

using conv_detail::Geometry;
using conv_detail::max1;

using conv_driver::add_parts;
using conv_driver::scratch;
using conv_driver::valid_cols;

// Walks the chunk [q0, q0 + qn) as runs within one output row: f(n, oh, ow0, len, pos) where pos
// is the run's offset inside the chunk.
template <typename F>
inline void for_each_row_run(const Geometry& g, index_t q0, index_t qn, F&& f) {
  index_t q = q0;
  const index_t end = q0 + qn;
  while (q < end) {
    const index_t n = q / g.P, p = q % g.P, oh = p / g.s.OW, ow0 = p % g.s.OW;
    const index_t len = std::min(g.s.OW - ow0, end - q);
    f(n, oh, ow0, len, q - q0);
    q += len;
  }
}

// col (Kc, qn) = the input patches of the chunk (zeros where the window covers padding).
template <typename T>
void im2col(T* col, const T* x, const Geometry& g, index_t q0, index_t qn) {
  const Conv2dShape& s = g.s;
  parallel_for(g.Kc, max1(kCopyGrain / qn), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const index_t c = r / g.kk, ky = (r % g.kk) / s.kw, kx = r % s.kw;
      const index_t off = kx * s.dw - s.pw;
      index_t lo_ow, hi_ow;
      valid_cols(off, s.sw, s.W, s.OW, &lo_ow, &hi_ow);
      T* row = col + r * qn;
      for_each_row_run(g, q0, qn, [&](index_t n, index_t oh, index_t ow0, index_t len, index_t pos) {
        T* d = row + pos;
        const index_t ih = oh * s.sh - s.ph + ky * s.dh;
        if (ih < 0 || ih >= s.H) {
          std::fill(d, d + len, T(0));
          return;
        }
        const index_t jlo = std::clamp(lo_ow - ow0, index_t(0), len);
        const index_t jhi = std::clamp(hi_ow - ow0, jlo, len);
        const T* src = x + ((n * s.C + c) * s.H + ih) * s.W + off;
        std::fill(d, d + jlo, T(0));
        if (s.sw == 1) {
          std::memcpy(d + jlo, src + ow0 + jlo, static_cast<size_t>(jhi - jlo) * sizeof(T));
        } else {
          for (index_t j = jlo; j < jhi; ++j) d[j] = src[(ow0 + j) * s.sw];
        }
        std::fill(d + jhi, d + len, T(0));
      });
    }
  });
}

// dx += the patches of col (Kc, qn) put back where they came from. Threads split the input
// channels: channel c receives only from its own rows, added in (ky, kx, q) order.
template <typename T>
void col2im_add(T* dx, const T* col, const Geometry& g, index_t q0, index_t qn) {
  const Conv2dShape& s = g.s;
  parallel_for(s.C, max1(kCopyGrain / (g.kk * qn)), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c)
      for (index_t ky = 0; ky < s.kh; ++ky)
        for (index_t kx = 0; kx < s.kw; ++kx) {
          const index_t off = kx * s.dw - s.pw;
          index_t lo_ow, hi_ow;
          valid_cols(off, s.sw, s.W, s.OW, &lo_ow, &hi_ow);
          const T* row = col + ((c * s.kh + ky) * s.kw + kx) * qn;
          for_each_row_run(g, q0, qn, [&](index_t n, index_t oh, index_t ow0, index_t len, index_t pos) {
            const index_t ih = oh * s.sh - s.ph + ky * s.dh;
            if (ih < 0 || ih >= s.H) return;
            const index_t jlo = std::clamp(lo_ow - ow0, index_t(0), len);
            const index_t jhi = std::clamp(hi_ow - ow0, jlo, len);
            T* dst = dx + ((n * s.C + c) * s.H + ih) * s.W + off;
            const T* src = row + pos;
            for (index_t j = jlo; j < jhi; ++j) dst[(ow0 + j) * s.sw] += src[j];
          });
        }
  });
}

// buf (OC, qn) = y's values at the chunk's positions (y is (N, OC, OH, OW)).
template <typename T>
void gather_out(T* buf, const T* y, const Geometry& g, index_t q0, index_t qn) {
  parallel_for(g.s.OC, max1(kCopyGrain / qn), [&](index_t o0, index_t o1) {
    for (index_t o = o0; o < o1; ++o) {
      index_t q = q0;
      while (q < q0 + qn) {
        const index_t n = q / g.P, p = q % g.P, len = std::min(g.P - p, q0 + qn - q);
        std::memcpy(buf + o * qn + (q - q0), y + (n * g.s.OC + o) * g.P + p, static_cast<size_t>(len) * sizeof(T));
        q += len;
      }
    }
  });
}

// y at the chunk's positions = buf (OC, qn) + bias[o] (bias may be null).
template <typename T>
void scatter_out(T* y, const T* buf, const T* bias, const Geometry& g, index_t q0, index_t qn) {
  parallel_for(g.s.OC, max1(kCopyGrain / qn), [&](index_t o0, index_t o1) {
    for (index_t o = o0; o < o1; ++o) {
      const T b = bias ? bias[o] : T(0);
      index_t q = q0;
      while (q < q0 + qn) {
        const index_t n = q / g.P, p = q % g.P, len = std::min(g.P - p, q0 + qn - q);
        const T* src = buf + o * qn + (q - q0);
        T* dst = y + (n * g.s.OC + o) * g.P + p;
        for (index_t j = 0; j < len; ++j) dst[j] = src[j] + b;
        q += len;
      }
    }
  });
}

// a (rows of `len` elements, channel = row % channels) += bias[channel].
template <typename T>
void add_channel_bias(T* a, const T* bias, index_t rows, index_t channels, index_t len) {
  parallel_for(rows, max1(kCopyGrain / max1(len)), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const T b = bias[r % channels];
      T* p = a + r * len;
      for (index_t j = 0; j < len; ++j) p[j] += b;
    }
  });
}

// db[c] += sum over n and the len positions of a (N, channels, len): per channel one double sum
// in a fixed order (ConvOps::sum_rows over the N blocks).
template <typename T>
void channel_sum_add(T* db, const T* a, index_t N, index_t channels, index_t len) {
  const auto sum_rows = isa_ops<conv_pack::ConvOps<T>>().sum_rows;
  parallel_for(channels, max1(kCopyGrain / max1(N * len)), [&](index_t c0, index_t c1) {
    std::vector<double> s(static_cast<size_t>(c1 - c0), 0.0);
    sum_rows(a + c0 * len, c1 - c0, len, N, channels * len, s.data());
    for (index_t c = c0; c < c1; ++c) db[c] += static_cast<T>(s[static_cast<size_t>(c - c0)]);
  });
}

// ------------------------------------------------------------------ the three products
// When chunks hold whole images, threads take whole chunks (gather, GEMM, scatter on one
// thread: one parallel region per call instead of three per chunk, and no two chunks write
// one element); otherwise chunks run one after another with threads inside each step.
template <typename F>
void for_each_chunk(const Geometry& g, F&& chunk_fn) {
  auto run = [&](index_t c) { chunk_fn(c * g.chunk, std::min(g.chunk, g.Q - c * g.chunk)); };
  if (g.images_per_chunk > 0) {
    parallel_for(g.chunks, 1, [&](index_t c0, index_t c1) {
      for (index_t c = c0; c < c1; ++c) run(c);
    });
  } else {
    for (index_t c = 0; c < g.chunks; ++c) run(c);
  }
}

// Implicit GEMM (the default; NNFAST_CONV_IMPLICIT=0 selects the im2col path for comparison).
inline bool use_implicit() {
  static const bool on = env_switch_on("NNFAST_CONV_IMPLICIT");
  return on;
}

// y = conv(x, w) + bias with the patches packed straight from x into the GEMM's B panels:
// one GEMM per image and group, y's (OCg, P) block as C. Threads take whole images (each
// GEMM on one thread) when the batch splits evenly enough, else run inside each GEMM;
// either way every element is the same K-ordered sum, so the bits do not depend on the
// thread count.
template <typename T>
void forward_implicit(T* y, const T* x, const T* w, const T* bias, const Geometry& g) {
  const Conv2dShape& s = g.s;
  const auto pack = isa_ops<conv_pack::ConvOps<T>>().pack_patches;
  const index_t image = s.C * s.H * s.W, plane = s.H * s.W;
  // The weight (A) is packed into the GEMM's panels once per call, not once per image
  // (NNFAST_CONV_PREPACK=0: each GEMM packs it, for A/B timing; same bits).
  static const bool prepack = env_switch_on("NNFAST_CONV_PREPACK");
  // Images per GEMM: where OH OW is not a multiple of 16 columns (14 x 14 = 196), the last
  // column panel of every image is mostly padding; nb images side by side (columns (n, q)) fill
  // it (4 x 196 = 49 vectors), the product goes to a scratch (OC, nb P) block and is copied into
  // y. A panel spans at most two images (P >= 64 >= the widest panel). Same K order per element:
  // same bits (NNFAST_CONV_MULTI_IMAGE=0: one image per GEMM, for A/B timing).
  static const bool multi = env_switch_on("NNFAST_CONV_MULTI_IMAGE");
  // At most N / threads images per group, so that small batches still give every thread whole
  // groups (the bits do not depend on nb).
  const int nt = get_num_threads();
  const index_t nb = multi && g.P >= 64 && s.N > 1
                         ? std::max(index_t(1), std::min(s.N / nt, 16 / std::gcd(g.P, index_t(16))))
                         : 1;
  // Packed for nb P columns (the GEMM's tile depends on N); a last, smaller group packs its own.
  const index_t wpk = prepack ? gemm_detail::gemm_prepack_a_elems<T>(g.OCg, nb * g.P, g.Kg) : 0;
  std::vector<T> wp(static_cast<size_t>(g.G * wpk));
  for (index_t gr = 0; gr < g.G && wpk > 0; ++gr)
    gemm_detail::gemm_prepack_a<T>(g.OCg, nb * g.P, g.Kg, w + gr * g.OCg * g.Kg, g.Kg, 1, wp.data() + gr * wpk);
  // The bias is added as the GEMM stores each tile (same bits as a pass afterwards, without
  // the pass; NNFAST_CONV_STORE_BIAS=0: the separate pass, for A/B timing).
  static const bool store_bias = env_switch_on("NNFAST_CONV_STORE_BIAS");
  auto gemm_images = [&](index_t n, index_t cnt, int nt) {
    T* ys = cnt > 1 ? scratch<T>(conv_driver::kConvCol, s.OC * cnt * g.P) : nullptr;
    for (index_t gr = 0; gr < g.G; ++gr) {
      conv_pack::PatchSource<T> src{x + n * image + gr * g.Cg * plane, s, g.kk};
      src.image = cnt > 1 ? image : 0;
      const gemm_detail::GemmBPack<T> bp{pack, &src};
      gemm_detail::gemm_packed_b<T>(g.OCg, cnt * g.P, g.Kg, T(1), w + gr * g.OCg * g.Kg, g.Kg, 1, bp, T(0),
                                    cnt > 1 ? ys + gr * g.OCg * cnt * g.P : y + (n * s.OC + gr * g.OCg) * g.P,
                                    cnt * g.P, 1, nt, wpk > 0 && cnt == nb ? wp.data() + gr * wpk : nullptr,
                                    bias && store_bias ? bias + gr * g.OCg : nullptr);
    }
    for (index_t i = 0; i < cnt && cnt > 1; ++i)
      for (index_t o = 0; o < s.OC; ++o)
        std::memcpy(y + ((n + i) * s.OC + o) * g.P, ys + (o * cnt + i) * g.P, static_cast<size_t>(g.P) * sizeof(T));
  };
  auto one = [&](index_t n, index_t cnt, int nt) {
    gemm_images(n, cnt, nt);
    if (bias && !store_bias)  // while the images' blocks are still in cache
      for (index_t m = n; m < n + cnt; ++m) {
        T* yn = y + m * s.OC * g.P;
        for (index_t o = 0; o < s.OC; ++o)
          for (index_t j = 0; j < g.P; ++j) yn[o * g.P + j] += bias[o];
      }
  };
  const index_t units = (s.N + nb - 1) / nb;
  auto run = [&](index_t u, int threads) { one(u * nb, std::min(nb, s.N - u * nb), threads); };
  if (nt > 1 && (units % nt == 0 || units >= 4 * nt)) {
    parallel_for(units, 1, [&](index_t u0, index_t u1) {
      for (index_t u = u0; u < u1; ++u) run(u, 1);
    });
  } else {
    for (index_t u = 0; u < units; ++u) run(u, nt);
  }
}

// A forward convolution whose input is dy (N, OC, OH, OW) and whose (OH x OW) output is dx or one
// stride phase of it: the channel counts swap; stride 1, no dilation unless the caller sets it.
inline Conv2dShape dy_as_input(const Conv2dShape& s, index_t OH, index_t OW, index_t kh, index_t kw, index_t ph,
                               index_t pw) {
  Conv2dShape t;
  t.N = s.N;
  t.C = s.OC;
  t.H = s.OH;
  t.W = s.OW;
  t.OC = s.C;
  t.OH = OH;
  t.OW = OW;
  t.kh = kh;
  t.kw = kw;
  t.ph = ph;
  t.pw = pw;
  t.groups = s.groups;
  return t;
}

// Stride 1: dx is the convolution of dy with the flipped, transposed kernel
// W'[c, o, ky, kx] = W[o, c, kh-1-ky, kw-1-kx] and padding d (k - 1) - p, so it runs as an
// implicit-GEMM forward (no col2im pass). False (nothing done) where that does not apply.
template <typename T>
bool input_grad_implicit(T* dx, const T* dy, const T* w, const Geometry& g) {
  const Conv2dShape& s = g.s;
  if (s.sh != 1 || s.sw != 1) return false;
  Conv2dShape t = dy_as_input(s, s.H, s.W, s.kh, s.kw, s.dh * (s.kh - 1) - s.ph, s.dw * (s.kw - 1) - s.pw);
  t.dh = s.dh;
  t.dw = s.dw;
  if (t.ph < 0 || t.pw < 0 || t.OH != t.H + 2 * t.ph - t.dh * (t.kh - 1) || t.OW != t.W + 2 * t.pw - t.dw * (t.kw - 1))
    return false;
  std::vector<T> wt(static_cast<size_t>(s.C * g.OCg * g.kk));
  for (index_t gr = 0; gr < g.G; ++gr)
    for (index_t o = 0; o < g.OCg; ++o)
      for (index_t c = 0; c < g.Cg; ++c)
        for (index_t k = 0; k < g.kk; ++k)
          wt[static_cast<size_t>(((gr * g.Cg + c) * g.OCg + o) * g.kk + (g.kk - 1 - k))] =
              w[((gr * g.OCg + o) * g.Cg + c) * g.kk + k];
  forward_implicit<T>(dx, dy, wt.data(), nullptr, Geometry(t));
  return true;
}

// Strided dx (dilation 1): the dx positions of one phase, ih = sh a + rh and iw = sw b + rw, are
// reached only by the taps ky = ky0 + sh i (ky0 = (rh + ph) mod sh), kx likewise, from
// oh = a + (rh + ph - ky0) / sh - i: a stride-1 convolution of dy with the flipped sub-kernel
// (nth x ntw taps, top / left padding ph', pw', the bottom / right implied by the phase's size
// A x B). Each phase runs as an implicit-GEMM forward into a scratch block, scattered into dx:
// no col2im pass, no (C k k, P) column matrix (NNFAST_CONV_STRIDED_DX=0: im2col + col2im).
// Also the forward of conv_transpose2d.
template <typename T>
bool input_grad_phases(T* dx, const T* dy, const T* w, const Geometry& g) {
  static const bool on = env_switch_on("NNFAST_CONV_STRIDED_DX");
  const Conv2dShape& s = g.s;
  if (!on || (s.sh == 1 && s.sw == 1) || s.dh != 1 || s.dw != 1 || s.sh > s.kh || s.sw > s.kw) return false;
  // Per phase row / column: first tap, tap count, padding (a phase without taps or with
  // negative padding: not this path).
  auto phase = [](index_t r, index_t p, index_t st, index_t k, index_t& k0, index_t& nt, index_t& pad) {
    k0 = (r + p) % st;
    nt = k0 < k ? (k - 1 - k0) / st + 1 : 0;
    pad = nt - 1 - (r + p - k0) / st;
  };
  for (index_t r = 0; r < s.sh; ++r) {
    index_t k0, nt, pad;
    phase(r, s.ph, s.sh, s.kh, k0, nt, pad);
    if (nt == 0 || pad < 0) return false;
  }
  for (index_t r = 0; r < s.sw; ++r) {
    index_t k0, nt, pad;
    phase(r, s.pw, s.sw, s.kw, k0, nt, pad);
    if (nt == 0 || pad < 0) return false;
  }
  // The phases' shapes and flipped sub-kernels, phase (rh, rw) at index rh sw + rw.
  struct Phase {
    index_t rh, rw, A, B;
    Conv2dShape t;
    std::vector<T> wt, buf;
  };
  std::vector<Phase> phases;
  for (index_t rh = 0; rh < s.sh && rh < s.H; ++rh)
    for (index_t rw = 0; rw < s.sw && rw < s.W; ++rw) {
      index_t ky0, nth, ph, kx0, ntw, pw;
      phase(rh, s.ph, s.sh, s.kh, ky0, nth, ph);
      phase(rw, s.pw, s.sw, s.kw, kx0, ntw, pw);
      const index_t A = (s.H - rh + s.sh - 1) / s.sh, B = (s.W - rw + s.sw - 1) / s.sw;
      Phase f{rh, rw, A, B, dy_as_input(s, A, B, nth, ntw, ph, pw), {}, {}};
      const index_t tk = nth * ntw;
      f.wt.assign(static_cast<size_t>(s.C * g.OCg * tk), T(0));
      for (index_t gr = 0; gr < g.G; ++gr)
        for (index_t o = 0; o < g.OCg; ++o)
          for (index_t c = 0; c < g.Cg; ++c)
            for (index_t ty = 0; ty < nth; ++ty)
              for (index_t tx = 0; tx < ntw; ++tx)
                f.wt[static_cast<size_t>(((gr * g.Cg + c) * g.OCg + o) * tk + ty * ntw + tx)] =
                    w[((gr * g.OCg + o) * g.Cg + c) * g.kk + (ky0 + s.sh * (nth - 1 - ty)) * s.kw +
                      kx0 + s.sw * (ntw - 1 - tx)];
      phases.push_back(std::move(f));
    }
  // NNFAST_CONV_PHASE_CHUNK: the phases run on a few images at a time (about 1 MB of dx, a multiple
  // of 4 x threads images so that forward_implicit still groups images and splits them evenly), and
  // one pass writes each dx row from all phases while their blocks are in cache. 0: each phase over
  // the whole batch, then its own strided pass over all of dx (sh sw read-modify-write trips through
  // memory). The phase products do not depend on how images are grouped: same bits.
  static const bool chunked = env_switch_on("NNFAST_CONV_PHASE_CHUNK");
  const index_t image = s.C * s.H * s.W, unit = 4 * get_num_threads();
  const index_t nc = chunked ? unit * max1((index_t(1) << 18) / (unit * max1(image))) : max1(s.N);
  const index_t dy_image = s.OC * s.OH * s.OW;
  for (index_t n0 = 0; n0 < s.N; n0 += nc) {
    const index_t cnt = std::min(nc, s.N - n0);
    for (Phase& f : phases) {
      Conv2dShape t = f.t;
      t.N = cnt;
      f.buf.resize(static_cast<size_t>(cnt * s.C * f.A * f.B));
      forward_implicit<T>(f.buf.data(), dy + n0 * dy_image, f.wt.data(), nullptr, Geometry(t));
    }
    T* const dxc = dx + n0 * image;
    if (!chunked) {
      for (const Phase& f : phases)
        parallel_for(cnt * s.C, 1, [&](index_t p0, index_t p1) {
          for (index_t pc = p0; pc < p1; ++pc) {
            const T* src = f.buf.data() + pc * f.A * f.B;
            T* dst = dxc + pc * s.H * s.W + f.rh * s.W + f.rw;
            for (index_t a = 0; a < f.A; ++a)
              for (index_t b = 0; b < f.B; ++b) dst[a * s.sh * s.W + b * s.sw] = src[a * f.B + b];
          }
        });
      continue;
    }
    // Row ih of a plane: phase row rh = ih % sh, its row a = ih / sh; column iw from phase rw = iw % sw.
    const index_t nw = std::min(s.sw, s.W);
    parallel_for(cnt * s.C, 1, [&](index_t p0, index_t p1) {
      for (index_t pc = p0; pc < p1; ++pc)
        for (index_t ih = 0; ih < s.H; ++ih) {
          const index_t rh = ih % s.sh, a = ih / s.sh;
          T* dst = dxc + (pc * s.H + ih) * s.W;
          for (index_t rw = 0; rw < nw; ++rw) {
            const Phase& f = phases[static_cast<size_t>(rh * nw + rw)];
            const T* src = f.buf.data() + (pc * f.A + a) * f.B;
            for (index_t b = 0; b < f.B; ++b) dst[b * s.sw + rw] = src[b];
          }
        }
    });
  }
  return true;
}

// y = conv(x, w) + bias.
template <typename T>
void forward_product(T* y, const T* x, const T* w, const T* bias, const Geometry& g) {
  const Conv2dShape& s = g.s;
  if (g.pointwise()) {  // y[n, group] = W[group] . x[n, group]: a GEMM per image, no gather
    for (index_t gr = 0; gr < g.G; ++gr)
      gemm_batched<T>(s.N, g.OCg, g.P, g.Cg, T(1), w + gr * g.OCg * g.Cg, 0, g.Cg, 1, x + gr * g.Cg * g.P,
                      s.C * g.P, g.P, 1, T(0), y + gr * g.OCg * g.P, s.OC * g.P, g.P, 1);
    if (bias) add_channel_bias(y, bias, s.N * s.OC, s.OC, g.P);
    return;
  }
  if (use_implicit()) {
    forward_implicit(y, x, w, bias, g);
    return;
  }
  for_each_chunk(g, [&](index_t q0, index_t qn) {
    T* col = scratch<T>(conv_driver::kConvCol, g.Kc * qn);
    im2col(col, x, g, q0, qn);
    if (g.images_per_chunk > 0) {
      // Whole images: image n's (OC, P) block of y is a GEMM output as it stands, so each
      // image's product lands in y directly (no staging buffer, no scatter pass) and the bias
      // is added while the block is still in cache. Same K order per element: same bits.
      for (index_t n = q0 / g.P; n < (q0 + qn) / g.P; ++n) {
        T* yn = y + n * s.OC * g.P;
        gemm_batched<T>(g.G, g.OCg, g.P, g.Kg, T(1), w, g.OCg * g.Kg, g.Kg, 1, col + (n * g.P - q0), g.Kg * qn,
                        qn, 1, T(0), yn, g.OCg * g.P, g.P, 1);
        if (bias) add_channel_bias(yn, bias, s.OC, s.OC, g.P);
      }
      return;
    }
    T* out = scratch<T>(conv_driver::kConvOut, s.OC * qn);
    gemm_batched<T>(g.G, g.OCg, qn, g.Kg, T(1), w, g.OCg * g.Kg, g.Kg, 1, col, g.Kg * qn, qn, 1, T(0), out,
                    g.OCg * qn, qn, 1);
    scatter_out(y, out, bias, g, q0, qn);
  });
}

// dx = conv^T(dy, w) (overwrites dx).
template <typename T>
void input_grad_product(T* dx, const T* dy, const T* w, const Geometry& g) {
  const Conv2dShape& s = g.s;
  if (g.pointwise()) {  // dx[n, group] = W[group]^T . dy[n, group]
    for (index_t gr = 0; gr < g.G; ++gr)
      gemm_batched<T>(s.N, g.Cg, g.P, g.OCg, T(1), w + gr * g.OCg * g.Cg, 0, 1, g.Cg, dy + gr * g.OCg * g.P,
                      s.OC * g.P, g.P, 1, T(0), dx + gr * g.Cg * g.P, s.C * g.P, g.P, 1);
    return;
  }
  if (use_implicit() && input_grad_implicit(dx, dy, w, g)) return;
  if (use_implicit() && input_grad_phases(dx, dy, w, g)) return;
  const index_t image = s.C * s.H * s.W;
  if (g.images_per_chunk == 0) {  // chunks split images: zero all of dx first
    parallel_for(s.N * image, kCopyGrain, [&](index_t i0, index_t i1) { std::fill(dx + i0, dx + i1, T(0)); });
  }
  for_each_chunk(g, [&](index_t q0, index_t qn) {
    T* col = scratch<T>(conv_driver::kConvCol, g.Kc * qn);
    T* out = scratch<T>(conv_driver::kConvOut, s.OC * qn);
    if (g.images_per_chunk > 0) {
      // Whole images: each image's dy block (OC, P) is the GEMM's B operand in place (no gather).
      std::fill(dx + (q0 / g.P) * image, dx + ((q0 + qn) / g.P) * image, T(0));
      for (index_t n = q0 / g.P; n < (q0 + qn) / g.P; ++n)
        gemm_batched<T>(g.G, g.Kg, g.P, g.OCg, T(1), w, g.OCg * g.Kg, 1, g.Kg, dy + n * s.OC * g.P, g.OCg * g.P,
                        g.P, 1, T(0), col + (n * g.P - q0), g.Kg * qn, qn, 1);
    } else {
      gather_out(out, dy, g, q0, qn);
      gemm_batched<T>(g.G, g.Kg, qn, g.OCg, T(1), w, g.OCg * g.Kg, 1, g.Kg, out, g.OCg * qn, qn, 1, T(0), col,
                      g.Kg * qn, qn, 1);
    }
    col2im_add(dx, col, g, q0, qn);
  });
}

// dw += sum over column space of dy . patches^T. Chunks are summed into a fixed number of
// partial sums (chunk c into part c % parts, in chunk order; parts run in parallel), the parts
// are added in order and the total added once: the bits depend on the shape only, and two
// calls give exactly twice one call.
constexpr index_t kWeightParts = 8;

// NNFAST_CONV_STRIDED_DW=0: strided weight gradients take the im2col path (A/B timing).
inline bool strided_weight_grad() {
  static const bool on = env_switch_on("NNFAST_CONV_STRIDED_DW");
  return on;
}

// The bias gradient is summed in the weight gradient's pass (NNFAST_CONV_FOLD_DB=0: a separate
// pass over dy afterwards, for A/B timing): image n's dy block is summed right after its GEMM
// has read it, from cache, instead of a second trip through memory for all of dy (oneDNN does
// the same). Its order differs from channel_sum_add's (per image, then the parts in order).
inline bool fold_bias_grad() {
  static const bool on = env_switch_on("NNFAST_CONV_FOLD_DB");
  return on;
}

// Implicit-GEMM weight gradient (where the ISA packs the transposed patches: fp32, AVX-512;
// stride 1 with OW == W by masked loads, otherwise by masked gathers): dW[g] (+)= dy_n[g] . patches_n[g]^T
// per image n, images summed into the same fixed parts as above (image n into part n % parts, in
// order). db (non-null): db[o] += the sum of dy over (n, oh, ow): per image and channel an
// interleaved double sum, added to the image's part in double, the parts added in order; the
// bits depend on the shape only. False: nothing done (db untouched).
template <typename T>
bool weight_grad_implicit(T* dw, T* db, const T* dy, const T* x, const Geometry& g) {
  const Conv2dShape& s = g.s;
  const auto pack = isa_ops<conv_pack::ConvOps<T>>().pack_patches_t;
  const auto sum_rows = isa_ops<conv_pack::ConvOps<T>>().sum_rows;
  if (!pack || s.kh > 16 || s.kw > 16 || s.N == 0 ||
      g.Cg * (s.H + 2 * s.ph + 1) * (s.W + 2 * s.pw + 1) >= (index_t(1) << 30) ||
      (!strided_weight_grad() && (s.sh != 1 || s.sw != 1 || s.OW != s.W)))
    return false;
  const index_t size = s.OC * g.Kg, parts = std::min(kWeightParts, s.N), image = s.C * s.H * s.W;
  std::vector<T> part(static_cast<size_t>(parts * size));
  std::vector<double> dbpart(db ? static_cast<size_t>(parts * s.OC) : 0);
  // Stride 1, OW == W: each image's product by the direct kernel (no packing; NNFAST_CONV_DW_DIRECT=0:
  // the packed GEMM, for A/B timing). Its sums run along q in 16 lanes: not the GEMM's bits.
  // Images of fewer than 512 positions keep the GEMM: per tile the 16-lane sums cost more than the
  // packing saves (14 x 14, 64 -> 128: 12.4 ms vs 10.3, 1 thread).
  // On Intel cores the packed GEMM is the faster of the two (Xeon with AVX-512, 1 thread, 28 x 28,
  // 32 -> 64: 17.4-18.6 ms vs 20.7-22.2; the direct kernel stays at ~40 % of peak, also with its
  // dy loads unmasked or 64-byte aligned, and with its lane sums shared by 4 images at 14 x 14),
  // so the direct kernel runs on other vendors only (stop 29 measured it faster on Zen 5).
  // NNFAST_CONV_DW_INTEL_GEMM=0: the direct kernel on Intel too (A/B timing).
  static const bool direct_on = [] {
    __builtin_cpu_init();
    return env_switch_on("NNFAST_CONV_DW_DIRECT") &&
           !(env_switch_on("NNFAST_CONV_DW_INTEL_GEMM") && __builtin_cpu_is("intel"));
  }();
  const auto direct = direct_on && s.sh == 1 && s.sw == 1 && s.OW == s.W && g.P >= 512
                          ? isa_ops<conv_pack::ConvOps<T>>().weight_grad_same
                          : nullptr;
  parallel_for(parts, 1, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p)
      for (index_t n = p; n < s.N; n += parts) {
        for (index_t gr = 0; gr < g.G; ++gr) {
          if (direct) {
            direct(dy + (n * s.OC + gr * g.OCg) * g.P, x + n * image + gr * g.Cg * s.H * s.W, s, g.OCg, g.Cg,
                   part.data() + p * size + gr * g.OCg * g.Kg, n != p);
            continue;
          }
          const conv_pack::PatchSource<T> src{x + n * image + gr * g.Cg * s.H * s.W, s, g.kk};
          const gemm_detail::GemmBPack<T> bp{pack, &src};
          gemm_detail::gemm_packed_b<T>(g.OCg, g.Kg, g.P, T(1), dy + (n * s.OC + gr * g.OCg) * g.P, g.P, 1, bp,
                                        n == p ? T(0) : T(1), part.data() + p * size + gr * g.OCg * g.Kg, g.Kg, 1, 1);
        }
        if (db) sum_rows(dy + n * s.OC * g.P, s.OC, g.P, 1, 0, dbpart.data() + p * s.OC);
      }
  });
  add_parts(dw, part.data(), parts, size, kCopyGrain);
  for (index_t o = 0; db && o < s.OC; ++o) {
    double t = dbpart[static_cast<size_t>(o)];
    for (index_t p = 1; p < parts; ++p) t += dbpart[static_cast<size_t>(p * s.OC + o)];
    db[o] += static_cast<T>(t);
  }
  return true;
}

// dw += the weight gradient; db (non-null) += the bias gradient, in the same pass over dy where
// the implicit path runs (fold_bias_grad), else by channel_sum_add.
template <typename T>
void weight_grad_product(T* dw, T* db, const T* dy, const T* x, const Geometry& g) {
  const Conv2dShape& s = g.s;
  T* const fold_db = fold_bias_grad() ? db : nullptr;
  if (g.chunks > 0 && !g.pointwise() && use_implicit() && weight_grad_implicit(dw, fold_db, dy, x, g)) {
    if (db && !fold_db) channel_sum_add(db, dy, s.N, s.OC, g.P);
    return;
  }
  if (db) channel_sum_add(db, dy, s.N, s.OC, g.P);
  if (g.chunks == 0) return;
  // 1 x 1, stride 1, no padding: image n's dy (OCg, P) and x (Cg, P) blocks are the GEMM's operands
  // as they stand (no im2col / gather copies of x and dy); image n into part n % parts, in order, so
  // the bits depend on the shape only (NNFAST_CONV_PW_DW=0: the im2col chunks, for A/B timing).
  static const bool pw_dw = env_switch_on("NNFAST_CONV_PW_DW");
  if (pw_dw && g.pointwise()) {
    const index_t size = s.OC * g.Kg, parts = std::min(kWeightParts, s.N);
    std::vector<T> part(static_cast<size_t>(parts * size));
    parallel_for(parts, 1, [&](index_t p0, index_t p1) {
      for (index_t p = p0; p < p1; ++p)
        for (index_t n = p; n < s.N; n += parts)
          gemm_batched<T>(g.G, g.OCg, g.Cg, g.P, T(1), dy + n * s.OC * g.P, g.OCg * g.P, g.P, 1, x + n * s.C * g.P,
                          g.Cg * g.P, 1, g.P, n == p ? T(0) : T(1), part.data() + p * size, g.OCg * g.Cg, g.Cg, 1);
    });
    add_parts(dw, part.data(), parts, size, kCopyGrain);
    return;
  }
  const index_t size = s.OC * g.Kg, parts = std::min(kWeightParts, g.chunks);
  std::vector<T> part(static_cast<size_t>(parts * size));
  parallel_for(parts, 1, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p)
      for (index_t c = p; c < g.chunks; c += parts) {
        const index_t q0 = c * g.chunk, qn = std::min(g.chunk, g.Q - q0);
        T* col = scratch<T>(conv_driver::kConvCol, g.Kc * qn);
        T* out = scratch<T>(conv_driver::kConvOut, s.OC * qn);
        im2col(col, x, g, q0, qn);
        gather_out(out, dy, g, q0, qn);
        gemm_batched<T>(g.G, g.OCg, g.Kg, qn, T(1), out, g.OCg * qn, qn, 1, col, g.Kg * qn, 1, qn,
                        c == p ? T(0) : T(1), part.data() + p * size, g.OCg * g.Kg, g.Kg, 1);
      }
  });
  add_parts(dw, part.data(), parts, size, kCopyGrain);
}

}  // namespace

template <typename T>
void conv2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s) {
  forward_product(y, x, weight, bias, Geometry(s));
}

template <typename T>
void conv2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight, const Conv2dShape& s) {
  const Geometry g(s);
  if (dx) input_grad_product(dx, dy, weight, g);
  if (dweight)
    weight_grad_product(dweight, dbias, dy, x, g);
  else if (dbias)
    channel_sum_add(dbias, dy, s.N, s.OC, g.P);
}

template <typename T>
void conv_transpose2d_forward(T* y, const T* x, const T* weight, const T* bias, const Conv2dShape& s) {
  input_grad_product(y, x, weight, Geometry(s));
  if (bias) add_channel_bias(y, bias, s.N * s.C, s.C, s.H * s.W);
}

template <typename T>
void conv_transpose2d_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const T* weight,
                               const Conv2dShape& s) {
  const Geometry g(s);
  if (dx) forward_product<T>(dx, dy, weight, nullptr, g);
  if (dweight) weight_grad_product<T>(dweight, nullptr, x, dy, g);  // the convolution's dy is x, its input is dy
  if (dbias) channel_sum_add(dbias, dy, s.N, s.C, s.H * s.W);
}

#define NNFAST_CONV_INSTANTIATE(T)                                                                      \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&);                \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dShape&);       \
  template void conv_transpose2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&);      \
  template void conv_transpose2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dShape&);
NNFAST_CONV_INSTANTIATE(float)
NNFAST_CONV_INSTANTIATE(double)
#undef NNFAST_CONV_INSTANTIATE

}  // namespace nnfast::cpu

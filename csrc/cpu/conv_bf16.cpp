// Convolutions on the bf16 GEMM (see conv_bf16.h).
//
// Per image (threads take whole images when the batch splits evenly, else they run inside
// each GEMM), per column chunk of the image's patch matrix (row r = (c, ky, kx), column
// q = (oh, ow); the chunk is bounded by kPatchBudget), per group:
// Forward:     patches gathered straight into bf16; acc (OCg, m) = W[g] . patches[g]
//              (float32 accumulation); y = acc + bias, stored float32 or rounded to bf16.
// Input grad:  colf (Kg, m) = W[g]^T . dy_n[g] in float32, added back into a float32 image
//              (col2im), which is stored once (+ bias for the transposed forward).
// Weight grad: dW[g] (+)= dy_n[g] . patches[g]^T, images summed in fixed parts (image n into
//              part n % parts, in order), the parts added in order: bits independent of threads.
// 1x1 / stride 1 / no padding gathers nothing: the image itself is the GEMM operand.
// The transposed convolution is the same three products read the other way round.
#include "cpu/conv_bf16.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/bf16.h"
#include "core/conv_geometry.h"
#include "core/parallel_for.h"
#include "cpu/conv_internal.h"
#include "nnfast/parallel.h"
#include "core/env_switch.h"

namespace nnfast::cpu {
namespace {

using conv_detail::Geometry;
using conv_detail::max1;
using conv_driver::add_parts;
using conv_driver::scratch;
using conv_driver::valid_cols;

// Elements of one patch chunk (bf16: 4 MB) or of its float32 GEMM output.
constexpr index_t kPatchBudget = index_t(1) << 21;
// Elements per thread below which a gather / scatter / store stays serial.
constexpr index_t kCopyGrain = 16384;
// Fixed partial sums of the weight gradient (as conv.cpp), so bits do not depend on threads.
constexpr index_t kWeightParts = 8;

inline std::ptrdiff_t elem_bytes(ElemType t) { return t == ElemType::BF16 ? 2 : 4; }

inline ConvOperand shift(ConvOperand a, index_t off) {
  return {static_cast<const char*>(a.data) + off * elem_bytes(a.type), a.type};
}

// Rows x cols view of `a` from element `off` on, with strides rs, cs.
inline GemmMat mat(ConvOperand a, index_t off, index_t rs, index_t cs) {
  const ConvOperand b = shift(a, off);
  return GemmMat{b.data, b.type, rs, cs};
}

inline bf16_t load_bf16(ConvOperand a, index_t i) {
  return a.type == ElemType::BF16 ? static_cast<const bf16_t*>(a.data)[i]
                                  : float_to_bf16(static_cast<const float*>(a.data)[i]);
}

inline float load_f32(ConvOperand a, index_t i) {
  return a.type == ElemType::BF16 ? bf16_to_float(static_cast<const bf16_t*>(a.data)[i])
                                  : static_cast<const float*>(a.data)[i];
}

// Columns per chunk of an image's patch matrix with `rows` rows.
inline index_t chunk_cols(const Geometry& g, index_t rows) { return std::min(max1(g.P), max1(kPatchBudget / max1(rows))); }

// f(n) for every image: threads take whole images when the batch splits evenly enough (the
// GEMMs, gathers and stores inside then run on one thread), else images run in order with
// threads inside each step. Each image's result is the same either way.
template <typename F>
void for_each_image(index_t N, F&& f) {
  const int nt = get_num_threads();
  if (nt > 1 && (N % nt == 0 || N >= 4 * nt)) {
    parallel_for(N, 1, [&](index_t n0, index_t n1) {
      for (index_t n = n0; n < n1; ++n) f(n);
    });
  } else {
    for (index_t n = 0; n < N; ++n) f(n);
  }
}

// f(r, ih, off, jlo, jhi, pos, len, ow0) for each run of chunk [p0, p0 + m) within one output row,
// for patch row r = (c, ky, kx): its input row ih (or -1 in the padding), the input column offset
// off (input column = ow * sw + off) and [jlo, jhi) the run's positions whose column is inside.
template <typename F>
inline void for_each_run(const Conv2dShape& s, index_t r, index_t p0, index_t m, F&& f) {
  const index_t kk = s.kh * s.kw, ky = (r % kk) / s.kw, kx = r % s.kw;
  const index_t off = kx * s.dw - s.pw;
  index_t lo, hi;
  valid_cols(off, s.sw, s.W, s.OW, &lo, &hi);
  for (index_t q = p0; q < p0 + m;) {
    const index_t oh = q / s.OW, ow0 = q % s.OW, len = std::min(s.OW - ow0, p0 + m - q);
    index_t ih = oh * s.sh - s.ph + ky * s.dh;
    if (ih >= s.H) ih = -1;
    const index_t jlo = std::clamp(lo - ow0, index_t(0), len), jhi = std::clamp(hi - ow0, jlo, len);
    f(ih, off, jlo, jhi, q - p0, len, ow0);
    q += len;
  }
}

// col (C kh kw, m) bf16 = columns [p0, p0 + m) of the patch matrix of image xn (C, H, W),
// zeros where the window covers padding.
void gather_patches(bf16_t* col, ConvOperand xn, const Conv2dShape& s, index_t p0, index_t m) {
  const index_t kk = s.kh * s.kw, rows = s.C * kk;
  parallel_for(rows, max1(kCopyGrain / m), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      bf16_t* d = col + r * m;
      const index_t c = r / kk;
      for_each_run(s, r, p0, m, [&](index_t ih, index_t off, index_t jlo, index_t jhi, index_t pos, index_t len,
                                    index_t ow0) {
        bf16_t* o = d + pos;
        if (ih < 0) {
          std::fill(o, o + len, bf16_t(0));
          return;
        }
        std::fill(o, o + jlo, bf16_t(0));
        const index_t base = (c * s.H + ih) * s.W + off + ow0 * s.sw;
        if (xn.type == ElemType::BF16 && s.sw == 1) {
          std::memcpy(o + jlo, static_cast<const bf16_t*>(xn.data) + base + jlo,
                      static_cast<size_t>(jhi - jlo) * sizeof(bf16_t));
        } else {
          for (index_t j = jlo; j < jhi; ++j) o[j] = load_bf16(xn, base + j * s.sw);
        }
        std::fill(o + jhi, o + len, bf16_t(0));
      });
    }
  });
}

// img (C, H, W) float32 += the patch chunk colf (C kh kw, m) put back where it came from.
// Threads split the channels; each element receives its terms in (ky, kx, q) order.
void scatter_patches_add(float* img, const float* colf, const Conv2dShape& s, index_t p0, index_t m) {
  const index_t kk = s.kh * s.kw;
  parallel_for(s.C, max1(kCopyGrain / (kk * m)), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c)
      for (index_t k = 0; k < kk; ++k) {
        const index_t r = c * kk + k;
        const float* row = colf + r * m;
        for_each_run(s, r, p0, m, [&](index_t ih, index_t off, index_t jlo, index_t jhi, index_t pos, index_t,
                                      index_t ow0) {
          if (ih < 0) return;
          float* dst = img + (c * s.H + ih) * s.W + off + ow0 * s.sw;
          const float* src = row + pos;
          for (index_t j = jlo; j < jhi; ++j) dst[j * s.sw] += src[j];
        });
      }
  });
}

// dst (m rows of n, row stride rs, type t) = src (row stride ld) + bias[row] (bias may be null):
// the one store of an output, rounded to bf16 (RNE) for a bf16 destination.
void store_rows(void* dst, ElemType t, index_t rs, const float* src, index_t ld, index_t m, index_t n,
                const float* bias) {
  parallel_for(m, max1(kCopyGrain / max1(n)), [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const float b = bias ? bias[i] : 0.0f;
      const float* s = src + i * ld;
      if (t == ElemType::BF16) {
        bf16_t* d = static_cast<bf16_t*>(dst) + i * rs;
        if (bias) {
          for (index_t j = 0; j < n; ++j) d[j] = float_to_bf16(s[j] + b);
        } else {
          for (index_t j = 0; j < n; ++j) d[j] = float_to_bf16(s[j]);
        }
      } else {
        float* d = static_cast<float*>(dst) + i * rs;
        if (bias) {
          for (index_t j = 0; j < n; ++j) d[j] = s[j] + b;
        } else {
          std::memcpy(d, s, static_cast<size_t>(n) * sizeof(float));
        }
      }
    }
  });
}

// NNFAST_CONV_BF16_DIRECT=0: a forward without bias goes through the float32 staging buffer and
// the store pass like one with bias (same bits; for A/B timing).
inline bool direct_store() {
  static const bool on = env_switch_on("NNFAST_CONV_BF16_DIRECT");
  return on;
}

// ------------------------------------------------------------------ the three products
// y (N, OC, OH, OW) = conv(x, w) + bias.
void forward_product(void* y, ElemType yt, ConvOperand x, ConvOperand w, const float* bias, const Geometry& g) {
  const Conv2dShape& s = g.s;
  const bool pw = g.pointwise();
  const index_t image = s.C * s.H * s.W, mmax = chunk_cols(g, std::max(g.Kc, g.OCg));
  for_each_image(s.N, [&](index_t n) {
    const ConvOperand xn = shift(x, n * image);
    bf16_t* col = pw ? nullptr : scratch<bf16_t>(conv_driver::kBf16Col, g.Kc * mmax);
    float* acc = scratch<float>(conv_driver::kBf16Acc, g.OCg * mmax);
    for (index_t p0 = 0; p0 < g.P; p0 += mmax) {
      const index_t m = std::min(mmax, g.P - p0);
      if (!pw) gather_patches(col, xn, s, p0, m);
      for (index_t gr = 0; gr < g.G; ++gr) {
        const GemmMat B = pw ? mat(xn, gr * g.Cg * g.P + p0, g.P, 1)
                             : GemmMat{col + gr * g.Kg * m, ElemType::BF16, m, 1};
        const GemmMat A = mat(w, gr * g.OCg * g.Kg, g.Kg, 1);
        char* yo = static_cast<char*>(y) + ((n * s.OC + gr * g.OCg) * g.P + p0) * elem_bytes(yt);
        if (!bias && direct_store()) {  // the GEMM stores (and rounds) y itself: same bits, no pass
          gemm_bf16(g.OCg, m, g.Kg, 1.0f, A, B, 0.0f, yo, yt, g.P, 1);
          continue;
        }
        // gemm_bf16's bias runs along N: the per-channel (row) bias is added in the one store pass
        gemm_bf16(g.OCg, m, g.Kg, 1.0f, A, B, 0.0f, acc, ElemType::F32, m, 1);
        store_rows(yo, yt, g.P, acc, m, g.OCg, m, bias ? bias + gr * g.OCg : nullptr);
      }
    }
  });
}

// dx (N, C, H, W) = conv^T(dy, w) (+ bias per input channel: the transposed forward).
void input_grad_product(void* dx, ElemType dxt, ConvOperand dy, ConvOperand w, const float* bias,
                        const Geometry& g) {
  const Conv2dShape& s = g.s;
  const bool pw = g.pointwise();
  const index_t plane = s.H * s.W, image = s.C * plane, mmax = chunk_cols(g, g.Kc);
  for_each_image(s.N, [&](index_t n) {
    const ConvOperand dyn = shift(dy, n * s.OC * g.P);
    float* img = scratch<float>(conv_driver::kBf16Col, image);
    if (pw) {  // the GEMM's output is the image
      for (index_t gr = 0; gr < g.G; ++gr)
        gemm_bf16(g.Cg, g.P, g.OCg, 1.0f, mat(w, gr * g.OCg * g.Cg, 1, g.Cg), mat(dyn, gr * g.OCg * g.P, g.P, 1),
                  0.0f, img + gr * g.Cg * g.P, ElemType::F32, g.P, 1);
    } else {
      std::fill(img, img + image, 0.0f);
      float* colf = scratch<float>(conv_driver::kBf16Acc, g.Kc * mmax);
      for (index_t p0 = 0; p0 < g.P; p0 += mmax) {
        const index_t m = std::min(mmax, g.P - p0);
        for (index_t gr = 0; gr < g.G; ++gr)
          gemm_bf16(g.Kg, m, g.OCg, 1.0f, mat(w, gr * g.OCg * g.Kg, 1, g.Kg), mat(dyn, gr * g.OCg * g.P + p0, g.P, 1),
                    0.0f, colf + gr * g.Kg * m, ElemType::F32, m, 1);
        scatter_patches_add(img, colf, s, p0, m);
      }
    }
    store_rows(static_cast<char*>(dx) + n * image * elem_bytes(dxt), dxt, plane, img, plane, s.C, plane, bias);
  });
}

// dw (OC, C/G, kh, kw) += sum over images of dy_n . patches_n^T.
void weight_grad_product(float* dw, ConvOperand dy, ConvOperand x, const Geometry& g) {
  const Conv2dShape& s = g.s;
  if (s.N <= 0) return;
  const bool pw = g.pointwise();
  const index_t size = s.OC * g.Kg, parts = std::min(kWeightParts, s.N), image = s.C * s.H * s.W;
  const index_t mmax = chunk_cols(g, g.Kc);
  std::vector<float> part(static_cast<size_t>(parts * size));
  parallel_for(parts, 1, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      float* acc = part.data() + p * size;
      bool first = true;
      for (index_t n = p; n < s.N; n += parts) {
        const ConvOperand xn = shift(x, n * image), dyn = shift(dy, n * s.OC * g.P);
        bf16_t* col = pw ? nullptr : scratch<bf16_t>(conv_driver::kBf16Col, g.Kc * mmax);
        for (index_t q0 = 0; q0 < g.P; q0 += mmax) {
          const index_t m = std::min(mmax, g.P - q0);
          if (!pw) gather_patches(col, xn, s, q0, m);
          for (index_t gr = 0; gr < g.G; ++gr) {
            // B (m, Kg) = the chunk's patches transposed (element (q, r) at q + r * m).
            const GemmMat B = pw ? mat(xn, gr * g.Cg * g.P + q0, 1, g.P)
                                 : GemmMat{col + gr * g.Kg * m, ElemType::BF16, 1, m};
            gemm_bf16(g.OCg, g.Kg, m, 1.0f, mat(dyn, gr * g.OCg * g.P + q0, g.P, 1), B, first ? 0.0f : 1.0f,
                      acc + gr * g.OCg * g.Kg, ElemType::F32, g.Kg, 1);
          }
          first = false;
        }
      }
      if (first) std::fill(acc, acc + size, 0.0f);  // P == 0: no product wrote this part
    }
  });
  add_parts(dw, part.data(), parts, size, kCopyGrain);
}

// db[c] += sum over n and the len positions of a (N, channels, len), in double, fixed order.
void channel_sum_add(float* db, ConvOperand a, index_t N, index_t channels, index_t len) {
  parallel_for(channels, max1(kCopyGrain / max1(N * len)), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      double acc[8] = {};
      for (index_t n = 0; n < N; ++n) {
        const index_t base = (n * channels + c) * len;
        for (index_t j = 0; j < len; ++j) acc[j % 8] += static_cast<double>(load_f32(a, base + j));
      }
      db[c] += static_cast<float>(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
    }
  });
}

}  // namespace

void conv2d_forward_bf16(void* y, ElemType y_type, ConvOperand x, ConvOperand weight, const float* bias,
                         const Conv2dShape& s) {
  forward_product(y, y_type, x, weight, bias, Geometry(s));
}

void conv2d_backward_bf16(void* dx, ElemType dx_type, float* dweight, float* dbias, ConvOperand dy, ConvOperand x,
                          ConvOperand weight, const Conv2dShape& s) {
  const Geometry g(s);
  if (dx) input_grad_product(dx, dx_type, dy, weight, nullptr, g);
  if (dweight) weight_grad_product(dweight, dy, x, g);
  if (dbias) channel_sum_add(dbias, dy, s.N, s.OC, g.P);
}

void conv_transpose2d_forward_bf16(void* y, ElemType y_type, ConvOperand x, ConvOperand weight, const float* bias,
                                   const Conv2dShape& s) {
  input_grad_product(y, y_type, x, weight, bias, Geometry(s));
}

void conv_transpose2d_backward_bf16(void* dx, ElemType dx_type, float* dweight, float* dbias, ConvOperand dy,
                                    ConvOperand x, ConvOperand weight, const Conv2dShape& s) {
  const Geometry g(s);
  if (dx) forward_product(dx, dx_type, dy, weight, nullptr, g);
  if (dweight) weight_grad_product(dweight, x, dy, g);  // the convolution's dy is x, its input is dy
  if (dbias) channel_sum_add(dbias, dy, s.N, s.C, s.H * s.W);
}

}  // namespace nnfast::cpu

// AMX-BF16 GEMM kernel (tdpbf16ps on 16 x 16 float32 tiles), compiled alone with
// AVX512-BF16 + AMX flags and run only where the CPU has AMX and Linux granted
// the tile state (cpu_features.cpp asks once per process).
//
// It reuses the AVX512-BF16 kernel's packing (pack_pairs, with K padded to whole
// tiles) and its bf16 staging by including that file: everything there has
// internal linkage, so this object gets its own copies (no ODR sharing of code
// compiled with different flags).
//
// Packed layout, both operands in 1 KB tiles (16 rows of 64 bytes, loaded with a
// 64-byte stride, so a tile is one contiguous block):
//  * B: panels of 16 columns, pair rows padded to kpad = round_up(kp, 16); tile c of
//    a panel = pair rows [16c, 16c + 16) x 16 columns, each word (k even, k odd) of
//    one column: tdpbf16ps's B operand as pack_pairs<16> writes it.
//  * A: panels of 16 rows, each tile the 16 x 16 word transpose of pack_pairs<16>'s
//    block (row r = the 16 pairs of row r): tdpbf16ps's A operand.
// Panels come in pairs (a 32 x 32 C block is 2 x 2 accumulator tiles, 2 A and 2 B
// tiles: all 8 tile registers); an odd last panel is followed by a zero one, and the
// padding rows / pairs are zeros, so edge blocks compute whole tiles and store only
// their m x n corner.
#define NNFAST_BF16_AVX512_INCLUDED 1
#include "cpu/gemm_bf16_avx512.cpp"

#include <cmath>

#include "core/env_switch.h"

namespace nnfast::cpu::gemm_detail {
namespace {
namespace amx {

constexpr int TR = 32;  // C block rows and columns (2 x 2 tiles)

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Every tile 16 rows x 64 bytes (palette 1): C, A and B tiles alike.
void tiles_on() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

// RAII: tile config for the duration of one rows / block / probe call on this thread.
struct TileScope {
  TileScope() { tiles_on(); }
  ~TileScope() { _tile_release(); }
};

inline index_t kpad_of(index_t kc) { return round_up((kc + 1) / 2, 16); }
inline index_t panels2(index_t n) { return round_up((n + 15) / 16, 2); }  // 16-wide panels, even count

// Zero pair rows [kp, kpad) of `np` packed panels and, when np is odd, the whole next panel.
void pad_panels(u32* dst, index_t np, index_t kp, index_t kpad) {
  if (kpad > kp)
    for (index_t i = 0; i < np; ++i) std::memset(dst + i * 16 * kpad + kp * 16, 0, size_t(kpad - kp) * 64);
  if (np % 2) std::memset(dst + np * 16 * kpad, 0, size_t(kpad) * 64);
}

// Row-major A (unit column stride): a tile row is one row's 32 consecutive K values
// as 16 pairs, i.e. exactly one 32-value conversion (the same load16 as pack_pairs,
// so the same bits) stored at its place, with no transposes. Rows past n (up to
// the even panel count) and K past kc (up to kpad pairs) are zeros.
template <typename S>
void pack_a_rows(const S* src, index_t rs, index_t n, index_t kc, u32* dst) {
  const index_t kpad = kpad_of(kc), rows = panels2(n) * 16, ntiles = kpad / 16;
  for (index_t q = 0; q < rows; ++q) {
    u32* out = dst + (q / 16) * 16 * kpad + (q % 16) * 16;
    if (q >= n) {
      for (index_t c = 0; c < ntiles; ++c) _mm512_storeu_si512(out + c * 256, _mm512_setzero_si512());
      continue;
    }
    const S* run = src + q * rs;
    for (index_t c = 0; c < ntiles; ++c) {
      const index_t left = kc - 32 * c;
      const __mmask16 m0 = left <= 0 ? __mmask16(0) : first_n(left);
      const __mmask16 m1 = left <= 16 ? __mmask16(0) : first_n(left - 16);
      const __m512i v =
          _mm512_inserti64x4(_mm512_castsi256_si512(load16(run + 32 * c, m0)), load16(run + 32 * c + 16, m1), 1);
      _mm512_storeu_si512(out + c * 256, v);
    }
  }
}

// NNFAST_BF16_AMX_DIRECT_A=0: row-major A through pack_pairs and the tile transpose (the
// first route), for A/B timing. Read per call so tests can compare both in one process.
inline bool direct_a_on() { return env_switch_on("NNFAST_BF16_AMX_DIRECT_A"); }

// A rows [row0, row0 + n) x K [pc, pc + kc) into tiles (see the top comment).
void pack_a(const GemmMat& A, index_t row0, index_t pc, index_t n, index_t kc, u32* dst) {
  const index_t kp = (kc + 1) / 2, kpad = kpad_of(kc), np = (n + 15) / 16;
  if (A.cs == 1 && direct_a_on()) {
    const index_t off = row0 * A.rs + pc;
    if (A.type == ElemType::BF16) pack_a_rows(static_cast<const u16*>(A.data) + off, A.rs, n, kc, dst);
    else pack_a_rows(static_cast<const float*>(A.data) + off, A.rs, n, kc, dst);
    return;
  }
  pack_operand<16>(A, row0, pc, n, kc, true, dst, kpad);
  pad_panels(dst, np, kp, kpad);
  // pack_pairs gives each 16 x 16 block as [pair][row]; tdpbf16ps wants [row][pair].
  for (index_t t = 0; t < np * kpad / 16; ++t) {
    u32* blk = dst + t * 256;
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(blk + 16 * i);
    transpose16(r);
    for (int i = 0; i < 16; ++i) _mm512_storeu_si512(blk + 16 * i, r[i]);
  }
}

// Columns [jc + a, jc + b) of the shared B panel; a is a multiple of TR.
void pack_b_amx(const Bf16Args& g, index_t pc, index_t kc, index_t jc, index_t a, index_t b, void* bp) {
  if (b <= a) return;
  const index_t kp = (kc + 1) / 2, kpad = kpad_of(kc);
  u32* dst = static_cast<u32*>(bp) + a * kpad;
  pack_operand<16>(g.B, pc, jc + a, b - a, kc, false, dst, kpad);
  pad_panels(dst, (b - a + 15) / 16, kp, kpad);
}

// c (m x n corner, strides rs_c / cs_c) = alpha * t + beta * c, t dense TR x TR (beta == 0 never reads c).
void store_block(const float* t, index_t m, index_t n, float alpha, float beta, float* c, index_t rs_c,
                 index_t cs_c) {
  if (cs_c == 1) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (index_t r = 0; r < m; ++r)
      for (index_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_n(n - j);
        float* p = c + r * rs_c + j;
        const __m512 x = _mm512_loadu_ps(t + r * TR + j);
        __m512 y;
        if (beta == 0.0f) y = _mm512_mul_ps(va, x);
        else if (beta == 1.0f) y = _mm512_fmadd_ps(va, x, _mm512_maskz_loadu_ps(k, p));
        else y = _mm512_fmadd_ps(va, x, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k, p)));
        _mm512_mask_storeu_ps(p, k, y);
      }
    return;
  }
  for (index_t r = 0; r < m; ++r)
    for (index_t j = 0; j < n; ++j) {
      float* p = c + r * rs_c + j * cs_c;
      *p = beta == 0.0f ? alpha * t[r * TR + j] : alpha * t[r * TR + j] + beta * *p;
    }
}

// One 32 x 32 C block over kpad pairs: a0 / a1 the two A panels, b0 / b1 the two B
// panels (pair-row tiles 1 KB apart). kInit: 0 = accumulators start at zero, 1 = they
// start from C (alpha == 1, beta == 1, full block, unit columns: C += A.B in the
// tiles). Out: C itself (row stride rs_out) when `direct`, else the dense TR x TR tile.
template <bool kLoadC>
__attribute__((noinline)) void block32(index_t kpad, const u32* a0, const u32* a1, const u32* b0, const u32* b1,
                                       float* out, index_t rs_out) {
  const size_t so = size_t(rs_out) * 4;
  if (kLoadC) {
    _tile_loadd(0, out, so);
    _tile_loadd(1, out + 16, so);
    _tile_loadd(2, out + 16 * rs_out, so);
    _tile_loadd(3, out + 16 * rs_out + 16, so);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (index_t c = 0; c < kpad / 16; ++c) {
    _tile_loadd(4, a0 + c * 256, 64);
    _tile_loadd(6, b0 + c * 256, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b1 + c * 256, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1 + c * 256, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, so);
  _tile_stored(1, out + 16, so);
  _tile_stored(2, out + 16 * rs_out, so);
  _tile_stored(3, out + 16 * rs_out + 16, so);
}

// The same block in plain C++ with tdpbf16ps's arithmetic as the SDM states it (per C
// element and pair row: c += a.lo * b.lo + a.hi * b.hi in float32, products exact,
// bf16 inputs and float32 results with subnormals flushed to zero), on any CPU: the
// hidden NNFAST_BF16_AMX_EMULATE=1 runs the packing, padding and edge logic of this
// nest where the CPU has AVX512-BF16 but no AMX (tests, CI). Not bit-exact with the
// hardware, whose internal rounding of the pair sum is unspecified: tested to the bound.
inline float ftz(float x) { return std::fabs(x) < 1.17549435e-38f ? x * 0.0f : x; }
inline float bits_f32(u32 w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
inline float bf16_lo(u32 w) { return ftz(bits_f32(w << 16)); }
inline float bf16_hi(u32 w) { return ftz(bits_f32(w & 0xffff0000u)); }

template <bool kLoadC>
__attribute__((noinline)) void block32_emu(index_t kpad, const u32* a0, const u32* a1, const u32* b0, const u32* b1,
                                           float* out, index_t rs_out) {
  const u32* as[2] = {a0, a1};
  const u32* bs[2] = {b0, b1};
  for (int ti = 0; ti < 2; ++ti)
    for (int tj = 0; tj < 2; ++tj) {
      float acc[16][16];
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 16; ++n) acc[m][n] = kLoadC ? out[(ti * 16 + m) * rs_out + tj * 16 + n] : 0.0f;
      for (index_t c = 0; c < kpad / 16; ++c) {
        const u32* a = as[ti] + c * 256;  // [row][pair]
        const u32* b = bs[tj] + c * 256;  // [pair][column]
        for (int m = 0; m < 16; ++m)
          for (int n = 0; n < 16; ++n) {
            float x = acc[m][n];
            for (int p = 0; p < 16; ++p) {
              const u32 wa = a[m * 16 + p], wb = b[p * 16 + n];
              x = ftz(x + bf16_lo(wa) * bf16_lo(wb) + bf16_hi(wa) * bf16_hi(wb));
            }
            acc[m][n] = x;
          }
      }
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 16; ++n) out[(ti * 16 + m) * rs_out + tj * 16 + n] = acc[m][n];
    }
}

template <bool kEmu, bool kLoadC>
inline void run_block(index_t kpad, const u32* a0, const u32* a1, const u32* b0, const u32* b1, float* out,
                      index_t rs_out) {
  if (kEmu) block32_emu<kLoadC>(kpad, a0, a1, b0, b1, out, rs_out);
  else block32<kLoadC>(kpad, a0, a1, b0, b1, out, rs_out);
}

// Tile config only for the hardware backend.
template <bool kEmu>
struct MaybeTiles {
  MaybeTiles() { if (!kEmu) tiles_on(); }
  ~MaybeTiles() { if (!kEmu) _tile_release(); }
};

template <int MC, int KC, int NC, bool kEmu = false, bool kRowsFirst = true>
struct Nest {
  // One thread's workspace: packed A (round_up(mc, 32) rows x kpad words), the
  // float tile (TR x TR), then (block only) packed B; 64-byte aligned parts.
  static size_t a_words(index_t m, index_t K) {
    const index_t kcb = gemm_balanced_block(K, KC, 32), mcb = gemm_balanced_block(m, MC, TR);
    return size_t(panels2(mcb) * 16 * kpad_of(kcb) + TR * TR);
  }
  static size_t a_workspace_bytes(index_t m, index_t K) { return a_words(m, K) * 4; }
  static size_t b_panel_bytes(index_t N, index_t K) {
    const index_t kcb = gemm_balanced_block(K, KC, 32), ncb = gemm_balanced_block(N, NC, TR);
    return size_t(panels2(ncb) * 16 * kpad_of(kcb)) * 4;
  }
  static size_t workspace_bytes(index_t m, index_t n, index_t K) {
    return a_workspace_bytes(m, K) + b_panel_bytes(n, K);
  }

  static void rows(const Bf16Args& g, const void* bp, void* ws, index_t i0, index_t i1, index_t pc, index_t kc,
                   index_t jc, index_t nc) {
    MaybeTiles<kEmu> scope;
    const index_t m = i1 - i0, kpad = kpad_of(kc);
    const index_t kcb = gemm_balanced_block(g.K, KC, 32), mcb = gemm_balanced_block(m, MC, TR);
    const u32* Bp = static_cast<const u32*>(bp);
    u32* Ap = static_cast<u32*>(ws);
    float* tile = reinterpret_cast<float*>(Ap + panels2(mcb) * 16 * kpad_of(kcb));
    const bool last = pc + kc >= g.K;
    const float beta = pc == 0 ? g.beta : 1.0f;
    const index_t ps = 16 * kpad;  // words per 16-wide panel
    for (index_t ic = i0; ic < i1; ic += mcb) {
      const index_t mc = i1 - ic < mcb ? i1 - ic : mcb;
      pack_a(g.A, ic, pc, mc, kc, Ap);
      // Rows first: each 32-row A strip (32 KB at KC = 512) stays in L1 while the B strips
      // stream from L2, instead of A strips streaming with each B strip reused only
      // MC / 32 = 4 times. 1-thread CPU time, loaded machine: the dW shapes (K = 256)
      // 1.4-1.6x, the others within noise (0.9-1.1x); only while the B panel fits L2
      // (<= 1 MiB): at N = 2048 rows first measured 0.9x before this rule.
      const bool rows_first = kRowsFirst && nc * kc * 2 <= (index_t(1) << 20);
      const index_t outer = rows_first ? mc : nc, inner = rows_first ? nc : mc;
      for (index_t o = 0; o < outer; o += TR) {
        for (index_t in = 0; in < inner; in += TR) {
          const index_t ir = rows_first ? o : in, jr = rows_first ? in : o;
          const index_t mr = mc - ir < TR ? mc - ir : TR, nr = nc - jr < TR ? nc - jr : TR;
          const u32* a0 = Ap + (ir / 16) * ps;
          const u32* b0 = Bp + (jr / 16) * ps;
          float* c = g.C + (ic + ir) * g.rs_c + (jc + jr) * g.cs_c;
          const bool full = mr == TR && nr == TR && g.cs_c == 1 && g.alpha == 1.0f;
          if (full && beta == 0.0f) {
            run_block<kEmu, false>(kpad, a0, a0 + ps, b0, b0 + ps, c, g.rs_c);
          } else if (full && beta == 1.0f) {
            run_block<kEmu, true>(kpad, a0, a0 + ps, b0, b0 + ps, c, g.rs_c);
          } else {
            run_block<kEmu, false>(kpad, a0, a0 + ps, b0, b0 + ps, tile, TR);
            store_block(tile, mr, nr, g.alpha, beta, c, g.rs_c, g.cs_c);
          }
        }
      }
      if (last && g.epi) g.epi(*g.epi_args, ic, mc, jc, nc);
    }
  }

  static void block(const Bf16Args& g, void* ws, index_t i0, index_t i1, index_t j0, index_t j1) {
    const index_t m = i1 - i0, n = j1 - j0;
    const index_t kcb = gemm_balanced_block(g.K, KC, 32), ncb = gemm_balanced_block(n, NC, TR);
    block_nest(g, ws, static_cast<char*>(ws) + a_workspace_bytes(m, g.K), kcb, ncb, i0, i1, j0, j1, &pack_b_amx, &rows);
  }
};

// 4 independent accumulator tiles, one A and one B tile: 16 x 16 x 32 x 2 flops per tdpbf16ps.
__attribute__((noinline)) float tdp_chains(long iters, const u32* ab, float* out) {
  TileScope scope;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ab, 64);
  _tile_loadd(6, ab, 64);
  for (long it = 0; it < iters; ++it) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 6);
    _tile_dpbf16ps(2, 4, 6);
    _tile_dpbf16ps(3, 4, 6);
  }
  _tile_stored(0, out, 64);
  _tile_stored(1, out, 64);
  _tile_stored(2, out, 64);
  _tile_stored(3, out, 64);
  return out[0];
}

double peak_gflops(double seconds) {
  constexpr double flops_per_iter = 4.0 * 16 * 16 * 32 * 2;
  alignas(64) static thread_local u32 ab[256];
  alignas(64) static thread_local float out[256];
  for (auto& w : ab) w = 0x3a003a00u;
  long iters = 1 << 12;
  double best = 0;
  volatile float sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + tdp_chains(iters, ab, out);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0 && flops_per_iter * iters / dt > best) best = flops_per_iter * iters / dt;
    if (dt < 2e-3) iters *= 2;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) break;
  }
  return best * 1e-9;
}

template <int MC, int KC, int NC, bool kEmu = false, bool kRowsFirst = true>
constexpr Bf16Kernel make_amx() {
  using X = Nest<MC, KC, NC, kEmu, kRowsFirst>;
  return Bf16Kernel{{TR, TR, MC, KC, NC}, &X::workspace_bytes, &X::block, &peak_gflops, &X::a_workspace_bytes,
                    &X::b_panel_bytes, &pack_b_amx, &X::rows, &narrow_block, &widen_block, 32};
}

// MC = 128 rows x KC = 512 bf16 of packed A is 128 KB (L2); the 32-column B strip of
// one K block (32 KB) is read by every 32-row block of A. KC = 256 (strips that fit L1
// together) and 1024 measured no faster (1-thread CPU time, 1024^2 and the MLP shapes).
const Bf16Kernel kAmx = make_amx<128, 512, 4096>();
const Bf16Kernel kAmxEmu = make_amx<128, 512, 4096, true>();
// NNFAST_BF16_AMX_ROWS_FIRST=0: columns outer always (the first order), for A/B timing.
const Bf16Kernel kAmxColsFirst = make_amx<128, 512, 4096, false, false>();
// Wide B (its K block over 1 MiB: the nest runs columns first, each B strip read once per
// MC rows and C reloaded once per K block): MC = 256 reuses each strip twice as often and
// KC = 1024 halves the C reloads. 1-thread CPU time, loaded machine: 2048^2 1.4x (520 ->
// 740 GFLOP/s); the rows-first shapes (MLP, 1024^2) measured no gain, so they keep 128 / 512.
const Bf16Kernel kAmxWide = make_amx<256, 1024, 4096>();
const Bf16Kernel kAmxWideEmu = make_amx<256, 1024, 4096, true>();

// NNFAST_BF16_AMX_WIDE=0 (read per call): the 128 / 512 blocking for every shape.
bool wide_b(index_t N, index_t K) {
  const index_t n = N < 4096 ? N : 4096, k = K < 512 ? K : 512;
  return n * k * 2 > (index_t(1) << 20) && env_switch_on("NNFAST_BF16_AMX_WIDE");
}

}  // namespace amx
}  // namespace

const Bf16Kernel* bf16_kernel_amx(index_t N, index_t K) {
  static const bool rows_first = env_switch_on("NNFAST_BF16_AMX_ROWS_FIRST");
  if (!rows_first) return &amx::kAmxColsFirst;
  return amx::wide_b(N, K) ? &amx::kAmxWide : &amx::kAmx;
}
const Bf16Kernel* bf16_kernel_amx_emulated(index_t N, index_t K) {
  return amx::wide_b(N, K) ? &amx::kAmxWideEmu : &amx::kAmxEmu;
}

}  // namespace nnfast::cpu::gemm_detail

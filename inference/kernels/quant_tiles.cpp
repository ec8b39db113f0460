// The tile kernels of the quantized linears: W repacked once (at load) so that 8 of its rows
// share every load of x (formats in quant_common.h, the driver there too).
//
// From about 8 rows of x up, the row kernels are bound by arithmetic, not bytes, and most of
// it is per (row of W, row of x) pair: a horizontal sum, a conversion and a scale for every
// few blocks. Here a 256-bit vector holds 4 consecutive elements of each of 8 rows of W, x's
// 4 matching int8 values are broadcast to every lane, and one multiply-add gives the 8 rows'
// partial dots in the 8 lanes: the block's dots end where the outputs go, and the float
// epilogue (scale, the q4 min term) runs once per block for 8 outputs. Each tile of W is then
// applied to up to kTileRows rows of x while it sits in L1.
//
// Layouts (tile t = rows 8t .. 8t + 7 of W, block b, lane group j), all three-dimensional
// so that a tiled weight is never mistaken for a row one:
//   q4: qs uint8 [N/8, blocks, 128]: bytes 4j .. 4j+3 of each row's 16-byte block, for
//       j = 0..3, as 8 rows x 4 bytes; their low nibbles are elements 4j.., high ones 16 + 4j..
//   q8: qs int8 [N/8, blocks, 256]: elements 4j .. 4j+3 of each row's block, j = 0..7.
//   d (and m): float16 [N/8, blocks, 8], the 8 rows' scales of each block side by side.
// (`tile_rows` in the Python quant module builds them from the row formats.)

#include "quant_common.h"

#include <cstdint>

namespace inference_kernels::quant {
namespace { struct TilesFile; }  // keeps this file's kernels to itself (see Kernels)

using Q4Tiles = Kernels<Q4, TileLayout, TilesFile>;
using Q8Tiles = Kernels<Q8, TileLayout, TilesFile>;

// How far ahead of the block it computes a thread asks for W (its tiles lie back to back):
// a decode step reads each weight once, from memory, and the hardware prefetcher alone
// left half the bandwidth unused (the 30 layers' 4-bit weights at 1 row: 4.2 -> 2.4 ms on a
// 2-core Xeon, 4.4 -> 2.8 ms at the AVX2 tier; 1-8 KB ahead all measured alike).
constexpr int64_t kTilePrefetchBytes = 2048;

namespace {

// The portable tile kernels' frame: y[r][c] is the sum over blocks b of
// block(row of x, output c of the tile, b, the row's int8 block b).
template <int MB, typename Block>
void tile_portable(const Activations& a, int64_t r0, float* y, const Block& block) {
  for (int r = 0; r < MB; ++r) {
    for (int64_t c = 0; c < kTile; ++c) {
      float acc = 0.f;
      for (int64_t b = 0; b < a.blocks; ++b)
        acc += block(r0 + r, c, b, a.q + (r0 + r) * a.k + b * kBlock);
      y[r * kTile + c] = acc;
    }
  }
}

}  // namespace

template <>
template <int MB>
void Q4Tiles::portable(const Activations& a, int64_t r0, const Unit<Q4>& w, float* y) {
  tile_portable<MB>(a, r0, y, [&](int64_t row, int64_t c, int64_t b, const int8_t* xq) {
    int32_t dot = 0;
    for (int64_t j = 0; j < 4; ++j) {
      for (int64_t i = 0; i < 4; ++i) {
        const uint8_t byte = w.qs[b * 128 + j * 32 + c * 4 + i];
        dot += static_cast<int32_t>(byte & 15) * xq[4 * j + i];
        dot += static_cast<int32_t>(byte >> 4) * xq[16 + 4 * j + i];
      }
    }
    const int64_t at = row * a.blocks + b;
    return static_cast<float>(w.d[b * kTile + c]) * a.scale[at] * static_cast<float>(dot) +
           static_cast<float>(w.m[b * kTile + c]) * a.sum[at];
  });
}

template <>
template <int MB>
void Q8Tiles::portable(const Activations& a, int64_t r0, const Unit<Q8>& w, float* y) {
  tile_portable<MB>(a, r0, y, [&](int64_t row, int64_t c, int64_t b, const int8_t* xq) {
    int32_t dot = 0;
    for (int64_t j = 0; j < 8; ++j)
      for (int64_t i = 0; i < 4; ++i)
        dot += static_cast<int32_t>(w.qs[b * 256 + j * 32 + c * 4 + i]) * xq[4 * j + i];
    return static_cast<float>(w.d[b * kTile + c]) * a.scale[row * a.blocks + b] *
           static_cast<float>(dot);
  });
}

#if QUANT_SIMD

// Keeps a running sum in a register, in the order written. Without VNNI the sums are plain
// integer adds, which GCC reassociates: it computed all of a block's maddubs products first
// (2 per row of x and lane group: 32 with 4 rows) and, with 16 vector registers, spilled them
// to the stack and read them back to add them. Each product added as it is made needs no spill.
// (With VNNI, dpbusd accumulates in place and nothing is reordered.)
inline void in_order(__m256i& sum) {
#if !QUANT_VNNI
  asm("" : "+x"(sum));
#endif
}

// Without VNNI a block's 8 maddubs results are summed in int16 (dot2_u8s8_add16): each is at
// most 2 * 15 * 127 = 3810, so 8 of them stay below 32767, and one madd widens the total.
template <>
template <int MB>
void Q4Tiles::simd(const Activations& a, int64_t r0, const Unit<Q4>& w, float* y) {
  const c10::Half *d = w.d, *mn = w.m;
  const int64_t k = a.k, blocks = a.blocks;
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* q = w.qs + 128 * b;
    __builtin_prefetch(q + kTilePrefetchBytes);  // a block's 128 bytes: two lines
    __builtin_prefetch(q + kTilePrefetchBytes + 64);
    __builtin_prefetch(d + kTile * (b + kTilePrefetchBytes / 128));  // as many blocks ahead
    __builtin_prefetch(mn + kTile * (b + kTilePrefetchBytes / 128));
    __m256i dot[MB];
    for (int r = 0; r < MB; ++r) dot[r] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i v = load256(q + 32 * j);
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      for (int r = 0; r < MB; ++r) {
        const int8_t* x = a.q + (r0 + r) * k + kBlock * b + 4 * j;
        const __m256i xl = _mm256_set1_epi32(load_i32(x));
        const __m256i xh = _mm256_set1_epi32(load_i32(x + 16));
        dot[r] = dot2_u8s8_add16(dot[r], lo, xl, hi, xh);
        in_order(dot[r]);
      }
    }
    const __m256 dw = load_half8(d + kTile * b);
    const __m256 mw = load_half8(mn + kTile * b);
    for (int r = 0; r < MB; ++r) {
      const int64_t at = (r0 + r) * blocks + b;
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.scale[at]));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(widen16(dot[r])), scale, acc[r]);
      acc[r] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a.sum[at]), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) _mm256_storeu_ps(y + kTile * r, acc[r]);
}

// s8 x s8 as in the q8 row kernel: |w| against x with w's sign; maddubs pairs reach
// 2 * 128 * 127, so without VNNI each is widened to int32 at once (dot_u8s8_add).
template <>
template <int MB>
void Q8Tiles::simd(const Activations& a, int64_t r0, const Unit<Q8>& w, float* y) {
  const c10::Half* d = w.d;
  const int64_t k = a.k, blocks = a.blocks;
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* q = w.qs + 256 * b;
    for (int line = 0; line < 4; ++line) __builtin_prefetch(q + kTilePrefetchBytes + 64 * line);
    __builtin_prefetch(d + kTile * (b + kTilePrefetchBytes / 256));
    __m256i dot[MB];
    for (int r = 0; r < MB; ++r) dot[r] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i v = load256(q + 32 * j);
      const __m256i u = _mm256_abs_epi8(v);
      for (int r = 0; r < MB; ++r) {
        const __m256i x = _mm256_set1_epi32(load_i32(a.q + (r0 + r) * k + kBlock * b + 4 * j));
        dot[r] = dot_u8s8_add(dot[r], u, _mm256_sign_epi8(x, v));
        in_order(dot[r]);
      }
    }
    const __m256 dw = load_half8(d + kTile * b);
    for (int r = 0; r < MB; ++r) {
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.scale[(r0 + r) * blocks + b]));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r]), scale, acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) _mm256_storeu_ps(y + kTile * r, acc[r]);
}

#endif  // QUANT_SIMD

void run(Q4, TileLayout, const Activations& a, const Weights& w, bool portable,
         at::Tensor& out) {
  run_kernels<Q4Tiles>(a, w, portable, out);
}

void run(Q8, TileLayout, const Activations& a, const Weights& w, bool portable,
         at::Tensor& out) {
  run_kernels<Q8Tiles>(a, w, portable, out);
}

}  // namespace inference_kernels::quant

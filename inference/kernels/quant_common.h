// Weight-only quantized linear layers, y = x @ W.T with W in 4 or 8 bits: what the row
// kernels (quant_rows.cpp), the tile kernels (quant_tiles.cpp) and the ops (quant_ops.cpp)
// share. This header owns the block formats, the one place where the instruction set is
// chosen, the per-ISA dot-product helpers and the driver that runs a layout's kernels over
// W. It must not include kernels.h: the other op families neither see nor need it.
//
// At batch 1..16 every call streams all of W from memory once, so the time is the weight
// bytes over the memory bandwidth as long as the arithmetic keeps up. It keeps up because the
// activations are quantized once per call to int8 per block of 32 (scale max|x|/127), which
// turns each block's dot product into one integer instruction sequence (u8 x s8, VNNI's
// dpbusd where the CPU has it), scaled by d_w * d_x and summed over blocks in fp32.
//
// Formats (W is [N, K], blocks of 32 consecutive input features, K a multiple of 32):
//   q4: qs uint8 [N, K/2], d and m float16 [N, K/32]; a block's 16 bytes hold its elements
//       0..15 in their low nibbles and 16..31 in their high nibbles; w = d * nibble + m.
//       The m term is m_w * d_x * sum(x_q): one fp32 product per block, not per element.
//   q8: qs int8 [N, K], d float16 [N, K/32]; w = d * q.
// x is [M, K] fp32 or bf16; the result is [M, N] in x's dtype. Each format also comes tiled
// (8 rows of W interleaved, see quant_tiles.cpp); a layout's kernels read one unit of W (a
// row, or a tile) against up to kMaxRows rows of x, and `run_units` splits W over threads.
//
// The x86 path needs AVX2 (with FMA and F16C) and uses VNNI's dpbusd, and 512-bit vectors for
// q4 rows, where the compile flags (the CPU tier, see build.py) allow; the portable path
// computes the same integer dot products in plain loops (slowly), and `portable=True` forces
// it so both can be tested on one machine.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

// ---------------------------------------------------------------------------------------
// The instruction set, chosen here and only here (each macro 0 or 1, or a count).
//   QUANT_SIMD: AVX2 + FMA + F16C, the x86 kernels (else the portable ones alone);
//   QUANT_VNNI: dpbusd on 256-bit vectors (AVX512-VNNI with VL, or AVX-VNNI);
//   QUANT_ZMM:  512-bit vectors for q4 rows (AVX-512 BW with VNNI);
//   QUANT_TILE_ROWS: rows of x per tile pass, as many as the vector registers hold
//   accumulators for (32 registers with AVX-512, 16 without).
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define QUANT_SIMD 1
#else
#define QUANT_SIMD 0
#endif
#if QUANT_SIMD && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QUANT_VNNI 1
#define QUANT_DPBUSD _mm256_dpbusd_epi32
#elif QUANT_SIMD && defined(__AVXVNNI__)
#define QUANT_VNNI 1
#define QUANT_DPBUSD _mm256_dpbusd_avx_epi32
#else
#define QUANT_VNNI 0
#endif
#if QUANT_VNNI && defined(__AVX512F__) && defined(__AVX512BW__)
#define QUANT_ZMM 1
#else
#define QUANT_ZMM 0
#endif
#if defined(__AVX512VL__)
#define QUANT_TILE_ROWS 8
#else
#define QUANT_TILE_ROWS 4
#endif

namespace inference_kernels::quant {

constexpr bool kSimd = QUANT_SIMD, kVnni = QUANT_VNNI, kZmm = QUANT_ZMM;
constexpr int64_t kTileRows = QUANT_TILE_ROWS;

// The path the quantized linears take when not forced onto the portable one.
constexpr const char* kPathName = kZmm    ? "avx512-vnni"
                                  : kVnni ? "avx2-vnni"
                                  : kSimd ? "avx2"
                                          : "portable";

// ---------------------------------------------------------------------------------------
// Block formats and layouts.

constexpr int64_t kBlock = 32;  // input features per block, each with its own scales
constexpr int64_t kTile = 8;    // rows of W per tile

struct Q4 {
  using Quant = uint8_t;
  static constexpr int64_t kBlockBytes = kBlock / 2;
  static constexpr bool kHasMin = true;
};

struct Q8 {
  using Quant = int8_t;
  static constexpr int64_t kBlockBytes = kBlock;
  static constexpr bool kHasMin = false;
};

// W row by row: each row read once and applied to up to 8 rows of x while it is in L1.
struct RowLayout {
  static constexpr int64_t kOutputs = 1;        // rows of W per unit
  static constexpr int64_t kMaxRows = 8;        // rows of x per kernel call (accumulators)
  static constexpr int64_t kPrefetchUnits = 6;  // rows of W requested ahead of the one computed
};

// W in tiles of 8 rows that share every load of x (quant_tiles.cpp); the kernels prefetch.
struct TileLayout {
  static constexpr int64_t kOutputs = kTile;
  static constexpr int64_t kMaxRows = kTileRows;
  static constexpr int64_t kPrefetchUnits = 0;
};

// All of W: its quants, and per block the float16 scales d and (q4) minimums m.
struct Weights {
  const void* qs = nullptr;
  const c10::Half* d = nullptr;
  const c10::Half* m = nullptr;  // q4 only
  int64_t n = 0;                 // output features
};

// One unit of W (a row, or a tile): where the kernels read.
template <typename Format>
struct Unit {
  const typename Format::Quant* qs;
  const c10::Half* d;
  const c10::Half* m;
};

// x quantized once per call: int8 values, and per block the scale and scale * sum(q).
struct Activations {
  int64_t rows = 0, k = 0, blocks = 0;
  const int8_t* q = nullptr;       // [rows, k]
  const float* scale = nullptr;    // [rows, blocks]
  const float* sum = nullptr;      // [rows, blocks]
  const int8_t* paired = nullptr;  // q4 rows, SIMD only: [rows, k], see quant_rows.cpp
  const float* scale4 = nullptr;   // q4 rows, SIMD only: [rows, blocks / 4, 8 or 16]
};

// Whether a format and layout's SIMD kernels read x in the paired layout.
template <typename Format, typename Layout>
constexpr bool kReadsPaired =
    kSimd && std::is_same_v<Format, Q4> && std::is_same_v<Layout, RowLayout>;

// Adds x's paired layout (and its scales) to `a`, the buffers kept in `storage`.
void pair_activations(Activations& a, std::vector<at::Tensor>& storage);

// A format and layout's kernels: `portable<MB>` and (x86) `simd<MB>` each compute
// y[MB][kOutputs] for rows r0 .. r0 + MB - 1 of x against one unit of W. quant_rows.cpp and
// quant_tiles.cpp define them for their layout with `File` a type of their unnamed namespace,
// which keeps the kernels internal to that file: free for the compiler to specialize their
// calls, as when every kernel was in one file.
template <typename FormatT, typename LayoutT, typename File>
struct Kernels {
  using Format = FormatT;
  using Layout = LayoutT;
  template <int MB>
  static void portable(const Activations& a, int64_t r0, const Unit<Format>& w, float* y);
  template <int MB>
  static void simd(const Activations& a, int64_t r0, const Unit<Format>& w, float* y);
};

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// ---------------------------------------------------------------------------------------
// x86 helpers: the u8 x s8 dot products and the loads the kernels share.

#if QUANT_SIMD

// dot_u8s8_add: acc + the sums over 4-byte groups of u8 * s8, in int32 lanes. Without VNNI
// maddubs' pairwise int16 sums saturate above 32767: q4 nibbles (<= 15) and q8's |w| (<= 128)
// times |x_q| <= 127 stay below. dot2_u8s8_add16 does two such products at once and, without
// VNNI, keeps int16 sums until widen16 (the caller bounds them: q4 nibbles only).
#if QUANT_VNNI
inline __m256i dot_u8s8_add(__m256i acc, __m256i u, __m256i s) {
  return QUANT_DPBUSD(acc, u, s);
}
inline __m256i dot2_u8s8_add16(__m256i acc, __m256i u1, __m256i s1, __m256i u2, __m256i s2) {
  return QUANT_DPBUSD(QUANT_DPBUSD(acc, u1, s1), u2, s2);
}
inline __m256i widen16(__m256i acc) { return acc; }
#else
inline __m256i dot_u8s8_add(__m256i acc, __m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
inline __m256i dot2_u8s8_add16(__m256i acc, __m256i u1, __m256i s1, __m256i u2, __m256i s2) {
  const __m256i pairs =
      _mm256_add_epi16(_mm256_maddubs_epi16(u1, s1), _mm256_maddubs_epi16(u2, s2));
  return _mm256_add_epi16(acc, pairs);
}
inline __m256i widen16(__m256i acc) { return _mm256_madd_epi16(acc, _mm256_set1_epi16(1)); }
#endif

// sum over 4-byte groups of u8 * s8 -> 8 int32 lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return dot_u8s8_add(_mm256_setzero_si256(), u, s);
}

// dot_u8s8(u1, s1) + dot_u8s8(u2, s2) (the int16 partial sums of q4 nibbles cannot overflow).
inline __m256i dot2_u8s8(__m256i u1, __m256i s1, __m256i u2, __m256i s2) {
  return widen16(dot2_u8s8_add16(_mm256_setzero_si256(), u1, s1, u2, s2));
}

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum(__m128 v) {
  __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m128 load_half2(const c10::Half* p) {
  int32_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  return _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
}

inline __m128 load_float2(const float* p) {
  return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
}

inline __m128 load_half4(const c10::Half* p) {
  return _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

inline __m256 load_half8(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

#endif  // QUANT_SIMD

// ---------------------------------------------------------------------------------------
// The driver: every unit of W against every run of rows of x, in parallel over units.

// Calls body(std::integral_constant<int, n>{}) with n = min(count, MB): each n is its own
// instantiation of the kernel the body calls, so each row of x keeps its accumulators in
// registers.
template <int MB, typename Body>
void dispatch_rows(int64_t count, const Body& body) {
  if constexpr (MB > 1) {
    if (count < MB) return dispatch_rows<MB - 1>(count, body);
  }
  body(std::integral_constant<int, MB>{});
}

inline void store(float* out, int64_t at, float v) { out[at] = v; }
inline void store(c10::BFloat16* out, int64_t at, float v) { out[at] = c10::BFloat16(v); }

// out[M, N] = x @ W.T for W in the format and layout of `Kernels` (a Kernels<...> above).
template <typename Kernels, typename T>
void run_units(const Activations& a, const Weights& w, bool portable, T* out) {
  using Format = typename Kernels::Format;
  using Layout = typename Kernels::Layout;
  constexpr int64_t kOut = Layout::kOutputs, kRows = Layout::kMaxRows;
  constexpr int64_t kBytes = Format::kBlockBytes;
  constexpr int64_t kScaleBytes = Format::kHasMin ? 4 : 2;
  const int64_t blocks = a.blocks, units = w.n / kOut, n = w.n;
  const auto* qs = static_cast<const typename Format::Quant*>(w.qs);
  // At least ~32 KB of weights per thread: a smaller split costs more than it saves.
  const int64_t unit_bytes = blocks * kOut * (kBytes + kScaleBytes);
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, unit_bytes));
  at::parallel_for(0, units, grain, [&](int64_t begin, int64_t end) {
    float y[kRows * kOut];
    for (int64_t u = begin; u < end; ++u) {
      const Unit<Format> unit{qs + u * kOut * blocks * kBytes, w.d + u * kOut * blocks,
                              Format::kHasMin ? w.m + u * kOut * blocks : nullptr};
      if constexpr (Layout::kPrefetchUnits > 0) {  // a row is ~300 bytes: ask for later ones
        if (u + Layout::kPrefetchUnits < units) {
          const int64_t ahead = u + Layout::kPrefetchUnits;
          for (int64_t off = 0; off < blocks * kBytes; off += 64)
            __builtin_prefetch(qs + ahead * blocks * kBytes + off);
          __builtin_prefetch(w.d + ahead * blocks);
          if constexpr (Format::kHasMin) __builtin_prefetch(w.m + ahead * blocks);
        }
      }
      for (int64_t r0 = 0; r0 < a.rows; r0 += kRows) {
        const int64_t count = std::min(kRows, a.rows - r0);
        dispatch_rows<kRows>(count, [&](auto rows) {
          constexpr int kMB = decltype(rows)::value;
          if constexpr (kSimd) {
            if (!portable) return Kernels::template simd<kMB>(a, r0, unit, y);
          }
          Kernels::template portable<kMB>(a, r0, unit, y);
        });
        for (int64_t r = 0; r < count; ++r)
          for (int64_t c = 0; c < kOut; ++c)
            store(out, (r0 + r) * n + kOut * u + c, y[kOut * r + c]);
      }
    }
  });
}

// run_units into out ([M, N], float32 or bfloat16 as x is).
template <typename Kernels>
void run_kernels(const Activations& a, const Weights& w, bool portable, at::Tensor& out) {
  if (out.scalar_type() == at::kFloat) {
    run_units<Kernels>(a, w, portable, out.data_ptr<float>());
  } else {
    run_units<Kernels>(a, w, portable, out.data_ptr<c10::BFloat16>());
  }
}

// out = x @ W.T for W in a format and layout: defined beside their kernels, the row layout's
// in quant_rows.cpp, the tiled one's in quant_tiles.cpp.
void run(Q4, RowLayout, const Activations& a, const Weights& w, bool portable, at::Tensor& out);
void run(Q8, RowLayout, const Activations& a, const Weights& w, bool portable, at::Tensor& out);
void run(Q4, TileLayout, const Activations& a, const Weights& w, bool portable,
         at::Tensor& out);
void run(Q8, TileLayout, const Activations& a, const Weights& w, bool portable,
         at::Tensor& out);

}  // namespace inference_kernels::quant

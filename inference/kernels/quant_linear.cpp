// Weight-only quantized linear layers for decode: y = x @ W.T with W kept in 4 or 8 bits.
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
// x is [M, K] fp32 or bf16; the result is [M, N] in x's dtype.
//
// Rows of W are split over threads; each row is read once and applied to every row of x
// (in chunks of up to 8 while it is still in L1). The x86 path needs AVX2 and uses 512-bit
// vectors for q4 where AVX-512 VNNI exists (the preprocessor picks, under -march=native);
// the portable path computes the same integer dot products in plain loops (slowly), and
// `portable=True` forces it so both can be tested on one machine.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define QUANT_SIMD 1
#endif

namespace {

constexpr int64_t kBlock = 32;
constexpr int64_t kRowsPerChunk = 8;
constexpr int64_t kPrefetchRows = 6;  // rows of W requested ahead of the one computed  // rows of x per pass over a row of W (accumulators)

// x quantized once per call: int8 values, and per block the scale and scale * sum(q).
struct Activations {
  int64_t rows = 0, k = 0, blocks = 0;
  const int8_t* q = nullptr;        // [rows, k]
  const float* scale = nullptr;     // [rows, blocks]
  const float* sum = nullptr;       // [rows, blocks]
  const int8_t* paired = nullptr;   // q4 SIMD only: [rows, k], see pair_blocks
  const float* scale4 = nullptr;    // q4 SIMD only: [rows, blocks / 4, 8 or 16], see pair_blocks
};

template <typename T>
inline float to_float(T v) {
  return static_cast<float>(v);
}

template <>
inline float to_float(c10::BFloat16 v) {
  const uint32_t widened = static_cast<uint32_t>(v.x) << 16;  // bf16 is fp32's top half
  float f;
  std::memcpy(&f, &widened, sizeof(float));
  return f;
}

template <typename T>
void quantize_rows(const T* x, int64_t rows, int64_t k, int8_t* q, float* scale, float* sum) {
  const int64_t blocks = k / kBlock;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const T* src = x + r * k + b * kBlock;
      float v[kBlock];
      float amax = 0.f;
      for (int64_t j = 0; j < kBlock; ++j) {
        v[j] = to_float(src[j]);
        amax = std::max(amax, std::fabs(v[j]));
      }
      const float inverse = amax > 0.f ? 127.f / amax : 0.f;
      int8_t* dst = q + r * k + b * kBlock;
      int32_t total = 0;
      for (int64_t j = 0; j < kBlock; ++j) {
        const int32_t value = static_cast<int32_t>(std::nearbyint(v[j] * inverse));
        dst[j] = static_cast<int8_t>(value);
        total += value;
      }
      scale[r * blocks + b] = amax / 127.f;
      sum[r * blocks + b] = scale[r * blocks + b] * static_cast<float>(total);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Portable path: one block of W unpacked to 32 small integers, then dotted with each row.

template <int MB>
void q4_row_portable(const Activations& a, int64_t r0, const uint8_t* qs, const c10::Half* d,
                     const c10::Half* mn, float* y) {
  float acc[MB] = {};
  for (int64_t b = 0; b < a.blocks; ++b) {
    int8_t w[kBlock];
    for (int64_t j = 0; j < 16; ++j) {
      w[j] = static_cast<int8_t>(qs[b * 16 + j] & 15);
      w[j + 16] = static_cast<int8_t>(qs[b * 16 + j] >> 4);
    }
    const float dw = static_cast<float>(d[b]), mw = static_cast<float>(mn[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
      int32_t dot = 0;
      for (int64_t j = 0; j < kBlock; ++j) dot += static_cast<int32_t>(w[j]) * xq[j];
      const int64_t at = (r0 + r) * a.blocks + b;
      acc[r] += dw * a.scale[at] * static_cast<float>(dot) + mw * a.sum[at];
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = acc[r];
}

template <int MB>
void q8_row_portable(const Activations& a, int64_t r0, const int8_t* qs, const c10::Half* d,
                     float* y) {
  float acc[MB] = {};
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int8_t* w = qs + b * kBlock;
    const float dw = static_cast<float>(d[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
      int32_t dot = 0;
      for (int64_t j = 0; j < kBlock; ++j) dot += static_cast<int32_t>(w[j]) * xq[j];
      acc[r] += dw * a.scale[(r0 + r) * a.blocks + b] * static_cast<float>(dot);
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = acc[r];
}

// ---------------------------------------------------------------------------------------
// x86 path (AVX2, with VNNI's dpbusd where available).

#if defined(QUANT_SIMD)

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QUANT_VNNI 1
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
#elif defined(__AVXVNNI__)
#define QUANT_VNNI 1
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  return _mm256_dpbusd_avx_epi32(acc, u, s);
}
#endif

// sum over 4-byte groups of u8 * s8 -> 8 int32 lanes. Without VNNI the pairwise int16 sums
// saturate above 32767: q4 nibbles (<= 15) and q8's |w| (<= 128) times |x_q| <= 127 stay below.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(QUANT_VNNI)
  return dpbusd(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// dot_u8s8(u1, s1) + dot_u8s8(u2, s2) (the int16 partial sums of q4 nibbles cannot overflow).
inline __m256i dot2_u8s8(__m256i u1, __m256i s1, __m256i u2, __m256i s2) {
#if defined(QUANT_VNNI)
  return dpbusd(dpbusd(_mm256_setzero_si256(), u1, s1), u2, s2);
#else
  const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(u1, s1), _mm256_maddubs_epi16(u2, s2));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
#endif
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

// q4 reads the bytes of a run of blocks as one vector: its low nibbles are elements 0..15 of
// each block, its high nibbles elements 16..31. x is stored to match ("paired"): per run of
// c blocks, x_b[0:16] .. x_b+c-1[0:16] then x_b[16:32] .. x_b+c-1[16:32]. Runs are groups of
// 4 blocks (as 2 runs of 2 with 256-bit vectors), then a pair, then a lone block (as is).
// With 512-bit vectors a group's dot has block b + i in lanes 4i..4i+3; scale4 holds d_x
// spread the same way. With 256-bit ones each pair's dot has b in lanes 0..3 and b+1 in
// 4..7, and hadd of a group's two pairs gives lanes (b, b, b+2, b+2 | b+1, b+1, b+3, b+3).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(QUANT_VNNI)
#define QUANT_ZMM 1
constexpr int64_t kGroupRun = 4;
constexpr int kGroupOrder[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
#else
constexpr int64_t kGroupRun = 2;
constexpr int kGroupOrder[8] = {0, 0, 2, 2, 1, 1, 3, 3};
#endif
constexpr int64_t kGroupScales = sizeof(kGroupOrder) / sizeof(int);

inline void interleave(const int8_t* src, int8_t* dst, int64_t run) {
  for (int64_t c = 0; c < run; ++c) {
    std::memcpy(dst + 16 * c, src + kBlock * c, 16);
    std::memcpy(dst + 16 * (run + c), src + kBlock * c + 16, 16);
  }
}

void pair_blocks(const float* scale, int64_t rows, int64_t k, const int8_t* q, int8_t* paired,
                 float* scale4) {
  const int64_t blocks = k / kBlock, groups = blocks / 4;
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* src = q + r * k;
    int8_t* dst = paired + r * k;
    int64_t b = 0;
    for (; b + kGroupRun <= 4 * groups; b += kGroupRun)
      interleave(src + kBlock * b, dst + kBlock * b, kGroupRun);
    for (; b + 2 <= blocks; b += 2) interleave(src + kBlock * b, dst + kBlock * b, 2);
    if (b < blocks) interleave(src + kBlock * b, dst + kBlock * b, 1);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t i = 0; i < kGroupScales; ++i)
        scale4[(r * groups + g) * kGroupScales + i] = scale[r * blocks + 4 * g + kGroupOrder[i]];
  }
}

template <int MB>
void q4_row_simd(const Activations& a, int64_t r0, const uint8_t* qs, const c10::Half* d,
                 const c10::Half* mn, float* y) {
  const int64_t k = a.k, blocks = a.blocks, groups = blocks / 4;
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[MB];
  __m128 acc_min[MB];
  float tail[MB];
  for (int r = 0; r < MB; ++r) {
    acc[r] = _mm256_setzero_ps();
    acc_min[r] = _mm_setzero_ps();
    tail[r] = 0.f;
  }
#if defined(QUANT_ZMM)
  const __m512i low512 = _mm512_set1_epi8(0x0F);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc512[MB];
  for (int r = 0; r < MB; ++r) acc512[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i v = _mm512_loadu_si512(qs + 64 * g);
    const __m512i lo = _mm512_and_si512(v, low512);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low512);
    const __m512 dw = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(load_half4(d + 4 * g)));
    const __m128 mw = load_half4(mn + 4 * g);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + 128 * g;
      const __m512i p = _mm512_dpbusd_epi32(
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xq)), hi,
          _mm512_loadu_si512(xq + 64));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_loadu_ps(a.scale4 + ((r0 + r) * groups + g) * kGroupScales));
      acc512[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc512[r]);
      acc_min[r] = _mm_fmadd_ps(mw, _mm_loadu_ps(a.sum + (r0 + r) * blocks + 4 * g), acc_min[r]);
    }
  }
#else
  const __m256i order = _mm256_setr_epi32(0, 0, 2, 2, 1, 1, 3, 3);
  for (int64_t g = 0; g < groups; ++g) {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * g));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * g + 32));
    const __m256i lo0 = _mm256_and_si256(v0, low), hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
    const __m256i lo1 = _mm256_and_si256(v1, low), hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
    const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(load_half4(d + 4 * g)), order);
    const __m128 mw = load_half4(mn + 4 * g);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + 128 * g;
      const __m256i p01 = dot2_u8s8(lo0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)), hi0,
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
      const __m256i p23 = dot2_u8s8(lo1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64)),
                                    hi1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 96)));
      const __m256 dots = _mm256_cvtepi32_ps(_mm256_hadd_epi32(p01, p23));
      const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(a.scale4 + ((r0 + r) * groups + g) * kGroupScales));
      acc[r] = _mm256_fmadd_ps(dots, scale, acc[r]);
      acc_min[r] = _mm_fmadd_ps(mw, _mm_loadu_ps(a.sum + (r0 + r) * blocks + 4 * g), acc_min[r]);
    }
  }
#endif
  int64_t b = 4 * groups;
  if (blocks - b >= 2) {  // one more pair
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 16 * b));
    const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    const __m128 d01 = load_half2(d + b);  // (d_b, d_b+1, 0, 0)
    const __m128 m01 = load_half2(mn + b);
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + kBlock * b;
      const __m256i p = dot2_u8s8(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)), hi,
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
      const __m128 s = load_float2(a.scale + (r0 + r) * blocks + b);
      const __m128 t = load_float2(a.sum + (r0 + r) * blocks + b);
      const __m256 scale = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_mul_ps(d01, s)), spread);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[r]);
      acc_min[r] = _mm_fmadd_ps(m01, t, acc_min[r]);  // lanes 2, 3 stay zero
    }
    b += 2;
  }
  if (b < blocks) {  // an odd last block: its 16 bytes widened to [low nibbles | high nibbles]
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * b));
    const __m128i low128 = _mm_set1_epi8(0x0F);
    const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low128), _mm_and_si128(v, low128));
    const float dw = static_cast<float>(d[b]), mw = static_cast<float>(mn[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + kBlock * b;
      const __m256i p = dot_u8s8(w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
      const int64_t at = (r0 + r) * blocks + b;
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a.scale[at]), acc[r]);
      tail[r] += mw * a.sum[at];
    }
  }
#if defined(QUANT_ZMM)
  for (int r = 0; r < MB; ++r) {  // one reduction per row: the three accumulators summed first
    __m512 total = _mm512_add_ps(acc512[r], _mm512_zextps256_ps512(acc[r]));
    total = _mm512_add_ps(total, _mm512_zextps128_ps512(acc_min[r]));
    y[r] = _mm512_reduce_add_ps(total) + tail[r];
  }
#else
  for (int r = 0; r < MB; ++r) y[r] = hsum(acc[r]) + hsum(acc_min[r]) + tail[r];
#endif
}

// q8 is s8 x s8, which dpbusd and maddubs do not take: they get |w| (unsigned, up to 128)
// and x_q with w's sign moved onto it, the same products (and no int16 overflow in maddubs).
template <int MB>
void q8_row_simd(const Activations& a, int64_t r0, const int8_t* qs, const c10::Half* d, float* y) {
  const int64_t k = a.k, blocks = a.blocks, groups = blocks / 4;
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i w[4], u[4];
    for (int i = 0; i < 4; ++i) {
      w[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 128 * g + 32 * i));
      u[i] = _mm256_abs_epi8(w[i]);
    }
    const __m128 dw4 = load_half4(d + 4 * g);
    const __m256 dw = _mm256_set_m128(dw4, dw4);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * k + 128 * g;
      __m256i p[4];
      for (int i = 0; i < 4; ++i) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * i));
        p[i] = dot_u8s8(u[i], _mm256_sign_epi8(x, w[i]));
      }
      // lanes (b, b+1, b+2, b+3 | b, b+1, b+2, b+3)
      const __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
      const float* s = a.scale + (r0 + r) * blocks + 4 * g;
      const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ps(reinterpret_cast<const __m128*>(s)));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[r]);
    }
  }
  for (int64_t b = 4 * groups; b < blocks; ++b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + kBlock * b));
    const __m256i u = _mm256_abs_epi8(w);
    const float dw = static_cast<float>(d[b]);
    for (int r = 0; r < MB; ++r) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + (r0 + r) * k + kBlock * b));
      const __m256i p = dot_u8s8(u, _mm256_sign_epi8(x, w));
      const float scale = dw * a.scale[(r0 + r) * blocks + b];
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = hsum(acc[r]);
}

#endif  // QUANT_SIMD

// ---------------------------------------------------------------------------------------
// Driver: quantize x, split W's rows over threads, store y in x's dtype.

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

// Calls row(n, r0, count, y) for every row n of W and chunk of x, in parallel over n, and
// stores y (count values) into out[r, n].
template <typename T, typename RowFn>
void for_each_output_row(int64_t n_rows, int64_t m_rows, int64_t row_bytes, T* out, const RowFn& row) {
  // At least ~32 KB of weights per thread: a smaller split costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, row_bytes));
  at::parallel_for(0, n_rows, grain, [&](int64_t begin, int64_t end) {
    float y[kRowsPerChunk];
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t r0 = 0; r0 < m_rows; r0 += kRowsPerChunk) {
        const int64_t count = std::min(kRowsPerChunk, m_rows - r0);
        row(n, r0, count, y);
        for (int64_t r = 0; r < count; ++r) store(out, (r0 + r) * n_rows + n, y[r]);
      }
    }
  });
}

// What every op asks of x and where the tensors live.
void check_x(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, const char* op) {
  TORCH_CHECK(x.device().is_cpu() && qs.device().is_cpu() && d.device().is_cpu(), op,
              ": all tensors must be on the CPU");
  TORCH_CHECK(x.dim() == 2, op, ": x must be [M, K], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, op,
              ": x must be float32 or bfloat16, got ", x.scalar_type());
}

void check_common(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, int64_t k,
                  const char* op) {
  check_x(x, qs, d, op);
  TORCH_CHECK(qs.dim() == 2 && qs.is_contiguous(), op, ": qs must be a contiguous [N, ...] tensor");
  TORCH_CHECK(k > 0 && k % kBlock == 0, op, ": K must be a positive multiple of 32, got ", k);
  TORCH_CHECK(x.size(1) == k, op, ": x has ", x.size(1), " features, the weights ", k);
  TORCH_CHECK(d.scalar_type() == at::kHalf, op, ": d must be float16, got ", d.scalar_type());
  TORCH_CHECK(d.dim() == 2 && d.size(0) == qs.size(0) && d.size(1) == k / kBlock && d.is_contiguous(),
              op, ": d must be a contiguous [N, K/32] = [", qs.size(0), ", ", k / kBlock, "], got ",
              d.sizes());
}

// Quantizes x; `paired` also builds the q4 SIMD layout. Buffers live in `storage`.
Activations quantize(const at::Tensor& x, bool paired, std::vector<at::Tensor>& storage) {
  Activations a;
  a.rows = x.size(0);
  a.k = x.size(1);
  a.blocks = a.k / kBlock;
  at::Tensor q = at::empty({a.rows, a.k}, x.options().dtype(at::kChar));
  at::Tensor scales = at::empty({2, a.rows, a.blocks}, x.options().dtype(at::kFloat));
  int8_t* q_ptr = q.data_ptr<int8_t>();
  float* scale = scales.data_ptr<float>();
  float* sum = scale + a.rows * a.blocks;
  if (x.scalar_type() == at::kFloat) {
    quantize_rows(x.data_ptr<float>(), a.rows, a.k, q_ptr, scale, sum);
  } else {
    quantize_rows(x.data_ptr<c10::BFloat16>(), a.rows, a.k, q_ptr, scale, sum);
  }
  a.q = q_ptr;
  a.scale = scale;
  a.sum = sum;
  storage.push_back(q);
  storage.push_back(scales);
#if defined(QUANT_SIMD)
  if (paired) {
    at::Tensor pq = at::empty_like(q);
    at::Tensor s4 = at::empty({a.rows * (a.blocks / 4) * kGroupScales}, scales.options());
    pair_blocks(scale, a.rows, a.k, q_ptr, pq.data_ptr<int8_t>(), s4.data_ptr<float>());
    a.paired = pq.data_ptr<int8_t>();
    a.scale4 = s4.data_ptr<float>();
    storage.push_back(pq);
    storage.push_back(s4);
  }
#else
  (void)paired;
#endif
  return a;
}

template <typename T>
void q4_run(const Activations& a, const at::Tensor& qs, const at::Tensor& d, const at::Tensor& m,
            bool portable, T* out) {
  const int64_t n_rows = qs.size(0), k = a.k, blocks = a.blocks;
  const uint8_t* qs_ptr = qs.data_ptr<uint8_t>();
  const c10::Half* d_ptr = d.data_ptr<c10::Half>();
  const c10::Half* m_ptr = m.data_ptr<c10::Half>();
  const int64_t row_bytes = k / 2 + blocks * 4;
  for_each_output_row(n_rows, a.rows, row_bytes, out, [&](int64_t n, int64_t r0, int64_t count, float* y) {
    const uint8_t* w = qs_ptr + n * (k / 2);
    const c10::Half* dn = d_ptr + n * blocks;
    const c10::Half* mn = m_ptr + n * blocks;
    if (r0 == 0 && n + kPrefetchRows < n_rows) {  // a row is ~300 bytes: ask for later ones
      const int64_t ahead = n + kPrefetchRows;
      for (int64_t off = 0; off < k / 2; off += 64) __builtin_prefetch(qs_ptr + ahead * (k / 2) + off);
      __builtin_prefetch(d_ptr + ahead * blocks);
      __builtin_prefetch(m_ptr + ahead * blocks);
    }
    dispatch_rows<kRowsPerChunk>(count, [&](auto rows) {
      constexpr int kRows = decltype(rows)::value;
#if defined(QUANT_SIMD)
      if (!portable) return q4_row_simd<kRows>(a, r0, w, dn, mn, y);
#endif
      q4_row_portable<kRows>(a, r0, w, dn, mn, y);
    });
  });
}

template <typename T>
void q8_run(const Activations& a, const at::Tensor& qs, const at::Tensor& d, bool portable, T* out) {
  const int64_t n_rows = qs.size(0), k = a.k, blocks = a.blocks;
  const int8_t* qs_ptr = qs.data_ptr<int8_t>();
  const c10::Half* d_ptr = d.data_ptr<c10::Half>();
  const int64_t row_bytes = k + blocks * 2;
  for_each_output_row(n_rows, a.rows, row_bytes, out, [&](int64_t n, int64_t r0, int64_t count, float* y) {
    const int8_t* w = qs_ptr + n * k;
    const c10::Half* dn = d_ptr + n * blocks;
    if (r0 == 0 && n + kPrefetchRows < n_rows) {
      const int64_t ahead = n + kPrefetchRows;
      for (int64_t off = 0; off < k; off += 64) __builtin_prefetch(qs_ptr + ahead * k + off);
      __builtin_prefetch(d_ptr + ahead * blocks);
    }
    dispatch_rows<kRowsPerChunk>(count, [&](auto rows) {
      constexpr int kRows = decltype(rows)::value;
#if defined(QUANT_SIMD)
      if (!portable) return q8_row_simd<kRows>(a, r0, w, dn, y);
#endif
      q8_row_portable<kRows>(a, r0, w, dn, y);
    });
  });
}


// ---------------------------------------------------------------------------------------
// Tiled path: W repacked once (at load) so that 8 of its rows share every load of x.
//
// From about 8 rows of x up, the row kernels above are bound by arithmetic, not bytes, and
// most of it is per (row of W, row of x) pair: a horizontal sum, a conversion and a scale
// for every few blocks. Here a 256-bit vector holds 4 consecutive elements of each of 8 rows
// of W, x's 4 matching int8 values are broadcast to every lane, and one multiply-add gives
// the 8 rows' partial dots in the 8 lanes: the block's dots end where the outputs go, and
// the float epilogue (scale, the q4 min term) runs once per block for 8 outputs. Each tile
// of W is then applied to up to kTileRows rows of x while it sits in L1.
//
// Layouts (tile t = rows 8t .. 8t + 7 of W, block b, lane group j), all three-dimensional
// so that a tiled weight is never mistaken for a row one:
//   q4: qs uint8 [N/8, blocks, 128]: bytes 4j .. 4j+3 of each row's 16-byte block, for
//       j = 0..3, as 8 rows x 4 bytes; their low nibbles are elements 4j.., high ones 16 + 4j..
//   q8: qs int8 [N/8, blocks, 256]: elements 4j .. 4j+3 of each row's block, j = 0..7.
//   d (and m): float16 [N/8, blocks, 8], the 8 rows' scales of each block side by side.
// (inference/quant.py `tile_rows` builds them from the row formats.)

constexpr int64_t kTile = 8;
// How far ahead of the block it computes a thread asks for W (its tiles lie back to back):
// a decode step reads each weight once, from memory, and the hardware prefetcher alone
// left half the bandwidth unused (the 30 layers' 4-bit weights at 1 row: 4.2 -> 2.4 ms on a
// 2-core Xeon, 4.4 -> 2.8 ms at the AVX2 tier; 1-8 KB ahead all measured alike).
constexpr int64_t kTilePrefetchBytes = 2048;
#if defined(__AVX512VL__)
constexpr int64_t kTileRows = 8;  // 32 vector registers: accumulators for 8 rows of x
#else
constexpr int64_t kTileRows = 4;
#endif

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int MB>
void q4_tile_portable(const Activations& a, int64_t r0, const uint8_t* qs, const c10::Half* d,
                      const c10::Half* mn, float* y) {
  for (int r = 0; r < MB; ++r) {
    for (int64_t c = 0; c < kTile; ++c) {
      float acc = 0.f;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
        int32_t dot = 0;
        for (int64_t j = 0; j < 4; ++j) {
          for (int64_t i = 0; i < 4; ++i) {
            const uint8_t byte = qs[b * 128 + j * 32 + c * 4 + i];
            dot += static_cast<int32_t>(byte & 15) * xq[4 * j + i];
            dot += static_cast<int32_t>(byte >> 4) * xq[16 + 4 * j + i];
          }
        }
        const int64_t at = (r0 + r) * a.blocks + b;
        acc += static_cast<float>(d[b * kTile + c]) * a.scale[at] * static_cast<float>(dot) +
               static_cast<float>(mn[b * kTile + c]) * a.sum[at];
      }
      y[r * kTile + c] = acc;
    }
  }
}

template <int MB>
void q8_tile_portable(const Activations& a, int64_t r0, const int8_t* qs, const c10::Half* d,
                      float* y) {
  for (int r = 0; r < MB; ++r) {
    for (int64_t c = 0; c < kTile; ++c) {
      float acc = 0.f;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
        int32_t dot = 0;
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t i = 0; i < 4; ++i)
            dot += static_cast<int32_t>(qs[b * 256 + j * 32 + c * 4 + i]) * xq[4 * j + i];
        acc += static_cast<float>(d[b * kTile + c]) * a.scale[(r0 + r) * a.blocks + b] *
               static_cast<float>(dot);
      }
      y[r * kTile + c] = acc;
    }
  }
}

#if defined(QUANT_SIMD)

inline __m256 load_half8(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Without VNNI a block's 8 maddubs results are summed in int16: each is at most
// 2 * 15 * 127 = 3810, so 8 of them stay below 32767, and one madd widens the total.
template <int MB>
void q4_tile_simd(const Activations& a, int64_t r0, const uint8_t* qs, const c10::Half* d,
                  const c10::Half* mn, float* y) {
  const int64_t k = a.k, blocks = a.blocks;
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* w = qs + 128 * b;
    __builtin_prefetch(w + kTilePrefetchBytes);  // a block's 128 bytes: two lines
    __builtin_prefetch(w + kTilePrefetchBytes + 64);
    __builtin_prefetch(d + kTile * (b + kTilePrefetchBytes / 128));  // as many blocks ahead
    __builtin_prefetch(mn + kTile * (b + kTilePrefetchBytes / 128));
    __m256i dot[MB];
    for (int r = 0; r < MB; ++r) dot[r] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * j));
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      for (int r = 0; r < MB; ++r) {
        const int8_t* x = a.q + (r0 + r) * k + kBlock * b + 4 * j;
        const __m256i xl = _mm256_set1_epi32(load_i32(x));
        const __m256i xh = _mm256_set1_epi32(load_i32(x + 16));
#if defined(QUANT_VNNI)
        dot[r] = dpbusd(dpbusd(dot[r], lo, xl), hi, xh);
#else
        const __m256i pair = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
        dot[r] = _mm256_add_epi16(dot[r], pair);
#endif
      }
    }
    const __m256 dw = load_half8(d + kTile * b);
    const __m256 mw = load_half8(mn + kTile * b);
    for (int r = 0; r < MB; ++r) {
      const int64_t at = (r0 + r) * blocks + b;
#if defined(QUANT_VNNI)
      const __m256i sums = dot[r];
#else
      const __m256i sums = _mm256_madd_epi16(dot[r], _mm256_set1_epi16(1));
#endif
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.scale[at]));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[r]);
      acc[r] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a.sum[at]), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) _mm256_storeu_ps(y + kTile * r, acc[r]);
}

// s8 x s8 as in q8_row_simd: |w| against x with w's sign; maddubs pairs reach 2 * 128 * 127,
// so without VNNI each is widened to int32 at once.
template <int MB>
void q8_tile_simd(const Activations& a, int64_t r0, const int8_t* qs, const c10::Half* d, float* y) {
  const int64_t k = a.k, blocks = a.blocks;
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* w = qs + 256 * b;
    for (int line = 0; line < 4; ++line) __builtin_prefetch(w + kTilePrefetchBytes + 64 * line);
    __builtin_prefetch(d + kTile * (b + kTilePrefetchBytes / 256));
    __m256i dot[MB];
    for (int r = 0; r < MB; ++r) dot[r] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * j));
      const __m256i u = _mm256_abs_epi8(v);
      for (int r = 0; r < MB; ++r) {
        const __m256i x = _mm256_set1_epi32(load_i32(a.q + (r0 + r) * k + kBlock * b + 4 * j));
#if defined(QUANT_VNNI)
        dot[r] = dpbusd(dot[r], u, _mm256_sign_epi8(x, v));
#else
        const __m256i pairs = _mm256_maddubs_epi16(u, _mm256_sign_epi8(x, v));
        dot[r] = _mm256_add_epi32(dot[r], _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
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

// Calls tile(t, r0, count, y) for every tile of W and run of up to kTileRows rows of x, in
// parallel over tiles, and stores y ([count][8]) into out[r, 8t + c].
template <typename T, typename TileFn>
void for_each_tile(int64_t n_rows, int64_t m_rows, int64_t tile_bytes, T* out, const TileFn& tile) {
  const int64_t tiles = n_rows / kTile;
  const int64_t grain = std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, tile_bytes));
  at::parallel_for(0, tiles, grain, [&](int64_t begin, int64_t end) {
    float y[kTileRows * kTile];
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t r0 = 0; r0 < m_rows; r0 += kTileRows) {
        const int64_t count = std::min(kTileRows, m_rows - r0);
        tile(t, r0, count, y);
        for (int64_t r = 0; r < count; ++r)
          for (int64_t c = 0; c < kTile; ++c) store(out, (r0 + r) * n_rows + kTile * t + c, y[kTile * r + c]);
      }
    }
  });
}

template <typename T>
void q4_tiled_run(const Activations& a, const at::Tensor& qs, const at::Tensor& d,
                  const at::Tensor& m, bool portable, T* out) {
  const int64_t blocks = a.blocks, n_rows = qs.size(0) * kTile;
  const uint8_t* qs_ptr = qs.data_ptr<uint8_t>();
  const c10::Half* d_ptr = d.data_ptr<c10::Half>();
  const c10::Half* m_ptr = m.data_ptr<c10::Half>();
  const int64_t tile_bytes = blocks * (128 + 4 * kTile);
  for_each_tile(n_rows, a.rows, tile_bytes, out, [&](int64_t t, int64_t r0, int64_t count, float* y) {
    const uint8_t* w = qs_ptr + t * blocks * 128;
    const c10::Half* dt = d_ptr + t * blocks * kTile;
    const c10::Half* mt = m_ptr + t * blocks * kTile;
    dispatch_rows<kTileRows>(count, [&](auto rows) {
      constexpr int kRows = decltype(rows)::value;
#if defined(QUANT_SIMD)
      if (!portable) return q4_tile_simd<kRows>(a, r0, w, dt, mt, y);
#endif
      q4_tile_portable<kRows>(a, r0, w, dt, mt, y);
    });
  });
}

template <typename T>
void q8_tiled_run(const Activations& a, const at::Tensor& qs, const at::Tensor& d, bool portable,
                  T* out) {
  const int64_t blocks = a.blocks, n_rows = qs.size(0) * kTile;
  const int8_t* qs_ptr = qs.data_ptr<int8_t>();
  const c10::Half* d_ptr = d.data_ptr<c10::Half>();
  const int64_t tile_bytes = blocks * (256 + 2 * kTile);
  for_each_tile(n_rows, a.rows, tile_bytes, out, [&](int64_t t, int64_t r0, int64_t count, float* y) {
    const int8_t* w = qs_ptr + t * blocks * 256;
    const c10::Half* dt = d_ptr + t * blocks * kTile;
    dispatch_rows<kTileRows>(count, [&](auto rows) {
      constexpr int kRows = decltype(rows)::value;
#if defined(QUANT_SIMD)
      if (!portable) return q8_tile_simd<kRows>(a, r0, w, dt, y);
#endif
      q8_tile_portable<kRows>(a, r0, w, dt, y);
    });
  });
}

void check_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, int64_t k,
                 const char* op) {
  check_x(x, qs, d, op);
  TORCH_CHECK(qs.dim() == 3 && qs.is_contiguous(), op, ": qs must be a contiguous [N/8, K/32, ...]");
  TORCH_CHECK(k > 0, op, ": K must be a positive multiple of 32, got ", k);
  TORCH_CHECK(x.size(1) == k, op, ": x has ", x.size(1), " features, the weights ", k);
  TORCH_CHECK(d.scalar_type() == at::kHalf && d.is_contiguous() && d.dim() == 3 &&
                  d.size(0) == qs.size(0) && d.size(1) == qs.size(1) && d.size(2) == kTile,
              op, ": d must be a contiguous float16 [N/8, K/32, 8], got ", d.sizes());
}

// Quantizes x, allocates the [M, n] result in x's dtype and calls run(a, out) with out typed
// as x is: the frame every op shares.
template <typename Run>
at::Tensor run_linear(const at::Tensor& x_in, int64_t n, bool paired, const Run& run) {
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), n}, x.options());
  if (out.numel() == 0) return out;
  std::vector<at::Tensor> storage;
  const Activations a = quantize(x, paired, storage);
  if (x.scalar_type() == at::kFloat) {
    run(a, out.data_ptr<float>());
  } else {
    run(a, out.data_ptr<c10::BFloat16>());
  }
  return out;
}

}  // namespace

namespace inference_kernels {

at::Tensor q4_linear(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d,
                     const at::Tensor& m, bool portable) {
  const int64_t k = qs.dim() == 2 ? qs.size(1) * 2 : 0;
  check_common(x_in, qs, d, k, "q4_linear");
  TORCH_CHECK(qs.scalar_type() == at::kByte, "q4_linear: qs must be uint8, got ", qs.scalar_type());
  TORCH_CHECK(m.device().is_cpu() && m.scalar_type() == at::kHalf && m.sizes() == d.sizes() &&
                  m.is_contiguous(),
              "q4_linear: m must be a contiguous float16 tensor shaped like d ", d.sizes(), ", got ",
              m.scalar_type(), " ", m.sizes());
  return run_linear(x_in, qs.size(0), !portable, [&](const Activations& a, auto* out) {
    q4_run(a, qs, d, m, portable, out);
  });
}

at::Tensor q8_linear(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d, bool portable) {
  const int64_t k = qs.dim() == 2 ? qs.size(1) : 0;
  check_common(x_in, qs, d, k, "q8_linear");
  TORCH_CHECK(qs.scalar_type() == at::kChar, "q8_linear: qs must be int8, got ", qs.scalar_type());
  return run_linear(x_in, qs.size(0), false, [&](const Activations& a, auto* out) {
    q8_run(a, qs, d, portable, out);
  });
}

at::Tensor q4_linear_tiled(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d,
                           const at::Tensor& m, bool portable) {
  const int64_t k = qs.dim() == 3 && qs.size(2) == 128 ? qs.size(1) * kBlock : 0;
  check_tiled(x_in, qs, d, k, "q4_linear_tiled");
  TORCH_CHECK(qs.scalar_type() == at::kByte, "q4_linear_tiled: qs must be uint8, got ", qs.scalar_type());
  TORCH_CHECK(m.device().is_cpu() && m.scalar_type() == at::kHalf && m.sizes() == d.sizes() &&
                  m.is_contiguous(),
              "q4_linear_tiled: m must be a contiguous float16 tensor shaped like d");
  return run_linear(x_in, qs.size(0) * kTile, false, [&](const Activations& a, auto* out) {
    q4_tiled_run(a, qs, d, m, portable, out);
  });
}

at::Tensor q8_linear_tiled(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d,
                           bool portable) {
  const int64_t k = qs.dim() == 3 && qs.size(2) == 256 ? qs.size(1) * kBlock : 0;
  check_tiled(x_in, qs, d, k, "q8_linear_tiled");
  TORCH_CHECK(qs.scalar_type() == at::kChar, "q8_linear_tiled: qs must be int8, got ", qs.scalar_type());
  return run_linear(x_in, qs.size(0) * kTile, false, [&](const Activations& a, auto* out) {
    q8_tiled_run(a, qs, d, portable, out);
  });
}

// Which path q4_linear / q8_linear take when not forced onto the portable one.
std::string quant_linear_path() {
#if defined(QUANT_SIMD) && defined(QUANT_ZMM)
  return "avx512-vnni";
#elif defined(QUANT_SIMD) && defined(QUANT_VNNI)
  return "avx2-vnni";
#elif defined(QUANT_SIMD)
  return "avx2";
#else
  return "portable";
#endif
}

}  // namespace inference_kernels

TORCH_LIBRARY_FRAGMENT(inference_kernels, m) {
  m.def("q4_linear(Tensor x, Tensor qs, Tensor d, Tensor m, bool portable=False) -> Tensor");
  m.def("q8_linear(Tensor x, Tensor qs, Tensor d, bool portable=False) -> Tensor");
  m.def("q4_linear_tiled(Tensor x, Tensor qs, Tensor d, Tensor m, bool portable=False) -> Tensor");
  m.def("q8_linear_tiled(Tensor x, Tensor qs, Tensor d, bool portable=False) -> Tensor");
  m.def("quant_linear_path() -> str", &inference_kernels::quant_linear_path);
}

TORCH_LIBRARY_IMPL(inference_kernels, CPU, m) {
  m.impl("q4_linear", &inference_kernels::q4_linear);
  m.impl("q8_linear", &inference_kernels::q8_linear);
  m.impl("q4_linear_tiled", &inference_kernels::q4_linear_tiled);
  m.impl("q8_linear_tiled", &inference_kernels::q8_linear_tiled);
}

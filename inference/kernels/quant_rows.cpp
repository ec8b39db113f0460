// The row kernels of the quantized linears (formats in quant_common.h): each row of W is read
// once and applied to up to 8 rows of x while it is still in L1, one output per (row of W,
// row of x). The driver (quant_common.h `run_units`) splits W's rows over threads, prefetching
// later ones; this file holds the per-format kernels, and x's paired layout that the q4 SIMD
// kernel reads.

#include "quant_common.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace inference_kernels::quant {
namespace { struct RowsFile; }  // keeps this file's kernels to itself (see Kernels)

using Q4Rows = Kernels<Q4, RowLayout, RowsFile>;
using Q8Rows = Kernels<Q8, RowLayout, RowsFile>;

// ---------------------------------------------------------------------------------------
// Portable path: one block of W unpacked to 32 small integers, then dotted with each row.

template <>
template <int MB>
void Q4Rows::portable(const Activations& a, int64_t r0, const Unit<Q4>& w, float* y) {
  float acc[MB] = {};
  for (int64_t b = 0; b < a.blocks; ++b) {
    int8_t q[kBlock];
    for (int64_t j = 0; j < 16; ++j) {
      q[j] = static_cast<int8_t>(w.qs[b * 16 + j] & 15);
      q[j + 16] = static_cast<int8_t>(w.qs[b * 16 + j] >> 4);
    }
    const float dw = static_cast<float>(w.d[b]), mw = static_cast<float>(w.m[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
      int32_t dot = 0;
      for (int64_t j = 0; j < kBlock; ++j) dot += static_cast<int32_t>(q[j]) * xq[j];
      const int64_t at = (r0 + r) * a.blocks + b;
      acc[r] += dw * a.scale[at] * static_cast<float>(dot) + mw * a.sum[at];
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = acc[r];
}

template <>
template <int MB>
void Q8Rows::portable(const Activations& a, int64_t r0, const Unit<Q8>& w, float* y) {
  float acc[MB] = {};
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int8_t* q = w.qs + b * kBlock;
    const float dw = static_cast<float>(w.d[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * a.k + b * kBlock;
      int32_t dot = 0;
      for (int64_t j = 0; j < kBlock; ++j) dot += static_cast<int32_t>(q[j]) * xq[j];
      acc[r] += dw * a.scale[(r0 + r) * a.blocks + b] * static_cast<float>(dot);
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = acc[r];
}

// ---------------------------------------------------------------------------------------
// q4 reads the bytes of a run of blocks as one vector: its low nibbles are elements 0..15 of
// each block, its high nibbles elements 16..31. x is stored to match ("paired"): per run of
// c blocks, x_b[0:16] .. x_b+c-1[0:16] then x_b[16:32] .. x_b+c-1[16:32]. Runs are groups of
// 4 blocks (as 2 runs of 2 with 256-bit vectors), then a pair, then a lone block (as is).
// With 512-bit vectors a group's dot has block b + i in lanes 4i..4i+3; scale4 holds d_x
// spread the same way. With 256-bit ones each pair's dot has b in lanes 0..3 and b+1 in
// 4..7, and hadd of a group's two pairs gives lanes (b, b, b+2, b+2 | b+1, b+1, b+3, b+3).

constexpr int64_t kGroupRun = kZmm ? 4 : 2;
constexpr int kZmmOrder[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
constexpr int kYmmOrder[8] = {0, 0, 2, 2, 1, 1, 3, 3};
constexpr const int* kGroupOrder = kZmm ? kZmmOrder : kYmmOrder;
constexpr int64_t kGroupScales = kZmm ? 16 : 8;

namespace {

void interleave(const int8_t* src, int8_t* dst, int64_t run) {
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

}  // namespace

// ---------------------------------------------------------------------------------------
// x86 path (AVX2, with VNNI's dpbusd and 512-bit vectors where available).

#if QUANT_SIMD

template <>
template <int MB>
void Q4Rows::simd(const Activations& a, int64_t r0, const Unit<Q4>& w, float* y) {
  const uint8_t* qs = w.qs;
  const c10::Half *d = w.d, *mn = w.m;
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
#if QUANT_ZMM
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
      const __m512 scale =
          _mm512_mul_ps(dw, _mm512_loadu_ps(a.scale4 + ((r0 + r) * groups + g) * kGroupScales));
      acc512[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc512[r]);
      acc_min[r] = _mm_fmadd_ps(mw, _mm_loadu_ps(a.sum + (r0 + r) * blocks + 4 * g), acc_min[r]);
    }
  }
#else
  const __m256i order = _mm256_setr_epi32(0, 0, 2, 2, 1, 1, 3, 3);
  for (int64_t g = 0; g < groups; ++g) {
    const __m256i v0 = load256(qs + 64 * g), v1 = load256(qs + 64 * g + 32);
    const __m256i lo0 = _mm256_and_si256(v0, low);
    const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
    const __m256i lo1 = _mm256_and_si256(v1, low);
    const __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
    const __m256 dw =
        _mm256_permutevar8x32_ps(_mm256_castps128_ps256(load_half4(d + 4 * g)), order);
    const __m128 mw = load_half4(mn + 4 * g);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + 128 * g;
      const __m256i p01 = dot2_u8s8(lo0, load256(xq), hi0, load256(xq + 32));
      const __m256i p23 = dot2_u8s8(lo1, load256(xq + 64), hi1, load256(xq + 96));
      const __m256 dots = _mm256_cvtepi32_ps(_mm256_hadd_epi32(p01, p23));
      const __m256 scale =
          _mm256_mul_ps(dw, _mm256_loadu_ps(a.scale4 + ((r0 + r) * groups + g) * kGroupScales));
      acc[r] = _mm256_fmadd_ps(dots, scale, acc[r]);
      acc_min[r] = _mm_fmadd_ps(mw, _mm_loadu_ps(a.sum + (r0 + r) * blocks + 4 * g), acc_min[r]);
    }
  }
#endif
  int64_t b = 4 * groups;
  if (blocks - b >= 2) {  // one more pair
    const __m256i v = load256(qs + 16 * b);
    const __m256i lo = _mm256_and_si256(v, low);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    const __m128 d01 = load_half2(d + b);  // (d_b, d_b+1, 0, 0)
    const __m128 m01 = load_half2(mn + b);
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + kBlock * b;
      const __m256i p = dot2_u8s8(lo, load256(xq), hi, load256(xq + 32));
      const __m128 s = load_float2(a.scale + (r0 + r) * blocks + b);
      const __m128 t = load_float2(a.sum + (r0 + r) * blocks + b);
      const __m256 scale =
          _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_mul_ps(d01, s)), spread);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[r]);
      acc_min[r] = _mm_fmadd_ps(m01, t, acc_min[r]);  // lanes 2, 3 stay zero
    }
    b += 2;
  }
  if (b < blocks) {  // an odd last block: its 16 bytes widened to [low nibbles | high nibbles]
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * b));
    const __m128i low128 = _mm_set1_epi8(0x0F);
    const __m256i lanes =
        _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low128), _mm_and_si128(v, low128));
    const float dw = static_cast<float>(d[b]), mw = static_cast<float>(mn[b]);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.paired + (r0 + r) * k + kBlock * b;
      const __m256i p = dot_u8s8(lanes, load256(xq));
      const int64_t at = (r0 + r) * blocks + b;
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a.scale[at]), acc[r]);
      tail[r] += mw * a.sum[at];
    }
  }
#if QUANT_ZMM
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
template <>
template <int MB>
void Q8Rows::simd(const Activations& a, int64_t r0, const Unit<Q8>& w, float* y) {
  const int8_t* qs = w.qs;
  const c10::Half* d = w.d;
  const int64_t k = a.k, blocks = a.blocks, groups = blocks / 4;
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i q[4], u[4];
    for (int i = 0; i < 4; ++i) {
      q[i] = load256(qs + 128 * g + 32 * i);
      u[i] = _mm256_abs_epi8(q[i]);
    }
    const __m128 dw4 = load_half4(d + 4 * g);
    const __m256 dw = _mm256_set_m128(dw4, dw4);
    for (int r = 0; r < MB; ++r) {
      const int8_t* xq = a.q + (r0 + r) * k + 128 * g;
      __m256i p[4];
      for (int i = 0; i < 4; ++i)
        p[i] = dot_u8s8(u[i], _mm256_sign_epi8(load256(xq + 32 * i), q[i]));
      // lanes (b, b+1, b+2, b+3 | b, b+1, b+2, b+3)
      const __m256i sums =
          _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
      const float* s = a.scale + (r0 + r) * blocks + 4 * g;
      const __m256 scale =
          _mm256_mul_ps(dw, _mm256_broadcast_ps(reinterpret_cast<const __m128*>(s)));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[r]);
    }
  }
  for (int64_t b = 4 * groups; b < blocks; ++b) {
    const __m256i q = load256(qs + kBlock * b);
    const __m256i u = _mm256_abs_epi8(q);
    const float dw = static_cast<float>(d[b]);
    for (int r = 0; r < MB; ++r) {
      const __m256i p = dot_u8s8(u, _mm256_sign_epi8(load256(a.q + (r0 + r) * k + kBlock * b), q));
      const float scale = dw * a.scale[(r0 + r) * blocks + b];
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) y[r] = hsum(acc[r]);
}

#endif  // QUANT_SIMD

void pair_activations(Activations& a, std::vector<at::Tensor>& storage) {
  at::Tensor pq = at::empty({a.rows, a.k}, at::TensorOptions().dtype(at::kChar));
  at::Tensor s4 = at::empty({a.rows * (a.blocks / 4) * kGroupScales},
                            at::TensorOptions().dtype(at::kFloat));
  pair_blocks(a.scale, a.rows, a.k, a.q, pq.data_ptr<int8_t>(), s4.data_ptr<float>());
  a.paired = pq.data_ptr<int8_t>();
  a.scale4 = s4.data_ptr<float>();
  storage.push_back(pq);
  storage.push_back(s4);
}

void run(Q4, RowLayout, const Activations& a, const Weights& w, bool portable, at::Tensor& out) {
  run_kernels<Q4Rows>(a, w, portable, out);
}

void run(Q8, RowLayout, const Activations& a, const Weights& w, bool portable, at::Tensor& out) {
  run_kernels<Q8Rows>(a, w, portable, out);
}

}  // namespace inference_kernels::quant

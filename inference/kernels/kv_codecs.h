// How the paged KV cache stores one head's key or value row (see inference/model/kv_format.py):
// float32 or bfloat16 as the model; int8 codes followed by the row's float16 scale (D + 2
// bytes); or one float8 byte per value (e4m3fn or e5m2, no scale), kept as uint8.
// Each codec widens a row to float32 for the attention and narrows one for the cache write.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e5m2.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace inference_kernels {

template <int64_t D>
inline void load_row(const float* src, float* dst) {
  for (int64_t k = 0; k < D; ++k) dst[k] = src[k];
}

template <int64_t D>
inline void load_row(const c10::BFloat16* src, float* dst) {
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(src);
  for (int64_t k = 0; k < D; ++k) {
    const uint32_t widened = static_cast<uint32_t>(bits[k]) << 16;  // bf16 is fp32's top half
    std::memcpy(dst + k, &widened, sizeof(float));
  }
}

// A cache in the model's dtype: rows of D values, read as they are.
template <typename T>
struct PlainRows {
  using Elem = T;
  static constexpr int64_t kExtra = 0;
  template <int64_t D>
  static void load(const Elem* src, float* dst, const float*) { load_row<D>(src, dst); }
};

// int8 codes, then the row's scale as float16: x = code * scale.
struct Int8Rows {
  using Elem = int8_t;
  static constexpr int64_t kExtra = 2;
  template <int64_t D>
  static void load(const Elem* src, float* dst, const float*) {
    c10::Half half;
    std::memcpy(&half, src + D, sizeof(half));
    const float scale = static_cast<float>(half);
    for (int64_t k = 0; k < D; ++k) dst[k] = scale * static_cast<float>(src[k]);
  }
};

// One byte per value, widened through a 256-entry table (the float8 format's values).
struct TableRows {
  using Elem = uint8_t;
  static constexpr int64_t kExtra = 0;
  template <int64_t D>
  static void load(const Elem* src, float* dst, const float* table) {
    for (int64_t k = 0; k < D; ++k) dst[k] = table[src[k]];
  }
};

// The float value of each byte of a float8 cache (e5m2 when `e5m2`, else e4m3fn).
inline const float* fp8_table(bool e5m2) {
  static const auto make = [](bool wide) {
    float* values = new float[256];
    for (int b = 0; b < 256; ++b) {
      const uint8_t bits = static_cast<uint8_t>(b);
      values[b] = wide ? static_cast<float>(c10::Float8_e5m2(bits, c10::Float8_e5m2::from_bits()))
                       : static_cast<float>(c10::Float8_e4m3fn(bits, c10::Float8_e4m3fn::from_bits()));
    }
    return values;
  };
  static const float* e4m3 = make(false);
  static const float* wide = make(true);
  return e5m2 ? wide : e4m3;
}

// Which codec a cache tensor uses; the element width beyond the head size (int8's scale).
inline int64_t kv_extra(const at::Tensor& kv) { return kv.scalar_type() == at::kChar ? 2 : 0; }

// Writes `rows` rows of d float32 values, each into its own cache row of `kv`'s format.
// dst: the first row's start (in kv's elements); rows are kv.size(-1) elements apart.
// `e5m2` picks the float8 format of a uint8 cache.
inline void store_rows(const at::Tensor& kv, int64_t dst, const float* src, int64_t rows,
                       int64_t d, bool e5m2) {
  const int64_t width = kv.size(-1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = src + r * d;
    const int64_t at = dst + r * width;
    switch (kv.scalar_type()) {
      case at::kFloat:
        std::copy(x, x + d, kv.data_ptr<float>() + at);
        break;
      case at::kBFloat16: {
        c10::BFloat16* out = kv.data_ptr<c10::BFloat16>() + at;
        for (int64_t k = 0; k < d; ++k) out[k] = x[k];
        break;
      }
      case at::kChar: {
        float amax = 0.f;
        for (int64_t k = 0; k < d; ++k) amax = std::max(amax, std::fabs(x[k]));
        // As kv_format.py: the float16 scale, at least float16's smallest positive value.
        const c10::Half half(std::max(amax / 127.f, 5.9604645e-08f));
        const float scale = static_cast<float>(half);
        int8_t* out = kv.data_ptr<int8_t>() + at;
        for (int64_t k = 0; k < d; ++k)
          out[k] = static_cast<int8_t>(std::clamp(std::nearbyint(x[k] / scale), -127.f, 127.f));
        std::memcpy(out + d, &half, sizeof(half));
        break;
      }
      case at::kByte: {
        uint8_t* out = kv.data_ptr<uint8_t>() + at;
        for (int64_t k = 0; k < d; ++k) {
          if (e5m2) {
            const float v = std::clamp(x[k], -57344.f, 57344.f);
            out[k] = c10::Float8_e5m2(v).x;
          } else {
            out[k] = c10::Float8_e4m3fn(std::clamp(x[k], -448.f, 448.f)).x;
          }
        }
        break;
      }
      default:
        TORCH_CHECK(false, "unsupported KV cache dtype");
    }
  }
}

}  // namespace inference_kernels

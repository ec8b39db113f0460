// The quantized linears as torch ops: their checks, x's quantization, and the registration.
// q4_linear and q8_linear take W in the row formats, q4_linear_tiled and q8_linear_tiled in
// tiles of 8 rows; all four quantize x, then run their layout's kernels (quant_common.h
// `run`, kernels in quant_rows.cpp and quant_tiles.cpp) into a result in x's dtype.

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "quant_common.h"

// The formats, layouts, activations and `run` of quant_common.h.
using namespace inference_kernels::quant;

namespace {

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

// Quantizes x; `paired` also builds the q4 row kernels' layout. Buffers live in `storage`.
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
  if (paired) pair_activations(a, storage);
  return a;
}

// What every op asks of x and where the tensors live.
void check_x(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, const char* op) {
  TORCH_CHECK(x.device().is_cpu() && qs.device().is_cpu() && d.device().is_cpu(), op,
              ": all tensors must be on the CPU");
  TORCH_CHECK(x.dim() == 2, op, ": x must be [M, K], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, op,
              ": x must be float32 or bfloat16, got ", x.scalar_type());
}

void check_rows(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, int64_t k,
                const char* op) {
  check_x(x, qs, d, op);
  TORCH_CHECK(qs.dim() == 2 && qs.is_contiguous(), op, ": qs must be a contiguous [N, ...] tensor");
  TORCH_CHECK(k > 0 && k % kBlock == 0, op, ": K must be a positive multiple of 32, got ", k);
  TORCH_CHECK(x.size(1) == k, op, ": x has ", x.size(1), " features, the weights ", k);
  TORCH_CHECK(d.scalar_type() == at::kHalf, op, ": d must be float16, got ", d.scalar_type());
  TORCH_CHECK(d.dim() == 2 && d.size(0) == qs.size(0) && d.size(1) == k / kBlock &&
                  d.is_contiguous(),
              op, ": d must be a contiguous [N, K/32] = [", qs.size(0), ", ", k / kBlock, "], got ",
              d.sizes());
}

void check_tiles(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, int64_t k,
                 const char* op) {
  check_x(x, qs, d, op);
  TORCH_CHECK(qs.dim() == 3 && qs.is_contiguous(), op,
              ": qs must be a contiguous [N/8, K/32, ...]");
  TORCH_CHECK(k > 0, op, ": K must be a positive multiple of 32, got ", k);
  TORCH_CHECK(x.size(1) == k, op, ": x has ", x.size(1), " features, the weights ", k);
  TORCH_CHECK(d.scalar_type() == at::kHalf && d.is_contiguous() && d.dim() == 3 &&
                  d.size(0) == qs.size(0) && d.size(1) == qs.size(1) && d.size(2) == kTile,
              op, ": d must be a contiguous float16 [N/8, K/32, 8], got ", d.sizes());
}

void check_quants(const at::Tensor& qs, at::ScalarType type, const char* op) {
  TORCH_CHECK(qs.scalar_type() == type, op, ": qs must be ",
              type == at::kByte ? "uint8" : "int8", ", got ", qs.scalar_type());
}

void check_min(const at::Tensor& m, const at::Tensor& d, const char* op) {
  TORCH_CHECK(m.device().is_cpu() && m.scalar_type() == at::kHalf && m.sizes() == d.sizes() &&
                  m.is_contiguous(),
              op, ": m must be a contiguous float16 tensor shaped like d ", d.sizes(), ", got ",
              m.scalar_type(), " ", m.sizes());
}

// Quantizes x, allocates the [M, n] result in x's dtype and runs the format and layout's
// kernels into it: the frame every op shares.
template <typename Format, typename Layout>
at::Tensor linear(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d,
                  const c10::Half* m, int64_t n, bool portable) {
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty({x.size(0), n}, x.options());
  if (out.numel() == 0) return out;
  std::vector<at::Tensor> storage;
  const Activations a = quantize(x, kReadsPaired<Format, Layout> && !portable, storage);
  run(Format{}, Layout{}, a, Weights{qs.data_ptr(), d.data_ptr<c10::Half>(), m, n}, portable, out);
  return out;
}

}  // namespace

namespace inference_kernels {

at::Tensor q4_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                     const at::Tensor& m, bool portable) {
  const int64_t k = qs.dim() == 2 ? qs.size(1) * 2 : 0;
  check_rows(x, qs, d, k, "q4_linear");
  check_quants(qs, at::kByte, "q4_linear");
  check_min(m, d, "q4_linear");
  return linear<Q4, RowLayout>(x, qs, d, m.data_ptr<c10::Half>(), qs.size(0), portable);
}

at::Tensor q8_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                     bool portable) {
  const int64_t k = qs.dim() == 2 ? qs.size(1) : 0;
  check_rows(x, qs, d, k, "q8_linear");
  check_quants(qs, at::kChar, "q8_linear");
  return linear<Q8, RowLayout>(x, qs, d, nullptr, qs.size(0), portable);
}

at::Tensor q4_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           const at::Tensor& m, bool portable) {
  const int64_t k = qs.dim() == 3 && qs.size(2) == 128 ? qs.size(1) * kBlock : 0;
  check_tiles(x, qs, d, k, "q4_linear_tiled");
  check_quants(qs, at::kByte, "q4_linear_tiled");
  check_min(m, d, "q4_linear_tiled");
  return linear<Q4, TileLayout>(x, qs, d, m.data_ptr<c10::Half>(), qs.size(0) * kTile, portable);
}

at::Tensor q8_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           bool portable) {
  const int64_t k = qs.dim() == 3 && qs.size(2) == 256 ? qs.size(1) * kBlock : 0;
  check_tiles(x, qs, d, k, "q8_linear_tiled");
  check_quants(qs, at::kChar, "q8_linear_tiled");
  return linear<Q8, TileLayout>(x, qs, d, nullptr, qs.size(0) * kTile, portable);
}

std::string quant_linear_path() { return kPathName; }

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

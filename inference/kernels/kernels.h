// The kernels one translation unit calls from another (each is also a torch op).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace inference_kernels {

// q: [n, heads, d]; kv: [blocks, block_size, 2, kv_heads, w] in a kv_codecs.h format (w: d,
// or d + 2 for int8; `e5m2` picks a uint8 cache's float8 format); returns [n, heads, d].
at::Tensor paged_decode(const at::Tensor& q, const at::Tensor& kv, const at::Tensor& block_tables,
                        const at::Tensor& context_lens, double scale, bool e5m2);

// x: [M, K] fp32 or bf16 -> [M, N] in x's dtype; see quant_common.h for the formats.
at::Tensor q4_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                     const at::Tensor& m, bool portable);
at::Tensor q8_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, bool portable);
// The same with W repacked in tiles of 8 rows (see quant_tiles.cpp; the Python quant module's
// `tile_rows` makes them).
at::Tensor q4_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           const at::Tensor& m, bool portable);
at::Tensor q8_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           bool portable);
std::string quant_linear_path();

// Row helpers shared by layer_ops.cpp and decode_layer.cpp, float32 throughout.
constexpr int64_t kMaxHeadDim = 256;
// out = x * rsqrt(mean(x^2) + eps) * weight, per row of n (out may be x).
void rms_norm_rows(const float* x, const float* weight, int64_t rows, int64_t n, double eps,
                   float* out);
// silu(gate) * up per row of gate_up [rows, 2 * inter] (gate first) into out [rows, inter].
void silu_mul_rows(const float* gate_up, int64_t rows, int64_t inter, float* out);
// x * cos + roll(x, d / 2) * sin for one head of d <= kMaxHeadDim values, in place.
void rope_head(float* x, const float* cos, const float* sin, int64_t d);

}  // namespace inference_kernels

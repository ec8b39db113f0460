// The kernels one translation unit calls from another (each is also a torch op).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace inference_kernels {

// q: [n, heads, d]; kv: [blocks, block_size, 2, kv_heads, d]; returns [n, heads, d].
at::Tensor paged_decode(const at::Tensor& q, const at::Tensor& kv, const at::Tensor& block_tables,
                        const at::Tensor& context_lens, double scale);

// x: [M, K] fp32 or bf16 -> [M, N] in x's dtype; see quant_linear.cpp for the formats.
at::Tensor q4_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                     const at::Tensor& m, bool portable);
at::Tensor q8_linear(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, bool portable);
// The same with W repacked in tiles of 8 rows (see quant_linear.cpp, inference/quant.py).
at::Tensor q4_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           const at::Tensor& m, bool portable);
at::Tensor q8_linear_tiled(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           bool portable);
std::string quant_linear_path();

}  // namespace inference_kernels

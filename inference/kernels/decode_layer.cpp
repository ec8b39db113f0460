// One decoder layer of a Llama-family model for a step of decode rows, in one call.
//
// At batch 1 with 4-bit weights a layer's four matmuls take ~110 us, and the two dozen
// small ops between them (norms, rotary, the cache write, the residual adds), each a
// Python call and a dispatch, took about as long again. Here they are plain loops over a
// few hundred floats between the quantized matmuls and the paged decode attention, so a
// step costs little more than reading the weights.
//
// h: [M, hidden] float32, updated in place (the residual stream). Weights: a list
// [qs, d, m] (4-bit) or [qs, d] (8-bit) per projection, as q4_linear / q8_linear or (3-D,
// tiles of 8 rows) q4_linear_tiled / q8_linear_tiled take them;
// qkv is q, k and v concatenated, gate_up gate and up. cos, sin: [positions, head_dim]
// float32 with rotate_half's sign folded into sin. kv: [blocks, block_size, 2, kv_heads, w]
// in float32, bfloat16, int8 (w = d + 2: the row's scale follows) or float8 kept as uint8
// (`e5m2` picks which; see kv_codecs.h); slots: [M] int64 cache slot of each row's new K and V.

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "kv_codecs.h"

namespace {

at::Tensor linear(const at::Tensor& x, const std::vector<at::Tensor>& w) {
  TORCH_CHECK(w.size() == 2 || w.size() == 3, "a projection is [qs, d] or [qs, d, m]");
  if (w[0].dim() == 3)  // tiles of 8 rows (quant_tiles.cpp)
    return w.size() == 3 ? inference_kernels::q4_linear_tiled(x, w[0], w[1], w[2], false)
                         : inference_kernels::q8_linear_tiled(x, w[0], w[1], false);
  return w.size() == 3 ? inference_kernels::q4_linear(x, w[0], w[1], w[2], false)
                       : inference_kernels::q8_linear(x, w[0], w[1], false);
}

void decode_layer(const at::Tensor& h, const at::Tensor& input_norm, const at::Tensor& post_norm,
                  double eps, at::TensorList qkv_w, const c10::optional<at::Tensor>& qkv_bias,
                  at::TensorList o_w, at::TensorList gate_up_w, at::TensorList down_w,
                  const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& positions,
                  int64_t num_heads, int64_t num_kv_heads, const at::Tensor& kv,
                  const at::Tensor& slots, const at::Tensor& block_tables,
                  const at::Tensor& context_lens, double scale, bool e5m2) {
  TORCH_CHECK(h.dim() == 2 && h.scalar_type() == at::kFloat && h.is_contiguous(),
              "decode_layer: h must be a contiguous float32 [M, hidden]");
  TORCH_CHECK(input_norm.scalar_type() == at::kFloat && post_norm.scalar_type() == at::kFloat &&
                  cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat,
              "decode_layer: norms and rotary tables must be float32");
  TORCH_CHECK(kv.dim() == 5 && kv.is_contiguous() && kv.size(2) == 2 && kv.size(3) == num_kv_heads,
              "decode_layer: kv must be a contiguous [blocks, block_size, 2, kv_heads, d]");
  const at::ScalarType kv_type = kv.scalar_type();
  TORCH_CHECK(kv_type == at::kFloat || kv_type == at::kBFloat16 || kv_type == at::kChar ||
                  kv_type == at::kByte,
              "decode_layer: kv must be float32, bfloat16, int8 or float8 (uint8)");
  const int64_t extra = inference_kernels::kv_extra(kv);
  const int64_t rows = h.size(0), hidden = h.size(1), d = kv.size(4) - extra;
  const int64_t hq = num_heads, hkv = num_kv_heads, width = (hq + 2 * hkv) * d;
  TORCH_CHECK(d <= inference_kernels::kMaxHeadDim && d % 2 == 0 && cos.size(1) == d, "decode_layer: bad head size");
  TORCH_CHECK(positions.numel() == rows && slots.numel() == rows, "decode_layer: one slot per row");
  const int64_t* pos = positions.data_ptr<int64_t>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  const int64_t capacity = kv.size(0) * kv.size(1);
  for (int64_t r = 0; r < rows; ++r) {
    TORCH_CHECK(pos[r] >= 0 && pos[r] < cos.size(0), "decode_layer: position out of range");
    TORCH_CHECK(slot[r] >= 0 && slot[r] < capacity, "decode_layer: slot out of range");
  }

  float* hp = h.data_ptr<float>();
  at::Tensor x = at::empty_like(h);
  inference_kernels::rms_norm_rows(hp, input_norm.data_ptr<float>(), rows, hidden, eps, x.data_ptr<float>());
  at::Tensor qkv = linear(x, qkv_w.vec());
  TORCH_CHECK(qkv.size(1) == width, "decode_layer: qkv has ", qkv.size(1), " outputs, expected ",
              width);
  if (qkv_bias.has_value()) qkv.add_(qkv_bias->to(at::kFloat));

  // Rotary on q and k, then k and v into the cache and q into the attention's dtype
  // (float32 over a quantized cache).
  const bool plain = kv_type == at::kFloat || kv_type == at::kBFloat16;
  at::Tensor q = at::empty({rows, hq, d}, plain ? kv.options() : h.options());
  float* qkv_p = qkv.data_ptr<float>();
  const float* cos_p = cos.data_ptr<float>();
  const float* sin_p = sin.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    float* row = qkv_p + r * width;
    for (int64_t head = 0; head < hq + hkv; ++head)
      inference_kernels::rope_head(row + head * d, cos_p + pos[r] * d, sin_p + pos[r] * d, d);
    // [slot, 2, kv_heads, w]: k's heads then v's, each row in the cache's format
    inference_kernels::store_rows(kv, slot[r] * 2 * hkv * (d + extra), row + hq * d, 2 * hkv, d,
                                  e5m2);
    if (q.scalar_type() == at::kFloat) {
      std::copy(row, row + hq * d, q.data_ptr<float>() + r * hq * d);
    } else {
      c10::BFloat16* out = q.data_ptr<c10::BFloat16>() + r * hq * d;
      for (int64_t j = 0; j < hq * d; ++j) out[j] = row[j];
    }
  }
  at::Tensor attn =
      inference_kernels::paged_decode(q, kv, block_tables, context_lens, scale, e5m2);
  h.add_(linear(attn.view({rows, hq * d}).to(at::kFloat), o_w.vec()));

  inference_kernels::rms_norm_rows(hp, post_norm.data_ptr<float>(), rows, hidden, eps, x.data_ptr<float>());
  at::Tensor gate_up = linear(x, gate_up_w.vec());
  const int64_t inter = gate_up.size(1) / 2;
  at::Tensor act = at::empty({rows, inter}, h.options());
  inference_kernels::silu_mul_rows(gate_up.data_ptr<float>(), rows, inter, act.data_ptr<float>());
  h.add_(linear(act, down_w.vec()));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(inference_kernels, m) {
  m.def(
      "decode_layer(Tensor(a!) h, Tensor input_norm, Tensor post_norm, float eps, Tensor[] qkv, "
      "Tensor? qkv_bias, Tensor[] o, Tensor[] gate_up, Tensor[] down, Tensor cos, Tensor sin, "
      "Tensor positions, int num_heads, int num_kv_heads, Tensor(b!) kv, Tensor slots, "
      "Tensor block_tables, Tensor context_lens, float scale, bool e5m2=False) -> ()");
}

TORCH_LIBRARY_IMPL(inference_kernels, CPU, m) { m.impl("decode_layer", &decode_layer); }

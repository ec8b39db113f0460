// The tiled 4/8-bit weights (quant_tiles.cpp) as a float32 matmul, de-quantized slab by slab.
//
// Where the float matmul beats the int8 kernels at large batches (prefill chunks on a CPU
// without VNNI), the server used to keep a float32 copy of every weight beside its 4/8-bit
// bytes: five times the quantized memory, held for the life of the process. Here a slab of
// W's rows (about 1 MB of float32, so it stays in L2 while the matmul reads it) is
// de-quantized, multiplied into its columns of the result, and reused for the next slab:
// one pass over W's N x K values per call, against the matmul's M x N x K multiply-adds, so
// from a few dozen rows up it costs a few percent, and no second copy of W is ever held.
//
// The values are exactly the row formats' `dequantize` (quant.py): w = d * q (+ m for q4).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "quant_common.h"

using namespace inference_kernels::quant;

namespace {

constexpr int64_t kSlabBytes = int64_t{1} << 20;  // float32 rows of W per slab: about 1 MB

// Rows 0..7 of one tile of W into out[8, k] (out row stride k): the tile layouts of
// quant_tiles.cpp, one block of 32 elements at a time.
void tile_q4(const uint8_t* qs, const c10::Half* d, const c10::Half* m, int64_t blocks,
             int64_t k, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* q = qs + 128 * b;
    for (int64_t c = 0; c < kTile; ++c) {
      const float dc = static_cast<float>(d[kTile * b + c]);
      const float mc = static_cast<float>(m[kTile * b + c]);
      float* o = out + c * k + kBlock * b;
      for (int64_t j = 0; j < 4; ++j) {
        for (int64_t i = 0; i < 4; ++i) {
          const uint8_t byte = q[32 * j + 4 * c + i];
          o[4 * j + i] = dc * static_cast<float>(byte & 15) + mc;
          o[16 + 4 * j + i] = dc * static_cast<float>(byte >> 4) + mc;
        }
      }
    }
  }
}

void tile_q8(const int8_t* qs, const c10::Half* d, int64_t blocks, int64_t k, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* q = qs + 256 * b;
    for (int64_t c = 0; c < kTile; ++c) {
      const float dc = static_cast<float>(d[kTile * b + c]);
      float* o = out + c * k + kBlock * b;
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t i = 0; i < 4; ++i) o[4 * j + i] = dc * static_cast<float>(q[32 * j + 4 * c + i]);
    }
  }
}

// Tiles [t0, t1) of W into slab ([8 * (t1 - t0), k]), in parallel over tiles.
void dequantize_tiles(const at::Tensor& qs, const at::Tensor& d, const at::Tensor* m, int64_t t0,
                      int64_t t1, float* slab) {
  const int64_t blocks = qs.size(1), k = blocks * kBlock, tile_bytes = qs.size(1) * qs.size(2);
  const c10::Half* dp = d.data_ptr<c10::Half>() + t0 * blocks * kTile;
  const c10::Half* mp = m ? m->data_ptr<c10::Half>() + t0 * blocks * kTile : nullptr;
  at::parallel_for(0, t1 - t0, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* out = slab + t * kTile * k;
      const int64_t at = (t0 + t) * tile_bytes;
      if (m) {
        tile_q4(qs.data_ptr<uint8_t>() + at, dp + t * blocks * kTile, mp + t * blocks * kTile,
                blocks, k, out);
      } else {
        tile_q8(qs.data_ptr<int8_t>() + at, dp + t * blocks * kTile, blocks, k, out);
      }
    }
  });
}

void check(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d, const at::Tensor* m,
           int64_t bytes, const char* op) {
  TORCH_CHECK(x.device().is_cpu() && qs.device().is_cpu() && d.device().is_cpu(), op,
              ": all tensors must be on the CPU");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, op, ": x must be float32 [M, K]");
  TORCH_CHECK(qs.dim() == 3 && qs.size(2) == bytes && qs.is_contiguous(), op,
              ": qs must be a contiguous [N/8, K/32, ", bytes, "]");
  TORCH_CHECK(x.size(1) == qs.size(1) * kBlock, op, ": x has ", x.size(1), " features, W ",
              qs.size(1) * kBlock);
  TORCH_CHECK(d.scalar_type() == at::kHalf && d.is_contiguous() && d.dim() == 3 &&
                  d.size(0) == qs.size(0) && d.size(1) == qs.size(1) && d.size(2) == kTile,
              op, ": d must be a contiguous float16 [N/8, K/32, 8], got ", d.sizes());
  if (m)
    TORCH_CHECK(m->scalar_type() == at::kHalf && m->is_contiguous() && m->sizes() == d.sizes(),
                op, ": m must be a contiguous float16 tensor shaped like d");
}

// out[M, N] = x @ W.T, W de-quantized one slab of rows at a time.
at::Tensor slab_linear(const at::Tensor& x_in, const at::Tensor& qs, const at::Tensor& d,
                       const at::Tensor* m) {
  const at::Tensor x = x_in.contiguous();
  const int64_t tiles = qs.size(0), k = x.size(1), n = tiles * kTile;
  at::Tensor out = at::empty({x.size(0), n}, x.options());
  if (out.numel() == 0) return out;
  const int64_t slab_tiles = std::clamp<int64_t>(kSlabBytes / (4 * kTile * k), 1, tiles);
  at::Tensor slab = at::empty({slab_tiles * kTile, k}, x.options());
  for (int64_t t0 = 0; t0 < tiles; t0 += slab_tiles) {
    const int64_t t1 = std::min(tiles, t0 + slab_tiles), rows = (t1 - t0) * kTile;
    dequantize_tiles(qs, d, m, t0, t1, slab.data_ptr<float>());
    at::Tensor columns = out.narrow(1, t0 * kTile, rows);  // row stride n: BLAS writes in place
    at::mm_out(columns, x, slab.narrow(0, 0, rows).t());
  }
  return out;
}

at::Tensor q4_linear_slabs(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d,
                           const at::Tensor& m) {
  check(x, qs, d, &m, 128, "q4_linear_slabs");
  TORCH_CHECK(qs.scalar_type() == at::kByte, "q4_linear_slabs: qs must be uint8");
  return slab_linear(x, qs, d, &m);
}

at::Tensor q8_linear_slabs(const at::Tensor& x, const at::Tensor& qs, const at::Tensor& d) {
  check(x, qs, d, nullptr, 256, "q8_linear_slabs");
  TORCH_CHECK(qs.scalar_type() == at::kChar, "q8_linear_slabs: qs must be int8");
  return slab_linear(x, qs, d, nullptr);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(inference_kernels, m) {
  m.def("q4_linear_slabs(Tensor x, Tensor qs, Tensor d, Tensor m) -> Tensor");
  m.def("q8_linear_slabs(Tensor x, Tensor qs, Tensor d) -> Tensor");
}

TORCH_LIBRARY_IMPL(inference_kernels, CPU, m) {
  m.impl("q4_linear_slabs", &q4_linear_slabs);
  m.impl("q8_linear_slabs", &q8_linear_slabs);
}

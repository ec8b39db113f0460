// Decode attention over the paged KV cache, reading each sequence's blocks where they lie.
//
// One query token per sequence. The G query heads that share a KV head are handled together,
// so each cached key and value is read once per KV head, and their queries and outputs stay
// in registers (G and the head size D are compile-time constants; the plain loops over them
// compile to SIMD code). Scores, softmax and the weighted sum are fp32 whatever the cache
// dtype: a quantized cache (int8 rows with their scale, or float8) is widened row by row as
// it is read, so attention reads its 2-4x fewer bytes (kv_codecs.h). Work is split over
// (sequence, KV head) pairs with at::parallel_for.
//
// q:            [n, heads, D]  (contiguous; float32 when the cache is quantized)
// kv:           [blocks, block_size, 2, kv_heads, W] (one layer of the cache, contiguous; W is
//               D, or D + 2 for int8)
// block_tables: [n, max_blocks] int64, each row's block ids (entries past its length unread)
// context_lens: [n] int64, positions each row attends to (its own token included)
// returns       [n, heads, D] in q's dtype

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include "kernels.h"
#include "kv_codecs.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using namespace inference_kernels;

struct Problem {
  int64_t n, heads, kv_heads, block_size, max_blocks;
  const int64_t* tables;
  const int64_t* lens;
  float scale;
  const float* table;  // a float8 cache's byte values (TableRows), else unused
};

constexpr int64_t kPartitionKeys = 256;  // keys of one work item (long rows are split)
constexpr int64_t kMinPartitionKeys = 64;  // below this a split costs more than it saves

// One work item: the keys [first_block, last_block) of row i, for every head. Its result is
// a partial softmax (running max, sum and weighted values per head), merged per row after.
struct Item {
  int64_t row, first_block, last_block;
};

template <typename C, int64_t D, int64_t G>
void attend_item(const Problem& p, const Item& item, const float* queries,
                 const typename C::Elem* kv_ptr, float* scores, float* best, float* sums,
                 float* acc) {
  using T = typename C::Elem;
  constexpr int64_t W = D + C::kExtra;  // elements of one stored row
  const int64_t heads = p.heads, kv_heads = p.kv_heads, bs = p.block_size;
  const int64_t token_stride = 2 * kv_heads * W, len = p.lens[item.row];
  const int64_t* table = p.tables + item.row * p.max_blocks;
  alignas(64) float row[D];
  std::fill(best, best + heads, -INFINITY);
  std::fill(sums, sums + heads, 0.f);
  std::fill(acc, acc + heads * D, 0.f);
  for (int64_t b = item.first_block; b < item.last_block; ++b) {
    // A block's positions are contiguous: [position][K heads | V heads], read in order.
    const T* base = kv_ptr + table[b] * bs * token_stride;
    const int64_t count = std::min(bs, len - b * bs);
    // The next block lies elsewhere in memory: fetch it while this one is computed.
    const T* next = b + 1 < item.last_block ? kv_ptr + table[b + 1] * bs * token_stride : nullptr;
    const int64_t lines_per_position = token_stride * sizeof(T) / 64;
    for (int64_t j = 0; j < count; ++j) {
      const T* keys = base + j * token_stride;
      if (next != nullptr) {
        const char* ahead = reinterpret_cast<const char*>(next + j * token_stride);
        for (int64_t line = 0; line < lines_per_position; ++line)
          __builtin_prefetch(ahead + line * 64);
      }
      for (int64_t h = 0; h < kv_heads; ++h) {
        C::template load<D>(keys + h * W, row, p.table);
        for (int64_t r = 0; r < G; ++r) {
          const float* q = queries + (h * G + r) * D;
          float dot = 0.f;
          for (int64_t k = 0; k < D; ++k) dot += q[k] * row[k];
          scores[(h * G + r) * bs + j] = dot;
        }
      }
    }
    // Online softmax: rescale what the earlier blocks accumulated when the max grows.
    for (int64_t hr = 0; hr < heads; ++hr) {
      float* s = scores + hr * bs;
      const float block_best = *std::max_element(s, s + count);
      if (block_best > best[hr]) {
        const float correction = std::exp(best[hr] - block_best);
        sums[hr] *= correction;
        for (int64_t k = 0; k < D; ++k) acc[hr * D + k] *= correction;
        best[hr] = block_best;
      }
      float sum = 0.f;
      for (int64_t j = 0; j < count; ++j) {
        s[j] = std::exp(s[j] - best[hr]);
        sum += s[j];
      }
      sums[hr] += sum;
    }
    for (int64_t j = 0; j < count; ++j) {
      const T* values = base + j * token_stride + kv_heads * W;
      for (int64_t h = 0; h < kv_heads; ++h) {
        C::template load<D>(values + h * W, row, p.table);
        for (int64_t r = 0; r < G; ++r) {
          const float weight = scores[(h * G + r) * bs + j];
          float* a = acc + (h * G + r) * D;
          for (int64_t k = 0; k < D; ++k) a[k] += weight * row[k];
        }
      }
    }
  }
}

template <typename T, typename C, int64_t D, int64_t G>
void decode_impl(const Problem& p, const T* q_ptr, const typename C::Elem* kv_ptr, T* out_ptr) {
  const int64_t heads = p.heads, bs = p.block_size;
  // Enough items for every thread: at batch 1 the one row is split across the threads
  // (a single item would leave all but one idle), while many rows keep whole partitions.
  int64_t total_blocks = 0;
  for (int64_t i = 0; i < p.n; ++i) total_blocks += (p.lens[i] + bs - 1) / bs;
  const int64_t num_threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t even_blocks = (total_blocks + num_threads - 1) / num_threads;
  const int64_t part_blocks = std::max<int64_t>(
      std::max<int64_t>(1, kMinPartitionKeys / bs),
      std::min<int64_t>(kPartitionKeys / bs, even_blocks));
  std::vector<Item> items;
  std::vector<int64_t> first_item(p.n + 1, 0), cost_before{0};
  for (int64_t i = 0; i < p.n; ++i) {
    const int64_t blocks = (p.lens[i] + bs - 1) / bs;
    for (int64_t b = 0; b < blocks; b += part_blocks) {
      items.push_back({i, b, std::min(blocks, b + part_blocks)});
      cost_before.push_back(cost_before.back() + std::min(p.lens[i], (b + part_blocks) * bs) - b * bs);
    }
    first_item[i + 1] = static_cast<int64_t>(items.size());
  }
  const int64_t num_items = static_cast<int64_t>(items.size());
  std::vector<float> best(num_items * heads), sums(num_items * heads), acc(num_items * heads * D);

  // Each thread takes a contiguous run of items holding an equal share of the keys (rows
  // arrive sorted by length, so equal item counts would not be equal work).
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), num_items));
  const int64_t total = cost_before.back();
  at::parallel_for(0, threads, 1, [&](int64_t t_begin, int64_t t_end) {
    for (int64_t t = t_begin; t < t_end; ++t) {
      const auto lo = std::lower_bound(cost_before.begin(), cost_before.end() - 1, total * t / threads);
      const auto hi = std::lower_bound(cost_before.begin(), cost_before.end() - 1, total * (t + 1) / threads);
      std::vector<float> queries(heads * D), scores(heads * bs);
      int64_t loaded_row = -1;
      for (int64_t it = lo - cost_before.begin(); it < hi - cost_before.begin(); ++it) {
        const Item& item = items[it];
        if (item.row != loaded_row) {
          for (int64_t hr = 0; hr < heads; ++hr) {
            load_row<D>(q_ptr + (item.row * heads + hr) * D, queries.data() + hr * D);
            for (int64_t k = 0; k < D; ++k) queries[hr * D + k] *= p.scale;
          }
          loaded_row = item.row;
        }
        attend_item<C, D, G>(p, item, queries.data(), kv_ptr, scores.data(), &best[it * heads],
                             &sums[it * heads], &acc[it * heads * D]);
      }
    }
  });

  // Merge each row's partial softmaxes (most rows have one).
  at::parallel_for(0, p.n, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t hr = 0; hr < heads; ++hr) {
        float top = -INFINITY, total_sum = 0.f;
        for (int64_t it = first_item[i]; it < first_item[i + 1]; ++it)
          top = std::max(top, best[it * heads + hr]);
        alignas(64) float merged[D] = {};
        for (int64_t it = first_item[i]; it < first_item[i + 1]; ++it) {
          const float w = std::exp(best[it * heads + hr] - top);
          total_sum += w * sums[it * heads + hr];
          const float* a = &acc[(it * heads + hr) * D];
          for (int64_t k = 0; k < D; ++k) merged[k] += w * a[k];
        }
        T* o = out_ptr + (i * heads + hr) * D;
        const float inverse = 1.f / total_sum;
        for (int64_t k = 0; k < D; ++k) o[k] = static_cast<T>(merged[k] * inverse);
      }
    }
  });
}

// Calls decode_impl<T, C, D, G> for the runtime group size (1..8); false when unsupported.
template <typename T, typename C, int64_t D, int64_t G = 1>
bool dispatch_group(int64_t group, const Problem& p, const T* q, const typename C::Elem* kv,
                    T* out) {
  if constexpr (G > 8) {
    return false;
  } else {
    if (group != G) return dispatch_group<T, C, D, G + 1>(group, p, q, kv, out);
    decode_impl<T, C, D, G>(p, q, kv, out);
    return true;
  }
}

template <typename T, typename C>
bool dispatch(int64_t d, int64_t group, const Problem& p, const T* q, const typename C::Elem* kv,
              T* out) {
  switch (d) {
    case 16: return dispatch_group<T, C, 16>(group, p, q, kv, out);
    case 64: return dispatch_group<T, C, 64>(group, p, q, kv, out);
    case 128: return dispatch_group<T, C, 128>(group, p, q, kv, out);
    default: return false;
  }
}

}  // namespace

namespace inference_kernels {

at::Tensor paged_decode(const at::Tensor& q, const at::Tensor& kv, const at::Tensor& block_tables,
                        const at::Tensor& context_lens, double scale, bool e5m2) {
  TORCH_CHECK(q.dim() == 3 && kv.dim() == 5, "q must be [n, heads, d], kv [blocks, bs, 2, kv_heads, w]");
  TORCH_CHECK(q.is_contiguous() && kv.is_contiguous(), "q and kv must be contiguous");
  const bool quantized = kv.scalar_type() == at::kChar || kv.scalar_type() == at::kByte;
  TORCH_CHECK(quantized ? q.scalar_type() == at::kFloat : q.scalar_type() == kv.scalar_type(),
              "q and kv must share a dtype (q float32 for an int8 or float8 cache)");
  TORCH_CHECK(kv.size(2) == 2 && kv.size(4) == q.size(2) + kv_extra(kv), "kv does not match q");
  TORCH_CHECK(q.size(1) % kv.size(3) == 0, "heads must be a multiple of kv_heads");
  TORCH_CHECK(block_tables.scalar_type() == at::kLong && context_lens.scalar_type() == at::kLong,
              "block_tables and context_lens must be int64");
  TORCH_CHECK(block_tables.dim() == 2 && block_tables.size(0) == q.size(0) &&
                  block_tables.is_contiguous() && context_lens.numel() == q.size(0),
              "one block table and one length per query row");
  const at::Tensor lens = context_lens.contiguous();
  const int64_t n = q.size(0), block_size = kv.size(1), max_blocks = block_tables.size(1);
  const int64_t* len_ptr = lens.data_ptr<int64_t>();
  const int64_t* table_ptr = block_tables.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(len_ptr[i] >= 1 && len_ptr[i] <= max_blocks * block_size, "bad context length");
    for (int64_t b = 0; b * block_size < len_ptr[i]; ++b) {
      const int64_t block = table_ptr[i * max_blocks + b];
      TORCH_CHECK(block >= 0 && block < kv.size(0), "block id out of range");
    }
  }
  at::Tensor out = at::empty_like(q);
  if (n == 0) return out;
  const Problem problem{n,          q.size(1), kv.size(3), block_size,
                        max_blocks, table_ptr, len_ptr,    static_cast<float>(scale),
                        fp8_table(e5m2)};
  const int64_t d = q.size(2), group = q.size(1) / kv.size(3);
  bool done = false;
  if (kv.scalar_type() == at::kChar) {
    done = dispatch<float, Int8Rows>(d, group, problem, q.data_ptr<float>(),
                                     kv.data_ptr<int8_t>(), out.data_ptr<float>());
  } else if (kv.scalar_type() == at::kByte) {
    done = dispatch<float, TableRows>(d, group, problem, q.data_ptr<float>(),
                                      kv.data_ptr<uint8_t>(), out.data_ptr<float>());
  } else if (q.scalar_type() == at::kFloat) {
    done = dispatch<float, PlainRows<float>>(d, group, problem, q.data_ptr<float>(),
                                             kv.data_ptr<float>(), out.data_ptr<float>());
  } else if (q.scalar_type() == at::kBFloat16) {
    done = dispatch<c10::BFloat16, PlainRows<c10::BFloat16>>(
        d, group, problem, q.data_ptr<c10::BFloat16>(), kv.data_ptr<c10::BFloat16>(),
        out.data_ptr<c10::BFloat16>());
  }
  TORCH_CHECK(done, "paged_decode: unsupported dtype, head size or group size");
  return out;
}

}  // namespace inference_kernels

TORCH_LIBRARY(inference_kernels, m) {
  m.def(
      "paged_decode(Tensor q, Tensor kv, Tensor block_tables, Tensor context_lens, float scale, "
      "bool e5m2=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(inference_kernels, CPU, m) { m.impl("paged_decode", &inference_kernels::paged_decode); }

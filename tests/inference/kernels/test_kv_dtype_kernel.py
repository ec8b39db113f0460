"""The compiled kernels over a quantized KV cache (int8 rows with their scale, float8).

The decode kernel reads the stored bytes and must equal SDPA over the same rows decoded by
the portable path (``KVFormat.decode``); the one-call decode layer writes new K and V in the
same bytes as the portable path's ``KVFormat.encode``.
"""

from __future__ import annotations

import pytest
import torch

from inference import kernels
from inference.engine.engine import Engine
from inference.model import quant_loader
from inference.model.kv_format import kv_format
from inference.model.linear import QuantizedWeights
from inference.model.runner import build_runner
from tests.inference.factories import SMALL_LIMITS, make_request, run_to_completion
from tests.inference.kernels.test_decode_kernel import random_problem, reference
from tests.support.tiny_model import build_tiny_llama

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")
FORMATS = ["int8", "fp8_e4m3fn", "fp8_e5m2"]


@needs_kernel
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("head_dim,group", [(16, 2), (64, 3), (128, 4), (64, 8)], ids=str)
def test_kernel_reads_the_stored_rows_as_the_portable_path_decodes_them(name, head_dim, group):
    lengths = [1, 7, 33, 257, 700]
    q, kv, tables, lens = random_problem(torch.float32, head_dim, group, lengths)
    fmt = kv_format(name, torch.float32)
    stored = fmt.encode(kv)  # [blocks, bs, 2, kv_heads, width]
    out = kernels.paged_decode_attention(q, stored, tables, lens, head_dim**-0.5, e5m2=fmt.is_e5m2)
    expected = reference(q, fmt.decode(stored, head_dim), tables, lens)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # and close to attention over the unquantized cache
    exact = reference(q, kv, tables, lens)
    assert (out - exact).abs().max() < (0.05 if name == "int8" else 0.25)


@needs_kernel
def test_bfloat16_queries_over_an_int8_cache_come_back_in_bfloat16():
    q, kv, tables, lens = random_problem(torch.float32, 64, 3, [5, 90])
    fmt = kv_format("int8", torch.bfloat16)
    stored = fmt.encode(kv)
    out = kernels.paged_decode_attention(q.bfloat16(), stored, tables, lens, 0.125)
    assert out.dtype == torch.bfloat16
    expected = kernels.paged_decode_attention(q.bfloat16().float(), stored, tables, lens, 0.125)
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=2e-2)


@needs_kernel
def test_kernel_rejects_an_int8_cache_without_room_for_the_scales():
    q, kv, tables, lens = random_problem(torch.float32, 64, 3, [20])
    codes = kv.to(torch.int8)  # d, not d + 2
    with pytest.raises(RuntimeError, match="kv does not match q"):
        kernels.paged_decode_attention(q, codes, tables, lens, 0.125)


@needs_kernel
@pytest.mark.parametrize("name", FORMATS)
def test_the_one_call_decode_layer_writes_the_portable_paths_bytes(name):
    """The same decode steps through the compiled layer (which quantizes K and V in C++) and
    the Python forward (``KVFormat.write``) leave the same cache behind."""
    caches, tokens = [], []
    for fused in (True, False):
        loaded = build_tiny_llama()
        loaded.kv_cache_dtype = name
        loaded.quantized = QuantizedWeights(
            quant_loader.quantize_linears(loaded.model, 8), label="int8"
        )
        engine = Engine(loaded, SMALL_LIMITS, runner=build_runner(loaded, 4096 // 32, 32))
        assert engine.runner.model.fused is not None
        if not fused:
            engine.runner.model.fused = None
        requests = [make_request(list(range(100, 100 + n)), max_new_tokens=5) for n in (5, 40)]
        for request in requests:
            engine.add_request(request)
        done = run_to_completion(engine)
        tokens.append([[e.token.id for e in done[r.request_id]] for r in requests])
        caches.append(engine.runner.cache.kv.clone())
    assert tokens[0] == tokens[1]
    fused_cache, plain_cache = caches
    # The two forwards' K and V differ in their last bits, so a value near a rounding
    # boundary may land on the neighbouring code: rare, and one step at most.
    assert (fused_cache != plain_cache).float().mean() < 1e-3
    fmt = kv_format(name, torch.float32)
    fused_values, plain_values = fmt.decode(fused_cache, 16), fmt.decode(plain_cache, 16)
    step = plain_values.abs().amax(-1, keepdim=True) * (1 / 127 if name == "int8" else 0.25)
    assert ((fused_values - plain_values).abs() <= step * 1.01 + 1e-6).all()

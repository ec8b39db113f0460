"""Large batches over 4/8-bit weights without a float copy: the float32 matmul reads W
de-quantized slab by slab (``SlabProjection``) where the plan sends batches beyond the
kernels' ``max_rows`` to it, and gives what a kept dense copy of the same values gives."""

from __future__ import annotations

import pytest
import torch

from inference import kernels
from inference.model import quant, quant_loader
from inference.model.linear import (
    DenseProjection,
    QuantizedWeights,
    QuantProjection,
    SlabProjection,
)
from tests.inference.factories import make_request, run_to_completion
from tests.inference.model.test_quant import _engine
from tests.support.tiny_model import build_tiny_llama

needs_kernel = pytest.mark.skipif(not kernels.available(), reason="needs the compiled CPU kernels")
PROMPTS = [list(range(100, 140)), list(range(300, 311)), list(range(50, 53))]


def _serve(dense_slabs: bool):
    """The tiny model with 4-bit weights, its HF weights set to their de-quantized values (so
    a dense copy and the slabs hold the same numbers), kernels up to 2 rows only."""
    loaded = build_tiny_llama()
    weights = quant_loader.quantize_linears(loaded.model, 4)
    for name, weight in weights.items():
        loaded.model.get_submodule(name).weight.data = weight.dequantize()
    loaded.frees_hf_weights = True
    plan = QuantizedWeights(
        weights, max_rows=2, keep_dense=True, dense_slabs=dense_slabs, label="int4"
    )
    return loaded, _engine(loaded, plan)


def _greedy(engine) -> list[list[tuple[int, float]]]:
    requests = [make_request(p, max_new_tokens=6, ignore_eos=True) for p in PROMPTS]
    for request in requests:
        engine.add_request(request)
    done = run_to_completion(engine)
    return [[(e.token.id, e.token.logprob) for e in done[r.request_id]] for r in requests]


@needs_kernel
def test_slabs_serve_large_batches_with_no_float_copy_and_the_copys_tokens():
    loaded, engine = _serve(dense_slabs=True)
    up = engine.runner.model.layers[0].gate_up
    assert isinstance(up, QuantProjection) and isinstance(up.dense, SlabProjection)
    assert up.max_rows == 2
    assert loaded.model.model.layers[0].mlp.up_proj.weight.numel() == 0  # no float copy held
    with_slabs = _greedy(engine)
    _, copied = _serve(dense_slabs=False)
    assert isinstance(copied.runner.model.layers[0].gate_up.dense, DenseProjection)
    with_copy = _greedy(copied)
    for a, b in zip(with_slabs, with_copy, strict=True):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert max(abs(x - y) for (_, x), (_, y) in zip(a, b, strict=True)) < 1e-4


@needs_kernel
def test_a_slab_projection_adds_its_bias_and_keeps_the_dtype():
    weight = quant.quantize_int8(torch.randn(24, 64))
    tiled = quant.tile_rows(weight)
    bias = torch.randn(24)
    x = torch.randn(5, 64)
    out = SlabProjection(tiled, bias)(x)
    assert torch.allclose(out, x @ weight.dequantize().T + bias, atol=1e-5)
    assert SlabProjection(tiled, None)(x.bfloat16()).dtype == torch.bfloat16


@needs_kernel
def test_the_crossover_can_be_measured_against_the_slabs():
    weight = torch.randn(256, 128) * 0.05
    max_rows, timings = quant_loader.measure_max_rows(
        [(quant.quantize_int4(weight), weight)], torch.float32, slabs=True
    )
    assert max_rows in (0, *quant_loader.CROSSOVER_ROWS)
    assert all(q > 0 and d > 0 for q, d in timings.values())

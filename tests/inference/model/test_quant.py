"""4/8-bit weights: GGUF blocks taken byte for byte, quantization at load, and the engine
serving them (the kernels themselves are tested in kernels/test_quant_kernel.py)."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

from inference.cpu import ISA_ENV, cpu_info
from inference.engine.engine import Engine
from inference.model import quant, quant_loader
from inference.model.linear import PortableQuantProjection, QuantizedWeights, QuantProjection
from tests.inference.factories import (
    SMALL_LIMITS,
    make_request,
    run_to_completion,
    token_ids,
)
from tests.support.tiny_model import build_tiny_llama


def _gguf_reference(raw: np.ndarray, kind: str) -> torch.Tensor:
    return torch.from_numpy(gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[kind])).float()


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0"])
def test_gguf_blocks_are_read_byte_for_byte(kind):
    weights = np.random.default_rng(0).standard_normal((24, 96)).astype(np.float32)
    raw = gguf.quants.quantize(weights, gguf.GGMLQuantizationType[kind])
    served = quant.from_gguf_blocks(kind, raw, 96)
    assert torch.equal(served.dequantize(), _gguf_reference(raw, kind))


def test_q4_k_super_blocks_become_per_32_scales_and_mins():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (6, 2, 144), dtype=np.uint8)
    raw[..., 0:2] = np.full((6, 2, 1), 0.01, np.float16).view(np.uint8)  # d
    raw[..., 2:4] = np.full((6, 2, 1), 0.02, np.float16).view(np.uint8)  # dmin
    raw = raw.reshape(6, 288)
    reference = _gguf_reference(raw, "Q4_K")
    served = quant.from_gguf_blocks("Q4_K", raw, 512)
    assert isinstance(served, quant.Q4Weight)
    # scales and mins are rounded to float16: well under a thousandth of the value range
    error = (served.dequantize() - reference).abs().max()
    assert error <= 1e-3 * reference.abs().max()


def test_other_gguf_types_are_not_taken_as_they_are():
    assert quant.from_gguf_blocks("Q6_K", np.zeros((2, 210), np.uint8), 256) is None


@pytest.mark.parametrize("bits", [4, 8])
def test_quantization_error_is_at_most_half_a_step(bits):
    weight = torch.randn(40, 128)
    q = quant.quantize(weight, bits)
    blocks = weight.view(40, 4, 32)
    levels = 15 if bits == 4 else 254
    step = (
        (blocks.amax(-1) - blocks.amin(-1)) / levels if bits == 4 else blocks.abs().amax(-1) / 127
    )
    error = (q.dequantize() - weight).view(40, 4, 32).abs().amax(-1)
    assert (error <= step * 0.5 + 1e-2 * step + 1e-6).all()
    assert q.num_bytes == weight.numel() * (5 if bits == 4 else 8.5) // 8  # bits + fp16 scales


def test_fused_rows_of_mixed_formats_become_8_bit():
    a, b = torch.randn(8, 64), torch.randn(4, 64)
    fused = quant.cat_rows([quant.quantize_int4(a), quant.quantize_int8(b)])
    assert isinstance(fused, quant.Q8Weight) and fused.out_features == 12
    assert torch.allclose(fused.dequantize()[8:], quant.quantize_int8(b).dequantize())


def test_rows_permuted_for_rotary_are_put_back_in_order():
    """llama.cpp's converter permutes q/k rows per head ([2, d/2] -> [d/2, 2]); the loader
    finds the order whose values equal what transformers loaded."""
    weight = torch.randn(12, 32)
    q = quant.quantize_int8(weight)
    reference = q.dequantize()
    heads, half = 2, 3
    as_converted = torch.arange(12).view(heads, 2, half).transpose(1, 2).reshape(-1)
    shipped = q.rows(as_converted)
    assert not torch.equal(shipped.dequantize(), reference)
    assert torch.equal(quant_loader._matching(shipped, reference, [heads]).dequantize(), reference)
    with pytest.raises(ValueError):
        quant_loader._matching(shipped, torch.zeros_like(reference), [heads])


def _engine(loaded, quantized):
    loaded.quantized = quantized
    return Engine(loaded, SMALL_LIMITS)


def _generate(engine, prompt, n=8):
    request = make_request(prompt, max_new_tokens=n, ignore_eos=True)
    engine.add_request(request)
    return token_ids(run_to_completion(engine)[request.request_id])


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_at_load_serves_only_the_quantized_bytes(bits):
    loaded = build_tiny_llama()
    weights = quant_loader.quantize_linears(loaded.model, bits)
    assert "lm_head" in weights and weights["lm_head"].bits == 8  # the head stays 8-bit
    layer_weight = weights["model.layers.0.mlp.up_proj"]
    assert layer_weight.bits == bits
    loaded.frees_hf_weights = True  # as the server's own load
    engine = _engine(loaded, QuantizedWeights(weights, label=f"int{bits}"))
    up = engine.runner.model.layers[0].gate_up
    assert isinstance(up, QuantProjection) and up.dense is None
    assert loaded.model.model.layers[0].mlp.up_proj.weight.numel() == 0  # freed
    # Held once: the tiles alone, not the row layout beside them nor the loader's copy.
    assert up.tiled is not None and up.weight is None
    assert not loaded.quantized.weights
    with pytest.raises(ValueError, match="already given"):
        Engine(loaded, SMALL_LIMITS)
    assert len(_generate(engine, list(range(100, 120)))) == 8


@pytest.mark.parametrize(
    ("dtype", "isa"),
    [(torch.float32, None), (torch.bfloat16, "avx2")],
    ids=["fp32-prepacked", "bf16-avx2-plain"],
)
def test_a_dense_model_is_held_once_by_the_server_runner(dtype, isa, monkeypatch, request):
    """The HF float weights are freed where a projection holds oneDNN's prepacked copy, and
    viewed by it otherwise (dense on CPUs where oneDNN does not run the dtype: bf16 on the
    AVX2 tier, forced here)."""
    if isa:
        monkeypatch.setenv(ISA_ENV, isa)
    cpu_info.cache_clear()
    request.addfinalizer(cpu_info.cache_clear)  # the next read sees the real tier again
    loaded = build_tiny_llama(dtype=dtype)
    loaded.frees_hf_weights = True
    engine = Engine(loaded, SMALL_LIMITS)
    qkv = engine.runner.model.layers[0].qkv
    q_proj = loaded.model.model.layers[0].self_attn.q_proj.weight
    if qkv.prepacked:
        assert q_proj.numel() == 0
    else:
        assert q_proj.untyped_storage().data_ptr() == qkv.weight.untyped_storage().data_ptr()
    assert len(_generate(engine, [5, 6, 7])) == 8


def test_quantized_logits_follow_the_dequantized_model():
    """The served 4-bit model against the same de-quantized values in fp32: only the
    kernels' 8-bit activations differ."""
    reference = build_tiny_llama()
    served = build_tiny_llama()
    weights = quant_loader.quantize_linears(served.model, 4)
    for name, weight in weights.items():
        reference.model.get_submodule(name).weight.data = weight.dequantize()
    prompt = torch.tensor([list(range(100, 140))])
    with torch.no_grad():
        expected = reference.model(prompt).logits[0, -1]
    engine = _engine(served, QuantizedWeights(weights, label="int4"))
    request = make_request(prompt[0].tolist(), max_new_tokens=1, top_n_tokens=5)
    engine.add_request(request)
    event = run_to_completion(engine)[request.request_id][0]
    assert event.token.id == int(expected.argmax())
    logprobs = torch.log_softmax(expected, -1)
    assert abs(event.token.logprob - float(logprobs[event.token.id])) < 0.05


def test_without_the_kernels_quantized_weights_still_run(monkeypatch):
    from inference import kernels

    monkeypatch.setattr(kernels, "available", lambda: False)
    loaded = build_tiny_llama()
    weights = quant_loader.quantize_linears(loaded.model, 4)
    engine = _engine(loaded, QuantizedWeights(weights, label="int4"))
    assert isinstance(engine.runner.model.layers[0].qkv, PortableQuantProjection)
    assert len(_generate(engine, [5, 6, 7])) == 8


def test_the_crossover_is_measured_on_real_shapes():
    weight = torch.randn(256, 128) * 0.05
    max_rows, timings = quant_loader.measure_max_rows(
        [(quant.quantize_int4(weight), weight)], torch.float32
    )
    assert max_rows in (0, *quant_loader.CROSSOVER_ROWS)
    assert 1 in timings and all(q > 0 and d > 0 for q, d in timings.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_the_one_call_decode_layer_equals_the_op_by_op_forward(dtype):
    """Decode steps through the compiled layer give the tokens and logprobs of the Python
    forward over the same quantized weights (it computes in float32 throughout)."""
    from inference import kernels

    if not kernels.available():
        pytest.skip("needs the compiled CPU kernels")
    results = []
    for fused in (True, False):
        loaded = build_tiny_llama(dtype=dtype)
        weights = quant_loader.quantize_linears(loaded.model, 4)
        engine = _engine(loaded, QuantizedWeights(weights, label="int4"))
        assert engine.runner.model.fused is not None
        if not fused:
            engine.runner.model.fused = None
        requests = [
            make_request(list(range(100, 100 + n)), max_new_tokens=6, ignore_eos=True)
            for n in (5, 40, 70)
        ]
        for request in requests:
            engine.add_request(request)
        done = run_to_completion(engine)
        results.append(
            [[(e.token.id, e.token.logprob) for e in done[r.request_id]] for r in requests]
        )
    fused_out, plain_out = results
    for a, b in zip(fused_out, plain_out, strict=True):
        assert [t for t, _ in a] == [t for t, _ in b]
        tolerance = 1e-3 if dtype == torch.float32 else 0.05
        assert max(abs(x - y) for (_, x), (_, y) in zip(a, b, strict=True)) < tolerance

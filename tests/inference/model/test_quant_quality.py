"""Quality of the served weights on the bundled model: teacher-forced against float32.

For each prompt, float32 transformers answers greedily; each served form then reads the
same prompt + answer, and at every answer position we compare its top-1 token with
float32's and the log-probability it gives float32's token. The quantized forms run the
kernels on every row (as a decode step does), so their 8-bit activations are measured too.
"""

from __future__ import annotations

import pytest
import torch

from bench.kv_quality import PROMPTS, greedy_answers
from inference import kernels
from inference.config import ModelConfig
from inference.model import quant_loader
from inference.model.kv_tensors import KVCache
from inference.model.linear import QuantizedWeights
from inference.model.llama import AttentionMetadata, LlamaPagedModel, PrefillChunk
from inference.model.loader import load_model
from inference.model.source import bundled_gguf_path

NEW_TOKENS = 24
# (form, min top-1 agreement, max mean |delta logprob|); the figures are printed
# (measured on 8 prompts x 32 tokens: bf16 0.980 / 0.020, gguf 0.977 / 0.035,
# int8 0.973 / 0.042, int4 0.977 / 0.035)
BOUNDS = {
    "bfloat16": (0.95, 0.05),
    "gguf (4/8-bit as shipped)": (0.93, 0.08),
    # as `--quantize auto` serves it where float32 wins beyond 8 rows (AVX2-only CPUs): the
    # prompt's rows through the float32 matmul over W de-quantized per slab
    "gguf, slabs beyond 8 rows": (0.93, 0.08),
    "int8": (0.93, 0.08),
    "int4": (0.93, 0.08),
}


def _served_logits(model, quantized, ids: list[int]) -> torch.Tensor:
    """Every position's logits through the server's own forward over a fresh cache."""
    paged = LlamaPagedModel(model, len(ids) + 1, quantized)
    cache = KVCache(
        paged.num_layers,
        (len(ids) + 31) // 32,
        32,
        paged.num_kv_heads,
        paged.head_dim,
        paged.dtype,
        paged.device,
    )
    n = len(ids)
    meta = AttentionMetadata(torch.arange(n), [], [PrefillChunk(0, n, 0, None)])
    hidden = paged.forward(torch.tensor(ids), torch.arange(n), meta, cache.kv)
    return paged.logits(hidden)


@pytest.fixture(scope="module")
def reference():
    loaded = load_model(ModelConfig(dtype="float32", quantize="none"))
    sequences = []
    with torch.inference_mode():
        for full, prompt_length in greedy_answers(loaded, PROMPTS, NEW_TOKENS):
            logits = loaded.model(torch.tensor([full])).logits[0].float()
            sequences.append((full, prompt_length, torch.log_softmax(logits, -1)))
    return sequences


def _form(name: str):
    """A freshly loaded model and the quantized weights it serves under ``name``."""
    dtype = "bfloat16" if name == "bfloat16" else "float32"
    loaded = load_model(ModelConfig(dtype=dtype, quantize="none"))
    model = loaded.model
    if name == "bfloat16":
        return model, None
    if name.startswith("gguf"):
        weights = quant_loader.read_gguf_linears(bundled_gguf_path(), model)
        assert len(weights) == 30 * 7 + 1  # every layer's linears and the tied output head
        if "slabs" in name:
            plan = dict(max_rows=8, keep_dense=True, dense_slabs=True)
            return model, QuantizedWeights(weights, label=name, **plan)
    else:
        weights = quant_loader.quantize_linears(model, 4 if name == "int4" else 8)
    return model, QuantizedWeights(weights, label=name)  # the kernels take every row


@pytest.mark.slow
@pytest.mark.skipif(not kernels.available(), reason="needs the compiled CPU kernels")
@pytest.mark.parametrize("name", list(BOUNDS))
def test_served_weights_agree_with_float32(reference, name):
    model, quantized = _form(name)
    agree, deltas = [], []
    with torch.inference_mode():
        for ids, prompt_len, ref_logprobs in reference:
            served = torch.log_softmax(_served_logits(model, quantized, ids).float(), -1)
            positions = range(prompt_len - 1, len(ids) - 1)  # predicting the answer tokens
            for p in positions:
                agree.append(int(served[p].argmax()) == int(ref_logprobs[p].argmax()))
                target = ids[p + 1]
                deltas.append(abs(float(served[p, target] - ref_logprobs[p, target])))
    top1 = sum(agree) / len(agree)
    mean_delta = sum(deltas) / len(deltas)
    print(f"\n{name}: top-1 agreement {top1:.3f}, mean |dlogprob| {mean_delta:.4f}")
    min_top1, max_delta = BOUNDS[name]
    assert top1 >= min_top1
    assert mean_delta <= max_delta

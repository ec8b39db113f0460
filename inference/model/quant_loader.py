"""Which linears the server keeps quantized: a GGUF file's own blocks, or quantized at load.

``--quantize`` (TGI's flag name):
- ``auto``: a GGUF source is served at the precision it ships in (Q4_0, Q4_1, Q4_K, Q8_0
  byte for byte) when the kernels beat the dense path at batch 1 on this CPU (measured here),
  with a float matmul for the batches where it is faster (none when the kernels win up to a
  prefill chunk's 256 rows). In float32 that matmul reads W de-quantized slab by slab per
  call, so no float copy is held (a dense copy in other dtypes); any other source stays dense.
- ``int8`` / ``int4``: every layer's linears quantized at load (blocks of 32, ``int4`` keeps
  the output head at 8 bits as llama.cpp's 4-bit types do); only the quantized bytes are
  kept, and the kernels take every batch.
- ``none``: dense weights in ``--dtype`` (a GGUF source de-quantized).
Must not import the engine or Django.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference import kernels
from inference.model.linear import (
    DenseProjection,
    QuantizedWeights,
    QuantProjection,
    SlabProjection,
    linear_path,
)
from inference.model.quant import QuantWeight, from_gguf_blocks, quantizable, quantize

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("auto", "none", "int8", "int4")
CROSSOVER_ROWS = (1, 2, 4, 8, 16, 32, 64, 256)  # 256: a prefill chunk
# GGUF tensor name (after "blk.N.") -> HF module name (after "model.layers.N.")
_GGUF_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def _hf_name(gguf_name: str, tied: bool) -> str | None:
    base = gguf_name.removesuffix(".weight")
    if base == "output" or (base == "token_embd" and tied):
        return "lm_head"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _GGUF_LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_LAYER_NAMES[parts[2]]}"
    return None


def _unpermute_rows(n_rows: int, heads: int) -> torch.Tensor:
    """Row order that undoes llama.cpp's rotary permutation of q/k (transformers undoes the
    same when it de-quantizes): [heads, 2, d/2] -> [heads, d/2, 2]."""
    half = n_rows // heads // 2
    return torch.arange(n_rows).view(heads, half, 2).transpose(1, 2).reshape(-1)


def _matching(weight: QuantWeight, reference: torch.Tensor, heads: list[int]) -> QuantWeight:
    """The weight in the reference's row order (as is, or un-permuted for one of ``heads``);
    ValueError when no order reproduces the reference exactly."""
    candidates = [weight]
    candidates += [
        weight.rows(_unpermute_rows(weight.out_features, h))
        for h in heads
        if h and weight.out_features % (2 * h) == 0
    ]
    for candidate in candidates:
        if torch.equal(candidate.dequantize().to(reference.dtype), reference):
            return candidate
    raise ValueError("its de-quantized values differ from the loaded weights")


def read_gguf_linears(path: Path, model: nn.Module) -> dict[str, QuantWeight]:
    """The linears of ``model`` whose GGUF tensors the kernels read as they are, checked
    value for value against the weights transformers loaded from the same file."""
    import gguf

    config = model.config
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    heads = [config.num_attention_heads, config.num_key_value_heads]
    modules = dict(model.named_modules())
    weights: dict[str, QuantWeight] = {}
    skipped: Counter[str] = Counter()
    for tensor in gguf.GGUFReader(path).tensors:
        name = _hf_name(tensor.name, tied)
        if name is None or name not in modules:
            continue
        kind = tensor.tensor_type.name
        weight = from_gguf_blocks(kind, np.asarray(tensor.data), int(tensor.shape[0]))
        if weight is None:
            skipped[kind] += 1
            continue
        try:
            weights[name] = _matching(weight, modules[name].weight.data, heads)
        except ValueError as exc:
            logger.warning("GGUF tensor %s is served dense: %s", tensor.name, exc)
    if skipped:
        logger.info("GGUF tensors of other types re-quantized to 8 bits: %s", dict(skipped))
    return weights


def quantize_linears(
    model: nn.Module, bits: int, names: set[str] | None = None
) -> dict[str, QuantWeight]:
    """Quantize the decoder's linears (and the output head, at 8 bits when ``bits`` is 4)."""
    out: dict[str, QuantWeight] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or (names is not None and name not in names):
            continue
        if not quantizable(module.weight) or module.weight.numel() == 0:
            continue
        out[name] = quantize(module.weight.data, 8 if name == "lm_head" else bits)
    return out


def _race_ms(
    paths: tuple[list, list], inputs: list[torch.Tensor], repeats: int
) -> tuple[float, float]:
    """The fastest of ``repeats`` passes of each path, a pass applying every projection once
    in turn (after one unmeasured pass each). Each weight is then read from memory, as a
    decode step reads it: one projection timed alone sits in the cache and flatters the path
    that reads more bytes (on a 2-core Xeon it picked bf16 at 8 rows, which then ran 2x slower
    than the 4-bit kernels). The two paths' passes alternate, so that other work on the
    machine falls on both alike (timed one path after the other, a burst of it once cut the
    kernels off at 16 rows on a shared 2-core host where they win at every size); it only
    ever slows a pass down, so the minimum is each path's own speed."""

    def one_pass(projections: list) -> float:
        started = time.perf_counter()
        for projection, x in zip(projections, inputs, strict=True):
            projection(x)
        return time.perf_counter() - started

    for projections in paths:
        one_pass(projections)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, projections in enumerate(paths):
            best[i] = min(best[i], one_pass(projections))
    return best[0] * 1e3, best[1] * 1e3


def measure_max_rows(
    weights: list[tuple[QuantWeight, torch.Tensor]], dtype: torch.dtype, slabs: bool = False
) -> tuple[int, dict[int, tuple[float, float]]]:
    """The largest batch for which the kernels beat the dense path over ``weights`` (every
    decoder layer's linears: see ``_race_ms``; 0: dense is faster even at batch 1), and the
    (quantized, dense) ms of one pass per batch size. ``slabs``: the dense path is the one
    served then, W de-quantized slab by slab (``SlabProjection``), not a dense copy."""
    quant = [QuantProjection(q, None, None, 0) for q, _ in weights]
    dense = [
        SlabProjection(p.tiled, None)
        if slabs and p.tiled is not None
        else DenseProjection(w, None, linear_path(w.device, dtype))
        for p, (_, w) in zip(quant, weights, strict=True)
    ]
    timings: dict[int, tuple[float, float]] = {}
    best = 0
    with torch.inference_mode():
        for rows in CROSSOVER_ROWS:
            inputs = [torch.randn(rows, q.in_features, dtype=dtype) for q, _ in weights]
            repeats = 5 if rows <= 64 else 2  # a pass at 256 rows takes ~0.4 s on AVX2
            timings[rows] = _race_ms((quant, dense), inputs, repeats)
            if timings[rows][0] >= timings[rows][1]:
                break
            best = rows
    return best, timings


def gguf_label(weights: dict[str, QuantWeight]) -> str:
    """What ``/info`` says a GGUF's weights are served as, e.g. ``gguf:q4+q8``."""
    kinds = sorted({f"q{w.bits}" for w in weights.values()})
    return "gguf:" + "+".join(kinds)


def plan(
    mode: str,
    model: nn.Module,
    dtype: torch.dtype,
    device: torch.device,
    gguf_path: Path | None,
) -> QuantizedWeights | None:
    """What ``mode`` means for this model on this machine (see the module docstring)."""
    if mode == "none" or (mode == "auto" and gguf_path is None):
        return None
    if mode == "auto":
        if device.type != "cpu" or not kernels.available():
            logger.info("--quantize auto: no quantized kernels here; serving dense weights")
            return None
        weights = read_gguf_linears(gguf_path, model)
        if not weights:
            return None
        rest = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)} - set(weights)
        weights |= quantize_linears(model, 8, rest)  # the file's other types, at 8 bits
        layers = [n for n in weights if n.startswith("model.layers.")]
        modules = dict(model.named_modules())
        slabs = dtype == torch.float32  # the slab matmul runs float32 only
        max_rows, timings = measure_max_rows(
            [(weights[n], modules[n].weight.data) for n in layers], dtype, slabs
        )
        logger.info(
            "Quantized vs dense ms for the decoder layers' linears by batch: %s",
            {r: f"{q:.3f}/{d:.3f}" for r, (q, d) in timings.items()},
        )
        if max_rows == 0:
            logger.info("--quantize auto: dense is faster at batch 1 here; serving dense")
            return None
        label = gguf_label(weights)
        # Faster at every size measured, prefill chunks included: no dense copy is kept.
        keep_dense = max_rows < CROSSOVER_ROWS[-1]
        return QuantizedWeights(
            weights,
            max_rows=max_rows,
            keep_dense=keep_dense,
            dense_slabs=slabs and keep_dense,
            label=label,
        )
    bits = 4 if mode == "int4" else 8
    return QuantizedWeights(quantize_linears(model, bits), label=mode)

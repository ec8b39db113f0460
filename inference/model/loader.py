"""Turn a ModelConfig into a loaded model + tokenizer on the right device and dtype.

Owns the device/dtype choice.
Must not import Django or the web framework.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch

from inference.config import ModelConfig
from inference.cpu import cpu_info
from inference.model import quant_loader
from inference.model.linear import QuantizedWeights, linear_path
from inference.model.source import gguf_source, resolve_model_path

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A model ready for the engine: weights on ``device`` in ``dtype`` plus its tokenizer."""

    model: Any  # a transformers PreTrainedModel in eval mode
    tokenizer: Any  # the matching transformers tokenizer
    model_id: str
    model_path: Path
    dtype: torch.dtype
    device: torch.device
    max_position_embeddings: int
    eos_token_ids: set[int] = field(default_factory=set)
    quantized: QuantizedWeights | None = None  # linears served in 4/8 bits (None: dense)
    # The runner frees the float weights it keeps its own copies of (prepacked, quantized):
    # the server's own load, one runner per model. A model shared by several runners (tests)
    # keeps them.
    frees_hf_weights: bool = False
    # Which path serves it ("fused", "transformers" or "fallback") and why; set by the runner
    # that serves it (None before one is built).
    runner: str | None = None
    runner_reason: str | None = None
    # ``--kv-cache-dtype`` as asked ("auto", "int8", "fp8", ...); the runner that builds the
    # paged cache replaces it with the format it serves ("bfloat16", "int8", "fp8_e4m3fn", ...).
    kv_cache_dtype: str = "auto"
    kv_cache_tokens: int | None = None  # tokens the paged cache holds (None: no paged cache)

    @property
    def quantize(self) -> str | None:
        """What ``/info`` reports: e.g. ``gguf:q4+q8``, ``int4``, or None for dense weights."""
        return self.quantized.label if self.quantized else None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device, config: Any = None) -> torch.dtype:
    """``auto``: bf16 on GPUs that have it (else fp16); on CPU the faster of fp32 and bf16
    for this model's linears on this CPU, measured (see ``fastest_cpu_dtype``)."""
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return fastest_cpu_dtype(_linear_shapes(config))


def _linear_shapes(config: Any) -> list[tuple[int, int]]:
    """(out, in) of one decoder layer's linears; a generic layer when the config is unknown."""
    hidden = int(getattr(config, "hidden_size", 1024))
    inter = int(getattr(config, "intermediate_size", 4 * hidden))
    return [(3 * hidden, hidden), (hidden, hidden), (2 * inter, hidden), (hidden, inter)]


@cache
def _fastest_cpu_dtype(shapes: tuple[tuple[int, int], ...], isa: str) -> torch.dtype:
    timings = _time_linears(shapes, (torch.float32, torch.bfloat16))
    best = min(timings, key=timings.get)
    logger.info(
        "dtype auto on %s: %s (ms for one layer at batch 1 + 32: %s)",
        isa,
        best,
        {str(d).removeprefix("torch."): f"{t:.2f}" for d, t in timings.items()},
    )
    return best


def fastest_cpu_dtype(shapes: list[tuple[int, int]]) -> torch.dtype:
    """The dtype whose linear path runs these shapes fastest at batch 1 plus batch 32."""
    return _fastest_cpu_dtype(tuple(shapes), cpu_info().isa.name)


def _time_linears(
    shapes: tuple[tuple[int, int], ...], dtypes: tuple[torch.dtype, ...], rounds: int = 12
) -> dict[torch.dtype, float]:
    """Best time of each dtype's layer, the dtypes alternated round by round so that a busy
    moment (another process starting) weighs on all of them alike."""
    from inference.model.linear import DenseProjection

    cases = []
    for dtype in dtypes:
        path = linear_path(torch.device("cpu"), dtype)
        layer = [
            DenseProjection(torch.randn(o, i, dtype=dtype) * 0.02, None, path) for o, i in shapes
        ]
        for rows in (1, 32):
            cases.append((dtype, layer, [torch.randn(rows, i, dtype=dtype) for _, i in shapes]))
    best = {case: float("inf") for case in range(len(cases))}
    with torch.inference_mode():
        for _ in range(rounds):
            for index, (_, layer, inputs) in enumerate(cases):
                started = time.perf_counter()
                for projection, x in zip(layer, inputs, strict=True):
                    projection(x)
                best[index] = min(best[index], time.perf_counter() - started)
    totals = dict.fromkeys(dtypes, 0.0)
    for index, (dtype, _, _) in enumerate(cases):
        totals[dtype] += best[index] * 1e3
    return totals


def eos_token_ids_of(model: Any, tokenizer: Any) -> set[int]:
    """Every id that ends a sequence: generation config, model config and tokenizer."""
    ids: set[int] = set()
    sources = [
        getattr(getattr(model, "generation_config", None), "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ]
    for value in sources:
        if value is None:
            continue
        if isinstance(value, int):
            ids.add(value)
        else:
            ids.update(int(v) for v in value)
    return ids


def load_model(model_config: ModelConfig) -> LoadedModel:
    """Resolve, load and place the model named by ``model_config`` (see module docstring)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(model_config.model_id, model_config.revision)
    device = pick_device(model_config.device)
    dtype = pick_dtype(model_config.dtype, device, AutoConfig.from_pretrained(path))
    logger.info("Loading %s from %s on %s as %s", model_config.model_id, path, device, dtype)
    if device.type == "cpu":
        logger.info("CPU: %s", cpu_info().describe())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.to(device).eval()
    quantized = None
    if model_config.quantize != "none":
        with torch.inference_mode():
            quantized = quant_loader.plan(
                model_config.quantize, model, dtype, device, gguf_source(model_config.model_id)
            )
    if quantized is not None:
        logger.info(
            "Serving quantized weights (%s): %.0f MB, kernels up to batch %s%s",
            quantized.label,
            sum(w.num_bytes for w in quantized.weights.values()) / 1e6,
            quantized.max_rows if quantized.keep_dense else "any",
            " (beyond: de-quantized per slab)" if quantized.dense_slabs else "",
        )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_id=model_config.model_id,
        model_path=path,
        dtype=dtype,
        device=device,
        max_position_embeddings=int(getattr(model.config, "max_position_embeddings", 2048)),
        eos_token_ids=eos_token_ids_of(model, tokenizer),
        quantized=quantized,
        frees_hf_weights=True,
        kv_cache_dtype=model_config.kv_cache_dtype,
    )

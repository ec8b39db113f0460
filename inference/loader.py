"""Turn a ModelConfig into a loaded model + tokenizer on the right device and dtype.

Owns the device/dtype choice and the tiny random Llama used by tests and benchmarks.
Must not import Django or the web framework.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch

from inference.config import ModelConfig
from inference.model_source import BUNDLED_DIR_NAME, models_dir, resolve_model_path

logger = logging.getLogger(__name__)

TINY_MODEL_ID = "tiny-random-llama"
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


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where the file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmuls (AVX512-BF16 or AMX), where bf16 is ~2x fp32."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 where the device computes it natively, fp16 on older GPUs, else fp32."""
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(model_config.model_id, model_config.revision)
    device = pick_device(model_config.device)
    dtype = pick_dtype(model_config.dtype, device)
    logger.info("Loading %s from %s on %s as %s", model_config.model_id, path, device, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.to(device).eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_id=model_config.model_id,
        model_path=path,
        dtype=dtype,
        device=device,
        max_position_embeddings=int(getattr(model.config, "max_position_embeddings", 2048)),
        eos_token_ids=eos_token_ids_of(model, tokenizer),
    )


def bundled_tokenizer_path() -> Path:
    """The bundled model's directory; only its tokenizer files are read by the tiny model."""
    return models_dir() / BUNDLED_DIR_NAME


def build_tiny_llama(
    tokenizer_path: Path | str | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    max_position_embeddings: int = 512,
) -> LoadedModel:
    """A 2-layer random-weight Llama with a real tokenizer, for tests and benchmarks.

    Loads in well under a second, runs on CPU, and exercises the same code paths as the
    bundled model (GQA, RoPE, tied embeddings off). Its output is gibberish by design.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(tokenizer_path) if tokenizer_path is not None else bundled_tokenizer_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(dtype).eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_id=TINY_MODEL_ID,
        model_path=path,
        dtype=dtype,
        device=torch.device("cpu"),
        max_position_embeddings=max_position_embeddings,
        eos_token_ids=eos_token_ids_of(model, tokenizer),
    )

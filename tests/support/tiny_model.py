"""The tiny random-weight Llama the tests and benchmarks run instead of the bundled model.

It reads only the bundled model's tokenizer files, loads in well under a second and runs the
same code paths as the real model. Must not import Django or `chatui`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from inference.model.loader import LoadedModel, eos_token_ids_of
from inference.model.source import BUNDLED_DIR_NAME, models_dir

TINY_MODEL_ID = "tiny-random-llama"


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

"""Tiny random-weight models of every decoder-only family the server is tested on.

Each is built from its transformers config class (hidden 64, 2-4 layers, few heads, GQA where
the family has it, a 512-token vocabulary whose ids the tests use directly), seed-fixed, in
float32 with eager attention (the reference semantics: softcaps, windows, sinks). Nothing is
downloaded; only the bundled model's tokenizer files are read. Must not import Django or
`chatui`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import torch

from inference.model.loader import LoadedModel, eos_token_ids_of
from tests.support.tiny_model import bundled_tokenizer_path

VOCAB_SIZE = 512
MAX_POSITIONS = 512
WINDOW = 16  # sliding windows well under the tests' prompts

BASE: dict[str, Any] = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=MAX_POSITIONS,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    initializer_range=0.1,  # peaked enough that windows, softcaps and scalings all show
)
MOE = dict(num_experts_per_tok=2, moe_intermediate_size=32)
ROPE_THETA = 10000.0
HALF_HEAD = 8  # rotary frequencies of a 16-dim head

# family id -> (config class name, overrides of BASE)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {}),
    "llama-rope-llama3": (
        "LlamaConfig",
        dict(
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=ROPE_THETA,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=64,
            )
        ),
    ),
    "llama-rope-linear": (
        "LlamaConfig",
        dict(rope_parameters=dict(rope_type="linear", rope_theta=ROPE_THETA, factor=2.0)),
    ),
    "llama-rope-dynamic": (
        "LlamaConfig",
        dict(
            rope_parameters=dict(
                rope_type="dynamic",
                rope_theta=ROPE_THETA,
                factor=2.0,
            )
        ),
    ),
    "llama-rope-yarn": (
        "LlamaConfig",
        dict(
            rope_parameters=dict(
                rope_type="yarn",
                rope_theta=ROPE_THETA,
                factor=4.0,
                original_max_position_embeddings=128,
            )
        ),
    ),
    "mistral": ("MistralConfig", dict(sliding_window=WINDOW)),
    "mixtral": ("MixtralConfig", dict(num_local_experts=4, num_experts_per_tok=2)),
    "qwen2": (
        "Qwen2Config",
        dict(use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1),
    ),
    "qwen2_moe": (
        "Qwen2MoeConfig",
        dict(
            MOE,
            num_experts=4,
            shared_expert_intermediate_size=64,
            use_sliding_window=True,
            sliding_window=WINDOW,
            max_window_layers=1,
        ),
    ),
    "qwen3": ("Qwen3Config", dict(head_dim=16)),
    "qwen3_moe": ("Qwen3MoeConfig", dict(MOE, head_dim=16, num_experts=4)),
    "gemma": ("GemmaConfig", dict(head_dim=16, num_key_value_heads=1)),
    "gemma2": (
        "Gemma2Config",
        dict(
            head_dim=16,
            sliding_window=WINDOW,
            query_pre_attn_scalar=16,
            attn_logit_softcapping=1.0,
            final_logit_softcapping=3.0,
        ),
    ),
    "gemma3_text": (
        "Gemma3TextConfig",
        dict(
            head_dim=16,
            num_hidden_layers=4,
            sliding_window=WINDOW,
            query_pre_attn_scalar=16,
            layer_types=["sliding_attention", "full_attention"] * 2,
        ),
    ),
    "phi3": (
        "Phi3Config",
        dict(
            rope_parameters=dict(
                rope_type="longrope",
                rope_theta=ROPE_THETA,
                short_factor=[1.0 + i / 10 for i in range(HALF_HEAD)],
                long_factor=[2.0 + i / 4 for i in range(HALF_HEAD)],
                original_max_position_embeddings=256,
            ),
        ),
    ),
    "olmo2": ("Olmo2Config", {}),
    "granite": (
        "GraniteConfig",
        dict(
            embedding_multiplier=4.0,
            residual_multiplier=0.5,
            attention_multiplier=0.2,
            logits_scaling=2.0,
        ),
    ),
    "starcoder2": ("Starcoder2Config", dict(sliding_window=WINDOW)),
    "gpt_neox": ("GPTNeoXConfig", dict(num_key_value_heads=None, rotary_pct=0.5)),
    "falcon": ("FalconConfig", dict(num_key_value_heads=None, num_kv_heads=1)),
    "cohere": ("CohereConfig", dict(use_qk_norm=True, logit_scale=0.5)),
    "smollm3": ("SmolLM3Config", dict(num_hidden_layers=4, no_rope_layers=[1, 1, 1, 0])),
    "gpt_oss": (  # attention sinks, alternating windows
        "GptOssConfig",
        dict(head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=WINDOW),
    ),
    "deepseek_v3": (  # multi-head latent attention: keys wider than values
        "DeepseekV3Config",
        dict(
            MOE,
            num_key_value_heads=4,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_rope_head_dim=8,
            qk_nope_head_dim=16,
            v_head_dim=8,
            n_routed_experts=4,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
        ),
    ),
}


@cache
def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


def family_config(family: str):
    """The family's transformers config (eager attention: the reference semantics)."""
    import transformers

    class_name, overrides = FAMILIES[family]
    values = {k: v for k, v in {**BASE, **overrides}.items() if v is not None}
    if "num_key_value_heads" in overrides and overrides["num_key_value_heads"] is None:
        values.pop("num_key_value_heads", None)
    config = getattr(transformers, class_name)(**values)
    config._attn_implementation = "eager"
    return config


def build_tiny_family(family: str, seed: int = 0) -> LoadedModel:
    """A tiny random-weight causal LM of ``family`` (an id of ``FAMILIES``), float32, CPU."""
    from transformers import AutoModelForCausalLM

    config = family_config(family)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    tokenizer = _tokenizer()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_id=f"tiny-random-{family}",
        model_path=bundled_tokenizer_path(),
        dtype=torch.float32,
        device=torch.device("cpu"),
        max_position_embeddings=MAX_POSITIONS,
        eos_token_ids=eos_token_ids_of(model, tokenizer),
    )


def save_tiny_family(family: str, directory: Path, seed: int = 0) -> Path:
    """``family``'s tiny random model saved with the bundled tokenizer into ``directory``, as
    `python -m inference --model-id DIR` loads it: its vocabulary widened to the tokenizer's,
    the special ids the tokenizer's own."""
    from transformers import AutoModelForCausalLM

    tokenizer = _tokenizer()
    config = family_config(family)
    config.vocab_size = len(tokenizer)
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory

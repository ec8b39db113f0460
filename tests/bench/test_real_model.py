"""bench.real_model on a tiny Qwen2 (2 layers, hidden 64): the safetensors load in
transformers, the GGUF reads back with llama.cpp's names and shapes, and this server's loader
serves the GGUF with the safetensors model's logits within the quantisation's error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.real_model import (
    EOS_TOKEN,
    QWEN25_1_5B,
    RealModel,
    build,
    ensure_real_model,
    model_paths,
    silent_token_ids,
)

TINY = replace(  # the real size's architecture, shrunk (2 layers, hidden 64)
    QWEN25_1_5B, name="tiny-qwen2", hidden_size=64, num_hidden_layers=2, num_attention_heads=4
)
TINY = replace(TINY, intermediate_size=128, vocab_size=1024, max_position_embeddings=512)
# Q8_0 keeps each weight to 1/254 of its block's largest: the logits of the tiny model stay
# within 2% of their own spread (measured: 0.6%)
Q8_0_LOGIT_BOUND = 0.02
PROMPT = "Hello world, the quick brown fox 123!"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> RealModel:
    return build(TINY, tmp_path_factory.mktemp("bench-models"))


def test_the_real_size_is_qwen25_15b_instructs_config() -> None:
    from bench.real_model import qwen2_config

    config = qwen2_config(QWEN25_1_5B)
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (
        1536,
        28,
        8960,
    )
    assert (config.num_attention_heads, config.num_key_value_heads) == (12, 2)
    assert (config.vocab_size, config.max_position_embeddings) == (151936, 32768)
    assert config.tie_word_embeddings and config.rms_norm_eps == 1e-6
    assert config.rope_parameters["rope_theta"] == 1e6


def test_the_tokenizer_has_the_configs_vocab_and_a_chat_template(tiny: RealModel) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.hf_dir)
    assert len(tokenizer) == TINY.vocab_size
    ids = tokenizer(PROMPT)["input_ids"]
    assert tokenizer.decode(ids) == PROMPT
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == EOS_TOKEN


def test_safetensors_load_in_transformers_and_never_pick_eos(tiny: RealModel) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny.hf_dir)
    assert model.config.model_type == "qwen2" and model.dtype == torch.bfloat16
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    out = model.generate(ids, max_new_tokens=24, do_sample=False, min_new_tokens=24)
    new = out[0, ids.shape[1] :].tolist()
    assert not set(new) & set(silent_token_ids(tokenizer))
    assert all(tokenizer.decode([t]) for t in new)  # every token streams a visible chunk


def test_the_gguf_reads_back_with_llama_cpp_names_and_shapes(tiny: RealModel) -> None:
    import gguf

    reader = gguf.GGUFReader(tiny.gguf)
    tensors = {t.name: t for t in reader.tensors}
    hidden, inter, vocab = TINY.hidden_size, TINY.intermediate_size, TINY.vocab_size
    kv = hidden // TINY.num_attention_heads * TINY.num_key_value_heads
    expected = {"token_embd.weight": [hidden, vocab], "output_norm.weight": [hidden]}
    for i in range(TINY.num_hidden_layers):
        expected |= {
            f"blk.{i}.attn_q.weight": [hidden, hidden],
            f"blk.{i}.attn_q.bias": [hidden],
            f"blk.{i}.attn_k.weight": [hidden, kv],
            f"blk.{i}.attn_v.bias": [kv],
            f"blk.{i}.attn_output.weight": [hidden, hidden],
            f"blk.{i}.ffn_gate.weight": [hidden, inter],
            f"blk.{i}.ffn_down.weight": [inter, hidden],
            f"blk.{i}.attn_norm.weight": [hidden],
        }
    for name, shape in expected.items():
        assert [int(d) for d in tensors[name].shape] == shape, name
    assert "output.weight" not in tensors  # tied: llama.cpp reads token_embd
    assert tensors["blk.0.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.0.ffn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "qwen2"
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == vocab


def test_this_servers_loader_serves_the_gguf_with_the_same_logits(
    tiny: RealModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    from inference.config import ModelConfig
    from inference.model.loader import load_model

    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    loaded = load_model(
        ModelConfig(model_id=str(tiny.gguf), dtype="float32", device="cpu", quantize="none")
    )
    reference = AutoModelForCausalLM.from_pretrained(tiny.hf_dir, dtype=torch.float32)
    ids = torch.tensor([loaded.tokenizer(PROMPT)["input_ids"]])
    with torch.inference_mode():
        got = loaded.model(ids).logits
        want = reference(ids).logits
    spread = want.abs().max().item()
    assert spread > 0
    assert (got - want).abs().max().item() <= Q8_0_LOGIT_BOUND * spread


def test_a_finished_build_is_reused(tiny: RealModel) -> None:
    root = tiny.hf_dir.parents[1]
    stamp = tiny.gguf.stat().st_mtime_ns
    assert ensure_real_model(TINY, root) == model_paths(TINY, root)
    assert tiny.gguf.stat().st_mtime_ns == stamp

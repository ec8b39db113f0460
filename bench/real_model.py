"""A real-size model for the benchmark, made on this machine: the exact architecture of a
published model (Qwen2.5-1.5B-Instruct) with seed-fixed random weights, since no model hub can
be reached. Written once under ``var/bench-models/<name>/`` as an HF directory (bf16
safetensors, tokenizer, chat template) and as a GGUF file of the same weights (Q8_0 or Q4_0,
written with the `gguf` package) that this server and llama-server both serve.

The tokenizer is built here, not borrowed: the bundled SmolLM2 tokenizer has 49,152 tokens
against the config's 151,936, and a model whose logits reach ids the tokenizer cannot decode
would stream empty chunks. This byte-level BPE has exactly ``vocab_size`` tokens: the 256
bytes, then letter/digit pairs and triples (each merge built from tokens before it), then the
ChatML special tokens. Every ordinary token decodes to printable text, so one streamed chunk
is one token for every server.

Random weights would stop on EOS only by chance, and `transformers serve` has no `ignore_eos`
request field: the embedding rows of the special tokens and of the non-printable bytes are zero
(tied, so their logits are exactly 0 while the top logit of 151,936 is far above it), which
keeps greedy decoding off them and every request at its full token count on every server.

Must not import the inference server; builds stay under 10 GB of RSS for 1.5B parameters
(weights made in bf16, the GGUF quantised one tensor at a time from the saved file).
"""

from __future__ import annotations

import itertools
import shutil
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PROJECT_ROOT / "var" / "bench-models"
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN, PAD_TOKEN = "<|im_end|>", "<|endoftext|>"
FILLER_CHARS = string.ascii_letters + string.digits
CHAT_TEMPLATE = (  # ChatML as Qwen2.5 writes it, with its default system prompt
    "{%- if not messages or messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
QUANT_TYPES = ("Q8_0", "Q4_0")


@dataclass(frozen=True)
class RealModelSpec:
    """A Qwen2 architecture and how its random weights and GGUF are made."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int = 32768
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    quant: str = "Q8_0"
    seed: int = 0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.quant not in QUANT_TYPES:
            raise ValueError(f"quant must be one of {', '.join(QUANT_TYPES)}, got {self.quant!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.vocab_size <= 256 + len(SPECIAL_TOKENS):
            raise ValueError("vocab_size must leave room beyond the 256 bytes and the specials")


# the config of Qwen/Qwen2.5-1.5B-Instruct (its config.json)
QWEN25_1_5B = RealModelSpec(
    name="qwen2.5-1.5b",
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=151936,
)
REAL_MODELS = {QWEN25_1_5B.name: QWEN25_1_5B}


@dataclass(frozen=True)
class RealModel:
    """Where a built model lies: the HF directory and the GGUF file of the same weights."""

    spec: RealModelSpec
    hf_dir: Path
    gguf: Path


def model_paths(spec: RealModelSpec, root: Path = DEFAULT_ROOT) -> RealModel:
    base = root / spec.name
    return RealModel(spec, base / "hf", base / f"{spec.name}-{spec.quant.lower()}.gguf")


def qwen2_config(spec: RealModelSpec) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        rms_norm_eps=spec.rms_norm_eps,
        tie_word_embeddings=spec.tie_word_embeddings,
        hidden_act="silu",
        bos_token_id=spec.vocab_size - len(SPECIAL_TOKENS) + SPECIAL_TOKENS.index(PAD_TOKEN),
        eos_token_id=spec.vocab_size - len(SPECIAL_TOKENS) + SPECIAL_TOKENS.index(EOS_TOKEN),
        architectures=["Qwen2ForCausalLM"],
    )


def vocab_and_merges(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE of exactly `vocab_size` tokens (see the module docstring)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    merges: list[tuple[str, str]] = []
    num_fillers = vocab_size - 256 - len(SPECIAL_TOKENS)
    pairs = ((a, b) for a, b in itertools.product(FILLER_CHARS, repeat=2))
    triples = ((a + b, c) for a, b, c in itertools.product(FILLER_CHARS, repeat=3))
    for left, right in itertools.islice(itertools.chain(pairs, triples), num_fillers):
        vocab[left + right] = len(vocab)
        merges.append((left, right))
    if len(vocab) != vocab_size - len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} needs more filler tokens than pairs+triples")
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return vocab, merges


def build_tokenizer(vocab_size: int) -> Any:
    """A fast tokenizer with `vocab_size` tokens, ChatML specials and chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = vocab_and_merges(vocab_size)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )


def silent_token_ids(tokenizer: Any) -> list[int]:
    """Ids greedy decoding must never pick: the specials and the non-printable bytes."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    printable = {ord(c) for c in string.printable if c not in "\x0b\x0c"}
    ids = [b for b in bytes_to_unicode() if b not in printable]
    return sorted(ids + [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS])


def random_model(spec: RealModelSpec, tokenizer: Any) -> Any:
    """A bf16 Qwen2ForCausalLM with seed-fixed weights: every matrix and bias N(0, init_std),
    norms 1, the silent tokens' (tied) embedding rows 0."""
    import torch
    from transformers import Qwen2ForCausalLM

    config = qwen2_config(spec)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("meta"):
            model = Qwen2ForCausalLM(config)
        model.to_empty(device="cpu")
    finally:
        torch.set_default_dtype(previous)
    generator = torch.Generator().manual_seed(spec.seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:  # drawn in fp32 chunks of rows (bf16 normal_ has no generator path)
                flat = param.view(param.shape[0], -1)
                for start in range(0, flat.shape[0], 4096):
                    rows = flat[start : start + 4096]
                    rows.copy_(torch.randn(rows.shape, generator=generator) * spec.init_std)
        model.model.embed_tokens.weight[silent_token_ids(tokenizer)] = 0
        model.tie_weights()
    model.config.dtype = "bfloat16"
    return model.eval()


def write_gguf(spec: RealModelSpec, hf_dir: Path, tokenizer: Any, path: Path) -> None:
    """The safetensors of `hf_dir` as a `spec.quant` GGUF (norms and biases in F32), one
    tensor quantised at a time from the memory-mapped file."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    qtype = gguf.GGMLQuantizationType[spec.quant]
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
    writer.add_name(spec.name)
    writer.add_context_length(spec.max_position_embeddings)
    writer.add_embedding_length(spec.hidden_size)
    writer.add_block_count(spec.num_hidden_layers)
    writer.add_feed_forward_length(spec.intermediate_size)
    writer.add_head_count(spec.num_attention_heads)
    writer.add_head_count_kv(spec.num_key_value_heads)
    writer.add_rope_freq_base(spec.rope_theta)
    writer.add_layer_norm_rms_eps(spec.rms_norm_eps)
    writer.add_vocab_size(spec.vocab_size)
    writer.add_file_type(getattr(gguf.LlamaFileType, f"MOSTLY_{spec.quant}"))
    _add_tokenizer(writer, spec, tokenizer)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, spec.num_hidden_layers)
    with safe_open(str(hf_dir / "model.safetensors"), framework="pt") as weights:
        for hf_name in weights.keys():  # noqa: SIM118 (safe_open has no __iter__)
            if hf_name == "lm_head.weight" and spec.tie_word_embeddings:
                continue
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ValueError(f"no GGUF name for {hf_name}")
            data = weights.get_tensor(hf_name).float().numpy()
            if data.ndim == 2:
                writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
            else:
                writer.add_tensor(name, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_tokenizer(writer: Any, spec: RealModelSpec, tokenizer: Any) -> None:
    import gguf

    vocab, merges = vocab_and_merges(spec.vocab_size)
    tokens = sorted(vocab, key=vocab.get)
    control = set(SPECIAL_TOKENS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # the same GPT-2 split the ByteLevel pre-tokenizer does
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL for t in tokens]
    )
    writer.add_token_merges([f"{a} {b}" for a, b in merges])
    writer.add_bos_token_id(tokenizer.convert_tokens_to_ids(PAD_TOKEN))
    writer.add_eos_token_id(tokenizer.convert_tokens_to_ids(EOS_TOKEN))
    writer.add_pad_token_id(tokenizer.convert_tokens_to_ids(PAD_TOKEN))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def build(spec: RealModelSpec, root: Path = DEFAULT_ROOT) -> RealModel:
    """Make the HF directory and the GGUF of `spec` under `root` (replacing any half-made
    one); the directory is renamed into place last, so a finished build is never partial."""
    paths = model_paths(spec, root)
    base = paths.hf_dir.parent
    tmp = base.with_name(base.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "hf").mkdir(parents=True)
    tokenizer = build_tokenizer(spec.vocab_size)
    model = random_model(spec, tokenizer)
    model.save_pretrained(tmp / "hf", safe_serialization=True)
    del model
    tokenizer.save_pretrained(tmp / "hf")
    write_gguf(spec, tmp / "hf", tokenizer, tmp / paths.gguf.name)
    shutil.rmtree(base, ignore_errors=True)
    tmp.rename(base)
    return paths


def ensure_real_model(spec: RealModelSpec, root: Path = DEFAULT_ROOT) -> RealModel:
    """The built model of `spec`, building it on first use (minutes for 1.5B parameters)."""
    paths = model_paths(spec, root)
    if paths.gguf.is_file() and (paths.hf_dir / "model.safetensors").is_file():
        return paths
    started = time.perf_counter()
    print(f"building {spec.name} (random weights) in {paths.hf_dir.parent}", file=sys.stderr)
    built = build(spec, root)
    print(
        f"{spec.name} built in {time.perf_counter() - started:.0f} s: "
        f"safetensors {_size_mb(built.hf_dir / 'model.safetensors')} MB, "
        f"{built.gguf.name} {_size_mb(built.gguf)} MB",
        file=sys.stderr,
    )
    return built


def _size_mb(path: Path) -> int:
    return round(path.stat().st_size / 2**20)


if __name__ == "__main__":
    for model_name in sys.argv[1:] or list(REAL_MODELS):
        print(ensure_real_model(REAL_MODELS[model_name]).gguf)

"""The quality of a KV cache dtype, teacher-forced against the float32 cache.

The same measure as the weights' (tests/inference/model/test_quant_quality.py): float32
transformers answers each prompt greedily; the server's forward (float32 weights) then reads
prompt + answer, the prompt as one prefill and every answer token as a decode step that
attends over the cache (the compiled kernel where built), once with a float32 cache and once
with the dtype measured. At each decode position: whether the top-1 token agrees with the
float32 cache's, |delta logprob| of the answer token, and KL(float32 cache || measured).
The prefill's own prediction is left out: a fresh prompt attends over its K/V before they are
stored, so it does not depend on the cache's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.model.kv_format import kv_format
from inference.model.kv_tensors import KVCache
from inference.model.llama import AttentionMetadata, DecodeGroup, LlamaPagedModel, PrefillChunk

PROMPTS = [
    "What is Deep Learning?",
    "Write a haiku about the sea.",
    "Name three colors.",
    "How do I boil an egg?",
    "Explain what a compiler does.",
    "What is the capital of France?",
]
BLOCK_SIZE = 32


@dataclass
class Quality:
    """Teacher-forced agreement with the float32 cache over every decode position."""

    top1: float  # fraction of positions whose argmax agrees
    mean_delta: float  # mean |logprob of the answer token - the float32 cache's|
    max_delta: float
    mean_kl: float  # mean KL(float32 cache || measured), nats

    def describe(self) -> str:
        return (
            f"top-1 {self.top1:.3f}, mean |dlogprob| {self.mean_delta:.4f} "
            f"(max {self.max_delta:.3f}), KL {self.mean_kl:.5f}"
        )


def greedy_answers(loaded, prompts: list[str], new_tokens: int) -> list[tuple[list[int], int]]:
    """(prompt + float32 greedy answer ids, prompt length) per chat prompt."""
    answers = []
    with torch.inference_mode():
        for text in prompts:
            prompt = loaded.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
            )
            ids = loaded.tokenizer(prompt, return_tensors="pt").input_ids
            out = loaded.model.generate(
                ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )
            answers.append((out[0].tolist(), ids.shape[1]))
    return answers


def decode_logprobs(
    model: LlamaPagedModel, answers: list[tuple[list[int], int]]
) -> list[torch.Tensor]:
    """Per answer, [answer length - 1, V] log-probabilities of its decode steps, teacher-forced
    over a fresh cache in ``model.kv_format``: the prompts in one prefill, then one batched
    decode step per answer token (row i at position prompt_len_i + step)."""
    per_seq = -(-max(len(ids) for ids, _ in answers) // BLOCK_SIZE)
    n = len(answers)
    cache = KVCache(
        model.num_layers, n * per_seq, BLOCK_SIZE, model.num_kv_heads, model.head_dim,
        model.dtype, model.device, model.kv_format,
    )  # fmt: skip
    tables = torch.arange(n * per_seq).view(n, per_seq)
    slots = [tables[i].repeat_interleave(BLOCK_SIZE) * BLOCK_SIZE for i in range(n)]
    slots = [s + torch.arange(len(s)) % BLOCK_SIZE for s in slots]
    chunks, row = [], 0
    for _, prompt_len in answers:
        chunks.append(PrefillChunk(row, row + prompt_len, 0, None))
        row += prompt_len
    prefill = AttentionMetadata(
        torch.cat([slots[i][:p] for i, (_, p) in enumerate(answers)]), [], chunks
    )
    prompt_ids = torch.cat([torch.tensor(ids[:p]) for ids, p in answers])
    positions = torch.cat([torch.arange(p) for _, p in answers])
    model.forward(prompt_ids, positions, prefill, cache.kv)
    steps = min(len(ids) - p for ids, p in answers) - 1
    rows: list[list[torch.Tensor]] = [[] for _ in answers]
    for j in range(steps):
        pos = torch.tensor([p + j for _, p in answers])
        bias = None
        if not model.decode_kernel:  # SDPA reads every slot of the blocks: mask the future
            keys = torch.arange(per_seq * BLOCK_SIZE)
            bias = torch.zeros(n, 1, 1, len(keys), dtype=model.dtype)
            bias.masked_fill_(keys.view(1, 1, 1, -1) > pos.view(-1, 1, 1, 1), -torch.inf)
        group = DecodeGroup(0, n, tables.flatten(), pos + 1, bias)
        meta = AttentionMetadata(torch.stack([slots[i][p] for i, p in enumerate(pos)]), [group], [])
        tokens = torch.tensor([ids[p] for (ids, _), p in zip(answers, pos.tolist(), strict=True)])
        logprobs = model.logits(model.forward(tokens, pos, meta, cache.kv)).log_softmax(-1)
        for i in range(n):
            rows[i].append(logprobs[i])
    return [torch.stack(r) for r in rows]


class QualityMeter:
    """Measures cache dtypes against the float32 cache over one model and set of answers
    (the float32 cache's log-probabilities computed once)."""

    def __init__(self, model: LlamaPagedModel, answers: list[tuple[list[int], int]]) -> None:
        self.model, self.answers = model, answers
        with torch.inference_mode():
            model.kv_format = kv_format("auto", torch.float32)
            self.reference = decode_logprobs(model, answers)

    def measure(self, kv_dtype: str) -> Quality:
        agree, deltas, kls = [], [], []
        model = self.model
        with torch.inference_mode():
            model.kv_format = kv_format(kv_dtype, model.dtype)
            measured = decode_logprobs(model, self.answers)
            model.kv_format = kv_format("auto", model.dtype)
        for (ids, prompt_len), ref, got in zip(self.answers, self.reference, measured, strict=True):
            targets = torch.tensor(ids[prompt_len + 1 : prompt_len + 1 + len(ref)]).unsqueeze(1)
            agree += (ref.argmax(-1) == got.argmax(-1)).tolist()
            deltas += (ref.gather(1, targets) - got.gather(1, targets)).abs().flatten().tolist()
            kls += (ref.exp() * (ref - got)).sum(-1).tolist()
        return Quality(
            top1=sum(agree) / len(agree),
            mean_delta=sum(deltas) / len(deltas),
            max_delta=max(deltas),
            mean_kl=sum(kls) / len(kls),
        )


def float32_model(loaded) -> LlamaPagedModel:
    """The server's forward over ``loaded``'s float32 weights, the weights kept dense."""
    return LlamaPagedModel(loaded.model, loaded.max_position_embeddings)

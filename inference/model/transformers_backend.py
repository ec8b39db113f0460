"""Any decoder-only transformers causal LM over the engine's paged KV cache.

``TransformersPagedRunner`` runs the model's own modeling code (its RoPE variants, norms,
MoE, multipliers, logit softcapping) with attention swapped for
``inference.model.paged_attention``: one forward per step over the packed tokens of every
scheduled chunk, ``use_cache=False``, each token at its absolute position, the logits only of
the rows the engine needs (``logits_to_keep`` as an index tensor, so the family's own logit
scaling applies). The cache has one tensor per distinct (kv heads, head dim) of the layers.
``probe`` says whether a model runs this way: it must route attention through transformers'
``AttentionInterface`` (``_supports_attention_backend``), have only attention layers (no
recurrent state besides K/V), and call attention exactly once per layer, causally.
Must not import the engine or Django.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from inference.batch import ScheduledChunk
from inference.model.backend_linears import serve_prepacked, serve_quantized
from inference.model.kv_format import blocks_in_same_memory, kv_format
from inference.model.kv_tensors import KVCache
from inference.model.loader import LoadedModel
from inference.model.paged_attention import (
    ATTENTION_NAME,
    DecodeRows,
    LayerProbe,
    PagedStep,
    PromptRows,
    register,
)
from inference.model.runner_base import (
    ModelRunner,
    RunnerOutput,
    chunk_prompt_logprobs,
    length_groups,
    log_cache,
)

logger = logging.getLogger(__name__)

ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})

LayerShapes = dict[int, tuple[int, int, int]]  # layer index -> (kv heads, key dim, value dim)


def _configs(model: nn.Module) -> list:
    """Every config object the model's modules read ``_attn_implementation`` from."""
    from transformers import PretrainedConfig

    found: dict[int, PretrainedConfig] = {}
    pending = [model.config] + [getattr(m, "config", None) for m in model.modules()]
    while pending:
        config = pending.pop()
        if isinstance(config, PretrainedConfig) and id(config) not in found:
            found[id(config)] = config
            pending += [getattr(config, key, None) for key in config.sub_configs]
    return list(found.values())


@contextmanager
def paged_attention_of(configs: list) -> Iterator[None]:
    """The configs' attention implementation is ``ATTENTION_NAME`` inside, restored after (so
    the same model still runs transformers' ``generate`` and the fallback runner)."""
    register()
    saved = [config._attn_implementation_internal for config in configs]
    for config in configs:
        config._attn_implementation_internal = ATTENTION_NAME
    try:
        yield
    finally:
        for config, implementation in zip(configs, saved, strict=True):
            config._attn_implementation_internal = implementation


def probe(model: nn.Module) -> tuple[LayerShapes | None, str]:
    """(each layer's cache shape, why) when ``model`` runs on this backend, else (None, why)."""
    name = type(model).__name__
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return None, f"{name} is an encoder-decoder model"
    if not getattr(model, "_supports_attention_backend", False):
        return None, f"{name}'s attention does not go through transformers' AttentionInterface"
    text_config = config.get_text_config()
    others = set(getattr(text_config, "layer_types", None) or ()) - ATTENTION_LAYER_TYPES
    if others:
        return None, f"{name} has {', '.join(sorted(others))} layers (state besides K/V)"
    recorder = LayerProbe()
    device = next(model.parameters()).device
    one = torch.zeros(1, 1, dtype=torch.long, device=device)
    try:
        with paged_attention_of(_configs(model)), torch.inference_mode():
            model(
                input_ids=one,
                position_ids=one,
                use_cache=False,
                logits_to_keep=torch.zeros(1, dtype=torch.long, device=device),
                paged_step=recorder,
            )
    except Exception as exc:  # any family-specific refusal means: not this backend
        return None, f"{name}'s forward refused the paged attention ({type(exc).__name__}: {exc})"
    num_layers = getattr(text_config, "num_hidden_layers", None)
    layers = sorted(recorder.shapes)
    if recorder.num_calls != len(layers) or (num_layers and layers != list(range(num_layers))):
        return None, f"{name}'s attention calls do not map one to one onto its layers"
    if not recorder.is_causal:
        return None, f"{name}'s attention is not causal"
    return recorder.shapes, f"{name} calls the attention interface once per layer"


class TransformersPagedRunner(ModelRunner):
    """The model's own forward, attention over the shared paged cache, one packed batch."""

    supports_prefix_caching = True

    def __init__(
        self,
        loaded: LoadedModel,
        num_blocks: int,
        block_size: int,
        layer_shapes: LayerShapes | None = None,
    ) -> None:
        super().__init__(loaded)
        if layer_shapes is None:
            layer_shapes, reason = probe(loaded.model)
            if layer_shapes is None:
                raise ValueError(reason)
        self.model = loaded.model
        self.configs = _configs(loaded.model)
        if loaded.quantized is not None:
            swapped = serve_quantized(loaded.model, loaded.quantized, loaded.frees_hf_weights)
            logger.info("Quantized weights (%s) in %d linears", loaded.quantized.label, swapped)
        if prepacked := serve_prepacked(loaded.model, loaded.frees_hf_weights):
            logger.info("oneDNN-prepacked weights in %d dense linears", prepacked)
        self.block_size = block_size
        by_shape: dict[tuple[int, int], list[int]] = {}
        for layer, (num_kv_heads, key_dim, value_dim) in sorted(layer_shapes.items()):
            by_shape.setdefault((num_kv_heads, max(key_dim, value_dim)), []).append(layer)
        fmt = kv_format(loaded.kv_cache_dtype, loaded.dtype)
        shapes = [shape for shape, layers in by_shape.items() for _ in layers]
        self.num_blocks = num_blocks = blocks_in_same_memory(num_blocks, shapes, fmt)
        self.caches: list[KVCache] = []
        self.layer_caches: dict[int, torch.Tensor] = {}
        for (num_kv_heads, width), layers in by_shape.items():
            cache = KVCache(
                len(layers), num_blocks, block_size, num_kv_heads, width, loaded.dtype,
                self.device, fmt,
            )  # fmt: skip
            self.caches.append(cache)
            self.layer_caches.update((layer, cache.kv[j]) for j, layer in enumerate(layers))
        self.kv_format = fmt
        loaded.kv_cache_dtype, loaded.kv_cache_tokens = fmt.name, num_blocks * block_size
        log_cache(fmt.name, num_blocks, block_size, sum(c.num_bytes for c in self.caches))
        logger.info(
            "KV cache layers: %s",
            ", ".join(f"{len(v)} layers of {h} kv heads x {w}" for (h, w), v in by_shape.items()),
        )

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        sources = self._tensor([a for a, _ in pairs])
        destinations = self._tensor([b for _, b in pairs])
        for cache in self.caches:
            cache.kv.index_copy_(1, destinations, cache.kv.index_select(1, sources))

    def _tensor(self, values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=self.device)

    def _slots(self, chunk: ScheduledChunk) -> list[int]:
        bs, table = self.block_size, chunk.seq.block_table
        return [table[p // bs] * bs + p % bs for p in range(chunk.start, chunk.end)]

    def _step(self, decodes: list[ScheduledChunk], prompts: list[ScheduledChunk]) -> PagedStep:
        """The attention metadata of the packed rows: decodes (sorted by length), then prompts."""
        bs = self.block_size
        decode_rows = []
        for first, last in length_groups([c.start // bs + 1 for c in decodes]) if decodes else []:
            group = decodes[first:last]
            width = max(c.start // bs + 1 for c in group)
            blocks = [b for c in group for b in (c.seq.block_table[:width] + [0] * width)[:width]]
            positions = self._tensor([c.start for c in group])
            decode_rows.append(DecodeRows(first, last, self._tensor(blocks), positions))
        prompt_rows, row = [], len(decodes)
        for c in prompts:
            blocks = None if c.start == 0 else self._tensor(c.seq.block_table[: -(-c.end // bs)])
            prompt_rows.append(PromptRows(row, row + c.num_new_tokens, c.start, blocks))
            row += c.num_new_tokens
        slots = [s for c in decodes + prompts for s in self._slots(c)]
        return PagedStep(
            self.layer_caches, bs, self._tensor(slots), decode_rows, prompt_rows, self.kv_format
        )

    def execute(self, chunks: list[ScheduledChunk], prompt_logprob_ids: set[str]) -> RunnerOutput:
        decodes = sorted((c for c in chunks if c.num_new_tokens == 1), key=lambda c: c.start)
        prompts = [c for c in chunks if c.num_new_tokens > 1]
        ordered = decodes + prompts
        starts, offset = {}, 0
        for c in ordered:
            starts[id(c)] = offset
            offset += c.num_new_tokens
        # The rows whose logits are needed: each sampled chunk's last, every row of a chunk
        # whose prompt logprobs are asked for.
        keep: set[int] = set()
        for c in chunks:
            if c.is_last_chunk:
                keep.add(starts[id(c)] + c.num_new_tokens - 1)
            if c.seq.seq_id in prompt_logprob_ids:
                keep.update(range(starts[id(c)], starts[id(c)] + c.num_new_tokens))
        kept = sorted(keep)
        input_ids = [t for c in ordered for t in c.seq.token_ids[c.start : c.end]]
        positions = [p for c in ordered for p in range(c.start, c.end)]
        with paged_attention_of(self.configs):
            out = self.model(
                input_ids=self._tensor(input_ids)[None],
                position_ids=self._tensor(positions)[None],
                use_cache=False,
                logits_to_keep=self._tensor(kept),
                paged_step=self._step(decodes, prompts),
            )
        logits = out.logits[0].float()  # [len(kept), V]
        index = {row: i for i, row in enumerate(kept)}
        last_rows = [starts[id(c)] + c.num_new_tokens - 1 for c in chunks if c.is_last_chunk]
        sample_rows = [index[row] for row in last_rows]
        prompt_logprobs: dict[str, tuple[int, list[float]]] = {}
        for c in chunks:
            if c.seq.seq_id not in prompt_logprob_ids:
                continue
            first = index[starts[id(c)]]
            found = chunk_prompt_logprobs(c, logits[first : first + c.num_new_tokens])
            if found is not None:
                prompt_logprobs[c.seq.seq_id] = found
        return RunnerOutput(
            logits=logits[self._tensor(sample_rows)] if sample_rows else None,
            prompt_logprobs=prompt_logprobs,
        )

"""The only module that touches the device: builds batch tensors and runs the forward pass.

``PagedModelRunner`` runs Llama-family models with the hand-written forward of
``inference.model.llama`` over one shared paged KV cache. ``HFModelRunner`` is the fallback
for every other architecture: the plain transformers forward, one sequence at a time, each
with its own ``DynamicCache`` (no prefix reuse). Both take the scheduler's chunks and return
the logits of the sequences that reached their last token, in chunk order. The paged
Llama runner also verifies draft tokens (speculative decoding): a decode chunk's drafts are
extra single-token rows, each with its own logits row.
Must not import the engine or Django.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable

import torch

from inference.batch import ScheduledChunk
from inference.model import llama
from inference.model.kv_format import blocks_in_same_memory, kv_format
from inference.model.kv_tensors import KVCache
from inference.model.loader import LoadedModel
from inference.model.runner_base import (
    ModelRunner,
    RunnerOutput,
    chunk_prompt_logprobs,
    length_groups,
    log_cache,
)
from inference.model.transformers_backend import TransformersPagedRunner, probe

logger = logging.getLogger(__name__)

KV_DTYPE_NEEDS_PAGED = (
    "--kv-cache-dtype {name} needs the paged KV cache, which this model cannot use ({reason}): "
    "serve it with --kv-cache-dtype auto"
)
GROUPED_PREFILL_MAX_CONTEXT = 512  # a prompt chunk seeing more positions is attended alone
GROUPED_PREFILL_MAX_SCORES = 1 << 19  # padded queries x keys of one batch (bounds its memory)
GROUPED_PREFILL_SLACK = 64  # positions a batch's longest context may exceed twice its shortest


def _prefill_batches(prefills: list[ScheduledChunk]) -> list[list[ScheduledChunk]]:
    """Prompt chunks sorted by context length, in padded batches attended together: short
    ones batched while the padded scores stay small and lengths similar, long ones alone."""
    batches: list[list[ScheduledChunk]] = []
    current: list[ScheduledChunk] = []
    for chunk in prefills:
        if chunk.end > GROUPED_PREFILL_MAX_CONTEXT:
            batches.append([chunk])
            continue
        if current:
            max_len = max(chunk.num_new_tokens, *(c.num_new_tokens for c in current))
            scores = (len(current) + 1) * max_len * chunk.end  # sorted: the longest context
            similar = chunk.end <= 2 * current[0].end + GROUPED_PREFILL_SLACK
            if scores > GROUPED_PREFILL_MAX_SCORES or not similar:
                batches.append(current)
                current = []
        current.append(chunk)
    if current:
        batches.append(current)
    return batches


_DecodeRow = tuple[ScheduledChunk, int, int]  # (decode chunk, position, input token)


def _decode_rows(decodes: Iterable[ScheduledChunk]) -> list[_DecodeRow]:
    """Each decode chunk's token and drafts as single-token rows, sorted by position."""
    rows = [
        (c, c.start + i, token)
        for c in decodes
        for i, token in enumerate((c.seq.token_ids[c.start], *c.draft_token_ids))
    ]
    return sorted(rows, key=lambda row: row[1])


def _padded(values: list[int], width: int) -> list[int]:
    values = values[:width]
    return values + [0] * (width - len(values))


class PagedModelRunner(ModelRunner):
    """Llama-family forward over the shared paged cache, all sequences in one packed batch."""

    supports_prefix_caching = True
    supports_speculation = True

    def __init__(self, loaded: LoadedModel, num_blocks: int, block_size: int) -> None:
        super().__init__(loaded)
        self.model = llama.LlamaPagedModel(
            loaded.model,
            loaded.max_position_embeddings,
            loaded.quantized,
            release_hf_weights=loaded.frees_hf_weights,
        )
        if loaded.frees_hf_weights:
            if loaded.quantized is not None:
                loaded.quantized.weights.clear()  # the projections hold them, in their layout
            _return_freed_memory()
        self.block_size = block_size
        model = self.model
        model.kv_format = fmt = kv_format(loaded.kv_cache_dtype, model.dtype)
        shapes = [(model.num_kv_heads, model.head_dim)] * model.num_layers
        self.num_blocks = blocks_in_same_memory(num_blocks, shapes, fmt)
        self.cache = KVCache(
            model.num_layers,
            self.num_blocks,
            block_size,
            model.num_kv_heads,
            model.head_dim,
            model.dtype,
            self.device,
            fmt,
        )
        loaded.kv_cache_dtype, loaded.kv_cache_tokens = fmt.name, self.num_blocks * block_size
        log_cache(fmt.name, self.num_blocks, block_size, self.cache.num_bytes)

    @property
    def max_decode_rows(self) -> int | None:
        """The one-call decode layer takes at most this many rows (quantized kernels)."""
        return self.model.fused.max_rows if self.model.fused is not None else None

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        sources = self._tensor([a for a, _ in pairs])
        destinations = self._tensor([b for _, b in pairs])
        kv = self.cache.kv  # [layers, blocks, ...]
        kv.index_copy_(1, destinations, kv.index_select(1, sources))

    def _tensor(self, values, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=self.device)

    def _decode_group(self, rows: list[_DecodeRow], row_start: int) -> llama.DecodeGroup:
        """Single-token rows (decodes and their drafts) attended together."""
        max_blocks = max(pos // self.block_size + 1 for _, pos, _ in rows)
        n = len(rows)
        bias = None
        if not self.model.decode_kernel:  # the kernel reads each row's own length instead
            bias = self._causal_bias([pos for _, pos, _ in rows], n, max_blocks).view(n, 1, 1, -1)
        tables = [b for c, _, _ in rows for b in _padded(c.seq.block_table, max_blocks)]
        return llama.DecodeGroup(
            row_start,
            row_start + n,
            self._tensor(tables),
            self._tensor([pos + 1 for _, pos, _ in rows]),
            bias,
        )

    def _block_tables(self, chunks: list[ScheduledChunk], max_blocks: int) -> torch.Tensor:
        """[len(chunks) * max_blocks] block ids, each sequence's table padded with block 0."""
        return self._tensor([b for c in chunks for b in _padded(c.seq.block_table, max_blocks)])

    def _causal_bias(self, query_pos: list[int], rows: int, max_blocks: int) -> torch.Tensor:
        """[rows, len(query_pos) // rows, keys]: 0 where a query sees a key, the dtype's lowest
        finite value after it (-1e30 overflows float16)."""
        key_pos = torch.arange(max_blocks * self.block_size, device=self.device)
        future = key_pos.view(1, 1, -1) > self._tensor(query_pos).view(rows, -1, 1)
        bias = torch.zeros(future.shape, dtype=self.model.dtype, device=self.device)
        return bias.masked_fill_(future, torch.finfo(self.model.dtype).min)

    def _prefill_group(self, batch: list[ScheduledChunk], row_start: int) -> llama.PrefillGroup:
        """Pads the chunks to their longest; a padding query repeats its chunk's last one."""
        model = self.model
        max_len = max(c.num_new_tokens for c in batch)
        max_blocks = -(-max(c.end for c in batch) // self.block_size)
        query_rows: list[int] = []
        valid: list[int] = []
        query_pos: list[int] = []
        offset = 0
        for i, c in enumerate(batch):
            n = c.num_new_tokens
            query_rows += [offset + min(j, n - 1) for j in range(max_len)]
            query_pos += [c.start + min(j, n - 1) for j in range(max_len)]
            valid += range(i * max_len, i * max_len + n)
            offset += n
        bias = self._causal_bias(query_pos, len(batch), max_blocks)
        bias = bias.repeat_interleave(model.num_heads // model.num_kv_heads, dim=1).unsqueeze(1)
        return llama.PrefillGroup(
            row_start,
            row_start + offset,
            len(batch),
            max_len,
            self._tensor(query_rows),
            self._tensor(valid),
            self._block_tables(batch, max_blocks),
            bias,
        )

    def _slots(self, block_table: list[int], start: int, end: int) -> torch.Tensor:
        positions = torch.arange(start, end, device=self.device)
        table = self._tensor(block_table)
        return table[positions // self.block_size] * self.block_size + positions % self.block_size

    def execute(self, chunks: list[ScheduledChunk], prompt_logprob_ids: set[str]) -> RunnerOutput:
        bs = self.block_size
        # Decode rows (each decode's token, then its drafts at the next positions) sorted by
        # context length, so that each group pads to a similar length. A draft row attends
        # like a decode at its position: this step writes every row's K/V before attending.
        decodes = _decode_rows(c for c in chunks if c.num_new_tokens == 1)
        batches = _prefill_batches(
            sorted((c for c in chunks if c.num_new_tokens > 1), key=lambda c: c.end)
        )
        input_ids: list[int] = [token for _, _, token in decodes]
        positions: list[int] = [pos for _, pos, _ in decodes]
        slot_parts: list[torch.Tensor] = []
        groups: list[llama.DecodeGroup] = []
        # Packed rows of `hidden` per chunk: its first, and its drafts' (decodes are sorted).
        starts: dict[int, int] = {}
        draft_rows: dict[int, list[int]] = {}
        if decodes:
            slots = [c.seq.block_table[pos // bs] * bs + pos % bs for c, pos, _ in decodes]
            slot_parts.append(self._tensor(slots))
            if self.model.decode_kernel:  # it attends each row over its own length
                ranges = [(0, len(decodes))]
            else:
                ranges = length_groups([pos // bs + 1 for _, pos, _ in decodes])
            for first, last in ranges:
                groups.append(self._decode_group(decodes[first:last], first))
            for row, (c, pos, _) in enumerate(decodes):
                if pos == c.start:
                    starts[id(c)] = row
                else:
                    draft_rows.setdefault(id(c), []).append(row)

        prefill_meta: list[llama.PrefillChunk | llama.PrefillGroup] = []
        row = len(decodes)
        for batch in batches:
            offset = row
            for c in batch:
                starts[id(c)] = offset
                offset += c.num_new_tokens
                input_ids.extend(c.seq.token_ids[c.start : c.end])
                positions.extend(range(c.start, c.end))
                slot_parts.append(self._slots(c.seq.block_table, c.start, c.end))
            if len(batch) > 1:
                prefill_meta.append(self._prefill_group(batch, row))
            else:
                c = batch[0]
                blocks = (
                    None if c.start == 0 else self._tensor(c.seq.block_table[: -(-c.end // bs)])
                )
                prefill_meta.append(
                    llama.PrefillChunk(row, row + c.num_new_tokens, c.start, blocks)
                )
            row = offset

        meta = llama.AttentionMetadata(
            slot_mapping=torch.cat(slot_parts), decode_groups=groups, prefills=prefill_meta
        )
        hidden = self.model.forward(
            self._tensor(input_ids), self._tensor(positions), meta, self.cache.kv
        )

        sample_rows: list[int] = []
        for c in chunks:
            if c.is_last_chunk:
                sample_rows.append(starts[id(c)] + c.num_new_tokens - 1)
                sample_rows += draft_rows.get(id(c), [])
        logits = self.model.logits(hidden[self._tensor(sample_rows)]) if sample_rows else None

        prompt_logprobs: dict[str, tuple[int, list[float]]] = {}
        for c in chunks:
            if c.seq.seq_id not in prompt_logprob_ids:
                continue
            first = starts[id(c)]
            rows = hidden[first : first + c.num_new_tokens]
            found = chunk_prompt_logprobs(c, rows, self.model.logits)
            if found is not None:
                prompt_logprobs[c.seq.seq_id] = found
        return RunnerOutput(logits=logits, prompt_logprobs=prompt_logprobs)


class HFModelRunner(ModelRunner):
    """Any transformers causal LM: its own forward and cache, one sequence at a time."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded)
        self.caches: dict[str, object] = {}

    def release(self, seq_id: str) -> None:
        self.caches.pop(seq_id, None)

    def execute(self, chunks: list[ScheduledChunk], prompt_logprob_ids: set[str]) -> RunnerOutput:
        from transformers import DynamicCache

        model = self.loaded.model
        rows: list[torch.Tensor] = []
        prompt_logprobs: dict[str, tuple[int, list[float]]] = {}
        for c in chunks:
            seq_id = c.seq.seq_id
            cache = self.caches.get(seq_id) if c.start > 0 else None
            if cache is None:
                if c.start > 0:
                    raise RuntimeError(f"no cache for {seq_id} at position {c.start}")
                cache = DynamicCache(config=model.config)
            ids = torch.tensor([c.seq.token_ids[c.start : c.end]], device=self.device)
            pos = torch.arange(c.start, c.end, device=self.device).unsqueeze(0)
            want_all = seq_id in prompt_logprob_ids
            out = model(
                input_ids=ids,
                position_ids=pos,
                cache=cache,
                use_cache=True,
                logits_to_keep=0 if want_all else 1,
            )
            self.caches[seq_id] = cache  # updated in place by the forward
            logits = out.logits[0].float()
            if c.is_last_chunk:
                rows.append(logits[-1])
            found = chunk_prompt_logprobs(c, logits) if want_all else None
            if found is not None:
                prompt_logprobs[seq_id] = found
        logits = torch.stack(rows) if rows else None
        return RunnerOutput(logits=logits, prompt_logprobs=prompt_logprobs)


def _return_freed_memory() -> None:
    """Hand the heap's free pages back to the OS: glibc keeps the float weights freed once the
    runner holds its own copies (prepacked, quantized) in the process's resident memory."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


def build_runner(
    loaded: LoadedModel, num_blocks: int, block_size: int, force_hf: bool = False
) -> ModelRunner:
    """The fused Llama-family runner where it runs the model exactly (the fastest), else the
    transformers backend over the paged cache for any decoder-only attention model, else the
    one-sequence-at-a-time transformers fallback (encoder-decoder, recurrent state). Records
    the path and why on ``loaded`` (``/info`` reports them) and logs them."""
    model = loaded.model
    name = f"{type(model).__name__} ({getattr(model.config, 'model_type', '?')})"
    fused_reason = llama.unsupported_reason(model)
    if not force_hf and fused_reason is None:
        loaded.runner, loaded.runner_reason = "fused", "a Llama-family model the fused forward runs"
        logger.info("Serving %s with the fused Llama-family forward", name)
        return PagedModelRunner(loaded, num_blocks, block_size)
    layer_shapes, reason = (None, "forced") if force_hf else probe(model)
    if layer_shapes is not None:
        loaded.runner, loaded.runner_reason = (
            "transformers",
            f"not fused since {fused_reason}; {reason}" if fused_reason else reason,
        )
        logger.info(
            "Serving %s with the transformers backend over the paged cache: %s",
            name,
            loaded.runner_reason,
        )
        return TransformersPagedRunner(loaded, num_blocks, block_size, layer_shapes)
    if kv_format(loaded.kv_cache_dtype, loaded.dtype).is_quantized:
        raise ValueError(KV_DTYPE_NEEDS_PAGED.format(name=loaded.kv_cache_dtype, reason=reason))
    loaded.runner, loaded.runner_reason = "fallback", reason
    loaded.kv_cache_dtype = kv_format("auto", loaded.dtype).name  # its own DynamicCache
    logger.info("Serving %s with the transformers fallback, one sequence at a time: %s",
                name, reason)  # fmt: skip
    if loaded.quantized is not None:
        logger.warning("Quantized weights need a paged runner: serving dense weights")
        loaded.quantized = None  # so /info says what is served
    return HFModelRunner(loaded)

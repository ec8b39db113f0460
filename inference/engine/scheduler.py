"""Which tokens of which requests the next step computes.

One rule covers prefill, chunked prefill, decode, prefix reuse and recompute after
preemption (vLLM v1's): every sequence has ``num_computed_tokens`` of ``num_tokens``; each
step assigns it tokens until the two meet, and a sequence whose step reaches the end gets a
new token sampled. Per step:

1. running sequences first, oldest first: one token each for decoding ones, the rest of a
   partly computed prompt for the others; when the cache cannot grow, the newest running
   sequence is preempted (blocks freed, recomputed later) rather than failing anything;
2. then waiting requests, oldest first, while the batch, the prefill token budget and the
   free cache allow. As TGI's router, while sequences are decoding a new prefill is only
   started when enough requests wait (``waiting_served_ratio``) or they waited
   ``max_waiting_tokens`` steps; and while more sequences decode than wait, the prefill
   budget is capped at ``max_prefill_tokens_while_decoding`` so a long prompt is chunked
   over several steps instead of freezing every stream; a chunk deep into a long prompt
   is also kept under ``max_prefill_attention_while_decoding`` query x context positions,
   since its attention grows with the context: with 16 streams decoding on the bundled
   model here, a step with a 64-token chunk at 2,000 positions took ~100 ms, one with a
   16-token chunk ~45 ms (the long prompt's first token comes later; streams stay smooth).

Must not import torch (it is tested on CPU with request factories and no model).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from inference.batch import (
    ScheduledChunk,
    SchedulerOutput,
    Sequence,
    SequenceStatus,
)
from inference.config import EngineConfig
from inference.engine.kv_cache import DEFAULT_BLOCK_SIZE, BlockManager

PROMPT_TOO_LONG_FOR_CACHE = (
    "The request needs {needed} KV cache tokens but the cache holds only {capacity} "
    "(raise --max-batch-total-tokens or shorten the prompt)."
)


MIN_CHUNK_TOKENS = 16  # the smallest prompt chunk the attention budget cuts a chunk to


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler's limits, derived from EngineConfig (TGI names) plus CPU-minded caps."""

    max_batch_size: int = 64
    max_batch_prefill_tokens: int = 4096
    max_batch_total_tokens: int = 65536
    waiting_served_ratio: float = 0.3
    max_waiting_tokens: int = 20
    max_prefill_tokens_while_decoding: int = 64
    max_prefill_attention_while_decoding: int = 16384  # chunk tokens x context positions
    block_size: int = DEFAULT_BLOCK_SIZE
    enable_prefix_caching: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_batch_prefill_tokens < 1:
            raise ValueError("max_batch_size and max_batch_prefill_tokens must be >= 1")
        if self.max_prefill_tokens_while_decoding < 1:
            raise ValueError("max_prefill_tokens_while_decoding must be >= 1")

    @property
    def num_blocks(self) -> int:
        return max(1, self.max_batch_total_tokens // self.block_size)

    @classmethod
    def from_engine_config(cls, config: EngineConfig, **overrides) -> SchedulerConfig:
        values = dict(
            max_batch_size=config.max_batch_size,
            max_batch_prefill_tokens=config.max_batch_prefill_tokens,
            max_batch_total_tokens=config.max_batch_total_tokens,
            waiting_served_ratio=config.waiting_served_ratio,
            max_waiting_tokens=config.max_waiting_tokens,
            enable_prefix_caching=config.enable_prefix_caching,
        )
        values.update(overrides)
        return cls(**values)


class Scheduler:
    """Waiting queue + running list over one BlockManager."""

    def __init__(self, config: SchedulerConfig, block_manager: BlockManager | None = None):
        self.config = config
        self.block_manager = block_manager or BlockManager(
            config.num_blocks, config.block_size, config.enable_prefix_caching
        )
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._steps_without_admission = 0

    # -- bookkeeping ---------------------------------------------------------------------
    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    @property
    def capacity_tokens(self) -> int:
        return self.block_manager.num_blocks * self.block_manager.block_size

    def add(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def finish(self, seq: Sequence) -> None:
        """Drop a sequence (finished or aborted) and free its cache at once."""
        if seq.status == SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status == SequenceStatus.WAITING:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED
        self.block_manager.free(seq)

    def update_computed(self, chunk: ScheduledChunk) -> None:
        """Record that a chunk's KV is now in the cache (call after the forward pass)."""
        chunk.seq.num_computed_tokens = chunk.end
        self.block_manager.commit(chunk.seq)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.num_computed_tokens = 0
        seq.num_preemptions += 1
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)

    # -- the step ------------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        bm = self.block_manager
        num_decoding = sum(1 for s in self.running if not s.is_prefilling)
        budget = self.config.max_batch_prefill_tokens
        chunking = bool(num_decoding) and len(self.waiting) < num_decoding
        if chunking:
            # Few newcomers among many streams: chunk their prompts so no stream stalls.
            # (When at least as many wait as decode, e.g. a burst of arrivals, one large
            # prefill serves more requests sooner and uses the CPU better, as TGI does.)
            budget = min(budget, self.config.max_prefill_tokens_while_decoding)

        decode_chunks: list[ScheduledChunk] = []
        prefill_chunks: list[ScheduledChunk] = []
        for seq in list(self.running):
            if seq.status != SequenceStatus.RUNNING:
                continue  # preempted by an older sequence in this loop
            if seq.is_prefilling:
                if budget <= 0:
                    continue
                n = self._chunk_size(seq, budget, chunking)
                budget -= n
                prefill_chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))
                continue
            while not bm.can_grow(seq, seq.num_tokens):
                victim = self.running[-1]
                self._preempt(victim)
                out.preempted.append(victim)
                if victim is seq:
                    break
            if seq.status == SequenceStatus.RUNNING:
                bm.grow(seq, seq.num_tokens)
                decode_chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, 1))
        # A preempted sequence may have been scheduled earlier in this loop.
        prefill_chunks = [c for c in prefill_chunks if c.seq.status == SequenceStatus.RUNNING]
        decode_chunks = [c for c in decode_chunks if c.seq.status == SequenceStatus.RUNNING]

        if self.waiting and self._may_admit(len(decode_chunks) + len(prefill_chunks)):
            admitted = self._admit(budget, out, chunking)
            prefill_chunks.extend(admitted)
            self._steps_without_admission = 0 if admitted else self._steps_without_admission + 1
        elif self.waiting:
            self._steps_without_admission += 1
        out.chunks = decode_chunks + prefill_chunks
        out.block_copies = bm.take_copies()
        return out

    def _may_admit(self, num_running: int) -> bool:
        """TGI's rule for interrupting a running batch with new prefills."""
        if num_running == 0 or self._steps_without_admission >= self.config.max_waiting_tokens:
            return True
        min_size = math.floor(num_running * self.config.waiting_served_ratio)
        return len(self.waiting) >= min_size

    def _admit(self, budget: int, out: SchedulerOutput, chunking: bool) -> list[ScheduledChunk]:
        bm = self.block_manager
        chunks: list[ScheduledChunk] = []
        while self.waiting and budget > 0 and len(self.running) < self.config.max_batch_size:
            seq = self.waiting[0]
            if bm.blocks_for(seq.num_tokens + 1) > bm.num_blocks:
                self.waiting.popleft()
                seq.status = SequenceStatus.FINISHED
                message = PROMPT_TOO_LONG_FOR_CACHE.format(
                    needed=seq.num_tokens + 1, capacity=self.capacity_tokens
                )
                out.failed.append((seq, message))
                continue
            # NOTE: keep one block spare per running sequence so admissions do not
            # immediately force preemptions of decoding streams.
            reserve = min(len(self.running), bm.num_free_blocks // 4)
            if not bm.can_allocate(seq, reserve, seq.uses_prefix_cache):
                break
            self.waiting.popleft()
            seq.num_cached_tokens = bm.allocate(seq, seq.uses_prefix_cache)
            seq.num_computed_tokens = seq.num_cached_tokens
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            n = self._chunk_size(seq, budget, chunking)
            budget -= n
            chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))
        return chunks

    def _chunk_size(self, seq: Sequence, budget: int, chunking: bool) -> int:
        """Prompt tokens of ``seq`` to compute this step, within the token budget and, while
        streams decode (``chunking``), the attention budget (at least 16 tokens, so a prompt
        progresses)."""
        n = min(seq.num_remaining, budget)
        if chunking:
            context = max(1, seq.num_computed_tokens)
            cap = self.config.max_prefill_attention_while_decoding // context
            n = min(n, max(MIN_CHUNK_TOKENS, cap))
        return n

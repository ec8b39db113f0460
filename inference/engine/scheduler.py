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
   over several steps instead of freezing every stream. The chunk keeps that size however
   deep into the prompt it lands: its attention then reads the whole cached context, a cost
   nearly the same for 4 tokens as for 64 (bundled model, 8,000 positions, one layer in bf16:
   2.0 ms for 4, 2.4 for 16, 3.7 for 64; ``python -m bench.chunk_attention``), so smaller deep
   chunks spare the streams little and stretch the long prompt's wait: cut to 16 tokens past
   1,000 positions, an 8,000-token prompt beside 16 decoding streams took 37 s to its first
   token instead of 12, with the streams' ITL p95 no lower (126 against 117 ms).

With ``speculate`` > 0, each decoding sequence's chunk may also carry up to that many draft
tokens (``inference.engine.drafter``) while at most ``speculate_max_seqs`` sequences decode;
the cache grows to hold them, and ``accept_drafts`` keeps the accepted ones and gives back the
blocks that only rejected ones needed.

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
from inference.engine.drafter import NgramDrafter
from inference.engine.kv_cache import DEFAULT_BLOCK_SIZE, BlockManager

PROMPT_TOO_LONG_FOR_CACHE = (
    "The request needs {needed} KV cache tokens but the cache holds only {capacity} "
    "(raise --max-batch-total-tokens or shorten the prompt)."
)


# Speculation pays while a step's cost is the weights' read, shared by all its rows; beyond
# this many decoding sequences the step is bound by arithmetic, and every rejected draft row
# costs about as much as a sequence (docs/inference-server.md: the measurements).
SPECULATE_MAX_SEQS = 4


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler's limits, derived from EngineConfig (TGI names) plus CPU-minded caps."""

    max_batch_size: int = 64
    max_batch_prefill_tokens: int = 4096
    max_batch_total_tokens: int = 65536
    waiting_served_ratio: float = 0.3
    max_waiting_tokens: int = 20
    max_prefill_tokens_while_decoding: int = 64
    block_size: int = DEFAULT_BLOCK_SIZE
    enable_prefix_caching: bool = True
    speculate: int = 0  # draft tokens per decoding sequence and step (0: off)
    speculate_max_seqs: int = SPECULATE_MAX_SEQS  # no drafts in a step with more decoding
    max_positions: int | None = None  # drafts never reach this position (the model's limit)
    # Decode rows (tokens and drafts) of a step beyond which the runner leaves its fastest
    # path (the quantized kernels' measured limit; None: no such limit).
    speculate_max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_batch_prefill_tokens < 1:
            raise ValueError("max_batch_size and max_batch_prefill_tokens must be >= 1")
        if self.max_prefill_tokens_while_decoding < 1:
            raise ValueError("max_prefill_tokens_while_decoding must be >= 1")
        if self.speculate < 0 or self.speculate_max_seqs < 0:
            raise ValueError("speculate and speculate_max_seqs must be >= 0")

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
            speculate=config.speculate,
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
        self._drafters: dict[str, NgramDrafter] = {}

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
        self._drafters.pop(seq.seq_id, None)

    def accept_drafts(self, seq: Sequence, num_accepted: int) -> None:
        """After a verified step: the first ``num_accepted`` drafts (now in ``seq.token_ids``)
        have their KV in the cache; the blocks only rejected drafts used go back."""
        seq.num_computed_tokens += num_accepted
        self.block_manager.commit(seq)
        self.block_manager.shrink(seq, seq.num_tokens)

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
                n = min(seq.num_remaining, budget)
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
        if self.config.speculate and len(decode_chunks) <= self.config.speculate_max_seqs:
            decode_chunks = self._with_drafts(decode_chunks)

        if self.waiting and self._may_admit(len(decode_chunks) + len(prefill_chunks)):
            admitted = self._admit(budget, out)
            prefill_chunks.extend(admitted)
            self._steps_without_admission = 0 if admitted else self._steps_without_admission + 1
        elif self.waiting:
            self._steps_without_admission += 1
        out.chunks = decode_chunks + prefill_chunks
        out.block_copies = bm.take_copies()
        return out

    def _with_drafts(self, chunks: list[ScheduledChunk]) -> list[ScheduledChunk]:
        """The decode chunks with drafts, within the runner's fast-path rows."""
        limit = self.config.speculate_max_rows
        spare = None if limit is None else limit - len(chunks)
        drafted = []
        for chunk in chunks:
            chunk = self._drafted(chunk, spare)
            if spare is not None:
                spare -= len(chunk.draft_token_ids)
            drafted.append(chunk)
        return drafted

    def _drafted(self, chunk: ScheduledChunk, spare: int | None) -> ScheduledChunk:
        """``chunk`` with the drafts its sequence's n-grams propose, as many as its token
        budget, ``spare`` rows, the model's positions and the free cache allow. Constrained
        requests get none: a grammar's mask is known only for the next token."""
        seq, bm = chunk.seq, self.block_manager
        params = seq.request.params
        if params.grammar is not None:
            return chunk
        # The last token a request may generate needs no draft after it.
        k = min(self.config.speculate, params.max_new_tokens - len(seq.output_token_ids) - 1)
        if spare is not None:
            k = min(k, spare)
        if self.config.max_positions is not None:
            k = min(k, self.config.max_positions - seq.num_tokens)
        drafter = self._drafters.get(seq.seq_id)
        if drafter is None:
            drafter = self._drafters[seq.seq_id] = NgramDrafter()
        drafts = drafter.propose(seq.token_ids, k)
        if not drafts:
            return chunk
        if not bm.can_grow(seq, seq.num_tokens + len(drafts)):
            drafts = drafts[: len(seq.block_table) * bm.block_size - seq.num_tokens]
            if not drafts:
                return chunk
        bm.grow(seq, seq.num_tokens + len(drafts))
        return ScheduledChunk(seq, chunk.start, chunk.num_new_tokens, tuple(drafts))

    def _may_admit(self, num_running: int) -> bool:
        """TGI's rule for interrupting a running batch with new prefills."""
        if num_running == 0 or self._steps_without_admission >= self.config.max_waiting_tokens:
            return True
        min_size = math.floor(num_running * self.config.waiting_served_ratio)
        return len(self.waiting) >= min_size

    def _admit(self, budget: int, out: SchedulerOutput) -> list[ScheduledChunk]:
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
            n = min(seq.num_remaining, budget)
            budget -= n
            chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))
        return chunks

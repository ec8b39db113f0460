"""The vocabulary the scheduler and the model runner share: a sequence as the engine tracks
it, one scheduled chunk of it, and one step's work.

The scheduler fills a ``SchedulerOutput``; the runner reads its chunks and never needs the
scheduler itself. It sits beside ``inference.types`` (not in ``inference.engine``) so that the
model package, below the engine, imports no module of the engine. Must not import torch, the
engine or the model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from inference.types import Request


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """A request as the scheduler tracks it: all its tokens and how many have KV computed."""

    request: Request
    token_ids: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0
    status: SequenceStatus = SequenceStatus.WAITING
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)
    num_cached_tokens: int = 0  # prompt tokens reused from the prefix cache at admission
    num_preemptions: int = 0
    uses_prefix_cache: bool = True  # off when every prompt position's logits are wanted

    def __post_init__(self) -> None:
        if not self.token_ids:
            self.token_ids = list(self.request.prompt_token_ids)
        if not self.token_ids:
            raise ValueError("a request needs at least one prompt token")

    @property
    def seq_id(self) -> str:
        return self.request.request_id

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return self.request.num_prompt_tokens

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_remaining(self) -> int:
        return self.num_tokens - self.num_computed_tokens

    @property
    def is_prefilling(self) -> bool:
        return self.num_remaining > 1


@dataclass(frozen=True)
class ScheduledChunk:
    """``num_new_tokens`` tokens of ``seq`` starting at position ``start``.

    A decode chunk (one token) may carry ``draft_token_ids``: guessed next tokens that the
    step computes after it (positions ``end`` onwards) so that one forward pass verifies them
    all (speculative decoding); the runner returns a logits row for each.
    """

    seq: Sequence
    start: int
    num_new_tokens: int
    draft_token_ids: tuple[int, ...] = ()

    @property
    def end(self) -> int:
        return self.start + self.num_new_tokens

    @property
    def num_rows(self) -> int:
        """Positions the step computes for this chunk: its tokens and its drafts."""
        return self.num_new_tokens + len(self.draft_token_ids)

    @property
    def is_last_chunk(self) -> bool:
        """True when this step computes the sequence's last known token: sample after it."""
        return self.end == self.seq.num_tokens


@dataclass
class SchedulerOutput:
    """One step's work: decode chunks first (one token each), then prefill chunks."""

    chunks: list[ScheduledChunk] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)
    failed: list[tuple[Sequence, str]] = field(default_factory=list)  # can never be served
    # Cache blocks (source, destination) to copy before the step: admitted prompts that
    # reuse part of a cached block (see ``BlockManager``).
    block_copies: list[tuple[int, int]] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(c.num_rows for c in self.chunks)

    @property
    def is_empty(self) -> bool:
        return not self.chunks

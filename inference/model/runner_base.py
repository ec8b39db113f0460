"""What every model runner shares: the runner interface, its output, and the prompt logprobs
and length groups both paged runners compute the same way.

Must not import the engine or Django.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from inference.batch import ScheduledChunk
from inference.model.loader import LoadedModel

logger = logging.getLogger(__name__)


@dataclass
class RunnerOutput:
    """logits: [S, V] fp32, in chunk order, for each chunk whose ``is_last_chunk`` is true:
    the row after its last token, then one row after each of its draft tokens.

    prompt_logprobs: seq_id -> (position of the first token scored, raw logprobs of the
    prompt tokens at that position onwards), for the sequences that asked for them.
    """

    logits: torch.Tensor | None
    prompt_logprobs: dict[str, tuple[int, list[float]]] = field(default_factory=dict)


def prompt_logprobs(logits: torch.Tensor, next_token_ids: torch.Tensor) -> list[float]:
    """Raw log-softmax of each next prompt token: logits [T, V], next_token_ids [T]."""
    logprobs = logits.float().log_softmax(dim=-1)
    return logprobs.gather(1, next_token_ids.unsqueeze(1)).squeeze(1).tolist()


def chunk_prompt_logprobs(
    chunk: ScheduledChunk,
    rows: torch.Tensor,
    to_logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[int, list[float]] | None:
    """The logprobs of the prompt tokens this chunk predicts: (prompt position of the first
    one, values), or None when it predicts none (the rest of the chunk predicts generated
    tokens). rows: [chunk.num_new_tokens, ...] the chunk's logits, or its hidden states with
    ``to_logits`` (only the rows needed are projected)."""
    num_rows = min(chunk.end, chunk.seq.num_prompt_tokens - 1) - chunk.start
    if num_rows <= 0:
        return None
    logits = rows[:num_rows] if to_logits is None else to_logits(rows[:num_rows])
    first = chunk.start + 1
    targets = torch.tensor(chunk.seq.token_ids[first : first + num_rows], device=logits.device)
    return first, prompt_logprobs(logits, targets)


def length_groups(num_blocks: list[int], slack: int = 2) -> list[tuple[int, int]]:
    """Split rows sorted by context length into runs whose longest row is at most ``slack``
    times the shortest (in blocks), so one long conversation does not make every row of the
    batch gather and attend over its whole context. Returns [first, last) row ranges."""
    groups, first = [], 0
    for i, blocks in enumerate(num_blocks):
        if blocks > slack * num_blocks[first] and blocks - num_blocks[first] > 2:
            groups.append((first, i))
            first = i
    groups.append((first, len(num_blocks)))
    return groups


def log_cache(dtype: str, num_blocks: int, block_size: int, num_bytes: int) -> None:
    """The start-up line that says what the KV cache holds and in what."""
    logger.info(
        "KV cache: %s, %d blocks of %d tokens (%d tokens), %.0f MiB",
        dtype,
        num_blocks,
        block_size,
        num_blocks * block_size,
        num_bytes / 2**20,
    )


class ModelRunner(ABC):
    """Runs one step's chunks; owns whatever per-sequence device state it needs."""

    supports_prefix_caching: bool = False
    supports_speculation: bool = False  # verifies a decode chunk's draft tokens
    # Blocks of the shared paged cache (None: no shared cache). A quantized KV dtype fits more
    # blocks in the memory the engine's block count takes in the model's dtype.
    num_blocks: int | None = None

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.device = loaded.device

    @abstractmethod
    def execute(self, chunks: list[ScheduledChunk], prompt_logprob_ids: set[str]) -> RunnerOutput:
        """Compute the chunks' KV (and the logits needed) in one step."""

    @property
    def max_decode_rows(self) -> int | None:
        """Decode rows a step may have and stay on this runner's fastest path (None: any)."""
        return None

    def release(self, seq_id: str) -> None:  # noqa: B027 - optional hook
        """Forget per-sequence device state (the paged cache is freed by the block manager)."""

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        """Copy cache blocks (source, destination), every layer (prefix-caching runners)."""
        raise NotImplementedError(f"{type(self).__name__} has no shared cache")

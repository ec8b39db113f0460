"""One step's grammar masks, computed on a helper thread while the model runs.

The engine starts the masks of the step's constrained rows before the forward pass and waits
for them before sampling: llguidance drops the GIL while it works, so the masks (tens of
microseconds per row) hide behind the forward (milliseconds). A step without constrained rows
starts nothing. The helper thread never runs a torch op (no second OpenMP pool); it only
writes into the host bitmask this module owns.
Must not import the scheduler or the web framework.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from inference.engine.grammar import GrammarCompiler


@dataclass
class PendingMasks:
    """Masks being written: ``wait()`` returns the [n, words] int32 bitmask, row i for the
    i-th matcher given to ``StepMasks.start``."""

    future: Future[None]
    bitmask: torch.Tensor

    def wait(self) -> torch.Tensor:
        self.future.result()
        return self.bitmask


class StepMasks:
    """Owns the host bitmask (grown on demand, reused every step) and the helper thread."""

    def __init__(self, compiler: GrammarCompiler) -> None:
        self.compiler = compiler
        self._pool: ThreadPoolExecutor | None = None
        self._buffer = torch.empty(0, compiler.mask_words, dtype=torch.int32)

    def start(self, matchers: list[Any]) -> PendingMasks | None:
        """Begin writing the masks of ``matchers`` (None when there are none)."""
        if not matchers:
            return None
        n = len(matchers)
        if self._buffer.shape[0] < n:
            self._buffer = torch.empty(
                max(n, 2 * self._buffer.shape[0]), self.compiler.mask_words, dtype=torch.int32
            )
        bitmask = self._buffer[:n]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="grammar-masks")
        rows = [(m, i) for i, m in enumerate(matchers)]
        future = self._pool.submit(self.compiler.fill_masks, rows, bitmask.data_ptr(), n)
        return PendingMasks(future, bitmask)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

"""Model-free drafts for speculative decoding: n-gram (prompt-lookup) matching.

A sequence's last few tokens are looked up in its own prompt and output; where they occurred
before, the tokens that followed then are proposed as the next ones. An answer that quotes
its input (an edited file, a corrected paragraph) repeats long runs of it, and each run is
then verified in one forward pass instead of one pass per token.

``NgramDrafter`` indexes a sequence's tokens incrementally (each token once, however long the
context), so a proposal costs a few dictionary look-ups, not a scan of the context. It reads
only committed tokens: rejected drafts never enter it, so it needs no rollback.
Must not import torch, the scheduler or the model.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_NGRAM = 2  # a single repeated token predicts too little: most of its drafts are rejected
MAX_NGRAM = 4  # longer matches than this rarely change the continuation picked


class NgramDrafter:
    """One sequence's n-gram index: n-gram -> where the tokens after its latest occurrence
    start (``min_n`` <= n <= ``max_n``)."""

    def __init__(self, min_n: int = MIN_NGRAM, max_n: int = MAX_NGRAM) -> None:
        if not 1 <= min_n <= max_n:
            raise ValueError("need 1 <= min_n <= max_n")
        self.min_n, self.max_n = min_n, max_n
        self._next: dict[tuple[int, ...], int] = {}
        self._num_indexed = 0  # n-grams ending before this position have a follower indexed

    def _index(self, token_ids: Sequence[int]) -> None:
        """Index every n-gram that ends before the last token (so a follower exists)."""
        last = len(token_ids) - 1
        for end in range(max(self._num_indexed, self.min_n - 1), last):
            for n in range(self.min_n, min(self.max_n, end + 1) + 1):
                self._next[tuple(token_ids[end - n + 1 : end + 1])] = end + 1
        self._num_indexed = max(self._num_indexed, last)

    def propose(self, token_ids: Sequence[int], num_draft: int) -> list[int]:
        """Up to ``num_draft`` tokens that followed the longest earlier match of the context's
        last n-gram; [] when it has none."""
        if num_draft <= 0 or len(token_ids) < self.min_n + 1:
            return []
        self._index(token_ids)
        for n in range(min(self.max_n, len(token_ids) - 1), self.min_n - 1, -1):
            start = self._next.get(tuple(token_ids[-n:]))
            if start is not None:
                return list(token_ids[start : start + num_draft])
        return []

"""When one request is done: max_new_tokens, EOS, stop sequences, the model's context size.

Checked in TGI's order (length, then EOS, then stop sequences). Stop sequences are matched
on the decoded generated text, so a stop string split across tokens is still found; the
stop text stays in the output, as TGI does. Must not import torch.
"""

from __future__ import annotations

from inference.types import FinishReason, SamplingParams


class StoppingCriteria:
    """Per-request stop state: call ``check`` once per generated token, in order."""

    def __init__(
        self,
        params: SamplingParams,
        eos_token_ids: set[int],
        max_total_tokens: int | None = None,
    ) -> None:
        self.max_new_tokens = params.max_new_tokens
        self.eos_token_ids = set() if params.ignore_eos else set(eos_token_ids)
        self.stop_sequences = [s for s in params.stop if s]
        self.max_total_tokens = max_total_tokens
        self._tail_len = max((len(s) for s in self.stop_sequences), default=0)
        self._tail = ""
        self.num_generated = 0

    def check(self, token_id: int, text: str, num_total_tokens: int = 0) -> FinishReason | None:
        """The reason to stop after ``token_id`` (whose text delta is ``text``), or None.

        ``num_total_tokens`` is prompt + generated so far; reaching ``max_total_tokens``
        (the model's context) ends the request with LENGTH.
        """
        self.num_generated += 1
        if self.num_generated >= self.max_new_tokens:
            return FinishReason.LENGTH
        if self.max_total_tokens is not None and num_total_tokens >= self.max_total_tokens:
            return FinishReason.LENGTH
        if token_id in self.eos_token_ids:
            return FinishReason.EOS_TOKEN
        if self.stop_sequences and text:
            window = self._tail + text
            if any(stop in window for stop in self.stop_sequences):
                return FinishReason.STOP_SEQUENCE
            self._tail = window[-(self._tail_len - 1) :] if self._tail_len > 1 else ""
        return None

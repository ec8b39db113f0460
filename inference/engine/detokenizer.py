"""Incremental, UTF-8-safe detokenisation of one request's generated tokens.

Text is released only once it decodes to complete characters: a token that ends in the
middle of a multi-byte character yields "" and the next token carries the whole character.
The algorithm is TGI's (decode a short window twice, emit the difference), so the cost per
token does not grow with the length of the output. Must not import torch.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

REPLACEMENT_CHAR = "\ufffd"
CONTEXT_TOKENS = 5  # prompt tokens kept so the first generated word gets its spacing right


class IncrementalDetokenizer:
    """Turns token ids, one at a time, into text deltas."""

    def __init__(
        self,
        tokenizer: Any,
        prompt_token_ids: list[int],
        skip_special_tokens: bool = True,
        special_ids: Collection[int] | None = None,
    ) -> None:
        """`special_ids`: the tokens that `skip_special_tokens` drops (default: the
        tokenizer's special tokens; the engine passes the set it computed once)."""
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        if special_ids is None:
            special_ids = getattr(tokenizer, "all_special_ids", ()) or ()
        self._special_ids = frozenset(special_ids)
        self._ids = list(prompt_token_ids[-CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._ids)

    def token_text(self, token_id: int) -> str:
        """The token on its own, special tokens spelled out (TGI's ``token.text`` for them)."""
        return self.tokenizer.decode([token_id], skip_special_tokens=False)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def add(self, token_id: int) -> str:
        """The text this token completes ("" while a character is still incomplete)."""
        if self.skip_special_tokens and token_id in self._special_ids:
            return ""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(REPLACEMENT_CHAR):
            delta = new_text[len(prefix_text) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is still held back when the request ends (may hold U+FFFD if cut mid-char)."""
        if self._read_offset >= len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]

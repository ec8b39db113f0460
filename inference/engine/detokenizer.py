"""Incremental, UTF-8-safe detokenisation of one request's generated tokens.

Text is released only once it decodes to complete characters: a token that ends in the
middle of a multi-byte character yields "" and the next token carries the whole character.
With a byte-level tokenizer (see `token_bytes`) each token's bytes come from a table and an
incremental UTF-8 decoder releases the complete characters: constant work per token. Other
tokenizers use TGI's algorithm (decode a short window twice, emit the difference), so the cost
per token does not grow with the length of the output either. Must not import torch.
"""

from __future__ import annotations

import codecs
from collections.abc import Collection, Sequence
from typing import Any

from inference.engine.token_bytes import backend_of

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
        token_bytes: Sequence[bytes] | None = None,
    ) -> None:
        """`special_ids`: the tokens that `skip_special_tokens` drops (default: the
        tokenizer's special tokens; the engine passes the set it computed once).
        `token_bytes`: every token's bytes (`token_bytes.byte_level_table`), when the
        tokenizer is byte-level; None decodes windows of tokens instead."""
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        if special_ids is None:
            special_ids = getattr(tokenizer, "all_special_ids", ()) or ()
        self._special_ids = frozenset(special_ids)
        self._token_bytes = token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._backend = backend_of(tokenizer)
        self._ids = list(prompt_token_ids[-CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._ids)
        if token_bytes is not None:
            # A prompt cut inside a character is completed by the answer's first token.
            self._utf8.decode(b"".join(self._bytes_of(t) for t in self._ids))

    def _bytes_of(self, token_id: int) -> bytes:
        table = self._token_bytes
        assert table is not None
        return table[token_id] if 0 <= token_id < len(table) else b""

    def _decode(self, ids: list[int]) -> str:
        if self._backend is not None:  # the same text, without transformers' Python layer
            return self._backend.decode(ids, skip_special_tokens=False)
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def add(self, token_id: int) -> str:
        """The text this token completes ("" while a character is still incomplete)."""
        if self.skip_special_tokens and token_id in self._special_ids:
            return ""
        if self._token_bytes is not None:
            return self._utf8.decode(self._bytes_of(token_id))
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
        if self._token_bytes is not None:
            return self._utf8.decode(b"", final=True)
        if self._read_offset >= len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]

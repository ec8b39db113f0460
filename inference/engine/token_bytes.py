"""Each token's bytes, for tokenizers whose decoder only maps characters back to bytes.

A byte-level BPE (GPT-2's scheme: SmolLM, Qwen, Llama 3) decodes a sequence to the UTF-8 of the
concatenated bytes of its tokens, so a table of every token's bytes, built once, lets the
detokenizer turn a token into text with one lookup and an incremental UTF-8 decoder instead
of decoding a window of tokens twice. Other decoders (SentencePiece's `▁`, byte fallback,
stripping) depend on their neighbours: `byte_level_table` returns None for them, and the
detokenizer keeps decoding windows. Must not import torch.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import Any

CHECKED_TOKENS = 512  # tokens decoded both ways when a table is built
_TABLES: weakref.WeakKeyDictionary[Any, list[bytes] | None] = weakref.WeakKeyDictionary()


@lru_cache(maxsize=1)
def _to_latin1() -> dict[int, int]:
    """GPT-2's printable stand-in character of every byte mapped back to that byte
    (`bytes_to_unicode` reversed, as a `str.translate` table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {c: b for b, c in zip(printable, chars, strict=True)}


def backend_of(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` behind a transformers fast tokenizer, if there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if hasattr(backend, "decode_batch") else None


def _is_byte_level(backend: Any) -> bool:
    """Its decoder is GPT-2's ByteLevel alone (not a sequence with stripping or fallbacks)."""
    return type(getattr(backend, "decoder", None)).__name__ == "ByteLevel"


def byte_level_table(tokenizer: Any) -> list[bytes] | None:
    """Every token id's bytes, or None when the tokenizer is not plain byte-level BPE or a
    token's bytes do not decode to what the tokenizer itself decodes it to. Built once per
    tokenizer (checking every token takes a fraction of a second)."""
    try:
        return _TABLES[tokenizer]
    except KeyError:
        pass
    except TypeError:  # not weakly referenceable: build it each time
        return _build_table(tokenizer)
    table = _TABLES[tokenizer] = _build_table(tokenizer)
    return table


def _build_table(tokenizer: Any) -> list[bytes] | None:
    backend = backend_of(tokenizer)
    if backend is None or not _is_byte_level(backend):
        return None
    to_latin1 = _to_latin1()
    added = backend.get_added_tokens_decoder()
    table: list[bytes] = []
    for token_id in range(backend.get_vocab_size(with_added_tokens=True)):
        piece = backend.id_to_token(token_id)
        if token_id in added:
            table.append(added[token_id].content.encode())  # added tokens are written as is
            continue
        if piece is None:
            return None
        try:
            table.append(piece.translate(to_latin1).encode("latin-1"))
        except UnicodeEncodeError:  # a character that stands for no byte
            return None
    # NOTE: a sample (and every added token), not the whole vocabulary: that takes seconds.
    checked = sorted({*range(0, len(table), max(1, len(table) // CHECKED_TOKENS)), *added})
    expected = backend.decode_batch([[i] for i in checked], skip_special_tokens=False)
    for token_id, text in zip(checked, expected, strict=True):
        if table[token_id].decode("utf-8", "replace") != text:
            return None
    return table

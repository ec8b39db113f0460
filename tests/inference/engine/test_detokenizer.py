"""Incremental detokenisation, with the bundled tokenizer only."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.engine.detokenizer import REPLACEMENT_CHAR, IncrementalDetokenizer
from tests.support.tiny_model import bundled_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


def decode_stream(tokenizer, ids, prompt=(), skip=True) -> list[str]:
    detok = IncrementalDetokenizer(tokenizer, list(prompt), skip_special_tokens=skip)
    pieces = [detok.add(i) for i in ids]
    pieces.append(detok.flush())
    return pieces


@pytest.mark.parametrize(
    "text", ["héllo wörld", "emoji 🤗🚀 done", "中文字符 and 日本語", "a  b\n\tc"]
)
def test_incremental_text_equals_full_decode_and_never_splits_a_character(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = decode_stream(tokenizer, ids, prompt=tokenizer.encode("Say:"))
    assert "".join(pieces) == tokenizer.decode(ids)
    assert not any(REPLACEMENT_CHAR in p for p in pieces)


def test_multibyte_character_is_released_whole(tokenizer):
    ids = tokenizer.encode("🤗", add_special_tokens=False)
    assert len(ids) > 1  # byte-level pieces
    pieces = decode_stream(tokenizer, ids)
    assert [p for p in pieces if p] == ["🤗"]


def test_special_tokens_are_skipped_or_kept(tokenizer):
    ids = [*tokenizer.encode("Hi", add_special_tokens=False), tokenizer.eos_token_id]
    assert "".join(decode_stream(tokenizer, ids, skip=True)) == "Hi"
    assert "".join(decode_stream(tokenizer, ids, skip=False)) == "Hi" + tokenizer.eos_token

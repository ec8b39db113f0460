"""The byte table of a byte-level tokenizer, and the detokenizer that reads it: the same text
as decoding windows of tokens, on tricky UTF-8 and byte-piece tokens."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from inference.engine.detokenizer import REPLACEMENT_CHAR, IncrementalDetokenizer
from inference.engine.token_bytes import byte_level_table
from tests.support.tiny_model import bundled_tokenizer_path

TRICKY = [
    "héllo wörld",
    "emoji 🤗🚀 done 👩‍👩‍👧",
    "中文字符 and 日本語 and 한국어",
    "a  b\n\tc\r\n",
    "math ∑∫√ ≠ ≤",
    "<|im_end|> is text here",
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


@pytest.fixture(scope="module")
def table(tokenizer):
    built = byte_level_table(tokenizer)
    assert built is not None
    return built


def stream(tokenizer, ids, prompt, table, skip=True) -> list[str]:
    detok = IncrementalDetokenizer(
        tokenizer, list(prompt), skip_special_tokens=skip, token_bytes=table
    )
    return [*(detok.add(i) for i in ids), detok.flush()]


def test_every_token_bytes_decode_to_the_tokenizers_own_text(tokenizer, table):
    backend = tokenizer.backend_tokenizer
    assert len(table) == backend.get_vocab_size(with_added_tokens=True)
    ids = list(range(len(table)))
    expected = backend.decode_batch([[i] for i in ids], skip_special_tokens=False)
    assert [table[i].decode("utf-8", "replace") for i in ids] == expected


def test_the_table_is_built_once_per_tokenizer(tokenizer, table):
    assert byte_level_table(tokenizer) is table


@pytest.mark.parametrize("text", TRICKY)
def test_byte_path_equals_the_window_path_and_full_decode(tokenizer, table, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    prompt = tokenizer.encode("Say:")
    fast = stream(tokenizer, ids, prompt, table)
    windows = stream(tokenizer, ids, prompt, None)
    assert "".join(fast) == "".join(windows) == tokenizer.decode(ids, skip_special_tokens=True)
    assert not any(REPLACEMENT_CHAR in piece for piece in fast)


def test_a_character_split_over_byte_tokens_comes_out_whole(tokenizer, table):
    ids = tokenizer.encode("🤗", add_special_tokens=False)
    assert len(ids) > 1  # byte pieces: each alone is not a character
    assert [p for p in stream(tokenizer, ids, [], table) if p] == ["🤗"]


def test_random_token_sequences_match_the_full_decode(tokenizer, table):
    """Random ids cut characters anywhere: the concatenation is still the full decode."""
    rng = random.Random(1234)
    special = set(tokenizer.all_special_ids)
    for _ in range(50):
        ids = [rng.randrange(len(table)) for _ in range(rng.randrange(1, 40))]
        ids = [i for i in ids if i not in special]
        expected = tokenizer.backend_tokenizer.decode(ids, skip_special_tokens=False)
        assert "".join(stream(tokenizer, ids, [], table)) == expected


def test_a_request_cut_inside_a_character_flushes_a_replacement(tokenizer, table):
    ids = tokenizer.encode("🤗", add_special_tokens=False)[:-1]
    pieces = stream(tokenizer, ids, [], table)
    assert pieces[:-1] == [""] * len(ids)
    assert REPLACEMENT_CHAR in pieces[-1]


def test_special_tokens_are_skipped_or_spelled_out(tokenizer, table):
    ids = [*tokenizer.encode("Hi", add_special_tokens=False), tokenizer.eos_token_id]
    assert "".join(stream(tokenizer, ids, [], table, skip=True)) == "Hi"
    assert "".join(stream(tokenizer, ids, [], table, skip=False)) == "Hi" + tokenizer.eos_token


def test_other_decoders_get_no_table():
    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "##s": 3}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece()
    wordpiece = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    assert byte_level_table(wordpiece) is None
    pieces = stream(wordpiece, [1, 2, 3], [], None)
    assert "".join(pieces).split() == ["hello", "worlds"]

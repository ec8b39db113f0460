"""Stopping criteria and incremental detokenisation, with the bundled tokenizer only."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.detokenizer import REPLACEMENT_CHAR, IncrementalDetokenizer
from inference.stopping import StoppingCriteria
from inference.types import FinishReason, SamplingParams
from tests.support.tiny_model import bundled_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


def test_length_stops_at_max_new_tokens():
    stop = StoppingCriteria(SamplingParams(max_new_tokens=3), {2})
    assert [stop.check(5, "a") for _ in range(3)] == [None, None, FinishReason.LENGTH]


def test_eos_stops_unless_ignored():
    assert StoppingCriteria(SamplingParams(), {2}).check(2, "") == FinishReason.EOS_TOKEN
    assert StoppingCriteria(SamplingParams(ignore_eos=True), {2}).check(2, "") is None


def test_length_wins_over_eos_as_in_tgi():
    stop = StoppingCriteria(SamplingParams(max_new_tokens=1), {2})
    assert stop.check(2, "") == FinishReason.LENGTH


def test_stop_sequence_split_across_tokens_is_found():
    stop = StoppingCriteria(SamplingParams(stop=("END",)), set())
    assert stop.check(1, "the E") is None
    assert stop.check(1, "N") is None
    assert stop.check(1, "D of") == FinishReason.STOP_SEQUENCE


def test_stop_sequence_inside_one_token_is_found():
    stop = StoppingCriteria(SamplingParams(stop=("\n\n", "User:")), set())
    assert stop.check(1, "Hi") is None
    assert stop.check(1, "!\n\nMore") == FinishReason.STOP_SEQUENCE


def test_context_limit_ends_with_length():
    stop = StoppingCriteria(SamplingParams(max_new_tokens=100), set(), max_total_tokens=10)
    assert stop.check(1, "a", num_total_tokens=9) is None
    assert stop.check(1, "a", num_total_tokens=10) == FinishReason.LENGTH


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

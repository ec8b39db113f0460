"""Stopping criteria: length, EOS, stop sequences and the context limit, without a model."""

from __future__ import annotations

from inference.engine.stopping import StoppingCriteria
from inference.types import FinishReason, SamplingParams


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

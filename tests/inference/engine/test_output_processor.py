"""The output processor: sampled tokens -> events (text, stops, prefill, totals), no model."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.engine.output_processor import OutputProcessor, SampledToken
from inference.types import FinishReason, Request, SamplingParams
from tests.support.tiny_model import bundled_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path())


def token(token_id: int, logprob: float = -0.5) -> SampledToken:
    return SampledToken(token_id, logprob, [], [])


def test_text_events_then_eos_ends_with_totals(tokenizer):
    outputs = OutputProcessor(tokenizer, {tokenizer.eos_token_id}, max_total_tokens=100)
    prompt = tokenizer.encode("Say:")
    state = outputs.new_state(Request("r", prompt, SamplingParams(max_new_tokens=10)), seed=7)
    events = [
        outputs.process(state, token(t), len(prompt) + i + 1)
        for i, t in enumerate([*tokenizer.encode(" hi", add_special_tokens=False)])
    ]
    last = outputs.process(state, token(tokenizer.eos_token_id), len(prompt) + len(events) + 1)
    assert "".join(e.text for e in events) == " hi" and not any(e.is_final for e in events)
    assert last.finish_reason == FinishReason.EOS_TOKEN
    assert last.text == "" and last.token.special
    assert last.token.text == tokenizer.eos_token
    assert (last.num_prompt_tokens, last.num_generated_tokens, last.seed) == (
        len(prompt),
        len(events) + 1,
        7,
    )


def test_prompt_tokens_come_once_with_their_logprobs(tokenizer):
    outputs = OutputProcessor(tokenizer, set(), max_total_tokens=100)
    prompt = tokenizer.encode("a b c")
    params = SamplingParams(max_new_tokens=3, decoder_input_details=True)
    state = outputs.new_state(Request("r", prompt, params), seed=None)
    outputs.add_prompt_logprobs(state, 1, [-1.0] * (len(prompt) - 1))
    first = outputs.process(state, token(prompt[0]), len(prompt) + 1)
    second = outputs.process(state, token(prompt[0]), len(prompt) + 2)
    assert [t.id for t in first.prefill] == prompt
    assert [t.logprob for t in first.prefill] == [None] + [-1.0] * (len(prompt) - 1)
    assert second.prefill is None


def test_an_end_of_sequence_id_is_special_even_when_the_tokenizer_says_not(tokenizer):
    plain = tokenizer.encode("x", add_special_tokens=False)[0]
    outputs = OutputProcessor(tokenizer, {plain}, max_total_tokens=100)
    assert outputs.is_special(plain) and outputs.token_info(plain, None).special
    assert outputs.is_special(tokenizer.eos_token_id)
    assert not outputs.is_special(plain + 1)


def half_a_character(tokenizer) -> list[int]:
    """Tokens for " ma" and the first bytes of an emoji (its bytes span two tokens)."""
    ids = tokenizer.encode(" ma🤗", add_special_tokens=False)[:-1]
    assert tokenizer.decode(ids) == " ma\ufffd"
    return ids


def test_an_answer_that_ends_inside_a_character_streams_what_it_says(tokenizer):
    """The model's end-of-sequence right after half of a character: the half is dropped, so a
    client that joins the streamed token texts gets the same text as the final one."""
    outputs = OutputProcessor(tokenizer, {tokenizer.eos_token_id}, max_total_tokens=100)
    prompt = tokenizer.encode("Say:")
    state = outputs.new_state(Request("r", prompt, SamplingParams(max_new_tokens=10)), seed=None)
    half = half_a_character(tokenizer)
    ids = [*half, tokenizer.eos_token_id]
    events = [outputs.process(state, token(t), len(prompt) + i + 1) for i, t in enumerate(ids)]
    streamed = "".join(e.token.text for e in events if not e.token.special)
    assert "".join(e.text for e in events) == streamed == " ma"
    assert events[-1].finish_reason == FinishReason.EOS_TOKEN


def test_an_answer_cut_by_its_length_inside_a_character_shows_the_replacement(tokenizer):
    outputs = OutputProcessor(tokenizer, {tokenizer.eos_token_id}, max_total_tokens=100)
    prompt = tokenizer.encode("Say:")
    half = half_a_character(tokenizer)
    params = SamplingParams(max_new_tokens=len(half))
    state = outputs.new_state(Request("r", prompt, params), seed=None)
    events = [outputs.process(state, token(t), len(prompt) + i + 1) for i, t in enumerate(half)]
    assert events[-1].finish_reason == FinishReason.LENGTH
    assert "".join(e.token.text for e in events) == "".join(e.text for e in events) == " ma\ufffd"

"""The validator alone (no server): how wire parameters become engine sampling params."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.api.schemas import GenerateParameters, GenerateRequest
from inference.api.validation import DEFAULT_GENERATION_LENGTH, Validator
from inference.config import EngineConfig
from tests.support.tiny_model import bundled_tokenizer_path

LIMITS = EngineConfig(max_input_tokens=2047, max_total_tokens=2048, max_batch_total_tokens=8192)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(AutoTokenizer.from_pretrained(bundled_tokenizer_path()), LIMITS)


def check(validator: Validator, inputs: str = "Hello there", **parameters):
    return validator.validate(inputs, GenerateParameters(**parameters))


def test_absent_parameters_mean_sampling_present_ones_mean_greedy(validator):
    absent = GenerateRequest.model_validate({"inputs": "Hi"})
    assert validator.validate("Hi", absent.parameters).params.do_sample
    present = GenerateRequest.model_validate({"inputs": "Hi", "parameters": {}})
    assert not validator.validate("Hi", present.parameters).params.do_sample


def test_a_warper_turns_sampling_on_as_in_tgi(validator):
    assert check(validator, temperature=0.7).params.do_sample
    assert check(validator, top_k=5).params.do_sample
    assert check(validator, top_p=0.9).params.do_sample
    assert not check(validator, temperature=1.0).params.do_sample


def test_temperature_zero_is_greedy_even_with_do_sample(validator):
    params = check(validator, do_sample=True, temperature=0).params
    assert params.is_greedy and not params.do_sample


def test_default_max_new_tokens_fills_the_context_up_to_1024(validator):
    assert check(validator).params.max_new_tokens == DEFAULT_GENERATION_LENGTH
    long_input = " ".join(["word"] * 1500)
    valid = check(validator, long_input)
    assert valid.params.max_new_tokens == LIMITS.max_total_tokens - valid.input_length


def test_truncate_keeps_the_last_tokens(validator):
    full = check(validator, "one two three four five").prompt_token_ids
    assert check(validator, "one two three four five", truncate=2).prompt_token_ids == full[-2:]


def test_a_seed_is_always_chosen_and_kept_when_given(validator):
    assert check(validator, do_sample=True).params.seed is not None
    assert check(validator, do_sample=True, seed=7).params.seed == 7


def test_details_follow_decoder_input_details(validator):
    valid = check(validator, decoder_input_details=True)
    assert valid.details and valid.decoder_input_details and valid.params.decoder_input_details


def test_stop_sequences_and_penalties_reach_the_engine(validator):
    params = check(
        validator, stop=["\n"], repetition_penalty=1.2, frequency_penalty=0.5, top_n_tokens=2
    ).params
    assert params.stop == ("\n",)
    assert (params.repetition_penalty, params.frequency_penalty) == (1.2, 0.5)
    assert params.top_n_tokens == 2

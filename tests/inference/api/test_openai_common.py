"""What both OpenAI generation routes share, without a server: parameters, finish reasons,
usage and the in-stream error event."""

from __future__ import annotations

import json

import pytest

from inference.api.errors import VALIDATION_PREFIX, ValidationFailed
from inference.api.generation import Generated
from inference.api.routes.openai_common import (
    error_event,
    openai_finish_reason,
    sampling_parameters,
    usage_of,
)
from inference.api.validation import ValidRequest
from inference.types import FinishReason, SamplingParams

NO_KNOBS = {
    "max_tokens": None,
    "temperature": None,
    "top_p": None,
    "seed": None,
    "stop": None,
    "frequency_penalty": None,
}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (FinishReason.LENGTH, "length"),
        (FinishReason.EOS_TOKEN, "stop"),
        (FinishReason.STOP_SEQUENCE, "stop"),
        ("eos_token", "stop"),
    ],
)
def test_finish_reasons_as_openai_spells_them(reason, expected):
    assert openai_finish_reason(reason) == expected


def test_temperature_zero_is_greedy_and_anything_else_samples():
    greedy = sampling_parameters(**{**NO_KNOBS, "temperature": 0.0})
    assert not greedy.do_sample and greedy.temperature is None
    sampled = sampling_parameters(**{**NO_KNOBS, "temperature": 0.7})
    assert sampled.do_sample and sampled.temperature == 0.7
    assert sampling_parameters(**NO_KNOBS).do_sample


def test_a_stop_string_becomes_a_list_and_details_are_always_on():
    params = sampling_parameters(**{**NO_KNOBS, "stop": "END", "max_tokens": 7})
    assert params.stop == ["END"] and params.max_new_tokens == 7 and params.details
    assert sampling_parameters(**{**NO_KNOBS, "stop": ["a", "b"]}).stop == ["a", "b"]


def test_usage_falls_back_to_the_validated_prompt_length():
    valid = ValidRequest(inputs="abc", prompt_token_ids=[1, 2, 3], params=SamplingParams())
    usage = usage_of(Generated(generated_tokens=4), valid)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 4, 7)
    counted = usage_of(Generated(generated_tokens=4, input_length=5), valid)
    assert counted.prompt_tokens == 5 and counted.total_tokens == 9


def test_error_event_is_one_sse_frame_with_message_and_status():
    event = error_event(ValidationFailed("nope"))
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    body = json.loads(event[len(b"data: ") :])
    assert body == {"error": {"message": VALIDATION_PREFIX + "nope", "http_status_code": 422}}

"""Validation and error shapes: TGI's messages, 422/429, malformed bodies."""

from __future__ import annotations

import time

import httpx
import pytest

from inference.api import validation as v
from inference.api.errors import MALFORMED_BODY, OVERLOADED, VALIDATION_PREFIX
from inference.types import INVALID_REGEX
from tests.inference.api.conftest import LIMITS, LONG_ANSWER

MAX_INPUT = LIMITS.max_input_tokens
MAX_TOTAL = LIMITS.max_total_tokens

CASES = [
    ({"temperature": -0.5}, v.TEMPERATURE),
    ({"repetition_penalty": 0}, v.REPETITION_PENALTY),
    ({"frequency_penalty": 3.0}, v.FREQUENCY_PENALTY),
    ({"top_p": 1.5}, v.TOP_P),
    ({"top_p": 0}, v.TOP_P),
    ({"typical_p": 0}, v.TYPICAL_P),
    ({"top_k": 0}, v.TOP_K),
    ({"max_new_tokens": 0}, v.NEGATIVE_MAX_NEW_TOKENS),
    ({"max_new_tokens": -3}, v.NEGATIVE_MAX_NEW_TOKENS),
    ({"max_new_tokens": MAX_TOTAL}, v.MAX_TOTAL_TOKENS.format(MAX_TOTAL, 1, MAX_TOTAL)),
    ({"best_of": 3, "do_sample": True}, v.BEST_OF.format(LIMITS.max_best_of, 3)),
    ({"best_of": 2}, v.BEST_OF_SAMPLING),
    ({"best_of": 2, "do_sample": True, "seed": 1}, v.BEST_OF_SEED),
    ({"stop": ["a", "b", "c"]}, v.STOP_SEQUENCE.format(LIMITS.max_stop_sequences, 3)),
    ({"top_n_tokens": 9}, v.TOP_N_TOKENS.format(LIMITS.max_top_n_tokens, 9)),
    ({"top_n_tokens": -1}, v.TOP_N_TOKENS.format(LIMITS.max_top_n_tokens, -1)),
    ({"truncate": 0}, v.TRUNCATE.format(MAX_INPUT, 0)),
    ({"truncate": MAX_INPUT + 1}, v.TRUNCATE.format(MAX_INPUT, MAX_INPUT + 1)),
    ({"watermark": True}, v.WATERMARK),
    (
        {"grammar": {"type": "regex", "value": "a[b"}},
        INVALID_REGEX.format('"a[b": unclosed character class'),
    ),
    ({"adapter_id": "some/lora"}, v.ADAPTER_ID),
]


def post(url: str, path: str = "/generate", **kwargs) -> httpx.Response:
    return httpx.post(url + path, timeout=120, **kwargs)


@pytest.mark.parametrize(("parameters", "message"), CASES)
def test_each_rule_answers_422_with_tgi_message(url, parameters, message):
    response = post(url, json={"inputs": "Hello", "parameters": parameters})
    assert response.status_code == 422
    assert response.json() == {"error": VALIDATION_PREFIX + message, "error_type": "validation"}


def test_empty_inputs(url):
    response = post(url, json={"inputs": "", "parameters": {}})
    assert response.json()["error"] == VALIDATION_PREFIX + v.EMPTY_INPUT


def test_inputs_longer_than_max_input_tokens(url):
    words = " ".join(["word"] * (MAX_INPUT + 10))
    response = post(url, json={"inputs": words, "parameters": {"max_new_tokens": 1}})
    assert response.status_code == 422
    error = response.json()["error"]
    n = int(error.rsplit(" ", 1)[1])
    assert n > MAX_INPUT
    assert error == VALIDATION_PREFIX + v.INPUT_LENGTH.format(MAX_INPUT, n)


def test_streaming_rejects_best_of_and_prefill_details(url):
    best_of = {"inputs": "Hi", "parameters": {"best_of": 2, "do_sample": True}}
    response = post(url, "/generate_stream", json=best_of)
    assert response.json()["error"] == VALIDATION_PREFIX + v.BEST_OF_STREAM
    prefill = {"inputs": "Hi", "parameters": {"decoder_input_details": True}}
    response = post(url, "/generate_stream", json=prefill)
    assert response.json()["error"] == VALIDATION_PREFIX + v.PREFILL_DETAILS_STREAM


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"inputs": "Hi", "parameters": ',
        b"[1, 2]",
        b'{"parameters": {}}',
        b'{"inputs": 12}',
        b'{"inputs": "Hi", "parameters": {"temperature": "hot"}}',
        b'{"inputs": "Hi", "parameters": {"max_new_tokens": 2.5}}',
        # no coercion, as TGI's serde reads JSON: each of these was once served with a 200
        b'{"inputs": "Hi", "parameters": {"watermark": 0}}',
        b'{"inputs": "Hi", "parameters": {"top_p": false}}',
        b'{"inputs": "Hi", "parameters": {"temperature": "0.5"}}',
        b'{"inputs": "Hi", "parameters": {"max_new_tokens": "3"}}',
    ],
)
@pytest.mark.parametrize(
    "path", ["/generate", "/generate_stream", "/", "/v1/chat/completions", "/tokenize"]
)
def test_malformed_bodies_get_422_in_error_shape(url, body, path):
    response = post(url, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    payload = response.json()
    assert set(payload) == {"error", "error_type"}
    assert payload["error_type"] == "validation"
    assert payload["error"]


def test_missing_field_is_named(url):
    headers = {"Content-Type": "application/json"}
    response = post(url, content=b'{"parameters": {}}', headers=headers)
    assert response.json()["error"] == MALFORMED_BODY.format("inputs: Field required")


def test_unknown_route_and_method_keep_the_error_shape(url):
    assert set(httpx.get(url + "/nope").json()) == {"error", "error_type"}
    wrong_method = httpx.get(url + "/generate")
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"error", "error_type"}


def test_429_when_max_concurrent_requests_are_in_flight(server):
    """Hold `max_concurrent_requests` streams open; the next request is refused at once."""
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": LONG_ANSWER}}
    with httpx.Client(timeout=120) as client:
        streams = []
        try:
            for _ in range(LIMITS.max_concurrent_requests):
                request = client.build_request("POST", server.url + "/generate_stream", json=body)
                streams.append(client.send(request, stream=True))  # headers: admitted
            assert server.state.limiter.in_flight == LIMITS.max_concurrent_requests
            refused = httpx.post(server.url + "/generate", json=body, timeout=30)
            refused_stream = httpx.post(server.url + "/generate_stream", json=body, timeout=30)
        finally:
            for response in streams:
                response.close()
    assert refused.status_code == 429
    assert refused.json() == {"error": OVERLOADED, "error_type": "overloaded"}
    assert refused_stream.status_code == 429
    deadline = time.monotonic() + 30
    while server.state.limiter.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.state.limiter.in_flight == 0
    after = {"inputs": "Hi", "parameters": {"max_new_tokens": 2}}
    assert httpx.post(server.url + "/generate", json=after, timeout=60).status_code == 200


def test_an_integral_number_is_an_integer_as_json_schema_says(url):
    """The document's `integer` admits `2.0` (JSON Schema's rule), so the server does too."""
    body = {"inputs": "Hi", "parameters": {"max_new_tokens": 2.0, "top_k": 5.0}}
    response = post(url, json=body)
    assert response.status_code == 200
    assert response.json()["generated_text"] is not None

"""`ignore_eos` (an extension, vLLM's name) on the three generation routes: a model whose every
token is an end token stops after one token, unless the request asks to ignore them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest

from inference.api.docs import OPENAPI_URL
from inference.engine.async_engine import AsyncEngine
from tests.inference.api.conftest import LIMITS, serve, stream_lines
from tests.inference.live_server import LiveServer
from tests.support.tiny_model import build_tiny_llama

NEW_TOKENS = 6


@pytest.fixture(scope="module")
def all_eos_url() -> Iterator[str]:
    """A server whose model ends a sequence on whichever token it picks."""
    tiny = build_tiny_llama(max_position_embeddings=LIMITS.max_total_tokens)
    every_token = set(range(tiny.model.config.vocab_size))
    live: LiveServer = serve(
        AsyncEngine(dataclasses.replace(tiny, eos_token_ids=every_token), LIMITS)
    )
    yield live.url
    live.stop()


@pytest.mark.parametrize("ignore_eos", [False, True])
def test_generate_runs_to_max_new_tokens_only_when_ignoring_eos(all_eos_url, ignore_eos):
    parameters = {"max_new_tokens": NEW_TOKENS, "details": True, "ignore_eos": ignore_eos}
    body = {"inputs": "Once upon a time", "parameters": parameters}
    details = httpx.post(all_eos_url + "/generate", json=body, timeout=60).json()["details"]
    expected = (NEW_TOKENS, "length") if ignore_eos else (1, "eos_token")
    assert (details["generated_tokens"], details["finish_reason"]) == expected


@pytest.mark.parametrize("ignore_eos", [False, True])
def test_chat_completions_stream_honours_ignore_eos(all_eos_url, ignore_eos):
    body = {
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": NEW_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": ignore_eos,
    }
    frames = stream_lines(all_eos_url, "/v1/chat/completions", body)
    chunks = [json.loads(f[len("data: ") :]) for f in frames[:-1]]
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert usage["completion_tokens"] == (NEW_TOKENS if ignore_eos else 1)
    assert reasons[-1] == ("length" if ignore_eos else "stop")


def test_completions_honour_ignore_eos(all_eos_url):
    body = {"prompt": ["Once", "Twice"], "max_tokens": NEW_TOKENS, "temperature": 0}
    plain = httpx.post(all_eos_url + "/v1/completions", json=body, timeout=60).json()
    ignoring = httpx.post(
        all_eos_url + "/v1/completions", json={**body, "ignore_eos": True}, timeout=60
    ).json()
    assert [c["finish_reason"] for c in plain["choices"]] == ["stop", "stop"]
    assert [c["finish_reason"] for c in ignoring["choices"]] == ["length", "length"]
    assert ignoring["usage"]["completion_tokens"] == 2 * NEW_TOKENS


def test_the_document_lists_ignore_eos_as_a_boolean(all_eos_url):
    schemas = httpx.get(all_eos_url + OPENAPI_URL).json()["components"]["schemas"]
    for name in ("GenerateParameters", "ChatRequest", "CompletionRequest"):
        field = schemas[name]["properties"]["ignore_eos"]
        assert field["type"] == "boolean" and field["default"] is False


def test_a_non_boolean_ignore_eos_is_refused(all_eos_url):
    body = {"inputs": "Hi", "parameters": {"max_new_tokens": 2, "ignore_eos": 1}}
    assert httpx.post(all_eos_url + "/generate", json=body, timeout=60).status_code == 422

"""`/v1/chat/completions` at the wire level: shapes, streams, `[DONE]`, usage, logprobs, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from inference.api import validation as v
from inference.api.errors import VALIDATION_PREFIX
from inference.api.tools import NO_TOOLS_REQUIRED
from inference.types import INVALID_REGEX
from tests.inference.api.conftest import stream_lines

MESSAGES = [{"role": "user", "content": "What is Deep Learning?"}]


def chat(url: str, **body) -> httpx.Response:
    body = {"messages": MESSAGES, **body}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=120)


def test_chat_completion_shape(url):
    body = chat(url, max_tokens=5, temperature=0, model="my-model").json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "my-model"
    assert body["id"] and isinstance(body["created"], int) and body["system_fingerprint"]
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert choice["logprobs"] is None
    assert choice["finish_reason"] in ("length", "stop")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_model_defaults_to_the_served_model_id(url):
    assert chat(url, max_tokens=2).json()["model"] == "tiny-random-llama"


def test_content_parts_are_joined(url):
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is Deep Learning?"}]}]
    plain = chat(url, max_tokens=4, temperature=0).json()
    joined = httpx.post(
        url + "/v1/chat/completions",
        json={"messages": parts, "max_tokens": 4, "temperature": 0},
        timeout=120,
    ).json()
    assert joined["choices"][0]["message"] == plain["choices"][0]["message"]


def test_chat_stream_ends_with_done_and_usage_when_asked(url):
    body = {
        "messages": MESSAGES,
        "max_tokens": 5,
        "stream": True,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }
    frames = stream_lines(url, "/v1/chat/completions", body)
    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(f[len("data: ") :]) for f in frames[:-1]]
    *tokens, usage_chunk = chunks
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == len(tokens)
    for chunk in tokens:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["usage"] is None
        assert chunk["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in tokens[:-1]] == [None] * (len(tokens) - 1)
    assert tokens[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"]["content"] for c in tokens)
    assert text == chat(url, max_tokens=5, temperature=0).json()["choices"][0]["message"]["content"]


def test_chat_stream_without_usage_option_has_no_usage_chunk(url):
    body = {"messages": MESSAGES, "max_tokens": 3, "stream": True}
    frames = stream_lines(url, "/v1/chat/completions", body)
    chunks = [json.loads(f[len("data: ") :]) for f in frames[:-1]]
    assert all(c["choices"] for c in chunks)


def test_logprobs_and_top_logprobs(url):
    body = chat(url, max_tokens=4, logprobs=True, top_logprobs=2).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"]
    assert all(len(c["top_logprobs"]) == 2 for c in content)
    assert all(isinstance(c["logprob"], float) for c in content)


def test_stop_as_a_string_and_max_completion_tokens(url):
    reference = chat(url, max_completion_tokens=10, temperature=0).json()
    assert reference["usage"]["completion_tokens"] <= 10
    words = reference["choices"][0]["message"]["content"].split()
    if len(words) > 2:
        stopped = chat(url, max_tokens=10, temperature=0, stop=words[1]).json()
        assert stopped["choices"][0]["finish_reason"] == "stop"
        assert stopped["choices"][0]["message"]["content"].endswith(words[1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"n": 2}, v.N_CHOICES),
        (
            {"tool_choice": {"function": {"name": "g"}}},
            NO_TOOLS_REQUIRED.format('"g"'),
        ),
        (
            {"response_format": {"type": "regex", "value": "("}},
            INVALID_REGEX.format('"(": unclosed group'),
        ),
        ({"presence_penalty": 5}, v.PRESENCE_PENALTY),
        ({"top_logprobs": 9, "logprobs": True}, v.TOP_N_TOKENS.format(3, 9)),
        ({"temperature": -1}, v.TEMPERATURE),
    ],
)
def test_chat_validation(url, body, message):
    response = chat(url, **body)
    assert response.status_code == 422
    assert response.json() == {"error": VALIDATION_PREFIX + message, "error_type": "validation"}


def test_images_are_refused(url):
    messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}
    ]
    response = httpx.post(url + "/v1/chat/completions", json={"messages": messages})
    assert response.json()["error"] == VALIDATION_PREFIX + v.IMAGE_CONTENT

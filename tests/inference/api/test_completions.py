"""`/v1/completions` at the wire level: one or several prompts, interleaved streams, refusals."""

from __future__ import annotations

import json

import httpx

from inference.api import validation as v
from inference.api.errors import VALIDATION_PREFIX
from tests.inference.api.conftest import stream_lines


def test_completions_with_one_and_several_prompts(url):
    one = httpx.post(
        url + "/v1/completions", json={"prompt": "Once", "max_tokens": 3, "temperature": 0}
    ).json()
    assert one["object"] == "text_completion"
    assert one["choices"][0]["index"] == 0
    several = httpx.post(
        url + "/v1/completions",
        json={"prompt": ["Once", "Twice"], "max_tokens": 3, "temperature": 0},
        timeout=120,
    ).json()
    assert [c["index"] for c in several["choices"]] == [0, 1]
    assert several["choices"][0]["text"] == one["choices"][0]["text"]


def test_completions_stream_interleaves_prompts_then_done(url):
    body = {"prompt": ["Once", "Twice"], "max_tokens": 3, "stream": True, "temperature": 0}
    frames = stream_lines(url, "/v1/completions", body)
    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(f[len("data: ") :]) for f in frames[:-1]]
    finals = [c for c in chunks if c["choices"][0]["finish_reason"]]
    assert sorted(c["choices"][0]["index"] for c in finals) == [0, 1]
    assert all(c["usage"] for c in finals)


def test_completions_refusals(url):
    suffix = httpx.post(url + "/v1/completions", json={"prompt": "a", "suffix": "b"})
    assert suffix.json()["error"] == VALIDATION_PREFIX + v.SUFFIX
    too_many = httpx.post(url + "/v1/completions", json={"prompt": ["a"] * 5})
    assert too_many.json()["error"] == VALIDATION_PREFIX + v.CLIENT_BATCH_SIZE.format(4)

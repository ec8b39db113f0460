"""chatui.endpoints.tgi against a fake TGI on a real socket: streaming, framing, stop strings,
authorization."""

from __future__ import annotations

import pytest

from chatui.endpoints import StreamResult
from tests.chatui.endpoints.helpers import CHATML_PROMPT, collect, model, openai, run, tgi
from tests.chatui.fake_endpoints import Script, Token


async def test_tgi_streams_tokens_then_one_result(fake_tgi, client) -> None:
    server = fake_tgi(Script(tokens=["Hel", "lo", " you"]))
    chunks, result = await collect(run(model(tgi(server)), client))
    assert chunks == ["Hel", "lo", " you"]
    assert result == StreamResult("Hello you", "eos_token", False, 4)
    (request,) = server.generation_requests
    assert request.path == "/"
    assert request.body == {
        "inputs": CHATML_PROMPT,
        "parameters": {
            "stop": ["<|im_end|>"],
            "max_new_tokens": 64,
            "return_full_text": False,
            "details": True,
        },
        "stream": True,
    }


async def test_the_prompts_token_count_comes_from_the_details(fake_tgi, fake_openai, client):
    _, result = await collect(run(model(tgi(fake_tgi(Script(tokens=["Hi"])))), client))
    assert result.prompt_tokens == 7  # TGI's `details.input_length`
    _, result = await collect(run(model(openai(fake_openai(Script(tokens=["Hi"])))), client))
    assert result.prompt_tokens == 7  # OpenAI's `usage.prompt_tokens`


async def test_tgi_framing_without_space_after_data(fake_tgi, client) -> None:
    server = fake_tgi(Script(tokens=["a", "b"]), sse_space=False)
    chunks, result = await collect(run(model(tgi(server)), client))
    assert chunks == ["a", "b"] and result.text == "ab"


async def test_special_tokens_are_skipped(fake_tgi, client) -> None:
    script = Script(tokens=["One", Token("<|special|>", 7, special=True), " two"])
    server = fake_tgi(script)
    chunks, result = await collect(run(model(tgi(server)), client))
    assert chunks == ["One", " two"]
    assert result.text == "One two"


@pytest.mark.parametrize("stop_token", ["\nUser:", "<|im_end|>"])
async def test_trailing_stop_string_is_stripped(fake_tgi, client, stop_token) -> None:
    server = fake_tgi(Script(tokens=["Sure", ".", stop_token], finish_reason="stop_sequence"))
    m = model(tgi(server), parameters={"stop": ["\nUser:", "<|im_end|>"]})
    chunks, result = await collect(run(m, client))
    assert chunks == ["Sure", "."]
    assert result.text == "Sure."
    assert result.finish_reason == "stop_sequence" and result.interrupted is False


async def test_length_finish_is_interrupted(fake_tgi, client) -> None:
    server = fake_tgi(Script(tokens=["A", " long", " answer"], finish_reason="length"))
    _, result = await collect(run(model(tgi(server)), client))
    assert result == StreamResult("A long answer", "length", True, 3)


async def test_generate_stream_url_and_authorization(fake_tgi, client) -> None:
    basic, bearer = fake_tgi(), fake_tgi()
    await collect(
        run(model(tgi(basic.url + "/generate_stream", authorization="Basic eA==")), client)
    )
    await collect(run(model(tgi(bearer, accessToken="hf_secret")), client))
    assert basic.generation_requests[0].path == "/generate_stream"
    assert basic.generation_requests[0].headers["authorization"] == "Basic eA=="
    assert bearer.generation_requests[0].headers["authorization"] == "Bearer hf_secret"
    assert [r.headers.get("authorization") for r in bearer.requests] == ["Bearer hf_secret"] * 2

"""chatui.endpoints.openai against a fake OpenAI-compatible server on a real socket."""

from __future__ import annotations

import random

import pytest

from chatui.endpoints import EndpointError, StreamResult
from chatui.prompting import ChatMessage
from tests.chatui.endpoints.helpers import CHATML_PROMPT, collect, model, openai, run, tgi
from tests.chatui.fake_endpoints import OPENAI_ERROR, Script


async def test_openai_chat_completions(fake_openai, client) -> None:
    server = fake_openai(Script(tokens=["Hi", " there"]))
    m = model(
        openai(
            server,
            apiKey="sk-abc",
            defaultHeaders={"X-Team": "acme"},
            defaultQuery={"api-version": "1"},
            extraBody={"top_k": 5},
        ),
        parameters={"temperature": 0.5, "max_new_tokens": 32, "stop": ["<|im_end|>"], "top_k": 9},
    )
    chunks, result = await collect(run(m, client))
    assert chunks == ["Hi", " there"]
    assert result == StreamResult("Hi there", "stop", False, 2)
    (request,) = server.generation_requests
    assert request.path == "/v1/chat/completions"
    assert request.query == {"api-version": "1"}
    assert request.headers["authorization"] == "Bearer sk-abc"
    assert request.headers["x-team"] == "acme"
    assert request.body == {
        "model": "test/model",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello?"},
        ],
        "temperature": 0.5,
        "max_tokens": 32,
        "stop": ["<|im_end|>"],
        "top_k": 5,
    }


async def test_openai_completions_sends_a_built_prompt(fake_openai, client) -> None:
    server = fake_openai(Script(tokens=["Done", "."], finish_reason="length"), usage=False)
    m = model(openai(server, completion="completions"))
    chunks, result = await collect(run(m, client))
    assert chunks == ["Done", "."]
    assert result == StreamResult("Done.", "length", True, None)
    (request,) = server.generation_requests
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == CHATML_PROMPT
    assert "messages" not in request.body


async def test_openai_truncates_old_messages_to_the_budget(fake_openai, client) -> None:
    server = fake_openai()
    history = [
        ChatMessage("user", "old " * 200),
        ChatMessage("assistant", "reply " * 200),
        ChatMessage("user", "new question"),
    ]
    m = model(openai(server), parameters={"truncate": 50})
    await collect(run(m, client, messages=history))
    sent = server.generation_requests[0].body["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "new question"},
    ]


async def test_openai_errors(fake_openai, client) -> None:
    failing = fake_openai(Script(fail="status", status=503))
    with pytest.raises(EndpointError) as info:
        await collect(run(model(openai(failing)), client))
    assert info.value.status == 503 and info.value.retryable is True
    assert OPENAI_ERROR in info.value.message

    mid = fake_openai(Script(tokens=["a", "b"], fail="error_event", fail_after=1))
    chunks = []
    with pytest.raises(EndpointError) as info:
        async for item in run(model(openai(mid)), client):
            chunks.append(item.text)
    assert chunks == ["a"] and info.value.message == OPENAI_ERROR


async def test_openai_failover_to_tgi(fake_openai, fake_tgi, client) -> None:
    broken = fake_openai(Script(fail="status", status=500))
    live = fake_tgi(Script(tokens=["tgi"]))
    m = model(openai(broken, weight=1000), tgi(live))
    _, result = await collect(run(m, client, rng=random.Random(0)))
    assert result.text == "tgi"

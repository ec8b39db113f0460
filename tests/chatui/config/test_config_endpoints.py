"""chatui.endpoints against fake TGI and OpenAI servers on real sockets."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.endpoints import (
    ERR_CONNECT,
    ERR_CONNECTION_LOST,
    ERR_NO_ENDPOINTS,
    ERR_TIMEOUT,
    EndpointError,
    EndpointHealth,
    StreamChunk,
    StreamResult,
    backend_for,
    endpoint_status,
    generate_text,
    stream_generation,
)
from chatui.models_config import ModelSpec, parse_model
from chatui.prompting import ChatMessage
from chatui.streaming.hub import get_hub
from tests.chatui.fake_endpoints import (
    OPENAI_ERROR,
    TGI_GENERATION_ERROR,
    TGI_VALIDATION_ERROR,
    FakeOpenAI,
    FakeTGI,
    Script,
    Token,
    unused_url,
)

HISTORY = [ChatMessage("user", "Hello?")]
CHATML_PROMPT = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def model(*endpoints: dict[str, Any], **fields: Any) -> ModelSpec:
    entry = {"name": "test/model", "endpoints": list(endpoints), **fields}
    entry.setdefault("parameters", {"stop": ["<|im_end|>"], "max_new_tokens": 64})
    return parse_model(entry, 'MODELS[0] ("test/model")', {})


def tgi(server: FakeTGI | str, weight: int = 1, **extra: Any) -> dict[str, Any]:
    url = server if isinstance(server, str) else server.url
    return {"type": "tgi", "url": url, "weight": weight, **extra}


def openai(server: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "baseURL": server.base_url, **extra}


async def collect(stream) -> tuple[list[str], StreamResult]:
    chunks, results = [], []
    async for item in stream:
        if isinstance(item, StreamChunk):
            assert not results, "a chunk after the result"
            chunks.append(item.text)
        else:
            results.append(item)
    assert len(results) == 1
    return chunks, results[0]


def run(m: ModelSpec, client: httpx.AsyncClient, **kwargs: Any):
    kwargs.setdefault("messages", HISTORY)
    kwargs.setdefault("preprompt", "Be brief.")
    kwargs.setdefault("state", get_hub().endpoints)
    return stream_generation(m, client=client, **kwargs)


async def fetch_chat_template(endpoint, **kwargs: Any) -> str | None:
    """The template the process's endpoint state finds for `endpoint`."""
    return await get_hub().endpoints.templates.get(endpoint, backend_for(endpoint), **kwargs)


# -- TGI ------------------------------------------------------------------------------------------


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


async def test_weighted_choice_is_seeded(fake_tgi, client) -> None:
    light, heavy = fake_tgi(), fake_tgi()
    m = model(tgi(light, weight=1), tgi(heavy, weight=4))

    async def picks(seed: int) -> list[str]:
        rng, chosen = random.Random(seed), []
        for _ in range(25):
            before = len(heavy.generation_requests)
            await collect(run(m, client, rng=rng))
            chosen.append("heavy" if len(heavy.generation_requests) > before else "light")
        return chosen

    first, second = await picks(7), await picks(7)
    assert first == second
    counts = Counter(first)
    assert counts["heavy"] > counts["light"] > 0


# -- failover -------------------------------------------------------------------------------------


async def test_failover_when_connection_is_refused(fake_tgi, client) -> None:
    dead, live = unused_url(), fake_tgi(Script(tokens=["ok"]))
    health = EndpointHealth(failure_threshold=1)
    m = model(tgi(dead, weight=1000), tgi(live))
    _, result = await collect(run(m, client, health=health, rng=random.Random(0)))
    assert result.text == "ok"
    assert not health.is_healthy(m.endpoints[0])
    assert health.is_healthy(m.endpoints[1])


async def test_failover_on_500_before_the_first_token(fake_tgi, client) -> None:
    failing = fake_tgi(Script(fail="status", status=500))
    live = fake_tgi(Script(tokens=["fine"]))
    m = model(tgi(failing, weight=1000), tgi(live))
    _, result = await collect(run(m, client, rng=random.Random(0)))
    assert result.text == "fine"
    assert len(failing.generation_requests) == 1 and len(live.generation_requests) == 1


async def test_failover_on_timeout_before_the_first_token(fake_tgi, client) -> None:
    hanging = fake_tgi(Script(fail="hang", hang_seconds=30))
    live = fake_tgi(Script(tokens=["late", " but", " here"]))
    m = model(tgi(hanging, weight=1000), tgi(live))
    _, result = await collect(run(m, client, rng=random.Random(0)))
    assert result.text == "late but here"
    assert len(hanging.generation_requests) == 1


async def test_every_endpoint_failing_raises_the_last_error(fake_tgi, client) -> None:
    m = model(tgi(unused_url()), tgi(unused_url()))
    with pytest.raises(EndpointError) as info:
        await collect(run(m, client))
    assert info.value.message == ERR_CONNECT and info.value.retryable is True

    hanging = fake_tgi(Script(fail="hang", hang_seconds=30))
    with pytest.raises(EndpointError) as info:
        await collect(run(model(tgi(hanging)), client))
    assert info.value.message == ERR_TIMEOUT


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (Script(tokens=["a", "b", "c"], fail="drop", fail_after=2), ERR_CONNECTION_LOST),
        (Script(tokens=["a", "b", "c"], fail="error_event", fail_after=2), TGI_GENERATION_ERROR),
    ],
)
async def test_no_failover_after_the_first_token(fake_tgi, client, script, message) -> None:
    broken, spare = fake_tgi(script), fake_tgi()
    m = model(tgi(broken, weight=1000), tgi(spare))
    chunks = []
    with pytest.raises(EndpointError) as info:
        async for item in run(m, client, rng=random.Random(0)):
            chunks.append(item.text)
    assert chunks == ["a", "b"]
    assert info.value.message == message
    assert info.value.retryable is False
    assert spare.generation_requests == []


async def test_422_surfaces_the_servers_message_without_failover(fake_tgi, client) -> None:
    invalid, spare = fake_tgi(Script(fail="status", status=422)), fake_tgi()
    m = model(tgi(invalid, weight=1000), tgi(spare))
    with pytest.raises(EndpointError) as info:
        await collect(run(m, client, rng=random.Random(0)))
    assert info.value.message == TGI_VALIDATION_ERROR
    assert info.value.status == 422 and info.value.retryable is False
    assert spare.generation_requests == []


async def test_unhealthy_endpoint_is_skipped(fake_tgi, client) -> None:
    sick, well = fake_tgi(), fake_tgi()
    m = model(tgi(sick, weight=1000), tgi(well))
    health = EndpointHealth(failure_threshold=1, cooldown_s=600)
    health.record_failure(m.endpoints[0])
    for seed in range(5):
        await collect(run(m, client, health=health, rng=random.Random(seed)))
    assert sick.generation_requests == []
    assert len(well.generation_requests) == 5


async def test_all_unhealthy_still_tries(fake_tgi, client) -> None:
    only = fake_tgi(Script(tokens=["x"]))
    m = model(tgi(only))
    health = EndpointHealth(failure_threshold=1, cooldown_s=600)
    health.record_failure(m.endpoints[0])
    _, result = await collect(run(m, client, health=health))
    assert result.text == "x"
    assert health.is_healthy(m.endpoints[0])  # a success clears the mark


def test_health_marks_after_consecutive_failures() -> None:
    health = EndpointHealth(failure_threshold=2, cooldown_s=600)
    health.record_failure("a")
    assert health.is_healthy("a")
    health.record_success("a")
    health.record_failure("a")
    assert health.is_healthy("a")  # the success reset the count
    health.record_failure("a")
    assert not health.is_healthy("a") and health.is_healthy("b")
    expired = EndpointHealth(failure_threshold=1, cooldown_s=0)
    expired.record_failure("a")
    assert expired.is_healthy("a")


async def test_no_endpoints_and_bad_templates_are_endpoint_errors(fake_tgi, client) -> None:
    m = model(tgi(fake_tgi()))
    empty = ModelSpec(id="e", name="e", display_name="e", endpoints=())
    with pytest.raises(EndpointError, match=ERR_NO_ENDPOINTS):
        await collect(run(empty, client))
    broken = model(tgi(fake_tgi()), chatPromptTemplate="{% if %}")
    with pytest.raises(EndpointError, match="prompt template"):
        await collect(run(broken, client))
    assert m.endpoints  # the good model is untouched


# -- cancellation ---------------------------------------------------------------------------------


async def test_closing_the_stream_disconnects_the_server(fake_tgi, client) -> None:
    server = fake_tgi(Script(tokens=[f" t{i}" for i in range(200)], delay=0.02))
    stream = run(model(tgi(server)), client)
    received = [await anext(stream), await anext(stream)]
    assert [c.text for c in received] == [" t0", " t1"]
    await stream.aclose()
    assert await asyncio.to_thread(server.disconnected.wait, 10)
    assert server.num_completed_streams == 0


async def test_cancelling_the_consumer_task_disconnects_the_server(fake_tgi) -> None:
    server = fake_tgi(Script(tokens=[f" t{i}" for i in range(200)], delay=0.02))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in stream_generation(model(tgi(server)), messages=HISTORY, preprompt=None):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.disconnected.wait, 10)


# -- OpenAI ---------------------------------------------------------------------------------------


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


# -- helpers --------------------------------------------------------------------------------------


async def test_generate_text_returns_the_whole_answer(fake_tgi, client) -> None:
    server = fake_tgi(Script(tokens=["Paris", " weather"]))
    text = await generate_text(model(tgi(server)), HISTORY, 12, client=client)
    assert text == "Paris weather"
    assert server.generation_requests[0].body["parameters"]["max_new_tokens"] == 12


async def test_endpoint_status(fake_tgi, fake_openai) -> None:
    up = fake_tgi(model_id="org/model")
    status = await endpoint_status(model(tgi(up)).endpoints[0])
    assert status["ok"] is True and status["status"] == 200 and status["error"] is None
    assert status["info"]["model_id"] == "org/model"
    assert [r.path for r in up.requests] == ["/health", "/info"]

    sick = fake_tgi(healthy=False)
    status = await endpoint_status(model(tgi(sick)).endpoints[0])
    assert status["ok"] is False and status["status"] == 503 and status["error"] == "HTTP 503"

    status = await endpoint_status(model(tgi(unused_url())).endpoints[0])
    assert status["ok"] is False and status["status"] is None
    assert status["error"].startswith(ERR_CONNECT)

    oai = fake_openai(models=["a", "b"])
    status = await endpoint_status(model(openai(oai)).endpoints[0])
    assert status["ok"] is True and status["info"] == {"models": ["a", "b"]}


# -- the model's own chat template ----------------------------------------------------------------

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


async def test_template_from_the_servers_model_directory(fake_tgi, client, tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
    server = fake_tgi(model_id=str(tmp_path))
    await collect(run(model(tgi(server)), client))
    await collect(run(model(tgi(server)), client))
    prompts = [r.body["inputs"] for r in server.generation_requests]
    assert prompts == ["<system>Be brief.</system><user>Hello?</user><assistant>"] * 2
    assert [r.path for r in server.requests].count("/info") == 1  # cached


async def test_template_from_the_servers_info(fake_tgi, client) -> None:
    """The server sends its template: nothing of the model need be on this machine."""
    server = fake_tgi(model_id="some-org/not-on-this-machine", chat_template=TEMPLATE)
    await collect(run(model(tgi(server)), client))
    prompt = server.generation_requests[0].body["inputs"]
    assert prompt == "<system>Be brief.</system><user>Hello?</user><assistant>"


async def test_a_burst_of_first_answers_looks_the_template_up_once(
    fake_tgi, client, tmp_path: Path
) -> None:
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
    server = fake_tgi(model_id=str(tmp_path))
    endpoint = model(tgi(server)).endpoints[0]
    found = await asyncio.gather(*(fetch_chat_template(endpoint, client=client) for _ in range(8)))
    assert found == [TEMPLATE] * 8
    assert [r.path for r in server.requests].count("/info") == 1


async def test_template_from_a_tokenizer_directory(fake_tgi, client, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE}))
    server = fake_tgi()
    m = model(tgi(server), tokenizer=str(tmp_path))
    assert await fetch_chat_template(m.endpoints[0], tokenizer=str(tmp_path)) == TEMPLATE
    await collect(run(m, client))
    assert server.generation_requests[0].body["inputs"].startswith("<system>Be brief.")
    assert all(r.path != "/info" for r in server.requests)


async def test_unknown_model_falls_back_to_chatml(fake_tgi, client) -> None:
    server = fake_tgi(model_id="some-org/not-on-this-machine")
    await collect(run(model(tgi(server)), client))
    assert server.generation_requests[0].body["inputs"] == CHATML_PROMPT

"""chatui.endpoints (the package's entry points): failover before the first token,
cancellation, generate_text and endpoint_status, against fakes on real sockets."""

from __future__ import annotations

import asyncio
import random

import pytest

from chatui.endpoints import (
    ERR_CONNECT,
    ERR_CONNECTION_LOST,
    ERR_NO_ENDPOINTS,
    ERR_TIMEOUT,
    EndpointError,
    EndpointHealth,
    endpoint_status,
    generate_text,
    stream_generation,
)
from chatui.models_config import ModelSpec
from tests.chatui.endpoints.helpers import HISTORY, collect, model, openai, run, tgi
from tests.chatui.fake_endpoints import (
    TGI_GENERATION_ERROR,
    TGI_VALIDATION_ERROR,
    Script,
    unused_url,
)


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


async def test_no_endpoints_and_bad_templates_are_endpoint_errors(fake_tgi, client) -> None:
    m = model(tgi(fake_tgi()))
    empty = ModelSpec(id="e", name="e", display_name="e", endpoints=())
    with pytest.raises(EndpointError, match=ERR_NO_ENDPOINTS):
        await collect(run(empty, client))
    broken = model(tgi(fake_tgi()), chatPromptTemplate="{% if %}")
    with pytest.raises(EndpointError, match="prompt template"):
        await collect(run(broken, client))
    assert m.endpoints  # the good model is untouched


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

"""Server-sent events: exact framing, cancellation on disconnect, keep-alive, in-stream errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import httpx
import pytest

from inference.api.sse import KEEPALIVE, EventStreamResponse
from tests.inference.api.conftest import LONG_ANSWER, serve, tiny_engine

EVENT = re.compile(rb"data: (\{.*?\})\n\n", re.DOTALL)


def stream_bytes(url: str, path: str, body: dict) -> tuple[httpx.Response, bytes]:
    with httpx.stream("POST", url + path, json=body, timeout=120) as response:
        return response, response.read()


def split_events(raw: bytes) -> list[dict]:
    """Parse a TGI stream, asserting nothing but `data: {json}\\n\\n` frames are in it."""
    assert raw.endswith(b"\n\n")
    frames = raw[:-2].split(b"\n\n")
    events = []
    for part in frames:
        assert part.startswith(b"data: {"), part
        assert b"\n" not in part
        events.append(json.loads(part[len(b"data: ") :]))
    return events


def wait_for(predicate, deadline_s: float = 30.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("path", ["/generate_stream", "/"])
def test_framing_is_exact_and_the_last_event_carries_text_and_details(url, path):
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 6, "details": True}}
    if path == "/":
        body["stream"] = True
    response, raw = stream_bytes(url, path, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-compute-type"] == "cpu"
    assert b"[DONE]" not in raw
    events = split_events(raw)
    assert [e["index"] for e in events] == list(range(1, len(events) + 1))
    *steps, last = events
    for event in steps:
        assert event["generated_text"] is None and event["details"] is None
        assert "top_tokens" not in event
        assert set(event["token"]) == {"id", "text", "logprob", "special"}
    text = "".join(e["token"]["text"] for e in events if not e["token"]["special"])
    assert last["generated_text"] == text
    details = last["details"]
    assert details["generated_tokens"] == len(events)
    assert details["input_length"] == 1
    assert details["finish_reason"] in ("length", "eos_token")
    assert set(details) == {"finish_reason", "generated_tokens", "seed", "input_length"}


def test_stream_without_details_still_ends_with_details_and_matches_generate(url):
    parameters = {"max_new_tokens": 6}
    events = split_events(
        stream_bytes(url, "/generate_stream", {"inputs": "Hi", "parameters": parameters})[1]
    )
    assert all(e["details"] is None for e in events[:-1])
    assert events[-1]["details"]["generated_tokens"] == len(events)
    assert events[-1]["details"]["finish_reason"] in ("length", "eos_token")
    full = httpx.post(url + "/generate", json={"inputs": "Hi", "parameters": parameters}).json()
    assert events[-1]["generated_text"] == full["generated_text"]


def test_top_tokens_ride_along_when_asked(url):
    body = {"inputs": "Hi", "parameters": {"max_new_tokens": 3, "top_n_tokens": 2}}
    events = split_events(stream_bytes(url, "/generate_stream", body)[1])
    assert all(len(e["top_tokens"]) == 2 for e in events)


def test_disconnect_cancels_the_request(server):
    """Read two events, hang up: the engine slot is freed and the request never succeeds."""
    metrics = server.state.metrics
    successes = metrics.request_success._value.get()
    body = {"inputs": "Hello", "parameters": {"max_new_tokens": LONG_ANSWER}}
    events = []
    with httpx.stream("POST", server.url + "/generate_stream", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(line)
            if len(events) == 2:
                break
    assert len(events) == 2
    assert wait_for(lambda: server.state.limiter.in_flight == 0)
    assert wait_for(lambda: server.engine.num_running == 0 and server.engine.num_waiting == 0)
    assert metrics.request_success._value.get() == successes


async def sent_messages(source, interval: float) -> tuple[list[dict], asyncio.Task]:
    """Run an EventStreamResponse of `source` against a recording `send`."""
    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    response = EventStreamResponse(source, keepalive_interval=interval)
    task = asyncio.ensure_future(response.stream_response(send))
    return messages, task


async def test_keepalive_comment_is_sent_while_the_source_is_silent():
    async def slow():
        yield b"data: {}\n\n"
        await asyncio.sleep(0.3)
        yield b"data: {}\n\n"

    messages, task = await sent_messages(slow(), interval=0.05)
    await asyncio.wait_for(task, 5)
    bodies = [m["body"] for m in messages if m["type"] == "http.response.body"]
    assert bodies[0] == b"data: {}\n\n" and bodies[-2] == b"data: {}\n\n"
    assert KEEPALIVE in bodies[1:-2]
    assert KEEPALIVE == b":\n\n"
    assert bodies[-1] == b"" and messages[-1]["more_body"] is False  # nothing after the end


async def test_no_keepalive_while_tokens_flow():
    async def busy():
        for _ in range(20):
            await asyncio.sleep(0.01)
            yield b"data: {}\n\n"

    messages, task = await sent_messages(busy(), interval=0.5)
    await asyncio.wait_for(task, 5)
    assert KEEPALIVE not in [m.get("body") for m in messages]


async def test_a_stream_cut_off_closes_the_source():
    closed = asyncio.Event()

    async def endless():
        try:
            while True:
                await asyncio.sleep(10)
                yield b"data: {}\n\n"
        finally:
            closed.set()

    messages, task = await sent_messages(endless(), interval=0.01)
    while not any(m.get("body") == KEEPALIVE for m in messages):
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert closed.is_set()


@pytest.fixture(scope="module")
def chatty_server():
    """A server that sends keep-alive comments every millisecond of silence."""
    live = serve(tiny_engine(), keepalive_interval=0.001)
    yield live
    live.stop()


def test_keepalive_comments_are_sse_comments_clients_skip(chatty_server, hub_client):
    from huggingface_hub import InferenceClient

    body = {"inputs": "Hello", "parameters": {"max_new_tokens": 40}}
    raw = stream_bytes(chatty_server.url, "/generate_stream", body)[1]
    assert KEEPALIVE in raw
    data_only = raw.replace(KEEPALIVE, b"")
    assert len(split_events(data_only)) == 40 or b'"eos_token"' in data_only
    client = InferenceClient(model=chatty_server.url)
    tokens = list(client.text_generation("Hello", max_new_tokens=40, stream=True))
    streamed = split_events(data_only)[-1]["generated_text"]
    assert "".join(tokens).replace("<|im_end|>", "") == streamed

"""The model server fails while answers stream: killed mid-answer, a web process killed under
it, a stop from the page. The partial answer is kept and marked, the user reads what went
wrong, the next message works once the server is back, and the engine slot of an answer
nobody waits for is freed at once (seen in the server's own `/metrics`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chatui.durable.cluster import Visitor, apply_tokens, stored_answer
from tests.faults.conftest import models_for

pytestmark = pytest.mark.services

LONG_ANSWER = 1500  # tokens: seconds of decoding, so a fault always lands mid-answer
SLOT_FREED_WITHIN_S = 2.0


def running(model_server) -> float:
    return model_server.gauge("tgi_batch_current_size")


async def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


async def start_answer(web, model_server, database_url):
    site = web.start(
        "web",
        database_url=database_url,
        models=models_for(model_server.url, max_new_tokens=LONG_ANSWER),
    )
    visitor = await Visitor().open(site)
    cid = await visitor.new_conversation(site)
    socket = await visitor.socket(site, cid)
    await socket.send({"type": "send", "content": "Tell me a long story", "parent_id": None})
    events = await socket.until("token")
    answer = next(
        e["message"]
        for e in events
        if e["type"] == "message" and e["message"]["role"] == "assistant"
    )
    return site, visitor, socket, events, answer["id"]


async def test_a_killed_model_server_keeps_the_partial_answer_and_the_next_message_works(
    model_server, database_url, web
):
    _site, visitor, socket, events, answer_id = await start_answer(web, model_server, database_url)
    assert running(model_server) == 1

    model_server.kill()
    events += await socket.until("final")
    errors = [e for e in events if e["type"] == "error"]
    events += await socket.until("error") if not errors else []

    final = next(e["message"] for e in events if e["type"] == "final")
    streamed = apply_tokens("", events, answer_id)
    assert (streamed and final["content"] == streamed.strip()) or final["content"] == streamed
    assert final["interrupted"] is True and final["error"], final
    error = next(e for e in events if e["type"] == "error")
    assert error["message_id"] == answer_id and len(error["message"]) > 10
    stored = await asyncio.to_thread(stored_answer, database_url, answer_id)
    assert stored["content"] == final["content"] and stored["is_generating"] is False
    assert stored["interrupted"] is True and stored["error"] == final["error"]

    model_server.start()  # the same port: the same endpoint to the chat app
    await socket.send({"type": "send", "content": "Again, shorter", "parent_id": answer_id})
    events = await socket.until("token")
    await socket.send({"type": "stop"})  # it streams: no need to wait for all of it
    events += await socket.until("final")
    again = events[-1]["message"]
    assert again["parent_id"] != answer_id  # the new answer hangs under the new question
    assert again["content"] and again["error"] is None
    await socket.close()
    await visitor.close()


async def test_a_killed_web_process_frees_its_engine_slot(model_server, database_url, web):
    finished_before = model_server.gauge("tgi_request_success")
    site, visitor, _socket, _, _answer_id = await start_answer(web, model_server, database_url)
    assert running(model_server) == 1

    site.kill()
    await wait_until(
        lambda: running(model_server) == 0, SLOT_FREED_WITHIN_S, "the engine slot was not freed"
    )
    assert model_server.gauge("tgi_request_success") == finished_before, "it ran to its end"
    await visitor.close()


async def test_stop_from_the_page_frees_the_engine_slot(model_server, database_url, web):
    _site, visitor, socket, events, answer_id = await start_answer(web, model_server, database_url)
    assert running(model_server) == 1

    await socket.send({"type": "stop"})
    events += await socket.until("final")
    await wait_until(
        lambda: running(model_server) == 0, SLOT_FREED_WITHIN_S, "the engine slot was not freed"
    )
    final = events[-1]["message"]
    assert final["interrupted"] is True and final["error"] is None
    assert final["content"] and final["content"] == apply_tokens("", events, answer_id)
    await socket.close()
    await visitor.close()

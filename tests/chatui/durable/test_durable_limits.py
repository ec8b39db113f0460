"""Usage limits per user (messages per minute, answers at once) answered over the websocket with
the documented messages, and input truncation to the model's `truncate` as chat-ui does it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatui import limits, services
from chatui.models import Message
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import connect, db, make_owner, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "durable-model"
LONG = Script(tokens=[f"t{i} " for i in range(400)], delay=0.02)


@pytest.fixture
def use_model(configure, fake_tgi, fake_openai):
    """`use_model(kind, parameters, **env)`: one model on a fake TGI or OpenAI server, which
    it returns."""

    def apply(kind: str = "tgi", parameters: dict[str, Any] | None = None, **env: str):
        server = fake_tgi() if kind == "tgi" else fake_openai()
        endpoint = (
            {"type": "tgi", "url": server.url}
            if kind == "tgi"
            else {"type": "openai", "baseURL": server.base_url}
        )
        model = {
            "id": MODEL,
            "name": "org/durable-model",
            "preprompt": "Be brief.",
            "parameters": {"max_new_tokens": 64, **(parameters or {})},
            "endpoints": [endpoint],
        }
        configure(MODELS=json.dumps([model]), LLM_SUMMARIZATION="false", **env)
        return server

    return apply


async def conversations_of(owner, count: int) -> list[Any]:
    """`count` open sockets, one per new conversation of `owner`."""
    sockets = []
    for _ in range(count):
        conversation = await db(services.conversation_create)(identity=owner.identity, model=MODEL)
        sockets.append(await connect(owner, conversation.pk))
    return sockets


async def refused(socket) -> str:
    error = (await receive_until(socket, "error"))[-1]
    assert error["message_id"] is None  # a refusal stores nothing
    return error["message"]


async def test_messages_per_minute_count_every_conversation_of_the_user(use_model):
    use_model(USAGE_LIMITS=json.dumps({"messagesPerMinute": 2}))
    owner = await db(make_owner)()
    first, second = await conversations_of(owner, 2)
    answer = None
    for socket in (first, second):
        await socket.send_json_to({"type": "send", "content": "hi", "parent_id": None})
        answer = (await receive_until(socket, "final"))[-1]["message"]
        await receive_until(socket, "status")
    count = await db(Message.objects.count)()

    await second.send_json_to({"type": "regenerate", "message_id": answer["id"]})
    assert await refused(second) == limits.RATE_LIMITED.format(limit=2)
    await first.send_json_to({"type": "send", "content": "again", "parent_id": None})
    assert await refused(first) == limits.RATE_LIMITED.format(limit=2)
    assert await db(Message.objects.count)() == count

    # Someone else is not held by this user's rate.
    other = (await conversations_of(await db(make_owner)(), 1))[0]
    await other.send_json_to({"type": "send", "content": "hello", "parent_id": None})
    assert (await receive_until(other, "final"))[-1]["message"]["content"] == "Hello, world!"
    await receive_until(other, "status")
    for socket in (first, second, other):
        await socket.disconnect()


async def test_concurrent_answers_per_user_are_limited(use_model):
    server = use_model(USAGE_LIMITS=json.dumps({"concurrentGenerations": 2}))
    server.queue(LONG, LONG)
    owner = await db(make_owner)()
    sockets = await conversations_of(owner, 3)
    for socket in sockets[:2]:
        await socket.send_json_to({"type": "send", "content": "long", "parent_id": None})
        await receive_until(socket, "token")

    await sockets[2].send_json_to({"type": "send", "content": "third", "parent_id": None})
    assert await refused(sockets[2]) == limits.TOO_MANY_GENERATIONS.format(limit=2)

    await sockets[0].send_json_to({"type": "stop"})
    await receive_until(sockets[0], "status", status="stopped")
    await sockets[2].send_json_to({"type": "send", "content": "third", "parent_id": None})
    assert (await receive_until(sockets[2], "final"))[-1]["message"]["content"] == "Hello, world!"
    await sockets[1].send_json_to({"type": "stop"})
    await receive_until(sockets[1], "status", status="stopped")
    await receive_until(sockets[2], "status")
    for socket in sockets:
        await socket.disconnect()


async def test_a_tgi_endpoint_is_asked_to_keep_the_last_truncate_tokens(use_model):
    server = use_model("tgi", {"truncate": 8})
    socket = (await conversations_of(await db(make_owner)(), 1))[0]
    question = " ".join(f"word{i}" for i in range(50))
    await socket.send_json_to({"type": "send", "content": question, "parent_id": None})
    assert (await receive_until(socket, "final"))[-1]["message"]["content"] == "Hello, world!"
    await receive_until(socket, "status")

    body = server.generation_requests[0].body
    assert body["parameters"]["truncate"] == 8  # TGI keeps the last 8 tokens of the input
    assert question in body["inputs"]
    await socket.disconnect()


async def test_an_openai_endpoint_gets_the_oldest_messages_dropped(use_model):
    server = use_model("openai", {"truncate": 40})  # about 160 characters
    socket = (await conversations_of(await db(make_owner)(), 1))[0]
    parent = None
    questions = [f"{'abcdefghi ' * 8}question {i}" for i in range(3)]
    for question in questions:
        await socket.send_json_to({"type": "send", "content": question, "parent_id": parent})
        parent = (await receive_until(socket, "final"))[-1]["message"]["id"]
        await receive_until(socket, "status")

    first, last = (r.body["messages"] for r in server.generation_requests[::2])
    assert [m["content"] for m in first] == ["Be brief.", questions[0]]
    assert last[0] == {"role": "system", "content": "Be brief."}
    assert last[-1] == {"role": "user", "content": questions[2]}
    assert questions[0] not in [m["content"] for m in last]  # the oldest turn went first
    assert sum(len(m["content"]) for m in last) <= 40 * 4
    await socket.disconnect()

"""The websocket protocol end to end: consumer -> services -> generation task -> FakeTGI /
FakeOpenAI over real sockets -> events fanned out through the (in-memory) channel layer.
The streaming modules' own behaviour is tested beside them, in tests/chatui/streaming/."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from chatui import limits, services
from chatui.consumers import CLOSE_FORBIDDEN, UNKNOWN_TYPE
from chatui.models import Conversation
from chatui.selectors import MESSAGE_NOT_FOUND
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import (
    MODEL_A,
    MODEL_B,
    TIMEOUT,
    connect,
    db,
    make_owner,
    messages_of,
    new_conversation,
    receive_until,
    send_and_finish,
    setup_owner,
    start_answer,
    title_event,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_send_streams_tokens_and_stores_the_answer(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    assert socket.snapshot["id"] == cid and socket.snapshot["messages"] == []

    events = await send_and_finish(socket, "Say hello")
    kinds = [e["type"] for e in events]
    user_event, answer_event = events[0], events[1]
    assert kinds[:2] == ["message", "message"]
    assert user_event["message"]["role"] == "user"
    assert user_event["message"]["content"] == "Say hello"
    assert answer_event["message"]["role"] == "assistant"
    assert answer_event["message"]["parent_id"] == user_event["message"]["id"]
    assert answer_event["message"]["is_generating"] is True
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "generating"]
    tokens = [e for e in events if e["type"] == "token"]
    assert [t["token"] for t in tokens] == ["Hello", ",", " world", "!"]
    assert [t["offset"] for t in tokens] == [0, 5, 6, 12]
    final = events[-1]["message"]
    assert final["content"] == "Hello, world!"
    assert final["is_generating"] is False and final["interrupted"] is False
    assert final["finish_reason"] == "eos_token"
    after = await receive_until(socket, "status", status="done")
    assert after[-1] == {"type": "status", "message_id": final["id"], "status": "done"}
    title = await title_event(socket, events + after)
    assert title == {"type": "title", "conversation_id": cid, "title": "Say hello"}

    stored = await db(messages_of)(cid)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Say hello"),
        ("assistant", "Hello, world!"),
    ]
    assert stored[1].model == MODEL_A and stored[1].generated_tokens == 5
    request = endpoints.tgi.generation_requests[0].body
    assert "Say hello" in request["inputs"] and "You are model A." in request["inputs"]
    await socket.disconnect()


async def test_regenerate_and_retry_create_sibling_answers(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    first = (await send_and_finish(socket, "Question"))[-1]["message"]
    await wait_idle(cid)
    endpoints.tgi.queue(Script(tokens=["Another", " answer"]))
    await socket.send_json_to({"type": "regenerate", "message_id": first["id"]})
    events = await receive_until(socket, "final")
    created = [e["message"] for e in events if e["type"] == "message"]
    assert len(created) == 1 and created[0]["role"] == "assistant"
    second = events[-1]["message"]
    assert second["id"] != first["id"] and second["parent_id"] == first["parent_id"]
    assert second["content"] == "Another answer"
    # Regenerating from the user message (Retry) adds a third sibling.
    await socket.send_json_to({"type": "regenerate", "message_id": first["parent_id"]})
    third = (await receive_until(socket, "final"))[-1]["message"]
    assert third["parent_id"] == first["parent_id"]
    stored = await db(messages_of)(cid)
    assert [m.role for m in stored] == ["user", "assistant", "assistant", "assistant"]
    assert len(endpoints.tgi.generation_requests) == 3
    # The prompt of a regenerated answer does not include the earlier answers.
    assert "Hello, world!" not in endpoints.tgi.generation_requests[1].body["inputs"]
    await wait_idle(cid)
    await socket.disconnect()


async def test_edit_creates_a_sibling_user_message_and_its_answer(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    first = (await send_and_finish(socket, "Original question"))[-1]["message"]
    second = (await send_and_finish(socket, "Follow-up", parent_id=first["id"]))[-1]["message"]
    await wait_idle(cid)
    follow_up_id = second["parent_id"]
    await socket.send_json_to(
        {"type": "edit", "message_id": follow_up_id, "content": "Edited follow-up"}
    )
    events = await receive_until(socket, "final")
    edited, answer = (e["message"] for e in events if e["type"] == "message")
    assert edited["role"] == "user" and edited["content"] == "Edited follow-up"
    assert edited["parent_id"] == first["id"]  # the same parent as the original follow-up
    assert answer["parent_id"] == edited["id"]
    inputs = endpoints.tgi.generation_requests[-1].body["inputs"]
    assert "Original question" in inputs and "Edited follow-up" in inputs
    assert "Follow-up" not in inputs.replace("Edited follow-up", "")
    stored = await db(messages_of)(cid)
    assert len(stored) == 6  # the old branch is kept
    await wait_idle(cid)
    await socket.disconnect()


async def test_send_with_another_model_switches_the_conversation(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    events = await send_and_finish(socket, "Hi B", model=MODEL_B)
    final = events[-1]["message"]
    assert final["model"] == MODEL_B and final["content"] == "Hi from B"
    conversation = await db(Conversation.objects.get)(pk=cid)
    assert conversation.model == MODEL_B
    assert endpoints.openai.generation_requests[0].body["model"] == MODEL_B
    assert endpoints.tgi.generation_requests == []
    await wait_idle(cid)
    await socket.send_json_to(
        {"type": "send", "content": "x", "parent_id": None, "model": "hidden"}
    )
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == services.UNKNOWN_MODEL.format(model="hidden")
    await socket.disconnect()


async def test_another_owner_is_refused_with_4403(endpoints):
    _, cid = await setup_owner()
    for intruder in (await db(make_owner)(), await db(make_owner)("eve")):
        socket = WebsocketCommunicator(
            __import__("config.asgi").asgi.application,
            f"/ws/conversations/{cid}/",
            headers=intruder.headers(),
        )
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        assert await socket.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": CLOSE_FORBIDDEN,
        }
    # No session at all.
    socket = WebsocketCommunicator(
        __import__("config.asgi").asgi.application,
        f"/ws/conversations/{cid}/",
        headers=[(b"origin", b"http://testserver"), (b"host", b"testserver")],
    )
    await socket.connect(timeout=TIMEOUT)
    assert (await socket.receive_output(timeout=TIMEOUT))["code"] == CLOSE_FORBIDDEN


async def test_a_foreign_origin_is_rejected(endpoints):
    owner, cid = await setup_owner()
    from config.asgi import application

    socket = WebsocketCommunicator(
        application,
        f"/ws/conversations/{cid}/",
        headers=owner.headers(origin=b"http://evil.example"),
    )
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert not connected


async def test_one_answer_at_a_time_per_conversation(endpoints):
    _, cid, socket = await start_answer(
        endpoints, "long", [f"t{i} " for i in range(100)], delay=0.05
    )
    answer = (await receive_until(socket, "token"))[1]["message"]
    await socket.send_json_to({"type": "send", "content": "again", "parent_id": answer["id"]})
    error = (await receive_until(socket, "error"))[-1]
    assert error == {"type": "error", "message": services.ALREADY_GENERATING, "message_id": None}
    await socket.send_json_to({"type": "stop"})
    await receive_until(socket, "final")
    await wait_idle(cid)
    await socket.disconnect()


async def test_usage_limits_and_login_requirement_over_the_socket(endpoints):
    endpoints.reconfigure(MESSAGES_BEFORE_LOGIN="1", USAGE_LIMITS='{"messageLength": 10}')
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "x" * 11, "parent_id": None})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == limits.MESSAGE_TOO_LONG.format(length=11, limit=10)
    first = (await send_and_finish(socket, "short"))[-1]["message"]
    await wait_idle(cid)
    await socket.send_json_to({"type": "send", "content": "more", "parent_id": first["id"]})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == limits.LOGIN_REQUIRED.format(limit=1)
    assert len(await db(messages_of)(cid)) == 2
    await socket.disconnect()
    # A logged-in user is not held by MESSAGES_BEFORE_LOGIN.
    user, user_cid = await setup_owner("logged")
    socket = await connect(user, user_cid)
    first = (await send_and_finish(socket, "one"))[-1]["message"]
    await wait_idle(user_cid)
    second = (await send_and_finish(socket, "two", parent_id=first["id"]))[-1]["message"]
    assert second["content"] == "Hello, world!"
    await wait_idle(user_cid)
    await socket.disconnect()


async def test_rate_limit_per_minute(endpoints):
    endpoints.reconfigure(USAGE_LIMITS='{"messagesPerMinute": 1}')
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    first = (await send_and_finish(socket, "one"))[-1]["message"]
    await wait_idle(cid)
    await socket.send_json_to({"type": "regenerate", "message_id": first["id"]})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == limits.RATE_LIMITED.format(limit=1)
    await socket.disconnect()


async def test_unreadable_messages_get_an_error(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_to(text_data="not json")
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert error == {
        "type": "error",
        "message": UNKNOWN_TYPE.format(type=None),
        "message_id": None,
    }
    await socket.send_json_to({"type": "dance"})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert error["message"] == UNKNOWN_TYPE.format(type="dance")
    await socket.disconnect()


async def test_concurrent_generations_limit(endpoints):
    endpoints.reconfigure(USAGE_LIMITS='{"concurrentGenerations": 1}')
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(200)], delay=0.05))
    owner, first_cid = await setup_owner()
    second_cid = await db(new_conversation)(owner)
    first, second = await connect(owner, first_cid), await connect(owner, second_cid)
    await first.send_json_to({"type": "send", "content": "long", "parent_id": None})
    await receive_until(first, "token")
    await second.send_json_to({"type": "send", "content": "meanwhile", "parent_id": None})
    error = (await receive_until(second, "error"))[-1]
    assert error["message"] == limits.TOO_MANY_GENERATIONS.format(limit=1)
    await first.send_json_to({"type": "stop"})
    await receive_until(first, "final")
    await wait_idle(first_cid)
    events = await send_and_finish(second, "now")
    assert events[-1]["message"]["content"] == "Hello, world!"
    await wait_idle(second_cid)
    await first.disconnect()
    await second.disconnect()


async def test_messages_per_conversation_limit(endpoints):
    endpoints.reconfigure(USAGE_LIMITS='{"messages": 2}')
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    answer = (await send_and_finish(socket, "one"))[-1]["message"]
    await wait_idle(cid)
    await socket.send_json_to({"type": "send", "content": "two", "parent_id": answer["id"]})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == limits.TOO_MANY_MESSAGES.format(limit=2)
    await socket.disconnect()


async def test_bad_message_ids_are_refused(endpoints):
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    for request in (
        {"type": "send", "content": "hi", "parent_id": "not-a-uuid"},
        {"type": "regenerate", "message_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "continue", "message_id": None},
        {"type": "edit", "message_id": 12, "content": "x"},
    ):
        await socket.send_json_to(request)
        error = await socket.receive_json_from(timeout=TIMEOUT)
        assert error == {"type": "error", "message": MESSAGE_NOT_FOUND, "message_id": None}
    await socket.send_json_to({"type": "send", "content": "   ", "parent_id": None})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert error["message"] == limits.EMPTY_MESSAGE
    assert await db(messages_of)(cid) == []
    await socket.disconnect()

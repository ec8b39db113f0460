"""The websocket protocol end to end: consumer -> services -> generation task -> FakeTGI /
FakeOpenAI over real sockets -> events fanned out through the (in-memory) channel layer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from chatui import limits, services
from chatui.consumers import CLOSE_FORBIDDEN, UNKNOWN_TYPE
from chatui.endpoints import ERR_SERVER
from chatui.models import Conversation, Message
from chatui.selectors import CONVERSATION_NOT_FOUND, MESSAGE_NOT_FOUND
from chatui.streaming import bus, task
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import (
    MODEL_A,
    MODEL_B,
    TIMEOUT,
    connect,
    db,
    make_owner,
    merge_tokens,
    receive_until,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _new_conversation(owner, model=MODEL_A) -> str:
    return str(services.conversation_create(identity=owner.identity, model=model).pk)


async def setup_owner(username: str | None = None):
    owner = await db(make_owner)(username)
    conversation_id = await db(_new_conversation)(owner)
    return owner, conversation_id


def messages_of(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at"))


async def send_and_finish(socket, content: str, parent_id=None, **extra):
    await socket.send_json_to({"type": "send", "content": content, "parent_id": parent_id, **extra})
    return await receive_until(socket, "final")


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
    after = await receive_until(socket, "title")
    assert after[0] == {"type": "status", "message_id": final["id"], "status": "done"}
    assert after[-1] == {"type": "title", "conversation_id": cid, "title": "Say hello"}

    stored = await db(messages_of)(cid)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Say hello"),
        ("assistant", "Hello, world!"),
    ]
    assert stored[1].model == MODEL_A and stored[1].generated_tokens == 5
    request = endpoints.tgi.generation_requests[0].body
    assert "Say hello" in request["inputs"] and "You are model A." in request["inputs"]
    await socket.disconnect()


async def test_every_open_tab_receives_the_stream(endpoints):
    owner, cid = await setup_owner()
    first, second = await connect(owner, cid), await connect(owner, cid)
    await first.send_json_to({"type": "send", "content": "hi", "parent_id": None})
    for socket in (first, second):
        events = await receive_until(socket, "final")
        assert events[-1]["message"]["content"] == "Hello, world!"
    await wait_idle(cid)
    await first.disconnect()
    await second.disconnect()


async def test_stop_cancels_the_request_and_keeps_the_partial_answer(endpoints):
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(200)], delay=0.05))
    owner, cid = await setup_owner()
    socket, other_tab = await connect(owner, cid), await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "Count", "parent_id": None})
    events = await receive_until(socket, "token")
    events += await receive_until(socket, "token")
    await other_tab.send_json_to({"type": "stop"})  # any tab can stop
    events += await receive_until(socket, "final")
    final = events[-1]["message"]
    streamed = merge_tokens("", events, final["id"])
    assert final["interrupted"] is True and final["is_generating"] is False
    assert final["content"] == streamed
    assert 2 <= len(final["content"].split()) < 200
    assert await receive_until(socket, "status") == [
        {"type": "status", "message_id": final["id"], "status": "stopped"}
    ]
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, TIMEOUT)
    stored = (await db(messages_of)(cid))[-1]
    assert (stored.content, stored.interrupted, stored.is_generating) == (
        final["content"],
        True,
        False,
    )
    await wait_idle(cid)
    await socket.disconnect()
    await other_tab.disconnect()


async def test_stop_reaches_the_task_through_the_channel_layer(endpoints):
    """What another process does: it has no registry entry, only the group."""
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(200)], delay=0.05))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "Count", "parent_id": None})
    await receive_until(socket, "token")
    await get_channel_layer().group_send(bus.generation_group(cid), {"type": bus.STOP_TYPE})
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["interrupted"] is True
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, TIMEOUT)
    await wait_idle(cid)
    await socket.disconnect()


async def test_closing_the_tab_does_not_stop_the_answer_and_reconnect_resumes(endpoints):
    endpoints.tgi.queue(Script(tokens=[f"w{i} " for i in range(40)], delay=0.03))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "Go", "parent_id": None})
    for _ in range(5):
        await receive_until(socket, "token")
    await socket.disconnect()
    await asyncio.sleep(0.2)

    again = await connect(owner, cid)
    answer = again.snapshot["messages"][-1]
    assert answer["is_generating"] is True and again.snapshot["is_generating"] is True
    assert answer["content"].startswith("w0 w1 w2 w3 w4 ")
    events = await receive_until(again, "final")
    final = events[-1]["message"]
    streamed = "".join(f"w{i} " for i in range(40))
    assert merge_tokens(answer["content"], events, answer["id"]) == streamed
    assert final["content"] == streamed.strip()  # the endpoint's final text is trimmed
    assert final["interrupted"] is False
    assert not endpoints.tgi.disconnected.is_set()
    await wait_idle(cid)
    await again.disconnect()


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


async def test_continue_extends_the_answer_in_place(endpoints):
    endpoints.tgi.queue(
        Script(tokens=["Once", " upon"], finish_reason="length"),
        Script(tokens=[" a", " time."]),
    )
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    first = (await send_and_finish(socket, "Tell a story"))[-1]["message"]
    assert first["content"] == "Once upon" and first["interrupted"] is True
    assert first["finish_reason"] == "length"
    await wait_idle(cid)
    await socket.send_json_to({"type": "continue", "message_id": first["id"]})
    events = await receive_until(socket, "final")
    assert not [e for e in events if e["type"] == "message"]
    tokens = [e for e in events if e["type"] == "token"]
    assert [(t["offset"], t["token"]) for t in tokens] == [(9, " a"), (11, " time.")]
    final = events[-1]["message"]
    assert final["id"] == first["id"]
    assert final["content"] == "Once upon a time." and final["interrupted"] is False
    assert endpoints.tgi.generation_requests[-1].body["inputs"].endswith("Once upon")
    stored = await db(messages_of)(cid)
    assert len(stored) == 2 and stored[1].generated_tokens == 2 + 3
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


async def test_endpoint_failure_marks_the_answer_and_retry_works(endpoints):
    endpoints.tgi.queue(Script(fail="status", status=500, error="boom"))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    events = await send_and_finish(socket, "Will fail")
    user_message = events[0]["message"]
    failed = events[-1]["message"]
    expected = ERR_SERVER.format(status=500, detail="boom")
    assert failed["error"] == expected and failed["is_generating"] is False
    error = (await receive_until(socket, "error"))[-1]
    assert error == {"type": "error", "message": expected, "message_id": failed["id"]}
    stored = await db(messages_of)(cid)
    assert [(m.role, m.content) for m in stored] == [("user", "Will fail"), ("assistant", "")]
    await wait_idle(cid)
    await socket.send_json_to({"type": "regenerate", "message_id": user_message["id"]})
    retried = (await receive_until(socket, "final"))[-1]["message"]
    assert retried["content"] == "Hello, world!" and retried["error"] is None
    assert retried["parent_id"] == user_message["id"]
    await wait_idle(cid)
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


async def test_stale_answers_of_a_dead_process_are_marked_interrupted(endpoints):
    owner, cid = await setup_owner()

    def orphan() -> str:
        conversation = Conversation.objects.get(pk=cid)
        question = Message.objects.create(conversation=conversation, role="user", content="Q")
        answer = Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            content="partial",
            is_generating=True,
            heartbeat_at=timezone.now() - timedelta(minutes=5),
        )
        return str(answer.id)

    answer_id = await db(orphan)()
    socket = await connect(owner, cid)
    answer = socket.snapshot["messages"][-1]
    assert answer["id"] == answer_id
    assert (answer["is_generating"], answer["interrupted"], answer["content"]) == (
        False,
        True,
        "partial",
    )
    # The conversation accepts new messages again.
    events = await send_and_finish(socket, "again", parent_id=answer_id)
    assert events[-1]["message"]["content"] == "Hello, world!"
    await wait_idle(cid)
    await socket.disconnect()


async def test_one_answer_at_a_time_per_conversation(endpoints):
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(100)], delay=0.05))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "long", "parent_id": None})
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


@pytest.fixture
def update_statements():
    """Every UPDATE the database receives, from any thread."""
    statements: list[str] = []
    original = CursorWrapper.execute

    def execute(self, sql, params=None):
        if sql.lstrip().upper().startswith("UPDATE"):
            statements.append(sql)
        return original(self, sql, params)

    CursorWrapper.execute = execute
    yield statements
    CursorWrapper.execute = original
    connections.close_all()


async def test_an_answer_costs_few_database_writes(endpoints, settings, update_statements):
    settings.CHATUI_SAVE_INTERVAL_S = 3600  # count only the token-batched saves here
    num_tokens = 100
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(num_tokens)]))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    update_statements.clear()
    events = await send_and_finish(socket, "Count to 100")
    await receive_until(socket, "title")
    await wait_idle(cid)
    assert events[-1]["message"]["content"] == " ".join(f"t{i}" for i in range(num_tokens))
    partial_saves = num_tokens // 32
    assert 1 + partial_saves <= len(update_statements) <= 3 + partial_saves, update_statements
    await socket.disconnect()


async def test_a_running_task_resends_its_text_to_a_socket_that_asks(endpoints):
    """What a socket served by another process gets after its (DB) snapshot."""
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(100)], delay=0.05))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "long", "parent_id": None})
    await receive_until(socket, "token")
    await receive_until(socket, "token")
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    await layer.group_send(
        bus.generation_group(cid),
        {"type": bus.SYNC_TYPE, "reply_channel": reply_channel},
    )
    resync = await asyncio.wait_for(layer.receive(reply_channel), TIMEOUT)
    event = resync["event"]
    assert (event["type"], event["offset"]) == ("token", 0)
    assert event["token"].startswith("t0 t1 ")
    await socket.send_json_to({"type": "stop"})
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["content"].startswith(event["token"])
    await wait_idle(cid)
    await socket.disconnect()


async def test_deleting_the_conversation_stops_its_answer(endpoints):
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(200)], delay=0.05))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "long", "parent_id": None})
    await receive_until(socket, "token")
    conversation = await db(Conversation.objects.get)(pk=cid)
    await db(services.conversation_delete)(conversation=conversation)
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, TIMEOUT)
    await wait_idle(cid)
    assert not await db(Message.objects.filter(conversation_id=cid).exists)()
    await socket.send_json_to({"type": "send", "content": "again", "parent_id": None})
    error = (await receive_until(socket, "error"))[-1]
    assert error["message"] == CONVERSATION_NOT_FOUND
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


async def test_the_first_request_starts_the_reaper(endpoints, settings):
    settings.CHATUI_STALE_AFTER_S = 0.5
    _, cid = await setup_owner()

    def orphan() -> str:
        conversation = Conversation.objects.get(pk=cid)
        return str(
            Message.objects.create(
                conversation=conversation,
                role="assistant",
                content="cut",
                is_generating=True,
                heartbeat_at=timezone.now() - timedelta(seconds=5),
            ).id
        )

    answer_id = await db(orphan)()
    seen: list[str] = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await task.with_reaper(app)({"type": "http"}, None, None)
    assert seen == ["http"]
    for _ in range(200):
        answer = await db(Message.objects.get)(pk=answer_id)
        if not answer.is_generating:
            break
        await asyncio.sleep(0.05)
    assert (answer.is_generating, answer.interrupted, answer.content) == (False, True, "cut")


async def test_concurrent_generations_limit(endpoints):
    endpoints.reconfigure(USAGE_LIMITS='{"concurrentGenerations": 1}')
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(200)], delay=0.05))
    owner, first_cid = await setup_owner()
    second_cid = await db(_new_conversation)(owner)
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


async def test_slow_answers_are_saved_every_interval_while_streaming(endpoints, settings):
    settings.CHATUI_SAVE_EVERY_TOKENS = 1000  # only the time rule can save here
    endpoints.tgi.queue(Script(tokens=[f"s{i} " for i in range(12)], delay=0.1))
    owner, cid = await setup_owner()
    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "slow", "parent_id": None})
    for _ in range(6):  # 0.6 s of tokens: more than two save intervals
        events = await receive_until(socket, "token")
    answer_id = events[-1]["message_id"]
    stored = await db(Message.objects.get)(pk=answer_id)
    assert stored.is_generating is True
    assert stored.content.startswith("s0 ") and stored.generated_tokens >= 1
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["content"].startswith(stored.content)
    await wait_idle(cid)
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

"""`chatui.streaming.answer`: the answer's task through a real socket: stops (here and from
another process), resyncs, continue's offsets, endpoint failures, and an answer that outlives
its socket."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from chatui.endpoints import ERR_SERVER
from chatui.streaming import publish
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import (
    TIMEOUT,
    connect,
    db,
    merge_tokens,
    messages_of,
    receive_until,
    send_and_finish,
    setup_owner,
    start_answer,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)


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
    _, cid, socket = await start_answer(
        endpoints, "Count", [f"t{i} " for i in range(200)], delay=0.05
    )
    await receive_until(socket, "token")
    await get_channel_layer().group_send(publish.generation_group(cid), {"type": publish.STOP_TYPE})
    final = (await receive_until(socket, "final"))[-1]["message"]
    assert final["interrupted"] is True
    assert await asyncio.to_thread(endpoints.tgi.disconnected.wait, TIMEOUT)
    await wait_idle(cid)
    await socket.disconnect()


async def test_a_running_task_resends_its_text_to_a_socket_that_asks(endpoints):
    """What a socket served by another process gets after its (DB) snapshot."""
    _, cid, socket = await start_answer(
        endpoints, "long", [f"t{i} " for i in range(100)], delay=0.05
    )
    await receive_until(socket, "token")
    await receive_until(socket, "token")
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    await layer.group_send(
        publish.generation_group(cid),
        {"type": publish.SYNC_TYPE, "reply_channel": reply_channel},
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


async def test_closing_the_tab_does_not_stop_the_answer_and_reconnect_resumes(endpoints):
    owner, cid, socket = await start_answer(
        endpoints, "Go", [f"w{i} " for i in range(40)], delay=0.03
    )
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

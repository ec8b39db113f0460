"""`chatui.streaming.socket.ConversationSocket` without a websocket: events held until the
snapshot went out, this process's own copies dropped, and tokens of an answer running in
another process held back until they can be placed (the resync brings the text so far)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.layers import get_channel_layer

from chatui.streaming import socket as socket_module
from chatui.streaming.hub import get_hub
from chatui.streaming.publish import CLOSE_RECONNECT, EVENT_TYPE
from chatui.streaming.socket import ConversationSocket


class FakeConsumer(ConversationSocket):
    """What the mixin needs of a Channels consumer: a layer, a channel, send and close."""

    def __init__(self) -> None:
        self.channel_layer = get_channel_layer()
        self.channel_name = "test.socket!1"
        self.sent: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    async def send_json(self, content: Any, close: bool = False) -> None:
        self.sent.append(content)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed_with = code


def _snapshot(*messages: dict[str, Any]) -> dict[str, Any]:
    generating = any(m["is_generating"] for m in messages)
    return {"id": "c1", "messages": list(messages), "is_generating": generating}


def _elsewhere(payload: dict[str, Any]) -> dict[str, Any]:
    """A `chat.event` as another process's answer sends it."""
    return {"type": EVENT_TYPE, "event": payload, "origin": "another-process"}


def _token(token: str, offset: int, message_id: str = "m1") -> dict[str, Any]:
    return {"type": "token", "message_id": message_id, "token": token, "offset": offset}


@pytest.fixture
async def consumer(monkeypatch):
    """A joined socket whose resync requests are counted (in `sync_requests`)."""
    requests: list[dict[str, Any]] = []

    async def request_sync(**kwargs: Any) -> None:
        requests.append(kwargs)

    monkeypatch.setattr(socket_module, "request_sync", request_sync)
    socket = FakeConsumer()
    socket.sync_requests = requests  # type: ignore[attr-defined]
    await socket.bus_join("c1")
    yield socket
    await socket.bus_leave()


async def test_events_wait_for_the_snapshot_then_follow_it_in_order(consumer):
    await consumer.deliver({"type": "status", "status": "queued"})
    await consumer.deliver(_token("Hi", 0))
    assert consumer.sent == []
    await consumer.bus_snapshot(_snapshot())
    assert [e["type"] for e in consumer.sent] == ["snapshot", "status", "token"]
    await consumer.deliver(_token("!", 2))
    assert consumer.sent[-1] == _token("!", 2)
    assert consumer.sync_requests == []  # nothing runs elsewhere


async def test_this_process_drops_its_own_copy_of_an_event(consumer):
    await consumer.bus_snapshot(_snapshot())
    await consumer.chat_event(
        {"type": EVENT_TYPE, "event": _token("x", 0), "origin": get_hub().origin}
    )
    assert [e["type"] for e in consumer.sent] == ["snapshot"]


async def test_tokens_past_the_snapshots_text_wait_for_the_resync(consumer):
    answer = {"id": "m1", "content": "abc", "is_generating": True}
    await consumer.bus_snapshot(_snapshot(answer))
    assert consumer.sync_requests == [
        {"conversation_id": "c1", "reply_channel": consumer.channel_name}
    ]
    await consumer.chat_event(_elsewhere(_token("f", 5)))  # a hole after "abc": held
    await consumer.chat_event(_elsewhere(_token("de", 3)))  # placed right after it
    await consumer.chat_event(_elsewhere(_token("f", 5)))
    assert consumer.sent[1:] == [_token("de", 3), _token("f", 5)]


async def test_an_answer_starting_elsewhere_streams_from_its_resync(consumer):
    await consumer.bus_snapshot(_snapshot())
    queued = {"type": "status", "message_id": "m2", "status": "queued"}
    await consumer.chat_event(_elsewhere(queued))
    assert consumer.sent[-1] == queued and len(consumer.sync_requests) == 1
    await consumer.chat_event(_elsewhere(_token("lo", 3, "m2")))  # before the text so far
    assert consumer.sent[-1] == queued
    await consumer.chat_event(_elsewhere(_token("Hel", 0, "m2")))  # the resync
    await consumer.chat_event(_elsewhere(_token("lo", 3, "m2")))
    assert consumer.sent[-2:] == [_token("Hel", 0, "m2"), _token("lo", 3, "m2")]
    final = {"type": "final", "message": {"id": "m2"}}
    await consumer.chat_event(_elsewhere(final))
    assert consumer.sent[-1] == final and consumer.behind == {}


async def test_a_lost_layer_closes_the_socket_for_a_reconnect(consumer):
    await consumer.layer_lost()
    assert consumer.closed_with == CLOSE_RECONNECT

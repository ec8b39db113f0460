"""`chatui.streaming.publish`: every socket of this process gets an answer's events; a
running answer's `RemoteQueue` sends in order and merges tokens; UTF-16 lengths."""

from __future__ import annotations

import pytest

from chatui.streaming import publish
from chatui.streaming.hub import get_hub
from tests.chatui.helpers import connect, receive_until, setup_owner, wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


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


class RecordingLayer:
    """A layer that reaches other processes and keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))

    async def send(self, channel: str, message: dict) -> None:
        self.sent.append((channel, message))


def _token(token: str, offset: int) -> dict:
    return {"type": "token", "message_id": "m1", "token": token, "offset": offset}


def test_utf16_len_counts_as_javascript_does():
    assert publish.utf16_len("") == 0
    assert publish.utf16_len("abc") == 3
    assert publish.utf16_len("a\N{GRINNING FACE}") == 3  # a surrogate pair counts 2


async def test_a_remote_queue_sends_tokens_only_after_a_reply_and_merges_them(monkeypatch):
    layer = RecordingLayer()
    monkeypatch.setattr(publish, "get_channel_layer", lambda: layer)
    queue = publish.RemoteQueue("c1")
    queue.put(_token("a", 0))  # no socket elsewhere can place it yet
    queue.put({"type": "status", "message_id": "m1", "status": "generating"})
    queue.put_reply("reply!1", _token("ab", 0))
    queue.put(_token("c", 2))
    queue.put(_token("d", 3))  # queued behind "c": merged, at the first offset
    queue.start()
    await queue.close()
    origin = get_hub().origin
    assert layer.sent == [
        (
            "conversation_c1",
            {
                "type": publish.EVENT_TYPE,
                "event": {"type": "status", "message_id": "m1", "status": "generating"},
                "origin": origin,
            },
        ),
        ("reply!1", {"type": publish.EVENT_TYPE, "event": _token("ab", 0)}),
        (
            "conversation_c1",
            {"type": publish.EVENT_TYPE, "event": _token("cd", 2), "origin": origin},
        ),
    ]


async def test_a_broken_socket_is_dropped_and_the_others_still_get_the_event():
    class Socket:
        def __init__(self, fails: bool) -> None:
            self.fails, self.received = fails, []

        async def deliver(self, payload: dict) -> None:
            if self.fails:
                raise RuntimeError("gone")
            self.received.append(payload)

        async def layer_lost(self) -> None: ...

    broken, working = Socket(fails=True), Socket(fails=False)
    publish.watch("c2", broken)
    publish.watch("c2", working)
    try:
        await publish.deliver_local("c2", {"type": "title", "title": "T"})
        assert working.received == [{"type": "title", "title": "T"}]
        assert get_hub().watchers["c2"] == {working}
    finally:
        publish.unwatch("c2", working)
    assert "c2" not in get_hub().watchers

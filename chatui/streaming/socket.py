"""The consumer's end of the fan-out (`ConversationSocket`, mixed into
`chatui.consumers.ConversationConsumer`): it forwards a conversation's events to one page and
holds back tokens of an answer running in another process until that answer resends its text
(the offset rule of `chatui.streaming.publish`).

The websocket layer: the domain (models, services, selectors, prompting, ...) never imports
this module. Must not import `chatui.streaming.answer`, `saver` or `reaper` (it needs only
the events, not the tasks that make them), consumers or views.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chatui.streaming.hub import get_hub
from chatui.streaming.publish import (
    CLOSE_RECONNECT,
    EVENT_TYPE,
    conversation_group,
    leave,
    request_sync,
    runs_here,
    unwatch,
    utf16_len,
    watch,
)

RESYNC_AFTER_S = 1.0  # a token still cannot be placed: ask again (a request may be lost)


class ConversationSocket:
    """The fan-out end of a Channels JSON consumer open on one conversation (mixed in before
    `AsyncJsonWebsocketConsumer`): events of this process arrive in `deliver`, those of other
    processes as `chat.event` messages of the group `conversation_<id>`; both are forwarded
    as they are, except tokens of an answer running in another process that the page could
    not place yet: after a snapshot read from the database, or when such an answer starts, its
    tokens wait for the running answer's resync (the text so far) instead of leaving a hole.
    """

    channel_layer: Any
    channel_name: str
    group: str = ""
    bus_conversation_id: str = ""
    # Events of this process that came before the snapshot went out (then None).
    pending: list[dict[str, Any]] | None = None
    # Answers running elsewhere whose tokens wait for a resync: message id -> the length of
    # the page's text (UTF-16), or None until the running task's text arrives.
    behind: dict[str, int | None]
    last_sync_request: float = 0.0

    if TYPE_CHECKING:  # the consumer's

        async def send_json(self, content: Any, close: bool = False) -> None: ...

        async def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    async def bus_join(self, conversation_id: Any) -> None:
        """Start receiving the conversation's events (held back until `bus_snapshot`)."""
        self.behind, self.pending = {}, []
        self.bus_conversation_id = str(conversation_id)
        self.group = conversation_group(conversation_id)
        watch(conversation_id, self)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def bus_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Send the snapshot, then what came meanwhile; ask answers elsewhere for their text."""
        await self.send_json({"type": "snapshot", "conversation": snapshot})
        if snapshot["is_generating"] and not runs_here(self.bus_conversation_id):
            self.behind = {
                m["id"]: utf16_len(m["content"]) for m in snapshot["messages"] if m["is_generating"]
            }
            await self._request_sync()
        while self.pending:
            await self.send_json(self.pending.pop(0))
        self.pending = None

    async def bus_leave(self) -> None:
        if self.group:
            unwatch(self.bus_conversation_id, self)
            await leave(self.group, self.channel_name)
            self.group = ""

    async def layer_lost(self) -> None:
        await self.close(code=CLOSE_RECONNECT)

    async def deliver(self, payload: dict[str, Any]) -> None:
        """An event published by this process, in order."""
        if self.pending is not None:
            self.pending.append(payload)
        else:
            await self.send_json(payload)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Protocol events skip the `close_old_connections` channels runs before each handler:
        they never touch the database, and that call waits for the one thread every query of
        this process runs on (events would queue behind other answers' saves)."""
        if message["type"] == EVENT_TYPE:
            await self.chat_event(message)
        else:
            await super().dispatch(message)  # type: ignore[misc]

    async def chat_event(self, event: dict[str, Any]) -> None:
        """An event from another process (this process's own arrive in `deliver`)."""
        if event.get("origin") == get_hub().origin:
            return
        payload = event["event"]
        if payload.get("type") == "status" and payload.get("status") == "queued":
            # An answer starts over there: its tokens come once its task has our channel.
            self.behind[payload["message_id"]] = None
            await self.send_json(payload)
            await self._request_sync()
            return
        if self.behind and not self._can_place(payload):
            if time.monotonic() - self.last_sync_request >= RESYNC_AFTER_S:
                await self._request_sync()
            return
        await self.send_json(payload)

    async def _request_sync(self) -> None:
        self.last_sync_request = time.monotonic()
        await request_sync(
            conversation_id=self.bus_conversation_id, reply_channel=self.channel_name
        )

    def _can_place(self, payload: dict[str, Any]) -> bool:
        """False for a token past the end of the page's text (the resync brings it)."""
        kind = payload.get("type")
        if kind == "final":
            self.behind.pop(payload["message"]["id"], None)
        if kind != "token" or payload["message_id"] not in self.behind:
            return True
        known = self.behind[payload["message_id"]]
        if known is None and payload["offset"] != 0:
            return False
        if known is not None and payload["offset"] > known:
            return False
        end = payload["offset"] + utf16_len(payload["token"])
        self.behind[payload["message_id"]] = max(known or 0, end)
        return True

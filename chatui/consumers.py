"""The websocket of one open conversation (docs/chat-protocol.md): a thin shell.

It checks that the session's identity owns the conversation (else closes with 4403), watches
the conversation (`chatui.fanout`: events of this process arrive in `deliver`, those of other
processes as `chat.event` messages of the group `conversation_<id>`), sends a `snapshot`, and
hands each client message to a service (the DB write) and to `chatui.generation` (the answer's
task, which does not belong to the socket). Events are forwarded as they are, except tokens of
an answer running in another process that the page could not place yet: after a snapshot read
from the database, or when such an answer starts, its tokens wait for the running task's resync
(the text so far) instead of leaving a hole.

Whatever a client sends is answered, never with a dropped socket: a frame that is not a JSON
object, a `type` that is not a known string, a binary frame, a NUL character, an unexpected
failure all get an `error` event; a text frame over MAX_MESSAGE_BYTES closes with 1009 (daphne,
run by `config.serve`, refuses it earlier with the same code, and invalid UTF-8 with 1007).

When the channel layer cannot be reached, or lost its groups (a Redis restart), the socket
closes with 4012: the page reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chatui import fanout, generation, services
from chatui.errors import ChatError
from chatui.identity import Identity, identity_from_scope
from chatui.layers import LAYER_FAILURES
from chatui.models import Conversation
from chatui.selectors import conversation_get
from chatui.validation import check_no_nul, describe, parse_json

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009
# NOTE: not 1012 (service restart): autobahn, under daphne, sends only 1000 and 3000-4999.
CLOSE_RECONNECT = 4012
MAX_MESSAGE_BYTES = 1024 * 1024  # daphne's default websocket_max_message_size
UNKNOWN_TYPE = "Unknown message type: {type}."
NOT_AN_OBJECT = 'A message must be a JSON object with a "type".'
BINARY_FRAME = "Binary frames are not supported: send JSON text."
INTERNAL_ERROR = "Something went wrong on the server. Try again."
RESYNC_AFTER_S = 1.0  # a token still cannot be placed: ask again (a request may be lost)


def _owned_conversation(
    scope: dict[str, Any], conversation_id: Any
) -> tuple[Identity, Conversation] | None:
    identity = identity_from_scope(scope)
    if identity is None:
        return None
    try:
        return identity, conversation_get(identity=identity, conversation_id=conversation_id)
    except ChatError:
        return None


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    identity: Identity
    conversation: Conversation
    group: str = ""
    # Events of this process that came before the snapshot went out (then None).
    pending: list[dict[str, Any]] | None = None
    # Answers running elsewhere whose tokens wait for a resync: message id -> the length of
    # the page's text (UTF-16), or None until the running task's text arrives.
    behind: dict[str, int | None]
    last_sync_request: float = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop, where an unreachable layer closes the socket with 4012 instead of
        1011 and a traceback."""
        try:
            await super().__call__(scope, receive, send)
        except LAYER_FAILURES as exc:
            logger.warning("Channel layer unreachable, closing a socket: %s", exc)
            await self._forget()
            with suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_RECONNECT})

    async def layer_lost(self) -> None:
        await self.close(code=CLOSE_RECONNECT)

    async def connect(self) -> None:
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        owned = await database_sync_to_async(_owned_conversation)(self.scope, conversation_id)
        # Accept first so that the page sees the 4403 code (a refused handshake shows 1006).
        await self.accept()
        if owned is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.identity, self.conversation = owned
        self.behind, self.pending = {}, []
        self.group = fanout.conversation_group(self.conversation.pk)
        fanout.watch(self.conversation.pk, self)
        await self.channel_layer.group_add(self.group, self.channel_name)
        generation.ensure_reaper()
        snapshot = await generation.conversation_snapshot(conversation=self.conversation)
        await self.send_json({"type": "snapshot", "conversation": snapshot})
        if snapshot["is_generating"] and not generation.runs_here(self.conversation.pk):
            self.behind = {
                m["id"]: generation.utf16_len(m["content"])
                for m in snapshot["messages"]
                if m["is_generating"]
            }
            await self._request_sync()
        while self.pending:
            await self.send_json(self.pending.pop(0))
        self.pending = None

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not self.group:  # refused (4403) or not set up yet
            return
        if text_data is None:
            await self._refuse(BINARY_FRAME)
        elif _utf8_length_over(text_data, MAX_MESSAGE_BYTES):
            await self.close(code=CLOSE_TOO_BIG)
        else:  # an empty frame too (channels would raise on it)
            await self.receive_json(await self.decode_json(text_data), **kwargs)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """The message, or the ChatError that says why it cannot be read (raised later)."""
        try:
            return parse_json(text_data, message=UNKNOWN_TYPE.format(type=None))
        except ChatError as exc:
            return exc

    async def disconnect(self, code: int) -> None:
        await self._forget()

    async def _forget(self) -> None:
        if self.group:
            fanout.unwatch(self.conversation.pk, self)
            await fanout.leave(self.group, self.channel_name)
            self.group = ""

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not self.group:
            return
        try:
            await self._handle(content)
        except ChatError as exc:
            await self._refuse(exc.message)
        except Exception:
            # NOTE: a bug must not close the socket with 1011: the page would reconnect and
            # show nothing; it gets an error event and the socket stays usable.
            logger.exception("websocket message failed")
            await self._refuse(INTERNAL_ERROR)

    async def _handle(self, content: Any) -> None:
        if isinstance(content, ChatError):
            raise content
        if not isinstance(content, dict):
            raise ChatError(NOT_AN_OBJECT)
        kind = content.get("type")
        if not isinstance(kind, str):
            raise ChatError(UNKNOWN_TYPE.format(type=describe(kind)))
        handler = {
            "send": self._send,
            "edit": self._edit,
            "regenerate": self._regenerate,
            "continue": self._continue,
            "stop": self._stop,
        }.get(kind)
        if handler is None:
            raise ChatError(UNKNOWN_TYPE.format(type=describe(kind)))
        check_no_nul(content)
        await handler(content)

    async def _refuse(self, message: str) -> None:
        """A refused request: an error event for this socket only, nothing stored."""
        await self.send_json({"type": "error", "message": message, "message_id": None})

    async def _start(self, service: Any, **kwargs: Any) -> None:
        request = await database_sync_to_async(service)(
            identity=self.identity, conversation_id=self.conversation.pk, **kwargs
        )
        await generation.generation_start(request)

    async def _send(self, content: dict[str, Any]) -> None:
        await self._start(
            services.message_send,
            content=content.get("content"),
            parent_id=content.get("parent_id"),
            model=content.get("model"),
            attachments=content.get("attachments"),
        )

    async def _edit(self, content: dict[str, Any]) -> None:
        await self._start(
            services.message_edit,
            message_id=content.get("message_id"),
            content=content.get("content"),
        )

    async def _regenerate(self, content: dict[str, Any]) -> None:
        await self._start(services.message_regenerate, message_id=content.get("message_id"))

    async def _continue(self, content: dict[str, Any]) -> None:
        await self._start(services.message_continue, message_id=content.get("message_id"))

    async def _stop(self, content: dict[str, Any]) -> None:
        await generation.generation_stop(conversation_id=self.conversation.pk)

    async def _request_sync(self) -> None:
        self.last_sync_request = time.monotonic()
        await generation.request_sync(
            conversation_id=self.conversation.pk, reply_channel=self.channel_name
        )

    async def deliver(self, payload: dict[str, Any]) -> None:
        """An event published by this process (`chatui.fanout`), in order."""
        if self.pending is not None:
            self.pending.append(payload)
        else:
            await self.send_json(payload)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Protocol events skip the `close_old_connections` channels runs before each handler:
        they never touch the database, and that call waits for the one thread every query of
        this process runs on (events would queue behind other answers' saves)."""
        if message["type"] == fanout.EVENT_TYPE:
            await self.chat_event(message)
        else:
            await super().dispatch(message)

    async def chat_event(self, event: dict[str, Any]) -> None:
        """An event from another process (this process's own arrive in `deliver`)."""
        if event.get("origin") == fanout.ORIGIN:
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
        end = payload["offset"] + generation.utf16_len(payload["token"])
        self.behind[payload["message_id"]] = max(known or 0, end)
        return True


def _utf8_length_over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8 (at most 4 bytes a character)."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit

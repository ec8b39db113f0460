"""The websocket of one open conversation (docs/chat-protocol.md): a thin shell.

It checks that the session's identity owns the conversation (else closes with 4403), joins the
conversation's events (`chatui.streaming.socket.ConversationSocket`, which forwards them and
resyncs tokens of answers running elsewhere), sends a `snapshot`, and hands each client message
to a service (the DB write) and to `chatui.streaming.answer` (the answer's task, which does not
belong to the socket).

Whatever a client sends is answered, never with a dropped socket: a frame that is not a JSON
object, a `type` that is not a known string, a binary frame, a NUL character, an unexpected
failure all get an `error` event; a text frame over MAX_MESSAGE_BYTES closes with 1009 (daphne,
run by `config.serve`, refuses it earlier with the same code, and invalid UTF-8 with 1007).

When the channel layer cannot be reached, or lost its groups (a Redis restart), the socket
closes with 4012: the page reconnects and gets a fresh snapshot.

The websocket layer: the domain (models, services, selectors, prompting, ...) never imports
this module. Must not import views.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import suppress
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chatui import services
from chatui.errors import ChatError
from chatui.identity import Identity, identity_from_scope
from chatui.layers import LAYER_FAILURES, raise_if_cancelled
from chatui.models import Conversation
from chatui.selectors import conversation_get
from chatui.services.tool_settings import tool_settings_get
from chatui.streaming import answer
from chatui.streaming.publish import CLOSE_RECONNECT
from chatui.streaming.reaper import ensure_reaper
from chatui.streaming.socket import ConversationSocket
from chatui.tools.setup import get_catalog
from chatui.validation import check_no_nul, describe, parse_json

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009
MAX_MESSAGE_BYTES = 1024 * 1024  # daphne's default websocket_max_message_size
UNKNOWN_TYPE = "Unknown message type: {type}."
NOT_AN_OBJECT = 'A message must be a JSON object with a "type".'
BINARY_FRAME = "Binary frames are not supported: send JSON text."
INTERNAL_ERROR = "Something went wrong on the server. Try again."


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


class ConversationConsumer(ConversationSocket, AsyncJsonWebsocketConsumer):
    identity: Identity
    conversation: Conversation

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop, where an unreachable layer closes the socket with 4012 instead of
        1011 and a traceback."""
        try:
            await super().__call__(scope, receive, send)
        except LAYER_FAILURES as exc:
            raise_if_cancelled(exc)
            logger.warning("Channel layer unreachable, closing a socket: %s", exc)
            await self.bus_leave()
            with suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_RECONNECT})

    async def connect(self) -> None:
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        owned = await database_sync_to_async(_owned_conversation)(self.scope, conversation_id)
        # Accept first so that the page sees the 4403 code (a refused handshake shows 1006).
        await self.accept()
        if owned is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.identity, self.conversation = owned
        await self.bus_join(self.conversation.pk)
        ensure_reaper()
        get_catalog().discover_soon()
        await self.bus_snapshot(await answer.conversation_snapshot(conversation=self.conversation))

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
        await self.bus_leave()

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

    async def _start(self, service: Any, *, use_tools: Any = True, **kwargs: Any) -> None:
        request = await database_sync_to_async(service)(
            identity=self.identity, conversation_id=self.conversation.pk, **kwargs
        )
        # The page's tools switch for this conversation, and the user's tool settings.
        tool_settings = await database_sync_to_async(tool_settings_get)(identity=self.identity)
        request = dataclasses.replace(
            request, use_tools=use_tools is not False, tool_settings=tool_settings
        )
        await answer.generation_start(request)

    async def _send(self, content: dict[str, Any]) -> None:
        await self._start(
            services.message_send,
            content=content.get("content"),
            parent_id=content.get("parent_id"),
            model=content.get("model"),
            attachments=content.get("attachments"),
            use_tools=content.get("tools", True),
        )

    async def _edit(self, content: dict[str, Any]) -> None:
        await self._start(
            services.message_edit,
            message_id=content.get("message_id"),
            content=content.get("content"),
            use_tools=content.get("tools", True),
        )

    async def _regenerate(self, content: dict[str, Any]) -> None:
        await self._start(
            services.message_regenerate,
            message_id=content.get("message_id"),
            use_tools=content.get("tools", True),
        )

    async def _continue(self, content: dict[str, Any]) -> None:
        await self._start(services.message_continue, message_id=content.get("message_id"))

    async def _stop(self, content: dict[str, Any]) -> None:
        await answer.generation_stop(conversation_id=self.conversation.pk)


def _utf8_length_over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8 (at most 4 bytes a character)."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit
